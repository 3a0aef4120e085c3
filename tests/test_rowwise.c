/* Row-wise and elementwise operators: each kernel set against the scalar reference on
 * awkward sizes, the scalar reference against double-precision formulas, every backward
 * against finite differences, and NaN propagation. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"

/* Tolerances: vector sets use polynomial exp (about 2 ulp) and other summation orders. */
#define RTOL_ISA 2e-5
#define ATOL_ISA 2e-6

/* ---------------------------------------------------------------- gelu / silu */
static double gelu_d(double x) { return 0.5 * x * (1.0 + tanh(0.7978845608028654 * (x + 0.044715 * x * x * x))); }
static double silu_d(double x) { return x / (1.0 + exp(-x)); }

START_TEST(test_activations_vs_double) {
    size_t n = 1000;
    float *x = tu_uniform(n, 1, -9.0f, 9.0f), *y = tu_alloc(n);
    double *ref = malloc(n * sizeof(double));
    for (const char *const *isa = tu_isas(); *isa; isa++) {
        tu_use_isa(*isa);
        TU_OK(sadm_gelu_forward(n, x, y));
        for (size_t i = 0; i < n; i++) ref[i] = gelu_d(x[i]);
        tu_assert_close_d(*isa, y, ref, n, 1e-5, 1e-6);
        TU_OK(sadm_silu_forward(n, x, y));
        for (size_t i = 0; i < n; i++) ref[i] = silu_d(x[i]);
        tu_assert_close_d(*isa, y, ref, n, 1e-5, 1e-6);
    }
    free(x), free(y), free(ref);
}
END_TEST

START_TEST(test_activations_isa_vs_scalar) {
    for (size_t s = 0; s < tu_n_awkward_sizes; s++) {
        size_t n = tu_awkward_sizes[s];
        float *x = tu_uniform(n, 2 + n, -12.0f, 12.0f), *dy = tu_uniform(n, 3 + n, -1.0f, 1.0f);
        float *ry = tu_alloc(n), *rdx = tu_uniform(n, 4, -1, 1), *y = tu_alloc(n), *dx = tu_alloc(n);
        float *rsy = tu_alloc(n), *rsdx = tu_copy(rdx, n), *sy = tu_alloc(n), *sdx = tu_alloc(n);
        tu_use_isa("scalar");
        TU_OK(sadm_gelu_forward(n, x, ry));
        TU_OK(sadm_gelu_backward(n, x, dy, rdx));
        TU_OK(sadm_silu_forward(n, x, rsy));
        TU_OK(sadm_silu_backward(n, x, dy, rsdx));
        for (const char *const *isa = tu_isas(); *isa; isa++) {
            tu_use_isa(*isa);
            float *init = tu_uniform(n, 4, -1, 1);
            memcpy(dx, init, n * sizeof(float));
            memcpy(sdx, init, n * sizeof(float));
            TU_OK(sadm_gelu_forward(n, x, y));
            TU_OK(sadm_gelu_backward(n, x, dy, dx));
            TU_OK(sadm_silu_forward(n, x, sy));
            TU_OK(sadm_silu_backward(n, x, dy, sdx));
            tu_assert_close("gelu", y, ry, n, RTOL_ISA, ATOL_ISA);
            tu_assert_close("gelu backward", dx, rdx, n, RTOL_ISA, ATOL_ISA);
            tu_assert_close("silu", sy, rsy, n, RTOL_ISA, ATOL_ISA);
            tu_assert_close("silu backward", sdx, rsdx, n, RTOL_ISA, ATOL_ISA);
            free(init);
        }
        free(x), free(dy), free(ry), free(rdx), free(y), free(dx), free(rsy), free(rsdx), free(sy), free(sdx);
    }
}
END_TEST

typedef struct {
    int op; /* 0 gelu, 1 silu, 2 softmax, 3 layernorm, 4 modulate, 5 gated add, 6 mean tokens */
    size_t rows, C;
    int B, T;
    float *x, *w, *b, *y2, *g;
} fwd_ctx;

static void forward(void *p, float *out) {
    fwd_ctx *c = p;
    size_t n = c->rows * c->C;
    switch (c->op) {
    case 0: sadm_gelu_forward(n, c->x, out); break;
    case 1: sadm_silu_forward(n, c->x, out); break;
    case 2: sadm_softmax_forward(c->rows, c->C, c->x, out); break;
    case 3: sadm_layernorm_forward(c->rows, c->C, c->x, c->w, c->b, 1e-6f, out, NULL, NULL); break;
    case 4: sadm_modulate_forward(c->B, c->T, (int)c->C, c->x, c->b, c->w, out); break;
    case 5: sadm_gated_add_forward(c->B, c->T, (int)c->C, c->x, c->g, c->y2, out); break;
    case 6: sadm_mean_tokens_forward(c->B, c->T, (int)c->C, c->x, out); break;
    }
}

START_TEST(test_activation_gradients) {
    size_t n = 300;
    float *x = tu_uniform(n, 5, -5.0f, 5.0f), *w = tu_uniform(n, 6, -1.0f, 1.0f);
    for (const char *const *isa = tu_isas(); *isa; isa++) {
        tu_use_isa(*isa);
        for (int op = 0; op < 2; op++) {
            fwd_ctx c = {.op = op, .rows = 1, .C = n, .x = x};
            float *dx = tu_alloc(n);
            TU_OK(op == 0 ? sadm_gelu_backward(n, x, w, dx) : sadm_silu_backward(n, x, w, dx));
            tu_check_grad(op == 0 ? "gelu" : "silu", forward, &c, x, n, dx, w, n, 1e-2f, 2e-3);
            free(dx);
        }
    }
    free(x), free(w);
}
END_TEST

/* ---------------------------------------------------------------- softmax */
START_TEST(test_softmax) {
    size_t rows = 5;
    for (size_t s = 0; s < tu_n_awkward_sizes; s++) {
        size_t C = tu_awkward_sizes[s], n = rows * C;
        float *x = tu_uniform(n, 10 + C, -30.0f, 30.0f), *y = tu_alloc(n), *dy = tu_uniform(n, 11, -1, 1);
        double *ref = malloc(n * sizeof(double));
        for (size_t r = 0; r < rows; r++) {
            double m = -INFINITY, sum = 0;
            for (size_t i = 0; i < C; i++) m = fmax(m, x[r * C + i]);
            for (size_t i = 0; i < C; i++) sum += exp(x[r * C + i] - m);
            for (size_t i = 0; i < C; i++) ref[r * C + i] = exp(x[r * C + i] - m) / sum;
        }
        float *rdx = tu_alloc(n);
        tu_use_isa("scalar");
        TU_OK(sadm_softmax_forward(rows, C, x, y));
        TU_OK(sadm_softmax_backward(rows, C, y, dy, rdx));
        for (const char *const *isa = tu_isas(); *isa; isa++) {
            tu_use_isa(*isa);
            float *dx = tu_alloc(n);
            TU_OK(sadm_softmax_forward(rows, C, x, y));
            tu_assert_close_d("softmax vs double", y, ref, n, 2e-5, 1e-7);
            TU_OK(sadm_softmax_backward(rows, C, y, dy, dx));
            tu_assert_close("softmax backward vs scalar", dx, rdx, n, 1e-4, 1e-6);
            if (C <= 65) {
                fwd_ctx c = {.op = 2, .rows = rows, .C = C, .x = x};
                float *xs = tu_uniform(n, 12 + C, -3.0f, 3.0f);
                c.x = xs;
                float *ys = tu_alloc(n), *dxs = tu_alloc(n);
                TU_OK(sadm_softmax_forward(rows, C, xs, ys));
                TU_OK(sadm_softmax_backward(rows, C, ys, dy, dxs));
                tu_check_grad("softmax", forward, &c, xs, n, dxs, dy, n, 1e-2f, 5e-3);
                free(xs), free(ys), free(dxs);
            }
            free(dx);
        }
        free(x), free(y), free(dy), free(ref), free(rdx);
    }
}
END_TEST

/* ---------------------------------------------------------------- layer norm */
START_TEST(test_layernorm) {
    size_t rows = 7;
    for (size_t s = 0; s < tu_n_awkward_sizes; s++) {
        size_t C = tu_awkward_sizes[s], n = rows * C;
        float *x = tu_uniform(n, 20 + C, -4.0f, 6.0f), *w = tu_uniform(C, 21, 0.5f, 1.5f), *b = tu_uniform(C, 22, -1, 1);
        float *dy = tu_uniform(n, 23, -1, 1);
        for (int affine = 0; affine < 2; affine++) {
            const float *wa = affine ? w : NULL, *ba = affine ? b : NULL;
            double *ref = malloc(n * sizeof(double));
            for (size_t r = 0; r < rows; r++) {
                double m = 0, v = 0;
                for (size_t i = 0; i < C; i++) m += x[r * C + i];
                m /= C;
                for (size_t i = 0; i < C; i++) v += (x[r * C + i] - m) * (x[r * C + i] - m);
                v /= C;
                for (size_t i = 0; i < C; i++) {
                    double o = (x[r * C + i] - m) / sqrt(v + 1e-6);
                    ref[r * C + i] = affine ? o * w[i] + b[i] : o;
                }
            }
            float *rdx = tu_alloc(n), *rdw = tu_alloc(C), *rdb = tu_alloc(C), *y = tu_alloc(n);
            float *mean = tu_alloc(rows), *rstd = tu_alloc(rows);
            tu_use_isa("scalar");
            TU_OK(sadm_layernorm_forward(rows, C, x, wa, ba, 1e-6f, y, mean, rstd));
            TU_OK(sadm_layernorm_backward(rows, C, x, wa, mean, rstd, dy, rdx, affine ? rdw : NULL, affine ? rdb : NULL));
            for (const char *const *isa = tu_isas(); *isa; isa++) {
                tu_use_isa(*isa);
                float *dx = tu_alloc(n), *dw = tu_alloc(C), *db = tu_alloc(C);
                TU_OK(sadm_layernorm_forward(rows, C, x, wa, ba, 1e-6f, y, mean, rstd));
                /* C = 1: every output is exactly 0 (+ b); the double reference agrees */
                tu_assert_close_d("layernorm vs double", y, ref, n, 5e-5, 5e-5);
                TU_OK(sadm_layernorm_backward(rows, C, x, wa, mean, rstd, dy, dx, affine ? dw : NULL, affine ? db : NULL));
                tu_assert_close("layernorm dx vs scalar", dx, rdx, n, 1e-3, 1e-4);
                if (affine) {
                    tu_assert_close("layernorm dw vs scalar", dw, rdw, C, 1e-4, 1e-5);
                    tu_assert_close("layernorm db vs scalar", db, rdb, C, 1e-4, 1e-5);
                }
                if (C >= 3 && C <= 65) {
                    fwd_ctx c = {.op = 3, .rows = rows, .C = C, .x = x, .w = (float *)wa, .b = (float *)ba};
                    tu_check_grad("layernorm dx", forward, &c, x, n, dx, dy, n, 1e-2f, 1e-2);
                    if (affine) {
                        tu_check_grad("layernorm dw", forward, &c, w, C, dw, dy, n, 1e-2f, 1e-2);
                        tu_check_grad("layernorm db", forward, &c, b, C, db, dy, n, 1e-2f, 1e-2);
                    }
                }
                free(dx), free(dw), free(db);
            }
            free(ref), free(rdx), free(rdw), free(rdb), free(y), free(mean), free(rstd);
        }
        free(x), free(w), free(b), free(dy);
    }
}
END_TEST

/* ---------------------------------------------------------------- group norm */
typedef struct {
    int N, C, G;
    size_t HW;
    float *x, *w, *b;
} gn_ctx;

static void gn_forward(void *p, float *out) {
    gn_ctx *c = p;
    sadm_group_norm_forward(c->N, c->C, c->HW, c->G, c->x, c->w, c->b, 1e-6f, out, NULL, NULL);
}

/* against the definition in double; each kernel set against the scalar one; backward by
 * finite differences (small cases). HW runs over awkward sizes (vector tails). */
START_TEST(test_group_norm) {
    static const int shapes[][3] = {{2, 6, 3}, {1, 8, 8}, {3, 4, 1}, {1, 5, 5}};
    for (size_t sh = 0; sh < sizeof shapes / sizeof *shapes; sh++)
        for (size_t s = 0; s < tu_n_awkward_sizes; s++) {
            int N = shapes[sh][0], C = shapes[sh][1], G = shapes[sh][2], cg = C / G;
            size_t HW = tu_awkward_sizes[s], n = (size_t)N * C * HW;
            if (n > 200000) continue;
            float *x = tu_uniform(n, 40 + HW, -3.0f, 5.0f), *w = tu_uniform(C, 41, 0.5f, 1.5f);
            float *b = tu_uniform(C, 42, -1, 1), *dy = tu_uniform(n, 43, -1, 1);
            for (int affine = 0; affine < 2; affine++) {
                float *wa = affine ? w : NULL, *ba = affine ? b : NULL;
                double *ref = malloc(n * sizeof(double));
                for (int ng = 0; ng < N * G; ng++) {
                    size_t off = (size_t)ng * cg * HW, M = (size_t)cg * HW;
                    double m = 0, v = 0;
                    for (size_t i = 0; i < M; i++) m += x[off + i];
                    m /= (double)M;
                    for (size_t i = 0; i < M; i++) v += (x[off + i] - m) * (x[off + i] - m);
                    v /= (double)M;
                    for (size_t i = 0; i < M; i++) {
                        int c = (ng % G) * cg + (int)(i / HW);
                        double o = (x[off + i] - m) / sqrt(v + 1e-6);
                        ref[off + i] = affine ? o * w[c] + b[c] : o;
                    }
                }
                float *y = tu_alloc(n), *mean = tu_alloc((size_t)N * G), *rstd = tu_alloc((size_t)N * G);
                float *rdx = tu_uniform(n, 44, -1, 1), *rdw = tu_uniform(C, 45, -1, 1), *rdb = tu_uniform(C, 46, -1, 1);
                float *dx0 = tu_copy(rdx, n), *dw0 = tu_copy(rdw, C), *db0 = tu_copy(rdb, C);
                tu_use_isa("scalar");
                TU_OK(sadm_group_norm_forward(N, C, HW, G, x, wa, ba, 1e-6f, y, mean, rstd));
                TU_OK(sadm_group_norm_backward(N, C, HW, G, x, wa, mean, rstd, dy, rdx, rdw, rdb));
                for (const char *const *isa = tu_isas(); *isa; isa++) {
                    tu_use_isa(*isa);
                    float *dx = tu_copy(dx0, n), *dw = tu_copy(dw0, C), *db = tu_copy(db0, C);
                    TU_OK(sadm_group_norm_forward(N, C, HW, G, x, wa, ba, 1e-6f, y, mean, rstd));
                    tu_assert_close_d("group norm vs double", y, ref, n, 5e-5, 5e-5);
                    TU_OK(sadm_group_norm_backward(N, C, HW, G, x, wa, mean, rstd, dy, dx, dw, db));
                    tu_assert_close("group norm dx vs scalar", dx, rdx, n, 1e-3, 1e-4);
                    tu_assert_close("group norm dw vs scalar", dw, rdw, C, 1e-4, 1e-4);
                    tu_assert_close("group norm db vs scalar", db, rdb, C, 1e-4, 1e-4);
                    if (n <= 400 && cg * HW >= 3) {
                        /* the backward adds: finite differences see the increments */
                        for (size_t i = 0; i < n; i++) dx[i] -= dx0[i];
                        for (int c = 0; c < C; c++) dw[c] -= dw0[c], db[c] -= db0[c];
                        gn_ctx c = {N, C, G, HW, x, wa, ba};
                        tu_check_grad("group norm dx", gn_forward, &c, x, n, dx, dy, n, 1e-2f, 1e-2);
                        if (affine) {
                            tu_check_grad("group norm dw", gn_forward, &c, w, C, dw, dy, n, 1e-2f, 1e-2);
                            tu_check_grad("group norm db", gn_forward, &c, b, C, db, dy, n, 1e-2f, 1e-2);
                        }
                    }
                    free(dx), free(dw), free(db);
                }
                free(ref), free(y), free(mean), free(rstd), free(rdx), free(rdw), free(rdb), free(dx0), free(dw0),
                    free(db0);
            }
            free(x), free(w), free(b), free(dy);
        }
    float one = 1;
    ck_assert_int_eq(sadm_group_norm_forward(1, 6, 1, 4, &one, NULL, NULL, 1e-6f, &one, NULL, NULL), SADM_ERR_ARG);
    ck_assert_ptr_nonnull(strstr(sadm_last_error(), "6 channels do not split into 4 groups"));
}
END_TEST

/* ---------------------------------------------------------------- modulate, gated add, mean tokens */
START_TEST(test_token_ops) {
    const int B = 3, T = 5;
    for (size_t s = 0; s < tu_n_awkward_sizes; s++) {
        int C = (int)tu_awkward_sizes[s];
        size_t n = (size_t)B * T * C, nb = (size_t)B * C;
        float *x = tu_uniform(n, 30 + C, -2, 2), *y2 = tu_uniform(n, 31, -2, 2);
        float *shift = tu_uniform(nb, 32, -1, 1), *scale = tu_uniform(nb, 33, -1, 1), *g = tu_uniform(nb, 34, -1, 1);
        float *dout = tu_uniform(n, 35, -1, 1), *dmean = tu_uniform(nb, 36, -1, 1);
        float *out = tu_alloc(n), *mo = tu_alloc(nb);
        /* direct formulas in double */
        double *rmod = malloc(n * sizeof(double)), *rgate = malloc(n * sizeof(double)), *rmean = calloc(nb, sizeof(double));
        for (int b = 0; b < B; b++)
            for (int t = 0; t < T; t++)
                for (int c = 0; c < C; c++) {
                    size_t i = ((size_t)b * T + t) * C + c, j = (size_t)b * C + c;
                    rmod[i] = (double)x[i] * (1.0 + scale[j]) + shift[j];
                    rgate[i] = (double)x[i] + (double)g[j] * y2[i];
                    rmean[j] += (double)x[i] / T;
                }
        for (const char *const *isa = tu_isas(); *isa; isa++) {
            tu_use_isa(*isa);
            TU_OK(sadm_modulate_forward(B, T, C, x, shift, scale, out));
            tu_assert_close_d("modulate", out, rmod, n, 1e-6, 1e-6);
            TU_OK(sadm_gated_add_forward(B, T, C, x, g, y2, out));
            tu_assert_close_d("gated add", out, rgate, n, 1e-6, 1e-6);
            TU_OK(sadm_mean_tokens_forward(B, T, C, x, mo));
            tu_assert_close_d("mean tokens", mo, rmean, nb, 1e-5, 1e-6);

            float *dx = tu_alloc(n), *dsh = tu_alloc(nb), *dsc = tu_alloc(nb), *dg = tu_alloc(nb), *dy2 = tu_alloc(n);
            fwd_ctx c = {.B = B, .T = T, .C = (size_t)C, .rows = (size_t)B * T, .x = x, .b = shift, .w = scale, .g = g, .y2 = y2};
            TU_OK(sadm_modulate_backward(B, T, C, x, scale, dout, dx, dsh, dsc));
            c.op = 4;
            tu_check_grad("modulate dx", forward, &c, x, n, dx, dout, n, 1e-2f, 1e-3);
            tu_check_grad("modulate dshift", forward, &c, shift, nb, dsh, dout, n, 1e-2f, 1e-3);
            tu_check_grad("modulate dscale", forward, &c, scale, nb, dsc, dout, n, 1e-2f, 1e-3);
            memset(dx, 0, n * sizeof(float));
            TU_OK(sadm_gated_add_backward(B, T, C, g, y2, dout, dx, dg, dy2));
            c.op = 5;
            tu_check_grad("gated add dx", forward, &c, x, n, dx, dout, n, 1e-2f, 1e-3);
            tu_check_grad("gated add dg", forward, &c, g, nb, dg, dout, n, 1e-2f, 1e-3);
            tu_check_grad("gated add dy", forward, &c, y2, n, dy2, dout, n, 1e-2f, 1e-3);
            memset(dx, 0, n * sizeof(float));
            TU_OK(sadm_mean_tokens_backward(B, T, C, dmean, dx));
            c.op = 6;
            tu_check_grad("mean tokens dx", forward, &c, x, n, dx, dmean, nb, 1e-2f, 1e-3);
            free(dx), free(dsh), free(dsc), free(dg), free(dy2);
        }
        free(x), free(y2), free(shift), free(scale), free(g), free(dout), free(dmean), free(out), free(mo);
        free(rmod), free(rgate), free(rmean);
    }
}
END_TEST

START_TEST(test_add) {
    for (size_t s = 0; s < tu_n_awkward_sizes; s++) {
        size_t n = tu_awkward_sizes[s];
        float *a = tu_uniform(n, 40, -1, 1), *b = tu_uniform(n, 41, -1, 1), *o = tu_alloc(n);
        for (const char *const *isa = tu_isas(); *isa; isa++) {
            tu_use_isa(*isa);
            TU_OK(sadm_add(n, a, b, o));
            for (size_t i = 0; i < n; i++) ck_assert_float_eq(o[i], a[i] + b[i]);
        }
        free(a), free(b), free(o);
    }
}
END_TEST

/* A NaN anywhere in a row makes that element (elementwise ops) or the whole row
 * (softmax, layer norm) NaN, never a finite number. */
START_TEST(test_nan_propagation) {
    size_t C = 37, rows = 2, n = rows * C;
    float *x = tu_uniform(n, 50, -3, 3), *y = tu_alloc(n);
    x[5] = NAN;
    for (const char *const *isa = tu_isas(); *isa; isa++) {
        tu_use_isa(*isa);
        TU_OK(sadm_gelu_forward(n, x, y));
        ck_assert_msg(isnan(y[5]) && !isnan(y[4]) && !isnan(y[6]), "%s: gelu NaN", *isa);
        TU_OK(sadm_silu_forward(n, x, y));
        ck_assert_msg(isnan(y[5]) && !isnan(y[6]), "%s: silu NaN", *isa);
        TU_OK(sadm_softmax_forward(rows, C, x, y));
        for (size_t i = 0; i < C; i++) ck_assert_msg(isnan(y[i]), "%s: softmax row with NaN has finite %zu", *isa, i);
        for (size_t i = C; i < n; i++) ck_assert_msg(isfinite(y[i]), "%s: softmax clean row not finite", *isa);
        TU_OK(sadm_layernorm_forward(rows, C, x, NULL, NULL, 1e-6f, y, NULL, NULL));
        for (size_t i = 0; i < C; i++) ck_assert_msg(isnan(y[i]), "%s: layernorm row with NaN has finite %zu", *isa, i);
        for (size_t i = C; i < n; i++) ck_assert_msg(isfinite(y[i]), "%s: layernorm clean row not finite", *isa);
        /* large inputs: exp overflows to +inf inside, results stay finite */
        float big[3] = {1e4f, -1e4f, 88.0f}, out[3];
        TU_OK(sadm_gelu_forward(3, big, out));
        ck_assert_msg(out[0] == 1e4f && out[1] == 0.0f && fabsf(out[2] - 88.0f) < 1e-4f, "%s: gelu at extremes %g %g %g",
                      *isa, out[0], out[1], out[2]);
        TU_OK(sadm_softmax_forward(1, 3, big, out));
        ck_assert_msg(out[0] == 1.0f && out[1] == 0.0f && out[2] == 0.0f, "%s: softmax at extremes", *isa);
    }
    free(x), free(y);
}
END_TEST

int main(void) {
    Suite *s = suite_create("rowwise");
    TCase *tc = tcase_create("rowwise");
    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, test_activations_vs_double);
    tcase_add_test(tc, test_activations_isa_vs_scalar);
    tcase_add_test(tc, test_activation_gradients);
    tcase_add_test(tc, test_softmax);
    tcase_add_test(tc, test_layernorm);
    tcase_add_test(tc, test_group_norm);
    tcase_add_test(tc, test_token_ops);
    tcase_add_test(tc, test_add);
    tcase_add_test(tc, test_nan_propagation);
    suite_add_tcase(s, tc);
    return tu_run(s);
}
