/* SADM's objectives split into the phases the training step interleaves: the denoiser's
 * forward (x_t, DiT output, diffusion loss gradient, fake samples x̂0), the encoder's
 * gradient of ±L_struct with x̂0 detached, and the denoiser's backward of
 * L_G = mean(loss) + lambda L_struct. Buffers persist between steps. */
#ifndef SADM_OBJECTIVE_H
#define SADM_OBJECTIVE_H

#include "backend.h"
#include "internal.h"

typedef struct sadm_objective {
    sadm_backend *be;   /* where the buffers live (the models') */
    float *block;       /* all of them, one allocation */
    int cap, E;         /* batch and embedding size the buffers hold */
    size_t per, outper; /* floats per sample of x and of the DiT output */
    int N;              /* batch of the last sobj_denoise */
    float *xt, *tf, *out, *dout, *xhat, *pair, *z, *dz, *w, *dx, *ds; /* ds: adaptive lambda's dL_struct/d out */
} sadm_objective;

void sobj_free(sadm_objective *o);
/* x_t, out = DiT(x_t), the loss terms, dout = d mean(loss) / d out, x̂0 and the weights. */
sadm_status sobj_denoise(sadm_objective *o, sadm_dit *m, const sadm_encoder *e, const sadm_diffusion *d,
                         const sadm_sadm_config *c, int N, const float *x0, const int64_t *t, const int64_t *y,
                         const float *noise, float *loss, float *mse, float *vb);
/* Encoder on [x0; x̂0] (x̂0 detached): stats, and with backward the encoder's gradient
 * block += scale dL_struct/dphi. */
sadm_status sobj_encoder(sadm_objective *o, sadm_encoder *e, const sadm_sadm_config *c, const float *x0, float scale,
                         int backward, sadm_struct_stats *stats);
/* dout += lambda dL_struct/d out through x̂0, lambda fixed or adaptive (lambda_eff in
 * stats), skipped when both lambda and grad_ratio are 0 (stats then untouched); then the
 * DiT's backward of dout. */
sadm_status sobj_denoiser_backward(sadm_objective *o, sadm_dit *m, sadm_encoder *e, const sadm_diffusion *d,
                                   const sadm_sadm_config *c, const float *x0, const int64_t *t, sadm_struct_stats *stats);

#endif
