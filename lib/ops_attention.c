/* Fused multi-head attention, flash-attention style (Dao et al. 2022; FA-2 backward).
 * Only a BQ×BK tile of the score matrix exists at a time, per thread; the forward keeps
 * the log-sum-exp of every score row so the backward can rebuild probabilities tile by
 * tile. Tile products go through single-threaded GEMM calls made inside the parallel
 * loop, which was measured faster than threading each small product
 * (shared/BASELINES.md). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

#define BQ 64
#define BK 128

/* the tile products' GEMM: fp32 (sadm_gemm) or bf16 (sadm_gemm_bf16) */
typedef sadm_status (*gemm_fn)(sadm_transpose ta, sadm_transpose tb, int M, int N, int K, float alpha, const float *A,
                               int lda, const float *B, int ldb, float beta, float *C, int ldc);

static sadm_status gemm_fp32(sadm_transpose ta, sadm_transpose tb, int M, int N, int K, float alpha, const float *A,
                             int lda, const float *B, int ldb, float beta, float *C, int ldc) {
    sadm_gemm(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
    return SADM_OK;
}

typedef struct {
    gemm_fn gemm;
    int N, H, hd;
    size_t ld;   /* row stride of q, k, v inside packed qkv: 3 H hd */
    size_t ldo;  /* row stride of out / dout: H hd */
} attn_dims;

static inline const float *q_ptr(const float *qkv, const attn_dims *d, int b, int h, int i) {
    return qkv + ((size_t)b * d->N + i) * d->ld + (size_t)h * d->hd;
}
static inline size_t part_offset(const attn_dims *d, int part) { return (size_t)part * d->H * d->hd; }

static sadm_status check_dims(const char *fn, int B, int N, int H, int hd) {
    SADM_REQUIRE(B > 0 && N > 0 && H > 0 && hd > 0,
                 "%s: B, N, H and hd must be positive, got %d, %d, %d, %d", fn, B, N, H, hd);
    return SADM_OK;
}

/* One query tile of one (sample, head): online softmax over key tiles. */
static sadm_status forward_tile(const attn_dims *d, const float *qkv, int b, int h, int i0, int mq, float scale,
                         float *out, float *lse, float *S, float *acc, float *m, float *l) {
    const sadm_kernels *k = sadm_kernels_active();
    const float *Q = q_ptr(qkv, d, b, h, i0);
    for (int r = 0; r < mq; r++) m[r] = -INFINITY, l[r] = 0.0f;
    memset(acc, 0, (size_t)mq * d->hd * sizeof(float));
    for (int j0 = 0; j0 < d->N; j0 += BK) {
        int nk = d->N - j0 < BK ? d->N - j0 : BK;
        const float *K = q_ptr(qkv, d, b, h, j0) + part_offset(d, 1);
        const float *V = q_ptr(qkv, d, b, h, j0) + part_offset(d, 2);
        SADM_TRY(d->gemm(SADM_NO_TRANS, SADM_TRANS, mq, nk, d->hd, scale, Q, (int)d->ld, K, (int)d->ld, 0.0f, S, BK));
        for (int r = 0; r < mq; r++) {
            float *s = S + (size_t)r * BK;
            float mt = k->max((size_t)nk, s);
            float mnew = mt > m[r] ? mt : m[r];
            if (isnan(mt)) mnew = mt;
            float corr = expf(m[r] - mnew);
            if (m[r] == -INFINITY) corr = 0.0f; /* first tile: nothing to rescale */
            float sum = k->exp_shifted((size_t)nk, s, mnew, s);
            l[r] = l[r] * corr + sum;
            m[r] = mnew;
            if (corr != 1.0f) k->scale((size_t)d->hd, acc + (size_t)r * d->hd, corr);
        }
        SADM_TRY(d->gemm(SADM_NO_TRANS, SADM_NO_TRANS, mq, d->hd, nk, 1.0f, S, BK, V, (int)d->ld, 1.0f, acc, d->hd));
    }
    for (int r = 0; r < mq; r++) {
        float *o = out + ((size_t)b * d->N + i0 + r) * d->ldo + (size_t)h * d->hd;
        memcpy(o, acc + (size_t)r * d->hd, (size_t)d->hd * sizeof(float));
        k->scale((size_t)d->hd, o, 1.0f / l[r]);
        if (lse) lse[((size_t)b * d->H + h) * d->N + i0 + r] = m[r] + logf(l[r]);
    }
    return SADM_OK;
}

static sadm_status attention_forward(const char *fn, gemm_fn gemm, int B, int N, int H, int hd, const float *qkv,
                                     float *out, float *lse) {
    sadm_status st = check_dims(fn, B, N, H, hd);
    if (st) return st;
    SADM_REQUIRE(qkv, "%s: argument 'qkv' is NULL", fn);
    SADM_REQUIRE(out, "%s: argument 'out' is NULL", fn);
    attn_dims d = {gemm, N, H, hd, (size_t)3 * H * hd, (size_t)H * hd};
    float scale = 1.0f / sqrtf((float)hd);
    int qtiles = (N + BQ - 1) / BQ;
    long tasks = (long)B * H * qtiles;
    int failed = 0;
#pragma omp parallel
    {
        sadm_scratch_mark mk = sadm_scratch_mark_get();
        float *S = sadm_scratch_take(sizeof(float) * ((size_t)BQ * BK + (size_t)BQ * hd + 2 * BQ));
        if (!S) {
#pragma omp atomic write
            failed = 1;
        }
#pragma omp for schedule(static)
        for (long t = 0; t < tasks; t++) {
            if (!S) continue;
            int b = (int)(t / ((long)H * qtiles)), h = (int)(t / qtiles % H), i0 = (int)(t % qtiles) * BQ;
            int mq = N - i0 < BQ ? N - i0 : BQ;
            float *acc = S + (size_t)BQ * BK, *m = acc + (size_t)BQ * hd, *l = m + BQ;
            if (forward_tile(&d, qkv, b, h, i0, mq, scale, out, lse, S, acc, m, l)) {
#pragma omp atomic write
                failed = 1;
            }
        }
        sadm_scratch_release(mk);
    }
    return failed ? sadm_error(SADM_ERR_NOMEM, "%s: out of memory", fn) : SADM_OK;
}

sadm_status sadm_attention_forward(int B, int N, int H, int hd, const float *qkv, float *out, float *lse) {
    return attention_forward(__func__, gemm_fp32, B, N, H, hd, qkv, out, lse);
}

sadm_status sadm_attention_forward_bf16(int B, int N, int H, int hd, const float *qkv, float *out, float *lse) {
    return attention_forward(__func__, sadm_gemm_bf16, B, N, H, hd, qkv, out, lse);
}

/* All of one (sample, head): dq, dk, dv accumulate straight into their columns of dqkv,
 * which no other task touches. */
static sadm_status backward_head(const attn_dims *d, const float *qkv, const float *out, const float *lse,
                          const float *dout, float *dqkv, int b, int h, float scale, float *P, float *dP,
                          float *D) {
    const sadm_kernels *k = sadm_kernels_active();
    const float *lse_bh = lse + ((size_t)b * d->H + h) * d->N;
    for (int i = 0; i < d->N; i++) {
        size_t off = ((size_t)b * d->N + i) * d->ldo + (size_t)h * d->hd;
        D[i] = k->dot((size_t)d->hd, dout + off, out + off);
    }
    for (int j0 = 0; j0 < d->N; j0 += BK) {
        int nk = d->N - j0 < BK ? d->N - j0 : BK;
        const float *K = q_ptr(qkv, d, b, h, j0) + part_offset(d, 1);
        const float *V = q_ptr(qkv, d, b, h, j0) + part_offset(d, 2);
        float *dK = (float *)q_ptr(dqkv, d, b, h, j0) + part_offset(d, 1);
        float *dV = (float *)q_ptr(dqkv, d, b, h, j0) + part_offset(d, 2);
        for (int i0 = 0; i0 < d->N; i0 += BQ) {
            int mq = d->N - i0 < BQ ? d->N - i0 : BQ;
            const float *Q = q_ptr(qkv, d, b, h, i0);
            float *dQ = (float *)q_ptr(dqkv, d, b, h, i0);
            const float *dO = dout + ((size_t)b * d->N + i0) * d->ldo + (size_t)h * d->hd;
            SADM_TRY(d->gemm(SADM_NO_TRANS, SADM_TRANS, mq, nk, d->hd, scale, Q, (int)d->ld, K, (int)d->ld, 0.0f, P, BK));
            for (int r = 0; r < mq; r++)
                k->exp_shifted((size_t)nk, P + (size_t)r * BK, lse_bh[i0 + r], P + (size_t)r * BK);
            SADM_TRY(d->gemm(SADM_TRANS, SADM_NO_TRANS, nk, d->hd, mq, 1.0f, P, BK, dO, (int)d->ldo, 1.0f, dV, (int)d->ld));
            SADM_TRY(d->gemm(SADM_NO_TRANS, SADM_TRANS, mq, nk, d->hd, 1.0f, dO, (int)d->ldo, V, (int)d->ld, 0.0f, dP, BK));
            for (int r = 0; r < mq; r++) {
                float *p = P + (size_t)r * BK, *dp = dP + (size_t)r * BK;
                float Di = D[i0 + r];
                for (int c = 0; c < nk; c++) dp[c] = p[c] * (dp[c] - Di);
            }
            SADM_TRY(d->gemm(SADM_NO_TRANS, SADM_NO_TRANS, mq, d->hd, nk, scale, dP, BK, K, (int)d->ld, 1.0f, dQ, (int)d->ld));
            SADM_TRY(d->gemm(SADM_TRANS, SADM_NO_TRANS, nk, d->hd, mq, scale, dP, BK, Q, (int)d->ld, 1.0f, dK, (int)d->ld));
        }
    }
    return SADM_OK;
}

static sadm_status attention_backward(const char *fn, gemm_fn gemm, int B, int N, int H, int hd, const float *qkv,
                                      const float *out, const float *lse, const float *dout, float *dqkv) {
    sadm_status st = check_dims(fn, B, N, H, hd);
    if (st) return st;
    SADM_REQUIRE(qkv, "%s: argument 'qkv' is NULL", fn);
    SADM_REQUIRE(out, "%s: argument 'out' is NULL", fn);
    SADM_REQUIRE(lse, "%s: argument 'lse' is NULL (run the forward with an lse buffer)", fn);
    SADM_REQUIRE(dout, "%s: argument 'dout' is NULL", fn);
    SADM_REQUIRE(dqkv, "%s: argument 'dqkv' is NULL", fn);
    attn_dims d = {gemm, N, H, hd, (size_t)3 * H * hd, (size_t)H * hd};
    float scale = 1.0f / sqrtf((float)hd);
    long tasks = (long)B * H;
    int failed = 0;
#pragma omp parallel
    {
        sadm_scratch_mark mk = sadm_scratch_mark_get();
        float *P = sadm_scratch_take(sizeof(float) * (2 * (size_t)BQ * BK + (size_t)N));
        if (!P) {
#pragma omp atomic write
            failed = 1;
        }
#pragma omp for schedule(static)
        for (long t = 0; t < tasks; t++) {
            if (!P) continue;
            if (backward_head(&d, qkv, out, lse, dout, dqkv, (int)(t / H), (int)(t % H), scale, P,
                              P + (size_t)BQ * BK, P + 2 * (size_t)BQ * BK)) {
#pragma omp atomic write
                failed = 1;
            }
        }
        sadm_scratch_release(mk);
    }
    return failed ? sadm_error(SADM_ERR_NOMEM, "%s: out of memory", fn) : SADM_OK;
}

sadm_status sadm_attention_backward(int B, int N, int H, int hd, const float *qkv, const float *out,
                                    const float *lse, const float *dout, float *dqkv) {
    return attention_backward(__func__, gemm_fp32, B, N, H, hd, qkv, out, lse, dout, dqkv);
}

sadm_status sadm_attention_backward_bf16(int B, int N, int H, int hd, const float *qkv, const float *out,
                                         const float *lse, const float *dout, float *dqkv) {
    return attention_backward(__func__, sadm_gemm_bf16, B, N, H, hd, qkv, out, lse, dout, dqkv);
}
