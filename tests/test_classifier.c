/* The Fashion-MNIST classifier of FD_fmnist against PyTorch (tests/reference/
 * classifier_torch.py, an nn.Module written from lib/sadm.h's definition, in double):
 * logits, features, the cross-entropy and every parameter gradient; three full-batch
 * AdamW steps; the shipped weights' test accuracy (>= 90%, and PyTorch's predictions with
 * the same weights). Also ReLU and cross-entropy on their own (finite differences),
 * thread-invariant training, the two feature paths, FD_fmnist, and bad input. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h" /* SADM_FMNIST_DIR */
#include "reference.h"
#include "testutil.h"

enum { S = SADM_CLASSIFIER_SIZE, PIX = S * S, K = 10, D = SADM_CLASSIFIER_FEATURES };

/* A batch that looks like Fashion-MNIST: background -1, a bright blob whose place depends
 * on the label (so that training has something to learn), plus noise. */
static void make_batch(int N, uint64_t seed, float *x, int64_t *y) {
    float *u = tu_uniform((size_t)N * PIX, seed, -0.3f, 0.3f);
    for (int n = 0; n < N; n++) {
        y[n] = (n * 7 + (int)seed) % K;
        int cy = 6 + (int)y[n] * 2, cx = 8 + (int)(y[n] % 5) * 4;
        for (int i = 0; i < PIX; i++) {
            int r = i / S, c = i % S;
            float d2 = (float)((r - cy) * (r - cy) + (c - cx) * (c - cx));
            x[(size_t)n * PIX + i] = -1.0f + 1.6f * expf(-d2 / 18.0f) + u[(size_t)n * PIX + i] * (r >= 2 && r < 30);
        }
    }
    free(u);
}

static void write_batch(const char *path, int N, const float *x, const int64_t *y) {
    sadm_st_writer *w = sadm_st_writer_new();
    int64_t sx[4] = {N, 1, S, S}, sy[1] = {N};
    TU_OK(sadm_st_writer_add(w, "x", SADM_DTYPE_F32, 4, sx, x));
    TU_OK(sadm_st_writer_add(w, "y", SADM_DTYPE_I64, 1, sy, y));
    TU_OK(sadm_st_writer_save(w, path));
    sadm_st_writer_free(w);
}

/* ------------------------------------------------------------------ operators */
START_TEST(test_relu) {
    for (size_t s = 0; s < tu_n_awkward_sizes; s++) {
        size_t n = tu_awkward_sizes[s];
        float *x = tu_uniform(n, 10 + s, -1, 1), *y = tu_alloc(n), *dy = tu_uniform(n, 20 + s, -1, 1), *dx = tu_alloc(n);
        if (n) x[0] = 0.0f; /* PyTorch's gradient at 0 is 0 */
        TU_OK(sadm_relu_forward(n, x, y));
        TU_OK(sadm_relu_backward(n, x, dy, dx));
        for (size_t i = 0; i < n; i++) {
            ck_assert_msg(y[i] == (x[i] > 0 ? x[i] : 0.0f), "relu(%g) = %g", x[i], y[i]);
            ck_assert_msg(dx[i] == (x[i] > 0 ? dy[i] : 0.0f), "relu' at %g gave %g", x[i], dx[i]);
        }
        free(x), free(y), free(dy), free(dx);
    }
}
END_TEST

typedef struct ce_ctx {
    size_t N;
    const float *logits;
    const int64_t *y;
} ce_ctx;

static void ce_forward(void *ctx, float *out) {
    ce_ctx *c = ctx;
    double loss;
    TU_OK(sadm_cross_entropy(c->N, K, c->logits, c->y, &loss, NULL));
    out[0] = (float)loss;
}

START_TEST(test_cross_entropy) {
    const size_t N = 7;
    float *z = tu_uniform(N * K, 3, -4, 4), *dz = tu_alloc(N * K);
    int64_t y[7] = {0, 9, 3, 3, 5, 1, 8};
    double loss;
    TU_OK(sadm_cross_entropy(N, K, z, y, &loss, dz));
    /* the definition, directly */
    double want = 0;
    for (size_t n = 0; n < N; n++) {
        double se = 0;
        for (int k = 0; k < K; k++) se += exp((double)z[n * K + k]);
        want += log(se) - z[n * K + y[n]];
    }
    ck_assert_msg(fabs(loss - want / N) < 1e-12 * fabs(want), "loss %.15g, definition %.15g", loss, want / N);
    ce_ctx c = {N, z, y};
    float w = 1.0f;
    tu_check_grad("cross-entropy", ce_forward, &c, z, N * K, dz, &w, 1, 1e-2f, 1e-2);
    /* large logits stay finite (log-sum-exp with the maximum taken out) */
    z[0] = 1e30f;
    TU_OK(sadm_cross_entropy(N, K, z, y, &loss, dz));
    ck_assert(isfinite(loss));
    y[2] = 10;
    ck_assert_int_eq(sadm_cross_entropy(N, K, z, y, &loss, dz), SADM_ERR_ARG);
    ck_assert_msg(strstr(sadm_last_error(), "label 10 of row 2"), "%s", sadm_last_error());
    z[0] = NAN, y[2] = 1;
    ck_assert_int_eq(sadm_cross_entropy(N, K, z, y, &loss, dz), SADM_ERR_NUMERIC);
    free(z), free(dz);
}
END_TEST

/* ------------------------------------------------------------------ model vs PyTorch */
START_TEST(test_model_vs_torch) {
    const int N = 6;
    sadm_classifier *c;
    TU_OK(sadm_classifier_create(42, &c));
    float *x = tu_alloc((size_t)N * PIX), *logits = tu_alloc((size_t)N * K), *feat = tu_alloc((size_t)N * D);
    float *dlogits = tu_alloc((size_t)N * K);
    int64_t y[6];
    make_batch(N, 5, x, y);
    double loss;
    TU_OK(sadm_classifier_forward(c, N, x, logits, feat));
    TU_OK(sadm_cross_entropy(N, K, logits, y, &loss, dlogits));
    TU_OK(sadm_classifier_zero_grad(c));
    TU_OK(sadm_classifier_backward(c, dlogits));
    TU_OK(sadm_classifier_save(c, ref_path("w.safetensors")));
    write_batch(ref_path("batch.safetensors"), N, x, y);
    char args[1200];
    snprintf(args, sizeof args, "model '%s' '%s' '%s'", ref_path("w.safetensors"), ref_path("batch.safetensors"),
             ref_path("out.safetensors"));
    ref_run("classifier_torch.py", args);
    sadm_st_file *f;
    TU_OK(sadm_st_open(ref_path("out.safetensors"), &f));
    sadm_param pl = {"logits", 2, {N, K}, 0, (size_t)N * K, 1}, pf = {"features", 2, {N, D}, 0, (size_t)N * D, 1};
    sadm_param pd = {"dlogits", 2, {N, K}, 0, (size_t)N * K, 1};
    tu_assert_tensor_close(f, "logits", logits, &pl, 1e-5, "classifier");
    tu_assert_tensor_close(f, "features", feat, &pf, 1e-5, "classifier");
    tu_assert_tensor_close(f, "dlogits", dlogits, &pd, 1e-5, "classifier");
    int64_t one = 1;
    float lf;
    TU_OK(sadm_st_read_f32(f, "loss", 1, &one, &lf));
    ck_assert_msg(fabs(loss - lf) < 1e-5 * fabs(lf), "loss %.9g, PyTorch %.9g", loss, lf);
    const float *g = sadm_classifier_grad_data(c);
    for (size_t i = 0; i < sadm_classifier_num_params(c); i++) {
        const sadm_param *p = sadm_classifier_param(c, i);
        char key[160];
        snprintf(key, sizeof key, "grad.%s", p->name);
        tu_assert_tensor_close(f, key, g + p->offset, p, 1e-4, "classifier");
    }
    sadm_st_close(f);
    sadm_classifier_free(c);
    free(x), free(logits), free(feat), free(dlogits);
    ref_cleanup();
}
END_TEST

/* sadm_classifier_train on a data set of exactly one batch (no flips) is full-batch
 * AdamW, whatever the order: three steps against torch.optim.AdamW with the cosine lr. */
static sadm_dataset *batch_dataset(const char *path, int N, const float *x, const int64_t *y) {
    write_batch(path, N, x, y);
    sadm_dataset *d;
    TU_OK(sadm_dataset_tensors(path, &d));
    return d;
}

START_TEST(test_training_vs_torch) {
    const int N = 32, STEPS = 3;
    float *x = tu_alloc((size_t)N * PIX);
    int64_t y[32];
    make_batch(N, 9, x, y);
    sadm_dataset *d = batch_dataset(ref_path("batch.safetensors"), N, x, y);
    sadm_classifier *c;
    TU_OK(sadm_classifier_create(7, &c));
    TU_OK(sadm_classifier_save(c, ref_path("w0.safetensors")));
    sadm_classifier_train_config tc;
    sadm_classifier_train_config_default(&tc);
    tc.epochs = STEPS, tc.batch_size = N, tc.flip = 0, tc.lr = 1e-3f;
    TU_OK(sadm_classifier_train(c, d, &tc, NULL, NULL));
    char args[1200];
    snprintf(args, sizeof args, "train '%s' '%s' '%s' %d %g", ref_path("w0.safetensors"), ref_path("batch.safetensors"),
             ref_path("out.safetensors"), STEPS, (double)tc.lr);
    ref_run("classifier_torch.py", args);
    sadm_st_file *f, *f0;
    TU_OK(sadm_st_open(ref_path("out.safetensors"), &f));
    TU_OK(sadm_st_open(ref_path("w0.safetensors"), &f0));
    const float *w = sadm_classifier_param_data(c);
    for (size_t i = 0; i < sadm_classifier_num_params(c); i++) {
        const sadm_param *p = sadm_classifier_param(c, i);
        float *ref = tu_alloc(p->numel), *w0 = tu_alloc(p->numel);
        TU_OK(sadm_st_read_f32(f, p->name, p->ndim, p->shape, ref));
        TU_OK(sadm_st_read_f32(f0, p->name, p->ndim, p->shape, w0));
        /* the change the steps made, ours against PyTorch's: Adam's first steps move each
         * weight by about lr whatever its gradient, so compare the moves */
        double dd = 0, mv = 0;
        for (size_t k = 0; k < p->numel; k++) {
            dd += ((double)w[p->offset + k] - ref[k]) * ((double)w[p->offset + k] - ref[k]);
            mv += ((double)ref[k] - w0[k]) * ((double)ref[k] - w0[k]);
        }
        ck_assert_msg(mv > 0, "%s: PyTorch's steps did not move it", p->name);
        ck_assert_msg(sqrt(dd) <= 1e-3 * sqrt(mv), "%s: |ours - PyTorch| = %g, |PyTorch's move| = %g", p->name, sqrt(dd),
                      sqrt(mv));
        free(ref), free(w0);
    }
    sadm_st_close(f), sadm_st_close(f0);
    sadm_classifier_free(c);
    sadm_dataset_free(d);
    free(x);
    ref_cleanup();
}
END_TEST

/* Training results depend on the seed only: 1, 2 and 3 threads, bitwise. */
START_TEST(test_training_thread_invariant) {
    const int N = 96;
    float *x = tu_alloc((size_t)N * PIX);
    int64_t y[96];
    make_batch(N, 11, x, y);
    sadm_dataset *d = batch_dataset(ref_path("data.safetensors"), N, x, y);
    sadm_classifier_train_config tc;
    sadm_classifier_train_config_default(&tc);
    tc.epochs = 2, tc.batch_size = 16, tc.seed = 5;
    float *first = NULL;
    int saved = sadm_num_threads();
    for (int th = 1; th <= 3; th++) {
        if (sadm_set_num_threads(th) != SADM_OK) continue; /* a build without OpenMP */
        sadm_classifier *c;
        TU_OK(sadm_classifier_create(3, &c));
        TU_OK(sadm_classifier_train(c, d, &tc, NULL, NULL));
        size_t n = sadm_classifier_param_total(c);
        if (!first) first = tu_copy(sadm_classifier_param_data(c), n);
        else tu_assert_same("weights after training", sadm_classifier_param_data(c), first, n);
        sadm_classifier_free(c);
    }
    sadm_set_num_threads(saved);
    sadm_dataset_free(d);
    free(x), free(first);
    ref_cleanup();
}
END_TEST

/* ------------------------------------------------------------------ the shipped weights */
START_TEST(test_shipped_accuracy) {
    const char *path = getenv("SADM_CLASSIFIER");
    ck_assert_msg(path && *path, "SADM_CLASSIFIER (set by make check) names the shipped weights");
    sadm_classifier *c;
    TU_OK(sadm_classifier_load(path, &c));
    sadm_dataset *test;
    TU_OK(sadm_dataset_fmnist(NULL, "test", &test));
    /* all 10k natively; under an emulator (.ci/run's NEON stage, where they took most of
     * an hour) the first 2000, compared with PyTorch's predictions on the same images */
    size_t n = tu_emulated() ? 2000 : sadm_dataset_size(test);
    double acc, loss;
    TU_OK(sadm_classifier_evaluate_first(c, test, n, &acc, &loss));
    fprintf(stderr, "shipped classifier: accuracy %.4f, loss %.4f on the first %zu test images\n", acc, loss, n);
    ck_assert_msg(acc >= 0.90, "test accuracy %.4f < 0.90", acc);
    /* PyTorch with the same weights on the same images, read by its own code */
    const char *dir = getenv("SADM_FMNIST_DIR");
    char args[1200];
    snprintf(args, sizeof args, "accuracy '%s' '%s' '%s'", path, dir && *dir ? dir : SADM_FMNIST_DIR,
             ref_path("acc.safetensors"));
    ref_run("classifier_torch.py", args);
    sadm_st_file *f;
    TU_OK(sadm_st_open(ref_path("acc.safetensors"), &f));
    const sadm_tensor_info *ti = sadm_st_find(f, "accuracy");
    ck_assert(ti && ti->dtype == SADM_DTYPE_F64);
    double ref_acc;
    memcpy(&ref_acc, ti->data, sizeof ref_acc);
    if (n < sadm_dataset_size(test)) { /* PyTorch's accuracy on the same first n */
        const sadm_tensor_info *pi = sadm_st_find(f, "predictions");
        ck_assert(pi && pi->dtype == SADM_DTYPE_I64);
        size_t right = 0, side = (size_t)sadm_dataset_image_size(test);
        float *x = tu_alloc(side * side * (size_t)sadm_dataset_channels(test));
        for (size_t i = 0; i < n; i++) {
            int64_t pred, label;
            memcpy(&pred, (const char *)pi->data + i * sizeof pred, sizeof pred);
            TU_OK(sadm_dataset_get(test, i, 0, x, &label));
            right += pred == label;
        }
        free(x);
        ref_acc = (double)right / (double)n;
    }
    /* float rounding may flip a near-tie or two */
    ck_assert_msg(fabs(acc - ref_acc) <= 3e-4, "accuracy %.4f, PyTorch %.4f", acc, ref_acc);
    sadm_st_close(f);
    sadm_dataset_free(test);
    sadm_classifier_free(c);
    ref_cleanup();
}
END_TEST

/* ------------------------------------------------------------------ features, FD */
START_TEST(test_feature_paths) {
    const int N = 5;
    sadm_classifier *c;
    TU_OK(sadm_classifier_create(1, &c));
    float *x = tu_uniform((size_t)N * PIX, 4, -1.2f, 1.2f), *fa = tu_alloc((size_t)N * D), *fb = tu_alloc((size_t)N * D);
    uint8_t *img = malloc((size_t)N * PIX * 3), *img28 = malloc((size_t)N * 28 * 28 * 3);
    /* samples -> 8-bit grey RGB by the sample quantisation, then the image path */
    for (int i = 0; i < N * PIX; i++) {
        float u = 127.5f * x[i] + 128.0f;
        uint8_t v = (uint8_t)(u < 0 ? 0 : u > 255 ? 255 : u);
        img[i * 3] = img[i * 3 + 1] = img[i * 3 + 2] = v;
    }
    TU_OK(sadm_classifier_features_samples(c, N, x, fa));
    TU_OK(sadm_classifier_features_u8(c, N, S, S, img, fb));
    tu_assert_same("features: samples vs 8-bit images", fa, fb, (size_t)N * D);
    /* a 28x28 image is the 32x32 one without its 2-pixel background border */
    for (int n = 0; n < N; n++)
        for (int i = 0; i < PIX; i++) {
            int r = i / S, q = i % S;
            uint8_t v = r >= 2 && r < 30 && q >= 2 && q < 30 ? img[((size_t)n * PIX + i) * 3] : 0;
            img[((size_t)n * PIX + i) * 3] = img[((size_t)n * PIX + i) * 3 + 1] = img[((size_t)n * PIX + i) * 3 + 2] = v;
            if (r >= 2 && r < 30 && q >= 2 && q < 30)
                for (int ch = 0; ch < 3; ch++) img28[(((size_t)n * 28 + r - 2) * 28 + q - 2) * 3 + ch] = v;
        }
    TU_OK(sadm_classifier_features_u8(c, N, S, S, img, fa));
    TU_OK(sadm_classifier_features_u8(c, N, 28, 28, img28, fb));
    tu_assert_same("features: 28x28 vs padded 32x32", fa, fb, (size_t)N * D);
    ck_assert_int_eq(sadm_classifier_features_u8(c, N, 30, 30, img, fa), SADM_ERR_ARG);
    ck_assert_msg(strstr(sadm_last_error(), "30x30"), "%s", sadm_last_error());
    x[3] = NAN;
    ck_assert_int_eq(sadm_classifier_features_samples(c, N, x, fa), SADM_ERR_NUMERIC);
    sadm_classifier_free(c);
    free(x), free(fa), free(fb), free(img), free(img28);
}
END_TEST

/* FD_fmnist of a small random DiT: finite, deterministic for a seed, and equal to the
 * pipeline done by hand (balanced labels, DDIM, features, statistics, Fréchet). */
START_TEST(test_fd_fmnist) {
    sadm_dit_config mc = {S, 8, 1, 32, 1, 2, 4.0f, 0.1f, K, 1};
    sadm_dit *m;
    TU_OK(sadm_dit_create(&mc, 1, &m));
    tu_randomise_dit(m, 2, 0.5f);
    sadm_classifier *c;
    TU_OK(sadm_classifier_create(3, &c));
    double *mu = malloc(D * sizeof(double)), *sigma = malloc((size_t)D * D * sizeof(double));
    for (int i = 0; i < D; i++) {
        mu[i] = 0.01 * i;
        for (int j = 0; j < D; j++) sigma[(size_t)i * D + j] = i == j ? 1.0 : 0.0;
    }
    sadm_fd_fmnist_config fc;
    sadm_fd_fmnist_config_default(&fc);
    fc.samples = 12, fc.steps = 2, fc.batch = 5, fc.seed = 4;
    double fd1, fd2;
    TU_OK(sadm_fd_fmnist(m, c, mu, sigma, &fc, NULL, NULL, &fd1));
    TU_OK(sadm_fd_fmnist(m, c, mu, sigma, &fc, NULL, NULL, &fd2));
    ck_assert_msg(isfinite(fd1) && fd1 > 0 && fd1 == fd2, "FD %g then %g", fd1, fd2);
    /* by hand, one batch of 12 (the sampler draws per-batch step noise, so use DDIM eta 0,
     * which has none, and the same x_T) */
    float *xT = tu_alloc(12 * PIX), *xs = tu_alloc(12 * PIX), *feat = tu_alloc(12 * D);
    int64_t y[12];
    for (int i = 0; i < 12; i++) y[i] = i % K;
    TU_OK(sadm_rng_normal(4, 1, 0, 12 * PIX, xT));
    sadm_diffusion *d;
    TU_OK(sadm_diffusion_respaced("linear", 1000, "ddim2", &d));
    sadm_sample_config sc = {1, 0.0f, 1.0f, 0, 1};
    TU_OK(sadm_dit_sample(m, d, &sc, 12, y, xT, NULL, 0, xs, NULL, NULL));
    TU_OK(sadm_classifier_features_samples(c, 12, xs, feat));
    sadm_feature_stats *fs;
    TU_OK(sadm_feature_stats_create(D, &fs));
    TU_OK(sadm_feature_stats_add(fs, 12, feat));
    double *mu2 = malloc(D * sizeof(double)), *s2 = malloc((size_t)D * D * sizeof(double)), fd3;
    TU_OK(sadm_feature_stats_get(fs, mu2, s2));
    TU_OK(sadm_frechet_distance(D, mu, sigma, mu2, s2, &fd3));
    ck_assert_msg(fabs(fd3 - fd1) <= 1e-4 * fd1, "FD_fmnist %.9g, by hand %.9g", fd1, fd3);
    /* bad input: a model of another shape, too few samples */
    fc.samples = 1;
    ck_assert_int_eq(sadm_fd_fmnist(m, c, mu, sigma, &fc, NULL, NULL, &fd1), SADM_ERR_ARG);
    sadm_dit_config m3 = mc;
    m3.in_channels = 3;
    sadm_dit *m3d;
    TU_OK(sadm_dit_create(&m3, 1, &m3d));
    fc.samples = 4;
    ck_assert_int_eq(sadm_fd_fmnist(m3d, c, mu, sigma, &fc, NULL, NULL, &fd1), SADM_ERR_ARG);
    ck_assert_msg(strstr(sadm_last_error(), "3-channel"), "%s", sadm_last_error());
    sadm_feature_stats_free(fs);
    sadm_diffusion_free(d);
    sadm_dit_free(m), sadm_dit_free(m3d);
    sadm_classifier_free(c);
    free(mu), free(sigma), free(mu2), free(s2), free(xT), free(xs), free(feat);
}
END_TEST

/* ------------------------------------------------------------------ files, bad input */
START_TEST(test_files_and_errors) {
    sadm_classifier *c, *c2;
    TU_OK(sadm_classifier_create(9, &c));
    TU_OK(sadm_classifier_save(c, ref_path("c.safetensors")));
    TU_OK(sadm_classifier_load(ref_path("c.safetensors"), &c2));
    tu_assert_same("loaded weights", sadm_classifier_param_data(c2), sadm_classifier_param_data(c),
                   sadm_classifier_param_total(c));
    /* PyTorch's default init bound: 1/sqrt(fan_in) = 1/3 for conv1 (fan_in 9) */
    const sadm_param *p = sadm_classifier_param(c, 0);
    float mx = 0;
    for (size_t i = 0; i < p->numel; i++) mx = fabsf(sadm_classifier_param_data(c)[p->offset + i]) > mx ? fabsf(sadm_classifier_param_data(c)[p->offset + i]) : mx;
    ck_assert_msg(mx <= 1.0f / 3.0f && mx > 0.25f, "conv1.weight max |w| %g, expected just under 1/3", mx);
    /* not a classifier: a structure encoder file */
    sadm_encoder_config ec = {32, 8, 1, 16, 1, 2, 4.0f, 8};
    sadm_encoder *e;
    TU_OK(sadm_encoder_create(&ec, 1, &e));
    TU_OK(sadm_encoder_save(e, ref_path("e.safetensors")));
    sadm_classifier_free(c2);
    ck_assert_int_eq(sadm_classifier_load(ref_path("e.safetensors"), &c2), SADM_ERR_FORMAT);
    ck_assert(c2 == NULL);
    ck_assert_msg(strstr(sadm_last_error(), "architecture") && strstr(sadm_last_error(), "e.safetensors"), "%s",
                  sadm_last_error());
    /* a classifier file with a tensor too many */
    sadm_st_writer *xw = sadm_st_writer_new();
    TU_OK(sadm_st_writer_metadata(xw, "architecture", "fmnist-cnn-v1"));
    for (size_t i = 0; i < sadm_classifier_num_params(c); i++) {
        const sadm_param *q = sadm_classifier_param(c, i);
        TU_OK(sadm_st_writer_add(xw, q->name, SADM_DTYPE_F32, q->ndim, q->shape, sadm_classifier_param_data(c) + q->offset));
    }
    int64_t one = 1;
    float extra = 1.0f;
    TU_OK(sadm_st_writer_add(xw, "fc3.weight", SADM_DTYPE_F32, 1, &one, &extra));
    TU_OK(sadm_st_writer_save(xw, ref_path("extra.safetensors")));
    sadm_st_writer_free(xw);
    ck_assert_int_eq(sadm_classifier_load(ref_path("extra.safetensors"), &c2), SADM_ERR_FORMAT);
    ck_assert_msg(strstr(sadm_last_error(), "'fc3.weight' is not a parameter of the classifier"), "%s", sadm_last_error());
    /* backward before any forward */
    sadm_classifier *fresh;
    TU_OK(sadm_classifier_create(1, &fresh));
    float dl[K] = {0};
    ck_assert_int_eq(sadm_classifier_backward(fresh, dl), SADM_ERR_ARG);
    /* a data set of the wrong shape */
    float *x = tu_alloc(4 * 3 * 16 * 16);
    int64_t y[4] = {0, 1, 2, 3};
    sadm_st_writer *w = sadm_st_writer_new();
    int64_t sx[4] = {4, 3, 16, 16}, sy[1] = {4};
    TU_OK(sadm_st_writer_add(w, "x", SADM_DTYPE_F32, 4, sx, x));
    TU_OK(sadm_st_writer_add(w, "y", SADM_DTYPE_I64, 1, sy, y));
    TU_OK(sadm_st_writer_save(w, ref_path("rgb.safetensors")));
    sadm_st_writer_free(w);
    sadm_dataset *d;
    TU_OK(sadm_dataset_tensors(ref_path("rgb.safetensors"), &d));
    double acc;
    ck_assert_int_eq(sadm_classifier_evaluate(c, d, &acc, NULL), SADM_ERR_ARG);
    ck_assert_msg(strstr(sadm_last_error(), "3-channel 16x16"), "%s", sadm_last_error());
    sadm_classifier_train_config tc;
    sadm_classifier_train_config_default(&tc);
    ck_assert_int_eq(sadm_classifier_train(c, d, &tc, NULL, NULL), SADM_ERR_ARG);
    sadm_dataset_free(d);
    sadm_encoder_free(e);
    sadm_classifier_free(c), sadm_classifier_free(c2), sadm_classifier_free(fresh);
    free(x);
    ref_cleanup();
}
END_TEST

int main(void) {
    Suite *s = suite_create("classifier");
    TCase *tc = tcase_create("classifier");
    tcase_set_timeout(tc, 600);
    tcase_add_test(tc, test_relu);
    tcase_add_test(tc, test_cross_entropy);
    tcase_add_test(tc, test_model_vs_torch);
    tcase_add_test(tc, test_training_vs_torch);
    tcase_add_test(tc, test_training_thread_invariant);
    tcase_add_test(tc, test_shipped_accuracy);
    tcase_add_test(tc, test_feature_paths);
    tcase_add_test(tc, test_fd_fmnist);
    tcase_add_test(tc, test_files_and_errors);
    suite_add_tcase(s, tc);
    return tu_run(s);
}
