/* bf16 GEMM building blocks shared by every kernel set: the rounding of fp32 to bf16, the
 * tile shape and the FTZ rule. The specification, which simd/scalar.c implements and the
 * AVX512-BF16 instruction VDPBF16PS computes (checked on a Zen 4: odd element first, each
 * product added with one rounding, denormal inputs read as zero, denormal sums flushed to
 * zero):
 *
 *   a, b     = bf16(op(A)), bf16(op(B))          round to nearest even, as VCVTNE2PS2BF16
 *   acc(i,j) = 0; for p in 0..ceil(K/2)-1:
 *                 acc = ftz(acc + a(i,2p+1) * b(2p+1,j))
 *                 acc = ftz(acc + a(i,2p)   * b(2p,j))       (k = K reads as 0)
 *   C(i,j)   = fma(beta, C(i,j), alpha * acc)      (beta == 0: C is not read)
 *
 * A product of two bf16 values is exact in fp32 (8 x 8 significant bits) unless it
 * underflows, so "acc + a * b with one rounding" is what an fp32 FMA computes: kernel
 * sets without AVX512-BF16 get the same bits with fp32 FMAs under flush-to-zero. */
#ifndef SADM_SIMD_BF16_H
#define SADM_SIMD_BF16_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

/* C tile of one micro-kernel call: SADM_BF16_MR rows x SADM_BF16_NR columns. */
#define SADM_BF16_MR 12
#define SADM_BF16_NR 32

/* fp32 -> bf16 bits as VCVTNE2PS2BF16: NaN truncated and made quiet, zero and denormals to
 * a signed zero, everything else rounded to nearest even (overflowing to infinity). */
static inline uint16_t sadm_bf16_from_float(float f) {
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    if ((u & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((u >> 16) | 0x40u);
    if ((u & 0x7f800000u) == 0) return (uint16_t)((u >> 16) & 0x8000u);
    u += 0x7fffu + ((u >> 16) & 1u);
    return (uint16_t)(u >> 16);
}

/* the bf16 value as the fp32 bit pattern (exact) */
static inline uint32_t sadm_bf16_bits_as_float_bits(uint16_t h) { return (uint32_t)h << 16; }

/* The two-word layout (fp32 FMAs read it): pair p of src[0..n) as the bit patterns of
 * bf16(src[2p+1]), bf16(src[2p]); missing k read as 0. */
static inline void sadm_bf16_convert_two_words(size_t n, const float *src, size_t kp, uint32_t *dst) {
    for (size_t p = 0; p < kp; p++) {
        float odd = 2 * p + 1 < n ? src[2 * p + 1] : 0.0f, even = 2 * p < n ? src[2 * p] : 0.0f;
        dst[2 * p] = sadm_bf16_bits_as_float_bits(sadm_bf16_from_float(odd));
        dst[2 * p + 1] = sadm_bf16_bits_as_float_bits(sadm_bf16_from_float(even));
    }
}

/* bf16_pair_rows in the two-word layout: word 0 (odd k) at dst[r], word 1 at dst[width + r] */
static inline void sadm_bf16_pair_rows_two_words(size_t n, const float *even, const float *odd, size_t width,
                                                 uint32_t *dst) {
    for (size_t r = 0; r < n; r++) {
        dst[r] = sadm_bf16_bits_as_float_bits(sadm_bf16_from_float(odd ? odd[r] : 0.0f));
        dst[width + r] = sadm_bf16_bits_as_float_bits(sadm_bf16_from_float(even[r]));
    }
}

#endif
