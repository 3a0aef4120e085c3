/* Element types of tensors on disk, and their conversion to float32. */
#include <string.h>

#include "io.h"

static const struct {
    const char *name;
    size_t size;
} dtypes[] = {
    [SADM_DTYPE_F32] = {"F32", 4}, [SADM_DTYPE_F16] = {"F16", 2}, [SADM_DTYPE_BF16] = {"BF16", 2},
    [SADM_DTYPE_F64] = {"F64", 8}, [SADM_DTYPE_I64] = {"I64", 8}, [SADM_DTYPE_I32] = {"I32", 4},
    [SADM_DTYPE_I16] = {"I16", 2}, [SADM_DTYPE_I8] = {"I8", 1},   [SADM_DTYPE_U8] = {"U8", 1},
    [SADM_DTYPE_BOOL] = {"BOOL", 1},
};
#define N_DTYPES (sizeof dtypes / sizeof dtypes[0])

const char *sadm_dtype_name(sadm_dtype dtype) { return (size_t)dtype < N_DTYPES ? dtypes[dtype].name : "?"; }
size_t sadm_dtype_size(sadm_dtype dtype) { return (size_t)dtype < N_DTYPES ? dtypes[dtype].size : 0; }

int sadm_dtype_parse(const char *name, sadm_dtype *out) {
    for (size_t i = 0; i < N_DTYPES; i++)
        if (strcmp(dtypes[i].name, name) == 0) {
            *out = (sadm_dtype)i;
            return 1;
        }
    return 0;
}

static float f16_to_f32(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000) << 16, exp = (h >> 10) & 0x1f, mant = h & 0x3ff, bits;
    if (exp == 0x1f) {
        bits = sign | 0x7f800000u | (mant << 13); /* inf / NaN */
    } else if (exp != 0) {
        bits = sign | ((exp + 112) << 23) | (mant << 13);
    } else if (mant == 0) {
        bits = sign;
    } else { /* subnormal half: normalise */
        int e = -1;
        do {
            e++;
            mant <<= 1;
        } while (!(mant & 0x400));
        bits = sign | ((uint32_t)(112 - e) << 23) | ((mant & 0x3ff) << 13);
    }
    float f;
    memcpy(&f, &bits, 4);
    return f;
}

int sadm_to_f32(sadm_dtype dtype, const void *src, size_t n, float *dst) {
    const unsigned char *p = src;
    switch (dtype) {
    case SADM_DTYPE_F32: memcpy(dst, src, n * 4); return 1;
    case SADM_DTYPE_F64:
        for (size_t i = 0; i < n; i++) {
            double d;
            memcpy(&d, p + 8 * i, 8);
            dst[i] = (float)d;
        }
        return 1;
    case SADM_DTYPE_F16:
        for (size_t i = 0; i < n; i++) {
            uint16_t h;
            memcpy(&h, p + 2 * i, 2);
            dst[i] = f16_to_f32(h);
        }
        return 1;
    case SADM_DTYPE_BF16:
        for (size_t i = 0; i < n; i++) {
            uint16_t h;
            memcpy(&h, p + 2 * i, 2);
            uint32_t bits = (uint32_t)h << 16;
            memcpy(dst + i, &bits, 4);
        }
        return 1;
    default: return 0;
    }
}
