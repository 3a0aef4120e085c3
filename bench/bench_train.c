/* sadm bench train: one DiT training step (q_sample + forward + MSE/VB loss + backward +
 * AdamW), libsadm and the PyTorch reference side by side in one invocation, same model,
 * batch, threads and float32; plus the sgemm rate of the same run as a yardstick. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "bench_common.h"
#include "cli.h"
#include "config.h"
#include "sadm.h"


/* Median step time of libsadm over `steps` steps after two warm-up steps; also the share
 * of the timed steps spent in the linear layers' GEMMs and their rate. */
static int time_libsadm(const bench_case *c, int steps, sadm_precision prec, double *step_s, double *gemm_share,
                        double *gemm_rate) {
    sadm_dit *m;
    sadm_diffusion *d;
    if (sadm_dit_create(&c->cfg, 0, &m) || sadm_dit_set_precision(m, prec) || sadm_diffusion_create("linear", 1000, &d))
        return cli_fail("bench train");
    int B = c->batch, C = c->cfg.in_channels, H = c->cfg.input_size;
    size_t per = (size_t)C * H * H, P = sadm_dit_param_total(m);
    float *x0 = sadm_alloc(B * per * sizeof(float)), *noise = sadm_alloc(B * per * sizeof(float));
    float *mo = sadm_calloc(P, sizeof(float)), *vo = sadm_calloc(P, sizeof(float)), *u = malloc(B * sizeof(float));
    int64_t *t = malloc(B * sizeof(int64_t)), *y = malloc(B * sizeof(int64_t));
    sadm_rng_uniform(1, 0, 0, B * per, x0);
    for (size_t i = 0; i < B * per; i++) x0[i] = 2 * x0[i] - 1;
    sadm_rng_uniform(1, 1, 0, B, u);
    for (int n = 0; n < B; n++) y[n] = (int64_t)(u[n] * c->cfg.num_classes);
    double times[64];
    sadm_adamw_config oc = {1e-4f, 0.9f, 0.999f, 1e-8f, 0.0f};
    int rc = 0;
    double total = 0, gs = 0, gf = 0;
    for (int i = 0; i < steps + 2 && !rc; i++) {
        if (i == 2) sadm_gemm_profile_reset();
        sadm_rng_uniform(2, 0, (uint64_t)i * B, B, u);
        for (int n = 0; n < B; n++) t[n] = (int64_t)(u[n] * 999.0f);
        sadm_rng_normal(3, 0, (uint64_t)i * B * per, B * per, noise);
        struct timespec a, b;
        clock_gettime(CLOCK_MONOTONIC, &a);
        float *w = sadm_dit_param_data(m), *g;
        rc = sadm_dit_zero_grad(m) || sadm_dit_loss(m, d, B, x0, t, y, noise, NULL, NULL, NULL, NULL);
        g = sadm_dit_grad_data(m);
        for (size_t k = 0; !rc && k < sadm_dit_num_params(m); k++) {
            const sadm_param *p = sadm_dit_param(m, k);
            if (p->trainable)
                rc = sadm_adamw_step(p->numel, w + p->offset, g + p->offset, mo + p->offset, vo + p->offset, &oc, i + 1) != 0;
        }
        clock_gettime(CLOCK_MONOTONIC, &b);
        if (i >= 2) total += times[i - 2] = (b.tv_sec - a.tv_sec) + (b.tv_nsec - a.tv_nsec) * 1e-9;
    }
    sadm_gemm_profile_read(&gs, &gf);
    *gemm_share = total > 0 ? gs / total : 0;
    *gemm_rate = gs > 0 ? gf / gs * 1e-9 : 0;
    if (rc) rc = cli_fail("bench train");
    *step_s = rc ? 0 : bench_median(times, steps);
    sadm_free(x0), sadm_free(noise), sadm_free(mo), sadm_free(vo), free(u), free(t), free(y);
    sadm_dit_free(m);
    sadm_diffusion_free(d);
    return rc;
}

/* Runs the PyTorch reference; fills step time and peak memory, or returns non-zero. */
static int time_torch(const bench_case *c, int steps, int threads, int bf16, double *step_s, double *rss_mib) {
    char args[256];
    snprintf(args, sizeof args, "%d %d %d %d %d %d %d %d %d %d %s", c->cfg.input_size, c->cfg.in_channels,
             c->cfg.num_classes, c->cfg.patch_size, c->cfg.depth, c->cfg.hidden_size, c->cfg.num_heads, c->batch, steps,
             threads, bf16 ? "bf16" : "fp32");
    return bench_python("train_torch.py", args, "step_s", step_s, "peak_rss_mib", rss_mib);
}

int sadm_cmd_bench_train(int argc, char **argv) {
    for (int i = 1; i < argc; i++) /* --sadm: the SADM step against a plain one instead */
        if (!strcmp(argv[i], "--sadm")) {
            for (int j = i; j + 1 < argc; j++) argv[j] = argv[j + 1];
            return sadm_cmd_bench_sadm(argc - 1, argv);
        }
    cli_opt o[] = {{"steps", "timed steps per side (median reported)", "5", 0},
                   {"threads", "threads for both sides (default: all cores)", NULL, 0},
                   {"device", "auto, cpu or cuda (default: $SADM_DEVICE, else auto)", NULL, 0},
                   {"case", "fmnist, dit-s2 or all", "all", 0},
                   {"precision", "fp32: both sides in fp32; bf16: libsadm fp32 and bf16 against PyTorch fp32 and bf16 autocast", "fp32", 0}};
    int rc = cli_parse(argc, argv, o, NOPT(o),
                       "sadm bench train [--sadm] [--steps N] [--threads N] [--case fmnist|dit-s2|all] [--precision fp32|bf16]",
                       "Times one training step (q_sample + forward + MSE/VB loss + backward + AdamW) of libsadm\n"
                       "and of the PyTorch reference in the same invocation and prints images/s and the ratio.\n"
                       "With --precision bf16 four sides: libsadm fp32 and bf16, PyTorch fp32 and bf16 autocast\n"
                       "(the PyTorch of $SADM_PYTHON, else Debian's). With --sadm: a plain step against a SADM\n"
                       "step instead (as `sadm bench sadm`).");
    if (rc) return rc == 1 ? 0 : rc;
    const size_t n = NOPT(o);
    long steps = 5;
    int bf16 = 0;
    if (cli_int(o, n, "steps", 1, 60, &steps) < 0 || cli_runtime(o, n) ||
        cli_require_cpu("bench train", "the benchmark (its models stay on the host)") ||
        bench_bf16_sides(cli_get(o, n, "precision"), &bf16))
        return 2;
    int nt = sadm_num_threads();
    const char *which = cli_get(o, n, "case");
    const bench_case *cases = bench_cases;
    double shares[2][2] = {{0, 0}, {0, 0}}, rates[2][2] = {{0, 0}, {0, 0}};
    printf("libsadm %s bench train\n", sadm_version());
    bench_print_machine();
    if (!bf16)
        printf("%-8s %5s %12s %12s %12s %8s %14s %14s\n", "case", "batch", "libsadm s", "PyTorch s", "libsadm img/s",
               "ratio", "libsadm MiB", "PyTorch MiB");
    else
        bench_bf16_header();
    for (int i = 0; i < BENCH_NCASES; i++) {
        if (strcmp(which, "all") && strcmp(which, cases[i].name)) continue;
        double ours[2] = {0, 0}, ref[2] = {0, 0}, rss = 0;
        int have_ref[2] = {0, 0};
        for (int p = 0; p <= bf16; p++) {
            sadm_precision prec = p ? SADM_PRECISION_BF16 : SADM_PRECISION_FP32;
            if ((rc = time_libsadm(&cases[i], (int)steps, prec, &ours[p], &shares[i][p], &rates[i][p]))) return rc;
            have_ref[p] = time_torch(&cases[i], (int)steps, nt, p, &ref[p], &rss) == 0;
        }
        struct rusage ru;
        getrusage(RUSAGE_SELF, &ru);
        if (!bf16) {
            printf("%-8s %5d %12.3f ", cases[i].name, cases[i].batch, ours[0]);
            if (have_ref[0])
                printf("%12.3f %12.1f %7.2fx %14.0f %14.0f\n", ref[0], cases[i].batch / ours[0], ref[0] / ours[0],
                       ru.ru_maxrss / 1024.0, rss);
            else
                printf("%12s %12.1f %8s %14.0f %14s\n", "n/a", cases[i].batch / ours[0], "n/a", ru.ru_maxrss / 1024.0, "n/a");
        } else {
            bench_bf16_row(cases[i].name, cases[i].batch, ours, ref, have_ref);
        }
        fflush(stdout);
    }
    if (bf16) bench_bf16_footer();
    printf("(libsadm MiB is the peak of this whole process, so it includes the cases before it)\n");
    /* the yardstick: OpenBLAS sgemm on a DiT linear-layer shape, in this run */
    int M = 4096, K = 384, N = 1152;
    float *A = sadm_alloc((size_t)M * K * 4), *Bm = sadm_alloc((size_t)N * K * 4), *Cm = sadm_alloc((size_t)M * N * 4);
    sadm_rng_normal(5, 0, 0, (size_t)M * K, A);
    sadm_rng_normal(5, 1, 0, (size_t)N * K, Bm);
    double best = 1e30;
    for (int r = 0; r < 5; r++) {
        struct timespec a, b;
        clock_gettime(CLOCK_MONOTONIC, &a);
        sadm_matmul(SADM_NO_TRANS, SADM_TRANS, M, N, K, 1.0f, A, Bm, 0.0f, Cm, NULL);
        clock_gettime(CLOCK_MONOTONIC, &b);
        double t = (b.tv_sec - a.tv_sec) + (b.tv_nsec - a.tv_nsec) * 1e-9;
        if (t < best) best = t;
    }
    double peak = 2.0 * M * N * K / best * 1e-9;
    printf("sgemm %dx%dx%d in this run: %.1f GFLOP/s\n", M, K, N, peak);
    for (int i = 0; i < BENCH_NCASES; i++)
        for (int p = 0; p < 2; p++)
            if (rates[i][p] > 0)
                printf("%-8s %s: linear-layer GEMMs %.0f%% of the step at %.1f GFLOP/s = %.0f%% of the sgemm rate\n",
                       cases[i].name, p ? "bf16" : "fp32", 100 * shares[i][p], rates[i][p], 100 * rates[i][p] / peak);
    double peak16 = bf16 ? bench_peak_gflops(1) : 0;
    if (peak16 > 0)
        printf("(the bf16 multiply-add limit of this run, VDPBF16PS on every thread: %.1f GFLOP/s)\n", peak16);
    sadm_free(A), sadm_free(Bm), sadm_free(Cm);
    return 0;
}
