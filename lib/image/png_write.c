/* PNG grids of samples, as torchvision's save_image(normalize=True, value_range=(-1, 1)):
 * clamp to [-1, 1], map to [0, 255] with +0.5 and truncation, make_grid's 2-pixel border. */
#include <png.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../io/io.h"
#include "image.h"

typedef struct {
    const uint8_t *rgb;
    int w, h, channels;
} png_body;

static int write_png_body(void *ctx, FILE *f) {
    png_body *b = ctx;
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, NULL, NULL, NULL);
    png_infop info = png ? png_create_info_struct(png) : NULL;
    if (!png || !info) {
        png_destroy_write_struct(&png, &info);
        return -1;
    }
    if (setjmp(png_jmpbuf(png))) {
        png_destroy_write_struct(&png, &info);
        return -1;
    }
    png_init_io(png, f);
    png_set_IHDR(png, info, (png_uint_32)b->w, (png_uint_32)b->h, 8, b->channels == 1 ? PNG_COLOR_TYPE_GRAY : PNG_COLOR_TYPE_RGB,
                 PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    png_write_info(png, info);
    for (int y = 0; y < b->h; y++) png_write_row(png, (png_const_bytep)(b->rgb + (size_t)y * b->w * b->channels));
    png_write_end(png, NULL);
    png_destroy_write_struct(&png, &info);
    return 0;
}

sadm_status sadm_write_png_grid(const char *path, int N, int C, int H, int W, const float *x, int nrow) {
    SADM_REQUIRE_PTR(path);
    SADM_REQUIRE_PTR(x);
    SADM_REQUIRE(N > 0 && H > 0 && W > 0, "%s: nothing to write", path);
    SADM_REQUIRE(C == 1 || C == 3, "%s: a PNG needs 1 or 3 channels, the samples have %d (latents need a VAE decoder)", path, C);
    if (nrow <= 0) nrow = 8;
    int cols = N < nrow ? N : nrow, rows = (N + nrow - 1) / nrow, pad = 2;
    int gw = cols * (W + pad) + pad, gh = rows * (H + pad) + pad;
    uint8_t *img = calloc((size_t)gw * gh * C, 1);
    if (!img) return sadm_error(SADM_ERR_NOMEM, "%s: out of memory", path);
    for (int n = 0; n < N; n++) {
        int ox = pad + (n % nrow) * (W + pad), oy = pad + (n / nrow) * (H + pad);
        for (int c = 0; c < C; c++)
            for (int y = 0; y < H; y++)
                for (int xx = 0; xx < W; xx++) {
                    float v = x[(((size_t)n * C + c) * H + y) * W + xx];
                    v = v < -1.0f ? -1.0f : v > 1.0f ? 1.0f : v;
                    float u = (v + 1.0f) / 2.0f * 255.0f + 0.5f;
                    img[(((size_t)oy + y) * gw + ox + xx) * C + c] = (uint8_t)(u > 255.0f ? 255.0f : u);
                }
    }
    png_body b = {img, gw, gh, C};
    sadm_status st = sadm_atomic_write(path, write_png_body, &b);
    free(img);
    return st;
}
