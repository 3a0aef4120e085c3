/* Operators that work row by row or element by element: layer norm, softmax, GELU,
 * SiLU, residual and gated adds, adaLN modulate, mean over tokens. Every row (or fixed
 * chunk of elements) is computed whole by one thread, so results never depend on the
 * thread count. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

typedef void (*unary_fn)(size_t, const float *, float *);
typedef void (*unary_backward_fn)(size_t, const float *, const float *, float *);

static void run_unary(unary_fn f, size_t n, const float *x, float *y) {
    SADM_FOR_CHUNKS(n, i0, len) f(len, x + i0, y + i0);
}

static void run_unary_backward(unary_backward_fn f, size_t n, const float *x, const float *dy, float *dx) {
    SADM_FOR_CHUNKS(n, i0, len) f(len, x + i0, dy + i0, dx + i0);
}

#define REQUIRE_UNARY(x, y)                                                                        \
    do {                                                                                           \
        SADM_REQUIRE_PTR(x);                                                                       \
        SADM_REQUIRE_PTR(y);                                                                       \
    } while (0)

sadm_status sadm_gelu_forward(size_t n, const float *x, float *y) {
    REQUIRE_UNARY(x, y);
    run_unary(sadm_kernels_active()->gelu, n, x, y);
    return SADM_OK;
}

sadm_status sadm_gelu_backward(size_t n, const float *x, const float *dy, float *dx) {
    REQUIRE_UNARY(x, dy);
    SADM_REQUIRE_PTR(dx);
    run_unary_backward(sadm_kernels_active()->gelu_backward, n, x, dy, dx);
    return SADM_OK;
}

sadm_status sadm_silu_forward(size_t n, const float *x, float *y) {
    REQUIRE_UNARY(x, y);
    run_unary(sadm_kernels_active()->silu, n, x, y);
    return SADM_OK;
}

sadm_status sadm_silu_backward(size_t n, const float *x, const float *dy, float *dx) {
    REQUIRE_UNARY(x, dy);
    SADM_REQUIRE_PTR(dx);
    run_unary_backward(sadm_kernels_active()->silu_backward, n, x, dy, dx);
    return SADM_OK;
}

sadm_status sadm_add(size_t n, const float *a, const float *b, float *out) {
    SADM_REQUIRE_PTR(a);
    SADM_REQUIRE_PTR(b);
    SADM_REQUIRE_PTR(out);
    const sadm_kernels *k = sadm_kernels_active();
    SADM_FOR_CHUNKS(n, i0, len) k->add(len, a + i0, b + i0, out + i0);
    return SADM_OK;
}

sadm_status sadm_softmax_forward(size_t rows, size_t C, const float *x, float *y) {
    REQUIRE_UNARY(x, y);
    SADM_REQUIRE_POSITIVE(C);
    const sadm_kernels *k = sadm_kernels_active();
#pragma omp parallel for schedule(static)
    for (long r = 0; r < (long)rows; r++) k->softmax(C, x + r * C, y + r * C);
    return SADM_OK;
}

sadm_status sadm_softmax_backward(size_t rows, size_t C, const float *y, const float *dy, float *dx) {
    REQUIRE_UNARY(y, dy);
    SADM_REQUIRE_PTR(dx);
    SADM_REQUIRE_POSITIVE(C);
    const sadm_kernels *k = sadm_kernels_active();
#pragma omp parallel for schedule(static)
    for (long r = 0; r < (long)rows; r++) k->softmax_backward(C, y + r * C, dy + r * C, dx + r * C);
    return SADM_OK;
}

sadm_status sadm_layernorm_forward(size_t rows, size_t C, const float *x, const float *w, const float *b,
                                   float eps, float *y, float *mean, float *rstd) {
    REQUIRE_UNARY(x, y);
    SADM_REQUIRE_POSITIVE(C);
    SADM_REQUIRE(eps >= 0.0f, "sadm_layernorm_forward: eps must be >= 0, got %g", eps);
    const sadm_kernels *k = sadm_kernels_active();
#pragma omp parallel for schedule(static)
    for (long r = 0; r < (long)rows; r++)
        k->layernorm(C, x + r * C, w, b, eps, y + r * C, mean ? mean + r : NULL, rstd ? rstd + r : NULL);
    return SADM_OK;
}

/* dx rows are independent. dw and db sum over rows: each fixed block of rows adds into its
 * own partial, and the partials are then added in block order. */
#define LN_ROW_BLOCK 64

sadm_status sadm_layernorm_backward(size_t rows, size_t C, const float *x, const float *w,
                                    const float *mean, const float *rstd, const float *dy,
                                    float *dx, float *dw, float *db) {
    SADM_REQUIRE_PTR(x);
    SADM_REQUIRE_PTR(mean);
    SADM_REQUIRE_PTR(rstd);
    SADM_REQUIRE_PTR(dy);
    SADM_REQUIRE_POSITIVE(C);
    const sadm_kernels *k = sadm_kernels_active();
    long blocks = (long)sadm_chunks(rows, LN_ROW_BLOCK);
    int want_params = dw || db;
    float *partial = NULL;
    sadm_scratch_mark mk = sadm_scratch_mark_get();
    if (want_params) {
        size_t floats = (size_t)blocks * 2 * C;
        partial = sadm_scratch_take(floats * sizeof(float));
        if (!partial) return sadm_error(SADM_ERR_NOMEM, "sadm_layernorm_backward: out of memory");
        memset(partial, 0, floats * sizeof(float));
    }
#pragma omp parallel for schedule(static)
    for (long bl = 0; bl < blocks; bl++) {
        size_t r0 = (size_t)bl * LN_ROW_BLOCK, r1 = r0 + LN_ROW_BLOCK < rows ? r0 + LN_ROW_BLOCK : rows;
        float *pw = dw ? partial + (size_t)bl * 2 * C : NULL;
        float *pb = db ? partial + (size_t)bl * 2 * C + C : NULL;
        for (size_t r = r0; r < r1; r++)
            k->layernorm_backward(C, x + r * C, w, mean[r], rstd[r], dy + r * C, dx ? dx + r * C : NULL, pw, pb);
    }
    if (want_params) {
        const size_t cb = 256;
        long cblocks = (long)sadm_chunks(C, cb);
#pragma omp parallel for schedule(static)
        for (long c = 0; c < cblocks; c++) {
            size_t c0 = (size_t)c * cb, len = C - c0 < cb ? C - c0 : cb;
            for (long bl = 0; bl < blocks; bl++) {
                const float *p = partial + (size_t)bl * 2 * C;
                if (dw) k->add(len, dw + c0, p + c0, dw + c0);
                if (db) k->add(len, db + c0, p + C + c0, db + c0);
            }
        }
        sadm_scratch_release(mk);
    }
    return SADM_OK;
}

#define REQUIRE_BTC(B, T, C)                                                                       \
    SADM_REQUIRE((B) > 0 && (T) > 0 && (C) > 0, "%s: B, T and C must be positive, got %d, %d, %d", \
                 __func__, (B), (T), (C))

sadm_status sadm_modulate_forward(int B, int T, int C, const float *x, const float *shift, const float *scale,
                                  float *y) {
    REQUIRE_BTC(B, T, C);
    SADM_REQUIRE_PTR(x);
    SADM_REQUIRE_PTR(shift);
    SADM_REQUIRE_PTR(scale);
    SADM_REQUIRE_PTR(y);
    const sadm_kernels *k = sadm_kernels_active();
#pragma omp parallel for schedule(static)
    for (long r = 0; r < (long)B * T; r++) {
        size_t b = (size_t)r / T;
        k->modulate(C, x + r * C, shift + b * C, scale + b * C, y + r * C);
    }
    return SADM_OK;
}

/* Per-sample parameter gradients sum over tokens: threads own (sample, channel block)
 * pairs and walk the tokens in order. */
#define CHANNEL_BLOCK 128

sadm_status sadm_modulate_backward(int B, int T, int C, const float *x, const float *scale, const float *dy,
                                   float *dx, float *dshift, float *dscale) {
    REQUIRE_BTC(B, T, C);
    SADM_REQUIRE_PTR(x);
    SADM_REQUIRE_PTR(scale);
    SADM_REQUIRE_PTR(dy);
    const sadm_kernels *k = sadm_kernels_active();
    int cblocks = (C + CHANNEL_BLOCK - 1) / CHANNEL_BLOCK;
#pragma omp parallel for schedule(static)
    for (long task = 0; task < (long)B * cblocks; task++) {
        size_t b = task / cblocks, c0 = (size_t)(task % cblocks) * CHANNEL_BLOCK;
        size_t len = C - c0 < CHANNEL_BLOCK ? C - c0 : CHANNEL_BLOCK;
        for (size_t t = 0; t < (size_t)T; t++) {
            size_t off = (b * T + t) * C + c0;
            k->modulate_backward(len, x + off, scale + b * C + c0, dy + off, dx ? dx + off : NULL,
                                 dshift ? dshift + b * C + c0 : NULL, dscale ? dscale + b * C + c0 : NULL);
        }
    }
    return SADM_OK;
}

sadm_status sadm_gated_add_forward(int B, int T, int C, const float *x, const float *g, const float *y, float *out) {
    REQUIRE_BTC(B, T, C);
    SADM_REQUIRE_PTR(x);
    SADM_REQUIRE_PTR(g);
    SADM_REQUIRE_PTR(y);
    SADM_REQUIRE_PTR(out);
    const sadm_kernels *k = sadm_kernels_active();
#pragma omp parallel for schedule(static)
    for (long r = 0; r < (long)B * T; r++) {
        size_t b = (size_t)r / T;
        k->gated_add(C, x + r * C, g + b * C, y + r * C, out + r * C);
    }
    return SADM_OK;
}

sadm_status sadm_gated_add_backward(int B, int T, int C, const float *g, const float *y, const float *dout,
                                    float *dx, float *dg, float *dy) {
    REQUIRE_BTC(B, T, C);
    SADM_REQUIRE_PTR(g);
    SADM_REQUIRE_PTR(y);
    SADM_REQUIRE_PTR(dout);
    const sadm_kernels *k = sadm_kernels_active();
    int cblocks = (C + CHANNEL_BLOCK - 1) / CHANNEL_BLOCK;
#pragma omp parallel for schedule(static)
    for (long task = 0; task < (long)B * cblocks; task++) {
        size_t b = task / cblocks, c0 = (size_t)(task % cblocks) * CHANNEL_BLOCK;
        size_t len = C - c0 < CHANNEL_BLOCK ? C - c0 : CHANNEL_BLOCK;
        for (size_t t = 0; t < (size_t)T; t++) {
            size_t off = (b * T + t) * C + c0;
            k->gated_add_backward(len, g + b * C + c0, y + off, dout + off, dx ? dx + off : NULL,
                                  dg ? dg + b * C + c0 : NULL, dy ? dy + off : NULL);
        }
    }
    return SADM_OK;
}

sadm_status sadm_mean_tokens_forward(int B, int T, int C, const float *x, float *y) {
    REQUIRE_BTC(B, T, C);
    SADM_REQUIRE_PTR(x);
    SADM_REQUIRE_PTR(y);
    const sadm_kernels *k = sadm_kernels_active();
    int cblocks = (C + CHANNEL_BLOCK - 1) / CHANNEL_BLOCK;
#pragma omp parallel for schedule(static)
    for (long task = 0; task < (long)B * cblocks; task++) {
        size_t b = task / cblocks, c0 = (size_t)(task % cblocks) * CHANNEL_BLOCK;
        size_t len = C - c0 < CHANNEL_BLOCK ? C - c0 : CHANNEL_BLOCK;
        float *out = y + b * C + c0;
        memset(out, 0, len * sizeof(float));
        for (size_t t = 0; t < (size_t)T; t++) k->add(len, out, x + (b * T + t) * C + c0, out);
        k->scale(len, out, 1.0f / (float)T);
    }
    return SADM_OK;
}

sadm_status sadm_mean_tokens_backward(int B, int T, int C, const float *dy, float *dx) {
    REQUIRE_BTC(B, T, C);
    SADM_REQUIRE_PTR(dy);
    SADM_REQUIRE_PTR(dx);
    const sadm_kernels *k = sadm_kernels_active();
#pragma omp parallel for schedule(static)
    for (long r = 0; r < (long)B * T; r++) k->axpy(C, 1.0f / (float)T, dy + (r / T) * C, dx + r * C);
    return SADM_OK;
}

sadm_status sadm_relu_forward(size_t n, const float *x, float *y) {
    REQUIRE_UNARY(x, y);
    SADM_FOR_CHUNKS(n, i0, len) {
        for (size_t i = i0; i < i0 + len; i++) y[i] = x[i] > 0.0f ? x[i] : 0.0f;
    }
    return SADM_OK;
}

sadm_status sadm_relu_backward(size_t n, const float *x, const float *dy, float *dx) {
    REQUIRE_UNARY(x, dy);
    SADM_REQUIRE_PTR(dx);
    SADM_FOR_CHUNKS(n, i0, len) {
        for (size_t i = i0; i < i0 + len; i++) dx[i] = x[i] > 0.0f ? dy[i] : 0.0f;
    }
    return SADM_OK;
}

/* Each row's loss goes to its own slot; the mean is summed in row order afterwards, so
 * the result does not depend on the thread count. */
sadm_status sadm_cross_entropy(size_t N, int C, const float *logits, const int64_t *labels, double *loss,
                               float *dlogits) {
    SADM_REQUIRE_POSITIVE(N);
    SADM_REQUIRE_POSITIVE(C);
    SADM_REQUIRE_PTR(logits);
    SADM_REQUIRE_PTR(labels);
    for (size_t r = 0; r < N; r++)
        SADM_REQUIRE(labels[r] >= 0 && labels[r] < C, "sadm_cross_entropy: label %lld of row %zu is outside [0, %d)",
                     (long long)labels[r], r, C);
    sadm_scratch_mark mk = sadm_scratch_mark_get();
    double *row_loss = sadm_scratch_take(N * sizeof(double));
    if (!row_loss) return sadm_error(SADM_ERR_NOMEM, "sadm_cross_entropy: out of memory");
    int bad = 0;
#pragma omp parallel for schedule(static) reduction(| : bad)
    for (long r = 0; r < (long)N; r++) {
        const float *z = logits + (size_t)r * C;
        double mx = z[0];
        for (int c = 1; c < C; c++)
            if (z[c] > mx) mx = z[c];
        double se = 0;
        for (int c = 0; c < C; c++) se += exp((double)z[c] - mx);
        double lse = mx + log(se);
        row_loss[r] = lse - z[labels[r]];
        if (!isfinite(row_loss[r])) bad = 1;
        if (dlogits) {
            float *d = dlogits + (size_t)r * C;
            for (int c = 0; c < C; c++)
                d[c] = (float)((exp((double)z[c] - lse) - (c == labels[r] ? 1.0 : 0.0)) / (double)N);
        }
    }
    double sum = 0;
    for (size_t r = 0; r < N; r++) sum += row_loss[r];
    sadm_scratch_release(mk);
    if (bad) return sadm_error(SADM_ERR_NUMERIC, "sadm_cross_entropy: non-finite logits");
    if (loss) *loss = sum / (double)N;
    return SADM_OK;
}
