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
    float *w, *b;  /* folded: (cout, cin, kh, kw), (cout) */
} inc_conv;

struct sadm_inception {
    inc_conv conv[INC_MAX_CONVS];
    int nconv;
    float *fc_w, *fc_b; /* (1008, 2048), (1008) */
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

void sadm_inception_free(sadm_inception *m) {
    if (!m) return;
    for (int i = 0; i < m->nconv; i++) sadm_free(m->conv[i].w), sadm_free(m->conv[i].b);
    sadm_free(m->fc_w), sadm_free(m->fc_b);
    free(m);
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
    return st;
}

sadm_status sadm_inception_load(const char *path, sadm_inception **out) {
    SADM_REQUIRE_PTR(path);
    SADM_REQUIRE_PTR(out);
    *out = NULL;
    sadm_inception *m = calloc(1, sizeof *m);
    if (!m) return sadm_error(SADM_ERR_NOMEM, "%s: out of memory", path);
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
/* A batch's feature map. */
typedef struct fmap {
    float *x;
    int C, H, W;
} fmap;

static void fmap_free(fmap *f) {
    sadm_free(f->x);
    f->x = NULL;
}

static sadm_status fmap_alloc(fmap *f, int N, int C, int H, int W) {
    f->C = C, f->H = H, f->W = W;
    f->x = sadm_alloc((size_t)N * C * H * W * sizeof(float));
    return f->x ? SADM_OK : sadm_error(SADM_ERR_NOMEM, "Inception: out of memory for a %d×%d×%d×%d feature map", N, C, H, W);
}

static int find_conv(const sadm_inception *m, const char *block, const char *name) {
    char full[48];
    snprintf(full, sizeof full, "%s%s%s", block, *block ? "." : "", name);
    for (int i = 0; i < m->nconv; i++)
        if (!strcmp(m->conv[i].name, full)) return i;
    return -1;
}

/* y = relu(conv(x) + b) with the folded BatchNorm. */
static sadm_status conv_bn_relu(const sadm_inception *m, const char *block, const char *name, int N, const fmap *x, fmap *y) {
    const inc_conv *c = &m->conv[find_conv(m, block, name)];
    sadm_conv2d_shape s = {N, c->cin, x->H, x->W, c->cout, c->kh, c->kw, c->sh, c->sw, c->ph, c->pw};
    int Ho, Wo;
    sadm_status st = sadm_conv2d_output_size(&s, &Ho, &Wo);
    if (!st) st = fmap_alloc(y, N, c->cout, Ho, Wo);
    if (!st) st = sadm_conv2d_forward(&s, x->x, c->w, c->b, y->x);
    if (st) return st;
    size_t n = (size_t)N * c->cout * Ho * Wo;
    float *v = y->x;
    SADM_FOR_CHUNKS(n, i0, len) {
        for (size_t i = i0; i < i0 + len; i++) v[i] = v[i] > 0 ? v[i] : 0;
    }
    return SADM_OK;
}

static sadm_status pool(int N, const fmap *x, int k, int s, int p, sadm_pool_kind kind, fmap *y) {
    sadm_pool2d_shape ps = {N, x->C, x->H, x->W, k, k, s, s, p, p, kind, 0};
    int Ho, Wo;
    sadm_status st = sadm_pool2d_output_size(&ps, &Ho, &Wo);
    if (!st) st = fmap_alloc(y, N, x->C, Ho, Wo);
    if (!st) st = sadm_pool2d_forward(&ps, x->x, y->x);
    return st;
}

/* Concatenates branches along channels, freeing them. */
static sadm_status concat(int N, fmap *parts, int n, fmap *out) {
    int C = 0;
    for (int i = 0; i < n; i++) C += parts[i].C;
    sadm_status st = fmap_alloc(out, N, C, parts[0].H, parts[0].W);
    size_t HW = (size_t)parts[0].H * parts[0].W;
    for (int b = 0; !st && b < N; b++) {
        float *dst = out->x + (size_t)b * C * HW;
        for (int i = 0; i < n; i++) {
            memcpy(dst, parts[i].x + (size_t)b * parts[i].C * HW, (size_t)parts[i].C * HW * sizeof(float));
            dst += (size_t)parts[i].C * HW;
        }
    }
    for (int i = 0; i < n; i++) fmap_free(&parts[i]);
    return st;
}

#define TRY(call)                                                                                  \
    do {                                                                                           \
        if (!st) st = (call);                                                                      \
    } while (0)

/* A chain of convolutions starting from x; the result in *y. */
static sadm_status chain(const sadm_inception *m, const char *block, const char *const *names, int N, const fmap *x, fmap *y) {
    fmap cur = {0}, next = {0};
    sadm_status st = conv_bn_relu(m, block, names[0], N, x, &cur);
    for (int i = 1; names[i] && !st; i++) {
        st = conv_bn_relu(m, block, names[i], N, &cur, &next);
        fmap_free(&cur);
        cur = next, next.x = NULL;
    }
    if (st) fmap_free(&cur);
    *y = cur;
    return st;
}

static sadm_status block_a(const sadm_inception *m, const char *b, int N, const fmap *x, fmap *out) {
    fmap p[4] = {{0}}, pooled = {0};
    sadm_status st = SADM_OK;
    TRY(chain(m, b, (const char *[]){"branch1x1", NULL}, N, x, &p[0]));
    TRY(chain(m, b, (const char *[]){"branch5x5_1", "branch5x5_2", NULL}, N, x, &p[1]));
    TRY(chain(m, b, (const char *[]){"branch3x3dbl_1", "branch3x3dbl_2", "branch3x3dbl_3", NULL}, N, x, &p[2]));
    TRY(pool(N, x, 3, 1, 1, SADM_POOL_AVG, &pooled)); /* count_include_pad = 0: TensorFlow's average */
    TRY(chain(m, b, (const char *[]){"branch_pool", NULL}, N, &pooled, &p[3]));
    fmap_free(&pooled);
    TRY(concat(N, p, 4, out));
    for (int i = 0; i < 4; i++) fmap_free(&p[i]);
    return st;
}

static sadm_status block_b(const sadm_inception *m, int N, const fmap *x, fmap *out) {
    fmap p[3] = {{0}};
    sadm_status st = SADM_OK;
    TRY(chain(m, "Mixed_6a", (const char *[]){"branch3x3", NULL}, N, x, &p[0]));
    TRY(chain(m, "Mixed_6a", (const char *[]){"branch3x3dbl_1", "branch3x3dbl_2", "branch3x3dbl_3", NULL}, N, x, &p[1]));
    TRY(pool(N, x, 3, 2, 0, SADM_POOL_MAX, &p[2]));
    TRY(concat(N, p, 3, out));
    for (int i = 0; i < 3; i++) fmap_free(&p[i]);
    return st;
}

/* branch1x1 of a C block is where ADM's sFID features come from: keep it when asked. */
static sadm_status block_c(const sadm_inception *m, const char *b, int N, const fmap *x, fmap *out, float *spatial) {
    fmap p[4] = {{0}}, pooled = {0};
    sadm_status st = SADM_OK;
    TRY(chain(m, b, (const char *[]){"branch1x1", NULL}, N, x, &p[0]));
    if (!st && spatial) {
        /* the first 7 channels, flattened in TensorFlow's (h, w, c) order */
        size_t HW = (size_t)p[0].H * p[0].W;
        for (int n = 0; n < N; n++)
            for (size_t q = 0; q < HW; q++)
                for (int c = 0; c < 7; c++)
                    spatial[((size_t)n * HW + q) * 7 + c] = p[0].x[((size_t)n * p[0].C + c) * HW + q];
    }
    TRY(chain(m, b, (const char *[]){"branch7x7_1", "branch7x7_2", "branch7x7_3", NULL}, N, x, &p[1]));
    TRY(chain(m, b,
              (const char *[]){"branch7x7dbl_1", "branch7x7dbl_2", "branch7x7dbl_3", "branch7x7dbl_4", "branch7x7dbl_5", NULL},
              N, x, &p[2]));
    TRY(pool(N, x, 3, 1, 1, SADM_POOL_AVG, &pooled));
    TRY(chain(m, b, (const char *[]){"branch_pool", NULL}, N, &pooled, &p[3]));
    fmap_free(&pooled);
    TRY(concat(N, p, 4, out));
    for (int i = 0; i < 4; i++) fmap_free(&p[i]);
    return st;
}

static sadm_status block_d(const sadm_inception *m, int N, const fmap *x, fmap *out) {
    fmap p[3] = {{0}};
    sadm_status st = SADM_OK;
    TRY(chain(m, "Mixed_7a", (const char *[]){"branch3x3_1", "branch3x3_2", NULL}, N, x, &p[0]));
    TRY(chain(m, "Mixed_7a", (const char *[]){"branch7x7x3_1", "branch7x7x3_2", "branch7x7x3_3", "branch7x7x3_4", NULL}, N, x,
              &p[1]));
    TRY(pool(N, x, 3, 2, 0, SADM_POOL_MAX, &p[2]));
    TRY(concat(N, p, 3, out));
    for (int i = 0; i < 3; i++) fmap_free(&p[i]);
    return st;
}

/* E blocks: branches 3x3 and 3x3dbl end in a (1,3) and a (3,1) conv side by side. The
 * pool branch averages (without padding) in Mixed_7b and takes the maximum in Mixed_7c. */
static sadm_status block_e(const sadm_inception *m, const char *b, int N, const fmap *x, sadm_pool_kind kind, fmap *out) {
    fmap p[6] = {{0}}, mid = {0}, pooled = {0};
    sadm_status st = SADM_OK;
    TRY(chain(m, b, (const char *[]){"branch1x1", NULL}, N, x, &p[0]));
    TRY(chain(m, b, (const char *[]){"branch3x3_1", NULL}, N, x, &mid));
    TRY(conv_bn_relu(m, b, "branch3x3_2a", N, &mid, &p[1]));
    TRY(conv_bn_relu(m, b, "branch3x3_2b", N, &mid, &p[2]));
    fmap_free(&mid);
    TRY(chain(m, b, (const char *[]){"branch3x3dbl_1", "branch3x3dbl_2", NULL}, N, x, &mid));
    TRY(conv_bn_relu(m, b, "branch3x3dbl_3a", N, &mid, &p[3]));
    TRY(conv_bn_relu(m, b, "branch3x3dbl_3b", N, &mid, &p[4]));
    fmap_free(&mid);
    TRY(pool(N, x, 3, 1, 1, kind, &pooled));
    TRY(chain(m, b, (const char *[]){"branch_pool", NULL}, N, &pooled, &p[5]));
    fmap_free(&pooled);
    TRY(concat(N, p, 6, out));
    for (int i = 0; i < 6; i++) fmap_free(&p[i]);
    return st;
}

/* Input images (N, H, W, 3) uint8 to the network's 299×299 input in [-1, 1]. */
static void prepare(sadm_fid_mode mode, int N, int H, int W, const uint8_t *img, float *x) {
    const int S = 299;
    double sy = (double)H / S, sx = (double)W / S;
#pragma omp parallel for schedule(static)
    for (long nc = 0; nc < (long)N * 3; nc++) {
        int n = (int)(nc / 3), c = (int)(nc % 3);
        const uint8_t *src = img + (size_t)n * H * W * 3;
        float *dst = x + ((size_t)n * 3 + c) * S * S;
        for (int oy = 0; oy < S; oy++) {
            /* ADM (TensorFlow 1 ResizeBilinear, no half-pixel centres): src = dst * scale;
             * pytorch-fid (F.interpolate, align_corners False): (dst + 0.5) * scale - 0.5, >= 0 */
            double fy = mode == SADM_FID_ADM ? oy * sy : fmax((oy + 0.5) * sy - 0.5, 0.0);
            int y0 = (int)fy, y1 = y0 + 1 < H ? y0 + 1 : H - 1;
            float ly = (float)(fy - y0);
            for (int ox = 0; ox < S; ox++) {
                double fx = mode == SADM_FID_ADM ? ox * sx : fmax((ox + 0.5) * sx - 0.5, 0.0);
                int x0 = (int)fx, x1 = x0 + 1 < W ? x0 + 1 : W - 1;
                float lx = (float)(fx - x0);
                float a = src[((size_t)y0 * W + x0) * 3 + c], b = src[((size_t)y0 * W + x1) * 3 + c];
                float cc = src[((size_t)y1 * W + x0) * 3 + c], d = src[((size_t)y1 * W + x1) * 3 + c];
                float v;
                if (mode == SADM_FID_ADM) {
                    float top = a + (b - a) * lx, bottom = cc + (d - cc) * lx;
                    v = top + (bottom - top) * ly;
                    v = (v - 128.0f) / 128.0f;
                } else {
                    a /= 255.0f, b /= 255.0f, cc /= 255.0f, d /= 255.0f;
                    v = (1 - ly) * ((1 - lx) * a + lx * b) + ly * ((1 - lx) * cc + lx * d);
                    v = 2 * v - 1;
                }
                dst[(size_t)oy * S + ox] = v;
            }
        }
    }
}

const char *sadm_fid_mode_name(sadm_fid_mode mode) {
    return mode == SADM_FID_ADM ? "adm" : mode == SADM_FID_PYTORCH ? "pytorch-fid" : "?";
}

sadm_status sadm_inception_features(sadm_inception *m, sadm_fid_mode mode, int N, int H, int W, const uint8_t *images,
                                    float *pool_out, float *logits, float *spatial) {
    SADM_REQUIRE_PTR(m);
    SADM_REQUIRE_POSITIVE(N);
    SADM_REQUIRE(H >= 2 && W >= 2, "sadm_inception_features: images of %d×%d are too small", H, W);
    SADM_REQUIRE_PTR(images);
    SADM_REQUIRE(mode == SADM_FID_ADM || mode == SADM_FID_PYTORCH, "sadm_inception_features: unknown mode %d", (int)mode);
    fmap in = {0}, a = {0}, b = {0};
    sadm_status st = fmap_alloc(&in, N, 3, 299, 299);
    if (st) return st;
    prepare(mode, N, H, W, images, in.x);
#define STEP(call)                                                                                 \
    do {                                                                                           \
        if (!st) st = (call);                                                                      \
        fmap_free(&a);                                                                             \
        a = b, b.x = NULL;                                                                         \
    } while (0)
    a = in;
    STEP(conv_bn_relu(m, "", "Conv2d_1a_3x3", N, &a, &b));
    STEP(conv_bn_relu(m, "", "Conv2d_2a_3x3", N, &a, &b));
    STEP(conv_bn_relu(m, "", "Conv2d_2b_3x3", N, &a, &b));
    STEP(pool(N, &a, 3, 2, 0, SADM_POOL_MAX, &b));
    STEP(conv_bn_relu(m, "", "Conv2d_3b_1x1", N, &a, &b));
    STEP(conv_bn_relu(m, "", "Conv2d_4a_3x3", N, &a, &b));
    STEP(pool(N, &a, 3, 2, 0, SADM_POOL_MAX, &b));
    STEP(block_a(m, "Mixed_5b", N, &a, &b));
    STEP(block_a(m, "Mixed_5c", N, &a, &b));
    STEP(block_a(m, "Mixed_5d", N, &a, &b));
    STEP(block_b(m, N, &a, &b));
    STEP(block_c(m, "Mixed_6b", N, &a, &b, NULL));
    STEP(block_c(m, "Mixed_6c", N, &a, &b, NULL));
    STEP(block_c(m, "Mixed_6d", N, &a, &b, spatial));
    STEP(block_c(m, "Mixed_6e", N, &a, &b, NULL));
    STEP(block_d(m, N, &a, &b));
    STEP(block_e(m, "Mixed_7b", N, &a, SADM_POOL_AVG, &b));
    STEP(block_e(m, "Mixed_7c", N, &a, SADM_POOL_MAX, &b));
#undef STEP
    float *pooled = st ? NULL : sadm_alloc((size_t)N * 2048 * sizeof(float));
    if (!st && !pooled) st = sadm_error(SADM_ERR_NOMEM, "Inception: out of memory");
    if (!st) {
        /* adaptive average pool to 1×1: the mean over the 8×8 positions of each channel */
        size_t HW = (size_t)a.H * a.W;
#pragma omp parallel for schedule(static)
        for (long q = 0; q < (long)N * 2048; q++) {
            double s = 0;
            for (size_t i = 0; i < HW; i++) s += a.x[(size_t)q * HW + i];
            pooled[q] = (float)(s / (double)HW);
        }
        if (pool_out) memcpy(pool_out, pooled, (size_t)N * 2048 * sizeof(float));
        if (logits) st = sadm_linear_forward(N, 2048, 1008, pooled, m->fc_w, m->fc_b, logits);
    }
    sadm_free(pooled);
    fmap_free(&a);
    fmap_free(&b);
    return st;
}
