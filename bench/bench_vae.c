/* sadm bench vae: the SD VAE's encode and decode (images/s), libsadm and diffusers'
 * AutoencoderKL (PyTorch, float32) side by side in one invocation on the same threads:
 * the SD VAE's config with random weights (speed does not depend on the weights), one
 * image at a time on both sides. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench_common.h"
#include "cli.h"
#include "config.h"
#include "sadm.h"

/* weights of the order of a trained VAE's: U(-a, a) with a = 1/sqrt(fan_in) (PyTorch's
 * default init bound), norms near 1 */
static void randomise(sadm_vae *v) {
    float *d = sadm_vae_param_data(v);
    for (size_t i = 0; i < sadm_vae_num_params(v); i++) {
        const sadm_param *p = sadm_vae_param(v, i);
        float *w = d + p->offset;
        sadm_rng_uniform(7, i, 0, p->numel, w);
        int is_norm = strstr(p->name, "norm") != NULL;
        double fan_in = p->ndim > 1 ? (double)p->numel / p->shape[0] : 64.0;
        float a = (float)(1.0 / sqrt(fan_in));
        for (size_t j = 0; j < p->numel; j++)
            w[j] = is_norm && p->ndim == 1 && strstr(p->name, "weight") ? 0.5f + w[j] : (2 * w[j] - 1) * a;
    }
}

static int time_side(sadm_vae *v, int encode, int S, long images, const float *x, const float *z, float *out,
                     double *ips) {
    int f = sadm_vae_factor(sadm_vae_get_config(v));
    /* warm-up: buffers and scratch */
    if (encode ? sadm_vae_encode(v, 1, S, S, x, out, NULL) : sadm_vae_decode(v, 1, S / f, S / f, z, out)) return 1;
    double t0 = bench_now();
    for (long i = 0; i < images; i++)
        if (encode ? sadm_vae_encode(v, 1, S, S, x, out, NULL) : sadm_vae_decode(v, 1, S / f, S / f, z, out)) return 1;
    *ips = images / (bench_now() - t0);
    return 0;
}

int sadm_cmd_bench_vae(int argc, char **argv) {
    cli_opt o[] = {{"size", "image size (square, a multiple of 8)", "256", 0},
                   {"images", "images timed per round, each side", "2", 0},
                   {"rounds", "timing rounds, libsadm and diffusers alternating (medians are printed)", "3", 0},
                   {"threads", "threads for both sides (default: all cores)", NULL, 0}};
    int rc = cli_parse(argc, argv, o, NOPT(o), "sadm bench vae [options]",
                       "Times the SD VAE (diffusers AutoencoderKL: blocks 128/256/512/512, 2 layers, 32 groups)\n"
                       "encoding and decoding one image at a time, libsadm and diffusers 0.27.2 on PyTorch (the\n"
                       "venv of tools/setup_diffusers_venv.sh) in the same invocation, float32, random weights.");
    if (rc) return rc == 1 ? 0 : rc;
    long S = 256, images = 2, rounds = 3;
    if (cli_int(o, NOPT(o), "size", 8, 2048, &S) < 0 || cli_int(o, NOPT(o), "images", 1, 1000, &images) < 0 ||
        cli_int(o, NOPT(o), "rounds", 1, 100, &rounds) < 0 || cli_runtime(o, NOPT(o)) ||
        cli_require_cpu("bench vae", "the benchmark"))
        return 2;
    if (S % 8) {
        fprintf(stderr, "sadm bench vae: --size %ld is not a multiple of 8\n", S);
        return 2;
    }
    sadm_vae_config c;
    sadm_vae_config_default(&c);
    sadm_vae *v;
    if (sadm_vae_create(&c, &v)) return cli_fail("bench vae");
    randomise(v);
    size_t nx = (size_t)3 * S * S, nz = (size_t)4 * (S / 8) * (S / 8);
    float *x = malloc(nx * sizeof(float)), *z = malloc(nz * sizeof(float)), *out = malloc(nx * sizeof(float));
    if (!x || !z || !out) {
        fprintf(stderr, "sadm bench vae: out of memory\n");
        return 1;
    }
    sadm_rng_uniform(1, 0, 0, nx, x);
    for (size_t i = 0; i < nx; i++) x[i] = 2 * x[i] - 1;
    sadm_rng_normal(1, 1, 0, nz, z);
    int nt = sadm_num_threads();
    printf("libsadm %s bench vae — SD VAE, %ldx%ld images, one at a time, %d threads, float32\n", sadm_version(), S, S, nt);
    bench_print_machine();
    double ours[2][100], theirs[2][100];
    int have = 1;
    char args[256];
    snprintf(args, sizeof args, "%ld %ld %d", S, images, nt);
    for (long r = 0; r < rounds; r++) {
        if (time_side(v, 1, (int)S, images, x, z, out, &ours[0][r]) || time_side(v, 0, (int)S, images, x, z, out, &ours[1][r]))
            return cli_fail("bench vae");
        if (have)
            have = bench_python_with(SADM_PYTHON_DIFFUSERS, "vae_torch.py", args, "encode_images_per_s", &theirs[0][r],
                                     "decode_images_per_s", &theirs[1][r]) == 0;
        fprintf(stderr, "round %ld: libsadm encode %.3f decode %.3f img/s; diffusers encode %.3f decode %.3f img/s\n", r + 1,
                ours[0][r], ours[1][r], have ? theirs[0][r] : 0.0, have ? theirs[1][r] : 0.0);
    }
    printf("%-8s %14s %16s %7s\n", "", "libsadm img/s", "diffusers img/s", "ratio");
    const char *names[2] = {"encode", "decode"};
    for (int k = 0; k < 2; k++) {
        double a = bench_median(ours[k], (int)rounds);
        if (have) {
            double b = bench_median(theirs[k], (int)rounds);
            printf("%-8s %14.3f %16.3f %6.2fx\n", names[k], a, b, a / b);
        } else {
            printf("%-8s %14.3f %16s %7s\n", names[k], a, "n/a", "n/a");
        }
    }
    if (have) printf("diffusers 0.27.2 on PyTorch %s, same threads\n", bench_python_torch_version());
    else printf("diffusers side not run: no venv with diffusers (tools/setup_diffusers_venv.sh, then ./configure)\n");
    sadm_vae_free(v);
    free(x), free(z), free(out);
    return 0;
}
