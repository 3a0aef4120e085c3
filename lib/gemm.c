/* Matrix products: OpenBLAS when configured with it, else a portable blocked GEMM.
 * The generic one threads over blocks of rows of C and always adds along K in the same
 * order, so its results do not depend on the thread count either. */
#include <math.h>
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

int sadm_gemm_profile_active(void) { return profiling; }

void sadm_gemm_profile_add(double seconds, double flops) {
    prof_seconds += seconds;
    prof_flops += flops;
}

static double wall(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static void gemm_impl(sadm_transpose ta, sadm_transpose tb, int M, int N, int K, float alpha, const float *A, int lda,
                      const float *B, int ldb, float beta, float *C, int ldc);

void sadm_gemm(sadm_transpose ta, sadm_transpose tb, int M, int N, int K, float alpha, const float *A, int lda,
               const float *B, int ldb, float beta, float *C, int ldc) {
    if (M <= 0 || N <= 0) return;
    if (!profiling || sadm_in_parallel()) {
        gemm_impl(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
        return;
    }
    double t0 = wall();
    gemm_impl(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
    sadm_gemm_profile_add(wall() - t0, 2.0 * M * N * K);
}

#ifdef SADM_HAVE_OPENBLAS
#include <cblas.h>

/* OpenBLAS's results depend on its thread count, and libsadm promises bitwise-equal
 * results for any thread count: with several threads it blocks K differently once K
 * passes a few hundred (M 20000, N 64, K 600 differed between 1 and 2 threads), and it
 * splits M and N between threads where the thread count says, while its edge-tile
 * kernels add in another order than its full-tile ones (seen with the Haswell/Zen
 * kernels even with K cut into slices of 256). So libsadm cuts C into tiles itself —
 * sizes that depend only on (M, N) — and runs OpenBLAS single-threaded on each tile,
 * the tiles spread over the OpenMP threads. Single-threaded, OpenBLAS blocks K the same
 * way every time, so K needs no slicing. Called inside a parallel region, the same
 * tiles run on the calling thread. */
#define SADM_GEMM_TILE_MIN 128
#define SADM_GEMM_TILES 8

/* Tile sizes, a function of (M, N) alone: about SADM_GEMM_TILES near-square tiles
 * (enough to balance 2-8 threads; OpenBLAS packs op(A) once per column of tiles and op(B)
 * once per row of them, so square tiles pack least; a tall C is cut into strips of full
 * rows, which pack op(A) once), never smaller than
 * SADM_GEMM_TILE_MIN a side unless the matrix is; multiples of 16 keep full micro-kernel
 * rows. */
static int round16(double v) { return ((int)v + 15) / 16 * 16; }

static void tile_sizes(int M, int N, int *tm, int *tn) {
    double area = (double)M * N / SADM_GEMM_TILES;
    if (area < (double)SADM_GEMM_TILE_MIN * SADM_GEMM_TILE_MIN) area = (double)SADM_GEMM_TILE_MIN * SADM_GEMM_TILE_MIN;
    int side = round16(sqrt(area));
    /* a tall C (M >= 1024, the linear layers' tokens x batch): strips of full rows */
    if (M >= 8 * SADM_GEMM_TILE_MIN && N <= 4096) side = round16(area / N);
    *tm = M < side ? M : side;
    int w = round16(area / *tm);
    *tn = N < w ? N : w;
}

static void gemm_impl(sadm_transpose ta, sadm_transpose tb, int M, int N, int K, float alpha, const float *A, int lda,
                      const float *B, int ldb, float beta, float *C, int ldc) {
    CBLAS_TRANSPOSE a_op = ta == SADM_TRANS ? CblasTrans : CblasNoTrans, b_op = tb == SADM_TRANS ? CblasTrans : CblasNoTrans;
    int TM, TN;
    tile_sizes(M, N, &TM, &TN);
    int nt = (N + TN - 1) / TN;
    long tiles = (long)((M + TM - 1) / TM) * nt;
    /* the region opens even for one tile: inside an active region OpenBLAS runs on the
     * calling thread, and a team of one has OpenBLAS set to one thread as well */
#pragma omp parallel for schedule(static) if (!sadm_in_parallel())
    for (long t = 0; t < tiles; t++) {
        int i0 = (int)(t / nt) * TM, j0 = (int)(t % nt) * TN;
        int mb = M - i0 < TM ? M - i0 : TM, nb = N - j0 < TN ? N - j0 : TN;
        const float *a = ta == SADM_TRANS ? A + i0 : A + (size_t)i0 * lda;
        const float *b = tb == SADM_TRANS ? B + (size_t)j0 * ldb : B + j0;
        cblas_sgemm(CblasRowMajor, a_op, b_op, mb, nb, K, alpha, a, lda, b, ldb, beta, C + (size_t)i0 * ldc + j0, ldc);
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
    /* the packed panel (128 KiB) lives on each thread's stack: nothing to allocate, so
     * nothing can fail and no row block is ever skipped */
#pragma omp parallel
    {
        _Alignas(64) float bpack[BK * BN];
#pragma omp for schedule(static)
        for (int b = 0; b < blocks; b++) {
            int i0 = b * BM, i1 = i0 + BM < M ? i0 + BM : M;
            gemm_rows(ta, tb, i0, i1, N, K, alpha, A, lda, B, ldb, C, ldc, bpack);
        }
    }
}
#endif
