/* Every entry of the backend operator table (lib/backend.h), forward and backward, on every
 * backend this build has (the CPU and the mock of tests/mock_backend.h; the CUDA module
 * when it exists) under every kernel set, against the CPU backend with the scalar kernels
 * (the specification), on awkward sizes. Inputs are uploaded, the entry runs on the
 * backend, every buffer is downloaded and compared by its normalised error
 *     e = sum (a - b)^2 / sum b^2
 * against a per-operator threshold. The shape of ggml's test-backend-ops; the file the
 * CUDA backend is to be tested by. A final check proves that every entry of the table was
 * called (through the mock's per-entry counters). */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../lib/backend.h"
#include "mock_backend.h"
#include "testutil.h"

enum { F32 = 0, I64 = 1, U8 = 2 };
enum { ZERO, UNIFORM, POSITIVE, INDEX, TIMESTEP };

typedef struct buf_spec {
    size_t n;
    int type, init;
    int64_t k; /* INDEX: values in [0, k) */
} buf_spec;

#define MAX_BUFS 12
#define MAX_HOST 8

typedef sadm_status (*case_fn)(const sadm_ops *o, void **p, double *host);

typedef struct op_case {
    const char *name;
    double tol; /* the largest normalised error allowed */
    case_fn call;
    int nb;
    buf_spec b[MAX_BUFS];
    int nhost; /* host results (double) compared as well */
} op_case;

static sadm_diffusion *diffusion;

/* ------------------------------------------------------------------ the cases */
#define F(i) ((float *)p[i])
#define L(i) ((int64_t *)p[i])
#define U(n) {(n), F32, UNIFORM, 0}
#define P(n) {(n), F32, POSITIVE, 0}
#define Z(n) {(n), F32, ZERO, 0}
#define IX(n, k) {(n), I64, INDEX, (k)}
#define BYTES(n) {(n), U8, INDEX, 256}

/* matmul: every transpose combination, beta 0.5, with and without bias */
enum { MM_M = 19, MM_N = 23, MM_K = 37 };
static sadm_status c_matmul(const sadm_ops *o, void **p, double *h) {
    (void)h;
    for (int ta = 0; ta < 2; ta++)
        for (int tb = 0; tb < 2; tb++)
            SADM_TRY(o->matmul((sadm_transpose)ta, (sadm_transpose)tb, MM_M, MM_N, MM_K, 0.75f, F(0), F(1), 0.5f,
                               F(3 + 2 * ta + tb), (ta ^ tb) ? F(2) : NULL));
    return SADM_OK;
}
static sadm_status c_matmul_batched(const sadm_ops *o, void **p, double *h) {
    (void)h;
    return o->matmul_batched(SADM_NO_TRANS, SADM_TRANS, 7, 11, 13, 1.0f, F(0), 7 * 13, F(1), 11 * 13, 0.0f, F(2), 7 * 11, 3);
}
enum { LM = 29, LK = 33, LN = 17 };
static sadm_status c_linear_forward(const sadm_ops *o, void **p, double *h) {
    (void)h;
    SADM_TRY(o->linear_forward(LM, LK, LN, F(0), F(1), F(2), F(3)));
    return o->linear_forward(LM, LK, LN, F(0), F(1), NULL, F(4));
}
static sadm_status c_linear_forward_bf16(const sadm_ops *o, void **p, double *h) {
    (void)h;
    SADM_TRY(o->linear_forward_bf16(LM, LK, LN, F(0), F(1), F(2), F(3)));
    return o->linear_forward_bf16(LM, LK, LN, F(0), F(1), NULL, F(4));
}
static sadm_status c_linear_backward_bf16(const sadm_ops *o, void **p, double *h) {
    (void)h;
    return o->linear_backward_bf16(LM, LK, LN, F(0), F(1), F(2), F(3), F(4), F(5));
}
static sadm_status c_linear_backward(const sadm_ops *o, void **p, double *h) {
    (void)h;
    return o->linear_backward(LM, LK, LN, F(0), F(1), F(2), F(3), F(4), F(5));
}
enum { LNR = 13, LNC = 67 };
static sadm_status c_layernorm_forward(const sadm_ops *o, void **p, double *h) {
    (void)h;
    SADM_TRY(o->layernorm_forward(LNR, LNC, F(0), F(1), F(2), 1e-5f, F(3), F(4), F(5)));
    return o->layernorm_forward(LNR, LNC, F(0), NULL, NULL, 1e-6f, F(6), NULL, NULL);
}
static sadm_status c_layernorm_backward(const sadm_ops *o, void **p, double *h) {
    (void)h;
    SADM_TRY(o->layernorm_forward(LNR, LNC, F(0), F(1), F(2), 1e-5f, F(3), F(4), F(5)));
    SADM_TRY(o->layernorm_backward(LNR, LNC, F(0), F(1), F(4), F(5), F(6), F(7), F(8), F(9)));
    return o->layernorm_backward(LNR, LNC, F(0), NULL, F(4), F(5), F(6), F(10), NULL, NULL);
}
enum { GNN = 2, GNC = 12, GNHW = 37, GNG = 4, GNX = GNN * GNC * GNHW };
static sadm_status c_group_norm_forward(const sadm_ops *o, void **p, double *h) {
    (void)h;
    SADM_TRY(o->group_norm_forward(GNN, GNC, GNHW, GNG, F(0), F(1), F(2), 1e-6f, F(3), F(4), F(5)));
    return o->group_norm_forward(GNN, GNC, GNHW, GNG, F(0), NULL, NULL, 1e-5f, F(6), NULL, NULL);
}
static sadm_status c_group_norm_backward(const sadm_ops *o, void **p, double *h) {
    (void)h;
    SADM_TRY(o->group_norm_forward(GNN, GNC, GNHW, GNG, F(0), F(1), F(2), 1e-6f, F(3), F(4), F(5)));
    SADM_TRY(o->group_norm_backward(GNN, GNC, GNHW, GNG, F(0), F(1), F(4), F(5), F(6), F(7), F(8), F(9)));
    return o->group_norm_backward(GNN, GNC, GNHW, GNG, F(0), NULL, F(4), F(5), F(6), F(10), NULL, NULL);
}
enum { EN = 1031 };
#define UNARY(name)                                                                                \
    static sadm_status c_##name##_forward(const sadm_ops *o, void **p, double *h) {                \
        (void)h;                                                                                   \
        return o->name##_forward(EN, F(0), F(1));                                                  \
    }                                                                                              \
    static sadm_status c_##name##_backward(const sadm_ops *o, void **p, double *h) {               \
        (void)h;                                                                                   \
        return o->name##_backward(EN, F(0), F(1), F(2));                                           \
    }
UNARY(gelu)
UNARY(silu)
UNARY(relu)
static sadm_status c_cross_entropy(const sadm_ops *o, void **p, double *h) {
    return o->cross_entropy(9, 13, F(0), L(1), &h[0], F(2));
}
static sadm_status c_softmax_forward(const sadm_ops *o, void **p, double *h) {
    (void)h;
    return o->softmax_forward(11, 37, F(0), F(1));
}
static sadm_status c_softmax_backward(const sadm_ops *o, void **p, double *h) {
    (void)h;
    SADM_TRY(o->softmax_forward(11, 37, F(0), F(1)));
    return o->softmax_backward(11, 37, F(1), F(2), F(3));
}
static sadm_status c_add(const sadm_ops *o, void **p, double *h) {
    (void)h;
    return o->add(EN, F(0), F(1), F(2));
}
static sadm_status c_add_rows(const sadm_ops *o, void **p, double *h) {
    (void)h;
    return o->add_rows(5, 77, F(0), F(1), F(2));
}
enum { GB = 3, GT = 7, GC = 19 };
static sadm_status c_gated_add_forward(const sadm_ops *o, void **p, double *h) {
    (void)h;
    return o->gated_add_forward(GB, GT, GC, F(0), F(1), F(2), F(3));
}
static sadm_status c_gated_add_backward(const sadm_ops *o, void **p, double *h) {
    (void)h;
    return o->gated_add_backward(GB, GT, GC, F(0), F(1), F(2), F(3), F(4), F(5));
}
static sadm_status c_modulate_forward(const sadm_ops *o, void **p, double *h) {
    (void)h;
    return o->modulate_forward(GB, GT, GC, F(0), F(1), F(2), F(3));
}
static sadm_status c_modulate_backward(const sadm_ops *o, void **p, double *h) {
    (void)h;
    return o->modulate_backward(GB, GT, GC, F(0), F(1), F(2), F(3), F(4), F(5));
}
static sadm_status c_mean_tokens_forward(const sadm_ops *o, void **p, double *h) {
    (void)h;
    return o->mean_tokens_forward(GB, GT, GC, F(0), F(1));
}
static sadm_status c_mean_tokens_backward(const sadm_ops *o, void **p, double *h) {
    (void)h;
    return o->mean_tokens_backward(GB, GT, GC, F(0), F(1));
}
enum { AB = 2, AN = 19, AH = 3, AD = 8 };
static sadm_status c_attention_forward(const sadm_ops *o, void **p, double *h) {
    (void)h;
    SADM_TRY(o->attention_forward(AB, AN, AH, AD, F(0), F(1), F(2)));
    return o->attention_forward(AB, AN, AH, AD, F(0), F(3), NULL);
}
static sadm_status c_attention_backward(const sadm_ops *o, void **p, double *h) {
    (void)h;
    SADM_TRY(o->attention_forward(AB, AN, AH, AD, F(0), F(1), F(2)));
    return o->attention_backward(AB, AN, AH, AD, F(0), F(1), F(2), F(3), F(4));
}
static sadm_status c_attention_forward_bf16(const sadm_ops *o, void **p, double *h) {
    (void)h;
    SADM_TRY(o->attention_forward_bf16(AB, AN, AH, AD, F(0), F(1), F(2)));
    return o->attention_forward_bf16(AB, AN, AH, AD, F(0), F(3), NULL);
}
static sadm_status c_attention_backward_bf16(const sadm_ops *o, void **p, double *h) {
    (void)h;
    SADM_TRY(o->attention_forward_bf16(AB, AN, AH, AD, F(0), F(1), F(2)));
    return o->attention_backward_bf16(AB, AN, AH, AD, F(0), F(1), F(2), F(3), F(4));
}
enum { PB = 2, PC = 3, PH = 12, PW = 8, PP = 4 };
static sadm_status c_patchify(const sadm_ops *o, void **p, double *h) {
    (void)h;
    return o->patchify(PB, PC, PH, PW, PP, F(0), F(1));
}
static sadm_status c_patchify_backward(const sadm_ops *o, void **p, double *h) {
    (void)h;
    return o->patchify_backward(PB, PC, PH, PW, PP, F(0), F(1));
}
static sadm_status c_unpatchify(const sadm_ops *o, void **p, double *h) {
    (void)h;
    return o->unpatchify(PB, PC, PH, PW, PP, F(0), F(1));
}
static sadm_status c_unpatchify_backward(const sadm_ops *o, void **p, double *h) {
    (void)h;
    return o->unpatchify_backward(PB, PC, PH, PW, PP, F(0), F(1));
}
static sadm_status c_split_chunks(const sadm_ops *o, void **p, double *h) {
    (void)h;
    return o->split_chunks(3, 17, 6, F(0), F(1));
}
static sadm_status c_merge_chunks(const sadm_ops *o, void **p, double *h) {
    (void)h;
    return o->merge_chunks(3, 17, 6, F(0), F(1));
}
static sadm_status c_i64_to_f32(const sadm_ops *o, void **p, double *h) {
    (void)h;
    return o->i64_to_f32(37, L(0), F(1));
}
static const sadm_conv2d_shape CONV = {2, 3, 11, 9, 5, 3, 2, 2, 1, 1, 0, 0, 0};
static const sadm_conv2d_shape CONV1 = {2, 3, 11, 9, 5, 1, 1, 1, 1, 0, 0, 0, 0}; /* pointwise: no im2col */
static const sadm_conv2d_shape CONVE = {2, 3, 11, 9, 5, 3, 2, 2, 2, 0, 0, 1, 1}; /* diffusers' downsampling pad */
enum { CONV_OUT = 2 * 5 * 6 * 8, CONV1_OUT = 2 * 5 * 11 * 9, CONVE_OUT = 2 * 5 * 5 * 5 };
static sadm_status c_conv2d_forward(const sadm_ops *o, void **p, double *h) {
    (void)h;
    SADM_TRY(o->conv2d_forward(&CONV, F(0), F(1), F(2), F(3)));
    SADM_TRY(o->conv2d_forward(&CONVE, F(0), F(1), F(2), F(5)));
    return o->conv2d_forward(&CONV1, F(0), F(1), NULL, F(4));
}
static sadm_status c_conv2d_backward(const sadm_ops *o, void **p, double *h) {
    (void)h;
    SADM_TRY(o->conv2d_backward(&CONV, F(0), F(1), F(2), F(3), F(4), F(5)));
    return o->conv2d_backward(&CONV1, F(0), F(1), F(6), F(7), F(8), NULL);
}
enum { UPN = 2 * 3 * 5 * 7 };
static sadm_status c_upsample_nearest_forward(const sadm_ops *o, void **p, double *h) {
    (void)h;
    return o->upsample_nearest_forward(2, 3, 5, 7, 2, F(0), F(1));
}
static sadm_status c_upsample_nearest_backward(const sadm_ops *o, void **p, double *h) {
    (void)h;
    return o->upsample_nearest_backward(2, 3, 5, 7, 2, F(0), F(1));
}
static const sadm_pool2d_shape POOLMAX = {2, 3, 9, 7, 3, 3, 2, 2, 1, 1, SADM_POOL_MAX, 0};
static const sadm_pool2d_shape POOLAVG = {2, 3, 9, 7, 3, 3, 2, 2, 1, 1, SADM_POOL_AVG, 0};
enum { POOL_OUT = 2 * 3 * 5 * 4 };
static sadm_status c_pool2d_forward(const sadm_ops *o, void **p, double *h) {
    (void)h;
    SADM_TRY(o->pool2d_forward(&POOLMAX, F(0), F(1)));
    return o->pool2d_forward(&POOLAVG, F(0), F(2));
}
static sadm_status c_pool2d_backward(const sadm_ops *o, void **p, double *h) {
    (void)h;
    SADM_TRY(o->pool2d_backward(&POOLMAX, F(0), F(1), F(2)));
    return o->pool2d_backward(&POOLAVG, F(0), F(1), F(3));
}
static sadm_status c_embedding_forward(const sadm_ops *o, void **p, double *h) {
    (void)h;
    return o->embedding_forward(11, 19, 7, F(0), L(1), F(2));
}
static sadm_status c_embedding_backward(const sadm_ops *o, void **p, double *h) {
    (void)h;
    return o->embedding_backward(11, 19, 7, L(0), F(1), F(2));
}
static sadm_status c_timestep_embedding(const sadm_ops *o, void **p, double *h) {
    (void)h;
    SADM_TRY(o->timestep_embedding(5, 33, F(0), 10000.0f, F(1)));
    return o->timestep_embedding(5, 256, F(0), 10000.0f, F(2));
}
static sadm_status c_pos_embed_2d(const sadm_ops *o, void **p, double *h) {
    (void)h;
    return o->pos_embed_2d(16, 3, F(0));
}
enum { RN = 40009 }; /* more than two of the reductions' fixed chunks */
static sadm_status c_sum(const sadm_ops *o, void **p, double *h) { return o->sum(RN, F(0), &h[0]); }
static sadm_status c_sumsq(const sadm_ops *o, void **p, double *h) { return o->sumsq(RN, F(0), &h[0]); }
static sadm_status c_dot(const sadm_ops *o, void **p, double *h) { return o->dot(RN, F(0), F(1), &h[0]); }
static sadm_status c_adamw_step(const sadm_ops *o, void **p, double *h) {
    (void)h;
    sadm_adamw_config c = {1e-3f, 0.9f, 0.999f, 1e-8f, 0.01f};
    return o->adamw_step(EN, F(0), F(1), F(2), F(3), &c, 3);
}
static sadm_status c_ema_update(const sadm_ops *o, void **p, double *h) {
    (void)h;
    return o->ema_update(EN, F(0), F(1), 0.9f);
}
static sadm_status c_clip_grad_norm(const sadm_ops *o, void **p, double *h) {
    SADM_TRY(o->clip_grad_norm(RN, F(0), 0.5f, &h[0]));
    return o->clip_grad_norm(RN, F(1), 0.0f, &h[1]); /* measures only */
}
static sadm_status c_scale(const sadm_ops *o, void **p, double *h) {
    (void)h;
    return o->scale(EN, F(0), -1.25f);
}
static sadm_status c_rng_uniform(const sadm_ops *o, void **p, double *h) {
    (void)h;
    return o->rng_uniform(5, 3, 1001, EN, F(0));
}
static sadm_status c_rng_normal(const sadm_ops *o, void **p, double *h) {
    (void)h;
    return o->rng_normal(5, 3, 1001, EN, F(0));
}
enum { QN = 3, QC = 2, QHW = 15, QPER = QC * QHW };
static sadm_status c_q_sample(const sadm_ops *o, void **p, double *h) {
    (void)h;
    return o->q_sample(diffusion, QN, QPER, F(0), L(1), F(2), F(3));
}
static sadm_status c_diffusion_loss(const sadm_ops *o, void **p, double *h) {
    (void)h;
    SADM_TRY(o->diffusion_loss(diffusion, QN, QC, QHW, 1, F(0), F(1), L(2), F(3), F(4), F(5), F(6), F(7), F(8)));
    return o->diffusion_loss(diffusion, QN, QC, QHW, 0, F(0), F(1), L(2), F(3), F(4), F(9), NULL, NULL, F(10));
}
static sadm_status c_sampler_update(const sadm_ops *o, void **p, double *h) {
    (void)h;
    sadm_sampler_step s = {1.2f, 0.6f, 0.3f, 0.7f, -6.0f, -4.0f, -5.0f, 0.8f, 0.1f, 1.0f, 3.0f, 1, 1, 0, 1, 1};
    SADM_TRY(o->sampler_update(&s, 2, QC, QHW, F(0), F(1), F(2)));
    s.ddim = 1, s.guided = 0, s.learn_sigma = 0, s.clip_denoised = 0;
    return o->sampler_update(&s, 2, QC, QHW, F(0), F(1), F(3));
}

static sadm_status c_l2_normalize_forward(const sadm_ops *o, void **p, double *h) {
    (void)h;
    return o->l2_normalize_forward(5, 13, 1e-12, F(0), F(1));
}
static sadm_status c_l2_normalize_backward(const sadm_ops *o, void **p, double *h) {
    (void)h;
    SADM_TRY(o->l2_normalize_forward(5, 13, 1e-12, F(0), F(1)));
    return o->l2_normalize_backward(5, 13, 1e-12, F(0), F(1), F(2), F(3));
}
static sadm_status c_predict_x0(const sadm_ops *o, void **p, double *h) {
    (void)h;
    return o->predict_x0(diffusion, QN, QPER, 2 * QPER, F(0), L(1), F(2), F(3));
}
static sadm_status c_x0_grad_to_eps(const sadm_ops *o, void **p, double *h) {
    (void)h;
    return o->x0_grad_to_eps(diffusion, QN, QPER, 2 * QPER, L(0), F(1), F(2));
}
static sadm_status c_struct_weights(const sadm_ops *o, void **p, double *h) {
    (void)h;
    sadm_sadm_config c;
    sadm_sadm_config_default(&c);
    c.weighting = SADM_WEIGHT_ALPHA;
    SADM_TRY(o->struct_weights(diffusion, &c, QN, L(0), F(1)));
    c.weighting = SADM_WEIGHT_T_BELOW, c.t_max = 400;
    SADM_TRY(o->struct_weights(diffusion, &c, QN, L(0), F(3)));
    c.weighting = SADM_WEIGHT_NONE;
    return o->struct_weights(diffusion, &c, QN, L(0), F(2));
}
static sadm_status c_struct_loss(const sadm_ops *o, void **p, double *h) {
    sadm_sadm_config c;
    sadm_sadm_config_default(&c);
    sadm_struct_stats s;
    c.distance = SADM_DIST_COSINE_MSE;
    SADM_TRY(o->struct_loss(&c, 5, 7, F(0), F(1), F(2), 0.5f, &s, F(3), F(4)));
    h[0] = s.loss, h[1] = s.real_cos, h[2] = s.fake_cos;
    c.distance = SADM_DIST_SOFTMAX_KL;
    SADM_TRY(o->struct_loss(&c, 5, 7, F(0), F(1), NULL, 1.0f, &s, F(5), NULL));
    h[3] = s.loss, h[4] = s.real_cos, h[5] = s.fake_cos;
    return SADM_OK;
}

/* NHWC: a 3×2 stride (2,1) padded conv reading channels 1..5 of a 7-wide map and writing
 * channels 2..6 of a 9-wide one, with bias and ReLU; a pointwise conv without either. */
static const sadm_nhwc_conv_shape NCONV = {2, 11, 9, 5, 4, 3, 2, 2, 1, 1, 0, 7, 9};
static const sadm_nhwc_conv_shape NCONV1 = {2, 11, 9, 5, 4, 1, 1, 1, 1, 0, 0, 7, 4};
enum { NMAP_IN = 2 * 11 * 9 * 7, NMAP_OUT = 2 * 6 * 8 * 9, NMAP_OUT1 = 2 * 11 * 9 * 4 };
static sadm_status c_conv2d_nhwc_forward(const sadm_ops *o, void **p, double *h) {
    (void)h;
    SADM_TRY(o->conv2d_nhwc_forward(&NCONV, F(0) + 1, F(1), F(2), 1, F(3) + 2));
    return o->conv2d_nhwc_forward(&NCONV1, F(0) + 1, F(4), NULL, 0, F(5));
}
static const sadm_nhwc_pool_shape NPOOLMAX = {2, 9, 7, 5, 3, 2, 1, 7, 6, SADM_POOL_MAX};
static const sadm_nhwc_pool_shape NPOOLAVG = {2, 9, 7, 5, 3, 1, 1, 7, 5, SADM_POOL_AVG};
static sadm_status c_pool2d_nhwc_forward(const sadm_ops *o, void **p, double *h) {
    (void)h;
    SADM_TRY(o->pool2d_nhwc_forward(&NPOOLMAX, F(0), F(1)));
    return o->pool2d_nhwc_forward(&NPOOLAVG, F(0) + 2, F(2));
}
static sadm_status c_mean_pixels_nhwc(const sadm_ops *o, void **p, double *h) {
    (void)h;
    return o->mean_pixels_nhwc(3, 17, 5, 7, F(0), F(1));
}
static sadm_status c_linear_forward_exact(const sadm_ops *o, void **p, double *h) {
    (void)h;
    SADM_TRY(o->linear_forward_exact(LM, LK, LN, F(0), F(1), F(2), F(3)));
    return o->linear_forward_exact(LM, LK, LN, F(0), F(1), NULL, F(4));
}
static sadm_status c_copy_channels(const sadm_ops *o, void **p, double *h) {
    (void)h;
    return o->copy_channels(13, 3, F(0) + 1, 7, F(1), 4);
}
static sadm_status c_fid_resize(const sadm_ops *o, void **p, double *h) {
    (void)h;
    SADM_TRY(o->fid_resize(SADM_FID_ADM, 2, 23, 31, (const uint8_t *)p[0], F(1)));
    return o->fid_resize(SADM_FID_PYTORCH, 2, 23, 31, (const uint8_t *)p[0], F(2));
}

/* Thresholds: copies and layout operators are exact; elementwise arithmetic is within a
 * rounding or two of the scalar kernels; GEMM-based ones sum in other orders (1e-12 = relative 1e-6 squared);
 * transcendental kernels (exp, tanh, log, sin/cos) use vector approximations. */
#define EXACT 1e-14
#define ROUNDING 1e-12 /* one or two roundings apart (a fused multiply-add or not) */
#define SUMS 1e-11
#define TRANSC 1e-10
/* bf16 products equal the specification bitwise (tests/test_bf16.c); around them, an
 * fp32 kernel's last-bit difference (exp, a column sum) can move a value across a bf16
 * rounding boundary: one such element changes by 2^-8 of itself */
#define BF16_FLIPS 1e-7
static const op_case CASES[] = {
    {"matmul", SUMS, c_matmul, 7, {U(MM_M * MM_K), U(MM_K * MM_N), U(MM_N), U(MM_M * MM_N), U(MM_M * MM_N), U(MM_M * MM_N), U(MM_M * MM_N)}, 0},
    {"matmul_batched", SUMS, c_matmul_batched, 3, {U(3 * 7 * 13), U(3 * 11 * 13), Z(3 * 7 * 11)}, 0},
    {"linear_forward", SUMS, c_linear_forward, 5, {U(LM * LK), U(LN * LK), U(LN), Z(LM * LN), Z(LM * LN)}, 0},
    {"linear_backward", SUMS, c_linear_backward, 6, {U(LM * LK), U(LN * LK), U(LM * LN), U(LM * LK), U(LN * LK), U(LN)}, 0},
    {"linear_forward_bf16", SUMS, c_linear_forward_bf16, 5, {U(LM * LK), U(LN * LK), U(LN), Z(LM * LN), Z(LM * LN)}, 0},
    {"linear_backward_bf16", SUMS, c_linear_backward_bf16, 6,
     {U(LM * LK), U(LN * LK), U(LM * LN), U(LM * LK), U(LN * LK), U(LN)}, 0},
    {"layernorm_forward", SUMS, c_layernorm_forward, 7, {U(LNR * LNC), U(LNC), U(LNC), Z(LNR * LNC), Z(LNR), Z(LNR), Z(LNR * LNC)}, 0},
    {"layernorm_backward", SUMS, c_layernorm_backward, 11,
     {U(LNR * LNC), U(LNC), U(LNC), Z(LNR * LNC), Z(LNR), Z(LNR), U(LNR * LNC), U(LNR * LNC), U(LNC), U(LNC), Z(LNR * LNC)}, 0},
    {"group_norm_forward", SUMS, c_group_norm_forward, 7,
     {U(GNX), U(GNC), U(GNC), Z(GNX), Z(GNN * GNG), Z(GNN * GNG), Z(GNX)}, 0},
    {"group_norm_backward", SUMS, c_group_norm_backward, 11,
     {U(GNX), U(GNC), U(GNC), Z(GNX), Z(GNN * GNG), Z(GNN * GNG), U(GNX), U(GNX), U(GNC), U(GNC), Z(GNX)}, 0},
    {"gelu_forward", TRANSC, c_gelu_forward, 2, {U(EN), Z(EN)}, 0},
    {"gelu_backward", TRANSC, c_gelu_backward, 3, {U(EN), U(EN), Z(EN)}, 0},
    {"silu_forward", TRANSC, c_silu_forward, 2, {U(EN), Z(EN)}, 0},
    {"silu_backward", TRANSC, c_silu_backward, 3, {U(EN), U(EN), Z(EN)}, 0},
    {"relu_forward", EXACT, c_relu_forward, 2, {U(EN), Z(EN)}, 0},
    {"relu_backward", EXACT, c_relu_backward, 3, {U(EN), U(EN), Z(EN)}, 0},
    {"cross_entropy", SUMS, c_cross_entropy, 3, {U(9 * 13), IX(9, 13), Z(9 * 13)}, 1},
    {"softmax_forward", TRANSC, c_softmax_forward, 2, {U(11 * 37), Z(11 * 37)}, 0},
    {"softmax_backward", TRANSC, c_softmax_backward, 4, {U(11 * 37), Z(11 * 37), U(11 * 37), Z(11 * 37)}, 0},
    {"add", EXACT, c_add, 3, {U(EN), U(EN), Z(EN)}, 0},
    {"add_rows", EXACT, c_add_rows, 3, {U(5 * 77), U(77), Z(5 * 77)}, 0},
    {"gated_add_forward", ROUNDING, c_gated_add_forward, 4, {U(GB * GT * GC), U(GB * GC), U(GB * GT * GC), Z(GB * GT * GC)}, 0},
    {"gated_add_backward", SUMS, c_gated_add_backward, 6,
     {U(GB * GC), U(GB * GT * GC), U(GB * GT * GC), U(GB * GT * GC), U(GB * GC), U(GB * GT * GC)}, 0},
    {"modulate_forward", ROUNDING, c_modulate_forward, 4, {U(GB * GT * GC), U(GB * GC), U(GB * GC), Z(GB * GT * GC)}, 0},
    {"modulate_backward", SUMS, c_modulate_backward, 6,
     {U(GB * GT * GC), U(GB * GC), U(GB * GT * GC), U(GB * GT * GC), U(GB * GC), U(GB * GC)}, 0},
    {"mean_tokens_forward", SUMS, c_mean_tokens_forward, 2, {U(GB * GT * GC), Z(GB * GC)}, 0},
    {"mean_tokens_backward", ROUNDING, c_mean_tokens_backward, 2, {U(GB * GC), U(GB * GT * GC)}, 0},
    {"attention_forward", TRANSC, c_attention_forward, 4,
     {U(AB * AN * 3 * AH * AD), Z(AB * AN * AH * AD), Z(AB * AH * AN), Z(AB * AN * AH * AD)}, 0},
    {"attention_backward", TRANSC, c_attention_backward, 5,
     {U(AB * AN * 3 * AH * AD), Z(AB * AN * AH * AD), Z(AB * AH * AN), U(AB * AN * AH * AD), U(AB * AN * 3 * AH * AD)}, 0},
    {"attention_forward_bf16", BF16_FLIPS, c_attention_forward_bf16, 4,
     {U(AB * AN * 3 * AH * AD), Z(AB * AN * AH * AD), Z(AB * AH * AN), Z(AB * AN * AH * AD)}, 0},
    {"attention_backward_bf16", BF16_FLIPS, c_attention_backward_bf16, 5,
     {U(AB * AN * 3 * AH * AD), Z(AB * AN * AH * AD), Z(AB * AH * AN), U(AB * AN * AH * AD), U(AB * AN * 3 * AH * AD)}, 0},
    {"patchify", EXACT, c_patchify, 2, {U(PB * PC * PH * PW), Z(PB * PC * PH * PW)}, 0},
    {"patchify_backward", EXACT, c_patchify_backward, 2, {U(PB * PC * PH * PW), U(PB * PC * PH * PW)}, 0},
    {"unpatchify", EXACT, c_unpatchify, 2, {U(PB * PC * PH * PW), Z(PB * PC * PH * PW)}, 0},
    {"unpatchify_backward", EXACT, c_unpatchify_backward, 2, {U(PB * PC * PH * PW), U(PB * PC * PH * PW)}, 0},
    {"split_chunks", EXACT, c_split_chunks, 2, {U(3 * 17 * 6), Z(3 * 17 * 6)}, 0},
    {"merge_chunks", EXACT, c_merge_chunks, 2, {U(3 * 17 * 6), Z(3 * 17 * 6)}, 0},
    {"i64_to_f32", EXACT, c_i64_to_f32, 2, {IX(37, 1000), Z(37)}, 0},
    {"conv2d_forward", SUMS, c_conv2d_forward, 6,
     {U(2 * 3 * 11 * 9), U(5 * 3 * 3 * 2), U(5), Z(CONV_OUT), Z(CONV1_OUT), Z(CONVE_OUT)}, 0},
    {"upsample_nearest_forward", EXACT, c_upsample_nearest_forward, 2, {U(UPN), Z(4 * UPN)}, 0},
    {"upsample_nearest_backward", ROUNDING, c_upsample_nearest_backward, 2, {U(4 * UPN), U(UPN)}, 0},
    {"conv2d_backward", SUMS, c_conv2d_backward, 9,
     {U(2 * 3 * 11 * 9), U(5 * 3 * 3 * 2), U(CONV_OUT), U(2 * 3 * 11 * 9), U(5 * 3 * 3 * 2), U(5), U(CONV1_OUT),
      U(2 * 3 * 11 * 9), U(5 * 3)}, 0},
    {"pool2d_forward", SUMS, c_pool2d_forward, 3, {U(2 * 3 * 9 * 7), Z(POOL_OUT), Z(POOL_OUT)}, 0},
    {"pool2d_backward", SUMS, c_pool2d_backward, 4, {U(2 * 3 * 9 * 7), U(POOL_OUT), U(2 * 3 * 9 * 7), U(2 * 3 * 9 * 7)}, 0},
    {"embedding_forward", EXACT, c_embedding_forward, 3, {U(7 * 19), IX(11, 7), Z(11 * 19)}, 0},
    {"embedding_backward", SUMS, c_embedding_backward, 3, {IX(11, 7), U(11 * 19), U(7 * 19)}, 0},
    {"timestep_embedding", TRANSC, c_timestep_embedding, 3, {{5, F32, TIMESTEP, 0}, Z(5 * 33), Z(5 * 256)}, 0},
    {"pos_embed_2d", EXACT, c_pos_embed_2d, 1, {Z(9 * 16)}, 0},
    {"sum", SUMS, c_sum, 1, {U(RN)}, 1},
    {"sumsq", SUMS, c_sumsq, 1, {U(RN)}, 1},
    {"dot", SUMS, c_dot, 2, {U(RN), U(RN)}, 1},
    {"adamw_step", SUMS, c_adamw_step, 4, {U(EN), U(EN), U(EN), P(EN)}, 0},
    {"ema_update", ROUNDING, c_ema_update, 2, {U(EN), U(EN)}, 0},
    {"clip_grad_norm", SUMS, c_clip_grad_norm, 2, {U(RN), U(RN)}, 2},
    {"scale", EXACT, c_scale, 1, {U(EN)}, 0},
    {"rng_uniform", EXACT, c_rng_uniform, 1, {Z(EN)}, 0},
    {"rng_normal", TRANSC, c_rng_normal, 1, {Z(EN)}, 0},
    {"q_sample", EXACT, c_q_sample, 4, {U(QN * QPER), IX(QN, 1000), U(QN * QPER), Z(QN * QPER)}, 0},
    {"diffusion_loss", SUMS, c_diffusion_loss, 11,
     {U(QN * QPER), U(QN * QPER), IX(QN, 1000), U(QN * QPER), U(QN * 2 * QPER), Z(QN), Z(QN), Z(QN), U(QN * 2 * QPER), Z(QN),
      U(QN * 2 * QPER)}, 0},
    {"sampler_update", TRANSC, c_sampler_update, 4, {U(4 * 2 * QPER), U(2 * QPER), U(2 * QPER), U(2 * QPER)}, 0},
    {"l2_normalize_forward", ROUNDING, c_l2_normalize_forward, 2, {U(5 * 13), Z(5 * 13)}, 0},
    {"l2_normalize_backward", ROUNDING, c_l2_normalize_backward, 4, {U(5 * 13), Z(5 * 13), U(5 * 13), Z(5 * 13)}, 0},
    {"predict_x0", ROUNDING, c_predict_x0, 4, {U(QN * QPER), IX(QN, 1000), U(QN * 2 * QPER), Z(QN * QPER)}, 0},
    {"x0_grad_to_eps", ROUNDING, c_x0_grad_to_eps, 3, {IX(QN, 1000), U(QN * QPER), U(QN * 2 * QPER)}, 0},
    {"struct_weights", EXACT, c_struct_weights, 4, {IX(QN, 1000), Z(QN), Z(QN), Z(QN)}, 0},
    {"conv2d_nhwc_forward", SUMS, c_conv2d_nhwc_forward, 6,
     {U(NMAP_IN), U(3 * 2 * 5 * 4), U(4), U(NMAP_OUT), U(5 * 4), U(NMAP_OUT1)}, 0},
    {"pool2d_nhwc_forward", SUMS, c_pool2d_nhwc_forward, 3, {U(2 * 9 * 7 * 7), U(2 * 5 * 4 * 6), U(2 * 9 * 7 * 5)}, 0},
    {"mean_pixels_nhwc", SUMS, c_mean_pixels_nhwc, 2, {U(3 * 17 * 7), Z(3 * 5)}, 0},
    {"linear_forward_exact", SUMS, c_linear_forward_exact, 5, {U(LM * LK), U(LN * LK), U(LN), Z(LM * LN), Z(LM * LN)}, 0},
    {"copy_channels", EXACT, c_copy_channels, 2, {U(13 * 7), U(13 * 4)}, 0},
    {"fid_resize", ROUNDING, c_fid_resize, 3, {BYTES(2 * 23 * 31 * 3), Z(2 * 299 * 299 * 3), Z(2 * 299 * 299 * 3)}, 0},
    {"struct_loss", SUMS, c_struct_loss, 6, {U(5 * 7), U(5 * 7), P(5), U(5 * 7), U(5 * 7), U(5 * 7)}, 6},
};
#define N_CASES (sizeof CASES / sizeof CASES[0])

/* ------------------------------------------------------------------ the harness */
static size_t bytes_of(const buf_spec *b) {
    return b->n * (b->type == I64 ? sizeof(int64_t) : b->type == U8 ? 1 : sizeof(float));
}

/* The host values of buffer i of a case (the same on every run). */
static void fill(const buf_spec *b, uint64_t seed, void *host) {
    float *f = host;
    int64_t *l = host;
    uint8_t *u8 = host;
    if (b->init == ZERO) {
        memset(host, 0, bytes_of(b));
        return;
    }
    float *u = tu_uniform(b->n, seed, 0, 1);
    for (size_t i = 0; i < b->n; i++) switch (b->init) {
        case UNIFORM: f[i] = 2 * u[i] - 1; break;
        case POSITIVE: f[i] = 0.5f + u[i]; break;
        case TIMESTEP: f[i] = floorf(u[i] * 1000); break;
        case INDEX:
            if (b->type == U8)
                u8[i] = (uint8_t)((int)(u[i] * 256.0f) % 256);
            else
                l[i] = (int64_t)(u[i] * (float)b->k) % b->k;
            break;
        }
    free(u);
}

/* Runs a case on a backend; out[i] gets buffer i's host copy afterwards (caller frees). */
static sadm_status run_case(const op_case *c, sadm_backend *be, void **out, double *host) {
    void *dev[MAX_BUFS] = {0};
    sadm_status st = SADM_OK;
    for (int i = 0; i < c->nb && !st; i++) {
        out[i] = malloc(bytes_of(&c->b[i]));
        fill(&c->b[i], 1000 + 17 * (uint64_t)i, out[i]);
        sadm_dtype dt = c->b[i].type == I64 ? SADM_DTYPE_I64 : c->b[i].type == U8 ? SADM_DTYPE_U8 : SADM_DTYPE_F32;
        dev[i] = be->alloc(be, dt, c->b[i].n);
        ck_assert_ptr_nonnull(out[i]);
        ck_assert_ptr_nonnull(dev[i]);
        st = be->upload(be, dev[i], out[i], bytes_of(&c->b[i]));
    }
    for (int k = 0; k < MAX_HOST; k++) host[k] = 0;
    if (!st) st = c->call(be->ops, dev, host);
    for (int i = 0; i < c->nb; i++) {
        if (!st) st = be->download(be, out[i], dev[i], bytes_of(&c->b[i]));
        be->free(be, dev[i]);
    }
    return st;
}

static double nerr(const buf_spec *b, const void *got, const void *ref) {
    double num = 0, den = 0;
    for (size_t i = 0; i < b->n; i++) {
        double g = b->type == I64 ? (double)((const int64_t *)got)[i]
                   : b->type == U8 ? (double)((const uint8_t *)got)[i] : ((const float *)got)[i];
        double r = b->type == I64 ? (double)((const int64_t *)ref)[i]
                   : b->type == U8 ? (double)((const uint8_t *)ref)[i] : ((const float *)ref)[i];
        num += (g - r) * (g - r), den += r * r;
    }
    return den > 0 ? num / den : num;
}

/* Every case on one backend under one kernel set against the scalar CPU reference;
 * returns the worst error of each case in worst[]. */
static void check_backend(sadm_backend *be, const char *isa, double *worst) {
    for (size_t c = 0; c < N_CASES; c++) {
        const op_case *oc = &CASES[c];
        void *ref[MAX_BUFS], *got[MAX_BUFS];
        double href[MAX_HOST], hgot[MAX_HOST];
        tu_use_isa("scalar");
        ck_assert_msg(run_case(oc, sadm_backend_cpu(), ref, href) == SADM_OK, "%s (reference): %s", oc->name, sadm_last_error());
        tu_use_isa(isa);
        ck_assert_msg(run_case(oc, be, got, hgot) == SADM_OK, "%s on %s/%s: %s", oc->name, be->name, isa, sadm_last_error());
        for (int i = 0; i < oc->nb; i++) {
            double e = nerr(&oc->b[i], got[i], ref[i]);
            ck_assert_msg(e <= oc->tol, "%s on %s/%s: buffer %d has normalised error %.3g > %.3g", oc->name, be->name, isa, i,
                          e, oc->tol);
            if (e > worst[c]) worst[c] = e;
            free(ref[i]), free(got[i]);
        }
        for (int k = 0; k < oc->nhost; k++) {
            double d = hgot[k] - href[k], e = href[k] != 0 ? d * d / (href[k] * href[k]) : d * d;
            ck_assert_msg(e <= oc->tol, "%s on %s/%s: host result %d is %.17g, reference %.17g", oc->name, be->name, isa, k,
                          hgot[k], href[k]);
            if (e > worst[c]) worst[c] = e;
        }
    }
}

START_TEST(test_every_entry) {
    TU_OK(sadm_diffusion_create("linear", 1000, &diffusion));
    sadm_backend *backends[] = {sadm_backend_cpu(), mock_backend()};
    double worst[N_CASES] = {0};
    for (size_t b = 0; b < sizeof backends / sizeof backends[0]; b++)
        for (const char *const *isa = tu_isas(); *isa; isa++) check_backend(backends[b], *isa, worst);
    tu_use_isa("auto");
    fprintf(stderr, "largest normalised error of each entry over backends and kernel sets:\n");
    for (size_t c = 0; c < N_CASES; c++) fprintf(stderr, "  %-22s %.2e (threshold %.0e)\n", CASES[c].name, worst[c], CASES[c].tol);
    /* every entry of the table was exercised */
    for (const char *const *n = mock_backend_op_names(); *n; n++)
        ck_assert_msg(mock_backend_op_calls(*n) > 0, "table entry %s has no case in test_backend_ops", *n);
    /* and the mock fills every slot of the table (a new entry needs a wrapper there) */
    const sadm_ops *mo = mock_backend()->ops;
    sadm_status (*const *slots)(void) = (sadm_status (*const *)(void))(const void *)mo;
    for (size_t i = 0; i < sizeof(sadm_ops) / sizeof(slots[0]); i++) ck_assert_msg(slots[i] != NULL, "mock table slot %zu is empty", i);
    size_t names = 0;
    for (const char *const *n = mock_backend_op_names(); *n; n++) names++;
    ck_assert_uint_eq(names, sizeof(sadm_ops) / sizeof(slots[0]));
    sadm_diffusion_free(diffusion);
}
END_TEST

int main(void) {
    Suite *s = suite_create("backend_ops");
    TCase *tc = tcase_create("backend_ops");
    tcase_set_timeout(tc, 600);
    tcase_add_test(tc, test_every_entry);
    suite_add_tcase(s, tc);
    return tu_run(s);
}
