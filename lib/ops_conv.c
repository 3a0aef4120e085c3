/* Patch layouts and 2-D convolution through im2col + GEMM. */
#include <stdlib.h>
#include <string.h>

#include "internal.h"

static sadm_status check_patch(const char *fn, int B, int C, int H, int W, int p, const void *a, const void *b) {
    SADM_REQUIRE(B > 0 && C > 0 && H > 0 && W > 0 && p > 0,
                 "%s: B, C, H, W and p must be positive, got %d, %d, %d, %d, %d", fn, B, C, H, W, p);
    SADM_REQUIRE(H % p == 0 && W % p == 0, "%s: image size %dx%d is not a multiple of the patch size %d", fn, H,
                 W, p);
    SADM_REQUIRE(a && b, "%s: a tensor argument is NULL", fn);
    return SADM_OK;
}

/* Index of image element (c, y, x) of one image inside a token row, for both layouts. */
static inline size_t token_feature_cij(int C, int p, int c, int i, int j) { (void)C; return ((size_t)c * p + i) * p + j; }
static inline size_t token_feature_ijc(int C, int p, int c, int i, int j) { return ((size_t)i * p + j) * C + c; }

typedef size_t (*feature_index_fn)(int C, int p, int c, int i, int j);

/* Moves every element between image and token layout; `accumulate` adds instead of storing.
 * Threads own whole tokens, so no two threads write one element. */
static void permute(int B, int C, int H, int W, int p, feature_index_fn fi, int to_tokens, int accumulate,
                    const float *src, float *dst) {
    int gw = W / p, T = (H / p) * gw;
    size_t F = (size_t)C * p * p;
#pragma omp parallel for schedule(static)
    for (long bt = 0; bt < (long)B * T; bt++) {
        int b = (int)(bt / T), t = (int)(bt % T), gy = t / gw, gx = t % gw;
        for (int c = 0; c < C; c++)
            for (int i = 0; i < p; i++)
                for (int j = 0; j < p; j++) {
                    size_t img = (((size_t)b * C + c) * H + gy * p + i) * W + gx * p + j;
                    size_t tok = (size_t)bt * F + fi(C, p, c, i, j);
                    float *d = to_tokens ? dst + tok : dst + img;
                    float v = to_tokens ? src[img] : src[tok];
                    *d = accumulate ? *d + v : v;
                }
    }
}

sadm_status sadm_patchify(int B, int C, int H, int W, int p, const float *x, float *tokens) {
    sadm_status st = check_patch(__func__, B, C, H, W, p, x, tokens);
    if (!st) permute(B, C, H, W, p, token_feature_cij, 1, 0, x, tokens);
    return st;
}

sadm_status sadm_patchify_backward(int B, int C, int H, int W, int p, const float *dtokens, float *dx) {
    sadm_status st = check_patch(__func__, B, C, H, W, p, dtokens, dx);
    if (!st) permute(B, C, H, W, p, token_feature_cij, 0, 1, dtokens, dx);
    return st;
}

sadm_status sadm_unpatchify(int B, int C, int H, int W, int p, const float *tokens, float *x) {
    sadm_status st = check_patch(__func__, B, C, H, W, p, tokens, x);
    if (!st) permute(B, C, H, W, p, token_feature_ijc, 0, 0, tokens, x);
    return st;
}

sadm_status sadm_unpatchify_backward(int B, int C, int H, int W, int p, const float *dx, float *dtokens) {
    sadm_status st = check_patch(__func__, B, C, H, W, p, dx, dtokens);
    if (!st) permute(B, C, H, W, p, token_feature_ijc, 1, 1, dx, dtokens);
    return st;
}

sadm_status sadm_conv2d_output_size(const sadm_conv2d_shape *s, int *Ho, int *Wo) {
    SADM_REQUIRE_PTR(s);
    SADM_REQUIRE(s->N > 0 && s->C > 0 && s->H > 0 && s->W > 0 && s->K > 0,
                 "conv2d: N, C, H, W and K must be positive, got %d, %d, %d, %d, %d", s->N, s->C, s->H, s->W, s->K);
    SADM_REQUIRE(s->kh > 0 && s->kw > 0 && s->sh > 0 && s->sw > 0 && s->ph >= 0 && s->pw >= 0 && s->eh >= 0 &&
                     s->ew >= 0,
                 "conv2d: kernel %dx%d and stride %dx%d must be positive, padding %dx%d (+%dx%d) not negative", s->kh,
                 s->kw, s->sh, s->sw, s->ph, s->pw, s->eh, s->ew);
    int hp = s->H + 2 * s->ph + s->eh, wp = s->W + 2 * s->pw + s->ew; /* the padded input */
    SADM_REQUIRE(hp >= s->kh && wp >= s->kw, "conv2d: kernel %dx%d is larger than the padded input %dx%d", s->kh, s->kw,
                 hp, wp);
    int ho = (hp - s->kh) / s->sh + 1, wo = (wp - s->kw) / s->sw + 1;
    if (Ho) *Ho = ho;
    if (Wo) *Wo = wo;
    return SADM_OK;
}

/* col[(c, ki, kj), (oy - oy0, ox)] = x[c, oy*sh - ph + ki, ox*sw - pw + kj] (0 outside), for
 * the output rows oy0 <= oy < oy1. */
static void im2col_rows(const sadm_conv2d_shape *s, int oy0, int oy1, int Wo, const float *x, float *col) {
    size_t P = (size_t)(oy1 - oy0) * Wo;
#pragma omp parallel for schedule(static)
    for (int c = 0; c < s->C; c++)
        for (int ki = 0; ki < s->kh; ki++)
            for (int kj = 0; kj < s->kw; kj++) {
                float *row = col + (((size_t)c * s->kh + ki) * s->kw + kj) * P;
                for (int oy = oy0; oy < oy1; oy++) {
                    int iy = oy * s->sh - s->ph + ki;
                    float *r = row + (size_t)(oy - oy0) * Wo;
                    if (iy < 0 || iy >= s->H) {
                        memset(r, 0, (size_t)Wo * sizeof(float));
                        continue;
                    }
                    const float *xr = x + ((size_t)c * s->H + iy) * s->W;
                    for (int ox = 0; ox < Wo; ox++) {
                        int ix = ox * s->sw - s->pw + kj;
                        r[ox] = ix >= 0 && ix < s->W ? xr[ix] : 0.0f;
                    }
                }
            }
}

static void im2col(const sadm_conv2d_shape *s, int Ho, int Wo, const float *x, float *col) {
    im2col_rows(s, 0, Ho, Wo, x, col);
}

/* The forward's column matrix is made a band of output rows at a time, so that its memory
 * stays bounded (a whole 512x512 image of 256 channels would be 2.4 GB). 256 MB per band:
 * sadm bench vae at 256x256 on 2 threads (Xeon, SkylakeX kernels) encoded at 0.92x of
 * diffusers with it, 0.71-0.74x with 32 MB bands and 0.88x with no band at all.
 * SADM_CONV_BAND_MB overrides it (machines short of memory; the tests' band crossing). */
#define CONV_BAND_BYTES_DEFAULT ((size_t)256 << 20)

static size_t conv_band_bytes(void) {
    const char *env = getenv("SADM_CONV_BAND_MB");
    if (env && *env) {
        char *end;
        unsigned long mb = strtoul(env, &end, 10);
        if (*end == '\0' && mb >= 1 && mb <= 65536) return (size_t)mb << 20;
    }
    return CONV_BAND_BYTES_DEFAULT;
}

/* dx[c, ...] += col entries that came from it; threads own channels. */
static void col2im(const sadm_conv2d_shape *s, int Ho, int Wo, const float *col, float *dx) {
    size_t P = (size_t)Ho * Wo;
#pragma omp parallel for schedule(static)
    for (int c = 0; c < s->C; c++)
        for (int ki = 0; ki < s->kh; ki++)
            for (int kj = 0; kj < s->kw; kj++) {
                const float *row = col + (((size_t)c * s->kh + ki) * s->kw + kj) * P;
                for (int oy = 0; oy < Ho; oy++) {
                    int iy = oy * s->sh - s->ph + ki;
                    if (iy < 0 || iy >= s->H) continue;
                    float *xr = dx + ((size_t)c * s->H + iy) * s->W;
                    for (int ox = 0; ox < Wo; ox++) {
                        int ix = ox * s->sw - s->pw + kj;
                        if (ix >= 0 && ix < s->W) xr[ix] += row[(size_t)oy * Wo + ox];
                    }
                }
            }
}

/* A 1×1 convolution with stride 1 and no padding needs no im2col: the image is the matrix. */
static int is_pointwise(const sadm_conv2d_shape *s) {
    return s->kh == 1 && s->kw == 1 && s->sh == 1 && s->sw == 1 && s->ph == 0 && s->pw == 0 && s->eh == 0 && s->ew == 0;
}

sadm_status sadm_conv2d_forward(const sadm_conv2d_shape *s, const float *x, const float *w, const float *b, float *y) {
    int Ho, Wo;
    sadm_status st = sadm_conv2d_output_size(s, &Ho, &Wo);
    if (st) return st;
    SADM_REQUIRE_PTR(x);
    SADM_REQUIRE_PTR(w);
    SADM_REQUIRE_PTR(y);
    size_t P = (size_t)Ho * Wo, CK = (size_t)s->C * s->kh * s->kw;
    /* at least 1024 positions per band: narrower GEMMs lose more than the cache gains */
    size_t band_bytes = conv_band_bytes();
    int band = (int)(band_bytes / (CK * Wo * sizeof(float))), min_band = (1024 + Wo - 1) / Wo;
    band = band < min_band ? min_band : band;
    band = band > Ho ? Ho : band;
    sadm_scratch_mark mk = sadm_scratch_mark_get();
    float *col = NULL;
    if (!is_pointwise(s)) {
        col = sadm_scratch_take(CK * band * Wo * sizeof(float));
        if (!col) {
            sadm_scratch_release(mk);
            return sadm_error(SADM_ERR_NOMEM, "sadm_conv2d_forward: out of memory for im2col (%zu floats)",
                              CK * band * Wo);
        }
    }
    for (int n = 0; n < s->N; n++) {
        const float *xn = x + (size_t)n * s->C * s->H * s->W;
        float *yn = y + (size_t)n * s->K * P;
        if (!col) {
            sadm_gemm(SADM_NO_TRANS, SADM_NO_TRANS, s->K, (int)P, (int)CK, 1.0f, w, (int)CK, xn, (int)P, 0.0f, yn, (int)P);
        } else {
            for (int oy0 = 0; oy0 < Ho; oy0 += band) {
                int oy1 = oy0 + band < Ho ? oy0 + band : Ho, pb = (oy1 - oy0) * Wo;
                im2col_rows(s, oy0, oy1, Wo, xn, col);
                sadm_gemm(SADM_NO_TRANS, SADM_NO_TRANS, s->K, pb, (int)CK, 1.0f, w, (int)CK, col, pb, 0.0f,
                          yn + (size_t)oy0 * Wo, (int)P);
            }
        }
        if (b) {
#pragma omp parallel for schedule(static)
            for (int o = 0; o < s->K; o++) {
                float *r = yn + (size_t)o * P;
                for (size_t i = 0; i < P; i++) r[i] += b[o];
            }
        }
    }
    sadm_scratch_release(mk);
    return SADM_OK;
}

sadm_status sadm_conv2d_backward(const sadm_conv2d_shape *s, const float *x, const float *w, const float *dy,
                                 float *dx, float *dw, float *db) {
    int Ho, Wo;
    sadm_status st = sadm_conv2d_output_size(s, &Ho, &Wo);
    if (st) return st;
    SADM_REQUIRE_PTR(dy);
    SADM_REQUIRE(!dw || x, "sadm_conv2d_backward: argument 'x' is NULL but dw is wanted");
    SADM_REQUIRE(!dx || w, "sadm_conv2d_backward: argument 'w' is NULL but dx is wanted");
    size_t P = (size_t)Ho * Wo, CK = (size_t)s->C * s->kh * s->kw;
    int pointwise = is_pointwise(s);
    sadm_scratch_mark mk = sadm_scratch_mark_get();
    float *col = NULL;
    if (!pointwise && (dw || dx)) {
        col = sadm_scratch_take(CK * P * sizeof(float));
        if (!col) {
            sadm_scratch_release(mk);
            return sadm_error(SADM_ERR_NOMEM, "sadm_conv2d_backward: out of memory for im2col (%zu floats)", CK * P);
        }
    }
    const sadm_kernels *k = sadm_kernels_active();
    for (int n = 0; n < s->N; n++) {
        const float *dyn = dy + (size_t)n * s->K * P;
        size_t xoff = (size_t)n * s->C * s->H * s->W;
        if (dw) {
            const float *m = x + xoff;
            if (!pointwise) {
                im2col(s, Ho, Wo, x + xoff, col);
                m = col;
            }
            sadm_gemm(SADM_NO_TRANS, SADM_TRANS, s->K, (int)CK, (int)P, 1.0f, dyn, (int)P, m, (int)P, 1.0f, dw, (int)CK);
        }
        if (db) {
#pragma omp parallel for schedule(static)
            for (int o = 0; o < s->K; o++) db[o] += k->sum(P, dyn + (size_t)o * P);
        }
        if (dx) {
            if (pointwise) {
                sadm_gemm(SADM_TRANS, SADM_NO_TRANS, (int)CK, (int)P, s->K, 1.0f, w, (int)CK, dyn, (int)P, 1.0f,
                          dx + xoff, (int)P);
            } else {
                sadm_gemm(SADM_TRANS, SADM_NO_TRANS, (int)CK, (int)P, s->K, 1.0f, w, (int)CK, dyn, (int)P, 0.0f, col,
                          (int)P);
                col2im(s, Ho, Wo, col, dx + xoff);
            }
        }
    }
    sadm_scratch_release(mk);
    return SADM_OK;
}
