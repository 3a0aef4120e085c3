/* sadm bench sample: DDIM sampling with classifier-free guidance, libsadm and the PyTorch
 * reference side by side in one invocation (same model shape, batch, steps, threads). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "bench_common.h"
#include "cli.h"
#include "config.h"
#include "sadm.h"


static int run_torch(const bench_case *c, int steps, double cfg, int threads, double *secs, double *rss) {
    char args[256];
    snprintf(args, sizeof args, "%d %d %d %d %d %d %d %d %d %g %d", c->cfg.input_size, c->cfg.in_channels, c->cfg.num_classes,
             c->cfg.patch_size, c->cfg.depth, c->cfg.hidden_size, c->cfg.num_heads, c->batch, steps, cfg, threads);
    return bench_python("sample_torch.py", args, "seconds", secs, "peak_rss_mib", rss);
}

int sadm_cmd_bench_sample(int argc, char **argv) {
    cli_opt o[] = {{"steps", "DDIM steps", "50", 0}, {"cfg-scale", "guidance scale", "1.5", 0},
                   {"threads", "threads for both sides (default: all cores)", NULL, 0},
                   {"device", "auto, cpu or cuda (default: $SADM_DEVICE, else auto)", NULL, 0},
                   {"case", "fmnist, dit-s2 or all", "all", 0}};
    int rc = cli_parse(argc, argv, o, 5, "sadm bench sample [--steps N] [--cfg-scale S] [--threads N] [--case C]",
                       "Times DDIM sampling with classifier-free guidance for libsadm and the PyTorch reference in\n"
                       "the same invocation and prints images/s and the ratio.");
    if (rc) return rc == 1 ? 0 : rc;
    long steps = 50;
    double cfg = 1.5;
    if (cli_int(o, 5, "steps", 1, 1000, &steps) < 0 || cli_double(o, 5, "cfg-scale", 0, 100, &cfg) < 0 || cli_runtime(o, 5) ||
        cli_require_cpu("bench sample", "the benchmark (its models stay on the host)"))
        return 2;
    int nt = sadm_num_threads();
    const char *which = cli_get(o, 5, "case");
    const bench_case *cases = bench_cases;
    char spec[32];
    snprintf(spec, sizeof spec, "ddim%ld", steps);
    printf("libsadm %s bench sample — DDIM %ld steps, guidance %g, %d threads, %s kernels, BLAS: %s\n", sadm_version(), steps,
           cfg, nt, sadm_isa(), sadm_blas_info());
    printf("%-8s %5s %11s %11s %13s %7s %13s %13s\n", "case", "batch", "libsadm s", "PyTorch s", "libsadm img/s", "ratio",
           "act. MiB", "PyTorch MiB");
    for (int i = 0; i < BENCH_NCASES; i++) {
        if (strcmp(which, "all") && strcmp(which, cases[i].name)) continue;
        sadm_dit *m;
        sadm_diffusion *d;
        if (sadm_dit_create(&cases[i].cfg, 0, &m) || sadm_diffusion_respaced("linear", 1000, spec, &d)) return cli_fail("bench sample");
        int B = cases[i].batch;
        size_t per = (size_t)cases[i].cfg.in_channels * cases[i].cfg.input_size * cases[i].cfg.input_size;
        float *x = malloc(B * per * sizeof(float)), *out = malloc(B * per * sizeof(float));
        int64_t *y = malloc(B * sizeof(int64_t));
        sadm_rng_normal(1, 0, 0, B * per, x);
        for (int n = 0; n < B; n++) y[n] = n % cases[i].cfg.num_classes;
        sadm_sample_config sc = {1, 0.0f, (float)cfg, 0, 0};
        struct timespec a, b;
        clock_gettime(CLOCK_MONOTONIC, &a);
        if (sadm_dit_sample(m, d, &sc, B, y, x, NULL, 0, out, NULL, NULL)) return cli_fail("bench sample");
        clock_gettime(CLOCK_MONOTONIC, &b);
        double ours = (b.tv_sec - a.tv_sec) + (b.tv_nsec - a.tv_nsec) * 1e-9, ref = 0, rss = 0;
        double act = sadm_dit_activation_bytes(m) / 1048576.0;
        int have = run_torch(&cases[i], (int)steps, cfg, nt, &ref, &rss) == 0;
        printf("%-8s %5d %11.2f ", cases[i].name, B, ours);
        if (have)
            printf("%11.2f %13.2f %6.2fx %13.0f %13.0f\n", ref, B / ours, ref / ours, act, rss);
        else
            printf("%11s %13.2f %7s %13.0f %13s\n", "n/a", B / ours, "n/a", act, "n/a");
        fflush(stdout);
        free(x), free(out), free(y);
        sadm_dit_free(m);
        sadm_diffusion_free(d);
    }
    printf("(act. MiB: libsadm's activation arena for the guided batch; PyTorch MiB: its process peak)\n");
    return 0;
}
