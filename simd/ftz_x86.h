/* V_FTZ_BEGIN / V_FTZ_END of simd/vector_kernels.h on x86 (the avx2 and avx512 sets):
 * flush-to-zero (MXCSR.FTZ) for the bf16 tile's sums; DAZ stays off. */
#ifndef SADM_SIMD_FTZ_X86_H
#define SADM_SIMD_FTZ_X86_H
#include <immintrin.h>

#define V_FTZ_BEGIN unsigned sadm_csr_saved = _mm_getcsr(); _mm_setcsr(sadm_csr_saved | 0x8000u)
#define V_FTZ_END _mm_setcsr(sadm_csr_saved)

#endif
