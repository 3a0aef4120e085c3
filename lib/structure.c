/* SADM's structural distances between the real and the generated batch, forward and
 * backward, in double (N×N is small; the differences of cosines near 1 are not). Also the
 * SADM settings: defaults, checks and names. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

void sadm_sadm_config_default(sadm_sadm_config *c) {
    memset(c, 0, sizeof *c);
    c->lambda = 0.001f;
    c->distance = SADM_DIST_COSINE_MSE;
    c->weighting = SADM_WEIGHT_NONE;
    c->tau = 0.1f;
    c->d_steps = 1;
    c->disc_lr = 1e-4f, c->disc_beta1 = 0.9f, c->disc_beta2 = 0.999f, c->disc_eps = 1e-8f;
    c->restart_cos = (float)SADM_COLLAPSE_COS;
}

sadm_status sadm_sadm_config_check(const sadm_sadm_config *c) {
    SADM_REQUIRE_PTR(c);
    SADM_REQUIRE(isfinite(c->lambda) && c->lambda >= 0, "SADM: lambda must be finite and not negative, got %g", c->lambda);
    SADM_REQUIRE(c->distance == SADM_DIST_COSINE_MSE || c->distance == SADM_DIST_SOFTMAX_KL,
                 "SADM: unknown distance %d", (int)c->distance);
    SADM_REQUIRE(c->weighting == SADM_WEIGHT_NONE || c->weighting == SADM_WEIGHT_ALPHA ||
                     c->weighting == SADM_WEIGHT_T_BELOW,
                 "SADM: unknown weighting %d", (int)c->weighting);
    SADM_REQUIRE(c->weighting != SADM_WEIGHT_T_BELOW || c->t_max >= 1,
                 "SADM: weighting t<%d weights no sample (the threshold must be at least 1)", c->t_max);
    SADM_REQUIRE(isfinite(c->grad_ratio) && c->grad_ratio >= 0,
                 "SADM: the adaptive lambda's gradient ratio must be finite and not negative, got %g", c->grad_ratio);
    SADM_REQUIRE(c->disc_warmup >= 0, "SADM: the encoder warm-up must not be negative, got %d steps", c->disc_warmup);
    SADM_REQUIRE(c->disc_restart >= 0, "SADM: the encoder restart must not be negative, got %d steps", c->disc_restart);
    SADM_REQUIRE(c->restart_cos >= -1 && c->restart_cos < 1,
                 "SADM: the collapse cosine of the encoder restart must lie in [-1, 1), got %g", c->restart_cos);
    SADM_REQUIRE(c->tau > 0 && isfinite(c->tau), "SADM: tau must be positive, got %g", c->tau);
    SADM_REQUIRE(c->d_steps >= 0, "SADM: d_steps must not be negative, got %d", c->d_steps);
    SADM_REQUIRE(c->disc_lr >= 0 && c->disc_beta1 >= 0 && c->disc_beta1 < 1 && c->disc_beta2 >= 0 && c->disc_beta2 < 1 &&
                     c->disc_eps > 0,
                 "SADM: encoder Adam needs lr >= 0, betas in [0, 1) and eps > 0");
    return SADM_OK;
}

sadm_status sadm_sadm_config_check_steps(const sadm_sadm_config *c, int T) {
    SADM_TRY(sadm_sadm_config_check(c));
    SADM_REQUIRE(c->weighting != SADM_WEIGHT_T_BELOW || c->t_max < T,
                 "SADM: weighting t<%d weights every sample of a %d-step diffusion (the threshold must lie in [1, %d); "
                 "'none' weights all)",
                 c->t_max, T, T);
    return SADM_OK;
}

static const char *const DISTANCES[] = {"cosine-mse", "softmax-kl"};
static const char *const WEIGHTINGS[] = {"none", "alpha", "t<N"};

sadm_status sadm_struct_distance_parse(const char *name, sadm_struct_distance *out) {
    SADM_REQUIRE_PTR(name);
    SADM_REQUIRE_PTR(out);
    for (int i = 0; i < 2; i++)
        if (!strcmp(name, DISTANCES[i])) return *out = (sadm_struct_distance)i, SADM_OK;
    return sadm_error(SADM_ERR_ARG, "unknown structural distance '%s' (cosine-mse or softmax-kl)", name);
}

sadm_status sadm_struct_weighting_parse(const char *name, sadm_struct_weighting *out, int *t_max) {
    SADM_REQUIRE_PTR(name);
    SADM_REQUIRE_PTR(out);
    for (int i = 0; i < 2; i++)
        if (!strcmp(name, WEIGHTINGS[i])) return *out = (sadm_struct_weighting)i, SADM_OK;
    if (!strncmp(name, "t<", 2)) {
        /* strict decimal: digits only, no sign, no blanks, no trailing text */
        const char *p = name + 2;
        long v = 0;
        int ok = *p != 0;
        for (; ok && *p; p++) {
            if (*p < '0' || *p > '9' || v > 100000000) ok = 0;
            else v = v * 10 + (*p - '0');
        }
        SADM_REQUIRE(ok, "weighting '%s': expected t<N with N a whole number of timesteps, e.g. t<400", name);
        SADM_REQUIRE_PTR(t_max);
        *out = SADM_WEIGHT_T_BELOW, *t_max = (int)v;
        return SADM_OK;
    }
    return sadm_error(SADM_ERR_ARG, "unknown weighting '%s' (none, alpha or t<N, e.g. t<400)", name);
}

const char *sadm_struct_distance_name(sadm_struct_distance d) { return (unsigned)d < 2 ? DISTANCES[d] : "?"; }
const char *sadm_struct_weighting_name(sadm_struct_weighting w) { return (unsigned)w < 3 ? WEIGHTINGS[w] : "?"; }

const char *sadm_sadm_weighting_string(const sadm_sadm_config *c, char *buf, size_t len) {
    if (c->weighting == SADM_WEIGHT_T_BELOW) snprintf(buf, len, "t<%d", c->t_max);
    else snprintf(buf, len, "%s", sadm_struct_weighting_name(c->weighting));
    return buf;
}

/* S = Z Z^T in double. */
static void gram(int N, int E, const float *z, double *S) {
    for (int i = 0; i < N; i++)
        for (int j = 0; j < N; j++) {
            double s = 0;
            for (int k = 0; k < E; k++) s += (double)z[(size_t)i * E + k] * z[(size_t)j * E + k];
            S[(size_t)i * N + j] = s;
        }
}

static double mean_offdiag(int N, const double *S) {
    double s = 0;
    for (int i = 0; i < N; i++)
        for (int j = 0; j < N; j++)
            if (i != j) s += S[(size_t)i * N + j];
    return s / ((double)N * (N - 1));
}

/* dz += scale (G + G^T) z for a loss with dL/dS = G (S = Z Z^T). */
static void gram_backward(int N, int E, const float *z, const double *G, float scale, float *dz) {
    for (int i = 0; i < N; i++)
        for (int k = 0; k < E; k++) {
            double s = 0;
            for (int j = 0; j < N; j++) s += (G[(size_t)i * N + j] + G[(size_t)j * N + i]) * z[(size_t)j * E + k];
            dz[(size_t)i * E + k] += (float)(scale * s);
        }
}

/* Row-wise log-softmax over j != i of S_ij / tau (the diagonal excluded: a sample's
 * similarity to itself is 1 and says nothing about structure). */
static void log_softmax_offdiag(int N, const double *S, double tau, double *L) {
    for (int i = 0; i < N; i++) {
        double mx = -INFINITY, sum = 0;
        for (int j = 0; j < N; j++)
            if (j != i && S[(size_t)i * N + j] / tau > mx) mx = S[(size_t)i * N + j] / tau;
        for (int j = 0; j < N; j++)
            if (j != i) sum += exp(S[(size_t)i * N + j] / tau - mx);
        double lse = mx + log(sum);
        for (int j = 0; j < N; j++) L[(size_t)i * N + j] = j == i ? 0.0 : S[(size_t)i * N + j] / tau - lse;
    }
}

sadm_status sadm_struct_loss(const sadm_sadm_config *c, int N, int E, const float *zr, const float *zf, const float *w,
                             float scale, sadm_struct_stats *stats, float *dzr, float *dzf) {
    SADM_REQUIRE_PTR(c);
    SADM_REQUIRE(N >= 2, "structural distance: a batch of %d sample%s has no pairs (need at least 2)", N,
                 N == 1 ? "" : "s");
    SADM_REQUIRE_POSITIVE(E);
    SADM_REQUIRE_PTR(zr);
    SADM_REQUIRE_PTR(zf);
    size_t NN = (size_t)N * N;
    sadm_scratch_mark mk = sadm_scratch_mark_get();
    double *Sr = sadm_scratch_take(6 * NN * sizeof(double));
    if (!Sr) {
        sadm_scratch_release(mk);
        return sadm_error(SADM_ERR_NOMEM, "structural distance: out of memory for batch %d", N);
    }
    double *Sf = Sr + NN, *Gr = Sf + NN, *Gf = Gr + NN, *Lr = Gf + NN, *Lf = Lr + NN;
    memset(Gr, 0, 2 * NN * sizeof(double));
    gram(N, E, zr, Sr);
    gram(N, E, zf, Sf);
    double loss = 0;
    /* W = 0 (weighting t<N with fewer than two samples below N): no pair counts, L_struct
     * is 0 and so are its gradients */
    if (c->distance == SADM_DIST_COSINE_MSE) {
        double W = 0;
        for (int i = 0; i < N; i++)
            for (int j = 0; j < N; j++)
                if (i != j) W += (w ? (double)w[i] * w[j] : 1.0);
        for (int i = 0; W > 0 && i < N; i++)
            for (int j = 0; j < N; j++) {
                if (i == j) continue;
                size_t ij = (size_t)i * N + j;
                double wij = (w ? (double)w[i] * w[j] : 1.0) / W, diff = Sr[ij] - Sf[ij];
                loss += wij * diff * diff;
                Gr[ij] = 2 * wij * diff;
                Gf[ij] = -2 * wij * diff;
            }
    } else {
        double tau = c->tau, W = 0;
        for (int i = 0; i < N; i++) W += w ? (double)w[i] : 1.0;
        log_softmax_offdiag(N, Sr, tau, Lr);
        log_softmax_offdiag(N, Sf, tau, Lf);
        for (int i = 0; W > 0 && i < N; i++) {
            double wi = (w ? (double)w[i] : 1.0) / W, kl = 0;
            for (int j = 0; j < N; j++)
                if (j != i) kl += exp(Lr[(size_t)i * N + j]) * (Lr[(size_t)i * N + j] - Lf[(size_t)i * N + j]);
            loss += wi * kl;
            /* d KL / d logit_f = P_f - P_r; d KL / d logit_r = P_r (log P_r - log P_f - KL) */
            for (int j = 0; j < N; j++) {
                if (j == i) continue;
                size_t ij = (size_t)i * N + j;
                double pr = exp(Lr[ij]), pf = exp(Lf[ij]);
                Gf[ij] = wi * (pf - pr) / tau;
                Gr[ij] = wi * pr * (Lr[ij] - Lf[ij] - kl) / tau;
            }
        }
    }
    if (dzr) gram_backward(N, E, zr, Gr, scale, dzr);
    if (dzf) gram_backward(N, E, zf, Gf, scale, dzf);
    if (stats) {
        stats->loss = loss;
        stats->real_cos = mean_offdiag(N, Sr);
        stats->fake_cos = mean_offdiag(N, Sf);
    }
    sadm_scratch_release(mk);
    return SADM_OK;
}
