/* DiT's training objective on one batch: q_sample, forward, loss, backward. */
#include <string.h>

#include "dit_internal.h"

sadm_status dit_loss_dev(sadm_dit *m, const sadm_diffusion *d, int N, const float *x0, const int64_t *t,
                         const int64_t *y, const float *noise, float *loss, float *mse, float *vb) {
    const sadm_dit_config *c = &m->cfg;
    sadm_backend *be = m->be;
    size_t HW = (size_t)c->input_size * c->input_size, per = (size_t)c->in_channels * HW;
    SADM_TRY(dit_prepare(m, N, 0));
    dit_acts *a = &m->acts; /* x_t, t as floats, the output and its gradient live in the arena */
    SADM_OP(be, q_sample, d, N, per, x0, t, noise, a->in_x);
    SADM_OP(be, i64_to_f32, (size_t)N, t, a->in_t);
    SADM_TRY(dit_forward_dev(m, N, a->in_x, a->in_t, y, a->out, 0));
    SADM_TRY(be->zero(be, a->d_out, (size_t)N * m->C_out * HW * sizeof(float)));
    SADM_OP(be, diffusion_loss, d, N, c->in_channels, HW, c->learn_sigma, x0, a->in_x, t, noise, a->out, loss, mse, vb,
            a->d_out);
    return dit_backward_dev(m, a->d_out, NULL);
}

sadm_status dit_batch_in(sadm_backend *be, int N, size_t per, const float *x0, const int64_t *t, const int64_t *y,
                         const float *noise, float *loss, float *mse, float *vb, dit_batch *b) {
    *b = (dit_batch){x0, noise, t, y, loss, mse, vb, NULL, NULL};
    if (be->host_memory) return SADM_OK;
    size_t n = (size_t)N, xbytes = n * per * sizeof(float);
    b->fblock = be->alloc(be, SADM_DTYPE_F32, 2 * n * per + 3 * n);
    b->iblock = be->alloc(be, SADM_DTYPE_I64, 2 * n);
    if (!b->fblock || !b->iblock) return sadm_error(SADM_ERR_NOMEM, "out of memory for a batch of %d on backend %s", N, be->name);
    float *dx0 = b->fblock, *dnoise = dx0 + n * per, *terms = dnoise + n * per;
    b->x0 = dx0, b->noise = dnoise, b->t = b->iblock, b->y = b->iblock + n;
    b->loss = terms, b->mse = terms + n, b->vb = terms + 2 * n;
    SADM_TRY(be->upload(be, dx0, x0, xbytes));
    SADM_TRY(be->upload(be, dnoise, noise, xbytes));
    SADM_TRY(be->upload(be, b->iblock, t, n * sizeof(int64_t)));
    return be->upload(be, b->iblock + n, y, n * sizeof(int64_t));
}

sadm_status dit_batch_out(sadm_backend *be, int N, const dit_batch *b, float *loss, float *mse, float *vb) {
    if (be->host_memory) return SADM_OK; /* written in place */
    size_t nb = (size_t)N * sizeof(float);
    if (loss) SADM_TRY(be->download(be, loss, b->loss, nb));
    if (mse) SADM_TRY(be->download(be, mse, b->mse, nb));
    return vb ? be->download(be, vb, b->vb, nb) : SADM_OK;
}

void dit_batch_free(sadm_backend *be, dit_batch *b) {
    if (b->fblock) be->free(be, b->fblock);
    if (b->iblock) be->free(be, b->iblock);
    b->fblock = NULL, b->iblock = NULL;
}

/* The edge: every argument in host memory. */
sadm_status sadm_dit_loss(sadm_dit *m, const sadm_diffusion *d, int N, const float *x0, const int64_t *t,
                          const int64_t *y, const float *noise, float *loss, float *mse, float *vb, float *xt_out) {
    SADM_REQUIRE_PTR(m);
    SADM_REQUIRE_PTR(d);
    SADM_REQUIRE_POSITIVE(N);
    SADM_REQUIRE_PTR(x0);
    SADM_REQUIRE_PTR(t);
    SADM_REQUIRE_PTR(y);
    SADM_REQUIRE_PTR(noise);
    SADM_TRY(dit_check_labels(m, N, y));
    const sadm_dit_config *c = &m->cfg;
    sadm_backend *be = m->be;
    size_t per = (size_t)c->in_channels * c->input_size * c->input_size;
    dit_batch b;
    sadm_status st = dit_batch_in(be, N, per, x0, t, y, noise, loss, mse, vb, &b);
    if (!st) st = dit_loss_dev(m, d, N, b.x0, b.t, b.y, b.noise, b.loss, b.mse, b.vb);
    if (!st) st = dit_batch_out(be, N, &b, loss, mse, vb);
    if (!st && xt_out) st = be->download(be, xt_out, m->acts.in_x, (size_t)N * per * sizeof(float));
    dit_batch_free(be, &b);
    return st;
}
