/* Layout and small element-wise operators the models need so that they never touch
 * activations on the host: adaLN chunk split/merge, a row broadcast add (pos_embed),
 * integer timesteps as floats, and the reverse-diffusion update of the samplers. */
#include <math.h>
#include <string.h>

#include "internal.h"

sadm_status sadm_split_chunks(int N, int D, int k, const float *src, float *dst) {
    SADM_REQUIRE_POSITIVE(N);
    SADM_REQUIRE_POSITIVE(D);
    SADM_REQUIRE_POSITIVE(k);
    SADM_REQUIRE_PTR(src);
    SADM_REQUIRE_PTR(dst);
    for (int j = 0; j < k; j++)
        for (int n = 0; n < N; n++)
            memcpy(dst + ((size_t)j * N + n) * D, src + ((size_t)n * k + j) * D, (size_t)D * sizeof(float));
    return SADM_OK;
}

sadm_status sadm_merge_chunks(int N, int D, int k, const float *src, float *dst) {
    SADM_REQUIRE_POSITIVE(N);
    SADM_REQUIRE_POSITIVE(D);
    SADM_REQUIRE_POSITIVE(k);
    SADM_REQUIRE_PTR(src);
    SADM_REQUIRE_PTR(dst);
    for (int j = 0; j < k; j++)
        for (int n = 0; n < N; n++)
            memcpy(dst + ((size_t)n * k + j) * D, src + ((size_t)j * N + n) * D, (size_t)D * sizeof(float));
    return SADM_OK;
}

sadm_status sadm_add_rows(size_t rows, size_t n, const float *x, const float *row, float *out) {
    SADM_REQUIRE_PTR(x);
    SADM_REQUIRE_PTR(row);
    SADM_REQUIRE_PTR(out);
    for (size_t r = 0; r < rows; r++) {
        sadm_status st = sadm_add(n, x + r * n, row, out + r * n);
        if (st) return st;
    }
    return SADM_OK;
}

sadm_status sadm_i64_to_f32(size_t n, const int64_t *src, float *dst) {
    SADM_REQUIRE_PTR(src);
    SADM_REQUIRE_PTR(dst);
    for (size_t i = 0; i < n; i++) dst[i] = (float)src[i];
    return SADM_OK;
}

/* The update of ADM's p_sample / ddim_sample for one step, element by element: the
 * guided eps (first cfg_channels channels), x̂0 from it, then the posterior mean plus
 * scaled noise (DDPM) or the DDIM step. */
sadm_status sadm_sampler_update(const sadm_sampler_step *c, int N, int C, size_t HW, const float *model_out,
                                const float *noise, float *x) {
    SADM_REQUIRE_PTR(c);
    SADM_REQUIRE_POSITIVE(N);
    SADM_REQUIRE_POSITIVE(C);
    SADM_REQUIRE_PTR(model_out);
    SADM_REQUIRE_PTR(noise);
    SADM_REQUIRE_PTR(x);
    size_t per = (size_t)C * HW, pero = (size_t)(c->learn_sigma ? 2 * C : C) * HW;
#pragma omp parallel for schedule(static)
    for (int n = 0; n < N; n++) {
        const float *oc = model_out + (size_t)n * pero, *ou = model_out + (size_t)(n + N) * pero;
        float *xn = x + (size_t)n * per;
        const float *z = noise + (size_t)n * per;
        for (size_t e = 0; e < per; e++) {
            int ch = (int)(e / HW);
            float eps = oc[e];
            if (c->guided && ch < c->guided_channels) eps = ou[e] + c->cfg_scale * (oc[e] - ou[e]);
            float px0 = c->sqrt_recip_ab * xn[e] - c->sqrt_recipm1_ab * eps;
            if (c->clip_denoised) px0 = px0 < -1.0f ? -1.0f : px0 > 1.0f ? 1.0f : px0;
            if (c->ddim) {
                float e2 = (c->sqrt_recip_ab * xn[e] - px0) / c->sqrt_recipm1_ab;
                float mean = px0 * sqrtf(c->ab_prev) + sqrtf(1.0f - c->ab_prev - c->sigma * c->sigma) * e2;
                xn[e] = mean + c->nonzero * c->sigma * z[e];
            } else {
                float log_var = c->fixed_log_var;
                if (c->learn_sigma) {
                    float frac = (oc[per + e] + 1.0f) / 2.0f;
                    log_var = frac * c->max_log + (1.0f - frac) * c->min_log;
                }
                float mean = c->coef1 * px0 + c->coef2 * xn[e];
                xn[e] = mean + c->nonzero * expf(0.5f * log_var) * z[e];
            }
        }
    }
    return SADM_OK;
}
