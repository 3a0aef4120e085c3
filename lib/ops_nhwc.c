/* Operators on NHWC feature maps (the FID Inception-v3's layout): convolution by im2col +
 * GEMM with the bias and ReLU fused after it, k×k pooling, the mean over pixels, a dense
 * layer accumulated in double, channel copies, and the FID input resize. A map's pixel
 * (n, y, x) starts at ((n H + y) W + x) ld: ld >= C lets a branch read or write its
 * channels of a concatenation in place. */
#include <math.h>
#include <string.h>

#include "internal.h"

static sadm_status check_conv(const sadm_nhwc_conv_shape *s, int *Ho, int *Wo) {
    SADM_REQUIRE_PTR(s);
    SADM_REQUIRE(s->N > 0 && s->H > 0 && s->W > 0 && s->C > 0 && s->K > 0 && s->kh > 0 && s->kw > 0 && s->sh > 0 &&
                     s->sw > 0 && s->ph >= 0 && s->pw >= 0 && s->ldx >= s->C && s->ldy >= s->K,
                 "sadm_conv2d_nhwc_forward: bad shape (N %d, H %d, W %d, C %d, K %d, kernel %dx%d, stride %dx%d, "
                 "padding %dx%d, ld %d/%d)",
                 s->N, s->H, s->W, s->C, s->K, s->kh, s->kw, s->sh, s->sw, s->ph, s->pw, s->ldx, s->ldy);
    *Ho = (s->H + 2 * s->ph - s->kh) / s->sh + 1;
    *Wo = (s->W + 2 * s->pw - s->kw) / s->sw + 1;
    SADM_REQUIRE(*Ho > 0 && *Wo > 0, "sadm_conv2d_nhwc_forward: the kernel %dx%d is larger than the padded %dx%d input",
                 s->kh, s->kw, s->H, s->W);
    return SADM_OK;
}

/* Rows r0 .. r0+n of the im2col matrix, one per output pixel, (kh, kw, C) each. */
static void im2col_rows(const sadm_nhwc_conv_shape *s, int Ho, int Wo, const float *x, size_t r0, size_t n,
                        float *col) {
    size_t K = (size_t)s->kh * s->kw * s->C;
#pragma omp parallel for schedule(static)
    for (long i = 0; i < (long)n; i++) {
        size_t r = r0 + (size_t)i;
        int ox = (int)(r % (size_t)Wo), oy = (int)(r / (size_t)Wo % (size_t)Ho);
        size_t b = r / ((size_t)Wo * Ho);
        float *dst = col + (size_t)i * K;
        for (int ki = 0; ki < s->kh; ki++) {
            int iy = oy * s->sh - s->ph + ki;
            for (int kj = 0; kj < s->kw; kj++, dst += s->C) {
                int ix = ox * s->sw - s->pw + kj;
                if (iy < 0 || iy >= s->H || ix < 0 || ix >= s->W)
                    memset(dst, 0, (size_t)s->C * sizeof(float));
                else
                    memcpy(dst, x + ((b * s->H + iy) * s->W + ix) * s->ldx, (size_t)s->C * sizeof(float));
            }
        }
    }
}

#define IM2COL_FLOATS ((size_t)1 << 20) /* 4 MiB of im2col rows at a time: they stay in cache for the GEMM */

sadm_status sadm_conv2d_nhwc_forward(const sadm_nhwc_conv_shape *s, const float *x, const float *w, const float *b,
                                     int relu, float *y) {
    int Ho = 0, Wo = 0;
    SADM_TRY(check_conv(s, &Ho, &Wo));
    SADM_REQUIRE_PTR(x);
    SADM_REQUIRE_PTR(w);
    SADM_REQUIRE_PTR(y);
    size_t R = (size_t)s->N * Ho * Wo, K = (size_t)s->kh * s->kw * s->C;
    if (s->kh == 1 && s->kw == 1 && s->sh == 1 && s->sw == 1 && s->ph == 0 && s->pw == 0) {
        sadm_gemm(SADM_NO_TRANS, SADM_NO_TRANS, (int)R, s->K, s->C, 1.0f, x, s->ldx, w, s->K, 0.0f, y, s->ldy);
    } else {
        size_t chunk = IM2COL_FLOATS / K;
        if (chunk < 1) chunk = 1;
        if (chunk > R) chunk = R;
        sadm_scratch_mark mk = sadm_scratch_mark_get();
        float *col = sadm_scratch_take(chunk * K * sizeof(float));
        if (!col) return sadm_error(SADM_ERR_NOMEM, "sadm_conv2d_nhwc_forward: out of memory for im2col (%zu floats)", chunk * K);
        for (size_t r0 = 0; r0 < R; r0 += chunk) {
            size_t n = R - r0 < chunk ? R - r0 : chunk;
            im2col_rows(s, Ho, Wo, x, r0, n, col);
            sadm_gemm(SADM_NO_TRANS, SADM_NO_TRANS, (int)n, s->K, (int)K, 1.0f, col, (int)K, w, s->K, 0.0f,
                      y + r0 * (size_t)s->ldy, s->ldy);
        }
        sadm_scratch_release(mk);
    }
    if (b || relu) {
#pragma omp parallel for schedule(static)
        for (long r = 0; r < (long)R; r++) {
            float *row = y + (size_t)r * s->ldy;
            if (b && relu) {
#pragma omp simd
                for (int o = 0; o < s->K; o++) {
                    float v = row[o] + b[o];
                    row[o] = v > 0 ? v : 0;
                }
            } else if (b) {
                for (int o = 0; o < s->K; o++) row[o] += b[o];
            } else {
                for (int o = 0; o < s->K; o++) row[o] = row[o] > 0 ? row[o] : 0;
            }
        }
    }
    return SADM_OK;
}

/* The maximum, or the average of the positions inside the image (count_include_pad
 * False, TensorFlow's average). */
sadm_status sadm_pool2d_nhwc_forward(const sadm_nhwc_pool_shape *s, const float *x, float *y) {
    SADM_REQUIRE_PTR(s);
    SADM_REQUIRE_PTR(x);
    SADM_REQUIRE_PTR(y);
    SADM_REQUIRE(s->N > 0 && s->H > 0 && s->W > 0 && s->C > 0 && s->k > 0 && s->s > 0 && s->p >= 0 && s->p < s->k &&
                     s->ldx >= s->C && s->ldy >= s->C && (s->kind == SADM_POOL_MAX || s->kind == SADM_POOL_AVG),
                 "sadm_pool2d_nhwc_forward: bad shape (N %d, H %d, W %d, C %d, window %d, stride %d, padding %d)", s->N,
                 s->H, s->W, s->C, s->k, s->s, s->p);
    int Ho = (s->H + 2 * s->p - s->k) / s->s + 1, Wo = (s->W + 2 * s->p - s->k) / s->s + 1, C = s->C;
    SADM_REQUIRE(Ho > 0 && Wo > 0, "sadm_pool2d_nhwc_forward: the window %d is larger than the padded %dx%d input", s->k,
                 s->H, s->W);
#pragma omp parallel for schedule(static)
    for (long r = 0; r < (long)s->N * Ho * Wo; r++) {
        int ox = (int)(r % Wo), oy = (int)(r / Wo % Ho);
        size_t b = (size_t)r / ((size_t)Wo * Ho);
        int y0 = oy * s->s - s->p, x0 = ox * s->s - s->p;
        int ya = y0 < 0 ? 0 : y0, yb = y0 + s->k > s->H ? s->H : y0 + s->k;
        int xa = x0 < 0 ? 0 : x0, xb = x0 + s->k > s->W ? s->W : x0 + s->k;
        float *dst = y + (size_t)r * s->ldy;
        const float *first = x + ((b * s->H + ya) * s->W + xa) * s->ldx;
        memcpy(dst, first, (size_t)C * sizeof(float));
        for (int iy = ya; iy < yb; iy++)
            for (int ix = xa; ix < xb; ix++) {
                if (iy == ya && ix == xa) continue;
                const float *src = x + ((b * s->H + iy) * s->W + ix) * s->ldx;
                if (s->kind == SADM_POOL_MAX) {
#pragma omp simd
                    for (int c = 0; c < C; c++) dst[c] = src[c] > dst[c] ? src[c] : dst[c];
                } else {
#pragma omp simd
                    for (int c = 0; c < C; c++) dst[c] += src[c];
                }
            }
        if (s->kind == SADM_POOL_AVG) {
            float inv = 1.0f / (float)((yb - ya) * (xb - xa));
            for (int c = 0; c < C; c++) dst[c] *= inv;
        }
    }
    return SADM_OK;
}

sadm_status sadm_mean_pixels_nhwc(int N, int HW, int C, int ld, const float *x, float *out) {
    SADM_REQUIRE(N > 0 && HW > 0 && C > 0 && ld >= C, "sadm_mean_pixels_nhwc: bad shape (N %d, HW %d, C %d, ld %d)", N, HW,
                 C, ld);
    SADM_REQUIRE_PTR(x);
    SADM_REQUIRE_PTR(out);
#pragma omp parallel for schedule(static)
    for (long q = 0; q < (long)N * C; q++) {
        size_t n = (size_t)q / (size_t)C, c = (size_t)q % (size_t)C;
        double s = 0;
        for (size_t i = 0; i < (size_t)HW; i++) s += x[(n * HW + i) * ld + c];
        out[q] = (float)(s / (double)HW);
    }
    return SADM_OK;
}

/* Plain dot products in double: a GEMM of a few rows takes other code paths in OpenBLAS
 * for other batch sizes, and these outputs should not depend on the batching. */
sadm_status sadm_linear_forward_exact(int M, int K, int N, const float *x, const float *w, const float *b, float *y) {
    SADM_REQUIRE(M > 0 && K > 0 && N > 0, "sadm_linear_forward_exact: M, K, N must be positive, got %d, %d, %d", M, K, N);
    SADM_REQUIRE_PTR(x);
    SADM_REQUIRE_PTR(w);
    SADM_REQUIRE_PTR(y);
#pragma omp parallel for schedule(static)
    for (long q = 0; q < (long)M * N; q++) {
        const float *xr = x + (size_t)(q / N) * K, *wr = w + (size_t)(q % N) * K;
        double s = b ? b[q % N] : 0.0;
        for (int k = 0; k < K; k++) s += (double)xr[k] * wr[k];
        y[q] = (float)s;
    }
    return SADM_OK;
}

sadm_status sadm_copy_channels(size_t rows, int C, const float *src, int ld_src, float *dst, int ld_dst) {
    SADM_REQUIRE(C > 0 && ld_src >= C && ld_dst >= C, "sadm_copy_channels: bad shape (C %d, ld %d/%d)", C, ld_src, ld_dst);
    SADM_REQUIRE_PTR(src);
    SADM_REQUIRE_PTR(dst);
    for (size_t q = 0; q < rows; q++) memcpy(dst + q * ld_dst, src + q * ld_src, (size_t)C * sizeof(float));
    return SADM_OK;
}

/* Input images (N, H, W, 3) uint8 to the network's 299×299×3 input in [-1, 1] (NHWC). */
sadm_status sadm_fid_resize(sadm_fid_mode mode, int N, int H, int W, const uint8_t *img, float *x) {
    SADM_REQUIRE(N > 0 && H >= 2 && W >= 2, "sadm_fid_resize: %d images of %d×%d (at least 2×2 each)", N, H, W);
    SADM_REQUIRE(mode == SADM_FID_ADM || mode == SADM_FID_PYTORCH, "sadm_fid_resize: unknown mode %d", (int)mode);
    SADM_REQUIRE_PTR(img);
    SADM_REQUIRE_PTR(x);
    const int S = SADM_FID_SIZE;
    double sy = (double)H / S, sx = (double)W / S;
#pragma omp parallel for schedule(static)
    for (long ny = 0; ny < (long)N * S; ny++) {
        int n = (int)(ny / S), oy = (int)(ny % S);
        const uint8_t *src = img + (size_t)n * H * W * 3;
        float *dst = x + (size_t)ny * S * 3;
        /* ADM (TensorFlow 1 ResizeBilinear, no half-pixel centres): src = dst * scale;
         * pytorch-fid (F.interpolate, align_corners False): (dst + 0.5) * scale - 0.5, >= 0 */
        double fy = mode == SADM_FID_ADM ? oy * sy : fmax((oy + 0.5) * sy - 0.5, 0.0);
        int y0 = (int)fy, y1 = y0 + 1 < H ? y0 + 1 : H - 1;
        float ly = (float)(fy - y0);
        for (int ox = 0; ox < S; ox++) {
            double fx = mode == SADM_FID_ADM ? ox * sx : fmax((ox + 0.5) * sx - 0.5, 0.0);
            int x0 = (int)fx, x1 = x0 + 1 < W ? x0 + 1 : W - 1;
            float lx = (float)(fx - x0);
            for (int c = 0; c < 3; c++) {
                float a = src[((size_t)y0 * W + x0) * 3 + c], b = src[((size_t)y0 * W + x1) * 3 + c];
                float cc = src[((size_t)y1 * W + x0) * 3 + c], d = src[((size_t)y1 * W + x1) * 3 + c];
                float v;
                if (mode == SADM_FID_ADM) {
                    float top = a + (b - a) * lx, bottom = cc + (d - cc) * lx;
                    v = top + (bottom - top) * ly;
                    v = (v - 128.0f) / 128.0f;
                } else {
                    a /= 255.0f, b /= 255.0f, cc /= 255.0f, d /= 255.0f;
                    v = (1 - ly) * ((1 - lx) * a + lx * b) + ly * ((1 - lx) * cc + lx * d);
                    v = 2 * v - 1;
                }
                dst[(size_t)ox * 3 + c] = v;
            }
        }
    }
    return SADM_OK;
}
