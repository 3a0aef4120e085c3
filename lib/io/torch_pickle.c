/* A restricted unpickler for the data.pkl of torch.save files: it builds a tree of plain
 * values (None, bools, ints, floats, strings, tuples, lists, dicts) and tensors, and
 * nothing else. Globals are names looked up in a fixed table (OrderedDict, the tensor and
 * parameter rebuilders, the storage classes, argparse.Namespace as an inert record); any
 * other global, and every opcode a state dict does not need, is refused with its position.
 * Nothing is ever called or imported: "REDUCE" of a known global is interpreted here. */
#include <stdlib.h>
#include <string.h>

#include "torch_pickle.h"

#define MAX_STACK 100000
#define MAX_MEMO 10000000

typedef struct unpickler {
    const char *path;
    const unsigned char *p;
    size_t len, pos;
    tp_value **stack;
    size_t sp, stack_cap;
    size_t *marks;
    size_t nmarks, marks_cap;
    tp_value **memo;
    size_t memo_cap, memo_count;
    tp_value **all; /* every value made, freed together */
    size_t nall, all_cap;
} unpickler;

static const struct {
    const char *module, *name;
    tp_global id;
} GLOBALS[] = {
    {"collections", "OrderedDict", TP_G_ORDERED_DICT},
    {"torch._utils", "_rebuild_tensor_v2", TP_G_REBUILD_TENSOR},
    {"torch._utils", "_rebuild_parameter", TP_G_REBUILD_PARAMETER},
    {"argparse", "Namespace", TP_G_NAMESPACE},
    {"torch", "FloatStorage", TP_G_STORAGE},
    {"torch", "HalfStorage", TP_G_STORAGE},
    {"torch", "BFloat16Storage", TP_G_STORAGE},
    {"torch", "DoubleStorage", TP_G_STORAGE},
    {"torch", "LongStorage", TP_G_STORAGE},
    {"torch", "IntStorage", TP_G_STORAGE},
    {"torch", "ShortStorage", TP_G_STORAGE},
    {"torch", "CharStorage", TP_G_STORAGE},
    {"torch", "ByteStorage", TP_G_STORAGE},
    {"torch", "BoolStorage", TP_G_STORAGE},
};
static const sadm_dtype STORAGE_DTYPES[] = {SADM_DTYPE_F32, SADM_DTYPE_F16, SADM_DTYPE_BF16, SADM_DTYPE_F64,
                                            SADM_DTYPE_I64, SADM_DTYPE_I32, SADM_DTYPE_I16, SADM_DTYPE_I8,
                                            SADM_DTYPE_U8,  SADM_DTYPE_BOOL};

static sadm_status fail(const unpickler *u, const char *what) {
    return sadm_error(SADM_ERR_FORMAT, "%s: data.pkl byte %zu: %s", u->path, u->pos, what);
}

/* A doubling array of `elem`-byte entries (first size `first`) with room for entry n: arr
 * itself, or its reallocation (*cap updated), or NULL when out of memory (arr untouched). */
static void *reserve(void *arr, size_t *cap, size_t n, size_t elem, size_t first) {
    if (n < *cap) return arr;
    size_t c = *cap ? 2 * *cap : first;
    void *a = realloc(arr, c * elem);
    if (a) *cap = c;
    return a;
}

static tp_value *make(unpickler *u, tp_kind kind) {
    tp_value **all = reserve(u->all, &u->all_cap, u->nall, sizeof *all, 256);
    if (!all) return NULL;
    u->all = all;
    tp_value *v = calloc(1, sizeof *v);
    if (!v) return NULL;
    v->kind = kind;
    u->all[u->nall++] = v;
    return v;
}

static sadm_status push(unpickler *u, tp_value *v) {
    if (!v) return sadm_error(SADM_ERR_NOMEM, "%s: out of memory in data.pkl", u->path);
    if (u->sp == u->stack_cap && u->stack_cap >= MAX_STACK) return fail(u, "the pickle stack grows beyond 100000 entries");
    tp_value **stack = reserve(u->stack, &u->stack_cap, u->sp, sizeof *stack, 64);
    if (!stack) return sadm_error(SADM_ERR_NOMEM, "%s: out of memory in data.pkl", u->path);
    u->stack = stack;
    u->stack[u->sp++] = v;
    return SADM_OK;
}

static sadm_status pop(unpickler *u, tp_value **v) {
    size_t floor = u->nmarks ? u->marks[u->nmarks - 1] : 0;
    if (u->sp <= floor) return fail(u, "stack underflow (truncated or not a pickle?)");
    *v = u->stack[--u->sp];
    return SADM_OK;
}

static sadm_status append_item(unpickler *u, tp_value *seq, tp_value *item) {
    tp_value **items = reserve(seq->items, &seq->cap, seq->n, sizeof *items, 8);
    if (!items) return sadm_error(SADM_ERR_NOMEM, "%s: out of memory in data.pkl", u->path);
    seq->items = items;
    seq->items[seq->n++] = item;
    return SADM_OK;
}

/* The items above the last mark, removed from the stack (with the mark). */
static sadm_status pop_mark(unpickler *u, size_t *first, size_t *count) {
    if (!u->nmarks) return fail(u, "an opcode needs a MARK and there is none");
    size_t m = u->marks[--u->nmarks];
    *first = m, *count = u->sp - m;
    u->sp = m;
    return SADM_OK;
}

static sadm_status need(unpickler *u, size_t n) {
    if (n > u->len - u->pos) return fail(u, "the pickle ends inside an opcode (truncated?)");
    return SADM_OK;
}

static uint64_t le(const unsigned char *p, int n) {
    uint64_t v = 0;
    for (int i = n - 1; i >= 0; i--) v = v << 8 | p[i];
    return v;
}

static sadm_status string_value(unpickler *u, size_t n, tp_kind kind) {
    SADM_TRY(need(u, n));
    tp_value *v = make(u, kind);
    if (!v || !(v->s = malloc(n + 1))) return sadm_error(SADM_ERR_NOMEM, "%s: out of memory in data.pkl", u->path);
    memcpy(v->s, u->p + u->pos, n);
    v->s[n] = 0, v->slen = n;
    u->pos += n;
    return push(u, v);
}

static sadm_status memo_put(unpickler *u, uint64_t idx) {
    if (!u->sp) return fail(u, "memo store with an empty stack");
    if (idx >= MAX_MEMO) return fail(u, "memo index beyond 10^7");
    if (idx >= u->memo_cap) {
        size_t cap = u->memo_cap ? u->memo_cap : 64;
        while (cap <= idx) cap *= 2;
        tp_value **m = realloc(u->memo, cap * sizeof *m);
        if (!m) return sadm_error(SADM_ERR_NOMEM, "%s: out of memory in data.pkl", u->path);
        memset(m + u->memo_cap, 0, (cap - u->memo_cap) * sizeof *m);
        u->memo = m, u->memo_cap = cap;
    }
    if (!u->memo[idx]) u->memo_count++;
    u->memo[idx] = u->stack[u->sp - 1];
    return SADM_OK;
}

static sadm_status memo_get(unpickler *u, uint64_t idx) {
    if (idx >= u->memo_cap || !u->memo[idx]) return fail(u, "memo fetch of an index never stored");
    return push(u, u->memo[idx]);
}

static int tuple_ints(const tp_value *t, int max, int64_t *out) {
    if (t->kind != TP_TUPLE || t->n > (size_t)max) return -1;
    for (size_t i = 0; i < t->n; i++) {
        if (t->items[i]->kind != TP_INT) return -1;
        out[i] = t->items[i]->i;
    }
    return (int)t->n;
}

/* _rebuild_tensor_v2(storage, storage_offset, size, stride, requires_grad, hooks[, metadata]) */
static sadm_status rebuild_tensor(unpickler *u, const tp_value *args, tp_value **out) {
    if (args->kind != TP_TUPLE || args->n < 4 || args->items[0]->kind != TP_STORAGE || args->items[1]->kind != TP_INT)
        return fail(u, "_rebuild_tensor_v2 with arguments other than (storage, offset, size, stride, ...)");
    tp_value *t = make(u, TP_TENSOR);
    if (!t) return sadm_error(SADM_ERR_NOMEM, "%s: out of memory in data.pkl", u->path);
    t->storage = args->items[0];
    t->offset = args->items[1]->i;
    int nd = tuple_ints(args->items[2], SADM_MAX_DIMS, t->shape), ns = tuple_ints(args->items[3], SADM_MAX_DIMS, t->stride);
    if (nd < 0 || ns != nd) return fail(u, "a tensor whose size and stride are not tuples of the same length (at most 8)");
    t->ndim = nd;
    if (t->offset < 0) return fail(u, "a tensor with a negative storage offset");
    for (int i = 0; i < nd; i++)
        if (t->shape[i] < 0 || t->stride[i] < 0) return fail(u, "a tensor with a negative size or stride");
    *out = t;
    return SADM_OK;
}

static sadm_status reduce(unpickler *u, tp_value *fn, tp_value *args) {
    if (fn->kind != TP_GLOBAL) return fail(u, "REDUCE of something that is not a known global");
    if (args->kind != TP_TUPLE) return fail(u, "REDUCE with arguments that are not a tuple");
    tp_value *r = NULL;
    switch (fn->global) {
    case TP_G_ORDERED_DICT:
        if (args->n != 0) return fail(u, "OrderedDict built from arguments (only OrderedDict() is expected)");
        r = make(u, TP_DICT);
        break;
    case TP_G_REBUILD_TENSOR: SADM_TRY(rebuild_tensor(u, args, &r)); break;
    case TP_G_REBUILD_PARAMETER:
        if (args->n < 1 || args->items[0]->kind != TP_TENSOR) return fail(u, "_rebuild_parameter of something not a tensor");
        r = args->items[0];
        break;
    case TP_G_NAMESPACE: r = make(u, TP_OBJECT); break;
    default: return fail(u, "REDUCE of a storage class");
    }
    return push(u, r);
}

/* ('storage', storage class, key, location, numel) */
static sadm_status persistent_load(unpickler *u, tp_value *pid) {
    if (pid->kind != TP_TUPLE || pid->n < 5 || pid->items[0]->kind != TP_STR || strcmp(pid->items[0]->s, "storage") ||
        pid->items[1]->kind != TP_GLOBAL || pid->items[1]->global != TP_G_STORAGE || pid->items[2]->kind != TP_STR ||
        pid->items[4]->kind != TP_INT || pid->items[4]->i < 0)
        return fail(u, "a persistent id that is not ('storage', <storage class>, key, location, size)");
    tp_value *s = make(u, TP_STORAGE);
    if (!s) return sadm_error(SADM_ERR_NOMEM, "%s: out of memory in data.pkl", u->path);
    s->dtype = pid->items[1]->dtype;
    s->s = pid->items[2]->s; /* owned by the key's string value */
    s->numel = pid->items[4]->i;
    return push(u, s);
}

static sadm_status global(unpickler *u, const char *module, const char *name) {
    for (size_t i = 0; i < sizeof GLOBALS / sizeof *GLOBALS; i++)
        if (!strcmp(module, GLOBALS[i].module) && !strcmp(name, GLOBALS[i].name)) {
            tp_value *g = make(u, TP_GLOBAL);
            if (!g) return sadm_error(SADM_ERR_NOMEM, "%s: out of memory in data.pkl", u->path);
            g->global = GLOBALS[i].id;
            if (g->global == TP_G_STORAGE) g->dtype = STORAGE_DTYPES[i - 4];
            return push(u, g);
        }
    char what[400];
    snprintf(what, sizeof what,
             "the global '%.100s.%.100s' is not allowed (a state dict needs only tensors, storages and containers; "
             "this file may run code under torch.load)",
             module, name);
    return fail(u, what);
}

/* GLOBAL's two newline-terminated lines */
static sadm_status read_line(unpickler *u, char *buf, size_t cap) {
    const unsigned char *nl = memchr(u->p + u->pos, '\n', u->len - u->pos);
    if (!nl) return fail(u, "GLOBAL without its newline (truncated?)");
    size_t n = (size_t)(nl - (u->p + u->pos));
    if (n >= cap) return fail(u, "GLOBAL name longer than 200 bytes");
    memcpy(buf, u->p + u->pos, n);
    buf[n] = 0;
    u->pos += n + 1;
    return SADM_OK;
}

static sadm_status step(unpickler *u, int *stop) {
    unsigned char op = u->p[u->pos++];
    tp_value *a, *b, *c;
    size_t first = 0, count = 0;
    switch (op) {
    case 0x80: /* PROTO */
        SADM_TRY(need(u, 1));
        if (u->p[u->pos] < 2 || u->p[u->pos] > 5) return fail(u, "unsupported pickle protocol");
        u->pos++;
        return SADM_OK;
    case 0x95: /* FRAME: a length hint */ SADM_TRY(need(u, 8)); u->pos += 8; return SADM_OK;
    case '.': *stop = 1; return SADM_OK;
    case '(': {
        if (u->nmarks == u->marks_cap && (u->marks_cap ? 2 * u->marks_cap : 16) > MAX_STACK)
            return fail(u, "too many nested MARKs");
        size_t *marks = reserve(u->marks, &u->marks_cap, u->nmarks, sizeof *marks, 16);
        if (!marks) return sadm_error(SADM_ERR_NOMEM, "%s: out of memory in data.pkl", u->path);
        u->marks = marks;
        u->marks[u->nmarks++] = u->sp;
        return SADM_OK;
    }
    case '}': return push(u, make(u, TP_DICT));
    case ']': return push(u, make(u, TP_LIST));
    case ')': return push(u, make(u, TP_TUPLE));
    case 'N': return push(u, make(u, TP_NONE));
    case 0x88: case 0x89: /* NEWTRUE, NEWFALSE */
        if (!(a = make(u, TP_BOOL))) return push(u, NULL);
        a->i = op == 0x88;
        return push(u, a);
    case 't':
        SADM_TRY(pop_mark(u, &first, &count));
        if (!(a = make(u, TP_TUPLE))) return push(u, NULL);
        for (size_t i = 0; i < count; i++) SADM_TRY(append_item(u, a, u->stack[first + i]));
        return push(u, a);
    case 0x85: case 0x86: case 0x87: { /* TUPLE1..3 */
        int n = op - 0x84;
        tp_value *items[3];
        for (int i = n - 1; i >= 0; i--) SADM_TRY(pop(u, &items[i]));
        if (!(a = make(u, TP_TUPLE))) return push(u, NULL);
        for (int i = 0; i < n; i++) SADM_TRY(append_item(u, a, items[i]));
        return push(u, a);
    }
    case 's': /* SETITEM */
        SADM_TRY(pop(u, &c));
        SADM_TRY(pop(u, &b));
        SADM_TRY(pop(u, &a));
        if (a->kind != TP_DICT) return fail(u, "SETITEM on something that is not a dict");
        SADM_TRY(append_item(u, a, b));
        SADM_TRY(append_item(u, a, c));
        return push(u, a);
    case 'u': /* SETITEMS */
        SADM_TRY(pop_mark(u, &first, &count));
        if (count % 2) return fail(u, "SETITEMS with an odd number of items");
        SADM_TRY(pop(u, &a));
        if (a->kind != TP_DICT) return fail(u, "SETITEMS on something that is not a dict");
        for (size_t i = 0; i < count; i++) SADM_TRY(append_item(u, a, u->stack[first + i]));
        return push(u, a);
    case 'a': /* APPEND */
        SADM_TRY(pop(u, &b));
        SADM_TRY(pop(u, &a));
        if (a->kind != TP_LIST) return fail(u, "APPEND to something that is not a list");
        SADM_TRY(append_item(u, a, b));
        return push(u, a);
    case 'e': /* APPENDS */
        SADM_TRY(pop_mark(u, &first, &count));
        SADM_TRY(pop(u, &a));
        if (a->kind != TP_LIST) return fail(u, "APPENDS to something that is not a list");
        for (size_t i = 0; i < count; i++) SADM_TRY(append_item(u, a, u->stack[first + i]));
        return push(u, a);
    case 'q': SADM_TRY(need(u, 1)); u->pos += 1; return memo_put(u, u->p[u->pos - 1]);
    case 'r': SADM_TRY(need(u, 4)); u->pos += 4; return memo_put(u, le(u->p + u->pos - 4, 4));
    case 0x94: return memo_put(u, u->memo_count); /* MEMOIZE: the next index, as len(memo) */
    case 'h': SADM_TRY(need(u, 1)); u->pos += 1; return memo_get(u, u->p[u->pos - 1]);
    case 'j': SADM_TRY(need(u, 4)); u->pos += 4; return memo_get(u, le(u->p + u->pos - 4, 4));
    case 'J': case 'K': case 'M': { /* BININT (signed 4), BININT1, BININT2 */
        int n = op == 'J' ? 4 : op == 'K' ? 1 : 2;
        SADM_TRY(need(u, (size_t)n));
        if (!(a = make(u, TP_INT))) return push(u, NULL);
        uint64_t v = le(u->p + u->pos, n);
        a->i = op == 'J' ? (int64_t)(int32_t)(uint32_t)v : (int64_t)v;
        u->pos += (size_t)n;
        return push(u, a);
    }
    case 0x8a: { /* LONG1: n little-endian two's-complement bytes */
        SADM_TRY(need(u, 1));
        int n = u->p[u->pos++];
        if (n > 8) return fail(u, "an integer wider than 64 bits");
        SADM_TRY(need(u, (size_t)n));
        if (!(a = make(u, TP_INT))) return push(u, NULL);
        uint64_t v = le(u->p + u->pos, n);
        if (n > 0 && n < 8 && (u->p[u->pos + n - 1] & 0x80)) v |= ~(uint64_t)0 << (8 * n);
        a->i = (int64_t)v;
        u->pos += (size_t)n;
        return push(u, a);
    }
    case 'G': { /* BINFLOAT, big-endian */
        SADM_TRY(need(u, 8));
        if (!(a = make(u, TP_FLOAT))) return push(u, NULL);
        uint64_t v = 0;
        for (int i = 0; i < 8; i++) v = v << 8 | u->p[u->pos + (size_t)i];
        memcpy(&a->f, &v, sizeof v);
        u->pos += 8;
        return push(u, a);
    }
    case 'X': case 'T': case 'B': /* BINUNICODE, BINSTRING, BINBYTES: 4-byte length */
        SADM_TRY(need(u, 4));
        u->pos += 4;
        return string_value(u, (size_t)le(u->p + u->pos - 4, 4), op == 'B' ? TP_BYTES : TP_STR);
    case 0x8c: case 'U': case 'C': /* SHORT_BINUNICODE, SHORT_BINSTRING, SHORT_BINBYTES */
        SADM_TRY(need(u, 1));
        u->pos += 1;
        return string_value(u, u->p[u->pos - 1], op == 'C' ? TP_BYTES : TP_STR);
    case 'c': {
        char module[201], name[201];
        SADM_TRY(read_line(u, module, sizeof module));
        SADM_TRY(read_line(u, name, sizeof name));
        return global(u, module, name);
    }
    case 0x93: /* STACK_GLOBAL */
        SADM_TRY(pop(u, &b));
        SADM_TRY(pop(u, &a));
        if (a->kind != TP_STR || b->kind != TP_STR) return fail(u, "STACK_GLOBAL of names that are not strings");
        return global(u, a->s, b->s);
    case 'R':
        SADM_TRY(pop(u, &b));
        SADM_TRY(pop(u, &a));
        return reduce(u, a, b);
    case 0x81: /* NEWOBJ: cls.__new__(cls, *args), only for the inert Namespace */
        SADM_TRY(pop(u, &b));
        SADM_TRY(pop(u, &a));
        if (a->kind != TP_GLOBAL || a->global != TP_G_NAMESPACE) return fail(u, "NEWOBJ of a class other than argparse.Namespace");
        return push(u, make(u, TP_OBJECT));
    case 'b': /* BUILD: a dict's state (OrderedDict's _metadata) is dropped; a Namespace keeps its fields */
        SADM_TRY(pop(u, &b));
        SADM_TRY(pop(u, &a));
        if (a->kind == TP_OBJECT) a->state = b;
        else if (a->kind != TP_DICT) return fail(u, "BUILD on something that is neither a dict nor a Namespace");
        return push(u, a);
    case 'Q': /* BINPERSID */
        SADM_TRY(pop(u, &a));
        return persistent_load(u, a);
    default: {
        char what[120];
        u->pos--;
        snprintf(what, sizeof what, "opcode 0x%02x is not allowed in a state dict", op);
        return fail(u, what);
    }
    }
}

struct tp_doc {
    tp_value **all;
    size_t nall;
    tp_value *root;
};

void tp_free(tp_doc *d) {
    if (!d) return;
    for (size_t i = 0; i < d->nall; i++) {
        tp_value *v = d->all[i];
        if (v->kind != TP_STORAGE) free(v->s); /* a storage's key belongs to its string */
        free(v->items);
        free(v);
    }
    free(d->all);
    free(d);
}

const tp_value *tp_root(const tp_doc *d) { return d ? d->root : NULL; }

sadm_status tp_parse(const char *path, const unsigned char *data, size_t len, tp_doc **out) {
    *out = NULL;
    unpickler u = {.path = path, .p = data, .len = len};
    sadm_status st = SADM_OK;
    int stop = 0;
    while (!st && !stop) {
        if (u.pos >= u.len) st = fail(&u, "the pickle ends without STOP (truncated?)");
        else st = step(&u, &stop);
    }
    if (!st && (u.sp != 1 || u.nmarks)) st = fail(&u, "STOP with other than one value on the stack");
    tp_doc *d = calloc(1, sizeof *d);
    if (!st && !d) st = sadm_error(SADM_ERR_NOMEM, "%s: out of memory in data.pkl", path);
    if (d) d->all = u.all, d->nall = u.nall, d->root = st ? NULL : u.stack[0];
    else {
        for (size_t i = 0; i < u.nall; i++) {
            if (u.all[i]->kind != TP_STORAGE) free(u.all[i]->s);
            free(u.all[i]->items), free(u.all[i]);
        }
        free(u.all);
    }
    free(u.stack), free(u.marks), free(u.memo);
    if (st) {
        tp_free(d);
        return st;
    }
    *out = d;
    return SADM_OK;
}

const tp_value *tp_dict_get(const tp_value *dict, const char *key) {
    if (!dict || dict->kind != TP_DICT) return NULL;
    for (size_t i = 0; i + 1 < dict->n; i += 2)
        if (dict->items[i]->kind == TP_STR && !strcmp(dict->items[i]->s, key)) return dict->items[i + 1];
    return NULL;
}
