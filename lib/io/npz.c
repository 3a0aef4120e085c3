/* NumPy .npz files (a zip archive of .npy members), as ADM's reference batches and
 * statistics come: the zip's central directory (zip64 sizes and offsets included), stored
 * or deflated members (zlib, raw deflate), the .npy header (versions 1-3), and CRC-32
 * checks. Reading streams rows of a member, so a 10000×256×256×3 batch never needs to sit
 * in memory; deflated members are inflated forward as rows are asked for. Writing stores
 * members uncompressed (as np.savez), atomically. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "io.h"

typedef struct npz_member {
    char *name;              /* without ".npy" */
    int method;              /* 0 stored, 8 deflated */
    uint64_t local_offset, comp_size, size;
    uint32_t crc;
    /* the .npy inside */
    sadm_dtype dtype;
    int ndim;
    int64_t shape[SADM_MAX_DIMS];
    uint64_t data_offset;    /* of the array data within the uncompressed member */
    int parsed;
    /* forward reading state of a deflated member */
    z_stream zs;
    int zs_open;
    uint64_t zs_out;         /* uncompressed bytes produced so far */
    uint64_t zs_in;          /* compressed bytes consumed so far */
} npz_member;

struct sadm_npz {
    char *path;
    FILE *f;
    uint64_t file_size;
    npz_member *m;
    size_t count;
};

static uint16_t le16(const unsigned char *p) { return (uint16_t)(p[0] | p[1] << 8); }
static uint32_t le32(const unsigned char *p) { return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24; }
static uint64_t le64(const unsigned char *p) { return (uint64_t)le32(p) | (uint64_t)le32(p + 4) << 32; }

static int read_at(FILE *f, uint64_t off, void *buf, size_t n) {
    return fseeko(f, (off_t)off, SEEK_SET) == 0 && fread(buf, 1, n, f) == n ? 0 : -1;
}

void sadm_npz_close(sadm_npz *z) {
    if (!z) return;
    for (size_t i = 0; i < z->count; i++) {
        free(z->m[i].name);
        if (z->m[i].zs_open) inflateEnd(&z->m[i].zs);
    }
    free(z->m);
    if (z->f) fclose(z->f);
    free(z->path);
    free(z);
}

/* The end-of-central-directory record (and its zip64 locator, when present). */
static sadm_status find_directory(sadm_npz *z, uint64_t *cd_off, uint64_t *cd_count) {
    size_t tail = z->file_size < 65557 ? (size_t)z->file_size : 65557;
    unsigned char *b = malloc(tail);
    if (!b) return sadm_error(SADM_ERR_NOMEM, "%s: out of memory", z->path);
    if (read_at(z->f, z->file_size - tail, b, tail)) {
        free(b);
        return sadm_error(SADM_ERR_IO, "%s: cannot read the end of the file", z->path);
    }
    long at = -1;
    for (long i = (long)tail - 22; i >= 0; i--)
        if (le32(b + i) == 0x06054b50) {
            at = i;
            break;
        }
    if (at < 0) {
        free(b);
        return sadm_error(SADM_ERR_FORMAT, "%s: not a zip/npz file (no end-of-central-directory record; truncated?)", z->path);
    }
    *cd_count = le16(b + at + 10);
    *cd_off = le32(b + at + 16);
    if ((*cd_off == 0xFFFFFFFFu || *cd_count == 0xFFFF) && at >= 20 && le32(b + at - 20) == 0x07064b50) {
        uint64_t z64 = le64(b + at - 20 + 8);
        unsigned char r[56];
        if (read_at(z->f, z64, r, 56) || le32(r) != 0x06064b50) {
            free(b);
            return sadm_error(SADM_ERR_FORMAT, "%s: broken zip64 end-of-central-directory record", z->path);
        }
        *cd_count = le64(r + 32);
        *cd_off = le64(r + 48);
    }
    free(b);
    if (*cd_off >= z->file_size) return sadm_error(SADM_ERR_FORMAT, "%s: central directory outside the file (truncated?)", z->path);
    /* every entry takes at least 46 bytes: a count the file cannot hold is a lie */
    if (*cd_count > (z->file_size - *cd_off) / 46)
        return sadm_error(SADM_ERR_FORMAT, "%s: the central directory claims %llu members, more than the file can hold", z->path,
                          (unsigned long long)*cd_count);
    return SADM_OK;
}

static sadm_status read_directory(sadm_npz *z) {
    uint64_t off = 0, count = 0;
    sadm_status st = find_directory(z, &off, &count);
    if (st) return st;
    if (count > 1000000) return sadm_error(SADM_ERR_FORMAT, "%s: %llu members is implausible", z->path, (unsigned long long)count);
    z->m = calloc(count ? count : 1, sizeof *z->m);
    if (!z->m) return sadm_error(SADM_ERR_NOMEM, "%s: out of memory", z->path);
    for (uint64_t i = 0; i < count; i++) {
        unsigned char h[46];
        if (read_at(z->f, off, h, 46) || le32(h) != 0x02014b50)
            return sadm_error(SADM_ERR_FORMAT, "%s: central directory entry %llu is broken (truncated file?)", z->path,
                              (unsigned long long)i);
        npz_member *m = &z->m[z->count];
        m->method = le16(h + 10);
        m->crc = le32(h + 16);
        m->comp_size = le32(h + 20);
        m->size = le32(h + 24);
        size_t nlen = le16(h + 28), elen = le16(h + 30), clen = le16(h + 32);
        m->local_offset = le32(h + 42);
        unsigned char *var = malloc(nlen + elen + 1);
        if (!var) return sadm_error(SADM_ERR_NOMEM, "%s: out of memory", z->path);
        if (read_at(z->f, off + 46, var, nlen + elen)) {
            free(var);
            return sadm_error(SADM_ERR_FORMAT, "%s: central directory entry %llu is cut off", z->path, (unsigned long long)i);
        }
        /* zip64 extra field: the 0xFFFFFFFF fields, in order size, compressed size, offset.
         * Each field's declared length is checked against the bytes actually read. */
        for (size_t e = nlen; e + 4 <= nlen + elen;) {
            size_t id = le16(var + e), len = le16(var + e + 2), p = e + 4, end = e + 4 + len;
            if (end > nlen + elen) {
                free(var);
                return sadm_error(SADM_ERR_FORMAT,
                                  "%s: central directory entry %llu: extra field 0x%04zx declares %zu bytes, only %zu remain",
                                  z->path, (unsigned long long)i, id, len, nlen + elen - (e + 4));
            }
            if (id == 0x0001) {
                if (m->size == 0xFFFFFFFFu && p + 8 <= end) m->size = le64(var + p), p += 8;
                if (m->comp_size == 0xFFFFFFFFu && p + 8 <= end) m->comp_size = le64(var + p), p += 8;
                if (m->local_offset == 0xFFFFFFFFu && p + 8 <= end) m->local_offset = le64(var + p);
            }
            e = end;
        }
        var[nlen] = 0;
        size_t keep = nlen > 4 && !memcmp(var + nlen - 4, ".npy", 4) ? nlen - 4 : nlen;
        m->name = strndup((char *)var, keep);
        free(var);
        if (!m->name) return sadm_error(SADM_ERR_NOMEM, "%s: out of memory", z->path);
        z->count++;
        if (m->method != 0 && m->method != 8)
            return sadm_error(SADM_ERR_FORMAT, "%s: member '%s' uses compression method %d (only stored and deflate)", z->path,
                              m->name, m->method);
        if (z->file_size < 30 || m->local_offset > z->file_size - 30 || m->comp_size > z->file_size)
            return sadm_error(SADM_ERR_FORMAT, "%s: member '%s' lies outside the file (truncated?)", z->path, m->name);
        off += 46 + nlen + elen + clen;
    }
    return SADM_OK;
}

sadm_status sadm_npz_open(const char *path, sadm_npz **out) {
    SADM_REQUIRE_PTR(path);
    SADM_REQUIRE_PTR(out);
    *out = NULL;
    sadm_npz *z = calloc(1, sizeof *z);
    if (!z || !(z->path = strdup(path))) {
        free(z);
        return sadm_error(SADM_ERR_NOMEM, "%s: out of memory", path);
    }
    if (!(z->f = fopen(path, "rb"))) {
        sadm_status st = sadm_error(SADM_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
        sadm_npz_close(z);
        return st;
    }
    fseeko(z->f, 0, SEEK_END);
    z->file_size = (uint64_t)ftello(z->f);
    sadm_status st = z->file_size < 22 ? sadm_error(SADM_ERR_FORMAT, "%s: too short for a zip/npz file (%llu bytes)", path,
                                                    (unsigned long long)z->file_size)
                                       : read_directory(z);
    if (st) {
        sadm_npz_close(z);
        return st;
    }
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

/* Offset of the member's data: after its local header, whose name/extra lengths may differ
 * from the central directory's. */
static sadm_status member_start(sadm_npz *z, npz_member *m, uint64_t *start) {
    unsigned char h[30];
    if (read_at(z->f, m->local_offset, h, 30) || le32(h) != 0x04034b50)
        return sadm_error(SADM_ERR_FORMAT, "%s: member '%s': broken local header", z->path, m->name);
    *start = m->local_offset + 30 + le16(h + 26) + le16(h + 28); /* local_offset < file_size: no wrap */
    if (*start > z->file_size || m->comp_size > z->file_size - *start)
        return sadm_error(SADM_ERR_FORMAT, "%s: member '%s' is cut off (truncated file?)", z->path, m->name);
    return SADM_OK;
}

/* Reads `n` uncompressed bytes at position `pos` of a member. Stored members: random
 * access. Deflated: forward only (reading backwards restarts from the beginning). */
static sadm_status member_read(sadm_npz *z, npz_member *m, uint64_t pos, void *dst, size_t n) {
    if (pos > m->size || n > m->size - pos)
        return sadm_error(SADM_ERR_FORMAT, "%s: member '%s' ends at byte %llu, the array needs %llu", z->path, m->name,
                          (unsigned long long)m->size, (unsigned long long)(pos + n));
    uint64_t start = 0;
    sadm_status st = member_start(z, m, &start);
    if (st) return st;
    if (m->method == 0) {
        if (read_at(z->f, start + pos, dst, n))
            return sadm_error(SADM_ERR_IO, "%s: member '%s': read failed (truncated?)", z->path, m->name);
        return SADM_OK;
    }
    if (m->zs_open && pos < m->zs_out) {
        inflateEnd(&m->zs);
        m->zs_open = 0;
    }
    if (!m->zs_open) {
        memset(&m->zs, 0, sizeof m->zs);
        if (inflateInit2(&m->zs, -15) != Z_OK) return sadm_error(SADM_ERR_NOMEM, "%s: zlib could not start", z->path);
        m->zs_open = 1, m->zs_out = 0, m->zs_in = 0;
    }
    unsigned char in[1 << 16], skip[1 << 14];
    unsigned char *d = dst;
    while (m->zs_out < pos + n) {
        int skipping = m->zs_out < pos;
        size_t want = skipping ? (size_t)(pos - m->zs_out < sizeof skip ? pos - m->zs_out : sizeof skip)
                               : (size_t)(pos + n - m->zs_out);
        m->zs.next_out = skipping ? skip : d + (m->zs_out - pos);
        m->zs.avail_out = (uInt)(want < (1u << 30) ? want : (1u << 30));
        if (m->zs.avail_in == 0) {
            uint64_t left = m->comp_size - m->zs_in;
            size_t take = left < sizeof in ? (size_t)left : sizeof in;
            if (take == 0 || read_at(z->f, start + m->zs_in, in, take))
                return sadm_error(SADM_ERR_FORMAT, "%s: member '%s': compressed data ends early (truncated?)", z->path, m->name);
            m->zs.next_in = in, m->zs.avail_in = (uInt)take;
            m->zs_in += take;
        }
        uInt before = m->zs.avail_out;
        int r = inflate(&m->zs, Z_NO_FLUSH);
        m->zs_out += before - m->zs.avail_out;
        /* the input buffer is local: hand back what was not consumed */
        m->zs_in -= m->zs.avail_in;
        m->zs.avail_in = 0;
        if (r == Z_STREAM_END && m->zs_out < pos + n)
            return sadm_error(SADM_ERR_FORMAT, "%s: member '%s': deflate stream ends early", z->path, m->name);
        if (r != Z_OK && r != Z_STREAM_END && r != Z_BUF_ERROR)
            return sadm_error(SADM_ERR_FORMAT, "%s: member '%s': corrupt deflate data (zlib %d)", z->path, m->name, r);
    }
    return SADM_OK;
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
        crc = crc32(crc, buf, (uInt)n), at += n;
    }
    const unsigned char *d = dst;
    for (uint64_t at = 0, left = m->size - m->data_offset; left;) {
        uInt n = left < (1u << 30) ? (uInt)left : (1u << 30);
        crc = crc32(crc, d + at, n), at += n, left -= n;
    }
    if ((uint32_t)crc != m->crc)
        return sadm_error(SADM_ERR_FORMAT, "%s: member '%s': CRC-32 mismatch (corrupt file)", z->path, m->name);
    return SADM_OK;
}

/* ------------------------------------------------------------------ writing */
typedef struct npz_out {
    size_t count;
    const sadm_npz_array *arrays;
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

static int write_npz(void *ctx, FILE *f) {
    const npz_out *o = ctx;
    unsigned char (*central)[46] = calloc(o->count, sizeof *central);
    uint32_t *offsets = calloc(o->count, sizeof *offsets);
    if (!central || !offsets) {
        free(central), free(offsets);
        return -1;
    }
    uint32_t at = 0;
    int bad = 0;
    for (size_t i = 0; i < o->count && !bad; i++) {
        const sadm_npz_array *a = &o->arrays[i];
        char h[512];
        size_t hl = npy_header(a, h, sizeof h), bytes = sadm_dtype_size(a->dtype);
        for (int d = 0; d < a->ndim; d++) bytes *= (size_t)a->shape[d];
        uLong crc = crc32(crc32(0L, Z_NULL, 0), (const unsigned char *)h, (uInt)hl);
        for (size_t p = 0; p < bytes;) {
            uInt n = bytes - p < (1u << 30) ? (uInt)(bytes - p) : (1u << 30);
            crc = crc32(crc, (const unsigned char *)a->data + p, n), p += n;
        }
        char fname[300];
        int fl = snprintf(fname, sizeof fname, "%s.npy", a->name);
        unsigned char lh[30] = {0};
        put32(lh, 0x04034b50), put16(lh + 4, 20), put16(lh + 8, 0);
        put16(lh + 10, 0), put16(lh + 12, 0x21); /* 1980-01-01, as numpy's zipfile writes */
        put32(lh + 14, (uint32_t)crc), put32(lh + 18, (uint32_t)(hl + bytes)), put32(lh + 22, (uint32_t)(hl + bytes));
        put16(lh + 26, (unsigned)fl), put16(lh + 28, 0);
        unsigned char *c = central[i];
        put32(c, 0x02014b50), put16(c + 4, 20), put16(c + 6, 20);
        memcpy(c + 8, lh + 6, 24); /* flags .. name length, extra 0 */
        put16(c + 30, 0), put16(c + 32, 0), put16(c + 34, 0), put16(c + 36, 0), put32(c + 38, 0);
        put32(c + 42, at);
        offsets[i] = at;
        bad |= fwrite(lh, 1, 30, f) != 30 || fwrite(fname, 1, (size_t)fl, f) != (size_t)fl || fwrite(h, 1, hl, f) != hl ||
               fwrite(a->data, 1, bytes, f) != bytes;
        at += (uint32_t)(30 + (size_t)fl + hl + bytes);
    }
    uint32_t cd_start = at, cd_size = 0;
    for (size_t i = 0; i < o->count && !bad; i++) {
        char fname[300];
        int fl = snprintf(fname, sizeof fname, "%s.npy", o->arrays[i].name);
        bad |= fwrite(central[i], 1, 46, f) != 46 || fwrite(fname, 1, (size_t)fl, f) != (size_t)fl;
        cd_size += (uint32_t)(46 + fl);
    }
    unsigned char e[22] = {0};
    put32(e, 0x06054b50), put16(e + 8, (unsigned)o->count), put16(e + 10, (unsigned)o->count);
    put32(e + 12, cd_size), put32(e + 16, cd_start);
    bad |= fwrite(e, 1, 22, f) != 22;
    free(central), free(offsets);
    return bad ? -1 : 0;
}

sadm_status sadm_npz_write(const char *path, size_t count, const sadm_npz_array *arrays) {
    SADM_REQUIRE_PTR(path);
    SADM_REQUIRE(arrays || count == 0, "sadm_npz_write: arrays is NULL");
    SADM_REQUIRE(count < 65535, "sadm_npz_write: %zu arrays is more than a plain zip holds", count);
    uint64_t total = 22;
    for (size_t i = 0; i < count; i++) {
        const sadm_npz_array *a = &arrays[i];
        SADM_REQUIRE(a->name && *a->name && strlen(a->name) < 200, "sadm_npz_write: array %zu needs a name", i);
        SADM_REQUIRE(descr_of(a->dtype), "sadm_npz_write: array '%s': dtype %s has no .npy equivalent here", a->name,
                     sadm_dtype_name(a->dtype));
        SADM_REQUIRE(a->ndim >= 0 && a->ndim <= SADM_MAX_DIMS, "sadm_npz_write: array '%s': bad ndim %d", a->name, a->ndim);
        uint64_t bytes = sadm_dtype_size(a->dtype);
        for (int d = 0; d < a->ndim; d++) bytes *= (uint64_t)a->shape[d];
        SADM_REQUIRE(a->data || bytes == 0, "sadm_npz_write: array '%s': data is NULL", a->name);
        total += bytes + 600;
    }
    SADM_REQUIRE(total < 0xFFFFFFF0u, "sadm_npz_write: %s would exceed 4 GiB, which needs zip64 (not written by libsadm yet)",
                 path);
    npz_out o = {count, arrays};
    return sadm_atomic_write(path, write_npz, &o);
}
