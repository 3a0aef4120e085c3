/* The per-ISA kernel table: leaf functions over pointers and sizes, no threads, no
 * allocation. simd/scalar.c is the specification of every entry; simd/avx2.c,
 * simd/avx512.c and simd/neon.c build simd/vector_kernels.h against their own vector
 * mappings. lib/dispatch.c picks one table at start-up. */
#ifndef SADM_SIMD_KERNELS_H
#define SADM_SIMD_KERNELS_H

#include <stddef.h>
#include <stdint.h>

typedef struct sadm_kernels {
    const char *name;
    /* out = a + b */
    void (*add)(size_t n, const float *a, const float *b, float *out);
    /* y += a * x */
    void (*axpy)(size_t n, float a, const float *x, float *y);
    /* x *= a */
    void (*scale)(size_t n, float *x, float a);
    /* sums over n elements, in the kernel set's own fixed order */
    float (*sum)(size_t n, const float *x);
    float (*dot)(size_t n, const float *a, const float *b);
    float (*max)(size_t n, const float *x);

    void (*gelu)(size_t n, const float *x, float *y);
    /* dx += dy * gelu'(x) */
    void (*gelu_backward)(size_t n, const float *x, const float *dy, float *dx);
    void (*silu)(size_t n, const float *x, float *y);
    void (*silu_backward)(size_t n, const float *x, const float *dy, float *dx);
    /* y = exp(x - m); returns the sum of y */
    float (*exp_shifted)(size_t n, const float *x, float m, float *y);

    /* one softmax row */
    void (*softmax)(size_t n, const float *x, float *y);
    /* dx += y * (dy - sum(dy * y)) */
    void (*softmax_backward)(size_t n, const float *y, const float *dy, float *dx);

    /* one layer-norm row; w, b may be NULL */
    void (*layernorm)(size_t n, const float *x, const float *w, const float *b, float eps,
                      float *y, float *mean, float *rstd);
    /* one row of the layer-norm backward: dx += ...; dw += dy*xhat, db += dy when non-NULL */
    void (*layernorm_backward)(size_t n, const float *x, const float *w, float mean, float rstd,
                               const float *dy, float *dx, float *dw, float *db);

    /* mean and 1/sqrt(var + eps) of n values (the layer-norm statistics) */
    void (*mean_rstd)(size_t n, const float *x, float eps, float *mean, float *rstd);
    /* one channel of a group norm: y = (x - mean) * rstd * w + b */
    void (*norm_affine)(size_t n, const float *x, float mean, float rstd, float w, float b, float *y);
    /* one channel of the group-norm backward: *sdy = sum dy, *sdyx = sum dy * xhat, with
     * xhat = (x - mean) * rstd */
    void (*norm_sums)(size_t n, const float *x, const float *dy, float mean, float rstd, float *sdy, float *sdyx);
    /* dx += rstd * (w * dy - mg - xhat * mgx) */
    void (*norm_dx)(size_t n, const float *x, const float *dy, float mean, float rstd, float w, float mg, float mgx,
                    float *dx);

    /* one token: y = x * (1 + scale) + shift */
    void (*modulate)(size_t n, const float *x, const float *shift, const float *scale, float *y);
    /* dx += dy * (1 + scale); dshift += dy; dscale += dy * x (each when non-NULL) */
    void (*modulate_backward)(size_t n, const float *x, const float *scale, const float *dy,
                              float *dx, float *dshift, float *dscale);
    /* one token: out = x + g * y */
    void (*gated_add)(size_t n, const float *x, const float *g, const float *y, float *out);
    /* dx += dout; dy += g * dout; dg += dout * y (each when non-NULL) */
    void (*gated_add_backward)(size_t n, const float *g, const float *y, const float *dout,
                               float *dx, float *dg, float *dy);

    /* AdamW over n parameters, as torch.optim.AdamW: step_size = lr / (1 - beta1^t),
     * bc2_sqrt = sqrt(1 - beta2^t) */
    void (*adamw)(size_t n, float *p, const float *g, float *m, float *v, float lr, float beta1,
                  float beta2, float eps, float weight_decay, float step_size, float bc2_sqrt);
    /* ema = decay * ema + (1 - decay) * p */
    void (*ema)(size_t n, float *ema, const float *p, float decay);

    /* bf16 GEMM tiles (lib/gemm_bf16.c; the specification is in simd/bf16.h). A pair of
     * consecutive k (2p, 2p+1) takes bf16_words 32-bit words: 1 = both bf16 in one word,
     * k = 2p in the low half (the AVX512-BF16 layout); 2 = the two bf16 values as fp32 bit
     * patterns, k = 2p+1 first (the layout fp32 FMAs read). */
    int bf16_words;
    /* src[0..n) rounded to bf16 into kp pairs of dst (n <= 2 kp; missing k read as 0) */
    void (*bf16_convert)(size_t n, const float *src, size_t kp, uint32_t *dst);
    /* one pair per r < n from two rows holding k = 2p (even) and k = 2p+1 (odd; NULL: zeros)
     * of n columns each: words w of column r go to dst[w * width + r] (the packing of an
     * operand whose k runs down the rows: no transpose needed) */
    void (*bf16_pair_rows)(size_t n, const float *even, const float *odd, size_t width, uint32_t *dst);
    /* c[mr x nr] = alpha * a b + beta * c (beta == 0: c not read) over kp pairs; a is a
     * strip [kp][words][SADM_BF16_MR], b a panel [kp][words][SADM_BF16_NR], both
     * zero-padded; mr <= SADM_BF16_MR, nr <= SADM_BF16_NR */
    void (*bf16_tile)(size_t kp, const uint32_t *a, const uint32_t *b, float alpha, float beta, float *c, size_t ldc,
                      int mr, int nr);
} sadm_kernels;

extern const sadm_kernels sadm_kernels_scalar;
#ifdef SADM_HAVE_AVX2
extern const sadm_kernels sadm_kernels_avx2;
#endif
#ifdef SADM_HAVE_AVX512
extern const sadm_kernels sadm_kernels_avx512;
#endif
#ifdef SADM_HAVE_AVX512BF16
extern const sadm_kernels sadm_kernels_avx512bf16;
#endif
#ifdef SADM_HAVE_NEON
extern const sadm_kernels sadm_kernels_neon;
#endif

#endif
