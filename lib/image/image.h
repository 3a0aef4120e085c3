/* 8-bit RGB images: decoding (libjpeg-turbo, libpng) and Pillow-compatible resizing. */
#ifndef SADM_IMAGE_H
#define SADM_IMAGE_H

#include "../internal.h"

typedef enum { SADM_RESAMPLE_BOX, SADM_RESAMPLE_BICUBIC } sadm_resample;

/* Pillow's Image.resize on an RGB image (w×h×3 → ow×oh×3); 0 on success. */
int sadm_resample_rgb(const uint8_t *in, int w, int h, uint8_t *out, int ow, int oh, sadm_resample filter);
/* ADM's center_crop_arr: box-halve, bicubic to short side `size`, centre crop to size×size. */
int sadm_center_crop_adm(const uint8_t *in, int w, int h, int size, uint8_t *out);
/* Decodes a JPEG or PNG file into RGB (grey replicated, alpha dropped as Pillow's
 * convert("RGB")); *rgb is malloc'ed. Errors name the file. */
sadm_status sadm_image_load_rgb(const char *path, uint8_t **rgb, int *w, int *h);

#endif
