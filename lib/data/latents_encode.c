/* sadm_encode_image_folder: an ImageNet-layout folder through the VAE into latent shards
 * (the layout is in lib/sadm.h). Resumability rests on two facts: shard k's images are
 * fixed by the sorted file list and the shard size, and each image's latent depends on
 * nothing but the image, the VAE and (seed, its index), since the VAE encodes one image at
 * a time and the Philox stream is per image. A shard therefore either exists complete
 * (written atomically, naming the settings' hash) or is encoded again, bytes unchanged. */
#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "../io/io.h"
#include "../models/params.h"
#include "dataset.h"

#define DEFAULT_IMAGE_SIZE 256
#define DEFAULT_SHARD_SIZE 4096
#define MAX_SHARD_SIZE (1 << 20)
#define DECODE_BATCH 16 /* images decoded in parallel before the VAE takes them one by one */

#define FNV_BASIS 0xcbf29ce484222325ULL
static uint64_t fnv1a(uint64_t h, const void *p, size_t n) {
    const unsigned char *b = p;
    for (size_t i = 0; i < n; i++) h = (h ^ b[i]) * 0x100000001b3ULL;
    return h;
}

static void hex64(uint64_t h, char out[17]) { snprintf(out, 17, "%016llx", (unsigned long long)h); }

/* The file list (paths below root, labels): a changed folder must not resume old shards. */
static uint64_t files_hash(const sadm_dataset *d, size_t root_len) {
    uint64_t h = FNV_BASIS;
    for (size_t i = 0; i < d->n; i++) {
        const char *rel = d->paths[i] + root_len + 1;
        h = fnv1a(h, rel, strlen(rel) + 1);
        h = fnv1a(h, &d->labels[i], sizeof d->labels[i]);
    }
    return h;
}

/* The VAE's configuration and weights (the weights only where they are host memory). */
static uint64_t vae_hash(sadm_vae *v) {
    const sadm_vae_config *c = sadm_vae_get_config(v);
    int ints[] = {c->in_channels, c->out_channels, c->latent_channels, c->num_blocks, c->layers_per_block,
                  c->norm_num_groups, c->mid_attention, c->quant_conv, c->post_quant_conv};
    uint64_t h = fnv1a(FNV_BASIS, ints, sizeof ints);
    h = fnv1a(h, c->block_out_channels, sizeof c->block_out_channels);
    h = fnv1a(h, &c->scaling_factor, sizeof c->scaling_factor);
    const float *w = sadm_vae_param_data(v);
    if (w) h = fnv1a(h, w, sadm_vae_param_total(v) * sizeof *w);
    return h;
}

typedef struct {
    sadm_vae *vae;
    const sadm_dataset *d;
    sadm_encode_config c;
    const char *root, *out;
    size_t root_len;
    int C, h, w, S; /* latent channels and size; image size */
    size_t in_per, lat_per, elt;
    char settings_hash[17];
    const sadm_encode_hooks *hooks;
    size_t fresh; /* images read by this call */
} job;

static json_t *settings_json(const job *j, const char *fh, const char *vh) {
    return json_pack("{s:s, s:i, s:i, s:b, s:s, s:s, s:I, s:i, s:f, s:[i, i, i], s:i, s:I, s:s, s:s}", "format",
                     LATENT_FORMAT, "version", LATENT_VERSION, "image_size", j->S, "flip", j->c.flip, "posterior",
                     j->c.posterior_mean ? "mean" : "sample", "dtype", sadm_dtype_name(j->c.dtype), "seed",
                     (json_int_t)j->c.seed, "shard_size", j->c.shard_size, "scaling_factor",
                     (double)sadm_vae_get_config(j->vae)->scaling_factor, "latent_shape", j->C, j->h, j->w,
                     "num_classes", j->d->classes, "images", (json_int_t)j->d->n, "files_fnv1a", fh, "vae_fnv1a", vh);
}

/* A manifest a previous run left must describe the same encoding. */
static sadm_status check_previous(const char *mpath, json_t *settings) {
    json_error_t je;
    json_t *old = json_load_file(mpath, 0, &je);
    if (!old) return sadm_error(SADM_ERR_FORMAT, "%s: not readable JSON (%s, line %d): delete it to start over", mpath, je.text, je.line);
    sadm_status st = SADM_OK;
    const char *key;
    json_t *want;
    json_object_foreach(settings, key, want) {
        json_t *had = json_object_get(old, key);
        if (had && json_equal(had, want)) continue;
        char *a = had ? json_dumps(had, JSON_ENCODE_ANY) : NULL, *b = json_dumps(want, JSON_ENCODE_ANY);
        const char *why = !strcmp(key, "files_fnv1a") || !strcmp(key, "images")   ? " (the image folder changed)"
                          : !strcmp(key, "vae_fnv1a") ? " (another VAE or other weights)"
                                                      : "";
        st = sadm_error(SADM_ERR_ARG,
                        "%s: the shards there were encoded with %s %s, this run has %s%s: use another output folder, "
                        "or delete that one to start over",
                        mpath, key, a ? a : "(absent)", b ? b : "?", why);
        free(a), free(b);
        break;
    }
    json_decref(old);
    return st;
}

static int dump_json(void *ctx, FILE *f) {
    char *text = json_dumps(ctx, JSON_INDENT(1));
    int rc = !text || fputs(text, f) < 0 || fputc('\n', f) == EOF;
    free(text);
    return rc;
}

static sadm_status write_manifest(const job *j, json_t *settings, int complete, json_t *shards, json_t *corrupt,
                                  size_t encoded) {
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", j->out, LATENT_MANIFEST);
    json_t *m = json_deep_copy(settings), *classes = json_array();
    for (int k = 0; k < j->d->classes; k++) json_array_append_new(classes, json_string(j->d->class_names[k]));
    json_object_set_new(m, "settings_fnv1a", json_string(j->settings_hash));
    json_object_set_new(m, "classes", classes);
    json_object_set_new(m, "complete", json_boolean(complete));
    if (complete) {
        json_object_set_new(m, "encoded", json_integer((json_int_t)encoded));
        json_object_set(m, "shards", shards);
        json_object_set(m, "corrupt", corrupt);
    }
    sadm_status st = sadm_atomic_write(path, dump_json, m);
    json_decref(m);
    return st;
}

/* The metadata value `key` of f (strict decimal, as sadm_meta_u64 reads it) equals want. */
static int meta_is(const sadm_st_file *f, const char *key, uint64_t want) {
    uint64_t v;
    return sadm_meta_u64(f, "", key, &v) == SADM_OK && v == want;
}

/* 1 when shard k exists complete with these settings: *rows gets its row count and its
 * skipped files are appended to corrupt. */
static int shard_complete(const job *j, size_t k, size_t first, size_t count, json_t *corrupt, size_t *rows) {
    char path[4096];
    latent_shard_path(j->out, k, path, sizeof path);
    sadm_st_file *f;
    if (sadm_st_open(path, &f)) return 0; /* absent or damaged: encoded again */
    const char *hash = sadm_st_metadata(f, "sadm.settings"), *skipped = sadm_st_metadata(f, "sadm.skipped");
    uint64_t r = 0;
    int ok = hash && !strcmp(hash, j->settings_hash) && meta_is(f, "sadm.shard", k) && meta_is(f, "sadm.first", first) &&
             meta_is(f, "sadm.images", count) && sadm_meta_u64(f, path, "sadm.rows", &r) == SADM_OK && r <= count &&
             skipped;
    json_t *list = ok ? json_loads(skipped, 0, NULL) : NULL;
    ok = ok && json_is_array(list) && json_array_size(list) == count - (size_t)r;
    if (ok && r > 0) {
        int64_t xs[4] = {(int64_t)r, j->C, j->h, j->w};
        ok = latent_tensor_is(f, "x", j->c.dtype, 4, xs) && latent_tensor_is(f, "y", SADM_DTYPE_I64, 1, xs) &&
             (!j->c.flip || latent_tensor_is(f, "x_flip", j->c.dtype, 4, xs));
    }
    if (ok) {
        json_array_extend(corrupt, list);
        *rows = (size_t)r;
    }
    json_decref(list);
    sadm_st_close(f);
    return ok;
}

/* One image's latent: x (3, S, S) -> dst (C, h, w) in the shard's dtype. stream = 2 i + flipped. */
static sadm_status encode_one(const job *j, const float *x, uint64_t stream, float *mean, float *logvar, float *eps,
                              void *dst) {
    SADM_TRY(sadm_vae_encode(j->vae, 1, j->S, j->S, x, mean, j->c.posterior_mean ? NULL : logvar));
    const float sf = sadm_vae_get_config(j->vae)->scaling_factor;
    if (!j->c.posterior_mean) {
        /* diffusers' DiagonalGaussianDistribution.sample: mean + exp(0.5 logvar) * randn */
        SADM_TRY(sadm_rng_normal(j->c.seed, stream, 0, j->lat_per, eps));
        for (size_t i = 0; i < j->lat_per; i++) mean[i] = mean[i] + expf(0.5f * logvar[i]) * eps[i];
    }
    for (size_t i = 0; i < j->lat_per; i++) mean[i] *= sf;
    sadm_from_f32(j->c.dtype, mean, j->lat_per, dst);
    return SADM_OK;
}

typedef struct {
    float *img, *flipped, *mean, *logvar, *eps;
    unsigned char *x, *xf;
    int64_t *y;
    sadm_status *st;
    char **why;
} buffers;

static sadm_status save_shard(const job *j, size_t k, size_t first, size_t count, size_t rows, const buffers *b,
                              json_t *skipped) {
    char path[4096], num[32];
    latent_shard_path(j->out, k, path, sizeof path);
    sadm_st_writer *w = sadm_st_writer_new();
    char *sk = json_dumps(skipped, JSON_COMPACT);
    sadm_status st = w && sk ? SADM_OK : sadm_error(SADM_ERR_NOMEM, "%s: out of memory", path);
    int64_t xs[4] = {(int64_t)rows, j->C, j->h, j->w}, ys[1] = {(int64_t)rows};
    if (!st && rows) st = sadm_st_writer_add(w, "x", j->c.dtype, 4, xs, b->x);
    if (!st && rows && j->c.flip) st = sadm_st_writer_add(w, "x_flip", j->c.dtype, 4, xs, b->xf);
    if (!st && rows) st = sadm_st_writer_add(w, "y", SADM_DTYPE_I64, 1, ys, b->y);
    if (!st) st = sadm_st_writer_metadata(w, "sadm.settings", j->settings_hash);
#define META_NUM(key, v)                                                                                           \
    if (!st) snprintf(num, sizeof num, "%zu", (size_t)(v)), st = sadm_st_writer_metadata(w, key, num)
    META_NUM("sadm.shard", k);
    META_NUM("sadm.first", first);
    META_NUM("sadm.images", count);
    META_NUM("sadm.rows", rows);
#undef META_NUM
    if (!st) st = sadm_st_writer_metadata(w, "sadm.skipped", sk);
    if (!st) st = sadm_st_writer_save(w, path);
    sadm_st_writer_free(w);
    free(sk);
    return st;
}

/* Encodes images [first, first + count) into shard k; skipped images go to `skipped`. */
static sadm_status encode_shard(job *j, size_t k, size_t first, size_t count, const buffers *b, json_t *skipped,
                                size_t *rows_out) {
    size_t rows = 0;
    for (size_t b0 = 0; b0 < count; b0 += DECODE_BATCH) {
        const int nb = (int)(count - b0 < DECODE_BATCH ? count - b0 : DECODE_BATCH);
#pragma omp parallel for schedule(dynamic, 1) if (!sadm_in_parallel())
        for (int i = 0; i < nb; i++) {
            b->st[i] = sadm_dataset_get(j->d, first + b0 + (size_t)i, 0, b->img + (size_t)i * j->in_per, NULL);
            b->why[i] = b->st[i] ? strdup(sadm_last_error()) : NULL;
        }
        sadm_status st = SADM_OK;
        for (int i = 0; i < nb && !st; i++) {
            const size_t idx = first + b0 + (size_t)i;
            const char *path = j->d->paths[idx], *why = b->why[i] ? b->why[i] : "out of memory";
            if (b->st[i] == SADM_ERR_NOMEM) {
                st = sadm_error(SADM_ERR_NOMEM, "%s", why);
            } else if (b->st[i] && j->c.strict) {
                st = sadm_error(b->st[i], "%s (the image cannot be used; without strict it would be skipped)", why);
            } else if (b->st[i]) {
                json_array_append_new(skipped, json_pack("{s:s, s:s}", "file", path + j->root_len + 1, "error", why));
                if (j->hooks && j->hooks->skipped) j->hooks->skipped(j->hooks->ctx, path, why);
            } else {
                const float *x = b->img + (size_t)i * j->in_per;
                st = encode_one(j, x, 2 * (uint64_t)idx, b->mean, b->logvar, b->eps, b->x + rows * j->lat_per * j->elt);
                if (!st && j->c.flip) {
                    memcpy(b->flipped, x, j->in_per * sizeof(float));
                    dataset_mirror(b->flipped, (size_t)3 * j->S, (size_t)j->S);
                    st = encode_one(j, b->flipped, 2 * (uint64_t)idx + 1, b->mean, b->logvar, b->eps,
                                    b->xf + rows * j->lat_per * j->elt);
                }
                b->y[rows++] = j->d->labels[idx];
            }
        }
        for (int i = 0; i < nb; i++) free(b->why[i]), b->why[i] = NULL;
        if (st) return st;
        j->fresh += (size_t)nb;
        if (j->hooks && j->hooks->progress) j->hooks->progress(j->hooks->ctx, first + b0 + (size_t)nb, j->d->n, j->fresh);
    }
    *rows_out = rows;
    return save_shard(j, k, first, count, rows, b, skipped);
}

/* Test hook: SADM_ENCODE_KILL_AFTER=k makes the process kill itself (SIGKILL, as a crash
 * or an out-of-memory kill would) once it has written k shards. */
static void maybe_die(size_t written) {
    const char *e = getenv("SADM_ENCODE_KILL_AFTER");
    if (e && *e && strtoull(e, NULL, 10) == written) raise(SIGKILL);
}

static sadm_status make_dir(const char *dir) {
    if (mkdir(dir, 0777) == 0 || errno == EEXIST) {
        struct stat sb;
        if (stat(dir, &sb) == 0 && S_ISDIR(sb.st_mode)) return SADM_OK;
        return sadm_error(SADM_ERR_IO, "%s: exists and is not a folder", dir);
    }
    return sadm_error(SADM_ERR_IO, "cannot create the output folder %s: %s", dir, strerror(errno));
}

static sadm_status run(job *j, sadm_encode_report *r) {
    char fh[17], vh[17], mpath[4096];
    hex64(files_hash(j->d, j->root_len), fh);
    hex64(vae_hash(j->vae), vh);
    json_t *settings = settings_json(j, fh, vh), *shards = json_array(), *corrupt = json_array();
    char *compact = settings ? json_dumps(settings, JSON_COMPACT) : NULL;
    sadm_status st = settings && shards && corrupt && compact ? SADM_OK : sadm_error(SADM_ERR_NOMEM, "sadm_encode_image_folder: out of memory");
    if (!st) hex64(fnv1a(FNV_BASIS, compact, strlen(compact)), j->settings_hash);
    free(compact);
    snprintf(mpath, sizeof mpath, "%s/%s", j->out, LATENT_MANIFEST);
    struct stat sb;
    if (!st && stat(mpath, &sb) == 0) st = check_previous(mpath, settings);
    if (!st) st = write_manifest(j, settings, 0, NULL, NULL, 0);

    const size_t S = (size_t)j->c.shard_size, nshards = (j->d->n + S - 1) / S, bytes = S * j->lat_per * j->elt;
    buffers b = {0};
    if (!st) st = sadm_memory_check("sadm encode's shard buffers", 2 * (uint64_t)bytes, "lower the shard size");
    if (!st) {
        b.img = malloc(DECODE_BATCH * j->in_per * sizeof(float)), b.flipped = malloc(j->in_per * sizeof(float));
        b.mean = malloc(j->lat_per * sizeof(float)), b.logvar = malloc(j->lat_per * sizeof(float));
        b.eps = malloc(j->lat_per * sizeof(float)), b.x = malloc(bytes), b.xf = j->c.flip ? malloc(bytes) : NULL;
        b.y = malloc(S * sizeof(int64_t)), b.st = calloc(DECODE_BATCH, sizeof *b.st);
        b.why = calloc(DECODE_BATCH, sizeof *b.why);
        if (!b.img || !b.flipped || !b.mean || !b.logvar || !b.eps || !b.x || (j->c.flip && !b.xf) || !b.y || !b.st || !b.why)
            st = sadm_error(SADM_ERR_NOMEM, "sadm encode: out of memory for shards of %zu images", S);
    }
    size_t encoded = 0, kept = 0, written = 0;
    for (size_t k = 0; k < nshards && !st; k++) {
        const size_t first = k * S, count = j->d->n - first < S ? j->d->n - first : S;
        size_t rows = 0;
        char name[64];
        snprintf(name, sizeof name, LATENT_SHARD_NAME, k);
        if (shard_complete(j, k, first, count, corrupt, &rows)) {
            kept++;
            if (j->hooks && j->hooks->progress) j->hooks->progress(j->hooks->ctx, first + count, j->d->n, j->fresh);
        } else {
            json_t *skipped = json_array();
            st = skipped ? encode_shard(j, k, first, count, &b, skipped, &rows) : sadm_error(SADM_ERR_NOMEM, "out of memory");
            if (!st) json_array_extend(corrupt, skipped);
            json_decref(skipped);
            if (!st) maybe_die(++written);
        }
        if (!st)
            json_array_append_new(shards, json_pack("{s:s, s:I, s:I, s:I}", "file", name, "first", (json_int_t)first,
                                                    "images", (json_int_t)count, "rows", (json_int_t)rows));
        encoded += rows;
    }
    if (!st) st = write_manifest(j, settings, 1, shards, corrupt, encoded);
    if (!st && r) {
        r->images = j->d->n, r->encoded = encoded, r->corrupt = json_array_size(corrupt);
        r->shards = nshards, r->shards_kept = kept;
    }
    free(b.img), free(b.flipped), free(b.mean), free(b.logvar), free(b.eps), free(b.x), free(b.xf), free(b.y);
    free(b.st), free(b.why);
    json_decref(settings), json_decref(shards), json_decref(corrupt);
    return st;
}

sadm_status sadm_encode_image_folder(sadm_vae *v, const char *root, const char *out_dir, const sadm_encode_config *c,
                                     const sadm_encode_hooks *hooks, sadm_encode_report *report) {
    SADM_REQUIRE_PTR(v);
    SADM_REQUIRE_PTR(root);
    SADM_REQUIRE_PTR(out_dir);
    SADM_REQUIRE_PTR(c);
    job j = {.vae = v, .c = *c, .root = root, .out = out_dir, .hooks = hooks};
    if (!j.c.image_size) j.c.image_size = DEFAULT_IMAGE_SIZE;
    if (!j.c.shard_size) j.c.shard_size = DEFAULT_SHARD_SIZE;
    const sadm_vae_config *vc = sadm_vae_get_config(v);
    const int f = sadm_vae_factor(vc);
    SADM_REQUIRE(j.c.dtype == SADM_DTYPE_F32 || j.c.dtype == SADM_DTYPE_BF16,
                 "sadm encode: latents are stored as F32 or BF16, not %s", sadm_dtype_name(j.c.dtype));
    SADM_REQUIRE(j.c.image_size >= f && j.c.image_size <= 4096 && j.c.image_size % f == 0,
                 "sadm encode: image size %d must be a multiple of the VAE's factor %d in [%d, 4096]", j.c.image_size, f, f);
    SADM_REQUIRE(j.c.shard_size >= 1 && j.c.shard_size <= MAX_SHARD_SIZE, "sadm encode: shard size %d must lie in [1, %d]",
                 j.c.shard_size, MAX_SHARD_SIZE);
    SADM_REQUIRE(j.c.seed <= (uint64_t)INT64_MAX, "sadm encode: seed %llu must be below 2^63", (unsigned long long)j.c.seed);
    SADM_REQUIRE(vc->in_channels == 3, "sadm encode: the VAE takes %d channels; images have 3", vc->in_channels);
    sadm_dataset *d;
    SADM_TRY(sadm_dataset_image_folder(root, j.c.image_size, &d));
    j.d = d, j.S = j.c.image_size, j.C = vc->latent_channels, j.h = j.w = j.c.image_size / f;
    j.root_len = strlen(root);
    j.in_per = (size_t)3 * j.S * j.S, j.lat_per = (size_t)j.C * j.h * j.w, j.elt = sadm_dtype_size(j.c.dtype);
    sadm_status st = make_dir(out_dir);
    if (!st) st = run(&j, report);
    sadm_dataset_free(d);
    return st;
}
