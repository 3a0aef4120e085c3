/* PyTorch's torch.save files (the zip format of torch >= 1.6: <name>/data.pkl and the raw
 * storages <name>/data/<key>) as an in-memory safetensors image, so that every reader of
 * safetensors (models, checkpoints, sadm convert) takes official .pt files too. The
 * pickle goes through the restricted unpickler of torch_pickle.c: nothing is executed. */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "torch_pickle.h"

#define MAX_PICKLE ((uint64_t)1 << 30)

static char pt_entry[64];
void sadm_set_pt_entry(const char *entry) { snprintf(pt_entry, sizeof pt_entry, "%s", entry ? entry : ""); }
const char *sadm_pt_entry(void) {
    const char *e = getenv("SADM_PT_ENTRY");
    return pt_entry[0] ? pt_entry : e && *e ? e : NULL;
}

static const char *kind_name(tp_kind k) {
    static const char *const names[] = {"None", "bool", "int", "float", "str", "bytes", "tuple", "list",
                                        "dict", "global", "storage", "tensor", "Namespace"};
    return (unsigned)k < sizeof names / sizeof *names ? names[k] : "?";
}

/* The state dict in the file: the whole pickle when it is a dict of tensors, else the
 * entry named (or the first of "ema", "model", "state_dict", as DiT's train.py checkpoints
 * hold {"model", "ema", "opt", "args"}: the EMA is what DiT samples with). */
static sadm_status pick_state_dict(const char *path, const tp_value *root, const char *entry, const tp_value **out,
                                   const char **which) {
    if (!root || root->kind != TP_DICT)
        return sadm_error(SADM_ERR_FORMAT, "%s: the pickle holds a %s, not a state dict (a dict of tensors)", path,
                          root ? kind_name(root->kind) : "nothing");
    int all_tensors = 1;
    for (size_t i = 1; i < root->n; i += 2) all_tensors &= root->items[i]->kind == TP_TENSOR;
    if (!entry && all_tensors && root->n) return *out = root, *which = NULL, SADM_OK;
    static const char *const defaults[] = {"ema", "model", "state_dict"};
    for (int k = 0; k < 3; k++) {
        const char *name = entry ? entry : defaults[k];
        const tp_value *v = tp_dict_get(root, name);
        if (v && v->kind == TP_DICT) return *out = v, *which = name, SADM_OK;
        if (entry) break;
    }
    char keys[400] = "";
    for (size_t i = 0, at = 0; i < root->n && at < sizeof keys - 40; i += 2)
        at += (size_t)snprintf(keys + at, sizeof keys - at, "%s'%.30s' (%s)", i ? ", " : "",
                               root->items[i]->kind == TP_STR ? root->items[i]->s : "?", kind_name(root->items[i + 1]->kind));
    if (entry)
        return sadm_error(SADM_ERR_FORMAT, "%s: no state dict '%s' in the file; its entries: %s", path, entry, keys);
    return sadm_error(SADM_ERR_FORMAT, "%s: neither a dict of tensors nor a checkpoint with 'ema', 'model' or 'state_dict'; "
                      "its entries: %s", path, keys);
}

typedef struct pt_file {
    const char *path;
    sadm_zip *zip;
    char prefix[256]; /* "<name>/" */
} pt_file;

static sadm_status open_archive(const char *path, pt_file *pf, unsigned char **pickle, size_t *plen) {
    SADM_TRY(sadm_zip_open(path, &pf->zip));
    long pkl = -1;
    for (size_t i = 0; i < sadm_zip_count(pf->zip); i++) {
        const char *n = sadm_zip_name(pf->zip, i), *slash = strchr(n, '/');
        if (slash && !strcmp(slash, "/data.pkl")) {
            if (pkl >= 0) return sadm_error(SADM_ERR_FORMAT, "%s: more than one data.pkl in the archive", path);
            if ((size_t)(slash - n) + 1 >= sizeof pf->prefix)
                return sadm_error(SADM_ERR_FORMAT, "%s: archive folder name too long", path);
            pkl = (long)i;
            memcpy(pf->prefix, n, (size_t)(slash - n) + 1);
            pf->prefix[slash - n + 1] = 0;
        }
    }
    if (pkl < 0)
        return sadm_error(SADM_ERR_FORMAT, "%s: a zip file without <name>/data.pkl: not a torch.save file", path);
    char name[300];
    snprintf(name, sizeof name, "%sbyteorder", pf->prefix);
    long bo = sadm_zip_find(pf->zip, name);
    if (bo >= 0) {
        char order[8] = "";
        uint64_t n = sadm_zip_size(pf->zip, (size_t)bo);
        if (n < sizeof order) SADM_TRY(sadm_zip_read(pf->zip, (size_t)bo, 0, order, (size_t)n));
        if (strcmp(order, "little"))
            return sadm_error(SADM_ERR_FORMAT, "%s: storages in byte order '%.7s'; only little-endian files are read", path,
                              order);
    }
    uint64_t n = sadm_zip_size(pf->zip, (size_t)pkl);
    if (n > MAX_PICKLE) return sadm_error(SADM_ERR_FORMAT, "%s: data.pkl of %llu bytes is implausible", path, (unsigned long long)n);
    if (!(*pickle = malloc(n ? (size_t)n : 1))) return sadm_error(SADM_ERR_NOMEM, "%s: out of memory", path);
    *plen = (size_t)n;
    return sadm_zip_read(pf->zip, (size_t)pkl, 0, *pickle, (size_t)n);
}

/* Checks a tensor against its storage: contiguous (C order), inside the storage, and the
 * storage inside its archive member. Sets the bytes to copy and where they start. */
static sadm_status tensor_extent(pt_file *pf, const char *name, const tp_value *t, long *member, uint64_t *start,
                                 uint64_t *bytes) {
    const tp_value *s = t->storage;
    uint64_t esize = sadm_dtype_size(s->dtype), numel = 1, expect = 1;
    for (int d = t->ndim - 1; d >= 0; d--) {
        if (t->shape[d] != 1 && (uint64_t)t->stride[d] != expect)
            return sadm_error(SADM_ERR_FORMAT, "%s: tensor '%s' is not contiguous (dimension %d has stride %lld, expected %llu); "
                              "save it with .contiguous()", pf->path, name, d, (long long)t->stride[d],
                              (unsigned long long)expect);
        if (!sadm_mul_u64(expect, (uint64_t)t->shape[d], &expect))
            return sadm_error(SADM_ERR_FORMAT, "%s: tensor '%s': its size overflows", pf->path, name);
    }
    numel = expect;
    if ((uint64_t)t->offset > (uint64_t)s->numel || numel > (uint64_t)s->numel - (uint64_t)t->offset)
        return sadm_error(SADM_ERR_FORMAT, "%s: tensor '%s' (%llu elements at offset %lld) lies outside its storage of %lld",
                          pf->path, name, (unsigned long long)numel, (long long)t->offset, (long long)s->numel);
    char mname[600];
    snprintf(mname, sizeof mname, "%sdata/%s", pf->prefix, s->s);
    *member = sadm_zip_find(pf->zip, mname);
    if (*member < 0) return sadm_error(SADM_ERR_FORMAT, "%s: tensor '%s': storage '%s' is missing from the archive", pf->path, name, mname);
    uint64_t sbytes;
    if (!sadm_mul_u64((uint64_t)s->numel, esize, &sbytes) || sbytes > sadm_zip_size(pf->zip, (size_t)*member))
        return sadm_error(SADM_ERR_FORMAT, "%s: storage '%s' should hold %lld elements of %s but has %llu bytes", pf->path,
                          mname, (long long)s->numel, sadm_dtype_name(s->dtype),
                          (unsigned long long)sadm_zip_size(pf->zip, (size_t)*member));
    *start = (uint64_t)t->offset * esize, *bytes = numel * esize;
    return SADM_OK;
}

sadm_status sadm_pt_to_safetensors(const char *path, const char *entry, unsigned char **out, size_t *out_len,
                                   char *which, size_t which_len) {
    SADM_REQUIRE_PTR(path);
    SADM_REQUIRE_PTR(out);
    SADM_REQUIRE_PTR(out_len);
    *out = NULL, *out_len = 0;
    if (which && which_len) which[0] = 0;
    pt_file pf = {.path = path};
    unsigned char *pickle = NULL, *buf = NULL;
    size_t plen = 0;
    tp_doc *doc = NULL;
    json_t *hdr = NULL;
    char *text = NULL;
    sadm_status st = open_archive(path, &pf, &pickle, &plen);
    if (!st) st = tp_parse(path, pickle, plen, &doc);
    const tp_value *sd = NULL;
    const char *picked = NULL;
    if (!st) st = pick_state_dict(path, tp_root(doc), entry, &sd, &picked);
    if (!st && picked && which) snprintf(which, which_len, "%s", picked);
    size_t count = sd ? sd->n / 2 : 0;
    long *member = calloc(count ? count : 1, sizeof *member);
    uint64_t *start = calloc(count ? count : 1, sizeof *start), *bytes = calloc(count ? count : 1, sizeof *bytes);
    if (!st && (!member || !start || !bytes || !(hdr = json_object()))) st = sadm_error(SADM_ERR_NOMEM, "%s: out of memory", path);
    uint64_t total = 0;
    for (size_t i = 0; !st && i < count; i++) {
        const tp_value *k = sd->items[2 * i], *v = sd->items[2 * i + 1];
        if (k->kind != TP_STR) {
            st = sadm_error(SADM_ERR_FORMAT, "%s: state dict key %zu is a %s, not a string", path, i, kind_name(k->kind));
            break;
        }
        if (v->kind != TP_TENSOR) {
            st = sadm_error(SADM_ERR_FORMAT, "%s: state dict entry '%s' is a %s, not a tensor", path, k->s, kind_name(v->kind));
            break;
        }
        if (json_object_get(hdr, k->s)) {
            st = sadm_error(SADM_ERR_FORMAT, "%s: state dict key '%s' appears twice", path, k->s);
            break;
        }
        if ((st = tensor_extent(&pf, k->s, v, &member[i], &start[i], &bytes[i]))) break;
        json_t *shape = json_array();
        for (int d = 0; d < v->ndim; d++) json_array_append_new(shape, json_integer(v->shape[d]));
        json_t *e = json_pack("{s:s, s:o, s:[I, I]}", "dtype", sadm_dtype_name(v->storage->dtype), "shape", shape,
                              "data_offsets", (json_int_t)total, (json_int_t)(total + bytes[i]));
        if (!e || json_object_set_new(hdr, k->s, e)) st = sadm_error(SADM_ERR_NOMEM, "%s: out of memory", path);
        total += bytes[i];
    }
    if (!st && !(text = json_dumps(hdr, JSON_COMPACT | JSON_PRESERVE_ORDER)))
        st = sadm_error(SADM_ERR_NOMEM, "%s: out of memory", path);
    size_t hlen = text ? (strlen(text) + 7) / 8 * 8 : 0;
    if (!st) st = sadm_memory_check("reading a torch.save file's tensors", 8 + hlen + total, path);
    if (!st && !(buf = malloc(8 + hlen + (size_t)total))) st = sadm_error(SADM_ERR_NOMEM, "%s: out of memory for %llu bytes", path,
                                                                        (unsigned long long)total);
    if (!st) {
        for (int b = 0; b < 8; b++) buf[b] = (unsigned char)((uint64_t)hlen >> (8 * b));
        memset(buf + 8, ' ', hlen);
        memcpy(buf + 8, text, strlen(text));
        for (size_t i = 0, at = 8 + hlen; !st && i < count; at += bytes[i], i++)
            st = sadm_zip_read(pf.zip, (size_t)member[i], start[i], buf + at, (size_t)bytes[i]);
    }
    if (!st) *out = buf, *out_len = 8 + hlen + (size_t)total;
    else free(buf);
    free(text), json_decref(hdr), free(member), free(start), free(bytes), tp_free(doc), free(pickle);
    sadm_zip_close(pf.zip);
    return st;
}
