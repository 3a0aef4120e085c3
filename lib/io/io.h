/* Internal helpers of the file formats. */
#ifndef SADM_IO_H
#define SADM_IO_H

#include <stdio.h>

#include "../internal.h"

/* Sets *out from a safetensors dtype name; 0 when the name is unknown. */
int sadm_dtype_parse(const char *name, sadm_dtype *out);
/* Converts n elements of a floating dtype to float32; 0 for non-float dtypes. */
int sadm_to_f32(sadm_dtype dtype, const void *src, size_t n, float *dst);
/* float32 to F32, F16 or BF16 (round to nearest even, NaN kept a NaN); 0 for other dtypes. */
int sadm_from_f32(sadm_dtype dtype, const float *src, size_t n, void *dst);

/* Writes `len` bytes to `path` atomically: temporary file beside it, fsync, rename, fsync
 * of the folder. `write_body` is called with the open FILE and returns 0 on success. */
sadm_status sadm_atomic_write(const char *path, int (*write_body)(void *ctx, FILE *f), void *ctx);

/* Zip archives, read-only (lib/io/zip.c): members by index, their full names, uncompressed
 * sizes and CRC-32s; reads of n uncompressed bytes at pos (random access into stored
 * members, forward into deflated ones). Errors name the file and the member. */
typedef struct sadm_zip sadm_zip;
sadm_status sadm_zip_open(const char *path, sadm_zip **out);
void sadm_zip_close(sadm_zip *z);
size_t sadm_zip_count(const sadm_zip *z);
const char *sadm_zip_name(const sadm_zip *z, size_t i);
const char *sadm_zip_path(const sadm_zip *z);
uint64_t sadm_zip_size(const sadm_zip *z, size_t i);
uint32_t sadm_zip_crc(const sadm_zip *z, size_t i);
long sadm_zip_find(const sadm_zip *z, const char *name); /* -1: none */
sadm_status sadm_zip_read(sadm_zip *z, size_t i, uint64_t pos, void *dst, size_t n);

/* A torch.save file (zip format) as the bytes of a safetensors file (malloc'd), holding
 * the tensors of its state dict under their keys, in the file's order and dtypes: the whole
 * pickle when it is a dict of tensors, else its dict entry `entry` (NULL: "ema", else
 * "model", else "state_dict"); `which` (may be NULL) gets the entry taken ("" for the
 * whole). lib/io/torch_load.c; the pickle is read by a restricted unpickler. */
sadm_status sadm_pt_to_safetensors(const char *path, const char *entry, unsigned char **out, size_t *out_len,
                                   char *which, size_t which_len);

#endif
