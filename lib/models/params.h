/* Parameter tables: named views into one float block (see sadm_param in sadm.h). */
#ifndef SADM_PARAMS_H
#define SADM_PARAMS_H

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

#endif
