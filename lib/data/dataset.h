/* The data set object shared by the loaders in lib/data/. */
#ifndef SADM_DATASET_H
#define SADM_DATASET_H

#include "../internal.h"

typedef enum { DATASET_U8_PADDED, DATASET_F32, DATASET_IMAGES, DATASET_LATENTS } dataset_kind;

/* One memory-mapped shard of an encoded folder (lib/data/latents.c). */
typedef struct latent_shard {
    sadm_st_file *file;
    const unsigned char *x, *x_flip; /* rows inside the mapping; x_flip NULL when not stored */
    size_t first, rows;              /* the data set's samples [first, first + rows) */
} latent_shard;

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
    char **class_names; /* `classes` folder names */
    int64_t *labels;
    /* DATASET_LATENTS: shards in sample order, each row `row_bytes` of `dtype` */
    latent_shard *shards;
    size_t num_shards, row_bytes;
    sadm_dtype dtype;
};

sadm_dataset *sadm_dataset_alloc(void);
/* Sample i of a DATASET_U8_PADDED set, scaled to [-1, 1] (lib/data/fmnist.c). */
void dataset_get_u8_padded(const sadm_dataset *d, size_t i, int flip, float *x);
/* Sample i of a DATASET_IMAGES set, decoded and cropped (lib/data/imagefolder.c). */
sadm_status dataset_get_image(const sadm_dataset *d, size_t i, int flip, float *x);
/* Sample i of a DATASET_LATENTS set (lib/data/latents.c). */
void dataset_get_latent(const sadm_dataset *d, size_t i, int flip, float *x);
/* Releases a DATASET_LATENTS set's mappings. */
void dataset_close_latents(sadm_dataset *d);

/* Mirrors `rows` rows of S floats left-right, in place: a horizontal flip of (C, S, S). */
void dataset_mirror(float *x, size_t rows, size_t S);

/* Encoded folders (lib/data/latents_encode.c, latents.c): the manifest's name and format. */
#define LATENT_MANIFEST "manifest.json"
#define LATENT_FORMAT "sadm-latents"
#define LATENT_VERSION 1
/* Shard k's file name, "shard-000012.safetensors", and its path "DIR/shard-000012.safetensors". */
#define LATENT_SHARD_NAME "shard-%06zu.safetensors"
void latent_shard_path(const char *dir, size_t k, char *buf, size_t len);
/* 1 when f has tensor `name` of this dtype and exactly this shape. */
int latent_tensor_is(const sadm_st_file *f, const char *name, sadm_dtype dtype, int ndim, const int64_t *shape);

/* Reads a whole IDX file (gzip or plain) with the given magic and ndim (at most 3) sizes
 * into *data (malloc'ed); sizes are checked before anything is allocated. */
sadm_status sadm_idx_read(const char *path, uint32_t magic, int ndim, uint32_t *dims, uint8_t **data);

/* Every .jpg/.jpeg/.png file under root (any depth), sorted by folder then name;
 * *paths and each entry are malloc'ed. */
sadm_status sadm_image_files(const char *root, char ***paths, size_t *count);

#endif
