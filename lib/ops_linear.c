/* Matrix products and the linear layer (PyTorch weight layout: out × in). */
#include <stdio.h>

#include "internal.h"

static void add_bias_rows(int M, int N, float *C, const float *bias) {
    const sadm_kernels *k = sadm_kernels_active();
#pragma omp parallel for schedule(static)
    for (int i = 0; i < M; i++) k->add((size_t)N, C + (size_t)i * N, bias, C + (size_t)i * N);
}

/* db[N] += column sums of dy[M,N]: threads own column blocks and walk the rows in order. */
static void add_column_sums(int M, int N, const float *dy, float *db) {
    const sadm_kernels *k = sadm_kernels_active();
    const int block = 64;
    int blocks = (N + block - 1) / block;
#pragma omp parallel for schedule(static)
    for (int b = 0; b < blocks; b++) {
        int c0 = b * block, len = N - c0 < block ? N - c0 : block;
        for (int i = 0; i < M; i++) k->add((size_t)len, db + c0, dy + (size_t)i * N + c0, db + c0);
    }
}

static sadm_status check_matmul(const char *fn, int M, int N, int K, const float *A, const float *B,
                                const float *C) {
    SADM_REQUIRE(M > 0 && N > 0 && K > 0, "%s: sizes must be positive, got M=%d N=%d K=%d", fn, M, N, K);
    SADM_REQUIRE(A && B && C, "%s: operand %s is NULL", fn, !A ? "A" : !B ? "B" : "C");
    return SADM_OK;
}

sadm_status sadm_matmul(sadm_transpose ta, sadm_transpose tb, int M, int N, int K, float alpha,
                        const float *A, const float *B, float beta, float *C, const float *bias) {
    sadm_status st = check_matmul(__func__, M, N, K, A, B, C);
    if (st) return st;
    sadm_gemm(ta, tb, M, N, K, alpha, A, ta == SADM_TRANS ? M : K, B, tb == SADM_TRANS ? K : N, beta, C, N);
    if (bias) add_bias_rows(M, N, C, bias);
    return SADM_OK;
}

sadm_status sadm_matmul_batched(sadm_transpose ta, sadm_transpose tb, int M, int N, int K, float alpha,
                                const float *A, size_t stride_a, const float *B, size_t stride_b,
                                float beta, float *C, size_t stride_c, int batch) {
    sadm_status st = check_matmul(__func__, M, N, K, A, B, C);
    if (st) return st;
    SADM_REQUIRE_POSITIVE(batch);
    int lda = ta == SADM_TRANS ? M : K, ldb = tb == SADM_TRANS ? K : N;
    if (batch == 1) {
        sadm_gemm(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, N);
        return SADM_OK;
    }
    /* Many small products: one per thread, each single-threaded inside (faster than
     * threading each product on this kind of shape). */
#pragma omp parallel for schedule(static)
    for (int b = 0; b < batch; b++)
        sadm_gemm(ta, tb, M, N, K, alpha, A + b * stride_a, lda, B + b * stride_b, ldb, beta, C + b * stride_c, N);
    return SADM_OK;
}

sadm_status sadm_linear_forward(int M, int K, int N, const float *x, const float *w, const float *b, float *y) {
    SADM_REQUIRE(M > 0 && K > 0 && N > 0, "sadm_linear_forward: sizes must be positive, got M=%d K=%d N=%d", M, K, N);
    SADM_REQUIRE_PTR(x);
    SADM_REQUIRE_PTR(w);
    SADM_REQUIRE_PTR(y);
    sadm_gemm(SADM_NO_TRANS, SADM_TRANS, M, N, K, 1.0f, x, K, w, K, 0.0f, y, N);
    if (b) add_bias_rows(M, N, y, b);
    return SADM_OK;
}

sadm_status sadm_linear_backward(int M, int K, int N, const float *x, const float *w, const float *dy,
                                 float *dx, float *dw, float *db) {
    SADM_REQUIRE(M > 0 && K > 0 && N > 0, "sadm_linear_backward: sizes must be positive, got M=%d K=%d N=%d", M, K, N);
    SADM_REQUIRE_PTR(dy);
    if (dx) {
        SADM_REQUIRE_PTR(w);
        sadm_gemm(SADM_NO_TRANS, SADM_NO_TRANS, M, K, N, 1.0f, dy, N, w, K, 1.0f, dx, K);
    }
    if (dw) {
        SADM_REQUIRE_PTR(x);
        sadm_gemm(SADM_TRANS, SADM_NO_TRANS, N, K, M, 1.0f, dy, N, x, K, 1.0f, dw, K);
    }
    if (db) add_column_sums(M, N, dy, db);
    return SADM_OK;
}

/* ---- bf16 products (lib/gemm_bf16.c) */

sadm_status sadm_matmul_bf16(sadm_transpose ta, sadm_transpose tb, int M, int N, int K, float alpha,
                             const float *A, const float *B, float beta, float *C) {
    sadm_status st = check_matmul(__func__, M, N, K, A, B, C);
    if (st) return st;
    return sadm_gemm_bf16(ta, tb, M, N, K, alpha, A, ta == SADM_TRANS ? M : K, B, tb == SADM_TRANS ? K : N, beta, C, N);
}

sadm_status sadm_linear_forward_bf16(int M, int K, int N, const float *x, const float *w, const float *b, float *y) {
    SADM_REQUIRE(M > 0 && K > 0 && N > 0, "sadm_linear_forward_bf16: sizes must be positive, got M=%d K=%d N=%d", M, K,
                 N);
    SADM_REQUIRE_PTR(x);
    SADM_REQUIRE_PTR(w);
    SADM_REQUIRE_PTR(y);
    SADM_TRY(sadm_gemm_bf16(SADM_NO_TRANS, SADM_TRANS, M, N, K, 1.0f, x, K, w, K, 0.0f, y, N));
    if (b) add_bias_rows(M, N, y, b);
    return SADM_OK;
}

sadm_status sadm_linear_backward_bf16(int M, int K, int N, const float *x, const float *w, const float *dy,
                                      float *dx, float *dw, float *db) {
    SADM_REQUIRE(M > 0 && K > 0 && N > 0, "sadm_linear_backward_bf16: sizes must be positive, got M=%d K=%d N=%d", M,
                 K, N);
    SADM_REQUIRE_PTR(dy);
    if (dx) {
        SADM_REQUIRE_PTR(w);
        SADM_TRY(sadm_gemm_bf16(SADM_NO_TRANS, SADM_NO_TRANS, M, K, N, 1.0f, dy, N, w, K, 1.0f, dx, K));
    }
    if (dw) {
        SADM_REQUIRE_PTR(x);
        SADM_TRY(sadm_gemm_bf16(SADM_TRANS, SADM_NO_TRANS, N, K, M, 1.0f, dy, N, x, K, 1.0f, dw, K));
    }
    /* the bias gradient is a sum, not a product: fp32, as PyTorch's autocast keeps it */
    if (db) add_column_sums(M, N, dy, db);
    return SADM_OK;
}

int sadm_bf16_native(void) { return sadm_kernels_active()->bf16_words == 1; }

int sadm_bf16_preferred(const char **why) {
    const char *w;
    int yes = 0;
    if (!sadm_bf16_native()) {
        w = "this CPU has no native bf16 products";
    } else {
#if defined(__x86_64__) || defined(__i386__)
        yes = __builtin_cpu_is("amd");
#endif
        w = yes ? "the CPU multiplies bf16 natively at twice its fp32 rate: AVX512-BF16 on AMD"
                : "this CPU's VDPBF16PS runs at half its fp32 FMA rate (Intel AVX512-BF16): fp32 is faster";
    }
    if (why) *why = w;
    return yes;
}

const char *sadm_bf16_path(void) {
    static __thread char text[64];
    if (sadm_bf16_native()) return "native (AVX512-BF16)";
    snprintf(text, sizeof text, "fp32 FMA emulation (%s)", sadm_kernels_active()->name);
    return text;
}
