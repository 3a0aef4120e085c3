/* sadm classifier train|eval: the Fashion-MNIST classifier behind FD_fmnist, and the
 * FD_fmnist pieces the other commands share (finding the shipped weights, the test-set
 * statistics, features of an image set). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli.h"
#include "sadm.h"

#define CLASSIFIER_FILE "fmnist-classifier.safetensors"

/* A shipped data file: `given`, else $env, else the installed copy, else the source tree's
 * (so that ./sadm works in a build tree before `make install`). */
const char *cli_data_path(const char *given, const char *env_name, const char *file, char *buf, size_t len) {
    if (given) return given;
    const char *env = getenv(env_name);
    if (env && *env) return env;
    struct stat sb;
    snprintf(buf, len, "%s/%s", SADM_PKGDATADIR, file);
    if (stat(buf, &sb) == 0) return buf;
    snprintf(buf, len, "%s/%s", SADM_SRCDATADIR, file);
    return buf;
}

const char *cli_classifier_path(const char *given) {
    static char buf[4096];
    return cli_data_path(given, "SADM_CLASSIFIER", CLASSIFIER_FILE, buf, sizeof buf);
}

int cli_classifier_load(const char *cmd, const char *given, sadm_classifier **out) {
    const char *path = cli_classifier_path(given);
    if (sadm_classifier_load(path, out)) {
        cli_fail(cmd);
        fprintf(stderr, "sadm %s: the Fashion-MNIST classifier ships as data/%s (make install copies it to %s); "
                        "`sadm classifier train --out FILE` makes it again\n", cmd, CLASSIFIER_FILE, SADM_PKGDATADIR);
        return 1;
    }
    if (sadm_classifier_to_backend(*out, cli_backend())) {
        sadm_classifier_free(*out);
        *out = NULL;
        return cli_fail(cmd);
    }
    return 0;
}

int cli_fmnist_split_stats(const char *cmd, sadm_classifier *c, const char *data_dir, const char *split, size_t first,
                           double *mu, double *sigma, size_t *count) {
    return sadm_fmnist_split_stats(c, data_dir, split, first, mu, sigma, count) ? cli_fail(cmd) : 0;
}

/* Features of one side of `sadm fid compare --features fmnist`: "fmnist-test" or
 * "fmnist-train" (a split of the data set), or an image source (folder, .npz, samples). */
int cli_fmnist_side_features(const char *cmd, sadm_classifier *c, const char *spec, const char *data_dir, float **features,
                             size_t *count) {
    *features = NULL, *count = 0;
    const size_t D = SADM_CLASSIFIER_FEATURES;
    if (!strcmp(spec, "fmnist-test") || !strcmp(spec, "fmnist-train")) {
        sadm_dataset *d;
        if (sadm_dataset_fmnist(data_dir, spec + 7, &d)) return cli_fail(cmd);
        size_t n = sadm_dataset_size(d);
        fprintf(stderr, "sadm %s: %s: %zu images, Fashion-MNIST classifier features\n", cmd, spec, n);
        int rc = 0;
        if (!(*features = malloc(n * D * sizeof(float))) || sadm_classifier_dataset_features_first(c, d, n, *features))
            rc = cli_fail(cmd);
        sadm_dataset_free(d);
        if (rc) free(*features), *features = NULL;
        else *count = n;
        return rc;
    }
    sadm_image_source *src;
    if (sadm_image_source_open(spec, &src)) return cli_fail(cmd);
    int h, w, rc = 0;
    sadm_image_source_size(src, &h, &w);
    size_t n = sadm_image_source_count(src), B = 256;
    fprintf(stderr, "sadm %s: %s: %zu images of %d×%d, Fashion-MNIST classifier features\n", cmd, spec, n, w, h);
    if (n < 2) {
        fprintf(stderr, "sadm %s: %s: %zu image%s: statistics need at least 2\n", cmd, spec, n, n == 1 ? "" : "s");
        sadm_image_source_close(src);
        return 2;
    }
    uint8_t *img = malloc(B * (size_t)h * w * 3);
    float *feat = malloc(n * D * sizeof(float));
    cli_progress_state prog = {0};
    if (!img || !feat) rc = cli_fail(cmd);
    for (size_t i0 = 0; !rc && i0 < n; i0 += B) {
        size_t k = n - i0 < B ? n - i0 : B;
        if (sadm_image_source_read(src, i0, k, img) || sadm_classifier_features_u8(c, (int)k, h, w, img, feat + i0 * D))
            rc = cli_fail(cmd);
        else
            cli_progress(&prog, (long)(i0 + k), (long)n, "images");
    }
    sadm_image_source_close(src);
    free(img);
    if (rc) free(feat);
    else *features = feat, *count = n;
    return rc;
}

/* ------------------------------------------------------------------ train */
typedef struct train_progress {
    cli_progress_state p;
    double loss_ema;
    long per_epoch;
} train_progress;

static int on_step(void *ctx, long step, long total, double loss) {
    train_progress *t = ctx;
    t->loss_ema = step == 1 ? loss : 0.98 * t->loss_ema + 0.02 * loss;
    char status[96];
    snprintf(status, sizeof status, "epoch %ld loss %.4f", (step - 1) / t->per_epoch + 1, t->loss_ema);
    cli_progress(&t->p, step, total, status);
    return 0;
}

static void on_eval_progress(void *ctx, size_t done, size_t total) {
    cli_progress(ctx, (long)done, (long)total, "images");
}

static int cmd_train(int argc, char **argv) {
    cli_opt o[] = {
        {"out", "where to write the weights (.safetensors, written atomically)", NULL, 0},
        {"epochs", "passes over the 60k training images", "8", 0},
        {"batch-size", "images per step", "128", 0},
        {"lr", "AdamW peak learning rate (cosine decay to 0)", "1e-3", 0},
        {"weight-decay", "AdamW weight decay", "0", 0},
        {"no-flip", "no random horizontal flips", NULL, 1},
        {"seed", "seed of initialisation, data order and flips", "0", 0},
        {"subset", "train on the first N training images only (quick checks)", NULL, 0},
        {"test-images", "evaluate on the first N test images at the end (0: skip)", "10000", 0},
        {"data-dir", "folder of the Fashion-MNIST IDX files", NULL, 0},
        {"threads", "threads (default: all cores)", NULL, 0},
        {"device", "auto, cpu or cuda (default: $SADM_DEVICE, else auto)", NULL, 0},
    };
    const size_t n = NOPT(o);
    int rc = cli_parse(argc, argv, o, n, "sadm classifier train --out FILE [options]",
                       "Trains the Fashion-MNIST classifier of FD_fmnist (conv 32, conv 64, fc 128, fc 10; see\n"
                       "lib/sadm.h) on the 60k training images with libsadm's own layers, then prints its accuracy\n"
                       "on the 10k test images. With the defaults it makes data/" CLASSIFIER_FILE ".");
    if (rc) return rc == 1 ? 0 : rc;
    sadm_classifier_train_config tc;
    sadm_classifier_train_config_default(&tc);
    long epochs = tc.epochs, batch = tc.batch_size, seed = 0, subset = 0, test_images = 10000;
    double lr = tc.lr, wd = tc.weight_decay;
    if (cli_int(o, n, "epochs", 1, 10000, &epochs) < 0 || cli_int(o, n, "batch-size", 1, 60000, &batch) < 0 ||
        cli_int(o, n, "seed", 0, 1L << 62, &seed) < 0 || cli_int(o, n, "subset", 1, 1L << 30, &subset) < 0 ||
        cli_int(o, n, "test-images", 0, 1L << 30, &test_images) < 0 || cli_double(o, n, "lr", 1e-12, 10, &lr) < 0 ||
        cli_double(o, n, "weight-decay", 0, 10, &wd) < 0 || cli_runtime(o, n))
        return 2;
    const char *out = cli_get(o, n, "out");
    if (!out) {
        fprintf(stderr, "sadm classifier train: --out FILE is required (see --help)\n");
        return 2;
    }
    tc.epochs = (int)epochs, tc.batch_size = (int)batch, tc.seed = (uint64_t)seed, tc.lr = (float)lr;
    tc.weight_decay = (float)wd, tc.flip = cli_get(o, n, "no-flip") == NULL, tc.max_images = (size_t)subset;
    sadm_dataset *train = NULL, *test = NULL;
    sadm_classifier *c = NULL;
    const char *dir = cli_get(o, n, "data-dir");
    if (sadm_dataset_fmnist(dir, "train", &train) || sadm_dataset_fmnist(dir, "test", &test) ||
        sadm_classifier_create(tc.seed, &c) || sadm_classifier_to_backend(c, cli_backend())) {
        rc = cli_fail("classifier train");
    } else {
        fprintf(stderr, "sadm classifier train: %d epochs of batch %d, lr %g, seed %llu, %d threads, %s kernels\n", tc.epochs,
                tc.batch_size, tc.lr, (unsigned long long)tc.seed, sadm_num_threads(), sadm_isa());
        size_t used = subset && (size_t)subset < sadm_dataset_size(train) ? (size_t)subset : sadm_dataset_size(train);
        train_progress tp = {{0}, 0, (long)(used / (size_t)tc.batch_size)};
        if (tp.per_epoch < 1) tp.per_epoch = 1;
        double t0 = cli_now(), acc = 0, loss = 0;
        size_t nt = (size_t)test_images < sadm_dataset_size(test) ? (size_t)test_images : sadm_dataset_size(test);
        if (sadm_classifier_train(c, train, &tc, on_step, &tp) || (nt && sadm_classifier_evaluate_first(c, test, nt, &acc, &loss)) ||
            sadm_classifier_save(c, out)) {
            rc = cli_fail("classifier train");
        } else {
            double secs = cli_now() - t0;
            if (nt) printf("test accuracy %.4f, test loss %.4f (%zu images); ", acc, loss, nt);
            printf("trained in %.0f s; wrote %s\n", secs, out);
        }
    }
    sadm_classifier_free(c);
    sadm_dataset_free(train);
    sadm_dataset_free(test);
    return rc;
}

/* ------------------------------------------------------------------ eval */
static int cmd_eval(int argc, char **argv) {
    cli_opt o[] = {
        {"classifier", "weights (default: the shipped data/" CLASSIFIER_FILE ")", NULL, 0},
        {"split", "train or test", "test", 0},
        {"subset", "only the first N images of the split", NULL, 0},
        {"data-dir", "folder of the Fashion-MNIST IDX files", NULL, 0},
        {"threads", "threads (default: all cores)", NULL, 0},
        {"device", "auto, cpu or cuda (default: $SADM_DEVICE, else auto)", NULL, 0},
    };
    const size_t n = NOPT(o);
    int rc = cli_parse(argc, argv, o, n, "sadm classifier eval [--classifier FILE]",
                       "Prints the classifier's accuracy and mean cross-entropy on a Fashion-MNIST split.");
    if (rc) return rc == 1 ? 0 : rc;
    long subset = 0;
    if (cli_runtime(o, n) || cli_int(o, n, "subset", 1, 1L << 30, &subset) < 0) return 2;
    const char *split = cli_get(o, n, "split");
    if (strcmp(split, "train") && strcmp(split, "test")) {
        fprintf(stderr, "sadm classifier eval: --split %s: expected train or test\n", split);
        return 2;
    }
    sadm_classifier *c;
    if ((rc = cli_classifier_load("classifier eval", cli_get(o, n, "classifier"), &c))) return rc;
    sadm_dataset *d = NULL;
    double acc, loss;
    size_t count = 0;
    if (sadm_dataset_fmnist(cli_get(o, n, "data-dir"), split, &d)) {
        rc = cli_fail("classifier eval");
    } else {
        count = subset && (size_t)subset < sadm_dataset_size(d) ? (size_t)subset : sadm_dataset_size(d);
        cli_progress_state prog = {0};
        if (sadm_classifier_evaluate_progress(c, d, count, &acc, &loss, on_eval_progress, &prog))
            rc = cli_fail("classifier eval");
        else
            printf("%s accuracy %.4f, loss %.4f (%zu images, %s)\n", split, acc, loss, count,
                   cli_classifier_path(cli_get(o, n, "classifier")));
    }
    sadm_dataset_free(d);
    sadm_classifier_free(c);
    return rc;
}

int sadm_cmd_classifier(int argc, char **argv) {
    if (argc >= 2 && !strcmp(argv[1], "train")) return cmd_train(argc - 1, argv + 1);
    if (argc >= 2 && !strcmp(argv[1], "eval")) return cmd_eval(argc - 1, argv + 1);
    if (argc >= 2 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
        printf("usage: sadm classifier train|eval [options]\n\n"
               "The Fashion-MNIST classifier whose 128 penultimate features give FD_fmnist:\n"
               "  train  train it with libsadm's own layers (sadm classifier train --help)\n"
               "  eval   its accuracy on a split (sadm classifier eval --help)\n");
        return 0;
    }
    fprintf(stderr, "sadm classifier: expected train or eval (see --help)\n");
    return 2;
}
