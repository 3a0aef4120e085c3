/* Operators of SADM's objective, so that it runs on any backend: the encoder head's L2
 * normalisation, x̂0 from the model's eps and its gradient back to eps, and the
 * per-sample weights of the structural distance. */
#include <math.h>

#include "internal.h"

/* z = h / max(|h|, eps) per row of E, the norm in double (F.normalize). */
sadm_status sadm_l2_normalize_forward(size_t N, int E, double eps, const float *h, float *z) {
    SADM_REQUIRE_POSITIVE(E);
    SADM_REQUIRE_PTR(h);
    SADM_REQUIRE_PTR(z);
    for (size_t n = 0; n < N; n++) {
        const float *hn = h + n * E;
        double ss = 0;
        for (int k = 0; k < E; k++) ss += (double)hn[k] * hn[k];
        double norm = sqrt(ss), div = norm > eps ? norm : eps;
        for (int k = 0; k < E; k++) z[n * E + k] = (float)(hn[k] / div);
    }
    return SADM_OK;
}

/* dh = (dz - z (z.dz)) / |h| above eps, dz / eps below (dh is overwritten). */
sadm_status sadm_l2_normalize_backward(size_t N, int E, double eps, const float *h, const float *z, const float *dz,
                                       float *dh) {
    SADM_REQUIRE_POSITIVE(E);
    SADM_REQUIRE_PTR(h);
    SADM_REQUIRE_PTR(z);
    SADM_REQUIRE_PTR(dz);
    SADM_REQUIRE_PTR(dh);
    for (size_t n = 0; n < N; n++) {
        const float *hn = h + n * E, *zn = z + n * E, *dzn = dz + n * E;
        double ss = 0, zdz = 0;
        for (int k = 0; k < E; k++) ss += (double)hn[k] * hn[k], zdz += (double)zn[k] * dzn[k];
        double norm = sqrt(ss);
        for (int k = 0; k < E; k++)
            dh[n * E + k] = norm > eps ? (float)((dzn[k] - zn[k] * zdz) / norm) : (float)(dzn[k] / eps);
    }
    return SADM_OK;
}

sadm_status sadm_predict_x0(const sadm_diffusion *d, int N, size_t per, size_t eps_stride, const float *xt,
                            const int64_t *t, const float *eps, float *x0) {
    SADM_REQUIRE_PTR(d);
    SADM_REQUIRE_PTR(xt);
    SADM_REQUIRE_PTR(t);
    SADM_REQUIRE_PTR(eps);
    SADM_REQUIRE_PTR(x0);
    SADM_TRY(sadm_diffusion_check_t(d, __func__, N, t));
    const double *sr = sadm_diffusion_array(d, "sqrt_recip_alphas_cumprod");
    const double *srm1 = sadm_diffusion_array(d, "sqrt_recipm1_alphas_cumprod");
    for (int n = 0; n < N; n++) {
        float a = (float)sr[t[n]], b = (float)srm1[t[n]];
        const float *x = xt + n * per, *e = eps + n * eps_stride;
        float *xh = x0 + n * per;
        for (size_t i = 0; i < per; i++) xh[i] = a * x[i] - b * e[i];
    }
    return SADM_OK;
}

sadm_status sadm_x0_grad_to_eps(const sadm_diffusion *d, int N, size_t per, size_t eps_stride, const int64_t *t,
                                const float *dx0, float *deps) {
    SADM_REQUIRE_PTR(d);
    SADM_REQUIRE_PTR(t);
    SADM_REQUIRE_PTR(dx0);
    SADM_REQUIRE_PTR(deps);
    SADM_TRY(sadm_diffusion_check_t(d, __func__, N, t));
    const double *srm1 = sadm_diffusion_array(d, "sqrt_recipm1_alphas_cumprod");
    for (int n = 0; n < N; n++) {
        float b = (float)srm1[t[n]];
        float *de = deps + n * eps_stride;
        const float *dx = dx0 + n * per;
        for (size_t i = 0; i < per; i++) de[i] -= b * dx[i];
    }
    return SADM_OK;
}

sadm_status sadm_struct_weights(const sadm_diffusion *d, const sadm_sadm_config *c, int N, const int64_t *t, float *w) {
    SADM_REQUIRE_PTR(d);
    SADM_REQUIRE_PTR(c);
    SADM_REQUIRE_PTR(t);
    SADM_REQUIRE_PTR(w);
    SADM_TRY(sadm_diffusion_check_t(d, __func__, N, t));
    const double *abar = sadm_diffusion_array(d, "alphas_cumprod");
    for (int n = 0; n < N; n++)
        w[n] = c->weighting == SADM_WEIGHT_ALPHA     ? (float)abar[t[n]]
               : c->weighting == SADM_WEIGHT_T_BELOW ? (t[n] < c->t_max ? 1.0f : 0.0f)
                                                     : 1.0f;
    return SADM_OK;
}
