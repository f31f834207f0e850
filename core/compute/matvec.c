// matvec.c: fp32 and bf16-weight matrix-vector products, AVX-512 or AVX2 chosen at runtime.
// Memory bound: each weight is read once per token. A kernel walks ROWS rows at a time (one
// load of x feeds ROWS independent FMA chains) and the rows of every product in a batch are
// split statically between the threads of one parallel region, without barriers in between.
#include "matvec.h"

#include "blas.h"

#include <immintrin.h>
#include <omp.h>
#include <string.h>

#define ROWS 4 // rows per kernel iteration; also the granularity of the thread split

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

static float bf16_to_f32(uint16_t b) {
    uint32_t u = (uint32_t)b << 16; // bf16 is the top half of a float32
    float f;
    memcpy(&f, &u, 4);
    return f;
}

// Scalar fallback (and the PRECISION=64 build): rows [i0, i1) of one product.
static void rows_scalar(const rwkv_matvec_job *jb, int i0, int i1) {
    int K = jb->K;
    for (int i = i0; i < i1; i++) {
        rwkv_real acc = 0;
        if (jb->W16) {
            const uint16_t *w = jb->W16 + (size_t)i * K;
            for (int j = 0; j < K; j++) acc += bf16_to_f32(w[j]) * jb->x[j];
        } else {
            const rwkv_real *w = jb->W + (size_t)i * K;
            for (int j = 0; j < K; j++) acc += w[j] * jb->x[j];
        }
        jb->out[i] = acc;
    }
}

#if RWKV_REAL_BITS == 32
__attribute__((target("avx512f,avx512bw")))
static inline __m512 widen16(const uint16_t *p) {
    __m512i w = _mm512_cvtepu16_epi32(_mm256_loadu_si256((const __m256i *)p));
    return _mm512_castsi512_ps(_mm512_slli_epi32(w, 16)); // bf16 -> fp32 by a 16-bit shift
}

// Columns past the last multiple of 16, scalar.
static float tail(const float *w, const uint16_t *w16, const float *x, int j, int K) {
    float acc = 0;
    for (; j < K; j++) acc += (w16 ? bf16_to_f32(w16[j]) : w[j]) * x[j];
    return acc;
}

// bf16 is a compile-time constant at each call, so the inner loop has no branch.
__attribute__((target("avx512f,avx512bw"), always_inline))
static inline void rows512(const rwkv_matvec_job *jb, int i0, int i1, const int bf16) {
    int K = jb->K, K16 = K & ~15;
    const float *x = jb->x;
    for (int i = i0; i < i1; i += ROWS) {
        int nr = i1 - i < ROWS ? i1 - i : ROWS;
        __m512 acc[ROWS];
        const float *w[ROWS];
        const uint16_t *w16[ROWS];
        for (int r = 0; r < ROWS; r++) {
            int row = i + (r < nr ? r : 0); // short last block: repeat a valid row, unused
            w[r] = jb->W ? jb->W + (size_t)row * K : NULL;
            w16[r] = jb->W16 ? jb->W16 + (size_t)row * K : NULL;
            acc[r] = _mm512_setzero_ps();
        }
        for (int j = 0; j < K16; j += 16) {
            __m512 xv = _mm512_loadu_ps(x + j);
            for (int r = 0; r < ROWS; r++)
                acc[r] = _mm512_fmadd_ps(bf16 ? widen16(w16[r] + j) : _mm512_loadu_ps(w[r] + j), xv, acc[r]);
        }
        for (int r = 0; r < nr; r++)
            jb->out[i + r] = _mm512_reduce_add_ps(acc[r]) + tail(w[r], w16[r], x, K16, K);
    }
}

__attribute__((target("avx2,fma")))
static inline __m256 load8(const float *w, const uint16_t *w16, size_t j, const int bf16) {
    if (!bf16) return _mm256_loadu_ps(w + j);
    __m256i v = _mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)(w16 + j)));
    return _mm256_castsi256_ps(_mm256_slli_epi32(v, 16));
}

__attribute__((target("avx2,fma")))
static float hsum8(__m256 s) {
    __m128 h = _mm_add_ps(_mm256_castps256_ps128(s), _mm256_extractf128_ps(s, 1));
    h = _mm_add_ps(h, _mm_movehl_ps(h, h));
    h = _mm_add_ss(h, _mm_shuffle_ps(h, h, 1));
    return _mm_cvtss_f32(h);
}

__attribute__((target("avx2,fma"), always_inline))
static inline void rows256(const rwkv_matvec_job *jb, int i0, int i1, const int bf16) {
    int K = jb->K, K8 = K & ~7;
    const float *x = jb->x;
    for (int i = i0; i < i1; i += ROWS) {
        int nr = i1 - i < ROWS ? i1 - i : ROWS;
        __m256 acc[ROWS];
        const float *w[ROWS];
        const uint16_t *w16[ROWS];
        for (int r = 0; r < ROWS; r++) {
            int row = i + (r < nr ? r : 0);
            w[r] = jb->W ? jb->W + (size_t)row * K : NULL;
            w16[r] = jb->W16 ? jb->W16 + (size_t)row * K : NULL;
            acc[r] = _mm256_setzero_ps();
        }
        for (int j = 0; j < K8; j += 8) {
            __m256 xv = _mm256_loadu_ps(x + j);
            for (int r = 0; r < ROWS; r++)
                acc[r] = _mm256_fmadd_ps(load8(w[r], w16[r], j, bf16), xv, acc[r]);
        }
        for (int r = 0; r < nr; r++) jb->out[i + r] = hsum8(acc[r]) + tail(w[r], w16[r], x, K8, K);
    }
}

__attribute__((target("avx512f,avx512bw")))
static void rows_avx512(const rwkv_matvec_job *jb, int i0, int i1) {
    if (jb->W16) rows512(jb, i0, i1, 1);
    else rows512(jb, i0, i1, 0);
}

__attribute__((target("avx2,fma")))
static void rows_avx2(const rwkv_matvec_job *jb, int i0, int i1) {
    if (jb->W16) rows256(jb, i0, i1, 1);
    else rows256(jb, i0, i1, 0);
}
#endif

static void run_rows(kernel_path p, const rwkv_matvec_job *jb, int i0, int i1) {
#if RWKV_REAL_BITS == 32
    if (p == PATH_AVX512) { rows_avx512(jb, i0, i1); return; }
    if (p == PATH_AVX2) { rows_avx2(jb, i0, i1); return; }
#endif
    (void)p;
    rows_scalar(jb, i0, i1);
}

void rwkv_matvec_multi(const rwkv_matvec_job *jobs, int n_jobs) {
    kernel_path p = pick();
    if (p == PATH_SCALAR) { // no SIMD kernel: fp32 products through BLAS, bf16 scalar
        for (int q = 0; q < n_jobs; q++)
            if (!jobs[q].W16) rwkv_blas_matvec(jobs[q].out, jobs[q].W, jobs[q].x, jobs[q].N, jobs[q].K);
    }
#pragma omp parallel
    {
        int nt = omp_get_num_threads(), id = omp_get_thread_num();
        for (int q = 0; q < n_jobs; q++) { // each product split evenly: no barrier needed
            const rwkv_matvec_job *jb = &jobs[q];
            if (p == PATH_SCALAR && !jb->W16) continue;
            int share = ((jb->N + nt - 1) / nt + ROWS - 1) / ROWS * ROWS; // whole ROWS blocks
            int i0 = id * share, i1 = i0 + share < jb->N ? i0 + share : jb->N;
            if (i0 < i1) run_rows(p, jb, i0, i1);
        }
    }
}

void rwkv_matvec_bf16(rwkv_real *out, const uint16_t *W, const rwkv_real *x, int N, int K) {
    rwkv_matvec_job jb = {out, NULL, W, x, N, K};
    rwkv_matvec_multi(&jb, 1);
}

void rwkv_matvec_f32(rwkv_real *out, const rwkv_real *W, const rwkv_real *x, int N, int K) {
    rwkv_matvec_job jb = {out, W, NULL, x, N, K};
    rwkv_matvec_multi(&jb, 1);
}

const char *rwkv_matvec_bf16_path(void) {
    switch (pick()) {
    case PATH_AVX512: return "avx512";
    case PATH_AVX2: return "avx2";
    default: return "scalar";
    }
}
