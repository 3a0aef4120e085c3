/* Philox-4x32-10 against Random123's published known answers, and the uniform/normal
 * streams against sequences computed by an independent Python implementation
 * (tests/rng_reference.py). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"

START_TEST(test_philox_known_answers) {
    static const uint32_t ctr[3][4] = {{0, 0, 0, 0},
                                       {0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff},
                                       {0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344}};
    static const uint32_t key[3][2] = {{0, 0}, {0xffffffff, 0xffffffff}, {0xa4093822, 0x299f31d0}};
    static const uint32_t want[3][4] = {{0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8},
                                        {0x408f276d, 0x41c83b0e, 0xa20bc7c6, 0x6d5451fd},
                                        {0xd16cfe09, 0x94fdcceb, 0x5001e420, 0x24126ea1}};
    for (int t = 0; t < 3; t++) {
        uint32_t out[4];
        sadm_philox4x32_10(ctr[t], key[t], out);
        for (int i = 0; i < 4; i++) ck_assert_uint_eq(out[i], want[t][i]);
    }
}
END_TEST

static const uint64_t SEED = 0x123456789abcdefULL, STREAM = 5;

START_TEST(test_committed_sequences) {
    static const float uniform[12] = {0.700224757f, 0.471096605f, 0.55160439f,  0.40984574f,
                                      0.813568711f, 0.320443362f, 0.802656889f, 0.631791711f,
                                      0.391768605f, 0.0416779816f, 0.504001737f, 0.021271795f};
    static const float normal[12] = {-0.830337107f, 0.152473614f, -0.920427442f, 0.585373223f,
                                     -0.275129497f, 0.580477059f, -0.448429644f, -0.488433033f,
                                     1.32232964f,  0.35441792f,  1.16017973f,  0.155993372f};
    float u[12], z[12];
    TU_OK(sadm_rng_uniform(SEED, STREAM, 0, 12, u));
    TU_OK(sadm_rng_normal(SEED, STREAM, 0, 12, z));
    tu_assert_same("uniform sequence", u, uniform, 12);
    tu_assert_close("normal sequence", z, normal, 12, 1e-6, 0); /* libm may differ by an ulp */
    /* an offset continues the same stream, whatever the split */
    float part[7];
    TU_OK(sadm_rng_normal(SEED, STREAM, 5, 7, part));
    tu_assert_same("normal from offset 5", part, z + 5, 7);
    TU_OK(sadm_rng_uniform(SEED, STREAM, 3, 7, part));
    tu_assert_same("uniform from offset 3", part, u + 3, 7);
}
END_TEST

START_TEST(test_distribution) {
    size_t n = 1 << 20;
    float *u = tu_alloc(n), *z = tu_alloc(n);
    TU_OK(sadm_rng_uniform(1, 0, 0, n, u));
    TU_OK(sadm_rng_normal(1, 0, 0, n, z));
    double su = 0, sz = 0, szz = 0, sz4 = 0;
    for (size_t i = 0; i < n; i++) {
        ck_assert(u[i] > 0.0f && u[i] < 1.0f);
        ck_assert(isfinite(z[i]));
        su += u[i], sz += z[i], szz += (double)z[i] * z[i], sz4 += pow(z[i], 4);
    }
    /* 5 standard errors */
    ck_assert_double_le(fabs(su / n - 0.5), 5 * sqrt(1.0 / 12 / n));
    ck_assert_double_le(fabs(sz / n), 5 * sqrt(1.0 / n));
    ck_assert_double_le(fabs(szz / n - 1.0), 5 * sqrt(2.0 / n));
    ck_assert_double_le(fabs(sz4 / n - 3.0), 5 * sqrt(96.0 / n));
    /* different streams and seeds differ */
    float a[8], b[8], c[8];
    TU_OK(sadm_rng_normal(1, 0, 0, 8, a));
    TU_OK(sadm_rng_normal(1, 1, 0, 8, b));
    TU_OK(sadm_rng_normal(2, 0, 0, 8, c));
    ck_assert(memcmp(a, b, sizeof a) != 0 && memcmp(a, c, sizeof a) != 0);
    free(u), free(z);
}
END_TEST

START_TEST(test_thread_invariance) {
    size_t n = 100003;
    float *a = tu_alloc(n), *b = tu_alloc(n);
    sadm_set_num_threads(1);
    TU_OK(sadm_rng_normal(9, 2, 11, n, a));
    sadm_set_num_threads(2);
    TU_OK(sadm_rng_normal(9, 2, 11, n, b));
    tu_assert_same("normal, 1 vs 2 threads", a, b, n);
    sadm_set_num_threads(3);
    TU_OK(sadm_rng_uniform(9, 2, 11, n, a));
    sadm_set_num_threads(1);
    TU_OK(sadm_rng_uniform(9, 2, 11, n, b));
    tu_assert_same("uniform, 3 vs 1 threads", a, b, n);
    free(a), free(b);
}
END_TEST

int main(void) {
    Suite *s = suite_create("rng");
    TCase *tc = tcase_create("rng");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_philox_known_answers);
    tcase_add_test(tc, test_committed_sequences);
    tcase_add_test(tc, test_distribution);
    tcase_add_test(tc, test_thread_invariance);
    suite_add_tcase(s, tc);
    return tu_run(s);
}
