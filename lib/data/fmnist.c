/* Fashion-MNIST in IDX format (big-endian header: magic 0x00000803 images / 0x00000801
 * labels, then the sizes), read through zlib, which also reads uncompressed files. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "dataset.h"

static uint32_t be32(const unsigned char *p) { return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3]; }

/* Reads exactly `total` bytes into a buffer that grows with what actually arrives, so
 * that a header declaring 2 GB in a tiny (or gzip-bombed) file costs no more memory than
 * the data it really holds. */
static sadm_status read_growing(gzFile f, const char *path, size_t total, uint8_t **data) {
    size_t have = 0, cap = 0;
    uint8_t *buf = NULL;
    while (have < total) {
        if (have == cap) {
            size_t next = cap ? 2 * cap : (size_t)1 << 20;
            if (next > total) next = total;
            uint8_t *b = realloc(buf, next);
            if (!b) {
                free(buf);
                return sadm_error(SADM_ERR_NOMEM, "%s: out of memory", path);
            }
            buf = b, cap = next;
        }
        int got = gzread(f, buf + have, (unsigned)(cap - have));
        if (got <= 0) {
            free(buf);
            return sadm_error(SADM_ERR_FORMAT, "%s: truncated: the header declares %zu data bytes, the file holds %zu", path,
                              total, have);
        }
        have += (size_t)got;
    }
    *data = buf;
    return SADM_OK;
}

sadm_status sadm_idx_read(const char *path, uint32_t magic, int ndim, uint32_t *dims, uint8_t **data) {
    gzFile f = gzopen(path, "rb");
    if (!f) return sadm_error(SADM_ERR_IO, "%s: cannot open: %s (install Debian's dataset-fashion-mnist or set SADM_FMNIST_DIR)",
                              path, strerror(errno));
    unsigned char head[16];
    size_t hl = 4 + 4 * (size_t)ndim;
    sadm_status st = SADM_OK;
    if (gzread(f, head, (unsigned)hl) != (int)hl) {
        st = sadm_error(SADM_ERR_FORMAT, "%s: file ends inside the IDX header", path);
    } else if (be32(head) != magic) {
        st = sadm_error(SADM_ERR_FORMAT, "%s: IDX magic 0x%08x, expected 0x%08x", path, be32(head), magic);
    } else {
        uint64_t total = 1;
        int fits = 1;
        for (int d = 0; d < ndim; d++) {
            dims[d] = be32(head + 4 + 4 * d);
            fits = fits && sadm_mul_u64(total, dims[d], &total);
        }
        /* 2^31 bytes: gzread's int count, and 30 times Fashion-MNIST's training set */
        if (!fits || total == 0 || total > ((uint64_t)1 << 31) - 1) {
            char sizes[64];
            int at = 0;
            for (int d = 0; d < ndim; d++) at += snprintf(sizes + at, sizeof sizes - (size_t)at, "%s%u", d ? "x" : "", dims[d]);
            st = sadm_error(SADM_ERR_FORMAT, "%s: IDX sizes %s: %s (at most 2^31 - 1 data bytes are read)", path, sizes,
                            !fits ? "their product overflows" : total ? "too large" : "no data");
        } else {
            st = read_growing(f, path, (size_t)total, data);
        }
    }
    gzclose(f);
    return st;
}

sadm_status sadm_dataset_fmnist(const char *dir, const char *split, sadm_dataset **out) {
    SADM_REQUIRE_PTR(out);
    *out = NULL;
    if (!split) split = "train";
    SADM_REQUIRE(!strcmp(split, "train") || !strcmp(split, "test"), "Fashion-MNIST split must be train or test, not '%s'", split);
    if (!dir) dir = getenv("SADM_FMNIST_DIR");
    if (!dir || !*dir) dir = SADM_FMNIST_DIR;
    const char *stem = strcmp(split, "train") ? "t10k" : "train";
    char ip[4096], lp[4096];
    snprintf(ip, sizeof ip, "%s/%s-images-idx3-ubyte.gz", dir, stem);
    snprintf(lp, sizeof lp, "%s/%s-labels-idx1-ubyte.gz", dir, stem);
    sadm_dataset *d = sadm_dataset_alloc();
    if (!d) return sadm_error(SADM_ERR_NOMEM, "Fashion-MNIST: out of memory");
    uint32_t idims[3], ldims[1];
    uint8_t *labels = NULL;
    sadm_status st = sadm_idx_read(ip, 0x00000803u, 3, idims, &d->pixels);
    if (!st) st = sadm_idx_read(lp, 0x00000801u, 1, ldims, &labels);
    if (!st && ldims[0] != idims[0])
        st = sadm_error(SADM_ERR_FORMAT, "%s has %u images but %s has %u labels", ip, idims[0], lp, ldims[0]);
    for (size_t i = 0; !st && i < ldims[0]; i++)
        if (labels[i] > 9) st = sadm_error(SADM_ERR_FORMAT, "%s: label %u at %zu is not a class 0..9", lp, labels[i], i);
    if (!st && !(d->labels = malloc(ldims[0] * sizeof(int64_t)))) st = sadm_error(SADM_ERR_NOMEM, "%s: out of memory", lp);
    for (size_t i = 0; !st && i < ldims[0]; i++) d->labels[i] = labels[i];
    free(labels);
    if (st) {
        sadm_dataset_free(d);
        return st;
    }
    d->kind = DATASET_U8_PADDED;
    d->n = idims[0], d->h = (int)idims[1], d->w = (int)idims[2], d->classes = 10, d->channels = 1;
    d->size = 32, d->pad = (32 - d->h) / 2;
    if (d->h != 28 || d->w != 28) {
        sadm_dataset_free(d);
        return sadm_error(SADM_ERR_FORMAT, "%s: images are %dx%d, Fashion-MNIST's are 28x28", ip, (int)idims[1], (int)idims[2]);
    }
    *out = d;
    return SADM_OK;
}

const uint8_t *sadm_dataset_raw(const sadm_dataset *d, size_t i, int *h, int *w) {
    if (!d || i >= d->n || d->kind != DATASET_U8_PADDED) return NULL;
    if (h) *h = d->h;
    if (w) *w = d->w;
    return d->pixels + i * (size_t)d->h * d->w;
}

/* ADM's scaling: x / 127.5 - 1; the padding is background (pixel 0, so -1). */
void dataset_get_u8_padded(const sadm_dataset *d, size_t i, int flip, float *x) {
    const uint8_t *src = d->pixels + i * (size_t)d->h * d->w;
    for (int r = 0; r < d->size; r++)
        for (int c = 0; c < d->size; c++) {
            int sr = r - d->pad, sc = (flip ? d->size - 1 - c : c) - d->pad;
            int in = sr >= 0 && sr < d->h && sc >= 0 && sc < d->w;
            x[r * d->size + c] = in ? (float)src[sr * d->w + sc] / 127.5f - 1.0f : -1.0f;
        }
}
