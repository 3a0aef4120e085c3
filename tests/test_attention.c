/* Fused attention against a naive double-precision implementation that materialises the
 * whole score matrix, forward (output and log-sum-exp) and backward, on every kernel set;
 * plus finite differences on a small case. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"

typedef struct {
    int B, N, H, hd;
} dims;

static size_t qkv_index(const dims *d, int b, int n, int part, int h, int k) {
    return ((((size_t)b * d->N + n) * 3 + part) * d->H + h) * d->hd + k;
}
static size_t out_index(const dims *d, int b, int n, int h, int k) {
    return (((size_t)b * d->N + n) * d->H + h) * d->hd + k;
}

/* out, lse and (when dout != NULL) dqkv in double. */
static void naive(const dims *d, const float *qkv, const float *dout, double *out, double *lse, double *dqkv) {
    int N = d->N, hd = d->hd;
    double scale = 1.0 / sqrt(hd);
    double *P = malloc(sizeof(double) * N * N), *dP = malloc(sizeof(double) * N * N);
    for (int b = 0; b < d->B; b++)
        for (int h = 0; h < d->H; h++) {
            for (int i = 0; i < N; i++) {
                double m = -INFINITY, s = 0;
                for (int j = 0; j < N; j++) {
                    double v = 0;
                    for (int k = 0; k < hd; k++) v += (double)qkv[qkv_index(d, b, i, 0, h, k)] * qkv[qkv_index(d, b, j, 1, h, k)];
                    P[i * N + j] = v * scale;
                    m = fmax(m, v * scale);
                }
                for (int j = 0; j < N; j++) s += exp(P[i * N + j] - m);
                for (int j = 0; j < N; j++) P[i * N + j] = exp(P[i * N + j] - m) / s;
                lse[((size_t)b * d->H + h) * N + i] = m + log(s);
                for (int k = 0; k < hd; k++) {
                    double o = 0;
                    for (int j = 0; j < N; j++) o += P[i * N + j] * qkv[qkv_index(d, b, j, 2, h, k)];
                    out[out_index(d, b, i, h, k)] = o;
                }
            }
            if (!dout) continue;
            for (int i = 0; i < N; i++) {
                double rs = 0;
                for (int j = 0; j < N; j++) {
                    double v = 0;
                    for (int k = 0; k < hd; k++) v += (double)dout[out_index(d, b, i, h, k)] * qkv[qkv_index(d, b, j, 2, h, k)];
                    dP[i * N + j] = v;
                    rs += v * P[i * N + j];
                }
                for (int j = 0; j < N; j++) dP[i * N + j] = P[i * N + j] * (dP[i * N + j] - rs); /* dS */
            }
            for (int i = 0; i < N; i++)
                for (int k = 0; k < hd; k++) {
                    double dq = 0, dk = 0, dv = 0;
                    for (int j = 0; j < N; j++) {
                        dq += dP[i * N + j] * qkv[qkv_index(d, b, j, 1, h, k)];
                        dk += dP[j * N + i] * qkv[qkv_index(d, b, j, 0, h, k)];
                        dv += P[j * N + i] * dout[out_index(d, b, j, h, k)];
                    }
                    dqkv[qkv_index(d, b, i, 0, h, k)] = dq * scale;
                    dqkv[qkv_index(d, b, i, 1, h, k)] = dk * scale;
                    dqkv[qkv_index(d, b, i, 2, h, k)] = dv;
                }
        }
    free(P), free(dP);
}

START_TEST(test_attention_vs_naive) {
    static const dims cases[] = {{1, 1, 1, 1}, {2, 3, 2, 8}, {1, 17, 3, 16}, {2, 64, 1, 64},
                                 {1, 65, 2, 32}, {1, 130, 2, 24}, {1, 200, 1, 64}};
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        const dims *d = &cases[c];
        size_t nq = (size_t)d->B * d->N * 3 * d->H * d->hd, no = (size_t)d->B * d->N * d->H * d->hd;
        size_t nl = (size_t)d->B * d->H * d->N;
        /* scores of order 10: a peaked softmax exercises the online rescaling */
        float *qkv = tu_uniform(nq, 100 + c, -2.0f, 2.0f), *dout = tu_uniform(no, 200 + c, -1, 1);
        double *rout = malloc(no * sizeof(double)), *rlse = malloc(nl * sizeof(double)), *rdq = malloc(nq * sizeof(double));
        naive(d, qkv, dout, rout, rlse, rdq);
        for (const char *const *isa = tu_isas(); *isa; isa++) {
            tu_use_isa(*isa);
            float *out = tu_alloc(no), *lse = tu_alloc(nl), *dqkv = tu_alloc(nq);
            TU_OK(sadm_attention_forward(d->B, d->N, d->H, d->hd, qkv, out, lse));
            tu_assert_close_d("attention out", out, rout, no, 1e-4, 1e-5);
            tu_assert_close_d("attention lse", lse, rlse, nl, 1e-5, 1e-5);
            TU_OK(sadm_attention_backward(d->B, d->N, d->H, d->hd, qkv, out, lse, dout, dqkv));
            tu_assert_close_d("attention dqkv", dqkv, rdq, nq, 1e-3, 2e-5);
            /* accumulates: a second backward doubles the gradient */
            TU_OK(sadm_attention_backward(d->B, d->N, d->H, d->hd, qkv, out, lse, dout, dqkv));
            for (size_t i = 0; i < nq; i++) rdq[i] *= 2;
            tu_assert_close_d("attention dqkv accumulated", dqkv, rdq, nq, 1e-3, 4e-5);
            for (size_t i = 0; i < nq; i++) rdq[i] /= 2;
            /* inference without lse gives the same output */
            float *out2 = tu_alloc(no);
            TU_OK(sadm_attention_forward(d->B, d->N, d->H, d->hd, qkv, out2, NULL));
            tu_assert_same("attention out without lse", out2, out, no);
            free(out), free(lse), free(dqkv), free(out2);
        }
        free(qkv), free(dout), free(rout), free(rlse), free(rdq);
    }
}
END_TEST

typedef struct {
    dims d;
    float *qkv;
} att_ctx;

static void att_forward(void *p, float *out) {
    att_ctx *c = p;
    sadm_attention_forward(c->d.B, c->d.N, c->d.H, c->d.hd, c->qkv, out, NULL);
}

START_TEST(test_attention_finite_differences) {
    att_ctx c = {{2, 5, 2, 4}, NULL};
    size_t nq = (size_t)2 * 5 * 3 * 2 * 4, no = (size_t)2 * 5 * 2 * 4;
    c.qkv = tu_uniform(nq, 7, -1, 1);
    float *dout = tu_uniform(no, 8, -1, 1), *out = tu_alloc(no), *lse = tu_alloc(20), *dqkv = tu_alloc(nq);
    TU_OK(sadm_attention_forward(2, 5, 2, 4, c.qkv, out, lse));
    TU_OK(sadm_attention_backward(2, 5, 2, 4, c.qkv, out, lse, dout, dqkv));
    tu_check_grad("attention dqkv", att_forward, &c, c.qkv, nq, dqkv, dout, no, 1e-2f, 5e-3);
    free(c.qkv), free(dout), free(out), free(lse), free(dqkv);
}
END_TEST

int main(void) {
    Suite *s = suite_create("attention");
    TCase *tc = tcase_create("attention");
    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, test_attention_vs_naive);
    tcase_add_test(tc, test_attention_finite_differences);
    suite_add_tcase(s, tc);
    return tu_run(s);
}
