/* sadm: the command-line program. Thin: parses arguments, prints, and calls the library. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "sadm.h"

static void usage(FILE *f) {
    fprintf(f,
            "usage: sadm <command> [options]\n"
            "\n"
            "commands:\n"
            "  info        show the version, kernel sets, threads and BLAS in use\n"
            "  train       train a DiT (default: on Fashion-MNIST)\n"
            "  sample      generate images (PNG grid) or tensors with DDPM/DDIM and guidance (default\n"
            "              model: the shipped Fashion-MNIST DiT)\n"
            "  forward     run a model file on a batch file (for comparison with other code)\n"
            "  loss        DiT training loss and gradients of one batch (likewise)\n"
            "  convert     a model file or checkpoint to a model file (F32, F16 or BF16 storage)\n"
            "  vae encode|decode   the SD VAE (diffusers AutoencoderKL) on a tensor file\n"
            "  encode      an ImageNet-layout folder -> SD VAE latent shards to train on (resumable)\n"
            "  fid features|stats|compare   the FID pipeline (Inception-v3 features, FID, sFID, IS,\n"
            "              precision/recall), as ADM's evaluator\n"
            "  classifier train|eval   the Fashion-MNIST classifier behind FD_fmnist\n"
            "  bench ops   measure every operator on every kernel set (GFLOP/s, GB/s)\n"
            "  bench train one training step, libsadm and PyTorch side by side\n"
            "  bench sample DDIM sampling with guidance, libsadm and PyTorch side by side\n"
            "  bench sadm  SADM's step against a plain step, libsadm and PyTorch side by side\n"
            "  bench fid   FID Inception-v3 features (images/s) and FID, libsadm and PyTorch side by side\n"
            "  bench vae   SD VAE encode and decode (images/s), libsadm and diffusers side by side\n"
            "\n"
            "Run 'sadm <command> --help' for a command's options.\n"
            "Environment: SADM_ISA=scalar|avx2|avx512|neon forces a kernel set; OMP_NUM_THREADS sets threads;\n"
            "SADM_DEVICE=auto|cpu|cuda picks the backend (as --device).\n");
}

static int cmd_info(int argc, char **argv) {
    if (argc > 1 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
        printf("usage: sadm info\n\nPrints the library version, the kernel sets built in and available on this CPU,\n"
               "the active one, the thread count, the BLAS, the backends (available or why not) and the\n"
               "device that commands would use ($SADM_DEVICE or --device; auto takes the first available).\n");
        return 0;
    }
    if (argc > 1) {
        fprintf(stderr, "sadm info: unexpected argument '%s' (it takes none; see --help)\n", argv[1]);
        return 2;
    }
    printf("libsadm %s\n", sadm_version());
    printf("kernel sets:");
    for (const char *const *n = sadm_isa_list(); *n; n++)
        printf(" %s%s", *n, sadm_isa_available(*n) ? "" : " (not supported by this CPU)");
    printf("\nactive:      %s\n", sadm_isa());
    const char *bf16_why;
    int bf16_auto = sadm_bf16_preferred(&bf16_why);
    printf("bf16:        %s; --precision auto picks %s (%s)\n", sadm_bf16_path(), bf16_auto ? "bf16" : "fp32", bf16_why);
    printf("threads:     %d\n", sadm_num_threads());
    printf("BLAS:        %s\n", sadm_blas_info());
    for (size_t i = 0; i < sadm_backend_count(); i++) {
        const char *name = sadm_backend_name_at(i), *why = "";
        int ok = sadm_backend_available(name, &why);
        printf("%-12s %s: %s%s\n", i ? "" : "backends:", name, ok ? "available" : "not available: ", ok ? "" : why);
    }
    sadm_backend *be;
    const char *note = "", *dev = getenv("SADM_DEVICE");
    if (sadm_backend_select(NULL, &be, &note))
        printf("device:      %s\n", sadm_last_error());
    else
        printf("device:      %s (%s%s)\n", sadm_backend_name(be), dev && *dev ? "SADM_DEVICE=" : "auto",
               dev && *dev ? dev : "");
    const char *wait = getenv("OMP_WAIT_POLICY"), *spin = getenv("GOMP_SPINCOUNT");
    printf("OpenMP wait: %s%s%s\n", wait ? wait : spin ? "spin count " : "default", !wait && spin ? spin : "",
           wait ? " (OMP_WAIT_POLICY; sadm sets PASSIVE unless you choose)" : "");
    return 0;
}

/* OpenMP threads that wait at a barrier spin for a while by default (libgomp: 300,000
 * iterations) before they sleep. On a machine shared with one other busy process that
 * turns every barrier into a lost time slice: `sadm fid compare` of two statistics files
 * took 130 s instead of 3.7 s. Sleeping at once (PASSIVE) cost about 1% of a training
 * step on an idle machine (doc/DEVELOPING.md), so it is sadm's default unless the user
 * chose a policy. libgomp reads the variable when it is loaded, before main, so the
 * program sets it and runs itself again once; if that fails it goes on as it is. */
static void passive_openmp_by_default(char **argv) {
    if (getenv("OMP_WAIT_POLICY") || getenv("GOMP_SPINCOUNT")) return;
    if (setenv("OMP_WAIT_POLICY", "PASSIVE", 1) != 0) return;
    execv("/proc/self/exe", argv);
    unsetenv("OMP_WAIT_POLICY"); /* not in effect: do not let `sadm info` claim it */
}

int main(int argc, char **argv) {
    passive_openmp_by_default(argv);
    if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "help") == 0) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    if (strcmp(argv[1], "--version") == 0) {
        printf("sadm %s\n", sadm_version());
        return 0;
    }
    if (strcmp(argv[1], "info") == 0) return cmd_info(argc - 1, argv + 1);
    if (strcmp(argv[1], "train") == 0) return sadm_cmd_train(argc - 1, argv + 1);
    if (strcmp(argv[1], "sample") == 0) return sadm_cmd_sample(argc - 1, argv + 1);
    if (strcmp(argv[1], "forward") == 0) return sadm_cmd_forward(argc - 1, argv + 1);
    if (strcmp(argv[1], "loss") == 0) return sadm_cmd_loss(argc - 1, argv + 1);
    if (strcmp(argv[1], "convert") == 0) return sadm_cmd_convert(argc - 1, argv + 1);
    if (strcmp(argv[1], "vae") == 0) return sadm_cmd_vae(argc - 1, argv + 1);
    if (strcmp(argv[1], "encode") == 0) return sadm_cmd_encode(argc - 1, argv + 1);
    if (strcmp(argv[1], "fid") == 0) {
        if (argc >= 3 && strcmp(argv[2], "features") == 0) return sadm_cmd_fid_features(argc - 2, argv + 2);
        if (argc >= 3 && strcmp(argv[2], "stats") == 0) return sadm_cmd_fid_stats(argc - 2, argv + 2);
        if (argc >= 3 && strcmp(argv[2], "compare") == 0) return sadm_cmd_fid_compare(argc - 2, argv + 2);
        fprintf(stderr, "sadm fid: expected features, stats or compare\n");
        return 2;
    }
    if (strcmp(argv[1], "classifier") == 0) return sadm_cmd_classifier(argc - 1, argv + 1);
    if (strcmp(argv[1], "bench") == 0) {
        if (argc >= 3 && strcmp(argv[2], "ops") == 0) return sadm_cmd_bench_ops(argc - 2, argv + 2);
        if (argc >= 3 && strcmp(argv[2], "train") == 0) return sadm_cmd_bench_train(argc - 2, argv + 2);
        if (argc >= 3 && strcmp(argv[2], "sample") == 0) return sadm_cmd_bench_sample(argc - 2, argv + 2);
        if (argc >= 3 && strcmp(argv[2], "sadm") == 0) return sadm_cmd_bench_sadm(argc - 2, argv + 2);
        if (argc >= 3 && strcmp(argv[2], "fid") == 0) return sadm_cmd_bench_fid(argc - 2, argv + 2);
        if (argc >= 3 && strcmp(argv[2], "vae") == 0) return sadm_cmd_bench_vae(argc - 2, argv + 2);
        fprintf(stderr, "sadm bench: expected a benchmark name: ops, train, sample, sadm or fid\n");
        return 2;
    }
    fprintf(stderr, "sadm: unknown command '%s'\n\n", argv[1]);
    usage(stderr);
    return 2;
}
