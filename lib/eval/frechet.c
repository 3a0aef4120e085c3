/* Fréchet distance between two Gaussians, as FID defines it:
 *   |mu1 - mu2|^2 + tr S1 + tr S2 - 2 tr sqrt(S1 S2),
 * with tr sqrt(S1 S2) from symmetric eigenvalue problems (LAPACK dsyevd from OpenBLAS, or
 * pivoted Cholesky + Householder + QL in builds without it), negative eigenvalues of
 * rounding clipped to zero. Unlike
 * scipy.linalg.sqrtm of the non-symmetric S1 S2 this needs no eps-offset fallback for
 * singular covariances and never returns a complex or NaN trace. */
#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "../internal.h"

/* Eigenvalues of a PSD matrix may dip below zero by rounding only. */
static int clearly_negative(size_t n, const double *w) {
    double big = 0, low = 0;
    for (size_t i = 0; i < n; i++) big = fmax(big, fabs(w[i])), low = fmin(low, w[i]);
    return low < -1e-6 * big;
}


#ifdef SADM_HAVE_OPENBLAS
#include <cblas.h>
/* LAPACK (Fortran interface; the trailing lengths are gfortran's hidden string lengths) */
void dsyevd_(const char *jobz, const char *uplo, const int *n, double *a, const int *lda, double *w, double *work,
             const int *lwork, int *iwork, const int *liwork, int *info, size_t jobz_len, size_t uplo_len);

/* Eigenvalues w (ascending) of the symmetric a (n×n, overwritten); with vectors, row k of a
 * becomes eigenvector k (a column-major result read row-major). */
static int sym_eig(int n, double *a, double *w, int vectors) {
    char jobz = vectors ? 'V' : 'N', uplo = 'U';
    int lwork = -1, liwork = -1, info = 0, iq;
    double wq;
    dsyevd_(&jobz, &uplo, &n, a, &n, w, &wq, &lwork, &iq, &liwork, &info, 1, 1);
    if (info) return info;
    lwork = (int)wq, liwork = iq;
    double *work = malloc((size_t)lwork * sizeof(double));
    int *iwork = malloc((size_t)liwork * sizeof(int));
    if (!work || !iwork) info = -1000;
    else dsyevd_(&jobz, &uplo, &n, a, &n, w, work, &lwork, iwork, &liwork, &info, 1, 1);
    free(work), free(iwork);
    return info;
}

/* tr sqrt(S1 S2) = tr sqrt(R S2 R), R = sqrt(S1) = V^T diag(sqrt(max(w, 0))) V (V's rows the
 * eigenvectors), both through dsyevd. */
static sadm_status trace_sqrt_product(int dim, const double *s1, const double *s2, double *tr) {
    size_t n = (size_t)dim, nn = n * n;
    double *a = malloc(nn * sizeof(double)), *r = malloc(nn * sizeof(double)), *t = malloc(nn * sizeof(double));
    double *w = malloc(n * sizeof(double));
    sadm_status st = SADM_OK;
    int info = 0;
    if (!a || !r || !t || !w) {
        st = sadm_error(SADM_ERR_NOMEM, "Fréchet distance: out of memory for dimension %d", dim);
        goto done;
    }
    memcpy(a, s1, nn * sizeof(double));
    if ((info = sym_eig(dim, a, w, 1))) {
        st = sadm_error(SADM_ERR_NUMERIC, "Fréchet distance: eigen-decomposition of covariance 1 failed (info %d)", info);
        goto done;
    }
    if (clearly_negative(n, w)) {
        st = sadm_error(SADM_ERR_NUMERIC, "Fréchet distance: covariance 1 is not positive semi-definite (an eigenvalue is %g)", w[0]);
        goto done;
    }
    for (size_t k = 0; k < n; k++) {
        double sw = w[k] > 0 ? sqrt(w[k]) : 0;
        for (size_t j = 0; j < n; j++) t[k * n + j] = sw * a[k * n + j];
    }
    cblas_dgemm(CblasRowMajor, CblasTrans, CblasNoTrans, dim, dim, dim, 1.0, a, dim, t, dim, 0.0, r, dim);
    /* M = R S2 R, symmetrised against rounding; tr sqrt(M) from its eigenvalues */
    cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, dim, dim, dim, 1.0, r, dim, s2, dim, 0.0, t, dim);
    cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, dim, dim, dim, 1.0, t, dim, r, dim, 0.0, a, dim);
    for (size_t i = 0; i < n; i++)
        for (size_t j = i + 1; j < n; j++) a[i * n + j] = a[j * n + i] = 0.5 * (a[i * n + j] + a[j * n + i]);
    if ((info = sym_eig(dim, a, w, 0))) {
        st = sadm_error(SADM_ERR_NUMERIC, "Fréchet distance: eigen-decomposition of sqrt(S1) S2 sqrt(S1) failed (info %d)",
                        info);
        goto done;
    }
    if (clearly_negative(n, w)) {
        st = sadm_error(SADM_ERR_NUMERIC, "Fréchet distance: covariance 2 is not positive semi-definite (sqrt(S1) S2 sqrt(S1) has "
                                          "the eigenvalue %g)", w[0]);
        goto done;
    }
    *tr = 0;
    for (size_t i = 0; i < n; i++) *tr += w[i] > 0 ? sqrt(w[i]) : 0;
done:
    free(a), free(r), free(t), free(w);
    return st;
}
#else
/* Builds without LAPACK. The eigenvalues of S1 S2 are those of L^T S2 L for any factor
 * S1 = L L^T, so: a Cholesky factor of S1 with symmetric pivoting (which stops at S1's
 * numerical rank, as covariances of fewer samples than dimensions are singular), the
 * r×r matrix L^T S2 L, its eigenvalues by Householder tridiagonalisation and implicit QL.
 * About 3 n^3 operations in all, where eigenvectors by Jacobi rotations took minutes at
 * n = 2048. */

/* W (n×n, symmetric, overwritten) = P S1 P^T; on return its lower trapezoid's first *rank
 * columns hold L, perm the pivot order. */
static void pivoted_cholesky(int n, double *W, int *perm, int *rank) {
    double maxdiag = 0;
    for (int i = 0; i < n; i++) {
        perm[i] = i;
        if (W[(size_t)i * n + i] > maxdiag) maxdiag = W[(size_t)i * n + i];
    }
    double tol = (double)n * DBL_EPSILON * maxdiag;
    int k = 0;
    for (; k < n; k++) {
        int j = k;
        for (int i = k + 1; i < n; i++)
            if (W[(size_t)i * n + i] > W[(size_t)j * n + j]) j = i;
        if (!(W[(size_t)j * n + j] > tol)) break;
        if (j != k) { /* swap rows and columns k and j */
            for (int c = 0; c < n; c++) {
                double t = W[(size_t)k * n + c];
                W[(size_t)k * n + c] = W[(size_t)j * n + c], W[(size_t)j * n + c] = t;
            }
            for (int r = 0; r < n; r++) {
                double t = W[(size_t)r * n + k];
                W[(size_t)r * n + k] = W[(size_t)r * n + j], W[(size_t)r * n + j] = t;
            }
            int t = perm[k];
            perm[k] = perm[j], perm[j] = t;
        }
        double lkk = sqrt(W[(size_t)k * n + k]);
        W[(size_t)k * n + k] = lkk;
        for (int i = k + 1; i < n; i++) W[(size_t)i * n + k] /= lkk;
        /* Schur complement of the trailing block, whole rows (both triangles) for contiguity */
#pragma omp parallel for schedule(static)
        for (int i = k + 1; i < n; i++) {
            double li = W[(size_t)i * n + k];
            double *row = W + (size_t)i * n;
            for (int c = k + 1; c < n; c++) row[c] -= li * W[(size_t)c * n + k];
        }
    }
    *rank = k;
}

/* Eigenvalues d (n) of the symmetric A (n×n, overwritten): Householder reduction to
 * tridiagonal form (full storage, rank-2 updates by rows), then implicit QL with
 * Wilkinson-like shifts. 0, or -1 when QL does not converge. */
static int sym_eigenvalues(int n, double *A, double *d) {
    double *e = calloc((size_t)n, sizeof(double)), *p = malloc((size_t)n * sizeof(double));
    if (!e || !p) {
        free(e), free(p);
        return -1000;
    }
    for (int i = n - 1; i >= 1; i--) {
        int l = i - 1;
        double *u = A + (size_t)i * n; /* row i, its first i entries are the vector */
        double scale = 0;
        for (int k = 0; k <= l; k++) scale += fabs(u[k]);
        d[i] = A[(size_t)i * n + i];
        if (l == 0 || scale == 0) {
            e[i] = u[l];
            continue;
        }
        double h = 0;
        for (int k = 0; k <= l; k++) u[k] /= scale, h += u[k] * u[k];
        double f = u[l], g = f >= 0 ? -sqrt(h) : sqrt(h);
        e[i] = scale * g;
        h -= f * g;
        u[l] = f - g;
        /* p = A u / h on the leading block; K = u.p / 2h; q = p - K u; A -= u q^T + q u^T */
#pragma omp parallel for schedule(static)
        for (int j = 0; j <= l; j++) {
            const double *row = A + (size_t)j * n;
            double s = 0;
            for (int k = 0; k <= l; k++) s += row[k] * u[k];
            p[j] = s / h;
        }
        double K = 0;
        for (int j = 0; j <= l; j++) K += u[j] * p[j];
        K /= 2 * h;
        for (int j = 0; j <= l; j++) p[j] -= K * u[j];
#pragma omp parallel for schedule(static)
        for (int j = 0; j <= l; j++) {
            double *row = A + (size_t)j * n, uj = u[j], qj = p[j];
            for (int k = 0; k <= l; k++) row[k] -= uj * p[k] + qj * u[k];
        }
    }
    d[0] = A[0];
    /* e[i] couples i-1 and i; QL wants e[i] between i and i+1 */
    for (int i = 1; i < n; i++) e[i - 1] = e[i];
    e[n - 1] = 0;
    int status = 0;
    for (int l = 0; l < n && !status; l++) {
        int iter = 0, m;
        do {
            for (m = l; m < n - 1; m++) {
                double dd = fabs(d[m]) + fabs(d[m + 1]);
                if (fabs(e[m]) <= DBL_EPSILON * dd) break;
            }
            if (m == l) break;
            if (iter++ == 60) {
                status = -1;
                break;
            }
            double g = (d[l + 1] - d[l]) / (2 * e[l]), r = hypot(g, 1.0);
            g = d[m] - d[l] + e[l] / (g + (g >= 0 ? r : -r));
            double s = 1, c = 1, pp = 0;
            int i;
            for (i = m - 1; i >= l; i--) {
                double f = s * e[i], b = c * e[i];
                e[i + 1] = r = hypot(f, g);
                if (r == 0) { /* underflow: deflate and start again */
                    d[i + 1] -= pp;
                    e[m] = 0;
                    break;
                }
                s = f / r, c = g / r;
                g = d[i + 1] - pp;
                r = (d[i] - g) * s + 2 * c * b;
                pp = s * r;
                d[i + 1] = g + pp;
                g = c * r - b;
            }
            if (r == 0 && i >= l) continue;
            d[l] -= pp;
            e[l] = g;
            e[m] = 0;
        } while (m != l);
    }
    free(e), free(p);
    return status;
}

static sadm_status trace_sqrt_product(int dim, const double *s1, const double *s2, double *tr) {
    size_t n = (size_t)dim, nn = n * n;
    double *W = malloc(nn * sizeof(double)), *T = malloc(nn * sizeof(double)), *w = malloc(n * sizeof(double));
    int *perm = malloc(n * sizeof(int)), rank = 0;
    sadm_status st = SADM_OK;
    if (!W || !T || !w || !perm) {
        st = sadm_error(SADM_ERR_NOMEM, "Fréchet distance: out of memory for dimension %d", dim);
        goto done;
    }
    memcpy(W, s1, nn * sizeof(double));
    pivoted_cholesky(dim, W, perm, &rank);
    *tr = 0;
    if (rank == 0) goto done; /* S1 = 0 */
    /* T (n×r) = P S2 P^T L: row i is sum_c S2[perm_i][perm_c] L[c][:] over c >= column */
    size_t r = (size_t)rank;
#pragma omp parallel for schedule(static)
    for (long i = 0; i < (long)n; i++) {
        double *t = T + (size_t)i * r;
        for (size_t k = 0; k < r; k++) t[k] = 0;
        const double *srow = s2 + (size_t)perm[i] * n;
        for (size_t c = 0; c < n; c++) {
            double v = srow[perm[c]];
            const double *lc = W + c * n;
            size_t kmax = c < r ? c + 1 : r; /* L[c][k] is zero for k > c */
            for (size_t k = 0; k < kmax; k++) t[k] += v * lc[k];
        }
    }
    /* M (r×r) = L^T T, kept in W's place after L is no longer needed: build it in w's
     * companion buffer first */
    double *M = malloc(r * r * sizeof(double));
    if (!M) {
        st = sadm_error(SADM_ERR_NOMEM, "Fréchet distance: out of memory for dimension %d", dim);
        goto done;
    }
#pragma omp parallel for schedule(static)
    for (long a = 0; a < (long)r; a++) {
        double *mrow = M + (size_t)a * r;
        for (size_t b = 0; b < r; b++) mrow[b] = 0;
        for (size_t c = (size_t)a; c < n; c++) { /* L[c][a] is zero for c < a */
            double l = W[c * n + (size_t)a];
            const double *t = T + c * r;
            for (size_t b = 0; b < r; b++) mrow[b] += l * t[b];
        }
    }
    for (size_t a = 0; a < r; a++)
        for (size_t b = a + 1; b < r; b++) M[a * r + b] = M[b * r + a] = 0.5 * (M[a * r + b] + M[b * r + a]);
    int info = sym_eigenvalues(rank, M, w);
    free(M);
    if (info) {
        st = sadm_error(SADM_ERR_NUMERIC, "Fréchet distance: the eigenvalues of L^T S2 L did not converge (%d)", info);
        goto done;
    }
    if (clearly_negative(r, w)) {
        st = sadm_error(SADM_ERR_NUMERIC, "Fréchet distance: covariance 2 is not positive semi-definite (L^T S2 L has a negative "
                                          "eigenvalue)");
        goto done;
    }
    for (size_t i = 0; i < r; i++) *tr += w[i] > 0 ? sqrt(w[i]) : 0;
done:
    free(W), free(T), free(w), free(perm);
    return st;
}
#endif

/* A covariance must be finite, symmetric and positive semi-definite. The checks are the
 * necessary ones that cost O(n^2): symmetry and a non-negative diagonal within 1e-6 of the
 * largest variance, and every 2x2 principal minor non-negative (|s_ij| <= sqrt(s_ii s_jj));
 * the eigenvalue paths below catch what is left (an indefinite matrix whose 2x2 minors
 * all pass) through eigenvalues clearly below zero. */
static sadm_status check_covariance(int which, size_t n, const double *s) {
    double big = 0;
    for (size_t i = 0; i < n * n; i++)
        if (!isfinite(s[i]))
            return sadm_error(SADM_ERR_NUMERIC, "Fréchet distance: covariance %d has a non-finite entry (%zu, %zu)", which,
                              i / n, i % n);
    for (size_t i = 0; i < n; i++) big = fmax(big, fabs(s[i * n + i]));
    double tol = 1e-6 * big + DBL_MIN;
    for (size_t i = 0; i < n; i++) {
        if (s[i * n + i] < -tol)
            return sadm_error(SADM_ERR_NUMERIC,
                              "Fréchet distance: covariance %d is not positive semi-definite: variance %zu is %g", which, i,
                              s[i * n + i]);
        for (size_t j = i + 1; j < n; j++) {
            double a = s[i * n + j], b = s[j * n + i];
            if (fabs(a - b) > tol)
                return sadm_error(SADM_ERR_NUMERIC, "Fréchet distance: covariance %d is not symmetric: (%zu, %zu) is %g, (%zu, %zu) is %g",
                                  which, i, j, a, j, i, b);
            if (a * a > fmax(s[i * n + i], 0) * fmax(s[j * n + j], 0) * (1 + 1e-6) + tol * tol)
                return sadm_error(SADM_ERR_NUMERIC,
                                  "Fréchet distance: covariance %d is not positive semi-definite: |(%zu, %zu)| = %g exceeds the "
                                  "square root of its variances' product",
                                  which, i, j, fabs(a));
        }
    }
    return SADM_OK;
}

sadm_status sadm_frechet_distance(int dim, const double *mu1, const double *s1, const double *mu2, const double *s2,
                                  double *out) {
    SADM_REQUIRE_POSITIVE(dim);
    SADM_REQUIRE_PTR(mu1);
    SADM_REQUIRE_PTR(s1);
    SADM_REQUIRE_PTR(mu2);
    SADM_REQUIRE_PTR(s2);
    SADM_REQUIRE_PTR(out);
    size_t n = (size_t)dim;
    for (size_t i = 0; i < n; i++)
        if (!isfinite(mu1[i]) || !isfinite(mu2[i]))
            return sadm_error(SADM_ERR_NUMERIC, "Fréchet distance: mean %d has a non-finite entry %zu", isfinite(mu1[i]) ? 2 : 1, i);
    sadm_status cst = check_covariance(1, n, s1);
    if (!cst) cst = check_covariance(2, n, s2);
    if (cst) return cst;
    double tr_sqrt = 0;
    sadm_status st = trace_sqrt_product(dim, s1, s2, &tr_sqrt);
    if (st) return st;
    double tr1 = 0, tr2 = 0, dmu = 0;
    for (size_t i = 0; i < n; i++) {
        tr1 += s1[i * n + i], tr2 += s2[i * n + i];
        dmu += (mu1[i] - mu2[i]) * (mu1[i] - mu2[i]);
    }
    *out = dmu + tr1 + tr2 - 2 * tr_sqrt;
    return SADM_OK;
}
