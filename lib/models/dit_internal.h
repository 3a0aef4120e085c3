/* DiT internals shared by the model's files: parameter views and activation buffers. */
#ifndef SADM_DIT_INTERNAL_H
#define SADM_DIT_INTERNAL_H

#include "../backend.h"
#include "params.h"

#define FREQ_DIM 256 /* TimestepEmbedder.frequency_embedding_size */

typedef struct dit_block_params {
    size_t qkv_w, qkv_b, proj_w, proj_b, fc1_w, fc1_b, fc2_w, fc2_b, ada_w, ada_b; /* param indices */
} dit_block_params;

/* Activations of one block, kept for the backward pass. */
typedef struct dit_block_acts {
    float *x_in;              /* (N,T,D) residual stream entering the block */
    float *ada_raw, *ada;     /* (N,6D) from the Linear; (6,N,D) split into its chunks */
    float *ln1, *mean1, *rstd1, *mod1;
    float *qkv, *attn, *lse, *proj;
    float *x_mid;             /* after the attention residual */
    float *ln2, *mean2, *rstd2, *mod2;
    float *fc1, *gelu, *fc2;
} dit_block_acts;

/* Gradient scratch of the backward pass (activation gradients, not parameters). */
typedef struct dit_grad_scratch {
    float *d_h;              /* (N,T,D) gradient of the residual stream, updated in place */
    float *d_mod, *d_ln;     /* (N,T,D) */
    float *d_branch, *d_attn;/* (N,T,D) */
    float *d_wide, *d_wide2; /* (N,T,max(3D,mlp_dim)) */
    float *d_ada, *d_ada_raw;/* (N,6D) */
    float *d_silu_c, *d_c, *d_t_act, *d_t_h; /* (N,D) */
    float *d_lin;            /* (N,T,F_out) */
    float *d_patches;        /* (N,T,F_in) */
} dit_grad_scratch;

typedef struct dit_acts {
    int N;          /* capacity of y (largest batch so far) */
    int N_last;     /* batch of the last forward */
    int64_t *y;     /* labels of the last forward (backend memory) */
    /* the edges, for callers on the host when the backend's memory is not host memory,
     * and the loss's x_t, t, model output and its gradient */
    float *in_x, *in_t, *out, *d_out;
    dit_grad_scratch g;
    float *patches;                                         /* (N,T,C p p) */
    float *t_freq, *t_h, *t_act, *t_emb, *y_emb, *c, *silu_c;
    dit_block_acts *blocks;                                  /* depth of them */
    float *x_last;                                           /* (N,T,D) after the last block */
    float *adaf_raw, *adaf, *lnf, *meanf, *rstdf, *modf, *lin; /* final layer */
} dit_acts;

struct sadm_dit {
    sadm_dit_config cfg;
    sadm_backend *be; /* where data, grad and the activations live */
    sadm_precision precision; /* bf16: the products take bf16 inputs (sadm_dit_set_precision) */
    int T, grid, D, heads, head_dim, mlp_dim, F_in, F_out, C_out, label_rows;
    sadm_param_table tab;
    float *data;
    size_t pos, xe_w, xe_b, t0_w, t0_b, t2_w, t2_b, y_table, fl_w, fl_b, fa_w, fa_b;
    dit_block_params *blk;
    dit_acts acts;
    float *act_mem;
    size_t act_floats;
    float *grad;    /* same layout as data */
};

/* the model's products in bf16 (SADM_OP_P's switch) */
#define BF16(model) ((model)->precision == SADM_PRECISION_BF16)

static inline float *dit_p(sadm_dit *m, size_t idx) { return m->data + m->tab.items[idx].offset; }

/* The model's passes on memory of its backend (x, t, y, out, dout, dx and the loss's
 * inputs all allocated there). The public sadm_dit_forward/backward/loss take host memory
 * and call these, copying at the edges when the backend's memory is not the host's. */
sadm_status dit_forward_dev(sadm_dit *m, int N, const float *x, const float *t, const int64_t *y, float *out,
                            int inference);
sadm_status dit_backward_dev(sadm_dit *m, const float *dout, float *dx);
/* The loss of one batch; x_t stays in m->acts.in_x. */
sadm_status dit_loss_dev(sadm_dit *m, const sadm_diffusion *d, int N, const float *x0, const int64_t *t,
                         const int64_t *y, const float *noise, float *loss, float *mse, float *vb);
/* A host batch (x0, noise: N x per floats; t, y: N each) as the backend sees it, with
 * room for the per-sample loss terms: on a backend with host memory the caller's own
 * pointers, else copies uploaded into one block. dit_batch_out downloads the loss terms
 * (each of loss/mse/vb may be NULL) and dit_batch_free releases the copies. */
typedef struct dit_batch {
    const float *x0, *noise;
    const int64_t *t, *y;
    float *loss, *mse, *vb;
    float *fblock; /* the copies, when the backend's memory is not the host's */
    int64_t *iblock;
} dit_batch;
sadm_status dit_batch_in(sadm_backend *be, int N, size_t per, const float *x0, const int64_t *t, const int64_t *y,
                         const float *noise, float *loss, float *mse, float *vb, dit_batch *b);
sadm_status dit_batch_out(sadm_backend *be, int N, const dit_batch *b, float *loss, float *mse, float *vb);
void dit_batch_free(sadm_backend *be, dit_batch *b);

/* Labels (host memory) in [0, label_rows), with the message naming the sample. */
sadm_status dit_check_labels(const sadm_dit *m, int N, const int64_t *y);
/* Sizes the activation arena for a batch of N (and lays it out). */
sadm_status dit_prepare(sadm_dit *m, int N, int inference);

/* Loads the DiT in an open file; tensors whose names start with one of other_prefixes
 * (NULL-terminated; e.g. a checkpoint's "ema.") are left to the caller. */
sadm_status dit_load_open_file(const sadm_st_file *f, const char *path, const sadm_dit_config *fallback,
                               const char *const *other_prefixes, sadm_dit **out);

/* Prefixes of a training checkpoint's other tensors (EMA, moments, the SADM encoder). */
extern const char *const dit_checkpoint_prefixes[];

/* Config <-> safetensors metadata. */
sadm_status sadm_dit_write_metadata(const sadm_dit_config *cfg, sadm_st_writer *w);
/* 1 when the file carries DiT metadata (cfg filled), 0 when it has none, or an error. */
sadm_status sadm_dit_read_metadata(const sadm_st_file *f, const char *path, sadm_dit_config *cfg, int *found);
/* A config from the tensor shapes of a DiT file without metadata (official checkpoints). */
sadm_status sadm_dit_config_infer(const sadm_st_file *f, const char *path, sadm_dit_config *c);

#endif
