#include "testutil.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const size_t tu_awkward_sizes[] = {1, 3, 17, 63, 64, 65, 1000};
const size_t tu_n_awkward_sizes = sizeof tu_awkward_sizes / sizeof tu_awkward_sizes[0];

float *tu_alloc(size_t n) {
    float *p = calloc(n ? n : 1, sizeof(float));
    ck_assert_ptr_nonnull(p);
    return p;
}

float *tu_uniform(size_t n, uint64_t seed, float lo, float hi) {
    float *p = tu_alloc(n);
    ck_assert_int_eq(sadm_rng_uniform(seed, 7, 0, n, p), SADM_OK);
    for (size_t i = 0; i < n; i++) p[i] = lo + (hi - lo) * p[i];
    return p;
}

float *tu_copy(const float *x, size_t n) {
    float *p = tu_alloc(n);
    memcpy(p, x, n * sizeof(float));
    return p;
}

static void close_check(const char *what, const float *got, size_t n, double rtol, double atol, const float *rf,
                        const double *rd) {
    for (size_t i = 0; i < n; i++) {
        double r = rf ? rf[i] : rd[i], g = got[i];
        if (isnan(r) || isnan(g)) {
            ck_assert_msg(isnan(r) && isnan(g), "%s: element %zu of %zu: got %.9g, expected %.9g", what, i, n, g, r);
            continue;
        }
        if (isinf(r) || isinf(g)) {
            ck_assert_msg(r == g, "%s: element %zu of %zu: got %.9g, expected %.9g", what, i, n, g, r);
            continue;
        }
        ck_assert_msg(fabs(g - r) <= atol + rtol * fabs(r),
                      "%s: element %zu of %zu: got %.9g, expected %.9g (|diff| %.3g > %.3g + %.3g*|ref|)", what, i, n,
                      g, r, fabs(g - r), atol, rtol);
    }
}

void tu_assert_close(const char *what, const float *got, const float *ref, size_t n, double rtol, double atol) {
    close_check(what, got, n, rtol, atol, ref, NULL);
}

void tu_assert_close_d(const char *what, const float *got, const double *ref, size_t n, double rtol, double atol) {
    close_check(what, got, n, rtol, atol, NULL, ref);
}

void tu_assert_same(const char *what, const float *a, const float *b, size_t n) {
    for (size_t i = 0; i < n; i++)
        ck_assert_msg(memcmp(a + i, b + i, sizeof(float)) == 0, "%s: element %zu differs: %.9g vs %.9g", what, i,
                      a[i], b[i]);
}

void tu_assert_near_max(const char *what, const float *got, const float *ref, size_t n, double tol) {
    double m = 0, worst = 0;
    size_t at = 0;
    for (size_t i = 0; i < n; i++) m = fabs(ref[i]) > m ? fabs(ref[i]) : m;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)got[i] - ref[i]);
        if (!(d <= worst)) worst = d, at = i;
    }
    ck_assert_msg(m > 0 && worst <= tol * m, "%s: |ours - reference| = %.3g at %zu (ours %.7g, reference %.7g) > %.0e x max|ref| %.4g",
                  what, worst, at, got[at], ref[at], tol, m);
}

void tu_assert_same_files(const char *a, const char *b) {
    FILE *fa = fopen(a, "rb"), *fb = fopen(b, "rb");
    ck_assert_msg(fa && fb, "cannot open %s or %s", a, b);
    int ca, cb;
    long at = 0;
    do {
        ca = fgetc(fa), cb = fgetc(fb);
        ck_assert_msg(ca == cb, "%s and %s differ at byte %ld", a, b, at);
        at++;
    } while (ca != EOF);
    fclose(fa), fclose(fb);
}

void tu_assert_same_tensors(const char *a, const char *b) {
    sadm_st_file *fa, *fb;
    TU_OK(sadm_st_open(a, &fa));
    TU_OK(sadm_st_open(b, &fb));
    ck_assert_msg(sadm_st_count(fa) == sadm_st_count(fb), "%s has %zu tensors, %s %zu", a, sadm_st_count(fa), b,
                  sadm_st_count(fb));
    for (size_t i = 0; i < sadm_st_count(fa); i++) {
        const sadm_tensor_info *ta = sadm_st_tensor(fa, i), *tb = sadm_st_find(fb, ta->name);
        ck_assert_msg(tb && tb->nbytes == ta->nbytes && memcmp(ta->data, tb->data, ta->nbytes) == 0,
                      "tensor %s differs between %s and %s", ta->name, a, b);
    }
    sadm_st_close(fa);
    sadm_st_close(fb);
}

const char *const *tu_isas(void) {
    static const char *list[8];
    const char *const *all = sadm_isa_list();
    size_t k = 0;
    for (size_t i = 0; all[i] && k < 7; i++)
        if (sadm_isa_available(all[i])) list[k++] = all[i];
    list[k] = NULL;
    return list;
}

void tu_use_isa(const char *isa) {
    ck_assert_msg(sadm_set_isa(isa) == SADM_OK, "cannot select kernel set %s: %s", isa, sadm_last_error());
}

static double loss_of(tu_forward_fn forward, void *ctx, const float *w, size_t nout, float *out) {
    forward(ctx, out);
    double l = 0.0;
    for (size_t j = 0; j < nout; j++) l += (double)w[j] * out[j];
    return l;
}

void tu_check_grad(const char *what, tu_forward_fn forward, void *ctx, float *x, size_t n, const float *analytic,
                   const float *w, size_t nout, float h, double tol) {
    float *out = tu_alloc(nout);
    double amax = 0.0;
    for (size_t i = 0; i < n; i++) amax = fmax(amax, fabs(analytic[i]));
    /* The float outputs carry rounding of about 1e-7 relative each; after dividing by 2h
     * that sets an absolute noise floor for the finite difference. */
    forward(ctx, out);
    double lmag = 0.0;
    for (size_t j = 0; j < nout; j++) lmag += fabs((double)w[j] * out[j]);
    double floor_abs = 1e-6 * lmag / h;
    size_t samples = n <= 64 ? n : 64;
    for (size_t s = 0; s < samples; s++) {
        size_t i = n <= 64 ? s : (s * 2654435761u + 11) % n;
        float x0 = x[i];
        float xp = x0 + h, xm = x0 - h;
        x[i] = xp;
        double lp = loss_of(forward, ctx, w, nout, out);
        x[i] = xm;
        double lm = loss_of(forward, ctx, w, nout, out);
        x[i] = x0;
        double fd = (lp - lm) / ((double)xp - (double)xm);
        double an = analytic[i];
        ck_assert_msg(fabs(fd - an) <= tol * (fabs(fd) + fabs(an) + amax / 10.0) + floor_abs,
                      "%s: gradient element %zu of %zu: analytic %.7g, finite difference %.7g (tol %.2g)", what, i, n,
                      an, fd, tol);
    }
    forward(ctx, out); /* leave outputs as they were for the unperturbed input */
    free(out);
}

void tu_randomise_dit(sadm_dit *m, uint64_t seed, float scale) {
    float *data = sadm_dit_param_data(m);
    for (size_t i = 0; i < sadm_dit_num_params(m); i++) {
        const sadm_param *p = sadm_dit_param(m, i);
        if (!p->trainable) continue;
        float std = p->ndim == 1 ? 0.1f * scale : scale / sqrtf((float)(p->numel / (size_t)p->shape[0]));
        if (strstr(p->name, "embedding_table")) std = scale;
        ck_assert_int_eq(sadm_rng_normal(seed, 1000 + i, 0, p->numel, data + p->offset), SADM_OK);
        for (size_t k = 0; k < p->numel; k++) data[p->offset + k] *= std;
    }
}

/* ||ours - ref|| <= rtol ||ref|| for one tensor of a reference file. */
void tu_assert_tensor_close(const sadm_st_file *f, const char *key, const float *ours, const sadm_param *p, double rtol,
                                const char *what) {
    float *ref = tu_alloc(p->numel);
    TU_OK(sadm_st_read_f32(f, key, p->ndim, p->shape, ref));
    double dd = 0, rr = 0;
    for (size_t k = 0; k < p->numel; k++) {
        double e = (double)ours[k] - ref[k];
        dd += e * e, rr += (double)ref[k] * ref[k];
    }
    ck_assert_msg(sqrt(dd) <= rtol * sqrt(rr) + 1e-12, "%s %s: ||diff|| %.3g, ||ref|| %.3g", what, key, sqrt(dd), sqrt(rr));
    free(ref);
}

int tu_run(Suite *s) {
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}

sadm_trainer *tu_small_trainer(const sadm_dataset *d, uint64_t seed) {
    static const sadm_dit_config small = {32, 8, 1, 16, 1, 2, 2.0f, 0.1f, 10, 1};
    sadm_dit *m;
    TU_OK(sadm_dit_create(&small, seed, &m));
    sadm_train_config c;
    sadm_train_config_default(&c);
    c.batch_size = 5, c.seed = seed, c.lr = 1e-3f, c.ema_decay = 0.9f, c.grad_clip = 1.0f;
    sadm_trainer *tr;
    TU_OK(sadm_trainer_create(m, d, &c, &tr));
    return tr;
}

void tu_train_steps(sadm_trainer *tr, int steps, sadm_step_stats *last) {
    for (int i = 0; i < steps; i++) {
        sadm_step_stats s;
        TU_OK(sadm_trainer_step(tr, &s));
        ck_assert_msg(isfinite(s.loss) && s.grad_norm > 0, "step %ld: loss %g, gradient norm %g", s.step, s.loss, s.grad_norm);
        if (last) *last = s;
    }
}

void tu_patch_header(const char *src, const char *dst, const char *from, const char *to) {
    FILE *f = fopen(src, "rb");
    ck_assert_msg(f != NULL, "%s: cannot open", src);
    fseek(f, 0, SEEK_END);
    long size = ftell(f);
    rewind(f);
    unsigned char *b = malloc((size_t)size + 1);
    ck_assert(b && fread(b, 1, (size_t)size, f) == (size_t)size);
    fclose(f);
    uint64_t hlen = 0;
    for (int i = 7; i >= 0; i--) hlen = hlen << 8 | b[i];
    char *h = strndup((const char *)b + 8, (size_t)hlen), *at = strstr(h, from);
    ck_assert_msg(at != NULL, "%s: '%s' is not in the header", src, from);
    size_t pre = (size_t)(at - h), nlen = hlen - strlen(from) + strlen(to);
    FILE *o = fopen(dst, "wb");
    ck_assert(o != NULL);
    unsigned char len[8];
    for (int i = 0; i < 8; i++) len[i] = (unsigned char)(nlen >> (8 * i));
    ck_assert(fwrite(len, 1, 8, o) == 8 && fwrite(h, 1, pre, o) == pre && fwrite(to, 1, strlen(to), o) == strlen(to));
    size_t rest = hlen - pre - strlen(from);
    ck_assert(fwrite(at + strlen(from), 1, rest, o) == rest);
    ck_assert(fwrite(b + 8 + hlen, 1, (size_t)size - 8 - hlen, o) == (size_t)size - 8 - hlen);
    ck_assert(fclose(o) == 0);
    free(h);
    free(b);
}

int tu_emulated(void) {
    const char *w = getenv("SADM_EXEC_WRAPPER");
    return w && *w;
}
