/* DiT's training objective on one batch: q_sample, forward, loss, backward. */
#include <stdlib.h>

#include "dit_internal.h"

sadm_status sadm_dit_loss(sadm_dit *m, const sadm_diffusion *d, int N, const float *x0, const int64_t *t,
                          const int64_t *y, const float *noise, float *loss, float *mse, float *vb, float *xt_out) {
    SADM_REQUIRE_PTR(m);
    SADM_REQUIRE_PTR(d);
    SADM_REQUIRE_POSITIVE(N);
    SADM_REQUIRE_PTR(x0);
    SADM_REQUIRE_PTR(t);
    SADM_REQUIRE_PTR(noise);
    const sadm_dit_config *c = &m->cfg;
    size_t HW = (size_t)c->input_size * c->input_size, per = (size_t)c->in_channels * HW;
    /* TODO(training loop): keep these with the activations instead of allocating per batch */
    float *xt = sadm_alloc((size_t)N * per * sizeof(float)), *tf = sadm_alloc((size_t)N * sizeof(float));
    float *out = sadm_alloc((size_t)N * m->C_out * HW * sizeof(float));
    float *dout = sadm_calloc((size_t)N * m->C_out * HW, sizeof(float));
    sadm_status st = SADM_OK;
    if (!xt || !tf || !out || !dout) st = sadm_error(SADM_ERR_NOMEM, "sadm_dit_loss: out of memory for batch %d", N);
    if (!st) st = sadm_q_sample(d, N, per, x0, t, noise, xt);
    for (int n = 0; !st && n < N; n++) tf[n] = (float)t[n];
    if (!st) st = sadm_dit_forward(m, N, xt, tf, y, out);
    if (!st)
        st = sadm_diffusion_loss(d, N, c->in_channels, HW, c->learn_sigma, x0, xt, t, noise, out, loss, mse, vb, dout);
    if (!st) st = sadm_dit_backward(m, dout, NULL);
    if (!st && xt_out)
        for (size_t i = 0; i < (size_t)N * per; i++) xt_out[i] = xt[i];
    sadm_free(xt), sadm_free(tf), sadm_free(out), sadm_free(dout);
    return st;
}
