/* The Fashion-MNIST classifier whose penultimate features define FD_fmnist: a small CNN
 * built from the library's own operators — parameter table, PyTorch-default
 * initialisation, files, forward with kept activations, and backward. Training lives in
 * lib/classifier_train.c. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "classifier_internal.h"

enum { IMG = SADM_CLASSIFIER_SIZE, C1 = 32, C2 = 64, FEAT = SADM_CLASSIFIER_FEATURES, CLASSES = 10 };
enum { IMG2 = IMG / 2, IMG4 = IMG / 4, FLAT = C2 * IMG4 * IMG4 };

#define ARCH_NAME "fmnist-cnn-v1"

/* Activations of the last forward, kept for the backward, and the backward's scratch. */
typedef struct cls_acts {
    int N;                                 /* batch they hold; 0 = none */
    float *x;                              /* (N,1,32,32) input */
    float *c1, *r1, *p1;                   /* conv1 out, ReLU, max-pool: (N,32,32,32), ..., (N,32,16,16) */
    float *c2, *r2, *p2;                   /* (N,64,16,16), ..., (N,64,8,8) = (N, FLAT) */
    float *f1, *h;                         /* fc1 out and its ReLU, the features: (N,128) */
    float *d_big, *d_p1, *d_mid, *d_flat, *d_feat; /* scratch */
    float *logits, *d_logits;              /* (N,10): the edges, when the backend's memory is not the host's */
} cls_acts;

struct sadm_classifier {
    sadm_backend *be; /* where data, grad and the activations live */
    sadm_param_table tab;
    float *data, *grad;
    size_t conv1_w, conv1_b, conv2_w, conv2_b, fc1_w, fc1_b, fc2_w, fc2_b;
    cls_acts acts;
    float *act_mem;
    size_t act_floats;
};

static float *P(sadm_classifier *c, size_t idx) { return c->data + c->tab.items[idx].offset; }
static float *G(sadm_classifier *c, size_t idx) { return c->grad + c->tab.items[idx].offset; }

static sadm_conv2d_shape conv1_shape(int N) {
    return (sadm_conv2d_shape){.N = N, .C = 1, .H = IMG, .W = IMG, .K = C1, .kh = 3, .kw = 3, .sh = 1, .sw = 1, .ph = 1, .pw = 1};
}
static sadm_conv2d_shape conv2_shape(int N) {
    return (sadm_conv2d_shape){.N = N, .C = C1, .H = IMG2, .W = IMG2, .K = C2, .kh = 3, .kw = 3, .sh = 1, .sw = 1, .ph = 1, .pw = 1};
}
static sadm_pool2d_shape pool_shape(int N, int C, int H) {
    return (sadm_pool2d_shape){.N = N, .C = C, .H = H, .W = H, .kh = 2, .kw = 2, .sh = 2, .sw = 2, .kind = SADM_POOL_MAX};
}

/* ------------------------------------------------------------------ table, init */
static sadm_status build_table(sadm_classifier *c) {
    int fail = 0;
#define ADD(field, name, nd, a, b, cc, d)                                                          \
    do {                                                                                           \
        int64_t shape_[4] = {a, b, cc, d};                                                         \
        c->field = sadm_ptab_add(&c->tab, name, 1, nd, shape_);                                    \
        if (c->field == (size_t)-1) fail = 1;                                                      \
    } while (0)
    ADD(conv1_w, "conv1.weight", 4, C1, 1, 3, 3);
    ADD(conv1_b, "conv1.bias", 1, C1, 0, 0, 0);
    ADD(conv2_w, "conv2.weight", 4, C2, C1, 3, 3);
    ADD(conv2_b, "conv2.bias", 1, C2, 0, 0, 0);
    ADD(fc1_w, "fc1.weight", 2, FEAT, FLAT, 0, 0);
    ADD(fc1_b, "fc1.bias", 1, FEAT, 0, 0, 0);
    ADD(fc2_w, "fc2.weight", 2, CLASSES, FEAT, 0, 0);
    ADD(fc2_b, "fc2.bias", 1, CLASSES, 0, 0, 0);
#undef ADD
    return fail ? sadm_error(SADM_ERR_NOMEM, "classifier: out of memory for the parameter table") : SADM_OK;
}

/* PyTorch's default for Conv2d and Linear: weight and bias uniform in ±1/sqrt(fan_in)
 * (kaiming_uniform_ with a = sqrt(5) gives that bound for the weight). One Philox stream
 * per tensor. */
static void initialise(sadm_classifier *c, uint64_t seed) {
    size_t weights[4] = {c->conv1_w, c->conv2_w, c->fc1_w, c->fc2_w};
    size_t biases[4] = {c->conv1_b, c->conv2_b, c->fc1_b, c->fc2_b};
    for (int l = 0; l < 4; l++) {
        const sadm_param *w = &c->tab.items[weights[l]];
        float bound = (float)(1.0 / sqrt((double)(w->numel / (size_t)w->shape[0])));
        size_t idx[2] = {weights[l], biases[l]};
        for (int k = 0; k < 2; k++) {
            float *v = P(c, idx[k]);
            size_t n = c->tab.items[idx[k]].numel;
            sadm_rng_uniform(seed, idx[k], 0, n, v);
            for (size_t i = 0; i < n; i++) v[i] = (2.0f * v[i] - 1.0f) * bound;
        }
    }
}

static sadm_status allocate(sadm_classifier **out) {
    sadm_classifier *c = calloc(1, sizeof *c);
    if (!c) return sadm_error(SADM_ERR_NOMEM, "classifier: out of memory");
    c->be = sadm_backend_cpu(); /* created and loaded on the host; sadm_classifier_to_backend moves it */
    sadm_status st = build_table(c);
    if (!st && !(c->data = sadm_calloc(c->tab.total, sizeof(float))))
        st = sadm_error(SADM_ERR_NOMEM, "classifier: out of memory for its parameters");
    if (st) {
        sadm_classifier_free(c);
        return st;
    }
    *out = c;
    return SADM_OK;
}

sadm_status sadm_classifier_create(uint64_t seed, sadm_classifier **out) {
    SADM_REQUIRE_PTR(out);
    *out = NULL;
    sadm_status st = allocate(out);
    if (!st) initialise(*out, seed);
    return st;
}

void sadm_classifier_free(sadm_classifier *c) {
    if (!c) return;
    sadm_ptab_free(&c->tab);
    c->be->free(c->be, c->act_mem);
    c->be->free(c->be, c->grad);
    c->be->free(c->be, c->data);
    free(c);
}

sadm_backend *sadm_classifier_backend(const sadm_classifier *c) { return c ? c->be : NULL; }

sadm_status sadm_classifier_to_backend(sadm_classifier *c, sadm_backend *be) {
    SADM_REQUIRE_PTR(c);
    SADM_REQUIRE_PTR(be);
    if (be == c->be) return SADM_OK;
    SADM_TRY(sadm_backend_move_params(c->be, be, &c->data, &c->grad, c->tab.total));
    c->be->free(c->be, c->act_mem); /* the activations come back at the next forward */
    c->act_mem = NULL, c->act_floats = 0, c->acts.N = 0;
    c->be = be;
    return SADM_OK;
}

size_t sadm_classifier_num_params(const sadm_classifier *c) { return c ? c->tab.count : 0; }
const sadm_param *sadm_classifier_param(const sadm_classifier *c, size_t i) {
    return c && i < c->tab.count ? &c->tab.items[i] : NULL;
}
float *sadm_classifier_param_data(sadm_classifier *c) { return c ? c->data : NULL; }
size_t sadm_classifier_param_total(const sadm_classifier *c) { return c ? c->tab.total : 0; }

float *sadm_classifier_grad_data(sadm_classifier *c) { return c ? sadm_ptab_grad(&c->tab, &c->grad, c->be) : NULL; }

sadm_status sadm_classifier_zero_grad(sadm_classifier *c) {
    SADM_REQUIRE_PTR(c);
    return sadm_ptab_zero_grad(&c->tab, &c->grad, c->be, "classifier");
}

/* ------------------------------------------------------------------ files */
sadm_status sadm_classifier_save(const sadm_classifier *c, const char *path) {
    SADM_REQUIRE_PTR(c);
    SADM_REQUIRE_PTR(path);
    sadm_st_writer *w = sadm_st_writer_new();
    if (!w) return sadm_error(SADM_ERR_NOMEM, "%s: out of memory", path);
    float *copy;
    const float *host = sadm_backend_host_view(c->be, c->data, c->tab.total, &copy);
    sadm_status st = host ? sadm_st_writer_metadata(w, "architecture", ARCH_NAME) : SADM_ERR_NOMEM;
    if (!st) st = sadm_ptab_write(&c->tab, host, "", 0, w);
    if (!st) st = sadm_st_writer_save(w, path);
    sadm_st_writer_free(w);
    sadm_free(copy);
    return st;
}

sadm_status sadm_classifier_load(const char *path, sadm_classifier **out) {
    SADM_REQUIRE_PTR(path);
    SADM_REQUIRE_PTR(out);
    *out = NULL;
    sadm_st_file *f;
    sadm_status st = sadm_st_open(path, &f);
    if (st) return st;
    const char *arch = sadm_st_metadata(f, "architecture");
    if (!arch || strcmp(arch, ARCH_NAME) != 0)
        st = sadm_error(SADM_ERR_FORMAT, "%s: not a Fashion-MNIST classifier: __metadata__ 'architecture' is %s%s%s, expected '%s'",
                        path, arch ? "'" : "", arch ? arch : "missing", arch ? "'" : "", ARCH_NAME);
    sadm_classifier *c = NULL;
    if (!st) st = allocate(&c);
    if (!st) st = sadm_ptab_read(&c->tab, f, "", 0, c->data);
    if (!st) st = sadm_ptab_check_only(&c->tab, f, path, "the classifier");
    sadm_st_close(f);
    if (st) {
        sadm_classifier_free(c);
        return st;
    }
    *out = c;
    return SADM_OK;
}

/* ------------------------------------------------------------------ activations */
static size_t layout_acts(cls_acts *a, int N, float *base) {
    size_t at = 0, n = (size_t)N;
#define TAKE(ptr, count)                                                                           \
    do {                                                                                           \
        if (base) (ptr) = base + at;                                                               \
        at += ((size_t)(count) + 15) / 16 * 16;                                                    \
    } while (0)
    TAKE(a->x, n * IMG * IMG);
    TAKE(a->c1, n * C1 * IMG * IMG);
    TAKE(a->r1, n * C1 * IMG * IMG);
    TAKE(a->p1, n * C1 * IMG2 * IMG2);
    TAKE(a->c2, n * C2 * IMG2 * IMG2);
    TAKE(a->r2, n * C2 * IMG2 * IMG2);
    TAKE(a->p2, n * FLAT);
    TAKE(a->f1, n * FEAT);
    TAKE(a->h, n * FEAT);
    TAKE(a->d_big, n * C1 * IMG * IMG);
    TAKE(a->d_p1, n * C1 * IMG2 * IMG2);
    TAKE(a->d_mid, n * C2 * IMG2 * IMG2);
    TAKE(a->d_flat, n * FLAT);
    TAKE(a->d_feat, n * FEAT);
    TAKE(a->logits, n * CLASSES);
    TAKE(a->d_logits, n * CLASSES);
#undef TAKE
    return at;
}

static sadm_status ensure_acts(sadm_classifier *c, int N) {
    size_t need = layout_acts(&c->acts, N, NULL);
    if (!c->act_mem || need > c->act_floats) {
        c->be->free(c->be, c->act_mem);
        c->act_floats = 0;
        if (!(c->act_mem = c->be->alloc(c->be, SADM_DTYPE_F32, need)))
            return sadm_error(SADM_ERR_NOMEM, "classifier: out of memory for the activations of batch %d", N);
        c->act_floats = need;
    }
    layout_acts(&c->acts, N, c->act_mem);
    return SADM_OK;
}

/* ------------------------------------------------------------------ forward, backward */
/* The edges: host x, logits, features and dlogits. */
sadm_status sadm_classifier_forward(sadm_classifier *c, int N, const float *x, float *logits, float *features) {
    SADM_REQUIRE_PTR(c);
    SADM_REQUIRE_POSITIVE(N);
    SADM_REQUIRE_PTR(x);
    if (c->be->host_memory) return cls_forward_dev(c, N, x, logits, features);
    SADM_TRY(ensure_acts(c, N));
    sadm_backend *be = c->be;
    cls_acts *a = &c->acts;
    size_t n = (size_t)N;
    SADM_TRY(be->upload(be, a->x, x, n * IMG * IMG * sizeof(float)));
    SADM_TRY(cls_forward_dev(c, N, a->x, logits ? a->logits : NULL, NULL));
    if (logits) SADM_TRY(be->download(be, logits, a->logits, n * CLASSES * sizeof(float)));
    return features ? be->download(be, features, a->h, n * FEAT * sizeof(float)) : SADM_OK;
}

sadm_status sadm_classifier_backward(sadm_classifier *c, const float *dlogits) {
    SADM_REQUIRE_PTR(c);
    SADM_REQUIRE_PTR(dlogits);
    SADM_REQUIRE(c->acts.N > 0, "sadm_classifier_backward: no forward to go back through");
    if (c->be->host_memory) return cls_backward_dev(c, dlogits);
    SADM_TRY(c->be->upload(c->be, c->acts.d_logits, dlogits, (size_t)c->acts.N * CLASSES * sizeof(float)));
    return cls_backward_dev(c, c->acts.d_logits);
}

sadm_status cls_forward_dev(sadm_classifier *c, int N, const float *x, float *logits, float *features) {
    SADM_TRY(ensure_acts(c, N));
    sadm_backend *be = c->be;
    cls_acts *a = &c->acts;
    a->N = 0;
    size_t n = (size_t)N;
    if (x != a->x) SADM_TRY(be->copy(be, a->x, x, n * IMG * IMG * sizeof(float)));
    sadm_conv2d_shape s1 = conv1_shape(N), s2 = conv2_shape(N);
    sadm_pool2d_shape q1 = pool_shape(N, C1, IMG), q2 = pool_shape(N, C2, IMG2);
    SADM_OP(be, conv2d_forward, &s1, a->x, P(c, c->conv1_w), P(c, c->conv1_b), a->c1);
    SADM_OP(be, relu_forward, n * C1 * IMG * IMG, a->c1, a->r1);
    SADM_OP(be, pool2d_forward, &q1, a->r1, a->p1);
    SADM_OP(be, conv2d_forward, &s2, a->p1, P(c, c->conv2_w), P(c, c->conv2_b), a->c2);
    SADM_OP(be, relu_forward, n * C2 * IMG2 * IMG2, a->c2, a->r2);
    SADM_OP(be, pool2d_forward, &q2, a->r2, a->p2);
    SADM_OP(be, linear_forward, N, FLAT, FEAT, a->p2, P(c, c->fc1_w), P(c, c->fc1_b), a->f1);
    SADM_OP(be, relu_forward, n * FEAT, a->f1, a->h);
    if (logits) SADM_OP(be, linear_forward, N, FEAT, CLASSES, a->h, P(c, c->fc2_w), P(c, c->fc2_b), logits);
    if (features && features != a->h) SADM_TRY(be->copy(be, features, a->h, n * FEAT * sizeof(float)));
    a->N = N;
    return SADM_OK;
}

sadm_status cls_backward_dev(sadm_classifier *c, const float *dlogits) {
    sadm_backend *be = c->be;
    cls_acts *a = &c->acts;
    SADM_REQUIRE(a->N > 0, "sadm_classifier_backward: no forward to go back through");
    if (!sadm_classifier_grad_data(c)) return sadm_error(SADM_ERR_NOMEM, "classifier: out of memory for the gradients");
    int N = a->N;
    size_t n = (size_t)N;
    sadm_conv2d_shape s1 = conv1_shape(N), s2 = conv2_shape(N);
    sadm_pool2d_shape q1 = pool_shape(N, C1, IMG), q2 = pool_shape(N, C2, IMG2);
    /* fc2, ReLU, fc1 */
    SADM_TRY(be->zero(be, a->d_feat, n * FEAT * sizeof(float)));
    SADM_OP(be, linear_backward, N, FEAT, CLASSES, a->h, P(c, c->fc2_w), dlogits, a->d_feat, G(c, c->fc2_w), G(c, c->fc2_b));
    SADM_OP(be, relu_backward, n * FEAT, a->f1, a->d_feat, a->d_feat);
    SADM_TRY(be->zero(be, a->d_flat, n * FLAT * sizeof(float)));
    SADM_OP(be, linear_backward, N, FLAT, FEAT, a->p2, P(c, c->fc1_w), a->d_feat, a->d_flat, G(c, c->fc1_w), G(c, c->fc1_b));
    /* pool2, ReLU, conv2 */
    SADM_TRY(be->zero(be, a->d_mid, n * C2 * IMG2 * IMG2 * sizeof(float)));
    SADM_OP(be, pool2d_backward, &q2, a->r2, a->d_flat, a->d_mid);
    SADM_OP(be, relu_backward, n * C2 * IMG2 * IMG2, a->c2, a->d_mid, a->d_mid);
    float *d_p1 = a->d_p1;
    SADM_TRY(be->zero(be, d_p1, n * C1 * IMG2 * IMG2 * sizeof(float)));
    SADM_OP(be, conv2d_backward, &s2, a->p1, P(c, c->conv2_w), a->d_mid, d_p1, G(c, c->conv2_w), G(c, c->conv2_b));
    /* pool1, ReLU, conv1 (no input gradient) */
    SADM_TRY(be->zero(be, a->d_big, n * C1 * IMG * IMG * sizeof(float)));
    SADM_OP(be, pool2d_backward, &q1, a->r1, d_p1, a->d_big);
    SADM_OP(be, relu_backward, n * C1 * IMG * IMG, a->c1, a->d_big, a->d_big);
    SADM_OP(be, conv2d_backward, &s1, a->x, P(c, c->conv1_w), a->d_big, NULL, G(c, c->conv1_w), G(c, c->conv1_b));
    return SADM_OK;
}
