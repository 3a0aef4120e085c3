/* A backend is a table: a name, an allocator, host <-> backend copies, and the operator
 * table whose entries mirror the public operators (same arguments, same meaning).
 * Models hold a backend and call only through it; every pointer they pass to an entry is
 * memory that backend allocated (parameters, gradients, moments, activation arenas), and
 * they never dereference such memory on the host. Host <-> backend copies happen only at
 * the edges: a batch in, outputs and metrics out, checkpoint save and load.
 *
 * Scratch: the workspace an operator needs for one call (attention tiles, layer-norm
 * partials, im2col columns, per-row losses) is the backend's business. The CPU backend
 * takes it from per-thread stacks (lib/scratch.c) that keep their blocks, so a training
 * loop's steps after the first allocate nothing.
 *
 * The CPU backend's entries are the public sadm_* operators themselves; a second backend
 * (tests/mock_backend.c, the CUDA module) fills the same table. */
#ifndef SADM_BACKEND_H
#define SADM_BACKEND_H

#include "internal.h"

typedef struct sadm_ops {
    /* linear algebra */
    sadm_status (*matmul)(sadm_transpose ta, sadm_transpose tb, int M, int N, int K, float alpha, const float *A,
                          const float *B, float beta, float *C, const float *bias);
    sadm_status (*matmul_batched)(sadm_transpose ta, sadm_transpose tb, int M, int N, int K, float alpha,
                                  const float *A, size_t stride_a, const float *B, size_t stride_b, float beta, float *C,
                                  size_t stride_c, int batch);
    sadm_status (*linear_forward)(int M, int K, int N, const float *x, const float *w, const float *b, float *y);
    sadm_status (*linear_backward)(int M, int K, int N, const float *x, const float *w, const float *dy, float *dx,
                                   float *dw, float *db);
    /* row-wise and element-wise */
    sadm_status (*layernorm_forward)(size_t rows, size_t C, const float *x, const float *w, const float *b, float eps,
                                     float *y, float *mean, float *rstd);
    sadm_status (*layernorm_backward)(size_t rows, size_t C, const float *x, const float *w, const float *mean,
                                      const float *rstd, const float *dy, float *dx, float *dw, float *db);
    sadm_status (*group_norm_forward)(int N, int C, size_t HW, int G, const float *x, const float *w, const float *b,
                                      float eps, float *y, float *mean, float *rstd);
    sadm_status (*group_norm_backward)(int N, int C, size_t HW, int G, const float *x, const float *w,
                                       const float *mean, const float *rstd, const float *dy, float *dx, float *dw,
                                       float *db);
    sadm_status (*gelu_forward)(size_t n, const float *x, float *y);
    sadm_status (*gelu_backward)(size_t n, const float *x, const float *dy, float *dx);
    sadm_status (*silu_forward)(size_t n, const float *x, float *y);
    sadm_status (*silu_backward)(size_t n, const float *x, const float *dy, float *dx);
    sadm_status (*relu_forward)(size_t n, const float *x, float *y);
    sadm_status (*relu_backward)(size_t n, const float *x, const float *dy, float *dx);
    sadm_status (*cross_entropy)(size_t N, int C, const float *logits, const int64_t *labels, double *loss,
                                 float *dlogits);
    sadm_status (*softmax_forward)(size_t rows, size_t C, const float *x, float *y);
    sadm_status (*softmax_backward)(size_t rows, size_t C, const float *y, const float *dy, float *dx);
    sadm_status (*add)(size_t n, const float *a, const float *b, float *out);
    sadm_status (*add_rows)(size_t rows, size_t n, const float *x, const float *row, float *out);
    sadm_status (*gated_add_forward)(int B, int T, int C, const float *x, const float *g, const float *y, float *out);
    sadm_status (*gated_add_backward)(int B, int T, int C, const float *g, const float *y, const float *dout,
                                      float *dx, float *dg, float *dy);
    sadm_status (*modulate_forward)(int B, int T, int C, const float *x, const float *shift, const float *scale,
                                    float *y);
    sadm_status (*modulate_backward)(int B, int T, int C, const float *x, const float *scale, const float *dy,
                                     float *dx, float *dshift, float *dscale);
    sadm_status (*mean_tokens_forward)(int B, int T, int C, const float *x, float *y);
    sadm_status (*mean_tokens_backward)(int B, int T, int C, const float *dy, float *dx);
    /* attention */
    sadm_status (*attention_forward)(int B, int N, int H, int head_dim, const float *qkv, float *out, float *lse);
    sadm_status (*attention_backward)(int B, int N, int H, int head_dim, const float *qkv, const float *out,
                                      const float *lse, const float *dout, float *dqkv);
    /* layout */
    sadm_status (*patchify)(int B, int C, int H, int W, int p, const float *x, float *tokens);
    sadm_status (*patchify_backward)(int B, int C, int H, int W, int p, const float *dtokens, float *dx);
    sadm_status (*unpatchify)(int B, int C, int H, int W, int p, const float *tokens, float *x);
    sadm_status (*unpatchify_backward)(int B, int C, int H, int W, int p, const float *dx, float *dtokens);
    sadm_status (*split_chunks)(int N, int D, int k, const float *src, float *dst);
    sadm_status (*merge_chunks)(int N, int D, int k, const float *src, float *dst);
    sadm_status (*i64_to_f32)(size_t n, const int64_t *src, float *dst);
    sadm_status (*l2_normalize_forward)(size_t N, int E, double eps, const float *h, float *z);
    sadm_status (*l2_normalize_backward)(size_t N, int E, double eps, const float *h, const float *z, const float *dz,
                                         float *dh);
    /* convolution and pooling (NCHW) */
    sadm_status (*conv2d_forward)(const sadm_conv2d_shape *s, const float *x, const float *w, const float *b,
                                  float *y);
    sadm_status (*conv2d_backward)(const sadm_conv2d_shape *s, const float *x, const float *w, const float *dy,
                                   float *dx, float *dw, float *db);
    sadm_status (*upsample_nearest_forward)(int N, int C, int H, int W, int s, const float *x, float *y);
    sadm_status (*upsample_nearest_backward)(int N, int C, int H, int W, int s, const float *dy, float *dx);
    sadm_status (*pool2d_forward)(const sadm_pool2d_shape *s, const float *x, float *y);
    sadm_status (*pool2d_backward)(const sadm_pool2d_shape *s, const float *x, const float *dy, float *dx);
    /* NHWC (the FID Inception) */
    sadm_status (*conv2d_nhwc_forward)(const sadm_nhwc_conv_shape *s, const float *x, const float *w, const float *b,
                                       int relu, float *y);
    sadm_status (*pool2d_nhwc_forward)(const sadm_nhwc_pool_shape *s, const float *x, float *y);
    sadm_status (*mean_pixels_nhwc)(int N, int HW, int C, int ld, const float *x, float *out);
    /* the speed mode's products (bf16 inputs, fp32 sums): sadm_*_bf16 */
    sadm_status (*linear_forward_bf16)(int M, int K, int N, const float *x, const float *w, const float *b, float *y);
    sadm_status (*linear_backward_bf16)(int M, int K, int N, const float *x, const float *w, const float *dy,
                                        float *dx, float *dw, float *db);
    sadm_status (*attention_forward_bf16)(int B, int N, int H, int head_dim, const float *qkv, float *out, float *lse);
    sadm_status (*attention_backward_bf16)(int B, int N, int H, int head_dim, const float *qkv, const float *out,
                                           const float *lse, const float *dout, float *dqkv);
    sadm_status (*linear_forward_exact)(int M, int K, int N, const float *x, const float *w, const float *b, float *y);
    sadm_status (*copy_channels)(size_t rows, int C, const float *src, int ld_src, float *dst, int ld_dst);
    sadm_status (*fid_resize)(sadm_fid_mode mode, int N, int H, int W, const uint8_t *images, float *x);
    /* embeddings */
    sadm_status (*embedding_forward)(size_t n, int dim, int rows, const float *table, const int64_t *idx, float *out);
    sadm_status (*embedding_backward)(size_t n, int dim, int rows, const int64_t *idx, const float *dout,
                                      float *dtable);
    sadm_status (*timestep_embedding)(size_t n, int dim, const float *t, float max_period, float *out);
    sadm_status (*pos_embed_2d)(int dim, int grid, float *out);
    /* reductions (results to host memory) */
    sadm_status (*sum)(size_t n, const float *x, double *result);
    sadm_status (*sumsq)(size_t n, const float *x, double *result);
    sadm_status (*dot)(size_t n, const float *a, const float *b, double *result);
    /* optimiser */
    sadm_status (*adamw_step)(size_t n, float *p, const float *g, float *m, float *v, const sadm_adamw_config *cfg,
                              long step);
    sadm_status (*ema_update)(size_t n, float *ema, const float *p, float decay);
    sadm_status (*clip_grad_norm)(size_t n, float *g, float max_norm, double *norm_out);
    sadm_status (*scale)(size_t n, float *x, float a);
    /* random numbers: the same Philox streams on every backend */
    sadm_status (*rng_uniform)(uint64_t seed, uint64_t stream, uint64_t offset, size_t n, float *out);
    sadm_status (*rng_normal)(uint64_t seed, uint64_t stream, uint64_t offset, size_t n, float *out);
    /* diffusion (the schedule object is host memory; a backend may keep its own copy) */
    sadm_status (*q_sample)(const sadm_diffusion *d, int N, size_t per_sample, const float *x0, const int64_t *t,
                            const float *noise, float *xt);
    sadm_status (*diffusion_loss)(const sadm_diffusion *d, int N, int C, size_t HW, int learn_sigma, const float *x0,
                                  const float *xt, const int64_t *t, const float *noise, const float *model_out,
                                  float *loss, float *mse, float *vb, float *dout);
    sadm_status (*sampler_update)(const sadm_sampler_step *step, int N, int C, size_t HW, const float *model_out,
                                  const float *noise, float *x);
    /* SADM */
    sadm_status (*predict_x0)(const sadm_diffusion *d, int N, size_t per, size_t eps_stride, const float *xt,
                              const int64_t *t, const float *eps, float *x0);
    sadm_status (*x0_grad_to_eps)(const sadm_diffusion *d, int N, size_t per, size_t eps_stride, const int64_t *t,
                                  const float *dx0, float *deps);
    sadm_status (*struct_weights)(const sadm_diffusion *d, const sadm_sadm_config *c, int N, const int64_t *t, float *w);
    /* the structural distance (stats to host memory) */
    sadm_status (*struct_loss)(const sadm_sadm_config *cfg, int N, int E, const float *zr, const float *zf,
                               const float *w, float scale, sadm_struct_stats *stats, float *dzr, float *dzf);
} sadm_ops;

struct sadm_backend {
    const char *name;
    /* 1 when its memory is host memory (the CPU): the edges then pass the caller's
     * pointers straight through instead of copying */
    int host_memory;
    /* memory: count elements of dtype; NULL when out of memory (sets no message) */
    void *(*alloc)(sadm_backend *be, sadm_dtype dtype, size_t count);
    void (*free)(sadm_backend *be, void *p);
    sadm_status (*zero)(sadm_backend *be, void *p, size_t bytes);
    sadm_status (*copy)(sadm_backend *be, void *dst, const void *src, size_t bytes);
    sadm_status (*upload)(sadm_backend *be, void *dst, const void *host_src, size_t bytes);
    sadm_status (*download)(sadm_backend *be, void *host_dst, const void *src, size_t bytes);
    sadm_status (*sync)(sadm_backend *be);
    /* which storage types and training precisions it runs */
    int (*supports_dtype)(const sadm_backend *be, sadm_dtype dtype);
    int (*supports_precision)(const sadm_backend *be, sadm_precision precision);
    const sadm_ops *ops;
    void *impl;
};

/* The CPU backend's operator table (tests wrap it). */
extern const sadm_ops sadm_cpu_ops;

/* Floats on a backend, with the message set on failure ("<what>: out of memory for N floats"). */
float *sadm_backend_floats(sadm_backend *be, size_t count, const char *what);

/* Floats of backend memory readable on the host: p itself on a backend with host memory,
 * else a downloaded copy in *copy (sadm_free it; NULL when none was needed). NULL on
 * failure, with the message set. */
const float *sadm_backend_host_view(sadm_backend *be, const float *p, size_t count, float **copy);
/* A copy of count elements of dtype at src (memory of `from`) in a fresh block of `to`
 * (*out; NULL on failure). */
sadm_status sadm_backend_clone(sadm_backend *from, sadm_backend *to, const void *src, sadm_dtype dtype, size_t count,
                               void **out);
/* *p (count elements of dtype on `from`) moved to a fresh block on `to`; the old block is
 * freed only once the copy succeeded. A NULL *p stays NULL. */
sadm_status sadm_backend_move(sadm_backend *from, sadm_backend *to, void **p, sadm_dtype dtype, size_t count);

/* A model's parameter block and its gradient block (may be NULL), count floats each,
 * moved together: both or, on failure, neither (the old ones stay valid). */
sadm_status sadm_backend_move_params(sadm_backend *from, sadm_backend *to, float **data, float **grad, size_t count);

/* A call through the table; returns from the caller on failure. */
#define SADM_OP(be, name, ...)                                                                     \
    do {                                                                                           \
        sadm_status st_op_ = (be)->ops->name(__VA_ARGS__);                                         \
        if (st_op_) return st_op_;                                                                 \
    } while (0)

/* The same for an entry that has a bf16 twin (name_bf16): the twin when bf16 is true,
 * i.e. when the model runs in the speed mode (--precision bf16). */
#define SADM_OP_P(be, bf16, name, ...)                                                             \
    do {                                                                                           \
        sadm_status st_op_ = (bf16) ? (be)->ops->name##_bf16(__VA_ARGS__) : (be)->ops->name(__VA_ARGS__); \
        if (st_op_) return st_op_;                                                                 \
    } while (0)

#endif
