/* sadm forward / sadm loss: run a model file on a batch file and write what came out, so
 * that libsadm can be checked against any other implementation. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "sadm_opts.h"
#include "sadm.h"

int cli_fail(const char *cmd) {
    fprintf(stderr, "sadm %s: %s\n", cmd, sadm_last_error());
    return 1;
}

#define MODEL_OPTS                                                                                              \
    {"model", "model file (.safetensors with DiT names)", NULL, 0},                                            \
    {"batch", "input batch (.safetensors)", NULL, 0}, {"out", "output file (.safetensors)", NULL, 0},          \
    {"arch", "config for a model file without metadata, e.g. DiT-XL/2", NULL, 0},                              \
    {"image-size", "with --arch: image size; the latent is image-size/8 with 4 channels", NULL, 0},            \
    {"input-size", "with --arch: the model's input size (instead of --image-size)", NULL, 0},                  \
    {"in-channels", "with --arch and --input-size: input channels", "4", 0},                                   \
    {"num-classes", "with --arch: classes", "1000", 0}, {"threads", "threads (default: all cores)", NULL, 0}, \
        {"device", "auto, cpu or cuda (default: $SADM_DEVICE, else auto)", NULL, 0}, CLI_PRECISION_OPT


static int load_model(const char *cmd, const cli_opt *o, size_t n, sadm_dit **m) {
    const char *path = cli_get(o, n, "model"), *arch = cli_get(o, n, "arch");
    if (!path) {
        fprintf(stderr, "sadm %s: --model is required (see --help)\n", cmd);
        return 2;
    }
    sadm_dit_config cfg, *fallback = NULL;
    if (arch) {
        long image = 0, input = 0, chans = 4, classes = 1000;
        if (cli_int(o, n, "image-size", 8, 1 << 16, &image) < 0 || cli_int(o, n, "input-size", 1, 1 << 16, &input) < 0 ||
            cli_int(o, n, "in-channels", 1, 1 << 16, &chans) < 0 || cli_int(o, n, "num-classes", 1, 1 << 24, &classes) < 0)
            return 2;
        if (!input && !image) {
            fprintf(stderr, "sadm %s: --arch needs --image-size or --input-size\n", cmd);
            return 2;
        }
        if (!input) input = image / 8, chans = 4;
        if (sadm_dit_config_named(arch, (int)input, (int)chans, (int)classes, &cfg)) return cli_fail(cmd);
        fallback = &cfg;
    }
    if (sadm_dit_load(path, fallback, m)) return cli_fail(cmd);
    int prc = 0;
    if (sadm_dit_to_backend(*m, cli_backend()) || (prc = cli_model_precision(o, n, cmd, *m))) {
        sadm_dit_free(*m);
        *m = NULL;
        return prc ? prc : cli_fail(cmd);
    }
    return 0;
}

/* Reads a float tensor of exactly `numel` elements with the given leading size. */
static float *read_floats(const char *cmd, const sadm_st_file *f, const char *name, int ndim, const int64_t *shape) {
    size_t numel = 1;
    for (int d = 0; d < ndim; d++) numel *= (size_t)shape[d];
    float *p = malloc(numel * sizeof(float));
    if (!p || sadm_st_read_f32(f, name, ndim, shape, p)) {
        if (p) fprintf(stderr, "sadm %s: %s\n", cmd, sadm_last_error());
        else fprintf(stderr, "sadm %s: out of memory\n", cmd);
        free(p);
        return NULL;
    }
    for (size_t i = 0; i < numel; i++)
        if (!isfinite(p[i])) {
            fprintf(stderr, "sadm %s: tensor '%s' has a non-finite value (%g) at element %zu\n", cmd, name, p[i], i);
            free(p);
            return NULL;
        }
    return p;
}

/* Timesteps a DiT was trained on lie in [0, T); forward takes float t (respaced runs
 * feed fractional ones), loss whole ones. */
#define MAX_TIMESTEP 1e6

/* t as float32 or int64 (N); y as int64 (N). */
static int read_ty(const char *cmd, const sadm_st_file *f, const char *path, int N, int64_t t_max, int num_classes, float *tf,
                   int64_t *ti, int64_t *y) {
    const sadm_tensor_info *t = sadm_st_find(f, "t"), *yy = sadm_st_find(f, "y");
    if (!t || t->ndim != 1 || t->shape[0] != N || (t->dtype != SADM_DTYPE_I64 && t->dtype != SADM_DTYPE_F32)) {
        fprintf(stderr, "sadm %s: %s: needs 't' of shape (%d), int64 or float32\n", cmd, path, N);
        return 1;
    }
    if (!yy || yy->ndim != 1 || yy->shape[0] != N || yy->dtype != SADM_DTYPE_I64) {
        fprintf(stderr, "sadm %s: %s: needs 'y' of shape (%d), int64\n", cmd, path, N);
        return 1;
    }
    memcpy(y, yy->data, (size_t)N * sizeof(int64_t));
    for (int n = 0; n < N; n++)
        if (y[n] < 0 || y[n] > num_classes) { /* num_classes itself is the null class */
            fprintf(stderr, "sadm %s: %s: y[%d] = %lld is not a class in [0, %d] (%d: the null class)\n", cmd, path, n,
                    (long long)y[n], num_classes, num_classes);
            return 1;
        }
    for (int n = 0; n < N; n++) {
        if (t->dtype == SADM_DTYPE_I64) {
            int64_t v;
            memcpy(&v, (const char *)t->data + 8 * n, 8);
            if (v < 0 || v >= t_max) {
                fprintf(stderr, "sadm %s: %s: t[%d] = %lld is not a timestep in [0, %lld)\n", cmd, path, n, (long long)v,
                        (long long)t_max);
                return 1;
            }
            if (ti) ti[n] = v;
            if (tf) tf[n] = (float)v;
        } else {
            float v;
            memcpy(&v, (const char *)t->data + 4 * n, 4);
            if (!(v >= 0 && v < t_max)) {
                fprintf(stderr, "sadm %s: %s: t[%d] = %g is not a timestep in [0, %lld)\n", cmd, path, n, v, (long long)t_max);
                return 1;
            }
            if (ti) {
                if (v != (float)(int64_t)v) {
                    fprintf(stderr, "sadm %s: %s: t[%d] = %g is not a whole timestep\n", cmd, path, n, v);
                    return 1;
                }
                ti[n] = (int64_t)v;
            }
            if (tf) tf[n] = v;
        }
    }
    return 0;
}

/* Shape of x: (N, C, H, W) matching the model. */
static int batch_size(const char *cmd, const sadm_st_file *f, const char *path, const char *name, const sadm_dit_config *c,
                      int64_t shape[4]) {
    const sadm_tensor_info *x = sadm_st_find(f, name);
    if (!x || x->ndim != 4 || x->shape[1] != c->in_channels || x->shape[2] != c->input_size ||
        x->shape[3] != c->input_size || x->shape[0] < 1 || x->shape[0] > 1 << 20) {
        fprintf(stderr, "sadm %s: %s: needs '%s' of shape (N, %d, %d, %d) for this model\n", cmd, path, name,
                c->in_channels, c->input_size, c->input_size);
        return 1;
    }
    memcpy(shape, x->shape, 4 * sizeof(int64_t));
    return 0;
}

int sadm_cmd_forward(int argc, char **argv) {
    cli_opt o[] = {MODEL_OPTS};
    int rc = cli_parse(argc, argv, o, NOPT(o), "sadm forward --model M.safetensors --batch B.safetensors --out O.safetensors",
                       "Runs the model once. B holds x (N,C,H,W) float32, t (N) int64 or float32, y (N) int64;\n"
                       "O gets out (N,C_out,H,W). Labels are used as given (no class dropout; the null class is\n"
                       "num_classes).");
    if (rc) return rc == 1 ? 0 : rc;
    if ((rc = cli_runtime(o, NOPT(o)))) return rc;
    const char *bpath = cli_get(o, NOPT(o), "batch"), *opath = cli_get(o, NOPT(o), "out");
    if (!bpath || !opath) {
        fprintf(stderr, "sadm forward: --batch and --out are required (see --help)\n");
        return 2;
    }
    sadm_dit *m;
    if ((rc = load_model("forward", o, NOPT(o), &m))) return rc;
    const sadm_dit_config *c = sadm_dit_get_config(m);
    sadm_st_file *f;
    if (sadm_st_open(bpath, &f)) {
        sadm_dit_free(m);
        return cli_fail("forward");
    }
    int64_t xs[4];
    rc = batch_size("forward", f, bpath, "x", c, xs);
    int N = (int)xs[0], Co = sadm_dit_out_channels(m);
    float *x = NULL, *t = NULL, *out = NULL;
    int64_t *y = NULL;
    if (!rc) {
        x = read_floats("forward", f, "x", 4, xs);
        t = malloc((size_t)N * sizeof(float));
        y = malloc((size_t)N * sizeof(int64_t));
        out = malloc((size_t)N * Co * xs[2] * xs[3] * sizeof(float));
        rc = !x || !t || !y || !out || read_ty("forward", f, bpath, N, (int64_t)MAX_TIMESTEP, c->num_classes, t, NULL, y);
    }
    if (!rc && sadm_dit_forward(m, N, x, t, y, out)) rc = cli_fail("forward");
    if (!rc) {
        sadm_st_writer *w = sadm_st_writer_new();
        int64_t os[4] = {N, Co, xs[2], xs[3]};
        if (!w || sadm_st_writer_add(w, "out", SADM_DTYPE_F32, 4, os, out) || sadm_st_writer_save(w, opath))
            rc = cli_fail("forward");
        sadm_st_writer_free(w);
    }
    sadm_st_close(f);
    sadm_dit_free(m);
    free(x), free(t), free(y), free(out);
    return rc;
}

int sadm_cmd_loss(int argc, char **argv) {
    cli_opt o[] = {MODEL_OPTS, {"schedule", "noise schedule: linear or cosine", "linear", 0},
                   {"diffusion-steps", "diffusion steps the model was trained with", "1000", 0},
                   {"sadm", "SADM's objective instead (needs --disc)", NULL, 1},
                   {"disc", "SADM: the structure encoder (.safetensors)", NULL, 0},
                   SADM_STRUCT_OPTS};
    int rc = cli_parse(argc, argv, o, NOPT(o), "sadm loss --model M.safetensors --batch B.safetensors --out O.safetensors",
                       "Computes DiT's training loss on one batch and its gradients. B holds x0 (N,C,H,W), t (N)\n"
                       "int64, y (N) int64, noise (N,C,H,W); O gets loss, mse, vb (N each) and grad.<name> for every\n"
                       "trainable parameter: the gradient of the batch-mean loss.\n"
                       "With --sadm --disc D: grad.<name> is the gradient of L_G = mean(loss) + lambda L_struct (the\n"
                       "real branch a constant), and O also gets struct (L_struct, float64 scalar), real_cos and\n"
                       "fake_cos (mean off-diagonal cosines), lambda_eff (the lambda used: --lambda, or the adaptive\n"
                       "one), grad_share (lambda_eff |dL_struct/d eps| / |d mean(loss)/d eps|) and dgrad.<name>, the\n"
                       "gradient of L_struct with respect to the encoder's parameters with the fake samples detached.");
    if (rc) return rc == 1 ? 0 : rc;
    if ((rc = cli_runtime(o, NOPT(o))) || (rc = 2 * cli_require_cpu("loss", "the gradient dump"))) return rc;
    const char *bpath = cli_get(o, NOPT(o), "batch"), *opath = cli_get(o, NOPT(o), "out");
    long steps = 1000;
    if (!bpath || !opath) {
        fprintf(stderr, "sadm loss: --batch and --out are required (see --help)\n");
        return 2;
    }
    if (cli_int(o, NOPT(o), "diffusion-steps", 2, 1 << 20, &steps) < 0) return 2;
    int use_sadm = cli_get(o, NOPT(o), "sadm") != NULL;
    sadm_sadm_config sc;
    if ((rc = cli_sadm_config(o, NOPT(o), "loss", (int)steps, &sc))) return rc;
    sadm_encoder *enc = NULL;
    if (use_sadm) {
        const char *disc = cli_get(o, NOPT(o), "disc");
        if (!disc) {
            fprintf(stderr, "sadm loss: --sadm needs --disc (the structure encoder)\n");
            return 2;
        }
        if (sadm_encoder_load(disc, &enc)) return cli_fail("loss");
    }
    sadm_diffusion *d;
    if (sadm_diffusion_create(cli_get(o, NOPT(o), "schedule"), (int)steps, &d)) {
        sadm_encoder_free(enc);
        return cli_fail("loss");
    }
    sadm_dit *m;
    if ((rc = load_model("loss", o, NOPT(o), &m))) {
        sadm_diffusion_free(d);
        sadm_encoder_free(enc);
        return rc;
    }
    const sadm_dit_config *c = sadm_dit_get_config(m);
    sadm_st_file *f;
    if (sadm_st_open(bpath, &f)) {
        sadm_dit_free(m);
        sadm_diffusion_free(d);
        sadm_encoder_free(enc);
        return cli_fail("loss");
    }
    int64_t xs[4];
    rc = batch_size("loss", f, bpath, "x0", c, xs);
    int N = (int)xs[0];
    float *x0 = NULL, *noise = NULL, *terms = NULL;
    int64_t *t = NULL, *y = NULL;
    if (!rc) {
        x0 = read_floats("loss", f, "x0", 4, xs);
        noise = x0 ? read_floats("loss", f, "noise", 4, xs) : NULL;
        t = malloc((size_t)N * sizeof(int64_t));
        y = malloc((size_t)N * sizeof(int64_t));
        terms = malloc(3 * (size_t)N * sizeof(float));
        rc = !x0 || !noise || !t || !y || !terms || read_ty("loss", f, bpath, N, steps, c->num_classes, NULL, t, y);
    }
    sadm_struct_stats ss = {0};
    if (!rc && (sadm_dit_zero_grad(m) ||
                (enc ? sadm_encoder_zero_grad(enc) ||
                           sadm_sadm_loss(m, enc, d, &sc, N, x0, t, y, noise, terms, terms + N, terms + 2 * N, &ss, 1)
                     : sadm_dit_loss(m, d, N, x0, t, y, noise, terms, terms + N, terms + 2 * N, NULL))))
        rc = cli_fail("loss");
    if (!rc) {
        sadm_st_writer *w = sadm_st_writer_new();
        int64_t ns[1] = {N};
        static const char *const names[3] = {"loss", "mse", "vb"};
        for (int k = 0; k < 3 && w && !rc; k++) rc = sadm_st_writer_add(w, names[k], SADM_DTYPE_F32, 1, ns, terms + k * N) != 0;
        char (*keys)[160] = calloc(sadm_dit_num_params(m), sizeof *keys);
        const float *g = sadm_dit_grad_data(m);
        for (size_t i = 0; w && keys && !rc && i < sadm_dit_num_params(m); i++) {
            const sadm_param *p = sadm_dit_param(m, i);
            if (!p->trainable) continue;
            snprintf(keys[i], sizeof keys[i], "grad.%s", p->name);
            rc = sadm_st_writer_add(w, keys[i], SADM_DTYPE_F32, p->ndim, p->shape, g + p->offset) != 0;
        }
        char (*dkeys)[160] = enc ? calloc(sadm_encoder_num_params(enc), sizeof *dkeys) : NULL;
        if (enc && w && !rc) {
            double v[5] = {ss.loss, ss.real_cos, ss.fake_cos, ss.lambda_eff, ss.grad_share};
            rc = !dkeys || sadm_st_writer_add(w, "struct", SADM_DTYPE_F64, 0, NULL, &v[0]) ||
                 sadm_st_writer_add(w, "real_cos", SADM_DTYPE_F64, 0, NULL, &v[1]) ||
                 sadm_st_writer_add(w, "fake_cos", SADM_DTYPE_F64, 0, NULL, &v[2]) ||
                 sadm_st_writer_add(w, "lambda_eff", SADM_DTYPE_F64, 0, NULL, &v[3]) ||
                 sadm_st_writer_add(w, "grad_share", SADM_DTYPE_F64, 0, NULL, &v[4]);
            const float *dg = sadm_encoder_grad_data(enc);
            for (size_t i = 0; !rc && i < sadm_encoder_num_params(enc); i++) {
                const sadm_param *p = sadm_encoder_param(enc, i);
                if (!p->trainable) continue;
                snprintf(dkeys[i], sizeof dkeys[i], "dgrad.%s", p->name);
                rc = sadm_st_writer_add(w, dkeys[i], SADM_DTYPE_F32, p->ndim, p->shape, dg + p->offset) != 0;
            }
            if (!rc) rc = sadm_st_writer_save(w, opath) != 0;
            if (rc) rc = cli_fail("loss");
        } else if (!w || !keys || rc || sadm_st_writer_save(w, opath))
            rc = cli_fail("loss");
        sadm_st_writer_free(w);
        free(keys), free(dkeys);
    }
    sadm_st_close(f);
    sadm_dit_free(m);
    sadm_encoder_free(enc);
    sadm_diffusion_free(d);
    free(x0), free(noise), free(terms), free(t), free(y);
    return rc;
}
