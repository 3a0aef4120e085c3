#include <stdlib.h>
#include <string.h>

#include "params.h"

size_t sadm_ptab_add(sadm_param_table *t, const char *name, int trainable, int ndim, const int64_t *shape) {
    if (t->count == t->cap) {
        size_t cap = t->cap ? 2 * t->cap : 64;
        sadm_param *p = realloc(t->items, cap * sizeof *p);
        if (!p) return (size_t)-1;
        t->items = p, t->cap = cap;
    }
    sadm_param *p = &t->items[t->count];
    memset(p, 0, sizeof *p);
    if (!(p->name = strdup(name))) return (size_t)-1;
    p->ndim = ndim;
    p->numel = 1;
    for (int d = 0; d < ndim; d++) p->shape[d] = shape[d], p->numel *= (size_t)shape[d];
    /* 16-float (64-byte) alignment for every view keeps vector loads aligned */
    p->offset = (t->total + 15) / 16 * 16;
    p->trainable = trainable;
    t->total = p->offset + p->numel;
    return t->count++;
}

void sadm_ptab_free(sadm_param_table *t) {
    for (size_t i = 0; i < t->count; i++) free((char *)t->items[i].name);
    free(t->items);
    memset(t, 0, sizeof *t);
}

size_t sadm_ptab_find(const sadm_param_table *t, const char *name) {
    for (size_t i = 0; i < t->count; i++)
        if (strcmp(t->items[i].name, name) == 0) return i;
    return (size_t)-1;
}
