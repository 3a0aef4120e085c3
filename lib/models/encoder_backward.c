/* Structure encoder backward: the forward's operators in reverse. Parameter gradients
 * are optional (the denoiser's SADM step needs only the gradient with respect to the
 * input, and skipping the weight products halves the work); so is the input gradient. */
#include <math.h>
#include <string.h>

#include "encoder_internal.h"

#define zero(p, n) SADM_TRY(be->zero(be, (p), (n) * sizeof(float)))

/* The edge: host dz and dx (dx is added to, as every backward does). */
sadm_status sadm_encoder_backward(sadm_encoder *e, const float *dz, float *dx, int param_grads) {
    SADM_REQUIRE_PTR(e);
    SADM_REQUIRE_PTR(dz);
    SADM_REQUIRE(e->acts.N_last > 0, "sadm_encoder_backward: no successful forward pass to go back through");
    if (e->be->host_memory) return enc_backward_dev(e, dz, dx, param_grads);
    sadm_backend *be = e->be;
    size_t N = (size_t)e->acts.N_last, xbytes = N * e->cfg.in_channels * e->cfg.input_size * e->cfg.input_size * sizeof(float);
    SADM_TRY(be->upload(be, e->acts.d_z, dz, N * e->E * sizeof(float)));
    if (dx) SADM_TRY(be->upload(be, e->acts.d_x, dx, xbytes));
    SADM_TRY(enc_backward_dev(e, e->acts.d_z, dx ? e->acts.d_x : NULL, param_grads));
    return dx ? be->download(be, dx, e->acts.d_x, xbytes) : SADM_OK;
}

sadm_status enc_backward_dev(sadm_encoder *e, const float *dz, float *dx, int param_grads) {
    SADM_REQUIRE(e->acts.N_last > 0, "sadm_encoder_backward: no successful forward pass to go back through");
    SADM_REQUIRE(param_grads || dx, "sadm_encoder_backward: neither parameter nor input gradients asked for");
    if (param_grads && !sadm_encoder_grad_data(e)) return sadm_error(SADM_ERR_NOMEM, "encoder: out of memory for the gradients");
    sadm_backend *be = e->be;
    enc_acts *a = &e->acts;
    const sadm_encoder_config *c = &e->cfg;
    int N = a->N_last, D = e->D, T = e->T, NT = N * T, E = e->E, side = c->input_size;
    size_t NTD = (size_t)NT * D;
#define G(idx) (param_grads ? e->grad + e->tab.items[idx].offset : NULL)

    /* z = h / max(|h|, eps) */
    SADM_OP(be, l2_normalize_backward, (size_t)N, E, ENC_NORM_EPS, a->head, a->z, dz, a->d_head);
    zero(a->d_pooled, (size_t)N * D);
    SADM_OP_P(be, BF16(e), linear_backward, N, D, E, a->pooled, enc_p(e, e->head_w), a->d_head, a->d_pooled, G(e->head_w),
                             G(e->head_b));
    zero(a->d_ln, NTD);
    SADM_OP(be, mean_tokens_backward, N, T, D, a->d_pooled, a->d_ln);
    zero(a->d_h, NTD);
    SADM_OP(be, layernorm_backward, NT, D, a->x_last, enc_p(e, e->nf_w), a->meanf, a->rstdf, a->d_ln, a->d_h, G(e->nf_w),
                                G(e->nf_b));

    for (int i = c->depth - 1; i >= 0; i--) {
        enc_block_params *bp = &e->blk[i];
        enc_block_acts *b = &a->blocks[i];
        /* x_out = x_mid + fc2(gelu(fc1(norm2(x_mid)))): d_h is d x_mid's direct part */
        zero(a->d_wide, (size_t)NT * e->mlp_dim);
        SADM_OP_P(be, BF16(e), linear_backward, NT, e->mlp_dim, D, b->gelu, enc_p(e, bp->fc2_w), a->d_h, a->d_wide, G(bp->fc2_w),
                                 G(bp->fc2_b));
        zero(a->d_wide2, (size_t)NT * e->mlp_dim);
        SADM_OP(be, gelu_backward, (size_t)NT * e->mlp_dim, b->fc1, a->d_wide, a->d_wide2);
        zero(a->d_ln, NTD);
        SADM_OP_P(be, BF16(e), linear_backward, NT, D, e->mlp_dim, b->ln2, enc_p(e, bp->fc1_w), a->d_wide2, a->d_ln, G(bp->fc1_w),
                                 G(bp->fc1_b));
        SADM_OP(be, layernorm_backward, NT, D, b->x_mid, enc_p(e, bp->n2_w), b->mean2, b->rstd2, a->d_ln, a->d_h,
                                    G(bp->n2_w), G(bp->n2_b));
        /* x_mid = x_in + proj(attn(qkv(norm1(x_in)))) */
        zero(a->d_attn, NTD);
        SADM_OP_P(be, BF16(e), linear_backward, NT, D, D, b->attn, enc_p(e, bp->proj_w), a->d_h, a->d_attn, G(bp->proj_w),
                                 G(bp->proj_b));
        zero(a->d_wide, (size_t)NT * 3 * D);
        SADM_OP_P(be, BF16(e), attention_backward, N, T, e->heads, e->head_dim, b->qkv, b->attn, b->lse, a->d_attn, a->d_wide);
        zero(a->d_ln, NTD);
        SADM_OP_P(be, BF16(e), linear_backward, NT, D, 3 * D, b->ln1, enc_p(e, bp->qkv_w), a->d_wide, a->d_ln, G(bp->qkv_w),
                                 G(bp->qkv_b));
        SADM_OP(be, layernorm_backward, NT, D, b->x_in, enc_p(e, bp->n1_w), b->mean1, b->rstd1, a->d_ln, a->d_h,
                                    G(bp->n1_w), G(bp->n1_b));
    }

    /* patch embedding (pos_embed is fixed) */
    float *d_patches = NULL;
    if (dx) {
        d_patches = a->d_patches;
        zero(d_patches, (size_t)NT * e->F_in);
    }
    if (dx || param_grads)
        SADM_OP_P(be, BF16(e), linear_backward, NT, e->F_in, D, a->patches, enc_p(e, e->xe_w), a->d_h, d_patches, G(e->xe_w),
                                 G(e->xe_b));
    if (dx) SADM_OP(be, patchify_backward, N, c->in_channels, side, side, c->patch_size, d_patches, dx);
#undef G
    return SADM_OK;
}
