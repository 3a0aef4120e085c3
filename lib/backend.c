/* Backend registry, selection by name ($SADM_DEVICE, --device) and the CPU backend: host
 * memory from sadm_alloc and the public operators as its table. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend.h"

/* ------------------------------------------------------------------ precision */
const char *sadm_precision_name(sadm_precision p) {
    return p == SADM_PRECISION_FP32 ? "fp32" : p == SADM_PRECISION_BF16 ? "bf16" : "?";
}

sadm_status sadm_precision_parse(const char *name, sadm_precision *out) {
    SADM_REQUIRE_PTR(name);
    SADM_REQUIRE_PTR(out);
    if (!strcmp(name, "fp32")) return *out = SADM_PRECISION_FP32, SADM_OK;
    if (!strcmp(name, "bf16")) return *out = SADM_PRECISION_BF16, SADM_OK;
    return sadm_error(SADM_ERR_ARG, "unknown precision '%s' (choices: fp32, bf16)", name);
}

/* ------------------------------------------------------------------ the CPU backend */
static void *cpu_alloc(sadm_backend *be, sadm_dtype dtype, size_t count) {
    (void)be;
    size_t size = sadm_dtype_size(dtype);
    if (!size || (count && size > SIZE_MAX / count)) return NULL;
    return sadm_alloc(count * size);
}

static void cpu_free(sadm_backend *be, void *p) {
    (void)be;
    sadm_free(p);
}

static sadm_status cpu_zero(sadm_backend *be, void *p, size_t bytes) {
    (void)be;
    if (bytes) memset(p, 0, bytes);
    return SADM_OK;
}

static sadm_status cpu_copy(sadm_backend *be, void *dst, const void *src, size_t bytes) {
    (void)be;
    if (bytes && dst != src) memmove(dst, src, bytes);
    return SADM_OK;
}

static sadm_status cpu_sync(sadm_backend *be) {
    (void)be;
    return SADM_OK;
}

/* fp32 storage and compute; bf16 storage is expressible (2 bytes an element) but no
 * operator reads it yet (the bf16 CPU issue). */
static int cpu_dtype(const sadm_backend *be, sadm_dtype dtype) {
    (void)be;
    return dtype == SADM_DTYPE_F32 || dtype == SADM_DTYPE_BF16 || dtype == SADM_DTYPE_I64 || dtype == SADM_DTYPE_U8;
}

static int cpu_precision(const sadm_backend *be, sadm_precision p) {
    (void)be;
    return p == SADM_PRECISION_FP32 || p == SADM_PRECISION_BF16;
}

const sadm_ops sadm_cpu_ops = {
    .matmul = sadm_matmul,
    .matmul_batched = sadm_matmul_batched,
    .linear_forward = sadm_linear_forward,
    .linear_backward = sadm_linear_backward,
    .layernorm_forward = sadm_layernorm_forward,
    .layernorm_backward = sadm_layernorm_backward,
    .group_norm_forward = sadm_group_norm_forward,
    .group_norm_backward = sadm_group_norm_backward,
    .gelu_forward = sadm_gelu_forward,
    .gelu_backward = sadm_gelu_backward,
    .silu_forward = sadm_silu_forward,
    .silu_backward = sadm_silu_backward,
    .relu_forward = sadm_relu_forward,
    .relu_backward = sadm_relu_backward,
    .cross_entropy = sadm_cross_entropy,
    .softmax_forward = sadm_softmax_forward,
    .softmax_backward = sadm_softmax_backward,
    .add = sadm_add,
    .add_rows = sadm_add_rows,
    .gated_add_forward = sadm_gated_add_forward,
    .gated_add_backward = sadm_gated_add_backward,
    .modulate_forward = sadm_modulate_forward,
    .modulate_backward = sadm_modulate_backward,
    .mean_tokens_forward = sadm_mean_tokens_forward,
    .mean_tokens_backward = sadm_mean_tokens_backward,
    .attention_forward = sadm_attention_forward,
    .attention_backward = sadm_attention_backward,
    .patchify = sadm_patchify,
    .patchify_backward = sadm_patchify_backward,
    .unpatchify = sadm_unpatchify,
    .unpatchify_backward = sadm_unpatchify_backward,
    .split_chunks = sadm_split_chunks,
    .merge_chunks = sadm_merge_chunks,
    .i64_to_f32 = sadm_i64_to_f32,
    .conv2d_forward = sadm_conv2d_forward,
    .conv2d_backward = sadm_conv2d_backward,
    .upsample_nearest_forward = sadm_upsample_nearest_forward,
    .upsample_nearest_backward = sadm_upsample_nearest_backward,
    .pool2d_forward = sadm_pool2d_forward,
    .pool2d_backward = sadm_pool2d_backward,
    .conv2d_nhwc_forward = sadm_conv2d_nhwc_forward,
    .pool2d_nhwc_forward = sadm_pool2d_nhwc_forward,
    .mean_pixels_nhwc = sadm_mean_pixels_nhwc,
    .linear_forward_bf16 = sadm_linear_forward_bf16,
    .linear_backward_bf16 = sadm_linear_backward_bf16,
    .attention_forward_bf16 = sadm_attention_forward_bf16,
    .attention_backward_bf16 = sadm_attention_backward_bf16,
    .linear_forward_exact = sadm_linear_forward_exact,
    .copy_channels = sadm_copy_channels,
    .fid_resize = sadm_fid_resize,
    .embedding_forward = sadm_embedding_forward,
    .embedding_backward = sadm_embedding_backward,
    .timestep_embedding = sadm_timestep_embedding,
    .pos_embed_2d = sadm_pos_embed_2d,
    .sum = sadm_sum,
    .sumsq = sadm_sumsq,
    .dot = sadm_dot,
    .adamw_step = sadm_adamw_step,
    .ema_update = sadm_ema_update,
    .clip_grad_norm = sadm_clip_grad_norm,
    .scale = sadm_scale,
    .rng_uniform = sadm_rng_uniform,
    .rng_normal = sadm_rng_normal,
    .q_sample = sadm_q_sample,
    .diffusion_loss = sadm_diffusion_loss,
    .sampler_update = sadm_sampler_update,
    .l2_normalize_forward = sadm_l2_normalize_forward,
    .l2_normalize_backward = sadm_l2_normalize_backward,
    .predict_x0 = sadm_predict_x0,
    .x0_grad_to_eps = sadm_x0_grad_to_eps,
    .struct_weights = sadm_struct_weights,
    .struct_loss = sadm_struct_loss,
};

static sadm_backend cpu_backend = {
    .name = "cpu",
    .host_memory = 1,
    .alloc = cpu_alloc,
    .free = cpu_free,
    .zero = cpu_zero,
    .copy = cpu_copy,
    .upload = cpu_copy,
    .download = cpu_copy,
    .sync = cpu_sync,
    .supports_dtype = cpu_dtype,
    .supports_precision = cpu_precision,
    .ops = &sadm_cpu_ops,
};

sadm_backend *sadm_backend_cpu(void) { return &cpu_backend; }

const char *sadm_backend_name(const sadm_backend *be) { return be ? be->name : "(none)"; }

float *sadm_backend_floats(sadm_backend *be, size_t count, const char *what) {
    float *p = be->alloc(be, SADM_DTYPE_F32, count);
    if (!p) sadm_error(SADM_ERR_NOMEM, "%s: out of memory for %zu floats on backend %s", what, count, be->name);
    return p;
}

const float *sadm_backend_host_view(sadm_backend *be, const float *p, size_t count, float **copy) {
    *copy = NULL;
    if (be->host_memory) return p;
    if (!(*copy = sadm_alloc(count * sizeof(float)))) {
        sadm_error(SADM_ERR_NOMEM, "out of memory for a host copy of %zu floats", count);
        return NULL;
    }
    if (be->download(be, *copy, p, count * sizeof(float))) {
        sadm_free(*copy);
        *copy = NULL;
        return NULL;
    }
    return *copy;
}

sadm_status sadm_backend_clone(sadm_backend *from, sadm_backend *to, const void *src, sadm_dtype dtype, size_t count,
                               void **out) {
    *out = NULL;
    size_t bytes = count * sadm_dtype_size(dtype);
    void *fresh = to->alloc(to, dtype, count);
    const void *host = from->host_memory ? src : sadm_alloc(bytes);
    sadm_status st = fresh && host ? SADM_OK
                                   : sadm_error(SADM_ERR_NOMEM, "out of memory moving %zu bytes to backend %s", bytes, to->name);
    if (!st && host != src) st = from->download(from, (void *)host, src, bytes);
    if (!st) st = to->upload(to, fresh, host, bytes);
    if (host != src) sadm_free((void *)host);
    if (st) {
        if (fresh) to->free(to, fresh);
        return st;
    }
    *out = fresh;
    return SADM_OK;
}

sadm_status sadm_backend_move(sadm_backend *from, sadm_backend *to, void **p, sadm_dtype dtype, size_t count) {
    if (!*p || from == to) return SADM_OK;
    void *fresh;
    SADM_TRY(sadm_backend_clone(from, to, *p, dtype, count, &fresh));
    from->free(from, *p);
    *p = fresh;
    return SADM_OK;
}

sadm_status sadm_backend_move_params(sadm_backend *from, sadm_backend *to, float **data, float **grad, size_t count) {
    float *d = *data, *g = *grad;
    SADM_TRY(sadm_backend_move(from, to, (void **)&d, SADM_DTYPE_F32, count));
    sadm_status st = sadm_backend_move(from, to, (void **)&g, SADM_DTYPE_F32, count);
    if (st) { /* the parameters go back where they were */
        sadm_backend_move(to, from, (void **)&d, SADM_DTYPE_F32, count);
        *data = d;
        return st;
    }
    *data = d, *grad = g;
    return SADM_OK;
}

sadm_status sadm_backend_upload(sadm_backend *be, void *dst, const void *host_src, size_t bytes) {
    SADM_REQUIRE_PTR(be);
    if (!bytes) return SADM_OK;
    SADM_REQUIRE_PTR(dst);
    SADM_REQUIRE_PTR(host_src);
    return be->upload(be, dst, host_src, bytes);
}

sadm_status sadm_backend_download(sadm_backend *be, void *host_dst, const void *src, size_t bytes) {
    SADM_REQUIRE_PTR(be);
    if (!bytes) return SADM_OK;
    SADM_REQUIRE_PTR(host_dst);
    SADM_REQUIRE_PTR(src);
    return be->download(be, host_dst, src, bytes);
}

sadm_status sadm_precision_choose(const char *name, const sadm_backend *be, sadm_precision *out, const char **why) {
    SADM_REQUIRE_PTR(name);
    SADM_REQUIRE_PTR(be);
    SADM_REQUIRE_PTR(out);
    static __thread char line[160];
    if (why) *why = "";
    if (strcmp(name, "auto") != 0) {
        if (strcmp(name, "fp32") && strcmp(name, "bf16"))
            return sadm_error(SADM_ERR_ARG, "unknown precision '%s' (choices: fp32, bf16, auto)", name);
        SADM_TRY(sadm_precision_parse(name, out));
        return sadm_backend_check_precision(be, *out);
    }
    /* the CPU's bf16 is worth it only where the hardware multiplies bf16 faster than fp32 */
    const char *cpu_why = NULL;
    int use = be->supports_precision(be, SADM_PRECISION_BF16) && (!be->host_memory || sadm_bf16_preferred(&cpu_why));
    *out = use ? SADM_PRECISION_BF16 : SADM_PRECISION_FP32;
    snprintf(line, sizeof line, "precision auto: %s (%s)", sadm_precision_name(*out),
             !be->host_memory ? (use ? "the backend runs bf16" : "the backend has no bf16")
             : cpu_why        ? cpu_why
                              : "the backend has no bf16");
    if (why) *why = line;
    return SADM_OK;
}

sadm_status sadm_backend_check_precision(const sadm_backend *be, sadm_precision p) {
    SADM_REQUIRE_PTR(be);
    if (be->supports_precision(be, p)) return SADM_OK;
    char choices[64] = "";
    for (int q = SADM_PRECISION_FP32; q <= SADM_PRECISION_BF16; q++)
        if (be->supports_precision(be, (sadm_precision)q))
            snprintf(choices + strlen(choices), sizeof choices - strlen(choices), "%s%s", *choices ? ", " : "",
                     sadm_precision_name((sadm_precision)q));
    return sadm_error(SADM_ERR_UNSUPPORTED, "precision %s is not available on backend %s (it runs: %s)",
                      sadm_precision_name(p), be->name, choices);
}

/* ------------------------------------------------------------------ registry */
typedef struct backend_entry {
    const char *name;
    /* NULL when not available, with *why set */
    sadm_backend *(*open)(const char **why);
} backend_entry;

static sadm_backend *open_cuda(const char **why) {
    *why = "built without the CUDA backend: gpu/ has no kernels yet";
    return NULL;
}

static sadm_backend *open_cpu(const char **why) {
    *why = "";
    return &cpu_backend;
}

static const backend_entry BACKENDS[] = {{"cuda", open_cuda}, {"cpu", open_cpu}};
#define N_BACKENDS (sizeof BACKENDS / sizeof BACKENDS[0])

size_t sadm_backend_count(void) { return N_BACKENDS; }
const char *sadm_backend_name_at(size_t i) { return i < N_BACKENDS ? BACKENDS[i].name : NULL; }

static const backend_entry *find(const char *name) {
    for (size_t i = 0; i < N_BACKENDS; i++)
        if (!strcmp(BACKENDS[i].name, name)) return &BACKENDS[i];
    return NULL;
}

int sadm_backend_available(const char *name, const char **why) {
    const char *reason = "unknown backend";
    const backend_entry *e = name ? find(name) : NULL;
    int ok = e && e->open(&reason) != NULL;
    if (why) *why = ok ? "" : reason;
    return ok;
}

static _Thread_local char fallback_note[256];

sadm_status sadm_backend_select(const char *name, sadm_backend **out, const char **note) {
    SADM_REQUIRE_PTR(out);
    *out = NULL;
    if (note) *note = "";
    const char *source = "device";
    if (!name || !*name) {
        name = getenv("SADM_DEVICE");
        source = "SADM_DEVICE";
        if (!name || !*name) name = "auto", source = "device";
    }
    const char *why = "";
    if (!strcmp(name, "auto")) {
        fallback_note[0] = 0;
        for (size_t i = 0; i < N_BACKENDS; i++) {
            sadm_backend *be = BACKENDS[i].open(&why);
            if (be) {
                *out = be;
                if (*fallback_note)
                    snprintf(fallback_note + strlen(fallback_note), sizeof fallback_note - strlen(fallback_note),
                             "; using %s", be->name);
                if (note) *note = fallback_note;
                return SADM_OK;
            }
            snprintf(fallback_note + strlen(fallback_note), sizeof fallback_note - strlen(fallback_note),
                     "%sdevice auto: %s is not available (%s)", *fallback_note ? "; " : "", BACKENDS[i].name, why);
        }
        return sadm_error(SADM_ERR_UNSUPPORTED, "%s", fallback_note);
    }
    const backend_entry *e = find(name);
    if (!e)
        return sadm_error(SADM_ERR_ARG, "%s '%s' is not a backend (choices: auto, cuda, cpu)", source, name);
    sadm_backend *be = e->open(&why);
    if (!be) return sadm_error(SADM_ERR_UNSUPPORTED, "%s %s: the backend is not available: %s", source, name, why);
    *out = be;
    return SADM_OK;
}
