/* Inception Score and improved precision/recall, as ADM's evaluator computes them.
 *  - Inception Score: softmax of the 1008 logits; per split of `split_size` samples,
 *    exp(mean_i KL(p(y|x_i) || p(y))) with p(y) the split's mean; the mean over splits.
 *  - Precision/recall (Kynkäänniemi et al. 2019, k nearest neighbours): the radius of a
 *    feature vector is the squared distance to its k-th nearest neighbour in its own set
 *    (itself excluded); precision is the fraction of samples inside at least one reference
 *    ball, recall the fraction of references inside at least one sample ball. Distances are
 *    squared Euclidean in float32 from |a|^2 + |b|^2 - 2 a.b (ADM first tries float16;
 *    libsadm stays in float32), computed a block of rows at a time. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "../internal.h"

sadm_status sadm_inception_score(size_t N, int classes, const float *logits, size_t split_size, double *score) {
    SADM_REQUIRE(N > 0 && classes > 1, "sadm_inception_score: need samples and classes, got %zu and %d", N, classes);
    SADM_REQUIRE_PTR(logits);
    SADM_REQUIRE_PTR(score);
    SADM_REQUIRE(split_size > 0, "sadm_inception_score: split_size must be positive");
    size_t C = (size_t)classes;
    double *p = malloc(split_size * C * sizeof(double)), *py = malloc(C * sizeof(double));
    if (!p || !py) {
        free(p), free(py);
        return sadm_error(SADM_ERR_NOMEM, "sadm_inception_score: out of memory");
    }
    double total = 0;
    size_t splits = 0;
    for (size_t s0 = 0; s0 < N; s0 += split_size, splits++) {
        size_t n = N - s0 < split_size ? N - s0 : split_size;
        memset(py, 0, C * sizeof(double));
        for (size_t i = 0; i < n; i++) {
            const float *l = logits + (s0 + i) * C;
            double mx = l[0], sum = 0;
            for (size_t c = 1; c < C; c++) mx = l[c] > mx ? l[c] : mx;
            for (size_t c = 0; c < C; c++) sum += (p[i * C + c] = exp((double)l[c] - mx));
            for (size_t c = 0; c < C; c++) p[i * C + c] /= sum, py[c] += p[i * C + c] / (double)n;
        }
        double kl = 0;
        for (size_t i = 0; i < n; i++)
            for (size_t c = 0; c < C; c++) {
                double v = p[i * C + c];
                if (v > 0) kl += v * (log(v) - log(py[c]));
            }
        total += exp(kl / (double)n);
    }
    free(p), free(py);
    *score = total / (double)splits;
    return SADM_OK;
}

#define PR_ROWS 256

static void sq_norms(size_t n, int D, const float *x, float *out) {
#pragma omp parallel for schedule(static)
    for (long i = 0; i < (long)n; i++) {
        double s = 0;
        for (int d = 0; d < D; d++) s += (double)x[(size_t)i * D + d] * x[(size_t)i * D + d];
        out[i] = (float)s;
    }
}

/* dist (r × nb) = squared distances of rows a (r × D) to rows b (nb × D). */
static void distances(size_t r, size_t nb, int D, const float *a, const float *na, const float *b, const float *nbv,
                      float *dist) {
    sadm_gemm(SADM_NO_TRANS, SADM_TRANS, (int)r, (int)nb, D, -2.0f, a, D, b, D, 0.0f, dist, (int)nb);
#pragma omp parallel for schedule(static)
    for (long i = 0; i < (long)r; i++)
        for (size_t j = 0; j < nb; j++) {
            float v = dist[(size_t)i * nb + j] + na[i] + nbv[j];
            dist[(size_t)i * nb + j] = v > 0 ? v : 0;
        }
}

/* The k-th smallest (0-based) of v: the k + 1 smallest kept sorted by insertion (k is
 * small: ADM's 3). */
static float kth_smallest(const float *v, size_t n, size_t k) {
    float best[64];
    size_t have = 0;
    for (size_t i = 0; i < n; i++) {
        float x = v[i];
        if (have == k + 1 && !(x < best[k])) continue;
        size_t j = have < k + 1 ? have++ : k;
        while (j > 0 && best[j - 1] > x) best[j] = best[j - 1], j--;
        best[j] = x;
    }
    return best[k];
}

/* radii[i] = squared distance of x_i to its k-th nearest neighbour in x (itself excluded). */
static sadm_status radii_of(size_t n, int D, const float *x, const float *nx, int k, float *radii) {
    float *dist = sadm_alloc((size_t)PR_ROWS * n * sizeof(float));
    if (!dist) return sadm_error(SADM_ERR_NOMEM, "precision/recall: out of memory for %d×%zu distances", PR_ROWS, n);
    for (size_t r0 = 0; r0 < n; r0 += PR_ROWS) {
        size_t r = n - r0 < PR_ROWS ? n - r0 : PR_ROWS;
        distances(r, n, D, x + r0 * D, nx + r0, x, nx, dist);
#pragma omp parallel for schedule(static)
        for (long i = 0; i < (long)r; i++) {
            dist[(size_t)i * n + r0 + (size_t)i] = 0; /* itself, exactly */
            radii[r0 + (size_t)i] = kth_smallest(dist + (size_t)i * n, n, (size_t)k);
        }
    }
    sadm_free(dist);
    return SADM_OK;
}

/* Fraction of rows of a inside at least one ball (centre b_j, squared radius rb_j). */
static sadm_status coverage(size_t na, const float *a, const float *nav, size_t nb, const float *b, const float *nbv,
                            const float *rb, int D, double *fraction) {
    float *dist = sadm_alloc((size_t)PR_ROWS * nb * sizeof(float));
    if (!dist) return sadm_error(SADM_ERR_NOMEM, "precision/recall: out of memory for %d×%zu distances", PR_ROWS, nb);
    size_t inside = 0;
    for (size_t r0 = 0; r0 < na; r0 += PR_ROWS) {
        size_t r = na - r0 < PR_ROWS ? na - r0 : PR_ROWS;
        distances(r, nb, D, a + r0 * D, nav + r0, b, nbv, dist);
        for (size_t i = 0; i < r; i++)
            for (size_t j = 0; j < nb; j++)
                if (dist[i * nb + j] <= rb[j]) {
                    inside++;
                    break;
                }
    }
    sadm_free(dist);
    *fraction = (double)inside / (double)na;
    return SADM_OK;
}

sadm_status sadm_precision_recall(size_t n_ref, const float *ref, size_t n_sample, const float *sample, int dim, int k,
                                  double *precision, double *recall) {
    SADM_REQUIRE_PTR(ref);
    SADM_REQUIRE_PTR(sample);
    SADM_REQUIRE_POSITIVE(dim);
    SADM_REQUIRE(k >= 1 && k < 64 && (size_t)k < n_ref && (size_t)k < n_sample,
                 "precision/recall: k = %d must lie in [1, 63] and below the size of each set (%zu references, %zu samples)", k, n_ref,
                 n_sample);
    float *nr = malloc(n_ref * sizeof(float)), *ns = malloc(n_sample * sizeof(float));
    float *rr = malloc(n_ref * sizeof(float)), *rs = malloc(n_sample * sizeof(float));
    sadm_status st = SADM_OK;
    if (!nr || !ns || !rr || !rs) st = sadm_error(SADM_ERR_NOMEM, "precision/recall: out of memory");
    if (!st) {
        sq_norms(n_ref, dim, ref, nr);
        sq_norms(n_sample, dim, sample, ns);
        st = radii_of(n_ref, dim, ref, nr, k, rr);
    }
    if (!st) st = radii_of(n_sample, dim, sample, ns, k, rs);
    double p = 0, r = 0;
    if (!st) st = coverage(n_sample, sample, ns, n_ref, ref, nr, rr, dim, &p);
    if (!st) st = coverage(n_ref, ref, nr, n_sample, sample, ns, rs, dim, &r);
    if (!st) {
        if (precision) *precision = p;
        if (recall) *recall = r;
    }
    free(nr), free(ns), free(rr), free(rs);
    return st;
}
