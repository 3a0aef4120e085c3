/* DiT backward: the forward's operator list in reverse, each operator's hand-written
 * backward. Activation gradients live in the scratch laid out with the activations;
 * parameter gradients accumulate into the gradient block (same layout as the weights). */
#include <string.h>

#include "dit_internal.h"


float *sadm_dit_grad_data(sadm_dit *m) { return m ? sadm_ptab_grad(&m->tab, &m->grad, m->be) : NULL; }

sadm_status sadm_dit_zero_grad(sadm_dit *m) {
    SADM_REQUIRE_PTR(m);
    return sadm_ptab_zero_grad(&m->tab, &m->grad, m->be, "DiT");
}

static inline float *G(sadm_dit *m, size_t idx) { return m->grad + m->tab.items[idx].offset; }

#define zero(p, n) SADM_TRY(be->zero(be, (p), (n) * sizeof(float)))

/* The edge: dout and dx in host memory. */
sadm_status sadm_dit_backward(sadm_dit *m, const float *dout, float *dx) {
    SADM_REQUIRE_PTR(m);
    SADM_REQUIRE_PTR(dout);
    SADM_REQUIRE(m->acts.N_last > 0, "sadm_dit_backward: no successful forward pass to go back through");
    if (m->be->host_memory) return dit_backward_dev(m, dout, dx);
    sadm_backend *be = m->be;
    dit_acts *a = &m->acts;
    size_t HW = (size_t)m->cfg.input_size * m->cfg.input_size, N = (size_t)a->N_last;
    SADM_TRY(be->upload(be, a->d_out, dout, N * m->C_out * HW * sizeof(float)));
    /* x's slot is free after the forward (the patches are kept): dx goes there, holding
     * the caller's dx first because the backward adds into it */
    size_t dx_bytes = N * m->cfg.in_channels * HW * sizeof(float);
    if (dx) SADM_TRY(be->upload(be, a->in_x, dx, dx_bytes));
    SADM_TRY(dit_backward_dev(m, a->d_out, dx ? a->in_x : NULL));
    return dx ? be->download(be, dx, a->in_x, dx_bytes) : SADM_OK;
}

sadm_status dit_backward_dev(sadm_dit *m, const float *dout, float *dx) {
    SADM_REQUIRE(m->acts.N_last > 0, "sadm_dit_backward: no successful forward pass to go back through");
    if (!sadm_dit_grad_data(m)) return sadm_error(SADM_ERR_NOMEM, "DiT: out of memory for the gradients");
    sadm_backend *be = m->be;
    const sadm_dit_config *c = &m->cfg;
    dit_acts *a = &m->acts;
    dit_grad_scratch *g = &a->g;
    int N = a->N_last, D = m->D, T = m->T, NT = N * T, side = c->input_size, p = c->patch_size;
    size_t ND = (size_t)N * D, NTD = (size_t)NT * D;

    /* final layer */
    zero(g->d_lin, (size_t)NT * m->F_out);
    SADM_OP(be, unpatchify_backward, N, m->C_out, side, side, p, dout, g->d_lin);
    zero(g->d_mod, NTD);
    SADM_OP_P(be, BF16(m), linear_backward, NT, D, m->F_out, a->modf, dit_p(m, m->fl_w), g->d_lin, g->d_mod, G(m, m->fl_w), G(m, m->fl_b));
    zero(g->d_ln, NTD);
    zero(g->d_ada, 2 * ND);
    SADM_OP(be, modulate_backward, N, T, D, a->lnf, a->adaf + ND, g->d_mod, g->d_ln, g->d_ada, g->d_ada + ND);
    zero(g->d_h, NTD);
    SADM_OP(be, layernorm_backward, NT, D, a->x_last, NULL, a->meanf, a->rstdf, g->d_ln, g->d_h, NULL, NULL);
    SADM_OP(be, merge_chunks, N, D, 2, g->d_ada, g->d_ada_raw);
    zero(g->d_silu_c, ND);
    SADM_OP_P(be, BF16(m), linear_backward, N, D, 2 * D, a->silu_c, dit_p(m, m->fa_w), g->d_ada_raw, g->d_silu_c, G(m, m->fa_w),
                             G(m, m->fa_b));

    for (int i = c->depth - 1; i >= 0; i--) {
        dit_block_params *bp = &m->blk[i];
        dit_block_acts *b = &a->blocks[i];
        zero(g->d_ada, 6 * ND);
        /* x_out = x_mid + gate_mlp * fc2: d_h already is d x_mid's direct part */
        zero(g->d_branch, NTD);
        SADM_OP(be, gated_add_backward, N, T, D, b->ada + 5 * ND, b->fc2, g->d_h, NULL, g->d_ada + 5 * ND, g->d_branch);
        zero(g->d_wide, (size_t)NT * m->mlp_dim);
        SADM_OP_P(be, BF16(m), linear_backward, NT, m->mlp_dim, D, b->gelu, dit_p(m, bp->fc2_w), g->d_branch, g->d_wide, G(m, bp->fc2_w),
                                 G(m, bp->fc2_b));
        zero(g->d_wide2, (size_t)NT * m->mlp_dim);
        SADM_OP(be, gelu_backward, (size_t)NT * m->mlp_dim, b->fc1, g->d_wide, g->d_wide2);
        zero(g->d_mod, NTD);
        SADM_OP_P(be, BF16(m), linear_backward, NT, D, m->mlp_dim, b->mod2, dit_p(m, bp->fc1_w), g->d_wide2, g->d_mod, G(m, bp->fc1_w),
                                 G(m, bp->fc1_b));
        zero(g->d_ln, NTD);
        SADM_OP(be, modulate_backward, N, T, D, b->ln2, b->ada + 4 * ND, g->d_mod, g->d_ln, g->d_ada + 3 * ND, g->d_ada + 4 * ND);
        SADM_OP(be, layernorm_backward, NT, D, b->x_mid, NULL, b->mean2, b->rstd2, g->d_ln, g->d_h, NULL, NULL);
        /* x_mid = x_in + gate_msa * proj */
        zero(g->d_branch, NTD);
        SADM_OP(be, gated_add_backward, N, T, D, b->ada + 2 * ND, b->proj, g->d_h, NULL, g->d_ada + 2 * ND, g->d_branch);
        zero(g->d_attn, NTD);
        SADM_OP_P(be, BF16(m), linear_backward, NT, D, D, b->attn, dit_p(m, bp->proj_w), g->d_branch, g->d_attn, G(m, bp->proj_w),
                                 G(m, bp->proj_b));
        zero(g->d_wide, (size_t)NT * 3 * D);
        SADM_OP_P(be, BF16(m), attention_backward, N, T, m->heads, m->head_dim, b->qkv, b->attn, b->lse, g->d_attn, g->d_wide);
        zero(g->d_mod, NTD);
        SADM_OP_P(be, BF16(m), linear_backward, NT, D, 3 * D, b->mod1, dit_p(m, bp->qkv_w), g->d_wide, g->d_mod, G(m, bp->qkv_w),
                                 G(m, bp->qkv_b));
        zero(g->d_ln, NTD);
        SADM_OP(be, modulate_backward, N, T, D, b->ln1, b->ada + ND, g->d_mod, g->d_ln, g->d_ada, g->d_ada + ND);
        SADM_OP(be, layernorm_backward, NT, D, b->x_in, NULL, b->mean1, b->rstd1, g->d_ln, g->d_h, NULL, NULL);
        /* adaLN modulation of this block */
        SADM_OP(be, merge_chunks, N, D, 6, g->d_ada, g->d_ada_raw);
        SADM_OP_P(be, BF16(m), linear_backward, N, D, 6 * D, a->silu_c, dit_p(m, bp->ada_w), g->d_ada_raw, g->d_silu_c,
                                 G(m, bp->ada_w), G(m, bp->ada_b));
    }

    /* patch embedding (pos_embed is fixed) */
    float *d_patches = NULL;
    if (dx) {
        d_patches = g->d_patches;
        zero(d_patches, (size_t)NT * m->F_in);
    }
    SADM_OP_P(be, BF16(m), linear_backward, NT, m->F_in, D, a->patches, dit_p(m, m->xe_w), g->d_h, d_patches, G(m, m->xe_w),
                             G(m, m->xe_b));
    if (dx) SADM_OP(be, patchify_backward, N, c->in_channels, side, side, p, d_patches, dx);

    /* conditioning: c = t_emb + y_emb, silu_c = silu(c) */
    zero(g->d_c, ND);
    SADM_OP(be, silu_backward, ND, a->c, g->d_silu_c, g->d_c);
    SADM_OP(be, embedding_backward, N, D, m->label_rows, a->y, g->d_c, G(m, m->y_table));
    zero(g->d_t_act, ND);
    SADM_OP_P(be, BF16(m), linear_backward, N, D, D, a->t_act, dit_p(m, m->t2_w), g->d_c, g->d_t_act, G(m, m->t2_w), G(m, m->t2_b));
    zero(g->d_t_h, ND);
    SADM_OP(be, silu_backward, ND, a->t_h, g->d_t_act, g->d_t_h);
    SADM_OP_P(be, BF16(m), linear_backward, N, FREQ_DIM, D, a->t_freq, dit_p(m, m->t0_w), g->d_t_h, NULL, G(m, m->t0_w), G(m, m->t0_b));
    return SADM_OK;
}
