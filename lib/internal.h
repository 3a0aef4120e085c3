/* Internal declarations shared by the library's files; not installed. */
#ifndef SADM_INTERNAL_H
#define SADM_INTERNAL_H

#include "config.h"

#include <stddef.h>
#include <stdint.h>

#include "sadm.h"
#include "../simd/kernels.h"

#ifdef SADM_HAVE_OPENMP
#include <omp.h>
#endif

/* 1 inside an active OpenMP parallel region (an operator called from another's loop) */
static inline int sadm_in_parallel(void) {
#ifdef SADM_HAVE_OPENMP
    return omp_in_parallel();
#else
    return 0;
#endif
}

/* Sets the calling thread's error message and returns `status`. */
sadm_status sadm_error(sadm_status status, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* The kernel set chosen at start-up or by sadm_set_isa(). */
const sadm_kernels *sadm_kernels_active(void);

/* Row-major GEMM with leading dimensions: C = alpha op(A) op(B) + beta C.
 * OpenBLAS or the generic implementation, chosen at configure time. Called from inside
 * an OpenMP parallel region it runs on the calling thread alone. */
void sadm_gemm(sadm_transpose ta, sadm_transpose tb, int M, int N, int K, float alpha, const float *A, int lda,
               const float *B, int ldb, float beta, float *C, int ldc);
/* the GEMM profile of sadm_gemm_profile_reset/read: on, and a call's share (top-level
 * calls only, from the calling thread) */
int sadm_gemm_profile_active(void);
void sadm_gemm_profile_add(double seconds, double flops);
/* the same with op(A), op(B) rounded to bf16 and fp32 accumulation (lib/gemm_bf16.c);
 * SADM_ERR_NOMEM when the packing buffers cannot be had */
sadm_status sadm_gemm_bf16(sadm_transpose ta, sadm_transpose tb, int M, int N, int K, float alpha, const float *A,
                           int lda, const float *B, int ldb, float beta, float *C, int ldc);

/* perm = a permutation of 0..n-1 by Fisher-Yates with the Philox uniforms of
 * (seed, stream): the data order of an epoch. */
void sadm_permutation(uint64_t seed, uint64_t stream, size_t n, uint32_t *perm);

/* A sample value in [-1, 1] as an 8-bit pixel, as DiT's sample_ddp.py saves it:
 * uint8(clamp(127.5 x + 128, 0, 255)), truncating. */
static inline uint8_t sadm_sample_to_u8(float v) {
    float u = 127.5f * v + 128.0f;
    return (uint8_t)(u < 0 ? 0 : u > 255 ? 255 : u);
}

/* Work over n elements is cut into chunks of this many, independent of the thread count,
 * so that reductions always add the same partial sums in the same order. */
#define SADM_CHUNK ((size_t)16384)

static inline size_t sadm_chunks(size_t n, size_t chunk) { return (n + chunk - 1) / chunk; }

/* Runs the statement that follows once per SADM_CHUNK-sized piece [i0, i0 + len) of n
 * elements, the pieces spread over the threads:
 *     SADM_FOR_CHUNKS(n, i0, len) k->gelu(len, x + i0, y + i0);                          */
#define SADM_FOR_CHUNKS(n, i0, len)                                                                \
    _Pragma("omp parallel for schedule(static)")                                                   \
    for (long sadm_c_ = 0; sadm_c_ < (long)sadm_chunks((n), SADM_CHUNK); sadm_c_++)                \
        for (size_t i0 = (size_t)sadm_c_ * SADM_CHUNK, len = (n) - i0 < SADM_CHUNK ? (n) - i0 : SADM_CHUNK, \
                    sadm_once_ = 1;                                                                \
             sadm_once_; sadm_once_ = 0)

/* Overflow-checked size arithmetic for sizes that come from files: 1 when the result
 * fits (and is stored), 0 when it would wrap. */
static inline int sadm_mul_u64(uint64_t a, uint64_t b, uint64_t *out) { return !__builtin_mul_overflow(a, b, out); }
static inline int sadm_add_u64(uint64_t a, uint64_t b, uint64_t *out) { return !__builtin_add_overflow(a, b, out); }
/* The product of n non-negative dimensions (times elem_size) without wrapping; 0 when
 * a dimension is negative or the product passes limit. */
static inline int sadm_shape_bytes(int n, const int64_t *dims, uint64_t elem_size, uint64_t limit, uint64_t *out) {
    uint64_t p = elem_size;
    for (int i = 0; i < n; i++)
        if (dims[i] < 0 || !sadm_mul_u64(p, (uint64_t)dims[i], &p)) return 0;
    if (p > limit) return 0;
    *out = p;
    return 1;
}

/* Per-thread scratch for one operator call (lib/scratch.c): mark, take, release.
 *     sadm_scratch_mark mk = sadm_scratch_mark_get();
 *     float *work = sadm_scratch_take(bytes);   // NULL when out of memory
 *     ...
 *     sadm_scratch_release(mk);
 * Inside an OpenMP region each thread takes from its own stack. Memory is 64-byte
 * aligned and not zeroed. */
typedef struct sadm_scratch_mark {
    void *block;
    size_t used;
} sadm_scratch_mark;
sadm_scratch_mark sadm_scratch_mark_get(void);
void *sadm_scratch_take(size_t bytes);
void sadm_scratch_release(sadm_scratch_mark mark);
/* Gives the calling thread's blocks back (its next take starts afresh). */
void sadm_scratch_free_thread(void);

/* Every timestep of t (N of them, host memory) in [0, steps) of d; the error names fn. */
sadm_status sadm_diffusion_check_t(const sadm_diffusion *d, const char *fn, int N, const int64_t *t);

/* Physical memory of this machine in bytes (UINT64_MAX when unknown). */
uint64_t sadm_physical_memory(void);
/* A memory estimate before a large allocation: SADM_OK when `bytes` fits in physical
 * memory, else SADM_ERR_NOMEM with "<what> needs X GB, more than this machine's Y GB: <why>"
 * (why, e.g. "the file says depth 10000000", may be NULL). */
sadm_status sadm_memory_check(const char *what, uint64_t bytes, const char *why);

/* Returns from the calling function when a call fails. */
#define SADM_TRY(call)                                                                             \
    do {                                                                                           \
        sadm_status sadm_try_ = (call);                                                            \
        if (sadm_try_) return sadm_try_;                                                           \
    } while (0)

/* Argument checks: each returns from the calling function with a message naming it. */
#define SADM_REQUIRE_PTR(p)                                                                        \
    do {                                                                                           \
        if (!(p)) return sadm_error(SADM_ERR_ARG, "%s: argument '%s' is NULL", __func__, #p);      \
    } while (0)
#define SADM_REQUIRE_POSITIVE(v)                                                                   \
    do {                                                                                           \
        if ((v) <= 0)                                                                              \
            return sadm_error(SADM_ERR_ARG, "%s: argument '%s' must be positive, got %lld", __func__, \
                              #v, (long long)(v));                                                 \
    } while (0)
#define SADM_REQUIRE(cond, ...)                                                                    \
    do {                                                                                           \
        if (!(cond)) return sadm_error(SADM_ERR_ARG, __VA_ARGS__);                                 \
    } while (0)

#endif
