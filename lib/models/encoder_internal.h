/* Structure encoder internals shared by its files: parameter views and activations. */
#ifndef SADM_ENCODER_INTERNAL_H
#define SADM_ENCODER_INTERNAL_H

#include "params.h"

typedef struct enc_block_params {
    size_t n1_w, n1_b, qkv_w, qkv_b, proj_w, proj_b, n2_w, n2_b, fc1_w, fc1_b, fc2_w, fc2_b; /* param indices */
} enc_block_params;

/* One block's activations, kept for the backward pass. */
typedef struct enc_block_acts {
    float *x_in;                 /* (N,T,D) residual stream entering the block */
    float *ln1, *mean1, *rstd1, *qkv, *attn, *lse;
    float *x_mid;                /* after the attention residual */
    float *ln2, *mean2, *rstd2, *fc1, *gelu;
} enc_block_acts;

typedef struct enc_acts {
    int N_last;                  /* batch of the last forward; 0: nothing to go back through */
    float *patches;              /* (N,T,C p p) */
    enc_block_acts *blocks;
    float *x_last, *lnf, *meanf, *rstdf; /* (N,T,D) after the blocks, final norm */
    float *pooled, *head, *z;    /* (N,D), (N,E), (N,E) */
    /* backward scratch */
    float *d_h, *d_ln, *d_attn, *d_wide, *d_wide2, *d_pooled, *d_head, *d_patches;
    /* the edges, for host callers when the backend's memory is not host memory */
    float *in_x, *d_z, *d_x;
} enc_acts;

struct sadm_encoder {
    sadm_encoder_config cfg;
    sadm_backend *be; /* where data, grad and the activations live */
    sadm_precision precision; /* bf16: the products take bf16 inputs */
    int grid, T, D, heads, head_dim, mlp_dim, F_in, E;
    sadm_param_table tab;
    float *data, *grad;
    size_t pos, xe_w, xe_b, nf_w, nf_b, head_w, head_b;
    enc_block_params *blk;
    enc_acts acts;
    float *act_mem;
    size_t act_floats;
};

/* the encoder's products in bf16 (SADM_OP_P's switch) */
#ifndef BF16
#define BF16(model) ((model)->precision == SADM_PRECISION_BF16)
#endif

static inline float *enc_p(sadm_encoder *e, size_t idx) { return e->data + e->tab.items[idx].offset; }

#define ENC_LN_EPS 1e-6f
#define ENC_NORM_EPS 1e-12 /* F.normalize's eps */

/* The passes on memory of the encoder's backend (x, z, dz, dx there); the public
 * sadm_encoder_forward/backward take host memory and copy at the edges. */
sadm_status enc_forward_dev(sadm_encoder *e, int N, const float *x, float *z);
sadm_status enc_backward_dev(sadm_encoder *e, const float *dz, float *dx, int param_grads);

/* Encoder config <-> metadata with keys prefix + "input_size", ... ("" in encoder files,
 * "disc." in SADM training checkpoints). */
sadm_status sadm_encoder_write_metadata(const sadm_encoder_config *c, const char *prefix, sadm_st_writer *w);
sadm_status sadm_encoder_read_metadata(const sadm_st_file *f, const char *path, const char *prefix,
                                       sadm_encoder_config *c);
/* Blocks in the encoder's parameter layout (its weights, or optimiser moments: with
 * only_trainable the trainable tensors alone) as prefix + name, from host memory / into
 * host memory. */
sadm_status sadm_encoder_write_tensors(const sadm_encoder *e, const float *host, const char *prefix, int only_trainable,
                                       sadm_st_writer *w);
sadm_status sadm_encoder_read_tensors(const sadm_encoder *e, const sadm_st_file *f, const char *prefix, int only_trainable,
                                      float *host);
/* An encoder whose tensors are prefix + name in an open file. */
sadm_status sadm_encoder_load_open_file(const sadm_st_file *f, const char *path, const char *prefix, sadm_encoder **out);

#endif
