/* Group normalisation (torch.nn.GroupNorm) and nearest-neighbour upsampling
 * (F.interpolate(mode="nearest") by a whole factor): the VAE's operators, NCHW.
 *
 * A group of C/G channels is one contiguous block of (C/G) HW values, so its statistics
 * are the layer-norm kernel's; the affine part is per channel. Each (sample, group) is
 * one thread's work, and dw/db sum over samples in sample order afterwards, so results
 * do not depend on the thread count. */
#include <string.h>

#include "internal.h"

static sadm_status check_groups(const char *fn, int N, int C, size_t HW, int G) {
    SADM_REQUIRE(N > 0 && C > 0 && HW > 0 && G > 0, "%s: N, C, HW and G must be positive, got %d, %d, %zu, %d", fn, N, C,
                 HW, G);
    SADM_REQUIRE(C % G == 0, "%s: %d channels do not split into %d groups", fn, C, G);
    return SADM_OK;
}

sadm_status sadm_group_norm_forward(int N, int C, size_t HW, int G, const float *x, const float *w, const float *b,
                                    float eps, float *y, float *mean, float *rstd) {
    SADM_TRY(check_groups("sadm_group_norm_forward", N, C, HW, G));
    SADM_REQUIRE_PTR(x);
    SADM_REQUIRE_PTR(y);
    SADM_REQUIRE(eps >= 0.0f, "sadm_group_norm_forward: eps must be >= 0, got %g", eps);
    const sadm_kernels *k = sadm_kernels_active();
    const int cg = C / G;
#pragma omp parallel for schedule(static)
    for (long ng = 0; ng < (long)N * G; ng++) {
        size_t off = (size_t)ng * cg * HW;
        float m, r;
        k->mean_rstd((size_t)cg * HW, x + off, eps, &m, &r);
        int c0 = (int)(ng % G) * cg;
        for (int j = 0; j < cg; j++) {
            int c = c0 + j;
            k->norm_affine(HW, x + off + (size_t)j * HW, m, r, w ? w[c] : 1.0f, b ? b[c] : 0.0f,
                           y + off + (size_t)j * HW);
        }
        if (mean) mean[ng] = m;
        if (rstd) rstd[ng] = r;
    }
    return SADM_OK;
}

sadm_status sadm_group_norm_backward(int N, int C, size_t HW, int G, const float *x, const float *w, const float *mean,
                                     const float *rstd, const float *dy, float *dx, float *dw, float *db) {
    SADM_TRY(check_groups("sadm_group_norm_backward", N, C, HW, G));
    SADM_REQUIRE_PTR(x);
    SADM_REQUIRE_PTR(mean);
    SADM_REQUIRE_PTR(rstd);
    SADM_REQUIRE_PTR(dy);
    const sadm_kernels *k = sadm_kernels_active();
    const int cg = C / G;
    const double M = (double)cg * (double)HW;
    sadm_scratch_mark mk = sadm_scratch_mark_get();
    size_t NC = (size_t)N * C;
    float *sums = sadm_scratch_take(2 * NC * sizeof(float)); /* per (n, c): sum dy, sum dy xhat */
    if (!sums) return sadm_error(SADM_ERR_NOMEM, "sadm_group_norm_backward: out of memory");
#pragma omp parallel for schedule(static)
    for (long ng = 0; ng < (long)N * G; ng++) {
        size_t off = (size_t)ng * cg * HW, nc0 = (size_t)ng * cg;
        int c0 = (int)(ng % G) * cg;
        double sg = 0, sgx = 0;
        for (int j = 0; j < cg; j++) {
            float *s = sums + 2 * (nc0 + j);
            k->norm_sums(HW, x + off + (size_t)j * HW, dy + off + (size_t)j * HW, mean[ng], rstd[ng], s, s + 1);
            double wc = w ? w[c0 + j] : 1.0;
            sg += wc * s[0], sgx += wc * s[1];
        }
        if (!dx) continue;
        float mg = (float)(sg / M), mgx = (float)(sgx / M);
        for (int j = 0; j < cg; j++)
            k->norm_dx(HW, x + off + (size_t)j * HW, dy + off + (size_t)j * HW, mean[ng], rstd[ng],
                       w ? w[c0 + j] : 1.0f, mg, mgx, dx + off + (size_t)j * HW);
    }
    if (dw || db)
        for (int n = 0; n < N; n++)
            for (int c = 0; c < C; c++) {
                const float *s = sums + 2 * ((size_t)n * C + c);
                if (db) db[c] += s[0];
                if (dw) dw[c] += s[1];
            }
    sadm_scratch_release(mk);
    return SADM_OK;
}

static sadm_status check_upsample(const char *fn, int N, int C, int H, int W, int s, const void *a, const void *b) {
    SADM_REQUIRE(N > 0 && C > 0 && H > 0 && W > 0 && s > 0, "%s: N, C, H, W and the factor must be positive, got %d, %d, "
                 "%d, %d, %d", fn, N, C, H, W, s);
    SADM_REQUIRE((int64_t)H * s <= INT32_MAX && (int64_t)W * s <= INT32_MAX, "%s: %dx%d upsampled by %d is too large", fn,
                 H, W, s);
    SADM_REQUIRE(a && b, "%s: a tensor argument is NULL", fn);
    return SADM_OK;
}

/* y[n, c, i s + a, j s + b] = x[n, c, i, j] */
sadm_status sadm_upsample_nearest_forward(int N, int C, int H, int W, int s, const float *x, float *y) {
    SADM_TRY(check_upsample("sadm_upsample_nearest_forward", N, C, H, W, s, x, y));
    size_t Wo = (size_t)W * s;
#pragma omp parallel for schedule(static)
    for (long r = 0; r < (long)N * C * H; r++) {
        const float *xr = x + (size_t)r * W;
        float *y0 = y + (size_t)r * s * Wo;
        for (int j = 0; j < W; j++)
            for (int b = 0; b < s; b++) y0[(size_t)j * s + b] = xr[j];
        for (int a = 1; a < s; a++) memcpy(y0 + a * Wo, y0, Wo * sizeof(float));
    }
    return SADM_OK;
}

/* dx[n, c, i, j] += the s x s block of dy it was copied to, in row-major order */
sadm_status sadm_upsample_nearest_backward(int N, int C, int H, int W, int s, const float *dy, float *dx) {
    SADM_TRY(check_upsample("sadm_upsample_nearest_backward", N, C, H, W, s, dy, dx));
    size_t Wo = (size_t)W * s;
#pragma omp parallel for schedule(static)
    for (long r = 0; r < (long)N * C * H; r++) {
        float *xr = dx + (size_t)r * W;
        const float *y0 = dy + (size_t)r * s * Wo;
        for (int j = 0; j < W; j++) {
            float acc = 0;
            for (int a = 0; a < s; a++)
                for (int b = 0; b < s; b++) acc += y0[a * Wo + (size_t)j * s + b];
            xr[j] += acc;
        }
    }
    return SADM_OK;
}
