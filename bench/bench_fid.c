/* sadm bench fid: FID Inception-v3 feature extraction, libsadm and PyTorch (torchvision's
 * Inception3 with pytorch-fid's blocks) side by side on the same images, weights, mode and
 * threads: images/s and their ratio, and the FID each pipeline gives for the same two
 * image sets (they must agree to 1e-3 relative). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "bench_common.h"
#include "cli.h"
#include "config.h"
#include "sadm.h"



/* Smooth random images (a low-frequency pattern plus noise), different per set: the FID
 * between two sets is then clearly above 0. */
static void make_images(size_t N, int S, uint64_t seed, float shift, uint8_t *img) {
    float *u = malloc(N * 8 * sizeof(float)), *noise = malloc(N * (size_t)S * S * 3 * sizeof(float));
    sadm_rng_uniform(seed, 0, 0, N * 8, u);
    sadm_rng_uniform(seed, 1, 0, N * (size_t)S * S * 3, noise);
    for (size_t n = 0; n < N; n++)
        for (int y = 0; y < S; y++)
            for (int x = 0; x < S; x++)
                for (int c = 0; c < 3; c++) {
                    const float *p = u + n * 8;
                    float v = 128 + 80 * sinf(6.0f * p[c] * y / S + 6.0f * p[3 + c % 2] * x / S + 6.28f * p[5 + c]) +
                              40 * (noise[((n * S + y) * S + x) * 3 + c] - 0.5f) + shift;
                    img[((n * S + y) * S + x) * 3 + c] = (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v);
                }
    free(u), free(noise);
}

static int write_images(const char *path, size_t N, int S, const uint8_t *img) {
    sadm_st_writer *w = sadm_st_writer_new();
    int64_t shape[4] = {(int64_t)N, S, S, 3};
    int rc = !w || sadm_st_writer_add(w, "images", SADM_DTYPE_U8, 4, shape, img) || sadm_st_writer_save(w, path);
    sadm_st_writer_free(w);
    return rc;
}

/* Pool features of all N images in batches; seconds taken. */
static int pool_features(sadm_inception *net, sadm_fid_mode mode, size_t N, int S, int B, const uint8_t *img, float *pool,
                         double *secs) {
    double t0 = bench_now();
    for (size_t i = 0; i < N; i += (size_t)B) {
        int k = (int)(N - i < (size_t)B ? N - i : (size_t)B);
        if (sadm_inception_features(net, mode, k, S, S, img + i * S * S * 3, pool + i * 2048, NULL, NULL)) return 1;
    }
    *secs = bench_now() - t0;
    return 0;
}

static int fid_of(size_t N, const float *a, const float *b, double *fid) {
    sadm_feature_stats *sa = NULL, *sb = NULL;
    double *mu1 = malloc(2048 * sizeof(double)), *s1 = malloc(2048 * 2048 * sizeof(double));
    double *mu2 = malloc(2048 * sizeof(double)), *s2 = malloc(2048 * 2048 * sizeof(double));
    int rc = !mu1 || !s1 || !mu2 || !s2 || sadm_feature_stats_create(2048, &sa) || sadm_feature_stats_create(2048, &sb) ||
             sadm_feature_stats_add(sa, N, a) || sadm_feature_stats_add(sb, N, b) || sadm_feature_stats_get(sa, mu1, s1) ||
             sadm_feature_stats_get(sb, mu2, s2) || sadm_frechet_distance(2048, mu1, s1, mu2, s2, fid);
    sadm_feature_stats_free(sa), sadm_feature_stats_free(sb);
    free(mu1), free(s1), free(mu2), free(s2);
    return rc;
}

int sadm_cmd_bench_fid(int argc, char **argv) {
    cli_opt o[] = {{"images", "images per set (two sets)", "64", 0},
                   {"size", "image size (square; resized to 299 inside)", "256", 0},
                   {"batch-size", "images per Inception batch, both sides", "16", 0},
                   {"mode", "adm or pytorch-fid", "adm", 0},
                   {"inception", "FID Inception-v3 weights (default: random weights and BN statistics)", NULL, 0},
                   {"rounds", "timing rounds, libsadm and PyTorch alternating (medians are printed)", "3", 0},
                   {"threads", "threads for both sides (default: all cores)", NULL, 0},
                   {"device", "auto, cpu or cuda (default: $SADM_DEVICE, else auto)", NULL, 0}};
    int rc = cli_parse(argc, argv, o, NOPT(o), "sadm bench fid [options]",
                       "Times FID Inception-v3 pool features for libsadm and PyTorch (torchvision's Inception3 with\n"
                       "pytorch-fid's blocks, float32) in the same invocation, and prints the FID both pipelines give\n"
                       "for the same two image sets (PyTorch's by pytorch-fid's scipy sqrtm formula).");
    if (rc) return rc == 1 ? 0 : rc;
    long N = 64, S = 256, B = 16, rounds = 3;
    if (cli_int(o, NOPT(o), "images", 2, 1 << 20, &N) < 0 || cli_int(o, NOPT(o), "rounds", 1, 100, &rounds) < 0 || cli_int(o, NOPT(o), "size", 8, 4096, &S) < 0 ||
        cli_int(o, NOPT(o), "batch-size", 1, 4096, &B) < 0 || cli_runtime(o, NOPT(o)) ||
        cli_require_cpu("bench fid", "the benchmark (its models stay on the host)"))
        return 2;
    const char *mode_name = cli_get(o, NOPT(o), "mode");
    sadm_fid_mode mode = SADM_FID_ADM;
    if (!strcmp(mode_name, "pytorch-fid")) mode = SADM_FID_PYTORCH;
    else if (strcmp(mode_name, "adm")) {
        fprintf(stderr, "sadm bench fid: --mode %s: expected adm or pytorch-fid\n", mode_name);
        return 2;
    }
    char dir[] = "/tmp/sadm-bench-fid-XXXXXX", wpath[128], apath[128], bpath[128], args[1024];
    if (!mkdtemp(dir)) {
        perror("sadm bench fid: mkdtemp");
        return 1;
    }
    snprintf(apath, sizeof apath, "%s/a.safetensors", dir);
    snprintf(bpath, sizeof bpath, "%s/b.safetensors", dir);
    const char *weights = cli_get(o, NOPT(o), "inception");
    double v1, v2;
    if (!weights) {
        snprintf(wpath, sizeof wpath, "%s/inception.safetensors", dir);
        snprintf(args, sizeof args, "make '%s' 1", wpath);
        if (bench_python("fid_torch.py", args, "made", &v1, "seed", &v2)) {
            fprintf(stderr, "sadm bench fid: making random Inception weights needs PyTorch (none found); pass --inception\n");
            return 1;
        }
        weights = wpath;
    }
    size_t n = (size_t)N, per = (size_t)S * S * 3;
    uint8_t *a = malloc(n * per), *b = malloc(n * per);
    float *fa = malloc(n * 2048 * sizeof(float)), *fb = malloc(n * 2048 * sizeof(float));
    sadm_inception *net = NULL;
    if (!a || !b || !fa || !fb) {
        fprintf(stderr, "sadm bench fid: out of memory for %zu images\n", n);
        return 1;
    }
    make_images(n, (int)S, 1, 0.0f, a);
    make_images(n, (int)S, 2, 20.0f, b);
    if (write_images(apath, n, (int)S, a) || write_images(bpath, n, (int)S, b) || sadm_inception_load(weights, &net))
        return cli_fail("bench fid");
    int nt = sadm_num_threads();
    printf("libsadm %s bench fid — %ld images of %ldx%ld per set, mode %s, batch %ld, %d threads, %s kernels, BLAS: %s\n",
           sadm_version(), N, S, S, sadm_fid_mode_name(mode), B, nt, sadm_isa(), sadm_blas_info());
    /* the machine is noisy: rounds alternate between the two sides, medians are compared */
    double warm, fid_ours = 0, fid_torch = 0, ours[100], theirs[100];
    int have = 1;
    if (pool_features(net, mode, n < (size_t)B ? n : (size_t)B, (int)S, (int)B, a, fa, &warm)) return cli_fail("bench fid");
    snprintf(args, sizeof args, "'%s' '%s' '%s' %s %ld %d", weights, apath, bpath, sadm_fid_mode_name(mode), B, nt);
    for (long r = 0; r < rounds; r++) {
        double secs;
        if (pool_features(net, mode, n, (int)S, (int)B, a, fa, &secs)) return cli_fail("bench fid");
        ours[r] = n / secs;
        if (have) have = bench_python("fid_torch.py", args, "images_per_s", &theirs[r], "fid", &fid_torch) == 0;
        fprintf(stderr, "round %ld: libsadm %.2f img/s, PyTorch %.2f img/s\n", r + 1, ours[r], have ? theirs[r] : 0.0);
    }
    if (pool_features(net, mode, n, (int)S, (int)B, b, fb, &warm) || fid_of(n, fa, fb, &fid_ours)) return cli_fail("bench fid");
    double ips_ours = bench_median(ours, (int)rounds), ips_torch = have ? bench_median(theirs, (int)rounds) : 0;
    printf("%-10s %14s %14s %7s %14s %14s %10s\n", "", "libsadm img/s", "PyTorch img/s", "ratio", "libsadm FID", "PyTorch FID",
           "rel. diff");
    if (have) {
        double rel = fabs(fid_ours - fid_torch) / fabs(fid_torch);
        printf("%-10s %14.2f %14.2f %6.2fx %14.6g %14.6g %10.2e %s\n", "inception", ips_ours, ips_torch, ips_ours / ips_torch,
               fid_ours, fid_torch, rel, rel <= 1e-3 ? "(agree to 1e-3)" : "(DISAGREE beyond 1e-3)");
    } else {
        printf("%-10s %14.2f %14s %7s %14.6g %14s %10s\n", "inception", ips_ours, "n/a", "n/a", fid_ours, "n/a", "n/a");
    }
    printf("(images/s: medians of %ld rounds, the sides alternating)\n", rounds);
    if (n <= 2048)
        printf("(%zu images per set give rank-deficient 2048-d covariances; FIDs of such sets are for the comparison only)\n", n);
    sadm_inception_free(net);
    free(a), free(b), free(fa), free(fb);
    unlink(apath), unlink(bpath);
    if (weights == wpath) unlink(wpath);
    rmdir(dir);
    return 0;
}
