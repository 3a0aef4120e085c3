/* sadm bench ops: every operator on every kernel set, with the memcpy bandwidth of the
 * same buffers and OpenBLAS sgemm on DiT-shaped matrices as yardsticks, all in one run
 * (this machine is noisy: only numbers from one run compare). Timing only — no check of
 * results here; the tests do that. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bench_common.h"
#include "cli.h"
#include "sadm.h"

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static double min_time_budget = 0.3; /* seconds of repetitions per measurement */

typedef void (*bench_fn)(void *ctx);

/* Best time of one call over repetitions filling the budget (at least 3). */
static double best_time(bench_fn f, void *ctx) {
    f(ctx); /* warm-up: page faults, thread pool start */
    double best = INFINITY, start = now();
    int reps = 0;
    while (reps < 3 || now() - start < min_time_budget) {
        double t0 = now();
        f(ctx);
        double t = now() - t0;
        if (t < best) best = t;
        reps++;
    }
    return best;
}

typedef struct {
    size_t rows, C, n;
    float *x, *y, *dy, *dx, *p, *m, *v, *shift, *scale, *mean, *rstd;
} ew_ctx;

static void run_memcpy(void *c) { ew_ctx *e = c; memcpy(e->y, e->x, e->n * sizeof(float)); }
static void run_gelu(void *c) { ew_ctx *e = c; sadm_gelu_forward(e->n, e->x, e->y); }
static void run_gelu_bwd(void *c) { ew_ctx *e = c; sadm_gelu_backward(e->n, e->x, e->dy, e->dx); }
static void run_silu(void *c) { ew_ctx *e = c; sadm_silu_forward(e->n, e->x, e->y); }
static void run_softmax(void *c) { ew_ctx *e = c; sadm_softmax_forward(e->rows, e->C, e->x, e->y); }
static void run_layernorm(void *c) {
    ew_ctx *e = c;
    sadm_layernorm_forward(e->rows, e->C, e->x, NULL, NULL, 1e-6f, e->y, e->mean, e->rstd);
}
static void run_layernorm_bwd(void *c) {
    ew_ctx *e = c;
    sadm_layernorm_backward(e->rows, e->C, e->x, NULL, e->mean, e->rstd, e->dy, e->dx, NULL, NULL);
}
static void run_modulate(void *c) {
    ew_ctx *e = c;
    sadm_modulate_forward(1, (int)e->rows, (int)e->C, e->x, e->shift, e->scale, e->y);
}
static void run_gated_add(void *c) {
    ew_ctx *e = c;
    sadm_gated_add_forward(1, (int)e->rows, (int)e->C, e->x, e->scale, e->dy, e->y);
}
static void run_adamw(void *c) {
    ew_ctx *e = c;
    static long step = 0;
    sadm_adamw_config cfg = {1e-4f, 0.9f, 0.999f, 1e-8f, 0.0f};
    sadm_adamw_step(e->n, e->p, e->dy, e->m, e->v, &cfg, ++step);
}
static void run_ema(void *c) { ew_ctx *e = c; sadm_ema_update(e->n, e->m, e->p, 0.9999f); }

typedef struct {
    const char *name;
    bench_fn fn;
    int floats_moved; /* floats read + written per element */
} ew_op;

static const ew_op ew_ops[] = {
    {"gelu", run_gelu, 2},           {"gelu backward", run_gelu_bwd, 4},
    {"silu", run_silu, 2},           {"softmax (rows of 256)", run_softmax, 2},
    {"layernorm", run_layernorm, 2}, {"layernorm backward", run_layernorm_bwd, 4},
    {"modulate", run_modulate, 2},   {"gated add", run_gated_add, 3},
    {"adamw", run_adamw, 7},         {"ema", run_ema, 3},
};

typedef struct {
    int M, N, K;
    float *A, *B, *C;
} gemm_ctx;

static void run_gemm(void *c) {
    gemm_ctx *g = c;
    sadm_matmul(SADM_NO_TRANS, SADM_TRANS, g->M, g->N, g->K, 1.0f, g->A, g->B, 0.0f, g->C, NULL);
}

static void run_gemm_bf16(void *c) {
    gemm_ctx *g = c;
    sadm_matmul_bf16(SADM_NO_TRANS, SADM_TRANS, g->M, g->N, g->K, 1.0f, g->A, g->B, 0.0f, g->C);
}

typedef struct {
    int B, N, H, hd;
    float *qkv, *out, *lse, *dout, *dqkv;
} attn_ctx;

static void run_attn_fwd(void *c) {
    attn_ctx *a = c;
    sadm_attention_forward(a->B, a->N, a->H, a->hd, a->qkv, a->out, a->lse);
}
static void run_attn_bwd(void *c) {
    attn_ctx *a = c;
    sadm_attention_backward(a->B, a->N, a->H, a->hd, a->qkv, a->out, a->lse, a->dout, a->dqkv);
}

static float *bench_buffer(size_t n, uint64_t seed) {
    float *p = sadm_alloc(n * sizeof(float));
    if (!p) {
        fprintf(stderr, "sadm bench ops: out of memory\n");
        exit(1);
    }
    sadm_rng_normal(seed, 0, 0, n, p);
    return p;
}

static double gemm_rate(gemm_ctx *g, bench_fn f) {
    double t = best_time(f, g);
    return 2.0 * g->M * g->N * g->K / t * 1e-9;
}

int sadm_cmd_bench_ops(int argc, char **argv) {
    int threads = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            printf("usage: sadm bench ops [--quick] [--threads N]\n\n"
                   "Times every operator on every kernel set this CPU supports, next to memcpy on the same\n"
                   "buffers, OpenBLAS sgemm on DiT-S shapes (1 and N threads) and the fused attention.\n"
                   "  --quick      shorter repetitions (noisier)\n"
                   "  --threads N  threads for the operators (default: all cores)\n");
            return 0;
        } else if (strcmp(argv[i], "--quick") == 0) {
            min_time_budget = 0.05;
        } else if (strcmp(argv[i], "--threads") == 0 && i + 1 < argc) {
            threads = atoi(argv[++i]);
        } else {
            fprintf(stderr, "sadm bench ops: unknown option '%s' (see --help)\n", argv[i]);
            return 2;
        }
    }
    sadm_set_num_threads(threads);
    int nthreads = sadm_num_threads();
    printf("libsadm %s bench ops — %d threads, BLAS: %s\n\n", sadm_version(), nthreads, sadm_blas_info());

    /* --------------------------------------------------------- elementwise / row ops */
    ew_ctx e = {.rows = 4096 * 2, .C = 384};
    /* softmax rows have the length of a 256-token attention row */
    e.n = e.rows * e.C;
    e.x = bench_buffer(e.n, 1), e.y = bench_buffer(e.n, 2), e.dy = bench_buffer(e.n, 3), e.dx = bench_buffer(e.n, 4);
    e.p = bench_buffer(e.n, 5), e.m = bench_buffer(e.n, 6), e.v = bench_buffer(e.n, 7);
    for (size_t i = 0; i < e.n; i++) e.v[i] = fabsf(e.v[i]);
    e.shift = bench_buffer(e.C, 8), e.scale = bench_buffer(e.C, 9);
    e.mean = bench_buffer(e.rows, 10), e.rstd = bench_buffer(e.rows, 11);
    double tcpy = best_time(run_memcpy, &e);
    double bw_cpy = 2.0 * e.n * sizeof(float) / tcpy * 1e-9;
    printf("Elementwise and row operators on %zu x %zu floats (%.1f MiB per tensor)\n", e.rows, e.C,
           e.n * 4.0 / (1 << 20));
    printf("memcpy of one tensor: %.1f GB/s (read + write)\n\n", bw_cpy);
    printf("%-24s", "operator");
    const char *const *isas = sadm_isa_list();
    int nisa = 0;
    for (const char *const *n = isas; *n; n++)
        if (sadm_isa_available(*n)) printf(" %9s GB/s", *n), nisa++;
    printf("  best/scalar  best/memcpy\n");
    for (size_t o = 0; o < sizeof ew_ops / sizeof ew_ops[0]; o++) {
        printf("%-24s", ew_ops[o].name);
        double scalar_bw = 0, best_bw = 0;
        ew_ctx ec = e;
        if (ew_ops[o].fn == run_softmax) ec.C = 256, ec.rows = e.n / 256;
        for (const char *const *n = isas; *n; n++) {
            if (!sadm_isa_available(*n)) continue;
            sadm_set_isa(*n);
            double t = best_time(ew_ops[o].fn, &ec);
            double bw = (double)ew_ops[o].floats_moved * e.n * sizeof(float) / t * 1e-9;
            if (strcmp(*n, "scalar") == 0) scalar_bw = bw;
            if (bw > best_bw) best_bw = bw;
            printf(" %14.1f", bw);
            /* moments and parameters drift under repeated AdamW; reset to keep inputs sane */
            if (ew_ops[o].fn == run_adamw) sadm_rng_normal(5, 0, 0, e.n, e.p);
        }
        printf("  %10.2fx  %10.0f%%\n", best_bw / scalar_bw, 100.0 * best_bw / bw_cpy);
    }
    sadm_set_isa("auto");

    /* --------------------------------------------------------- sgemm */
    static const int shapes[][3] = {{4096, 384, 1152}, {4096, 384, 384}, {4096, 384, 1536}, {4096, 1536, 384}};
    double peak32 = bench_peak_gflops(0), peak16 = bench_peak_gflops(1);
    printf("\nmultiply-add limits, %d threads (512-bit VFMADD231PS / VDPBF16PS chains): fp32 %.1f GFLOP/s, bf16 ",
           nthreads, peak32);
    if (peak16 > 0) printf("%.1f GFLOP/s\n", peak16);
    else printf("n/a (no AVX512-BF16)\n");
    double peak_amx = bench_peak_amx_gflops();
    if (peak_amx > 0)
        printf("AMX TDPBF16PS (bf16 tiles, fp32 sums; no libsadm kernel uses AMX yet): %.1f GFLOP/s, %.1fx fp32\n", peak_amx,
               peak32 > 0 ? peak_amx / peak32 : 0.0);
    else printf("AMX: n/a on this CPU\n");
    printf("\nC[M,N] = A[M,K] B[N,K]^T (DiT-S linear layers, batch 16 x 256 tokens): OpenBLAS sgemm and libsadm's\n"
           "bf16 GEMM (%s)\n", sadm_bf16_path());
    printf("%6s %6s %6s %14s %14s %14s %14s %10s\n", "M", "K", "N", "sgemm 1 thr", "sgemm", "bf16 1 thr", "bf16",
           "bf16/sgemm");
    double gemm_sum = 0;
    int gemm_count = 0;
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
        gemm_ctx g = {shapes[s][0], shapes[s][2], shapes[s][1], NULL, NULL, NULL};
        g.A = bench_buffer((size_t)g.M * g.K, 20), g.B = bench_buffer((size_t)g.N * g.K, 21);
        g.C = bench_buffer((size_t)g.M * g.N, 22);
        sadm_set_num_threads(1);
        double r1 = gemm_rate(&g, run_gemm), h1 = gemm_rate(&g, run_gemm_bf16);
        sadm_set_num_threads(nthreads);
        double rn = gemm_rate(&g, run_gemm), hn = gemm_rate(&g, run_gemm_bf16);
        gemm_sum += rn, gemm_count++;
        printf("%6d %6d %6d %8.1f GF/s %8.1f GF/s %8.1f GF/s %8.1f GF/s %9.2fx", g.M, g.K, g.N, r1, rn, h1, hn, hn / rn);
        if (peak16 > 0) printf("  (%.0f%% of the bf16 limit)", 100 * hn / peak16);
        printf("\n");
        sadm_free(g.A), sadm_free(g.B), sadm_free(g.C);
    }
    double gemm_mean = gemm_sum / gemm_count;

    /* --------------------------------------------------------- attention */
    attn_ctx a = {.B = 8, .N = 256, .H = 6, .hd = 64};
    size_t nq = (size_t)a.B * a.N * 3 * a.H * a.hd, no = (size_t)a.B * a.N * a.H * a.hd;
    a.qkv = bench_buffer(nq, 30), a.out = bench_buffer(no, 31), a.dout = bench_buffer(no, 32);
    a.dqkv = bench_buffer(nq, 33), a.lse = bench_buffer((size_t)a.B * a.H * a.N, 34);
    double tf = best_time(run_attn_fwd, &a), tb = best_time(run_attn_bwd, &a);
    double per_head = (double)a.N * a.N * a.hd * a.B * a.H;
    double rf = 4.0 * per_head / tf * 1e-9, rb = 10.0 * per_head / tb * 1e-9, rfb = 14.0 * per_head / (tf + tb) * 1e-9;
    printf("\nFused attention B=%d N=%d H=%d hd=%d (%s kernels)\n", a.B, a.N, a.H, a.hd, sadm_isa());
    printf("forward  %8.2f ms %8.1f GFLOP/s\n", tf * 1e3, rf);
    printf("backward %8.2f ms %8.1f GFLOP/s\n", tb * 1e3, rb);
    printf("fwd+bwd  %8.2f ms %8.1f GFLOP/s = %.0f%% of the mean sgemm rate above (%.1f GFLOP/s)\n", (tf + tb) * 1e3,
           rfb, 100.0 * rfb / gemm_mean, gemm_mean);
    sadm_free(a.qkv), sadm_free(a.out), sadm_free(a.dout), sadm_free(a.dqkv), sadm_free(a.lse);
    sadm_free(e.x), sadm_free(e.y), sadm_free(e.dy), sadm_free(e.dx), sadm_free(e.p), sadm_free(e.m), sadm_free(e.v);
    sadm_free(e.shift), sadm_free(e.scale), sadm_free(e.mean), sadm_free(e.rstd);
    return 0;
}
