/* Gaussian diffusion as facebookresearch/DiT's diffusion/gaussian_diffusion.py (itself
 * from ADM / improved DDPM): schedule arrays in double; each coefficient is cast to float
 * where it multiplies a tensor, as _extract_into_tensor does. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

enum {
    BETAS,
    ALPHAS_CUMPROD,
    ALPHAS_CUMPROD_PREV,
    SQRT_AC,
    SQRT_1M_AC,
    SQRT_RECIP_AC,
    SQRT_RECIPM1_AC,
    POST_VAR,
    POST_LOG_VAR_CLIPPED,
    POST_COEF1,
    POST_COEF2,
    LOG_BETAS,
    N_ARRAYS
};

static const char *const array_names[N_ARRAYS] = {
    "betas", "alphas_cumprod", "alphas_cumprod_prev", "sqrt_alphas_cumprod", "sqrt_one_minus_alphas_cumprod",
    "sqrt_recip_alphas_cumprod", "sqrt_recipm1_alphas_cumprod", "posterior_variance",
    "posterior_log_variance_clipped", "posterior_mean_coef1", "posterior_mean_coef2", "log_betas"};

struct sadm_diffusion {
    int steps;
    double *a[N_ARRAYS];
    int64_t *timestep_map;
};

void sadm_diffusion_free(sadm_diffusion *d) {
    if (!d) return;
    for (int i = 0; i < N_ARRAYS; i++) free(d->a[i]);
    free(d->timestep_map);
    free(d);
}

const int64_t *sadm_diffusion_timestep_map(const sadm_diffusion *d) { return d ? d->timestep_map : NULL; }

int sadm_diffusion_steps(const sadm_diffusion *d) { return d ? d->steps : 0; }

const double *sadm_diffusion_array(const sadm_diffusion *d, const char *name) {
    if (!d || !name) return NULL;
    for (int i = 0; i < N_ARRAYS; i++)
        if (strcmp(array_names[i], name) == 0) return d->a[i];
    return NULL;
}

static double cosine_alpha_bar(double t) {
    double c = cos((t + 0.008) / 1.008 * M_PI / 2);
    return c * c;
}

static sadm_diffusion *alloc_diffusion(int steps) {
    sadm_diffusion *d = calloc(1, sizeof *d);
    if (!d) return NULL;
    d->steps = steps;
    int ok = (d->timestep_map = calloc((size_t)steps, sizeof(int64_t))) != NULL;
    for (int i = 0; i < N_ARRAYS; i++) ok = ok && (d->a[i] = calloc((size_t)steps, sizeof(double)));
    if (!ok) {
        sadm_diffusion_free(d);
        return NULL;
    }
    for (int i = 0; i < steps; i++) d->timestep_map[i] = i;
    return d;
}

static sadm_status base_betas(const char *schedule, int steps, double *b) {
    int linear = strcmp(schedule, "linear") == 0, cosine = strcmp(schedule, "cosine") == 0;
    SADM_REQUIRE(linear || cosine, "unknown noise schedule '%s' (linear or cosine)", schedule);
    if (linear) { /* np.linspace(start, stop, n): start + i * step, the last exactly stop */
        double scale = 1000.0 / steps, start = scale * 0.0001, stop = scale * 0.02, step = (stop - start) / (steps - 1);
        for (int i = 0; i < steps; i++) b[i] = start + i * step;
        b[steps - 1] = stop;
    } else {
        for (int i = 0; i < steps; i++) {
            double v = 1.0 - cosine_alpha_bar((double)(i + 1) / steps) / cosine_alpha_bar((double)i / steps);
            b[i] = v < 0.999 ? v : 0.999;
        }
    }
    return SADM_OK;
}

static void derive(sadm_diffusion *d);

sadm_status sadm_diffusion_create(const char *schedule, int steps, sadm_diffusion **out) {
    SADM_REQUIRE_PTR(schedule);
    SADM_REQUIRE_PTR(out);
    SADM_REQUIRE(steps >= 2, "sadm_diffusion_create: need at least 2 diffusion steps, got %d", steps);
    sadm_diffusion *d = alloc_diffusion(steps);
    if (!d) return sadm_error(SADM_ERR_NOMEM, "sadm_diffusion_create: out of memory");
    sadm_status st = base_betas(schedule, steps, d->a[BETAS]);
    if (st) {
        sadm_diffusion_free(d);
        return st;
    }
    derive(d);
    *out = d;
    return SADM_OK;
}

static int cmp_i64(const void *a, const void *b) {
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

/* space_timesteps of improved-DDPM's respace.py; keep[] gets the sorted kept steps. */
static sadm_status space_timesteps(int T, const char *spec, int64_t *keep, int *count) {
    int n = 0;
    if (!strncmp(spec, "ddim", 4)) {
        char *end;
        long want = strtol(spec + 4, &end, 10);
        SADM_REQUIRE(spec[4] && !*end && want > 0, "timestep respacing '%s': expected ddimN", spec);
        for (int i = 1; i < T; i++)
            if ((T + i - 1) / i == want) {
                for (int k = 0; k < T; k += i) keep[n++] = k;
                *count = n;
                return SADM_OK;
            }
        return sadm_error(SADM_ERR_ARG, "timestep respacing '%s': no stride of %d steps gives exactly %ld", spec, T, want);
    }
    long sections[256];
    int ns = 0;
    const char *p = spec;
    while (*p) {
        char *end;
        long v = strtol(p, &end, 10);
        SADM_REQUIRE(end != p && v >= 0 && ns < 256 && (*end == ',' || !*end),
                     "timestep respacing '%s': expected counts like 250, 10,10,5 or ddim25", spec);
        sections[ns++] = v;
        p = *end ? end + 1 : end;
    }
    SADM_REQUIRE(ns > 0, "timestep respacing is empty");
    int size_per = T / ns, extra = T % ns, start = 0;
    for (int i = 0; i < ns; i++) {
        int size = size_per + (i < extra ? 1 : 0);
        SADM_REQUIRE(size >= sections[i], "timestep respacing '%s': cannot take %ld steps from a section of %d", spec,
                     sections[i], size);
        double stride = sections[i] <= 1 ? 1.0 : (double)(size - 1) / (double)(sections[i] - 1), cur = 0.0;
        for (long k = 0; k < sections[i]; k++) {
            keep[n++] = start + (int64_t)nearbyint(cur); /* Python's round(): halves to even */
            cur += stride;
        }
        start += size;
    }
    qsort(keep, (size_t)n, sizeof *keep, cmp_i64);
    int u = 0; /* a set: drop repeats */
    for (int i = 0; i < n; i++)
        if (!u || keep[u - 1] != keep[i]) keep[u++] = keep[i];
    *count = u;
    return SADM_OK;
}

sadm_status sadm_diffusion_respaced(const char *schedule, int steps, const char *spec, sadm_diffusion **out) {
    SADM_REQUIRE_PTR(spec);
    SADM_REQUIRE_PTR(out);
    sadm_diffusion *base;
    sadm_status st = sadm_diffusion_create(schedule, steps, &base);
    if (st) return st;
    if (!*spec) {
        *out = base;
        return SADM_OK;
    }
    int64_t *keep = malloc((size_t)steps * sizeof(int64_t)); /* sections never take more than T steps */
    int count = 0;
    if (!keep) st = sadm_error(SADM_ERR_NOMEM, "respacing: out of memory");
    if (!st) st = space_timesteps(steps, spec, keep, &count);
    if (!st && count < 1) st = sadm_error(SADM_ERR_ARG, "timestep respacing '%s' keeps no step", spec);
    sadm_diffusion *d = st ? NULL : alloc_diffusion(count);
    if (!st && !d) st = sadm_error(SADM_ERR_NOMEM, "respacing: out of memory");
    if (!st) {
        double last = 1.0;
        for (int i = 0; i < count; i++) {
            double ac = base->a[ALPHAS_CUMPROD][keep[i]];
            d->a[BETAS][i] = 1.0 - ac / last;
            last = ac;
            d->timestep_map[i] = keep[i];
        }
        derive(d);
    }
    free(keep);
    sadm_diffusion_free(base);
    if (st) return st;
    *out = d;
    return SADM_OK;
}

static void derive(sadm_diffusion *d) {
    int steps = d->steps;
    double *b = d->a[BETAS];
    double ac = 1.0;
    for (int i = 0; i < steps; i++) {
        d->a[ALPHAS_CUMPROD_PREV][i] = ac;
        ac *= 1.0 - b[i];
        d->a[ALPHAS_CUMPROD][i] = ac;
    }
    for (int i = 0; i < steps; i++) {
        double a = d->a[ALPHAS_CUMPROD][i], ap = d->a[ALPHAS_CUMPROD_PREV][i];
        d->a[SQRT_AC][i] = sqrt(a);
        d->a[SQRT_1M_AC][i] = sqrt(1.0 - a);
        d->a[SQRT_RECIP_AC][i] = sqrt(1.0 / a);
        d->a[SQRT_RECIPM1_AC][i] = sqrt(1.0 / a - 1);
        d->a[POST_VAR][i] = b[i] * (1.0 - ap) / (1.0 - a);
        d->a[POST_COEF1][i] = b[i] * sqrt(ap) / (1.0 - a);
        d->a[POST_COEF2][i] = (1.0 - ap) * sqrt(1.0 - b[i]) / (1.0 - a);
        d->a[LOG_BETAS][i] = log(b[i]);
    }
    /* the posterior variance is 0 at t = 0: its log is clipped to the value at t = 1 */
    for (int i = 0; i < steps; i++) d->a[POST_LOG_VAR_CLIPPED][i] = log(d->a[POST_VAR][steps > 1 && !i ? 1 : i]);
}

sadm_status sadm_diffusion_check_t(const sadm_diffusion *d, const char *fn, int N, const int64_t *t) {
    for (int n = 0; n < N; n++)
        SADM_REQUIRE(t[n] >= 0 && t[n] < d->steps, "%s: timestep %lld of sample %d is outside [0, %d)", fn,
                     (long long)t[n], n, d->steps);
    return SADM_OK;
}

sadm_status sadm_q_sample(const sadm_diffusion *d, int N, size_t per_sample, const float *x0, const int64_t *t,
                          const float *noise, float *xt) {
    SADM_REQUIRE_PTR(d);
    SADM_REQUIRE_PTR(x0);
    SADM_REQUIRE_PTR(t);
    SADM_REQUIRE_PTR(noise);
    SADM_REQUIRE_PTR(xt);
    sadm_status st = sadm_diffusion_check_t(d, __func__, N, t);
    if (st) return st;
#pragma omp parallel for schedule(static)
    for (int n = 0; n < N; n++) {
        float a = (float)d->a[SQRT_AC][t[n]], b = (float)d->a[SQRT_1M_AC][t[n]];
        size_t o = (size_t)n * per_sample;
        for (size_t i = 0; i < per_sample; i++) {
            float u = a * x0[o + i], v = b * noise[o + i];
            xt[o + i] = u + v;
        }
    }
    return SADM_OK;
}

/* approx_standard_normal_cdf of ADM and its derivative */
static double cdf(double x) { return 0.5 * (1.0 + tanh(0.7978845608028654 * (x + 0.044715 * x * x * x))); }
static double cdf_grad(double x) {
    double th = tanh(0.7978845608028654 * (x + 0.044715 * x * x * x));
    return 0.5 * (1.0 - th * th) * 0.7978845608028654 * (1.0 + 3 * 0.044715 * x * x);
}

/* log-likelihood of x under the discretised Gaussian (bins of 2/255 on [-1, 1]) and its
 * derivative with respect to log_scale; the clamps at 1e-12 pass no gradient. */
static double discretized_ll(double x, double mean, double log_scale, double *d_log_scale) {
    double c = x - mean, inv = exp(-log_scale);
    double pin = inv * (c + 1.0 / 255.0), min = inv * (c - 1.0 / 255.0);
    double cp = cdf(pin), cm = cdf(min);
    double dp = cdf_grad(pin) * -pin, dm = cdf_grad(min) * -min; /* d cdf / d log_scale */
    if (x < -0.999) {
        *d_log_scale = cp > 1e-12 ? dp / cp : 0.0;
        return log(cp > 1e-12 ? cp : 1e-12);
    }
    if (x > 0.999) {
        double q = 1.0 - cm;
        *d_log_scale = q > 1e-12 ? -dm / q : 0.0;
        return log(q > 1e-12 ? q : 1e-12);
    }
    double delta = cp - cm;
    *d_log_scale = delta > 1e-12 ? (dp - dm) / delta : 0.0;
    return log(delta > 1e-12 ? delta : 1e-12);
}

sadm_status sadm_diffusion_loss(const sadm_diffusion *d, int N, int C, size_t HW, int learn_sigma, const float *x0,
                                const float *xt, const int64_t *t, const float *noise, const float *model_out,
                                float *loss, float *mse, float *vb, float *dout) {
    SADM_REQUIRE_PTR(d);
    SADM_REQUIRE(N > 0 && C > 0 && HW > 0, "sadm_diffusion_loss: N, C and HW must be positive");
    SADM_REQUIRE_PTR(t);
    SADM_REQUIRE_PTR(noise);
    SADM_REQUIRE_PTR(model_out);
    SADM_REQUIRE(!learn_sigma || (x0 && xt), "sadm_diffusion_loss: the vb term needs x0 and xt");
    sadm_status st = sadm_diffusion_check_t(d, __func__, N, t);
    if (st) return st;
    const int Co = learn_sigma ? 2 * C : C;
    const size_t per = (size_t)C * HW;
    const double inv_count = 1.0 / (double)per, inv_n = 1.0 / N, inv_ln2 = 1.0 / log(2.0);
#pragma omp parallel for schedule(static)
    for (int n = 0; n < N; n++) {
        const float *eps = model_out + (size_t)n * Co * HW, *var = eps + per, *nz = noise + (size_t)n * per;
        float *d_eps = dout ? dout + (size_t)n * Co * HW : NULL, *d_var = d_eps ? d_eps + per : NULL;
        double s = 0.0;
        for (size_t i = 0; i < per; i++) {
            double e = (double)nz[i] - eps[i];
            s += e * e;
            if (d_eps) d_eps[i] += (float)(-2.0 * e * inv_count * inv_n);
        }
        double m = s * inv_count, v = 0.0;
        if (learn_sigma) {
            int64_t tn = t[n];
            /* the float coefficients of _extract_into_tensor */
            float c1 = (float)d->a[POST_COEF1][tn], c2 = (float)d->a[POST_COEF2][tn];
            float lv_true = (float)d->a[POST_LOG_VAR_CLIPPED][tn];
            float min_log = lv_true, max_log = (float)d->a[LOG_BETAS][tn];
            float ra = (float)d->a[SQRT_RECIP_AC][tn], rm1 = (float)d->a[SQRT_RECIPM1_AC][tn];
            const float *x0n = x0 + (size_t)n * per, *xtn = xt + (size_t)n * per;
            double acc = 0.0;
            for (size_t i = 0; i < per; i++) {
                double frac = ((double)var[i] + 1.0) / 2.0;
                double lv = frac * max_log + (1.0 - frac) * min_log;
                double dlv_dvar = 0.5 * ((double)max_log - min_log);
                double pred_x0 = (double)ra * xtn[i] - (double)rm1 * eps[i]; /* eps detached */
                double mean = (double)c1 * pred_x0 + (double)c2 * xtn[i];
                double g; /* d(term)/d(lv) */
                if (tn == 0) {
                    double dls;
                    double ll = discretized_ll(x0n[i], mean, 0.5 * lv, &dls);
                    acc += -ll;
                    g = -dls * 0.5;
                } else {
                    double true_mean = (double)c1 * x0n[i] + (double)c2 * xtn[i];
                    double dm = true_mean - mean, e = exp((double)lv_true - lv), w = dm * dm * exp(-lv);
                    acc += 0.5 * (-1.0 + lv - lv_true + e + w);
                    g = 0.5 * (1.0 - e - w);
                }
                if (d_var) d_var[i] += (float)(g * dlv_dvar * inv_count * inv_ln2 * inv_n);
            }
            v = acc * inv_count * inv_ln2;
        }
        if (mse) mse[n] = (float)m;
        if (vb) vb[n] = (float)v;
        if (loss) loss[n] = (float)(m + v);
    }
    return SADM_OK;
}
