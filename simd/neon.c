/* NEON kernel set (4 lanes, AArch64 Advanced SIMD). */
#include <arm_neon.h>
#include <stdint.h>

typedef float32x4_t vf;
#define VW 4
#define V_LOAD(p) vld1q_f32(p)
#define V_STORE(p, v) vst1q_f32(p, v)
#define V_SET1(x) vdupq_n_f32(x)
#define V_ADD vaddq_f32
#define V_SUB vsubq_f32
#define V_MUL vmulq_f32
#define V_DIV vdivq_f32
#define V_SQRT vsqrtq_f32
#define V_FMA(a, b, c) vfmaq_f32(c, a, b)
#define V_FNMA(a, b, c) vfmsq_f32(c, a, b)
/* FMIN/FMAX return NaN when either operand is NaN */
#define V_MIN(c, x) vminq_f32(c, x)
#define V_MAX(c, x) vmaxq_f32(c, x)
#define V_MAX_NAN(a, b) vmaxq_f32(a, b)
#define V_ROUND(a) vrndnq_f32(a)
#define V_FLOOR(a) vrndmq_f32(a)
#define V_POW2I(k) vreinterpretq_f32_s32(vshlq_n_s32(vaddq_s32(vcvtq_s32_f32(k), vdupq_n_s32(127)), 23))
#define V_HSUM(a) vaddvq_f32(a)

/* flush-to-zero (FPCR.FZ) for the bf16 tile's sums */
#define V_FTZ_BEGIN                                                          \
    uint64_t sadm_fpcr_saved;                                                \
    __asm__ volatile("mrs %0, fpcr" : "=r"(sadm_fpcr_saved));                \
    __asm__ volatile("msr fpcr, %0" ::"r"(sadm_fpcr_saved | (1ull << 24)))
#define V_FTZ_END __asm__ volatile("msr fpcr, %0" ::"r"(sadm_fpcr_saved))

#define KERNELS_NAME sadm_kernels_neon
#define KERNELS_STRING "neon"
#include "vector_kernels.h"
