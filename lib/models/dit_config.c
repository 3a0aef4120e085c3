/* DiT configurations: the named ones of the paper, validation, and the safetensors
 * metadata that carries a config with its weights. */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dit_internal.h"

/* DiT's model sizes (the paper's Table 1) */
static const struct {
    const char *size;
    int depth, hidden, heads;
} DIT_SIZES[] = {{"S", 12, 384, 6}, {"B", 12, 768, 12}, {"L", 24, 1024, 16}, {"XL", 28, 1152, 16}};
#define N_DIT_SIZES (sizeof DIT_SIZES / sizeof DIT_SIZES[0])

sadm_status sadm_dit_config_named(const char *name, int input_size, int in_channels, int num_classes,
                                  sadm_dit_config *cfg) {
    SADM_REQUIRE_PTR(name);
    SADM_REQUIRE_PTR(cfg);
    char size[8];
    int patch = 0;
    if (sscanf(name, "DiT-%7[A-Z]/%d", size, &patch) != 2)
        return sadm_error(SADM_ERR_ARG, "model name '%s' is not of the form DiT-S/2 (sizes S, B, L, XL; patch 2, 4, 8)", name);
    for (size_t i = 0; i < N_DIT_SIZES; i++) {
        if (strcmp(DIT_SIZES[i].size, size) != 0) continue;
        if (patch != 2 && patch != 4 && patch != 8)
            return sadm_error(SADM_ERR_ARG, "model name '%s': patch size must be 2, 4 or 8", name);
        *cfg = (sadm_dit_config){.input_size = input_size, .patch_size = patch, .in_channels = in_channels,
                                 .hidden_size = DIT_SIZES[i].hidden, .depth = DIT_SIZES[i].depth,
                                 .num_heads = DIT_SIZES[i].heads,
                                 .mlp_ratio = 4.0f, .class_dropout_prob = 0.1f, .num_classes = num_classes,
                                 .learn_sigma = 1};
        return sadm_dit_config_check(cfg);
    }
    return sadm_error(SADM_ERR_ARG, "model name '%s': unknown size '%s' (S, B, L or XL)", name, size);
}

/* The config of a DiT file without metadata (official checkpoints) from its tensor shapes:
 * patch, channels and width from x_embedder.proj.weight, input size from pos_embed's token
 * count, depth from the blocks present, mlp ratio from fc1, learn_sigma from the final
 * layer's outputs, and the classes from the label table, whose last row DiT adds for
 * classifier-free guidance (so class_dropout_prob is taken as DiT's 0.1). The head count
 * is not in the shapes: it is DiT's for the widths of DiT-S/B/L/XL (6, 12, 16, 16). */
static const sadm_tensor_info *dims(const sadm_st_file *f, const char *name, int ndim) {
    const sadm_tensor_info *t = sadm_st_find(f, name);
    return t && t->ndim == ndim ? t : NULL;
}

sadm_status sadm_dit_config_infer(const sadm_st_file *f, const char *path, sadm_dit_config *c) {
    const sadm_tensor_info *x = dims(f, "x_embedder.proj.weight", 4), *pos = dims(f, "pos_embed", 3),
                           *y = dims(f, "y_embedder.embedding_table.weight", 2), *fc1 = dims(f, "blocks.0.mlp.fc1.weight", 2),
                           *out = dims(f, "final_layer.linear.weight", 2);
    if (!x || !pos || !y || !fc1 || !out)
        return sadm_error(SADM_ERR_FORMAT, "%s: the tensors do not show a DiT's shapes (x_embedder.proj.weight, pos_embed, "
                          "y_embedder.embedding_table.weight, blocks.0.mlp.fc1.weight, final_layer.linear.weight)", path);
    memset(c, 0, sizeof *c);
    c->hidden_size = (int)x->shape[0], c->in_channels = (int)x->shape[1], c->patch_size = (int)x->shape[2];
    int side = 0;
    while ((int64_t)(side + 1) * (side + 1) <= pos->shape[1]) side++;
    c->input_size = side * c->patch_size;
    char key[64];
    for (c->depth = 0; c->depth < 100000; c->depth++) {
        snprintf(key, sizeof key, "blocks.%d.attn.qkv.weight", c->depth);
        if (!sadm_st_find(f, key)) break;
    }
    c->mlp_ratio = (float)fc1->shape[0] / (float)(c->hidden_size ? c->hidden_size : 1);
    int64_t pp = (int64_t)c->patch_size * c->patch_size;
    c->learn_sigma = out->shape[0] == 2 * pp * c->in_channels;
    c->num_classes = (int)y->shape[0] - 1, c->class_dropout_prob = 0.1f;
    for (size_t i = 0; i < N_DIT_SIZES; i++)
        if (c->hidden_size == DIT_SIZES[i].hidden) c->num_heads = DIT_SIZES[i].heads;
    if (!c->num_heads)
        return sadm_error(SADM_ERR_FORMAT, "%s: no DiT metadata, and width %d is none of DiT-S/B/L/XL's, so the number of "
                          "heads is unknown; convert with `sadm convert` from a model with metadata", path, c->hidden_size);
    if ((int64_t)side * side != pos->shape[1] || pos->shape[2] != c->hidden_size ||
        (out->shape[0] != 2 * pp * c->in_channels && out->shape[0] != pp * c->in_channels))
        return sadm_error(SADM_ERR_FORMAT, "%s: the DiT tensors' shapes do not fit together (pos_embed %lld tokens, final "
                          "layer %lld outputs for patch %d and %d channels)", path, (long long)pos->shape[1],
                          (long long)out->shape[0], c->patch_size, c->in_channels);
    return sadm_dit_config_check(c);
}

/* The shared sizes first (params.c), then the DiT's own fields; memory is checked when
 * the model is made. */
sadm_status sadm_dit_config_check(const sadm_dit_config *c) {
    SADM_REQUIRE_PTR(c);
    sadm_status st = sadm_transformer_sizes_check("DiT config", c->input_size, c->patch_size, c->in_channels,
                                                  c->hidden_size, c->depth, c->num_heads, c->mlp_ratio);
    if (st) return st;
    SADM_REQUIRE(c->num_classes >= 1 && c->num_classes <= 10000000, "DiT config: num_classes must lie in [1, 10000000], got %d",
                 c->num_classes);
    SADM_REQUIRE(c->class_dropout_prob >= 0 && c->class_dropout_prob < 1,
                 "DiT config: class_dropout_prob must lie in [0, 1), got %g", c->class_dropout_prob);
    SADM_REQUIRE(c->learn_sigma == 0 || c->learn_sigma == 1, "DiT config: learn_sigma must be 0 or 1");
    return SADM_OK;
}

uint64_t sadm_dit_config_param_count(const sadm_dit_config *c) {
    /* in double: every field is bounded, so this cannot overflow and is exact below 2^53 */
    double D = c->hidden_size, T = (double)(c->input_size / c->patch_size) * (c->input_size / c->patch_size);
    double mlp_dim = (int)(c->hidden_size * c->mlp_ratio), pp = (double)c->patch_size * c->patch_size;
    double F_in = c->in_channels * pp, F_out = (c->learn_sigma ? 2.0 : 1.0) * c->in_channels * pp;
    double block = D * 6 * D + 6 * D + D * 3 * D + 3 * D + D * D + D + D * mlp_dim + mlp_dim + mlp_dim * D + D;
    double n = F_in * D + D + 256 * D + D + D * D + D + (c->num_classes + (c->class_dropout_prob > 0)) * D + T * D + c->depth * block + D * 2 * D +
               2 * D + D * F_out + F_out;
    return n < 1.8e19 ? (uint64_t)n : UINT64_MAX;
}

#define FIELD(name, kind) {#name, kind, offsetof(sadm_dit_config, name)}
static const sadm_meta_field dit_fields[] = {
    FIELD(input_size, SADM_META_INT),     FIELD(patch_size, SADM_META_INT),
    FIELD(in_channels, SADM_META_INT),    FIELD(hidden_size, SADM_META_INT),
    FIELD(depth, SADM_META_INT),          FIELD(num_heads, SADM_META_INT),
    FIELD(mlp_ratio, SADM_META_FLOAT),    FIELD(class_dropout_prob, SADM_META_FLOAT),
    FIELD(num_classes, SADM_META_INT),    FIELD(learn_sigma, SADM_META_BOOL),
};
#undef FIELD

sadm_status sadm_dit_write_metadata(const sadm_dit_config *c, sadm_st_writer *w) {
    return sadm_meta_write_fields(w, "", dit_fields, sizeof dit_fields / sizeof dit_fields[0], c);
}

sadm_status sadm_dit_read_metadata(const sadm_st_file *f, const char *path, sadm_dit_config *c, int *found) {
    *found = 0;
    if (!sadm_st_metadata(f, "hidden_size")) return SADM_OK;
    sadm_status st = sadm_meta_read_fields(f, path, "", dit_fields, sizeof dit_fields / sizeof dit_fields[0], c);
    if (st) return st;
    st = sadm_dit_config_check(c);
    if (st) {
        char why[512];
        snprintf(why, sizeof why, "%s", sadm_last_error());
        return sadm_error(SADM_ERR_FORMAT, "%s: metadata describes an invalid model: %s", path, why);
    }
    *found = 1;
    return SADM_OK;
}
