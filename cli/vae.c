/* sadm vae encode|decode: the SD VAE on a tensor file, as `sadm forward` runs the DiT, so
 * that any implementation can be compared with it. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "sadm.h"

#define VAE_OPTS                                                                                               \
    {"vae", "the VAE: a diffusers AutoencoderKL folder (config.json + diffusion_pytorch_model.safetensors) or one "  \
            ".safetensors with the config in its metadata", NULL, 0},                                          \
        {"in", "input tensor file (.safetensors)", NULL, 0}, {"out", "output tensor file (.safetensors)", NULL, 0}, \
        {"threads", "threads (default: all cores)", NULL, 0},                                                  \
        {"device", "auto, cpu or cuda (default: $SADM_DEVICE, else auto)", NULL, 0}

/* The options every subcommand needs, the VAE and the input's tensor `name` (N, C, H, W)
 * as float32: 0, or an exit code with the message printed. */
static int open_inputs(const char *cmd, const cli_opt *o, size_t n, const char *name, sadm_vae **v, float **x,
                       int64_t shape[4]) {
    const char *vpath = cli_get(o, n, "vae"), *in = cli_get(o, n, "in"), *out = cli_get(o, n, "out");
    if (!vpath || !in || !out) {
        fprintf(stderr, "sadm vae %s: --vae, --in and --out are required (see --help)\n", cmd);
        return 2;
    }
    int rc = cli_runtime(o, n);
    if (rc) return rc;
    if (sadm_vae_load(vpath, v)) return cli_fail("vae");
    sadm_st_file *f;
    if (sadm_st_open(in, &f)) {
        sadm_vae_free(*v);
        return cli_fail("vae");
    }
    const sadm_tensor_info *t = sadm_st_find(f, name);
    const sadm_vae_config *c = sadm_vae_get_config(*v);
    int want_c = strcmp(cmd, "encode") == 0 ? c->in_channels : c->latent_channels;
    if (!t || t->ndim != 4 || t->shape[1] != want_c) {
        fprintf(stderr, "sadm vae %s: %s: expected a tensor '%s' of shape (N, %d, H, W)%s\n", cmd, in, name, want_c,
                t ? "; it has another shape" : "; there is none");
        rc = 2;
    }
    if (!rc) {
        memcpy(shape, t->shape, 4 * sizeof(int64_t));
        if (shape[0] < 1 || shape[0] > 1000000 || shape[2] > 16384 || shape[3] > 16384) {
            fprintf(stderr, "sadm vae %s: %s: '%s' has %lld x %lld x %lld x %lld values, beyond what the VAE takes\n", cmd,
                    in, name, (long long)shape[0], (long long)shape[1], (long long)shape[2], (long long)shape[3]);
            rc = 2;
        }
    }
    if (!rc && !(*x = malloc(t->numel * sizeof(float)))) {
        fprintf(stderr, "sadm vae %s: out of memory for %s\n", cmd, in);
        rc = 1;
    }
    if (!rc && sadm_st_read_f32(f, name, 0, NULL, *x)) rc = cli_fail("vae");
    sadm_st_close(f);
    if (rc) {
        sadm_vae_free(*v);
        *v = NULL;
    }
    return rc;
}

static int save_tensors(const char *path, int k, const char *const *names, float *const *data, const int64_t shape[4]) {
    sadm_st_writer *w = sadm_st_writer_new();
    int rc = !w;
    for (int i = 0; i < k && !rc; i++) rc = sadm_st_writer_add(w, names[i], SADM_DTYPE_F32, 4, shape, data[i]) != SADM_OK;
    if (!rc) rc = sadm_st_writer_save(w, path) != SADM_OK;
    sadm_st_writer_free(w);
    return rc ? cli_fail("vae") : 0;
}

static int cmd_encode(int argc, char **argv) {
    cli_opt o[] = {VAE_OPTS};
    int rc = cli_parse(argc, argv, o, NOPT(o), "sadm vae encode --vae V --in X.safetensors --out Y.safetensors",
                       "Encodes images: X holds x (N,3,H,W) in [-1, 1], H and W multiples of the VAE's factor (8\n"
                       "for the SD VAE); Y gets the posterior's mean and logvar (N,latent,H/8,W/8), unscaled (DiT\n"
                       "trains on 0.18215 times a sample of it) and logvar clamped to [-30, 20], as diffusers'\n"
                       "AutoencoderKL.encode(x).latent_dist gives them.");
    if (rc) return rc == 1 ? 0 : rc;
    sadm_vae *v = NULL;
    float *x = NULL;
    int64_t s[4];
    if ((rc = open_inputs("encode", o, NOPT(o), "x", &v, &x, s))) return rc;
    const sadm_vae_config *c = sadm_vae_get_config(v);
    int f = sadm_vae_factor(c), N = (int)s[0], H = (int)s[2], W = (int)s[3];
    if (H % f || W % f) {
        fprintf(stderr, "sadm vae encode: %s: images of %dx%d pixels; this VAE needs multiples of %d\n",
                cli_get(o, NOPT(o), "in"), H, W, f);
        rc = 2;
    }
    size_t per_x = (size_t)c->in_channels * H * W, per_z = (size_t)c->latent_channels * (H / f) * (W / f);
    float *mean = rc ? NULL : malloc((size_t)N * per_z * sizeof(float));
    float *logvar = rc ? NULL : malloc((size_t)N * per_z * sizeof(float));
    if (!rc && (!mean || !logvar)) rc = 1, fprintf(stderr, "sadm vae encode: out of memory\n");
    cli_progress_state p = {0};
    for (int i = 0; i < N && !rc; i++) {
        if (sadm_vae_encode(v, 1, H, W, x + i * per_x, mean + i * per_z, logvar + i * per_z)) rc = cli_fail("vae");
        else if (N > 1) cli_progress(&p, i + 1, N, "images");
    }
    if (!rc) {
        int64_t zs[4] = {N, c->latent_channels, H / f, W / f};
        const char *names[2] = {"mean", "logvar"};
        float *data[2] = {mean, logvar};
        rc = save_tensors(cli_get(o, NOPT(o), "out"), 2, names, data, zs);
    }
    free(x), free(mean), free(logvar);
    sadm_vae_free(v);
    return rc;
}

static int cmd_decode(int argc, char **argv) {
    cli_opt o[] = {VAE_OPTS};
    int rc = cli_parse(argc, argv, o, NOPT(o), "sadm vae decode --vae V --in Z.safetensors --out X.safetensors",
                       "Decodes latents: Z holds z (N,latent,h,w), unscaled (divide a DiT's samples by the scaling\n"
                       "factor first); X gets x (N,3,8h,8w), about [-1, 1], as diffusers' AutoencoderKL.decode(z).");
    if (rc) return rc == 1 ? 0 : rc;
    sadm_vae *v = NULL;
    float *z = NULL;
    int64_t s[4];
    if ((rc = open_inputs("decode", o, NOPT(o), "z", &v, &z, s))) return rc;
    const sadm_vae_config *c = sadm_vae_get_config(v);
    int f = sadm_vae_factor(c), N = (int)s[0], h = (int)s[2], w = (int)s[3];
    size_t per_z = (size_t)c->latent_channels * h * w, per_x = (size_t)c->out_channels * h * f * w * f;
    float *x = malloc((size_t)N * per_x * sizeof(float));
    if (!x) rc = 1, fprintf(stderr, "sadm vae decode: out of memory\n");
    cli_progress_state p = {0};
    for (int i = 0; i < N && !rc; i++) {
        if (sadm_vae_decode(v, 1, h, w, z + i * per_z, x + i * per_x)) rc = cli_fail("vae");
        else if (N > 1) cli_progress(&p, i + 1, N, "images");
    }
    if (!rc) {
        int64_t xs[4] = {N, c->out_channels, (int64_t)h * f, (int64_t)w * f};
        const char *names[1] = {"x"};
        float *data[1] = {x};
        rc = save_tensors(cli_get(o, NOPT(o), "out"), 1, names, data, xs);
    }
    free(x), free(z);
    sadm_vae_free(v);
    return rc;
}

int cli_decode_latent(sadm_vae *v, int C, int h, const float *sample, float *z, float *x) {
    const float sf = sadm_vae_get_config(v)->scaling_factor;
    for (size_t j = 0; j < (size_t)C * h * h; j++) z[j] = sample[j] / sf;
    return sadm_vae_decode(v, 1, h, h, z, x);
}

int sadm_cmd_vae(int argc, char **argv) {
    if (argc >= 2 && strcmp(argv[1], "encode") == 0) return cmd_encode(argc - 1, argv + 1);
    if (argc >= 2 && strcmp(argv[1], "decode") == 0) return cmd_decode(argc - 1, argv + 1);
    FILE *out = argc >= 2 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) ? stdout : stderr;
    fprintf(out, "usage: sadm vae encode|decode --vae V --in IN.safetensors --out OUT.safetensors\n"
                 "  encode   images x (N,3,H,W) in [-1, 1] -> the posterior's mean and logvar (unscaled)\n"
                 "  decode   latents z (N,4,h,w), unscaled -> images x (N,3,8h,8w)\n"
                 "V: a diffusers AutoencoderKL folder (e.g. stabilityai/sd-vae-ft-ema) or one .safetensors file\n"
                 "with its config.json in the metadata. 'sadm vae encode --help' for more.\n");
    return out == stdout ? 0 : 2;
}
