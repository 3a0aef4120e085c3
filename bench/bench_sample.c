/* sadm bench sample: DDIM sampling with classifier-free guidance, libsadm and the PyTorch
 * reference side by side in one invocation (same model shape, batch, steps, threads). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "bench_common.h"
#include "cli.h"
#include "config.h"
#include "sadm.h"


static int run_torch(const bench_case *c, int steps, double cfg, int threads, int bf16, double *secs, double *rss) {
    char args[256];
    snprintf(args, sizeof args, "%d %d %d %d %d %d %d %d %d %g %d %s", c->cfg.input_size, c->cfg.in_channels,
             c->cfg.num_classes, c->cfg.patch_size, c->cfg.depth, c->cfg.hidden_size, c->cfg.num_heads, c->batch, steps, cfg,
             threads, bf16 ? "bf16" : "fp32");
    return bench_python("sample_torch.py", args, "seconds", secs, "peak_rss_mib", rss);
}

int sadm_cmd_bench_sample(int argc, char **argv) {
    cli_opt o[] = {{"steps", "DDIM steps", "50", 0}, {"cfg-scale", "guidance scale", "1.5", 0},
                   {"threads", "threads for both sides (default: all cores)", NULL, 0},
                   {"device", "auto, cpu or cuda (default: $SADM_DEVICE, else auto)", NULL, 0},
                   {"case", "fmnist, dit-s2 or all", "all", 0},
                   {"precision", "fp32: both sides in fp32; bf16: libsadm fp32 and bf16 against PyTorch fp32 and bf16 autocast", "fp32", 0}};
    const size_t nopt = NOPT(o);
    int rc = cli_parse(argc, argv, o, nopt, "sadm bench sample [--steps N] [--cfg-scale S] [--threads N] [--case C] [--precision P]",
                       "Times DDIM sampling with classifier-free guidance for libsadm and the PyTorch reference in\n"
                       "the same invocation and prints images/s and the ratio. With --precision bf16 four sides:\n"
                       "libsadm fp32 and bf16, PyTorch fp32 and bf16 autocast.");
    if (rc) return rc == 1 ? 0 : rc;
    long steps = 50;
    double cfg = 1.5;
    int bf16 = 0;
    if (cli_int(o, nopt, "steps", 1, 1000, &steps) < 0 || cli_double(o, nopt, "cfg-scale", 0, 100, &cfg) < 0 || cli_runtime(o, nopt) ||
        cli_require_cpu("bench sample", "the benchmark (its models stay on the host)") ||
        bench_bf16_sides(cli_get(o, nopt, "precision"), &bf16))
        return 2;
    int nt = sadm_num_threads();
    const char *which = cli_get(o, nopt, "case");
    const bench_case *cases = bench_cases;
    char spec[32];
    snprintf(spec, sizeof spec, "ddim%ld", steps);
    printf("libsadm %s bench sample — DDIM %ld steps, guidance %g\n", sadm_version(), steps, cfg);
    bench_print_machine();
    if (!bf16)
        printf("%-8s %5s %11s %11s %13s %7s %13s %13s\n", "case", "batch", "libsadm s", "PyTorch s", "libsadm img/s", "ratio",
               "act. MiB", "PyTorch MiB");
    else
        bench_bf16_header();
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
        double ours[2] = {0, 0}, ref[2] = {0, 0}, rss = 0;
        int have[2] = {0, 0};
        for (int p = 0; p <= bf16; p++) {
            if (sadm_dit_set_precision(m, p ? SADM_PRECISION_BF16 : SADM_PRECISION_FP32)) return cli_fail("bench sample");
            double t0 = bench_now();
            if (sadm_dit_sample(m, d, &sc, B, y, x, NULL, 0, out, NULL, NULL)) return cli_fail("bench sample");
            ours[p] = bench_now() - t0;
            have[p] = run_torch(&cases[i], (int)steps, cfg, nt, p, &ref[p], &rss) == 0;
        }
        double act = sadm_dit_activation_bytes(m) / 1048576.0;
        if (!bf16) {
            printf("%-8s %5d %11.2f ", cases[i].name, B, ours[0]);
            if (have[0])
                printf("%11.2f %13.2f %6.2fx %13.0f %13.0f\n", ref[0], B / ours[0], ref[0] / ours[0], act, rss);
            else
                printf("%11s %13.2f %7s %13.0f %13s\n", "n/a", B / ours[0], "n/a", act, "n/a");
        } else {
            bench_bf16_row(cases[i].name, B, ours, ref, have);
        }
        fflush(stdout);
        free(x), free(out), free(y);
        sadm_dit_free(m);
        sadm_diffusion_free(d);
    }
    if (!bf16) printf("(act. MiB: libsadm's activation arena for the guided batch; PyTorch MiB: its process peak)\n");
    else bench_bf16_footer();
    return 0;
}
