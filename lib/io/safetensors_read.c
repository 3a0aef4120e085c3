/* Reading safetensors files: map the file, parse the JSON header with jansson, check
 * every entry before anything is used. */
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "io.h"

/* The reference implementation refuses headers above 100 MB; so do we. */
#define MAX_HEADER ((uint64_t)100 << 20)

struct sadm_st_file {
    char *path;
    unsigned char *map;
    size_t map_len;
    int map_owned; /* map is a malloc'd image (a converted torch.save file), not a mapping */
    size_t count;
    sadm_tensor_info *tensors;
    json_t *metadata; /* object of strings, or NULL */
};

void sadm_st_close(sadm_st_file *f) {
    if (!f) return;
    for (size_t i = 0; i < f->count; i++) free((char *)f->tensors[i].name);
    free(f->tensors);
    if (f->map_owned) free(f->map);
    else if (f->map && f->map_len) munmap(f->map, f->map_len);
    json_decref(f->metadata);
    free(f->path);
    free(f);
}

static int by_offset(const void *a, const void *b) {
    const sadm_tensor_info *x = a, *y = b;
    const unsigned char *px = x->data, *py = y->data;
    if (px != py) return px < py ? -1 : 1;
    return x->nbytes < y->nbytes ? -1 : x->nbytes > y->nbytes;
}

/* Reads one tensor entry of the header into t (name already set). */
static sadm_status parse_entry(const char *path, const char *name, json_t *e, const unsigned char *data,
                               size_t data_len, sadm_tensor_info *t) {
    json_t *dt = json_object_get(e, "dtype"), *shape = json_object_get(e, "shape");
    json_t *offs = json_object_get(e, "data_offsets");
    if (!json_is_object(e) || !json_is_string(dt) || !json_is_array(shape) || !json_is_array(offs))
        return sadm_error(SADM_ERR_FORMAT, "%s: tensor '%s': header entry needs \"dtype\", \"shape\" and \"data_offsets\"",
                          path, name);
    if (!sadm_dtype_parse(json_string_value(dt), &t->dtype))
        return sadm_error(SADM_ERR_FORMAT, "%s: tensor '%s': unsupported dtype '%s'", path, name, json_string_value(dt));
    size_t nd = json_array_size(shape);
    if (nd > SADM_MAX_DIMS)
        return sadm_error(SADM_ERR_FORMAT, "%s: tensor '%s': %zu dimensions, at most %d supported", path, name, nd,
                          SADM_MAX_DIMS);
    t->ndim = (int)nd;
    size_t numel = 1;
    for (size_t d = 0; d < nd; d++) {
        json_t *v = json_array_get(shape, d);
        json_int_t s = json_is_integer(v) ? json_integer_value(v) : -1;
        if (s < 0) return sadm_error(SADM_ERR_FORMAT, "%s: tensor '%s': shape entry %zu is not a size", path, name, d);
        if (s > 0 && numel > SIZE_MAX / (size_t)s)
            return sadm_error(SADM_ERR_FORMAT, "%s: tensor '%s': shape too large", path, name);
        t->shape[d] = s;
        numel *= (size_t)s;
    }
    t->numel = numel;
    json_t *b = json_array_get(offs, 0), *en = json_array_get(offs, 1);
    if (json_array_size(offs) != 2 || !json_is_integer(b) || !json_is_integer(en) || json_integer_value(b) < 0 ||
        json_integer_value(en) < json_integer_value(b))
        return sadm_error(SADM_ERR_FORMAT, "%s: tensor '%s': data_offsets must be [begin, end] with 0 <= begin <= end",
                          path, name);
    uint64_t begin = (uint64_t)json_integer_value(b), end = (uint64_t)json_integer_value(en);
    if (end > data_len)
        return sadm_error(SADM_ERR_FORMAT,
                          "%s: tensor '%s': data ends at byte %llu but the file holds only %zu data bytes (truncated?)",
                          path, name, (unsigned long long)end, data_len);
    size_t esz = sadm_dtype_size(t->dtype);
    if (numel > SIZE_MAX / esz || numel * esz != end - begin)
        return sadm_error(SADM_ERR_FORMAT, "%s: tensor '%s': %zu elements of %s need %zu bytes, data_offsets give %llu",
                          path, name, numel, sadm_dtype_name(t->dtype), numel * esz,
                          (unsigned long long)(end - begin));
    t->nbytes = end - begin;
    t->data = data + begin;
    return SADM_OK;
}

static sadm_status parse_header(sadm_st_file *f, const char *hdr, size_t hlen, const unsigned char *data,
                                size_t data_len) {
    json_error_t jerr;
    json_t *root = json_loadb(hdr, hlen, 0, &jerr);
    if (!root) return sadm_error(SADM_ERR_FORMAT, "%s: header is not valid JSON: %s (at byte %d)", f->path, jerr.text, jerr.position);
    if (!json_is_object(root)) {
        json_decref(root);
        return sadm_error(SADM_ERR_FORMAT, "%s: header is not a JSON object", f->path);
    }
    sadm_status st = SADM_OK;
    size_t n = json_object_size(root);
    f->tensors = calloc(n ? n : 1, sizeof *f->tensors);
    if (!f->tensors) st = sadm_error(SADM_ERR_NOMEM, "%s: out of memory", f->path);
    const char *key;
    json_t *val;
    json_object_foreach(root, key, val) {
        if (st) break;
        if (strcmp(key, "__metadata__") == 0) {
            const char *mk;
            json_t *mv;
            if (!json_is_object(val)) {
                st = sadm_error(SADM_ERR_FORMAT, "%s: __metadata__ is not an object", f->path);
                break;
            }
            json_object_foreach(val, mk, mv) if (!json_is_string(mv)) {
                st = sadm_error(SADM_ERR_FORMAT, "%s: __metadata__ value of '%s' is not a string", f->path, mk);
                break;
            }
            f->metadata = json_incref(val);
            continue;
        }
        sadm_tensor_info *t = &f->tensors[f->count];
        t->name = strdup(key);
        if (!t->name) {
            st = sadm_error(SADM_ERR_NOMEM, "%s: out of memory", f->path);
            break;
        }
        f->count++;
        st = parse_entry(f->path, key, val, data, data_len, t);
    }
    json_decref(root);
    if (st) return st;
    /* the data must be covered exactly: no overlaps, no holes */
    sadm_tensor_info *sorted = malloc((f->count ? f->count : 1) * sizeof *sorted);
    if (!sorted) return sadm_error(SADM_ERR_NOMEM, "%s: out of memory", f->path);
    memcpy(sorted, f->tensors, f->count * sizeof *sorted);
    qsort(sorted, f->count, sizeof *sorted, by_offset);
    size_t at = 0;
    for (size_t i = 0; i < f->count && !st; i++) {
        size_t begin = (size_t)((const unsigned char *)sorted[i].data - data);
        if (begin != at)
            st = sadm_error(SADM_ERR_FORMAT, "%s: tensor '%s' starts at data byte %zu, expected %zu (%s)", f->path,
                            sorted[i].name, begin, at, begin < at ? "overlaps another tensor" : "hole in the data");
        at = begin + sorted[i].nbytes;
    }
    if (!st && at != data_len)
        st = sadm_error(SADM_ERR_FORMAT, "%s: %zu bytes after the last tensor are not described by the header",
                        f->path, data_len - at);
    free(sorted);
    return st;
}

sadm_status sadm_st_open(const char *path, sadm_st_file **out) {
    SADM_REQUIRE_PTR(path);
    SADM_REQUIRE_PTR(out);
    *out = NULL;
    int fd = open(path, O_RDONLY);
    if (fd < 0) return sadm_error(SADM_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    struct stat sb;
    if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
        close(fd);
        return sadm_error(SADM_ERR_IO, "%s: not a regular file", path);
    }
    sadm_st_file *f = calloc(1, sizeof *f);
    if (!f || !(f->path = strdup(path))) {
        close(fd);
        free(f);
        return sadm_error(SADM_ERR_NOMEM, "%s: out of memory", path);
    }
    sadm_status st = SADM_OK;
    size_t size = (size_t)sb.st_size;
    if (size < 8) {
        st = sadm_error(SADM_ERR_FORMAT, "%s: %zu bytes is too short for a safetensors file (8-byte header length missing)",
                        path, size);
    } else {
        f->map = mmap(NULL, size, PROT_READ, MAP_PRIVATE, fd, 0);
        if (f->map == MAP_FAILED) {
            f->map = NULL;
            st = sadm_error(SADM_ERR_IO, "%s: cannot map: %s", path, strerror(errno));
        } else {
            f->map_len = size;
        }
    }
    close(fd);
    /* a zip: PyTorch's torch.save format, read through the restricted unpickler (a
     * safetensors header length with these low bytes would be a 67 MB header) */
    if (!st && !memcmp(f->map, "PK\x03\x04", 4)) {
        munmap(f->map, f->map_len);
        f->map = NULL, f->map_len = 0;
        st = sadm_pt_to_safetensors(path, sadm_pt_entry(), &f->map, &size, NULL, 0);
        if (!st) f->map_owned = 1, f->map_len = size;
    } else if (!st && !memcmp(f->map, "\x80\x02\x8a\x0a", 4)) { /* legacy torch.save: its magic number */
        st = sadm_error(SADM_ERR_FORMAT,
                        "%s: a torch.save file in the legacy (pre-1.6, non-zip) format; re-save it with a newer torch "
                        "(torch.save(torch.load(F), G)) or convert it to safetensors",
                        path);
    }
    if (!st) {
        uint64_t hlen = 0;
        for (int i = 7; i >= 0; i--) hlen = hlen << 8 | f->map[i]; /* little-endian */
        if (hlen > MAX_HEADER || hlen > size - 8)
            st = sadm_error(SADM_ERR_FORMAT, "%s: header length %llu does not fit in the file (%zu bytes; truncated or not safetensors?)",
                            path, (unsigned long long)hlen, size);
        else
            st = parse_header(f, (const char *)f->map + 8, (size_t)hlen, f->map + 8 + hlen, size - 8 - (size_t)hlen);
    }
    if (st) {
        sadm_st_close(f);
        return st;
    }
    *out = f;
    return SADM_OK;
}

size_t sadm_st_count(const sadm_st_file *f) { return f ? f->count : 0; }

const sadm_tensor_info *sadm_st_tensor(const sadm_st_file *f, size_t i) {
    return f && i < f->count ? &f->tensors[i] : NULL;
}

const sadm_tensor_info *sadm_st_find(const sadm_st_file *f, const char *name) {
    if (!f || !name) return NULL;
    for (size_t i = 0; i < f->count; i++)
        if (strcmp(f->tensors[i].name, name) == 0) return &f->tensors[i];
    return NULL;
}

const char *sadm_st_metadata(const sadm_st_file *f, const char *key) {
    if (!f || !f->metadata || !key) return NULL;
    return json_string_value(json_object_get(f->metadata, key));
}

static void format_shape(char *buf, size_t len, int ndim, const int64_t *shape) {
    size_t at = (size_t)snprintf(buf, len, "(");
    for (int d = 0; d < ndim && at < len; d++)
        at += (size_t)snprintf(buf + at, len - at, "%s%lld", d ? ", " : "", (long long)shape[d]);
    if (at < len) snprintf(buf + at, len - at, ")");
}

sadm_status sadm_st_read_f32(const sadm_st_file *f, const char *name, int ndim, const int64_t *shape, float *dst) {
    SADM_REQUIRE_PTR(f);
    SADM_REQUIRE_PTR(name);
    SADM_REQUIRE_PTR(dst);
    const sadm_tensor_info *t = sadm_st_find(f, name);
    if (!t) return sadm_error(SADM_ERR_FORMAT, "%s: no tensor named '%s'", f->path, name);
    if (shape) {
        int same = t->ndim == ndim;
        for (int d = 0; same && d < ndim; d++) same = t->shape[d] == shape[d];
        if (!same) {
            char want[128], have[128];
            format_shape(want, sizeof want, ndim, shape);
            format_shape(have, sizeof have, t->ndim, t->shape);
            return sadm_error(SADM_ERR_FORMAT, "%s: tensor '%s' has shape %s, expected %s", f->path, name, have, want);
        }
    }
    if (!sadm_to_f32(t->dtype, t->data, t->numel, dst))
        return sadm_error(SADM_ERR_FORMAT, "%s: tensor '%s' is %s, expected a floating type (F32, F16, BF16, F64)",
                          f->path, name, sadm_dtype_name(t->dtype));
    return SADM_OK;
}
