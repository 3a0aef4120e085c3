/* The restricted unpickler of torch.save's data.pkl (lib/io/torch_pickle.c): plain values,
 * tensors and storages only; nothing is ever executed. */
#ifndef SADM_TORCH_PICKLE_H
#define SADM_TORCH_PICKLE_H

#include "io.h"

typedef enum tp_kind {
    TP_NONE, TP_BOOL, TP_INT, TP_FLOAT, TP_STR, TP_BYTES, TP_TUPLE, TP_LIST, TP_DICT,
    TP_GLOBAL,  /* a known name, only as an argument of REDUCE/NEWOBJ or a storage class */
    TP_STORAGE, /* a persistent id: data/<key> of the archive, numel elements of dtype */
    TP_TENSOR,  /* a view of a storage */
    TP_OBJECT   /* argparse.Namespace: an inert record, its fields in state */
} tp_kind;

typedef enum tp_global {
    TP_G_ORDERED_DICT, TP_G_REBUILD_TENSOR, TP_G_REBUILD_PARAMETER, TP_G_NAMESPACE, TP_G_STORAGE
} tp_global;

typedef struct tp_value tp_value;
struct tp_value {
    tp_kind kind;
    int64_t i;              /* BOOL, INT */
    double f;               /* FLOAT */
    char *s;                /* STR, BYTES (NUL-terminated copy); STORAGE: its key */
    size_t slen;
    tp_value **items;       /* TUPLE, LIST; DICT: key, value, key, value, ... in order */
    size_t n, cap;
    tp_global global;       /* GLOBAL */
    sadm_dtype dtype;       /* GLOBAL storage class, STORAGE */
    int64_t numel;          /* STORAGE */
    tp_value *storage;      /* TENSOR */
    int64_t offset;         /* TENSOR: in elements */
    int ndim;
    int64_t shape[SADM_MAX_DIMS], stride[SADM_MAX_DIMS];
    tp_value *state;        /* OBJECT */
};

typedef struct tp_doc tp_doc;
/* Parses a pickle; errors name `path` and the byte offset. */
sadm_status tp_parse(const char *path, const unsigned char *data, size_t len, tp_doc **out);
const tp_value *tp_root(const tp_doc *d);
void tp_free(tp_doc *d);
/* The value of a string key of a dict (the first with that key), or NULL. */
const tp_value *tp_dict_get(const tp_value *dict, const char *key);

#endif
