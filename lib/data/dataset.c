/* What every data set shares: sizes, sample access with horizontal flips, freeing. */
#include <stdlib.h>
#include <string.h>

#include "dataset.h"

sadm_dataset *sadm_dataset_alloc(void) { return calloc(1, sizeof(sadm_dataset)); }

void sadm_dataset_free(sadm_dataset *d) {
    if (!d) return;
    free(d->pixels);
    free(d->values);
    for (size_t i = 0; d->paths && i < d->n; i++) free(d->paths[i]);
    free(d->paths);
    for (int k = 0; d->class_names && k < d->classes; k++) free(d->class_names[k]);
    free(d->class_names);
    if (d->kind == DATASET_LATENTS) dataset_close_latents(d);
    free(d->labels);
    free(d);
}

size_t sadm_dataset_size(const sadm_dataset *d) { return d ? d->n : 0; }
int sadm_dataset_channels(const sadm_dataset *d) { return d ? d->channels : 0; }
int sadm_dataset_image_size(const sadm_dataset *d) { return d ? d->size : 0; }
int sadm_dataset_num_classes(const sadm_dataset *d) { return d ? d->classes : 0; }

void dataset_mirror(float *x, size_t rows, size_t S) {
    for (size_t r = 0; r < rows; r++)
        for (size_t c = 0; c < S / 2; c++) {
            float t = x[r * S + c];
            x[r * S + c] = x[r * S + S - 1 - c], x[r * S + S - 1 - c] = t;
        }
}

sadm_status sadm_dataset_get(const sadm_dataset *d, size_t i, int flip, float *x, int64_t *y) {
    SADM_REQUIRE_PTR(d);
    SADM_REQUIRE(i < d->n, "sadm_dataset_get: sample %zu of a data set of %zu", i, d->n);
    SADM_REQUIRE_PTR(x);
    if (d->kind == DATASET_U8_PADDED) {
        dataset_get_u8_padded(d, i, flip, x);
    } else if (d->kind == DATASET_IMAGES) {
        sadm_status st = dataset_get_image(d, i, flip, x);
        if (st) return st;
    } else if (d->kind == DATASET_LATENTS) {
        dataset_get_latent(d, i, flip, x);
    } else {
        size_t S = (size_t)d->size, per = (size_t)d->channels * S * S;
        memcpy(x, d->values + i * per, per * sizeof(float));
        if (flip) dataset_mirror(x, (size_t)d->channels * S, S);
    }
    if (y) *y = d->labels[i];
    return SADM_OK;
}
