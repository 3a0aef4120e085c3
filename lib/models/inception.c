/* The FID Inception-v3: torchvision's Inception3 as pytorch-fid patches it (FIDInceptionA,
 * FIDInceptionC: average pooling without the padded zeros; FIDInceptionE_1 likewise;
 * FIDInceptionE_2: max pooling; 1008-way fc), forward only, on libsadm's conv2d and
 * pooling. Every BasicConv2d (conv without bias + BatchNorm eps 1e-3 + ReLU) has its
 * BatchNorm folded into the convolution at load time. Outputs: the 2048-d average-pool
 * features, the 1008 logits, and ADM's sFID spatial features. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "params.h"

#define INC_MAX_CONVS 100

typedef struct inc_conv {
    char name[48]; /* e.g. "Mixed_5b.branch1x1" */
    int cin, cout, kh, kw, sh, sw, ph, pw;
    float *w, *b;  /* folded, for NHWC im2col + GEMM: (kh, kw, cin, cout), (cout) */
} inc_conv;

/* Feature maps are NHWC: 1×1 convolutions are then one GEMM over the whole batch with no
 * copy, k×k ones copy runs of channels in im2col, and each branch writes its GEMM output
 * straight into its channels of the block's concatenation (ldc = the total). Buffers are
 * kept between calls (page faults of fresh 100 MB maps cost more than the pooling), which
 * makes a model not safe to use from two threads at once. */
#define INC_SLOTS 24
typedef struct inc_buffer {
    float *p;
    size_t cap; /* floats */
    int used;
} inc_buffer;

struct sadm_inception {
    sadm_backend *be; /* where the weights and the buffers live */
    inc_conv conv[INC_MAX_CONVS];
    int nconv;
    float *fc_w, *fc_b; /* (1008, 2048), (1008) */
    inc_buffer buf[INC_SLOTS];
    uint8_t *images;    /* the batch of images on the backend (when not host memory) */
    size_t images_cap;
};

/* ------------------------------------------------------------------ architecture */
static int add_conv(sadm_inception *m, const char *block, const char *name, int cin, int cout, int kh, int kw, int s,
                    int ph, int pw) {
    inc_conv *c = &m->conv[m->nconv];
    snprintf(c->name, sizeof c->name, "%s%s%s", block, *block ? "." : "", name);
    c->cin = cin, c->cout = cout, c->kh = kh, c->kw = kw, c->sh = c->sw = s, c->ph = ph, c->pw = pw;
    return m->nconv++;
}

/* The convolutions in forward order; the blocks' own order of branches decides the
 * channel order of their concatenations. */
static void build(sadm_inception *m) {
    add_conv(m, "", "Conv2d_1a_3x3", 3, 32, 3, 3, 2, 0, 0);
    add_conv(m, "", "Conv2d_2a_3x3", 32, 32, 3, 3, 1, 0, 0);
    add_conv(m, "", "Conv2d_2b_3x3", 32, 64, 3, 3, 1, 1, 1);
    add_conv(m, "", "Conv2d_3b_1x1", 64, 80, 1, 1, 1, 0, 0);
    add_conv(m, "", "Conv2d_4a_3x3", 80, 192, 3, 3, 1, 0, 0);
    static const struct {
        const char *name;
        int cin, pool;
    } A[] = {{"Mixed_5b", 192, 32}, {"Mixed_5c", 256, 64}, {"Mixed_5d", 288, 64}};
    for (int i = 0; i < 3; i++) {
        const char *b = A[i].name;
        int c = A[i].cin;
        add_conv(m, b, "branch1x1", c, 64, 1, 1, 1, 0, 0);
        add_conv(m, b, "branch5x5_1", c, 48, 1, 1, 1, 0, 0);
        add_conv(m, b, "branch5x5_2", 48, 64, 5, 5, 1, 2, 2);
        add_conv(m, b, "branch3x3dbl_1", c, 64, 1, 1, 1, 0, 0);
        add_conv(m, b, "branch3x3dbl_2", 64, 96, 3, 3, 1, 1, 1);
        add_conv(m, b, "branch3x3dbl_3", 96, 96, 3, 3, 1, 1, 1);
        add_conv(m, b, "branch_pool", c, A[i].pool, 1, 1, 1, 0, 0);
    }
    add_conv(m, "Mixed_6a", "branch3x3", 288, 384, 3, 3, 2, 0, 0);
    add_conv(m, "Mixed_6a", "branch3x3dbl_1", 288, 64, 1, 1, 1, 0, 0);
    add_conv(m, "Mixed_6a", "branch3x3dbl_2", 64, 96, 3, 3, 1, 1, 1);
    add_conv(m, "Mixed_6a", "branch3x3dbl_3", 96, 96, 3, 3, 2, 0, 0);
    static const struct {
        const char *name;
        int c7;
    } C[] = {{"Mixed_6b", 128}, {"Mixed_6c", 160}, {"Mixed_6d", 160}, {"Mixed_6e", 192}};
    for (int i = 0; i < 4; i++) {
        const char *b = C[i].name;
        int c7 = C[i].c7;
        add_conv(m, b, "branch1x1", 768, 192, 1, 1, 1, 0, 0);
        add_conv(m, b, "branch7x7_1", 768, c7, 1, 1, 1, 0, 0);
        add_conv(m, b, "branch7x7_2", c7, c7, 1, 7, 1, 0, 3);
        add_conv(m, b, "branch7x7_3", c7, 192, 7, 1, 1, 3, 0);
        add_conv(m, b, "branch7x7dbl_1", 768, c7, 1, 1, 1, 0, 0);
        add_conv(m, b, "branch7x7dbl_2", c7, c7, 7, 1, 1, 3, 0);
        add_conv(m, b, "branch7x7dbl_3", c7, c7, 1, 7, 1, 0, 3);
        add_conv(m, b, "branch7x7dbl_4", c7, c7, 7, 1, 1, 3, 0);
        add_conv(m, b, "branch7x7dbl_5", c7, 192, 1, 7, 1, 0, 3);
        add_conv(m, b, "branch_pool", 768, 192, 1, 1, 1, 0, 0);
    }
    add_conv(m, "Mixed_7a", "branch3x3_1", 768, 192, 1, 1, 1, 0, 0);
    add_conv(m, "Mixed_7a", "branch3x3_2", 192, 320, 3, 3, 2, 0, 0);
    add_conv(m, "Mixed_7a", "branch7x7x3_1", 768, 192, 1, 1, 1, 0, 0);
    add_conv(m, "Mixed_7a", "branch7x7x3_2", 192, 192, 1, 7, 1, 0, 3);
    add_conv(m, "Mixed_7a", "branch7x7x3_3", 192, 192, 7, 1, 1, 3, 0);
    add_conv(m, "Mixed_7a", "branch7x7x3_4", 192, 192, 3, 3, 2, 0, 0);
    static const struct {
        const char *name;
        int cin;
    } E[] = {{"Mixed_7b", 1280}, {"Mixed_7c", 2048}};
    for (int i = 0; i < 2; i++) {
        const char *b = E[i].name;
        int c = E[i].cin;
        add_conv(m, b, "branch1x1", c, 320, 1, 1, 1, 0, 0);
        add_conv(m, b, "branch3x3_1", c, 384, 1, 1, 1, 0, 0);
        add_conv(m, b, "branch3x3_2a", 384, 384, 1, 3, 1, 0, 1);
        add_conv(m, b, "branch3x3_2b", 384, 384, 3, 1, 1, 1, 0);
        add_conv(m, b, "branch3x3dbl_1", c, 448, 1, 1, 1, 0, 0);
        add_conv(m, b, "branch3x3dbl_2", 448, 384, 3, 3, 1, 1, 1);
        add_conv(m, b, "branch3x3dbl_3a", 384, 384, 1, 3, 1, 0, 1);
        add_conv(m, b, "branch3x3dbl_3b", 384, 384, 3, 1, 1, 1, 0);
        add_conv(m, b, "branch_pool", c, 192, 1, 1, 1, 0, 0);
    }
}

static void free_buffers(sadm_inception *m) {
    for (int i = 0; i < INC_SLOTS; i++) {
        m->be->free(m->be, m->buf[i].p);
        m->buf[i] = (inc_buffer){NULL, 0, 0};
    }
    m->be->free(m->be, m->images);
    m->images = NULL, m->images_cap = 0;
}

void sadm_inception_free(sadm_inception *m) {
    if (!m) return;
    for (int i = 0; i < m->nconv; i++) m->be->free(m->be, m->conv[i].w), m->be->free(m->be, m->conv[i].b);
    free_buffers(m);
    m->be->free(m->be, m->fc_w), m->be->free(m->be, m->fc_b);
    free(m);
}

sadm_backend *sadm_inception_backend(const sadm_inception *m) { return m ? m->be : NULL; }

/* The folded weights move; the cached buffers are dropped. A failure part way leaves
 * every weight on one backend or the other, and the model usable on neither: free it. */
sadm_status sadm_inception_to_backend(sadm_inception *m, sadm_backend *be) {
    SADM_REQUIRE_PTR(m);
    SADM_REQUIRE_PTR(be);
    if (be == m->be) return SADM_OK;
    free_buffers(m);
    sadm_backend *from = m->be;
    sadm_status st = SADM_OK;
    for (int i = 0; i < m->nconv && !st; i++) {
        inc_conv *c = &m->conv[i];
        size_t nw = (size_t)c->cout * c->cin * c->kh * c->kw;
        st = sadm_backend_move(from, be, (void **)&c->w, SADM_DTYPE_F32, nw);
        if (!st) st = sadm_backend_move(from, be, (void **)&c->b, SADM_DTYPE_F32, (size_t)c->cout);
    }
    if (!st) st = sadm_backend_move(from, be, (void **)&m->fc_w, SADM_DTYPE_F32, (size_t)1008 * 2048);
    if (!st) st = sadm_backend_move(from, be, (void **)&m->fc_b, SADM_DTYPE_F32, 1008);
    if (!st) m->be = be;
    return st;
}

/* ------------------------------------------------------------------ loading */
static sadm_status read_vec(const sadm_st_file *f, const char *path, const char *name, int n, float *dst) {
    int64_t shape[1] = {n};
    sadm_status st = sadm_st_read_f32(f, name, 1, shape, dst);
    if (st && !sadm_st_find(f, name))
        return sadm_error(SADM_ERR_FORMAT, "%s: no tensor '%s' (expected an FID Inception-v3 with pytorch-fid's names)", path,
                          name);
    return st;
}

/* conv weight and BatchNorm(gamma, beta, mean, var) -> w * gamma / sqrt(var + eps), beta - mean * gamma / sqrt(var + eps) */
static sadm_status load_conv(inc_conv *c, const sadm_st_file *f, const char *path) {
    char key[96];
    int64_t shape[4] = {c->cout, c->cin, c->kh, c->kw};
    size_t nw = (size_t)c->cout * c->cin * c->kh * c->kw;
    c->w = sadm_alloc(nw * sizeof(float));
    c->b = sadm_alloc((size_t)c->cout * sizeof(float));
    float *bn = malloc(4 * (size_t)c->cout * sizeof(float));
    if (!c->w || !c->b || !bn) {
        free(bn);
        return sadm_error(SADM_ERR_NOMEM, "%s: out of memory", path);
    }
    snprintf(key, sizeof key, "%s.conv.weight", c->name);
    sadm_status st = sadm_st_read_f32(f, key, 4, shape, c->w);
    if (st && !sadm_st_find(f, key))
        st = sadm_error(SADM_ERR_FORMAT, "%s: no tensor '%s' (expected an FID Inception-v3 with pytorch-fid's names)", path, key);
    static const char *const parts[4] = {"weight", "bias", "running_mean", "running_var"};
    for (int k = 0; k < 4 && !st; k++) {
        snprintf(key, sizeof key, "%s.bn.%s", c->name, parts[k]);
        st = read_vec(f, path, key, c->cout, bn + (size_t)k * c->cout);
    }
    if (!st) {
        size_t per = nw / (size_t)c->cout;
        for (int o = 0; o < c->cout; o++) {
            double var = bn[3 * c->cout + o];
            if (!(var >= 0)) {
                st = sadm_error(SADM_ERR_FORMAT, "%s: %s.bn.running_var[%d] is %g", path, c->name, o, var);
                break;
            }
            double scale = bn[o] / sqrt(var + 1e-3);
            for (size_t i = 0; i < per; i++) c->w[o * per + i] = (float)(c->w[o * per + i] * scale);
            c->b[o] = (float)(bn[c->cout + o] - bn[2 * c->cout + o] * scale);
        }
    }
    free(bn);
    /* (cout, cin, kh, kw) -> (kh, kw, cin, cout): the GEMM's B for NHWC im2col rows */
    float *t = st ? NULL : sadm_alloc(nw * sizeof(float));
    if (!st && !t) st = sadm_error(SADM_ERR_NOMEM, "%s: out of memory", path);
    if (!st) {
        for (int o = 0; o < c->cout; o++)
            for (int i = 0; i < c->cin; i++)
                for (int y = 0; y < c->kh; y++)
                    for (int x = 0; x < c->kw; x++)
                        t[(((size_t)y * c->kw + x) * c->cin + i) * c->cout + o] =
                            c->w[(((size_t)o * c->cin + i) * c->kh + y) * c->kw + x];
        sadm_free(c->w);
        c->w = t;
    }
    return st;
}

sadm_status sadm_inception_load(const char *path, sadm_inception **out) {
    SADM_REQUIRE_PTR(path);
    SADM_REQUIRE_PTR(out);
    *out = NULL;
    sadm_inception *m = calloc(1, sizeof *m);
    if (!m) return sadm_error(SADM_ERR_NOMEM, "%s: out of memory", path);
    m->be = sadm_backend_cpu(); /* loaded on the host; sadm_inception_to_backend moves it */
    build(m);
    sadm_st_file *f;
    sadm_status st = sadm_st_open(path, &f);
    for (int i = 0; !st && i < m->nconv; i++) st = load_conv(&m->conv[i], f, path);
    if (!st) {
        int64_t sw[2] = {1008, 2048};
        m->fc_w = sadm_alloc(1008 * 2048 * sizeof(float));
        m->fc_b = sadm_alloc(1008 * sizeof(float));
        if (!m->fc_w || !m->fc_b) st = sadm_error(SADM_ERR_NOMEM, "%s: out of memory", path);
        if (!st) st = sadm_st_read_f32(f, "fc.weight", 2, sw, m->fc_w);
        if (!st) st = read_vec(f, path, "fc.bias", 1008, m->fc_b);
    }
    if (f) sadm_st_close(f);
    if (st) {
        sadm_inception_free(m);
        return st;
    }
    *out = m;
    return SADM_OK;
}

/* ------------------------------------------------------------------ forward */
/* Channels [c0, c0 + C) of a batch of NHWC maps whose pixels are ld floats apart. */
typedef struct view {
    float *x;
    int H, W, C, ld;
} view;

static view sub(view v, int c0, int C) { return (view){v.x + c0, v.H, v.W, C, v.ld}; }

/* A buffer of at least `floats` from the model's cache (smallest free one that fits; else
 * a free slot is grown). */
static float *take(sadm_inception *m, size_t floats) {
    int best = -1, spare = -1;
    for (int i = 0; i < INC_SLOTS; i++) {
        if (m->buf[i].used) continue;
        if (m->buf[i].cap >= floats && (best < 0 || m->buf[i].cap < m->buf[best].cap)) best = i;
        if (spare < 0 || m->buf[i].cap < m->buf[spare].cap) spare = i;
    }
    if (best < 0 && spare >= 0) {
        m->be->free(m->be, m->buf[spare].p);
        m->buf[spare].cap = 0;
        if (!(m->buf[spare].p = m->be->alloc(m->be, SADM_DTYPE_F32, floats))) return NULL;
        m->buf[spare].cap = floats;
        best = spare;
    }
    if (best < 0) return NULL;
    m->buf[best].used = 1;
    return m->buf[best].p;
}

static void give(sadm_inception *m, float *p) {
    for (int i = 0; i < INC_SLOTS; i++)
        if (p && m->buf[i].p == p) m->buf[i].used = 0;
}

static sadm_status new_map(sadm_inception *m, int N, int H, int W, int C, view *v) {
    *v = (view){take(m, (size_t)N * H * W * C), H, W, C, C};
    return v->x ? SADM_OK : sadm_error(SADM_ERR_NOMEM, "Inception: out of memory for a %d×%d×%d×%d feature map", N, H, W, C);
}

static void out_size(const inc_conv *c, const view *x, int *Ho, int *Wo) {
    *Ho = (x->H + 2 * c->ph - c->kh) / c->sh + 1;
    *Wo = (x->W + 2 * c->pw - c->kw) / c->sw + 1;
}

/* y = relu(conv(x) + b) with the folded BatchNorm, into the view y (its channels of a
 * concatenation, or a map of its own). */
static sadm_status conv_into(sadm_inception *m, const inc_conv *c, int N, const view *x, const view *y) {
    sadm_nhwc_conv_shape s = {N, x->H, x->W, c->cin, c->cout, c->kh, c->kw, c->sh, c->sw, c->ph, c->pw, x->ld, y->ld};
    return m->be->ops->conv2d_nhwc_forward(&s, x->x, c->w, c->b, 1, y->x);
}

/* The same into a new map. */
static sadm_status conv_new(sadm_inception *m, const inc_conv *c, int N, const view *x, view *y) {
    int Ho, Wo;
    out_size(c, x, &Ho, &Wo);
    sadm_status st = new_map(m, N, Ho, Wo, c->cout, y);
    return st ? st : conv_into(m, c, N, x, y);
}

/* 3×3 pooling with stride s and padding p into the view y: the maximum, or the average of
 * the positions inside the image (count_include_pad = False, TensorFlow's average). */
static sadm_status pool_into(sadm_inception *m, int N, const view *x, int s, int p, sadm_pool_kind kind, const view *y) {
    sadm_nhwc_pool_shape ps = {N, x->H, x->W, x->C, 3, s, p, x->ld, y->ld, kind};
    return m->be->ops->pool2d_nhwc_forward(&ps, x->x, y->x);
}

static sadm_status pool_new(sadm_inception *m, int N, const view *x, int s, int p, sadm_pool_kind kind, view *y) {
    sadm_status st = new_map(m, N, (x->H + 2 * p - 3) / s + 1, (x->W + 2 * p - 3) / s + 1, x->C, y);
    return st ? st : pool_into(m, N, x, s, p, kind, y);
}

/* The blocks take their convolutions in the order build() added them: `next` walks it. */
typedef struct walk {
    sadm_inception *m;
    int next, N;
    sadm_status st;
} walk;

static const inc_conv *next_conv(walk *w) { return &w->m->conv[w->next++]; }

/* A chain of convolutions from x, the last into `out`, the others into maps of their own. */
static void chain_into(walk *w, int len, const view *x, view out) {
    view cur = *x, nxt;
    for (int i = 0; i < len && !w->st; i++) {
        const inc_conv *c = next_conv(w);
        if (i == len - 1) w->st = conv_into(w->m, c, w->N, &cur, &out);
        else w->st = conv_new(w->m, c, w->N, &cur, &nxt);
        if (i > 0) give(w->m, cur.x);
        if (i < len - 1) cur = nxt;
    }
}

/* A pooled copy of x (3×3, stride 1, padding 1) through branch_pool into `out`. */
static void pool_branch(walk *w, const view *x, sadm_pool_kind kind, view out) {
    view pooled;
    if (!w->st) w->st = pool_new(w->m, w->N, x, 1, 1, kind, &pooled);
    if (!w->st) {
        w->st = conv_into(w->m, next_conv(w), w->N, &pooled, &out);
        give(w->m, pooled.x);
    }
}

static void block_a(walk *w, const view *x, int pool_features, view *out) {
    if (!w->st) w->st = new_map(w->m, w->N, x->H, x->W, 224 + pool_features, out);
    if (w->st) return;
    chain_into(w, 1, x, sub(*out, 0, 64));
    chain_into(w, 2, x, sub(*out, 64, 64));
    chain_into(w, 3, x, sub(*out, 128, 96));
    pool_branch(w, x, SADM_POOL_AVG, sub(*out, 224, pool_features));
}

static void block_c(walk *w, const view *x, view *out) {
    if (!w->st) w->st = new_map(w->m, w->N, x->H, x->W, 768, out);
    if (w->st) return;
    chain_into(w, 1, x, sub(*out, 0, 192));
    chain_into(w, 3, x, sub(*out, 192, 192));
    chain_into(w, 5, x, sub(*out, 384, 192));
    pool_branch(w, x, SADM_POOL_AVG, sub(*out, 576, 192));
}

/* Grid reductions (Mixed_6a, Mixed_7a): two conv chains of len1 and len2 convolutions
 * (c1, c2 output channels), the last of each with stride 2, beside a 3×3 max-pool of
 * stride 2; the pooled input channels come last. */
static void block_reduce(walk *w, const view *x, int len1, int c1, int len2, int c2, view *out) {
    int H = (x->H - 3) / 2 + 1, W = (x->W - 3) / 2 + 1;
    if (!w->st) w->st = new_map(w->m, w->N, H, W, c1 + c2 + x->C, out);
    if (w->st) return;
    chain_into(w, len1, x, sub(*out, 0, c1));
    chain_into(w, len2, x, sub(*out, c1, c2));
    view pooled = sub(*out, c1 + c2, x->C);
    if (!w->st) w->st = pool_into(w->m, w->N, x, 2, 0, SADM_POOL_MAX, &pooled);
}

/* E blocks: branches 3x3 and 3x3dbl end in a (1,3) and a (3,1) conv side by side. The
 * pool branch averages (without padding) in Mixed_7b and takes the maximum in Mixed_7c. */
static void block_e(walk *w, const view *x, sadm_pool_kind kind, view *out) {
    if (!w->st) w->st = new_map(w->m, w->N, x->H, x->W, 2048, out);
    if (w->st) return;
    chain_into(w, 1, x, sub(*out, 0, 320));
    for (int k = 0; k < 2 && !w->st; k++) { /* 3x3: 1 conv, then 2a/2b; 3x3dbl: 2 convs, then 3a/3b */
        view mid, tmp;
        int c0 = 320 + 768 * k;
        if (k == 0) w->st = conv_new(w->m, next_conv(w), w->N, x, &mid);
        else {
            w->st = conv_new(w->m, next_conv(w), w->N, x, &tmp);
            if (!w->st) w->st = conv_new(w->m, next_conv(w), w->N, &tmp, &mid);
            give(w->m, tmp.x);
        }
        if (w->st) return;
        chain_into(w, 1, &mid, sub(*out, c0, 384));
        chain_into(w, 1, &mid, sub(*out, c0 + 384, 384));
        give(w->m, mid.x);
    }
    pool_branch(w, x, kind, sub(*out, 1856, 192));
}

const char *sadm_fid_mode_name(sadm_fid_mode mode) {
    return mode == SADM_FID_ADM ? "adm" : mode == SADM_FID_PYTORCH ? "pytorch-fid" : "?";
}

/* The edges: images come in from the host, features go out to it. */
sadm_status sadm_inception_features(sadm_inception *m, sadm_fid_mode mode, int N, int H, int W, const uint8_t *images,
                                    float *pool_out, float *logits, float *spatial) {
    SADM_REQUIRE_PTR(m);
    SADM_REQUIRE_POSITIVE(N);
    SADM_REQUIRE(H >= 2 && W >= 2, "sadm_inception_features: images of %d×%d are too small", H, W);
    SADM_REQUIRE_PTR(images);
    SADM_REQUIRE(mode == SADM_FID_ADM || mode == SADM_FID_PYTORCH, "sadm_inception_features: unknown mode %d", (int)mode);
    sadm_backend *be = m->be;
    walk w = {m, 0, N, SADM_OK};
    for (int i = 0; i < INC_SLOTS; i++) m->buf[i].used = 0; /* whatever a failed call left taken */
    const uint8_t *img = images;
    size_t img_bytes = (size_t)N * H * W * 3;
    if (!be->host_memory) {
        if (img_bytes > m->images_cap) {
            be->free(be, m->images);
            m->images_cap = 0;
            if (!(m->images = be->alloc(be, SADM_DTYPE_U8, img_bytes)))
                return sadm_error(SADM_ERR_NOMEM, "Inception: out of memory for %d images of %d×%d", N, H, W);
            m->images_cap = img_bytes;
        }
        SADM_TRY(be->upload(be, m->images, images, img_bytes));
        img = m->images;
    }
    view a, b;
    w.st = new_map(m, N, SADM_FID_SIZE, SADM_FID_SIZE, 3, &a);
    if (w.st) return w.st;
    if ((w.st = be->ops->fid_resize(mode, N, H, W, img, a.x))) return w.st;
    /* each step makes b from a, then b becomes a */
#define STEP(call)                                                                                 \
    do {                                                                                           \
        b.x = NULL;                                                                                \
        if (!w.st) call;                                                                           \
        give(m, a.x);                                                                              \
        a = b;                                                                                     \
    } while (0)
    STEP(w.st = conv_new(m, next_conv(&w), N, &a, &b)); /* Conv2d_1a_3x3 */
    STEP(w.st = conv_new(m, next_conv(&w), N, &a, &b)); /* Conv2d_2a_3x3 */
    STEP(w.st = conv_new(m, next_conv(&w), N, &a, &b)); /* Conv2d_2b_3x3 */
    STEP(w.st = pool_new(m, N, &a, 2, 0, SADM_POOL_MAX, &b));
    STEP(w.st = conv_new(m, next_conv(&w), N, &a, &b)); /* Conv2d_3b_1x1 */
    STEP(w.st = conv_new(m, next_conv(&w), N, &a, &b)); /* Conv2d_4a_3x3 */
    STEP(w.st = pool_new(m, N, &a, 2, 0, SADM_POOL_MAX, &b));
    STEP(block_a(&w, &a, 32, &b)); /* Mixed_5b */
    STEP(block_a(&w, &a, 64, &b)); /* Mixed_5c */
    STEP(block_a(&w, &a, 64, &b)); /* Mixed_5d */
    STEP(block_reduce(&w, &a, 1, 384, 3, 96, &b)); /* Mixed_6a */
    STEP(block_c(&w, &a, &b));     /* Mixed_6b */
    STEP(block_c(&w, &a, &b));     /* Mixed_6c */
    b.x = NULL;
    if (!w.st) block_c(&w, &a, &b); /* Mixed_6d: ADM's sFID features come from its branch1x1 */
    float *sp = NULL;
    size_t sp_floats = (size_t)N * b.H * b.W * 7;
    if (!w.st && spatial) {
        /* the first 7 channels, flattened in TensorFlow's (h, w, c) order: NHWC already */
        sp = be->host_memory ? spatial : take(m, sp_floats);
        if (!sp) w.st = sadm_error(SADM_ERR_NOMEM, "Inception: out of memory");
        if (!w.st) w.st = be->ops->copy_channels((size_t)N * b.H * b.W, 7, b.x, b.ld, sp, 7);
    }
    give(m, a.x);
    a = b;
    STEP(block_c(&w, &a, &b));                /* Mixed_6e */
    STEP(block_reduce(&w, &a, 2, 320, 4, 192, &b)); /* Mixed_7a */
    STEP(block_e(&w, &a, SADM_POOL_AVG, &b)); /* Mixed_7b */
    STEP(block_e(&w, &a, SADM_POOL_MAX, &b)); /* Mixed_7c */
#undef STEP
    if (!w.st && w.next != m->nconv)
        w.st = sadm_error(SADM_ERR_ARG, "Inception: the forward used %d of %d convolutions", w.next, m->nconv);
    float *pooled = w.st ? NULL : take(m, (size_t)N * 2048);
    float *lg = w.st || !logits ? NULL : be->host_memory ? logits : take(m, (size_t)N * 1008);
    if (!w.st && (!pooled || (logits && !lg))) w.st = sadm_error(SADM_ERR_NOMEM, "Inception: out of memory");
    /* adaptive average pool to 1×1: the mean over the 8×8 positions of each channel; the
     * fc layer as dot products in double, so that logits do not depend on the batching */
    if (!w.st) w.st = be->ops->mean_pixels_nhwc(N, a.H * a.W, 2048, a.ld, a.x, pooled);
    if (!w.st && lg) w.st = be->ops->linear_forward_exact(N, 2048, 1008, pooled, m->fc_w, m->fc_b, lg);
    if (!w.st && pool_out) w.st = be->download(be, pool_out, pooled, (size_t)N * 2048 * sizeof(float));
    if (!w.st && lg && lg != logits) w.st = be->download(be, logits, lg, (size_t)N * 1008 * sizeof(float));
    if (!w.st && sp && sp != spatial) w.st = be->download(be, spatial, sp, sp_floats * sizeof(float));
    if (lg != logits) give(m, lg);
    if (sp != spatial) give(m, sp);
    give(m, pooled);
    give(m, a.x);
    return w.st;
}
