/* A data set stored as tensors in a safetensors file: x (N, C, S, S) in model space (e.g.
 * VAE latents, already scaled) as F32/F16/BF16/F64, and y (N) int64 labels. The number of
 * classes comes from __metadata__ "num_classes", else from the largest label. */
#include <stdlib.h>
#include <string.h>

#include "dataset.h"
#include "../models/params.h"

#define MAX_CLASSES 10000000 /* a DiT's bound (dit_config.c) */

sadm_status sadm_dataset_tensors(const char *path, sadm_dataset **out) {
    SADM_REQUIRE_PTR(path);
    SADM_REQUIRE_PTR(out);
    *out = NULL;
    sadm_st_file *f;
    sadm_status st = sadm_st_open(path, &f);
    if (st) return st;
    const sadm_tensor_info *x = sadm_st_find(f, "x"), *y = sadm_st_find(f, "y");
    if (!x || x->ndim != 4 || x->shape[2] != x->shape[3] || x->shape[0] < 1)
        st = sadm_error(SADM_ERR_FORMAT, "%s: needs a tensor 'x' of shape (N, C, S, S)", path);
    else if (x->shape[1] < 1 || x->shape[1] > 1024 || x->shape[2] < 1 || x->shape[2] > 4096)
        st = sadm_error(SADM_ERR_FORMAT, "%s: tensor 'x' has %lld channels of %lldx%lld; expected 1..1024 channels of 1..4096 pixels a side",
                        path, (long long)x->shape[1], (long long)x->shape[2], (long long)x->shape[3]);
    else if (!y || y->ndim != 1 || y->shape[0] != x->shape[0] || y->dtype != SADM_DTYPE_I64)
        st = sadm_error(SADM_ERR_FORMAT, "%s: needs a tensor 'y' of shape (%lld) and dtype I64 (labels)", path,
                        (long long)x->shape[0]);
    sadm_dataset *d = st ? NULL : sadm_dataset_alloc();
    if (!st && !d) st = sadm_error(SADM_ERR_NOMEM, "%s: out of memory", path);
    if (!st) {
        d->kind = DATASET_F32;
        d->n = (size_t)x->shape[0], d->channels = (int)x->shape[1], d->size = (int)x->shape[2];
        d->values = malloc(x->numel * sizeof(float));
        d->labels = malloc(d->n * sizeof(int64_t));
        if (!d->values || !d->labels) st = sadm_error(SADM_ERR_NOMEM, "%s: out of memory for %zu values", path, x->numel);
    }
    if (!st) st = sadm_st_read_f32(f, "x", 4, x->shape, d->values);
    if (!st) {
        memcpy(d->labels, y->data, d->n * sizeof(int64_t));
        int64_t max = -1;
        for (size_t i = 0; i < d->n && !st; i++) {
            if (d->labels[i] < 0 || d->labels[i] >= MAX_CLASSES)
                st = sadm_error(SADM_ERR_FORMAT, "%s: label %lld of sample %zu is not a class in [0, %d)", path,
                                (long long)d->labels[i], i, MAX_CLASSES);
            if (d->labels[i] > max) max = d->labels[i];
        }
        double nc = (double)max + 1;
        if (!st && sadm_st_metadata(f, "num_classes")) st = sadm_meta_number(f, path, "num_classes", 1, 1, MAX_CLASSES, &nc);
        if (!st) d->classes = (int)nc; /* in range: every label and num_classes were checked */
        if (!st && d->classes <= max)
            st = sadm_error(SADM_ERR_FORMAT, "%s: __metadata__ num_classes %d but a label is %lld", path, d->classes, (long long)max);
    }
    sadm_st_close(f);
    if (st) {
        sadm_dataset_free(d);
        return st;
    }
    *out = d;
    return SADM_OK;
}
