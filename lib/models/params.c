#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "params.h"

size_t sadm_ptab_add(sadm_param_table *t, const char *name, int trainable, int ndim, const int64_t *shape) {
    if (t->count == t->cap) {
        size_t cap = t->cap ? 2 * t->cap : 64;
        sadm_param *p = realloc(t->items, cap * sizeof *p);
        if (!p) return (size_t)-1;
        t->items = p, t->cap = cap;
    }
    sadm_param *p = &t->items[t->count];
    memset(p, 0, sizeof *p);
    if (!(p->name = strdup(name))) return (size_t)-1;
    p->ndim = ndim;
    p->numel = 1;
    for (int d = 0; d < ndim; d++) p->shape[d] = shape[d], p->numel *= (size_t)shape[d];
    /* 16-float (64-byte) alignment for every view keeps vector loads aligned */
    p->offset = (t->total + 15) / 16 * 16;
    p->trainable = trainable;
    t->total = p->offset + p->numel;
    return t->count++;
}

void sadm_ptab_free(sadm_param_table *t) {
    for (size_t i = 0; i < t->count; i++) free((char *)t->items[i].name);
    free(t->items);
    memset(t, 0, sizeof *t);
}

size_t sadm_ptab_find(const sadm_param_table *t, const char *name) {
    for (size_t i = 0; i < t->count; i++)
        if (strcmp(t->items[i].name, name) == 0) return i;
    return (size_t)-1;
}

/* Strict number syntax for values read from files: no leading blanks or '+', nothing after
 * the number, finite; integers in plain decimal digits (no '.', exponent or hex). */
static int parse_strict(const char *s, int integer, double *out) {
    const char *digits = s + (*s == '-');
    if (!(*digits >= '0' && *digits <= '9') && !(!integer && *digits == '.')) return 0;
    /* integers: digits only; numbers: decimal digits, point, exponent (no hex, inf, nan) */
    if (strspn(digits, integer ? "0123456789" : "0123456789.eE+-") != strlen(digits)) return 0;
    char *end;
    double v = strtod(s, &end);
    if (*end || !isfinite(v)) return 0;
    *out = v;
    return 1;
}

sadm_status sadm_meta_number(const sadm_st_file *f, const char *path, const char *key, int integer, double lo, double hi,
                             double *out) {
    const char *s = sadm_st_metadata(f, key);
    if (!s) return sadm_error(SADM_ERR_FORMAT, "%s: __metadata__ has no '%s'", path, key);
    double v = 0;
    const char *kind = integer ? "an integer" : "a finite number";
    if (!parse_strict(s, integer, &v))
        return sadm_error(SADM_ERR_FORMAT, "%s: __metadata__ '%s' is '%.40s', expected %s", path, key, s, kind);
    if (!(v >= lo && v <= hi))
        return sadm_error(SADM_ERR_FORMAT, "%s: __metadata__ '%s' is '%.40s', expected %s in [%.17g, %.17g]", path, key, s,
                          kind, lo, hi);
    *out = v;
    return SADM_OK;
}

sadm_status sadm_meta_u64(const sadm_st_file *f, const char *path, const char *key, uint64_t *out) {
    const char *s = sadm_st_metadata(f, key);
    if (!s) return sadm_error(SADM_ERR_FORMAT, "%s: __metadata__ has no '%s'", path, key);
    int ok = *s != 0 && strlen(s) <= 20;
    uint64_t v = 0;
    for (const char *c = s; ok && *c; c++)
        ok = *c >= '0' && *c <= '9' && sadm_mul_u64(v, 10, &v) && sadm_add_u64(v, (uint64_t)(*c - '0'), &v);
    if (!ok)
        return sadm_error(SADM_ERR_FORMAT, "%s: __metadata__ '%s' is '%.40s', expected an unsigned 64-bit integer", path, key, s);
    *out = v;
    return SADM_OK;
}

sadm_status sadm_meta_int(const sadm_st_file *f, const char *path, const char *key, int *out) {
    double v;
    sadm_status st = sadm_meta_number(f, path, key, 1, -1e9, 1e9, &v);
    if (!st) *out = (int)v;
    return st;
}

sadm_status sadm_meta_float(const sadm_st_file *f, const char *path, const char *key, float *out) {
    double v;
    sadm_status st = sadm_meta_number(f, path, key, 0, -3.4e38, 3.4e38, &v);
    if (!st) *out = (float)v;
    return st;
}

sadm_status sadm_meta_write_fields(sadm_st_writer *w, const char *prefix, const sadm_meta_field *fields, size_t n,
                                   const void *obj) {
    char key[128], v[32];
    for (size_t i = 0; i < n; i++) {
        const char *at = (const char *)obj + fields[i].offset;
        int iv;
        float fv;
        if (fields[i].kind == SADM_META_FLOAT) {
            memcpy(&fv, at, sizeof fv);
            snprintf(v, sizeof v, "%.9g", fv);
        } else {
            memcpy(&iv, at, sizeof iv);
            if (fields[i].kind == SADM_META_BOOL) snprintf(v, sizeof v, "%s", iv ? "True" : "False");
            else snprintf(v, sizeof v, "%d", iv);
        }
        snprintf(key, sizeof key, "%s%s", prefix, fields[i].key);
        sadm_status st = sadm_st_writer_metadata(w, key, v);
        if (st) return st;
    }
    return SADM_OK;
}

sadm_status sadm_meta_read_fields(const sadm_st_file *f, const char *path, const char *prefix,
                                  const sadm_meta_field *fields, size_t n, void *obj) {
    char key[128];
    for (size_t i = 0; i < n; i++) {
        char *at = (char *)obj + fields[i].offset;
        snprintf(key, sizeof key, "%s%s", prefix, fields[i].key);
        sadm_status st = SADM_OK;
        int iv = 0;
        float fv = 0;
        if (fields[i].kind == SADM_META_FLOAT) {
            if (!(st = sadm_meta_float(f, path, key, &fv))) memcpy(at, &fv, sizeof fv);
        } else if (fields[i].kind == SADM_META_INT) {
            if (!(st = sadm_meta_int(f, path, key, &iv))) memcpy(at, &iv, sizeof iv);
        } else {
            const char *s = sadm_st_metadata(f, key);
            if (!s) return sadm_error(SADM_ERR_FORMAT, "%s: __metadata__ has no '%s'", path, key);
            if (!strcmp(s, "True") || !strcmp(s, "true") || !strcmp(s, "1")) iv = 1;
            else if (!strcmp(s, "False") || !strcmp(s, "false") || !strcmp(s, "0")) iv = 0;
            else return sadm_error(SADM_ERR_FORMAT, "%s: __metadata__ '%s' is '%s', expected True or False", path, key, s);
            memcpy(at, &iv, sizeof iv);
        }
        if (st) return st;
    }
    return SADM_OK;
}

sadm_status sadm_ptab_write(const sadm_param_table *t, const float *data, const char *prefix, int only_trainable,
                            sadm_st_writer *w) {
    char name[256];
    for (size_t i = 0; i < t->count; i++) {
        const sadm_param *p = &t->items[i];
        if (only_trainable && !p->trainable) continue;
        snprintf(name, sizeof name, "%s%s", prefix, p->name);
        sadm_status st = sadm_st_writer_add(w, name, SADM_DTYPE_F32, p->ndim, p->shape, data + p->offset);
        if (st) return st;
    }
    return SADM_OK;
}

sadm_status sadm_ptab_read(const sadm_param_table *t, const sadm_st_file *f, const char *prefix, int only_trainable,
                           float *data) {
    char name[256];
    for (size_t i = 0; i < t->count; i++) {
        const sadm_param *p = &t->items[i];
        if (only_trainable && !p->trainable) continue;
        snprintf(name, sizeof name, "%s%s", prefix, p->name);
        sadm_status st = sadm_st_read_f32(f, name, p->ndim, p->shape, data + p->offset);
        if (st) return st;
    }
    return SADM_OK;
}

float *sadm_ptab_grad(const sadm_param_table *t, float **grad, sadm_backend *be) {
    if (!*grad && (*grad = be->alloc(be, SADM_DTYPE_F32, t->total)) && be->zero(be, *grad, t->total * sizeof(float))) {
        be->free(be, *grad);
        *grad = NULL;
    }
    return *grad;
}

sadm_status sadm_ptab_zero_grad(const sadm_param_table *t, float **grad, sadm_backend *be, const char *what) {
    if (!sadm_ptab_grad(t, grad, be)) return sadm_error(SADM_ERR_NOMEM, "%s: out of memory for the gradients", what);
    return be->zero(be, *grad, t->total * sizeof(float));
}

sadm_status sadm_ptab_check_only(const sadm_param_table *t, const sadm_st_file *f, const char *path, const char *what) {
    for (size_t i = 0; i < sadm_st_count(f); i++) {
        const char *name = sadm_st_tensor(f, i)->name;
        if (sadm_ptab_find(t, name) == (size_t)-1)
            return sadm_error(SADM_ERR_FORMAT, "%s: tensor '%s' is not a parameter of %s", path, name, what);
    }
    return SADM_OK;
}

sadm_status sadm_model_size_check(const char *what, uint64_t params, const char *config, const sadm_st_file *f,
                                  const char *path) {
    if (f) {
        uint64_t have = 0;
        for (size_t i = 0; i < sadm_st_count(f); i++) have += sadm_st_tensor(f, i)->nbytes;
        if (have / 2 < params) /* F16/BF16, the smallest float type a file may hold */
            return sadm_error(SADM_ERR_FORMAT,
                              "%s: the metadata describes %s of %llu parameters (%s), but the file holds only %llu bytes "
                              "of tensors",
                              path, what, (unsigned long long)params, config, (unsigned long long)have);
    }
    char why[256];
    snprintf(why, sizeof why, "%.4g G parameters (%s)", (double)params / 1e9, config);
    return sadm_memory_check(what, params > UINT64_MAX / 4 ? UINT64_MAX : 4 * params, why);
}

/* The sizes a DiT and a ViT encoder share, each bounded on its own first (generously:
 * DiT-XL/2 has depth 28, width 1152, 16 heads, 64x64 latents at 512²) so that their
 * products fit an int and an error names the field; `what` starts the message. */
#define IN_RANGE(field, lo, hi)                                                                    \
    SADM_REQUIRE(field >= (lo) && field <= (hi), "%s: " #field " must lie in [%d, %d], got %d", what, (lo), (hi), field)
sadm_status sadm_transformer_sizes_check(const char *what, int input_size, int patch_size, int in_channels,
                                         int hidden_size, int depth, int num_heads, float mlp_ratio) {
    IN_RANGE(input_size, 1, 4096);
    IN_RANGE(patch_size, 1, 256);
    IN_RANGE(in_channels, 1, 1024);
    IN_RANGE(hidden_size, 1, 65536);
    IN_RANGE(depth, 0, 1024);
    IN_RANGE(num_heads, 1, 4096);
    SADM_REQUIRE(isfinite(mlp_ratio) && mlp_ratio > 0 && mlp_ratio <= 64, "%s: mlp_ratio must lie in (0, 64], got %g", what,
                 mlp_ratio);
    SADM_REQUIRE(input_size % patch_size == 0, "%s: input_size %d must be a positive multiple of patch_size %d", what,
                 input_size, patch_size);
    SADM_REQUIRE(hidden_size % num_heads == 0, "%s: hidden_size %d must be a positive multiple of num_heads %d", what,
                 hidden_size, num_heads);
    SADM_REQUIRE(hidden_size % 4 == 0, "%s: hidden_size %d must be a multiple of 4 (2-D sin-cos position embedding)", what,
                 hidden_size);
    SADM_REQUIRE((int)(hidden_size * mlp_ratio) > 0, "%s: mlp_ratio %g gives an MLP of no width", what, mlp_ratio);
    return SADM_OK;
}
#undef IN_RANGE
