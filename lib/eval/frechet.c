/* Fréchet distance between two Gaussians, as FID defines it:
 *   |mu1 - mu2|^2 + tr S1 + tr S2 - 2 tr sqrt(S1 S2),
 * with tr sqrt(S1 S2) = tr sqrt(R S2 R), R = sqrt(S1): both square roots through the
 * symmetric eigen-decomposition (LAPACK dsyevd from OpenBLAS, or a cyclic Jacobi solver in
 * builds without it), negative eigenvalues of rounding clipped to zero. Unlike
 * scipy.linalg.sqrtm of the non-symmetric S1 S2 this needs no eps-offset fallback for
 * singular covariances and never returns a complex or NaN trace. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "../internal.h"

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

static void dgemm_nn(int n, const double *A, const double *B, double *C) {
    cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, n, n, 1.0, A, n, B, n, 0.0, C, n);
}

/* C = A^T B */
static void dgemm_tn(int n, const double *A, const double *B, double *C) {
    cblas_dgemm(CblasRowMajor, CblasTrans, CblasNoTrans, n, n, n, 1.0, A, n, B, n, 0.0, C, n);
}
#else
/* Cyclic Jacobi: rotations until the off-diagonal mass is negligible. O(n^3) per sweep. */
static int sym_eig(int n, double *a, double *w, int vectors) {
    double *v = vectors ? calloc((size_t)n * n, sizeof(double)) : NULL;
    if (vectors && !v) return -1000;
    for (int i = 0; vectors && i < n; i++) v[(size_t)i * n + i] = 1;
    for (int sweep = 0; sweep < 100; sweep++) {
        double off = 0, diag = 0;
        for (int i = 0; i < n; i++) {
            diag += a[(size_t)i * n + i] * a[(size_t)i * n + i];
            for (int j = i + 1; j < n; j++) off += a[(size_t)i * n + j] * a[(size_t)i * n + j];
        }
        if (off <= 1e-30 * diag || off == 0) break;
        for (int p = 0; p < n; p++)
            for (int q = p + 1; q < n; q++) {
                double apq = a[(size_t)p * n + q];
                if (apq == 0) continue;
                double app = a[(size_t)p * n + p], aqq = a[(size_t)q * n + q];
                double theta = (aqq - app) / (2 * apq);
                double t = (theta >= 0 ? 1.0 : -1.0) / (fabs(theta) + sqrt(theta * theta + 1));
                double c = 1 / sqrt(t * t + 1), s = t * c;
                for (int k = 0; k < n; k++) { /* columns p, q */
                    double akp = a[(size_t)k * n + p], akq = a[(size_t)k * n + q];
                    a[(size_t)k * n + p] = c * akp - s * akq;
                    a[(size_t)k * n + q] = s * akp + c * akq;
                }
                for (int k = 0; k < n; k++) { /* rows p, q */
                    double apk = a[(size_t)p * n + k], aqk = a[(size_t)q * n + k];
                    a[(size_t)p * n + k] = c * apk - s * aqk;
                    a[(size_t)q * n + k] = s * apk + c * aqk;
                }
                for (int k = 0; vectors && k < n; k++) { /* eigenvectors as rows */
                    double vp = v[(size_t)p * n + k], vq = v[(size_t)q * n + k];
                    v[(size_t)p * n + k] = c * vp - s * vq;
                    v[(size_t)q * n + k] = s * vp + c * vq;
                }
            }
    }
    for (int i = 0; i < n; i++) w[i] = a[(size_t)i * n + i];
    if (vectors) memcpy(a, v, (size_t)n * n * sizeof(double));
    free(v);
    return 0;
}

/* C = A^T B */
static void dgemm_tn(int n, const double *A, const double *B, double *C) {
#pragma omp parallel for schedule(static)
    for (long i = 0; i < n; i++) {
        double *c = C + (size_t)i * n;
        for (int j = 0; j < n; j++) c[j] = 0;
        for (int k = 0; k < n; k++) {
            double aki = A[(size_t)k * n + i];
            const double *b = B + (size_t)k * n;
            for (int j = 0; j < n; j++) c[j] += aki * b[j];
        }
    }
}

static void dgemm_nn(int n, const double *A, const double *B, double *C) {
#pragma omp parallel for schedule(static)
    for (long i = 0; i < n; i++) {
        double *c = C + (size_t)i * n;
        for (int j = 0; j < n; j++) c[j] = 0;
        for (int k = 0; k < n; k++) {
            double aik = A[(size_t)i * n + k];
            const double *b = B + (size_t)k * n;
            for (int j = 0; j < n; j++) c[j] += aik * b[j];
        }
    }
}
#endif

sadm_status sadm_frechet_distance(int dim, const double *mu1, const double *s1, const double *mu2, const double *s2,
                                  double *out) {
    SADM_REQUIRE_POSITIVE(dim);
    SADM_REQUIRE_PTR(mu1);
    SADM_REQUIRE_PTR(s1);
    SADM_REQUIRE_PTR(mu2);
    SADM_REQUIRE_PTR(s2);
    SADM_REQUIRE_PTR(out);
    size_t n = (size_t)dim, nn = n * n;
    for (size_t i = 0; i < nn; i++)
        if (!isfinite(s1[i]) || !isfinite(s2[i]))
            return sadm_error(SADM_ERR_NUMERIC, "Fréchet distance: covariance %d has a non-finite entry (%zu, %zu)",
                              isfinite(s1[i]) ? 2 : 1, i / n, i % n);
    double *a = malloc(nn * sizeof(double)), *r = malloc(nn * sizeof(double)), *t = malloc(nn * sizeof(double));
    double *w = malloc(n * sizeof(double));
    sadm_status st = SADM_OK;
    if (!a || !r || !t || !w) {
        st = sadm_error(SADM_ERR_NOMEM, "Fréchet distance: out of memory for dimension %d", dim);
        goto done;
    }
    /* R = sqrt(S1) = V^T diag(sqrt(max(w, 0))) V, V's rows the eigenvectors */
    memcpy(a, s1, nn * sizeof(double));
    int info = sym_eig(dim, a, w, 1);
    if (info) {
        st = sadm_error(SADM_ERR_NUMERIC, "Fréchet distance: eigen-decomposition of covariance 1 failed (info %d)", info);
        goto done;
    }
    for (size_t k = 0; k < n; k++) {
        double sw = w[k] > 0 ? sqrt(w[k]) : 0;
        for (size_t j = 0; j < n; j++) t[k * n + j] = sw * a[k * n + j];
    }
    dgemm_tn(dim, a, t, r);
    /* M = R S2 R, symmetrised against rounding; tr sqrt(M) from its eigenvalues */
    dgemm_nn(dim, r, s2, t);
    dgemm_nn(dim, t, r, a);
    for (size_t i = 0; i < n; i++)
        for (size_t j = i + 1; j < n; j++) a[i * n + j] = a[j * n + i] = 0.5 * (a[i * n + j] + a[j * n + i]);
    if ((info = sym_eig(dim, a, w, 0))) {
        st = sadm_error(SADM_ERR_NUMERIC, "Fréchet distance: eigen-decomposition of sqrt(S1) S2 sqrt(S1) failed (info %d)",
                        info);
        goto done;
    }
    double tr_sqrt = 0, tr1 = 0, tr2 = 0, dmu = 0;
    for (size_t i = 0; i < n; i++) {
        tr_sqrt += w[i] > 0 ? sqrt(w[i]) : 0;
        tr1 += s1[i * n + i], tr2 += s2[i * n + i];
        dmu += (mu1[i] - mu2[i]) * (mu1[i] - mu2[i]);
    }
    *out = dmu + tr1 + tr2 - 2 * tr_sqrt;
done:
    free(a), free(r), free(t), free(w);
    return st;
}
