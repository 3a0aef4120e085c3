/* Streaming mean and covariance of feature vectors in double precision, as the FID
 * pipeline needs them (50k × 2048 features never sit in memory at once). Rows are
 * centred on a pivot (the first row seen) before their outer products are summed, so
 * that a large common mean does not cancel away the covariance's digits:
 *   cov = (sum (x-K)(x-K)^T - n (m-K)(m-K)^T) / (n - 1),  m = K + sum(x-K)/n.
 * Each element of the sum is one dot product over the batch, computed by one thread in
 * a fixed order, so results do not depend on the thread count. */
#include <stdlib.h>
#include <string.h>

#include "../internal.h"

struct sadm_feature_stats {
    int dim;
    size_t n;
    double *pivot, *sum, *outer; /* dim, dim, dim×dim (upper triangle used) */
    double *xt;                  /* (dim, cap) centred batch, transposed */
    size_t cap;
};

sadm_status sadm_feature_stats_create(int dim, sadm_feature_stats **out) {
    SADM_REQUIRE_PTR(out);
    SADM_REQUIRE(dim > 0 && dim <= 65536, "sadm_feature_stats_create: dim must lie in [1, 65536], got %d", dim);
    *out = NULL;
    sadm_feature_stats *s = calloc(1, sizeof *s);
    if (!s) return sadm_error(SADM_ERR_NOMEM, "feature statistics: out of memory");
    s->dim = dim;
    s->pivot = sadm_calloc((size_t)dim, sizeof(double));
    s->sum = sadm_calloc((size_t)dim, sizeof(double));
    s->outer = sadm_calloc((size_t)dim * dim, sizeof(double));
    if (!s->pivot || !s->sum || !s->outer) {
        sadm_feature_stats_free(s);
        return sadm_error(SADM_ERR_NOMEM, "feature statistics: out of memory for %d×%d doubles", dim, dim);
    }
    *out = s;
    return SADM_OK;
}

void sadm_feature_stats_free(sadm_feature_stats *s) {
    if (!s) return;
    sadm_free(s->pivot), sadm_free(s->sum), sadm_free(s->outer), sadm_free(s->xt);
    free(s);
}

size_t sadm_feature_stats_count(const sadm_feature_stats *s) { return s ? s->n : 0; }
int sadm_feature_stats_dim(const sadm_feature_stats *s) { return s ? s->dim : 0; }

sadm_status sadm_feature_stats_add(sadm_feature_stats *s, size_t n, const float *x) {
    SADM_REQUIRE_PTR(s);
    SADM_REQUIRE_PTR(x);
    if (n == 0) return SADM_OK;
    size_t D = (size_t)s->dim;
    for (size_t i = 0; i < n * D; i++)
        if (!(x[i] == x[i]) || x[i] - x[i] != 0)
            return sadm_error(SADM_ERR_NUMERIC, "feature statistics: feature %zu of row %zu is %g", i % D,
                              s->n + i / D, x[i]);
    if (s->n == 0)
        for (size_t j = 0; j < D; j++) s->pivot[j] = x[j];
    if (n > s->cap) {
        sadm_free(s->xt);
        s->cap = 0;
        if (!(s->xt = sadm_alloc(D * n * sizeof(double))))
            return sadm_error(SADM_ERR_NOMEM, "feature statistics: out of memory for a batch of %zu", n);
        s->cap = n;
    }
    for (size_t r = 0; r < n; r++)
        for (size_t j = 0; j < D; j++) {
            double v = (double)x[r * D + j] - s->pivot[j];
            s->xt[j * n + r] = v;
        }
    for (size_t j = 0; j < D; j++) {
        double a = 0;
        for (size_t r = 0; r < n; r++) a += s->xt[j * n + r];
        s->sum[j] += a;
    }
    const double *xt = s->xt;
#pragma omp parallel for schedule(dynamic, 8)
    for (long i = 0; i < (long)D; i++) {
        const double *xi = xt + (size_t)i * n;
        double *row = s->outer + (size_t)i * D;
        for (size_t j = (size_t)i; j < D; j++) {
            const double *xj = xt + j * n;
            double a = 0;
            for (size_t r = 0; r < n; r++) a += xi[r] * xj[r];
            row[j] += a;
        }
    }
    s->n += n;
    return SADM_OK;
}

sadm_status sadm_feature_stats_get(const sadm_feature_stats *s, double *mu, double *sigma) {
    SADM_REQUIRE_PTR(s);
    SADM_REQUIRE(s->n >= 2, "feature statistics: %zu sample%s, need at least 2 for a covariance", s->n,
                 s->n == 1 ? "" : "s");
    size_t D = (size_t)s->dim;
    double n = (double)s->n;
    for (size_t j = 0; j < D; j++)
        if (mu) mu[j] = s->pivot[j] + s->sum[j] / n;
    if (sigma)
        for (size_t i = 0; i < D; i++)
            for (size_t j = i; j < D; j++) {
                double c = (s->outer[i * D + j] - s->sum[i] * s->sum[j] / n) / (n - 1);
                sigma[i * D + j] = sigma[j * D + i] = c;
            }
    return SADM_OK;
}
