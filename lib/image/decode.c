/* JPEG (libjpeg-turbo) and PNG (libpng) decoding to 8-bit RGB, converting the way
 * Pillow's Image.convert("RGB") does: grey is replicated, alpha and tRNS are dropped,
 * palettes expanded, 16-bit samples keep their high byte. */
#include <errno.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
/* jpeglib.h needs stdio.h (FILE, size_t) first */
#include <jpeglib.h>
#include <jerror.h> /* JWRN_JPEG_EOF */
#include <png.h>

#include "image.h"

typedef struct {
    struct jpeg_error_mgr mgr;
    jmp_buf jump;
    char message[JMSG_LENGTH_MAX];
} jpeg_errors;

static void jpeg_fail(j_common_ptr cinfo) {
    jpeg_errors *e = (jpeg_errors *)cinfo->err;
    (*cinfo->err->format_message)(cinfo, e->message);
    longjmp(e->jump, 1);
}

/* ------------------------------------------------------------------ the pixel limit */
static uint64_t max_pixels; /* 0: not set yet */

void sadm_set_max_image_pixels(uint64_t n) { __atomic_store_n(&max_pixels, n, __ATOMIC_RELAXED); }

uint64_t sadm_max_image_pixels(void) {
    uint64_t n = __atomic_load_n(&max_pixels, __ATOMIC_RELAXED);
    if (n) return n;
    const char *e = getenv("SADM_MAX_IMAGE_PIXELS");
    char *end;
    unsigned long long v = e && *e ? strtoull(e, &end, 10) : 0;
    return e && *e && !*end && v > 0 && e[0] != '-' ? (uint64_t)v : SADM_DEFAULT_MAX_IMAGE_PIXELS;
}

/* Refuses an image whose declared size passes the limit, before anything is decoded. */
static sadm_status check_pixels(const char *path, const char *kind, uint64_t w, uint64_t h) {
    uint64_t limit = sadm_max_image_pixels();
    if (w == 0 || h == 0) return sadm_error(SADM_ERR_FORMAT, "%s: %s declares a %llux%llu image", path, kind,
                                            (unsigned long long)w, (unsigned long long)h);
    if (w * h > limit || w > INT32_MAX / 3 || h > INT32_MAX)
        return sadm_error(SADM_ERR_FORMAT,
                          "%s: %s declares %llux%llu = %.1f M pixels, above the limit of %.1f M (a decompression bomb? "
                          "raise the limit with --max-image-pixels or SADM_MAX_IMAGE_PIXELS)",
                          path, kind, (unsigned long long)w, (unsigned long long)h, (double)w * (double)h / 1e6,
                          (double)limit / 1e6);
    return SADM_OK;
}

/* Warnings are quiet, except the end of the data before the image's end: libjpeg would
 * fill the rest with grey, while Pillow refuses the file ("image file is truncated"), as
 * DiT's data loader then does; a truncated download must not become a training image. */
static void jpeg_quiet(j_common_ptr cinfo, int level) {
    if (level < 0 && cinfo->err->msg_code == JWRN_JPEG_EOF) {
        jpeg_errors *e = (jpeg_errors *)cinfo->err;
        snprintf(e->message, sizeof e->message, "the data ends before the image does (truncated file)");
        longjmp(e->jump, 1);
    }
}

/* Pillow's CMYK to RGB, on Adobe's inverted CMYK as libjpeg returns it. */
static inline uint8_t muldiv255(int a, int b) {
    int t = a * b + 128;
    return (uint8_t)(((t >> 8) + t) >> 8);
}

static sadm_status load_jpeg(const char *path, FILE *f, uint8_t **rgb, int *w, int *h) {
    struct jpeg_decompress_struct cinfo;
    jpeg_errors err;
    uint8_t *volatile img = NULL, *volatile row = NULL;
    cinfo.err = jpeg_std_error(&err.mgr);
    err.mgr.error_exit = jpeg_fail;
    err.mgr.emit_message = jpeg_quiet;
    if (setjmp(err.jump)) {
        jpeg_destroy_decompress(&cinfo);
        free(img), free(row);
        return sadm_error(SADM_ERR_FORMAT, "%s: cannot decode JPEG: %s", path, err.message);
    }
    jpeg_create_decompress(&cinfo);
    jpeg_stdio_src(&cinfo, f);
    jpeg_read_header(&cinfo, TRUE);
    sadm_status big = check_pixels(path, "JPEG", cinfo.image_width, cinfo.image_height);
    if (big) {
        jpeg_destroy_decompress(&cinfo);
        return big;
    }
    int cmyk = cinfo.jpeg_color_space == JCS_CMYK || cinfo.jpeg_color_space == JCS_YCCK;
    cinfo.out_color_space = cmyk ? JCS_CMYK : JCS_RGB;
    jpeg_start_decompress(&cinfo);
    int W = (int)cinfo.output_width, H = (int)cinfo.output_height, nc = cinfo.output_components;
    img = malloc((size_t)W * H * 3);
    row = malloc((size_t)W * nc);
    if (!img || !row) {
        jpeg_destroy_decompress(&cinfo);
        free(img), free(row);
        return sadm_error(SADM_ERR_NOMEM, "%s: out of memory for a %dx%d image", path, W, H);
    }
    while (cinfo.output_scanline < cinfo.output_height) {
        int y = (int)cinfo.output_scanline;
        JSAMPROW r = row;
        jpeg_read_scanlines(&cinfo, &r, 1);
        uint8_t *o = img + (size_t)y * W * 3;
        if (!cmyk) {
            memcpy(o, row, (size_t)W * 3);
            continue;
        }
        for (int x = 0; x < W; x++) {
            const uint8_t *p = row + 4 * x;
            int inv = cinfo.saw_Adobe_marker;
            int c = inv ? 255 - p[0] : p[0], m = inv ? 255 - p[1] : p[1], yy = inv ? 255 - p[2] : p[2];
            int nk = 255 - (inv ? 255 - p[3] : p[3]);
            o[3 * x] = (uint8_t)(nk - muldiv255(c, nk));
            o[3 * x + 1] = (uint8_t)(nk - muldiv255(m, nk));
            o[3 * x + 2] = (uint8_t)(nk - muldiv255(yy, nk));
        }
    }
    jpeg_finish_decompress(&cinfo);
    jpeg_destroy_decompress(&cinfo);
    free(row);
    *rgb = img, *w = W, *h = H;
    return SADM_OK;
}

static sadm_status load_png(const char *path, FILE *f, uint8_t **rgb, int *w, int *h) {
    png_structp png = png_create_read_struct(PNG_LIBPNG_VER_STRING, NULL, NULL, NULL);
    png_infop info = png ? png_create_info_struct(png) : NULL;
    uint8_t *volatile img = NULL;
    png_bytep *volatile rows = NULL;
    if (!png || !info) {
        png_destroy_read_struct(&png, &info, NULL);
        return sadm_error(SADM_ERR_NOMEM, "%s: out of memory", path);
    }
    if (setjmp(png_jmpbuf(png))) {
        png_destroy_read_struct(&png, &info, NULL);
        free(img), free(rows);
        return sadm_error(SADM_ERR_FORMAT, "%s: cannot decode PNG (corrupt or truncated)", path);
    }
    png_init_io(png, f);
    png_read_info(png, info);
    sadm_status big = check_pixels(path, "PNG", png_get_image_width(png, info), png_get_image_height(png, info));
    if (big) {
        png_destroy_read_struct(&png, &info, NULL);
        return big;
    }
    int type = png_get_color_type(png, info);
    png_set_strip_16(png);
    if (type == PNG_COLOR_TYPE_PALETTE) png_set_palette_to_rgb(png);
    if (type == PNG_COLOR_TYPE_GRAY || type == PNG_COLOR_TYPE_GRAY_ALPHA) {
        png_set_expand_gray_1_2_4_to_8(png);
        png_set_gray_to_rgb(png);
    }
    png_set_packing(png);
    png_set_strip_alpha(png);
    png_read_update_info(png, info);
    int W = (int)png_get_image_width(png, info), H = (int)png_get_image_height(png, info);
    if (png_get_rowbytes(png, info) != (size_t)W * 3)
        png_error(png, "unexpected row layout");
    img = malloc((size_t)W * H * 3);
    rows = malloc((size_t)H * sizeof *rows);
    if (!img || !rows) png_error(png, "out of memory");
    for (int y = 0; y < H; y++) rows[y] = img + (size_t)y * W * 3;
    png_read_image(png, rows);
    png_read_end(png, NULL);
    png_destroy_read_struct(&png, &info, NULL);
    free(rows);
    *rgb = img, *w = W, *h = H;
    return SADM_OK;
}

sadm_status sadm_image_load_rgb(const char *path, uint8_t **rgb, int *w, int *h) {
    FILE *f = fopen(path, "rb");
    if (!f) return sadm_error(SADM_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    unsigned char sig[8] = {0};
    size_t n = fread(sig, 1, 8, f);
    rewind(f);
    sadm_status st;
    if (n >= 3 && sig[0] == 0xFF && sig[1] == 0xD8 && sig[2] == 0xFF)
        st = load_jpeg(path, f, rgb, w, h);
    else if (n == 8 && !png_sig_cmp(sig, 0, 8))
        st = load_png(path, f, rgb, w, h);
    else
        st = sadm_error(SADM_ERR_FORMAT, "%s: neither a JPEG nor a PNG file", path);
    fclose(f);
    return st;
}
