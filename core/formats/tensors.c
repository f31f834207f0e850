// tensors.c: a growable set of named raw tensors, and dtype conversion.
#include "tensors.h"

#include "quant.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <errno.h>
#include <fcntl.h>
#include <omp.h>
#include <stdio.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../base/file.h"

void rwkv_tensors_init(rwkv_tensor_set *s) { memset(s, 0, sizeof *s); }

void rwkv_tensors_free(rwkv_tensor_set *s) {
    if (!s) return;
    for (int i = 0; i < s->n_owned; i++) free(s->owned[i]);
    for (int i = 0; i < 2 * s->n_meta; i++) free(s->meta[i]);
    free(s->meta);
    free(s->owned);
    free(s->items);
    if (s->map) munmap(s->map, s->map_bytes);
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

rwkv_status rwkv_tensors_map_file(rwkv_tensor_set *s, const char *path, const unsigned char **data,
                                  size_t *n) {
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return rwkv_error_set(RWKV_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    struct stat sb;
    if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode) || sb.st_size == 0 || s->map) {
        close(fd); // not a mappable file: read it whole
        unsigned char *buf;
        rwkv_status st = rwkv_file_read(path, &buf, n);
        if (!st) st = rwkv_tensors_own(s, buf);
        *data = st ? NULL : buf;
        return st;
    }
    // The mapping covers exactly the file's bytes: readers check every offset against *n
    // before they touch data, so nothing past the end is ever read.
    void *p = mmap(NULL, (size_t)sb.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
    int err = errno;
    close(fd);
    if (p == MAP_FAILED) return rwkv_error_set(RWKV_ERR_IO, "%s: cannot map: %s", path, strerror(err));
    s->map = p;
    s->map_bytes = (size_t)sb.st_size;
    *data = p;
    *n = s->map_bytes;
    return RWKV_OK;
}

void rwkv_tensors_map_release(const rwkv_tensor_set *s, const void *p, size_t n) {
    const unsigned char *b = p, *m = s->map;
    if (!m || b < m || b + n > m + s->map_bytes) return; // not in the mapping
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    uintptr_t lo = ((uintptr_t)b + page - 1) / page * page, hi = ((uintptr_t)b + n) / page * page;
    if (hi > lo) madvise((void *)lo, hi - lo, MADV_DONTNEED); // whole pages inside [p, p + n) only
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
    default: return 0;
    }
}

int rwkv_dtype_is_quant(rwkv_dtype dt) { return dt >= RWKV_DT_Q4_0 && dt <= RWKV_DT_I8; }

// Bytes of one block of RWKV_DT_QK weights: fp16 scale d (and min m), 4 bytes of fifth
// bits for Q5, the quants; I8: the quants, then a float32 scale.
static size_t block_bytes(rwkv_dtype dt) {
    switch (dt) {
    case RWKV_DT_Q4_0: return 2 + 16;
    case RWKV_DT_Q4_1: return 4 + 16;
    case RWKV_DT_Q5_0: return 2 + 4 + 16;
    case RWKV_DT_Q5_1: return 4 + 4 + 16;
    case RWKV_DT_Q8_0: return 2 + 32;
    case RWKV_DT_I8: return 32 + 4;
    default: return 0;
    }
}

size_t rwkv_dtype_bytes(rwkv_dtype dt, size_t n) {
    return rwkv_dtype_is_quant(dt) ? n / RWKV_DT_QK * block_bytes(dt) : n * rwkv_dtype_size(dt);
}

const char *rwkv_dtype_name(rwkv_dtype dt) {
    switch (dt) {
    case RWKV_DT_F32: return "float32";
    case RWKV_DT_F16: return "float16";
    case RWKV_DT_BF16: return "bfloat16";
    case RWKV_DT_F64: return "float64";
    case RWKV_DT_Q4_0: return "Q4_0";
    case RWKV_DT_Q4_1: return "Q4_1";
    case RWKV_DT_Q5_0: return "Q5_0";
    case RWKV_DT_Q5_1: return "Q5_1";
    case RWKV_DT_Q8_0: return "Q8_0";
    case RWKV_DT_I8: return "int8";
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

#define SCAN_CHUNK 4096 // elements tested without an early exit (vectorizes), then searched

// Exponent all ones (inf or NaN) in element i of a 16/32/64-bit type, by its exponent mask.
#define SCAN_TYPE(T, MASK)                                                                   \
    for (size_t c0 = 0; c0 < n; c0 += SCAN_CHUNK) {                                         \
        size_t c1 = n - c0 < SCAN_CHUNK ? n : c0 + SCAN_CHUNK;                              \
        int any = 0;                                                                         \
        for (size_t i = c0; i < c1; i++) {                                                   \
            T u;                                                                             \
            memcpy(&u, b + sizeof(T) * i, sizeof(T));                                        \
            any |= (u & (MASK)) == (MASK);                                                   \
        }                                                                                    \
        for (size_t i = c0; any && i < c1; i++) {                                            \
            T u;                                                                             \
            memcpy(&u, b + sizeof(T) * i, sizeof(T));                                        \
            if ((u & (MASK)) == (MASK)) return (int64_t)i;                                   \
        }                                                                                    \
    }

static int64_t scan_range(const void *src, rwkv_dtype dt, size_t n) {
    if (rwkv_dtype_is_quant(dt)) {
        int64_t blk = rwkv_quant_first_nonfinite(src, dt, n);
        return blk < 0 ? -1 : blk * RWKV_DT_QK;
    }
    const unsigned char *b = src;
    switch (dt) {
    case RWKV_DT_F32: SCAN_TYPE(uint32_t, 0x7f800000u) break;
    case RWKV_DT_F64: SCAN_TYPE(uint64_t, 0x7ff0000000000000ull) break;
    case RWKV_DT_F16: SCAN_TYPE(uint16_t, 0x7c00u) break;
    case RWKV_DT_BF16: SCAN_TYPE(uint16_t, 0x7f80u) break;
    default: break;
    }
    return -1;
}

rwkv_status rwkv_tensors_nonfinite_error(const char *path, const char *name, int64_t at) {
    return rwkv_error_set(RWKV_ERR_NUMERIC, "%s: tensor %s: element %lld is not finite (NaN or inf): "
                          "corrupt weights", path, name, (long long)at);
}

rwkv_status rwkv_tensors_check_finite(const rwkv_real *x, size_t n, const char *path, const char *name) {
    for (size_t i = 0; i < n; i++) // a NaN or inf would poison every later position silently
        if (!isfinite(x[i])) return rwkv_tensors_nonfinite_error(path, name, (int64_t)i);
    return RWKV_OK;
}

#define SCAN_PAR_MIN (1 << 22) // elements from which the threads share a scan (a load of GBs)

int64_t rwkv_tensors_first_nonfinite(const void *src, rwkv_dtype dt, size_t n) {
    int64_t first = -1;
#pragma omp parallel if (n >= SCAN_PAR_MIN)
    {
        size_t nt = (size_t)omp_get_num_threads(), id = (size_t)omp_get_thread_num();
        size_t per = (n / nt + RWKV_DT_QK - 1) / RWKV_DT_QK * RWKV_DT_QK; // whole blocks each
        size_t i0 = id * per < n ? id * per : n, i1 = i0 + per < n ? i0 + per : n;
        int64_t bad = i1 > i0 ? scan_range((const unsigned char *)src + rwkv_dtype_bytes(dt, i0), dt, i1 - i0) : -1;
#pragma omp critical
        if (bad >= 0 && (first < 0 || (int64_t)i0 + bad < first)) first = (int64_t)i0 + bad;
    }
    return first;
}

void rwkv_tensors_convert(rwkv_real *out, const void *src, rwkv_dtype dt, size_t n) {
    const unsigned char *b = src;
    switch (dt) { // one loop per type: the bf16 and float ones vectorize
    case RWKV_DT_F32:
        for (size_t i = 0; i < n; i++) { float f; memcpy(&f, b + 4 * i, 4); out[i] = f; }
        break;
    case RWKV_DT_F64:
        for (size_t i = 0; i < n; i++) { double d; memcpy(&d, b + 8 * i, 8); out[i] = (rwkv_real)d; }
        break;
    case RWKV_DT_F16:
        for (size_t i = 0; i < n; i++) { uint16_t h; memcpy(&h, b + 2 * i, 2); out[i] = rwkv_half_to_float(h); }
        break;
    case RWKV_DT_BF16:
        for (size_t i = 0; i < n; i++) {
            uint16_t h;
            memcpy(&h, b + 2 * i, 2);
            uint32_t u = (uint32_t)h << 16; // bf16 is the top half of a float32
            float f;
            memcpy(&f, &u, 4);
            out[i] = f;
        }
        break;
    default: rwkv_quant_dequant(out, src, dt, n); break; // the block types
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
