/* Reductions and the optimiser kernels. Reductions cut the input into fixed chunks,
 * reduce each with the active kernel set, and add the chunk results in double in chunk
 * order: the thread count never changes the result. */
#include <math.h>
#include <stdlib.h>

#include "internal.h"

typedef float (*reduce_fn)(const sadm_kernels *k, size_t n, const float *a, const float *b);

static float red_sum(const sadm_kernels *k, size_t n, const float *a, const float *b) { (void)b; return k->sum(n, a); }
static float red_dot(const sadm_kernels *k, size_t n, const float *a, const float *b) { return k->dot(n, a, b); }
static float red_sumsq(const sadm_kernels *k, size_t n, const float *a, const float *b) { (void)b; return k->dot(n, a, a); }

static sadm_status reduce(reduce_fn f, size_t n, const float *a, const float *b, double *result) {
    const sadm_kernels *k = sadm_kernels_active();
    long chunks = (long)sadm_chunks(n, SADM_CHUNK);
    double stack_partial[64];
    sadm_scratch_mark mk = sadm_scratch_mark_get();
    double *partial = chunks <= 64 ? stack_partial : sadm_scratch_take((size_t)chunks * sizeof(double));
    if (!partial) return sadm_error(SADM_ERR_NOMEM, "reduction over %zu elements: out of memory", n);
    SADM_FOR_CHUNKS(n, i0, len) partial[i0 / SADM_CHUNK] = f(k, len, a + i0, b ? b + i0 : NULL);
    double s = 0.0;
    for (long c = 0; c < chunks; c++) s += partial[c];
    sadm_scratch_release(mk);
    *result = s;
    return SADM_OK;
}

sadm_status sadm_sum(size_t n, const float *x, double *result) {
    SADM_REQUIRE_PTR(x);
    SADM_REQUIRE_PTR(result);
    return reduce(red_sum, n, x, NULL, result);
}

sadm_status sadm_mean(size_t n, const float *x, double *result) {
    SADM_REQUIRE_POSITIVE(n);
    sadm_status st = sadm_sum(n, x, result);
    if (!st) *result /= (double)n;
    return st;
}

sadm_status sadm_sumsq(size_t n, const float *x, double *result) {
    SADM_REQUIRE_PTR(x);
    SADM_REQUIRE_PTR(result);
    return reduce(red_sumsq, n, x, NULL, result);
}

sadm_status sadm_dot(size_t n, const float *a, const float *b, double *result) {
    SADM_REQUIRE_PTR(a);
    SADM_REQUIRE_PTR(b);
    SADM_REQUIRE_PTR(result);
    return reduce(red_dot, n, a, b, result);
}

sadm_status sadm_scale(size_t n, float *x, float a) {
    SADM_REQUIRE_PTR(x);
    const sadm_kernels *k = sadm_kernels_active();
    SADM_FOR_CHUNKS(n, i0, len) k->scale(len, x + i0, a);
    return SADM_OK;
}

sadm_status sadm_adamw_step(size_t n, float *p, const float *g, float *m, float *v, const sadm_adamw_config *cfg,
                            long step) {
    SADM_REQUIRE_PTR(p);
    SADM_REQUIRE_PTR(g);
    SADM_REQUIRE_PTR(m);
    SADM_REQUIRE_PTR(v);
    SADM_REQUIRE_PTR(cfg);
    SADM_REQUIRE(step >= 1, "sadm_adamw_step: step counts from 1, got %ld", step);
    SADM_REQUIRE(cfg->beta1 >= 0 && cfg->beta1 < 1 && cfg->beta2 >= 0 && cfg->beta2 < 1,
                 "sadm_adamw_step: betas must lie in [0, 1), got %g and %g", cfg->beta1, cfg->beta2);
    SADM_REQUIRE(cfg->lr >= 0 && cfg->eps >= 0 && cfg->weight_decay >= 0,
                 "sadm_adamw_step: lr, eps and weight_decay must not be negative");
    /* the same double-precision bias corrections as PyTorch computes in Python */
    double bc1 = 1.0 - pow(cfg->beta1, (double)step), bc2 = 1.0 - pow(cfg->beta2, (double)step);
    float step_size = (float)(cfg->lr / bc1), bc2_sqrt = (float)sqrt(bc2);
    const sadm_kernels *k = sadm_kernels_active();
    SADM_FOR_CHUNKS(n, i0, len)
        k->adamw(len, p + i0, g + i0, m + i0, v + i0, cfg->lr, cfg->beta1, cfg->beta2, cfg->eps, cfg->weight_decay,
                 step_size, bc2_sqrt);
    return SADM_OK;
}

sadm_status sadm_ema_update(size_t n, float *ema, const float *p, float decay) {
    SADM_REQUIRE_PTR(ema);
    SADM_REQUIRE_PTR(p);
    SADM_REQUIRE(decay >= 0.0f && decay <= 1.0f, "sadm_ema_update: decay must lie in [0, 1], got %g", decay);
    const sadm_kernels *k = sadm_kernels_active();
    SADM_FOR_CHUNKS(n, i0, len) k->ema(len, ema + i0, p + i0, decay);
    return SADM_OK;
}

sadm_status sadm_clip_grad_norm(size_t n, float *g, float max_norm, double *norm_out) {
    double ss;
    sadm_status st = sadm_sumsq(n, g, &ss);
    if (st) return st;
    double norm = sqrt(ss);
    if (norm_out) *norm_out = norm;
    if (max_norm > 0.0f && norm > max_norm) st = sadm_scale(n, g, (float)(max_norm / (norm + 1e-6)));
    return st;
}
