/* Image resizing that reproduces Pillow's Image.resize for 8-bit images (libImaging
 * Resample.c), which ADM's center_crop_arr uses: a separable convolution whose support
 * widens with the reduction factor, coefficients normalised per output pixel, fixed-point
 * arithmetic with 22 fractional bits, horizontal pass first into an 8-bit intermediate
 * (only the rows the vertical pass needs), then the vertical pass. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "image.h"

#define PRECISION_BITS (32 - 8 - 2)

static double box_filter(double x) { return x > -0.5 && x <= 0.5 ? 1.0 : 0.0; }

static double bicubic_filter(double x) {
    const double a = -0.5;
    x = fabs(x);
    if (x < 1.0) return ((a + 2.0) * x - (a + 3.0)) * x * x + 1;
    if (x < 2.0) return (((x - 5) * x + 8) * x - 4) * a;
    return 0.0;
}

typedef struct {
    int ksize;
    int *bounds; /* per output: first input index, count */
    int *k;      /* per output: ksize fixed-point weights */
} coeffs;

static int precompute(int in_size, int out_size, sadm_resample filter, coeffs *c) {
    double support = filter == SADM_RESAMPLE_BOX ? 0.5 : 2.0;
    double (*fn)(double) = filter == SADM_RESAMPLE_BOX ? box_filter : bicubic_filter;
    double scale = (double)in_size / out_size, filterscale = scale < 1.0 ? 1.0 : scale;
    support *= filterscale;
    int ksize = (int)ceil(support) * 2 + 1;
    double *pre = malloc((size_t)out_size * ksize * sizeof(double));
    c->bounds = malloc((size_t)out_size * 2 * sizeof(int));
    c->k = malloc((size_t)out_size * ksize * sizeof(int));
    c->ksize = ksize;
    if (!pre || !c->bounds || !c->k) {
        free(pre);
        return -1;
    }
    for (int xx = 0; xx < out_size; xx++) {
        double center = (xx + 0.5) * scale, ww = 0.0, ss = 1.0 / filterscale;
        int xmin = (int)(center - support + 0.5), xmax = (int)(center + support + 0.5);
        if (xmin < 0) xmin = 0;
        if (xmax > in_size) xmax = in_size;
        xmax -= xmin;
        double *k = pre + (size_t)xx * ksize;
        for (int x = 0; x < xmax; x++) {
            double w = fn((x + xmin - center + 0.5) * ss);
            k[x] = w;
            ww += w;
        }
        for (int x = 0; x < xmax; x++)
            if (ww != 0.0) k[x] /= ww;
        for (int x = xmax; x < ksize; x++) k[x] = 0;
        c->bounds[xx * 2] = xmin, c->bounds[xx * 2 + 1] = xmax;
        for (int x = 0; x < ksize; x++)
            c->k[(size_t)xx * ksize + x] = k[x] < 0 ? (int)(-0.5 + k[x] * (1 << PRECISION_BITS))
                                                     : (int)(0.5 + k[x] * (1 << PRECISION_BITS));
    }
    free(pre);
    return 0;
}

static inline uint8_t clip8(int v) {
    v >>= PRECISION_BITS; /* arithmetic shift, as Pillow's lookup index */
    return (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v);
}

int sadm_resample_rgb(const uint8_t *in, int w, int h, uint8_t *out, int ow, int oh, sadm_resample filter) {
    coeffs ch = {0}, cv = {0};
    int rc = -1;
    if (precompute(w, ow, filter, &ch) || precompute(h, oh, filter, &cv)) goto done;
    int need_h = ow != w, need_v = oh != h;
    int y_first = cv.bounds[0], y_last = cv.bounds[oh * 2 - 2] + cv.bounds[oh * 2 - 1];
    const uint8_t *src = in;
    int src_rows = h;
    uint8_t *tmp = NULL;
    if (need_h) {
        if (need_v) {
            for (int i = 0; i < oh; i++) cv.bounds[i * 2] -= y_first;
        } else {
            y_first = 0, y_last = h;
        }
        src_rows = y_last - y_first;
        tmp = malloc((size_t)ow * src_rows * 3);
        if (!tmp) goto done;
        for (int y = 0; y < src_rows; y++)
            for (int xx = 0; xx < ow; xx++) {
                int xmin = ch.bounds[xx * 2], xmax = ch.bounds[xx * 2 + 1];
                const int *k = ch.k + (size_t)xx * ch.ksize;
                for (int c = 0; c < 3; c++) {
                    int ss = 1 << (PRECISION_BITS - 1);
                    for (int x = 0; x < xmax; x++) ss += in[((size_t)(y + y_first) * w + x + xmin) * 3 + c] * k[x];
                    tmp[((size_t)y * ow + xx) * 3 + c] = clip8(ss);
                }
            }
        src = tmp;
    }
    int sw = need_h ? ow : w;
    if (need_v) {
        for (int yy = 0; yy < oh; yy++) {
            int ymin = cv.bounds[yy * 2], ymax = cv.bounds[yy * 2 + 1];
            const int *k = cv.k + (size_t)yy * cv.ksize;
            for (int xx = 0; xx < sw; xx++)
                for (int c = 0; c < 3; c++) {
                    int ss = 1 << (PRECISION_BITS - 1);
                    for (int y = 0; y < ymax; y++) ss += src[((size_t)(y + ymin) * sw + xx) * 3 + c] * k[y];
                    out[((size_t)yy * ow + xx) * 3 + c] = clip8(ss);
                }
        }
    } else {
        memcpy(out, src, (size_t)ow * oh * 3);
    }
    (void)src_rows;
    free(tmp);
    rc = 0;
done:
    free(ch.bounds), free(ch.k), free(cv.bounds), free(cv.k);
    return rc;
}

int sadm_center_crop_adm(const uint8_t *in, int w, int h, int size, uint8_t *out) {
    uint8_t *cur = malloc((size_t)w * h * 3);
    if (!cur) return -1;
    memcpy(cur, in, (size_t)w * h * 3);
    /* halve with a box filter while the short side is at least twice the target */
    while ((w < h ? w : h) >= 2 * size) {
        int nw = w / 2, nh = h / 2;
        uint8_t *next = malloc((size_t)nw * nh * 3);
        if (!next || sadm_resample_rgb(cur, w, h, next, nw, nh, SADM_RESAMPLE_BOX)) {
            free(next), free(cur);
            return -1;
        }
        free(cur);
        cur = next, w = nw, h = nh;
    }
    double scale = (double)size / (w < h ? w : h);
    /* Python's round(): halves to even, which nearbyint does in the default rounding mode */
    int nw = (int)nearbyint(w * scale), nh = (int)nearbyint(h * scale);
    uint8_t *res = malloc((size_t)nw * nh * 3);
    if (!res || sadm_resample_rgb(cur, w, h, res, nw, nh, SADM_RESAMPLE_BICUBIC)) {
        free(res), free(cur);
        return -1;
    }
    free(cur);
    int cy = (nh - size) / 2, cx = (nw - size) / 2;
    for (int y = 0; y < size; y++) memcpy(out + (size_t)y * size * 3, res + ((size_t)(y + cy) * nw + cx) * 3, (size_t)size * 3);
    free(res);
    return 0;
}
