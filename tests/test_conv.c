/* Convolution, patch layouts and pooling against direct loops in double, and their
 * backwards against finite differences. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"

static double *naive_conv(const sadm_conv2d_shape *s, const float *x, const float *w, const float *b, int Ho, int Wo) {
    double *y = calloc((size_t)s->N * s->K * Ho * Wo, sizeof(double));
    for (int n = 0; n < s->N; n++)
        for (int k = 0; k < s->K; k++)
            for (int oy = 0; oy < Ho; oy++)
                for (int ox = 0; ox < Wo; ox++) {
                    double acc = b ? b[k] : 0;
                    for (int c = 0; c < s->C; c++)
                        for (int i = 0; i < s->kh; i++)
                            for (int j = 0; j < s->kw; j++) {
                                int iy = oy * s->sh - s->ph + i, ix = ox * s->sw - s->pw + j;
                                if (iy < 0 || iy >= s->H || ix < 0 || ix >= s->W) continue;
                                acc += (double)w[((k * s->C + c) * s->kh + i) * s->kw + j] *
                                       x[(((size_t)n * s->C + c) * s->H + iy) * s->W + ix];
                            }
                    y[(((size_t)n * s->K + k) * Ho + oy) * Wo + ox] = acc;
                }
    return y;
}

typedef struct {
    sadm_conv2d_shape s;
    float *x, *w, *b;
} conv_ctx;

static void conv_forward(void *p, float *out) {
    conv_ctx *c = p;
    sadm_conv2d_forward(&c->s, c->x, c->w, c->b, out);
}

START_TEST(test_conv2d) {
    static const sadm_conv2d_shape cases[] = {
        /* N C H W K kh kw sh sw ph pw eh ew */
        {1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0}, {2, 3, 7, 5, 4, 3, 3, 1, 1, 1, 1, 0, 0}, {1, 2, 9, 9, 3, 3, 3, 2, 2, 0, 0, 0, 0},
        {2, 3, 8, 8, 5, 4, 4, 4, 4, 0, 0, 0, 0}, {1, 4, 6, 7, 3, 1, 1, 1, 1, 0, 0, 0, 0}, {1, 2, 10, 6, 2, 1, 7, 1, 1, 0, 3, 0, 0},
        {1, 2, 10, 6, 2, 7, 1, 1, 1, 3, 0, 0, 0}, {1, 3, 17, 17, 2, 3, 3, 2, 2, 1, 1, 0, 0},
        /* diffusers' downsampling: pad (0, 1, 0, 1), 3x3 stride 2; odd and even sizes */
        {2, 3, 8, 10, 4, 3, 3, 2, 2, 0, 0, 1, 1}, {1, 2, 7, 9, 3, 3, 3, 2, 2, 0, 0, 1, 1},
        {1, 2, 5, 6, 2, 3, 2, 1, 2, 1, 0, 2, 1}};
    for (size_t t = 0; t < sizeof cases / sizeof cases[0]; t++) {
        conv_ctx c = {cases[t], NULL, NULL, NULL};
        int Ho, Wo;
        TU_OK(sadm_conv2d_output_size(&c.s, &Ho, &Wo));
        size_t nx = (size_t)c.s.N * c.s.C * c.s.H * c.s.W, nw = (size_t)c.s.K * c.s.C * c.s.kh * c.s.kw;
        size_t ny = (size_t)c.s.N * c.s.K * Ho * Wo;
        c.x = tu_uniform(nx, 1 + t, -1, 1), c.w = tu_uniform(nw, 2 + t, -1, 1), c.b = tu_uniform(c.s.K, 3, -1, 1);
        float *y = tu_alloc(ny), *dy = tu_uniform(ny, 4, -1, 1);
        double *ref = naive_conv(&c.s, c.x, c.w, c.b, Ho, Wo);
        TU_OK(sadm_conv2d_forward(&c.s, c.x, c.w, c.b, y));
        tu_assert_close_d("conv2d forward", y, ref, ny, 1e-5, 1e-5);
        float *dx = tu_alloc(nx), *dw = tu_alloc(nw), *db = tu_alloc(c.s.K);
        TU_OK(sadm_conv2d_backward(&c.s, c.x, c.w, dy, dx, dw, db));
        tu_check_grad("conv2d dx", conv_forward, &c, c.x, nx, dx, dy, ny, 1e-2f, 2e-3);
        tu_check_grad("conv2d dw", conv_forward, &c, c.w, nw, dw, dy, ny, 1e-2f, 2e-3);
        tu_check_grad("conv2d db", conv_forward, &c, c.b, c.s.K, db, dy, ny, 1e-2f, 2e-3);
        free(c.x), free(c.w), free(c.b), free(y), free(dy), free(ref), free(dx), free(dw), free(db);
    }
}
END_TEST

/* an image whose column matrix exceeds one band (32 MB, set here; 256 MB by default):
 * several bands, the last shorter */
START_TEST(test_conv2d_bands) {
    setenv("SADM_CONV_BAND_MB", "32", 1);
    sadm_conv2d_shape s = {1, 64, 131, 120, 3, 3, 3, 1, 1, 1, 1, 0, 0};
    int Ho, Wo;
    TU_OK(sadm_conv2d_output_size(&s, &Ho, &Wo));
    ck_assert_msg((size_t)64 * 9 * Ho * Wo * sizeof(float) > (32u << 20), "the case must need several bands");
    size_t nx = (size_t)64 * 131 * 120, nw = (size_t)3 * 64 * 9, ny = (size_t)3 * Ho * Wo;
    float *x = tu_uniform(nx, 5, -1, 1), *w = tu_uniform(nw, 6, -1, 1), *b = tu_uniform(3, 7, -1, 1), *y = tu_alloc(ny);
    double *ref = naive_conv(&s, x, w, b, Ho, Wo);
    TU_OK(sadm_conv2d_forward(&s, x, w, b, y));
    /* 576 products of |x w| <= 1 per output: float sums stray by ~1e-5 */
    tu_assert_close_d("conv2d forward in bands", y, ref, ny, 1e-5, 1e-4);
    free(x), free(w), free(b), free(y), free(ref);
}
END_TEST

/* the output size with extra padding, by hand: (8 + 1 - 3)/2 + 1 = 4, (7 + 1 - 3)/2 + 1 = 3 */
START_TEST(test_conv2d_extra_padding_size) {
    sadm_conv2d_shape s = {1, 1, 8, 7, 1, 3, 3, 2, 2, 0, 0, 1, 1};
    int Ho, Wo;
    TU_OK(sadm_conv2d_output_size(&s, &Ho, &Wo));
    ck_assert_int_eq(Ho, 4);
    ck_assert_int_eq(Wo, 3);
    s.eh = -1;
    ck_assert_int_eq(sadm_conv2d_output_size(&s, &Ho, &Wo), SADM_ERR_ARG);
    /* a 2x2 input padded to 3x3 fits a 3x3 kernel only with the extra row and column */
    sadm_conv2d_shape t = {1, 1, 2, 2, 1, 3, 3, 1, 1, 0, 0, 1, 1};
    TU_OK(sadm_conv2d_output_size(&t, &Ho, &Wo));
    ck_assert(Ho == 1 && Wo == 1);
    t.eh = 0;
    ck_assert_int_eq(sadm_conv2d_output_size(&t, &Ho, &Wo), SADM_ERR_ARG);
}
END_TEST

/* nearest upsampling against the definition, its backward against finite differences */
typedef struct {
    int N, C, H, W, s;
    float *x;
} up_ctx;

static void up_forward(void *p, float *out) {
    up_ctx *c = p;
    sadm_upsample_nearest_forward(c->N, c->C, c->H, c->W, c->s, c->x, out);
}

START_TEST(test_upsample_nearest) {
    static const int cases[][5] = {{1, 1, 1, 1, 2}, {2, 3, 5, 7, 2}, {1, 2, 4, 3, 3}, {1, 1, 3, 2, 1}};
    for (size_t t = 0; t < sizeof cases / sizeof *cases; t++) {
        up_ctx c = {cases[t][0], cases[t][1], cases[t][2], cases[t][3], cases[t][4], NULL};
        int Ho = c.H * c.s, Wo = c.W * c.s;
        size_t nx = (size_t)c.N * c.C * c.H * c.W, ny = (size_t)c.N * c.C * Ho * Wo;
        c.x = tu_uniform(nx, 30 + t, -1, 1);
        float *y = tu_alloc(ny), *dy = tu_uniform(ny, 31 + t, -1, 1), *dx = tu_uniform(nx, 32, -1, 1);
        float *dx0 = tu_copy(dx, nx);
        TU_OK(sadm_upsample_nearest_forward(c.N, c.C, c.H, c.W, c.s, c.x, y));
        for (int nc = 0; nc < c.N * c.C; nc++)
            for (int i = 0; i < Ho; i++)
                for (int j = 0; j < Wo; j++)
                    ck_assert_msg(y[((size_t)nc * Ho + i) * Wo + j] == c.x[((size_t)nc * c.H + i / c.s) * c.W + j / c.s],
                                  "case %zu: y[%d, %d, %d]", t, nc, i, j);
        TU_OK(sadm_upsample_nearest_backward(c.N, c.C, c.H, c.W, c.s, dy, dx));
        /* the backward adds: compare dx - dx0 with finite differences */
        for (size_t i = 0; i < nx; i++) dx[i] -= dx0[i];
        tu_check_grad("upsample dx", up_forward, &c, c.x, nx, dx, dy, ny, 1e-2f, 1e-3);
        free(c.x), free(y), free(dy), free(dx), free(dx0);
    }
    ck_assert_int_eq(sadm_upsample_nearest_forward(1, 1, 2, 2, 0, (float[4]){0}, (float[4]){0}), SADM_ERR_ARG);
}
END_TEST

/* patchify followed by a linear layer is the stride-p convolution (patch embedding) */
START_TEST(test_patchify_is_patch_conv) {
    int B = 2, C = 3, H = 8, W = 12, p = 4, D = 5, T = (H / p) * (W / p), F = C * p * p;
    float *x = tu_uniform((size_t)B * C * H * W, 5, -1, 1), *w = tu_uniform((size_t)D * F, 6, -1, 1);
    float *tok = tu_alloc((size_t)B * T * F), *emb = tu_alloc((size_t)B * T * D), *conv = tu_alloc((size_t)B * D * T);
    TU_OK(sadm_patchify(B, C, H, W, p, x, tok));
    TU_OK(sadm_linear_forward(B * T, F, D, tok, w, NULL, emb));
    sadm_conv2d_shape s = {B, C, H, W, D, p, p, p, p, 0, 0, 0, 0};
    TU_OK(sadm_conv2d_forward(&s, x, w, NULL, conv));
    for (int b = 0; b < B; b++)
        for (int t = 0; t < T; t++)
            for (int d = 0; d < D; d++) {
                float a = emb[((size_t)b * T + t) * D + d], r = conv[((size_t)b * D + d) * T + t];
                ck_assert_msg(fabsf(a - r) <= 1e-5f * (1 + fabsf(r)), "patch embedding b%d t%d d%d: %g vs %g", b, t, d, a, r);
            }
    /* patchify backward is its exact inverse permutation */
    float *dx = tu_alloc((size_t)B * C * H * W);
    TU_OK(sadm_patchify_backward(B, C, H, W, p, tok, dx));
    tu_assert_same("patchify backward", dx, x, (size_t)B * C * H * W);
    free(x), free(w), free(tok), free(emb), free(conv), free(dx);
}
END_TEST

/* DiT's unpatchify: x.reshape(N, h, w, p, p, c) then einsum('nhwpqc->nchpwq'). */
START_TEST(test_unpatchify_layout) {
    int B = 2, C = 3, H = 6, W = 4, p = 2, gh = H / p, gw = W / p, T = gh * gw, F = p * p * C;
    float *tok = tu_uniform((size_t)B * T * F, 9, -1, 1), *x = tu_alloc((size_t)B * C * H * W);
    TU_OK(sadm_unpatchify(B, C, H, W, p, tok, x));
    for (int n = 0; n < B; n++)
        for (int hh = 0; hh < gh; hh++)
            for (int ww = 0; ww < gw; ww++)
                for (int pp = 0; pp < p; pp++)
                    for (int q = 0; q < p; q++)
                        for (int c = 0; c < C; c++) {
                            float src = tok[((((size_t)n * gh + hh) * gw + ww) * p + pp) * p * C + q * C + c];
                            float dst = x[(((size_t)n * C + c) * H + hh * p + pp) * W + ww * p + q];
                            ck_assert_float_eq(src, dst);
                        }
    float *back = tu_alloc((size_t)B * T * F);
    TU_OK(sadm_unpatchify_backward(B, C, H, W, p, x, back));
    tu_assert_same("unpatchify backward", back, tok, (size_t)B * T * F);
    free(tok), free(x), free(back);
}
END_TEST

/* PyTorch's pooling, written directly from its documented definition. */
static double naive_pool_at(const sadm_pool2d_shape *s, const float *plane, int oy, int ox) {
    int ys = oy * s->sh - s->ph, xs = ox * s->sw - s->pw;
    double m = -INFINITY, sum = 0;
    int count = 0;
    for (int i = 0; i < s->kh; i++)
        for (int j = 0; j < s->kw; j++) {
            int y = ys + i, x = xs + j;
            int in_pad = y < s->H + s->ph && x < s->W + s->pw; /* padded area, for the divisor */
            if (y < 0 || y >= s->H || x < 0 || x >= s->W) {
                if (s->count_include_pad && in_pad) count++;
                continue;
            }
            m = fmax(m, plane[y * s->W + x]);
            sum += plane[y * s->W + x];
            count++;
        }
    return s->kind == SADM_POOL_MAX ? m : sum / count;
}

typedef struct {
    sadm_pool2d_shape s;
    float *x;
} pool_ctx;

static void pool_forward(void *p, float *out) {
    pool_ctx *c = p;
    sadm_pool2d_forward(&c->s, c->x, out);
}

START_TEST(test_pooling) {
    static const sadm_pool2d_shape cases[] = {
        /* N C H W kh kw sh sw ph pw kind include_pad */
        {1, 2, 7, 7, 3, 3, 1, 1, 1, 1, SADM_POOL_AVG, 0}, {1, 2, 7, 7, 3, 3, 1, 1, 1, 1, SADM_POOL_AVG, 1},
        {2, 3, 8, 9, 3, 3, 2, 2, 0, 0, SADM_POOL_MAX, 0}, {1, 1, 9, 9, 3, 3, 2, 2, 1, 1, SADM_POOL_MAX, 0},
        {1, 2, 8, 8, 8, 8, 1, 1, 0, 0, SADM_POOL_AVG, 0}, {1, 1, 5, 6, 2, 3, 2, 3, 1, 1, SADM_POOL_AVG, 1}};
    for (size_t t = 0; t < sizeof cases / sizeof cases[0]; t++) {
        pool_ctx c = {cases[t], NULL};
        int Ho, Wo;
        TU_OK(sadm_pool2d_output_size(&c.s, &Ho, &Wo));
        size_t nx = (size_t)c.s.N * c.s.C * c.s.H * c.s.W, ny = (size_t)c.s.N * c.s.C * Ho * Wo;
        c.x = tu_uniform(nx, 20 + t, -1, 1);
        float *y = tu_alloc(ny), *dy = tu_uniform(ny, 21, -1, 1), *dx = tu_alloc(nx);
        double *ref = malloc(ny * sizeof(double));
        for (int pl = 0; pl < c.s.N * c.s.C; pl++)
            for (int oy = 0; oy < Ho; oy++)
                for (int ox = 0; ox < Wo; ox++)
                    ref[((size_t)pl * Ho + oy) * Wo + ox] = naive_pool_at(&c.s, c.x + (size_t)pl * c.s.H * c.s.W, oy, ox);
        TU_OK(sadm_pool2d_forward(&c.s, c.x, y));
        tu_assert_close_d("pool forward", y, ref, ny, 1e-6, 1e-7);
        TU_OK(sadm_pool2d_backward(&c.s, c.x, dy, dx));
        /* max pooling: inputs are distinct, so a small step does not move the maximum */
        tu_check_grad("pool backward", pool_forward, &c, c.x, nx, dx, dy, ny, 1e-3f, 1e-2);
        free(c.x), free(y), free(dy), free(dx), free(ref);
    }
}
END_TEST

int main(void) {
    Suite *s = suite_create("conv");
    TCase *tc = tcase_create("conv");
    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, test_conv2d);
    tcase_add_test(tc, test_conv2d_extra_padding_size);
    tcase_add_test(tc, test_conv2d_bands);
    tcase_add_test(tc, test_upsample_nearest);
    tcase_add_test(tc, test_patchify_is_patch_conv);
    tcase_add_test(tc, test_unpatchify_layout);
    tcase_add_test(tc, test_pooling);
    suite_add_tcase(s, tc);
    return tu_run(s);
}
