// tensors.c: a growable set of named raw tensors, and dtype conversion.
#include "tensors.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void rwkv_tensors_init(rwkv_tensor_set *s) { memset(s, 0, sizeof *s); }

void rwkv_tensors_free(rwkv_tensor_set *s) {
    if (!s) return;
    for (int i = 0; i < s->n_owned; i++) free(s->owned[i]);
    for (int i = 0; i < 2 * s->n_meta; i++) free(s->meta[i]);
    free(s->meta);
    free(s->owned);
    free(s->items);
    memset(s, 0, sizeof *s);
}

rwkv_status rwkv_tensors_own(rwkv_tensor_set *s, void *buf) {
    if (s->n_owned == s->cap_owned) {
        int cap = s->cap_owned ? 2 * s->cap_owned : 16;
        void **p = realloc(s->owned, (size_t)cap * sizeof *p);
        if (!p) {
            free(buf);
            return rwkv_error_set(RWKV_ERR_NOMEM, "out of memory growing tensor set");
        }
        s->owned = p;
        s->cap_owned = cap;
    }
    s->owned[s->n_owned++] = buf;
    return RWKV_OK;
}

rwkv_status rwkv_tensors_add(rwkv_tensor_set *s, const char *name, rwkv_dtype dt, int ndim,
                             const int64_t *shape, const void *data) {
    if (ndim < 0 || ndim > RWKV_TENSOR_MAX_DIMS)
        return rwkv_error_set(RWKV_ERR_UNSUPPORTED, "tensor %s: %d dimensions (at most %d)", name,
                              ndim, RWKV_TENSOR_MAX_DIMS);
    if (strlen(name) >= sizeof s->items[0].name)
        return rwkv_error_set(RWKV_ERR_FORMAT, "tensor name too long: %.60s...", name);
    if (rwkv_tensors_find(s, name))
        return rwkv_error_set(RWKV_ERR_FORMAT, "tensor %s appears twice", name);
    if (s->n == s->cap) {
        int cap = s->cap ? 2 * s->cap : 64;
        rwkv_tensor *p = realloc(s->items, (size_t)cap * sizeof *p);
        if (!p) return rwkv_error_set(RWKV_ERR_NOMEM, "out of memory growing tensor set");
        s->items = p;
        s->cap = cap;
    }
    rwkv_tensor *t = &s->items[s->n++];
    memset(t, 0, sizeof *t);
    strcpy(t->name, name);
    t->dtype = dt;
    t->ndim = ndim;
    for (int i = 0; i < ndim; i++) t->shape[i] = shape[i];
    t->data = data;
    return RWKV_OK;
}

rwkv_status rwkv_tensors_set_meta(rwkv_tensor_set *s, const char *key, const char *value) {
    char *v = strdup(value);
    if (!v) return rwkv_error_set(RWKV_ERR_NOMEM, "out of memory storing metadata %s", key);
    for (int i = 0; i < s->n_meta; i++)
        if (strcmp(s->meta[2 * i], key) == 0) {
            free(s->meta[2 * i + 1]);
            s->meta[2 * i + 1] = v;
            return RWKV_OK;
        }
    char *k = strdup(key);
    char **p = realloc(s->meta, (size_t)(2 * s->n_meta + 2) * sizeof *p);
    if (!k || !p) {
        free(k);
        free(v);
        if (p) s->meta = p;
        return rwkv_error_set(RWKV_ERR_NOMEM, "out of memory storing metadata %s", key);
    }
    s->meta = p;
    s->meta[2 * s->n_meta] = k;
    s->meta[2 * s->n_meta + 1] = v;
    s->n_meta++;
    return RWKV_OK;
}

const char *rwkv_tensors_meta(const rwkv_tensor_set *s, const char *key) {
    for (int i = 0; i < s->n_meta; i++)
        if (strcmp(s->meta[2 * i], key) == 0) return s->meta[2 * i + 1];
    return NULL;
}

const rwkv_tensor *rwkv_tensors_find(const rwkv_tensor_set *s, const char *name) {
    for (int i = 0; i < s->n; i++)
        if (strcmp(s->items[i].name, name) == 0) return &s->items[i];
    return NULL;
}

size_t rwkv_dtype_size(rwkv_dtype dt) {
    switch (dt) {
    case RWKV_DT_F32: return 4;
    case RWKV_DT_F16:
    case RWKV_DT_BF16: return 2;
    case RWKV_DT_F64: return 8;
    }
    return 0;
}

const char *rwkv_dtype_name(rwkv_dtype dt) {
    switch (dt) {
    case RWKV_DT_F32: return "float32";
    case RWKV_DT_F16: return "float16";
    case RWKV_DT_BF16: return "bfloat16";
    case RWKV_DT_F64: return "float64";
    }
    return "?";
}

int64_t rwkv_tensor_numel(const rwkv_tensor *t) {
    int64_t n = 1;
    for (int i = 0; i < t->ndim; i++) n *= t->shape[i];
    return n;
}

float rwkv_bf16_to_float(uint16_t b) {
    uint32_t u = (uint32_t)b << 16; // bf16 is the top half of a float32
    float f;
    memcpy(&f, &u, 4);
    return f;
}

uint16_t rwkv_float_to_bf16(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    if ((u & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((u >> 16) | 0x40); // keep NaN a NaN
    u += 0x7fffu + ((u >> 16) & 1u); // round to nearest, ties to even
    return (uint16_t)(u >> 16);
}

float rwkv_half_to_float(uint16_t h) {
    uint32_t sign = (uint32_t)(h >> 15) << 31, exp = (h >> 10) & 0x1f, mant = h & 0x3ff;
    float f;
    if (exp == 0) {
        f = ldexpf((float)mant, -24); // subnormal: mant * 2^-24
        return sign ? -f : f;
    }
    uint32_t u = exp == 31 ? (sign | 0x7f800000u | (mant << 13))
                           : (sign | ((exp + 112) << 23) | (mant << 13)); // rebias 15 -> 127
    memcpy(&f, &u, 4);
    return f;
}

uint16_t rwkv_float_to_half(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    uint16_t sign = (uint16_t)((u >> 16) & 0x8000);
    float a = fabsf(f);
    if (isnan(f)) return sign | 0x7e00;
    if (a >= 65520.0f) return sign | 0x7c00; // rounds to inf
    if (a < 6.103515625e-05f) return sign | (uint16_t)lrintf(a * 16777216.0f); // subnormal, 2^24
    int e;
    float m = frexpf(a, &e); // a = m * 2^e, m in [0.5, 1)
    long mant = lrintf((m * 2.0f - 1.0f) * 1024.0f);
    if (mant == 1024) { mant = 0; e++; }
    return sign | (uint16_t)(((e - 1 + 15) << 10) | mant);
}

void rwkv_tensors_convert(rwkv_real *out, const void *src, rwkv_dtype dt, size_t n) {
    const unsigned char *b = src;
    for (size_t i = 0; i < n; i++) {
        switch (dt) {
        case RWKV_DT_F32: { float f; memcpy(&f, b + 4 * i, 4); out[i] = f; break; }
        case RWKV_DT_F64: { double d; memcpy(&d, b + 8 * i, 8); out[i] = (rwkv_real)d; break; }
        case RWKV_DT_F16: { uint16_t h; memcpy(&h, b + 2 * i, 2); out[i] = rwkv_half_to_float(h); break; }
        case RWKV_DT_BF16: { uint16_t h; memcpy(&h, b + 2 * i, 2); out[i] = rwkv_bf16_to_float(h); break; }
        }
    }
}

// n_layer is one more than the largest N in "blocks.N.*" (strtol: a corrupt huge N is
// rejected, not undefined behaviour as with sscanf).
int rwkv_tensors_count_layers(const rwkv_tensor_set *ts) {
    int n = 0;
    for (int i = 0; i < ts->n; i++) {
        const char *name = ts->items[i].name;
        if (strncmp(name, "blocks.", 7) || name[7] < '0' || name[7] > '9') continue;
        char *end;
        long l = strtol(name + 7, &end, 10);
        if (*end == '.' && l >= 0 && l < 100000 && l + 1 > n) n = (int)l + 1;
    }
    return n;
}

void rwkv_tensors_format_shape(char *buf, size_t n, const int64_t *shape, int ndim) {
    size_t k = (size_t)snprintf(buf, n, "[");
    for (int i = 0; i < ndim && k < n; i++)
        k += (size_t)snprintf(buf + k, n - k, "%s%lld", i ? ", " : "", (long long)shape[i]);
    if (k < n) snprintf(buf + k, n - k, "]");
}
