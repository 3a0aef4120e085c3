/* Average and max pooling as PyTorch's avg_pool2d / max_pool2d (floor mode). Threads own
 * whole (sample, channel) planes, forward and backward. */
#include <math.h>

#include "internal.h"

sadm_status sadm_pool2d_output_size(const sadm_pool2d_shape *s, int *Ho, int *Wo) {
    SADM_REQUIRE_PTR(s);
    SADM_REQUIRE(s->N > 0 && s->C > 0 && s->H > 0 && s->W > 0, "pool2d: N, C, H and W must be positive, got %d, %d, %d, %d",
                 s->N, s->C, s->H, s->W);
    SADM_REQUIRE(s->kh > 0 && s->kw > 0 && s->sh > 0 && s->sw > 0, "pool2d: kernel %dx%d and stride %dx%d must be positive",
                 s->kh, s->kw, s->sh, s->sw);
    SADM_REQUIRE(s->ph >= 0 && s->pw >= 0 && 2 * s->ph <= s->kh && 2 * s->pw <= s->kw,
                 "pool2d: padding %dx%d must be between 0 and half the kernel %dx%d", s->ph, s->pw, s->kh, s->kw);
    SADM_REQUIRE(s->kind == SADM_POOL_MAX || s->kind == SADM_POOL_AVG, "pool2d: unknown pooling kind %d", (int)s->kind);
    SADM_REQUIRE(s->H + 2 * s->ph >= s->kh && s->W + 2 * s->pw >= s->kw,
                 "pool2d: kernel %dx%d is larger than the padded input", s->kh, s->kw);
    if (Ho) *Ho = (s->H + 2 * s->ph - s->kh) / s->sh + 1;
    if (Wo) *Wo = (s->W + 2 * s->pw - s->kw) / s->sw + 1;
    return SADM_OK;
}

typedef struct {
    int y0, y1, x0, x1; /* window clipped to the image */
    float divisor;      /* for average pooling */
} window;

static window window_at(const sadm_pool2d_shape *s, int oy, int ox) {
    window w;
    int ys = oy * s->sh - s->ph, xs = ox * s->sw - s->pw;
    int ye = ys + s->kh, xe = xs + s->kw;
    /* PyTorch counts padding in the divisor only up to the padded border */
    int ye_pad = ye < s->H + s->ph ? ye : s->H + s->ph, xe_pad = xe < s->W + s->pw ? xe : s->W + s->pw;
    int pad_area = (ye_pad - ys) * (xe_pad - xs);
    w.y0 = ys > 0 ? ys : 0;
    w.x0 = xs > 0 ? xs : 0;
    w.y1 = ye < s->H ? ye : s->H;
    w.x1 = xe < s->W ? xe : s->W;
    w.divisor = (float)(s->count_include_pad ? pad_area : (w.y1 - w.y0) * (w.x1 - w.x0));
    return w;
}

/* Position of the first maximum in the window (a NaN counts as the maximum, as PyTorch). */
static int argmax_in(const float *plane, int W, const window *w) {
    int best = -1;
    float m = -INFINITY;
    for (int y = w->y0; y < w->y1; y++)
        for (int x = w->x0; x < w->x1; x++) {
            float v = plane[y * W + x];
            if (best < 0 || v > m || isnan(v)) {
                best = y * W + x;
                m = v;
                if (isnan(v)) return best;
            }
        }
    return best;
}

sadm_status sadm_pool2d_forward(const sadm_pool2d_shape *s, const float *x, float *y) {
    int Ho, Wo;
    sadm_status st = sadm_pool2d_output_size(s, &Ho, &Wo);
    if (st) return st;
    SADM_REQUIRE_PTR(x);
    SADM_REQUIRE_PTR(y);
#pragma omp parallel for schedule(static)
    for (long pl = 0; pl < (long)s->N * s->C; pl++) {
        const float *plane = x + (size_t)pl * s->H * s->W;
        float *out = y + (size_t)pl * Ho * Wo;
        for (int oy = 0; oy < Ho; oy++)
            for (int ox = 0; ox < Wo; ox++) {
                window w = window_at(s, oy, ox);
                if (s->kind == SADM_POOL_MAX) {
                    int a = argmax_in(plane, s->W, &w);
                    out[oy * Wo + ox] = a >= 0 ? plane[a] : -INFINITY;
                } else {
                    float acc = 0.0f;
                    for (int yy = w.y0; yy < w.y1; yy++)
                        for (int xx = w.x0; xx < w.x1; xx++) acc += plane[yy * s->W + xx];
                    out[oy * Wo + ox] = acc / w.divisor;
                }
            }
    }
    return SADM_OK;
}

sadm_status sadm_pool2d_backward(const sadm_pool2d_shape *s, const float *x, const float *dy, float *dx) {
    int Ho, Wo;
    sadm_status st = sadm_pool2d_output_size(s, &Ho, &Wo);
    if (st) return st;
    SADM_REQUIRE(x || s->kind == SADM_POOL_AVG, "sadm_pool2d_backward: argument 'x' is NULL (max pooling needs it)");
    SADM_REQUIRE_PTR(dy);
    SADM_REQUIRE_PTR(dx);
#pragma omp parallel for schedule(static)
    for (long pl = 0; pl < (long)s->N * s->C; pl++) {
        const float *plane = x ? x + (size_t)pl * s->H * s->W : NULL;
        const float *g = dy + (size_t)pl * Ho * Wo;
        float *d = dx + (size_t)pl * s->H * s->W;
        for (int oy = 0; oy < Ho; oy++)
            for (int ox = 0; ox < Wo; ox++) {
                window w = window_at(s, oy, ox);
                float go = g[oy * Wo + ox];
                if (s->kind == SADM_POOL_MAX) {
                    int a = argmax_in(plane, s->W, &w);
                    if (a >= 0) d[a] += go;
                } else {
                    float v = go / w.divisor;
                    for (int yy = w.y0; yy < w.y1; yy++)
                        for (int xx = w.x0; xx < w.x1; xx++) d[yy * s->W + xx] += v;
                }
            }
    }
    return SADM_OK;
}
