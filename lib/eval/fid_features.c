/* The FID pipeline's first half: every image of a source through the Inception, a batch
 * at a time, keeping what the metrics need (pool features for FID and precision/recall,
 * spatial features for sFID, logits for the Inception Score). */
#include <stdlib.h>
#include <string.h>

#include "../internal.h"

void sadm_fid_features_free(sadm_fid_features *f) {
    if (!f) return;
    sadm_free(f->pool), sadm_free(f->spatial), sadm_free(f->logits);
    memset(f, 0, sizeof *f);
}

sadm_status sadm_fid_features_compute(sadm_inception *m, sadm_fid_mode mode, sadm_image_source *src, int batch,
                                      void (*progress)(void *ctx, size_t done, size_t total), void *ctx,
                                      sadm_fid_features *out) {
    SADM_REQUIRE_PTR(m);
    SADM_REQUIRE_PTR(src);
    SADM_REQUIRE_PTR(out);
    SADM_REQUIRE_POSITIVE(batch);
    memset(out, 0, sizeof *out);
    size_t n = sadm_image_source_count(src);
    int h, w;
    sadm_image_source_size(src, &h, &w);
    out->pool = sadm_alloc(n * 2048 * sizeof(float));
    out->spatial = sadm_alloc(n * 2023 * sizeof(float));
    out->logits = sadm_alloc(n * 1008 * sizeof(float));
    uint8_t *img = malloc((size_t)batch * h * w * 3);
    sadm_status st = SADM_OK;
    if (!out->pool || !out->spatial || !out->logits || !img)
        st = sadm_error(SADM_ERR_NOMEM, "FID features: out of memory for %zu images", n);
    for (size_t i0 = 0; !st && i0 < n; i0 += (size_t)batch) {
        size_t b = n - i0 < (size_t)batch ? n - i0 : (size_t)batch;
        st = sadm_image_source_read(src, i0, b, img);
        if (!st)
            st = sadm_inception_features(m, mode, (int)b, h, w, img, out->pool + i0 * 2048, out->logits + i0 * 1008,
                                         out->spatial + i0 * 2023);
        if (!st && progress) progress(ctx, i0 + b, n);
    }
    free(img);
    if (st) {
        sadm_fid_features_free(out);
        return st;
    }
    out->n = n, out->mode = mode;
    return SADM_OK;
}
