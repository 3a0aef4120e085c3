/* The FID Inception-v3 against torchvision's Inception3 with pytorch-fid's FID blocks
 * (tests/reference/inception_ref.py, random weights and BatchNorm statistics, float64):
 * pool features, logits and ADM's spatial features in both input modes, on images that
 * need up- and down-sampling; max|diff| <= 1e-4 max|ref|. And files that are not an
 * Inception. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "reference.h"
#include "mock_backend.h"
#include "testutil.h"

static void compare(const sadm_st_file *f, const char *key, const float *ours, int N, int D) {
    float *ref = tu_alloc((size_t)N * D);
    int64_t shape[2] = {N, D};
    TU_OK(sadm_st_read_f32(f, key, 2, shape, ref));
    double mr = 0, md = 0;
    for (size_t i = 0; i < (size_t)N * D; i++) {
        if (fabs(ref[i]) > mr) mr = fabs(ref[i]);
        if (fabs(ref[i] - ours[i]) > md) md = fabs(ref[i] - ours[i]);
    }
    ck_assert_msg(mr > 1e-3, "%s: the reference is (nearly) zero", key);
    ck_assert_msg(md <= 1e-4 * mr, "%s: max|diff| %.3g, max|ref| %.3g", key, md, mr);
    free(ref);
}

static void run_case(sadm_inception *m, int N, int H, int W, uint64_t seed) {
    size_t n = (size_t)N * H * W * 3;
    uint8_t *img = malloc(n);
    float *u = tu_uniform(n, seed, 0, 256);
    for (size_t i = 0; i < n; i++) img[i] = (uint8_t)(u[i] >= 255.5f ? 255 : (int)u[i]);
    sadm_st_writer *w = sadm_st_writer_new();
    int64_t si[4] = {N, H, W, 3};
    TU_OK(sadm_st_writer_add(w, "images", SADM_DTYPE_U8, 4, si, img));
    TU_OK(sadm_st_writer_save(w, ref_path("img.safetensors")));
    sadm_st_writer_free(w);
    char args[1000];
    snprintf(args, sizeof args, "run '%s' '%s' '%s'", ref_path("w.safetensors"), ref_path("img.safetensors"), ref_path("out.safetensors"));
    ref_run("inception_ref.py", args);
    sadm_st_file *f;
    TU_OK(sadm_st_open(ref_path("out.safetensors"), &f));
    float *pool = tu_alloc((size_t)N * 2048), *logits = tu_alloc((size_t)N * 1008), *spatial = tu_alloc((size_t)N * 2023);
    for (int mode = 0; mode < 2; mode++) {
        const char *name = sadm_fid_mode_name((sadm_fid_mode)mode);
        TU_OK(sadm_inception_features(m, (sadm_fid_mode)mode, N, H, W, img, pool, logits, spatial));
        char key[64];
        snprintf(key, sizeof key, "%s.pool", name);
        compare(f, key, pool, N, 2048);
        snprintf(key, sizeof key, "%s.logits", name);
        compare(f, key, logits, N, 1008);
        snprintf(key, sizeof key, "%s.spatial", name);
        compare(f, key, spatial, N, 2023);
    }
    sadm_st_close(f);
    free(img), free(u), free(pool), free(logits), free(spatial);
}

START_TEST(test_features_vs_torchvision) {
    char args[600];
    snprintf(args, sizeof args, "make '%s' 3", ref_path("w.safetensors"));
    ref_run("inception_ref.py", args);
    sadm_inception *m;
    TU_OK(sadm_inception_load(ref_path("w.safetensors"), &m));
    /* Every image forward costs minutes under qemu (.ci/run's NEON stage, where this test
     * took 37 minutes): emulated, one upsampled image in both modes and the thread check on
     * one image; natively also the downsampled case and one image at a time vs a batch. */
    int emulated = tu_emulated();
    run_case(m, emulated ? 1 : 2, 45, 64, 1); /* upsampled, not square */
    if (!emulated) run_case(m, 1, 320, 310, 2); /* downsampled */
    /* the same features with 1 and 2 threads (bitwise), and one image at a time */
    const int N = emulated ? 1 : 2, S = 40;
    uint8_t *img = malloc((size_t)N * S * S * 3);
    float *u = tu_uniform((size_t)N * S * S * 3, 9, 0, 255);
    for (int i = 0; i < N * S * S * 3; i++) img[i] = (uint8_t)u[i];
    float *first = tu_alloc((size_t)N * 2048), *pool = tu_alloc((size_t)N * 2048), *sp = tu_alloc((size_t)N * 2023);
    float *sp1 = tu_alloc((size_t)N * 2023);
    int saved = sadm_num_threads(), runs = 0;
    for (int th = 1; th <= 2; th++) {
        if (sadm_set_num_threads(th) != SADM_OK) continue; /* a build without OpenMP */
        TU_OK(sadm_inception_features(m, SADM_FID_ADM, N, S, S, img, runs ? pool : first, NULL, runs ? sp : sp1));
        if (runs++) {
            tu_assert_same("Inception pool features across thread counts", pool, first, (size_t)N * 2048);
            tu_assert_same("Inception spatial features across thread counts", sp, sp1, (size_t)N * 2023);
        }
    }
    sadm_set_num_threads(saved);
    if (N > 1) {
        for (int i = 0; i < N; i++)
            TU_OK(sadm_inception_features(m, SADM_FID_ADM, 1, S, S, img + (size_t)i * S * S * 3, pool + (size_t)i * 2048,
                                          NULL, NULL));
        /* one image at a time vs both at once: OpenBLAS's Haswell/Zen kernels sum a row by
         * where it falls in the batch (3e-5 relative seen on small features), SkylakeX's did not */
        tu_assert_close("Inception pool features one image at a time", pool, first, (size_t)N * 2048, 1e-4, 1e-5);
    }
    /* on the mock backend (memory the host cannot touch): bitwise the CPU's features, in
     * both modes (natively only: the backend logic does not depend on the CPU) */
    if (!emulated) {
        sadm_inception *mm;
        TU_OK(sadm_inception_load(ref_path("w.safetensors"), &mm));
        TU_OK(sadm_inception_to_backend(mm, mock_backend()));
        float *lg = tu_alloc(1008), *lg1 = tu_alloc(1008);
        for (int mode = 0; mode < 2; mode++) {
            TU_OK(sadm_inception_features(m, (sadm_fid_mode)mode, 1, S, S, img, first, lg, sp1));
            TU_OK(sadm_inception_features(mm, (sadm_fid_mode)mode, 1, S, S, img, pool, lg1, sp));
            tu_assert_same("Inception pool features, mock vs cpu", pool, first, 2048);
            tu_assert_same("Inception logits, mock vs cpu", lg1, lg, 1008);
            tu_assert_same("Inception spatial features, mock vs cpu", sp, sp1, 2023);
        }
        sadm_inception_free(mm);
        ck_assert_uint_eq(mock_backend_live(), 0);
        free(lg), free(lg1);
    }
    free(img), free(u), free(first), free(pool), free(sp), free(sp1);
    sadm_inception_free(m);
    ref_cleanup();
}
END_TEST

/* tools/convert_inception.py on a .pth as pytorch-fid ships it (a torch.save'd state dict,
 * here with random weights): the converted file gives the features of the same weights
 * written directly, bitwise; a .pth of something else is refused. */
START_TEST(test_convert_tool) {
    char args[1200];
    snprintf(args, sizeof args, "make '%s' 5", ref_path("w.pth"));
    ref_run("inception_ref.py", args);
    snprintf(args, sizeof args, "make '%s' 5", ref_path("w.safetensors"));
    ref_run("inception_ref.py", args);
    snprintf(args, sizeof args, "'%s' '%s'", ref_path("w.pth"), ref_path("converted.safetensors"));
    ref_run("../../tools/convert_inception.py", args);
    sadm_inception *direct, *converted;
    TU_OK(sadm_inception_load(ref_path("w.safetensors"), &direct));
    TU_OK(sadm_inception_load(ref_path("converted.safetensors"), &converted));
    sadm_st_file *f;
    TU_OK(sadm_st_open(ref_path("converted.safetensors"), &f));
    ck_assert_msg(!sadm_st_find(f, "Conv2d_1a_3x3.bn.num_batches_tracked"), "num_batches_tracked was not dropped");
    ck_assert_msg(sadm_st_find(f, "Mixed_7c.branch_pool.bn.running_var"), "a BatchNorm statistic is missing");
    sadm_st_close(f);
    const int N = 1, S = 33;
    uint8_t img[33 * 33 * 3];
    for (size_t i = 0; i < sizeof img; i++) img[i] = (uint8_t)(i * 37 % 253);
    float *a = tu_alloc(N * 1008), *b = tu_alloc(N * 1008);
    TU_OK(sadm_inception_features(direct, SADM_FID_ADM, N, S, S, img, NULL, a, NULL));
    TU_OK(sadm_inception_features(converted, SADM_FID_ADM, N, S, S, img, NULL, b, NULL));
    tu_assert_same("logits from the converted weights", b, a, N * 1008);
    sadm_inception_free(direct), sadm_inception_free(converted);
    free(a), free(b);
    /* not the FID Inception: the tool says so and exits non-zero */
    const char *py = getenv("SADM_PYTHON"), *dir = getenv("SADM_REFDIR");
    ck_assert(py && dir);
    char cmd[2000];
    snprintf(cmd, sizeof cmd,
             "cd '%s' && '%s' -c \"import torch; torch.save({'w': torch.zeros(3)}, '%s')\" && "
             "'%s' '%s/../../tools/convert_inception.py' '%s' '%s' > '%s' 2>&1",
             dir, py, ref_path("other.pth"), py, dir, ref_path("other.pth"), ref_path("x.safetensors"), ref_path("log"));
    ck_assert_msg(system(cmd) != 0, "convert_inception.py accepted a .pth without fc.weight");
    FILE *lf = fopen(ref_path("log"), "r");
    char msg[512] = {0};
    ck_assert(lf && fread(msg, 1, sizeof msg - 1, lf) > 0);
    fclose(lf);
    ck_assert_msg(strstr(msg, "does not look like the FID Inception"), "%s", msg);
    ref_cleanup();
}
END_TEST

START_TEST(test_bad_weights) {
    sadm_dit_config cfg = {8, 2, 3, 32, 1, 4, 4.0f, 0.1f, 5, 1};
    sadm_dit *d;
    TU_OK(sadm_dit_create(&cfg, 1, &d));
    TU_OK(sadm_dit_save(d, ref_path("dit.safetensors")));
    sadm_dit_free(d);
    sadm_inception *m;
    ck_assert_int_eq(sadm_inception_load(ref_path("dit.safetensors"), &m), SADM_ERR_FORMAT);
    ck_assert_msg(strstr(sadm_last_error(), "no tensor 'Conv2d_1a_3x3.conv.weight'"), "%s", sadm_last_error());
    ck_assert_int_eq(sadm_inception_load(ref_path("none.safetensors"), &m), SADM_ERR_IO);
    ref_cleanup();
}
END_TEST

int main(void) {
    Suite *s = suite_create("inception");
    TCase *tc = tcase_create("inception");
    tcase_set_timeout(tc, 600);
    tcase_add_test(tc, test_bad_weights);
    tcase_add_test(tc, test_convert_tool);
    tcase_add_test(tc, test_features_vs_torchvision);
    suite_add_tcase(s, tc);
    return tu_run(s);
}
