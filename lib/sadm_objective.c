/* SADM's objectives (see sadm.h section 11 and sadm_objective.h), on the models' backend:
 * every buffer below is memory of that backend, and every step is a table call. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "models/dit_internal.h"
#include "models/encoder_internal.h"
#include "sadm_objective.h"

void sobj_free(sadm_objective *o) {
    if (!o) return;
    if (o->be) o->be->free(o->be, o->block);
    memset(o, 0, sizeof *o);
}

/* One block on the backend for all of them, sized for batch N. */
static sadm_status ensure(sadm_objective *o, sadm_backend *be, int N, size_t per, size_t outper, int E) {
    if (o->block && o->be == be && N <= o->cap && per == o->per && outper == o->outper && E == o->E) return SADM_OK;
    sobj_free(o);
    size_t n = (size_t)N;
    enum { SLOTS = 11 };
    size_t sizes[SLOTS] = {n * per,   n,         n * outper, n * outper, n * per, 2 * n * per,
                           2 * n * E, 2 * n * E, n,          n * per,    n * outper};
    float **slots[SLOTS] = {&o->xt, &o->tf, &o->out, &o->dout, &o->xhat, &o->pair, &o->z, &o->dz, &o->w, &o->dx, &o->ds};
    size_t total = 0;
    for (int i = 0; i < SLOTS; i++) total += (sizes[i] + 15) / 16 * 16;
    if (!(o->block = be->alloc(be, SADM_DTYPE_F32, total)))
        return sadm_error(SADM_ERR_NOMEM, "SADM: out of memory for batch %d", N);
    float *at = o->block;
    for (int i = 0; i < SLOTS; i++) *slots[i] = at, at += (sizes[i] + 15) / 16 * 16;
    o->be = be, o->cap = N, o->per = per, o->outper = outper, o->E = E;
    return SADM_OK;
}

static sadm_status check_models(const sadm_dit *m, const sadm_encoder *e) {
    const sadm_dit_config *mc = sadm_dit_get_config(m);
    const sadm_encoder_config *ec = sadm_encoder_get_config(e);
    SADM_REQUIRE(ec->input_size == mc->input_size && ec->in_channels == mc->in_channels,
                 "SADM: the structure encoder takes %d×%d×%d inputs but the denoiser makes %d×%d×%d samples",
                 ec->in_channels, ec->input_size, ec->input_size, mc->in_channels, mc->input_size, mc->input_size);
    SADM_REQUIRE(m->be == e->be, "SADM: the denoiser is on backend %s but the structure encoder on %s", m->be->name,
                 e->be->name);
    return SADM_OK;
}

sadm_status sobj_denoise(sadm_objective *o, sadm_dit *m, const sadm_encoder *e, const sadm_diffusion *d,
                         const sadm_sadm_config *c, int N, const float *x0, const int64_t *t, const int64_t *y,
                         const float *noise, float *loss, float *mse, float *vb) {
    SADM_REQUIRE(N >= 2, "SADM: a batch of %d sample%s has no pairs to give a structure (need at least 2)", N,
                 N == 1 ? "" : "s");
    SADM_TRY(check_models(m, e));
    sadm_backend *be = m->be;
    const sadm_dit_config *mc = sadm_dit_get_config(m);
    size_t HW = (size_t)mc->input_size * mc->input_size, per = (size_t)mc->in_channels * HW;
    size_t outper = (size_t)sadm_dit_out_channels(m) * HW;
    SADM_TRY(ensure(o, be, N, per, outper, sadm_encoder_get_config(e)->embed_dim));
    o->N = 0;
    SADM_OP(be, q_sample, d, N, per, x0, t, noise, o->xt);
    SADM_OP(be, i64_to_f32, (size_t)N, t, o->tf);
    SADM_TRY(dit_forward_dev(m, N, o->xt, o->tf, y, o->out, 0));
    SADM_TRY(be->zero(be, o->dout, (size_t)N * outper * sizeof(float)));
    SADM_OP(be, diffusion_loss, d, N, mc->in_channels, HW, mc->learn_sigma, x0, o->xt, t, noise, o->out, loss, mse, vb,
            o->dout);
    SADM_OP(be, predict_x0, d, N, per, outper, o->xt, t, o->out, o->xhat);
    SADM_OP(be, struct_weights, d, c, N, t, o->w);
    o->N = N;
    return SADM_OK;
}

sadm_status sobj_encoder(sadm_objective *o, sadm_encoder *e, const sadm_sadm_config *c, const float *x0, float scale,
                         int backward, sadm_struct_stats *stats) {
    SADM_REQUIRE(o->N > 0, "SADM: no denoiser pass to take fake samples from");
    SADM_REQUIRE(e->be == o->be, "SADM: the structure encoder is on backend %s, the denoiser's pass on %s", e->be->name,
                 o->be->name);
    sadm_backend *be = o->be;
    int N = o->N, E = o->E;
    size_t per = o->per;
    SADM_TRY(be->copy(be, o->pair, x0, (size_t)N * per * sizeof(float)));
    SADM_TRY(be->copy(be, o->pair + (size_t)N * per, o->xhat, (size_t)N * per * sizeof(float)));
    SADM_TRY(enc_forward_dev(e, 2 * N, o->pair, o->z));
    float *dzr = backward ? o->dz : NULL, *dzf = backward ? o->dz + (size_t)N * E : NULL;
    if (backward) SADM_TRY(be->zero(be, o->dz, 2 * (size_t)N * E * sizeof(float)));
    sadm_struct_stats s = {0};
    sadm_status st = be->ops->struct_loss(c, N, E, o->z, o->z + (size_t)N * E, o->w, scale, &s, dzr, dzf);
    if (stats) *stats = s;
    if (st || !backward) return st;
    if (!isfinite(s.loss)) return sadm_error(SADM_ERR_NUMERIC, "SADM: the structural distance is %g", s.loss);
    return enc_backward_dev(e, o->dz, NULL, 1);
}

/* The norms of the two gradients at the eps output: |g_d| of mean(loss) (dout's first C
 * channels of each sample) and |g_s| of L_struct (o->ds, zero elsewhere), in double. */
static sadm_status gradient_norms(sadm_objective *o, double *gd, double *gs) {
    sadm_backend *be = o->be;
    double sum = 0, v;
    for (int n = 0; n < o->N; n++) {
        SADM_OP(be, sumsq, o->per, o->dout + (size_t)n * o->outper, &v);
        sum += v;
    }
    SADM_OP(be, sumsq, (size_t)o->N * o->outper, o->ds, &v);
    *gd = sqrt(sum), *gs = sqrt(v);
    return SADM_OK;
}

/* Adaptive lambda's cap, as VQGAN's */
#define ADAPTIVE_LAMBDA_MAX 1e4

sadm_status sobj_denoiser_backward(sadm_objective *o, sadm_dit *m, sadm_encoder *e, const sadm_diffusion *d,
                                   const sadm_sadm_config *c, const float *x0, const int64_t *t, sadm_struct_stats *stats) {
    SADM_REQUIRE(o->N > 0, "SADM: no denoiser pass to go back through");
    SADM_TRY(check_models(m, e));
    sadm_backend *be = o->be;
    int N = o->N, E = o->E;
    size_t per = o->per, nout = (size_t)N * o->outper;
    if (c->lambda > 0 || c->grad_ratio > 0) {
        /* the real embeddings with this encoder (constants for the denoiser), then the fake
         * ones, whose activations the input gradient needs */
        float *zr = o->z, *zf = o->z + (size_t)N * E, *dzf = o->dz + (size_t)N * E;
        SADM_TRY(enc_forward_dev(e, N, x0, zr));
        SADM_TRY(enc_forward_dev(e, N, o->xhat, zf));
        SADM_TRY(be->zero(be, dzf, (size_t)N * E * sizeof(float)));
        sadm_struct_stats s = {0};
        SADM_OP(be, struct_loss, c, N, E, zr, zf, o->w, 1.0f, &s, NULL, dzf);
        if (!isfinite(s.loss)) return sadm_error(SADM_ERR_NUMERIC, "SADM: the structural distance is %g", s.loss);
        SADM_TRY(be->zero(be, o->dx, (size_t)N * per * sizeof(float)));
        SADM_TRY(enc_backward_dev(e, dzf, o->dx, 0));
        /* x̂0 depends on the model only through eps: d eps = -sqrt(1/abar - 1) d x̂0 */
        SADM_TRY(be->zero(be, o->ds, nout * sizeof(float)));
        SADM_OP(be, x0_grad_to_eps, d, N, per, o->outper, t, o->dx, o->ds);
        double gd, gs;
        SADM_TRY(gradient_norms(o, &gd, &gs));
        if (c->grad_ratio > 0) {
            double l = gs > 0 ? c->grad_ratio * gd / gs : 0.0;
            s.lambda_eff = l < ADAPTIVE_LAMBDA_MAX ? l : ADAPTIVE_LAMBDA_MAX;
        } else {
            s.lambda_eff = c->lambda;
        }
        s.grad_share = gd > 0 ? s.lambda_eff * gs / gd : 0.0;
        if (!isfinite(s.lambda_eff) || !isfinite(s.grad_share))
            return sadm_error(SADM_ERR_NUMERIC, "SADM: lambda %g, gradient norms %g (denoising) and %g (structure)",
                              s.lambda_eff, gd, gs);
        SADM_OP(be, scale, nout, o->ds, (float)s.lambda_eff);
        SADM_OP(be, add, nout, o->dout, o->ds, o->dout);
        if (stats) *stats = s;
    }
    return dit_backward_dev(m, o->dout, NULL);
}

/* The edge: every argument in host memory. On a backend whose memory is not the host's
 * the batch goes there for the call and the loss terms come back. */
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
    SADM_TRY(sadm_sadm_config_check_steps(cfg, sadm_diffusion_steps(d)));
    SADM_TRY(check_models(m, e));
    SADM_TRY(dit_check_labels(m, N, y));
    if (!sadm_dit_grad_data(m) || (encoder_grads && !sadm_encoder_grad_data(e)))
        return sadm_error(SADM_ERR_NOMEM, "SADM: out of memory for the gradients");
    sadm_backend *be = m->be;
    const sadm_dit_config *mc = sadm_dit_get_config(m);
    size_t per = (size_t)mc->in_channels * mc->input_size * mc->input_size;
    dit_batch b;
    sadm_objective o = {0};
    sadm_struct_stats s = {0};
    sadm_status st = dit_batch_in(be, N, per, x0, t, y, noise, loss, mse, vb, &b);
    if (!st) st = sobj_denoise(&o, m, e, d, cfg, N, b.x0, b.t, b.y, b.noise, b.loss, b.mse, b.vb);
    if (!st) st = sobj_denoiser_backward(&o, m, e, d, cfg, b.x0, b.t, &s);
    /* the encoder's gradient (and, with lambda 0, the distance itself) from [x0; x̂0] */
    if (!st && (encoder_grads || (cfg->lambda == 0 && cfg->grad_ratio == 0))) {
        double lambda_eff = s.lambda_eff, share = s.grad_share;
        st = sobj_encoder(&o, e, cfg, b.x0, 1.0f, encoder_grads, &s);
        s.lambda_eff = lambda_eff, s.grad_share = share;
    }
    if (!st) st = dit_batch_out(be, N, &b, loss, mse, vb);
    if (!st && stats) *stats = s;
    sobj_free(&o);
    dit_batch_free(be, &b);
    return st;
}
