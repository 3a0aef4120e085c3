/* sadm bench sadm: the cost of SADM's minimax step over a plain DiT step, libsadm and the
 * PyTorch reference side by side in one invocation (same models, batch, threads, float32),
 * with the default structure encoder of `sadm train --sadm`. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bench_common.h"
#include "cli.h"
#include "sadm.h"



/* Median step time of a trainer, plain or with SADM, after two warm-up steps. */
static int time_trainer(const bench_case *c, const sadm_dataset *data, const sadm_encoder_config *ec, int steps,
                        sadm_precision prec, double *out) {
    sadm_dit *m;
    sadm_trainer *tr;
    sadm_train_config tc;
    sadm_train_config_default(&tc);
    tc.batch_size = c->batch;
    tc.precision = prec;
    if (sadm_dit_create(&c->cfg, 0, &m)) return cli_fail("bench sadm");
    if (sadm_trainer_create(m, data, &tc, &tr)) {
        sadm_dit_free(m);
        return cli_fail("bench sadm");
    }
    if (ec) {
        sadm_encoder *e;
        sadm_sadm_config sc;
        sadm_sadm_config_default(&sc);
        if (sadm_encoder_create(ec, 1, &e) || sadm_trainer_enable_sadm(tr, e, &sc)) {
            sadm_trainer_free(tr);
            return cli_fail("bench sadm");
        }
    }
    double times[64];
    for (int i = 0; i < steps + 2; i++) {
        double a = bench_now();
        if (sadm_trainer_step(tr, NULL)) {
            sadm_trainer_free(tr);
            return cli_fail("bench sadm");
        }
        if (i >= 2) times[i - 2] = bench_now() - a;
    }
    sadm_trainer_free(tr);
    *out = bench_median(times, steps);
    return 0;
}

/* Random latents as a tensor data set for the DiT-S/2 case. */
static int latent_data(const bench_case *c, sadm_dataset **out) {
    int N = 4 * c->batch, C = c->cfg.in_channels, S = c->cfg.input_size;
    size_t nx = (size_t)N * C * S * S;
    float *x = malloc(nx * sizeof(float));
    int64_t *y = malloc((size_t)N * sizeof(int64_t));
    char path[] = "/tmp/sadm-bench-XXXXXX";
    int fd = mkstemp(path);
    if (!x || !y || fd < 0) {
        free(x), free(y);
        fprintf(stderr, "sadm bench sadm: cannot make a temporary data file\n");
        return 1;
    }
    sadm_rng_normal(7, 0, 0, nx, x);
    for (int n = 0; n < N; n++) y[n] = n % c->cfg.num_classes;
    sadm_st_writer *w = sadm_st_writer_new();
    int64_t sx[4] = {N, C, S, S}, sy[1] = {N};
    char classes[32];
    snprintf(classes, sizeof classes, "%d", c->cfg.num_classes);
    int rc = !w || sadm_st_writer_add(w, "x", SADM_DTYPE_F32, 4, sx, x) || sadm_st_writer_add(w, "y", SADM_DTYPE_I64, 1, sy, y) ||
             sadm_st_writer_metadata(w, "num_classes", classes) || sadm_st_writer_save(w, path) ||
             sadm_dataset_tensors(path, out);
    if (rc) cli_fail("bench sadm");
    sadm_st_writer_free(w);
    remove(path);
    free(x), free(y);
    return rc;
}

int sadm_cmd_bench_sadm(int argc, char **argv) {
    cli_opt o[] = {{"steps", "timed steps per side (median reported)", "5", 0},
                   {"threads", "threads for both sides (default: all cores)", NULL, 0},
                   {"device", "auto, cpu or cuda (default: $SADM_DEVICE, else auto)", NULL, 0},
                   {"case", "fmnist, dit-s2 or all", "all", 0},
                   {"precision", "fp32: both sides in fp32; bf16: rows for fp32 and for bf16 (PyTorch: autocast)", "fp32", 0}};
    const size_t nopt = NOPT(o);
    int rc = cli_parse(argc, argv, o, nopt, "sadm bench sadm [--steps N] [--threads N] [--case fmnist|dit-s2|all] [--precision P]",
                       "Times a plain DiT training step and a SADM step (denoiser forward, one encoder Adam step,\n"
                       "the denoiser's step through the updated encoder) with the default encoder of `sadm train\n"
                       "--sadm` (depth 2, width 96, 4 heads, patch input/8, embed 64), in libsadm and in PyTorch.\n"
                       "With --precision bf16 a second row per case: libsadm bf16 and PyTorch bf16 autocast.");
    if (rc) return rc == 1 ? 0 : rc;
    long steps = 5;
    int bf16 = 0;
    if (cli_int(o, nopt, "steps", 1, 60, &steps) < 0 || cli_runtime(o, nopt) ||
        cli_require_cpu("bench sadm", "the benchmark (its models stay on the host)") ||
        bench_bf16_sides(cli_get(o, nopt, "precision"), &bf16))
        return 2;
    int nt = sadm_num_threads();
    const char *which = cli_get(o, nopt, "case");
    const bench_case *cases = bench_cases;
    printf("libsadm %s bench sadm\n", sadm_version());
    bench_print_machine();
    printf("%-8s %-5s %5s %10s %10s %9s %10s %10s %9s %12s\n", "case", "prec", "batch", "plain s", "SADM s", "overhead",
           "torch plain", "torch SADM", "overhead", "SADM ratio");
    for (int i = 0; i < BENCH_NCASES; i++) {
        const bench_case *c = &cases[i];
        if (strcmp(which, "all") && strcmp(which, c->name)) continue;
        sadm_dataset *data;
        if (i == 0 ? sadm_dataset_fmnist(NULL, "train", &data) != SADM_OK && cli_fail("bench sadm")
                   : latent_data(c, &data))
            return 1;
        int S = c->cfg.input_size;
        sadm_encoder_config ec = {S, S % 8 ? c->cfg.patch_size : S / 8, c->cfg.in_channels, 96, 2, 4, 4.0f, 64};
        for (int p = 0; p <= bf16 && !rc; p++) {
            double plain = 0, sadm = 0, tp = 0, ts = 0;
            sadm_precision prec = p ? SADM_PRECISION_BF16 : SADM_PRECISION_FP32;
            rc = time_trainer(c, data, NULL, (int)steps, prec, &plain) || time_trainer(c, data, &ec, (int)steps, prec, &sadm);
            if (rc) break;
            char args[256];
            snprintf(args, sizeof args, "%d %d %d %d %d %d %d %d %ld %d %d %d %d %d %d %s", S, c->cfg.in_channels,
                     c->cfg.num_classes, c->cfg.patch_size, c->cfg.depth, c->cfg.hidden_size, c->cfg.num_heads, c->batch,
                     steps, nt, ec.patch_size, ec.depth, ec.hidden_size, ec.num_heads, ec.embed_dim, p ? "bf16" : "fp32");
            int have_ref = bench_python("sadm_step_torch.py", args, "plain_s", &tp, "sadm_s", &ts) == 0;
            printf("%-8s %-5s %5d %10.3f %10.3f %8.0f%% ", c->name, p ? "bf16" : "fp32", c->batch, plain, sadm,
                   100 * (sadm / plain - 1));
            if (have_ref)
                printf("%10.3f %10.3f %8.0f%% %11.2fx\n", tp, ts, 100 * (ts / tp - 1), ts / sadm);
            else
                printf("%10s %10s %9s %12s\n", "n/a", "n/a", "n/a", "n/a");
            fflush(stdout);
        }
        sadm_dataset_free(data);
        if (rc) return 1;
    }
    if (bf16) printf("(PyTorch %s; its bf16 rows use CPU autocast)\n", bench_python_torch_version());
    return 0;
}
