/* Embedding tables and the fixed sinusoidal embeddings of DiT. */
#include <math.h>
#include <string.h>

#include "internal.h"

sadm_status sadm_embedding_forward(size_t n, int dim, int rows, const float *table, const int64_t *idx, float *out) {
    SADM_REQUIRE_POSITIVE(dim);
    SADM_REQUIRE_POSITIVE(rows);
    SADM_REQUIRE_PTR(table);
    SADM_REQUIRE_PTR(idx);
    SADM_REQUIRE_PTR(out);
    for (size_t i = 0; i < n; i++)
        SADM_REQUIRE(idx[i] >= 0 && idx[i] < rows, "sadm_embedding_forward: index %lld at position %zu is outside [0, %d)",
                     (long long)idx[i], i, rows);
#pragma omp parallel for schedule(static)
    for (long i = 0; i < (long)n; i++) memcpy(out + i * dim, table + idx[i] * dim, (size_t)dim * sizeof(float));
    return SADM_OK;
}

/* Scatter-add: threads own column blocks and walk the lookups in order, so rows that
 * appear several times are summed in the same order whatever the thread count. */
sadm_status sadm_embedding_backward(size_t n, int dim, int rows, const int64_t *idx, const float *dout, float *dtable) {
    SADM_REQUIRE_POSITIVE(dim);
    SADM_REQUIRE_POSITIVE(rows);
    SADM_REQUIRE_PTR(idx);
    SADM_REQUIRE_PTR(dout);
    SADM_REQUIRE_PTR(dtable);
    for (size_t i = 0; i < n; i++)
        SADM_REQUIRE(idx[i] >= 0 && idx[i] < rows, "sadm_embedding_backward: index %lld at position %zu is outside [0, %d)",
                     (long long)idx[i], i, rows);
    const sadm_kernels *k = sadm_kernels_active();
    const int block = 64;
    int blocks = (dim + block - 1) / block;
#pragma omp parallel for schedule(static)
    for (int b = 0; b < blocks; b++) {
        int c0 = b * block, len = dim - c0 < block ? dim - c0 : block;
        for (size_t i = 0; i < n; i++) {
            float *dst = dtable + idx[i] * dim + c0;
            k->add((size_t)len, dst, dout + i * dim + c0, dst);
        }
    }
    return SADM_OK;
}

/* Computed in float32 in the order PyTorch's DiT code uses, so that values agree with it
 * to the last bits libm allows. */
sadm_status sadm_timestep_embedding(size_t n, int dim, const float *t, float max_period, float *out) {
    SADM_REQUIRE_POSITIVE(dim);
    SADM_REQUIRE_PTR(t);
    SADM_REQUIRE_PTR(out);
    SADM_REQUIRE(max_period > 0.0f, "sadm_timestep_embedding: max_period must be positive, got %g", max_period);
    int half = dim / 2;
    float neg_log = (float)(-log((double)max_period));
#pragma omp parallel for schedule(static)
    for (long i = 0; i < (long)n; i++) {
        float *o = out + i * dim;
        for (int k = 0; k < half; k++) {
            float freq = expf(neg_log * (float)k / (float)half);
            float arg = t[i] * freq;
            o[k] = cosf(arg);
            o[half + k] = sinf(arg);
        }
        if (dim % 2) o[dim - 1] = 0.0f;
    }
    return SADM_OK;
}

sadm_status sadm_pos_embed_2d(int dim, int grid, float *out) {
    SADM_REQUIRE(dim > 0 && dim % 4 == 0, "sadm_pos_embed_2d: dim must be a positive multiple of 4, got %d", dim);
    SADM_REQUIRE_POSITIVE(grid);
    SADM_REQUIRE_PTR(out);
    int quarter = dim / 4, half = dim / 2;
    for (int i = 0; i < grid; i++)     /* row */
        for (int j = 0; j < grid; j++) { /* column */
            float *o = out + ((size_t)i * grid + j) * dim;
            for (int k = 0; k < quarter; k++) {
                double omega = 1.0 / pow(10000.0, (double)k / (double)quarter);
                o[k] = (float)sin(j * omega);
                o[quarter + k] = (float)cos(j * omega);
                o[half + k] = (float)sin(i * omega);
                o[half + quarter + k] = (float)cos(i * omega);
            }
        }
    return SADM_OK;
}
