/* Embedding lookup and scatter-add, DiT's timestep embedding and its 2-D sin-cos
 * position embedding, against direct formulas in double. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"

START_TEST(test_embedding) {
    int rows = 11, dim = 67;
    size_t n = 9;
    int64_t idx[9] = {3, 0, 10, 3, 3, 7, 0, 1, 10};
    float *table = tu_uniform((size_t)rows * dim, 1, -1, 1), *out = tu_alloc(n * dim);
    TU_OK(sadm_embedding_forward(n, dim, rows, table, idx, out));
    for (size_t i = 0; i < n; i++) tu_assert_same("embedding row", out + i * dim, table + idx[i] * dim, dim);
    float *dout = tu_uniform(n * dim, 2, -1, 1), *dt = tu_alloc((size_t)rows * dim);
    TU_OK(sadm_embedding_backward(n, dim, rows, idx, dout, dt));
    double *ref = calloc((size_t)rows * dim, sizeof(double));
    for (size_t i = 0; i < n; i++)
        for (int c = 0; c < dim; c++) ref[idx[i] * dim + c] += dout[i * dim + c];
    tu_assert_close_d("embedding backward", dt, ref, (size_t)rows * dim, 1e-6, 1e-7);
    free(table), free(out), free(dout), free(dt), free(ref);
}
END_TEST

START_TEST(test_timestep_embedding) {
    float t[5] = {0.0f, 1.0f, 17.0f, 500.0f, 999.0f};
    for (int dim = 255; dim <= 256; dim++) {
        float *out = tu_alloc((size_t)5 * dim);
        TU_OK(sadm_timestep_embedding(5, dim, t, 10000.0f, out));
        int half = dim / 2;
        for (int i = 0; i < 5; i++)
            for (int k = 0; k < half; k++) {
                double f = exp(-log(10000.0) * k / half), a = t[i] * f;
                /* float argument of up to 999: its rounding moves cos/sin by ~1e-4 */
                ck_assert_msg(fabs(out[i * dim + k] - cos(a)) < 2e-4 && fabs(out[i * dim + half + k] - sin(a)) < 2e-4,
                              "timestep embedding t=%g k=%d: %g %g vs %g %g", t[i], k, out[i * dim + k],
                              out[i * dim + half + k], cos(a), sin(a));
            }
        if (dim % 2)
            for (int i = 0; i < 5; i++) ck_assert_float_eq(out[i * dim + dim - 1], 0.0f);
        free(out);
    }
}
END_TEST

START_TEST(test_pos_embed_2d) {
    /* dim 4, grid 2: omega = 1; token (row i, col j) = [sin j, cos j, sin i, cos i] */
    float e[16];
    TU_OK(sadm_pos_embed_2d(4, 2, e));
    const float want[16] = {0, 1, 0, 1, (float)sin(1.0), (float)cos(1.0), 0, 1,
                            0, 1, (float)sin(1.0), (float)cos(1.0), (float)sin(1.0), (float)cos(1.0), (float)sin(1.0), (float)cos(1.0)};
    tu_assert_close("pos embed 4x2", e, want, 16, 1e-7, 1e-7);
    int dim = 384, grid = 16;
    float *pe = tu_alloc((size_t)grid * grid * dim);
    TU_OK(sadm_pos_embed_2d(dim, grid, pe));
    for (int i = 0; i < grid; i += 5)
        for (int j = 0; j < grid; j += 3)
            for (int k = 0; k < dim / 4; k += 7) {
                double om = pow(10000.0, -(double)k / (dim / 4));
                const float *r = pe + ((size_t)i * grid + j) * dim;
                ck_assert(fabs(r[k] - sin(j * om)) < 1e-7 && fabs(r[dim / 4 + k] - cos(j * om)) < 1e-7);
                ck_assert(fabs(r[dim / 2 + k] - sin(i * om)) < 1e-7 && fabs(r[3 * dim / 4 + k] - cos(i * om)) < 1e-7);
            }
    free(pe);
}
END_TEST

int main(void) {
    Suite *s = suite_create("embed");
    TCase *tc = tcase_create("embed");
    tcase_add_test(tc, test_embedding);
    tcase_add_test(tc, test_timestep_embedding);
    tcase_add_test(tc, test_pos_embed_2d);
    suite_add_tcase(s, tc);
    return tu_run(s);
}
