/* bf16 products with fp32 accumulation (sadm_matmul_bf16, sadm_linear_*_bf16):
 * - the rounding to bf16 against the test's own rounding (frexp/rint, not bit tricks);
 * - every kernel set against a double-precision product of the bf16-rounded inputs with
 *   the rigorous bound of fp32 summation, on awkward sizes and all transposes;
 * - every kernel set bitwise equal to the scalar specification (the AVX512-BF16 tile
 *   included: that claim is about the hardware, so inputs whose products underflow are
 *   part of it);
 * - bitwise the same for 1, 2 and 3 threads and for a row alone or inside a batch. */
#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"

/* round to nearest even at 8 significant bits, denormals to zero (the VCVTNE2PS2BF16 rule) */
static double bf16_ref(float x) {
    if (isnan(x) || isinf(x)) return x;
    if (fabsf(x) < FLT_MIN) return copysign(0.0, x);
    int e;
    double m = frexp(x, &e); /* x = m 2^e, 0.5 <= |m| < 1 */
    double r = ldexp(rint(ldexp(m, 8)), e - 8);
    return fabs(r) > FLT_MAX ? copysign(INFINITY, x) : r; /* rounding up past the largest float */
}

/* exact-as-double product of the rounded inputs, and sum |a b| per element for the bound */
static void reference(int ta, int tb, int M, int N, int K, const float *A, const float *B, double *C, double *mag) {
    for (int i = 0; i < M; i++)
        for (int j = 0; j < N; j++) {
            double s = 0, m = 0;
            for (int k = 0; k < K; k++) {
                double a = bf16_ref(ta ? A[(size_t)k * M + i] : A[(size_t)i * K + k]);
                double b = bf16_ref(tb ? B[(size_t)j * K + k] : B[(size_t)k * N + j]);
                s += a * b, m += fabs(a * b);
            }
            C[(size_t)i * N + j] = s, mag[(size_t)i * N + j] = m;
        }
}

START_TEST(test_rounding) {
    /* through a 1x1x1 product with b = 1: C = bf16(a) */
    const float cases[] = {1.0f,         1.0f + 0x1p-8f, 1.0f + 0x3p-8f, 1.0f + 0x1p-8f + 0x1p-20f, -3.14159265f,
                           0x1.fffffep127f, FLT_MIN,      0x1p-130f,      -0x1p-140f,                  65504.0f,
                           1e-30f,      -7.7777e20f,     0.0f,           -0.0f};
    float one = 1.0f;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        float c;
        TU_OK(sadm_matmul_bf16(SADM_NO_TRANS, SADM_NO_TRANS, 1, 1, 1, 1.0f, &cases[i], &one, 0.0f, &c));
        double want = bf16_ref(cases[i]);
        /* (the sum starts at +0, so a -0 input comes out as +0: compare values) */
        ck_assert_msg(c == want, "bf16(%a) = %a, expected %a", cases[i], c, want);
    }
    float nan = NAN, c;
    TU_OK(sadm_matmul_bf16(SADM_NO_TRANS, SADM_NO_TRANS, 1, 1, 1, 1.0f, &nan, &one, 0.0f, &c));
    ck_assert_msg(isnan(c), "bf16(NaN) must stay NaN, got %a", c);
}
END_TEST

static const int dims[][3] = {{1, 1, 1}, {3, 17, 5}, {13, 33, 2}, {25, 31, 63}, {64, 65, 64}, {11, 97, 1000}, {130, 40, 7}};
#define N_DIMS (sizeof dims / sizeof dims[0])

START_TEST(test_against_double) {
    for (const char *const *isa = tu_isas(); *isa; isa++) {
        tu_use_isa(*isa);
        for (size_t d = 0; d < N_DIMS; d++) {
            int M = dims[d][0], N = dims[d][1], K = dims[d][2];
            size_t mn = (size_t)M * N;
            float *A = tu_uniform((size_t)M * K, 1 + d, -2, 2), *B = tu_uniform((size_t)K * N, 2 + d, -1, 1);
            float *C0 = tu_uniform(mn, 3 + d, -1, 1), *C = tu_alloc(mn);
            double *ref = malloc(mn * sizeof *ref), *mag = malloc(mn * sizeof *mag);
            for (int ta = 0; ta < 2; ta++)
                for (int tb = 0; tb < 2; tb++) {
                    reference(ta, tb, M, N, K, A, B, ref, mag);
                    memcpy(C, C0, mn * sizeof(float));
                    /* alpha 0.5 and beta 2 are exact scalings: the bound is that of the sum,
                     * (K - 1) u sum|ab| with u = 2^-24, plus the final rounding */
                    TU_OK(sadm_matmul_bf16(ta, tb, M, N, K, 0.5f, A, B, 2.0f, C));
                    for (size_t i = 0; i < mn; i++) {
                        double want = 0.5 * ref[i] + 2.0 * C0[i];
                        double bound = 0.5 * K * 0x1p-24 * mag[i] + 0x1p-23 * fabs(want) + 1e-30;
                        ck_assert_msg(fabs(C[i] - want) <= bound,
                                      "%s M=%d N=%d K=%d ta=%d tb=%d: C[%zu] = %.9g, expected %.9g (bound %.3g)", *isa,
                                      M, N, K, ta, tb, i, C[i], want, bound);
                    }
                }
            free(A), free(B), free(C0), free(C), free(ref), free(mag);
        }
    }
    tu_use_isa("auto");
}
END_TEST

/* every kernel set gives the scalar specification's bits */
static void same_as_scalar(const float *A, const float *B, int M, int N, int K, float beta, const char *what) {
    size_t mn = (size_t)M * N;
    float *C0 = tu_uniform(mn, 77, -1, 1), *spec = tu_alloc(mn), *got = tu_alloc(mn);
    for (int ta = 0; ta < 2; ta++)
        for (int tb = 0; tb < 2; tb++) {
            tu_use_isa("scalar");
            memcpy(spec, C0, mn * sizeof(float));
            TU_OK(sadm_matmul_bf16(ta, tb, M, N, K, 1.0f, A, B, beta, spec));
            for (const char *const *isa = tu_isas(); *isa; isa++) {
                tu_use_isa(*isa);
                memcpy(got, C0, mn * sizeof(float));
                TU_OK(sadm_matmul_bf16(ta, tb, M, N, K, 1.0f, A, B, beta, got));
                for (size_t i = 0; i < mn; i++)
                    ck_assert_msg(memcmp(&got[i], &spec[i], sizeof(float)) == 0,
                                  "%s: %s M=%d N=%d K=%d ta=%d tb=%d: C[%zu] = %a, the specification gives %a", what,
                                  *isa, M, N, K, ta, tb, i, got[i], spec[i]);
            }
        }
    tu_use_isa("auto");
    free(C0), free(spec), free(got);
}

START_TEST(test_bitwise_specification) {
    for (size_t d = 0; d < N_DIMS; d++) {
        int M = dims[d][0], N = dims[d][1], K = dims[d][2];
        float *A = tu_uniform((size_t)M * K, 10 + d, -3, 3), *B = tu_uniform((size_t)K * N, 20 + d, -3, 3);
        same_as_scalar(A, B, M, N, K, d % 2 ? 1.0f : 0.0f, "random");
        free(A), free(B);
    }
    /* tiny values: products below FLT_MIN (flushed), inputs below it (read as zero),
     * sums that cancel into the denormal range, mixed with ordinary ones */
    int M = 14, N = 35, K = 9;
    float *A = tu_uniform((size_t)M * K, 5, -1, 1), *B = tu_uniform((size_t)K * N, 6, -1, 1);
    for (size_t i = 0; i < (size_t)M * K; i++) A[i] *= i % 3 == 0 ? 0x1p-70f : i % 3 == 1 ? 0x1p-60f : 1.0f;
    for (size_t i = 0; i < (size_t)K * N; i++) B[i] *= i % 4 == 0 ? 0x1p-66f : i % 4 == 1 ? 0x1p-130f : 0x1p-60f;
    same_as_scalar(A, B, M, N, K, 0.0f, "underflow");
    free(A), free(B);
}
END_TEST

START_TEST(test_threads_and_rows) {
    int M = 77, N = 300, K = 129;
    float *A = tu_uniform((size_t)M * K, 31, -1, 1), *B = tu_uniform((size_t)N * K, 32, -1, 1);
    float *c1 = tu_alloc((size_t)M * N), *cn = tu_alloc((size_t)M * N), *row = tu_alloc(N);
    for (const char *const *isa = tu_isas(); *isa; isa++) {
        tu_use_isa(*isa);
        TU_OK(sadm_set_num_threads(1));
        TU_OK(sadm_matmul_bf16(SADM_NO_TRANS, SADM_TRANS, M, N, K, 1.0f, A, B, 0.0f, c1));
        for (int t = 2; t <= 3; t++) {
            if (sadm_set_num_threads(t) != SADM_OK) break; /* a build without OpenMP */
            TU_OK(sadm_matmul_bf16(SADM_NO_TRANS, SADM_TRANS, M, N, K, 1.0f, A, B, 0.0f, cn));
            tu_assert_same("bf16 product, 1 vs more threads", c1, cn, (size_t)M * N);
        }
        /* row 40 alone (not at a strip boundary in the batch) */
        TU_OK(sadm_matmul_bf16(SADM_NO_TRANS, SADM_TRANS, 1, N, K, 1.0f, A + 40 * K, B, 0.0f, row));
        tu_assert_same("bf16 product, a row alone vs in the batch", row, c1 + 40 * N, N);
    }
    sadm_set_num_threads(0);
    tu_use_isa("auto");
    free(A), free(B), free(c1), free(cn), free(row);
}
END_TEST

START_TEST(test_linear_bf16) {
    int M = 37, K = 45, N = 50;
    float *x = tu_uniform((size_t)M * K, 41, -1, 1), *w = tu_uniform((size_t)N * K, 42, -0.5, 0.5);
    float *b = tu_uniform(N, 43, -1, 1), *y = tu_alloc((size_t)M * N), *dy = tu_uniform((size_t)M * N, 44, -1, 1);
    float *dx = tu_uniform((size_t)M * K, 45, -1, 1), *dw = tu_uniform((size_t)N * K, 46, -1, 1);
    float *db = tu_uniform(N, 47, -1, 1), *dx0 = tu_copy(dx, (size_t)M * K), *dw0 = tu_copy(dw, (size_t)N * K);
    float *db0 = tu_copy(db, N), *want = tu_alloc((size_t)N * K);
    TU_OK(sadm_linear_forward_bf16(M, K, N, x, w, b, y));
    /* the same as the product plus the bias added in fp32 */
    TU_OK(sadm_matmul_bf16(SADM_NO_TRANS, SADM_TRANS, M, N, K, 1.0f, x, w, 0.0f, want));
    for (int i = 0; i < M; i++)
        for (int j = 0; j < N; j++) want[i * N + j] += b[j];
    tu_assert_same("linear forward bf16", y, want, (size_t)M * N);
    TU_OK(sadm_linear_backward_bf16(M, K, N, x, w, dy, dx, dw, db));
    /* dx += dy w, dw += dy^T x: accumulated with beta = 1 */
    memcpy(want, dx0, (size_t)M * K * sizeof(float));
    TU_OK(sadm_matmul_bf16(SADM_NO_TRANS, SADM_NO_TRANS, M, K, N, 1.0f, dy, w, 1.0f, want));
    tu_assert_same("linear backward bf16 dx", dx, want, (size_t)M * K);
    memcpy(want, dw0, (size_t)N * K * sizeof(float));
    TU_OK(sadm_matmul_bf16(SADM_TRANS, SADM_NO_TRANS, N, K, M, 1.0f, dy, x, 1.0f, want));
    tu_assert_same("linear backward bf16 dw", dw, want, (size_t)N * K);
    /* db is a plain fp32 column sum */
    double *dbr = malloc(N * sizeof *dbr);
    for (int j = 0; j < N; j++) {
        dbr[j] = db0[j];
        for (int i = 0; i < M; i++) dbr[j] += dy[i * N + j];
    }
    tu_assert_close_d("linear backward bf16 db", db, dbr, N, 1e-5, 1e-5);
    ck_assert_msg(sadm_linear_forward_bf16(0, K, N, x, w, b, y) != SADM_OK, "M = 0 must be refused");
    ck_assert_msg(strstr(sadm_last_error(), "M=0") != NULL, "the message names the size: %s", sadm_last_error());
    free(x), free(w), free(b), free(y), free(dy), free(dx), free(dw), free(db), free(dx0), free(dw0), free(db0);
    free(want), free(dbr);
}
END_TEST

int main(void) {
    Suite *s = suite_create("bf16");
    TCase *tc = tcase_create("bf16");
    tcase_set_timeout(tc, 600);
    tcase_add_test(tc, test_rounding);
    tcase_add_test(tc, test_against_double);
    tcase_add_test(tc, test_bitwise_specification);
    tcase_add_test(tc, test_threads_and_rows);
    tcase_add_test(tc, test_linear_bf16);
    suite_add_tcase(s, tc);
    return tu_run(s);
}
