// quant.c: ggml's block formats (see quant.h), written from ggml's documented layouts.
#include "quant.h"

#include <math.h>
#include <string.h>

#define Q8_MAX 127 // largest int8 magnitude used, so that -q is representable too

static float f16_at(const unsigned char *b) {
    uint16_t h;
    memcpy(&h, b, 2);
    return rwkv_half_to_float(h);
}

#define I8_SCALE_AT RWKV_DT_QK // byte offset of an I8 block's float32 scale

static float i8_scale(const unsigned char *b) {
    float d;
    memcpy(&d, b + I8_SCALE_AT, 4);
    return d;
}

static size_t block_bytes(rwkv_dtype dt) { return rwkv_dtype_bytes(dt, RWKV_DT_QK); }

void rwkv_quant_block(float *out, const unsigned char *b, rwkv_dtype dt) {
    if (dt == RWKV_DT_I8) {
        float d = i8_scale(b);
        for (int j = 0; j < RWKV_DT_QK; j++) out[j] = (float)(int8_t)b[j] * d; // x = q d
        return;
    }
    float d = f16_at(b), m = 0;
    const int half = RWKV_DT_QK / 2;
    if (dt == RWKV_DT_Q8_0) {
        for (int j = 0; j < RWKV_DT_QK; j++) out[j] = (float)(int8_t)b[2 + j] * d; // x = q d
        return;
    }
    int has_min = dt == RWKV_DT_Q4_1 || dt == RWKV_DT_Q5_1, five = dt == RWKV_DT_Q5_0 || dt == RWKV_DT_Q5_1;
    if (has_min) m = f16_at(b + 2);
    const unsigned char *p = b + (has_min ? 4 : 2);
    uint32_t qh = 0;
    if (five) {
        qh = (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
        p += 4;
    }
    int bias = has_min ? 0 : (five ? 16 : 8); // Q4_0 and Q5_0 centre the quants
    for (int j = 0; j < half; j++) {
        int lo = p[j] & 0x0f, hi = p[j] >> 4;
        if (five) {
            lo |= (int)(qh >> j & 1u) << 4;
            hi |= (int)(qh >> (j + half) & 1u) << 4;
        }
        out[j] = (float)(lo - bias) * d + m; // x = (q - bias) d + m
        out[j + half] = (float)(hi - bias) * d + m;
    }
}

void rwkv_quant_dequant(rwkv_real *out, const void *src, rwkv_dtype dt, size_t n) {
    const unsigned char *b = src;
    size_t bb = block_bytes(dt);
    float tmp[RWKV_DT_QK];
    for (size_t i = 0; i < n / RWKV_DT_QK; i++) {
        rwkv_quant_block(tmp, b + i * bb, dt);
        for (int j = 0; j < RWKV_DT_QK; j++) out[i * RWKV_DT_QK + j] = tmp[j];
    }
}

int64_t rwkv_quant_first_nonfinite(const void *src, rwkv_dtype dt, size_t n) {
    const unsigned char *b = src;
    size_t bb = block_bytes(dt);
    int has_min = dt == RWKV_DT_Q4_1 || dt == RWKV_DT_Q5_1;
    for (size_t i = 0; i < n / RWKV_DT_QK; i++) {
        const unsigned char *blk = b + i * bb;
        if (dt == RWKV_DT_I8 ? !isfinite(i8_scale(blk))
                             : !isfinite(f16_at(blk)) || (has_min && !isfinite(f16_at(blk + 2))))
            return (int64_t)i;
    }
    return -1;
}

void rwkv_quant_int8(void *dst, const rwkv_real *src, size_t n) {
    unsigned char *b = dst;
    for (size_t i = 0; i < n / RWKV_DT_QK; i++, b += block_bytes(RWKV_DT_I8)) {
        const rwkv_real *x = src + i * RWKV_DT_QK;
        double amax = 0;
        for (int j = 0; j < RWKV_DT_QK; j++) amax = fmax(amax, fabs((double)x[j]));
        float d = (float)(amax / Q8_MAX);
        memcpy(b + I8_SCALE_AT, &d, 4);
        for (int j = 0; j < RWKV_DT_QK; j++) { // against the stored d: |x - q d| <= d / 2
            long q = d > 0 ? lrint((double)x[j] / d) : 0;
            b[j] = (unsigned char)(int8_t)(q > Q8_MAX ? Q8_MAX : q < -Q8_MAX ? -Q8_MAX : q);
        }
    }
}
