/* Thread-count invariance: every operator, on every kernel set, gives bitwise the same
 * result with 1, 2 and 3 threads. Sizes are large enough that every operator splits its
 * work into several pieces. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"

typedef struct {
    float *buf;
    size_t used, cap;
} sink;

static float *take(sink *s, size_t n) {
    ck_assert_msg(s->used + n <= s->cap, "test sink too small");
    float *p = s->buf + s->used;
    s->used += n;
    return p;
}

static void put_double(sink *s, double v) {
    float *p = take(s, 2);
    memcpy(p, &v, sizeof v);
}

/* Runs every operator once; all results land in the sink, in order. */
static void run_all(sink *s) {
    const int B = 4, T = 96, C = 200, H = 3, hd = 64;
    size_t n = (size_t)B * T * C;
    float *x = tu_uniform(n, 1, -3, 3), *dy = tu_uniform(n, 2, -1, 1), *w = tu_uniform(C, 3, 0.5f, 1.5f);
    float *sh = tu_uniform((size_t)B * C, 4, -1, 1), *sc = tu_uniform((size_t)B * C, 5, -1, 1);

    TU_OK(sadm_gelu_forward(n, x, take(s, n)));
    TU_OK(sadm_gelu_backward(n, x, dy, take(s, n)));
    TU_OK(sadm_silu_backward(n, x, dy, take(s, n)));
    TU_OK(sadm_softmax_forward((size_t)B * T, C, x, take(s, n)));
    float *mean = take(s, (size_t)B * T), *rstd = take(s, (size_t)B * T);
    TU_OK(sadm_layernorm_forward((size_t)B * T, C, x, w, w, 1e-6f, take(s, n), mean, rstd));
    TU_OK(sadm_layernorm_backward((size_t)B * T, C, x, w, mean, rstd, dy, take(s, n), take(s, C), take(s, C)));
    /* group norm over (B, C, T) as (N, C, HW), 8 groups; upsampling of the same */
    float *gm = take(s, (size_t)B * 8), *gr = take(s, (size_t)B * 8);
    TU_OK(sadm_group_norm_forward(B, C, T, 8, x, w, w, 1e-6f, take(s, n), gm, gr));
    TU_OK(sadm_group_norm_backward(B, C, T, 8, x, w, gm, gr, dy, take(s, n), take(s, C), take(s, C)));
    TU_OK(sadm_upsample_nearest_forward(B, C, 8, 12, 2, x, take(s, 4 * n)));
    TU_OK(sadm_upsample_nearest_backward(B, C, 4, 6, 2, dy, take(s, n / 4)));
    TU_OK(sadm_modulate_backward(B, T, C, x, sc, dy, take(s, n), take(s, (size_t)B * C), take(s, (size_t)B * C)));
    TU_OK(sadm_gated_add_backward(B, T, C, sc, x, dy, take(s, n), take(s, (size_t)B * C), take(s, n)));
    TU_OK(sadm_mean_tokens_forward(B, T, C, x, take(s, (size_t)B * C)));

    int M = B * T, K = C, N = 150;
    float *lw = tu_uniform((size_t)N * K, 6, -1, 1), *ly = take(s, (size_t)M * N);
    float *ldy = tu_uniform((size_t)M * N, 7, -1, 1);
    TU_OK(sadm_linear_forward(M, K, N, x, lw, w, ly));
    TU_OK(sadm_linear_backward(M, K, N, x, lw, ldy, take(s, (size_t)M * K), take(s, (size_t)N * K), take(s, N)));

    size_t nq = (size_t)B * T * 3 * H * hd, no = (size_t)B * T * H * hd;
    float *qkv = tu_uniform(nq, 8, -2, 2), *dout = tu_uniform(no, 9, -1, 1);
    float *out = take(s, no), *lse = take(s, (size_t)B * H * T);
    TU_OK(sadm_attention_forward(B, T, H, hd, qkv, out, lse));
    TU_OK(sadm_attention_backward(B, T, H, hd, qkv, out, lse, dout, take(s, nq)));

    sadm_conv2d_shape cs = {2, 5, 19, 17, 6, 3, 3, 2, 1, 1, 1, 0, 0};
    int Ho, Wo;
    TU_OK(sadm_conv2d_output_size(&cs, &Ho, &Wo));
    size_t cx = (size_t)2 * 5 * 19 * 17, cy = (size_t)2 * 6 * Ho * Wo, cw = (size_t)6 * 5 * 9;
    float *cin = tu_uniform(cx, 10, -1, 1), *cwt = tu_uniform(cw, 11, -1, 1), *cdy = tu_uniform(cy, 12, -1, 1);
    TU_OK(sadm_conv2d_forward(&cs, cin, cwt, w, take(s, cy)));
    TU_OK(sadm_conv2d_backward(&cs, cin, cwt, cdy, take(s, cx), take(s, cw), take(s, 6)));
    sadm_pool2d_shape ps = {2, 5, 19, 17, 3, 3, 2, 2, 1, 1, SADM_POOL_AVG, 0};
    TU_OK(sadm_pool2d_output_size(&ps, &Ho, &Wo));
    TU_OK(sadm_pool2d_forward(&ps, cin, take(s, (size_t)10 * Ho * Wo)));

    int64_t idx[300];
    for (int i = 0; i < 300; i++) idx[i] = (i * 7) % 13;
    TU_OK(sadm_embedding_backward(300, C, 13, idx, dy, take(s, (size_t)13 * C)));

    size_t big = 300007;
    float *a = tu_uniform(big, 13, -1, 1), *b = tu_uniform(big, 14, -1, 1);
    double r;
    TU_OK(sadm_sum(big, a, &r));
    put_double(s, r);
    TU_OK(sadm_dot(big, a, b, &r));
    put_double(s, r);
    float *p = take(s, big), *m = take(s, big), *v = take(s, big);
    memcpy(p, a, big * sizeof(float));
    sadm_adamw_config cfg = {1e-3f, 0.9f, 0.999f, 1e-8f, 0.1f};
    TU_OK(sadm_adamw_step(big, p, b, m, v, &cfg, 3));
    TU_OK(sadm_clip_grad_norm(big, p, 1.0f, &r));
    put_double(s, r);
    TU_OK(sadm_rng_normal(5, 6, 7, big, take(s, big)));

    free(x), free(dy), free(w), free(sh), free(sc), free(lw), free(ldy), free(qkv), free(dout);
    free(cin), free(cwt), free(cdy), free(a), free(b);
}

START_TEST(test_thread_count_invariance) {
    const size_t cap = 8u << 20;
    for (const char *const *isa = tu_isas(); *isa; isa++) {
        tu_use_isa(*isa);
        sink ref = {calloc(cap, sizeof(float)), 0, cap};
        sadm_set_num_threads(1);
        run_all(&ref);
        for (int threads = 2; threads <= 3; threads++) {
            sink got = {calloc(cap, sizeof(float)), 0, cap};
            sadm_set_num_threads(threads);
            run_all(&got);
            ck_assert_uint_eq(got.used, ref.used);
            ck_assert_msg(memcmp(got.buf, ref.buf, ref.used * sizeof(float)) == 0,
                          "%s: results with %d threads differ from 1 thread", *isa, threads);
            free(got.buf);
        }
        free(ref.buf);
    }
    sadm_set_num_threads(0);
}
END_TEST

/* Large K: OpenBLAS on its own blocks K differently with 1 and 2 threads (M 20000, N 64,
 * K 600 differed in the last bits); sadm_gemm slices K so that it does not. */
START_TEST(test_matmul_large_k) {
    static const int shapes[][3] = {{20000, 64, 600}, {3675, 64, 1200}, {500, 384, 1536}, {64, 96, 4608}};
    for (int s = 0; s < 4; s++) {
        int M = shapes[s][0], N = shapes[s][1], K = shapes[s][2];
        float *A = tu_uniform((size_t)M * K, 1, -1, 1), *B = tu_uniform((size_t)K * N, 2, -1, 1), *ref = NULL;
        for (int threads = 1; threads <= 3; threads++) {
            if (sadm_set_num_threads(threads) != SADM_OK) continue; /* a build without OpenMP */
            float *C = tu_uniform((size_t)M * N, 3, -1, 1);
            TU_OK(sadm_matmul(s % 2 ? SADM_TRANS : SADM_NO_TRANS, SADM_NO_TRANS, M, N, K, 0.5f, A, B, 0.25f, C, NULL));
            if (!ref) ref = C;
            else {
                ck_assert_msg(memcmp(C, ref, (size_t)M * N * sizeof(float)) == 0,
                              "%dx%dx%d product with %d threads differs from 1 thread", M, N, K, threads);
                free(C);
            }
        }
        free(A), free(B), free(ref);
    }
    sadm_set_num_threads(0);
}
END_TEST

int main(void) {
    Suite *s = suite_create("threads");
    TCase *tc = tcase_create("threads");
    tcase_set_timeout(tc, 600);
    tcase_add_test(tc, test_thread_count_invariance);
    tcase_add_test(tc, test_matmul_large_k);
    suite_add_tcase(s, tc);
    return tu_run(s);
}
