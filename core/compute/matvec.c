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
#define PAR_MIN_WEIGHTS (1 << 18) // a batch below this runs on one thread: a parallel region
                                  // (wake-up and barrier) costs more than the products
#ifndef PREFETCH
#define PREFETCH 1 // blocks of ROWS rows ahead to prefetch: the hardware prefetcher stops at
                   // 4 KiB pages; measured here: bf16 -28%, fp32 -5% per token; 2 or 3 no better
#endif

typedef enum { PATH_UNSET, PATH_SCALAR, PATH_AVX2, PATH_AVX512 } kernel_path;

static kernel_path pick(void) {
    static kernel_path p = PATH_UNSET;
    if (p != PATH_UNSET) return p;
    __builtin_cpu_init();
    kernel_path q = PATH_SCALAR;
#if RWKV_REAL_BITS == 32
    if (__builtin_cpu_supports("avx512f")) q = PATH_AVX512;
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
// Columns past the last full vector block, scalar.
static float tail(const float *w, const uint16_t *w16, const float *x, int j, int K) {
    float acc = 0;
    for (; j < K; j++) acc += (w16 ? bf16_to_f32(w16[j]) : w[j]) * x[j];
    return acc;
}

__attribute__((target("avx512f")))
static void rows512_f32(const rwkv_matvec_job *jb, int i0, int i1) {
    int K = jb->K, K16 = K & ~15;
    const float *x = jb->x;
    for (int i = i0; i < i1; i += ROWS) {
        int nr = i1 - i < ROWS ? i1 - i : ROWS;
        __m512 acc[ROWS];
        const float *w[ROWS];
        for (int r = 0; r < ROWS; r++) {
            w[r] = jb->W + (size_t)(i + (r < nr ? r : 0)) * K; // short last block: repeat a row, unused
            acc[r] = _mm512_setzero_ps();
        }
        for (int j = 0; j < K16; j += 16) {
            __m512 xv = _mm512_loadu_ps(x + j);
            for (int r = 0; r < ROWS; r++) {
                if (PREFETCH) _mm_prefetch((const char *)(w[r] + (size_t)PREFETCH * ROWS * K + j), _MM_HINT_T0);
                acc[r] = _mm512_fmadd_ps(_mm512_loadu_ps(w[r] + j), xv, acc[r]);
            }
        }
        for (int r = 0; r < nr; r++) jb->out[i + r] = _mm512_reduce_add_ps(acc[r]) + tail(w[r], NULL, x, K16, K);
    }
}

// bf16: one 64-byte load holds 32 weights, element 2i in the low and 2i+1 in the high half
// of 32-bit lane i. A 16-bit shift (even) and a mask (odd) widen them exactly, without the
// cross-lane zero-extension; x is split into even and odd lanes once per block for all rows.
__attribute__((target("avx512f")))
static void rows512_bf16(const rwkv_matvec_job *jb, int i0, int i1) {
    int K = jb->K, K32 = K & ~31;
    const float *x = jb->x;
    const __m512i even_idx = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
    const __m512i odd_idx = _mm512_setr_epi32(1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31);
    const __m512i high = _mm512_set1_epi32((int)0xFFFF0000u);
    for (int i = i0; i < i1; i += ROWS) {
        int nr = i1 - i < ROWS ? i1 - i : ROWS;
        __m512 acc[ROWS];
        const uint16_t *w[ROWS];
        for (int r = 0; r < ROWS; r++) {
            w[r] = jb->W16 + (size_t)(i + (r < nr ? r : 0)) * K;
            acc[r] = _mm512_setzero_ps();
        }
        for (int j = 0; j < K32; j += 32) {
            __m512 x0 = _mm512_loadu_ps(x + j), x1 = _mm512_loadu_ps(x + j + 16);
            __m512 xe = _mm512_permutex2var_ps(x0, even_idx, x1), xo = _mm512_permutex2var_ps(x0, odd_idx, x1);
            for (int r = 0; r < ROWS; r++) {
                if (PREFETCH) _mm_prefetch((const char *)(w[r] + (size_t)PREFETCH * ROWS * K + j), _MM_HINT_T0);
                __m512i v = _mm512_loadu_si512((const void *)(w[r] + j));
                __m512 we = _mm512_castsi512_ps(_mm512_slli_epi32(v, 16)); // bf16 -> fp32: shift
                __m512 wo = _mm512_castsi512_ps(_mm512_and_si512(v, high));
                acc[r] = _mm512_fmadd_ps(wo, xo, _mm512_fmadd_ps(we, xe, acc[r]));
            }
        }
        for (int r = 0; r < nr; r++) jb->out[i + r] = _mm512_reduce_add_ps(acc[r]) + tail(NULL, w[r], x, K32, K);
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

static void rows_avx512(const rwkv_matvec_job *jb, int i0, int i1) {
    if (jb->W16) rows512_bf16(jb, i0, i1);
    else rows512_f32(jb, i0, i1);
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
    size_t weights = 0;
    for (int q = 0; q < n_jobs; q++) weights += (size_t)jobs[q].N * jobs[q].K;
#pragma omp parallel if (weights >= PAR_MIN_WEIGHTS)
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
