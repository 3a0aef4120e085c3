/* Matrix products: OpenBLAS when configured with it, else a portable blocked GEMM.
 * The generic one threads over blocks of rows of C and always adds along K in the same
 * order, so its results do not depend on the thread count either. */
#include <stdlib.h>
#include <string.h>

#include "internal.h"

#include <time.h>

static int profiling;
static double prof_seconds, prof_flops;

void sadm_gemm_profile_reset(void) {
    profiling = 1;
    prof_seconds = prof_flops = 0;
}

void sadm_gemm_profile_read(double *seconds, double *flops) {
    if (seconds) *seconds = prof_seconds;
    if (flops) *flops = prof_flops;
}

static double wall(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static int in_parallel(void) {
#ifdef SADM_HAVE_OPENMP
    return omp_in_parallel();
#else
    return 0;
#endif
}

static void gemm_impl(sadm_transpose ta, sadm_transpose tb, int M, int N, int K, float alpha, const float *A, int lda,
                      const float *B, int ldb, float beta, float *C, int ldc);

void sadm_gemm(sadm_transpose ta, sadm_transpose tb, int M, int N, int K, float alpha, const float *A, int lda,
               const float *B, int ldb, float beta, float *C, int ldc) {
    if (M <= 0 || N <= 0) return;
    if (!profiling || in_parallel()) {
        gemm_impl(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
        return;
    }
    double t0 = wall();
    gemm_impl(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
    prof_seconds += wall() - t0;
    prof_flops += 2.0 * M * N * K;
}

#ifdef SADM_HAVE_OPENBLAS
#include <cblas.h>

/* OpenBLAS blocks K differently with different thread counts once K passes a few hundred
 * (e.g. M 20000, N 64, K 600 differ in the last bits between 1 and 2 threads), so the
 * product is summed here in K-slices of at most 256, which it computes the same way
 * whatever the threads; slices of equal size avoid a tiny last one. */
#define SADM_GEMM_K_SLICE 256

static void gemm_impl(sadm_transpose ta, sadm_transpose tb, int M, int N, int K, float alpha, const float *A, int lda,
                      const float *B, int ldb, float beta, float *C, int ldc) {
    CBLAS_TRANSPOSE a_op = ta == SADM_TRANS ? CblasTrans : CblasNoTrans, b_op = tb == SADM_TRANS ? CblasTrans : CblasNoTrans;
    if (K <= SADM_GEMM_K_SLICE) { /* also K <= 0: C = beta C */
        cblas_sgemm(CblasRowMajor, a_op, b_op, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
        return;
    }
    int slices = (K + SADM_GEMM_K_SLICE - 1) / SADM_GEMM_K_SLICE, step = (K + slices - 1) / slices;
    for (int k0 = 0; k0 < K; k0 += step) {
        int kb = K - k0 < step ? K - k0 : step;
        /* op(A) columns k0.. and op(B) rows k0.. */
        const float *a = ta == SADM_TRANS ? A + (size_t)k0 * lda : A + k0;
        const float *b = tb == SADM_TRANS ? B + k0 : B + (size_t)k0 * ldb;
        cblas_sgemm(CblasRowMajor, a_op, b_op, M, N, kb, alpha, a, lda, b, ldb, k0 ? 1.0f : beta, C, ldc);
    }
}

#else

#define BM 32
#define BN 256
#define BK 128

static inline float a_at(const float *A, int lda, sadm_transpose ta, int i, int k) {
    return ta == SADM_TRANS ? A[(size_t)k * lda + i] : A[(size_t)i * lda + k];
}

/* One BM-row block of C: packs op(B) panels so that the inner loop runs over contiguous N. */
static void gemm_rows(sadm_transpose ta, sadm_transpose tb, int i0, int i1, int N, int K, float alpha,
                      const float *A, int lda, const float *B, int ldb, float *C, int ldc, float *bpack) {
    for (int n0 = 0; n0 < N; n0 += BN) {
        int nb = N - n0 < BN ? N - n0 : BN;
        for (int k0 = 0; k0 < K; k0 += BK) {
            int kb = K - k0 < BK ? K - k0 : BK;
            for (int k = 0; k < kb; k++)
                for (int j = 0; j < nb; j++)
                    bpack[(size_t)k * BN + j] = tb == SADM_TRANS ? B[(size_t)(n0 + j) * ldb + k0 + k]
                                                                 : B[(size_t)(k0 + k) * ldb + n0 + j];
            for (int i = i0; i < i1; i++) {
                float *c = C + (size_t)i * ldc + n0;
                for (int k = 0; k < kb; k++) {
                    float a = alpha * a_at(A, lda, ta, i, k0 + k);
                    const float *b = bpack + (size_t)k * BN;
                    for (int j = 0; j < nb; j++) c[j] += a * b[j];
                }
            }
        }
    }
}

static void gemm_impl(sadm_transpose ta, sadm_transpose tb, int M, int N, int K, float alpha, const float *A, int lda,
                      const float *B, int ldb, float beta, float *C, int ldc) {
    for (int i = 0; i < M; i++) {
        float *c = C + (size_t)i * ldc;
        if (beta == 0.0f)
            memset(c, 0, (size_t)N * sizeof(float));
        else if (beta != 1.0f)
            for (int j = 0; j < N; j++) c[j] *= beta;
    }
    if (K <= 0 || alpha == 0.0f) return;
    int blocks = (M + BM - 1) / BM;
#pragma omp parallel
    {
        float *bpack = malloc((size_t)BK * BN * sizeof(float));
#pragma omp for schedule(static)
        for (int b = 0; b < blocks; b++) {
            int i0 = b * BM, i1 = i0 + BM < M ? i0 + BM : M;
            if (bpack) gemm_rows(ta, tb, i0, i1, N, K, alpha, A, lda, B, ldb, C, ldc, bpack);
        }
        free(bpack);
    }
}
#endif
