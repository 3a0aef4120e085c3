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
    size_t per = (size_t)c->in_channels * c->input_size * c->input_size, xbytes = (size_t)N * per * sizeof(float);
    size_t nb = (size_t)N * sizeof(float), ib = (size_t)N * sizeof(int64_t);
    if (be->host_memory) {
        SADM_TRY(dit_loss_dev(m, d, N, x0, t, y, noise, loss, mse, vb));
        if (xt_out) memcpy(xt_out, m->acts.in_x, xbytes);
        return SADM_OK;
    }
    /* another backend: the batch goes there for this call */
    float *dx0 = be->alloc(be, SADM_DTYPE_F32, 2 * (size_t)N * per + 3 * (size_t)N);
    int64_t *dt = be->alloc(be, SADM_DTYPE_I64, 2 * (size_t)N);
    sadm_status st = dx0 && dt ? SADM_OK : sadm_error(SADM_ERR_NOMEM, "sadm_dit_loss: out of memory for batch %d", N);
    float *dnoise = dx0 + (size_t)N * per, *dl = dnoise + (size_t)N * per, *dm = dl + N, *dv = dm + N;
    int64_t *dy = dt + N;
    if (!st) st = be->upload(be, dx0, x0, xbytes);
    if (!st) st = be->upload(be, dnoise, noise, xbytes);
    if (!st) st = be->upload(be, dt, t, ib);
    if (!st) st = be->upload(be, dy, y, ib);
    if (!st) st = dit_loss_dev(m, d, N, dx0, dt, dy, dnoise, dl, dm, dv);
    if (!st && loss) st = be->download(be, loss, dl, nb);
    if (!st && mse) st = be->download(be, mse, dm, nb);
    if (!st && vb) st = be->download(be, vb, dv, nb);
    if (!st && xt_out) st = be->download(be, xt_out, m->acts.in_x, xbytes);
    be->free(be, dx0);
    be->free(be, dt);
    return st;
}
