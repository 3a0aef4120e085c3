/* libsadm — Structure-guided Adversarial training of Diffusion Models, in C.
 *
 * The one public header. It is also the table of contents of the library:
 *   1. status codes and error messages
 *   2. run time: ISA dispatch, threads, memory
 *   3. random numbers (Philox-4x32-10, counter based)
 *   4. operators: matrix products, normalisation, activations, elementwise,
 *      attention, convolution and pooling, embeddings, reductions, optimiser
 *   5. files: safetensors, NumPy .npz
 *   6. models: parameter tables, DiT, the structure encoder, the FID Inception-v3
 *   7. Gaussian diffusion: schedules, q_sample, the training loss
 *   8. data sets
 *   9. training: AdamW + EMA loop, checkpoints, resume
 *  10. sampling: DDPM, DDIM, classifier-free guidance
 *  11. SADM: structural distances, the minimax objective, SADM training
 *  12. evaluation: feature statistics, Fréchet distance
 *
 * Conventions for every operator:
 *   - float32, row-major; images NCHW, sequences (batch, tokens, channels).
 *   - Every backward ACCUMULATES (+=) into each gradient it is given, inputs and
 *     parameters alike (zero them first where that is not wanted); a NULL gradient
 *     pointer means "not needed" and skips that work.
 *   - A function returns SADM_OK or an error status; sadm_last_error() then holds a
 *     message naming the argument and what was expected. Nothing aborts.
 *   - Results are bitwise identical for any number of threads.
 */
#ifndef SADM_H
#define SADM_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ------------------------------------------------------------------ 1. status */
typedef enum sadm_status {
    SADM_OK = 0,
    SADM_ERR_ARG = 1,         /* a bad argument: NULL pointer, wrong size, bad option */
    SADM_ERR_NOMEM = 2,       /* allocation failed */
    SADM_ERR_IO = 3,          /* a file could not be read or written */
    SADM_ERR_FORMAT = 4,      /* a file's content is not what was expected */
    SADM_ERR_UNSUPPORTED = 5, /* not available in this build or on this CPU */
    SADM_ERR_NUMERIC = 6      /* NaN/Inf where a finite number is needed */
} sadm_status;

/* Message for the last error set on this thread ("" when none). */
const char *sadm_last_error(void);
/* Short name of a status code, e.g. "invalid argument". */
const char *sadm_status_string(sadm_status status);
const char *sadm_version(void);

/* ------------------------------------------------------------------ 2. run time */
/* Kernel sets: "scalar" (the reference), "avx2", "avx512", "neon". At start-up the
 * best one the CPU supports is chosen, or the one named by the SADM_ISA environment
 * variable. */
sadm_status sadm_set_isa(const char *name);      /* "auto" picks the best again */
const char *sadm_isa(void);                       /* name of the active kernel set */
int sadm_isa_available(const char *name);         /* built and supported by this CPU */
/* Names of every kernel set built into this library, best last; NULL-terminated. */
const char *const *sadm_isa_list(void);

/* Threads used by operators and by the BLAS (OpenMP). n <= 0 means all cores. A build
 * without OpenMP runs on one thread and answers SADM_ERR_UNSUPPORTED to n > 1. */
sadm_status sadm_set_num_threads(int n);
int sadm_num_threads(void);
/* Description of the BLAS in use, e.g. "OpenBLAS 0.3.21 (OpenMP) core SkylakeX". */
const char *sadm_blas_info(void);

/* Decoded images above this many pixels (width × height) are refused before they are
 * decompressed: a few hundred bytes of JPEG can declare 275 M pixels. Default 100 M (or
 * the SADM_MAX_IMAGE_PIXELS environment variable at start-up); n = 0 restores it. */
#define SADM_DEFAULT_MAX_IMAGE_PIXELS ((uint64_t)100000000)
void sadm_set_max_image_pixels(uint64_t n);
uint64_t sadm_max_image_pixels(void);
/* PyTorch .pt files (torch.save's zip format) are read wherever safetensors are: tensors of
 * their state dict, through a restricted unpickler that refuses any code. A checkpoint
 * dict ({"model", "ema", ...} as DiT's train.py writes) gives this entry: NULL (default)
 * takes "ema", else "model", else "state_dict" ($SADM_PT_ENTRY when set). Not thread-safe
 * against concurrent opens. */
void sadm_set_pt_entry(const char *entry);
const char *sadm_pt_entry(void);

/* Profiling of the matrix products made outside parallel regions (the linear layers, not
 * attention's per-tile products): reset, then read the wall time spent in them and their
 * floating-point operations. Off until the first reset; for benchmarks. */
void sadm_gemm_profile_reset(void);
void sadm_gemm_profile_read(double *seconds, double *flops);

/* 64-byte aligned memory; large blocks are advised to use huge pages. */
void *sadm_alloc(size_t bytes);
void *sadm_calloc(size_t count, size_t size);
void sadm_free(void *p);
/* How many blocks the library has allocated since start (sadm_alloc/sadm_calloc, the
 * scratch blocks of operators and every backend allocation): a training loop's steps after
 * the first allocate nothing, which a program can check with this. */
uint64_t sadm_allocation_count(void);

/* ------------------------------------------------------------------ 3. random numbers */
/* One Philox-4x32-10 block (Salmon et al. 2011): out = philox(ctr, key). */
void sadm_philox4x32_10(const uint32_t ctr[4], const uint32_t key[2], uint32_t out[4]);
/* Element i of a stream (seed, stream) at position `offset + i` is a pure function of
 * those three numbers, so that any split of the work gives the same values.
 * Uniform: in the open interval (0, 1). Normal: mean 0, standard deviation 1 (Box-Muller). */
sadm_status sadm_rng_uniform(uint64_t seed, uint64_t stream, uint64_t offset, size_t n, float *out);
sadm_status sadm_rng_normal(uint64_t seed, uint64_t stream, uint64_t offset, size_t n, float *out);

/* ------------------------------------------------------------------ 4. operators */
typedef enum sadm_transpose { SADM_NO_TRANS = 0, SADM_TRANS = 1 } sadm_transpose;

/* C[M,N] = alpha * op(A) op(B) + beta * C (+ bias[N] on every row when bias != NULL).
 * op(A) is M×K (A stored K×M when transposed), op(B) is K×N (B stored N×K when transposed). */
sadm_status sadm_matmul(sadm_transpose ta, sadm_transpose tb, int M, int N, int K, float alpha,
                        const float *A, const float *B, float beta, float *C, const float *bias);
/* The same for `batch` independent products, each operand advanced by its stride (in floats). */
sadm_status sadm_matmul_batched(sadm_transpose ta, sadm_transpose tb, int M, int N, int K, float alpha,
                                const float *A, size_t stride_a, const float *B, size_t stride_b,
                                float beta, float *C, size_t stride_c, int batch);

/* Linear layer, PyTorch layout: y[M,N] = x[M,K] w[N,K]^T + b[N] (b may be NULL). */
sadm_status sadm_linear_forward(int M, int K, int N, const float *x, const float *w, const float *b, float *y);
/* dx += dy w; dw += dy^T x; db += column sums of dy. */
sadm_status sadm_linear_backward(int M, int K, int N, const float *x, const float *w, const float *dy,
                                 float *dx, float *dw, float *db);

/* bf16 products with fp32 accumulation (the speed mode's GEMM): the same operations with
 * every element of A, B (and x, w, dy) rounded to bf16, round to nearest even, and the
 * products summed in fp32 in one fixed order (simd/bf16.h has the exact definition).
 * Native on CPUs with AVX512-BF16, the same bits with fp32 FMAs elsewhere; bitwise the
 * same for any thread count and any position of a row in the batch. */
sadm_status sadm_matmul_bf16(sadm_transpose ta, sadm_transpose tb, int M, int N, int K, float alpha,
                             const float *A, const float *B, float beta, float *C);
sadm_status sadm_linear_forward_bf16(int M, int K, int N, const float *x, const float *w, const float *b, float *y);
sadm_status sadm_linear_backward_bf16(int M, int K, int N, const float *x, const float *w, const float *dy,
                                      float *dx, float *dw, float *db);
/* How bf16 products run with the active kernel set: "native (AVX512-BF16)" or
 * "fp32 FMA emulation (<kernel set>)". */
const char *sadm_bf16_path(void);
int sadm_bf16_native(void); /* 1 when the active kernel set multiplies bf16 in hardware */
/* 1 when bf16 products are expected to beat fp32 here: native, and a CPU whose VDPBF16PS
 * runs at twice its fp32 FMA rate (AMD Zen 4/5). Intel's AVX512-BF16 parts issue it at half
 * that rate, so the same FLOPs take as long as fp32 and packing makes bf16 slower there
 * (measured: bench ops on a 2-core Xeon gave VDPBF16PS 244 vs FMA 483 GFLOP/s). *why
 * (may be NULL) gets the reason in a few words. */
int sadm_bf16_preferred(const char **why);

/* Layer norm over the last dimension C of `rows` rows, biased variance, eps inside the
 * square root. w and b (C each) may be NULL (no affine, as DiT). mean and rstd (rows each)
 * receive the statistics for the backward; either may be NULL in inference. */
sadm_status sadm_layernorm_forward(size_t rows, size_t C, const float *x, const float *w, const float *b,
                                   float eps, float *y, float *mean, float *rstd);
sadm_status sadm_layernorm_backward(size_t rows, size_t C, const float *x, const float *w,
                                    const float *mean, const float *rstd, const float *dy,
                                    float *dx, float *dw, float *db);

/* Group norm as torch.nn.GroupNorm: x (N, C, HW) with the C channels in G groups of C/G;
 * the statistics of each (sample, group) over its (C/G) HW values, biased variance, eps
 * inside the square root; w and b (C each, per channel) may be NULL. mean and rstd (N G
 * each) may be NULL in inference. The backward adds into dx, dw and db (each may be NULL). */
sadm_status sadm_group_norm_forward(int N, int C, size_t HW, int G, const float *x, const float *w, const float *b,
                                    float eps, float *y, float *mean, float *rstd);
sadm_status sadm_group_norm_backward(int N, int C, size_t HW, int G, const float *x, const float *w, const float *mean,
                                     const float *rstd, const float *dy, float *dx, float *dw, float *db);
/* Nearest-neighbour upsampling by a whole factor s, as F.interpolate(mode="nearest"):
 * x (N, C, H, W) -> y (N, C, H s, W s). The backward adds each s x s block of dy into dx. */
sadm_status sadm_upsample_nearest_forward(int N, int C, int H, int W, int s, const float *x, float *y);
sadm_status sadm_upsample_nearest_backward(int N, int C, int H, int W, int s, const float *dy, float *dx);

/* GELU with the tanh approximation (as DiT): 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))). */
sadm_status sadm_gelu_forward(size_t n, const float *x, float *y);
sadm_status sadm_gelu_backward(size_t n, const float *x, const float *dy, float *dx);
/* SiLU: x * sigmoid(x). */
sadm_status sadm_silu_forward(size_t n, const float *x, float *y);
sadm_status sadm_silu_backward(size_t n, const float *x, const float *dy, float *dx);
/* ReLU: max(x, 0); its backward passes dy where x > 0 (0 at x = 0, as PyTorch).
 * dx is overwritten, not accumulated; y and dx may alias x / dy. */
sadm_status sadm_relu_forward(size_t n, const float *x, float *y);
sadm_status sadm_relu_backward(size_t n, const float *x, const float *dy, float *dx);
/* Cross-entropy of logits (N, C) against labels in [0, C), mean over the N rows, as
 * F.cross_entropy: log-softmax in double. loss may be NULL; dlogits (may be NULL) is
 * overwritten with d(mean loss)/d(logits) = (softmax - onehot) / N. */
sadm_status sadm_cross_entropy(size_t N, int C, const float *logits, const int64_t *labels, double *loss,
                               float *dlogits);
/* Softmax over the last dimension C, with the row maximum subtracted first. */
sadm_status sadm_softmax_forward(size_t rows, size_t C, const float *x, float *y);
sadm_status sadm_softmax_backward(size_t rows, size_t C, const float *y, const float *dy, float *dx);

/* out = a + b (out may alias a or b). Its backward is the identity on both inputs. */
sadm_status sadm_add(size_t n, const float *a, const float *b, float *out);
/* Gated residual: out[b,t,c] = x[b,t,c] + g[b,c] * y[b,t,c]; x (B,T,C), g (B,C). */
sadm_status sadm_gated_add_forward(int B, int T, int C, const float *x, const float *g, const float *y, float *out);
sadm_status sadm_gated_add_backward(int B, int T, int C, const float *g, const float *y, const float *dout,
                                    float *dx, float *dg, float *dy);
/* adaLN modulate: y[b,t,c] = x[b,t,c] * (1 + scale[b,c]) + shift[b,c]. */
sadm_status sadm_modulate_forward(int B, int T, int C, const float *x, const float *shift, const float *scale,
                                  float *y);
sadm_status sadm_modulate_backward(int B, int T, int C, const float *x, const float *scale, const float *dy,
                                   float *dx, float *dshift, float *dscale);
/* Mean over tokens: y[b,c] = mean_t x[b,t,c]. */
sadm_status sadm_mean_tokens_forward(int B, int T, int C, const float *x, float *y);
sadm_status sadm_mean_tokens_backward(int B, int T, int C, const float *dy, float *dx);

/* Fused multi-head scaled-dot-product attention (flash-attention style: only a tile of
 * the N×N scores lives in memory at a time, per thread).
 * qkv: (B, N, 3, H, hd) — the packed output of a qkv Linear, as timm/DiT lay it out;
 * out: (B, N, H, hd); lse: (B, H, N) log-sum-exp of each score row, for the backward
 * (may be NULL in inference). Scale 1/sqrt(hd). */
sadm_status sadm_attention_forward(int B, int N, int H, int hd, const float *qkv, float *out, float *lse);
sadm_status sadm_attention_backward(int B, int N, int H, int hd, const float *qkv, const float *out,
                                    const float *lse, const float *dout, float *dqkv);
/* The same with every tile product in bf16 (sadm_matmul_bf16): Q, K, V, the probabilities
 * and the gradients' factors rounded to bf16; softmax statistics and sums in fp32. */
sadm_status sadm_attention_forward_bf16(int B, int N, int H, int hd, const float *qkv, float *out, float *lse);
sadm_status sadm_attention_backward_bf16(int B, int N, int H, int hd, const float *qkv, const float *out,
                                         const float *lse, const float *dout, float *dqkv);

/* Patches of p×p from images x (B,C,H,W) into tokens (B, T=(H/p)(W/p), C·p·p), feature
 * order (c, i, j) — the order of a stride-p conv weight flattened. Tokens run row-major
 * over the patch grid. */
sadm_status sadm_patchify(int B, int C, int H, int W, int p, const float *x, float *tokens);
sadm_status sadm_patchify_backward(int B, int C, int H, int W, int p, const float *dtokens, float *dx);
/* Inverse layout used by DiT's output: tokens (B, T, p·p·C) in feature order (i, j, c)
 * into images (B,C,H,W). */
sadm_status sadm_unpatchify(int B, int C, int H, int W, int p, const float *tokens, float *x);
sadm_status sadm_unpatchify_backward(int B, int C, int H, int W, int p, const float *dx, float *dtokens);

/* 2-D convolution, cross-correlation as PyTorch: x (N,C,H,W), w (K,C,kh,kw), b (K) or NULL,
 * y (N,K,Ho,Wo) with Ho = (H + 2 ph + eh - kh)/sh + 1. im2col + GEMM. */
typedef struct sadm_conv2d_shape {
    int N, C, H, W;  /* input */
    int K;           /* output channels */
    int kh, kw;      /* kernel */
    int sh, sw;      /* stride */
    int ph, pw;      /* zero padding on both sides */
    int eh, ew;      /* extra zero rows below and columns right: diffusers' downsampling
                      * convolution pads (left 0, right 1, top 0, bottom 1) */
} sadm_conv2d_shape;
sadm_status sadm_conv2d_output_size(const sadm_conv2d_shape *s, int *Ho, int *Wo);
sadm_status sadm_conv2d_forward(const sadm_conv2d_shape *s, const float *x, const float *w, const float *b, float *y);
sadm_status sadm_conv2d_backward(const sadm_conv2d_shape *s, const float *x, const float *w, const float *dy,
                                 float *dx, float *dw, float *db);

/* Pooling, as PyTorch's avg_pool2d / max_pool2d (floor mode). For average pooling,
 * count_include_pad selects whether padded zeros count in the divisor. */
typedef enum sadm_pool_kind { SADM_POOL_MAX = 0, SADM_POOL_AVG = 1 } sadm_pool_kind;
typedef struct sadm_pool2d_shape {
    int N, C, H, W;
    int kh, kw, sh, sw, ph, pw;
    sadm_pool_kind kind;
    int count_include_pad;
} sadm_pool2d_shape;
sadm_status sadm_pool2d_output_size(const sadm_pool2d_shape *s, int *Ho, int *Wo);
sadm_status sadm_pool2d_forward(const sadm_pool2d_shape *s, const float *x, float *y);
/* For max pooling the gradient goes to the first maximum of each window (as PyTorch). */
sadm_status sadm_pool2d_backward(const sadm_pool2d_shape *s, const float *x, const float *dy, float *dx);

/* NHWC feature maps (the FID Inception's layout): pixel (n, y, x) of a map starts at
 * ((n H + y) W + x) ld, ld >= channels, so that a view can be some channels of a wider
 * map (a concatenation). Convolution: weights (kh, kw, C, K), bias (K) or NULL, then ReLU
 * when relu != 0; im2col + GEMM. Pooling: k×k windows; the average excludes padding
 * (count_include_pad False). */
typedef struct sadm_nhwc_conv_shape {
    int N, H, W, C; /* input */
    int K;          /* output channels */
    int kh, kw, sh, sw, ph, pw;
    int ldx, ldy;   /* pixel strides of input and output, in floats */
} sadm_nhwc_conv_shape;
sadm_status sadm_conv2d_nhwc_forward(const sadm_nhwc_conv_shape *s, const float *x, const float *w, const float *b,
                                     int relu, float *y);
typedef struct sadm_nhwc_pool_shape {
    int N, H, W, C, k, s, p, ldx, ldy;
    sadm_pool_kind kind;
} sadm_nhwc_pool_shape;
sadm_status sadm_pool2d_nhwc_forward(const sadm_nhwc_pool_shape *s, const float *x, float *y);
/* out[n, c] = mean over the HW pixels of channel c (in double). */
sadm_status sadm_mean_pixels_nhwc(int N, int HW, int C, int ld, const float *x, float *out);
/* y = x w^T + b as plain dot products in double: the same result for any batch. */
sadm_status sadm_linear_forward_exact(int M, int K, int N, const float *x, const float *w, const float *b, float *y);
/* The first C floats of each of `rows` rows, from rows ld_src apart to rows ld_dst apart. */
sadm_status sadm_copy_channels(size_t rows, int C, const float *src, int ld_src, float *dst, int ld_dst);

/* Embedding lookup: out[i,:] = table[idx[i],:], idx in [0, rows). Backward scatter-adds. */
sadm_status sadm_embedding_forward(size_t n, int dim, int rows, const float *table, const int64_t *idx, float *out);
sadm_status sadm_embedding_backward(size_t n, int dim, int rows, const int64_t *idx, const float *dout, float *dtable);
/* Sinusoidal timestep embedding as DiT/ADM: freqs_k = exp(-ln(max_period) k / half),
 * out[i] = [cos(t_i freqs), sin(t_i freqs)] (+ one zero column when dim is odd). */
sadm_status sadm_timestep_embedding(size_t n, int dim, const float *t, float max_period, float *out);
/* Fixed 2-D sin-cos position embedding of a grid×grid token grid, (grid², dim), as DiT's
 * get_2d_sincos_pos_embed: first half encodes the column, second the row; each half is
 * [sin, cos]. dim must be a multiple of 4. Computed in double, stored in float. */
sadm_status sadm_pos_embed_2d(int dim, int grid, float *out);

/* Reductions, in a fixed order (independent of threads), accumulated in double. */
sadm_status sadm_sum(size_t n, const float *x, double *result);
sadm_status sadm_mean(size_t n, const float *x, double *result);
sadm_status sadm_sumsq(size_t n, const float *x, double *result);
sadm_status sadm_dot(size_t n, const float *a, const float *b, double *result);

/* AdamW as torch.optim.AdamW: p -= lr*wd*p; m,v moments; bias correction for step >= 1. */
typedef struct sadm_adamw_config {
    float lr, beta1, beta2, eps, weight_decay;
} sadm_adamw_config;
sadm_status sadm_adamw_step(size_t n, float *p, const float *g, float *m, float *v,
                            const sadm_adamw_config *cfg, long step);
/* EMA as DiT: ema = decay * ema + (1 - decay) * p. */
sadm_status sadm_ema_update(size_t n, float *ema, const float *p, float decay);
/* Gradient clipping as torch.nn.utils.clip_grad_norm_: total L2 norm of g; when it
 * exceeds max_norm, g *= max_norm / (norm + 1e-6). norm_out (may be NULL) gets the norm
 * before clipping. max_norm <= 0 only measures. */
sadm_status sadm_clip_grad_norm(size_t n, float *g, float max_norm, double *norm_out);
/* x *= a. */
sadm_status sadm_scale(size_t n, float *x, float a);

/* Layout operators. split: rows (N, k D) of a Linear's output into k contiguous (N, D)
 * chunks, as torch.chunk(k, dim=1); merge is its inverse (for the gradients). */
sadm_status sadm_split_chunks(int N, int D, int k, const float *src, float *dst);
sadm_status sadm_merge_chunks(int N, int D, int k, const float *src, float *dst);
/* out[r, :] = x[r, :] + row[:] for `rows` rows of n (out may alias x). */
sadm_status sadm_add_rows(size_t rows, size_t n, const float *x, const float *row, float *out);
/* dst[i] = (float)src[i]. */
sadm_status sadm_i64_to_f32(size_t n, const int64_t *src, float *dst);
/* Row L2 normalisation as F.normalize: z = h / max(|h|, eps) for N rows of E, the norm in
 * double; the backward overwrites dh with the gradient with respect to h. */
sadm_status sadm_l2_normalize_forward(size_t N, int E, double eps, const float *h, float *z);
sadm_status sadm_l2_normalize_backward(size_t N, int E, double eps, const float *h, const float *z, const float *dz,
                                       float *dh);

/* One reverse-diffusion step of the samplers (ADM's p_sample / ddim_sample), given the
 * model's output for the batch (2N samples when guided: conditional, then unconditional).
 * The coefficients are those of the step's index; lib/sample.c fills them. */
typedef struct sadm_sampler_step {
    float sqrt_recip_ab, sqrt_recipm1_ab; /* sqrt(1/abar), sqrt(1/abar - 1) */
    float coef1, coef2;                   /* posterior mean coefficients */
    float min_log, max_log;               /* learned-range variance bounds (log) */
    float fixed_log_var;                  /* fixed-large variance (log) */
    float ab_prev, sigma;                 /* DDIM */
    float nonzero;                        /* 0 at the last step */
    float cfg_scale;
    int guided, guided_channels, ddim, clip_denoised, learn_sigma;
} sadm_sampler_step;
sadm_status sadm_sampler_update(const sadm_sampler_step *step, int N, int C, size_t HW, const float *model_out,
                                const float *noise, float *x);

/* ------------------------------------------------------------------ 5. files: safetensors */
/* The safetensors format (8-byte little-endian header length, a JSON header naming each
 * tensor's dtype, shape and byte range, then the data). Reading maps the file and checks
 * every entry (known dtype, byte count = elements × size, ranges inside the file, no
 * overlaps or holes); errors name the file and the tensor. */
typedef enum sadm_dtype {
    SADM_DTYPE_F32 = 0,
    SADM_DTYPE_F16,
    SADM_DTYPE_BF16,
    SADM_DTYPE_F64,
    SADM_DTYPE_I64,
    SADM_DTYPE_I32,
    SADM_DTYPE_I16,
    SADM_DTYPE_I8,
    SADM_DTYPE_U8,
    SADM_DTYPE_BOOL
} sadm_dtype;
#define SADM_MAX_DIMS 8

typedef struct sadm_tensor_info {
    const char *name;
    sadm_dtype dtype;
    int ndim;
    int64_t shape[SADM_MAX_DIMS];
    size_t numel;
    size_t nbytes;
    const void *data; /* inside the mapped file, valid until sadm_st_close; may be unaligned
                       * (files from other writers): copy before reading multi-byte values */
} sadm_tensor_info;

const char *sadm_dtype_name(sadm_dtype dtype); /* "F32", ... as in the file */
size_t sadm_dtype_size(sadm_dtype dtype);

/* ------------------------------------------------------------------ backends */
/* Where models compute. "cpu" is always built; "cuda" is a module loaded at run time
 * (not built yet). Every model is written once against a backend's operator table
 * (lib/backend.h); memory a model gets from its backend (parameters, gradients, moments,
 * activations) is that backend's memory, read and written on the host only through
 * sadm_backend_upload/download. On the CPU backend it is host memory. */
typedef struct sadm_backend sadm_backend;

/* Training precision, recorded in checkpoints. */
typedef enum sadm_precision { SADM_PRECISION_FP32 = 0, SADM_PRECISION_BF16 = 1 } sadm_precision;
const char *sadm_precision_name(sadm_precision p); /* "fp32", "bf16" */
sadm_status sadm_precision_parse(const char *name, sadm_precision *out);

/* The backends this library knows, in order of preference for "auto" (last = "cpu"). */
size_t sadm_backend_count(void);
const char *sadm_backend_name_at(size_t i);
/* 1 when the named backend can be used here; otherwise 0 and *why (may be NULL) says why. */
int sadm_backend_available(const char *name, const char **why);
/* The backend for a device name: "auto", "cpu" or "cuda"; NULL means $SADM_DEVICE, else
 * "auto". "auto" takes the first available and, when that is not the first one, sets
 * *note (may be NULL; "" otherwise) to one line saying which was skipped and why.
 * Unknown names and unavailable backends are errors naming the value and the choices. */
sadm_status sadm_backend_select(const char *name, sadm_backend **out, const char **note);
sadm_backend *sadm_backend_cpu(void);
const char *sadm_backend_name(const sadm_backend *be);
/* A precision by name for backend be: "fp32", "bf16", or "auto" = bf16 where the backend
 * multiplies bf16 natively (on the CPU: the avx512bf16 kernel set is active), else fp32.
 * *why (may be NULL) gets one line saying what auto chose and why. */
sadm_status sadm_precision_choose(const char *name, const sadm_backend *be, sadm_precision *out, const char **why);
/* SADM_OK when the backend trains in this precision; else an error naming the choices. */
sadm_status sadm_backend_check_precision(const sadm_backend *be, sadm_precision precision);
/* Copies between host memory and memory of the backend. */
sadm_status sadm_backend_upload(sadm_backend *be, void *dst, const void *host_src, size_t bytes);
sadm_status sadm_backend_download(sadm_backend *be, void *host_dst, const void *src, size_t bytes);

typedef struct sadm_st_file sadm_st_file;
/* Files are written atomically (a temporary "<path>.tmp.<pid>" beside the target, then a
 * rename). This removes such temporaries of processes that no longer exist, as a kill -9
 * during a write leaves them; every atomic write of a path does it too. */
void sadm_remove_stale_temporaries(const char *path);

sadm_status sadm_st_open(const char *path, sadm_st_file **out);
void sadm_st_close(sadm_st_file *f);
size_t sadm_st_count(const sadm_st_file *f);
const sadm_tensor_info *sadm_st_tensor(const sadm_st_file *f, size_t i); /* in file order */
const sadm_tensor_info *sadm_st_find(const sadm_st_file *f, const char *name); /* NULL if absent */
/* Value of a "__metadata__" key, or NULL. */
const char *sadm_st_metadata(const sadm_st_file *f, const char *key);
/* Copies tensor `name` into dst as float32, converting from F32, F16, BF16 or F64. When
 * shape != NULL the tensor must have exactly that shape (ndim dimensions). */
sadm_status sadm_st_read_f32(const sadm_st_file *f, const char *name, int ndim, const int64_t *shape, float *dst);

/* Writing: add tensors (the data is referenced, not copied, until save) and metadata,
 * then save. Saving is atomic: a temporary file in the same folder, fsync, rename, fsync
 * of the folder — a crash leaves either the old file or the complete new one. */
typedef struct sadm_st_writer sadm_st_writer;
sadm_st_writer *sadm_st_writer_new(void);
sadm_status sadm_st_writer_add(sadm_st_writer *w, const char *name, sadm_dtype dtype, int ndim,
                               const int64_t *shape, const void *data);
sadm_status sadm_st_writer_metadata(sadm_st_writer *w, const char *key, const char *value);
sadm_status sadm_st_writer_save(sadm_st_writer *w, const char *path);
void sadm_st_writer_free(sadm_st_writer *w);

/* NumPy .npz files (ADM's reference batches and statistics): a zip of .npy members,
 * stored or deflated, zip64 sizes understood. Arrays are named without ".npy"
 * ("arr_0", "mu", "sigma", ...); only C-order little-endian arrays. Rows (the first
 * dimension) can be read a block at a time, so a large image batch is streamed; for a
 * deflated member, blocks should be read in increasing order (going back restarts the
 * inflation). Reading a whole array also checks its CRC-32. */
typedef struct sadm_npz sadm_npz;
sadm_status sadm_npz_open(const char *path, sadm_npz **out);
void sadm_npz_close(sadm_npz *z);
size_t sadm_npz_count(const sadm_npz *z);
const char *sadm_npz_name(const sadm_npz *z, size_t i);
/* dtype, ndim and shape (SADM_MAX_DIMS entries) of an array; an error names a missing one. */
sadm_status sadm_npz_info(sadm_npz *z, const char *name, sadm_dtype *dtype, int *ndim, int64_t *shape);
sadm_status sadm_npz_read(sadm_npz *z, const char *name, void *dst);
sadm_status sadm_npz_read_rows(sadm_npz *z, const char *name, int64_t row0, int64_t nrows, void *dst);
/* Writes arrays as an uncompressed .npz (as np.savez), atomically; members and offsets from
 * 4 GiB on in zip64 form (as Python's zipfile writes them), e.g. 50k samples at 256x256. */
typedef struct sadm_npz_array {
    const char *name;
    sadm_dtype dtype;
    int ndim;
    int64_t shape[SADM_MAX_DIMS];
    const void *data;
} sadm_npz_array;
sadm_status sadm_npz_write(const char *path, size_t count, const sadm_npz_array *arrays);
/* One array written as it is made, block_rows rows at a time (produce fills rows [row0,
 * row0 + nrows) into dst), so that it need not fit in memory: 50k samples at 512x512 are
 * 39 GB. a->data is ignored. The same bytes as sadm_npz_write; atomic as well: an error of
 * produce stops the writing, leaves no file and is returned with its message. */
typedef sadm_status (*sadm_npz_rows_fn)(void *ctx, int64_t row0, int64_t nrows, void *dst);
sadm_status sadm_npz_write_rows(const char *path, const sadm_npz_array *a, int64_t block_rows, sadm_npz_rows_fn produce,
                                void *ctx);

/* ------------------------------------------------------------------ 6. models */
/* A model's parameters live in one float allocation; a table of named views (the names
 * of the public PyTorch state dict) points into it. Gradients, optimiser moments and the
 * EMA use the same layout, so each of those is one loop over `total` floats. */
typedef struct sadm_param {
    const char *name;
    int ndim;
    int64_t shape[4];
    size_t offset; /* in floats, into the model's parameter block */
    size_t numel;
    int trainable; /* 0 for fixed tensors such as DiT's pos_embed */
} sadm_param;

/* DiT (Peebles & Xie 2023) with the constructor arguments of facebookresearch/DiT. */
typedef struct sadm_dit_config {
    int input_size, patch_size, in_channels, hidden_size, depth, num_heads;
    float mlp_ratio, class_dropout_prob;
    int num_classes, learn_sigma;
} sadm_dit_config;

/* Fills cfg from a name "DiT-S/2" .. "DiT-XL/8" plus the data's size, channels and
 * classes (mlp_ratio 4, class dropout 0.1, learn_sigma 1). */
sadm_status sadm_dit_config_named(const char *name, int input_size, int in_channels, int num_classes,
                                  sadm_dit_config *cfg);
sadm_status sadm_dit_config_check(const sadm_dit_config *cfg);
/* Number of parameters (floats) of a valid config, computed before anything is built. */
uint64_t sadm_dit_config_param_count(const sadm_dit_config *cfg);

typedef struct sadm_dit sadm_dit;
/* Allocates a model with DiT's initialisation drawn from `seed`. */
sadm_status sadm_dit_create(const sadm_dit_config *cfg, uint64_t seed, sadm_dit **out);
void sadm_dit_free(sadm_dit *m);
const sadm_dit_config *sadm_dit_get_config(const sadm_dit *m);
size_t sadm_dit_num_params(const sadm_dit *m);            /* entries of the table */
const sadm_param *sadm_dit_param(const sadm_dit *m, size_t i);
float *sadm_dit_param_data(sadm_dit *m);                   /* the parameter block */
size_t sadm_dit_param_total(const sadm_dit *m);             /* floats in it */
int sadm_dit_out_channels(const sadm_dit *m);

/* Model files: safetensors with the DiT names and the constructor arguments as
 * __metadata__. Loading takes the config from the metadata, or from `fallback` when the
 * file has none (e.g. a converted official checkpoint); every tensor is checked against
 * the config's shapes. */
sadm_status sadm_dit_save(const sadm_dit *m, const char *path);
/* The same with the weights stored as F32, F16 or BF16 (rounded to nearest even; loading
 * converts back to float32): a half-size file for shipping or sharing. */
sadm_status sadm_dit_save_as(const sadm_dit *m, const char *path, sadm_dtype dtype);
sadm_status sadm_dit_load(const char *path, const sadm_dit_config *fallback, sadm_dit **out);
/* A model is created and loaded on the CPU backend; this moves its parameters and
 * gradients to another (the activations come back there at the next forward).
 * From then on sadm_dit_param_data/grad_data point into that backend's memory: read
 * them with sadm_dit_params_download or sadm_backend_download. */
sadm_status sadm_dit_to_backend(sadm_dit *m, sadm_backend *be);
sadm_backend *sadm_dit_backend(const sadm_dit *m);
/* The precision of the model's products (default fp32): with bf16 every linear layer and
 * attention product takes bf16 inputs with fp32 sums (sadm_matmul_bf16); parameters,
 * activations, statistics and gradients stay fp32. An error when the model's backend
 * does not run it. A setting of the object, never stored in its files. */
sadm_status sadm_dit_set_precision(sadm_dit *m, sadm_precision precision);
sadm_precision sadm_dit_precision(const sadm_dit *m);
sadm_status sadm_dit_params_download(const sadm_dit *m, float *dst); /* sadm_dit_param_total floats */
sadm_status sadm_dit_params_upload(sadm_dit *m, const float *src);

/* Forward pass: x (N, C, H, W), t (N) timesteps, y (N) labels in [0, num_classes]
 * (num_classes = the null class when class dropout > 0); out (N, C_out, H, W). Labels are
 * used as given (no dropout). Keeps the activations a backward pass will need. */
sadm_status sadm_dit_forward(sadm_dit *m, int N, const float *x, const float *t, const int64_t *y, float *out);
/* The same output, keeping no training activations (memory independent of depth); a
 * backward cannot follow it. */
sadm_status sadm_dit_forward_inference(sadm_dit *m, int N, const float *x, const float *t, const int64_t *y, float *out);
/* Bytes of the activation arena as last sized. */
size_t sadm_dit_activation_bytes(const sadm_dit *m);
/* Gradients of the parameters, in the parameter block's layout (allocated at first use;
 * NULL when out of memory). pos_embed is fixed: its gradient stays zero. */
float *sadm_dit_grad_data(sadm_dit *m);
sadm_status sadm_dit_zero_grad(sadm_dit *m);
/* Backward of the last sadm_dit_forward: given dout = dL/d(out) (N, C_out, H, W), adds
 * dL/d(parameters) to the gradient block and, when dx != NULL, dL/dx to dx. */
sadm_status sadm_dit_backward(sadm_dit *m, const float *dout, float *dx);

/* Structure encoder E_phi of SADM's structure discriminator: a small ViT on inputs of the
 * denoiser's shape — patch embedding (conv p×p stride p) + fixed 2-D sin-cos position
 * embedding, `depth` pre-LN blocks (affine LayerNorm eps 1e-6, multi-head attention with
 * packed qkv, MLP with GELU-tanh), a final affine LayerNorm, the mean over tokens, a
 * Linear head to embed_dim, then L2 normalisation z = h / max(|h|, 1e-12). Parameter
 * names as timm's ViT: x_embedder.proj.*, pos_embed, blocks.{i}.norm1.*, .attn.qkv.*,
 * .attn.proj.*, .norm2.*, .mlp.fc1.*, .mlp.fc2.*, norm.*, head.*. */
typedef struct sadm_encoder_config {
    int input_size, patch_size, in_channels, hidden_size, depth, num_heads;
    float mlp_ratio;
    int embed_dim;
} sadm_encoder_config;
sadm_status sadm_encoder_config_check(const sadm_encoder_config *cfg);
/* Number of parameters (floats) of a valid config, computed before anything is built. */
uint64_t sadm_encoder_config_param_count(const sadm_encoder_config *cfg);

typedef struct sadm_encoder sadm_encoder;
/* A fresh encoder initialised like a ViT: xavier-uniform linears (the patch embedding on
 * its flattened weight) and head, zero biases, LayerNorm weight 1 / bias 0. */
sadm_status sadm_encoder_create(const sadm_encoder_config *cfg, uint64_t seed, sadm_encoder **out);
/* The same initialisation over an existing encoder's weights (on its backend). */
sadm_status sadm_encoder_reinitialise(sadm_encoder *e, uint64_t seed);
/* The seed of the fresh encoder number k (0: the first, k >= 1: the k-th restart) of a
 * training run with this seed; distinct from the DiT's, which uses the run seed itself. */
uint64_t sadm_encoder_run_seed(uint64_t run_seed, long k);
void sadm_encoder_free(sadm_encoder *e);
const sadm_encoder_config *sadm_encoder_get_config(const sadm_encoder *e);
size_t sadm_encoder_num_params(const sadm_encoder *e);
const sadm_param *sadm_encoder_param(const sadm_encoder *e, size_t i);
float *sadm_encoder_param_data(sadm_encoder *e);
size_t sadm_encoder_param_total(const sadm_encoder *e);
float *sadm_encoder_grad_data(sadm_encoder *e); /* allocated at first use; NULL when out of memory */
sadm_status sadm_encoder_zero_grad(sadm_encoder *e);
/* Encoder files: the tensors above plus the config as __metadata__ (input_size,
 * patch_size, in_channels, hidden_size, depth, num_heads, mlp_ratio, embed_dim). */
sadm_status sadm_encoder_save(const sadm_encoder *e, const char *path);
sadm_status sadm_encoder_load(const char *path, sadm_encoder **out);
/* As sadm_dit_to_backend: parameters and gradients move to `be`. */
sadm_status sadm_encoder_to_backend(sadm_encoder *e, sadm_backend *be);
sadm_backend *sadm_encoder_backend(const sadm_encoder *e);
/* As sadm_dit_set_precision. */
sadm_status sadm_encoder_set_precision(sadm_encoder *e, sadm_precision precision);
/* z (N, embed_dim), rows of unit length, for x (N, C, H, W). Keeps the activations of
 * this batch for one backward. */
sadm_status sadm_encoder_forward(sadm_encoder *e, int N, const float *x, float *z);
/* Backward of the last forward, given dz = dL/dz: adds dL/d(parameters) to the gradient
 * block when param_grads, and dL/dx to dx when dx != NULL. */
sadm_status sadm_encoder_backward(sadm_encoder *e, const float *dz, float *dx, int param_grads);

/* The FID Inception-v3 of pytorch-fid (torchvision's Inception3 with FIDInceptionA/C/E
 * blocks, 1008 classes) and the ADM evaluation suite, forward only. Weights: a
 * safetensors file with torchvision's names (Conv2d_1a_3x3.conv.weight,
 * Mixed_5b.branch1x1.bn.running_mean, ..., fc.weight); BatchNorm (eps 1e-3) is folded
 * into the convolutions at load time. Input modes: SADM_FID_ADM (TensorFlow-1 bilinear
 * resize to 299×299 without half-pixel centres, then (x - 128) / 128, as ADM's evaluator
 * whose numbers DiT and SADM report) and SADM_FID_PYTORCH (F.interpolate bilinear,
 * align_corners False, then 2x - 1 for x in [0, 1], as pytorch-fid). */
typedef enum sadm_fid_mode { SADM_FID_ADM = 0, SADM_FID_PYTORCH = 1 } sadm_fid_mode;
#define SADM_FID_SIZE 299
/* Images (N, H, W, 3) uint8 to the network's SADM_FID_SIZE² × 3 input in [-1, 1] (NHWC):
 * ADM's TensorFlow-1 bilinear resize with (x - 128) / 128, or pytorch-fid's
 * F.interpolate (align_corners False) with 2 x / 255 - 1. */
sadm_status sadm_fid_resize(sadm_fid_mode mode, int N, int H, int W, const uint8_t *images, float *x);
const char *sadm_fid_mode_name(sadm_fid_mode mode); /* "adm", "pytorch-fid" */
typedef struct sadm_inception sadm_inception;
sadm_status sadm_inception_load(const char *path, sadm_inception **out);
void sadm_inception_free(sadm_inception *m);
/* Loaded on the CPU backend; this moves the folded weights to another (drop the model on
 * failure). Features take and return host memory whatever the backend. */
sadm_status sadm_inception_to_backend(sadm_inception *m, sadm_backend *be);
sadm_backend *sadm_inception_backend(const sadm_inception *m);
/* images (N, H, W, 3) uint8 -> pool (N, 2048) average-pool features, logits (N, 1008), and
 * spatial (N, 2023): ADM's sFID features "mixed_6/conv", i.e. (as far as we know) the
 * ReLU output of the 1×1 branch of the block torchvision calls Mixed_6d, first 7 of its
 * channels, 17×17, flattened in TensorFlow's (h, w, c) order. Any output may be NULL. */
sadm_status sadm_inception_features(sadm_inception *m, sadm_fid_mode mode, int N, int H, int W, const uint8_t *images,
                                    float *pool, float *logits, float *spatial);

/* The SD VAE: diffusers' AutoencoderKL (the KL-f8 VAE of Stable Diffusion that DiT trains
 * on), for inference. The config is diffusers' config.json; the default is sd-vae-ft-ema/
 * -mse's: 3 -> 4 latent channels, blocks 128/256/512/512, 2 layers per block, 32 groups,
 * scaling factor 0.18215 (which encode and decode do not apply: latents are unscaled). */
#define SADM_VAE_MAX_BLOCKS 8
typedef struct sadm_vae_config {
    int in_channels, out_channels, latent_channels;
    int num_blocks;
    int block_out_channels[SADM_VAE_MAX_BLOCKS];
    int layers_per_block, norm_num_groups;
    float scaling_factor;
    int mid_attention;               /* mid_block_add_attention */
    int quant_conv, post_quant_conv; /* use_quant_conv, use_post_quant_conv */
} sadm_vae_config;
void sadm_vae_config_default(sadm_vae_config *c);
sadm_status sadm_vae_config_check(const sadm_vae_config *c);
/* config.json's text; `where` names it in errors. Absent keys take diffusers' defaults;
 * other block types, activations or a shift_factor are refused. */
sadm_status sadm_vae_config_from_json(const char *text, const char *where, sadm_vae_config *c);
/* Pixels per latent position a side: 2^(num_blocks - 1), 8 for the SD VAE. */
int sadm_vae_factor(const sadm_vae_config *c);

typedef struct sadm_vae sadm_vae;
/* All weights zero (tests fill them through sadm_vae_param_data). */
sadm_status sadm_vae_create(const sadm_vae_config *cfg, sadm_vae **out);
/* A diffusers AutoencoderKL folder (config.json + diffusion_pytorch_model.safetensors, or
 * a pipeline folder with vae/), or one safetensors file with config.json's text as
 * __metadata__ "config". Both attention namings diffusers has used are read (to_q/to_k/
 * to_v/to_out.0 and the older query/key/value/proj_attn, also as 1x1 convolutions); a
 * tensor missing, of another shape, or not of this architecture is an error naming it. */
sadm_status sadm_vae_load(const char *path, sadm_vae **out);
void sadm_vae_free(sadm_vae *v);
const sadm_vae_config *sadm_vae_get_config(const sadm_vae *v);
size_t sadm_vae_num_params(const sadm_vae *v);
const sadm_param *sadm_vae_param(const sadm_vae *v, size_t i); /* diffusers' names */
float *sadm_vae_param_data(sadm_vae *v); /* NULL when the VAE is on a backend without host memory */
size_t sadm_vae_param_total(const sadm_vae *v);
sadm_status sadm_vae_to_backend(sadm_vae *v, sadm_backend *be);
/* x (N, in_channels, H, W) in [-1, 1], H and W multiples of the factor f -> the posterior's
 * mean and log-variance (N, latent_channels, H/f, W/f) each (either may be NULL), the
 * log-variance clamped to [-30, 20] as diffusers does. Host memory. */
sadm_status sadm_vae_encode(sadm_vae *v, int N, int H, int W, const float *x, float *mean, float *logvar);
/* z (N, latent_channels, h, w), unscaled -> x (N, out_channels, h f, w f). Host memory. */
sadm_status sadm_vae_decode(sadm_vae *v, int N, int h, int w, const float *z, float *x);

/* ------------------------------------------------------------------ 7. Gaussian diffusion */
/* As the ADM / improved-DDPM code that DiT uses: all schedule quantities in double, each
 * cast to float where it meets a tensor. Schedules: "linear" (1e-4 .. 0.02, scaled by
 * 1000/steps) and "cosine" (squaredcos_cap_v2). Prediction target: epsilon. */
typedef struct sadm_diffusion sadm_diffusion;
sadm_status sadm_diffusion_create(const char *schedule, int steps, sadm_diffusion **out);
void sadm_diffusion_free(sadm_diffusion *d);
int sadm_diffusion_steps(const sadm_diffusion *d);
/* Schedule arrays (steps entries each), by name: "betas", "alphas_cumprod",
 * "alphas_cumprod_prev", "sqrt_alphas_cumprod", "sqrt_one_minus_alphas_cumprod",
 * "sqrt_recip_alphas_cumprod", "sqrt_recipm1_alphas_cumprod", "posterior_variance",
 * "posterior_log_variance_clipped", "posterior_mean_coef1", "posterior_mean_coef2";
 * NULL for an unknown name. */
const double *sadm_diffusion_array(const sadm_diffusion *d, const char *name);

/* A respaced diffusion as improved-DDPM's SpacedDiffusion: keeps the timesteps that `spec`
 * selects from a `steps`-step base — "250" (evenly spread), "10,10,5" (sections),
 * "ddim25" (a stride giving exactly 25) — and recomputes the betas between them so that
 * the kept alphas_cumprod are the base's. timestep_map (count entries) gives the base
 * timestep of each kept step, which is what the model is called with. */
sadm_status sadm_diffusion_respaced(const char *schedule, int steps, const char *spec, sadm_diffusion **out);
/* Base timestep of each step (identity for an unspaced diffusion). */
const int64_t *sadm_diffusion_timestep_map(const sadm_diffusion *d);

/* x_t = sqrt(abar_t) x0 + sqrt(1 - abar_t) noise, per sample of `per_sample` floats. */
sadm_status sadm_q_sample(const sadm_diffusion *d, int N, size_t per_sample, const float *x0, const int64_t *t,
                          const float *noise, float *xt);

/* x̂0 = sqrt(1/abar_t) x_t - sqrt(1/abar_t - 1) eps per sample (per floats each; eps rows
 * eps_stride apart, e.g. the first channels of a learn_sigma output), the coefficients
 * cast to float as ADM's _extract_into_tensor does; and its gradient back to eps:
 * deps -= sqrt(1/abar_t - 1) dx0. */
sadm_status sadm_predict_x0(const sadm_diffusion *d, int N, size_t per, size_t eps_stride, const float *xt,
                            const int64_t *t, const float *eps, float *x0);
sadm_status sadm_x0_grad_to_eps(const sadm_diffusion *d, int N, size_t per, size_t eps_stride, const int64_t *t,
                                const float *dx0, float *deps);

/* The training loss of GaussianDiffusion.training_losses (loss type MSE): for each sample
 * mse = mean((noise - eps)^2) over its C×HW values; with learn_sigma (model_out has 2C
 * channels, the second half the learned-range variance) also vb = the KL of the true
 * posterior vs the model's in bits per dimension (discretised-Gaussian NLL at t = 0),
 * computed with eps detached; loss = mse + vb. Writes loss, mse, vb (N each; any may be
 * NULL) and, when dout != NULL, dout += d(mean_n loss_n) / d(model_out). */
sadm_status sadm_diffusion_loss(const sadm_diffusion *d, int N, int C, size_t HW, int learn_sigma, const float *x0,
                                const float *xt, const int64_t *t, const float *noise, const float *model_out,
                                float *loss, float *mse, float *vb, float *dout);

/* One batch of DiT's training objective: x_t = q_sample(x0, t, noise), out = DiT(x_t, t, y),
 * the loss terms per sample (any of loss/mse/vb/xt may be NULL), and the gradient of the
 * batch-mean loss added to the model's gradient block. */
sadm_status sadm_dit_loss(sadm_dit *m, const sadm_diffusion *d, int N, const float *x0, const int64_t *t,
                          const int64_t *y, const float *noise, float *loss, float *mse, float *vb, float *xt);

/* ------------------------------------------------------------------ 8. data sets */
typedef struct sadm_dataset sadm_dataset;
/* Fashion-MNIST from IDX files (gzip or plain) in `dir`: NULL means $SADM_FMNIST_DIR, else
 * Debian's dataset-fashion-mnist location. split: "train" (60000) or "test" (10000).
 * Samples come out as 1×32×32 (28×28 padded by 2 with background), scaled to [-1, 1]. */
sadm_status sadm_dataset_fmnist(const char *dir, const char *split, sadm_dataset **out);
/* Samples stored as tensors: a safetensors file with x (N, C, S, S) floating point (model
 * space, e.g. pre-computed VAE latents) and y (N) int64; classes from __metadata__
 * "num_classes" or the largest label + 1. */
sadm_status sadm_dataset_tensors(const char *path, sadm_dataset **out);
/* An image folder in torchvision ImageFolder's layout (root/<class>/..., files .jpg .jpeg .png,
 * classes in sorted order), as DiT trains on ImageNet: each sample decoded when read,
 * prepared with ADM's center_crop_arr to image_size (Pillow-compatible box and bicubic
 * resizing), scaled to [-1, 1]. A file that cannot be decoded gives an error naming it. */
sadm_status sadm_dataset_image_folder(const char *root, int image_size, sadm_dataset **out);
/* The file of sample i of an image folder (NULL for other data sets). */
const char *sadm_dataset_path(const sadm_dataset *d, size_t i);
/* Class k's folder name of an image folder (e.g. an ImageNet wnid); NULL otherwise. */
const char *sadm_dataset_class_name(const sadm_dataset *d, int k);

/* Latent shards (issue 14): an image folder encoded once by the VAE, as fast-DiT's
 * extract_features does, so that training reads latents instead of decoding JPEGs and
 * running the encoder every step. OUT_DIR gets shard-NNNNNN.safetensors files (x (n, C,
 * h, w) = scaling_factor * latent, in F32 or BF16; x_flip the same of the mirrored image
 * when asked; y (n) int64) and manifest.json (the settings, classes, shards and the
 * images that could not be decoded). Shard k holds images [k shard_size, (k+1)
 * shard_size) of the folder's sorted order, less the corrupt ones; each shard is written
 * atomically and names the settings it was made with, so a rerun after a kill keeps the
 * complete shards and redoes the rest, with the same bytes as an uninterrupted run (the
 * latent sample of image i is drawn from Philox stream (seed, 2 i + flipped)). */
typedef struct sadm_encode_config {
    int image_size;     /* ADM's centre crop to this many pixels a side (a multiple of the VAE's factor); 0: 256 */
    int flip;           /* also store the mirrored image's latents as x_flip */
    int posterior_mean; /* 1: the posterior mean; 0 (default): one sample of it, as DiT's train.py and
                         * fast-DiT train on (DiagonalGaussianDistribution.sample) */
    sadm_dtype dtype;   /* SADM_DTYPE_F32 (default) or SADM_DTYPE_BF16 (half the disk, rounded to nearest even) */
    uint64_t seed;      /* of the posterior samples */
    int shard_size;     /* images per shard; 0: 4096 */
    int strict;         /* 1: an image that cannot be decoded is an error; 0: skipped, named and counted */
} sadm_encode_config;
typedef struct sadm_encode_hooks {
    void *ctx;
    /* images handled so far (kept shards included) of total; fresh: of them, read by this call */
    void (*progress)(void *ctx, size_t done, size_t total, size_t fresh);
    void (*skipped)(void *ctx, const char *path, const char *why); /* an image left out */
} sadm_encode_hooks;
typedef struct sadm_encode_report {
    size_t images, encoded, corrupt; /* files found, latents stored, files left out */
    size_t shards, shards_kept;      /* shards in all, shards a previous run had completed */
} sadm_encode_report;
/* hooks and report may be NULL. The VAE's in_channels must be 3. */
sadm_status sadm_encode_image_folder(sadm_vae *v, const char *root, const char *out_dir, const sadm_encode_config *c,
                                     const sadm_encode_hooks *hooks, sadm_encode_report *report);
/* A folder written by sadm_encode_image_folder, for training: the shards are memory-mapped
 * (never read whole), samples are x rows as float; a flipped sample is x_flip where the
 * shards have it, else x mirrored. An unfinished encoding is refused. */
sadm_status sadm_dataset_latents(const char *dir, sadm_dataset **out);
void sadm_dataset_free(sadm_dataset *d);
size_t sadm_dataset_size(const sadm_dataset *d);
int sadm_dataset_channels(const sadm_dataset *d);
int sadm_dataset_image_size(const sadm_dataset *d);
int sadm_dataset_num_classes(const sadm_dataset *d);
/* Sample i: x (C, S, S) floats (images in [-1, 1]; mirrored left-right when flip), y its label. */
sadm_status sadm_dataset_get(const sadm_dataset *d, size_t i, int flip, float *x, int64_t *y);
/* The raw pixels of Fashion-MNIST sample i (H×W uint8 before padding); NULL for other data. */
const uint8_t *sadm_dataset_raw(const sadm_dataset *d, size_t i, int *h, int *w);

/* ------------------------------------------------------------------ 9. training */
/* Plain DiT training as facebookresearch/DiT train.py: uniform timesteps, class dropout
 * for classifier-free guidance, AdamW, EMA (initialised to the weights). Every random
 * choice (data order per epoch, flips, dropout, timesteps, noise) is a counter-based
 * function of (seed, step), so a resumed run equals an uninterrupted one bitwise. */
typedef struct sadm_train_config {
    int batch_size;                     /* default 64 (0 means default) */
    float lr, beta1, beta2, eps, weight_decay; /* DiT: 1e-4, 0.9, 0.999, 1e-8, 0 */
    float ema_decay;                    /* DiT: 0.9999 */
    int ema_warmup;                     /* 1: step s (0-based) uses min(ema_decay, (1+s)/(10+s)), so a short
                                         * run's EMA forgets the initial weights; 0 (DiT): ema_decay always */
    float grad_clip;                    /* max global L2 norm; 0 = off */
    int flip;                           /* random horizontal flips */
    uint64_t seed;
    int diffusion_steps;                /* 1000 */
    char schedule[16];                  /* "linear" */
    sadm_precision precision;           /* fp32 or bf16 (products with bf16 inputs); in checkpoints */
} sadm_train_config;
/* DiT's defaults. */
void sadm_train_config_default(sadm_train_config *cfg);
/* The EMA decay of the update after `step` steps (0-based): ema_decay, or with ema_warmup
 * min(ema_decay, (1 + step) / (10 + step)) computed in double and rounded to float. */
float sadm_ema_decay_at(const sadm_train_config *cfg, long step);

typedef struct sadm_step_stats {
    long step;          /* number of steps done after this one */
    double loss, mse, vb; /* batch means */
    double grad_norm;   /* before clipping */
    /* SADM steps only (0 otherwise): L_struct as the denoiser saw it (after the encoder's
     * update; with lambda 0 the encoder's last value), the cosine spreads, and the norm of
     * the encoder's last gradient */
    double l_struct, real_cos, fake_cos, disc_grad_norm;
    double lambda_eff; /* the lambda of this step (0 in the encoder warm-up) */
    double grad_share; /* the structure gradient's norm over the denoising one's at eps */
    long disc_restarts; /* fresh encoders so far (sadm_sadm_config.disc_restart) */
    int disc_restarted; /* 1 when this step ended with a fresh encoder */
} sadm_step_stats;

typedef struct sadm_trainer sadm_trainer;
/* Takes ownership of the model; the data set must outlive the trainer. */
sadm_status sadm_trainer_create(sadm_dit *model, const sadm_dataset *data, const sadm_train_config *cfg,
                                sadm_trainer **out);
void sadm_trainer_free(sadm_trainer *tr);
/* One optimisation step. A non-finite loss stops with SADM_ERR_NUMERIC before any
 * weight changes, naming the step. */
sadm_status sadm_trainer_step(sadm_trainer *tr, sadm_step_stats *stats);
long sadm_trainer_steps_done(const sadm_trainer *tr);
/* Changes the seed of everything random from the next step on (data order, flips, class
 * dropout, timesteps, noise) — e.g. to fine-tune one checkpoint under several seeds.
 * Checkpoints record the new seed. */
sadm_status sadm_trainer_set_seed(sadm_trainer *tr, uint64_t seed);
/* Another precision for the rest of the run (a checkpoint of either precision resumes in
 * either: its state is fp32); recorded in the next checkpoint. Model and SADM encoder. */
sadm_status sadm_trainer_set_precision(sadm_trainer *tr, sadm_precision precision);
/* The batch the next step will use (after class dropout): pointers into the trainer, valid
 * until its next call. For replaying a run elsewhere, e.g. in PyTorch. */
sadm_status sadm_trainer_next_batch(sadm_trainer *tr, const float **x0, const int64_t **t, const int64_t **y,
                                    const float **noise);
sadm_dit *sadm_trainer_model(sadm_trainer *tr);
const float *sadm_trainer_ema(const sadm_trainer *tr); /* EMA weights, the model's layout, on its backend */
/* Moves the model and the whole training state to another backend (plain DiT training;
 * SADM runs on the CPU backend only so far). The trainer's model must not be moved
 * behind its back: use this instead of sadm_dit_to_backend once a trainer holds it. */
sadm_status sadm_trainer_to_backend(sadm_trainer *tr, sadm_backend *be);
const sadm_train_config *sadm_trainer_config(const sadm_trainer *tr);
/* Training checkpoint (atomic): weights, EMA, AdamW moments, step and the run's config. */
sadm_status sadm_trainer_save(const sadm_trainer *tr, const char *path);
sadm_status sadm_trainer_load(const char *path, const sadm_dataset *data, sadm_trainer **out);
/* The EMA weights as a model file (what sampling uses). */
sadm_status sadm_trainer_save_ema_model(const sadm_trainer *tr, const char *path);

/* A training run as `sadm train` runs it, for any program: stale temporaries of killed
 * writers removed, the log cut back to the trainer's step (so that a resumed run never
 * logs a step twice), then steps until `steps` are done, with one JSON line per
 * log_every steps (and the last), a checkpoint plus EMA model every checkpoint_every steps
 * and at the end (also when the callback stops the run early). The callback sees every
 * step; a nonzero return stops after that step. Errors name the file; the checkpoint on
 * disk is then the last one written. */
typedef struct sadm_run_config {
    const char *checkpoint; /* training checkpoint (required) */
    const char *ema_model;  /* EMA weights as a model file (NULL: none) */
    const char *log;        /* JSON lines (NULL: none) */
    long steps, log_every, checkpoint_every;
} sadm_run_config;
typedef struct sadm_run_event {
    const sadm_step_stats *stats;
    long total;            /* the run's steps */
    double images_per_s;   /* since the last logged step (0 when this step was not logged) */
    int collapsed;         /* 1 on the step the structure encoder is found collapsed: the mean
                            * cosine of real embeddings above collapse_cos for collapse_steps */
    double collapse_cos;
    long collapse_steps;
} sadm_run_event;
typedef int (*sadm_run_callback)(void *ctx, const sadm_run_event *event);
typedef struct sadm_run_result {
    long steps_done;
    int stopped;              /* the callback stopped the run */
    size_t log_lines_dropped; /* lines after the starting step, cut from the log */
} sadm_run_result;
sadm_status sadm_run(sadm_trainer *tr, const sadm_run_config *cfg, sadm_run_callback cb, void *ctx, sadm_run_result *res);
/* Drops the lines of a JSON-lines log whose "step" is after `step`, and a last line without
 * its newline (atomically; a missing file or a pipe is fine); *dropped (may be NULL) gets
 * how many. */
sadm_status sadm_log_truncate(const char *path, long step, size_t *dropped);
/* The "loss" of every log line against its "step" as an SVG picture (log-scale loss, the
 * raw values and a running mean, the log's last FD_fmnist in the title); atomically. */
sadm_status sadm_write_loss_svg(const char *log_path, const char *svg_path);

/* ------------------------------------------------------------------ 10. sampling */
/* The samplers of improved-DDPM / ADM as DiT uses them, over a (possibly respaced)
 * diffusion: ancestral DDPM with the model's learned-range variance (fixed-large variance
 * for models without learn_sigma), and DDIM with eta. Classifier-free guidance batches the
 * conditional and null-class halves: eps = eps_u + s (eps_c - eps_u) on all eps channels,
 * or only on the first cfg_channels (DiT's sample.py guides 3 of 4 latent channels). */
typedef struct sadm_sample_config {
    int ddim;          /* 0: DDPM, 1: DDIM */
    float eta;         /* DDIM only */
    float cfg_scale;   /* 1: no guidance (the unconditional half is skipped) */
    int cfg_channels;  /* 0: all eps channels */
    int clip_denoised; /* clip the predicted x0 to [-1, 1] */
} sadm_sample_config;
/* N samples for labels y. x_T (N,C,H,W) is the starting noise; step_noise (S,N,C,H,W),
 * one slice per step taken (first step first), or NULL to draw it from `seed`. out gets
 * the final samples. progress (may be NULL) is called after each step. */
sadm_status sadm_dit_sample(sadm_dit *m, const sadm_diffusion *d, const sadm_sample_config *cfg, int N, const int64_t *y,
                            const float *x_T, const float *step_noise, uint64_t seed, float *out,
                            void (*progress)(void *ctx, int done, int total), void *ctx);
/* A DiT from a model file, or from a training checkpoint: its EMA weights when use_ema. */
sadm_status sadm_dit_load_any(const char *path, int use_ema, sadm_dit **out);
/* Images (N, C, H, W) in [-1, 1] (C = 1 or 3) as one PNG grid of `nrow` per row with a
 * 2-pixel black border, as torchvision's save_image(normalize=True, value_range=(-1, 1));
 * written atomically. */
sadm_status sadm_write_png_grid(const char *path, int N, int C, int H, int W, const float *x, int nrow);

/* ------------------------------------------------------------------ 11. SADM */
/* Structure-guided adversarial training (Yang et al., CVPR 2024) as libsadm defines it:
 * fake samples x̂0 = sqrt(1/abar_t) x_t - sqrt(1/abar_t - 1) epŝ (the first C output
 * channels), paired with the real x0; the structure of a batch is S = Z Z^T of its encoder
 * embeddings; the structural distance between real and fake structures is
 *   cosine-mse:  sum_{i!=j} w_i w_j (S^r_ij - S^f_ij)^2 / sum_{i!=j} w_i w_j
 *   softmax-kl:  sum_i w_i KL(P^r_i || P^f_i) / sum_i w_i, P_i = softmax_{j!=i}(S_ij / tau)
 * with w_i = 1 (weighting none), abar_{t_i} (weighting alpha) or [t_i < t_max] (weighting
 * t<N: only the less noisy samples; a batch with no weighted pair has L_struct = 0). The
 * denoiser minimises mean(loss) + lambda L_struct; the encoder maximises L_struct with x̂0
 * detached. Adaptive lambda (grad_ratio > 0; VQGAN balances its GAN term alike): per batch
 * lambda_eff = min(grad_ratio |g_d| / |g_s|, 1e4), g_d and g_s the gradients of mean(loss)
 * and of L_struct with respect to the denoiser's eps output (its first C channels), where
 * the two terms meet; lambda_eff is a constant of the step (no gradient through it).
 * Encoder warm-up (disc_warmup K): during the trainer's first K steps the denoiser trains
 * plainly (lambda 0) while the encoder already learns. */
typedef enum sadm_struct_distance { SADM_DIST_COSINE_MSE = 0, SADM_DIST_SOFTMAX_KL = 1 } sadm_struct_distance;
typedef enum sadm_struct_weighting {
    SADM_WEIGHT_NONE = 0,
    SADM_WEIGHT_ALPHA = 1,
    SADM_WEIGHT_T_BELOW = 2 /* w_i = [t_i < t_max] */
} sadm_struct_weighting;
/* An encoder whose real embeddings have a mean cosine above this is taken as collapsed: its
 * distance and gradient go to 0, so SADM does nothing. */
#define SADM_COLLAPSE_COS 0.99
typedef struct sadm_sadm_config {
    float lambda;                   /* weight of L_struct in the denoiser's loss, >= 0 */
    sadm_struct_distance distance;  /* cosine-mse */
    sadm_struct_weighting weighting;/* none */
    int t_max;                      /* weighting t<N: N, in [1, T) (T: diffusion steps) */
    float grad_ratio;               /* > 0: adaptive lambda (replaces lambda); 0: lambda fixed */
    int disc_warmup;                /* trainer steps with lambda 0 at the start (0) */
    int disc_restart;               /* > 0: a fresh encoder and Adam state after this many steps
                                     * in a row with real_cos > restart_cos (0: never) */
    float restart_cos;              /* the collapse threshold of disc_restart (SADM_COLLAPSE_COS) */
    float tau;                      /* softmax-kl temperature (0.1) */
    int d_steps;                    /* encoder Adam steps per denoiser step (1) */
    float disc_lr, disc_beta1, disc_beta2, disc_eps; /* encoder Adam: 1e-4, 0.9, 0.999, 1e-8 */
} sadm_sadm_config;
void sadm_sadm_config_default(sadm_sadm_config *cfg);
sadm_status sadm_sadm_config_check(const sadm_sadm_config *cfg);
/* "cosine-mse" / "softmax-kl" and "none" / "alpha" / "t<N" (N a decimal integer >= 1, into
 * *t_max); errors list the known names. */
sadm_status sadm_struct_distance_parse(const char *name, sadm_struct_distance *out);
sadm_status sadm_struct_weighting_parse(const char *name, sadm_struct_weighting *out, int *t_max);
const char *sadm_struct_distance_name(sadm_struct_distance d);
const char *sadm_struct_weighting_name(sadm_struct_weighting w); /* "t<N" for t<N */
/* The weighting of a config as sadm_struct_weighting_parse reads it ("t<400"), in buf. */
const char *sadm_sadm_weighting_string(const sadm_sadm_config *c, char *buf, size_t len);
/* sadm_sadm_config_check and the threshold of t<N below T diffusion steps. */
sadm_status sadm_sadm_config_check_steps(const sadm_sadm_config *c, int T);

/* What a structural distance measured: the distance and the mean off-diagonal cosine of
 * each batch (an encoder that maps everything to one point shows real_cos -> 1). */
typedef struct sadm_struct_stats {
    double loss, real_cos, fake_cos;
    double lambda_eff; /* the objective's: the lambda the denoiser's gradient used */
    double grad_share; /* lambda_eff |g_s| / |g_d| at the eps output (adaptive: grad_ratio) */
} sadm_struct_stats;
/* The structural distance of embeddings zr, zf (N, E, unit rows) with per-sample weights
 * w (N; NULL = all 1), computed in double. dzr / dzf (either may be NULL) receive
 * += scale * dL/dz. N must be at least 2 (pairs). */
sadm_status sadm_struct_loss(const sadm_sadm_config *cfg, int N, int E, const float *zr, const float *zf, const float *w,
                             float scale, sadm_struct_stats *stats, float *dzr, float *dzf);
/* The per-sample weights of the structural distance of config c: abar_t (alpha), [t < t_max]
 * (t<N) or 1. */
sadm_status sadm_struct_weights(const sadm_diffusion *d, const sadm_sadm_config *c, int N, const int64_t *t, float *w);

/* One batch of SADM's objectives with the models as given: x_t, DiT(x_t), the diffusion
 * loss terms (loss, mse, vb: N each, any may be NULL), x̂0, and
 *   - the gradient of L_G = mean(loss) + lambda L_struct added to the DiT's gradient block
 *     (the real branch a constant);
 *   - when encoder_grads, the gradient of L_struct (x̂0 detached) added to the encoder's
 *     gradient block.
 * stats gets L_struct and the cosine spreads. */
sadm_status sadm_sadm_loss(sadm_dit *m, sadm_encoder *e, const sadm_diffusion *d, const sadm_sadm_config *cfg, int N,
                           const float *x0, const int64_t *t, const int64_t *y, const float *noise, float *loss,
                           float *mse, float *vb, sadm_struct_stats *stats, int encoder_grads);
/* Turns a trainer's steps into SADM steps: per step one denoiser forward; d_steps Adam
 * steps of the encoder on -L_struct; then the denoiser's AdamW step on L_G with the
 * updated encoder; EMA. The trainer takes ownership of the encoder. Checkpoints then also
 * hold the encoder, its Adam moments and these settings. lambda = 0 leaves the denoiser's
 * updates exactly those of plain training. */
sadm_status sadm_trainer_enable_sadm(sadm_trainer *tr, sadm_encoder *e, const sadm_sadm_config *cfg);
sadm_encoder *sadm_trainer_encoder(sadm_trainer *tr); /* NULL without SADM */
const sadm_sadm_config *sadm_trainer_sadm_config(const sadm_trainer *tr);

/* ------------------------------------------------------------------ 12. evaluation */
/* Streaming mean and covariance of feature vectors (e.g. Inception pool features) in
 * double precision; the covariance is unbiased (n - 1), as numpy.cov(rowvar=False).
 * Non-finite features are refused with the row and column named. */
typedef struct sadm_feature_stats sadm_feature_stats;
sadm_status sadm_feature_stats_create(int dim, sadm_feature_stats **out);
void sadm_feature_stats_free(sadm_feature_stats *s);
/* Adds n rows x (n, dim). */
sadm_status sadm_feature_stats_add(sadm_feature_stats *s, size_t n, const float *x);
size_t sadm_feature_stats_count(const sadm_feature_stats *s);
int sadm_feature_stats_dim(const sadm_feature_stats *s);
/* mu (dim) and sigma (dim × dim, row-major; either may be NULL); needs 2 rows or more. */
sadm_status sadm_feature_stats_get(const sadm_feature_stats *s, double *mu, double *sigma);
/* FID's Fréchet distance |mu1 - mu2|^2 + tr S1 + tr S2 - 2 tr sqrt(S1 S2), the square root
 * through symmetric eigen-decompositions (finite for singular covariances too). */
sadm_status sadm_frechet_distance(int dim, const double *mu1, const double *s1, const double *mu2, const double *s2,
                                  double *out);
/* Inception Score as ADM: softmax of logits (N, classes); per split of split_size samples
 * (ADM: 5000, i.e. 10 splits of 50k) exp(mean KL(p(y|x) || p(y))); the mean over splits. */
sadm_status sadm_inception_score(size_t N, int classes, const float *logits, size_t split_size, double *score);
/* Improved precision and recall (k nearest neighbours; ADM uses k = 3) of sample features
 * against reference features (rows of dim floats). Memory: 256 rows of distances at a time. */
sadm_status sadm_precision_recall(size_t n_ref, const float *ref, size_t n_sample, const float *sample, int dim, int k,
                                  double *precision, double *recall);

/* Image sets for evaluation, read as (n, H, W, 3) uint8 blocks: a folder of JPEG/PNG files
 * (any depth, sorted; all of one size, or an error naming the odd file), an ADM-style
 * .npz (arr_0 uint8 (N, H, W, 3) or grey (N, H, W)), or a .safetensors with samples
 * (N, C, H, W) in [-1, 1] (as `sadm sample --out-tensor` writes; quantised as DiT's
 * sample_ddp.py, uint8(clamp(127.5 x + 128, 0, 255))) or images (N, H, W, 3) uint8. Grey
 * images are replicated to three channels. */
typedef struct sadm_image_source sadm_image_source;
sadm_status sadm_image_source_open(const char *path, sadm_image_source **out);
void sadm_image_source_close(sadm_image_source *s);
size_t sadm_image_source_count(const sadm_image_source *s);
void sadm_image_source_size(const sadm_image_source *s, int *h, int *w);
sadm_status sadm_image_source_read(sadm_image_source *s, size_t i0, size_t n, uint8_t *dst);

/* Inception features of every image of a source: pool (n, 2048), spatial (n, 2023),
 * logits (n, 1008). progress (may be NULL) is called after each batch. */
typedef struct sadm_fid_features {
    size_t n;
    sadm_fid_mode mode;
    float *pool, *spatial, *logits;
} sadm_fid_features;
sadm_status sadm_fid_features_compute(sadm_inception *m, sadm_fid_mode mode, sadm_image_source *src, int batch,
                                      void (*progress)(void *ctx, size_t done, size_t total), void *ctx,
                                      sadm_fid_features *out);
void sadm_fid_features_free(sadm_fid_features *f);


/* ------------------------------------------------------------------ 13. Fashion-MNIST classifier, FD_fmnist */
/* The judge of the embedded default data: a CNN on 32×32 grey images in [-1, 1] (Fashion-
 * MNIST padded as sadm_dataset_fmnist gives it) — conv1 3×3 1→32 pad 1, ReLU, max-pool 2;
 * conv2 3×3 32→64 pad 1, ReLU, max-pool 2; fc1 4096→128, ReLU (the 128 features of
 * FD_fmnist); fc2 128→10. Parameter names as the PyTorch module would have them
 * (conv1.weight, ..., fc2.bias); files carry __metadata__ architecture = fmnist-cnn-v1.
 * The trained weights ship as data/fmnist-classifier.safetensors. */
#define SADM_CLASSIFIER_SIZE 32
#define SADM_CLASSIFIER_FEATURES 128
typedef struct sadm_classifier sadm_classifier;
/* Initialised as PyTorch's Conv2d/Linear: weights and biases uniform in ±1/sqrt(fan_in). */
sadm_status sadm_classifier_create(uint64_t seed, sadm_classifier **out);
void sadm_classifier_free(sadm_classifier *c);
/* As sadm_dit_to_backend: parameters and gradients move; forward/backward/features keep
 * taking host memory, training runs on that backend. */
sadm_status sadm_classifier_to_backend(sadm_classifier *c, sadm_backend *be);
sadm_backend *sadm_classifier_backend(const sadm_classifier *c);
size_t sadm_classifier_num_params(const sadm_classifier *c);
const sadm_param *sadm_classifier_param(const sadm_classifier *c, size_t i);
float *sadm_classifier_param_data(sadm_classifier *c);
size_t sadm_classifier_param_total(const sadm_classifier *c);
float *sadm_classifier_grad_data(sadm_classifier *c); /* allocated at first use */
sadm_status sadm_classifier_zero_grad(sadm_classifier *c);
sadm_status sadm_classifier_save(const sadm_classifier *c, const char *path);
sadm_status sadm_classifier_load(const char *path, sadm_classifier **out);
/* x (N, 1, 32, 32) -> logits (N, 10) and features (N, 128); either may be NULL. Keeps the
 * activations for one backward. */
sadm_status sadm_classifier_forward(sadm_classifier *c, int N, const float *x, float *logits, float *features);
/* Adds d(loss)/d(parameters) to the gradient block, given dlogits of the last forward. */
sadm_status sadm_classifier_backward(sadm_classifier *c, const float *dlogits);

/* Training on a 32×32 one-channel labelled data set: AdamW (betas 0.9/0.999, eps 1e-8)
 * with a cosine learning-rate decay to 0 over the run, mean cross-entropy, the epoch's
 * order and the flips from Philox streams of the seed (deterministic for a seed,
 * independent of the thread count); incomplete last batches are dropped. */
typedef struct sadm_classifier_train_config {
    int epochs;         /* 8 */
    int batch_size;     /* 128 */
    float lr;           /* 1e-3 (peak) */
    float weight_decay; /* 0 */
    int flip;           /* random horizontal flips: 1 */
    uint64_t seed;      /* 0 */
    size_t max_images;  /* train on the first max_images images only (quick checks); 0: all */
} sadm_classifier_train_config;
void sadm_classifier_train_config_default(sadm_classifier_train_config *cfg);
/* progress (may be NULL) after each step with the batch loss; returning nonzero stops the
 * run early with SADM_OK, keeping the weights so far. */
typedef int (*sadm_classifier_progress_fn)(void *ctx, long step, long total, double loss);
sadm_status sadm_classifier_train(sadm_classifier *c, const sadm_dataset *train, const sadm_classifier_train_config *cfg,
                                  sadm_classifier_progress_fn progress, void *ctx);
/* Accuracy (fraction correct, first maximum wins) and mean cross-entropy over a data set;
 * either output may be NULL. */
sadm_status sadm_classifier_evaluate(sadm_classifier *c, const sadm_dataset *d, double *accuracy, double *loss);
/* The same over the first n images only. */
sadm_status sadm_classifier_evaluate_first(sadm_classifier *c, const sadm_dataset *d, size_t n, double *accuracy,
                                           double *loss);
/* The same with progress (may be NULL) after each batch: images done of min(n, size). */
sadm_status sadm_classifier_evaluate_progress(sadm_classifier *c, const sadm_dataset *d, size_t n, double *accuracy,
                                              double *loss, void (*progress)(void *ctx, size_t done, size_t total),
                                              void *ctx);

/* Classifier features of images for FD_fmnist, all through 8-bit pixels so that samples
 * and real images are judged alike: `images` (N, H, W, 3) uint8 with H = W = 28 (zero-
 * padded to 32, as the data set) or 32, grey taken as the mean of the three channels. */
sadm_status sadm_classifier_features_u8(sadm_classifier *c, int N, int H, int W, const uint8_t *images, float *features);
/* Samples (N, 1, 32, 32) in [-1, 1], quantised as sadm_image_source does (DiT's
 * sample_ddp.py), then as above. */
sadm_status sadm_classifier_features_samples(sadm_classifier *c, int N, const float *x, float *features);
/* Feature statistics of every image of a 32×32 one-channel data set (the 10k test
 * images for FD_fmnist); stats must have dimension SADM_CLASSIFIER_FEATURES. */
sadm_status sadm_classifier_dataset_stats(sadm_classifier *c, const sadm_dataset *d, sadm_feature_stats *stats);
/* The same over the first n images only. */
sadm_status sadm_classifier_dataset_stats_first(sadm_classifier *c, const sadm_dataset *d, size_t n,
                                                sadm_feature_stats *stats);

/* The features (min(n, size) rows of SADM_CLASSIFIER_FEATURES) of the first n images of a
 * 32×32 one-channel data set, e.g. for precision and recall against samples. */
sadm_status sadm_classifier_dataset_features_first(sadm_classifier *c, const sadm_dataset *d, size_t n, float *features);

/* FD_fmnist of a class-conditional DiT on 32×32 one-channel data: `samples` samples with
 * balanced labels (i mod num_classes), DDIM (eta 0) over `steps` respaced steps of the
 * model's 1000-step linear schedule, x0 clipped, guidance cfg_scale (1: none); their
 * classifier features (through 8-bit pixels) against the reference statistics mu_ref
 * (128), sigma_ref (128×128), e.g. of the 10k test images. The noise comes from `seed`.
 * progress (may be NULL) after each batch. */
typedef struct sadm_fd_fmnist_config {
    int samples;     /* 1000 */
    int steps;       /* 25 */
    float cfg_scale; /* 1 */
    int batch;       /* 100 */
    uint64_t seed;   /* 0 */
} sadm_fd_fmnist_config;
void sadm_fd_fmnist_config_default(sadm_fd_fmnist_config *cfg);
/* Feature statistics (mu 128, sigma 128x128) of the first `first` images ((size_t)-1: all)
 * of a Fashion-MNIST split ("train" or "test"; data_dir NULL: the embedded copy); *count
 * (may be NULL) gets how many images that was. */
sadm_status sadm_fmnist_split_stats(sadm_classifier *c, const char *data_dir, const char *split, size_t first, double *mu,
                                    double *sigma, size_t *count);
sadm_status sadm_fd_fmnist(sadm_dit *m, sadm_classifier *c, const double *mu_ref, const double *sigma_ref,
                           const sadm_fd_fmnist_config *cfg, void (*progress)(void *ctx, int done, int total), void *ctx,
                           double *fd);

#ifdef __cplusplus
}
#endif
#endif /* SADM_H */
