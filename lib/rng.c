/* Counter-based random numbers: Philox-4x32-10 (Salmon, Moraes, Dror, Shaw: "Parallel
 * random numbers: as easy as 1, 2, 3", SC 2011). Element i of (seed, stream) at position
 * p = offset + i comes from block p/4, word p%4, with counter (p/4, stream) and key seed,
 * so any thread can compute any element: results never depend on how work is split. */
#include <math.h>

#include "internal.h"

#define PHILOX_M0 0xD2511F53u
#define PHILOX_M1 0xCD9E8D57u
#define PHILOX_W0 0x9E3779B9u
#define PHILOX_W1 0xBB67AE85u

void sadm_philox4x32_10(const uint32_t ctr[4], const uint32_t key[2], uint32_t out[4]) {
    uint32_t c0 = ctr[0], c1 = ctr[1], c2 = ctr[2], c3 = ctr[3];
    uint32_t k0 = key[0], k1 = key[1];
    for (int round = 0; round < 10; round++) {
        uint64_t p0 = (uint64_t)PHILOX_M0 * c0;
        uint64_t p1 = (uint64_t)PHILOX_M1 * c2;
        uint32_t n0 = (uint32_t)(p1 >> 32) ^ c1 ^ k0;
        uint32_t n1 = (uint32_t)p1;
        uint32_t n2 = (uint32_t)(p0 >> 32) ^ c3 ^ k1;
        uint32_t n3 = (uint32_t)p0;
        c0 = n0, c1 = n1, c2 = n2, c3 = n3;
        k0 += PHILOX_W0;
        k1 += PHILOX_W1;
    }
    out[0] = c0, out[1] = c1, out[2] = c2, out[3] = c3;
}

static void block_at(uint64_t seed, uint64_t stream, uint64_t block, uint32_t out[4]) {
    const uint32_t ctr[4] = {(uint32_t)block, (uint32_t)(block >> 32), (uint32_t)stream, (uint32_t)(stream >> 32)};
    const uint32_t key[2] = {(uint32_t)seed, (uint32_t)(seed >> 32)};
    sadm_philox4x32_10(ctr, key, out);
}

/* 24 random bits, centred in their cell: strictly inside (0, 1), so log() is finite. */
static inline double to_unit(uint32_t u) { return ((double)(u >> 8) + 0.5) * (1.0 / 16777216.0); }

#define RNG_BLOCKS_PER_TASK 1024

/* The four values of one block. Uniform: the words as they are. Normal: Box-Muller in
 * double on the word pairs (u0, u1) and (u2, u3): r = sqrt(-2 ln u0), values
 * r cos(2 pi u1) and r sin(2 pi u1); likewise for the second pair. */
static void block_values(uint64_t seed, uint64_t stream, uint64_t block, int normal, double z[4]) {
    uint32_t b[4];
    block_at(seed, stream, block, b);
    if (!normal) {
        for (int i = 0; i < 4; i++) z[i] = to_unit(b[i]);
        return;
    }
    for (int h = 0; h < 2; h++) {
        double r = sqrt(-2.0 * log(to_unit(b[2 * h])));
        double th = 6.283185307179586 * to_unit(b[2 * h + 1]);
        z[2 * h] = r * cos(th);
        z[2 * h + 1] = r * sin(th);
    }
}

static void fill(uint64_t seed, uint64_t stream, uint64_t offset, size_t n, int normal, float *out) {
    const size_t per_task = 4 * RNG_BLOCKS_PER_TASK;
    long tasks = (long)sadm_chunks(n, per_task);
#pragma omp parallel for schedule(static)
    for (long t = 0; t < tasks; t++) {
        size_t i0 = (size_t)t * per_task, i1 = i0 + per_task < n ? i0 + per_task : n;
        double z[4];
        uint64_t have = UINT64_MAX;
        for (size_t i = i0; i < i1; i++) {
            uint64_t p = offset + i;
            if (p / 4 != have) block_values(seed, stream, have = p / 4, normal, z);
            out[i] = (float)z[p % 4];
        }
    }
}

sadm_status sadm_rng_uniform(uint64_t seed, uint64_t stream, uint64_t offset, size_t n, float *out) {
    SADM_REQUIRE_PTR(out);
    fill(seed, stream, offset, n, 0, out);
    return SADM_OK;
}

sadm_status sadm_rng_normal(uint64_t seed, uint64_t stream, uint64_t offset, size_t n, float *out) {
    SADM_REQUIRE_PTR(out);
    fill(seed, stream, offset, n, 1, out);
    return SADM_OK;
}

void sadm_permutation(uint64_t seed, uint64_t stream, size_t n, uint32_t *perm) {
    for (size_t i = 0; i < n; i++) perm[i] = (uint32_t)i;
    for (size_t i = n ? n - 1 : 0; i > 0; i--) {
        float u;
        fill(seed, stream, i, 1, 0, &u);
        size_t j = (size_t)((double)u * (double)(i + 1));
        if (j > i) j = i;
        uint32_t tmp = perm[i];
        perm[i] = perm[j], perm[j] = tmp;
    }
}
