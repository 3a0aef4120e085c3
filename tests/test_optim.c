/* Reductions, AdamW, EMA and gradient clipping on every kernel set, against the
 * formulas of torch.optim.AdamW / clip_grad_norm_ evaluated in double. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"

START_TEST(test_reductions) {
    size_t sizes[] = {1, 3, 17, 63, 64, 65, 1000, 100003};
    for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++) {
        size_t n = sizes[s];
        float *a = tu_uniform(n, 1 + n, -1, 1), *b = tu_uniform(n, 2 + n, -1, 1);
        double rs = 0, rd = 0, rq = 0;
        for (size_t i = 0; i < n; i++) rs += a[i], rd += (double)a[i] * b[i], rq += (double)a[i] * a[i];
        for (const char *const *isa = tu_isas(); *isa; isa++) {
            tu_use_isa(*isa);
            double vs, vd, vq, vm;
            TU_OK(sadm_sum(n, a, &vs));
            TU_OK(sadm_dot(n, a, b, &vd));
            TU_OK(sadm_sumsq(n, a, &vq));
            TU_OK(sadm_mean(n, a, &vm));
            /* float partial sums within a chunk: error ~ 1e-7 sqrt(chunk) relative to sum |terms| */
            double tol = 1e-6 * (double)n;
            ck_assert_msg(fabs(vs - rs) <= tol, "%s sum n=%zu: %.9g vs %.9g", *isa, n, vs, rs);
            ck_assert_msg(fabs(vd - rd) <= tol, "%s dot n=%zu: %.9g vs %.9g", *isa, n, vd, rd);
            ck_assert_msg(fabs(vq - rq) <= tol, "%s sumsq n=%zu: %.9g vs %.9g", *isa, n, vq, rq);
            ck_assert_msg(fabs(vm - rs / n) <= tol / n, "%s mean n=%zu", *isa, n);
        }
        free(a), free(b);
    }
}
END_TEST

START_TEST(test_adamw_matches_torch_formula) {
    size_t n = 1000;
    sadm_adamw_config cfg = {1e-3f, 0.9f, 0.999f, 1e-8f, 0.01f};
    for (const char *const *isa = tu_isas(); *isa; isa++) {
        tu_use_isa(*isa);
        float *p = tu_uniform(n, 5, -1, 1), *m = tu_alloc(n), *v = tu_alloc(n);
        double *rp = malloc(n * sizeof(double)), *rm = calloc(n, sizeof(double)), *rv = calloc(n, sizeof(double));
        for (size_t i = 0; i < n; i++) rp[i] = p[i];
        for (long step = 1; step <= 5; step++) {
            float *g = tu_uniform(n, 100 + step, -1, 1);
            g[0] = 0.0f; /* a zero gradient moves only by weight decay then the moments */
            TU_OK(sadm_adamw_step(n, p, g, m, v, &cfg, step));
            double bc1 = 1 - pow(0.9, step), bc2 = 1 - pow(0.999, step);
            for (size_t i = 0; i < n; i++) {
                rp[i] *= 1 - 1e-3 * 0.01;
                rm[i] = 0.9 * rm[i] + 0.1 * g[i];
                rv[i] = 0.999 * rv[i] + 0.001 * (double)g[i] * g[i];
                rp[i] -= 1e-3 / bc1 * rm[i] / (sqrt(rv[i]) / sqrt(bc2) + 1e-8);
            }
            free(g);
        }
        tu_assert_close_d("adamw parameters", p, rp, n, 1e-5, 1e-6);
        tu_assert_close_d("adamw first moment", m, rm, n, 1e-5, 1e-7);
        tu_assert_close_d("adamw second moment", v, rv, n, 1e-4, 1e-9);
        free(p), free(m), free(v), free(rp), free(rm), free(rv);
    }
}
END_TEST

START_TEST(test_ema_and_clip) {
    size_t n = 1000;
    for (const char *const *isa = tu_isas(); *isa; isa++) {
        tu_use_isa(*isa);
        float *e = tu_uniform(n, 7, -1, 1), *p = tu_uniform(n, 8, -1, 1);
        double *r = malloc(n * sizeof(double));
        for (size_t i = 0; i < n; i++) r[i] = 0.999 * e[i] + 0.001 * p[i];
        TU_OK(sadm_ema_update(n, e, p, 0.999f));
        tu_assert_close_d("ema", e, r, n, 1e-6, 1e-7);
        /* decay 1 keeps the EMA, decay 0 copies the parameters */
        float *e2 = tu_copy(e, n);
        TU_OK(sadm_ema_update(n, e2, p, 1.0f));
        tu_assert_same("ema decay 1", e2, e, n);
        TU_OK(sadm_ema_update(n, e2, p, 0.0f));
        tu_assert_same("ema decay 0", e2, p, n);

        float *g = tu_uniform(n, 9, -1, 1), *g0 = tu_copy(g, n);
        double ss = 0, norm;
        for (size_t i = 0; i < n; i++) ss += (double)g[i] * g[i];
        TU_OK(sadm_clip_grad_norm(n, g, 1.0f, &norm));
        ck_assert_double_le(fabs(norm - sqrt(ss)), 1e-4 * sqrt(ss));
        double coef = 1.0 / (sqrt(ss) + 1e-6);
        for (size_t i = 0; i < n; i++) r[i] = g0[i] * coef;
        tu_assert_close_d("clipped gradient", g, r, n, 1e-5, 1e-8);
        memcpy(g, g0, n * sizeof(float));
        TU_OK(sadm_clip_grad_norm(n, g, 1e6f, &norm)); /* below the limit: untouched */
        tu_assert_same("unclipped gradient", g, g0, n);
        free(e), free(p), free(r), free(e2), free(g), free(g0);
    }
}
END_TEST

int main(void) {
    Suite *s = suite_create("optim");
    TCase *tc = tcase_create("optim");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_reductions);
    tcase_add_test(tc, test_adamw_matches_torch_formula);
    tcase_add_test(tc, test_ema_and_clip);
    suite_add_tcase(s, tc);
    return tu_run(s);
}
