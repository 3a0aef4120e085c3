/* Writing safetensors files: header built with jansson (insertion order kept), padded
 * with spaces so that the data starts 8-byte aligned, as the reference writer does. */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "io.h"

typedef struct {
    char *name;
    sadm_dtype dtype;
    int ndim;
    int64_t shape[SADM_MAX_DIMS];
    size_t nbytes;
    const void *data;
} entry;

struct sadm_st_writer {
    entry *entries;
    size_t count, cap;
    json_t *metadata;
};

sadm_st_writer *sadm_st_writer_new(void) {
    sadm_st_writer *w = calloc(1, sizeof *w);
    if (w && !(w->metadata = json_object())) {
        free(w);
        w = NULL;
    }
    return w;
}

void sadm_st_writer_free(sadm_st_writer *w) {
    if (!w) return;
    for (size_t i = 0; i < w->count; i++) free(w->entries[i].name);
    free(w->entries);
    json_decref(w->metadata);
    free(w);
}

sadm_status sadm_st_writer_add(sadm_st_writer *w, const char *name, sadm_dtype dtype, int ndim,
                               const int64_t *shape, const void *data) {
    SADM_REQUIRE_PTR(w);
    SADM_REQUIRE_PTR(name);
    SADM_REQUIRE(*name && strcmp(name, "__metadata__") != 0, "sadm_st_writer_add: '%s' cannot be a tensor name", name);
    SADM_REQUIRE(sadm_dtype_size(dtype) > 0, "sadm_st_writer_add: tensor '%s': unknown dtype %d", name, (int)dtype);
    SADM_REQUIRE(ndim >= 0 && ndim <= SADM_MAX_DIMS && (ndim == 0 || shape),
                 "sadm_st_writer_add: tensor '%s': ndim must be 0..%d with a shape", name, SADM_MAX_DIMS);
    for (size_t i = 0; i < w->count; i++)
        SADM_REQUIRE(strcmp(w->entries[i].name, name) != 0, "sadm_st_writer_add: tensor '%s' added twice", name);
    size_t numel = 1;
    for (int d = 0; d < ndim; d++) {
        SADM_REQUIRE(shape[d] >= 0, "sadm_st_writer_add: tensor '%s': negative dimension %d", name, d);
        numel *= (size_t)shape[d];
    }
    SADM_REQUIRE(data || numel == 0, "sadm_st_writer_add: tensor '%s': data is NULL", name);
    if (w->count == w->cap) {
        size_t cap = w->cap ? 2 * w->cap : 64;
        entry *e = realloc(w->entries, cap * sizeof *e);
        if (!e) return sadm_error(SADM_ERR_NOMEM, "sadm_st_writer_add: out of memory");
        w->entries = e, w->cap = cap;
    }
    entry *e = &w->entries[w->count];
    memset(e, 0, sizeof *e);
    if (!(e->name = strdup(name))) return sadm_error(SADM_ERR_NOMEM, "sadm_st_writer_add: out of memory");
    e->dtype = dtype, e->ndim = ndim, e->data = data, e->nbytes = numel * sadm_dtype_size(dtype);
    for (int d = 0; d < ndim; d++) e->shape[d] = shape[d];
    w->count++;
    return SADM_OK;
}

sadm_status sadm_st_writer_metadata(sadm_st_writer *w, const char *key, const char *value) {
    SADM_REQUIRE_PTR(w);
    SADM_REQUIRE_PTR(key);
    SADM_REQUIRE_PTR(value);
    if (json_object_set_new(w->metadata, key, json_string(value)) != 0)
        return sadm_error(SADM_ERR_ARG, "sadm_st_writer_metadata: key '%s' or its value is not valid UTF-8", key);
    return SADM_OK;
}

typedef struct {
    const sadm_st_writer *w;
    const char *header;
    size_t header_len, padded_len;
} save_ctx;

static int write_body(void *p, FILE *f) {
    save_ctx *c = p;
    unsigned char len[8];
    for (int i = 0; i < 8; i++) len[i] = (unsigned char)((uint64_t)c->padded_len >> (8 * i));
    if (fwrite(len, 1, 8, f) != 8 || fwrite(c->header, 1, c->header_len, f) != c->header_len) return -1;
    for (size_t i = c->header_len; i < c->padded_len; i++)
        if (fputc(' ', f) == EOF) return -1;
    for (size_t i = 0; i < c->w->count; i++) {
        const entry *e = &c->w->entries[i];
        if (e->nbytes && fwrite(e->data, 1, e->nbytes, f) != e->nbytes) return -1;
    }
    return 0;
}

sadm_status sadm_st_writer_save(sadm_st_writer *w, const char *path) {
    SADM_REQUIRE_PTR(w);
    SADM_REQUIRE_PTR(path);
    json_t *root = json_object();
    if (!root) return sadm_error(SADM_ERR_NOMEM, "%s: out of memory", path);
    int bad = json_object_size(w->metadata) && json_object_set(root, "__metadata__", w->metadata);
    size_t offset = 0;
    for (size_t i = 0; i < w->count && !bad; i++) {
        const entry *e = &w->entries[i];
        json_t *shape = json_array();
        for (int d = 0; d < e->ndim; d++) bad |= json_array_append_new(shape, json_integer(e->shape[d]));
        json_t *t = json_pack("{s:s, s:o, s:[I, I]}", "dtype", sadm_dtype_name(e->dtype), "shape", shape,
                              "data_offsets", (json_int_t)offset, (json_int_t)(offset + e->nbytes));
        bad |= !t || json_object_set_new(root, e->name, t);
        offset += e->nbytes;
    }
    char *header = bad ? NULL : json_dumps(root, JSON_COMPACT);
    json_decref(root);
    if (!header) return sadm_error(SADM_ERR_NOMEM, "%s: could not build the header (out of memory or bad UTF-8 in a name)", path);
    save_ctx c = {w, header, strlen(header), 0};
    c.padded_len = (c.header_len + 7) / 8 * 8;
    sadm_status st = sadm_atomic_write(path, write_body, &c);
    free(header);
    return st;
}
