/* DDPM and DDIM sampling as improved-DDPM's gaussian_diffusion.py (p_sample, ddim_sample)
 * with respace.py's timestep map and DiT's forward_with_cfg. Arithmetic is float32 with
 * each schedule coefficient cast to float, in PyTorch's order of operations. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

#define STREAM_SAMPLE_NOISE 11

static inline float coef(const sadm_diffusion *d, const char *name, int i) {
    return (float)sadm_diffusion_array(d, name)[i];
}

sadm_status sadm_dit_sample(sadm_dit *m, const sadm_diffusion *d, const sadm_sample_config *cfg, int N, const int64_t *y,
                            const float *x_T, const float *step_noise, uint64_t seed, float *out,
                            void (*progress)(void *ctx, int done, int total), void *ctx) {
    SADM_REQUIRE_PTR(m);
    SADM_REQUIRE_PTR(d);
    SADM_REQUIRE_PTR(cfg);
    SADM_REQUIRE_POSITIVE(N);
    SADM_REQUIRE_PTR(y);
    SADM_REQUIRE_PTR(x_T);
    SADM_REQUIRE_PTR(out);
    const sadm_dit_config *mc = sadm_dit_get_config(m);
    int guided = cfg->cfg_scale != 1.0f;
    SADM_REQUIRE(!guided || mc->class_dropout_prob > 0,
                 "classifier-free guidance needs a model trained with class dropout (it has no null class)");
    int C = mc->in_channels, Co = sadm_dit_out_channels(m), S = sadm_diffusion_steps(d);
    SADM_REQUIRE(cfg->cfg_channels >= 0 && cfg->cfg_channels <= C, "cfg_channels %d must lie in [0, %d]", cfg->cfg_channels, C);
    SADM_REQUIRE(cfg->eta >= 0, "DDIM eta must not be negative, got %g", cfg->eta);
    for (int n = 0; n < N; n++)
        SADM_REQUIRE(y[n] >= 0 && y[n] < mc->num_classes, "label %lld of sample %d is not a class in [0, %d)", (long long)y[n], n,
                     mc->num_classes);
    size_t HW = (size_t)mc->input_size * mc->input_size, per = (size_t)C * HW, pero = (size_t)Co * HW;
    int NB = guided ? 2 * N : N, k = cfg->cfg_channels ? cfg->cfg_channels : C;
    float *x = sadm_alloc((size_t)NB * per * sizeof(float)), *mo = sadm_alloc((size_t)NB * pero * sizeof(float));
    float *noise = sadm_alloc(per * N * sizeof(float)), *tf = malloc((size_t)NB * sizeof(float));
    int64_t *yy = malloc((size_t)NB * sizeof(int64_t));
    sadm_status st = SADM_OK;
    if (!x || !mo || !noise || !tf || !yy) st = sadm_error(SADM_ERR_NOMEM, "sampling: out of memory for batch %d", N);
    if (!st) {
        memcpy(x, x_T, (size_t)N * per * sizeof(float));
        for (int n = 0; n < NB; n++) yy[n] = n < N ? y[n] : mc->num_classes;
    }
    const int64_t *tmap = sadm_diffusion_timestep_map(d);
    for (int step = 0; !st && step < S; step++) {
        int i = S - 1 - step; /* indices run from the last step down to 0 */
        if (guided) memcpy(x + (size_t)N * per, x, (size_t)N * per * sizeof(float));
        for (int n = 0; n < NB; n++) tf[n] = (float)tmap[i];
        st = sadm_dit_forward_inference(m, NB, x, tf, yy, mo);
        if (st) break;
        if (step_noise)
            memcpy(noise, step_noise + (size_t)step * N * per, (size_t)N * per * sizeof(float));
        else
            st = sadm_rng_normal(seed, STREAM_SAMPLE_NOISE, (uint64_t)step * N * per, (size_t)N * per, noise);
        float ra = coef(d, "sqrt_recip_alphas_cumprod", i), rm1 = coef(d, "sqrt_recipm1_alphas_cumprod", i);
        float c1 = coef(d, "posterior_mean_coef1", i), c2 = coef(d, "posterior_mean_coef2", i);
        float min_log = coef(d, "posterior_log_variance_clipped", i), max_log = (float)log(sadm_diffusion_array(d, "betas")[i]);
        /* fixed-large variance: posterior variance at step 0, beta elsewhere */
        float fixed_log = (float)log(i == 0 && S > 1 ? sadm_diffusion_array(d, "posterior_variance")[1]
                                                     : sadm_diffusion_array(d, "betas")[i]);
        float ab = coef(d, "alphas_cumprod", i), abp = coef(d, "alphas_cumprod_prev", i);
        float sigma = cfg->eta * sqrtf((1.0f - abp) / (1.0f - ab)) * sqrtf(1.0f - ab / abp);
        float nonzero = i != 0 ? 1.0f : 0.0f;
#pragma omp parallel for schedule(static)
        for (int n = 0; n < N; n++) {
            const float *oc = mo + (size_t)n * pero, *ou = mo + (size_t)(n + N) * pero;
            float *xn = x + (size_t)n * per;
            const float *z = noise + (size_t)n * per;
            for (size_t e = 0; e < per; e++) {
                int ch = (int)(e / HW);
                float eps = oc[e];
                if (guided && ch < k) eps = ou[e] + cfg->cfg_scale * (oc[e] - ou[e]);
                float px0 = ra * xn[e] - rm1 * eps;
                if (cfg->clip_denoised) px0 = px0 < -1.0f ? -1.0f : px0 > 1.0f ? 1.0f : px0;
                if (cfg->ddim) {
                    float e2 = (ra * xn[e] - px0) / rm1;
                    float mean = px0 * sqrtf(abp) + sqrtf(1.0f - abp - sigma * sigma) * e2;
                    xn[e] = mean + nonzero * sigma * z[e];
                } else {
                    float log_var = fixed_log;
                    if (mc->learn_sigma) {
                        float frac = (oc[per + e] + 1.0f) / 2.0f;
                        log_var = frac * max_log + (1.0f - frac) * min_log;
                    }
                    float mean = c1 * px0 + c2 * xn[e];
                    xn[e] = mean + nonzero * expf(0.5f * log_var) * z[e];
                }
            }
        }
        if (progress) progress(ctx, step + 1, S);
    }
    if (!st) memcpy(out, x, (size_t)N * per * sizeof(float));
    sadm_free(x), sadm_free(mo), sadm_free(noise), free(tf), free(yy);
    return st;
}
