/* The scalar kernel set: the specification of every kernel and the oracle of the tests.
 * Written for clarity, with libm's expf/tanhf, and compiled without vector flags. */
#include <float.h>
#include <math.h>
#include <stddef.h>
#include <string.h>

#include "bf16.h"
#include "kernels.h"

static void add_scalar(size_t n, const float *a, const float *b, float *out) {
    for (size_t i = 0; i < n; i++) out[i] = a[i] + b[i];
}

static void axpy_scalar(size_t n, float a, const float *x, float *y) {
    for (size_t i = 0; i < n; i++) y[i] += a * x[i];
}

static void scale_scalar(size_t n, float *x, float a) {
    for (size_t i = 0; i < n; i++) x[i] *= a;
}

static float sum_scalar(size_t n, const float *x) {
    double s = 0.0;
    for (size_t i = 0; i < n; i++) s += x[i];
    return (float)s;
}

static float dot_scalar(size_t n, const float *a, const float *b) {
    double s = 0.0;
    for (size_t i = 0; i < n; i++) s += (double)a[i] * b[i];
    return (float)s;
}

/* NaN wins: a row with a NaN has a NaN maximum. */
static float max_scalar(size_t n, const float *x) {
    float m = -INFINITY;
    for (size_t i = 0; i < n; i++) {
        if (isnan(x[i])) return x[i];
        if (x[i] > m) m = x[i];
    }
    return m;
}

#define GELU_K0 0.7978845608028654f /* sqrt(2/pi) */
#define GELU_K1 0.044715f

static void gelu_scalar(size_t n, const float *x, float *y) {
    for (size_t i = 0; i < n; i++) {
        float v = x[i];
        float u = GELU_K0 * (v + GELU_K1 * v * v * v);
        y[i] = 0.5f * v * (1.0f + tanhf(u));
    }
}

static void gelu_backward_scalar(size_t n, const float *x, const float *dy, float *dx) {
    for (size_t i = 0; i < n; i++) {
        float v = x[i];
        float u = GELU_K0 * (v + GELU_K1 * v * v * v);
        float th = tanhf(u);
        float du = GELU_K0 * (1.0f + 3.0f * GELU_K1 * v * v);
        float d = 0.5f * (1.0f + th) + 0.5f * v * (1.0f - th * th) * du;
        dx[i] += dy[i] * d;
    }
}

static void silu_scalar(size_t n, const float *x, float *y) {
    for (size_t i = 0; i < n; i++) y[i] = x[i] / (1.0f + expf(-x[i]));
}

static void silu_backward_scalar(size_t n, const float *x, const float *dy, float *dx) {
    for (size_t i = 0; i < n; i++) {
        float s = 1.0f / (1.0f + expf(-x[i]));
        dx[i] += dy[i] * s * (1.0f + x[i] * (1.0f - s));
    }
}

static float exp_shifted_scalar(size_t n, const float *x, float m, float *y) {
    double s = 0.0;
    for (size_t i = 0; i < n; i++) {
        y[i] = expf(x[i] - m);
        s += y[i];
    }
    return (float)s;
}

static void softmax_scalar(size_t n, const float *x, float *y) {
    float m = max_scalar(n, x);
    float s = exp_shifted_scalar(n, x, m, y);
    float inv = 1.0f / s;
    for (size_t i = 0; i < n; i++) y[i] *= inv;
}

static void softmax_backward_scalar(size_t n, const float *y, const float *dy, float *dx) {
    float s = dot_scalar(n, y, dy);
    for (size_t i = 0; i < n; i++) dx[i] += y[i] * (dy[i] - s);
}

static void mean_rstd_scalar(size_t n, const float *x, float eps, float *mean_out, float *rstd_out) {
    double s = 0.0;
    for (size_t i = 0; i < n; i++) s += x[i];
    float mean = (float)(s / (double)n);
    double ss = 0.0;
    for (size_t i = 0; i < n; i++) {
        double d = (double)x[i] - mean;
        ss += d * d;
    }
    *mean_out = mean;
    *rstd_out = 1.0f / sqrtf((float)(ss / (double)n) + eps);
}

static void layernorm_scalar(size_t n, const float *x, const float *w, const float *b, float eps,
                             float *y, float *mean_out, float *rstd_out) {
    float mean, rstd;
    mean_rstd_scalar(n, x, eps, &mean, &rstd);
    for (size_t i = 0; i < n; i++) {
        float v = (x[i] - mean) * rstd;
        if (w) v *= w[i];
        if (b) v += b[i];
        y[i] = v;
    }
    if (mean_out) *mean_out = mean;
    if (rstd_out) *rstd_out = rstd;
}

/* With xhat = (x - mean) rstd and g = dy * w:
 * dx = rstd (g - mean(g) - xhat mean(g xhat)). */
static void layernorm_backward_scalar(size_t n, const float *x, const float *w, float mean, float rstd,
                                      const float *dy, float *dx, float *dw, float *db) {
    double sg = 0.0, sgx = 0.0;
    for (size_t i = 0; i < n; i++) {
        float xhat = (x[i] - mean) * rstd;
        float g = w ? dy[i] * w[i] : dy[i];
        sg += g;
        sgx += (double)g * xhat;
    }
    float mg = (float)(sg / (double)n), mgx = (float)(sgx / (double)n);
    for (size_t i = 0; i < n; i++) {
        float xhat = (x[i] - mean) * rstd;
        float g = w ? dy[i] * w[i] : dy[i];
        if (dx) dx[i] += rstd * (g - mg - xhat * mgx);
        if (dw) dw[i] += dy[i] * xhat;
        if (db) db[i] += dy[i];
    }
}

static void norm_affine_scalar(size_t n, const float *x, float mean, float rstd, float w, float b, float *y) {
    for (size_t i = 0; i < n; i++) y[i] = (x[i] - mean) * rstd * w + b;
}

static void norm_sums_scalar(size_t n, const float *x, const float *dy, float mean, float rstd, float *sdy,
                             float *sdyx) {
    double s = 0.0, sx = 0.0;
    for (size_t i = 0; i < n; i++) {
        s += dy[i];
        sx += (double)dy[i] * ((x[i] - mean) * rstd);
    }
    *sdy = (float)s, *sdyx = (float)sx;
}

static void norm_dx_scalar(size_t n, const float *x, const float *dy, float mean, float rstd, float w, float mg,
                           float mgx, float *dx) {
    for (size_t i = 0; i < n; i++) {
        float xhat = (x[i] - mean) * rstd;
        dx[i] += rstd * (w * dy[i] - mg - xhat * mgx);
    }
}

static void modulate_scalar(size_t n, const float *x, const float *shift, const float *scale, float *y) {
    for (size_t i = 0; i < n; i++) y[i] = x[i] * (1.0f + scale[i]) + shift[i];
}

static void modulate_backward_scalar(size_t n, const float *x, const float *scale, const float *dy,
                                     float *dx, float *dshift, float *dscale) {
    for (size_t i = 0; i < n; i++) {
        if (dx) dx[i] += dy[i] * (1.0f + scale[i]);
        if (dshift) dshift[i] += dy[i];
        if (dscale) dscale[i] += dy[i] * x[i];
    }
}

static void gated_add_scalar(size_t n, const float *x, const float *g, const float *y, float *out) {
    for (size_t i = 0; i < n; i++) out[i] = x[i] + g[i] * y[i];
}

static void gated_add_backward_scalar(size_t n, const float *g, const float *y, const float *dout,
                                      float *dx, float *dg, float *dy) {
    for (size_t i = 0; i < n; i++) {
        if (dx) dx[i] += dout[i];
        if (dy) dy[i] += g[i] * dout[i];
        if (dg) dg[i] += dout[i] * y[i];
    }
}

static void adamw_scalar(size_t n, float *p, const float *g, float *m, float *v, float lr, float beta1,
                         float beta2, float eps, float weight_decay, float step_size, float bc2_sqrt) {
    float decay = 1.0f - lr * weight_decay;
    for (size_t i = 0; i < n; i++) {
        float gi = g[i];
        float pi = p[i] * decay;
        m[i] = m[i] * beta1 + (1.0f - beta1) * gi;
        v[i] = v[i] * beta2 + (1.0f - beta2) * gi * gi;
        float denom = sqrtf(v[i]) / bc2_sqrt + eps;
        p[i] = pi - step_size * (m[i] / denom);
    }
}

static void ema_scalar(size_t n, float *ema, const float *p, float decay) {
    for (size_t i = 0; i < n; i++) ema[i] = ema[i] * decay + (1.0f - decay) * p[i];
}

/* ---- bf16 GEMM (simd/bf16.h): the specification, in the two-word layout (its packing
 * is simd/bf16.h's, shared with the vector sets that multiply in fp32) */

static float word_as_float(uint32_t w) {
    float f;
    memcpy(&f, &w, sizeof f);
    return f;
}

/* flush-to-zero of a sum, as VDPBF16PS does */
static float ftz(float x) { return fabsf(x) < FLT_MIN ? copysignf(0.0f, x) : x; }

static void bf16_tile_scalar(size_t kp, const uint32_t *a, const uint32_t *b, float alpha, float beta, float *c,
                             size_t ldc, int mr, int nr) {
    const int MR = SADM_BF16_MR, NR = SADM_BF16_NR;
    for (int i = 0; i < mr; i++)
        for (int j = 0; j < nr; j++) {
            float acc = 0.0f;
            for (size_t p = 0; p < kp; p++) {
                const uint32_t *ap = a + p * 2 * MR, *bp = b + p * 2 * NR;
                acc = ftz(fmaf(word_as_float(ap[i]), word_as_float(bp[j]), acc));           /* k = 2p+1 */
                acc = ftz(fmaf(word_as_float(ap[MR + i]), word_as_float(bp[NR + j]), acc)); /* k = 2p */
            }
            float *cij = c + (size_t)i * ldc + j;
            *cij = beta != 0.0f ? fmaf(beta, *cij, alpha * acc) : alpha * acc;
        }
}

const sadm_kernels sadm_kernels_scalar = {
    .name = "scalar",
    .add = add_scalar,
    .axpy = axpy_scalar,
    .scale = scale_scalar,
    .sum = sum_scalar,
    .dot = dot_scalar,
    .max = max_scalar,
    .gelu = gelu_scalar,
    .gelu_backward = gelu_backward_scalar,
    .silu = silu_scalar,
    .silu_backward = silu_backward_scalar,
    .exp_shifted = exp_shifted_scalar,
    .softmax = softmax_scalar,
    .softmax_backward = softmax_backward_scalar,
    .layernorm = layernorm_scalar,
    .layernorm_backward = layernorm_backward_scalar,
    .mean_rstd = mean_rstd_scalar,
    .norm_affine = norm_affine_scalar,
    .norm_sums = norm_sums_scalar,
    .norm_dx = norm_dx_scalar,
    .modulate = modulate_scalar,
    .modulate_backward = modulate_backward_scalar,
    .gated_add = gated_add_scalar,
    .gated_add_backward = gated_add_backward_scalar,
    .adamw = adamw_scalar,
    .ema = ema_scalar,
    .bf16_words = 2,
    .bf16_convert = sadm_bf16_convert_two_words,
    .bf16_pair_rows = sadm_bf16_pair_rows_two_words,
    .bf16_tile = bf16_tile_scalar,
};
