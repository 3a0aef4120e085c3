/* DDPM and DDIM sampling as improved-DDPM's gaussian_diffusion.py (p_sample, ddim_sample)
 * with respace.py's timestep map and DiT's forward_with_cfg. Arithmetic is float32 with
 * each schedule coefficient cast to float, in PyTorch's order of operations. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "backend.h"
#include "models/dit_internal.h"

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
    int NB = guided ? 2 * N : N;
    /* x, the model output, the step's noise and t on the model's backend; y and x_T come
     * in, the samples go out */
    sadm_backend *be = sadm_dit_backend(m);
    size_t xb = (size_t)N * per * sizeof(float);
    float *x = sadm_backend_floats(be, (size_t)NB * per + (size_t)NB * pero + (size_t)N * per + (size_t)NB, "sampling");
    int64_t *yy = be->alloc(be, SADM_DTYPE_I64, (size_t)NB);
    int64_t *yhost = malloc((size_t)NB * sizeof(int64_t));
    float *tf_host = malloc((size_t)NB * sizeof(float));
    sadm_status st = SADM_OK;
    if (!x || !yy || !yhost || !tf_host) st = sadm_error(SADM_ERR_NOMEM, "sampling: out of memory for batch %d", N);
    float *mo = x ? x + (size_t)NB * per : NULL, *noise = mo ? mo + (size_t)NB * pero : NULL;
    float *tf = noise ? noise + (size_t)N * per : NULL;
    if (!st) {
        for (int n = 0; n < NB; n++) yhost[n] = n < N ? y[n] : mc->num_classes;
        st = be->upload(be, yy, yhost, (size_t)NB * sizeof(int64_t));
    }
    if (!st) st = be->upload(be, x, x_T, xb);
    const int64_t *tmap = sadm_diffusion_timestep_map(d);
    for (int step = 0; !st && step < S; step++) {
        int i = S - 1 - step; /* indices run from the last step down to 0 */
        if (guided && (st = be->copy(be, x + (size_t)N * per, x, xb))) break;
        for (int n = 0; n < NB; n++) tf_host[n] = (float)tmap[i];
        if ((st = be->upload(be, tf, tf_host, (size_t)NB * sizeof(float)))) break;
        if ((st = dit_forward_dev(m, NB, x, tf, yy, mo, 1))) break;
        if (step_noise)
            st = be->upload(be, noise, step_noise + (size_t)step * N * per, xb);
        else
            st = be->ops->rng_normal(seed, STREAM_SAMPLE_NOISE, (uint64_t)step * N * per, (size_t)N * per, noise);
        if (st) break;
        sadm_sampler_step c = {0};
        c.sqrt_recip_ab = coef(d, "sqrt_recip_alphas_cumprod", i), c.sqrt_recipm1_ab = coef(d, "sqrt_recipm1_alphas_cumprod", i);
        c.coef1 = coef(d, "posterior_mean_coef1", i), c.coef2 = coef(d, "posterior_mean_coef2", i);
        c.min_log = coef(d, "posterior_log_variance_clipped", i), c.max_log = (float)log(sadm_diffusion_array(d, "betas")[i]);
        /* fixed-large variance: posterior variance at step 0, beta elsewhere */
        c.fixed_log_var = (float)log(i == 0 && S > 1 ? sadm_diffusion_array(d, "posterior_variance")[1]
                                                     : sadm_diffusion_array(d, "betas")[i]);
        float ab = coef(d, "alphas_cumprod", i), abp = coef(d, "alphas_cumprod_prev", i);
        c.ab_prev = abp;
        c.sigma = cfg->eta * sqrtf((1.0f - abp) / (1.0f - ab)) * sqrtf(1.0f - ab / abp);
        c.nonzero = i != 0 ? 1.0f : 0.0f;
        c.cfg_scale = cfg->cfg_scale, c.guided = guided, c.guided_channels = cfg->cfg_channels ? cfg->cfg_channels : C;
        c.ddim = cfg->ddim, c.clip_denoised = cfg->clip_denoised, c.learn_sigma = mc->learn_sigma;
        if ((st = be->ops->sampler_update(&c, N, C, HW, mo, noise, x))) break;
        if (progress) progress(ctx, step + 1, S);
    }
    if (!st) st = be->download(be, out, x, xb);
    if (x) be->free(be, x);
    if (yy) be->free(be, yy);
    free(yhost), free(tf_host);
    return st;
}
