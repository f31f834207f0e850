// matvec.c: bf16-weight matrix-vector products, AVX-512 or AVX2 chosen at runtime.
// Memory bound: each weight is read once, so the kernel streams rows and keeps x in cache.
#include "matvec.h"

#include "blas.h"

#include <immintrin.h>
#include <string.h>

static float bf16_to_f32(uint16_t b) {
    uint32_t u = (uint32_t)b << 16; // bf16 is the top half of a float32
    float f;
    memcpy(&f, &u, 4);
    return f;
}

static void matvec_scalar(rwkv_real *out, const uint16_t *W, const rwkv_real *x, int N, int K) {
#pragma omp parallel for schedule(static)
    for (int i = 0; i < N; i++) {
        const uint16_t *w = W + (size_t)i * K;
        float acc = 0;
        for (int j = 0; j < K; j++) acc += bf16_to_f32(w[j]) * (float)x[j];
        out[i] = acc;
    }
}

#if RWKV_REAL_BITS == 32
__attribute__((target("avx512f,avx512bw")))
static inline __m512 widen16(const uint16_t *p) {
    __m512i w = _mm512_cvtepu16_epi32(_mm256_loadu_si256((const __m256i *)p));
    return _mm512_castsi512_ps(_mm512_slli_epi32(w, 16)); // bf16 -> fp32 by a 16-bit shift
}

__attribute__((target("avx512f,avx512bw")))
static void matvec_avx512(float *out, const uint16_t *W, const float *x, int N, int K) {
    int K16 = K & ~15;
#pragma omp parallel for schedule(static)
    for (int i = 0; i < N; i++) {
        const uint16_t *w = W + (size_t)i * K;
        __m512 a0 = _mm512_setzero_ps(), a1 = _mm512_setzero_ps();
        int j = 0;
        for (; j + 32 <= K16; j += 32) {
            a0 = _mm512_fmadd_ps(widen16(w + j), _mm512_loadu_ps(x + j), a0);
            a1 = _mm512_fmadd_ps(widen16(w + j + 16), _mm512_loadu_ps(x + j + 16), a1);
        }
        for (; j < K16; j += 16) a0 = _mm512_fmadd_ps(widen16(w + j), _mm512_loadu_ps(x + j), a0);
        float acc = _mm512_reduce_add_ps(_mm512_add_ps(a0, a1));
        for (; j < K; j++) acc += bf16_to_f32(w[j]) * x[j];
        out[i] = acc;
    }
}

// fp32 weights: the same streaming loop without the widening.
__attribute__((target("avx512f")))
static void matvec_f32_avx512(float *out, const float *W, const float *x, int N, int K) {
    int K16 = K & ~15;
#pragma omp parallel for schedule(static)
    for (int i = 0; i < N; i++) {
        const float *w = W + (size_t)i * K;
        __m512 a0 = _mm512_setzero_ps(), a1 = _mm512_setzero_ps();
        int j = 0;
        for (; j + 32 <= K16; j += 32) {
            a0 = _mm512_fmadd_ps(_mm512_loadu_ps(w + j), _mm512_loadu_ps(x + j), a0);
            a1 = _mm512_fmadd_ps(_mm512_loadu_ps(w + j + 16), _mm512_loadu_ps(x + j + 16), a1);
        }
        for (; j < K16; j += 16) a0 = _mm512_fmadd_ps(_mm512_loadu_ps(w + j), _mm512_loadu_ps(x + j), a0);
        float acc = _mm512_reduce_add_ps(_mm512_add_ps(a0, a1));
        for (; j < K; j++) acc += w[j] * x[j];
        out[i] = acc;
    }
}

__attribute__((target("avx2,fma")))
static inline __m256 widen8(const uint16_t *p) {
    __m256i w = _mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)p));
    return _mm256_castsi256_ps(_mm256_slli_epi32(w, 16));
}

__attribute__((target("avx2,fma")))
static void matvec_avx2(float *out, const uint16_t *W, const float *x, int N, int K) {
    int K8 = K & ~7;
#pragma omp parallel for schedule(static)
    for (int i = 0; i < N; i++) {
        const uint16_t *w = W + (size_t)i * K;
        __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps();
        int j = 0;
        for (; j + 16 <= K8; j += 16) {
            a0 = _mm256_fmadd_ps(widen8(w + j), _mm256_loadu_ps(x + j), a0);
            a1 = _mm256_fmadd_ps(widen8(w + j + 8), _mm256_loadu_ps(x + j + 8), a1);
        }
        for (; j < K8; j += 8) a0 = _mm256_fmadd_ps(widen8(w + j), _mm256_loadu_ps(x + j), a0);
        __m256 s = _mm256_add_ps(a0, a1);
        __m128 h = _mm_add_ps(_mm256_castps256_ps128(s), _mm256_extractf128_ps(s, 1));
        h = _mm_add_ps(h, _mm_movehl_ps(h, h));
        h = _mm_add_ss(h, _mm_shuffle_ps(h, h, 1));
        float acc = _mm_cvtss_f32(h);
        for (; j < K; j++) acc += bf16_to_f32(w[j]) * x[j];
        out[i] = acc;
    }
}
#endif

typedef enum { PATH_UNSET, PATH_SCALAR, PATH_AVX2, PATH_AVX512 } kernel_path;

static kernel_path pick(void) {
    static kernel_path p = PATH_UNSET;
    if (p != PATH_UNSET) return p;
    __builtin_cpu_init();
    kernel_path q = PATH_SCALAR;
#if RWKV_REAL_BITS == 32
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw")) q = PATH_AVX512;
    else if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) q = PATH_AVX2;
#endif
    p = q;
    return p;
}

void rwkv_matvec_bf16(rwkv_real *out, const uint16_t *W, const rwkv_real *x, int N, int K) {
#if RWKV_REAL_BITS == 32
    switch (pick()) {
    case PATH_AVX512: matvec_avx512(out, W, x, N, K); return;
    case PATH_AVX2: matvec_avx2(out, W, x, N, K); return;
    default: break;
    }
#endif
    matvec_scalar(out, W, x, N, K);
}

void rwkv_matvec_f32(rwkv_real *out, const rwkv_real *W, const rwkv_real *x, int N, int K) {
#if RWKV_REAL_BITS == 32
    if (pick() == PATH_AVX512) {
        matvec_f32_avx512(out, W, x, N, K);
        return;
    }
#endif
    rwkv_blas_matvec(out, W, x, N, K);
}

const char *rwkv_matvec_bf16_path(void) {
    switch (pick()) {
    case PATH_AVX512: return "avx512";
    case PATH_AVX2: return "avx2";
    default: return "scalar";
    }
}
