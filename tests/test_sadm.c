/* SADM against the PyTorch reference (tests/reference/sadm_torch.py, written from the
 * issue's definition with autograd): the structure encoder's forward and every gradient,
 * both structural distances under both weightings, and the whole objective (denoiser
 * gradients of L_G, encoder gradients of L_struct). Also finite differences, the
 * encoder's initialisation and files, SADM training: lambda = 0 equals plain training
 * bitwise, resume equals uninterrupted, and the bad inputs of the issue. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "reference.h"
#include "testutil.h"

/* Every trainable tensor random: matrices N(0, 1/fan_in), LayerNorm weights 1 + N(0, 0.1^2),
 * biases N(0, 0.1^2) — the fresh init (LN 1/0, zero biases) would leave paths untested. */
static void randomise_encoder(sadm_encoder *e, uint64_t seed) {
    float *data = sadm_encoder_param_data(e);
    for (size_t i = 0; i < sadm_encoder_num_params(e); i++) {
        const sadm_param *p = sadm_encoder_param(e, i);
        if (!p->trainable) continue;
        float *v = data + p->offset;
        TU_OK(sadm_rng_normal(seed, 500 + i, 0, p->numel, v));
        int is_ln = strstr(p->name, "norm") && strstr(p->name, "weight");
        float std = p->ndim == 1 ? 0.1f : 1.0f / sqrtf((float)(p->numel / (size_t)p->shape[0]));
        for (size_t k = 0; k < p->numel; k++) v[k] = v[k] * std + (is_ln ? 1.0f : 0.0f);
    }
}

/* ------------------------------------------------------------------ the encoder */
static void compare_encoder(const sadm_encoder_config *cfg, int N, uint64_t seed) {
    sadm_encoder *e;
    TU_OK(sadm_encoder_create(cfg, seed, &e));
    randomise_encoder(e, seed);
    int C = cfg->in_channels, H = cfg->input_size, E = cfg->embed_dim;
    size_t nx = (size_t)N * C * H * H;
    float *x = tu_uniform(nx, seed + 1, -1, 1), *dz = tu_uniform((size_t)N * E, seed + 2, -1, 1);
    float *z = tu_alloc((size_t)N * E), *dx = tu_alloc(nx);
    TU_OK(sadm_encoder_zero_grad(e));
    TU_OK(sadm_encoder_forward(e, N, x, z));
    TU_OK(sadm_encoder_backward(e, dz, dx, 1));
    for (int n = 0; n < N; n++) {
        double s = 0;
        for (int k = 0; k < E; k++) s += (double)z[n * E + k] * z[n * E + k];
        ck_assert_msg(fabs(s - 1) < 1e-5, "embedding %d has length^2 %g", n, s);
    }
    TU_OK(sadm_encoder_save(e, ref_path("enc.safetensors")));
    sadm_st_writer *w = sadm_st_writer_new();
    int64_t sx[4] = {N, C, H, H}, sz[2] = {N, E};
    TU_OK(sadm_st_writer_add(w, "x", SADM_DTYPE_F32, 4, sx, x));
    TU_OK(sadm_st_writer_add(w, "dz", SADM_DTYPE_F32, 2, sz, dz));
    TU_OK(sadm_st_writer_save(w, ref_path("batch.safetensors")));
    sadm_st_writer_free(w);
    char args[1200];
    snprintf(args, sizeof args, "encoder '%s' '%s' '%s'", ref_path("enc.safetensors"), ref_path("batch.safetensors"),
             ref_path("out.safetensors"));
    ref_run("sadm_torch.py", args);
    sadm_st_file *f;
    TU_OK(sadm_st_open(ref_path("out.safetensors"), &f));
    float *ref = tu_alloc(nx);
    TU_OK(sadm_st_read_f32(f, "z", 2, sz, ref));
    tu_assert_close("encoder z", z, ref, (size_t)N * E, 0, 2e-5);
    sadm_param px = {"dx", 4, {N, C, H, H}, 0, nx, 1};
    tu_assert_tensor_close(f, "dx", dx, &px, 1e-3, "encoder");
    const float *g = sadm_encoder_grad_data(e);
    for (size_t i = 0; i < sadm_encoder_num_params(e); i++) {
        const sadm_param *p = sadm_encoder_param(e, i);
        char key[160];
        snprintf(key, sizeof key, "grad.%s", p->name);
        if (!p->trainable) {
            ck_assert_msg(!sadm_st_find(f, key), "%s: PyTorch has a gradient for a fixed tensor", p->name);
            continue;
        }
        tu_assert_tensor_close(f, key, g + p->offset, p, 1e-3, "encoder");
    }
    sadm_st_close(f);
    sadm_encoder_free(e);
    free(x), free(dz), free(z), free(dx), free(ref);
    ref_cleanup();
}

START_TEST(test_encoder_vs_torch) {
    /* input, patch, C, D, depth, heads, mlp, embed */
    sadm_encoder_config a = {8, 2, 3, 32, 2, 4, 4.0f, 16};
    sadm_encoder_config b = {12, 4, 1, 24, 1, 3, 2.0f, 7};
    sadm_encoder_config c = {8, 4, 2, 16, 0, 2, 4.0f, 5};
    for (const char *const *isa = tu_isas(); *isa; isa++) {
        tu_use_isa(*isa);
        compare_encoder(&a, 3, 31);
    }
    sadm_set_isa("auto");
    compare_encoder(&b, 2, 32);
    compare_encoder(&c, 4, 33);
}
END_TEST

typedef struct enc_ctx {
    sadm_encoder *e;
    int N;
    const float *x;
} enc_ctx;

static void enc_forward(void *ctx, float *out) {
    enc_ctx *c = ctx;
    TU_OK(sadm_encoder_forward(c->e, c->N, c->x, out));
}

/* The input gradient (what the denoiser receives) by central differences. */
START_TEST(test_encoder_input_gradient_fd) {
    sadm_encoder_config cfg = {8, 4, 2, 16, 2, 2, 2.0f, 6};
    sadm_encoder *e;
    TU_OK(sadm_encoder_create(&cfg, 3, &e));
    randomise_encoder(e, 3);
    int N = 2;
    size_t nx = (size_t)N * 2 * 8 * 8, nz = (size_t)N * 6;
    float *x = tu_uniform(nx, 4, -1, 1), *w = tu_uniform(nz, 5, -1, 1), *z = tu_alloc(nz), *dx = tu_alloc(nx);
    TU_OK(sadm_encoder_forward(e, N, x, z));
    TU_OK(sadm_encoder_backward(e, w, dx, 0));
    enc_ctx ctx = {e, N, x};
    tu_check_grad("encoder dL/dx", enc_forward, &ctx, x, nx, dx, w, nz, 1e-2f, 2e-2);
    sadm_encoder_free(e);
    free(x), free(w), free(z), free(dx);
}
END_TEST

START_TEST(test_encoder_init_and_files) {
    sadm_encoder_config cfg = {16, 4, 3, 32, 2, 4, 4.0f, 8};
    sadm_encoder *e, *back;
    TU_OK(sadm_encoder_create(&cfg, 9, &e));
    const float *d = sadm_encoder_param_data(e);
    for (size_t i = 0; i < sadm_encoder_num_params(e); i++) {
        const sadm_param *p = sadm_encoder_param(e, i);
        double mx = 0, mn = INFINITY;
        for (size_t k = 0; k < p->numel; k++) mx = fmax(mx, fabs(d[p->offset + k])), mn = fmin(mn, d[p->offset + k]);
        if (!strcmp(p->name, "pos_embed")) continue;
        if (strstr(p->name, "norm") && strstr(p->name, "weight"))
            ck_assert_msg(mn == 1 && mx == 1, "%s should start at 1", p->name);
        else if (p->ndim == 1)
            ck_assert_msg(mx == 0, "%s should start at 0", p->name);
        else {
            double fan_out = (double)p->shape[0], fan_in = p->numel / fan_out, bound = sqrt(6 / (fan_in + fan_out));
            ck_assert_msg(mx <= bound && mx > 0.8 * bound, "%s: max %g, xavier bound %g", p->name, mx, bound);
        }
    }
    ck_assert_str_eq(sadm_encoder_param(e, sadm_encoder_num_params(e) - 2)->name, "head.weight");
    /* a fresh encoder separates different inputs */
    float *x = tu_uniform(2 * 3 * 16 * 16, 1, -1, 1), z[16];
    TU_OK(sadm_encoder_forward(e, 2, x, z));
    double cos = 0;
    for (int k = 0; k < 8; k++) cos += (double)z[k] * z[8 + k];
    ck_assert_msg(cos < 0.999, "a fresh encoder maps two random images to cosine %g", cos);
    /* round trip; a DiT file is not an encoder */
    TU_OK(sadm_encoder_save(e, ref_path("e.safetensors")));
    TU_OK(sadm_encoder_load(ref_path("e.safetensors"), &back));
    ck_assert(memcmp(sadm_encoder_get_config(back), &cfg, sizeof cfg) == 0);
    tu_assert_same("encoder round trip", sadm_encoder_param_data(back), d, sadm_encoder_param_total(e));
    sadm_encoder_free(back);
    sadm_dit_config dc = {16, 4, 3, 32, 1, 4, 4.0f, 0.1f, 3, 1};
    sadm_dit *m;
    TU_OK(sadm_dit_create(&dc, 1, &m));
    TU_OK(sadm_dit_save(m, ref_path("dit.safetensors")));
    ck_assert_int_eq(sadm_encoder_load(ref_path("dit.safetensors"), &back), SADM_ERR_FORMAT);
    ck_assert_ptr_nonnull(strstr(sadm_last_error(), "not a structure encoder"));
    /* bad configs name the field */
    sadm_encoder_config bad = cfg;
    bad.embed_dim = 0;
    ck_assert_int_eq(sadm_encoder_create(&bad, 1, &back), SADM_ERR_ARG);
    ck_assert_ptr_nonnull(strstr(sadm_last_error(), "embed_dim"));
    bad = cfg, bad.patch_size = 5;
    ck_assert_int_eq(sadm_encoder_create(&bad, 1, &back), SADM_ERR_ARG);
    ck_assert_ptr_nonnull(strstr(sadm_last_error(), "multiple of patch_size"));
    sadm_dit_free(m);
    sadm_encoder_free(e);
    free(x);
    ref_cleanup();
}
END_TEST

/* ------------------------------------------------------------------ distances */
static float *unit_rows(int N, int E, uint64_t seed) {
    float *z = tu_uniform((size_t)N * E, seed, -1, 1);
    for (int n = 0; n < N; n++) {
        double s = 0;
        for (int k = 0; k < E; k++) s += (double)z[n * E + k] * z[n * E + k];
        for (int k = 0; k < E; k++) z[n * E + k] = (float)(z[n * E + k] / sqrt(s));
    }
    return z;
}

START_TEST(test_struct_vs_torch) {
    int N = 6, E = 5;
    float *zr = unit_rows(N, E, 1), *zf = unit_rows(N, E, 2), *w = tu_uniform(N, 3, 0.05f, 1.0f);
    float ones[6] = {1, 1, 1, 1, 1, 1};
    int64_t sz[2] = {N, E}, sn[1] = {N};
    for (int dist = 0; dist < 2; dist++)
        for (int weighted = 0; weighted < 2; weighted++) {
            sadm_sadm_config c;
            sadm_sadm_config_default(&c);
            c.distance = (sadm_struct_distance)dist;
            c.tau = 0.3f;
            const float *ww = weighted ? w : ones;
            float *dzr = tu_alloc((size_t)N * E), *dzf = tu_alloc((size_t)N * E);
            sadm_struct_stats s;
            TU_OK(sadm_struct_loss(&c, N, E, zr, zf, weighted ? w : NULL, 1.0f, &s, dzr, dzf));
            sadm_st_writer *wr = sadm_st_writer_new();
            TU_OK(sadm_st_writer_add(wr, "zr", SADM_DTYPE_F32, 2, sz, zr));
            TU_OK(sadm_st_writer_add(wr, "zf", SADM_DTYPE_F32, 2, sz, zf));
            TU_OK(sadm_st_writer_add(wr, "w", SADM_DTYPE_F32, 1, sn, ww));
            TU_OK(sadm_st_writer_save(wr, ref_path("z.safetensors")));
            sadm_st_writer_free(wr);
            char args[1000];
            snprintf(args, sizeof args, "struct '%s' '%s' %s %.9g", ref_path("z.safetensors"), ref_path("s.safetensors"),
                     sadm_struct_distance_name(c.distance), c.tau);
            ref_run("sadm_torch.py", args);
            sadm_st_file *f;
            TU_OK(sadm_st_open(ref_path("s.safetensors"), &f));
            double ref;
            memcpy(&ref, sadm_st_find(f, "loss")->data, sizeof ref);
            ck_assert_msg(ref > 1e-3, "the reference distance is %g: the comparison would prove nothing", ref);
            ck_assert_msg(fabs(s.loss - ref) <= 1e-9 * ref, "%s weighted %d: %.12g vs PyTorch %.12g",
                          sadm_struct_distance_name(c.distance), weighted, s.loss, ref);
            float *g = tu_alloc((size_t)N * E);
            TU_OK(sadm_st_read_f32(f, "dzr", 2, sz, g));
            tu_assert_close("dL/dzr", dzr, g, (size_t)N * E, 1e-5, 1e-7);
            TU_OK(sadm_st_read_f32(f, "dzf", 2, sz, g));
            tu_assert_close("dL/dzf", dzf, g, (size_t)N * E, 1e-5, 1e-7);
            /* scale multiplies the gradients */
            float *d2 = tu_alloc((size_t)N * E);
            TU_OK(sadm_struct_loss(&c, N, E, zr, zf, weighted ? w : NULL, -2.0f, NULL, NULL, d2));
            for (int i = 0; i < N * E; i++) ck_assert(fabsf(d2[i] + 2 * dzf[i]) <= 1e-6f * (1 + fabsf(dzf[i])));
            sadm_st_close(f);
            free(dzr), free(dzf), free(g), free(d2);
        }
    /* no weighted pair (t<N with one sample or none below N): L_struct and its gradients 0 */
    for (int dist = 0; dist < 2; dist++) {
        sadm_sadm_config c;
        sadm_sadm_config_default(&c);
        c.distance = (sadm_struct_distance)dist;
        float one[6] = {0, 0, 1, 0, 0, 0}, *w0 = dist ? (float[6]){0} : one;
        float *dzr = tu_alloc((size_t)N * E), *dzf = tu_alloc((size_t)N * E);
        sadm_struct_stats s;
        TU_OK(sadm_struct_loss(&c, N, E, zr, zf, w0, 1.0f, &s, dzr, dzf));
        ck_assert_msg(s.loss == 0 && s.real_cos != 0, "%s with no weighted pair: L_struct %g",
                      sadm_struct_distance_name(c.distance), s.loss);
        for (int i = 0; i < N * E; i++) ck_assert(dzr[i] == 0 && dzf[i] == 0);
        free(dzr), free(dzf);
    }
    /* identical structures: distance 0; a batch of one has no pairs */
    sadm_sadm_config c;
    sadm_sadm_config_default(&c);
    sadm_struct_stats s;
    TU_OK(sadm_struct_loss(&c, N, E, zr, zr, NULL, 1, &s, NULL, NULL));
    ck_assert(s.loss == 0);
    ck_assert_int_eq(sadm_struct_loss(&c, 1, E, zr, zf, NULL, 1, &s, NULL, NULL), SADM_ERR_ARG);
    ck_assert_ptr_nonnull(strstr(sadm_last_error(), "no pairs"));
    sadm_struct_distance d;
    ck_assert_int_eq(sadm_struct_distance_parse("cosine", &d), SADM_ERR_ARG);
    ck_assert_ptr_nonnull(strstr(sadm_last_error(), "unknown structural distance 'cosine' (cosine-mse or softmax-kl)"));
    c.lambda = -1;
    ck_assert_int_eq(sadm_sadm_config_check(&c), SADM_ERR_ARG);
    ck_assert_ptr_nonnull(strstr(sadm_last_error(), "lambda"));
    free(zr), free(zf), free(w);
    ref_cleanup();
}
END_TEST

/* ------------------------------------------------------------------ the objective */
typedef struct sadm_case {
    sadm_dit_config dit;
    sadm_encoder_config enc;
    int N;
    float lambda;
    sadm_struct_distance distance;
    sadm_struct_weighting weighting;
    int t_max;        /* weighting t<N */
    float grad_ratio; /* > 0: adaptive lambda */
} sadm_case;

static void compare_objective(const sadm_case *k, uint64_t seed) {
    sadm_dit *m;
    sadm_encoder *e;
    sadm_diffusion *d;
    TU_OK(sadm_dit_create(&k->dit, seed, &m));
    tu_randomise_dit(m, seed, 1.0f);
    TU_OK(sadm_encoder_create(&k->enc, seed, &e));
    randomise_encoder(e, seed);
    TU_OK(sadm_diffusion_create("linear", 1000, &d));
    int N = k->N, C = k->dit.in_channels, H = k->dit.input_size;
    size_t nx = (size_t)N * C * H * H;
    float *x0 = tu_uniform(nx, seed + 1, -1, 1), *noise = tu_alloc(nx);
    TU_OK(sadm_rng_normal(seed, 3, 0, nx, noise));
    int64_t *t = calloc(N, sizeof(int64_t)), *y = calloc(N, sizeof(int64_t));
    /* t = 0 (the discretised NLL) is covered by test_dit; with random weights it meets
     * float32 cancellation in PyTorch's version of it */
    static const int64_t ts[] = {3, 999, 17, 500, 1, 250};
    for (int n = 0; n < N; n++) t[n] = ts[(n + seed) % 6], y[n] = (n * 5 + 1) % k->dit.num_classes;
    sadm_sadm_config c;
    sadm_sadm_config_default(&c);
    c.lambda = k->lambda, c.distance = k->distance, c.weighting = k->weighting, c.tau = 0.5f;
    c.t_max = k->t_max, c.grad_ratio = k->grad_ratio;
    float *loss = tu_alloc(N), *mse = tu_alloc(N), *vb = tu_alloc(N);
    sadm_struct_stats s;
    size_t P = sadm_dit_param_total(m);
    /* lambda 0 first: the difference is the structure term's own gradient */
    sadm_sadm_config c0 = c;
    c0.lambda = 0, c0.grad_ratio = 0;
    TU_OK(sadm_dit_zero_grad(m));
    TU_OK(sadm_sadm_loss(m, e, d, &c0, N, x0, t, y, noise, loss, mse, vb, &s, 0));
    float *g0 = tu_copy(sadm_dit_grad_data(m), P);
    TU_OK(sadm_dit_zero_grad(m));
    TU_OK(sadm_encoder_zero_grad(e));
    TU_OK(sadm_sadm_loss(m, e, d, &c, N, x0, t, y, noise, loss, mse, vb, &s, 1));

    TU_OK(sadm_dit_save(m, ref_path("dit.safetensors")));
    TU_OK(sadm_encoder_save(e, ref_path("enc.safetensors")));
    sadm_st_writer *w = sadm_st_writer_new();
    int64_t sx[4] = {N, C, H, H}, sn[1] = {N};
    TU_OK(sadm_st_writer_add(w, "x0", SADM_DTYPE_F32, 4, sx, x0));
    TU_OK(sadm_st_writer_add(w, "noise", SADM_DTYPE_F32, 4, sx, noise));
    TU_OK(sadm_st_writer_add(w, "t", SADM_DTYPE_I64, 1, sn, t));
    TU_OK(sadm_st_writer_add(w, "y", SADM_DTYPE_I64, 1, sn, y));
    TU_OK(sadm_st_writer_save(w, ref_path("batch.safetensors")));
    sadm_st_writer_free(w);
    char args[1500], wbuf[32];
    snprintf(args, sizeof args, "sadm '%s' '%s' '%s' '%s' %.9g %s '%s' 0.5 %.9g", ref_path("dit.safetensors"),
             ref_path("enc.safetensors"), ref_path("batch.safetensors"), ref_path("out.safetensors"), c.lambda,
             sadm_struct_distance_name(c.distance), sadm_sadm_weighting_string(&c, wbuf, sizeof wbuf), c.grad_ratio);
    ref_run("sadm_torch.py", args);
    sadm_st_file *f;
    TU_OK(sadm_st_open(ref_path("out.safetensors"), &f));
    float *ref = tu_alloc(N);
    const char *terms[3] = {"loss", "mse", "vb"};
    float *ours[3] = {loss, mse, vb};
    for (int i = 0; i < 3; i++) {
        TU_OK(sadm_st_read_f32(f, terms[i], 1, sn, ref));
        tu_assert_close(terms[i], ours[i], ref, N, 1e-4, 1e-6);
    }
    double sref;
    memcpy(&sref, sadm_st_find(f, "struct")->data, sizeof sref);
    ck_assert_msg(sref > 1e-4, "reference L_struct %g: the comparison would prove nothing", sref);
    ck_assert_msg(fabs(s.loss - sref) <= 1e-4 * sref, "L_struct %.9g vs PyTorch %.9g", s.loss, sref);
    double lref;
    memcpy(&lref, sadm_st_find(f, "lambda_eff")->data, sizeof lref);
    if (c.grad_ratio > 0)
        ck_assert_msg(fabs(s.lambda_eff - lref) <= 1e-4 * lref && lref > 0, "adaptive lambda %.9g vs PyTorch %.9g",
                      s.lambda_eff, lref);
    else
        ck_assert_msg(s.lambda_eff == c.lambda && lref == (double)c.lambda, "lambda_eff %g (PyTorch %g), lambda %g",
                      s.lambda_eff, lref, c.lambda);
    memcpy(&lref, sadm_st_find(f, "grad_share")->data, sizeof lref);
    ck_assert_msg(fabs(s.grad_share - lref) <= 1e-4 * lref && lref > 0, "gradient share %.9g vs PyTorch %.9g",
                  s.grad_share, lref);
    const float *g = sadm_dit_grad_data(m);
    double struct_norm = 0;
    for (size_t i = 0; i < sadm_dit_num_params(m); i++) {
        const sadm_param *p = sadm_dit_param(m, i);
        if (!p->trainable) continue;
        char key[160];
        snprintf(key, sizeof key, "grad.%s", p->name);
        tu_assert_tensor_close(f, key, g + p->offset, p, 1e-3, "denoiser");
        for (size_t q = 0; q < p->numel; q++) {
            double v = (double)g[p->offset + q] - g0[p->offset + q];
            struct_norm += v * v;
        }
    }
    /* the structure term must matter, or the comparison above could not see it */
    double total = 0;
    for (size_t q = 0; q < P; q++) total += (double)g[q] * g[q];
    ck_assert_msg(sqrt(struct_norm) > 0.05 * sqrt(total), "lambda L_struct's gradient is only %.3g of %.3g", sqrt(struct_norm),
                  sqrt(total));
    const float *dg = sadm_encoder_grad_data(e);
    for (size_t i = 0; i < sadm_encoder_num_params(e); i++) {
        const sadm_param *p = sadm_encoder_param(e, i);
        if (!p->trainable) continue;
        char key[160];
        snprintf(key, sizeof key, "dgrad.%s", p->name);
        tu_assert_tensor_close(f, key, dg + p->offset, p, 1e-3, "encoder");
    }
    sadm_st_close(f);
    sadm_dit_free(m);
    sadm_encoder_free(e);
    sadm_diffusion_free(d);
    free(x0), free(noise), free(t), free(y), free(loss), free(mse), free(vb), free(ref), free(g0);
    ref_cleanup();
}

START_TEST(test_objective_vs_torch) {
    sadm_case a = {{8, 2, 3, 32, 2, 4, 4.0f, 0.1f, 5, 1}, {8, 2, 3, 32, 1, 4, 4.0f, 16}, 4, 20.0f,
                   SADM_DIST_COSINE_MSE, SADM_WEIGHT_NONE, 0, 0};
    sadm_case b = {{8, 4, 1, 24, 1, 2, 4.0f, 0.0f, 3, 0}, {8, 4, 1, 16, 2, 2, 2.0f, 8}, 5, 2.0f, SADM_DIST_SOFTMAX_KL,
                   SADM_WEIGHT_ALPHA, 0, 0};
    sadm_case c = {{8, 2, 2, 16, 1, 2, 4.0f, 0.1f, 4, 1}, {8, 4, 2, 16, 1, 2, 4.0f, 6}, 3, 50.0f, SADM_DIST_COSINE_MSE,
                   SADM_WEIGHT_ALPHA, 0, 0};
    sadm_case dd = {{8, 2, 3, 32, 1, 4, 4.0f, 0.1f, 5, 1}, {8, 2, 3, 32, 1, 4, 4.0f, 16}, 6, 5.0f, SADM_DIST_SOFTMAX_KL,
                    SADM_WEIGHT_NONE, 0, 0};
    /* t<400: the timesteps 999 and 500 of the batch carry no weight */
    sadm_case e = {{8, 2, 3, 32, 2, 4, 4.0f, 0.1f, 5, 1}, {8, 2, 3, 32, 1, 4, 4.0f, 16}, 6, 20.0f,
                   SADM_DIST_COSINE_MSE, SADM_WEIGHT_T_BELOW, 400, 0};
    /* adaptive lambda, alone and with t<N and softmax-kl */
    sadm_case f = {{8, 2, 3, 32, 2, 4, 4.0f, 0.1f, 5, 1}, {8, 2, 3, 32, 1, 4, 4.0f, 16}, 4, 0.0f,
                   SADM_DIST_COSINE_MSE, SADM_WEIGHT_NONE, 0, 0.5f};
    sadm_case g = {{8, 4, 1, 24, 1, 2, 4.0f, 0.0f, 3, 0}, {8, 4, 1, 16, 2, 2, 2.0f, 8}, 5, 0.001f, SADM_DIST_SOFTMAX_KL,
                   SADM_WEIGHT_T_BELOW, 300, 2.0f};
    compare_objective(&a, 41);
    compare_objective(&b, 42);
    compare_objective(&c, 43);
    compare_objective(&dd, 44);
    compare_objective(&e, 45);
    compare_objective(&f, 46);
    compare_objective(&g, 47);
}
END_TEST

/* ------------------------------------------------------------------ training */
static const sadm_dit_config SMALL = {32, 8, 1, 16, 1, 2, 2.0f, 0.1f, 10, 1};
static const sadm_encoder_config SMALL_ENC = {32, 8, 1, 16, 1, 2, 2.0f, 8};

/* tu_small_trainer, with SADM when sc != NULL (a fresh small encoder) */
static sadm_trainer *new_trainer(const sadm_dataset *d, uint64_t seed, const sadm_sadm_config *sc) {
    sadm_trainer *tr = tu_small_trainer(d, seed);
    if (sc) {
        sadm_encoder *e;
        TU_OK(sadm_encoder_create(&SMALL_ENC, seed + 1, &e));
        TU_OK(sadm_trainer_enable_sadm(tr, e, sc));
    }
    return tr;
}

static void run(sadm_trainer *tr, int steps, sadm_step_stats *last) { tu_train_steps(tr, steps, last); }

START_TEST(test_lambda_zero_is_plain_training) {
    sadm_dataset *d;
    TU_OK(sadm_dataset_fmnist(NULL, "train", &d));
    sadm_sadm_config sc;
    sadm_sadm_config_default(&sc);
    sc.lambda = 0, sc.disc_lr = 1e-3f;
    sadm_trainer *plain = new_trainer(d, 7, NULL), *sadm = new_trainer(d, 7, &sc);
    sadm_step_stats a, b;
    run(plain, 4, &a);
    run(sadm, 4, &b);
    ck_assert(a.loss == b.loss && a.grad_norm == b.grad_norm);
    ck_assert_msg(b.l_struct > 0 && b.disc_grad_norm > 0, "the encoder did not train (L_struct %g)", b.l_struct);
    size_t P = sadm_dit_param_total(sadm_trainer_model(plain));
    tu_assert_same("weights, lambda 0 vs plain", sadm_dit_param_data(sadm_trainer_model(sadm)),
                   sadm_dit_param_data(sadm_trainer_model(plain)), P);
    tu_assert_same("EMA, lambda 0 vs plain", sadm_trainer_ema(sadm), sadm_trainer_ema(plain), P);
    /* and lambda > 0 changes the denoiser */
    sc.lambda = 0.5f;
    sadm_trainer *on = new_trainer(d, 7, &sc);
    run(on, 4, &b);
    ck_assert(memcmp(sadm_dit_param_data(sadm_trainer_model(on)), sadm_dit_param_data(sadm_trainer_model(plain)),
                     P * sizeof(float)) != 0);
    sadm_trainer_free(on);
    sadm_trainer_free(plain);
    sadm_trainer_free(sadm);
    sadm_dataset_free(d);
}
END_TEST

/* The encoder warm-up: its K steps are plain ones for the denoiser (bitwise) while the
 * encoder learns; it counts from the step SADM began, also across a checkpoint. */
START_TEST(test_encoder_warmup) {
    sadm_dataset *d;
    TU_OK(sadm_dataset_fmnist(NULL, "train", &d));
    sadm_sadm_config sc;
    sadm_sadm_config_default(&sc);
    sc.lambda = 0.5f, sc.disc_lr = 1e-3f, sc.disc_warmup = 3;
    sadm_trainer *plain = new_trainer(d, 7, NULL), *warm = new_trainer(d, 7, &sc);
    size_t P = sadm_dit_param_total(sadm_trainer_model(plain));
    sadm_step_stats a, b;
    for (int k = 1; k <= 4; k++) {
        run(plain, 1, &a);
        run(warm, 1, &b);
        int same = !memcmp(sadm_dit_param_data(sadm_trainer_model(warm)), sadm_dit_param_data(sadm_trainer_model(plain)),
                           P * sizeof(float));
        ck_assert_msg(k <= 3 ? same && b.lambda_eff == 0 && b.l_struct > 0 && b.disc_grad_norm > 0
                             : !same && b.lambda_eff == sc.lambda,
                      "step %d: weights %s plain training's, lambda %g, L_struct %g", k, same ? "equal" : "differ from",
                      b.lambda_eff, b.l_struct);
    }
    sadm_trainer_free(warm);
    /* SADM added after 2 plain steps: the warm-up covers steps 3..5; a checkpoint after
     * step 3 resumes inside it */
    sadm_trainer *late = new_trainer(d, 7, NULL), *ref = new_trainer(d, 7, NULL);
    run(late, 2, NULL);
    run(ref, 2, NULL);
    sadm_encoder *e;
    TU_OK(sadm_encoder_create(&SMALL_ENC, 8, &e));
    TU_OK(sadm_trainer_enable_sadm(late, e, &sc));
    run(late, 1, &b);
    TU_OK(sadm_trainer_save(late, ref_path("warm.safetensors")));
    sadm_trainer_free(late);
    TU_OK(sadm_trainer_load(ref_path("warm.safetensors"), d, &late));
    run(ref, 3, NULL);
    run(late, 2, &b);
    ck_assert_msg(b.lambda_eff == 0, "step 5 (the warm-up's last) used lambda %g", b.lambda_eff);
    tu_assert_same("weights after a resumed warm-up", sadm_dit_param_data(sadm_trainer_model(late)),
                   sadm_dit_param_data(sadm_trainer_model(ref)), P);
    run(late, 1, &b);
    ck_assert(b.lambda_eff == sc.lambda);
    sadm_trainer_free(late);
    sadm_trainer_free(ref);
    sadm_trainer_free(plain);
    sadm_dataset_free(d);
    ref_cleanup();
}
END_TEST

/* A collapsed encoder is replaced: with restart_cos -1 every step counts as collapsed, so
 * disc_restart 2 gives a fresh encoder (the run's restart seed, Adam state zero) after
 * steps 2 and 4; a resume between them keeps the count of collapsed steps. */
static void assert_encoder_is_fresh(sadm_trainer *tr, long k) {
    sadm_encoder *fresh;
    TU_OK(sadm_encoder_create(&SMALL_ENC, sadm_encoder_run_seed(sadm_trainer_config(tr)->seed, k), &fresh));
    tu_assert_same("restarted encoder", sadm_encoder_param_data(sadm_trainer_encoder(tr)), sadm_encoder_param_data(fresh),
                   sadm_encoder_param_total(fresh));
    sadm_encoder_free(fresh);
}

START_TEST(test_encoder_restart) {
    sadm_dataset *d;
    TU_OK(sadm_dataset_fmnist(NULL, "train", &d));
    sadm_sadm_config sc;
    sadm_sadm_config_default(&sc);
    sc.lambda = 0.5f, sc.disc_lr = 1e-3f, sc.disc_restart = 2, sc.restart_cos = -1;
    sadm_trainer *a = new_trainer(d, 7, &sc);
    sadm_step_stats s;
    for (int k = 1; k <= 5; k++) {
        run(a, 1, &s);
        ck_assert_msg(s.disc_restarted == (k % 2 == 0) && s.disc_restarts == k / 2, "step %d: restarted %d, restarts %ld",
                      k, s.disc_restarted, s.disc_restarts);
        if (k == 4) assert_encoder_is_fresh(a, 2);
    }
    /* the checkpoint after a restart: the encoder's Adam moments are zero, its step count 0 */
    sadm_trainer *r = new_trainer(d, 7, &sc);
    run(r, 2, NULL);
    TU_OK(sadm_trainer_save(r, ref_path("restarted.safetensors")));
    sadm_trainer_free(r);
    sadm_st_file *f;
    TU_OK(sadm_st_open(ref_path("restarted.safetensors"), &f));
    size_t moments = 0;
    for (size_t i = 0; i < sadm_st_count(f); i++) {
        const sadm_tensor_info *ti = sadm_st_tensor(f, i);
        if (strncmp(ti->name, "disc.opt.", 9) != 0) continue;
        float *v = tu_alloc(ti->numel);
        TU_OK(sadm_st_read_f32(f, ti->name, 0, NULL, v));
        for (size_t j = 0; j < ti->numel; j++) ck_assert_msg(v[j] == 0, "%s[%zu] = %g after a restart", ti->name, j, v[j]);
        free(v);
        moments++;
    }
    ck_assert_uint_gt(moments, 0);
    ck_assert_str_eq(sadm_st_metadata(f, "sadm.disc_step"), "0");
    ck_assert_str_eq(sadm_st_metadata(f, "sadm.disc_restarts"), "1");
    sadm_st_close(f);
    /* a resume between the restarts: its count of collapsed steps (1 after step 3) comes
     * back, so the next restart still follows step 4 */
    sadm_trainer *b = new_trainer(d, 7, &sc);
    run(b, 3, NULL);
    TU_OK(sadm_trainer_save(b, ref_path("restart.safetensors")));
    sadm_trainer_free(b);
    TU_OK(sadm_trainer_load(ref_path("restart.safetensors"), d, &b));
    const sadm_sadm_config *lc = sadm_trainer_sadm_config(b);
    ck_assert(lc->disc_restart == 2 && lc->restart_cos == -1);
    run(b, 1, &s);
    ck_assert_msg(s.disc_restarted && s.disc_restarts == 2, "resumed step 4: restarted %d, restarts %ld", s.disc_restarted,
                  s.disc_restarts);
    run(b, 1, NULL);
    tu_assert_same("weights after a resume across a restart", sadm_dit_param_data(sadm_trainer_model(b)),
                   sadm_dit_param_data(sadm_trainer_model(a)), sadm_dit_param_total(sadm_trainer_model(a)));
    tu_assert_same("encoder after a resume across a restart", sadm_encoder_param_data(sadm_trainer_encoder(b)),
                   sadm_encoder_param_data(sadm_trainer_encoder(a)), sadm_encoder_param_total(sadm_trainer_encoder(a)));
    sadm_trainer_free(a);
    sadm_trainer_free(b);
    /* the real threshold: a fresh encoder is not collapsed, so nothing restarts */
    sadm_sadm_config_default(&sc);
    sc.lambda = 0.5f, sc.disc_restart = 1;
    a = new_trainer(d, 7, &sc);
    run(a, 3, &s);
    ck_assert_msg(s.disc_restarts == 0 && s.real_cos < SADM_COLLAPSE_COS, "restarts %ld, real_cos %g", s.disc_restarts,
                  s.real_cos);
    sadm_trainer_free(a);
    /* bad settings */
    sc.disc_restart = -1;
    ck_assert_int_eq(sadm_sadm_config_check(&sc), SADM_ERR_ARG);
    ck_assert_ptr_nonnull(strstr(sadm_last_error(), "restart must not be negative"));
    sc.disc_restart = 5, sc.restart_cos = 1;
    ck_assert_int_eq(sadm_sadm_config_check(&sc), SADM_ERR_ARG);
    ck_assert_ptr_nonnull(strstr(sadm_last_error(), "[-1, 1)"));
    sadm_dataset_free(d);
    ref_cleanup();
}
END_TEST

/* in fp32, and in bf16 (denoiser and encoder both: the encoder ends elsewhere than fp32's) */
/* options: 1 adds the weighting t<600, adaptive lambda and an encoder warm-up of 3 steps,
 * which the resumed run crosses */
static void resume_case(sadm_precision prec, int options) {
    sadm_dataset *d;
    TU_OK(sadm_dataset_fmnist(NULL, "train", &d));
    sadm_sadm_config sc;
    sadm_sadm_config_default(&sc);
    sc.lambda = 0.3f, sc.d_steps = 2, sc.distance = SADM_DIST_SOFTMAX_KL, sc.weighting = SADM_WEIGHT_ALPHA;
    sc.disc_lr = 3e-4f;
    if (options) sc.weighting = SADM_WEIGHT_T_BELOW, sc.t_max = 600, sc.grad_ratio = 0.2f, sc.disc_warmup = 3;
    sadm_set_num_threads(2);
    sadm_trainer *a = new_trainer(d, 11, &sc);
    TU_OK(sadm_trainer_set_precision(a, prec));
    sadm_step_stats sa, sb;
    run(a, 5, &sa);
    if (prec == SADM_PRECISION_BF16) {
        sadm_trainer *f = new_trainer(d, 11, &sc);
        run(f, 5, NULL);
        ck_assert_msg(memcmp(sadm_encoder_param_data(sadm_trainer_encoder(a)), sadm_encoder_param_data(sadm_trainer_encoder(f)),
                             sadm_encoder_param_total(sadm_trainer_encoder(a)) * sizeof(float)) != 0,
                      "the encoder trained in bf16 ended where fp32's did: its products were not bf16");
        sadm_trainer_free(f);
    }
    sadm_set_num_threads(1);
    sadm_trainer *b = new_trainer(d, 11, &sc);
    TU_OK(sadm_trainer_set_precision(b, prec));
    run(b, 2, &sb);
    TU_OK(sadm_trainer_save(b, ref_path("ckpt.safetensors")));
    sadm_trainer_free(b);
    TU_OK(sadm_trainer_load(ref_path("ckpt.safetensors"), d, &b));
    const sadm_sadm_config *lc = sadm_trainer_sadm_config(b);
    ck_assert_ptr_nonnull(lc);
    ck_assert(lc->lambda == sc.lambda && lc->d_steps == 2 && lc->distance == SADM_DIST_SOFTMAX_KL &&
              lc->weighting == sc.weighting && lc->disc_lr == sc.disc_lr && lc->t_max == sc.t_max &&
              lc->grad_ratio == sc.grad_ratio && lc->disc_warmup == sc.disc_warmup);
    ck_assert_int_eq(sadm_trainer_config(b)->precision, prec);
    sadm_set_num_threads(2);
    run(b, 3, &sb);
    ck_assert_msg(sa.loss == sb.loss && sa.l_struct == sb.l_struct, "step 5: loss %.9g / %.9g, L_struct %.9g / %.9g",
                  sa.loss, sb.loss, sa.l_struct, sb.l_struct);
    ck_assert_msg(sa.lambda_eff == sb.lambda_eff && (options ? sa.lambda_eff != sc.lambda : sa.lambda_eff == sc.lambda) &&
                      sa.lambda_eff > 0,
                  "step 5: lambda %.9g / %.9g", sa.lambda_eff, sb.lambda_eff);
    tu_assert_same("weights", sadm_dit_param_data(sadm_trainer_model(b)), sadm_dit_param_data(sadm_trainer_model(a)),
                   sadm_dit_param_total(sadm_trainer_model(a)));
    tu_assert_same("encoder", sadm_encoder_param_data(sadm_trainer_encoder(b)),
                   sadm_encoder_param_data(sadm_trainer_encoder(a)), sadm_encoder_param_total(sadm_trainer_encoder(a)));
    /* the DiT of a SADM checkpoint loads for sampling */
    sadm_dit *m;
    TU_OK(sadm_dit_load_any(ref_path("ckpt.safetensors"), 1, &m));
    sadm_dit_free(m);
    sadm_trainer_free(a);
    sadm_trainer_free(b);
    sadm_dataset_free(d);
    sadm_set_num_threads(0);
    ref_cleanup();
}

START_TEST(test_sadm_resume_equals_uninterrupted) {
    resume_case(SADM_PRECISION_FP32, 0);
    resume_case(SADM_PRECISION_BF16, 0);
    resume_case(SADM_PRECISION_FP32, 1);
}
END_TEST

START_TEST(test_bad_inputs) {
    sadm_dataset *d;
    TU_OK(sadm_dataset_fmnist(NULL, "train", &d));
    sadm_sadm_config sc;
    sadm_sadm_config_default(&sc);
    sadm_trainer *tr = new_trainer(d, 1, NULL);
    sadm_encoder *e;
    sadm_encoder_config wrong = SMALL_ENC;
    wrong.input_size = 16;
    TU_OK(sadm_encoder_create(&wrong, 1, &e));
    ck_assert_int_eq(sadm_trainer_enable_sadm(tr, e, &sc), SADM_ERR_ARG);
    ck_assert_ptr_nonnull(strstr(sadm_last_error(), "takes 1×16×16 inputs but the denoiser makes 1×32×32"));
    sadm_encoder_free(e);
    TU_OK(sadm_encoder_create(&SMALL_ENC, 1, &e));
    sc.lambda = -0.1f;
    ck_assert_int_eq(sadm_trainer_enable_sadm(tr, e, &sc), SADM_ERR_ARG);
    /* the new options' ranges, with messages that name them */
    sadm_sadm_config_default(&sc);
    sc.weighting = SADM_WEIGHT_T_BELOW, sc.t_max = 1000;
    ck_assert_int_eq(sadm_trainer_enable_sadm(tr, e, &sc), SADM_ERR_ARG);
    ck_assert_msg(strstr(sadm_last_error(), "t<1000 weights every sample of a 1000-step diffusion") &&
                      strstr(sadm_last_error(), "[1, 1000)"),
                  "%s", sadm_last_error());
    sc.t_max = 0;
    ck_assert_int_eq(sadm_sadm_config_check(&sc), SADM_ERR_ARG);
    ck_assert_ptr_nonnull(strstr(sadm_last_error(), "t<0 weights no sample"));
    sadm_sadm_config_default(&sc);
    sc.grad_ratio = -1;
    ck_assert_int_eq(sadm_sadm_config_check(&sc), SADM_ERR_ARG);
    ck_assert_ptr_nonnull(strstr(sadm_last_error(), "gradient ratio"));
    sc.grad_ratio = 0, sc.disc_warmup = -2;
    ck_assert_int_eq(sadm_sadm_config_check(&sc), SADM_ERR_ARG);
    ck_assert_ptr_nonnull(strstr(sadm_last_error(), "warm-up"));
    sadm_struct_weighting wt;
    int tmax = -7;
    static const char *const bad[] = {"t<", "t<-5", "t<4x", "t< 4", "t<400000000000", "T<400", "beta"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        ck_assert_int_eq(sadm_struct_weighting_parse(bad[i], &wt, &tmax), SADM_ERR_ARG);
        ck_assert_msg(strstr(sadm_last_error(), bad[i]) && strstr(sadm_last_error(), "t<400"), "%s: %s", bad[i],
                      sadm_last_error());
    }
    TU_OK(sadm_struct_weighting_parse("t<250", &wt, &tmax));
    ck_assert(wt == SADM_WEIGHT_T_BELOW && tmax == 250);
    char wbuf[32];
    sc.weighting = wt, sc.t_max = tmax;
    ck_assert_str_eq(sadm_sadm_weighting_string(&sc, wbuf, sizeof wbuf), "t<250");
    sadm_trainer_free(tr);
    /* batch of one */
    sadm_dit *m;
    TU_OK(sadm_dit_create(&SMALL, 1, &m));
    sadm_train_config c;
    sadm_train_config_default(&c);
    c.batch_size = 1;
    TU_OK(sadm_trainer_create(m, d, &c, &tr));
    sadm_sadm_config_default(&sc);
    ck_assert_int_eq(sadm_trainer_enable_sadm(tr, e, &sc), SADM_ERR_ARG);
    ck_assert_ptr_nonnull(strstr(sadm_last_error(), "no pairs"));
    sadm_trainer_free(tr);
    /* NaN in L_struct: the step stops, naming it, and the denoiser is left as it was */
    tr = new_trainer(d, 1, NULL);
    TU_OK(sadm_trainer_enable_sadm(tr, e, &sc));
    sadm_step_stats s;
    run(tr, 1, &s);
    sadm_encoder *enc = sadm_trainer_encoder(tr);
    const sadm_param *hw = sadm_encoder_param(enc, sadm_encoder_num_params(enc) - 2);
    sadm_encoder_param_data(enc)[hw->offset] = NAN;
    size_t P = sadm_dit_param_total(sadm_trainer_model(tr));
    float *before = tu_copy(sadm_dit_param_data(sadm_trainer_model(tr)), P);
    ck_assert_int_eq(sadm_trainer_step(tr, &s), SADM_ERR_NUMERIC);
    ck_assert_msg(strstr(sadm_last_error(), "step 2") && strstr(sadm_last_error(), "not finite"), "message: %s",
                  sadm_last_error());
    tu_assert_same("weights after the NaN step", sadm_dit_param_data(sadm_trainer_model(tr)), before, P);
    free(before);
    sadm_trainer_free(tr);
    sadm_dataset_free(d);
}
END_TEST

int main(void) {
    Suite *s = suite_create("sadm");
    TCase *tc = tcase_create("sadm");
    tcase_set_timeout(tc, 600);
    tcase_add_test(tc, test_encoder_init_and_files);
    tcase_add_test(tc, test_encoder_input_gradient_fd);
    tcase_add_test(tc, test_struct_vs_torch);
    tcase_add_test(tc, test_encoder_vs_torch);
    tcase_add_test(tc, test_objective_vs_torch);
    tcase_add_test(tc, test_lambda_zero_is_plain_training);
    tcase_add_test(tc, test_encoder_warmup);
    tcase_add_test(tc, test_encoder_restart);
    tcase_add_test(tc, test_sadm_resume_equals_uninterrupted);
    tcase_add_test(tc, test_bad_inputs);
    suite_add_tcase(s, tc);
    return tu_run(s);
}
