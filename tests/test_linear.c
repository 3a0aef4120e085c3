/* Matrix products and the linear layer against direct double-precision sums, and the
 * linear backward against finite differences. Both the OpenBLAS and the generic GEMM
 * builds run these tests. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"

static double *naive_matmul(int ta, int tb, int M, int N, int K, const float *A, const float *B, const float *bias) {
    double *C = calloc((size_t)M * N, sizeof(double));
    for (int i = 0; i < M; i++)
        for (int j = 0; j < N; j++) {
            double s = bias ? bias[j] : 0.0;
            for (int k = 0; k < K; k++) {
                double a = ta ? A[(size_t)k * M + i] : A[(size_t)i * K + k];
                double b = tb ? B[(size_t)j * K + k] : B[(size_t)k * N + j];
                s += a * b;
            }
            C[(size_t)i * N + j] = s;
        }
    return C;
}

START_TEST(test_matmul_all_transposes) {
    static const int dims[][3] = {{1, 1, 1}, {3, 17, 5}, {17, 63, 65}, {64, 65, 63}, {65, 3, 1000}, {100, 130, 7}};
    for (size_t d = 0; d < sizeof dims / sizeof dims[0]; d++) {
        int M = dims[d][0], N = dims[d][1], K = dims[d][2];
        float *A = tu_uniform((size_t)M * K, 1 + d, -1, 1), *B = tu_uniform((size_t)K * N, 2 + d, -1, 1);
        float *bias = tu_uniform(N, 3, -1, 1), *C = tu_alloc((size_t)M * N);
        for (int ta = 0; ta < 2; ta++)
            for (int tb = 0; tb < 2; tb++)
                for (int wb = 0; wb < 2; wb++) {
                    double *ref = naive_matmul(ta, tb, M, N, K, A, B, wb ? bias : NULL);
                    TU_OK(sadm_matmul(ta, tb, M, N, K, 1.0f, A, B, 0.0f, C, wb ? bias : NULL));
                    /* K terms of size <= 1: error grows like sqrt(K) ulp */
                    tu_assert_close_d("matmul", C, ref, (size_t)M * N, 1e-5, 1e-6 * sqrt(K) * 4);
                    free(ref);
                }
        /* alpha and beta */
        double *ref = naive_matmul(0, 0, M, N, K, A, B, NULL);
        float *C0 = tu_uniform((size_t)M * N, 9, -1, 1);
        memcpy(C, C0, (size_t)M * N * sizeof(float));
        TU_OK(sadm_matmul(SADM_NO_TRANS, SADM_NO_TRANS, M, N, K, 0.5f, A, B, 2.0f, C, NULL));
        for (size_t i = 0; i < (size_t)M * N; i++) ref[i] = 0.5 * ref[i] + 2.0 * C0[i];
        tu_assert_close_d("matmul alpha beta", C, ref, (size_t)M * N, 1e-5, 1e-5 * sqrt(K));
        free(ref), free(C0), free(A), free(B), free(bias), free(C);
    }
}
END_TEST

START_TEST(test_matmul_batched) {
    int M = 17, N = 9, K = 33, batch = 5;
    size_t sa = (size_t)M * K + 3, sb = (size_t)K * N + 1, sc = (size_t)M * N + 2;
    float *A = tu_uniform(sa * batch, 4, -1, 1), *B = tu_uniform(sb * batch, 5, -1, 1), *C = tu_alloc(sc * batch);
    TU_OK(sadm_matmul_batched(SADM_NO_TRANS, SADM_TRANS, M, N, K, 1.0f, A, sa, B, sb, 0.0f, C, sc, batch));
    for (int b = 0; b < batch; b++) {
        double *ref = naive_matmul(0, 1, M, N, K, A + b * sa, B + b * sb, NULL);
        tu_assert_close_d("batched matmul", C + b * sc, ref, (size_t)M * N, 1e-5, 1e-5);
        free(ref);
    }
    free(A), free(B), free(C);
}
END_TEST

typedef struct {
    int M, K, N;
    float *x, *w, *b;
} lin_ctx;

static void lin_forward(void *p, float *out) {
    lin_ctx *c = p;
    sadm_linear_forward(c->M, c->K, c->N, c->x, c->w, c->b, out);
}

START_TEST(test_linear) {
    static const int dims[][3] = {{1, 1, 1}, {3, 17, 5}, {7, 65, 63}, {20, 64, 130}};
    for (size_t d = 0; d < sizeof dims / sizeof dims[0]; d++) {
        lin_ctx c = {dims[d][0], dims[d][1], dims[d][2], NULL, NULL, NULL};
        size_t nx = (size_t)c.M * c.K, nw = (size_t)c.N * c.K, ny = (size_t)c.M * c.N;
        c.x = tu_uniform(nx, 10 + d, -1, 1), c.w = tu_uniform(nw, 11 + d, -1, 1), c.b = tu_uniform(c.N, 12, -1, 1);
        float *y = tu_alloc(ny), *dy = tu_uniform(ny, 13, -1, 1);
        TU_OK(sadm_linear_forward(c.M, c.K, c.N, c.x, c.w, c.b, y));
        double *ref = naive_matmul(0, 1, c.M, c.N, c.K, c.x, c.w, c.b);
        tu_assert_close_d("linear forward", y, ref, ny, 1e-5, 1e-5);
        free(ref);
        /* gradients accumulate into what is there */
        float *dx = tu_uniform(nx, 14, -1, 1), *dw = tu_uniform(nw, 15, -1, 1), *db = tu_uniform(c.N, 16, -1, 1);
        float *dx0 = tu_copy(dx, nx), *dw0 = tu_copy(dw, nw), *db0 = tu_copy(db, c.N);
        TU_OK(sadm_linear_backward(c.M, c.K, c.N, c.x, c.w, dy, dx, dw, db));
        for (size_t i = 0; i < nx; i++) dx[i] -= dx0[i];
        for (size_t i = 0; i < nw; i++) dw[i] -= dw0[i];
        for (int i = 0; i < c.N; i++) db[i] -= db0[i];
        tu_check_grad("linear dx", lin_forward, &c, c.x, nx, dx, dy, ny, 1e-2f, 2e-3);
        tu_check_grad("linear dw", lin_forward, &c, c.w, nw, dw, dy, ny, 1e-2f, 2e-3);
        tu_check_grad("linear db", lin_forward, &c, c.b, c.N, db, dy, ny, 1e-2f, 2e-3);
        free(c.x), free(c.w), free(c.b), free(y), free(dy), free(dx), free(dw), free(db), free(dx0), free(dw0), free(db0);
    }
}
END_TEST

int main(void) {
    Suite *s = suite_create("linear");
    TCase *tc = tcase_create("linear");
    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, test_matmul_all_transposes);
    tcase_add_test(tc, test_matmul_batched);
    tcase_add_test(tc, test_linear);
    suite_add_tcase(s, tc);
    return tu_run(s);
}
