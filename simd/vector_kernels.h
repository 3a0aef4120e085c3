/* The vector kernel set, written once against a small set of mappings that each ISA
 * file defines before including this file (as ggml's simd-mappings):
 *
 *   VW                       lanes per vector          vf   the vector type
 *   V_LOAD(p) V_STORE(p, v)  unaligned load / store   V_SET1(x)  broadcast
 *   V_ADD V_SUB V_MUL V_DIV  lane-wise arithmetic      V_SQRT(a)
 *   V_FMA(a, b, c)           a*b + c                   V_FNMA(a, b, c)  c - a*b
 *   V_MIN(c, x) V_MAX(c, x)  with a NaN in x kept (x is the second operand)
 *   V_MAX_NAN(a, b)          maximum that keeps a NaN from either side
 *   V_ROUND(a) V_FLOOR(a)    to nearest-even / down, as floats
 *   V_POW2I(k)               2^k for whole-number k in [-126, 127]
 *   V_HSUM(a)                sum of the lanes, in the ISA's fixed order
 *   V_FTZ_BEGIN V_FTZ_END    flush denormal results to zero in between (the bf16 tile)
 *   KERNELS_NAME, KERNELS_STRING   the table's C name and its display name
 *   BF16_NATIVE              (optional) BF16_WORDS, BF16_CONVERT, BF16_PAIR_ROWS and
 *                            BF16_TILE are defined: the table takes them instead of the
 *                            two-word layout and the fp32-FMA tile
 *
 * Tails shorter than a vector go through a stack buffer, so every element is
 * computed by the same instructions whatever its position. The math functions are
 * Cephes-style polynomials (relative error about 2 ulp), not libm: results agree with
 * the scalar reference within the tolerances the tests state, not bitwise. */
#include <math.h>
#include <stddef.h>
#include <string.h>

#include "bf16.h"
#include "kernels.h"

static inline vf load_n(const float *p, size_t k, float fill) {
    if (k >= VW) return V_LOAD(p);
    float b[VW];
    for (size_t j = 0; j < VW; j++) b[j] = j < k ? p[j] : fill;
    return V_LOAD(b);
}

static inline void store_n(float *p, vf v, size_t k) {
    if (k >= VW) {
        V_STORE(p, v);
        return;
    }
    float b[VW];
    V_STORE(b, v);
    memcpy(p, b, k * sizeof(float));
}

#define LANES_LEFT(n, i) ((n) - (i) < VW ? (n) - (i) : VW)

/* exp(x): x = n ln2 + r, |r| <= ln2/2, e^r by a degree-7 polynomial, 2^n applied in two
 * halves so that results down to the denormal range and up to FLT_MAX are right. */
static inline vf v_exp(vf x) {
    x = V_MIN(V_SET1(88.8f), x);
    x = V_MAX(V_SET1(-104.0f), x);
    vf fx = V_ROUND(V_MUL(x, V_SET1(1.44269504088896341f)));
    vf r = V_FNMA(fx, V_SET1(0.693359375f), x);
    r = V_FNMA(fx, V_SET1(-2.12194440e-4f), r);
    vf p = V_SET1(1.9875691500e-4f);
    p = V_FMA(p, r, V_SET1(1.3981999507e-3f));
    p = V_FMA(p, r, V_SET1(8.3334519073e-3f));
    p = V_FMA(p, r, V_SET1(4.1665795894e-2f));
    p = V_FMA(p, r, V_SET1(1.6666665459e-1f));
    p = V_FMA(p, r, V_SET1(5.0000001201e-1f));
    p = V_FMA(p, V_MUL(r, r), V_ADD(r, V_SET1(1.0f)));
    vf n1 = V_FLOOR(V_MUL(fx, V_SET1(0.5f)));
    vf n2 = V_SUB(fx, n1);
    return V_MUL(V_MUL(p, V_POW2I(n1)), V_POW2I(n2));
}

/* 1 / (1 + exp(-x)) */
static inline vf v_sigmoid(vf x) {
    vf one = V_SET1(1.0f);
    return V_DIV(one, V_ADD(one, v_exp(V_SUB(V_SET1(0.0f), x))));
}

static void add_v(size_t n, const float *a, const float *b, float *out) {
    for (size_t i = 0; i < n; i += VW) {
        size_t k = LANES_LEFT(n, i);
        store_n(out + i, V_ADD(load_n(a + i, k, 0), load_n(b + i, k, 0)), k);
    }
}

static void axpy_v(size_t n, float a, const float *x, float *y) {
    vf va = V_SET1(a);
    for (size_t i = 0; i < n; i += VW) {
        size_t k = LANES_LEFT(n, i);
        store_n(y + i, V_FMA(va, load_n(x + i, k, 0), load_n(y + i, k, 0)), k);
    }
}

static void scale_v(size_t n, float *x, float a) {
    vf va = V_SET1(a);
    for (size_t i = 0; i < n; i += VW) {
        size_t k = LANES_LEFT(n, i);
        store_n(x + i, V_MUL(va, load_n(x + i, k, 0)), k);
    }
}

/* Four accumulators over blocks of 4 vectors, then one for the rest; fixed order. */
static float sum_v(size_t n, const float *x) {
    vf a0 = V_SET1(0), a1 = V_SET1(0), a2 = V_SET1(0), a3 = V_SET1(0);
    size_t i = 0;
    for (; i + 4 * VW <= n; i += 4 * VW) {
        a0 = V_ADD(a0, V_LOAD(x + i));
        a1 = V_ADD(a1, V_LOAD(x + i + VW));
        a2 = V_ADD(a2, V_LOAD(x + i + 2 * VW));
        a3 = V_ADD(a3, V_LOAD(x + i + 3 * VW));
    }
    for (; i < n; i += VW) a0 = V_ADD(a0, load_n(x + i, LANES_LEFT(n, i), 0));
    return V_HSUM(V_ADD(V_ADD(a0, a1), V_ADD(a2, a3)));
}

static float dot_v(size_t n, const float *a, const float *b) {
    vf a0 = V_SET1(0), a1 = V_SET1(0), a2 = V_SET1(0), a3 = V_SET1(0);
    size_t i = 0;
    for (; i + 4 * VW <= n; i += 4 * VW) {
        a0 = V_FMA(V_LOAD(a + i), V_LOAD(b + i), a0);
        a1 = V_FMA(V_LOAD(a + i + VW), V_LOAD(b + i + VW), a1);
        a2 = V_FMA(V_LOAD(a + i + 2 * VW), V_LOAD(b + i + 2 * VW), a2);
        a3 = V_FMA(V_LOAD(a + i + 3 * VW), V_LOAD(b + i + 3 * VW), a3);
    }
    for (; i < n; i += VW) {
        size_t k = LANES_LEFT(n, i);
        a0 = V_FMA(load_n(a + i, k, 0), load_n(b + i, k, 0), a0);
    }
    return V_HSUM(V_ADD(V_ADD(a0, a1), V_ADD(a2, a3)));
}

static float max_v(size_t n, const float *x) {
    vf m = V_SET1(-INFINITY);
    for (size_t i = 0; i < n; i += VW) m = V_MAX_NAN(m, load_n(x + i, LANES_LEFT(n, i), -INFINITY));
    float b[VW];
    V_STORE(b, m);
    float r = b[0];
    for (size_t j = 1; j < VW; j++) {
        if (isnan(b[j]) || b[j] > r) r = b[j];
        if (isnan(r)) break;
    }
    return r;
}

#define GELU_K0 0.7978845608028654f /* sqrt(2/pi) */
#define GELU_K1 0.044715f

/* 0.5 (1 + tanh(u)) = sigmoid(2u), so gelu(x) = x sigmoid(2u). */
static void gelu_v(size_t n, const float *x, float *y) {
    for (size_t i = 0; i < n; i += VW) {
        size_t k = LANES_LEFT(n, i);
        vf v = load_n(x + i, k, 0);
        vf v3 = V_MUL(V_MUL(v, v), v);
        vf u2 = V_MUL(V_SET1(2.0f * GELU_K0), V_FMA(V_SET1(GELU_K1), v3, v));
        store_n(y + i, V_MUL(v, v_sigmoid(u2)), k);
    }
}

/* With s = sigmoid(2u): d/dx = s + 2 x s (1 - s) u'(x). */
static void gelu_backward_v(size_t n, const float *x, const float *dy, float *dx) {
    vf one = V_SET1(1.0f);
    for (size_t i = 0; i < n; i += VW) {
        size_t k = LANES_LEFT(n, i);
        vf v = load_n(x + i, k, 0);
        vf vv = V_MUL(v, v);
        vf u2 = V_MUL(V_SET1(2.0f * GELU_K0), V_FMA(V_SET1(GELU_K1), V_MUL(vv, v), v));
        vf s = v_sigmoid(u2);
        vf du = V_MUL(V_SET1(GELU_K0), V_FMA(V_SET1(3.0f * GELU_K1), vv, one));
        vf d = V_FMA(V_MUL(V_MUL(V_SET1(2.0f), v), V_MUL(s, V_SUB(one, s))), du, s);
        store_n(dx + i, V_FMA(load_n(dy + i, k, 0), d, load_n(dx + i, k, 0)), k);
    }
}

static void silu_v(size_t n, const float *x, float *y) {
    for (size_t i = 0; i < n; i += VW) {
        size_t k = LANES_LEFT(n, i);
        vf v = load_n(x + i, k, 0);
        store_n(y + i, V_MUL(v, v_sigmoid(v)), k);
    }
}

static void silu_backward_v(size_t n, const float *x, const float *dy, float *dx) {
    vf one = V_SET1(1.0f);
    for (size_t i = 0; i < n; i += VW) {
        size_t k = LANES_LEFT(n, i);
        vf v = load_n(x + i, k, 0);
        vf s = v_sigmoid(v);
        vf d = V_MUL(s, V_FMA(v, V_SUB(one, s), one));
        store_n(dx + i, V_FMA(load_n(dy + i, k, 0), d, load_n(dx + i, k, 0)), k);
    }
}

static float exp_shifted_v(size_t n, const float *x, float m, float *y) {
    vf vm = V_SET1(m), acc = V_SET1(0);
    size_t i = 0;
    for (; i + VW <= n; i += VW) {
        vf e = v_exp(V_SUB(V_LOAD(x + i), vm));
        V_STORE(y + i, e);
        acc = V_ADD(acc, e);
    }
    if (i < n) {
        size_t k = n - i;
        /* padded lanes are exp(-inf) = 0 and do not change the sum */
        vf e = v_exp(V_SUB(load_n(x + i, k, -INFINITY), vm));
        store_n(y + i, e, k);
        acc = V_ADD(acc, e);
    }
    return V_HSUM(acc);
}

static void softmax_v(size_t n, const float *x, float *y) {
    float m = max_v(n, x);
    float s = exp_shifted_v(n, x, m, y);
    scale_v(n, y, 1.0f / s);
}

static void softmax_backward_v(size_t n, const float *y, const float *dy, float *dx) {
    vf s = V_SET1(dot_v(n, y, dy));
    for (size_t i = 0; i < n; i += VW) {
        size_t k = LANES_LEFT(n, i);
        vf vy = load_n(y + i, k, 0);
        store_n(dx + i, V_FMA(vy, V_SUB(load_n(dy + i, k, 0), s), load_n(dx + i, k, 0)), k);
    }
}

static void mean_rstd_v(size_t n, const float *x, float eps, float *mean_out, float *rstd_out) {
    float mean = sum_v(n, x) / (float)n;
    vf vm = V_SET1(mean), acc = V_SET1(0);
    for (size_t i = 0; i < n; i += VW) {
        size_t k = LANES_LEFT(n, i);
        vf d = V_SUB(load_n(x + i, k, mean), vm); /* padded lanes give 0 */
        acc = V_FMA(d, d, acc);
    }
    *mean_out = mean;
    *rstd_out = 1.0f / sqrtf(V_HSUM(acc) / (float)n + eps);
}

static void layernorm_v(size_t n, const float *x, const float *w, const float *b, float eps,
                        float *y, float *mean_out, float *rstd_out) {
    float mean, rstd;
    mean_rstd_v(n, x, eps, &mean, &rstd);
    vf vm = V_SET1(mean), vr = V_SET1(rstd);
    for (size_t i = 0; i < n; i += VW) {
        size_t k = LANES_LEFT(n, i);
        vf v = V_MUL(V_SUB(load_n(x + i, k, 0), vm), vr);
        if (w) v = V_MUL(v, load_n(w + i, k, 0));
        if (b) v = V_ADD(v, load_n(b + i, k, 0));
        store_n(y + i, v, k);
    }
    if (mean_out) *mean_out = mean;
    if (rstd_out) *rstd_out = rstd;
}

static void layernorm_backward_v(size_t n, const float *x, const float *w, float mean, float rstd,
                                 const float *dy, float *dx, float *dw, float *db) {
    vf vm = V_SET1(mean), vr = V_SET1(rstd), sg = V_SET1(0), sgx = V_SET1(0);
    for (size_t i = 0; i < n; i += VW) {
        size_t k = LANES_LEFT(n, i);
        vf xhat = V_MUL(V_SUB(load_n(x + i, k, 0), vm), vr);
        vf g = load_n(dy + i, k, 0);
        if (w) g = V_MUL(g, load_n(w + i, k, 0));
        sg = V_ADD(sg, g);
        sgx = V_FMA(g, xhat, sgx);
    }
    vf mg = V_SET1(V_HSUM(sg) / (float)n), mgx = V_SET1(V_HSUM(sgx) / (float)n);
    for (size_t i = 0; i < n; i += VW) {
        size_t k = LANES_LEFT(n, i);
        vf xhat = V_MUL(V_SUB(load_n(x + i, k, 0), vm), vr);
        vf d = load_n(dy + i, k, 0);
        if (dx) {
            vf g = w ? V_MUL(d, load_n(w + i, k, 0)) : d;
            vf t = V_FNMA(xhat, mgx, V_SUB(g, mg));
            store_n(dx + i, V_FMA(vr, t, load_n(dx + i, k, 0)), k);
        }
        if (dw) store_n(dw + i, V_FMA(d, xhat, load_n(dw + i, k, 0)), k);
        if (db) store_n(db + i, V_ADD(d, load_n(db + i, k, 0)), k);
    }
}

static void norm_affine_v(size_t n, const float *x, float mean, float rstd, float w, float b, float *y) {
    vf vm = V_SET1(mean), vs = V_SET1(rstd * w), vb = V_SET1(b);
    for (size_t i = 0; i < n; i += VW) {
        size_t k = LANES_LEFT(n, i);
        store_n(y + i, V_FMA(V_SUB(load_n(x + i, k, 0), vm), vs, vb), k);
    }
}

static void norm_sums_v(size_t n, const float *x, const float *dy, float mean, float rstd, float *sdy, float *sdyx) {
    vf vm = V_SET1(mean), vr = V_SET1(rstd), s = V_SET1(0), sx = V_SET1(0);
    for (size_t i = 0; i < n; i += VW) {
        size_t k = LANES_LEFT(n, i);
        vf d = load_n(dy + i, k, 0); /* padded lanes: dy 0 adds nothing */
        s = V_ADD(s, d);
        sx = V_FMA(d, V_MUL(V_SUB(load_n(x + i, k, 0), vm), vr), sx);
    }
    *sdy = V_HSUM(s), *sdyx = V_HSUM(sx);
}

static void norm_dx_v(size_t n, const float *x, const float *dy, float mean, float rstd, float w, float mg, float mgx,
                      float *dx) {
    vf vm = V_SET1(mean), vr = V_SET1(rstd), vw = V_SET1(w), vmg = V_SET1(mg), vmgx = V_SET1(mgx);
    for (size_t i = 0; i < n; i += VW) {
        size_t k = LANES_LEFT(n, i);
        vf xhat = V_MUL(V_SUB(load_n(x + i, k, 0), vm), vr);
        vf t = V_FNMA(xhat, vmgx, V_SUB(V_MUL(vw, load_n(dy + i, k, 0)), vmg));
        store_n(dx + i, V_FMA(vr, t, load_n(dx + i, k, 0)), k);
    }
}

static void modulate_v(size_t n, const float *x, const float *shift, const float *scale, float *y) {
    vf one = V_SET1(1.0f);
    for (size_t i = 0; i < n; i += VW) {
        size_t k = LANES_LEFT(n, i);
        vf s1 = V_ADD(one, load_n(scale + i, k, 0));
        store_n(y + i, V_FMA(load_n(x + i, k, 0), s1, load_n(shift + i, k, 0)), k);
    }
}

static void modulate_backward_v(size_t n, const float *x, const float *scale, const float *dy,
                                float *dx, float *dshift, float *dscale) {
    vf one = V_SET1(1.0f);
    for (size_t i = 0; i < n; i += VW) {
        size_t k = LANES_LEFT(n, i);
        vf d = load_n(dy + i, k, 0);
        if (dx) store_n(dx + i, V_FMA(d, V_ADD(one, load_n(scale + i, k, 0)), load_n(dx + i, k, 0)), k);
        if (dshift) store_n(dshift + i, V_ADD(d, load_n(dshift + i, k, 0)), k);
        if (dscale) store_n(dscale + i, V_FMA(d, load_n(x + i, k, 0), load_n(dscale + i, k, 0)), k);
    }
}

static void gated_add_v(size_t n, const float *x, const float *g, const float *y, float *out) {
    for (size_t i = 0; i < n; i += VW) {
        size_t k = LANES_LEFT(n, i);
        store_n(out + i, V_FMA(load_n(g + i, k, 0), load_n(y + i, k, 0), load_n(x + i, k, 0)), k);
    }
}

static void gated_add_backward_v(size_t n, const float *g, const float *y, const float *dout,
                                 float *dx, float *dg, float *dy) {
    for (size_t i = 0; i < n; i += VW) {
        size_t k = LANES_LEFT(n, i);
        vf d = load_n(dout + i, k, 0);
        if (dx) store_n(dx + i, V_ADD(d, load_n(dx + i, k, 0)), k);
        if (dy) store_n(dy + i, V_FMA(load_n(g + i, k, 0), d, load_n(dy + i, k, 0)), k);
        if (dg) store_n(dg + i, V_FMA(d, load_n(y + i, k, 0), load_n(dg + i, k, 0)), k);
    }
}

static void adamw_v(size_t n, float *p, const float *g, float *m, float *v, float lr, float beta1,
                    float beta2, float eps, float weight_decay, float step_size, float bc2_sqrt) {
    vf decay = V_SET1(1.0f - lr * weight_decay), b1 = V_SET1(beta1), b2 = V_SET1(beta2);
    vf c1 = V_SET1(1.0f - beta1), c2 = V_SET1(1.0f - beta2), ve = V_SET1(eps);
    vf vbc2 = V_SET1(bc2_sqrt), vstep = V_SET1(step_size);
    for (size_t i = 0; i < n; i += VW) {
        size_t k = LANES_LEFT(n, i);
        vf gi = load_n(g + i, k, 0);
        vf pi = V_MUL(load_n(p + i, k, 0), decay);
        vf mi = V_FMA(c1, gi, V_MUL(load_n(m + i, k, 0), b1));
        vf vi = V_FMA(V_MUL(c2, gi), gi, V_MUL(load_n(v + i, k, 0), b2));
        vf denom = V_ADD(V_DIV(V_SQRT(vi), vbc2), ve);
        store_n(m + i, mi, k);
        store_n(v + i, vi, k);
        store_n(p + i, V_FNMA(vstep, V_DIV(mi, denom), pi), k);
    }
}

static void ema_v(size_t n, float *ema, const float *p, float decay) {
    vf d = V_SET1(decay), c = V_SET1(1.0f - decay);
    for (size_t i = 0; i < n; i += VW) {
        size_t k = LANES_LEFT(n, i);
        store_n(ema + i, V_FMA(c, load_n(p + i, k, 0), V_MUL(load_n(ema + i, k, 0), d)), k);
    }
}

/* ---- bf16 GEMM tile with fp32 FMAs (simd/bf16.h), two-word layout: the product of two
 * bf16 values is exact in fp32, so an FMA under flush-to-zero adds it exactly as
 * VDPBF16PS does. Rows go in groups that keep the accumulators in registers. */
#ifndef BF16_NATIVE
#define BF16_NV (SADM_BF16_NR / VW)
#define BF16_RG (VW == 16 ? 6 : 2)
_Static_assert(SADM_BF16_MR % BF16_RG == 0, "row groups must tile the strip");

static void bf16_tile_v(size_t kp, const uint32_t *a, const uint32_t *b, float alpha, float beta, float *c, size_t ldc,
                        int mr, int nr) {
    const int MR = SADM_BF16_MR, NR = SADM_BF16_NR;
    const float *af = (const float *)a, *bf = (const float *)b;
    for (int i0 = 0; i0 < mr; i0 += BF16_RG) {
        vf acc[BF16_RG][BF16_NV];
        for (int r = 0; r < BF16_RG; r++)
            for (int v = 0; v < BF16_NV; v++) acc[r][v] = V_SET1(0.0f);
        V_FTZ_BEGIN;
        for (size_t p = 0; p < kp; p++) {
            const float *ap = af + p * 2 * MR + i0, *bp = bf + p * 2 * NR;
            for (int half = 0; half < 2; half++) { /* k = 2p+1, then k = 2p */
                vf bv[BF16_NV];
                for (int v = 0; v < BF16_NV; v++) bv[v] = V_LOAD(bp + half * NR + v * VW);
                for (int r = 0; r < BF16_RG; r++) {
                    vf av = V_SET1(ap[half * MR + r]);
                    for (int v = 0; v < BF16_NV; v++) acc[r][v] = V_FMA(av, bv[v], acc[r][v]);
                }
            }
        }
        V_FTZ_END;
        vf va = V_SET1(alpha), vb = V_SET1(beta);
        for (int r = 0; r < BF16_RG && i0 + r < mr; r++) {
            float *crow = c + (size_t)(i0 + r) * ldc;
            for (int v = 0; v < BF16_NV && v * VW < nr; v++) {
                size_t k = (size_t)(nr - v * VW);
                vf out = V_MUL(va, acc[r][v]);
                if (beta != 0.0f) out = V_FMA(vb, load_n(crow + v * VW, k, 0), out);
                store_n(crow + v * VW, out, k);
            }
        }
    }
}

#define BF16_WORDS 2
#define BF16_CONVERT sadm_bf16_convert_two_words
#define BF16_PAIR_ROWS sadm_bf16_pair_rows_two_words
#define BF16_TILE bf16_tile_v
#endif

const sadm_kernels KERNELS_NAME = {
    .name = KERNELS_STRING,
    .add = add_v,
    .axpy = axpy_v,
    .scale = scale_v,
    .sum = sum_v,
    .dot = dot_v,
    .max = max_v,
    .gelu = gelu_v,
    .gelu_backward = gelu_backward_v,
    .silu = silu_v,
    .silu_backward = silu_backward_v,
    .exp_shifted = exp_shifted_v,
    .softmax = softmax_v,
    .softmax_backward = softmax_backward_v,
    .layernorm = layernorm_v,
    .layernorm_backward = layernorm_backward_v,
    .mean_rstd = mean_rstd_v,
    .norm_affine = norm_affine_v,
    .norm_sums = norm_sums_v,
    .norm_dx = norm_dx_v,
    .modulate = modulate_v,
    .modulate_backward = modulate_backward_v,
    .gated_add = gated_add_v,
    .gated_add_backward = gated_add_backward_v,
    .adamw = adamw_v,
    .ema = ema_v,
    .bf16_words = BF16_WORDS,
    .bf16_convert = BF16_CONVERT,
    .bf16_pair_rows = BF16_PAIR_ROWS,
    .bf16_tile = BF16_TILE,
};
