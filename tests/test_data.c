/* Fashion-MNIST from Debian's package: the sanity values of shared/BASELINES.md (labels,
 * pixel sums, class counts, computed there from the uncompressed content), the padding,
 * scaling and flip of the samples, and clear errors for missing or broken files. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "reference.h"
#include "testutil.h"

START_TEST(test_fmnist_content) {
    static const int train_labels[10] = {9, 0, 0, 3, 0, 2, 7, 2, 5, 5}, test_labels[10] = {9, 2, 1, 1, 6, 1, 4, 6, 5, 7};
    const char *splits[2] = {"train", "test"};
    const size_t sizes[2] = {60000, 10000};
    const long sums[2] = {76247, 33456};
    for (int s = 0; s < 2; s++) {
        sadm_dataset *d;
        TU_OK(sadm_dataset_fmnist(NULL, splits[s], &d));
        ck_assert_uint_eq(sadm_dataset_size(d), sizes[s]);
        ck_assert_int_eq(sadm_dataset_channels(d), 1);
        ck_assert_int_eq(sadm_dataset_image_size(d), 32);
        ck_assert_int_eq(sadm_dataset_num_classes(d), 10);
        float x[32 * 32];
        int64_t y;
        size_t count[10] = {0};
        for (size_t i = 0; i < sizes[s]; i++) {
            TU_OK(sadm_dataset_get(d, i, 0, x, &y));
            if (i < 10) ck_assert_int_eq(y, s ? test_labels[i] : train_labels[i]);
            count[y]++;
        }
        for (int c = 0; c < 10; c++) ck_assert_uint_eq(count[c], sizes[s] / 10);
        int h, w;
        const uint8_t *raw = sadm_dataset_raw(d, 0, &h, &w);
        long sum = 0;
        for (int i = 0; i < h * w; i++) sum += raw[i];
        ck_assert_int_eq(sum, sums[s]);
        /* padding, scaling and flip of sample 0 */
        float xf[32 * 32];
        TU_OK(sadm_dataset_get(d, 0, 0, x, NULL));
        TU_OK(sadm_dataset_get(d, 0, 1, xf, NULL));
        for (int r = 0; r < 32; r++)
            for (int c = 0; c < 32; c++) {
                int in = r >= 2 && r < 30 && c >= 2 && c < 30;
                float want = in ? raw[(r - 2) * 28 + c - 2] / 127.5f - 1.0f : -1.0f;
                ck_assert_float_eq(x[r * 32 + c], want);
                ck_assert_float_eq(xf[r * 32 + 31 - c], want);
            }
        ck_assert_int_eq(sadm_dataset_get(d, sizes[s], 0, x, &y), SADM_ERR_ARG);
        sadm_dataset_free(d);
    }
}
END_TEST

START_TEST(test_fmnist_errors) {
    sadm_dataset *d;
    ck_assert_int_eq(sadm_dataset_fmnist("/nonexistent", "train", &d), SADM_ERR_IO);
    ck_assert_ptr_nonnull(strstr(sadm_last_error(), "/nonexistent/train-images-idx3-ubyte.gz: cannot open"));
    ck_assert_int_eq(sadm_dataset_fmnist(NULL, "validation", &d), SADM_ERR_ARG);
    /* a truncated copy */
    char cmd[1024];
    const char *dir = ref_tmpdir();
    snprintf(cmd, sizeof cmd,
             "zcat %s/train-images-idx3-ubyte.gz | head -c 100000 > %s/train-images-idx3-ubyte.gz && "
             "cp %s/train-labels-idx1-ubyte.gz %s/",
             getenv("SADM_FMNIST_DIR") ? getenv("SADM_FMNIST_DIR") : "/usr/share/datasets/fashion-mnist", dir,
             getenv("SADM_FMNIST_DIR") ? getenv("SADM_FMNIST_DIR") : "/usr/share/datasets/fashion-mnist", dir);
    ck_assert_int_eq(system(cmd), 0);
    ck_assert_int_eq(sadm_dataset_fmnist(dir, "train", &d), SADM_ERR_FORMAT);
    ck_assert_msg(strstr(sadm_last_error(), "truncated"), "message: %s", sadm_last_error());
    /* labels where images should be */
    snprintf(cmd, sizeof cmd, "cp %s/train-labels-idx1-ubyte.gz %s/train-images-idx3-ubyte.gz", dir, dir);
    ck_assert_int_eq(system(cmd), 0);
    ck_assert_int_eq(sadm_dataset_fmnist(dir, "train", &d), SADM_ERR_FORMAT);
    ck_assert_msg(strstr(sadm_last_error(), "IDX magic 0x00000801, expected 0x00000803"), "message: %s", sadm_last_error());
    /* headers that lie about the size (issue 18): a product that wraps 64 bits, one above
     * the 2^31 read limit, and 512 MB declared by a 16-byte file, which must cost no 512 MB */
    static const struct {
        const char *header, *words;
    } lies[] = {{"\\000\\000\\010\\003\\377\\377\\377\\377\\377\\377\\377\\377\\377\\377\\377\\377", "4294967295x4294967295x4294967295: their product overflows"},
                {"\\000\\000\\010\\003\\000\\001\\000\\000\\000\\000\\200\\000\\000\\000\\000\\001", "65536x32768x1: too large"},
                {"\\000\\000\\010\\003\\000\\000\\200\\000\\000\\000\\100\\000\\000\\000\\000\\001", "the header declares 536870912 data bytes, the file holds 0"}};
    for (size_t i = 0; i < sizeof lies / sizeof lies[0]; i++) {
        snprintf(cmd, sizeof cmd, "printf '%s' > %s/train-images-idx3-ubyte.gz", lies[i].header, dir);
        ck_assert_int_eq(system(cmd), 0);
        ck_assert_int_eq(sadm_dataset_fmnist(dir, "train", &d), SADM_ERR_FORMAT);
        ck_assert_msg(strstr(sadm_last_error(), lies[i].words), "case %zu: '%s' lacks '%s'", i, sadm_last_error(), lies[i].words);
    }
    ref_cleanup();
}
END_TEST

START_TEST(test_tensor_dataset) {
    char path[300];
    snprintf(path, sizeof path, "%s/latents.safetensors", ref_tmpdir());
    enum { N = 5, C = 4, S = 8 };
    uint16_t half[N * C * S * S];
    float want[N * C * S * S];
    for (int i = 0; i < N * C * S * S; i++) { /* bfloat16 values: exact in float */
        float v = (float)(i % 17) - 8.0f;
        uint32_t bits;
        memcpy(&bits, &v, 4);
        half[i] = (uint16_t)(bits >> 16), want[i] = v;
    }
    int64_t y[N] = {3, 0, 7, 7, 1}, sx[4] = {N, C, S, S}, sn[1] = {N};
    sadm_st_writer *w = sadm_st_writer_new();
    TU_OK(sadm_st_writer_add(w, "x", SADM_DTYPE_BF16, 4, sx, half));
    TU_OK(sadm_st_writer_add(w, "y", SADM_DTYPE_I64, 1, sn, y));
    TU_OK(sadm_st_writer_save(w, path));
    sadm_dataset *d;
    TU_OK(sadm_dataset_tensors(path, &d));
    ck_assert(sadm_dataset_size(d) == N && sadm_dataset_channels(d) == C && sadm_dataset_image_size(d) == S);
    ck_assert_int_eq(sadm_dataset_num_classes(d), 8);
    float x[C * S * S], xf[C * S * S];
    int64_t lab;
    TU_OK(sadm_dataset_get(d, 2, 0, x, &lab));
    TU_OK(sadm_dataset_get(d, 2, 1, xf, NULL));
    ck_assert_int_eq(lab, 7);
    for (int i = 0; i < C * S * S; i++) {
        ck_assert_float_eq(x[i], want[2 * C * S * S + i]);
        ck_assert_float_eq(xf[i], want[2 * C * S * S + (i / S) * S + S - 1 - i % S]);
    }
    ck_assert_ptr_null(sadm_dataset_raw(d, 0, NULL, NULL));
    sadm_dataset_free(d);
    /* metadata num_classes below a label; labels missing */
    TU_OK(sadm_st_writer_metadata(w, "num_classes", "5"));
    TU_OK(sadm_st_writer_save(w, path));
    ck_assert_int_eq(sadm_dataset_tensors(path, &d), SADM_ERR_FORMAT);
    ck_assert_msg(strstr(sadm_last_error(), "num_classes 5 but a label is 7"), "%s", sadm_last_error());
    sadm_st_writer_free(w);
    w = sadm_st_writer_new();
    TU_OK(sadm_st_writer_add(w, "x", SADM_DTYPE_BF16, 4, sx, half));
    TU_OK(sadm_st_writer_save(w, path));
    ck_assert_int_eq(sadm_dataset_tensors(path, &d), SADM_ERR_FORMAT);
    ck_assert_msg(strstr(sadm_last_error(), "needs a tensor 'y'"), "%s", sadm_last_error());
    sadm_st_writer_free(w);
    /* issue 18: num_classes must be a plain integer in range, labels bounded */
    static const struct {
        const char *file, *words;
    } bad[] = {{"num-classes-4x.safetensors", "'num_classes' is '4x', expected an integer"},
               {"num-classes-huge.safetensors", "'num_classes' is '99999999999', expected an integer in [1, 10000000]"},
               {"label-huge.safetensors", "label 1099511627776 of sample 1 is not a class in [0, 10000000)"}};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        const char *p = ref_reproducer("dataset", bad[i].file);
        ck_assert_int_eq(sadm_dataset_tensors(p, &d), SADM_ERR_FORMAT);
        ck_assert_msg(strstr(sadm_last_error(), p) && strstr(sadm_last_error(), bad[i].words), "'%s' lacks '%s'",
                      sadm_last_error(), bad[i].words);
    }
    ref_cleanup();
}
END_TEST

int main(void) {
    Suite *s = suite_create("data");
    TCase *tc = tcase_create("data");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_fmnist_content);
    tcase_add_test(tc, test_fmnist_errors);
    tcase_add_test(tc, test_tensor_dataset);
    suite_add_tcase(s, tc);
    return tu_run(s);
}
