/* The SD VAE against diffusers' own AutoencoderKL (0.27.2, random weights,
 * tests/reference/vae_ref.py): encode (posterior mean and log-variance) and decode at
 * small configurations and odd sizes, on every kernel set, within 1e-4 of max|ref|;
 * the older attention names and the single-file form give the same weights; bad files
 * and sizes are refused with messages naming them. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "reference.h"
#include "testutil.h"

typedef struct vae_case {
    const char *name, *config; /* config.json text */
    int N, H, W;
} vae_case;

static const vae_case CASES[] = {
    {"2 blocks, groups 4", "{\"block_out_channels\": [8, 16], \"layers_per_block\": 1, \"norm_num_groups\": 4, "
     "\"down_block_types\": [\"DownEncoderBlock2D\", \"DownEncoderBlock2D\"], "
     "\"up_block_types\": [\"UpDecoderBlock2D\", \"UpDecoderBlock2D\"]}", 2, 40, 48},
    {"4 blocks, groups 32", "{\"block_out_channels\": [32, 32, 64, 64], \"layers_per_block\": 2, \"norm_num_groups\": 32, "
     "\"down_block_types\": [\"DownEncoderBlock2D\", \"DownEncoderBlock2D\", \"DownEncoderBlock2D\", "
     "\"DownEncoderBlock2D\"], \"up_block_types\": [\"UpDecoderBlock2D\", \"UpDecoderBlock2D\", \"UpDecoderBlock2D\", "
     "\"UpDecoderBlock2D\"]}", 1, 40, 48},
    {"3 blocks, groups 8, no mid attention, no quant convs, 3 latents",
     "{\"block_out_channels\": [8, 16, 24], \"layers_per_block\": 1, \"norm_num_groups\": 8, \"latent_channels\": 3, "
     "\"mid_block_add_attention\": false, \"use_quant_conv\": false, \"use_post_quant_conv\": false, "
     "\"down_block_types\": [\"DownEncoderBlock2D\", \"DownEncoderBlock2D\", \"DownEncoderBlock2D\"], "
     "\"up_block_types\": [\"UpDecoderBlock2D\", \"UpDecoderBlock2D\", \"UpDecoderBlock2D\"]}", 2, 24, 20},
};

static void write_text(const char *path, const char *text) {
    FILE *f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    fputs(text, f);
    fclose(f);
}

static void save_one(const char *path, const char *name, const float *x, int N, int C, int H, int W) {
    sadm_st_writer *w = sadm_st_writer_new();
    int64_t shape[4] = {N, C, H, W};
    TU_OK(sadm_st_writer_add(w, name, SADM_DTYPE_F32, 4, shape, x));
    TU_OK(sadm_st_writer_save(w, path));
    sadm_st_writer_free(w);
}

static float *read_one(const char *path, const char *name, size_t n) {
    sadm_st_file *f;
    TU_OK(sadm_st_open(path, &f));
    const sadm_tensor_info *t = sadm_st_find(f, name);
    ck_assert_msg(t && t->numel == n, "%s: '%s' missing or of %zu values, expected %zu", path, name, t ? t->numel : 0, n);
    float *v = tu_alloc(n);
    TU_OK(sadm_st_read_f32(f, name, 0, NULL, v));
    sadm_st_close(f);
    return v;
}

static void compare_case(const vae_case *k, int index) {
    char cfg[300], dir[300], args[1200];
    snprintf(cfg, sizeof cfg, "%s/c%d.json", ref_tmpdir(), index);
    snprintf(dir, sizeof dir, "%s/vae%d", ref_tmpdir(), index);
    write_text(cfg, k->config);
    snprintf(args, sizeof args, "make '%s' '%s' %d", cfg, dir, 10 + index);
    ref_run_diffusers("vae_ref.py", args);
    sadm_vae *v;
    TU_OK(sadm_vae_load(dir, &v));
    const sadm_vae_config *c = sadm_vae_get_config(v);
    int f = sadm_vae_factor(c), L = c->latent_channels, h = k->H / f, w = k->W / f;
    size_t nx = (size_t)k->N * 3 * k->H * k->W, nz = (size_t)k->N * L * h * w;
    float *x = tu_uniform(nx, 50 + index, -1, 1), *z = tu_uniform(nz, 60 + index, -2, 2);
    save_one(ref_path("x.safetensors"), "x", x, k->N, 3, k->H, k->W);
    save_one(ref_path("z.safetensors"), "z", z, k->N, L, h, w);
    snprintf(args, sizeof args, "encode '%s' '%s' '%s'", dir, ref_path("x.safetensors"), ref_path("enc.safetensors"));
    ref_run_diffusers("vae_ref.py", args);
    snprintf(args, sizeof args, "decode '%s' '%s' '%s'", dir, ref_path("z.safetensors"), ref_path("dec.safetensors"));
    ref_run_diffusers("vae_ref.py", args);
    float *rmean = read_one(ref_path("enc.safetensors"), "mean", nz), *rlogvar = read_one(ref_path("enc.safetensors"), "logvar", nz);
    float *rx = read_one(ref_path("dec.safetensors"), "x", nx);
    float *mean = tu_alloc(nz), *logvar = tu_alloc(nz), *xo = tu_alloc(nx);
    for (const char *const *isa = tu_isas(); *isa; isa++) {
        tu_use_isa(*isa);
        char what[200];
        TU_OK(sadm_vae_encode(v, k->N, k->H, k->W, x, mean, logvar));
        snprintf(what, sizeof what, "%s: encode mean (%s)", k->name, *isa);
        tu_assert_near_max(what, mean, rmean, nz, 1e-4);
        snprintf(what, sizeof what, "%s: encode logvar (%s)", k->name, *isa);
        tu_assert_near_max(what, logvar, rlogvar, nz, 1e-4);
        TU_OK(sadm_vae_decode(v, k->N, h, w, z, xo));
        snprintf(what, sizeof what, "%s: decode (%s)", k->name, *isa);
        tu_assert_near_max(what, xo, rx, nx, 1e-4);
    }
    sadm_vae_free(v);
    free(x), free(z), free(rmean), free(rlogvar), free(rx), free(mean), free(logvar), free(xo);
}

START_TEST(test_vae_vs_diffusers) {
    compare_case(&CASES[_i], _i);
    ref_cleanup();
}
END_TEST

/* the same weights under the published files' attention names (some as 1x1 convs), as a
 * folder and as one file with the config in its metadata */
START_TEST(test_old_names_and_single_file) {
    char cfg[300], args[1200], a[300], b[300], one[320];
    snprintf(cfg, sizeof cfg, "%s/c.json", ref_tmpdir());
    write_text(cfg, CASES[0].config);
    snprintf(a, sizeof a, "%s/new", ref_tmpdir());
    snprintf(b, sizeof b, "%s/old", ref_tmpdir());
    snprintf(one, sizeof one, "%s/old.safetensors", ref_tmpdir());
    snprintf(args, sizeof args, "make '%s' '%s' 5", cfg, a);
    ref_run_diffusers("vae_ref.py", args);
    snprintf(args, sizeof args, "make '%s' '%s' 5 old", cfg, b);
    ref_run_diffusers("vae_ref.py", args);
    sadm_vae *va, *vb, *vc;
    TU_OK(sadm_vae_load(a, &va));
    TU_OK(sadm_vae_load(b, &vb));
    TU_OK(sadm_vae_load(one, &vc));
    size_t P = sadm_vae_param_total(va);
    ck_assert_uint_eq(P, sadm_vae_param_total(vb));
    tu_assert_same("old attention names", sadm_vae_param_data(vb), sadm_vae_param_data(va), P);
    tu_assert_same("single file", sadm_vae_param_data(vc), sadm_vae_param_data(va), P);
    ck_assert(sadm_vae_get_config(vc)->scaling_factor == 0.18215f);
    /* a pipeline folder with vae/ inside */
    char pipe[300], cmd[1000];
    snprintf(pipe, sizeof pipe, "%s/pipe", ref_tmpdir());
    snprintf(cmd, sizeof cmd, "mkdir -p '%s' && cp -r '%s' '%s/vae'", pipe, a, pipe);
    ck_assert_int_eq(system(cmd), 0);
    sadm_vae *vp;
    TU_OK(sadm_vae_load(pipe, &vp));
    tu_assert_same("pipeline folder", sadm_vae_param_data(vp), sadm_vae_param_data(va), P);
    sadm_vae_free(va), sadm_vae_free(vb), sadm_vae_free(vc), sadm_vae_free(vp);
    ref_cleanup();
}
END_TEST

static void assert_refused(const char *path, const char *expect) {
    sadm_vae *v = (sadm_vae *)1;
    ck_assert_int_ne(sadm_vae_load(path, &v), SADM_OK);
    ck_assert_ptr_null(v);
    ck_assert_msg(strstr(sadm_last_error(), expect), "%s: expected '%s' in: %s", path, expect, sadm_last_error());
}

START_TEST(test_bad_input) {
    char cfg[300], args[1200], dir[300], cmd[1400];
    snprintf(cfg, sizeof cfg, "%s/c.json", ref_tmpdir());
    write_text(cfg, CASES[0].config);
    snprintf(dir, sizeof dir, "%s/m", ref_tmpdir());
    snprintf(args, sizeof args, "make '%s' '%s' 3", cfg, dir);
    ref_run_diffusers("vae_ref.py", args);
    /* a config of another architecture for these weights: the first tensor it lacks */
    snprintf(cmd, sizeof cmd, "cp -r '%s' '%s/w' && sed -i 's/\"layers_per_block\": 1/\"layers_per_block\": 2/' '%s/w/config.json'",
             dir, ref_tmpdir(), ref_tmpdir());
    ck_assert_int_eq(system(cmd), 0);
    assert_refused(ref_path("w"), "no tensor 'encoder.down_blocks.0.resnets.1.norm1.weight'");
    /* fewer layers than the weights: the first tensor left over */
    snprintf(cmd, sizeof cmd, "cp -r '%s/w' '%s/x' && sed -i 's/\"layers_per_block\": 2/\"layers_per_block\": 1/; "
             "s/\"norm_num_groups\": 4/\"norm_num_groups\": 4, \"mid_block_add_attention\": false/' '%s/x/config.json'",
             ref_tmpdir(), ref_tmpdir(), ref_tmpdir());
    ck_assert_int_eq(system(cmd), 0);
    assert_refused(ref_path("x"), "is not a parameter of this VAE");
    /* other block types, classes, a shift factor, broken JSON, no config */
    static const char *const bad[][2] = {
        {"{\"block_out_channels\": [8], \"down_block_types\": [\"AttnDownEncoderBlock2D\"]}", "only DownEncoderBlock2D"},
        {"{\"_class_name\": \"AutoencoderTiny\", \"block_out_channels\": [8]}", "only AutoencoderKL"},
        {"{\"block_out_channels\": [8], \"shift_factor\": 0.1159}", "shift_factor"},
        {"{\"block_out_channels\": [8, 12], \"norm_num_groups\": 8}", "block_out_channels[1] = 12 does not split"},
        {"{\"block_out_channels\": []}", "block_out_channels"},
        {"{\"block_out_channels\": [8], \"layers_per_block\": 1.5}", "\"layers_per_block\" must be a whole number"},
        {"{\"block_out_channels\": [8,", "not JSON"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        sadm_vae_config c;
        ck_assert_int_ne(sadm_vae_config_from_json(bad[i][0], "config.json", &c), SADM_OK);
        ck_assert_msg(strstr(sadm_last_error(), bad[i][1]) && strstr(sadm_last_error(), "config.json"), "%s: %s",
                      bad[i][0], sadm_last_error());
    }
    snprintf(cmd, sizeof cmd, "mkdir -p '%s/empty'", ref_tmpdir());
    ck_assert_int_eq(system(cmd), 0);
    assert_refused(ref_path("empty"), "needs config.json");
    /* a safetensors file without a config */
    float one = 1;
    save_one(ref_path("plain.safetensors"), "x", &one, 1, 1, 1, 1);
    assert_refused(ref_path("plain.safetensors"), "no __metadata__ \"config\"");
    /* sizes the VAE cannot take */
    sadm_vae *v;
    TU_OK(sadm_vae_load(dir, &v));
    float *x = tu_alloc(3 * 41 * 48), *m = tu_alloc(4 * 21 * 24);
    ck_assert_int_eq(sadm_vae_encode(v, 1, 41, 48, x, m, NULL), SADM_ERR_ARG);
    ck_assert_msg(strstr(sadm_last_error(), "41x48") && strstr(sadm_last_error(), "multiples of 2"), "%s",
                  sadm_last_error());
    ck_assert_int_eq(sadm_vae_decode(v, 0, 4, 4, m, x), SADM_ERR_ARG);
    sadm_vae_free(v);
    free(x), free(m);
    ref_cleanup();
}
END_TEST

/* sadm vae encode / decode write what the library computes (bitwise), and refuse bad input */
START_TEST(test_cli_commands) {
    char cfg[300], args[1500], dir[300], log[4096];
    snprintf(cfg, sizeof cfg, "%s/c.json", ref_tmpdir());
    write_text(cfg, CASES[0].config);
    snprintf(dir, sizeof dir, "%s/m", ref_tmpdir());
    snprintf(args, sizeof args, "make '%s' '%s' 4", cfg, dir);
    ref_run_diffusers("vae_ref.py", args);
    sadm_vae *v;
    TU_OK(sadm_vae_load(dir, &v));
    enum { N = 3, H = 16, W = 12, h = 8, w = 6 };
    size_t nx = (size_t)N * 3 * H * W, nz = (size_t)N * 4 * h * w;
    float *x = tu_uniform(nx, 70, -1, 1), *mean = tu_alloc(nz), *logvar = tu_alloc(nz), *xd = tu_alloc(nx);
    TU_OK(sadm_vae_encode(v, N, H, W, x, mean, logvar));
    TU_OK(sadm_vae_decode(v, N, h, w, mean, xd));
    save_one(ref_path("x.safetensors"), "x", x, N, 3, H, W);
    snprintf(args, sizeof args, "vae encode --vae '%s' --in '%s' --out '%s'", dir, ref_path("x.safetensors"),
             ref_path("y.safetensors"));
    ck_assert_msg(ref_sadm(args, log, sizeof log) == 0, "sadm vae encode failed: %s", log);
    float *m2 = read_one(ref_path("y.safetensors"), "mean", nz), *l2 = read_one(ref_path("y.safetensors"), "logvar", nz);
    tu_assert_same("sadm vae encode: mean", m2, mean, nz);
    tu_assert_same("sadm vae encode: logvar", l2, logvar, nz);
    save_one(ref_path("z.safetensors"), "z", mean, N, 4, h, w);
    snprintf(args, sizeof args, "vae decode --vae '%s' --in '%s' --out '%s'", dir, ref_path("z.safetensors"),
             ref_path("d.safetensors"));
    ck_assert_msg(ref_sadm(args, log, sizeof log) == 0, "sadm vae decode failed: %s", log);
    float *x2 = read_one(ref_path("d.safetensors"), "x", nx);
    tu_assert_same("sadm vae decode", x2, xd, nx);
    /* bad input, each named */
    float odd[3 * 5 * 4] = {0};
    save_one(ref_path("odd.safetensors"), "x", odd, 1, 3, 5, 4);
    struct {
        const char *args, *expect;
        int rc;
    } bad[] = {
        {"vae encode --vae '%s' --in '%s/odd.safetensors' --out '%s/o.safetensors'", "images of 5x4 pixels; this VAE needs multiples of 2", 2},
        {"vae decode --vae '%s' --in '%s/x.safetensors' --out '%s/o.safetensors'", "expected a tensor 'z' of shape (N, 4, H, W); there is none", 2},
        {"vae encode --vae '%s' --in '%s/z.safetensors' --out '%s/o.safetensors'", "expected a tensor 'x' of shape (N, 3, H, W); there is none", 2},
        {"vae encode --vae '%s/nothing' --in '%s/x.safetensors' --out '%s/o.safetensors'", "nothing", 1},
        {"vae encode --vae '%s' --out '%s/o.safetensors'%s", "--vae, --in and --out are required", 2},
        {"vae sideways %s%s%s", "usage: sadm vae encode|decode", 2},
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        char a[1500];
        snprintf(a, sizeof a, bad[i].args, i == 5 ? "" : dir, i == 5 ? "" : ref_tmpdir(), i >= 4 ? "" : ref_tmpdir());
        ck_assert_int_eq(ref_sadm(a, log, sizeof log), bad[i].rc);
        ck_assert_msg(strstr(log, bad[i].expect), "%s: expected '%s' in: %s", a, bad[i].expect, log);
    }
    sadm_vae_free(v);
    free(x), free(mean), free(logvar), free(xd), free(m2), free(l2), free(x2);
    ref_cleanup();
}
END_TEST

/* sadm sample --vae: latent samples decoded (divided by the scaling factor first) and
 * written as ADM's reference batches hold images, quantised as DiT's sample_ddp.py does */
START_TEST(test_sample_decodes) {
    char cfg[300], args[2000], dir[300], log[4096], model[300];
    snprintf(cfg, sizeof cfg, "%s/c.json", ref_tmpdir());
    write_text(cfg, CASES[0].config);
    snprintf(dir, sizeof dir, "%s/m", ref_tmpdir());
    snprintf(args, sizeof args, "make '%s' '%s' 6", cfg, dir);
    ref_run_diffusers("vae_ref.py", args);
    static const sadm_dit_config dc = {8, 2, 4, 16, 2, 2, 4.0f, 0.1f, 4, 1};
    sadm_dit *m;
    TU_OK(sadm_dit_create(&dc, 3, &m));
    tu_randomise_dit(m, 4, 0.5f);
    snprintf(model, sizeof model, "%s/dit.safetensors", ref_tmpdir());
    TU_OK(sadm_dit_save(m, model));
    sadm_dit_free(m);
    snprintf(args, sizeof args,
             "sample --model '%s' --num 3 --labels 0,1,3 --sampler ddim --steps 5 --vae '%s' --out-npz '%s' "
             "--out-tensor '%s' --grid '%s'",
             model, dir, ref_path("s.npz"), ref_path("s.safetensors"), ref_path("s.png"));
    ck_assert_msg(ref_sadm(args, log, sizeof log) == 0, "sadm sample --vae failed: %s", log);
    ck_assert_msg(strstr(log, "wrote") && strstr(log, "arr_0 uint8 3x16x16x3"), "%s", log);
    /* the latents the run wrote, decoded here */
    enum { N = 3, h = 8, H = 16 };
    float *lat = read_one(ref_path("s.safetensors"), "samples", (size_t)N * 4 * h * h);
    sadm_vae *v;
    TU_OK(sadm_vae_load(dir, &v));
    for (size_t i = 0; i < (size_t)N * 4 * h * h; i++) lat[i] /= 0.18215f;
    float *x = tu_alloc((size_t)N * 3 * H * H);
    TU_OK(sadm_vae_decode(v, N, h, h, lat, x));
    sadm_npz *z;
    TU_OK(sadm_npz_open(ref_path("s.npz"), &z));
    sadm_dtype dt;
    int nd;
    int64_t shape[8];
    TU_OK(sadm_npz_info(z, "arr_0", &dt, &nd, shape));
    ck_assert(dt == SADM_DTYPE_U8 && nd == 4 && shape[0] == N && shape[1] == H && shape[2] == H && shape[3] == 3);
    uint8_t *img = malloc((size_t)N * H * H * 3);
    TU_OK(sadm_npz_read(z, "arr_0", img));
    sadm_npz_close(z);
    for (int n = 0; n < N; n++)
        for (int c = 0; c < 3; c++)
            for (int i = 0; i < H * H; i++) {
                /* sample_ddp.py: torch.clamp(127.5 * x + 128.0, 0, 255).to(torch.uint8) */
                double q = 127.5 * x[((size_t)n * 3 + c) * H * H + i] + 128.0;
                int want = q < 0 ? 0 : q > 255 ? 255 : (int)q;
                ck_assert_msg(img[((size_t)n * H * H + i) * 3 + c] == want, "image %d channel %d pixel %d: %d, expected %d",
                              n, c, i, img[((size_t)n * H * H + i) * 3 + c], want);
            }
    /* a VAE of other latent channels is refused before sampling */
    char cfg3[300], dir3[300];
    snprintf(cfg3, sizeof cfg3, "%s/c3.json", ref_tmpdir());
    write_text(cfg3, "{\"block_out_channels\": [8], \"latent_channels\": 3, \"norm_num_groups\": 4}");
    snprintf(dir3, sizeof dir3, "%s/m3", ref_tmpdir());
    snprintf(args, sizeof args, "make '%s' '%s' 6", cfg3, dir3);
    ref_run_diffusers("vae_ref.py", args);
    snprintf(args, sizeof args, "sample --model '%s' --num 2 --vae '%s' --grid ''", model, dir3);
    ck_assert_int_eq(ref_sadm(args, log, sizeof log), 2);
    ck_assert_msg(strstr(log, "4-channel samples but the VAE") && strstr(log, "3-channel latents"), "%s", log);
    snprintf(args, sizeof args, "sample --model '%s' --num 2 --out-npz '%s' --grid ''", model, ref_path("t.npz"));
    ck_assert_int_eq(ref_sadm(args, log, sizeof log), 2);
    ck_assert_msg(strstr(log, "pass --vae"), "%s", log);
    sadm_vae_free(v);
    free(lat), free(x), free(img);
    ref_cleanup();
}
END_TEST

int main(void) {
    Suite *s = suite_create("vae");
    TCase *tc = tcase_create("vae");
    tcase_set_timeout(tc, 900);
    tcase_add_loop_test(tc, test_vae_vs_diffusers, 0, (int)(sizeof CASES / sizeof *CASES));
    tcase_add_test(tc, test_old_names_and_single_file);
    tcase_add_test(tc, test_bad_input);
    tcase_add_test(tc, test_cli_commands);
    tcase_add_test(tc, test_sample_decodes);
    suite_add_tcase(s, tc);
    return tu_run(s);
}
