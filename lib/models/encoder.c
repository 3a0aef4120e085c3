/* The structure encoder of SADM's discriminator: a pre-LN ViT (timm's layout) ending in
 * token mean, a Linear head and L2 normalisation. Config, parameter table,
 * initialisation, files and the forward pass; the backward is in encoder_backward.c. */
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "encoder_internal.h"

sadm_status sadm_encoder_config_check(const sadm_encoder_config *c) {
    SADM_REQUIRE_PTR(c);
    sadm_status st = sadm_transformer_sizes_check("encoder config", c->input_size, c->patch_size, c->in_channels,
                                                  c->hidden_size, c->depth, c->num_heads, c->mlp_ratio);
    if (st) return st;
    SADM_REQUIRE(c->embed_dim >= 1 && c->embed_dim <= 65536, "encoder config: embed_dim must lie in [1, 65536], got %d",
                 c->embed_dim);
    return SADM_OK;
}

/* Parameters of a valid config (build_table's sizes), in double: the bounds above keep it
 * exact. */
uint64_t sadm_encoder_config_param_count(const sadm_encoder_config *c) {
    double D = c->hidden_size, g = c->input_size / c->patch_size, mlp_dim = (int)(c->hidden_size * c->mlp_ratio);
    double block = 4 * D + 3 * D * D + 3 * D + D * D + D + mlp_dim * D + mlp_dim + D * mlp_dim + D;
    return (uint64_t)(D * c->in_channels * c->patch_size * c->patch_size + D + g * g * D + c->depth * block + 2 * D +
                      c->embed_dim * D + c->embed_dim);
}

static sadm_status size_check(const sadm_encoder_config *c, const sadm_st_file *f, const char *path) {
    char config[160];
    snprintf(config, sizeof config, "depth %d, hidden_size %d, input_size %d, patch_size %d, embed_dim %d", c->depth,
             c->hidden_size, c->input_size, c->patch_size, c->embed_dim);
    return sadm_model_size_check("a structure encoder", sadm_encoder_config_param_count(c), config, f, path);
}

/* ------------------------------------------------------------------ metadata */
#define FIELD(name, kind) {#name, kind, offsetof(sadm_encoder_config, name)}
static const sadm_meta_field encoder_fields[] = {
    FIELD(input_size, SADM_META_INT), FIELD(patch_size, SADM_META_INT), FIELD(in_channels, SADM_META_INT),
    FIELD(hidden_size, SADM_META_INT), FIELD(depth, SADM_META_INT),     FIELD(num_heads, SADM_META_INT),
    FIELD(mlp_ratio, SADM_META_FLOAT), FIELD(embed_dim, SADM_META_INT),
};
#undef FIELD
#define N_ENCODER_FIELDS (sizeof encoder_fields / sizeof encoder_fields[0])

sadm_status sadm_encoder_write_metadata(const sadm_encoder_config *c, const char *prefix, sadm_st_writer *w) {
    return sadm_meta_write_fields(w, prefix, encoder_fields, N_ENCODER_FIELDS, c);
}

sadm_status sadm_encoder_read_metadata(const sadm_st_file *f, const char *path, const char *prefix,
                                       sadm_encoder_config *c) {
    char k[64];
    snprintf(k, sizeof k, "%sembed_dim", prefix);
    if (!sadm_st_metadata(f, k))
        return sadm_error(SADM_ERR_FORMAT, "%s: not a structure encoder: __metadata__ has no '%s'", path, k);
    sadm_status st = sadm_meta_read_fields(f, path, prefix, encoder_fields, N_ENCODER_FIELDS, c);
    if (st) return st;
    if ((st = sadm_encoder_config_check(c))) {
        char why[512];
        snprintf(why, sizeof why, "%s", sadm_last_error());
        return sadm_error(SADM_ERR_FORMAT, "%s: metadata describes an invalid encoder: %s", path, why);
    }
    return SADM_OK;
}

/* ------------------------------------------------------------------ table and init */
static size_t add(sadm_encoder *e, int *fail, const char *name, int trainable, int ndim, int64_t a, int64_t b,
                  int64_t c, int64_t d) {
    int64_t shape[4] = {a, b, c, d};
    size_t i = sadm_ptab_add(&e->tab, name, trainable, ndim, shape);
    if (i == (size_t)-1) *fail = 1;
    return i;
}

static sadm_status build_table(sadm_encoder *e) {
    const sadm_encoder_config *c = &e->cfg;
    int fail = 0, D = e->D, p = c->patch_size;
    char name[96];
    e->xe_w = add(e, &fail, "x_embedder.proj.weight", 1, 4, D, c->in_channels, p, p);
    e->xe_b = add(e, &fail, "x_embedder.proj.bias", 1, 1, D, 0, 0, 0);
    e->pos = add(e, &fail, "pos_embed", 0, 3, 1, e->T, D, 0);
    for (int i = 0; i < c->depth; i++) {
        enc_block_params *b = &e->blk[i];
#define BLK(field, suffix, nd, a0, a1)                                                             \
    snprintf(name, sizeof name, "blocks.%d." suffix, i);                                           \
    b->field = add(e, &fail, name, 1, nd, a0, a1, 0, 0)
        BLK(n1_w, "norm1.weight", 1, D, 0);
        BLK(n1_b, "norm1.bias", 1, D, 0);
        BLK(qkv_w, "attn.qkv.weight", 2, 3 * D, D);
        BLK(qkv_b, "attn.qkv.bias", 1, 3 * D, 0);
        BLK(proj_w, "attn.proj.weight", 2, D, D);
        BLK(proj_b, "attn.proj.bias", 1, D, 0);
        BLK(n2_w, "norm2.weight", 1, D, 0);
        BLK(n2_b, "norm2.bias", 1, D, 0);
        BLK(fc1_w, "mlp.fc1.weight", 2, e->mlp_dim, D);
        BLK(fc1_b, "mlp.fc1.bias", 1, e->mlp_dim, 0);
        BLK(fc2_w, "mlp.fc2.weight", 2, D, e->mlp_dim);
        BLK(fc2_b, "mlp.fc2.bias", 1, D, 0);
#undef BLK
    }
    e->nf_w = add(e, &fail, "norm.weight", 1, 1, D, 0, 0, 0);
    e->nf_b = add(e, &fail, "norm.bias", 1, 1, D, 0, 0, 0);
    e->head_w = add(e, &fail, "head.weight", 1, 2, e->E, D, 0, 0);
    e->head_b = add(e, &fail, "head.bias", 1, 1, e->E, 0, 0, 0);
    return fail ? sadm_error(SADM_ERR_NOMEM, "encoder: out of memory for the parameter table") : SADM_OK;
}

/* xavier_uniform_ on the 2-D view (out, in); each tensor its own RNG stream. */
static void xavier(sadm_encoder *e, size_t idx, uint64_t seed) {
    const sadm_param *p = &e->tab.items[idx];
    double fan_out = (double)p->shape[0], fan_in = (double)p->numel / fan_out;
    float a = (float)sqrt(6.0 / (fan_in + fan_out)), *w = enc_p(e, idx);
    sadm_rng_uniform(seed, idx, 0, p->numel, w);
    for (size_t i = 0; i < p->numel; i++) w[i] = (2.0f * w[i] - 1.0f) * a;
}

static void fill(sadm_encoder *e, size_t idx, float v) {
    float *w = enc_p(e, idx);
    for (size_t i = 0; i < e->tab.items[idx].numel; i++) w[i] = v;
}

/* ViT initialisation (as MAE/DiT do it): xavier linears and patch embedding, zero biases,
 * LayerNorms 1/0, a xavier head — never a zero head, which makes every embedding zero. */
static void initialise(sadm_encoder *e, uint64_t seed) {
    memset(e->data, 0, e->tab.total * sizeof(float));
    sadm_pos_embed_2d(e->D, e->grid, enc_p(e, e->pos));
    xavier(e, e->xe_w, seed);
    for (int i = 0; i < e->cfg.depth; i++) {
        enc_block_params *b = &e->blk[i];
        xavier(e, b->qkv_w, seed);
        xavier(e, b->proj_w, seed);
        xavier(e, b->fc1_w, seed);
        xavier(e, b->fc2_w, seed);
        fill(e, b->n1_w, 1.0f);
        fill(e, b->n2_w, 1.0f);
    }
    fill(e, e->nf_w, 1.0f);
    xavier(e, e->head_w, seed);
}

static sadm_status allocate(const sadm_encoder_config *cfg, sadm_encoder **out) {
    sadm_status st = sadm_encoder_config_check(cfg);
    if (!st) st = size_check(cfg, NULL, NULL);
    if (st) return st;
    sadm_encoder *e = calloc(1, sizeof *e);
    if (!e) return sadm_error(SADM_ERR_NOMEM, "encoder: out of memory");
    e->cfg = *cfg;
    e->grid = cfg->input_size / cfg->patch_size;
    e->T = e->grid * e->grid;
    e->D = cfg->hidden_size;
    e->heads = cfg->num_heads;
    e->head_dim = e->D / e->heads;
    e->mlp_dim = (int)(e->D * cfg->mlp_ratio);
    e->F_in = cfg->in_channels * cfg->patch_size * cfg->patch_size;
    e->E = cfg->embed_dim;
    e->blk = calloc(cfg->depth ? cfg->depth : 1, sizeof *e->blk);
    e->acts.blocks = calloc(cfg->depth ? cfg->depth : 1, sizeof *e->acts.blocks);
    if (!e->blk || !e->acts.blocks || (st = build_table(e))) {
        sadm_encoder_free(e);
        return st ? st : sadm_error(SADM_ERR_NOMEM, "encoder: out of memory");
    }
    e->be = sadm_backend_cpu(); /* created and loaded on the host; sadm_encoder_to_backend moves it */
    if (!(e->data = sadm_calloc(e->tab.total, sizeof(float)))) {
        sadm_encoder_free(e);
        return sadm_error(SADM_ERR_NOMEM, "encoder: out of memory for its parameters");
    }
    *out = e;
    return SADM_OK;
}

sadm_status sadm_encoder_create(const sadm_encoder_config *cfg, uint64_t seed, sadm_encoder **out) {
    SADM_REQUIRE_PTR(cfg);
    SADM_REQUIRE_PTR(out);
    *out = NULL;
    sadm_status st = allocate(cfg, out);
    if (!st) initialise(*out, seed);
    return st;
}

sadm_status sadm_encoder_reinitialise(sadm_encoder *e, uint64_t seed) {
    SADM_REQUIRE_PTR(e);
    if (e->be->host_memory) {
        initialise(e, seed);
        return SADM_OK;
    }
    /* initialised on the host, then moved like a loaded encoder */
    float *host = sadm_calloc(e->tab.total, sizeof(float));
    if (!host) return sadm_error(SADM_ERR_NOMEM, "encoder: out of memory to re-initialise it");
    float *dev = e->data;
    e->data = host;
    initialise(e, seed);
    e->data = dev;
    sadm_status st = e->be->upload(e->be, dev, host, e->tab.total * sizeof(float));
    sadm_free(host);
    return st;
}

uint64_t sadm_encoder_run_seed(uint64_t run_seed, long k) {
    return run_seed ^ 0x5AD3E5C0DE5EEDULL ^ ((uint64_t)k * 0x9E3779B97F4A7C15ULL);
}

void sadm_encoder_free(sadm_encoder *e) {
    if (!e) return;
    sadm_ptab_free(&e->tab);
    free(e->blk);
    free(e->acts.blocks);
    e->be->free(e->be, e->act_mem);
    e->be->free(e->be, e->grad);
    e->be->free(e->be, e->data);
    free(e);
}

sadm_backend *sadm_encoder_backend(const sadm_encoder *e) { return e ? e->be : NULL; }

sadm_status sadm_encoder_set_precision(sadm_encoder *e, sadm_precision precision) {
    SADM_REQUIRE_PTR(e);
    SADM_TRY(sadm_backend_check_precision(e->be, precision));
    e->precision = precision;
    return SADM_OK;
}

/* Parameters and gradients move; the activations come back at the next forward. */
sadm_status sadm_encoder_to_backend(sadm_encoder *e, sadm_backend *be) {
    SADM_REQUIRE_PTR(e);
    SADM_REQUIRE_PTR(be);
    if (be == e->be) return SADM_OK;
    SADM_TRY(sadm_backend_check_precision(be, e->precision));
    SADM_TRY(sadm_backend_move_params(e->be, be, &e->data, &e->grad, e->tab.total));
    e->be->free(e->be, e->act_mem);
    e->act_mem = NULL, e->act_floats = 0, e->acts.N_last = 0;
    e->be = be;
    return SADM_OK;
}

const sadm_encoder_config *sadm_encoder_get_config(const sadm_encoder *e) { return e ? &e->cfg : NULL; }
size_t sadm_encoder_num_params(const sadm_encoder *e) { return e ? e->tab.count : 0; }
const sadm_param *sadm_encoder_param(const sadm_encoder *e, size_t i) {
    return e && i < e->tab.count ? &e->tab.items[i] : NULL;
}
float *sadm_encoder_param_data(sadm_encoder *e) { return e ? e->data : NULL; }
size_t sadm_encoder_param_total(const sadm_encoder *e) { return e ? e->tab.total : 0; }

float *sadm_encoder_grad_data(sadm_encoder *e) { return e ? sadm_ptab_grad(&e->tab, &e->grad, e->be) : NULL; }

sadm_status sadm_encoder_zero_grad(sadm_encoder *e) {
    SADM_REQUIRE_PTR(e);
    return sadm_ptab_zero_grad(&e->tab, &e->grad, e->be, "encoder");
}

/* ------------------------------------------------------------------ files */
sadm_status sadm_encoder_write_tensors(const sadm_encoder *e, const float *host, const char *prefix, int only_trainable,
                                       sadm_st_writer *w) {
    return sadm_ptab_write(&e->tab, host, prefix, only_trainable, w);
}

sadm_status sadm_encoder_read_tensors(const sadm_encoder *e, const sadm_st_file *f, const char *prefix, int only_trainable,
                                      float *host) {
    return sadm_ptab_read(&e->tab, f, prefix, only_trainable, host);
}

sadm_status sadm_encoder_save(const sadm_encoder *e, const char *path) {
    SADM_REQUIRE_PTR(e);
    SADM_REQUIRE_PTR(path);
    sadm_st_writer *w = sadm_st_writer_new();
    if (!w) return sadm_error(SADM_ERR_NOMEM, "%s: out of memory", path);
    float *copy;
    const float *host = sadm_backend_host_view(e->be, e->data, e->tab.total, &copy);
    sadm_status st = host ? sadm_encoder_write_metadata(&e->cfg, "", w) : SADM_ERR_NOMEM;
    if (!st) st = sadm_ptab_write(&e->tab, host, "", 0, w);
    if (!st) st = sadm_st_writer_save(w, path);
    sadm_st_writer_free(w);
    sadm_free(copy);
    return st;
}

sadm_status sadm_encoder_load_open_file(const sadm_st_file *f, const char *path, const char *prefix, sadm_encoder **out) {
    *out = NULL;
    char mprefix[32];
    snprintf(mprefix, sizeof mprefix, "%s", prefix);
    sadm_encoder_config cfg;
    sadm_status st = sadm_encoder_read_metadata(f, path, mprefix, &cfg);
    if (!st) st = size_check(&cfg, f, path);
    sadm_encoder *e = NULL;
    if (!st) st = allocate(&cfg, &e);
    if (!st) st = sadm_ptab_read(&e->tab, f, prefix, 0, e->data);
    if (st) {
        sadm_encoder_free(e);
        return st;
    }
    *out = e;
    return SADM_OK;
}

sadm_status sadm_encoder_load(const char *path, sadm_encoder **out) {
    SADM_REQUIRE_PTR(path);
    SADM_REQUIRE_PTR(out);
    *out = NULL;
    sadm_st_file *f;
    sadm_status st = sadm_st_open(path, &f);
    if (st) return st;
    st = sadm_encoder_load_open_file(f, path, "", out);
    /* a file of an encoder has nothing else in it */
    if (!st) {
        char what[64];
        snprintf(what, sizeof what, "this encoder (depth %d)", (*out)->cfg.depth);
        if ((st = sadm_ptab_check_only(&(*out)->tab, f, path, what))) {
            sadm_encoder_free(*out);
            *out = NULL;
        }
    }
    sadm_st_close(f);
    return st;
}

/* ------------------------------------------------------------------ activations */
static size_t layout_acts(sadm_encoder *e, int N, float *base) {
    size_t at = 0, NT = (size_t)N * e->T, D = e->D;
    enc_acts *a = &e->acts;
#define TAKE(ptr, n)                                                                               \
    do {                                                                                           \
        if (base) (ptr) = base + at;                                                               \
        at += ((size_t)(n) + 15) / 16 * 16;                                                        \
    } while (0)
    size_t per = (size_t)e->cfg.in_channels * e->cfg.input_size * e->cfg.input_size;
    TAKE(a->in_x, N * per);
    TAKE(a->d_z, (size_t)N * e->E);
    TAKE(a->d_x, N * per);
    TAKE(a->patches, NT * e->F_in);
    for (int i = 0; i < e->cfg.depth; i++) {
        enc_block_acts *b = base ? &a->blocks[i] : &(enc_block_acts){0};
        TAKE(b->x_in, NT * D);
        TAKE(b->ln1, NT * D);
        TAKE(b->mean1, NT);
        TAKE(b->rstd1, NT);
        TAKE(b->qkv, NT * 3 * D);
        TAKE(b->attn, NT * D);
        TAKE(b->lse, NT * e->heads);
        TAKE(b->x_mid, NT * D);
        TAKE(b->ln2, NT * D);
        TAKE(b->mean2, NT);
        TAKE(b->rstd2, NT);
        TAKE(b->fc1, NT * e->mlp_dim);
        TAKE(b->gelu, NT * e->mlp_dim);
    }
    TAKE(a->x_last, NT * D);
    TAKE(a->lnf, NT * D);
    TAKE(a->meanf, NT);
    TAKE(a->rstdf, NT);
    TAKE(a->pooled, (size_t)N * D);
    TAKE(a->head, (size_t)N * e->E);
    TAKE(a->z, (size_t)N * e->E);
    size_t wide = 3 * D > (size_t)e->mlp_dim ? 3 * D : (size_t)e->mlp_dim;
    TAKE(a->d_h, NT * D);
    TAKE(a->d_ln, NT * D);
    TAKE(a->d_attn, NT * D);
    TAKE(a->d_wide, NT * wide);
    TAKE(a->d_wide2, NT * wide);
    TAKE(a->d_pooled, (size_t)N * D);
    TAKE(a->d_head, (size_t)N * e->E);
    TAKE(a->d_patches, NT * e->F_in);
#undef TAKE
    return at;
}

static sadm_status ensure_acts(sadm_encoder *e, int N) {
    size_t need = layout_acts(e, N, NULL);
    if (!e->act_mem || need > e->act_floats) {
        e->be->free(e->be, e->act_mem);
        e->act_floats = 0;
        if (!(e->act_mem = e->be->alloc(e->be, SADM_DTYPE_F32, need)))
            return sadm_error(SADM_ERR_NOMEM, "encoder: out of memory for the activations of batch %d", N);
        e->act_floats = need;
    }
    layout_acts(e, N, e->act_mem);
    return SADM_OK;
}

/* ------------------------------------------------------------------ forward */
/* The edge: host x and z. */
sadm_status sadm_encoder_forward(sadm_encoder *e, int N, const float *x, float *z) {
    SADM_REQUIRE_PTR(e);
    SADM_REQUIRE_POSITIVE(N);
    SADM_REQUIRE_PTR(x);
    SADM_REQUIRE_PTR(z);
    if (e->be->host_memory) return enc_forward_dev(e, N, x, z);
    SADM_TRY(ensure_acts(e, N));
    sadm_backend *be = e->be;
    size_t per = (size_t)e->cfg.in_channels * e->cfg.input_size * e->cfg.input_size;
    SADM_TRY(be->upload(be, e->acts.in_x, x, (size_t)N * per * sizeof(float)));
    SADM_TRY(enc_forward_dev(e, N, e->acts.in_x, e->acts.z));
    return be->download(be, z, e->acts.z, (size_t)N * e->E * sizeof(float));
}

sadm_status enc_forward_dev(sadm_encoder *e, int N, const float *x, float *z) {
    SADM_TRY(ensure_acts(e, N));
    sadm_backend *be = e->be;
    enc_acts *a = &e->acts;
    a->N_last = 0;
    const sadm_encoder_config *c = &e->cfg;
    int D = e->D, T = e->T, NT = N * T, side = c->input_size, E = e->E;

    /* patch embedding + fixed position embedding */
    float *h = c->depth ? a->blocks[0].x_in : a->x_last;
    SADM_OP(be, patchify, N, c->in_channels, side, side, c->patch_size, x, a->patches);
    SADM_OP_P(be, BF16(e), linear_forward, NT, e->F_in, D, a->patches, enc_p(e, e->xe_w), enc_p(e, e->xe_b), h);
    SADM_OP(be, add_rows, (size_t)N, (size_t)T * D, h, enc_p(e, e->pos), h);

    for (int i = 0; i < c->depth; i++) {
        enc_block_params *bp = &e->blk[i];
        enc_block_acts *b = &a->blocks[i];
        float *next = i + 1 < c->depth ? a->blocks[i + 1].x_in : a->x_last;
        size_t NTD = (size_t)NT * D;
        /* x = x + attn.proj(attn(norm1(x))) */
        SADM_OP(be, layernorm_forward, NT, D, b->x_in, enc_p(e, bp->n1_w), enc_p(e, bp->n1_b), ENC_LN_EPS, b->ln1, b->mean1,
                                   b->rstd1);
        SADM_OP_P(be, BF16(e), linear_forward, NT, D, 3 * D, b->ln1, enc_p(e, bp->qkv_w), enc_p(e, bp->qkv_b), b->qkv);
        SADM_OP_P(be, BF16(e), attention_forward, N, T, e->heads, e->head_dim, b->qkv, b->attn, b->lse);
        SADM_OP_P(be, BF16(e), linear_forward, NT, D, D, b->attn, enc_p(e, bp->proj_w), enc_p(e, bp->proj_b), b->x_mid);
        SADM_OP(be, add, NTD, b->x_mid, b->x_in, b->x_mid);
        /* x = x + mlp(norm2(x)) */
        SADM_OP(be, layernorm_forward, NT, D, b->x_mid, enc_p(e, bp->n2_w), enc_p(e, bp->n2_b), ENC_LN_EPS, b->ln2, b->mean2,
                                   b->rstd2);
        SADM_OP_P(be, BF16(e), linear_forward, NT, D, e->mlp_dim, b->ln2, enc_p(e, bp->fc1_w), enc_p(e, bp->fc1_b), b->fc1);
        SADM_OP(be, gelu_forward, (size_t)NT * e->mlp_dim, b->fc1, b->gelu);
        SADM_OP_P(be, BF16(e), linear_forward, NT, e->mlp_dim, D, b->gelu, enc_p(e, bp->fc2_w), enc_p(e, bp->fc2_b), next);
        SADM_OP(be, add, NTD, next, b->x_mid, next);
    }

    /* final norm, mean over tokens, head, L2 normalisation (in double, as a reduction) */
    SADM_OP(be, layernorm_forward, NT, D, a->x_last, enc_p(e, e->nf_w), enc_p(e, e->nf_b), ENC_LN_EPS, a->lnf, a->meanf,
                               a->rstdf);
    SADM_OP(be, mean_tokens_forward, N, T, D, a->lnf, a->pooled);
    SADM_OP_P(be, BF16(e), linear_forward, N, D, E, a->pooled, enc_p(e, e->head_w), enc_p(e, e->head_b), a->head);
    SADM_OP(be, l2_normalize_forward, (size_t)N, E, ENC_NORM_EPS, a->head, a->z);
    if (z != a->z) SADM_TRY(be->copy(be, z, a->z, (size_t)N * E * sizeof(float)));
    a->N_last = N;
    return SADM_OK;
}
