/* NumPy .npz files (a zip archive of .npy members, read through lib/io/zip.c), as ADM's
 * reference batches and statistics come: the .npy header (versions 1-3) and CRC-32
 * checks. Reading streams rows of a member, so a 10000×256×256×3 batch never needs to sit
 * in memory; deflated members are inflated forward as rows are asked for. Writing stores
 * members uncompressed (as np.savez), atomically. */
#include <stdio.h>
#include <sys/types.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "io.h"

typedef struct npz_member {
    char *name;              /* without ".npy" */
    size_t index;            /* in the zip */
    uint64_t size;
    uint32_t crc;
    /* the .npy inside */
    sadm_dtype dtype;
    int ndim;
    int64_t shape[SADM_MAX_DIMS];
    uint64_t data_offset;    /* of the array data within the uncompressed member */
    int parsed;
} npz_member;

struct sadm_npz {
    const char *path;        /* the zip's */
    sadm_zip *zip;
    npz_member *m;
    size_t count;
};

static uint16_t le16(const unsigned char *p) { return (uint16_t)(p[0] | p[1] << 8); }
static uint32_t le32(const unsigned char *p) { return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24; }

void sadm_npz_close(sadm_npz *z) {
    if (!z) return;
    for (size_t i = 0; i < z->count; i++) free(z->m[i].name);
    free(z->m);
    sadm_zip_close(z->zip);
    free(z);
}

sadm_status sadm_npz_open(const char *path, sadm_npz **out) {
    SADM_REQUIRE_PTR(path);
    SADM_REQUIRE_PTR(out);
    *out = NULL;
    sadm_npz *z = calloc(1, sizeof *z);
    if (!z) return sadm_error(SADM_ERR_NOMEM, "%s: out of memory", path);
    sadm_status st = sadm_zip_open(path, &z->zip);
    size_t count = sadm_zip_count(z->zip);
    if (!st && !(z->m = calloc(count ? count : 1, sizeof *z->m))) st = sadm_error(SADM_ERR_NOMEM, "%s: out of memory", path);
    for (size_t i = 0; !st && i < count; i++) {
        const char *name = sadm_zip_name(z->zip, i);
        size_t len = strlen(name), keep = len > 4 && !memcmp(name + len - 4, ".npy", 4) ? len - 4 : len;
        npz_member *m = &z->m[i];
        if (!(m->name = strndup(name, keep))) st = sadm_error(SADM_ERR_NOMEM, "%s: out of memory", path);
        m->index = i, m->size = sadm_zip_size(z->zip, i), m->crc = sadm_zip_crc(z->zip, i);
        z->count = i + 1;
    }
    if (st) {
        sadm_npz_close(z);
        return st;
    }
    z->path = sadm_zip_path(z->zip);
    *out = z;
    return SADM_OK;
}

size_t sadm_npz_count(const sadm_npz *z) { return z ? z->count : 0; }
const char *sadm_npz_name(const sadm_npz *z, size_t i) { return z && i < z->count ? z->m[i].name : NULL; }

static npz_member *find(sadm_npz *z, const char *name) {
    for (size_t i = 0; i < z->count; i++)
        if (!strcmp(z->m[i].name, name)) return &z->m[i];
    return NULL;
}

static sadm_status member_read(sadm_npz *z, npz_member *m, uint64_t pos, void *dst, size_t n) {
    return sadm_zip_read(z->zip, m->index, pos, dst, n);
}

/* The .npy header: magic, version, header length, then a Python dict literal. */
static sadm_status parse_npy(sadm_npz *z, npz_member *m) {
    if (m->parsed) return SADM_OK;
    unsigned char pre[12];
    sadm_status st = member_read(z, m, 0, pre, m->size < 12 ? (size_t)m->size : 12);
    if (st) return st;
    if (m->size < 12 || memcmp(pre, "\x93NUMPY", 6))
        return sadm_error(SADM_ERR_FORMAT, "%s: member '%s' is not a .npy array (bad magic)", z->path, m->name);
    int major = pre[6];
    uint64_t hlen = major == 1 ? le16(pre + 8) : le32(pre + 8), hstart = major == 1 ? 10 : 12;
    if (major < 1 || major > 3 || hlen > 1 << 20)
        return sadm_error(SADM_ERR_FORMAT, "%s: member '%s': unsupported .npy version %d", z->path, m->name, major);
    char *h = calloc(hlen + 1, 1);
    if (!h) return sadm_error(SADM_ERR_NOMEM, "%s: out of memory", z->path);
    if ((st = member_read(z, m, hstart, h, hlen))) {
        free(h);
        return st;
    }
    char descr[16] = "";
    const char *d = strstr(h, "'descr'"), *fo = strstr(h, "'fortran_order'"), *sh = strstr(h, "'shape'");
    int ok = d && fo && sh && sscanf(d, "'descr' : '%15[^']'", descr) + sscanf(d, "'descr': '%15[^']'", descr) >= 1;
    if (ok && strstr(fo, "True") == fo + strcspn(fo, "TF")) {
        free(h);
        return sadm_error(SADM_ERR_FORMAT, "%s: member '%s' is in Fortran order; save it C-contiguous", z->path, m->name);
    }
    m->ndim = 0;
    const char *p = ok ? strchr(sh, '(') : NULL;
    ok = ok && p;
    while (ok && *++p && *p != ')') {
        if (*p == ' ' || *p == ',') continue;
        char *end;
        long long v = strtoll(p, &end, 10);
        if (end == p || v < 0 || m->ndim == SADM_MAX_DIMS) ok = 0;
        else m->shape[m->ndim++] = v, p = end - 1;
    }
    free(h);
    static const struct {
        const char *descr;
        sadm_dtype dtype;
    } types[] = {{"<f4", SADM_DTYPE_F32}, {"<f8", SADM_DTYPE_F64}, {"<f2", SADM_DTYPE_F16}, {"|u1", SADM_DTYPE_U8},
                 {"<u1", SADM_DTYPE_U8},  {"<i8", SADM_DTYPE_I64}, {"<i4", SADM_DTYPE_I32}, {"|i1", SADM_DTYPE_I8},
                 {"|b1", SADM_DTYPE_BOOL}, {"<i2", SADM_DTYPE_I16}};
    int known = 0;
    for (size_t i = 0; ok && i < sizeof types / sizeof types[0]; i++)
        if (!strcmp(descr, types[i].descr)) m->dtype = types[i].dtype, known = 1;
    if (!ok) return sadm_error(SADM_ERR_FORMAT, "%s: member '%s': cannot parse the .npy header", z->path, m->name);
    if (!known)
        return sadm_error(SADM_ERR_FORMAT, "%s: member '%s' has dtype '%s' (supported: <f4 <f8 <f2 u1 <i8 <i4 <i2 i1 b1, little-endian)",
                          z->path, m->name, descr);
    m->data_offset = hstart + hlen;
    uint64_t bytes = 0;
    int fits = sadm_shape_bytes(m->ndim, m->shape, sadm_dtype_size(m->dtype), UINT64_MAX, &bytes);
    if (!fits || m->data_offset > m->size ||
        bytes != m->size - m->data_offset) {
        char shape[256] = "";
        for (int i = 0, at = 0; i < m->ndim && at < (int)sizeof shape; i++)
            at += snprintf(shape + at, sizeof shape - (size_t)at, "%s%lld", i ? ", " : "", (long long)m->shape[i]);
        return sadm_error(SADM_ERR_FORMAT, "%s: member '%s': shape (%s) of %s does not match its %llu data bytes%s", z->path,
                          m->name, shape, sadm_dtype_name(m->dtype),
                          (unsigned long long)(m->data_offset < m->size ? m->size - m->data_offset : 0),
                          fits ? "" : " (the shape's size overflows 64 bits)");
    }
    m->parsed = 1;
    return SADM_OK;
}

sadm_status sadm_npz_info(sadm_npz *z, const char *name, sadm_dtype *dtype, int *ndim, int64_t *shape) {
    SADM_REQUIRE_PTR(z);
    SADM_REQUIRE_PTR(name);
    npz_member *m = find(z, name);
    if (!m) return sadm_error(SADM_ERR_FORMAT, "%s: no array '%s'", z->path, name);
    sadm_status st = parse_npy(z, m);
    if (st) return st;
    if (dtype) *dtype = m->dtype;
    if (ndim) *ndim = m->ndim;
    if (shape) memcpy(shape, m->shape, (size_t)m->ndim * sizeof(int64_t));
    return SADM_OK;
}

sadm_status sadm_npz_read_rows(sadm_npz *z, const char *name, int64_t row0, int64_t nrows, void *dst) {
    SADM_REQUIRE_PTR(z);
    SADM_REQUIRE_PTR(name);
    SADM_REQUIRE_PTR(dst);
    npz_member *m = find(z, name);
    if (!m) return sadm_error(SADM_ERR_FORMAT, "%s: no array '%s'", z->path, name);
    sadm_status st = parse_npy(z, m);
    if (st) return st;
    int64_t rows = m->ndim ? m->shape[0] : 1;
    SADM_REQUIRE(row0 >= 0 && nrows >= 0 && row0 <= rows && nrows <= rows - row0, "%s: array '%s' has %lld rows, asked for %lld from row %lld",
                 z->path, name, (long long)rows, (long long)nrows, (long long)row0);
    uint64_t row_bytes = sadm_dtype_size(m->dtype);
    for (int i = 1; i < m->ndim; i++) row_bytes *= (uint64_t)m->shape[i];
    return member_read(z, m, m->data_offset + (uint64_t)row0 * row_bytes, dst, (size_t)((uint64_t)nrows * row_bytes));
}

/* crc updated with n bytes at p (zlib takes at most 4 GiB a call: 1 GiB pieces). */
static uLong crc_add(uLong crc, const void *p, size_t n) {
    for (size_t at = 0; at < n;) {
        uInt k = n - at < (1u << 30) ? (uInt)(n - at) : (1u << 30);
        crc = crc32(crc, (const unsigned char *)p + at, k), at += k;
    }
    return crc;
}

sadm_status sadm_npz_read(sadm_npz *z, const char *name, void *dst) {
    SADM_REQUIRE_PTR(z);
    npz_member *m = find(z, name);
    if (!m) return sadm_error(SADM_ERR_FORMAT, "%s: no array '%s'", z->path, name);
    sadm_status st = parse_npy(z, m);
    if (st) return st;
    if ((st = sadm_npz_read_rows(z, name, 0, m->ndim ? m->shape[0] : 1, dst))) return st;
    /* a whole read can check the member's CRC-32 (over header and data) */
    uLong crc = crc32(0L, Z_NULL, 0);
    unsigned char buf[1 << 14];
    for (uint64_t at = 0; at < m->data_offset;) {
        size_t n = m->data_offset - at < sizeof buf ? (size_t)(m->data_offset - at) : sizeof buf;
        if ((st = member_read(z, m, at, buf, n))) return st;
        crc = crc_add(crc, buf, n), at += n;
    }
    crc = crc_add(crc, dst, (size_t)(m->size - m->data_offset));
    if ((uint32_t)crc != m->crc)
        return sadm_error(SADM_ERR_FORMAT, "%s: member '%s': CRC-32 mismatch (corrupt file)", z->path, m->name);
    return SADM_OK;
}

/* ------------------------------------------------------------------ writing */
typedef struct npz_out {
    size_t count;
    const sadm_npz_array *arrays;
    /* sadm_npz_write_rows: array 0's rows come from produce, block_rows at a time */
    sadm_npz_rows_fn produce;
    void *ctx;
    int64_t block_rows;
    sadm_status produce_st;
    char produce_msg[1024];
} npz_out;

static const char *descr_of(sadm_dtype t) {
    switch (t) {
    case SADM_DTYPE_F32: return "<f4";
    case SADM_DTYPE_F64: return "<f8";
    case SADM_DTYPE_F16: return "<f2";
    case SADM_DTYPE_U8: return "|u1";
    case SADM_DTYPE_I64: return "<i8";
    case SADM_DTYPE_I32: return "<i4";
    case SADM_DTYPE_I16: return "<i2";
    case SADM_DTYPE_I8: return "|i1";
    case SADM_DTYPE_BOOL: return "|b1";
    default: return NULL;
    }
}

/* The .npy v1.0 header, padded with spaces so that the data starts at a multiple of 64. */
static size_t npy_header(const sadm_npz_array *a, char *h, size_t cap) {
    char shape[256] = "";
    size_t at = 0;
    for (int i = 0; i < a->ndim; i++) at += (size_t)snprintf(shape + at, sizeof shape - at, "%lld, ", (long long)a->shape[i]);
    if (a->ndim > 1) shape[at - 2] = 0; /* (3,) for one dimension, (3, 4) otherwise */
    else if (a->ndim == 1) shape[at - 1] = 0;
    char dict[400];
    int n = snprintf(dict, sizeof dict, "{'descr': '%s', 'fortran_order': False, 'shape': (%s), }", descr_of(a->dtype), shape);
    size_t total = (10 + (size_t)n + 1 + 63) / 64 * 64, hlen = total - 10;
    if (total > cap) return 0;
    memcpy(h, "\x93NUMPY\x01\x00", 8);
    h[8] = (char)(hlen & 0xFF), h[9] = (char)(hlen >> 8);
    memcpy(h + 10, dict, (size_t)n);
    memset(h + 10 + n, ' ', hlen - (size_t)n - 1);
    h[total - 1] = '\n';
    return total;
}

static void put16(unsigned char *p, unsigned v) { p[0] = (unsigned char)v, p[1] = (unsigned char)(v >> 8); }
static void put32(unsigned char *p, uint32_t v) { put16(p, v & 0xFFFF), put16(p + 2, v >> 16); }

static void put64(unsigned char *p, uint64_t v) { put32(p, (uint32_t)v), put32(p + 4, (uint32_t)(v >> 32)); }

/* Sizes and offsets from this many bytes on are written as zip64 (as Python's zipfile
 * reads them; numpy's np.load takes such files). SADM_NPZ_ZIP64_FROM lowers the limit so
 * that the tests can check the zip64 form on small files. */
static uint64_t zip64_from(void) {
    const char *e = getenv("SADM_NPZ_ZIP64_FROM");
    char *end;
    unsigned long long v = e && *e ? strtoull(e, &end, 10) : 0;
    return v > 0 && v < 0xFFFFFFFFull && !*end ? (uint64_t)v : 0xFFFFFFFFull;
}

#define CENTRAL_MAX (46 + 28) /* a central entry without its name, zip64 extra included */

/* A member's data: from memory, or from the producer a block of rows at a time; written
 * and added to *crc. 0 on success. */
static int write_data(npz_out *o, const sadm_npz_array *a, size_t bytes, FILE *f, uLong *crc) {
    if (!o->produce) {
        *crc = crc_add(*crc, a->data, bytes);
        return bytes && fwrite(a->data, 1, bytes, f) != bytes;
    }
    const int64_t rows = a->ndim ? a->shape[0] : 1;
    const size_t row_bytes = rows ? bytes / (size_t)rows : 0;
    unsigned char *buf = malloc((size_t)o->block_rows * row_bytes + 1);
    if (!buf) {
        o->produce_st = SADM_ERR_NOMEM;
        snprintf(o->produce_msg, sizeof o->produce_msg, "out of memory for a block of %lld rows", (long long)o->block_rows);
        return 1;
    }
    int bad = 0;
    for (int64_t r = 0; r < rows && !bad; r += o->block_rows) {
        const int64_t n = rows - r < o->block_rows ? rows - r : o->block_rows;
        sadm_status st = o->produce(o->ctx, r, n, buf);
        if (st) {
            o->produce_st = st;
            snprintf(o->produce_msg, sizeof o->produce_msg, "%s", sadm_last_error());
            bad = 1;
            break;
        }
        const size_t nb = (size_t)n * row_bytes;
        *crc = crc_add(*crc, buf, nb);
        bad = fwrite(buf, 1, nb, f) != nb;
    }
    free(buf);
    return bad;
}

/* Each member: its local header (the CRC-32 patched in once the data is written, since
 * streamed rows are not known before), name, zip64 extra when needed, .npy header, data;
 * then the central directory and the end records (zip64 ones when anything needs them). */
static int write_npz(void *ctx, FILE *f) {
    npz_out *o = ctx;
    const uint64_t lim = zip64_from();
    unsigned char (*central)[CENTRAL_MAX] = calloc(o->count ? o->count : 1, sizeof *central);
    size_t *central_len = calloc(o->count ? o->count : 1, sizeof *central_len);
    if (!central || !central_len) {
        free(central), free(central_len);
        return -1;
    }
    uint64_t at = 0;
    int bad = 0, any64 = 0;
    for (size_t i = 0; i < o->count && !bad; i++) {
        const sadm_npz_array *a = &o->arrays[i];
        char h[512];
        size_t hl = npy_header(a, h, sizeof h), bytes = sadm_dtype_size(a->dtype);
        for (int d = 0; d < a->ndim; d++) bytes *= (size_t)a->shape[d];
        char fname[300];
        int fl = snprintf(fname, sizeof fname, "%s.npy", a->name);
        const uint64_t size = hl + bytes;
        const int z64 = size >= lim || at >= lim;
        any64 |= z64;
        /* local header; zip64: sizes 0xFFFFFFFF and the extra field (id 1: size, compressed size) */
        unsigned char lh[30 + 20] = {0};
        put32(lh, 0x04034b50), put16(lh + 4, z64 ? 45 : 20), put16(lh + 8, 0);
        put16(lh + 10, 0), put16(lh + 12, 0x21); /* 1980-01-01, as numpy's zipfile writes */
        put32(lh + 18, z64 ? 0xFFFFFFFFu : (uint32_t)size), put32(lh + 22, z64 ? 0xFFFFFFFFu : (uint32_t)size);
        put16(lh + 26, (unsigned)fl), put16(lh + 28, z64 ? 20 : 0);
        if (z64) put16(lh + 30, 1), put16(lh + 32, 16), put64(lh + 34, size), put64(lh + 42, size);
        const size_t lhl = z64 ? 50 : 30;
        uLong crc = crc_add(crc32(0L, Z_NULL, 0), h, hl);
        bad |= fwrite(lh, 1, 30, f) != 30 || fwrite(fname, 1, (size_t)fl, f) != (size_t)fl ||
               fwrite(lh + 30, 1, lhl - 30, f) != lhl - 30 || fwrite(h, 1, hl, f) != hl;
        bad = bad || write_data(o, a, bytes, f, &crc);
        put32(lh + 14, (uint32_t)crc);
        bad = bad || fseeko(f, (off_t)(at + 14), SEEK_SET) != 0 || fwrite(lh + 14, 1, 4, f) != 4 ||
              fseeko(f, 0, SEEK_END) != 0;
        /* central entry; zip64: size, compressed size and offset all 0xFFFFFFFF, all three in the extra */
        unsigned char *c = central[i];
        put32(c, 0x02014b50), put16(c + 4, z64 ? 45 : 20), put16(c + 6, z64 ? 45 : 20);
        memcpy(c + 8, lh + 6, 22); /* flags .. name length */
        put16(c + 30, z64 ? 28 : 0);
        put16(c + 32, 0), put16(c + 34, 0), put16(c + 36, 0), put32(c + 38, 0);
        put32(c + 42, z64 ? 0xFFFFFFFFu : (uint32_t)at);
        if (z64) put16(c + 46, 1), put16(c + 48, 24), put64(c + 50, size), put64(c + 58, size), put64(c + 66, at);
        central_len[i] = z64 ? 74 : 46;
        at += lhl + (size_t)fl + size;
    }
    /* the central directory: each entry is its fixed part, the name, then its extra field */
    const uint64_t cd_start = at;
    uint64_t cd_size = 0;
    for (size_t i = 0; i < o->count && !bad; i++) {
        char fname[300];
        int fl = snprintf(fname, sizeof fname, "%s.npy", o->arrays[i].name);
        const size_t xl = central_len[i] - 46;
        bad |= fwrite(central[i], 1, 46, f) != 46 || fwrite(fname, 1, (size_t)fl, f) != (size_t)fl ||
               fwrite(central[i] + 46, 1, xl, f) != xl;
        cd_size += 46 + (uint64_t)fl + xl;
    }
    const int end64 = any64 || cd_start >= lim || cd_size >= lim;
    if (end64 && !bad) {
        unsigned char r[56 + 20] = {0};
        put32(r, 0x06064b50), put64(r + 4, 44), put16(r + 12, 45), put16(r + 14, 45);
        put64(r + 24, o->count), put64(r + 32, o->count), put64(r + 40, cd_size), put64(r + 48, cd_start);
        put32(r + 56, 0x07064b50), put64(r + 64, cd_start + cd_size), put32(r + 72, 1);
        bad |= fwrite(r, 1, sizeof r, f) != sizeof r;
    }
    unsigned char e[22] = {0};
    put32(e, 0x06054b50), put16(e + 8, (unsigned)o->count), put16(e + 10, (unsigned)o->count);
    put32(e + 12, end64 ? 0xFFFFFFFFu : (uint32_t)cd_size), put32(e + 16, end64 ? 0xFFFFFFFFu : (uint32_t)cd_start);
    bad |= fwrite(e, 1, 22, f) != 22;
    free(central), free(central_len);
    return bad ? -1 : 0;
}

sadm_status sadm_npz_write(const char *path, size_t count, const sadm_npz_array *arrays) {
    SADM_REQUIRE_PTR(path);
    SADM_REQUIRE(arrays || count == 0, "sadm_npz_write: arrays is NULL");
    SADM_REQUIRE(count < 65535, "sadm_npz_write: %zu arrays is more than a plain zip holds", count);
    for (size_t i = 0; i < count; i++) {
        const sadm_npz_array *a = &arrays[i];
        SADM_REQUIRE(a->name && *a->name && strlen(a->name) < 200, "sadm_npz_write: array %zu needs a name", i);
        SADM_REQUIRE(descr_of(a->dtype), "sadm_npz_write: array '%s': dtype %s has no .npy equivalent here", a->name,
                     sadm_dtype_name(a->dtype));
        SADM_REQUIRE(a->ndim >= 0 && a->ndim <= SADM_MAX_DIMS, "sadm_npz_write: array '%s': bad ndim %d", a->name, a->ndim);
        uint64_t bytes = sadm_dtype_size(a->dtype);
        for (int d = 0; d < a->ndim; d++) bytes *= (uint64_t)a->shape[d];
        SADM_REQUIRE(a->data || bytes == 0, "sadm_npz_write: array '%s': data is NULL", a->name);
    }
    npz_out o = {count, arrays, NULL, NULL, 0, SADM_OK, ""};
    return sadm_atomic_write(path, write_npz, &o);
}

sadm_status sadm_npz_write_rows(const char *path, const sadm_npz_array *a, int64_t block_rows, sadm_npz_rows_fn produce,
                                void *ctx) {
    SADM_REQUIRE_PTR(path);
    SADM_REQUIRE_PTR(a);
    SADM_REQUIRE_PTR(produce);
    SADM_REQUIRE(a->name && *a->name && strlen(a->name) < 200, "sadm_npz_write_rows: the array needs a name");
    SADM_REQUIRE(descr_of(a->dtype), "sadm_npz_write_rows: array '%s': dtype %s has no .npy equivalent here", a->name,
                 sadm_dtype_name(a->dtype));
    SADM_REQUIRE(a->ndim >= 1 && a->ndim <= SADM_MAX_DIMS && a->shape[0] >= 0,
                 "sadm_npz_write_rows: array '%s': needs rows (ndim %d)", a->name, a->ndim);
    SADM_REQUIRE(block_rows >= 1, "sadm_npz_write_rows: block_rows %lld must be positive", (long long)block_rows);
    sadm_npz_array one = *a;
    one.data = NULL;
    npz_out o = {1, &one, produce, ctx, block_rows, SADM_OK, ""};
    sadm_status st = sadm_atomic_write(path, write_npz, &o);
    if (st && o.produce_st) return sadm_error(o.produce_st, "%s", o.produce_msg); /* the producer's own message */
    return st;
}
