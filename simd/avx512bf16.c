/* AVX-512 kernel set for CPUs with AVX512-BF16 (Zen 4 and later, Cooper Lake, Sapphire
 * Rapids): the avx512 set with the bf16 GEMM tile on VDPBF16PS (32 multiply-adds per
 * instruction, twice the fp32 FMA rate) and the rounding on VCVTNE2PS2BF16. Compiled with
 * the avx512 flags plus -mavx512bf16. Bitwise equal to the scalar specification
 * (simd/bf16.h); tests/test_bf16.c checks it. */
#include "avx512_mappings.h"

#include <stdint.h>

#include "bf16.h"

#define BF16_NATIVE 1
#define BF16_WORDS 1
#define BF16_CONVERT bf16_convert_native
#define BF16_TILE bf16_tile_native
#define BF16_PAIR_ROWS bf16_pair_rows_native

/* 32 floats become 16 words (k even in the low half) per VCVTNE2PS2BF16; the tail is
 * loaded with zeros */
static void bf16_convert_native(size_t n, const float *src, size_t kp, uint32_t *dst) {
    for (size_t p = 0; p < kp; p += 16) {
        size_t k0 = 2 * p;
        size_t left = n > k0 ? n - k0 : 0;
        __mmask16 m_lo = left >= 16 ? 0xffff : (__mmask16)((1u << left) - 1);
        __mmask16 m_hi = left >= 32 ? 0xffff : left > 16 ? (__mmask16)((1u << (left - 16)) - 1) : 0;
        __m512 lo = _mm512_maskz_loadu_ps(m_lo, src + k0), hi = _mm512_maskz_loadu_ps(m_hi, src + k0 + 16);
        __m512i w = (__m512i)_mm512_cvtne2ps_pbh(hi, lo);
        size_t words = kp - p < 16 ? kp - p : 16;
        _mm512_mask_storeu_epi32(dst + p, (__mmask16)((1u << words) - 1), w);
    }
}

/* 16 columns at a time: each row rounded by VCVTNEPS2BF16, the two widened into words */
static void bf16_pair_rows_native(size_t n, const float *even, const float *odd, size_t width, uint32_t *dst) {
    (void)width; /* one word per pair */
    for (size_t r = 0; r < n; r += 16) {
        __mmask16 m = n - r >= 16 ? 0xffff : (__mmask16)((1u << (n - r)) - 1);
        __m256i e = (__m256i)_mm512_cvtneps_pbh(_mm512_maskz_loadu_ps(m, even + r));
        __m256i o = odd ? (__m256i)_mm512_cvtneps_pbh(_mm512_maskz_loadu_ps(m, odd + r)) : _mm256_setzero_si256();
        __m512i w = _mm512_or_si512(_mm512_cvtepu16_epi32(e), _mm512_slli_epi32(_mm512_cvtepu16_epi32(o), 16));
        _mm512_mask_storeu_epi32(dst + r, m, w);
    }
}

/* 12 rows x 32 columns: 24 accumulators, two panel vectors and one broadcast live */
static void bf16_tile_native(size_t kp, const uint32_t *a, const uint32_t *b, float alpha, float beta, float *c,
                             size_t ldc, int mr, int nr) {
    enum { MR = SADM_BF16_MR, NR = SADM_BF16_NR };
    __m512 acc[MR][2];
#pragma GCC unroll 12
    for (int i = 0; i < MR; i++) acc[i][0] = acc[i][1] = _mm512_setzero_ps();
    for (size_t p = 0; p < kp; p++) {
        const uint32_t *ap = a + p * MR;
        __m512bh b0 = (__m512bh)_mm512_loadu_si512(b + p * NR), b1 = (__m512bh)_mm512_loadu_si512(b + p * NR + 16);
#pragma GCC unroll 12
        for (int i = 0; i < MR; i++) {
            __m512bh av = (__m512bh)_mm512_set1_epi32((int)ap[i]);
            acc[i][0] = _mm512_dpbf16_ps(acc[i][0], av, b0);
            acc[i][1] = _mm512_dpbf16_ps(acc[i][1], av, b1);
        }
    }
    __mmask16 m0 = nr >= 16 ? 0xffff : (__mmask16)((1u << nr) - 1);
    __mmask16 m1 = nr >= 32 ? 0xffff : nr > 16 ? (__mmask16)((1u << (nr - 16)) - 1) : 0;
    __m512 va = _mm512_set1_ps(alpha), vb = _mm512_set1_ps(beta);
    for (int i = 0; i < mr; i++) {
        float *crow = c + (size_t)i * ldc;
        __m512 o0 = _mm512_mul_ps(va, acc[i][0]), o1 = _mm512_mul_ps(va, acc[i][1]);
        if (beta != 0.0f) {
            o0 = _mm512_fmadd_ps(vb, _mm512_maskz_loadu_ps(m0, crow), o0);
            o1 = _mm512_fmadd_ps(vb, _mm512_maskz_loadu_ps(m1, crow + 16), o1);
        }
        _mm512_mask_storeu_ps(crow, m0, o0);
        _mm512_mask_storeu_ps(crow + 16, m1, o1);
    }
}

#define KERNELS_NAME sadm_kernels_avx512bf16
#define KERNELS_STRING "avx512bf16"
#include "vector_kernels.h"
