/* Images for the FID pipeline, as (n, H, W, 3) uint8 blocks from any of: a folder of
 * JPEG/PNG files (any depth, sorted; all of one size), an ADM-style .npz (arr_0 uint8
 * (N, H, W, 3) or grey (N, H, W)), or a safetensors file from `sadm sample --out-tensor`
 * (samples (N, C, H, W) in [-1, 1], C = 1 or 3, quantised as DiT's sample_ddp.py does:
 * uint8(clamp(127.5 x + 128, 0, 255)), truncating) or with images (N, H, W, 3) uint8.
 * Grey images are replicated to three channels. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "../data/dataset.h"
#include "../image/image.h"

typedef enum { SRC_FOLDER, SRC_NPZ, SRC_SAMPLES, SRC_U8_ST } source_kind;

struct sadm_image_source {
    source_kind kind;
    char *path;
    size_t n;
    int h, w, channels;
    char **files;     /* SRC_FOLDER */
    sadm_npz *npz;    /* SRC_NPZ */
    sadm_st_file *st; /* SRC_SAMPLES, SRC_U8_ST */
    const sadm_tensor_info *t;
};

void sadm_image_source_close(sadm_image_source *s) {
    if (!s) return;
    for (size_t i = 0; s->files && i < s->n; i++) free(s->files[i]);
    free(s->files);
    sadm_npz_close(s->npz);
    sadm_st_close(s->st);
    free(s->path);
    free(s);
}

static int ends_with(const char *s, const char *suffix) {
    size_t a = strlen(s), b = strlen(suffix);
    return a >= b && !strcmp(s + a - b, suffix);
}

static sadm_status open_npz(sadm_image_source *s) {
    sadm_status st = sadm_npz_open(s->path, &s->npz);
    if (st) return st;
    sadm_dtype dt;
    int nd;
    int64_t shape[SADM_MAX_DIMS];
    if ((st = sadm_npz_info(s->npz, "arr_0", &dt, &nd, shape)))
        return sadm_error(SADM_ERR_FORMAT, "%s: no image batch arr_0 (a statistics-only file has no images)", s->path);
    if (dt != SADM_DTYPE_U8 || !((nd == 4 && (shape[3] == 3 || shape[3] == 1)) || nd == 3))
        return sadm_error(SADM_ERR_FORMAT, "%s: arr_0 must be uint8 (N, H, W, 3) or (N, H, W), got %s with %d dimensions",
                          s->path, sadm_dtype_name(dt), nd);
    s->n = (size_t)shape[0], s->h = (int)shape[1], s->w = (int)shape[2], s->channels = nd == 4 ? (int)shape[3] : 1;
    return SADM_OK;
}

static sadm_status open_st(sadm_image_source *s) {
    sadm_status st = sadm_st_open(s->path, &s->st);
    if (st) return st;
    if ((s->t = sadm_st_find(s->st, "samples"))) {
        if (s->t->ndim != 4 || (s->t->shape[1] != 1 && s->t->shape[1] != 3))
            return sadm_error(SADM_ERR_FORMAT, "%s: samples must be (N, 1 or 3, H, W) images in [-1, 1]", s->path);
        s->kind = SRC_SAMPLES;
        s->n = (size_t)s->t->shape[0], s->channels = (int)s->t->shape[1], s->h = (int)s->t->shape[2], s->w = (int)s->t->shape[3];
        return SADM_OK;
    }
    if ((s->t = sadm_st_find(s->st, "images"))) {
        if (s->t->ndim != 4 || s->t->dtype != SADM_DTYPE_U8 || s->t->shape[3] != 3)
            return sadm_error(SADM_ERR_FORMAT, "%s: images must be uint8 (N, H, W, 3)", s->path);
        s->kind = SRC_U8_ST;
        s->n = (size_t)s->t->shape[0], s->channels = 3, s->h = (int)s->t->shape[1], s->w = (int)s->t->shape[2];
        return SADM_OK;
    }
    return sadm_error(SADM_ERR_FORMAT, "%s: neither 'samples' (N, C, H, W) nor 'images' (N, H, W, 3) in it", s->path);
}

sadm_status sadm_image_source_open(const char *path, sadm_image_source **out) {
    SADM_REQUIRE_PTR(path);
    SADM_REQUIRE_PTR(out);
    *out = NULL;
    sadm_image_source *s = calloc(1, sizeof *s);
    if (!s || !(s->path = strdup(path))) {
        free(s);
        return sadm_error(SADM_ERR_NOMEM, "%s: out of memory", path);
    }
    sadm_status st;
    if (ends_with(path, ".npz")) {
        s->kind = SRC_NPZ;
        st = open_npz(s);
    } else if (ends_with(path, ".safetensors")) {
        st = open_st(s);
    } else {
        s->kind = SRC_FOLDER;
        st = sadm_image_files(path, &s->files, &s->n);
        uint8_t *rgb = NULL;
        if (!st) st = sadm_image_load_rgb(s->files[0], &rgb, &s->w, &s->h);
        free(rgb);
        s->channels = 3;
    }
    if (!st && s->n == 0) st = sadm_error(SADM_ERR_FORMAT, "%s: no images", path);
    if (st) {
        sadm_image_source_close(s);
        return st;
    }
    *out = s;
    return SADM_OK;
}

size_t sadm_image_source_count(const sadm_image_source *s) { return s ? s->n : 0; }
void sadm_image_source_size(const sadm_image_source *s, int *h, int *w) {
    if (h) *h = s ? s->h : 0;
    if (w) *w = s ? s->w : 0;
}

sadm_status sadm_image_source_read(sadm_image_source *s, size_t i0, size_t n, uint8_t *dst) {
    SADM_REQUIRE_PTR(s);
    SADM_REQUIRE_PTR(dst);
    SADM_REQUIRE(i0 + n <= s->n, "%s: images %zu..%zu asked for, it has %zu", s->path, i0, i0 + n, s->n);
    size_t HW = (size_t)s->h * s->w;
    sadm_status st = SADM_OK;
    if (s->kind == SRC_FOLDER) {
        for (size_t i = 0; i < n && !st; i++) {
            uint8_t *rgb = NULL;
            int w, h;
            const char *f = s->files[i0 + i];
            if ((st = sadm_image_load_rgb(f, &rgb, &w, &h))) break;
            if (w != s->w || h != s->h)
                st = sadm_error(SADM_ERR_FORMAT, "%s is %d×%d but %s is %d×%d: the images of a set must share one size", f, w,
                                h, s->files[0], s->w, s->h);
            else
                memcpy(dst + i * HW * 3, rgb, HW * 3);
            free(rgb);
        }
        return st;
    }
    if (s->kind == SRC_NPZ) {
        if ((st = sadm_npz_read_rows(s->npz, "arr_0", (int64_t)i0, (int64_t)n, dst))) return st;
        if (s->channels == 1) /* grey: spread in place, from the back */
            for (size_t q = n * HW; q-- > 0;) dst[3 * q] = dst[3 * q + 1] = dst[3 * q + 2] = dst[q];
        return SADM_OK;
    }
    if (s->kind == SRC_U8_ST) {
        memcpy(dst, (const uint8_t *)s->t->data + i0 * HW * 3, n * HW * 3);
        return SADM_OK;
    }
    int C = s->channels;
    float *x = malloc(n * C * HW * sizeof(float));
    if (!x) return sadm_error(SADM_ERR_NOMEM, "%s: out of memory", s->path);
    /* the mapped data may be unaligned: convert from the bytes of the block */
    const unsigned char *base = (const unsigned char *)s->t->data + i0 * C * HW * sadm_dtype_size(s->t->dtype);
    if (s->t->dtype == SADM_DTYPE_F32) memcpy(x, base, n * C * HW * sizeof(float));
    else st = sadm_error(SADM_ERR_FORMAT, "%s: samples must be float32, not %s", s->path, sadm_dtype_name(s->t->dtype));
    for (size_t i = 0; !st && i < n; i++)
        for (size_t q = 0; q < HW; q++)
            for (int c = 0; c < 3; c++) {
                float v = x[(i * C + (C == 3 ? c : 0)) * HW + q];
                if (!isfinite(v)) {
                    st = sadm_error(SADM_ERR_NUMERIC, "%s: sample %zu has a non-finite value", s->path, i0 + i);
                    break;
                }
                dst[(i * HW + q) * 3 + c] = sadm_sample_to_u8(v);
            }
    free(x);
    return st;
}
