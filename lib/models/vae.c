/* The Stable Diffusion VAE (diffusers' AutoencoderKL, KL-f8 as DiT uses it), inference:
 * encode an image to the posterior's mean and log-variance, decode a latent to an image.
 *
 * Written from diffusers' architecture (models/autoencoders/vae.py, unets/unet_2d_blocks.py,
 * resnet.py, attention_processor.py of 0.27), with its parameter names:
 *   encoder: conv_in; down_blocks.i (resnets.j, downsamplers.0.conv except the last);
 *            mid_block (resnets.0, attentions.0, resnets.1); conv_norm_out; conv_out -> 2L
 *   quant_conv (1x1, 2L -> 2L), post_quant_conv (1x1, L -> L)
 *   decoder: conv_in; mid_block; up_blocks.i (layers_per_block + 1 resnets, upsamplers.0.conv
 *            except the last), channels reversed; conv_norm_out; conv_out -> 3
 * A ResNet block: GroupNorm, SiLU, 3x3 conv, GroupNorm, SiLU, 3x3 conv, plus the input
 * (through a 1x1 conv_shortcut when the channels change). Downsampling pads one zero row
 * below and one column right, then a 3x3 stride-2 conv; upsampling is nearest x2 then a
 * 3x3 conv. The mid-block attention is single-head over the H W positions, with its own
 * GroupNorm and a residual. Every GroupNorm has eps 1e-6.
 *
 * Images go through one at a time, so that activations take a few full-resolution
 * buffers whatever the batch (a 512x512 decode peaks at about 1 GB). */
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "params.h"

#define VAE_GN_EPS 1e-6f
#define VAE_MAX_CHANNELS 8192
#define VAE_MAX_SIDE 16384

typedef struct conv_p {
    size_t w, b; /* param indices */
    int cin, cout, k;
} conv_p;

typedef struct norm_p {
    size_t w, b;
    int c;
} norm_p;

typedef struct resnet_p {
    norm_p n1, n2;
    conv_p c1, c2, shortcut; /* shortcut.cout == 0: none */
} resnet_p;

typedef struct attn_p {
    norm_p n;
    size_t q_w, q_b, k_w, k_b, v_w, v_b, o_w, o_b;
    int c;
} attn_p;

typedef struct mid_p {
    resnet_p r0, r1;
    attn_p attn;
} mid_p;

typedef struct stage_p {
    resnet_p *res;
    int n_res;
    conv_p resample; /* cout == 0: none */
} stage_p;

struct sadm_vae {
    sadm_vae_config cfg;
    sadm_backend *be;
    sadm_param_table tab;
    float *data;
    conv_p enc_in, enc_out, quant, post_quant, dec_in, dec_out;
    norm_p enc_norm_out, dec_norm_out;
    stage_p *down, *up;
    mid_p enc_mid, dec_mid;
    float *buf[5]; /* activations of one image on be: X, A, B, and two of 3x the mid size */
    size_t buf_floats;
    int buf_h, buf_w; /* the image size they were laid out for (0: none) */
};

/* ------------------------------------------------------------------ config */
void sadm_vae_config_default(sadm_vae_config *c) {
    memset(c, 0, sizeof *c);
    c->in_channels = 3, c->out_channels = 3, c->latent_channels = 4;
    c->num_blocks = 4;
    c->block_out_channels[0] = 128, c->block_out_channels[1] = 256;
    c->block_out_channels[2] = 512, c->block_out_channels[3] = 512;
    c->layers_per_block = 2, c->norm_num_groups = 32;
    c->scaling_factor = 0.18215f;
    c->mid_attention = 1, c->quant_conv = 1, c->post_quant_conv = 1;
}

sadm_status sadm_vae_config_check(const sadm_vae_config *c) {
    SADM_REQUIRE_PTR(c);
    SADM_REQUIRE(c->in_channels >= 1 && c->in_channels <= 64 && c->out_channels >= 1 && c->out_channels <= 64,
                 "VAE config: in_channels %d and out_channels %d must lie in [1, 64]", c->in_channels, c->out_channels);
    SADM_REQUIRE(c->latent_channels >= 1 && c->latent_channels <= 256,
                 "VAE config: latent_channels %d must lie in [1, 256]", c->latent_channels);
    SADM_REQUIRE(c->num_blocks >= 1 && c->num_blocks <= SADM_VAE_MAX_BLOCKS,
                 "VAE config: %d blocks (block_out_channels) must be 1 to %d", c->num_blocks, SADM_VAE_MAX_BLOCKS);
    SADM_REQUIRE(c->layers_per_block >= 1 && c->layers_per_block <= 16,
                 "VAE config: layers_per_block %d must lie in [1, 16]", c->layers_per_block);
    SADM_REQUIRE(c->norm_num_groups >= 1, "VAE config: norm_num_groups %d must be positive", c->norm_num_groups);
    for (int i = 0; i < c->num_blocks; i++) {
        int ch = c->block_out_channels[i];
        SADM_REQUIRE(ch >= 1 && ch <= VAE_MAX_CHANNELS, "VAE config: block_out_channels[%d] = %d must lie in [1, %d]", i,
                     ch, VAE_MAX_CHANNELS);
        SADM_REQUIRE(ch % c->norm_num_groups == 0,
                     "VAE config: block_out_channels[%d] = %d does not split into norm_num_groups %d", i, ch,
                     c->norm_num_groups);
    }
    SADM_REQUIRE(isfinite(c->scaling_factor) && c->scaling_factor > 0,
                 "VAE config: scaling_factor must be positive, got %g", c->scaling_factor);
    return SADM_OK;
}

int sadm_vae_factor(const sadm_vae_config *c) { return 1 << (c->num_blocks - 1); }

/* ------------------------------------------------------------------ the parameter table */
typedef struct builder {
    sadm_vae *v;
    int fail;
    char prefix[160];
} builder;

static size_t add(builder *b, const char *name, int ndim, int64_t d0, int64_t d1, int64_t d2, int64_t d3) {
    char full[256];
    snprintf(full, sizeof full, "%s%s", b->prefix, name);
    int64_t shape[4] = {d0, d1, d2, d3};
    size_t i = sadm_ptab_add(&b->v->tab, full, 0, ndim, shape);
    if (i == (size_t)-1) b->fail = 1;
    return i;
}

static conv_p conv(builder *b, const char *name, int cin, int cout, int k) {
    char n[96];
    conv_p c = {0, 0, cin, cout, k};
    snprintf(n, sizeof n, "%s.weight", name);
    c.w = add(b, n, 4, cout, cin, k, k);
    snprintf(n, sizeof n, "%s.bias", name);
    c.b = add(b, n, 1, cout, 0, 0, 0);
    return c;
}

static norm_p norm(builder *b, const char *name, int ch) {
    char n[96];
    norm_p p = {0, 0, ch};
    snprintf(n, sizeof n, "%s.weight", name);
    p.w = add(b, n, 1, ch, 0, 0, 0);
    snprintf(n, sizeof n, "%s.bias", name);
    p.b = add(b, n, 1, ch, 0, 0, 0);
    return p;
}

static size_t linear(builder *b, const char *name, const char *part, int ch, int bias) {
    char n[96];
    snprintf(n, sizeof n, "%s.%s", name, part);
    return bias ? add(b, n, 1, ch, 0, 0, 0) : add(b, n, 2, ch, ch, 0, 0);
}

static resnet_p resnet(builder *b, const char *name, int cin, int cout) {
    char n[128];
    resnet_p r;
    memset(&r, 0, sizeof r);
    snprintf(n, sizeof n, "%s.norm1", name);
    r.n1 = norm(b, n, cin);
    snprintf(n, sizeof n, "%s.conv1", name);
    r.c1 = conv(b, n, cin, cout, 3);
    snprintf(n, sizeof n, "%s.norm2", name);
    r.n2 = norm(b, n, cout);
    snprintf(n, sizeof n, "%s.conv2", name);
    r.c2 = conv(b, n, cout, cout, 3);
    if (cin != cout) {
        snprintf(n, sizeof n, "%s.conv_shortcut", name);
        r.shortcut = conv(b, n, cin, cout, 1);
    }
    return r;
}

static mid_p mid(builder *b, int ch, int attention) {
    mid_p m;
    memset(&m, 0, sizeof m);
    m.r0 = resnet(b, "mid_block.resnets.0", ch, ch);
    if (attention) {
        const char *a = "mid_block.attentions.0";
        char n[96];
        snprintf(n, sizeof n, "%s.group_norm", a);
        m.attn.n = norm(b, n, ch);
        m.attn.c = ch;
        /* q, k, v, out in that order (see read_tensor for the older names) */
        m.attn.q_w = linear(b, a, "to_q.weight", ch, 0), m.attn.q_b = linear(b, a, "to_q.bias", ch, 1);
        m.attn.k_w = linear(b, a, "to_k.weight", ch, 0), m.attn.k_b = linear(b, a, "to_k.bias", ch, 1);
        m.attn.v_w = linear(b, a, "to_v.weight", ch, 0), m.attn.v_b = linear(b, a, "to_v.bias", ch, 1);
        m.attn.o_w = linear(b, a, "to_out.0.weight", ch, 0), m.attn.o_b = linear(b, a, "to_out.0.bias", ch, 1);
    }
    m.r1 = resnet(b, "mid_block.resnets.1", ch, ch);
    return m;
}

static sadm_status build_table(sadm_vae *v) {
    const sadm_vae_config *c = &v->cfg;
    const int nb = c->num_blocks, *boc = c->block_out_channels, L = c->latent_channels;
    builder b = {v, 0, "encoder."};
    char n[128];
    v->down = calloc((size_t)nb, sizeof *v->down);
    v->up = calloc((size_t)nb, sizeof *v->up);
    if (!v->down || !v->up) return sadm_error(SADM_ERR_NOMEM, "VAE: out of memory for its blocks");
    v->enc_in = conv(&b, "conv_in", c->in_channels, boc[0], 3);
    int ch = boc[0];
    for (int i = 0; i < nb; i++) {
        stage_p *s = &v->down[i];
        s->n_res = c->layers_per_block;
        if (!(s->res = calloc((size_t)s->n_res, sizeof *s->res))) return sadm_error(SADM_ERR_NOMEM, "VAE: out of memory");
        for (int j = 0; j < s->n_res; j++) {
            snprintf(n, sizeof n, "down_blocks.%d.resnets.%d", i, j);
            s->res[j] = resnet(&b, n, j == 0 ? ch : boc[i], boc[i]);
        }
        ch = boc[i];
        if (i < nb - 1) {
            snprintf(n, sizeof n, "down_blocks.%d.downsamplers.0.conv", i);
            s->resample = conv(&b, n, ch, ch, 3);
        }
    }
    v->enc_mid = mid(&b, ch, c->mid_attention);
    v->enc_norm_out = norm(&b, "conv_norm_out", ch);
    v->enc_out = conv(&b, "conv_out", ch, 2 * L, 3);
    b.prefix[0] = 0;
    if (c->quant_conv) v->quant = conv(&b, "quant_conv", 2 * L, 2 * L, 1);
    if (c->post_quant_conv) v->post_quant = conv(&b, "post_quant_conv", L, L, 1);
    snprintf(b.prefix, sizeof b.prefix, "decoder.");
    ch = boc[nb - 1];
    v->dec_in = conv(&b, "conv_in", L, ch, 3);
    v->dec_mid = mid(&b, ch, c->mid_attention);
    for (int i = 0; i < nb; i++) {
        stage_p *s = &v->up[i];
        int out = boc[nb - 1 - i];
        s->n_res = c->layers_per_block + 1;
        if (!(s->res = calloc((size_t)s->n_res, sizeof *s->res))) return sadm_error(SADM_ERR_NOMEM, "VAE: out of memory");
        for (int j = 0; j < s->n_res; j++) {
            snprintf(n, sizeof n, "up_blocks.%d.resnets.%d", i, j);
            s->res[j] = resnet(&b, n, j == 0 ? ch : out, out);
        }
        ch = out;
        if (i < nb - 1) {
            snprintf(n, sizeof n, "up_blocks.%d.upsamplers.0.conv", i);
            s->resample = conv(&b, n, ch, ch, 3);
        }
    }
    v->dec_norm_out = norm(&b, "conv_norm_out", ch);
    v->dec_out = conv(&b, "conv_out", ch, c->out_channels, 3);
    return b.fail ? sadm_error(SADM_ERR_NOMEM, "VAE: out of memory for the parameter table") : SADM_OK;
}

static void free_stages(stage_p *s, int n) {
    if (!s) return;
    for (int i = 0; i < n; i++) free(s[i].res);
    free(s);
}

static void free_buffers(sadm_vae *v) {
    for (int i = 0; i < 5; i++) {
        v->be->free(v->be, v->buf[i]);
        v->buf[i] = NULL;
    }
    v->buf_h = v->buf_w = 0;
}

void sadm_vae_free(sadm_vae *v) {
    if (!v) return;
    free_buffers(v);
    v->be->free(v->be, v->data);
    free_stages(v->down, v->cfg.num_blocks);
    free_stages(v->up, v->cfg.num_blocks);
    sadm_ptab_free(&v->tab);
    free(v);
}

static sadm_status allocate(const sadm_vae_config *cfg, sadm_vae **out) {
    *out = NULL;
    SADM_TRY(sadm_vae_config_check(cfg));
    sadm_vae *v = calloc(1, sizeof *v);
    if (!v) return sadm_error(SADM_ERR_NOMEM, "VAE: out of memory");
    v->cfg = *cfg;
    v->be = sadm_backend_cpu();
    sadm_status st = build_table(v);
    if (!st && !(v->data = sadm_calloc(v->tab.total, sizeof(float))))
        st = sadm_error(SADM_ERR_NOMEM, "VAE: out of memory for %zu parameters", v->tab.total);
    if (st) {
        sadm_vae_free(v);
        return st;
    }
    *out = v;
    return SADM_OK;
}

sadm_status sadm_vae_create(const sadm_vae_config *cfg, sadm_vae **out) {
    SADM_REQUIRE_PTR(cfg);
    SADM_REQUIRE_PTR(out);
    return allocate(cfg, out);
}

const sadm_vae_config *sadm_vae_get_config(const sadm_vae *v) { return v ? &v->cfg : NULL; }
size_t sadm_vae_num_params(const sadm_vae *v) { return v ? v->tab.count : 0; }
const sadm_param *sadm_vae_param(const sadm_vae *v, size_t i) { return v && i < v->tab.count ? &v->tab.items[i] : NULL; }
float *sadm_vae_param_data(sadm_vae *v) { return v && v->be->host_memory ? v->data : NULL; }
size_t sadm_vae_param_total(const sadm_vae *v) { return v ? v->tab.total : 0; }

sadm_status sadm_vae_to_backend(sadm_vae *v, sadm_backend *be) {
    SADM_REQUIRE_PTR(v);
    SADM_REQUIRE_PTR(be);
    if (be == v->be) return SADM_OK;
    free_buffers(v);
    SADM_TRY(sadm_backend_move(v->be, be, (void **)&v->data, SADM_DTYPE_F32, v->tab.total));
    v->be = be;
    return SADM_OK;
}

/* ------------------------------------------------------------------ weights */
/* diffusers renamed the attention's linears; the published sd-vae-ft-* files still carry
 * the old names (query, key, value, proj_attn), some as 1x1 convolutions. */
static const char *const OLD_ATTN_NAMES[][2] = {
    {"to_q.", "query."}, {"to_k.", "key."}, {"to_v.", "value."}, {"to_out.0.", "proj_attn."}};

static const sadm_tensor_info *find_tensor(const sadm_st_file *f, const char *name, char *used, size_t len) {
    snprintf(used, len, "%s", name);
    const sadm_tensor_info *t = sadm_st_find(f, name);
    if (t) return t;
    for (size_t i = 0; i < sizeof OLD_ATTN_NAMES / sizeof *OLD_ATTN_NAMES; i++) {
        const char *at = strstr(name, OLD_ATTN_NAMES[i][0]);
        if (!at || !strstr(name, ".attentions.")) continue;
        snprintf(used, len, "%.*s%s%s", (int)(at - name), name, OLD_ATTN_NAMES[i][1], at + strlen(OLD_ATTN_NAMES[i][0]));
        if ((t = sadm_st_find(f, used))) return t;
    }
    snprintf(used, len, "%s", name);
    return NULL;
}

static sadm_status read_weights(sadm_vae *v, const sadm_st_file *f, const char *path) {
    char used[300];
    size_t matched = 0;
    for (size_t i = 0; i < v->tab.count; i++) {
        const sadm_param *p = &v->tab.items[i];
        const sadm_tensor_info *t = find_tensor(f, p->name, used, sizeof used);
        if (!t)
            return sadm_error(SADM_ERR_FORMAT,
                              "%s: no tensor '%s': not a VAE of this configuration (%d blocks, latent channels %d)", path,
                              p->name, v->cfg.num_blocks, v->cfg.latent_channels);
        int64_t shape[4] = {p->shape[0], p->shape[1], 1, 1};
        /* an old attention linear stored as a 1x1 convolution */
        int as_conv = p->ndim == 2 && t->ndim == 4;
        SADM_TRY(sadm_st_read_f32(f, used, as_conv ? 4 : p->ndim, as_conv ? shape : p->shape, v->data + p->offset));
        matched++;
    }
    if (matched != sadm_st_count(f))
        for (size_t i = 0; i < sadm_st_count(f); i++) {
            const char *name = sadm_st_tensor(f, i)->name;
            int known = 0;
            for (size_t j = 0; j < v->tab.count && !known; j++) {
                const sadm_tensor_info *t = find_tensor(f, v->tab.items[j].name, used, sizeof used);
                known = t && !strcmp(t->name, name);
            }
            if (!known)
                return sadm_error(SADM_ERR_FORMAT,
                                  "%s: tensor '%s' is not a parameter of this VAE (%d blocks, layers_per_block %d, "
                                  "mid-block attention %s): the file is of another architecture or config", path, name,
                                  v->cfg.num_blocks, v->cfg.layers_per_block, v->cfg.mid_attention ? "on" : "off");
        }
    return SADM_OK;
}

/* ------------------------------------------------------------------ config files */
static sadm_status json_int(json_t *o, const char *where, const char *key, int have_default, int def, int *out) {
    json_t *j = json_object_get(o, key);
    if (!j || json_is_null(j)) {
        if (have_default) {
            *out = def;
            return SADM_OK;
        }
        return sadm_error(SADM_ERR_FORMAT, "%s: no \"%s\"", where, key);
    }
    if (!json_is_integer(j) || json_integer_value(j) < -1000000000 || json_integer_value(j) > 1000000000)
        return sadm_error(SADM_ERR_FORMAT, "%s: \"%s\" must be a whole number", where, key);
    *out = (int)json_integer_value(j);
    return SADM_OK;
}

static sadm_status json_bool(json_t *o, const char *where, const char *key, int def, int *out) {
    json_t *j = json_object_get(o, key);
    if (!j || json_is_null(j)) {
        *out = def;
        return SADM_OK;
    }
    if (!json_is_boolean(j)) return sadm_error(SADM_ERR_FORMAT, "%s: \"%s\" must be true or false", where, key);
    *out = json_is_true(j);
    return SADM_OK;
}

/* Every entry of a list of block types must be `want`. */
static sadm_status block_types(json_t *o, const char *where, const char *key, const char *want, int n) {
    json_t *j = json_object_get(o, key);
    if (!j) return SADM_OK;
    if (!json_is_array(j) || (int)json_array_size(j) != n)
        return sadm_error(SADM_ERR_FORMAT, "%s: \"%s\" must list %d block types, as block_out_channels does", where, key,
                          n);
    for (int i = 0; i < n; i++) {
        const char *s = json_string_value(json_array_get(j, (size_t)i));
        if (!s || strcmp(s, want))
            return sadm_error(SADM_ERR_FORMAT, "%s: \"%s\"[%d] is '%s'; only %s is supported (AutoencoderKL)", where, key,
                              i, s ? s : "(not a string)", want);
    }
    return SADM_OK;
}

sadm_status sadm_vae_config_from_json(const char *text, const char *where, sadm_vae_config *c) {
    SADM_REQUIRE_PTR(text);
    SADM_REQUIRE_PTR(c);
    json_error_t err;
    json_t *o = json_loads(text, 0, &err);
    if (!o) return sadm_error(SADM_ERR_FORMAT, "%s: not JSON (line %d: %s)", where, err.line, err.text);
    sadm_status st = SADM_OK;
    sadm_vae_config_default(c);
    const char *cls = json_string_value(json_object_get(o, "_class_name"));
    json_t *boc = json_object_get(o, "block_out_channels"), *sf = json_object_get(o, "scaling_factor");
    json_t *shift = json_object_get(o, "shift_factor");
    const char *act = json_string_value(json_object_get(o, "act_fn"));
    if (!json_is_object(o)) st = sadm_error(SADM_ERR_FORMAT, "%s: not a JSON object", where);
    else if (cls && strcmp(cls, "AutoencoderKL"))
        st = sadm_error(SADM_ERR_FORMAT, "%s: _class_name is '%s'; only AutoencoderKL (the SD VAE) is supported", where,
                        cls);
    else if (!json_is_array(boc) || json_array_size(boc) < 1 || json_array_size(boc) > SADM_VAE_MAX_BLOCKS)
        st = sadm_error(SADM_ERR_FORMAT, "%s: \"block_out_channels\" must be a list of 1 to %d channel counts", where,
                        SADM_VAE_MAX_BLOCKS);
    else if (act && strcmp(act, "silu"))
        st = sadm_error(SADM_ERR_FORMAT, "%s: act_fn '%s' is not supported (only silu)", where, act);
    else if (shift && !json_is_null(shift))
        st = sadm_error(SADM_ERR_FORMAT, "%s: a shift_factor (SD3/FLUX VAEs) is not supported", where);
    if (!st) {
        c->num_blocks = (int)json_array_size(boc);
        for (int i = 0; i < c->num_blocks && !st; i++) {
            json_t *e = json_array_get(boc, (size_t)i);
            if (!json_is_integer(e) || json_integer_value(e) < 1 || json_integer_value(e) > VAE_MAX_CHANNELS)
                st = sadm_error(SADM_ERR_FORMAT, "%s: block_out_channels[%d] must be a whole number in [1, %d]", where, i,
                                VAE_MAX_CHANNELS);
            else c->block_out_channels[i] = (int)json_integer_value(e);
        }
    }
    if (!st) st = json_int(o, where, "in_channels", 1, 3, &c->in_channels);
    if (!st) st = json_int(o, where, "out_channels", 1, 3, &c->out_channels);
    if (!st) st = json_int(o, where, "latent_channels", 1, 4, &c->latent_channels);
    if (!st) st = json_int(o, where, "layers_per_block", 1, 1, &c->layers_per_block);
    if (!st) st = json_int(o, where, "norm_num_groups", 1, 32, &c->norm_num_groups);
    if (!st) st = json_bool(o, where, "mid_block_add_attention", 1, &c->mid_attention);
    if (!st) st = json_bool(o, where, "use_quant_conv", 1, &c->quant_conv);
    if (!st) st = json_bool(o, where, "use_post_quant_conv", 1, &c->post_quant_conv);
    if (!st) st = block_types(o, where, "down_block_types", "DownEncoderBlock2D", c->num_blocks);
    if (!st) st = block_types(o, where, "up_block_types", "UpDecoderBlock2D", c->num_blocks);
    if (!st && sf && !json_is_null(sf)) {
        if (!json_is_number(sf)) st = sadm_error(SADM_ERR_FORMAT, "%s: \"scaling_factor\" must be a number", where);
        else c->scaling_factor = (float)json_number_value(sf);
    }
    json_decref(o);
    if (st) return st;
    st = sadm_vae_config_check(c);
    if (st) {
        char why[512];
        snprintf(why, sizeof why, "%s", sadm_last_error());
        return sadm_error(st, "%s: %s", where, why);
    }
    return SADM_OK;
}

static char *read_text(const char *path, size_t max) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    char *buf = malloc(max + 1);
    size_t n = buf ? fread(buf, 1, max + 1, f) : 0;
    fclose(f);
    if (!buf || n > max) {
        free(buf);
        return NULL;
    }
    buf[n] = 0;
    return buf;
}

static int is_dir(const char *p) {
    struct stat s;
    return stat(p, &s) == 0 && S_ISDIR(s.st_mode);
}

/* A diffusers folder (config.json + diffusion_pytorch_model.safetensors; also a pipeline
 * folder's vae/), or one safetensors file whose __metadata__ "config" is the config.json. */
sadm_status sadm_vae_load(const char *path, sadm_vae **out) {
    SADM_REQUIRE_PTR(path);
    SADM_REQUIRE_PTR(out);
    *out = NULL;
    char dir[4096], cfg_path[4200], st_path[4200];
    snprintf(dir, sizeof dir, "%s", path);
    char *text = NULL;
    if (is_dir(path)) {
        snprintf(cfg_path, sizeof cfg_path, "%s/config.json", dir);
        struct stat s;
        if (stat(cfg_path, &s) != 0) {
            char sub[4200];
            snprintf(sub, sizeof sub, "%s/vae/config.json", path);
            if (stat(sub, &s) == 0) snprintf(dir, sizeof dir, "%s/vae", path);
            snprintf(cfg_path, sizeof cfg_path, "%s/config.json", dir);
        }
        snprintf(st_path, sizeof st_path, "%s/diffusion_pytorch_model.safetensors", dir);
        if (!(text = read_text(cfg_path, 1 << 20)))
            return sadm_error(SADM_ERR_IO, "%s: a VAE folder needs config.json (diffusers' AutoencoderKL layout); cannot "
                              "read %s", path, cfg_path);
        if (stat(st_path, &s) != 0) {
            free(text);
            return sadm_error(SADM_ERR_IO, "%s: no diffusion_pytorch_model.safetensors beside config.json (a .bin "
                              "folder can be converted with diffusers' save_pretrained(safe_serialization=True))", dir);
        }
    } else {
        snprintf(st_path, sizeof st_path, "%s", path);
    }
    sadm_st_file *f;
    sadm_status st = sadm_st_open(st_path, &f);
    if (st) {
        free(text);
        return st;
    }
    const char *meta = sadm_st_metadata(f, "config");
    sadm_vae_config c;
    if (!text && !meta)
        st = sadm_error(SADM_ERR_FORMAT, "%s: no __metadata__ \"config\" (a VAE file carries diffusers' config.json "
                        "there); give the diffusers folder instead", st_path);
    if (!st) st = sadm_vae_config_from_json(text ? text : meta, text ? cfg_path : st_path, &c);
    free(text);
    sadm_vae *v = NULL;
    if (!st) {
        char desc[128];
        snprintf(desc, sizeof desc, "%d blocks, widest %d channels", c.num_blocks, c.block_out_channels[c.num_blocks - 1]);
        st = allocate(&c, &v);
        if (!st) st = sadm_model_size_check("VAE", v->tab.total, desc, f, st_path);
    }
    if (!st) st = read_weights(v, f, st_path);
    sadm_st_close(f);
    if (st) {
        sadm_vae_free(v);
        return st;
    }
    *out = v;
    return SADM_OK;
}

/* ------------------------------------------------------------------ forward */
typedef struct act {
    float *p;
    int c, h, w;
} act;

static inline float *P(sadm_vae *v, size_t idx) { return v->data + v->tab.items[idx].offset; }

static sadm_status run_conv(sadm_vae *v, const conv_p *c, const act *in, int stride, int extra, act *out) {
    int pad = stride == 1 ? c->k / 2 : 0;
    sadm_conv2d_shape s = {1, c->cin, in->h, in->w, c->cout, c->k, c->k, stride, stride, pad, pad, extra, extra};
    int ho, wo;
    SADM_TRY(sadm_conv2d_output_size(&s, &ho, &wo));
    SADM_OP(v->be, conv2d_forward, &s, in->p, P(v, c->w), P(v, c->b), out->p);
    out->c = c->cout, out->h = ho, out->w = wo;
    return SADM_OK;
}

/* GroupNorm then SiLU, in -> out (same shape) */
static sadm_status norm_silu(sadm_vae *v, const norm_p *n, const act *in, act *out) {
    size_t HW = (size_t)in->h * in->w;
    SADM_OP(v->be, group_norm_forward, 1, in->c, HW, v->cfg.norm_num_groups, in->p, P(v, n->w), P(v, n->b), VAE_GN_EPS,
            out->p, NULL, NULL);
    SADM_OP(v->be, silu_forward, (size_t)in->c * HW, out->p, out->p);
    out->c = in->c, out->h = in->h, out->w = in->w;
    return SADM_OK;
}

/* x <- x (or its 1x1 shortcut) + conv2(silu(gn2(conv1(silu(gn1(x)))))); A and B scratch */
static sadm_status run_resnet(sadm_vae *v, const resnet_p *r, act *x) {
    act a = {v->buf[1], 0, 0, 0}, b = {v->buf[2], 0, 0, 0};
    SADM_TRY(norm_silu(v, &r->n1, x, &a));
    SADM_TRY(run_conv(v, &r->c1, &a, 1, 0, &b));
    SADM_TRY(norm_silu(v, &r->n2, &b, &a));
    SADM_TRY(run_conv(v, &r->c2, &a, 1, 0, &b));
    size_t n = (size_t)b.c * b.h * b.w;
    if (r->shortcut.cout) {
        SADM_TRY(run_conv(v, &r->shortcut, x, 1, 0, &a));
        SADM_OP(v->be, add, n, a.p, b.p, x->p);
    } else {
        SADM_OP(v->be, add, n, x->p, b.p, x->p);
    }
    x->c = b.c;
    return SADM_OK;
}

/* x <- x + to_out(attention(q, k, v of group_norm(x))): one head over the H W positions */
static sadm_status run_attention(sadm_vae *v, const attn_p *at, act *x) {
    const int C = x->c, T = x->h * x->w;
    size_t n = (size_t)C * T;
    float *a = v->buf[1], *b = v->buf[2], *qkv3 = v->buf[3], *qkv = v->buf[4];
    SADM_OP(v->be, group_norm_forward, 1, C, (size_t)T, v->cfg.norm_num_groups, x->p, P(v, at->n.w), P(v, at->n.b),
            VAE_GN_EPS, a, NULL, NULL);
    SADM_OP(v->be, patchify, 1, C, x->h, x->w, 1, a, b); /* (C, H, W) -> tokens (T, C) */
    SADM_OP(v->be, linear_forward, T, C, C, b, P(v, at->q_w), P(v, at->q_b), qkv3);
    SADM_OP(v->be, linear_forward, T, C, C, b, P(v, at->k_w), P(v, at->k_b), qkv3 + n);
    SADM_OP(v->be, linear_forward, T, C, C, b, P(v, at->v_w), P(v, at->v_b), qkv3 + 2 * n);
    SADM_OP(v->be, merge_chunks, T, C, 3, qkv3, qkv); /* (T, 3, 1, C) as the attention takes it */
    SADM_OP(v->be, attention_forward, 1, T, 1, C, qkv, a, NULL);
    SADM_OP(v->be, linear_forward, T, C, C, a, P(v, at->o_w), P(v, at->o_b), b);
    SADM_OP(v->be, unpatchify, 1, C, x->h, x->w, 1, b, a);
    SADM_OP(v->be, add, n, x->p, a, x->p);
    return SADM_OK;
}

static sadm_status run_mid(sadm_vae *v, const mid_p *m, act *x) {
    SADM_TRY(run_resnet(v, &m->r0, x));
    if (v->cfg.mid_attention) SADM_TRY(run_attention(v, &m->attn, x));
    return run_resnet(v, &m->r1, x);
}

/* conv into A, then A becomes X (X the old buffer becomes A) */
static sadm_status conv_swap(sadm_vae *v, const conv_p *c, act *x, int stride, int extra) {
    act o = {v->buf[1], 0, 0, 0};
    SADM_TRY(run_conv(v, c, x, stride, extra, &o));
    v->buf[1] = x->p;
    v->buf[0] = o.p;
    *x = o;
    return SADM_OK;
}

/* the largest activation of one image, and the mid block's q, k, v, for an H x W image: at
 * resolution level i (H / 2^i) the encoder holds block i's width and block i-1's (a
 * block's first resnet), the decoder block i+1's (the up block that ends there) */
static void sizes(const sadm_vae_config *c, int H, int W, size_t *big, size_t *mid3) {
    size_t m = (size_t)(c->in_channels > c->out_channels ? c->in_channels : c->out_channels) * H * W;
    size_t h = (size_t)H, w = (size_t)W;
    const int nb = c->num_blocks;
    for (int i = 0; i < nb; i++, h /= 2, w /= 2)
        for (int j = i - 1; j <= i + 1; j++)
            if (j >= 0 && j < nb && (size_t)c->block_out_channels[j] * h * w > m) m = (size_t)c->block_out_channels[j] * h * w;
    h = (size_t)H >> (nb - 1), w = (size_t)W >> (nb - 1);
    if ((size_t)2 * c->latent_channels * h * w > m) m = (size_t)2 * c->latent_channels * h * w;
    *big = m;
    *mid3 = (size_t)3 * c->block_out_channels[nb - 1] * h * w;
}

static sadm_status ensure_buffers(sadm_vae *v, int H, int W) {
    if (v->buf_h == H && v->buf_w == W) return SADM_OK;
    free_buffers(v);
    size_t big, mid3;
    sizes(&v->cfg, H, W, &big, &mid3);
    if (mid3 > big) big = mid3;
    for (int i = 0; i < 5; i++)
        if (!(v->buf[i] = sadm_backend_floats(v->be, big, "VAE activations"))) {
            free_buffers(v);
            return SADM_ERR_NOMEM;
        }
    v->buf_floats = big;
    v->buf_h = H, v->buf_w = W;
    return SADM_OK;
}

static sadm_status check_image(const sadm_vae *v, int N, int H, int W, const char *what) {
    int f = sadm_vae_factor(&v->cfg);
    SADM_REQUIRE(N > 0 && H > 0 && W > 0, "VAE %s: N %d, H %d and W %d must be positive", what, N, H, W);
    SADM_REQUIRE(H <= VAE_MAX_SIDE && W <= VAE_MAX_SIDE, "VAE %s: %dx%d is larger than %d pixels a side", what, H, W,
                 VAE_MAX_SIDE);
    SADM_REQUIRE(H % f == 0 && W % f == 0, "VAE %s: images of %dx%d pixels; the VAE needs multiples of %d (its factor)",
                 what, H, W, f);
    return SADM_OK;
}

/* the image's latent size: each downsampling of an even side halves it */
sadm_status sadm_vae_encode(sadm_vae *v, int N, int H, int W, const float *x, float *mean, float *logvar) {
    SADM_REQUIRE_PTR(v);
    SADM_REQUIRE_PTR(x);
    SADM_TRY(check_image(v, N, H, W, "encode"));
    SADM_TRY(ensure_buffers(v, H, W));
    const int L = v->cfg.latent_channels, f = sadm_vae_factor(&v->cfg);
    const size_t in = (size_t)v->cfg.in_channels * H * W, lat = (size_t)L * (H / f) * (W / f);
    for (int n = 0; n < N; n++) {
        act X = {v->buf[0], v->cfg.in_channels, H, W};
        SADM_TRY(v->be->upload(v->be, X.p, x + (size_t)n * in, in * sizeof(float)));
        SADM_TRY(conv_swap(v, &v->enc_in, &X, 1, 0));
        for (int i = 0; i < v->cfg.num_blocks; i++) {
            const stage_p *s = &v->down[i];
            for (int j = 0; j < s->n_res; j++) SADM_TRY(run_resnet(v, &s->res[j], &X));
            if (s->resample.cout) SADM_TRY(conv_swap(v, &s->resample, &X, 2, 1));
        }
        SADM_TRY(run_mid(v, &v->enc_mid, &X));
        act A = {v->buf[1], 0, 0, 0};
        SADM_TRY(norm_silu(v, &v->enc_norm_out, &X, &A));
        v->buf[1] = X.p, v->buf[0] = A.p, X = A;
        SADM_TRY(conv_swap(v, &v->enc_out, &X, 1, 0));
        if (v->cfg.quant_conv) SADM_TRY(conv_swap(v, &v->quant, &X, 1, 0));
        /* moments: mean = the first L channels, logvar the next L, clamped to [-30, 20] as
         * diffusers' DiagonalGaussianDistribution does */
        if (mean) SADM_TRY(v->be->download(v->be, mean + (size_t)n * lat, X.p, lat * sizeof(float)));
        if (logvar) {
            float *lv = logvar + (size_t)n * lat;
            SADM_TRY(v->be->download(v->be, lv, X.p + lat, lat * sizeof(float)));
            for (size_t i = 0; i < lat; i++) lv[i] = lv[i] < -30.0f ? -30.0f : lv[i] > 20.0f ? 20.0f : lv[i];
        }
    }
    return SADM_OK;
}

sadm_status sadm_vae_decode(sadm_vae *v, int N, int h, int w, const float *z, float *x) {
    SADM_REQUIRE_PTR(v);
    SADM_REQUIRE_PTR(z);
    SADM_REQUIRE_PTR(x);
    const int f = sadm_vae_factor(&v->cfg), L = v->cfg.latent_channels;
    SADM_REQUIRE(N > 0 && h > 0 && w > 0 && h <= VAE_MAX_SIDE / f && w <= VAE_MAX_SIDE / f,
                 "VAE decode: N %d, latent %dx%d: sizes must be positive and at most %d a side", N, h, w, VAE_MAX_SIDE / f);
    const int H = h * f, W = w * f;
    SADM_TRY(ensure_buffers(v, H, W));
    const size_t lat = (size_t)L * h * w, out = (size_t)v->cfg.out_channels * H * W;
    for (int n = 0; n < N; n++) {
        act X = {v->buf[0], L, h, w};
        SADM_TRY(v->be->upload(v->be, X.p, z + (size_t)n * lat, lat * sizeof(float)));
        if (v->cfg.post_quant_conv) SADM_TRY(conv_swap(v, &v->post_quant, &X, 1, 0));
        SADM_TRY(conv_swap(v, &v->dec_in, &X, 1, 0));
        SADM_TRY(run_mid(v, &v->dec_mid, &X));
        for (int i = 0; i < v->cfg.num_blocks; i++) {
            const stage_p *s = &v->up[i];
            for (int j = 0; j < s->n_res; j++) SADM_TRY(run_resnet(v, &s->res[j], &X));
            if (s->resample.cout) {
                act A = {v->buf[1], X.c, 2 * X.h, 2 * X.w};
                SADM_OP(v->be, upsample_nearest_forward, 1, X.c, X.h, X.w, 2, X.p, A.p);
                v->buf[1] = X.p, v->buf[0] = A.p, X = A;
                SADM_TRY(conv_swap(v, &s->resample, &X, 1, 0));
            }
        }
        act A = {v->buf[1], 0, 0, 0};
        SADM_TRY(norm_silu(v, &v->dec_norm_out, &X, &A));
        v->buf[1] = X.p, v->buf[0] = A.p, X = A;
        SADM_TRY(conv_swap(v, &v->dec_out, &X, 1, 0));
        SADM_TRY(v->be->download(v->be, x + (size_t)n * out, X.p, out * sizeof(float)));
    }
    return SADM_OK;
}
