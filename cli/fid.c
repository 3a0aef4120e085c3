/* sadm fid: the reference FID pipeline — features, statistics files and comparisons
 * (FID, sFID, Inception Score, precision, recall), as ADM's evaluator computes them. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "sadm.h"


#define FID_OPTS                                                                                             \
    {"inception", "FID Inception-v3 weights (.safetensors; see tools/convert_inception.py)", NULL, 0},      \
        {"mode", "input preparation: adm (TensorFlow-1 resize, (x-128)/128) or pytorch-fid", "adm", 0},     \
        {"batch-size", "images per Inception batch", "32", 0}, {"threads", "threads (default: all cores)", NULL, 0}, \
        {"device", "auto, cpu or cuda (default: $SADM_DEVICE, else auto)", NULL, 0}

typedef struct fid_setup {
    sadm_inception *net;
    sadm_fid_mode mode;
    long batch;
} fid_setup;

/* optional: without --inception s->net stays NULL (statistics-only comparisons need none) */
static int setup_weights(const char *cmd, const cli_opt *o, size_t n, fid_setup *s, int optional) {
    const char *w = cli_get(o, n, "inception"), *mode = cli_get(o, n, "mode");
    if (cli_runtime(o, n) || cli_int(o, n, "batch-size", 1, 4096, &s->batch) < 0) return 2;
    if (!strcmp(mode, "adm")) s->mode = SADM_FID_ADM;
    else if (!strcmp(mode, "pytorch-fid")) s->mode = SADM_FID_PYTORCH;
    else {
        fprintf(stderr, "sadm %s: --mode %s: expected adm or pytorch-fid\n", cmd, mode);
        return 2;
    }
    if (!w && optional) return 0;
    if (!w) {
        fprintf(stderr, "sadm %s: --inception is required: the FID Inception-v3 weights as safetensors (convert pytorch-fid's "
                        "pt_inception-2015-12-05-6726825d.pth with tools/convert_inception.py)\n", cmd);
        return 2;
    }
    if (sadm_inception_load(w, &s->net)) return cli_fail(cmd);
    if (sadm_inception_to_backend(s->net, cli_backend())) {
        sadm_inception_free(s->net);
        s->net = NULL;
        return cli_fail(cmd);
    }
    return 0;
}

static int setup(const char *cmd, const cli_opt *o, size_t n, fid_setup *s) { return setup_weights(cmd, o, n, s, 0); }

typedef struct progress_ctx {
    cli_progress_state p;
    const char *what;
} progress_ctx;

static void on_progress(void *ctx, size_t done, size_t total) {
    progress_ctx *c = ctx;
    cli_progress(&c->p, (long)done, (long)total, c->what);
}

/* Features of every image of `path`. */
static int features_of(const char *cmd, const fid_setup *s, const char *path, sadm_fid_features *f) {
    sadm_image_source *src;
    if (sadm_image_source_open(path, &src)) return cli_fail(cmd);
    int h, w;
    sadm_image_source_size(src, &h, &w);
    fprintf(stderr, "sadm %s: %s: %zu images of %d×%d, Inception mode %s\n", cmd, path, sadm_image_source_count(src), w, h,
            sadm_fid_mode_name(s->mode));
    progress_ctx pc = {{0}, "images"};
    int rc = sadm_fid_features_compute(s->net, s->mode, src, (int)s->batch, on_progress, &pc, f) ? cli_fail(cmd) : 0;
    sadm_image_source_close(src);
    return rc;
}

/* mu, sigma of n rows of dim features. */
static int stats_of(const char *cmd, size_t n, int dim, const float *x, double **mu, double **sigma) {
    sadm_feature_stats *st;
    *mu = malloc((size_t)dim * sizeof(double));
    *sigma = malloc((size_t)dim * dim * sizeof(double));
    if (!*mu || !*sigma || sadm_feature_stats_create(dim, &st)) return cli_fail(cmd);
    int rc = sadm_feature_stats_add(st, n, x) || sadm_feature_stats_get(st, *mu, *sigma) ? cli_fail(cmd) : 0;
    sadm_feature_stats_free(st);
    return rc;
}

int sadm_cmd_fid_features(int argc, char **argv) {
    cli_opt o[] = {FID_OPTS, {"images", "images: .safetensors (images (N,H,W,3) uint8 or samples), .npz or a folder", NULL, 0},
                   {"out", "output .safetensors: pool (N,2048), logits (N,1008), spatial (N,2023)", NULL, 0}};
    int rc = cli_parse(argc, argv, o, NOPT(o), "sadm fid features --inception W --images I --out F",
                       "Runs the FID Inception-v3 on a set of images and writes its pool features, logits and ADM's\n"
                       "spatial (sFID) features, to compare with other implementations.");
    if (rc) return rc == 1 ? 0 : rc;
    const char *in = cli_get(o, NOPT(o), "images"), *out = cli_get(o, NOPT(o), "out");
    if (!in || !out) {
        fprintf(stderr, "sadm fid features: --images and --out are required (see --help)\n");
        return 2;
    }
    fid_setup s = {0};
    if ((rc = setup("fid features", o, NOPT(o), &s))) return rc;
    sadm_fid_features f;
    if (!(rc = features_of("fid features", &s, in, &f))) {
        sadm_st_writer *w = sadm_st_writer_new();
        int64_t sp[2] = {(int64_t)f.n, 2048}, sl[2] = {(int64_t)f.n, 1008}, ss[2] = {(int64_t)f.n, 2023};
        if (!w || sadm_st_writer_add(w, "pool", SADM_DTYPE_F32, 2, sp, f.pool) ||
            sadm_st_writer_add(w, "logits", SADM_DTYPE_F32, 2, sl, f.logits) ||
            sadm_st_writer_add(w, "spatial", SADM_DTYPE_F32, 2, ss, f.spatial) ||
            sadm_st_writer_metadata(w, "fid_mode", sadm_fid_mode_name(s.mode)) || sadm_st_writer_save(w, out))
            rc = cli_fail("fid features");
        else
            fprintf(stderr, "sadm fid features: wrote %s (mode %s)\n", out, sadm_fid_mode_name(s.mode));
        sadm_st_writer_free(w);
        sadm_fid_features_free(&f);
    }
    sadm_inception_free(s.net);
    return rc;
}

/* ------------------------------------------------------------------ statistics files */
typedef struct fid_stats {
    double *mu, *sigma, *mu_s, *sigma_s;
    char mode[32]; /* "" when the file does not say */
} fid_stats;

static void stats_free(fid_stats *s) { free(s->mu), free(s->sigma), free(s->mu_s), free(s->sigma_s); }

static int write_stats(const char *cmd, const char *path, const fid_stats *s) {
    const char *mode = s->mode;
    sadm_npz_array a[5] = {
        {"mu", SADM_DTYPE_F64, 1, {2048}, s->mu},         {"sigma", SADM_DTYPE_F64, 2, {2048, 2048}, s->sigma},
        {"mu_s", SADM_DTYPE_F64, 1, {2023}, s->mu_s},     {"sigma_s", SADM_DTYPE_F64, 2, {2023, 2023}, s->sigma_s},
        {"fid_mode", SADM_DTYPE_U8, 1, {(int64_t)strlen(mode)}, mode}};
    if (sadm_npz_write(path, 5, a)) return cli_fail(cmd);
    fprintf(stderr, "sadm %s: wrote %s (mu, sigma, mu_s, sigma_s; mode %s)\n", cmd, path, mode);
    return 0;
}

/* Statistics stored in an .npz (mu, sigma and, for sFID, mu_s, sigma_s), if it has them. */
static int read_stats(const char *cmd, const char *path, fid_stats *s, int *found) {
    *found = 0;
    memset(s, 0, sizeof *s);
    size_t len = strlen(path);
    if (len < 4 || strcmp(path + len - 4, ".npz")) return 0;
    sadm_npz *z;
    if (sadm_npz_open(path, &z)) return cli_fail(cmd);
    int rc = 0;
    sadm_dtype dt;
    int nd;
    int64_t shape[SADM_MAX_DIMS];
    if (!sadm_npz_info(z, "mu", &dt, &nd, shape)) {
        static const char *const names[4] = {"mu", "sigma", "mu_s", "sigma_s"};
        static const int64_t dims[4] = {2048, 2048, 2023, 2023};
        double **dst[4] = {&s->mu, &s->sigma, &s->mu_s, &s->sigma_s};
        for (int k = 0; k < 4 && !rc; k++) {
            if (sadm_npz_info(z, names[k], &dt, &nd, shape)) {
                if (k >= 2) continue; /* no sFID statistics: sFID is not printed */
                rc = cli_fail(cmd);
                break;
            }
            size_t want = k % 2 ? (size_t)(dims[k] * dims[k]) : (size_t)dims[k];
            if (dt != SADM_DTYPE_F64 || nd != 1 + k % 2 || shape[0] != dims[k] || (k % 2 && shape[1] != dims[k])) {
                fprintf(stderr, "sadm %s: %s: %s must be float64 of %lld%s\n", cmd, path, names[k], (long long)dims[k],
                        k % 2 ? " squared" : "");
                rc = 2;
                break;
            }
            *dst[k] = malloc(want * sizeof(double));
            if (!*dst[k] || sadm_npz_read(z, names[k], *dst[k])) rc = cli_fail(cmd);
        }
        if (!rc && !sadm_npz_info(z, "fid_mode", &dt, &nd, shape) && dt == SADM_DTYPE_U8 && nd == 1 && shape[0] < 31)
            rc = sadm_npz_read(z, "fid_mode", s->mode) ? cli_fail(cmd) : 0;
        if (!rc) *found = 1;
    }
    sadm_npz_close(z);
    if (rc) stats_free(s);
    return rc;
}

static int stats_from_features(const char *cmd, const sadm_fid_features *f, fid_stats *s) {
    memset(s, 0, sizeof *s);
    snprintf(s->mode, sizeof s->mode, "%s", sadm_fid_mode_name(f->mode));
    if (f->n < 2) {
        fprintf(stderr, "sadm %s: %zu image%s: statistics need at least 2\n", cmd, f->n, f->n == 1 ? "" : "s");
        return 2;
    }
    return stats_of(cmd, f->n, 2048, f->pool, &s->mu, &s->sigma) || stats_of(cmd, f->n, 2023, f->spatial, &s->mu_s, &s->sigma_s);
}

int sadm_cmd_fid_stats(int argc, char **argv) {
    cli_opt o[] = {FID_OPTS, {"out", "output .npz (mu, sigma, mu_s, sigma_s as ADM's reference statistics; also -o)", NULL, 0}};
    const char *pos[1];
    int npos;
    if ((argc = cli_positionals(argc, argv, o, NOPT(o), pos, 1, &npos)) < 0) return 2;
    int rc = cli_parse(argc, argv, o, NOPT(o), "sadm fid stats IMAGES --inception W -o STATS.npz",
                       "Computes the FID statistics of a set of images (a folder, an ADM .npz with arr_0, or\n"
                       "samples.safetensors from `sadm sample --out-tensor`) in double precision: mu and sigma of\n"
                       "the 2048 pool features, mu_s and sigma_s of ADM's 2023 spatial features.");
    if (rc) return rc == 1 ? 0 : rc;
    const char *out = cli_get(o, NOPT(o), "out");
    if (npos != 1 || !out) {
        fprintf(stderr, "sadm fid stats: needs the images and -o STATS.npz (see --help)\n");
        return 2;
    }
    fid_setup s = {0};
    if ((rc = setup("fid stats", o, NOPT(o), &s))) return rc;
    sadm_fid_features f;
    fid_stats st;
    if (!(rc = features_of("fid stats", &s, pos[0], &f))) {
        if (!(rc = stats_from_features("fid stats", &f, &st))) rc = write_stats("fid stats", out, &st);
        stats_free(&st);
        sadm_fid_features_free(&f);
    }
    sadm_inception_free(s.net);
    return rc;
}

/* One side of a comparison: statistics from a file and/or features from images. */
typedef struct fid_side {
    fid_stats stats;
    int have_stats;
    sadm_fid_features f;
    int have_features;
} fid_side;

static int load_side(const char *cmd, const fid_setup *s, const char *path, fid_side *side) {
    memset(side, 0, sizeof *side);
    int rc = read_stats(cmd, path, &side->stats, &side->have_stats);
    if (rc) return rc;
    /* images too, when there are any: precision/recall and the Inception Score need them */
    sadm_image_source *src;
    if (sadm_image_source_open(path, &src)) {
        if (side->have_stats) return 0; /* a statistics-only file */
        return cli_fail(cmd);
    }
    sadm_image_source_close(src);
    if (!s->net && side->have_stats) return 0; /* no weights: its stored statistics only */
    if (!s->net) {
        fprintf(stderr, "sadm %s: %s has images but no statistics: their features need --inception W (the FID "
                        "Inception-v3 weights; see tools/convert_inception.py)\n", cmd, path);
        return 2;
    }
    if ((rc = features_of(cmd, s, path, &side->f))) return rc;
    side->have_features = 1;
    if (!side->have_stats) {
        if ((rc = stats_from_features(cmd, &side->f, &side->stats))) return rc;
        side->have_stats = 1;
    } else if (side->stats.mode[0] && strcmp(side->stats.mode, sadm_fid_mode_name(s->mode)))
        fprintf(stderr, "sadm %s: warning: %s's statistics were made in mode %s, its images are read in mode %s\n", cmd, path,
                side->stats.mode, sadm_fid_mode_name(s->mode));
    return 0;
}

static void free_side(fid_side *side) {
    stats_free(&side->stats);
    sadm_fid_features_free(&side->f);
}

/* --features fmnist: FD_fmnist between two sides in the classifier's features, and the
 * improved precision and recall (k nearest neighbours) of the second side against the
 * first in the same features. */
static int compare_fmnist(const cli_opt *o, size_t n, const char *a, const char *b, int k, int json) {
    const char *cmd = "fid compare";
    sadm_classifier *c;
    int rc = cli_classifier_load(cmd, cli_get(o, n, "classifier"), &c);
    if (rc) return rc;
    const int D = SADM_CLASSIFIER_FEATURES;
    double *mu[2] = {NULL, NULL}, *sigma[2] = {NULL, NULL}, fd, precision, recall;
    float *feat[2] = {NULL, NULL};
    size_t count[2] = {0, 0};
    const char *side[2] = {a, b};
    for (int i = 0; i < 2 && !rc; i++) {
        rc = cli_fmnist_side_features(cmd, c, side[i], cli_get(o, n, "data-dir"), &feat[i], &count[i]);
        if (!rc) rc = stats_of(cmd, count[i], D, feat[i], &mu[i], &sigma[i]);
    }
    if (!rc && sadm_frechet_distance(D, mu[0], sigma[0], mu[1], sigma[1], &fd)) rc = cli_fail(cmd);
    if (!rc && sadm_precision_recall(count[0], feat[0], count[1], feat[1], D, k, &precision, &recall)) rc = cli_fail(cmd);
    if (!rc && json) {
        printf("{\"features\": \"fmnist\", \"images\": [%zu, %zu], \"fd_fmnist\": %.17g, \"precision\": %.17g, "
               "\"recall\": %.17g, \"k\": %d}\n",
               count[0], count[1], fd, precision, recall, k);
    } else if (!rc) {
        printf("Features: fmnist (libsadm's Fashion-MNIST classifier, 128 penultimate features; %s)\n",
               cli_classifier_path(cli_get(o, n, "classifier")));
        printf("Images: %zu and %zu\n", count[0], count[1]);
        printf("FD_fmnist: %.8g\n", fd);
        printf("Precision: %.8g\n", precision);
        printf("Recall: %.8g\n", recall);
    }
    for (int i = 0; i < 2; i++) free(mu[i]), free(sigma[i]), free(feat[i]);
    sadm_classifier_free(c);
    return rc;
}

int sadm_cmd_fid_compare(int argc, char **argv) {
    cli_opt o[] = {FID_OPTS, {"k", "precision/recall: nearest neighbours", "3", 0},
                   {"is-split", "Inception Score: samples per split (ADM: 5000, 10 splits of 50k)", "5000", 0},
                   {"features", "inception (FID, sFID, IS, precision, recall) or fmnist (FD_fmnist, precision and recall "
                                "in the Fashion-MNIST classifier's features; a side may also be fmnist-test or fmnist-train)",
                    "inception", 0},
                   {"classifier", "with --features fmnist: the classifier's weights (default: the shipped ones)", NULL, 0},
                   {"data-dir", "with --features fmnist: folder of the Fashion-MNIST IDX files", NULL, 0},
                   {"json", "print one JSON object (full precision; null for what could not be computed) instead of text",
                    NULL, 1}};
    const char *pos[2];
    int npos;
    if ((argc = cli_positionals(argc, argv, o, NOPT(o), pos, 2, &npos)) < 0) return 2;
    int rc = cli_parse(argc, argv, o, NOPT(o), "sadm fid compare REFERENCE SAMPLES [--inception W]",
                       "Prints FID, sFID, Inception Score (of SAMPLES), precision and recall, as ADM's evaluator.\n"
                       "Each side is a statistics .npz (mu, sigma[, mu_s, sigma_s]), a reference batch .npz\n"
                       "(arr_0, with or without statistics: stored statistics are used as ADM does), a folder of\n"
                       "images or samples.safetensors. Two statistics files need no Inception weights (FID and\n"
                       "sFID only); images need --inception W, and the Inception Score (sample side) and\n"
                       "precision/recall (both sides) need images. --features fmnist prints FD_fmnist, precision\n"
                       "and recall in the Fashion-MNIST classifier's features instead (both sides images, e.g.\n"
                       "`sadm fid compare fmnist-test samples.safetensors --features fmnist`).");
    if (rc) return rc == 1 ? 0 : rc;
    const char *features = cli_get(o, NOPT(o), "features");
    if (strcmp(features, "inception") && strcmp(features, "fmnist")) {
        fprintf(stderr, "sadm fid compare: --features %s: expected inception or fmnist\n", features);
        return 2;
    }
    int json = cli_get(o, NOPT(o), "json") != NULL;
    long k = 3, split = 5000;
    if (npos != 2) {
        fprintf(stderr, "sadm fid compare: needs REFERENCE and SAMPLES (see --help)\n");
        return 2;
    }
    if (cli_int(o, NOPT(o), "k", 1, 63, &k) < 0 || cli_int(o, NOPT(o), "is-split", 1, 1L << 30, &split) < 0) return 2;
    if (!strcmp(features, "fmnist")) {
        if (cli_runtime(o, NOPT(o))) return 2;
        return compare_fmnist(o, NOPT(o), pos[0], pos[1], (int)k, json);
    }
    fid_setup s = {0};
    if ((rc = setup_weights("fid compare", o, NOPT(o), &s, 1))) return rc;
    fid_side a, b;
    rc = load_side("fid compare", &s, pos[0], &a);
    if (!rc) rc = load_side("fid compare", &s, pos[1], &b);
    else memset(&b, 0, sizeof b);
    /* each metric: its value, or why it is not there (NULL reason = computed) */
    double fid = NAN, sfid = NAN, is = NAN, p = NAN, r = NAN;
    const char *no_is = NULL, *no_sfid = NULL, *no_pr = NULL;
    if (!rc) {
        if (b.have_features) {
            if (sadm_inception_score(b.f.n, 1008, b.f.logits, (size_t)split, &is)) rc = cli_fail("fid compare");
        } else
            no_is = s.net ? "the sample side has no images" : "needs the sample images and --inception W";
        if (!rc && sadm_frechet_distance(2048, a.stats.mu, a.stats.sigma, b.stats.mu, b.stats.sigma, &fid)) rc = cli_fail("fid compare");
        if (!rc && a.stats.mu_s && b.stats.mu_s) {
            if (sadm_frechet_distance(2023, a.stats.mu_s, a.stats.sigma_s, b.stats.mu_s, b.stats.sigma_s, &sfid))
                rc = cli_fail("fid compare");
        } else
            no_sfid = "no spatial statistics on one side";
        if (!rc && a.have_features && b.have_features) {
            if (sadm_precision_recall(a.f.n, a.f.pool, b.f.n, b.f.pool, 2048, (int)k, &p, &r)) rc = cli_fail("fid compare");
        } else
            no_pr = s.net ? "both sides need images" : "needs images on both sides and --inception W";
    }
    if (!rc && json) {
        printf("{\"features\": \"inception\", \"mode\": \"%s\"", sadm_fid_mode_name(s.mode));
        const char *names[5] = {"fid", "sfid", "inception_score", "precision", "recall"};
        double vals[5] = {fid, sfid, is, p, r};
        for (int i = 0; i < 5; i++)
            if (isnan(vals[i])) printf(", \"%s\": null", names[i]);
            else printf(", \"%s\": %.17g", names[i], vals[i]);
        printf("}\n");
    } else if (!rc) {
        if (s.net)
            printf("Inception mode: %s (%s)\n", sadm_fid_mode_name(s.mode),
                   s.mode == SADM_FID_ADM ? "TensorFlow-1 bilinear resize to 299, (x - 128) / 128, as ADM's evaluator"
                                          : "PyTorch bilinear resize to 299, 2x - 1, as pytorch-fid");
        else
            printf("Inception mode: none (stored statistics only, no Inception weights given)\n");
        if (no_is) printf("Inception Score: n/a (%s)\n", no_is);
        else printf("Inception Score: %.8g\n", is);
        printf("FID: %.8g\n", fid);
        if (no_sfid) printf("sFID: n/a (%s)\n", no_sfid);
        else printf("sFID: %.8g\n", sfid);
        if (no_pr) printf("Precision: n/a\nRecall: n/a (%s)\n", no_pr);
        else printf("Precision: %.8g\nRecall: %.8g\n", p, r);
    }
    free_side(&a), free_side(&b);
    sadm_inception_free(s.net);
    return rc;
}
