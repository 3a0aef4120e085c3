/* Element types of tensors on disk, and their conversion to and from float32. */
#include <math.h>
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

/* float32 to IEEE half, rounding to nearest even (as numpy's astype(float16) and torch's
 * .half()): overflow to infinity from 65520 on, subnormal halves below 2^-14, NaN stays
 * a (quiet) NaN. */
static uint16_t f32_to_f16(float f) {
    uint32_t x;
    memcpy(&x, &f, 4);
    uint16_t sign = (uint16_t)((x >> 16) & 0x8000);
    uint32_t ax = x & 0x7fffffffu;
    if (ax > 0x7f800000u) return sign | 0x7e00;  /* NaN */
    if (ax >= 0x477ff000u) return sign | 0x7c00; /* >= 65520: infinity (also inf itself) */
    if (ax < 0x38800000u) {                      /* below 2^-14: a multiple of 2^-24 */
        float a;
        memcpy(&a, &ax, 4);
        return sign | (uint16_t)lrintf(a * 16777216.0f); /* exact scaling; lrintf rounds to even */
    }
    uint32_t h = ((ax >> 23) - 112) << 10 | (ax & 0x7fffffu) >> 13, rem = ax & 0x1fffu;
    if (rem > 0x1000u || (rem == 0x1000u && (h & 1))) h++; /* a carry moves into the exponent, as it should */
    return sign | (uint16_t)h;
}

/* float32 to bfloat16, rounding to nearest even, NaN kept quiet (as torch's .bfloat16()). */
static uint16_t f32_to_bf16(float f) {
    uint32_t x;
    memcpy(&x, &f, 4);
    if ((x & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((x >> 16) | 0x40);
    return (uint16_t)((x + 0x7fffu + ((x >> 16) & 1)) >> 16);
}

int sadm_from_f32(sadm_dtype dtype, const float *src, size_t n, void *dst) {
    unsigned char *p = dst;
    switch (dtype) {
    case SADM_DTYPE_F32: memcpy(dst, src, n * 4); return 1;
    case SADM_DTYPE_F16:
        for (size_t i = 0; i < n; i++) {
            uint16_t h = f32_to_f16(src[i]);
            memcpy(p + 2 * i, &h, 2);
        }
        return 1;
    case SADM_DTYPE_BF16:
        for (size_t i = 0; i < n; i++) {
            uint16_t h = f32_to_bf16(src[i]);
            memcpy(p + 2 * i, &h, 2);
        }
        return 1;
    default: return 0;
    }
}
