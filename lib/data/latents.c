/* A folder of latent shards (lib/data/latents_encode.c writes them) as a training data set.
 * The shards stay memory-mapped: ImageNet's 1.28 M latents are 21 GB (F32, 256²) to 84 GB
 * (512²), so a sample is converted to float from the mapping when the loader asks for it
 * and the page cache decides what stays in memory. */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "../io/io.h"
#include "dataset.h"

#define MAX_CLASSES 10000000 /* a DiT's bound (dit_config.c) */

void latent_shard_path(const char *dir, size_t k, char *buf, size_t len) {
    snprintf(buf, len, "%s/" LATENT_SHARD_NAME, dir, k);
}

int latent_tensor_is(const sadm_st_file *f, const char *name, sadm_dtype dtype, int ndim, const int64_t *shape) {
    const sadm_tensor_info *t = sadm_st_find(f, name);
    return t && t->dtype == dtype && t->ndim == ndim && !memcmp(t->shape, shape, (size_t)ndim * sizeof *shape);
}

void dataset_close_latents(sadm_dataset *d) {
    for (size_t k = 0; d->shards && k < d->num_shards; k++) sadm_st_close(d->shards[k].file);
    free(d->shards);
    d->shards = NULL, d->num_shards = 0;
}

void dataset_get_latent(const sadm_dataset *d, size_t i, int flip, float *x) {
    size_t lo = 0, hi = d->num_shards; /* the last shard whose first sample is <= i */
    while (hi - lo > 1) {
        size_t mid = (lo + hi) / 2;
        if (d->shards[mid].first <= i) lo = mid;
        else hi = mid;
    }
    const latent_shard *s = &d->shards[lo];
    const size_t per = d->row_bytes / sadm_dtype_size(d->dtype), row = i - s->first;
    const unsigned char *src = (flip && s->x_flip ? s->x_flip : s->x) + row * d->row_bytes;
    sadm_to_f32(d->dtype, src, per, x); /* sadm_to_f32 copies byte-wise: rows may be unaligned */
    if (flip && !s->x_flip) dataset_mirror(x, per / (size_t)d->size, (size_t)d->size);
}

/* Training reads rows in a random order: without this, each page fault of a mapped shard
 * reads ahead 128 KB or more around one 8-16 KB row, for nothing. */
static void advise_random(const void *data, size_t bytes) {
    const uintptr_t page = (uintptr_t)sysconf(_SC_PAGESIZE), start = (uintptr_t)data & ~(page - 1);
    if (bytes) (void)madvise((void *)start, (uintptr_t)data + bytes - start, MADV_RANDOM);
}

static int get_int(json_t *m, const char *key, long long lo, long long hi, long long *out) {
    json_t *v = json_object_get(m, key);
    if (!json_is_integer(v) || json_integer_value(v) < lo || json_integer_value(v) > hi) return 0;
    *out = json_integer_value(v);
    return 1;
}

/* Shard k as the manifest lists it: opened, its tensors checked against the manifest. */
static sadm_status open_shard(sadm_dataset *d, const char *dir, json_t *entry, size_t k, const char *hash, int flip,
                              latent_shard *s) {
    char path[4096];
    long long rows;
    latent_shard_path(dir, k, path, sizeof path);
    if (!json_is_object(entry) || !get_int(entry, "rows", 0, 1 << 20, &rows))
        return sadm_error(SADM_ERR_FORMAT, "%s/%s: shard %zu's entry lacks its row count", dir, LATENT_MANIFEST, k);
    s->rows = (size_t)rows, s->first = d->n;
    if (rows == 0) return SADM_OK;
    SADM_TRY(sadm_st_open(path, &s->file));
    const char *h = sadm_st_metadata(s->file, "sadm.settings");
    if (!h || strcmp(h, hash))
        return sadm_error(SADM_ERR_FORMAT, "%s: made with other settings (%s) than %s/%s says (%s): encode again", path,
                          h ? h : "none", dir, LATENT_MANIFEST, hash);
    const int64_t want[4] = {rows, d->channels, d->size, d->size};
    const char *bad = !latent_tensor_is(s->file, "x", d->dtype, 4, want)                  ? "x"
                      : flip && !latent_tensor_is(s->file, "x_flip", d->dtype, 4, want) ? "x_flip"
                                                                                        : NULL;
    if (bad)
        return sadm_error(SADM_ERR_FORMAT, "%s: needs '%s' of shape (%lld, %d, %d, %d) and dtype %s", path, bad, rows,
                          d->channels, d->size, d->size, sadm_dtype_name(d->dtype));
    if (!latent_tensor_is(s->file, "y", SADM_DTYPE_I64, 1, want))
        return sadm_error(SADM_ERR_FORMAT, "%s: needs 'y' of shape (%lld) and dtype I64", path, rows);
    const sadm_tensor_info *x = sadm_st_find(s->file, "x"), *xf = sadm_st_find(s->file, "x_flip"),
                           *y = sadm_st_find(s->file, "y");
    s->x = x->data, s->x_flip = flip ? xf->data : NULL;
    advise_random(x->data, x->nbytes);
    if (flip) advise_random(xf->data, xf->nbytes);
    memcpy(d->labels + d->n, y->data, (size_t)rows * sizeof(int64_t));
    for (size_t i = 0; i < (size_t)rows; i++)
        if (d->labels[d->n + i] < 0 || d->labels[d->n + i] >= d->classes)
            return sadm_error(SADM_ERR_FORMAT, "%s: label %lld of row %zu is not a class in [0, %d)", path,
                              (long long)d->labels[d->n + i], i, d->classes);
    d->n += (size_t)rows;
    return SADM_OK;
}

static sadm_status load(sadm_dataset *d, const char *dir, json_t *m, const char *mpath) {
    const char *format = json_string_value(json_object_get(m, "format"));
    long long version, C, h, w, classes, images;
    json_t *shape = json_object_get(m, "latent_shape"), *shards = json_object_get(m, "shards");
    if (!format || strcmp(format, LATENT_FORMAT) || !get_int(m, "version", 1, 1 << 30, &version))
        return sadm_error(SADM_ERR_FORMAT, "%s: not a manifest of sadm encode (format \"%s\", version 1 expected)", mpath,
                          LATENT_FORMAT);
    if (version != LATENT_VERSION)
        return sadm_error(SADM_ERR_UNSUPPORTED, "%s: format version %lld; this build reads version %d", mpath, version,
                          LATENT_VERSION);
    if (!json_is_true(json_object_get(m, "complete")))
        return sadm_error(SADM_ERR_FORMAT, "%s: the encoding is not finished: run the same sadm encode again to finish it",
                          mpath);
    if (json_array_size(shape) != 3 || !get_int(m, "num_classes", 1, MAX_CLASSES, &classes) ||
        !get_int(m, "images", 1, 1LL << 40, &images) || !json_is_array(shards))
        return sadm_error(SADM_ERR_FORMAT, "%s: needs latent_shape [C, h, w], num_classes, images and shards", mpath);
    C = json_integer_value(json_array_get(shape, 0)), h = json_integer_value(json_array_get(shape, 1));
    w = json_integer_value(json_array_get(shape, 2));
    if (C < 1 || C > 1024 || h < 1 || h > 4096 || w != h)
        return sadm_error(SADM_ERR_FORMAT, "%s: latent_shape [%lld, %lld, %lld]: expected 1..1024 channels of a square of "
                          "1..4096 a side", mpath, C, h, w);
    const char *dtype = json_string_value(json_object_get(m, "dtype"));
    const char *hash = json_string_value(json_object_get(m, "settings_fnv1a"));
    if (!dtype || !sadm_dtype_parse(dtype, &d->dtype) || (d->dtype != SADM_DTYPE_F32 && d->dtype != SADM_DTYPE_BF16))
        return sadm_error(SADM_ERR_FORMAT, "%s: dtype \"%s\": expected \"F32\" or \"BF16\"", mpath, dtype ? dtype : "");
    if (!hash) return sadm_error(SADM_ERR_FORMAT, "%s: lacks settings_fnv1a", mpath);
    const int flip = json_is_true(json_object_get(m, "flip"));
    d->kind = DATASET_LATENTS, d->channels = (int)C, d->size = (int)h, d->classes = (int)classes;
    d->row_bytes = (size_t)C * h * w * sadm_dtype_size(d->dtype);
    json_t *names = json_object_get(m, "classes");
    if (json_array_size(names) == (size_t)classes && (d->class_names = calloc((size_t)classes, sizeof(char *))))
        for (size_t k = 0; k < (size_t)classes; k++) {
            const char *s = json_string_value(json_array_get(names, k));
            d->class_names[k] = strdup(s ? s : "");
        }
    /* labels for the rows the shards list (each at most 2^20), not for what "images" claims */
    const size_t ns = json_array_size(shards);
    size_t total = 0;
    for (size_t k = 0; k < ns; k++) {
        long long rows;
        if (!get_int(json_array_get(shards, k), "rows", 0, 1 << 20, &rows))
            return sadm_error(SADM_ERR_FORMAT, "%s: shard %zu's entry lacks its row count (0 to 2^20)", mpath, k);
        total += (size_t)rows;
        if (total > (size_t)images)
            return sadm_error(SADM_ERR_FORMAT, "%s: the shards hold more rows than its %lld images", mpath, images);
    }
    SADM_TRY(sadm_memory_check("the labels of the latent shards", (uint64_t)total * sizeof(int64_t), NULL));
    d->shards = calloc(ns ? ns : 1, sizeof *d->shards);
    d->labels = malloc((total ? total : 1) * sizeof(int64_t));
    if (!d->shards || !d->labels) return sadm_error(SADM_ERR_NOMEM, "%s: out of memory for %zu labels", mpath, total);
    for (size_t k = 0; k < ns; k++) {
        d->num_shards = k + 1;
        SADM_TRY(open_shard(d, dir, json_array_get(shards, k), k, hash, flip, &d->shards[k]));
    }
    if (d->n == 0) return sadm_error(SADM_ERR_FORMAT, "%s: no latents in its %zu shards (every image was left out)", mpath, ns);
    /* empty shards are dropped so that every shard the lookup finds holds its sample */
    size_t kept = 0;
    for (size_t k = 0; k < d->num_shards; k++)
        if (d->shards[k].rows) d->shards[kept++] = d->shards[k];
    d->num_shards = kept;
    return SADM_OK;
}

sadm_status sadm_dataset_latents(const char *dir, sadm_dataset **out) {
    SADM_REQUIRE_PTR(dir);
    SADM_REQUIRE_PTR(out);
    *out = NULL;
    char mpath[4096];
    snprintf(mpath, sizeof mpath, "%s/%s", dir, LATENT_MANIFEST);
    json_error_t je;
    json_t *m = json_load_file(mpath, 0, &je);
    if (!m) return sadm_error(SADM_ERR_FORMAT, "%s: %s (line %d): not a folder of latents written by sadm encode", mpath, je.text, je.line);
    sadm_dataset *d = sadm_dataset_alloc();
    sadm_status st = d ? load(d, dir, m, mpath) : sadm_error(SADM_ERR_NOMEM, "%s: out of memory", mpath);
    json_decref(m);
    if (st) {
        if (d) d->kind = DATASET_LATENTS; /* so that freeing closes the shards opened */
        sadm_dataset_free(d);
        return st;
    }
    *out = d;
    return SADM_OK;
}
