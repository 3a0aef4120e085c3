/* Run time: kernel-set dispatch, threads, memory, and the error contract (bad arguments
 * return a status and a message that names the argument; nothing aborts). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"

START_TEST(test_isa_dispatch) {
    const char *const *all = sadm_isa_list();
    ck_assert_str_eq(all[0], "scalar");
    ck_assert(sadm_isa_available("scalar"));
    for (const char *const *isa = tu_isas(); *isa; isa++) {
        TU_OK(sadm_set_isa(*isa));
        ck_assert_str_eq(sadm_isa(), *isa);
    }
    ck_assert_int_eq(sadm_set_isa("no-such-isa"), SADM_ERR_UNSUPPORTED);
    ck_assert_ptr_nonnull(strstr(sadm_last_error(), "no-such-isa"));
    ck_assert_int_eq(sadm_set_isa(NULL), SADM_ERR_ARG);
    TU_OK(sadm_set_isa("auto"));
    /* auto picks the last (best) supported set */
    const char *best = "scalar";
    for (const char *const *isa = tu_isas(); *isa; isa++) best = *isa;
    ck_assert_str_eq(sadm_isa(), best);
#if defined(__x86_64__)
    ck_assert(!sadm_isa_available("neon"));
#endif
}
END_TEST

START_TEST(test_threads_and_memory) {
    sadm_status st = sadm_set_num_threads(3);
    if (st == SADM_OK) {
        ck_assert_int_eq(sadm_num_threads(), 3);
    } else { /* built with --disable-openmp */
        ck_assert_int_eq(st, SADM_ERR_UNSUPPORTED);
        ck_assert_ptr_nonnull(strstr(sadm_last_error(), "OpenMP"));
        ck_assert_int_eq(sadm_num_threads(), 1);
    }
    TU_OK(sadm_set_num_threads(0));
    ck_assert_int_ge(sadm_num_threads(), 1);
    ck_assert(strlen(sadm_blas_info()) > 0);
    void *p = sadm_alloc(1000);
    ck_assert_ptr_nonnull(p);
    ck_assert_uint_eq((uintptr_t)p % 64, 0);
    sadm_free(p);
    float *q = sadm_calloc(5 << 20, sizeof(float)); /* large: huge-page path */
    ck_assert_ptr_nonnull(q);
    ck_assert(q[0] == 0.0f && q[(5 << 20) - 1] == 0.0f);
    sadm_free(q);
    ck_assert_ptr_null(sadm_calloc(SIZE_MAX / 2, 4));
}
END_TEST

#define EXPECT_ARG_ERROR(call, needle)                                                             \
    do {                                                                                           \
        sadm_status st_ = (call);                                                                  \
        ck_assert_msg(st_ == SADM_ERR_ARG, "%s returned %d, expected SADM_ERR_ARG", #call, st_);   \
        ck_assert_msg(strstr(sadm_last_error(), needle), "%s: message '%s' lacks '%s'", #call,     \
                      sadm_last_error(), needle);                                                  \
    } while (0)

START_TEST(test_bad_arguments) {
    float x[16] = {0}, y[16];
    int64_t idx[2] = {0, 5};
    EXPECT_ARG_ERROR(sadm_gelu_forward(4, NULL, y), "'x'");
    EXPECT_ARG_ERROR(sadm_layernorm_forward(2, 0, x, NULL, NULL, 1e-6f, y, NULL, NULL), "'C'");
    EXPECT_ARG_ERROR(sadm_layernorm_forward(2, 4, x, NULL, NULL, -1.0f, y, NULL, NULL), "eps");
    EXPECT_ARG_ERROR(sadm_matmul(SADM_NO_TRANS, SADM_NO_TRANS, 0, 2, 2, 1, x, x, 0, y, NULL), "M=0");
    EXPECT_ARG_ERROR(sadm_linear_forward(2, 2, 2, x, NULL, NULL, y), "'w'");
    EXPECT_ARG_ERROR(sadm_attention_forward(1, 4, 0, 2, x, y, NULL), "positive");
    EXPECT_ARG_ERROR(sadm_attention_backward(1, 2, 1, 2, x, y, NULL, y, y), "'lse'");
    EXPECT_ARG_ERROR(sadm_patchify(1, 1, 4, 6, 4, x, y), "multiple of the patch size");
    EXPECT_ARG_ERROR(sadm_embedding_forward(2, 2, 3, x, idx, y), "index 5 at position 1");
    EXPECT_ARG_ERROR(sadm_pos_embed_2d(6, 2, y), "multiple of 4");
    sadm_conv2d_shape cs = {1, 1, 2, 2, 1, 3, 3, 1, 1, 0, 0, 0, 0};
    EXPECT_ARG_ERROR(sadm_conv2d_forward(&cs, x, x, NULL, y), "larger than the padded input");
    sadm_pool2d_shape ps = {1, 1, 4, 4, 2, 2, 2, 2, 3, 0, SADM_POOL_MAX, 0};
    EXPECT_ARG_ERROR(sadm_pool2d_forward(&ps, x, y), "padding");
    sadm_adamw_config cfg = {1e-3f, 0.9f, 1.5f, 1e-8f, 0};
    EXPECT_ARG_ERROR(sadm_adamw_step(4, x, x, y, y, &cfg, 1), "betas");
    cfg.beta2 = 0.999f;
    EXPECT_ARG_ERROR(sadm_adamw_step(4, x, x, y, y, &cfg, 0), "step counts from 1");
    EXPECT_ARG_ERROR(sadm_ema_update(4, y, x, 1.5f), "decay");
    ck_assert_str_eq(sadm_status_string(SADM_ERR_ARG), "invalid argument");
    ck_assert_str_eq(sadm_status_string(SADM_OK), "ok");
}
END_TEST

int main(void) {
    printf("kernel sets under test:");
    for (const char *const *isa = tu_isas(); *isa; isa++) printf(" %s", *isa);
    printf("\nBLAS: %s\n", sadm_blas_info());
    Suite *s = suite_create("runtime");
    TCase *tc = tcase_create("runtime");
    tcase_add_test(tc, test_isa_dispatch);
    tcase_add_test(tc, test_threads_and_memory);
    tcase_add_test(tc, test_bad_arguments);
    suite_add_tcase(s, tc);
    return tu_run(s);
}
