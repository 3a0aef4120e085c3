/* FD_fmnist: the Fréchet distance of a DiT's samples to reference statistics in the
 * features of the Fashion-MNIST classifier — the metric fit for the embedded default data. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../internal.h"

enum { STREAM_XT = 1 };

void sadm_fd_fmnist_config_default(sadm_fd_fmnist_config *cfg) {
    if (!cfg) return;
    memset(cfg, 0, sizeof *cfg);
    cfg->samples = 1000;
    cfg->steps = 25;
    cfg->cfg_scale = 1.0f;
    cfg->batch = 100;
    cfg->seed = 0;
}

sadm_status sadm_fd_fmnist(sadm_dit *m, sadm_classifier *c, const double *mu_ref, const double *sigma_ref,
                           const sadm_fd_fmnist_config *cfg, void (*progress)(void *ctx, int done, int total), void *ctx,
                           double *fd) {
    SADM_REQUIRE_PTR(m);
    SADM_REQUIRE_PTR(c);
    SADM_REQUIRE_PTR(mu_ref);
    SADM_REQUIRE_PTR(sigma_ref);
    SADM_REQUIRE_PTR(cfg);
    SADM_REQUIRE_PTR(fd);
    const sadm_dit_config *mc = sadm_dit_get_config(m);
    SADM_REQUIRE(mc->in_channels == 1 && mc->input_size == SADM_CLASSIFIER_SIZE,
                 "FD_fmnist: the model makes %d-channel %dx%d samples; the Fashion-MNIST classifier takes 1-channel %dx%d",
                 mc->in_channels, mc->input_size, mc->input_size, SADM_CLASSIFIER_SIZE, SADM_CLASSIFIER_SIZE);
    SADM_REQUIRE(cfg->samples >= 2, "FD_fmnist: %d samples; the statistics need at least 2", cfg->samples);
    SADM_REQUIRE(cfg->steps >= 1 && cfg->steps <= 1000 && cfg->batch >= 1 && cfg->cfg_scale >= 0,
                 "FD_fmnist: steps %d must lie in [1, 1000], batch %d be positive, guidance %g not negative", cfg->steps,
                 cfg->batch, cfg->cfg_scale);
    char spec[32];
    snprintf(spec, sizeof spec, "ddim%d", cfg->steps);
    sadm_diffusion *d = NULL;
    sadm_status st = sadm_diffusion_respaced("linear", 1000, spec, &d);
    if (st) return st;
    const int D = SADM_CLASSIFIER_FEATURES, B = cfg->batch;
    size_t per = (size_t)SADM_CLASSIFIER_SIZE * SADM_CLASSIFIER_SIZE;
    sadm_sample_config sc = {1, 0.0f, cfg->cfg_scale, 0, 1};
    sadm_feature_stats *fs = NULL;
    float *xT = malloc((size_t)B * per * sizeof(float)), *x = malloc((size_t)B * per * sizeof(float));
    float *feat = malloc((size_t)B * D * sizeof(float));
    int64_t *y = malloc((size_t)B * sizeof(int64_t));
    double *mu = malloc((size_t)D * sizeof(double)), *sigma = malloc((size_t)D * D * sizeof(double));
    if (!xT || !x || !feat || !y || !mu || !sigma) st = sadm_error(SADM_ERR_NOMEM, "FD_fmnist: out of memory");
    if (!st) st = sadm_feature_stats_create(D, &fs);
    for (int b0 = 0; !st && b0 < cfg->samples; b0 += B) {
        int nb = cfg->samples - b0 < B ? cfg->samples - b0 : B;
        for (int i = 0; i < nb; i++) y[i] = (b0 + i) % mc->num_classes;
        st = sadm_rng_normal(cfg->seed, STREAM_XT, (uint64_t)b0 * per, (size_t)nb * per, xT);
        if (!st)
            st = sadm_dit_sample(m, d, &sc, nb, y, xT, NULL, (cfg->seed << 24) + (uint64_t)b0, x, NULL, NULL);
        if (!st) st = sadm_classifier_features_samples(c, nb, x, feat);
        if (!st) st = sadm_feature_stats_add(fs, (size_t)nb, feat);
        if (!st && progress) progress(ctx, b0 + nb, cfg->samples);
    }
    if (!st) st = sadm_feature_stats_get(fs, mu, sigma);
    if (!st) st = sadm_frechet_distance(D, mu_ref, sigma_ref, mu, sigma, fd);
    sadm_feature_stats_free(fs);
    sadm_diffusion_free(d);
    free(xT), free(x), free(feat), free(y), free(mu), free(sigma);
    return st;
}

sadm_status sadm_fmnist_split_stats(sadm_classifier *c, const char *data_dir, const char *split, size_t first, double *mu,
                                    double *sigma, size_t *count) {
    SADM_REQUIRE_PTR(c);
    SADM_REQUIRE_PTR(split);
    SADM_REQUIRE_PTR(mu);
    SADM_REQUIRE_PTR(sigma);
    sadm_dataset *d;
    SADM_TRY(sadm_dataset_fmnist(data_dir, split, &d));
    sadm_feature_stats *fs = NULL;
    sadm_status st = sadm_feature_stats_create(SADM_CLASSIFIER_FEATURES, &fs);
    if (!st) st = sadm_classifier_dataset_stats_first(c, d, first, fs);
    if (!st) st = sadm_feature_stats_get(fs, mu, sigma);
    if (!st && count) *count = sadm_feature_stats_count(fs);
    sadm_feature_stats_free(fs);
    sadm_dataset_free(d);
    return st;
}
