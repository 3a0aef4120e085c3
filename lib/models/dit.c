/* DiT: parameter table, initialisation, model files and the forward pass, written as a
 * list of operator calls (as llm.c does). Names, shapes, initialisation and the order of
 * operations follow facebookresearch/DiT models.py (with timm's Attention and Mlp). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../io/io.h"
#include "dit_internal.h"

#define LN_EPS 1e-6f

static size_t add(sadm_dit *m, int *fail, const char *name, int trainable, int ndim, int64_t a, int64_t b, int64_t c,
                  int64_t d) {
    int64_t shape[4] = {a, b, c, d};
    size_t i = sadm_ptab_add(&m->tab, name, trainable, ndim, shape);
    if (i == (size_t)-1) *fail = 1;
    return i;
}

static sadm_status build_table(sadm_dit *m) {
    const sadm_dit_config *c = &m->cfg;
    int fail = 0, D = m->D, p = c->patch_size;
    char name[96];
    m->pos = add(m, &fail, "pos_embed", 0, 3, 1, m->T, D, 0);
    m->xe_w = add(m, &fail, "x_embedder.proj.weight", 1, 4, D, c->in_channels, p, p);
    m->xe_b = add(m, &fail, "x_embedder.proj.bias", 1, 1, D, 0, 0, 0);
    m->t0_w = add(m, &fail, "t_embedder.mlp.0.weight", 1, 2, D, FREQ_DIM, 0, 0);
    m->t0_b = add(m, &fail, "t_embedder.mlp.0.bias", 1, 1, D, 0, 0, 0);
    m->t2_w = add(m, &fail, "t_embedder.mlp.2.weight", 1, 2, D, D, 0, 0);
    m->t2_b = add(m, &fail, "t_embedder.mlp.2.bias", 1, 1, D, 0, 0, 0);
    m->y_table = add(m, &fail, "y_embedder.embedding_table.weight", 1, 2, m->label_rows, D, 0, 0);
    for (int i = 0; i < c->depth; i++) {
        dit_block_params *b = &m->blk[i];
#define BLK(field, suffix, nd, a0, a1)                                                             \
    snprintf(name, sizeof name, "blocks.%d." suffix, i);                                           \
    b->field = add(m, &fail, name, 1, nd, a0, a1, 0, 0)
        BLK(qkv_w, "attn.qkv.weight", 2, 3 * D, D);
        BLK(qkv_b, "attn.qkv.bias", 1, 3 * D, 0);
        BLK(proj_w, "attn.proj.weight", 2, D, D);
        BLK(proj_b, "attn.proj.bias", 1, D, 0);
        BLK(fc1_w, "mlp.fc1.weight", 2, m->mlp_dim, D);
        BLK(fc1_b, "mlp.fc1.bias", 1, m->mlp_dim, 0);
        BLK(fc2_w, "mlp.fc2.weight", 2, D, m->mlp_dim);
        BLK(fc2_b, "mlp.fc2.bias", 1, D, 0);
        BLK(ada_w, "adaLN_modulation.1.weight", 2, 6 * D, D);
        BLK(ada_b, "adaLN_modulation.1.bias", 1, 6 * D, 0);
#undef BLK
    }
    m->fl_w = add(m, &fail, "final_layer.linear.weight", 1, 2, m->F_out, D, 0, 0);
    m->fl_b = add(m, &fail, "final_layer.linear.bias", 1, 1, m->F_out, 0, 0, 0);
    m->fa_w = add(m, &fail, "final_layer.adaLN_modulation.1.weight", 1, 2, 2 * D, D, 0, 0);
    m->fa_b = add(m, &fail, "final_layer.adaLN_modulation.1.bias", 1, 1, 2 * D, 0, 0, 0);
    return fail ? sadm_error(SADM_ERR_NOMEM, "DiT: out of memory for the parameter table") : SADM_OK;
}

/* xavier_uniform_: U(-a, a), a = sqrt(6 / (fan_in + fan_out)) of the 2-D view (out, in). */
static void xavier(sadm_dit *m, size_t idx, uint64_t seed) {
    const sadm_param *p = &m->tab.items[idx];
    double fan_out = (double)p->shape[0], fan_in = (double)p->numel / fan_out;
    float a = (float)sqrt(6.0 / (fan_in + fan_out)), *w = dit_p(m, idx);
    sadm_rng_uniform(seed, idx, 0, p->numel, w);
    for (size_t i = 0; i < p->numel; i++) w[i] = (2.0f * w[i] - 1.0f) * a;
}

static void normal(sadm_dit *m, size_t idx, uint64_t seed, float std) {
    const sadm_param *p = &m->tab.items[idx];
    float *w = dit_p(m, idx);
    sadm_rng_normal(seed, idx, 0, p->numel, w);
    for (size_t i = 0; i < p->numel; i++) w[i] *= std;
}

/* DiT.initialize_weights: xavier linears with zero biases (the block is calloc'ed),
 * sin-cos pos_embed, patch embedding xavier on its flattened weight, N(0, 0.02) label and
 * timestep-MLP weights, zero adaLN modulations and final linear. Each tensor draws from
 * its own RNG stream (its table index), so the result is independent of threads. */
static void initialise(sadm_dit *m, uint64_t seed) {
    memset(m->data, 0, m->tab.total * sizeof(float));
    for (int i = 0; i < m->cfg.depth; i++) {
        xavier(m, m->blk[i].qkv_w, seed);
        xavier(m, m->blk[i].proj_w, seed);
        xavier(m, m->blk[i].fc1_w, seed);
        xavier(m, m->blk[i].fc2_w, seed);
    }
    sadm_pos_embed_2d(m->D, m->grid, dit_p(m, m->pos));
    xavier(m, m->xe_w, seed);
    normal(m, m->y_table, seed, 0.02f);
    normal(m, m->t0_w, seed, 0.02f);
    normal(m, m->t2_w, seed, 0.02f);
}

static sadm_status size_check(const sadm_dit_config *c, const sadm_st_file *f, const char *path) {
    char config[160];
    snprintf(config, sizeof config, "depth %d, hidden_size %d, input_size %d, patch_size %d, in_channels %d, num_classes %d",
             c->depth, c->hidden_size, c->input_size, c->patch_size, c->in_channels, c->num_classes);
    return sadm_model_size_check("a DiT", sadm_dit_config_param_count(c), config, f, path);
}

static sadm_status allocate(const sadm_dit_config *cfg, sadm_dit **out) {
    sadm_status st = sadm_dit_config_check(cfg);
    if (st) return st;
    if ((st = size_check(cfg, NULL, NULL))) return st;
    sadm_dit *m = calloc(1, sizeof *m);
    if (!m) return sadm_error(SADM_ERR_NOMEM, "DiT: out of memory");
    m->cfg = *cfg;
    m->grid = cfg->input_size / cfg->patch_size;
    m->T = m->grid * m->grid;
    m->D = cfg->hidden_size;
    m->heads = cfg->num_heads;
    m->head_dim = m->D / m->heads;
    m->mlp_dim = (int)(m->D * cfg->mlp_ratio);
    m->C_out = cfg->learn_sigma ? 2 * cfg->in_channels : cfg->in_channels;
    m->F_in = cfg->in_channels * cfg->patch_size * cfg->patch_size;
    m->F_out = m->C_out * cfg->patch_size * cfg->patch_size;
    m->label_rows = cfg->num_classes + (cfg->class_dropout_prob > 0);
    m->blk = calloc(cfg->depth ? cfg->depth : 1, sizeof *m->blk);
    if (!m->blk || (st = build_table(m))) {
        sadm_dit_free(m);
        return st ? st : sadm_error(SADM_ERR_NOMEM, "DiT: out of memory");
    }
    m->be = sadm_backend_cpu(); /* created and loaded on the host; sadm_dit_to_backend moves it */
    m->data = sadm_calloc(m->tab.total, sizeof(float));
    if (!m->data) {
        size_t floats = m->tab.total;
        sadm_dit_free(m);
        return sadm_error(SADM_ERR_NOMEM, "DiT: out of memory for %zu parameters", floats);
    }
    *out = m;
    return SADM_OK;
}

sadm_status sadm_dit_create(const sadm_dit_config *cfg, uint64_t seed, sadm_dit **out) {
    SADM_REQUIRE_PTR(cfg);
    SADM_REQUIRE_PTR(out);
    sadm_status st = allocate(cfg, out);
    if (!st) initialise(*out, seed);
    return st;
}

void sadm_dit_free(sadm_dit *m) {
    if (!m) return;
    sadm_ptab_free(&m->tab);
    free(m->blk);
    free(m->acts.blocks);
    m->be->free(m->be, m->acts.y);
    m->be->free(m->be, m->act_mem);
    m->be->free(m->be, m->grad);
    m->be->free(m->be, m->data);
    free(m);
}

sadm_backend *sadm_dit_backend(const sadm_dit *m) { return m ? m->be : NULL; }

sadm_status sadm_dit_set_precision(sadm_dit *m, sadm_precision precision) {
    SADM_REQUIRE_PTR(m);
    SADM_TRY(sadm_backend_check_precision(m->be, precision));
    m->precision = precision;
    return SADM_OK;
}

sadm_precision sadm_dit_precision(const sadm_dit *m) { return m ? m->precision : SADM_PRECISION_FP32; }

/* The parameters and gradients move; the activations are dropped and come back on the
 * new backend at the next forward. */
sadm_status sadm_dit_to_backend(sadm_dit *m, sadm_backend *be) {
    SADM_REQUIRE_PTR(m);
    SADM_REQUIRE_PTR(be);
    if (be == m->be) return SADM_OK;
    SADM_TRY(sadm_backend_check_precision(be, m->precision));
    SADM_TRY(sadm_backend_move_params(m->be, be, &m->data, &m->grad, m->tab.total));
    m->be->free(m->be, m->act_mem); /* the activations come back at the next forward */
    m->be->free(m->be, m->acts.y);
    m->act_mem = NULL, m->acts.y = NULL, m->act_floats = 0, m->acts.N = 0, m->acts.N_last = 0;
    m->be = be;
    return SADM_OK;
}

sadm_status sadm_dit_params_download(const sadm_dit *m, float *dst) {
    SADM_REQUIRE_PTR(m);
    SADM_REQUIRE_PTR(dst);
    return m->be->download(m->be, dst, m->data, m->tab.total * sizeof(float));
}

sadm_status sadm_dit_params_upload(sadm_dit *m, const float *src) {
    SADM_REQUIRE_PTR(m);
    SADM_REQUIRE_PTR(src);
    return m->be->upload(m->be, m->data, src, m->tab.total * sizeof(float));
}

const sadm_dit_config *sadm_dit_get_config(const sadm_dit *m) { return m ? &m->cfg : NULL; }
size_t sadm_dit_num_params(const sadm_dit *m) { return m ? m->tab.count : 0; }
const sadm_param *sadm_dit_param(const sadm_dit *m, size_t i) { return m && i < m->tab.count ? &m->tab.items[i] : NULL; }
float *sadm_dit_param_data(sadm_dit *m) { return m ? m->data : NULL; }
size_t sadm_dit_param_total(const sadm_dit *m) { return m ? m->tab.total : 0; }
int sadm_dit_out_channels(const sadm_dit *m) { return m ? m->C_out : 0; }

/* ------------------------------------------------------------------ model files */
sadm_status sadm_dit_save(const sadm_dit *m, const char *path) { return sadm_dit_save_as(m, path, SADM_DTYPE_F32); }

sadm_status sadm_dit_save_as(const sadm_dit *m, const char *path, sadm_dtype dtype) {
    SADM_REQUIRE_PTR(m);
    SADM_REQUIRE_PTR(path);
    SADM_REQUIRE(dtype == SADM_DTYPE_F32 || dtype == SADM_DTYPE_F16 || dtype == SADM_DTYPE_BF16,
                 "%s: model files store F32, F16 or BF16, not %s", path, sadm_dtype_name(dtype));
    sadm_st_writer *w = sadm_st_writer_new();
    if (!w) return sadm_error(SADM_ERR_NOMEM, "%s: out of memory", path);
    const float *host = m->data;
    sadm_status st = SADM_OK;
    if (!m->be->host_memory) {
        float *copy = sadm_alloc(m->tab.total * sizeof(float));
        st = copy ? sadm_dit_params_download(m, copy) : sadm_error(SADM_ERR_NOMEM, "%s: out of memory", path);
        host = copy;
    }
    if (!st) st = sadm_dit_write_metadata(&m->cfg, w);
    /* narrower storage: converted into one buffer that lives until the writer has saved */
    void *narrow = NULL;
    if (!st && dtype != SADM_DTYPE_F32) {
        narrow = sadm_alloc(m->tab.total * sadm_dtype_size(dtype));
        if (!narrow) st = sadm_error(SADM_ERR_NOMEM, "%s: out of memory", path);
        else sadm_from_f32(dtype, host, m->tab.total, narrow);
    }
    for (size_t i = 0; i < m->tab.count && !st; i++) {
        const sadm_param *p = &m->tab.items[i];
        const void *data = narrow ? (const void *)((const char *)narrow + p->offset * sadm_dtype_size(dtype))
                                  : (const void *)(host + p->offset);
        st = sadm_st_writer_add(w, p->name, dtype, p->ndim, p->shape, data);
    }
    if (!st) st = sadm_st_writer_save(w, path);
    sadm_st_writer_free(w);
    sadm_free(narrow);
    if (host != m->data) sadm_free((float *)host);
    return st;
}

static int has_prefix(const char *name, const char *const *prefixes) {
    for (; prefixes && *prefixes; prefixes++)
        if (!strncmp(name, *prefixes, strlen(*prefixes))) return 1;
    return 0;
}

sadm_status sadm_dit_load(const char *path, const sadm_dit_config *fallback, sadm_dit **out) {
    SADM_REQUIRE_PTR(path);
    SADM_REQUIRE_PTR(out);
    *out = NULL;
    sadm_st_file *f;
    sadm_status st = sadm_st_open(path, &f);
    if (st) return st;
    st = dit_load_open_file(f, path, fallback, NULL, out);
    sadm_st_close(f);
    return st;
}

sadm_status dit_load_open_file(const sadm_st_file *f, const char *path, const sadm_dit_config *fallback,
                               const char *const *other_prefixes, sadm_dit **out) {
    *out = NULL;
    sadm_status st;
    sadm_dit_config cfg;
    int found;
    st = sadm_dit_read_metadata(f, path, &cfg, &found);
    if (!st && !found) {
        if (fallback)
            cfg = *fallback;
        else
            st = sadm_dit_config_infer(f, path, &cfg); /* an official checkpoint: the config from the shapes */
    }
    if (!st && !(st = sadm_dit_config_check(&cfg))) st = size_check(&cfg, f, path);
    sadm_dit *m = NULL;
    if (!st) st = allocate(&cfg, &m);
    for (size_t i = 0; m && i < m->tab.count && !st; i++) {
        const sadm_param *p = &m->tab.items[i];
        st = sadm_st_read_f32(f, p->name, p->ndim, p->shape, m->data + p->offset);
    }
    for (size_t i = 0; !st && i < sadm_st_count(f); i++) {
        const char *name = sadm_st_tensor(f, i)->name;
        if (sadm_ptab_find(&m->tab, name) == (size_t)-1 && !has_prefix(name, other_prefixes))
            st = sadm_error(SADM_ERR_FORMAT, "%s: tensor '%s' is not a parameter of this DiT (depth %d, learn_sigma %d)",
                            path, name, cfg.depth, cfg.learn_sigma);
    }
    if (st) {
        sadm_dit_free(m);
        return st;
    }
    *out = m;
    return SADM_OK;
}

/* The tensors of a training checkpoint that are not the model's own. */
const char *const dit_checkpoint_prefixes[] = {"ema.", "opt.m.", "opt.v.", "disc.", NULL};

/* A model file, or a training checkpoint's weights (its EMA with use_ema). */
sadm_status sadm_dit_load_any(const char *path, int use_ema, sadm_dit **out) {
    SADM_REQUIRE_PTR(path);
    SADM_REQUIRE_PTR(out);
    *out = NULL;
    sadm_st_file *f;
    sadm_status st = sadm_st_open(path, &f);
    if (st) return st;
    sadm_dit *m = NULL;
    st = dit_load_open_file(f, path, NULL, dit_checkpoint_prefixes, &m);
    int is_ckpt = sadm_st_metadata(f, "train.step") != NULL;
    for (size_t i = 0; !st && is_ckpt && use_ema && i < sadm_dit_num_params(m); i++) {
        const sadm_param *p = sadm_dit_param(m, i);
        char key[160];
        snprintf(key, sizeof key, "ema.%s", p->name);
        st = sadm_st_read_f32(f, key, p->ndim, p->shape, sadm_dit_param_data(m) + p->offset);
    }
    sadm_st_close(f);
    if (st) {
        sadm_dit_free(m);
        return st;
    }
    *out = m;
    return SADM_OK;
}

/* ------------------------------------------------------------------ activations */
/* Lays the activations of a batch of N out in one block; with base == NULL only counts.
 * For inference, all blocks share one set of buffers and the residual stream alternates
 * between two, so memory does not grow with depth; no backward scratch is laid out. */
static size_t layout_acts(sadm_dit *m, int N, float *base, int inference) {
    size_t at = 0, NT = (size_t)N * m->T, D = m->D;
    dit_acts *a = &m->acts;
    size_t per = (size_t)m->cfg.in_channels * m->cfg.input_size * m->cfg.input_size;
    size_t per_out = (size_t)m->C_out * m->cfg.input_size * m->cfg.input_size;
#define TAKE(ptr, n)                                                                               \
    do {                                                                                           \
        if (base) (ptr) = base + at;                                                               \
        at += ((size_t)(n) + 15) / 16 * 16;                                                        \
    } while (0)
    /* first, so that they sit at the same place in the training and inference layouts */
    TAKE(a->in_x, N * per);
    TAKE(a->in_t, N);
    TAKE(a->out, N * per_out);
    TAKE(a->d_out, N * per_out);
    TAKE(a->patches, NT * m->F_in);
    TAKE(a->t_freq, (size_t)N * FREQ_DIM);
    TAKE(a->t_h, N * D);
    TAKE(a->t_act, N * D);
    TAKE(a->t_emb, N * D);
    TAKE(a->y_emb, N * D);
    TAKE(a->c, N * D);
    TAKE(a->silu_c, N * D);
    float *stream[2] = {NULL, NULL};
    if (inference) {
        TAKE(stream[0], NT * D);
        TAKE(stream[1], NT * D);
    }
    for (int i = 0; i < m->cfg.depth; i++) {
        dit_block_acts *b = base ? &a->blocks[i] : &(dit_block_acts){0};
        if (inference && i > 0) {
            if (base) *b = a->blocks[0], b->x_in = stream[i % 2];
            continue;
        }
        if (inference)
            b->x_in = stream[0];
        else
            TAKE(b->x_in, NT * D);
        TAKE(b->ada_raw, N * 6 * D);
        TAKE(b->ada, N * 6 * D);
        TAKE(b->ln1, NT * D);
        TAKE(b->mean1, NT);
        TAKE(b->rstd1, NT);
        TAKE(b->mod1, NT * D);
        TAKE(b->qkv, NT * 3 * D);
        TAKE(b->attn, NT * D);
        TAKE(b->lse, NT * m->heads);
        TAKE(b->proj, NT * D);
        TAKE(b->x_mid, NT * D);
        TAKE(b->ln2, NT * D);
        TAKE(b->mean2, NT);
        TAKE(b->rstd2, NT);
        TAKE(b->mod2, NT * D);
        TAKE(b->fc1, NT * m->mlp_dim);
        TAKE(b->gelu, NT * m->mlp_dim);
        TAKE(b->fc2, NT * D);
    }
    if (inference)
        a->x_last = stream[m->cfg.depth % 2];
    else
        TAKE(a->x_last, NT * D);
    TAKE(a->adaf_raw, N * 2 * D);
    TAKE(a->adaf, N * 2 * D);
    TAKE(a->lnf, NT * D);
    TAKE(a->meanf, NT);
    TAKE(a->rstdf, NT);
    TAKE(a->modf, NT * D);
    TAKE(a->lin, NT * m->F_out);
    if (inference) return at;
    size_t wide = (size_t)(3 * D > (size_t)m->mlp_dim ? 3 * D : (size_t)m->mlp_dim);
    dit_grad_scratch *g = &a->g;
    TAKE(g->d_h, NT * D);
    TAKE(g->d_mod, NT * D);
    TAKE(g->d_ln, NT * D);
    TAKE(g->d_branch, NT * D);
    TAKE(g->d_attn, NT * D);
    TAKE(g->d_wide, NT * wide);
    TAKE(g->d_wide2, NT * wide);
    TAKE(g->d_ada, N * 6 * D);
    TAKE(g->d_ada_raw, N * 6 * D);
    TAKE(g->d_silu_c, N * D);
    TAKE(g->d_c, N * D);
    TAKE(g->d_t_act, N * D);
    TAKE(g->d_t_h, N * D);
    TAKE(g->d_lin, NT * m->F_out);
    TAKE(g->d_patches, NT * m->F_in);
#undef TAKE
    return at;
}

/* Sized on the first call and grown only when more is needed. */
static sadm_status ensure_acts(sadm_dit *m, int N, int inference) {
    size_t need = layout_acts(m, N, NULL, inference);
    if (!m->acts.blocks && !(m->acts.blocks = calloc(m->cfg.depth ? m->cfg.depth : 1, sizeof *m->acts.blocks)))
        return sadm_error(SADM_ERR_NOMEM, "DiT: out of memory");
    if (N > m->acts.N) {
        int64_t *y = m->be->alloc(m->be, SADM_DTYPE_I64, (size_t)N);
        if (!y) return sadm_error(SADM_ERR_NOMEM, "DiT: out of memory");
        m->be->free(m->be, m->acts.y);
        m->acts.y = y, m->acts.N = N;
    }
    if (!m->act_mem || need > m->act_floats) {
        char why[64];
        snprintf(why, sizeof why, "batch %d of %d tokens", N, m->T);
        sadm_status st = sadm_memory_check(inference ? "the DiT's activations" : "the DiT's training activations",
                                           (uint64_t)need * sizeof(float), why);
        if (st) return st;
        m->be->free(m->be, m->act_mem);
        m->act_floats = 0;
        if (!(m->act_mem = m->be->alloc(m->be, SADM_DTYPE_F32, need)))
            return sadm_error(SADM_ERR_NOMEM, "DiT: out of memory for the activations of batch %d (%zu floats)", N, need);
        m->act_floats = need;
    }
    layout_acts(m, N, m->act_mem, inference);
    return SADM_OK;
}

sadm_status dit_prepare(sadm_dit *m, int N, int inference) { return ensure_acts(m, N, inference); }

size_t sadm_dit_activation_bytes(const sadm_dit *m) { return m ? m->act_floats * sizeof(float) : 0; }

/* ------------------------------------------------------------------ forward */
sadm_status dit_check_labels(const sadm_dit *m, int N, const int64_t *y) {
    for (int n = 0; n < N; n++)
        SADM_REQUIRE(y[n] >= 0 && y[n] < m->label_rows,
                     "sadm_dit_forward: label %lld of sample %d is outside [0, %d)%s", (long long)y[n], n, m->label_rows,
                     m->label_rows > m->cfg.num_classes ? " (the last is the null class)" : "");
    return SADM_OK;
}

/* The edge: host x, t, y, out. On a backend with host memory they pass straight through;
 * elsewhere they are copied into the arena's edge buffers. */
static sadm_status forward_host(sadm_dit *m, int N, const float *x, const float *t, const int64_t *y, float *out,
                                int inference) {
    SADM_REQUIRE_PTR(m);
    SADM_REQUIRE_POSITIVE(N);
    SADM_REQUIRE_PTR(x);
    SADM_REQUIRE_PTR(t);
    SADM_REQUIRE_PTR(y);
    SADM_REQUIRE_PTR(out);
    SADM_TRY(dit_check_labels(m, N, y));
    if (m->be->host_memory) return dit_forward_dev(m, N, x, t, y, out, inference);
    SADM_TRY(ensure_acts(m, N, inference));
    sadm_backend *be = m->be;
    dit_acts *a = &m->acts;
    size_t per = (size_t)m->cfg.in_channels * m->cfg.input_size * m->cfg.input_size;
    size_t per_out = (size_t)m->C_out * m->cfg.input_size * m->cfg.input_size;
    SADM_TRY(be->upload(be, a->in_x, x, (size_t)N * per * sizeof(float)));
    SADM_TRY(be->upload(be, a->in_t, t, (size_t)N * sizeof(float)));
    SADM_TRY(be->upload(be, a->y, y, (size_t)N * sizeof(int64_t)));
    SADM_TRY(dit_forward_dev(m, N, a->in_x, a->in_t, a->y, a->out, inference));
    return be->download(be, out, a->out, (size_t)N * per_out * sizeof(float));
}

sadm_status sadm_dit_forward(sadm_dit *m, int N, const float *x, const float *t, const int64_t *y, float *out) {
    return forward_host(m, N, x, t, y, out, 0);
}

sadm_status sadm_dit_forward_inference(sadm_dit *m, int N, const float *x, const float *t, const int64_t *y, float *out) {
    return forward_host(m, N, x, t, y, out, 1);
}

sadm_status dit_forward_dev(sadm_dit *m, int N, const float *x, const float *t, const int64_t *y, float *out,
                            int inference) {
    SADM_TRY(ensure_acts(m, N, inference));
    const sadm_dit_config *c = &m->cfg;
    sadm_backend *be = m->be;
    dit_acts *a = &m->acts;
    a->N_last = 0; /* a failure below leaves nothing to run a backward on */
    if (y != a->y) SADM_TRY(be->copy(be, a->y, y, (size_t)N * sizeof(int64_t)));
    int D = m->D, T = m->T, NT = N * T, side = c->input_size, p = c->patch_size;

    /* x_embedder (conv p×p stride p = patchify + Linear) + pos_embed */
    float *h = c->depth ? a->blocks[0].x_in : a->x_last;
    SADM_OP(be, patchify, N, c->in_channels, side, side, p, x, a->patches);
    SADM_OP_P(be, BF16(m), linear_forward, NT, m->F_in, D, a->patches, dit_p(m, m->xe_w), dit_p(m, m->xe_b), h);
    SADM_OP(be, add_rows, (size_t)N, (size_t)T * D, h, dit_p(m, m->pos), h);

    /* conditioning c = t_embedder(t) + y_embedder(y) */
    SADM_OP(be, timestep_embedding, N, FREQ_DIM, t, 10000.0f, a->t_freq);
    SADM_OP_P(be, BF16(m), linear_forward, N, FREQ_DIM, D, a->t_freq, dit_p(m, m->t0_w), dit_p(m, m->t0_b), a->t_h);
    SADM_OP(be, silu_forward, (size_t)N * D, a->t_h, a->t_act);
    SADM_OP_P(be, BF16(m), linear_forward, N, D, D, a->t_act, dit_p(m, m->t2_w), dit_p(m, m->t2_b), a->t_emb);
    SADM_OP(be, embedding_forward, N, D, m->label_rows, dit_p(m, m->y_table), a->y, a->y_emb);
    SADM_OP(be, add, (size_t)N * D, a->t_emb, a->y_emb, a->c);
    SADM_OP(be, silu_forward, (size_t)N * D, a->c, a->silu_c);

    for (int i = 0; i < c->depth; i++) {
        dit_block_params *bp = &m->blk[i];
        dit_block_acts *b = &a->blocks[i];
        float *next = i + 1 < c->depth ? a->blocks[i + 1].x_in : a->x_last;
        size_t ND = (size_t)N * D;
        /* shift_msa, scale_msa, gate_msa, shift_mlp, scale_mlp, gate_mlp */
        SADM_OP_P(be, BF16(m), linear_forward, N, D, 6 * D, a->silu_c, dit_p(m, bp->ada_w), dit_p(m, bp->ada_b), b->ada_raw);
        SADM_OP(be, split_chunks, N, D, 6, b->ada_raw, b->ada);
        /* x = x + gate_msa * attn(modulate(norm1(x), shift_msa, scale_msa)) */
        SADM_OP(be, layernorm_forward, NT, D, b->x_in, NULL, NULL, LN_EPS, b->ln1, b->mean1, b->rstd1);
        SADM_OP(be, modulate_forward, N, T, D, b->ln1, b->ada, b->ada + ND, b->mod1);
        SADM_OP_P(be, BF16(m), linear_forward, NT, D, 3 * D, b->mod1, dit_p(m, bp->qkv_w), dit_p(m, bp->qkv_b), b->qkv);
        SADM_OP_P(be, BF16(m), attention_forward, N, T, m->heads, m->head_dim, b->qkv, b->attn, b->lse);
        SADM_OP_P(be, BF16(m), linear_forward, NT, D, D, b->attn, dit_p(m, bp->proj_w), dit_p(m, bp->proj_b), b->proj);
        SADM_OP(be, gated_add_forward, N, T, D, b->x_in, b->ada + 2 * ND, b->proj, b->x_mid);
        /* x = x + gate_mlp * mlp(modulate(norm2(x), shift_mlp, scale_mlp)) */
        SADM_OP(be, layernorm_forward, NT, D, b->x_mid, NULL, NULL, LN_EPS, b->ln2, b->mean2, b->rstd2);
        SADM_OP(be, modulate_forward, N, T, D, b->ln2, b->ada + 3 * ND, b->ada + 4 * ND, b->mod2);
        SADM_OP_P(be, BF16(m), linear_forward, NT, D, m->mlp_dim, b->mod2, dit_p(m, bp->fc1_w), dit_p(m, bp->fc1_b), b->fc1);
        SADM_OP(be, gelu_forward, (size_t)NT * m->mlp_dim, b->fc1, b->gelu);
        SADM_OP_P(be, BF16(m), linear_forward, NT, m->mlp_dim, D, b->gelu, dit_p(m, bp->fc2_w), dit_p(m, bp->fc2_b), b->fc2);
        SADM_OP(be, gated_add_forward, N, T, D, b->x_mid, b->ada + 5 * ND, b->fc2, next);
    }

    /* final layer: shift, scale = adaLN(c); linear(modulate(norm(x), shift, scale)) */
    SADM_OP_P(be, BF16(m), linear_forward, N, D, 2 * D, a->silu_c, dit_p(m, m->fa_w), dit_p(m, m->fa_b), a->adaf_raw);
    SADM_OP(be, split_chunks, N, D, 2, a->adaf_raw, a->adaf);
    SADM_OP(be, layernorm_forward, NT, D, a->x_last, NULL, NULL, LN_EPS, a->lnf, a->meanf, a->rstdf);
    SADM_OP(be, modulate_forward, N, T, D, a->lnf, a->adaf, a->adaf + (size_t)N * D, a->modf);
    SADM_OP_P(be, BF16(m), linear_forward, NT, D, m->F_out, a->modf, dit_p(m, m->fl_w), dit_p(m, m->fl_b), a->lin);
    SADM_OP(be, unpatchify, N, m->C_out, side, side, p, a->lin, out);
    a->N_last = inference ? 0 : N; /* shared buffers hold nothing a backward could use */
    return SADM_OK;
}
