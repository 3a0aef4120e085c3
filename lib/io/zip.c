/* Zip archives for reading, as .npz files and PyTorch's torch.save files come: the central
 * directory (zip64 sizes and offsets included), stored or deflated members (zlib, raw
 * deflate), random access into stored members and forward reading of deflated ones. Every
 * size and offset is checked against the file before it is used. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "io.h"

typedef struct zip_member {
    char *name;
    int method;              /* 0 stored, 8 deflated */
    uint64_t local_offset, comp_size, size;
    uint32_t crc;
    /* forward reading state of a deflated member */
    z_stream zs;
    int zs_open;
    uint64_t zs_out;         /* uncompressed bytes produced so far */
    uint64_t zs_in;          /* compressed bytes consumed so far */
} zip_member;

struct sadm_zip {
    char *path;
    FILE *f;
    uint64_t file_size;
    zip_member *m;
    size_t count;
};

static uint16_t le16(const unsigned char *p) { return (uint16_t)(p[0] | p[1] << 8); }
static uint32_t le32(const unsigned char *p) { return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24; }
static uint64_t le64(const unsigned char *p) { return (uint64_t)le32(p) | (uint64_t)le32(p + 4) << 32; }

static int read_at(FILE *f, uint64_t off, void *buf, size_t n) {
    return fseeko(f, (off_t)off, SEEK_SET) == 0 && fread(buf, 1, n, f) == n ? 0 : -1;
}

void sadm_zip_close(sadm_zip *z) {
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
static sadm_status find_directory(sadm_zip *z, uint64_t *cd_off, uint64_t *cd_count) {
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
        return sadm_error(SADM_ERR_FORMAT, "%s: not a zip file (no end-of-central-directory record; truncated?)", z->path);
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

static sadm_status read_directory(sadm_zip *z) {
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
        zip_member *m = &z->m[z->count];
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
        m->name = strndup((char *)var, nlen);
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

sadm_status sadm_zip_open(const char *path, sadm_zip **out) {
    SADM_REQUIRE_PTR(path);
    SADM_REQUIRE_PTR(out);
    *out = NULL;
    sadm_zip *z = calloc(1, sizeof *z);
    if (!z || !(z->path = strdup(path))) {
        free(z);
        return sadm_error(SADM_ERR_NOMEM, "%s: out of memory", path);
    }
    if (!(z->f = fopen(path, "rb"))) {
        sadm_status st = sadm_error(SADM_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
        sadm_zip_close(z);
        return st;
    }
    fseeko(z->f, 0, SEEK_END);
    z->file_size = (uint64_t)ftello(z->f);
    sadm_status st = z->file_size < 22 ? sadm_error(SADM_ERR_FORMAT, "%s: too short for a zip file (%llu bytes)", path,
                                                    (unsigned long long)z->file_size)
                                       : read_directory(z);
    if (st) {
        sadm_zip_close(z);
        return st;
    }
    *out = z;
    return SADM_OK;
}

size_t sadm_zip_count(const sadm_zip *z) { return z ? z->count : 0; }
const char *sadm_zip_name(const sadm_zip *z, size_t i) { return z && i < z->count ? z->m[i].name : NULL; }
const char *sadm_zip_path(const sadm_zip *z) { return z ? z->path : NULL; }
uint64_t sadm_zip_size(const sadm_zip *z, size_t i) { return z && i < z->count ? z->m[i].size : 0; }
uint32_t sadm_zip_crc(const sadm_zip *z, size_t i) { return z && i < z->count ? z->m[i].crc : 0; }

long sadm_zip_find(const sadm_zip *z, const char *name) {
    for (size_t i = 0; z && i < z->count; i++)
        if (!strcmp(z->m[i].name, name)) return (long)i;
    return -1;
}

/* Offset of the member's data: after its local header, whose name/extra lengths may differ
 * from the central directory's. */
static sadm_status member_start(sadm_zip *z, zip_member *m, uint64_t *start) {
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
static sadm_status member_read(sadm_zip *z, zip_member *m, uint64_t pos, void *dst, size_t n) {
    if (pos > m->size || n > m->size - pos)
        return sadm_error(SADM_ERR_FORMAT, "%s: member '%s' ends at byte %llu, the reader needs %llu", z->path, m->name,
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

sadm_status sadm_zip_read(sadm_zip *z, size_t i, uint64_t pos, void *dst, size_t n) {
    SADM_REQUIRE_PTR(z);
    SADM_REQUIRE(i < z->count, "%s: no member %zu", z->path, i);
    if (n == 0) return SADM_OK;
    SADM_REQUIRE_PTR(dst);
    return member_read(z, &z->m[i], pos, dst, n);
}
