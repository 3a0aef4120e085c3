/* Sampling against the PyTorch reference (tests/reference/sample_torch.py): DDPM with
 * learned variance, DDIM with eta 0 and 0.5, respaced and not, with and without
 * classifier-free guidance (all channels and DiT's first-3), from the same weights and
 * noise; final samples within 1e-3 max|ref|. Respaced betas to 1e-12 in double. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "reference.h"
#include "testutil.h"

typedef struct {
    int ddim;
    const char *spec;
    float eta, cfg;
    int cfg_channels, clip, learn_sigma, N;
} sample_case;

/* Model m (saved at model_path, or saved there first when save) against sample_torch.py
 * on the same file, noise and labels y. */
static void compare_model(sadm_dit *m, const char *model_path, int save, const sample_case *c, const int64_t *y) {
    const sadm_dit_config *mc = sadm_dit_get_config(m);
    int C = mc->in_channels, H = mc->input_size;
    sadm_diffusion *d;
    TU_OK(sadm_diffusion_respaced("linear", 1000, c->spec, &d));
    int S = sadm_diffusion_steps(d), N = c->N;
    size_t per = (size_t)C * H * H;
    float *xT = tu_alloc(N * per), *noise = tu_alloc((size_t)S * N * per), *out = tu_alloc(N * per), *ref = tu_alloc(N * per);
    TU_OK(sadm_rng_normal(1, 0, 0, N * per, xT));
    TU_OK(sadm_rng_normal(1, 1, 0, (size_t)S * N * per, noise));
    sadm_sample_config sc = {c->ddim, c->eta, c->cfg, c->cfg_channels, c->clip};
    TU_OK(sadm_dit_sample(m, d, &sc, N, y, xT, noise, 0, out, NULL, NULL));

    char in[300], res[300], args[1500];
    snprintf(in, sizeof in, "%s/in.safetensors", ref_tmpdir());
    snprintf(res, sizeof res, "%s/out.safetensors", ref_tmpdir());
    if (save) TU_OK(sadm_dit_save(m, model_path));
    sadm_st_writer *w = sadm_st_writer_new();
    int64_t sx[4] = {N, C, H, H}, sz[5] = {S, N, C, H, H}, sn[1] = {N};
    TU_OK(sadm_st_writer_add(w, "x_T", SADM_DTYPE_F32, 4, sx, xT));
    TU_OK(sadm_st_writer_add(w, "noise", SADM_DTYPE_F32, 5, sz, noise));
    TU_OK(sadm_st_writer_add(w, "y", SADM_DTYPE_I64, 1, sn, y));
    TU_OK(sadm_st_writer_save(w, in));
    sadm_st_writer_free(w);
    snprintf(args, sizeof args, "sample '%s' '%s' '%s' %s '%s' %g %g %d %d", model_path, in, res, c->ddim ? "ddim" : "ddpm", c->spec,
             c->eta, c->cfg, c->cfg_channels, c->clip);
    ref_run("sample_torch.py", args);
    sadm_st_file *f;
    TU_OK(sadm_st_open(res, &f));
    TU_OK(sadm_st_read_f32(f, "samples", 4, sx, ref));
    double maxref = 0, maxdiff = 0;
    /* plain comparisons: gcc 12 for aarch64 crashes vectorising a fmax reduction here */
    for (size_t i = 0; i < N * per; i++) {
        double r = fabs(ref[i]), e = fabs((double)ref[i] - out[i]);
        if (r > maxref) maxref = r;
        if (e > maxdiff) maxdiff = e;
    }
    ck_assert_msg(maxdiff <= 1e-3 * maxref, "%s '%s' eta %g cfg %g/%d clip %d sigma %d: max|diff| %.3g, max|ref| %.3g",
                  c->ddim ? "ddim" : "ddpm", c->spec, c->eta, c->cfg, c->cfg_channels, c->clip, c->learn_sigma, maxdiff, maxref);
    const sadm_tensor_info *tb = sadm_st_find(f, "betas"), *tm = sadm_st_find(f, "timestep_map");
    ck_assert(tb && tm && tb->numel == (size_t)S && tm->numel == (size_t)S);
    const double *betas = sadm_diffusion_array(d, "betas");
    const int64_t *map = sadm_diffusion_timestep_map(d);
    for (int i = 0; i < S; i++) {
        double rb, rm;
        memcpy(&rb, (const char *)tb->data + 8 * i, 8);
        memcpy(&rm, (const char *)tm->data + 8 * i, 8);
        ck_assert_msg(fabs(betas[i] - rb) <= 1e-12 * rb && map[i] == (int64_t)rm, "'%s' step %d: beta %.17g vs %.17g, t %lld vs %g",
                      c->spec, i, betas[i], rb, (long long)map[i], rm);
    }
    sadm_st_close(f);
    sadm_diffusion_free(d);
    free(xT), free(noise), free(out), free(ref);
    ref_cleanup();
}

static void compare(const sample_case *c) {
    sadm_dit_config cfg = {8, 2, 4, 32, 2, 4, 4.0f, 0.1f, 5, c->learn_sigma};
    sadm_dit *m;
    TU_OK(sadm_dit_create(&cfg, 7, &m));
    tu_randomise_dit(m, 7, 0.5f);
    char model[300];
    snprintf(model, sizeof model, "%s/m.safetensors", ref_tmpdir());
    static const int64_t y[4] = {0, 4, 2, 1};
    compare_model(m, model, 1, c, y);
    sadm_dit_free(m);
}

/* The shipped base (data/fmnist-dit.safetensors, F16 storage; $SADM_BASE_MODEL from make
 * check) loads, and samples from it equal PyTorch's DiT on the same file and noise. */
START_TEST(test_shipped_base_vs_torch) {
    const char *path = getenv("SADM_BASE_MODEL");
    ck_assert_msg(path && *path, "SADM_BASE_MODEL is not set (make check sets it to data/fmnist-dit.safetensors)");
    sadm_dit *m;
    ck_assert_msg(sadm_dit_load(path, NULL, &m) == SADM_OK, "%s", sadm_last_error());
    const sadm_dit_config *mc = sadm_dit_get_config(m);
    ck_assert(mc->in_channels == 1 && mc->input_size == 32 && mc->num_classes == 10 && mc->learn_sigma);
    /* few steps: ~1 GFLOP per model call, and the NEON stage of .ci/run runs this under qemu */
    static const int64_t y[2] = {9, 0};
    const sample_case ddim = {1, "ddim5", 0.0f, 1.0f, 0, 1, 1, 2}, ddpm = {0, "4", 0, 2.0f, 0, 1, 1, 2};
    compare_model(m, path, 0, &ddim, y);
    compare_model(m, path, 0, &ddpm, y); /* guidance: the first 2 as cond + uncond halves */
    sadm_dit_free(m);
}
END_TEST

START_TEST(test_samplers_vs_torch) {
    static const sample_case cases[] = {
        {0, "25", 0, 1.0f, 0, 0, 1, 3},      /* DDPM, learned variance, respaced */
        {0, "10,5,5", 0, 1.5f, 3, 1, 1, 2},  /* sections, guidance on 3 channels, clipped */
        {1, "ddim10", 0.0f, 1.0f, 0, 0, 1, 3},
        {1, "ddim10", 0.5f, 2.0f, 0, 0, 1, 2}, /* DDIM eta 0.5, guidance on all channels */
        {0, "8", 0, 1.0f, 0, 0, 0, 2},        /* fixed-large variance (no learn_sigma) */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) compare(&cases[i]);
}
END_TEST

START_TEST(test_unspaced_and_errors) {
    sadm_diffusion *d;
    TU_OK(sadm_diffusion_respaced("linear", 1000, "", &d));
    ck_assert_int_eq(sadm_diffusion_steps(d), 1000);
    ck_assert_int_eq(sadm_diffusion_timestep_map(d)[999], 999);
    sadm_diffusion_free(d);
    TU_OK(sadm_diffusion_respaced("linear", 1000, "ddim25", &d));
    ck_assert_int_eq(sadm_diffusion_steps(d), 25);
    ck_assert_int_eq(sadm_diffusion_timestep_map(d)[1], 40);
    sadm_diffusion_free(d);
    ck_assert_int_eq(sadm_diffusion_respaced("linear", 1000, "ddim999", &d), SADM_ERR_ARG);
    ck_assert_int_eq(sadm_diffusion_respaced("linear", 1000, "2000", &d), SADM_ERR_ARG);
    ck_assert_msg(strstr(sadm_last_error(), "cannot take 2000 steps"), "%s", sadm_last_error());
    ck_assert_int_eq(sadm_diffusion_respaced("linear", 1000, "ten", &d), SADM_ERR_ARG);
    sadm_dit_config cfg = {8, 2, 4, 32, 1, 4, 4.0f, 0.0f, 5, 1}; /* no class dropout: no null class */
    sadm_dit *m;
    TU_OK(sadm_dit_create(&cfg, 1, &m));
    TU_OK(sadm_diffusion_respaced("linear", 1000, "5", &d));
    float x[4 * 64], out[4 * 64];
    int64_t y = 1, bad = 9;
    sadm_sample_config sc = {0, 0, 1.5f, 0, 0};
    ck_assert_int_eq(sadm_dit_sample(m, d, &sc, 1, &y, x, NULL, 0, out, NULL, NULL), SADM_ERR_ARG);
    ck_assert_msg(strstr(sadm_last_error(), "class dropout"), "%s", sadm_last_error());
    sc.cfg_scale = 1.0f;
    ck_assert_int_eq(sadm_dit_sample(m, d, &sc, 1, &bad, x, NULL, 0, out, NULL, NULL), SADM_ERR_ARG);
    sadm_dit_free(m);
    sadm_diffusion_free(d);
}
END_TEST

int main(void) {
    Suite *s = suite_create("sample");
    TCase *tc = tcase_create("sample");
    tcase_set_timeout(tc, 600);
    tcase_add_test(tc, test_unspaced_and_errors);
    tcase_add_test(tc, test_samplers_vs_torch);
    tcase_add_test(tc, test_shipped_base_vs_torch);
    suite_add_tcase(s, tc);
    return tu_run(s);
}
