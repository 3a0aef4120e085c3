/* The data set object shared by the loaders in lib/data/. */
#ifndef SADM_DATASET_H
#define SADM_DATASET_H

#include "../internal.h"

typedef enum { DATASET_U8_PADDED, DATASET_F32, DATASET_IMAGES } dataset_kind;

struct sadm_dataset {
    dataset_kind kind;
    size_t n;
    int channels, size, classes;
    /* DATASET_U8_PADDED (Fashion-MNIST): n × h × w bytes, padded by `pad` when read */
    int h, w, pad;
    uint8_t *pixels;
    /* DATASET_F32 (tensor files): n × channels × size × size floats */
    float *values;
    /* DATASET_IMAGES: one file per sample, decoded when read */
    char **paths;
    size_t skipped_files;
    int64_t *labels;
};

sadm_dataset *sadm_dataset_alloc(void);
/* Sample i of a DATASET_U8_PADDED set, scaled to [-1, 1] (lib/data/fmnist.c). */
void dataset_get_u8_padded(const sadm_dataset *d, size_t i, int flip, float *x);
/* Sample i of a DATASET_IMAGES set, decoded and cropped (lib/data/imagefolder.c). */
sadm_status dataset_get_image(const sadm_dataset *d, size_t i, int flip, float *x);

/* Reads a whole IDX file (gzip or plain) with the given magic and ndim (at most 3) sizes
 * into *data (malloc'ed); sizes are checked before anything is allocated. */
sadm_status sadm_idx_read(const char *path, uint32_t magic, int ndim, uint32_t *dims, uint8_t **data);

/* Every .jpg/.jpeg/.png file under root (any depth), sorted by folder then name;
 * *paths and each entry are malloc'ed. */
sadm_status sadm_image_files(const char *root, char ***paths, size_t *count);

#endif
