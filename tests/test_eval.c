/* Evaluation statistics: streaming mean/covariance against numpy (with a large common
 * offset, in uneven batches, any thread count), and the Fréchet distance against
 * pytorch-fid's scipy formula (tests/reference/fid_ref.py) on well-conditioned and on
 * singular covariances. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "reference.h"
#include "testutil.h"

/* Correlated features: x = offset + z A with z ~ N(0, 1), A (k × d) random. */
static float *features_za(size_t n, int d, int k, float offset, uint64_t seed_z, uint64_t seed_a) {
    float *z = tu_alloc(n * (size_t)k), *a = tu_alloc((size_t)k * d), *x = tu_alloc(n * (size_t)d);
    TU_OK(sadm_rng_normal(seed_z, 1, 0, n * (size_t)k, z));
    TU_OK(sadm_rng_normal(seed_a, 2, 0, (size_t)k * d, a));
    for (size_t r = 0; r < n; r++)
        for (int j = 0; j < d; j++) {
            double s = offset + 0.01 * j;
            for (int q = 0; q < k; q++) s += (double)z[r * k + q] * a[(size_t)q * d + j] / sqrt(k);
            x[r * d + j] = (float)s;
        }
    free(z), free(a);
    return x;
}

static float *features(size_t n, int d, int k, float offset, uint64_t seed) { return features_za(n, d, k, offset, seed, seed); }

static void stats_of(const float *x, size_t n, int d, double *mu, double *sigma) {
    sadm_feature_stats *s;
    TU_OK(sadm_feature_stats_create(d, &s));
    size_t cuts[] = {0, 1, n / 3, n / 3 + 7, n}; /* uneven batches, one of a single row */
    for (int i = 0; i < 4; i++) TU_OK(sadm_feature_stats_add(s, cuts[i + 1] - cuts[i], x + cuts[i] * d));
    ck_assert_uint_eq(sadm_feature_stats_count(s), n);
    TU_OK(sadm_feature_stats_get(s, mu, sigma));
    sadm_feature_stats_free(s);
}

START_TEST(test_stats_vs_numpy) {
    size_t n = 300;
    int d = 24;
    float *x = features(n, d, 30, 1000.0f, 5); /* mean far from zero: the naive formula would cancel */
    double *mu = calloc(d, sizeof(double)), *sigma = calloc((size_t)d * d, sizeof(double));
    sadm_set_num_threads(1);
    stats_of(x, n, d, mu, sigma);
    double *mu2 = calloc(d, sizeof(double)), *sigma2 = calloc((size_t)d * d, sizeof(double));
    sadm_set_num_threads(2);
    stats_of(x, n, d, mu2, sigma2);
    sadm_set_num_threads(0);
    ck_assert(memcmp(mu, mu2, d * sizeof(double)) == 0 && memcmp(sigma, sigma2, (size_t)d * d * sizeof(double)) == 0);
    sadm_st_writer *w = sadm_st_writer_new();
    int64_t sx[2] = {(int64_t)n, d};
    TU_OK(sadm_st_writer_add(w, "x", SADM_DTYPE_F32, 2, sx, x));
    TU_OK(sadm_st_writer_save(w, ref_path("x.safetensors")));
    sadm_st_writer_free(w);
    char args[800];
    snprintf(args, sizeof args, "stats '%s' '%s'", ref_path("x.safetensors"), ref_path("s.safetensors"));
    ref_run("fid_ref.py", args);
    sadm_st_file *f;
    TU_OK(sadm_st_open(ref_path("s.safetensors"), &f));
    const sadm_tensor_info *rm = sadm_st_find(f, "mu"), *rs = sadm_st_find(f, "sigma");
    ck_assert(rm && rs && rm->dtype == SADM_DTYPE_F64 && rs->numel == (size_t)d * d);
    double *ref = malloc(rs->nbytes);
    memcpy(ref, rm->data, rm->nbytes);
    for (int j = 0; j < d; j++) ck_assert_msg(fabs(mu[j] - ref[j]) <= 1e-12 * fabs(ref[j]), "mu[%d] %.17g vs %.17g", j, mu[j], ref[j]);
    memcpy(ref, rs->data, rs->nbytes);
    for (int i = 0; i < d * d; i++)
        ck_assert_msg(fabs(sigma[i] - ref[i]) <= 1e-9 * (fabs(ref[i]) + 1e-3), "sigma[%d] %.17g vs numpy %.17g", i, sigma[i],
                      ref[i]);
    sadm_st_close(f);
    /* errors: one row is no covariance; NaN features are refused by name */
    sadm_feature_stats *s;
    TU_OK(sadm_feature_stats_create(d, &s));
    TU_OK(sadm_feature_stats_add(s, 1, x));
    ck_assert_int_eq(sadm_feature_stats_get(s, mu, sigma), SADM_ERR_ARG);
    ck_assert_ptr_nonnull(strstr(sadm_last_error(), "1 sample, need at least 2"));
    x[d + 3] = NAN;
    ck_assert_int_eq(sadm_feature_stats_add(s, 2, x), SADM_ERR_NUMERIC);
    ck_assert_ptr_nonnull(strstr(sadm_last_error(), "feature 3 of row 2 is nan"));
    sadm_feature_stats_free(s);
    free(x), free(mu), free(sigma), free(mu2), free(sigma2), free(ref);
    ref_cleanup();
}
END_TEST

static double fid_scipy(int d, const double *mu1, const double *s1, const double *mu2, const double *s2, double *offset) {
    sadm_st_writer *w = sadm_st_writer_new();
    int64_t sm[1] = {d}, ss[2] = {d, d};
    TU_OK(sadm_st_writer_add(w, "mu1", SADM_DTYPE_F64, 1, sm, mu1));
    TU_OK(sadm_st_writer_add(w, "s1", SADM_DTYPE_F64, 2, ss, s1));
    TU_OK(sadm_st_writer_add(w, "mu2", SADM_DTYPE_F64, 1, sm, mu2));
    TU_OK(sadm_st_writer_add(w, "s2", SADM_DTYPE_F64, 2, ss, s2));
    TU_OK(sadm_st_writer_save(w, ref_path("st.safetensors")));
    sadm_st_writer_free(w);
    char args[800];
    snprintf(args, sizeof args, "fid '%s' '%s'", ref_path("st.safetensors"), ref_path("fid.safetensors"));
    ref_run("fid_ref.py", args);
    sadm_st_file *f;
    TU_OK(sadm_st_open(ref_path("fid.safetensors"), &f));
    double v;
    memcpy(&v, sadm_st_find(f, "fid")->data, sizeof v);
    memcpy(offset, sadm_st_find(f, "offset")->data, sizeof v);
    sadm_st_close(f);
    return v;
}

START_TEST(test_frechet_vs_scipy) {
    int d = 48;
    double *mu1 = calloc(d, 8), *s1 = calloc((size_t)d * d, 8), *mu2 = calloc(d, 8), *s2 = calloc((size_t)d * d, 8);
    /* well conditioned: many more samples than dimensions */
    float *a = features(2000, d, 64, 0.0f, 1), *b = features(2000, d, 64, 0.3f, 2);
    stats_of(a, 2000, d, mu1, s1);
    stats_of(b, 2000, d, mu2, s2);
    double ours, offset, ref = fid_scipy(d, mu1, s1, mu2, s2, &offset);
    TU_OK(sadm_frechet_distance(d, mu1, s1, mu2, s2, &ours));
    ck_assert_msg(offset == 0 && ref > 1, "reference FID %g (offset %g)", ref, offset);
    ck_assert_msg(fabs(ours - ref) <= 1e-6 * ref, "FID %.12g vs scipy %.12g", ours, ref);
    /* the same statistics twice: zero up to rounding */
    TU_OK(sadm_frechet_distance(d, mu1, s1, mu1, s1, &ours));
    double tr = 0;
    for (int i = 0; i < d; i++) tr += s1[(size_t)i * d + i];
    ck_assert_msg(fabs(ours) <= 1e-9 * tr, "FID of identical statistics %g (trace %g)", ours, tr);
    /* singular covariances: 20 samples in 48 dimensions */
    free(a), free(b);
    a = features(20, d, 64, 0.0f, 3), b = features(20, d, 64, 0.5f, 4);
    stats_of(a, 20, d, mu1, s1);
    stats_of(b, 20, d, mu2, s2);
    ref = fid_scipy(d, mu1, s1, mu2, s2, &offset);
    TU_OK(sadm_frechet_distance(d, mu1, s1, mu2, s2, &ours));
    ck_assert_msg(isfinite(ours) && fabs(ours - ref) <= 1e-3 * fabs(ref), "singular: FID %.9g vs scipy %.9g (offset %g)", ours,
                  ref, offset);
    s1[5] = INFINITY;
    ck_assert_int_eq(sadm_frechet_distance(d, mu1, s1, mu2, s2, &ours), SADM_ERR_NUMERIC);
    free(a), free(b), free(mu1), free(s1), free(mu2), free(s2);
    ref_cleanup();
}
END_TEST

static double read_scalar(const char *path, const char *key) {
    sadm_st_file *f;
    TU_OK(sadm_st_open(path, &f));
    const sadm_tensor_info *t = sadm_st_find(f, key);
    ck_assert_msg(t && t->dtype == SADM_DTYPE_F64, "%s: no float64 '%s'", path, key);
    double v;
    memcpy(&v, t->data, sizeof v);
    sadm_st_close(f);
    return v;
}

/* Statistics that are no Gaussian's (issue 18: -I and NaN gave an FID with exit 0). */
START_TEST(test_frechet_refuses_bad_statistics) {
    double mu[3] = {0, 1, 2}, eye[9] = {1, 0, 0, 0, 1, 0, 0, 0, 1}, fd;
    double minus[9] = {-1, 0, 0, 0, -1, 0, 0, 0, -1}, asym[9] = {1, 0.5, 0, 0, 1, 0, 0, 0, 1};
    double minor[9] = {1, 2, 0, 2, 1, 0, 0, 0, 1};                /* |s_01| > sqrt(s_00 s_11) */
    double indef[9] = {1, .9, .9, .9, 1, -.9, .9, -.9, 1};         /* eigenvalues -0.8, 1.9, 1.9 */
    double nan_mu[3] = {0, NAN, 0};
    TU_OK(sadm_frechet_distance(3, mu, eye, mu, eye, &fd));
    ck_assert(fabs(fd) < 1e-12);
    const struct {
        const double *m, *s;
        const char *words;
    } bad[] = {{mu, minus, "covariance 2 is not positive semi-definite: variance 0 is -1"},
               {mu, asym, "covariance 2 is not symmetric"},
               {mu, minor, "covariance 2 is not positive semi-definite: |(0, 1)| = 2"},
               {mu, indef, "covariance 2 is not positive semi-definite"},
               {nan_mu, eye, "mean 2 has a non-finite entry 1"}};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        ck_assert_int_eq(sadm_frechet_distance(3, mu, eye, bad[i].m, bad[i].s, &fd), SADM_ERR_NUMERIC);
        ck_assert_msg(strstr(sadm_last_error(), bad[i].words), "case %zu: '%s' lacks '%s'", i, sadm_last_error(), bad[i].words);
    }
    ck_assert_int_eq(sadm_frechet_distance(3, mu, minus, mu, eye, &fd), SADM_ERR_NUMERIC);
    ck_assert_ptr_nonnull(strstr(sadm_last_error(), "covariance 1"));
}
END_TEST

START_TEST(test_inception_score_vs_numpy) {
    size_t N = 250;
    int C = 1008;
    float *logits = tu_alloc(N * C);
    TU_OK(sadm_rng_normal(3, 1, 0, N * C, logits));
    for (size_t i = 0; i < N; i++) logits[i * C + i % 17] += 6.0f; /* confident about 17 classes */
    sadm_st_writer *w = sadm_st_writer_new();
    int64_t sl[2] = {(int64_t)N, C};
    TU_OK(sadm_st_writer_add(w, "logits", SADM_DTYPE_F32, 2, sl, logits));
    TU_OK(sadm_st_writer_save(w, ref_path("l.safetensors")));
    sadm_st_writer_free(w);
    char args[800];
    snprintf(args, sizeof args, "is '%s' '%s' 100", ref_path("l.safetensors"), ref_path("is.safetensors")); /* splits 100, 100, 50 */
    ref_run("fid_ref.py", args);
    double ours, ref = read_scalar(ref_path("is.safetensors"), "is");
    TU_OK(sadm_inception_score(N, C, logits, 100, &ours));
    ck_assert_msg(ref > 2 && fabs(ours - ref) <= 1e-9 * ref, "IS %.12g vs numpy %.12g", ours, ref);
    free(logits);
    ref_cleanup();
}
END_TEST

START_TEST(test_precision_recall_vs_numpy) {
    size_t nr = 300, ns = 200;
    int d = 16;
    /* the same subspace, shifted and drawn anew: partly overlapping manifolds */
    float *ref = features_za(nr, d, 8, 0.0f, 7, 7), *sam = features_za(ns, d, 8, 0.3f, 8, 7);
    sadm_st_writer *w = sadm_st_writer_new();
    int64_t sr[2] = {(int64_t)nr, d}, ss[2] = {(int64_t)ns, d};
    TU_OK(sadm_st_writer_add(w, "ref", SADM_DTYPE_F32, 2, sr, ref));
    TU_OK(sadm_st_writer_add(w, "sample", SADM_DTYPE_F32, 2, ss, sam));
    TU_OK(sadm_st_writer_save(w, ref_path("pr.safetensors")));
    sadm_st_writer_free(w);
    char args[800];
    snprintf(args, sizeof args, "pr '%s' '%s'", ref_path("pr.safetensors"), ref_path("pro.safetensors"));
    ref_run("fid_ref.py", args);
    double p, r, rp = read_scalar(ref_path("pro.safetensors"), "precision"), rr = read_scalar(ref_path("pro.safetensors"), "recall");
    TU_OK(sadm_precision_recall(nr, ref, ns, sam, d, 3, &p, &r));
    ck_assert_msg(rp > 0.05 && rp < 0.95 && rr > 0.05 && rr < 0.95, "reference precision %g recall %g are trivial", rp, rr);
    /* float32 against float64 distances may move a point across a radius: one point of slack */
    ck_assert_msg(fabs(p - rp) <= 1.0 / ns + 1e-12 && fabs(r - rr) <= 1.0 / nr + 1e-12, "precision %g / %g, recall %g / %g", p,
                  rp, r, rr);
    /* thread-count invariant */
    sadm_set_num_threads(1);
    double p1, r1;
    TU_OK(sadm_precision_recall(nr, ref, ns, sam, d, 3, &p1, &r1));
    sadm_set_num_threads(0);
    ck_assert(p1 == p && r1 == r);
    ck_assert_int_eq(sadm_precision_recall(3, ref, ns, sam, d, 3, &p, &r), SADM_ERR_ARG);
    free(ref), free(sam);
    ref_cleanup();
}
END_TEST

int main(void) {
    Suite *s = suite_create("eval");
    TCase *tc = tcase_create("eval");
    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, test_stats_vs_numpy);
    tcase_add_test(tc, test_frechet_vs_scipy);
    tcase_add_test(tc, test_frechet_refuses_bad_statistics);
    tcase_add_test(tc, test_inception_score_vs_numpy);
    tcase_add_test(tc, test_precision_recall_vs_numpy);
    suite_add_tcase(s, tc);
    return tu_run(s);
}
