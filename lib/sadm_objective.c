/* SADM's objectives (see sadm.h section 11 and sadm_objective.h). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "sadm_objective.h"

void sobj_free(sadm_objective *o) {
    if (!o) return;
    sadm_free(o->xt), sadm_free(o->tf), sadm_free(o->out), sadm_free(o->dout), sadm_free(o->xhat);
    sadm_free(o->pair), sadm_free(o->z), sadm_free(o->dz), sadm_free(o->w), sadm_free(o->dx);
    memset(o, 0, sizeof *o);
}

static sadm_status ensure(sadm_objective *o, int N, size_t per, size_t outper, int E) {
    if (o->xt && N <= o->cap && per == o->per && outper == o->outper && E == o->E) return SADM_OK;
    sobj_free(o);
    size_t n = (size_t)N;
    o->xt = sadm_alloc(n * per * sizeof(float));
    o->tf = sadm_alloc(n * sizeof(float));
    o->out = sadm_alloc(n * outper * sizeof(float));
    o->dout = sadm_alloc(n * outper * sizeof(float));
    o->xhat = sadm_alloc(n * per * sizeof(float));
    o->pair = sadm_alloc(2 * n * per * sizeof(float));
    o->z = sadm_alloc(2 * n * (size_t)E * sizeof(float));
    o->dz = sadm_alloc(2 * n * (size_t)E * sizeof(float));
    o->w = sadm_alloc(n * sizeof(float));
    o->dx = sadm_alloc(n * per * sizeof(float));
    if (!o->xt || !o->tf || !o->out || !o->dout || !o->xhat || !o->pair || !o->z || !o->dz || !o->w || !o->dx) {
        sobj_free(o);
        return sadm_error(SADM_ERR_NOMEM, "SADM: out of memory for batch %d", N);
    }
    o->cap = N, o->per = per, o->outper = outper, o->E = E;
    return SADM_OK;
}

static sadm_status check_shapes(const sadm_dit *m, const sadm_encoder *e) {
    const sadm_dit_config *mc = sadm_dit_get_config(m);
    const sadm_encoder_config *ec = sadm_encoder_get_config(e);
    SADM_REQUIRE(ec->input_size == mc->input_size && ec->in_channels == mc->in_channels,
                 "SADM: the structure encoder takes %d×%d×%d inputs but the denoiser makes %d×%d×%d samples",
                 ec->in_channels, ec->input_size, ec->input_size, mc->in_channels, mc->input_size, mc->input_size);
    return SADM_OK;
}

sadm_status sobj_denoise(sadm_objective *o, sadm_dit *m, const sadm_encoder *e, const sadm_diffusion *d,
                         const sadm_sadm_config *c, int N, const float *x0, const int64_t *t, const int64_t *y,
                         const float *noise, float *loss, float *mse, float *vb) {
    SADM_REQUIRE(N >= 2, "SADM: a batch of %d sample%s has no pairs to give a structure (need at least 2)", N,
                 N == 1 ? "" : "s");
    sadm_status st = check_shapes(m, e);
    if (st) return st;
    const sadm_dit_config *mc = sadm_dit_get_config(m);
    size_t HW = (size_t)mc->input_size * mc->input_size, per = (size_t)mc->in_channels * HW;
    size_t outper = (size_t)sadm_dit_out_channels(m) * HW;
    if ((st = ensure(o, N, per, outper, sadm_encoder_get_config(e)->embed_dim))) return st;
    o->N = 0;
    if ((st = sadm_q_sample(d, N, per, x0, t, noise, o->xt))) return st;
    for (int n = 0; n < N; n++) o->tf[n] = (float)t[n];
    if ((st = sadm_dit_forward(m, N, o->xt, o->tf, y, o->out))) return st;
    memset(o->dout, 0, (size_t)N * outper * sizeof(float));
    if ((st = sadm_diffusion_loss(d, N, mc->in_channels, HW, mc->learn_sigma, x0, o->xt, t, noise, o->out, loss, mse, vb,
                                  o->dout)))
        return st;
    /* x̂0 = sqrt(1/abar) x_t - sqrt(1/abar - 1) eps, the coefficients cast to float as the
     * ADM code's _extract_into_tensor does */
    const double *sr = sadm_diffusion_array(d, "sqrt_recip_alphas_cumprod");
    const double *srm1 = sadm_diffusion_array(d, "sqrt_recipm1_alphas_cumprod");
    const double *abar = sadm_diffusion_array(d, "alphas_cumprod");
    for (int n = 0; n < N; n++) {
        float a = (float)sr[t[n]], b = (float)srm1[t[n]];
        const float *xt = o->xt + n * per, *eps = o->out + n * outper;
        float *xh = o->xhat + n * per;
        for (size_t i = 0; i < per; i++) xh[i] = a * xt[i] - b * eps[i];
        o->w[n] = c->weighting == SADM_WEIGHT_ALPHA ? (float)abar[t[n]] : 1.0f;
    }
    o->N = N;
    return SADM_OK;
}

sadm_status sobj_encoder(sadm_objective *o, sadm_encoder *e, const sadm_sadm_config *c, const float *x0, float scale,
                         int backward, sadm_struct_stats *stats) {
    SADM_REQUIRE(o->N > 0, "SADM: no denoiser pass to take fake samples from");
    int N = o->N, E = o->E;
    size_t per = o->per;
    memcpy(o->pair, x0, (size_t)N * per * sizeof(float));
    memcpy(o->pair + (size_t)N * per, o->xhat, (size_t)N * per * sizeof(float));
    sadm_status st = sadm_encoder_forward(e, 2 * N, o->pair, o->z);
    if (st) return st;
    float *dzr = backward ? o->dz : NULL, *dzf = backward ? o->dz + (size_t)N * E : NULL;
    if (backward) memset(o->dz, 0, 2 * (size_t)N * E * sizeof(float));
    sadm_struct_stats s;
    st = sadm_struct_loss(c, N, E, o->z, o->z + (size_t)N * E, o->w, scale, &s, dzr, dzf);
    if (stats) *stats = s;
    if (st || !backward) return st;
    if (!isfinite(s.loss)) return sadm_error(SADM_ERR_NUMERIC, "SADM: the structural distance is %g", s.loss);
    return sadm_encoder_backward(e, o->dz, NULL, 1);
}

sadm_status sobj_denoiser_backward(sadm_objective *o, sadm_dit *m, sadm_encoder *e, const sadm_diffusion *d,
                                   const sadm_sadm_config *c, const float *x0, const int64_t *t, sadm_struct_stats *stats) {
    SADM_REQUIRE(o->N > 0, "SADM: no denoiser pass to go back through");
    int N = o->N, E = o->E;
    size_t per = o->per;
    sadm_status st;
    if (c->lambda > 0) {
        /* the real embeddings with this encoder (constants for the denoiser), then the fake
         * ones, whose activations the input gradient needs */
        float *zr = o->z, *zf = o->z + (size_t)N * E, *dzf = o->dz + (size_t)N * E;
        if ((st = sadm_encoder_forward(e, N, x0, zr)) || (st = sadm_encoder_forward(e, N, o->xhat, zf))) return st;
        memset(dzf, 0, (size_t)N * E * sizeof(float));
        sadm_struct_stats s;
        if ((st = sadm_struct_loss(c, N, E, zr, zf, o->w, c->lambda, &s, NULL, dzf))) return st;
        if (stats) *stats = s;
        if (!isfinite(s.loss)) return sadm_error(SADM_ERR_NUMERIC, "SADM: the structural distance is %g", s.loss);
        memset(o->dx, 0, (size_t)N * per * sizeof(float));
        if ((st = sadm_encoder_backward(e, dzf, o->dx, 0))) return st;
        /* x̂0 depends on the model only through eps: d eps = -sqrt(1/abar - 1) d x̂0 */
        const double *srm1 = sadm_diffusion_array(d, "sqrt_recipm1_alphas_cumprod");
        for (int n = 0; n < N; n++) {
            float b = (float)srm1[t[n]];
            float *de = o->dout + n * o->outper;
            const float *dxh = o->dx + n * per;
            for (size_t i = 0; i < per; i++) de[i] -= b * dxh[i];
        }
    }
    return sadm_dit_backward(m, o->dout, NULL);
}

sadm_status sadm_sadm_loss(sadm_dit *m, sadm_encoder *e, const sadm_diffusion *d, const sadm_sadm_config *cfg, int N,
                           const float *x0, const int64_t *t, const int64_t *y, const float *noise, float *loss,
                           float *mse, float *vb, sadm_struct_stats *stats, int encoder_grads) {
    SADM_REQUIRE_PTR(m);
    SADM_REQUIRE_PTR(e);
    SADM_REQUIRE_PTR(d);
    SADM_REQUIRE_PTR(cfg);
    SADM_REQUIRE_PTR(x0);
    SADM_REQUIRE_PTR(t);
    SADM_REQUIRE_PTR(y);
    SADM_REQUIRE_PTR(noise);
    sadm_status st = sadm_sadm_config_check(cfg);
    if (st) return st;
    if (!sadm_dit_grad_data(m) || (encoder_grads && !sadm_encoder_grad_data(e)))
        return sadm_error(SADM_ERR_NOMEM, "SADM: out of memory for the gradients");
    sadm_objective o = {0};
    sadm_struct_stats s = {0};
    st = sobj_denoise(&o, m, e, d, cfg, N, x0, t, y, noise, loss, mse, vb);
    if (!st) st = sobj_denoiser_backward(&o, m, e, d, cfg, x0, t, &s);
    /* the encoder's gradient (and, with lambda 0, the distance itself) from [x0; x̂0] */
    if (!st && (encoder_grads || cfg->lambda == 0)) st = sobj_encoder(&o, e, cfg, x0, 1.0f, encoder_grads, &s);
    if (!st && stats) *stats = s;
    sobj_free(&o);
    return st;
}
