/* Training, evaluation and feature extraction of the Fashion-MNIST classifier
 * (lib/models/classifier.c): the judge behind FD_fmnist. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "models/classifier_internal.h"

enum { IMG = SADM_CLASSIFIER_SIZE, CLASSES = 10, EVAL_BATCH = 500 };
enum { STREAM_SHUFFLE = 1 << 20, STREAM_FLIP = 2 };

void sadm_classifier_train_config_default(sadm_classifier_train_config *cfg) {
    if (!cfg) return;
    memset(cfg, 0, sizeof *cfg);
    cfg->epochs = 8;
    cfg->batch_size = 128;
    cfg->lr = 1e-3f;
    cfg->weight_decay = 0.0f;
    cfg->flip = 1;
    cfg->seed = 0;
}

static sadm_status check_data(const sadm_dataset *d, const char *what) {
    SADM_REQUIRE(d, "classifier: the %s data set is NULL", what);
    SADM_REQUIRE(sadm_dataset_channels(d) == 1 && sadm_dataset_image_size(d) == IMG,
                 "classifier: the %s data set has %d-channel %dx%d images; the classifier takes 1-channel %dx%d",
                 what, sadm_dataset_channels(d), sadm_dataset_image_size(d), sadm_dataset_image_size(d), IMG, IMG);
    SADM_REQUIRE(sadm_dataset_num_classes(d) <= CLASSES, "classifier: the %s data set has %d classes; the classifier has %d",
                 what, sadm_dataset_num_classes(d), CLASSES);
    return SADM_OK;
}

/* Scratch of one run: a batch, its logits and their gradient. */
typedef struct batch_bufs {
    float *x, *logits, *dlogits, *u;
    int64_t *y;
} batch_bufs;

static sadm_status bufs_alloc(batch_bufs *b, int B) {
    memset(b, 0, sizeof *b);
    b->x = sadm_alloc((size_t)B * IMG * IMG * sizeof(float));
    b->logits = sadm_alloc((size_t)B * CLASSES * sizeof(float));
    b->dlogits = sadm_alloc((size_t)B * CLASSES * sizeof(float));
    b->u = malloc((size_t)B * sizeof(float));
    b->y = malloc((size_t)B * sizeof(int64_t));
    if (b->x && b->logits && b->dlogits && b->u && b->y) return SADM_OK;
    return sadm_error(SADM_ERR_NOMEM, "classifier: out of memory for a batch of %d", B);
}

static void bufs_free(batch_bufs *b) {
    sadm_free(b->x), sadm_free(b->logits), sadm_free(b->dlogits);
    free(b->u), free(b->y);
}

sadm_status sadm_classifier_train(sadm_classifier *c, const sadm_dataset *train, const sadm_classifier_train_config *cfg,
                                  sadm_classifier_progress_fn progress, void *ctx) {
    SADM_REQUIRE_PTR(c);
    SADM_REQUIRE_PTR(cfg);
    sadm_status st = check_data(train, "training");
    if (st) return st;
    const int B = cfg->batch_size;
    SADM_REQUIRE(B > 0 && cfg->epochs > 0, "classifier training: batch size %d and epochs %d must be positive", B,
                 cfg->epochs);
    SADM_REQUIRE(cfg->lr > 0 && cfg->weight_decay >= 0, "classifier training: lr %g must be positive, weight decay %g not negative",
                 cfg->lr, cfg->weight_decay);
    size_t n = sadm_dataset_size(train);
    if (cfg->max_images && cfg->max_images < n) n = cfg->max_images;
    size_t per_epoch = n / (size_t)B;
    SADM_REQUIRE(per_epoch > 0, "classifier training: %zu images make no batch of %d", n, B);
    size_t total = sadm_classifier_param_total(c), per = (size_t)IMG * IMG;
    long steps = (long)per_epoch * cfg->epochs;
    batch_bufs b;
    st = bufs_alloc(&b, B);
    /* on the classifier's backend: the moments, and the batch with its logits and their gradient */
    sadm_backend *be = sadm_classifier_backend(c);
    float *m = be->alloc(be, SADM_DTYPE_F32, 2 * total), *v = m ? m + total : NULL;
    float *dev = be->alloc(be, SADM_DTYPE_F32, (size_t)B * (per + 2 * CLASSES));
    int64_t *dev_y = be->alloc(be, SADM_DTYPE_I64, (size_t)B);
    float *dev_x = dev, *dev_logits = dev ? dev + (size_t)B * per : NULL, *dev_dlogits = dev ? dev_logits + B * CLASSES : NULL;
    uint32_t *perm = malloc(n * sizeof(uint32_t));
    if (!st && (!m || !dev || !dev_y || !perm)) st = sadm_error(SADM_ERR_NOMEM, "classifier training: out of memory");
    if (!st) st = be->zero(be, m, 2 * total * sizeof(float));
    sadm_adamw_config opt = {cfg->lr, 0.9f, 0.999f, 1e-8f, cfg->weight_decay};
    for (long s = 0; !st && s < steps; s++) {
        long epoch = s / (long)per_epoch, j = s % (long)per_epoch;
        if (j == 0) sadm_permutation(cfg->seed, STREAM_SHUFFLE + (uint64_t)epoch, n, perm);
        sadm_rng_uniform(cfg->seed, STREAM_FLIP, (uint64_t)s * (uint64_t)B, (size_t)B, b.u);
        for (int i = 0; !st && i < B; i++)
            st = sadm_dataset_get(train, perm[(size_t)j * B + i], cfg->flip && b.u[i] < 0.5f, b.x + i * per, &b.y[i]);
        double loss = 0;
        if (!st) st = be->upload(be, dev_x, b.x, (size_t)B * per * sizeof(float));
        if (!st) st = be->upload(be, dev_y, b.y, (size_t)B * sizeof(int64_t));
        if (!st) st = cls_forward_dev(c, B, dev_x, dev_logits, NULL);
        if (!st) st = be->ops->cross_entropy((size_t)B, CLASSES, dev_logits, dev_y, &loss, dev_dlogits);
        if (!st) st = sadm_classifier_zero_grad(c);
        if (!st) st = cls_backward_dev(c, dev_dlogits);
        /* cosine decay: the step s runs at lr (1 + cos(pi s / steps)) / 2 */
        opt.lr = (float)(cfg->lr * 0.5 * (1.0 + cos(M_PI * (double)s / (double)steps)));
        if (!st)
            st = be->ops->adamw_step(total, sadm_classifier_param_data(c), sadm_classifier_grad_data(c), m, v, &opt, s + 1);
        if (!st && progress && progress(ctx, s + 1, steps, loss)) break;
    }
    bufs_free(&b);
    be->free(be, m), be->free(be, dev), be->free(be, dev_y);
    free(perm);
    return st;
}

/* Runs `visit` on the logits and features of every image of d, in batches, in order. */
typedef void (*batch_visit_fn)(void *ctx, int n, const int64_t *y, const float *logits, const float *features);

/* progress (may be NULL) after each batch with the images done of min(n, size). */
typedef void (*batch_progress_fn)(void *ctx, size_t done, size_t total);

static sadm_status for_each_batch(sadm_classifier *c, const sadm_dataset *d, size_t n, batch_visit_fn visit, void *ctx,
                                  batch_progress_fn progress, void *pctx) {
    sadm_status st = check_data(d, "evaluation");
    if (st) return st;
    if (n > sadm_dataset_size(d)) n = sadm_dataset_size(d);
    size_t per = (size_t)IMG * IMG;
    batch_bufs b;
    float *feat = sadm_alloc((size_t)EVAL_BATCH * SADM_CLASSIFIER_FEATURES * sizeof(float));
    st = bufs_alloc(&b, EVAL_BATCH);
    if (!st && !feat) st = sadm_error(SADM_ERR_NOMEM, "classifier: out of memory");
    for (size_t i0 = 0; !st && i0 < n; i0 += EVAL_BATCH) {
        int k = (int)(n - i0 < EVAL_BATCH ? n - i0 : EVAL_BATCH);
        for (int i = 0; !st && i < k; i++) st = sadm_dataset_get(d, i0 + (size_t)i, 0, b.x + i * per, &b.y[i]);
        if (!st) st = sadm_classifier_forward(c, k, b.x, b.logits, feat);
        if (!st) visit(ctx, k, b.y, b.logits, feat);
        if (!st && progress) progress(pctx, i0 + (size_t)k, n);
    }
    bufs_free(&b);
    sadm_free(feat);
    return st;
}

typedef struct eval_acc {
    size_t seen, correct;
    double loss_sum;
    sadm_status st;
} eval_acc;

static void count_correct(void *ctx, int n, const int64_t *y, const float *logits, const float *features) {
    (void)features;
    eval_acc *e = ctx;
    for (int i = 0; i < n; i++) {
        const float *z = logits + (size_t)i * CLASSES;
        int best = 0;
        for (int k = 1; k < CLASSES; k++)
            if (z[k] > z[best]) best = k;
        e->correct += best == y[i];
    }
    double loss = 0;
    if (!e->st) e->st = sadm_cross_entropy((size_t)n, CLASSES, logits, y, &loss, NULL);
    e->loss_sum += loss * n;
    e->seen += (size_t)n;
}

sadm_status sadm_classifier_evaluate(sadm_classifier *c, const sadm_dataset *d, double *accuracy, double *loss) {
    return sadm_classifier_evaluate_first(c, d, (size_t)-1, accuracy, loss);
}

sadm_status sadm_classifier_evaluate_first(sadm_classifier *c, const sadm_dataset *d, size_t n, double *accuracy,
                                           double *loss) {
    return sadm_classifier_evaluate_progress(c, d, n, accuracy, loss, NULL, NULL);
}

sadm_status sadm_classifier_evaluate_progress(sadm_classifier *c, const sadm_dataset *d, size_t n, double *accuracy,
                                              double *loss, void (*progress)(void *ctx, size_t done, size_t total),
                                              void *ctx) {
    SADM_REQUIRE_PTR(c);
    eval_acc e = {0};
    sadm_status st = for_each_batch(c, d, n, count_correct, &e, progress, ctx);
    if (!st) st = e.st;
    if (st) return st;
    if (accuracy) *accuracy = e.seen ? (double)e.correct / (double)e.seen : 0.0;
    if (loss) *loss = e.seen ? e.loss_sum / (double)e.seen : 0.0;
    return SADM_OK;
}

typedef struct stats_acc {
    sadm_feature_stats *stats;
    sadm_status st;
} stats_acc;

static void add_features(void *ctx, int n, const int64_t *y, const float *logits, const float *features) {
    (void)y, (void)logits;
    stats_acc *a = ctx;
    if (!a->st) a->st = sadm_feature_stats_add(a->stats, (size_t)n, features);
}

sadm_status sadm_classifier_dataset_stats(sadm_classifier *c, const sadm_dataset *d, sadm_feature_stats *stats) {
    return sadm_classifier_dataset_stats_first(c, d, (size_t)-1, stats);
}

sadm_status sadm_classifier_dataset_stats_first(sadm_classifier *c, const sadm_dataset *d, size_t n,
                                                sadm_feature_stats *stats) {
    SADM_REQUIRE_PTR(c);
    SADM_REQUIRE_PTR(stats);
    SADM_REQUIRE(sadm_feature_stats_dim(stats) == SADM_CLASSIFIER_FEATURES,
                 "sadm_classifier_dataset_stats: statistics of dimension %d, the classifier gives %d",
                 sadm_feature_stats_dim(stats), SADM_CLASSIFIER_FEATURES);
    stats_acc a = {stats, SADM_OK};
    sadm_status st = for_each_batch(c, d, n, add_features, &a, NULL, NULL);
    return st ? st : a.st;
}

typedef struct feature_copy {
    float *out;
    size_t done;
} feature_copy;

static void copy_features(void *ctx, int n, const int64_t *y, const float *logits, const float *features) {
    (void)y, (void)logits;
    feature_copy *f = ctx;
    memcpy(f->out + f->done * SADM_CLASSIFIER_FEATURES, features, (size_t)n * SADM_CLASSIFIER_FEATURES * sizeof(float));
    f->done += (size_t)n;
}

sadm_status sadm_classifier_dataset_features_first(sadm_classifier *c, const sadm_dataset *d, size_t n, float *features) {
    SADM_REQUIRE_PTR(c);
    SADM_REQUIRE_PTR(features);
    feature_copy f = {features, 0};
    return for_each_batch(c, d, n, copy_features, &f, NULL, NULL);
}

/* Pixels -> the data set's scaling, x / 127.5 - 1, with 28×28 images padded by 2 pixels
 * of background (0) as sadm_dataset_fmnist pads them. */
sadm_status sadm_classifier_features_u8(sadm_classifier *c, int N, int H, int W, const uint8_t *images, float *features) {
    SADM_REQUIRE_PTR(c);
    SADM_REQUIRE_POSITIVE(N);
    SADM_REQUIRE_PTR(images);
    SADM_REQUIRE_PTR(features);
    SADM_REQUIRE(H == W && (H == 28 || H == IMG),
                 "classifier features: images are %dx%d; the Fashion-MNIST classifier takes 28x28 or 32x32", H, W);
    int pad = (IMG - H) / 2;
    float *x = sadm_alloc((size_t)N * IMG * IMG * sizeof(float));
    if (!x) return sadm_error(SADM_ERR_NOMEM, "classifier features: out of memory for %d images", N);
    for (int n = 0; n < N; n++)
        for (int r = 0; r < IMG; r++)
            for (int q = 0; q < IMG; q++) {
                int sr = r - pad, sq = q - pad;
                float v = 0.0f;
                if (sr >= 0 && sr < H && sq >= 0 && sq < W) {
                    const uint8_t *px = images + (((size_t)n * H + sr) * W + sq) * 3;
                    v = ((float)px[0] + (float)px[1] + (float)px[2]) / 3.0f;
                }
                x[((size_t)n * IMG + r) * IMG + q] = v / 127.5f - 1.0f;
            }
    sadm_status st = sadm_classifier_forward(c, N, x, NULL, features);
    sadm_free(x);
    return st;
}

sadm_status sadm_classifier_features_samples(sadm_classifier *c, int N, const float *x, float *features) {
    SADM_REQUIRE_PTR(c);
    SADM_REQUIRE_POSITIVE(N);
    SADM_REQUIRE_PTR(x);
    SADM_REQUIRE_PTR(features);
    size_t per = (size_t)IMG * IMG;
    float *q = sadm_alloc((size_t)N * per * sizeof(float));
    if (!q) return sadm_error(SADM_ERR_NOMEM, "classifier features: out of memory for %d samples", N);
    sadm_status st = SADM_OK;
    for (size_t i = 0; i < (size_t)N * per; i++) {
        if (!isfinite(x[i])) {
            st = sadm_error(SADM_ERR_NUMERIC, "classifier features: sample %zu has a non-finite value", i / per);
            break;
        }
        q[i] = (float)sadm_sample_to_u8(x[i]) / 127.5f - 1.0f;
    }
    if (!st) st = sadm_classifier_forward(c, N, q, NULL, features);
    sadm_free(q);
    return st;
}
