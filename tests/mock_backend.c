/* The mock backend of tests/mock_backend.h. The wrappers at the end are generated from
 * lib/backend.h's table by tools/gen_mock_wrappers.py (one per entry: check the pointer
 * arguments, open the memory, call the CPU entry, close the memory). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "../lib/backend.h"
#include "mock_backend.h"

typedef struct region {
    char *addr;
    size_t len;
} region;

static region *regions;
static size_t n_regions, cap_regions, calls, copies;
static const char *current_op = "";

size_t mock_backend_calls(void) { return calls; }
size_t mock_backend_copies(void) { return copies; }
size_t mock_backend_live(void) { return n_regions; }

static void protect_all(int prot) {
    for (size_t i = 0; i < n_regions; i++)
        if (mprotect(regions[i].addr, regions[i].len, prot) != 0) {
            perror("mock backend: mprotect");
            abort();
        }
}

static int owned(const void *p) {
    const char *c = p;
    for (size_t i = 0; i < n_regions; i++)
        if (c >= regions[i].addr && c < regions[i].addr + regions[i].len) return 1;
    return 0;
}

/* ------------------------------------------------------------------ memory */
static size_t page(void) { return (size_t)sysconf(_SC_PAGESIZE); }

static void *mock_alloc(sadm_backend *be, sadm_dtype dtype, size_t count) {
    (void)be;
    size_t size = sadm_dtype_size(dtype);
    if (!size || (count && size > SIZE_MAX / count)) return NULL;
    size_t bytes = count * size, len = (bytes + page() - 1) / page() * page();
    if (!len) len = page();
    if (n_regions == cap_regions) {
        size_t cap = cap_regions ? 2 * cap_regions : 64;
        region *r = realloc(regions, cap * sizeof *r);
        if (!r) return NULL;
        regions = r, cap_regions = cap;
    }
    void *p = mmap(NULL, len, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) return NULL;
    /* counted like any allocation of the library, so the allocation test sees it too */
    sadm_free(sadm_alloc(1));
    regions[n_regions++] = (region){p, len};
    return p;
}

static void mock_free(sadm_backend *be, void *p) {
    (void)be;
    if (!p) return;
    for (size_t i = 0; i < n_regions; i++)
        if (regions[i].addr == p) {
            munmap(regions[i].addr, regions[i].len);
            regions[i] = regions[--n_regions];
            return;
        }
    fprintf(stderr, "mock backend: free of %p, which it did not allocate\n", p);
    abort();
}

#define REQUIRE_OWNED(p, what)                                                                     \
    do {                                                                                           \
        if (!owned(p))                                                                             \
            return sadm_error(SADM_ERR_ARG, "mock backend: %s %p is not memory of this backend", what, (const void *)(p)); \
    } while (0)
#define REQUIRE_HOST(p, what)                                                                      \
    do {                                                                                           \
        if (owned(p))                                                                              \
            return sadm_error(SADM_ERR_ARG, "mock backend: %s %p is backend memory, not host memory", what, (const void *)(p)); \
    } while (0)

static sadm_status mock_zero(sadm_backend *be, void *p, size_t bytes) {
    (void)be;
    if (!bytes) return SADM_OK;
    REQUIRE_OWNED(p, "zero: destination");
    protect_all(PROT_READ | PROT_WRITE);
    memset(p, 0, bytes);
    protect_all(PROT_NONE);
    copies++;
    return SADM_OK;
}

static sadm_status mock_copy(sadm_backend *be, void *dst, const void *src, size_t bytes) {
    (void)be;
    if (!bytes) return SADM_OK;
    REQUIRE_OWNED(dst, "copy: destination");
    REQUIRE_OWNED(src, "copy: source");
    protect_all(PROT_READ | PROT_WRITE);
    memmove(dst, src, bytes);
    protect_all(PROT_NONE);
    copies++;
    return SADM_OK;
}

static sadm_status mock_upload(sadm_backend *be, void *dst, const void *src, size_t bytes) {
    (void)be;
    if (!bytes) return SADM_OK;
    REQUIRE_OWNED(dst, "upload: destination");
    REQUIRE_HOST(src, "upload: source");
    protect_all(PROT_READ | PROT_WRITE);
    memcpy(dst, src, bytes);
    protect_all(PROT_NONE);
    copies++;
    return SADM_OK;
}

static sadm_status mock_download(sadm_backend *be, void *dst, const void *src, size_t bytes) {
    (void)be;
    if (!bytes) return SADM_OK;
    REQUIRE_HOST(dst, "download: destination");
    REQUIRE_OWNED(src, "download: source");
    protect_all(PROT_READ | PROT_WRITE);
    memcpy(dst, src, bytes);
    protect_all(PROT_NONE);
    copies++;
    return SADM_OK;
}

static sadm_status mock_sync(sadm_backend *be) {
    (void)be;
    return SADM_OK;
}

static int mock_dtype(const sadm_backend *be, sadm_dtype dtype) {
    (void)be;
    return dtype == SADM_DTYPE_F32 || dtype == SADM_DTYPE_I64 || dtype == SADM_DTYPE_BF16 || dtype == SADM_DTYPE_U8;
}

static int bf16_allowed = 1;

void mock_backend_allow_bf16(int allow) { bf16_allowed = allow; }

static int mock_precision(const sadm_backend *be, sadm_precision p) {
    (void)be;
    return p == SADM_PRECISION_FP32 || (p == SADM_PRECISION_BF16 && bf16_allowed);
}

/* ------------------------------------------------------------------ the table */
static void count_op(const char *name);

static sadm_status check_pointer(int index, const void *p) {
    if (!p || owned(p)) return SADM_OK;
    return sadm_error(SADM_ERR_ARG, "mock backend: argument %d of %s (%p) is not memory of this backend", index,
                      current_op, p);
}
static sadm_status check_nothing(int index, ...) {
    (void)index;
    return SADM_OK;
}

/* Pointer arguments of the element types the table uses must be backend memory; scalars,
 * host results (double *) and descriptors (shapes, configs, the schedule) are not checked. */
#define CHECK(a)                                                                                   \
    do {                                                                                           \
        sadm_status st_chk_ = _Generic((a), float *: check_pointer, const float *: check_pointer,       \
                                       int64_t *: check_pointer, const int64_t *: check_pointer,          \
                                       uint8_t *: check_pointer, const uint8_t *: check_pointer,          \
                                       default: check_nothing)(++arg_index, (a));                         \
        if (st_chk_) return st_chk_;                                                               \
    } while (0)
#define ENTER(name)                                                                                \
    int arg_index = 0;                                                                             \
    current_op = (name);                                                                           \
    count_op(name);                                                                                \
    calls++
static int open_memory(void) {
    protect_all(PROT_READ | PROT_WRITE);
    return 0;
}
static sadm_status close_memory(sadm_status st) {
    protect_all(PROT_NONE);
    return st;
}
#define LEAVE(call) (open_memory(), close_memory(call))

/* BEGIN GENERATED WRAPPERS (tools/gen_mock_wrappers.py; do not edit by hand) */
static const char *const op_names[] = {"matmul", "matmul_batched", "linear_forward", "linear_backward", "layernorm_forward", "layernorm_backward", "group_norm_forward", "group_norm_backward", "gelu_forward", "gelu_backward", "silu_forward", "silu_backward", "relu_forward", "relu_backward", "cross_entropy", "softmax_forward", "softmax_backward", "add", "add_rows", "gated_add_forward", "gated_add_backward", "modulate_forward", "modulate_backward", "mean_tokens_forward", "mean_tokens_backward", "attention_forward", "attention_backward", "patchify", "patchify_backward", "unpatchify", "unpatchify_backward", "split_chunks", "merge_chunks", "i64_to_f32", "l2_normalize_forward", "l2_normalize_backward", "conv2d_forward", "conv2d_backward", "upsample_nearest_forward", "upsample_nearest_backward", "pool2d_forward", "pool2d_backward", "conv2d_nhwc_forward", "pool2d_nhwc_forward", "mean_pixels_nhwc", "linear_forward_bf16", "linear_backward_bf16", "attention_forward_bf16", "attention_backward_bf16", "linear_forward_exact", "copy_channels", "fid_resize", "embedding_forward", "embedding_backward", "timestep_embedding", "pos_embed_2d", "sum", "sumsq", "dot", "adamw_step", "ema_update", "clip_grad_norm", "scale", "rng_uniform", "rng_normal", "q_sample", "diffusion_loss", "sampler_update", "predict_x0", "x0_grad_to_eps", "struct_weights", "struct_loss", NULL};

static sadm_status mock_matmul(sadm_transpose ta, sadm_transpose tb, int M, int N, int K, float alpha, const float *A, const float *B, float beta, float *C, const float *bias) {
    ENTER("matmul");
    CHECK(ta); CHECK(tb); CHECK(M); CHECK(N); CHECK(K); CHECK(alpha); CHECK(A); CHECK(B); CHECK(beta); CHECK(C); CHECK(bias);
    return LEAVE(sadm_cpu_ops.matmul(ta, tb, M, N, K, alpha, A, B, beta, C, bias));
}

static sadm_status mock_matmul_batched(sadm_transpose ta, sadm_transpose tb, int M, int N, int K, float alpha, const float *A, size_t stride_a, const float *B, size_t stride_b, float beta, float *C, size_t stride_c, int batch) {
    ENTER("matmul_batched");
    CHECK(ta); CHECK(tb); CHECK(M); CHECK(N); CHECK(K); CHECK(alpha); CHECK(A); CHECK(stride_a); CHECK(B); CHECK(stride_b); CHECK(beta); CHECK(C); CHECK(stride_c); CHECK(batch);
    return LEAVE(sadm_cpu_ops.matmul_batched(ta, tb, M, N, K, alpha, A, stride_a, B, stride_b, beta, C, stride_c, batch));
}

static sadm_status mock_linear_forward(int M, int K, int N, const float *x, const float *w, const float *b, float *y) {
    ENTER("linear_forward");
    CHECK(M); CHECK(K); CHECK(N); CHECK(x); CHECK(w); CHECK(b); CHECK(y);
    return LEAVE(sadm_cpu_ops.linear_forward(M, K, N, x, w, b, y));
}

static sadm_status mock_linear_backward(int M, int K, int N, const float *x, const float *w, const float *dy, float *dx, float *dw, float *db) {
    ENTER("linear_backward");
    CHECK(M); CHECK(K); CHECK(N); CHECK(x); CHECK(w); CHECK(dy); CHECK(dx); CHECK(dw); CHECK(db);
    return LEAVE(sadm_cpu_ops.linear_backward(M, K, N, x, w, dy, dx, dw, db));
}

static sadm_status mock_layernorm_forward(size_t rows, size_t C, const float *x, const float *w, const float *b, float eps, float *y, float *mean, float *rstd) {
    ENTER("layernorm_forward");
    CHECK(rows); CHECK(C); CHECK(x); CHECK(w); CHECK(b); CHECK(eps); CHECK(y); CHECK(mean); CHECK(rstd);
    return LEAVE(sadm_cpu_ops.layernorm_forward(rows, C, x, w, b, eps, y, mean, rstd));
}

static sadm_status mock_layernorm_backward(size_t rows, size_t C, const float *x, const float *w, const float *mean, const float *rstd, const float *dy, float *dx, float *dw, float *db) {
    ENTER("layernorm_backward");
    CHECK(rows); CHECK(C); CHECK(x); CHECK(w); CHECK(mean); CHECK(rstd); CHECK(dy); CHECK(dx); CHECK(dw); CHECK(db);
    return LEAVE(sadm_cpu_ops.layernorm_backward(rows, C, x, w, mean, rstd, dy, dx, dw, db));
}

static sadm_status mock_group_norm_forward(int N, int C, size_t HW, int G, const float *x, const float *w, const float *b, float eps, float *y, float *mean, float *rstd) {
    ENTER("group_norm_forward");
    CHECK(N); CHECK(C); CHECK(HW); CHECK(G); CHECK(x); CHECK(w); CHECK(b); CHECK(eps); CHECK(y); CHECK(mean); CHECK(rstd);
    return LEAVE(sadm_cpu_ops.group_norm_forward(N, C, HW, G, x, w, b, eps, y, mean, rstd));
}

static sadm_status mock_group_norm_backward(int N, int C, size_t HW, int G, const float *x, const float *w, const float *mean, const float *rstd, const float *dy, float *dx, float *dw, float *db) {
    ENTER("group_norm_backward");
    CHECK(N); CHECK(C); CHECK(HW); CHECK(G); CHECK(x); CHECK(w); CHECK(mean); CHECK(rstd); CHECK(dy); CHECK(dx); CHECK(dw); CHECK(db);
    return LEAVE(sadm_cpu_ops.group_norm_backward(N, C, HW, G, x, w, mean, rstd, dy, dx, dw, db));
}

static sadm_status mock_gelu_forward(size_t n, const float *x, float *y) {
    ENTER("gelu_forward");
    CHECK(n); CHECK(x); CHECK(y);
    return LEAVE(sadm_cpu_ops.gelu_forward(n, x, y));
}

static sadm_status mock_gelu_backward(size_t n, const float *x, const float *dy, float *dx) {
    ENTER("gelu_backward");
    CHECK(n); CHECK(x); CHECK(dy); CHECK(dx);
    return LEAVE(sadm_cpu_ops.gelu_backward(n, x, dy, dx));
}

static sadm_status mock_silu_forward(size_t n, const float *x, float *y) {
    ENTER("silu_forward");
    CHECK(n); CHECK(x); CHECK(y);
    return LEAVE(sadm_cpu_ops.silu_forward(n, x, y));
}

static sadm_status mock_silu_backward(size_t n, const float *x, const float *dy, float *dx) {
    ENTER("silu_backward");
    CHECK(n); CHECK(x); CHECK(dy); CHECK(dx);
    return LEAVE(sadm_cpu_ops.silu_backward(n, x, dy, dx));
}

static sadm_status mock_relu_forward(size_t n, const float *x, float *y) {
    ENTER("relu_forward");
    CHECK(n); CHECK(x); CHECK(y);
    return LEAVE(sadm_cpu_ops.relu_forward(n, x, y));
}

static sadm_status mock_relu_backward(size_t n, const float *x, const float *dy, float *dx) {
    ENTER("relu_backward");
    CHECK(n); CHECK(x); CHECK(dy); CHECK(dx);
    return LEAVE(sadm_cpu_ops.relu_backward(n, x, dy, dx));
}

static sadm_status mock_cross_entropy(size_t N, int C, const float *logits, const int64_t *labels, double *loss, float *dlogits) {
    ENTER("cross_entropy");
    CHECK(N); CHECK(C); CHECK(logits); CHECK(labels); CHECK(loss); CHECK(dlogits);
    return LEAVE(sadm_cpu_ops.cross_entropy(N, C, logits, labels, loss, dlogits));
}

static sadm_status mock_softmax_forward(size_t rows, size_t C, const float *x, float *y) {
    ENTER("softmax_forward");
    CHECK(rows); CHECK(C); CHECK(x); CHECK(y);
    return LEAVE(sadm_cpu_ops.softmax_forward(rows, C, x, y));
}

static sadm_status mock_softmax_backward(size_t rows, size_t C, const float *y, const float *dy, float *dx) {
    ENTER("softmax_backward");
    CHECK(rows); CHECK(C); CHECK(y); CHECK(dy); CHECK(dx);
    return LEAVE(sadm_cpu_ops.softmax_backward(rows, C, y, dy, dx));
}

static sadm_status mock_add(size_t n, const float *a, const float *b, float *out) {
    ENTER("add");
    CHECK(n); CHECK(a); CHECK(b); CHECK(out);
    return LEAVE(sadm_cpu_ops.add(n, a, b, out));
}

static sadm_status mock_add_rows(size_t rows, size_t n, const float *x, const float *row, float *out) {
    ENTER("add_rows");
    CHECK(rows); CHECK(n); CHECK(x); CHECK(row); CHECK(out);
    return LEAVE(sadm_cpu_ops.add_rows(rows, n, x, row, out));
}

static sadm_status mock_gated_add_forward(int B, int T, int C, const float *x, const float *g, const float *y, float *out) {
    ENTER("gated_add_forward");
    CHECK(B); CHECK(T); CHECK(C); CHECK(x); CHECK(g); CHECK(y); CHECK(out);
    return LEAVE(sadm_cpu_ops.gated_add_forward(B, T, C, x, g, y, out));
}

static sadm_status mock_gated_add_backward(int B, int T, int C, const float *g, const float *y, const float *dout, float *dx, float *dg, float *dy) {
    ENTER("gated_add_backward");
    CHECK(B); CHECK(T); CHECK(C); CHECK(g); CHECK(y); CHECK(dout); CHECK(dx); CHECK(dg); CHECK(dy);
    return LEAVE(sadm_cpu_ops.gated_add_backward(B, T, C, g, y, dout, dx, dg, dy));
}

static sadm_status mock_modulate_forward(int B, int T, int C, const float *x, const float *shift, const float *scale, float *y) {
    ENTER("modulate_forward");
    CHECK(B); CHECK(T); CHECK(C); CHECK(x); CHECK(shift); CHECK(scale); CHECK(y);
    return LEAVE(sadm_cpu_ops.modulate_forward(B, T, C, x, shift, scale, y));
}

static sadm_status mock_modulate_backward(int B, int T, int C, const float *x, const float *scale, const float *dy, float *dx, float *dshift, float *dscale) {
    ENTER("modulate_backward");
    CHECK(B); CHECK(T); CHECK(C); CHECK(x); CHECK(scale); CHECK(dy); CHECK(dx); CHECK(dshift); CHECK(dscale);
    return LEAVE(sadm_cpu_ops.modulate_backward(B, T, C, x, scale, dy, dx, dshift, dscale));
}

static sadm_status mock_mean_tokens_forward(int B, int T, int C, const float *x, float *y) {
    ENTER("mean_tokens_forward");
    CHECK(B); CHECK(T); CHECK(C); CHECK(x); CHECK(y);
    return LEAVE(sadm_cpu_ops.mean_tokens_forward(B, T, C, x, y));
}

static sadm_status mock_mean_tokens_backward(int B, int T, int C, const float *dy, float *dx) {
    ENTER("mean_tokens_backward");
    CHECK(B); CHECK(T); CHECK(C); CHECK(dy); CHECK(dx);
    return LEAVE(sadm_cpu_ops.mean_tokens_backward(B, T, C, dy, dx));
}

static sadm_status mock_attention_forward(int B, int N, int H, int head_dim, const float *qkv, float *out, float *lse) {
    ENTER("attention_forward");
    CHECK(B); CHECK(N); CHECK(H); CHECK(head_dim); CHECK(qkv); CHECK(out); CHECK(lse);
    return LEAVE(sadm_cpu_ops.attention_forward(B, N, H, head_dim, qkv, out, lse));
}

static sadm_status mock_attention_backward(int B, int N, int H, int head_dim, const float *qkv, const float *out, const float *lse, const float *dout, float *dqkv) {
    ENTER("attention_backward");
    CHECK(B); CHECK(N); CHECK(H); CHECK(head_dim); CHECK(qkv); CHECK(out); CHECK(lse); CHECK(dout); CHECK(dqkv);
    return LEAVE(sadm_cpu_ops.attention_backward(B, N, H, head_dim, qkv, out, lse, dout, dqkv));
}

static sadm_status mock_patchify(int B, int C, int H, int W, int p, const float *x, float *tokens) {
    ENTER("patchify");
    CHECK(B); CHECK(C); CHECK(H); CHECK(W); CHECK(p); CHECK(x); CHECK(tokens);
    return LEAVE(sadm_cpu_ops.patchify(B, C, H, W, p, x, tokens));
}

static sadm_status mock_patchify_backward(int B, int C, int H, int W, int p, const float *dtokens, float *dx) {
    ENTER("patchify_backward");
    CHECK(B); CHECK(C); CHECK(H); CHECK(W); CHECK(p); CHECK(dtokens); CHECK(dx);
    return LEAVE(sadm_cpu_ops.patchify_backward(B, C, H, W, p, dtokens, dx));
}

static sadm_status mock_unpatchify(int B, int C, int H, int W, int p, const float *tokens, float *x) {
    ENTER("unpatchify");
    CHECK(B); CHECK(C); CHECK(H); CHECK(W); CHECK(p); CHECK(tokens); CHECK(x);
    return LEAVE(sadm_cpu_ops.unpatchify(B, C, H, W, p, tokens, x));
}

static sadm_status mock_unpatchify_backward(int B, int C, int H, int W, int p, const float *dx, float *dtokens) {
    ENTER("unpatchify_backward");
    CHECK(B); CHECK(C); CHECK(H); CHECK(W); CHECK(p); CHECK(dx); CHECK(dtokens);
    return LEAVE(sadm_cpu_ops.unpatchify_backward(B, C, H, W, p, dx, dtokens));
}

static sadm_status mock_split_chunks(int N, int D, int k, const float *src, float *dst) {
    ENTER("split_chunks");
    CHECK(N); CHECK(D); CHECK(k); CHECK(src); CHECK(dst);
    return LEAVE(sadm_cpu_ops.split_chunks(N, D, k, src, dst));
}

static sadm_status mock_merge_chunks(int N, int D, int k, const float *src, float *dst) {
    ENTER("merge_chunks");
    CHECK(N); CHECK(D); CHECK(k); CHECK(src); CHECK(dst);
    return LEAVE(sadm_cpu_ops.merge_chunks(N, D, k, src, dst));
}

static sadm_status mock_i64_to_f32(size_t n, const int64_t *src, float *dst) {
    ENTER("i64_to_f32");
    CHECK(n); CHECK(src); CHECK(dst);
    return LEAVE(sadm_cpu_ops.i64_to_f32(n, src, dst));
}

static sadm_status mock_l2_normalize_forward(size_t N, int E, double eps, const float *h, float *z) {
    ENTER("l2_normalize_forward");
    CHECK(N); CHECK(E); CHECK(eps); CHECK(h); CHECK(z);
    return LEAVE(sadm_cpu_ops.l2_normalize_forward(N, E, eps, h, z));
}

static sadm_status mock_l2_normalize_backward(size_t N, int E, double eps, const float *h, const float *z, const float *dz, float *dh) {
    ENTER("l2_normalize_backward");
    CHECK(N); CHECK(E); CHECK(eps); CHECK(h); CHECK(z); CHECK(dz); CHECK(dh);
    return LEAVE(sadm_cpu_ops.l2_normalize_backward(N, E, eps, h, z, dz, dh));
}

static sadm_status mock_conv2d_forward(const sadm_conv2d_shape *s, const float *x, const float *w, const float *b, float *y) {
    ENTER("conv2d_forward");
    CHECK(s); CHECK(x); CHECK(w); CHECK(b); CHECK(y);
    return LEAVE(sadm_cpu_ops.conv2d_forward(s, x, w, b, y));
}

static sadm_status mock_conv2d_backward(const sadm_conv2d_shape *s, const float *x, const float *w, const float *dy, float *dx, float *dw, float *db) {
    ENTER("conv2d_backward");
    CHECK(s); CHECK(x); CHECK(w); CHECK(dy); CHECK(dx); CHECK(dw); CHECK(db);
    return LEAVE(sadm_cpu_ops.conv2d_backward(s, x, w, dy, dx, dw, db));
}

static sadm_status mock_upsample_nearest_forward(int N, int C, int H, int W, int s, const float *x, float *y) {
    ENTER("upsample_nearest_forward");
    CHECK(N); CHECK(C); CHECK(H); CHECK(W); CHECK(s); CHECK(x); CHECK(y);
    return LEAVE(sadm_cpu_ops.upsample_nearest_forward(N, C, H, W, s, x, y));
}

static sadm_status mock_upsample_nearest_backward(int N, int C, int H, int W, int s, const float *dy, float *dx) {
    ENTER("upsample_nearest_backward");
    CHECK(N); CHECK(C); CHECK(H); CHECK(W); CHECK(s); CHECK(dy); CHECK(dx);
    return LEAVE(sadm_cpu_ops.upsample_nearest_backward(N, C, H, W, s, dy, dx));
}

static sadm_status mock_pool2d_forward(const sadm_pool2d_shape *s, const float *x, float *y) {
    ENTER("pool2d_forward");
    CHECK(s); CHECK(x); CHECK(y);
    return LEAVE(sadm_cpu_ops.pool2d_forward(s, x, y));
}

static sadm_status mock_pool2d_backward(const sadm_pool2d_shape *s, const float *x, const float *dy, float *dx) {
    ENTER("pool2d_backward");
    CHECK(s); CHECK(x); CHECK(dy); CHECK(dx);
    return LEAVE(sadm_cpu_ops.pool2d_backward(s, x, dy, dx));
}

static sadm_status mock_conv2d_nhwc_forward(const sadm_nhwc_conv_shape *s, const float *x, const float *w, const float *b, int relu, float *y) {
    ENTER("conv2d_nhwc_forward");
    CHECK(s); CHECK(x); CHECK(w); CHECK(b); CHECK(relu); CHECK(y);
    return LEAVE(sadm_cpu_ops.conv2d_nhwc_forward(s, x, w, b, relu, y));
}

static sadm_status mock_pool2d_nhwc_forward(const sadm_nhwc_pool_shape *s, const float *x, float *y) {
    ENTER("pool2d_nhwc_forward");
    CHECK(s); CHECK(x); CHECK(y);
    return LEAVE(sadm_cpu_ops.pool2d_nhwc_forward(s, x, y));
}

static sadm_status mock_mean_pixels_nhwc(int N, int HW, int C, int ld, const float *x, float *out) {
    ENTER("mean_pixels_nhwc");
    CHECK(N); CHECK(HW); CHECK(C); CHECK(ld); CHECK(x); CHECK(out);
    return LEAVE(sadm_cpu_ops.mean_pixels_nhwc(N, HW, C, ld, x, out));
}

static sadm_status mock_linear_forward_bf16(int M, int K, int N, const float *x, const float *w, const float *b, float *y) {
    ENTER("linear_forward_bf16");
    CHECK(M); CHECK(K); CHECK(N); CHECK(x); CHECK(w); CHECK(b); CHECK(y);
    return LEAVE(sadm_cpu_ops.linear_forward_bf16(M, K, N, x, w, b, y));
}

static sadm_status mock_linear_backward_bf16(int M, int K, int N, const float *x, const float *w, const float *dy, float *dx, float *dw, float *db) {
    ENTER("linear_backward_bf16");
    CHECK(M); CHECK(K); CHECK(N); CHECK(x); CHECK(w); CHECK(dy); CHECK(dx); CHECK(dw); CHECK(db);
    return LEAVE(sadm_cpu_ops.linear_backward_bf16(M, K, N, x, w, dy, dx, dw, db));
}

static sadm_status mock_attention_forward_bf16(int B, int N, int H, int head_dim, const float *qkv, float *out, float *lse) {
    ENTER("attention_forward_bf16");
    CHECK(B); CHECK(N); CHECK(H); CHECK(head_dim); CHECK(qkv); CHECK(out); CHECK(lse);
    return LEAVE(sadm_cpu_ops.attention_forward_bf16(B, N, H, head_dim, qkv, out, lse));
}

static sadm_status mock_attention_backward_bf16(int B, int N, int H, int head_dim, const float *qkv, const float *out, const float *lse, const float *dout, float *dqkv) {
    ENTER("attention_backward_bf16");
    CHECK(B); CHECK(N); CHECK(H); CHECK(head_dim); CHECK(qkv); CHECK(out); CHECK(lse); CHECK(dout); CHECK(dqkv);
    return LEAVE(sadm_cpu_ops.attention_backward_bf16(B, N, H, head_dim, qkv, out, lse, dout, dqkv));
}

static sadm_status mock_linear_forward_exact(int M, int K, int N, const float *x, const float *w, const float *b, float *y) {
    ENTER("linear_forward_exact");
    CHECK(M); CHECK(K); CHECK(N); CHECK(x); CHECK(w); CHECK(b); CHECK(y);
    return LEAVE(sadm_cpu_ops.linear_forward_exact(M, K, N, x, w, b, y));
}

static sadm_status mock_copy_channels(size_t rows, int C, const float *src, int ld_src, float *dst, int ld_dst) {
    ENTER("copy_channels");
    CHECK(rows); CHECK(C); CHECK(src); CHECK(ld_src); CHECK(dst); CHECK(ld_dst);
    return LEAVE(sadm_cpu_ops.copy_channels(rows, C, src, ld_src, dst, ld_dst));
}

static sadm_status mock_fid_resize(sadm_fid_mode mode, int N, int H, int W, const uint8_t *images, float *x) {
    ENTER("fid_resize");
    CHECK(mode); CHECK(N); CHECK(H); CHECK(W); CHECK(images); CHECK(x);
    return LEAVE(sadm_cpu_ops.fid_resize(mode, N, H, W, images, x));
}

static sadm_status mock_embedding_forward(size_t n, int dim, int rows, const float *table, const int64_t *idx, float *out) {
    ENTER("embedding_forward");
    CHECK(n); CHECK(dim); CHECK(rows); CHECK(table); CHECK(idx); CHECK(out);
    return LEAVE(sadm_cpu_ops.embedding_forward(n, dim, rows, table, idx, out));
}

static sadm_status mock_embedding_backward(size_t n, int dim, int rows, const int64_t *idx, const float *dout, float *dtable) {
    ENTER("embedding_backward");
    CHECK(n); CHECK(dim); CHECK(rows); CHECK(idx); CHECK(dout); CHECK(dtable);
    return LEAVE(sadm_cpu_ops.embedding_backward(n, dim, rows, idx, dout, dtable));
}

static sadm_status mock_timestep_embedding(size_t n, int dim, const float *t, float max_period, float *out) {
    ENTER("timestep_embedding");
    CHECK(n); CHECK(dim); CHECK(t); CHECK(max_period); CHECK(out);
    return LEAVE(sadm_cpu_ops.timestep_embedding(n, dim, t, max_period, out));
}

static sadm_status mock_pos_embed_2d(int dim, int grid, float *out) {
    ENTER("pos_embed_2d");
    CHECK(dim); CHECK(grid); CHECK(out);
    return LEAVE(sadm_cpu_ops.pos_embed_2d(dim, grid, out));
}

static sadm_status mock_sum(size_t n, const float *x, double *result) {
    ENTER("sum");
    CHECK(n); CHECK(x); CHECK(result);
    return LEAVE(sadm_cpu_ops.sum(n, x, result));
}

static sadm_status mock_sumsq(size_t n, const float *x, double *result) {
    ENTER("sumsq");
    CHECK(n); CHECK(x); CHECK(result);
    return LEAVE(sadm_cpu_ops.sumsq(n, x, result));
}

static sadm_status mock_dot(size_t n, const float *a, const float *b, double *result) {
    ENTER("dot");
    CHECK(n); CHECK(a); CHECK(b); CHECK(result);
    return LEAVE(sadm_cpu_ops.dot(n, a, b, result));
}

static sadm_status mock_adamw_step(size_t n, float *p, const float *g, float *m, float *v, const sadm_adamw_config *cfg, long step) {
    ENTER("adamw_step");
    CHECK(n); CHECK(p); CHECK(g); CHECK(m); CHECK(v); CHECK(cfg); CHECK(step);
    return LEAVE(sadm_cpu_ops.adamw_step(n, p, g, m, v, cfg, step));
}

static sadm_status mock_ema_update(size_t n, float *ema, const float *p, float decay) {
    ENTER("ema_update");
    CHECK(n); CHECK(ema); CHECK(p); CHECK(decay);
    return LEAVE(sadm_cpu_ops.ema_update(n, ema, p, decay));
}

static sadm_status mock_clip_grad_norm(size_t n, float *g, float max_norm, double *norm_out) {
    ENTER("clip_grad_norm");
    CHECK(n); CHECK(g); CHECK(max_norm); CHECK(norm_out);
    return LEAVE(sadm_cpu_ops.clip_grad_norm(n, g, max_norm, norm_out));
}

static sadm_status mock_scale(size_t n, float *x, float a) {
    ENTER("scale");
    CHECK(n); CHECK(x); CHECK(a);
    return LEAVE(sadm_cpu_ops.scale(n, x, a));
}

static sadm_status mock_rng_uniform(uint64_t seed, uint64_t stream, uint64_t offset, size_t n, float *out) {
    ENTER("rng_uniform");
    CHECK(seed); CHECK(stream); CHECK(offset); CHECK(n); CHECK(out);
    return LEAVE(sadm_cpu_ops.rng_uniform(seed, stream, offset, n, out));
}

static sadm_status mock_rng_normal(uint64_t seed, uint64_t stream, uint64_t offset, size_t n, float *out) {
    ENTER("rng_normal");
    CHECK(seed); CHECK(stream); CHECK(offset); CHECK(n); CHECK(out);
    return LEAVE(sadm_cpu_ops.rng_normal(seed, stream, offset, n, out));
}

static sadm_status mock_q_sample(const sadm_diffusion *d, int N, size_t per_sample, const float *x0, const int64_t *t, const float *noise, float *xt) {
    ENTER("q_sample");
    CHECK(d); CHECK(N); CHECK(per_sample); CHECK(x0); CHECK(t); CHECK(noise); CHECK(xt);
    return LEAVE(sadm_cpu_ops.q_sample(d, N, per_sample, x0, t, noise, xt));
}

static sadm_status mock_diffusion_loss(const sadm_diffusion *d, int N, int C, size_t HW, int learn_sigma, const float *x0, const float *xt, const int64_t *t, const float *noise, const float *model_out, float *loss, float *mse, float *vb, float *dout) {
    ENTER("diffusion_loss");
    CHECK(d); CHECK(N); CHECK(C); CHECK(HW); CHECK(learn_sigma); CHECK(x0); CHECK(xt); CHECK(t); CHECK(noise); CHECK(model_out); CHECK(loss); CHECK(mse); CHECK(vb); CHECK(dout);
    return LEAVE(sadm_cpu_ops.diffusion_loss(d, N, C, HW, learn_sigma, x0, xt, t, noise, model_out, loss, mse, vb, dout));
}

static sadm_status mock_sampler_update(const sadm_sampler_step *step, int N, int C, size_t HW, const float *model_out, const float *noise, float *x) {
    ENTER("sampler_update");
    CHECK(step); CHECK(N); CHECK(C); CHECK(HW); CHECK(model_out); CHECK(noise); CHECK(x);
    return LEAVE(sadm_cpu_ops.sampler_update(step, N, C, HW, model_out, noise, x));
}

static sadm_status mock_predict_x0(const sadm_diffusion *d, int N, size_t per, size_t eps_stride, const float *xt, const int64_t *t, const float *eps, float *x0) {
    ENTER("predict_x0");
    CHECK(d); CHECK(N); CHECK(per); CHECK(eps_stride); CHECK(xt); CHECK(t); CHECK(eps); CHECK(x0);
    return LEAVE(sadm_cpu_ops.predict_x0(d, N, per, eps_stride, xt, t, eps, x0));
}

static sadm_status mock_x0_grad_to_eps(const sadm_diffusion *d, int N, size_t per, size_t eps_stride, const int64_t *t, const float *dx0, float *deps) {
    ENTER("x0_grad_to_eps");
    CHECK(d); CHECK(N); CHECK(per); CHECK(eps_stride); CHECK(t); CHECK(dx0); CHECK(deps);
    return LEAVE(sadm_cpu_ops.x0_grad_to_eps(d, N, per, eps_stride, t, dx0, deps));
}

static sadm_status mock_struct_weights(const sadm_diffusion *d, const sadm_sadm_config *c, int N, const int64_t *t, float *w) {
    ENTER("struct_weights");
    CHECK(d); CHECK(c); CHECK(N); CHECK(t); CHECK(w);
    return LEAVE(sadm_cpu_ops.struct_weights(d, c, N, t, w));
}

static sadm_status mock_struct_loss(const sadm_sadm_config *cfg, int N, int E, const float *zr, const float *zf, const float *w, float scale, sadm_struct_stats *stats, float *dzr, float *dzf) {
    ENTER("struct_loss");
    CHECK(cfg); CHECK(N); CHECK(E); CHECK(zr); CHECK(zf); CHECK(w); CHECK(scale); CHECK(stats); CHECK(dzr); CHECK(dzf);
    return LEAVE(sadm_cpu_ops.struct_loss(cfg, N, E, zr, zf, w, scale, stats, dzr, dzf));
}

static const sadm_ops mock_ops = {
    .matmul = mock_matmul,
    .matmul_batched = mock_matmul_batched,
    .linear_forward = mock_linear_forward,
    .linear_backward = mock_linear_backward,
    .layernorm_forward = mock_layernorm_forward,
    .layernorm_backward = mock_layernorm_backward,
    .group_norm_forward = mock_group_norm_forward,
    .group_norm_backward = mock_group_norm_backward,
    .gelu_forward = mock_gelu_forward,
    .gelu_backward = mock_gelu_backward,
    .silu_forward = mock_silu_forward,
    .silu_backward = mock_silu_backward,
    .relu_forward = mock_relu_forward,
    .relu_backward = mock_relu_backward,
    .cross_entropy = mock_cross_entropy,
    .softmax_forward = mock_softmax_forward,
    .softmax_backward = mock_softmax_backward,
    .add = mock_add,
    .add_rows = mock_add_rows,
    .gated_add_forward = mock_gated_add_forward,
    .gated_add_backward = mock_gated_add_backward,
    .modulate_forward = mock_modulate_forward,
    .modulate_backward = mock_modulate_backward,
    .mean_tokens_forward = mock_mean_tokens_forward,
    .mean_tokens_backward = mock_mean_tokens_backward,
    .attention_forward = mock_attention_forward,
    .attention_backward = mock_attention_backward,
    .patchify = mock_patchify,
    .patchify_backward = mock_patchify_backward,
    .unpatchify = mock_unpatchify,
    .unpatchify_backward = mock_unpatchify_backward,
    .split_chunks = mock_split_chunks,
    .merge_chunks = mock_merge_chunks,
    .i64_to_f32 = mock_i64_to_f32,
    .l2_normalize_forward = mock_l2_normalize_forward,
    .l2_normalize_backward = mock_l2_normalize_backward,
    .conv2d_forward = mock_conv2d_forward,
    .conv2d_backward = mock_conv2d_backward,
    .upsample_nearest_forward = mock_upsample_nearest_forward,
    .upsample_nearest_backward = mock_upsample_nearest_backward,
    .pool2d_forward = mock_pool2d_forward,
    .pool2d_backward = mock_pool2d_backward,
    .conv2d_nhwc_forward = mock_conv2d_nhwc_forward,
    .pool2d_nhwc_forward = mock_pool2d_nhwc_forward,
    .mean_pixels_nhwc = mock_mean_pixels_nhwc,
    .linear_forward_bf16 = mock_linear_forward_bf16,
    .linear_backward_bf16 = mock_linear_backward_bf16,
    .attention_forward_bf16 = mock_attention_forward_bf16,
    .attention_backward_bf16 = mock_attention_backward_bf16,
    .linear_forward_exact = mock_linear_forward_exact,
    .copy_channels = mock_copy_channels,
    .fid_resize = mock_fid_resize,
    .embedding_forward = mock_embedding_forward,
    .embedding_backward = mock_embedding_backward,
    .timestep_embedding = mock_timestep_embedding,
    .pos_embed_2d = mock_pos_embed_2d,
    .sum = mock_sum,
    .sumsq = mock_sumsq,
    .dot = mock_dot,
    .adamw_step = mock_adamw_step,
    .ema_update = mock_ema_update,
    .clip_grad_norm = mock_clip_grad_norm,
    .scale = mock_scale,
    .rng_uniform = mock_rng_uniform,
    .rng_normal = mock_rng_normal,
    .q_sample = mock_q_sample,
    .diffusion_loss = mock_diffusion_loss,
    .sampler_update = mock_sampler_update,
    .predict_x0 = mock_predict_x0,
    .x0_grad_to_eps = mock_x0_grad_to_eps,
    .struct_weights = mock_struct_weights,
    .struct_loss = mock_struct_loss,
};
/* END GENERATED WRAPPERS */

#define N_OPS (sizeof op_names / sizeof op_names[0] - 1)
static size_t op_calls[N_OPS];

static void count_op(const char *name) {
    for (size_t i = 0; i < N_OPS; i++)
        if (!strcmp(op_names[i], name)) {
            op_calls[i]++;
            return;
        }
}

const char *const *mock_backend_op_names(void) { return op_names; }

size_t mock_backend_op_calls(const char *name) {
    for (size_t i = 0; i < N_OPS; i++)
        if (!strcmp(op_names[i], name)) return op_calls[i];
    return 0;
}




static sadm_backend mock = {
    .name = "mock",
    .host_memory = 0,
    .alloc = mock_alloc,
    .free = mock_free,
    .zero = mock_zero,
    .copy = mock_copy,
    .upload = mock_upload,
    .download = mock_download,
    .sync = mock_sync,
    .supports_dtype = mock_dtype,
    .supports_precision = mock_precision,
    .ops = &mock_ops,
};

sadm_backend *mock_backend(void) { return &mock; }
