/* Parameter tables: named views into one float block (see sadm_param in sadm.h). */
#ifndef SADM_PARAMS_H
#define SADM_PARAMS_H

#include "../backend.h"
#include "../internal.h"

typedef struct sadm_param_table {
    sadm_param *items;
    size_t count, cap;
    size_t total; /* floats */
} sadm_param_table;

/* Appends a view; returns its index, or (size_t)-1 when out of memory. */
size_t sadm_ptab_add(sadm_param_table *t, const char *name, int trainable, int ndim, const int64_t *shape);
void sadm_ptab_free(sadm_param_table *t);
/* Index of `name`, or (size_t)-1. */
size_t sadm_ptab_find(const sadm_param_table *t, const char *name);

/* Integer / number values of safetensors __metadata__ keys; errors name the file and key.
 * Parsing is strict: plain decimal (integers without '.' or exponent), no blanks, nothing
 * after the number, finite, within [lo, hi]. sadm_meta_int takes [-1e9, 1e9] (a config's
 * own checks then bound each field), sadm_meta_float any finite float. */
sadm_status sadm_meta_number(const sadm_st_file *f, const char *path, const char *key, int integer, double lo, double hi,
                             double *out);
sadm_status sadm_meta_u64(const sadm_st_file *f, const char *path, const char *key, uint64_t *out);
sadm_status sadm_meta_int(const sadm_st_file *f, const char *path, const char *key, int *out);
sadm_status sadm_meta_float(const sadm_st_file *f, const char *path, const char *key, float *out);

/* Range and divisibility checks of the sizes a DiT and a ViT encoder share (input, patch,
 * channels, width, depth, heads, MLP ratio); messages start with `what`, e.g. "DiT config". */
sadm_status sadm_transformer_sizes_check(const char *what, int input_size, int patch_size, int in_channels,
                                         int hidden_size, int depth, int num_heads, float mlp_ratio);

/* Before a model's parameters are allocated: its `params` floats fit in memory and, when
 * it is read from file f, the file holds at least that many 2-byte values (a few bytes of
 * metadata cannot ask for gigabytes). `config` describes the sizes for the message
 * ("depth 10000000, hidden_size 16"). */
sadm_status sadm_model_size_check(const char *what, uint64_t params, const char *config, const sadm_st_file *f,
                                  const char *path);

/* A config struct <-> __metadata__ through a table of its fields: key (after a prefix),
 * kind and offset in the struct. Booleans (int fields) are written True/False, as
 * Python writes them, and read as True/true/1 or False/false/0. Reading fails on the
 * first missing or malformed key, naming the file and the key. */
typedef enum sadm_meta_kind { SADM_META_INT, SADM_META_FLOAT, SADM_META_BOOL } sadm_meta_kind;
typedef struct sadm_meta_field {
    const char *key;
    sadm_meta_kind kind;
    size_t offset;
} sadm_meta_field;
sadm_status sadm_meta_write_fields(sadm_st_writer *w, const char *prefix, const sadm_meta_field *fields, size_t n,
                                   const void *obj);
sadm_status sadm_meta_read_fields(const sadm_st_file *f, const char *path, const char *prefix,
                                  const sadm_meta_field *fields, size_t n, void *obj);

/* Every tensor of a table (or only the trainable ones), named prefix + name, from/into
 * a block `data` in the table's layout. */
sadm_status sadm_ptab_write(const sadm_param_table *t, const float *data, const char *prefix, int only_trainable,
                            sadm_st_writer *w);
sadm_status sadm_ptab_read(const sadm_param_table *t, const sadm_st_file *f, const char *prefix, int only_trainable,
                           float *data);

/* The gradient block in the table's layout, allocated zeroed at first use (NULL when out
 * of memory), and zeroing it; `what` names the model in the error. */
float *sadm_ptab_grad(const sadm_param_table *t, float **grad, sadm_backend *be);
sadm_status sadm_ptab_zero_grad(const sadm_param_table *t, float **grad, sadm_backend *be, const char *what);
/* A model's own file holds nothing else: an error naming the first tensor of f that is
 * not in the table. */
sadm_status sadm_ptab_check_only(const sadm_param_table *t, const sadm_st_file *f, const char *path, const char *what);

#endif
