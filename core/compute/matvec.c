// matvec.c: matrix-vector products over typed weights, AVX-512 or AVX2 chosen at runtime.
// Memory bound: each weight is read once per token. A kernel walks ROWS rows at a time (one
// load of x feeds ROWS independent FMA chains) and the rows of every product in a batch are
// split statically between the threads of one parallel region, without barriers in between.
#include "matvec.h"

#include "blas.h"
#include "../formats/quant.h"

#include <cpuid.h>
#include <float.h>
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

#define XQ_COLS 4096 // columns of x rounded to int16 at a time for the I8 VNNI kernel (stack)
#define XQ_MAX 32767 // largest |x| step count: x rounded to 16 bits per XQ_COLS columns

#if RWKV_REAL_BITS == 32
static int vnni; // AVX512-VNNI and AVX512BW: I8 products as int16 dot products (set by pick)
#endif

#if RWKV_REAL_BITS == 32
// F16C from CPUID leaf 1 (ECX bit 29): clang's __builtin_cpu_supports does not know "f16c".
static int has_f16c(void) {
    unsigned a, b, c, d;
    return __get_cpuid(1, &a, &b, &c, &d) && (c & bit_F16C);
}
#endif

static kernel_path pick(void) {
    static kernel_path p = PATH_UNSET;
    if (p != PATH_UNSET) return p;
    __builtin_cpu_init();
    kernel_path q = PATH_SCALAR;
#if RWKV_REAL_BITS == 32
    if (__builtin_cpu_supports("avx512f") && has_f16c()) q = PATH_AVX512;
    else if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && has_f16c())
        q = PATH_AVX2;
    vnni = q == PATH_AVX512 && __builtin_cpu_supports("avx512vnni") && __builtin_cpu_supports("avx512bw");
#endif
    p = q;
    return p;
}

#define SCALAR_STEP RWKV_DT_QK // weights widened at a time by the scalar path

// Scalar fallback (and the PRECISION=64 build): rows [i0, i1) of one product, any type,
// widened SCALAR_STEP weights at a time.
static void rows_scalar(const rwkv_matvec_job *jb, int i0, int i1) {
    int K = jb->K;
    size_t row = rwkv_dtype_bytes(jb->W.type, (size_t)K);
    rwkv_real tmp[SCALAR_STEP];
    for (int i = i0; i < i1; i++) {
        const unsigned char *w = (const unsigned char *)jb->W.data + (size_t)i * row;
        rwkv_real acc = 0;
        for (int j = 0; j < K; j += SCALAR_STEP) {
            int n = K - j < SCALAR_STEP ? K - j : SCALAR_STEP;
            rwkv_tensors_convert(tmp, w + rwkv_dtype_bytes(jb->W.type, (size_t)j), jb->W.type, (size_t)n);
            for (int q = 0; q < n; q++) acc += tmp[q] * jb->x[j + q];
        }
        jb->out[i] = acc;
    }
}

#if RWKV_REAL_BITS == 32
static float bf16_to_f32(uint16_t b) {
    uint32_t u = (uint32_t)b << 16; // bf16 is the top half of a float32
    float f;
    memcpy(&f, &u, 4);
    return f;
}

// Columns past the last full vector block, scalar (f32, bf16 or f16 rows). Mapped rows need
// not be aligned (rwkv.cpp files pack tensors without padding): loads go through memcpy.
static float tail(const float *w, const uint16_t *w16, int f16, const float *x, int j, int K) {
    float acc = 0;
    for (; j < K; j++) {
        float v;
        uint16_t h;
        if (w16) memcpy(&h, w16 + j, 2), v = f16 ? rwkv_half_to_float(h) : bf16_to_f32(h);
        else memcpy(&v, w + j, 4);
        acc += v * x[j];
    }
    return acc;
}

// fp32, or fp16 (f16 = 1: 16 weights per 32-byte load, widened exactly by vcvtph2ps).
__attribute__((target("avx512f"), always_inline))
static inline void rows512_flat(const rwkv_matvec_job *jb, int i0, int i1, const int f16) {
    int K = jb->K, K16 = K & ~15;
    size_t es = f16 ? 2 : 4;
    const float *x = jb->x;
    for (int i = i0; i < i1; i += ROWS) {
        int nr = i1 - i < ROWS ? i1 - i : ROWS;
        __m512 acc[ROWS];
        const unsigned char *w[ROWS];
        for (int r = 0; r < ROWS; r++) {
            w[r] = (const unsigned char *)jb->W.data + (size_t)(i + (r < nr ? r : 0)) * K * es; // short last block: repeat a row, unused
            acc[r] = _mm512_setzero_ps();
        }
        for (int j = 0; j < K16; j += 16) {
            __m512 xv = _mm512_loadu_ps(x + j);
            for (int r = 0; r < ROWS; r++) {
                const unsigned char *p = w[r] + j * es;
                if (PREFETCH) _mm_prefetch((const char *)(p + (size_t)PREFETCH * ROWS * K * es), _MM_HINT_T0);
                __m512 wv = f16 ? _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)p)) : _mm512_loadu_ps((const float *)p);
                acc[r] = _mm512_fmadd_ps(wv, xv, acc[r]);
            }
        }
        for (int r = 0; r < nr; r++)
            jb->out[i + r] = _mm512_reduce_add_ps(acc[r]) + tail(f16 ? NULL : (const float *)w[r],
                                                                 f16 ? (const uint16_t *)w[r] : NULL, f16, x, K16, K);
    }
}

__attribute__((target("avx512f")))
static void rows512_f32(const rwkv_matvec_job *jb, int i0, int i1) { rows512_flat(jb, i0, i1, 0); }

__attribute__((target("avx512f")))
static void rows512_f16(const rwkv_matvec_job *jb, int i0, int i1) { rows512_flat(jb, i0, i1, 1); }

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
            w[r] = (const uint16_t *)jb->W.data + (size_t)(i + (r < nr ? r : 0)) * K;
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
        for (int r = 0; r < nr; r++) jb->out[i + r] = _mm512_reduce_add_ps(acc[r]) + tail(NULL, w[r], 0, x, K32, K);
    }
}


__attribute__((target("f16c")))
static inline float f16_scale(const unsigned char *b) {
    uint16_t h;
    memcpy(&h, b, 2);
    return _cvtsh_ss(h); // vcvtph2ps, exact
}

// Q8_0 (q8_0 = 1: fp16 d, then 32 int8) or I8 (32 int8, then float32 d): per block,
// s = sum q_j x_j in float (int8 widened by two sign extensions), then acc += d s.
__attribute__((target("avx512f,f16c"), always_inline))
static inline void rows512_int8(const rwkv_matvec_job *jb, int i0, int i1, const int q8_0) {
    int K = jb->K, nb = K / RWKV_DT_QK;
    const size_t bb = q8_0 ? 34 : 36, qs = q8_0 ? 2 : 0; // block bytes, offset of the quants
    size_t row = (size_t)nb * bb;
    const float *x = jb->x;
    for (int i = i0; i < i1; i += ROWS) {
        int nr = i1 - i < ROWS ? i1 - i : ROWS;
        __m512 acc[ROWS];
        const unsigned char *w[ROWS];
        for (int r = 0; r < ROWS; r++) {
            w[r] = (const unsigned char *)jb->W.data + (size_t)(i + (r < nr ? r : 0)) * row;
            acc[r] = _mm512_setzero_ps();
        }
        for (int b = 0; b < nb; b++) {
            __m512 x0 = _mm512_loadu_ps(x + b * RWKV_DT_QK), x1 = _mm512_loadu_ps(x + b * RWKV_DT_QK + 16);
            for (int r = 0; r < ROWS; r++) {
                const unsigned char *blk = w[r] + (size_t)b * bb;
                if (PREFETCH) _mm_prefetch((const char *)(blk + (size_t)PREFETCH * ROWS * row), _MM_HINT_T0);
                __m512 q0 = _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_loadu_si128((const __m128i *)(blk + qs))));
                __m512 q1 = _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_loadu_si128((const __m128i *)(blk + qs + 16))));
                __m512 sum = _mm512_fmadd_ps(q1, x1, _mm512_mul_ps(q0, x0));
                float d;
                if (q8_0) d = f16_scale(blk);
                else memcpy(&d, blk + RWKV_DT_QK, 4);
                acc[r] = _mm512_fmadd_ps(_mm512_set1_ps(d), sum, acc[r]); // d sum q x
            }
        }
        for (int r = 0; r < nr; r++) jb->out[i + r] = _mm512_reduce_add_ps(acc[r]);
    }
}

__attribute__((target("avx512f,f16c")))
static void rows512_q8_0(const rwkv_matvec_job *jb, int i0, int i1) { rows512_int8(jb, i0, i1, 1); }

__attribute__((target("avx512f,f16c")))
static void rows512_i8(const rwkv_matvec_job *jb, int i0, int i1) { rows512_int8(jb, i0, i1, 0); }

// x[0, n) (n a multiple of 16) as int16 steps of the returned dx = max|x| / XQ_MAX:
// |x_j - xq_j dx| <= dx / 2 (plus the float rounding of x_j / dx). A non-finite x gives a
// NaN dx, so the products come out non-finite as in float.
__attribute__((target("avx512f")))
static float round_x(int16_t *xq, const float *x, int n) {
    __m512 amax = _mm512_setzero_ps(), probe = amax;
    for (int j = 0; j < n; j += 16) {
        __m512 v = _mm512_loadu_ps(x + j);
        amax = _mm512_max_ps(amax, _mm512_abs_ps(v));
        probe = _mm512_add_ps(probe, _mm512_mul_ps(v, _mm512_setzero_ps())); // 0, or NaN for inf/NaN
    }
    float a = _mm512_reduce_max_ps(amax), dx = a / XQ_MAX + _mm512_reduce_add_ps(probe);
    __m512 inv = _mm512_set1_ps(a > 0 && a <= FLT_MAX ? XQ_MAX / a : 0);
    for (int j = 0; j < n; j += 16) // round to nearest, saturate to int16
        _mm256_storeu_si256((__m256i *)(xq + j), _mm512_cvtsepi32_epi16(_mm512_cvtps_epi32(_mm512_mul_ps(_mm512_loadu_ps(x + j), inv))));
    return dx;
}

// I8 with VNNI: x rounded to int16 (round_x), then per block the exact integer sum
// S = sum q_j xq_j (one vpdpwssd over the 32 quants widened to int16), acc += d S, and the
// row is acc dx. Three vector operations per block and row instead of six in float; x's
// rounding adds at most dx/2 sum |w_j| to a product (test_matvec states the bound).
__attribute__((target("avx512f,avx512bw,avx512vnni")))
static void rows512_i8_vnni(const rwkv_matvec_job *jb, int i0, int i1) {
    const size_t bb = 36, row = (size_t)(jb->K / RWKV_DT_QK) * bb; // I8: 32 quants, float32 d
    int16_t xq[XQ_COLS];
    for (int j0 = 0; j0 < jb->K; j0 += XQ_COLS) {
        int nb = (jb->K - j0 < XQ_COLS ? jb->K - j0 : XQ_COLS) / RWKV_DT_QK;
        float dx = round_x(xq, jb->x + j0, nb * RWKV_DT_QK);
        const unsigned char *w0 = (const unsigned char *)jb->W.data + (size_t)(j0 / RWKV_DT_QK) * bb;
        for (int i = i0; i < i1; i += ROWS) {
            int nr = i1 - i < ROWS ? i1 - i : ROWS;
            __m512 acc[ROWS];
            const unsigned char *w[ROWS];
            for (int r = 0; r < ROWS; r++) {
                w[r] = w0 + (size_t)(i + (r < nr ? r : 0)) * row;
                acc[r] = _mm512_setzero_ps();
            }
            for (int b = 0; b < nb; b++) {
                __m512i xv = _mm512_loadu_si512((const void *)(xq + b * RWKV_DT_QK));
                for (int r = 0; r < ROWS; r++) {
                    const unsigned char *blk = w[r] + (size_t)b * bb;
                    if (PREFETCH) _mm_prefetch((const char *)(blk + (size_t)PREFETCH * ROWS * row), _MM_HINT_T0);
                    __m512i q = _mm512_cvtepi8_epi16(_mm256_loadu_si256((const __m256i *)blk));
                    __m512i sum = _mm512_dpwssd_epi32(_mm512_setzero_si512(), q, xv); // sum q xq, exact
                    float d;
                    memcpy(&d, blk + RWKV_DT_QK, 4);
                    acc[r] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(sum), _mm512_set1_ps(d), acc[r]);
                }
            }
            for (int r = 0; r < nr; r++) {
                float y = _mm512_reduce_add_ps(acc[r]) * dx;
                jb->out[i + r] = j0 ? jb->out[i + r] + y : y;
            }
        }
    }
}

// The other block types (rwkv.cpp's Q4/Q5 files): each block widened to 32 floats, then FMAs.
__attribute__((target("avx512f")))
static void rows512_blocks(const rwkv_matvec_job *jb, int i0, int i1) {
    int K = jb->K, nb = K / RWKV_DT_QK;
    size_t bb = rwkv_dtype_bytes(jb->W.type, RWKV_DT_QK), row = (size_t)nb * bb;
    const float *x = jb->x;
    float wf[RWKV_DT_QK];
    for (int i = i0; i < i1; i++) {
        const unsigned char *w = (const unsigned char *)jb->W.data + (size_t)i * row;
        __m512 acc = _mm512_setzero_ps();
        for (int b = 0; b < nb; b++) {
            rwkv_quant_block(wf, w + (size_t)b * bb, jb->W.type);
            acc = _mm512_fmadd_ps(_mm512_loadu_ps(wf), _mm512_loadu_ps(x + b * RWKV_DT_QK), acc);
            acc = _mm512_fmadd_ps(_mm512_loadu_ps(wf + 16), _mm512_loadu_ps(x + b * RWKV_DT_QK + 16), acc);
        }
        jb->out[i] = _mm512_reduce_add_ps(acc);
    }
}

// kind: 0 fp32, 1 bf16, 2 fp16.
__attribute__((target("avx2,fma,f16c")))
static inline __m256 load8(const float *w, const uint16_t *w16, size_t j, const int kind) {
    if (kind == 0) return _mm256_loadu_ps(w + j);
    __m128i h = _mm_loadu_si128((const __m128i *)(w16 + j));
    if (kind == 2) return _mm256_cvtph_ps(h);
    return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16));
}

__attribute__((target("avx2,fma")))
static float hsum8(__m256 s) {
    __m128 h = _mm_add_ps(_mm256_castps256_ps128(s), _mm256_extractf128_ps(s, 1));
    h = _mm_add_ps(h, _mm_movehl_ps(h, h));
    h = _mm_add_ss(h, _mm_shuffle_ps(h, h, 1));
    return _mm_cvtss_f32(h);
}

__attribute__((target("avx2,fma,f16c"), always_inline))
static inline void rows256(const rwkv_matvec_job *jb, int i0, int i1, const int kind) {
    int K = jb->K, K8 = K & ~7;
    const float *x = jb->x;
    for (int i = i0; i < i1; i += ROWS) {
        int nr = i1 - i < ROWS ? i1 - i : ROWS;
        __m256 acc[ROWS];
        const float *w[ROWS];
        const uint16_t *w16[ROWS];
        for (int r = 0; r < ROWS; r++) {
            int row = i + (r < nr ? r : 0);
            w[r] = kind == 0 ? (const float *)jb->W.data + (size_t)row * K : NULL;
            w16[r] = kind != 0 ? (const uint16_t *)jb->W.data + (size_t)row * K : NULL;
            acc[r] = _mm256_setzero_ps();
        }
        for (int j = 0; j < K8; j += 8) {
            __m256 xv = _mm256_loadu_ps(x + j);
            for (int r = 0; r < ROWS; r++)
                acc[r] = _mm256_fmadd_ps(load8(w[r], w16[r], j, kind), xv, acc[r]);
        }
        for (int r = 0; r < nr; r++) jb->out[i + r] = hsum8(acc[r]) + tail(w[r], w16[r], kind == 2, x, K8, K);
    }
}

static void rows_avx512(const rwkv_matvec_job *jb, int i0, int i1) {
    switch (jb->W.type) {
    case RWKV_DT_F32: rows512_f32(jb, i0, i1); break;
    case RWKV_DT_BF16: rows512_bf16(jb, i0, i1); break;
    case RWKV_DT_F16: rows512_f16(jb, i0, i1); break;
    case RWKV_DT_Q8_0: rows512_q8_0(jb, i0, i1); break;
    case RWKV_DT_I8:
        if (vnni) rows512_i8_vnni(jb, i0, i1);
        else rows512_i8(jb, i0, i1);
        break;
    default:
        if (rwkv_dtype_is_quant(jb->W.type)) rows512_blocks(jb, i0, i1);
        else rows_scalar(jb, i0, i1);
    }
}

__attribute__((target("avx2,fma,f16c")))
static void rows_avx2(const rwkv_matvec_job *jb, int i0, int i1) {
    switch (jb->W.type) {
    case RWKV_DT_F32: rows256(jb, i0, i1, 0); break;
    case RWKV_DT_BF16: rows256(jb, i0, i1, 1); break;
    case RWKV_DT_F16: rows256(jb, i0, i1, 2); break;
    default: rows_scalar(jb, i0, i1); // block types: widened per block
    }
}

// n weights widened to float: bf16 (a 16-bit shift of each zero-extended value) or fp16.
__attribute__((target("avx512f")))
static void widen512(float *out, const uint16_t *w, size_t n, const int f16) {
    size_t j = 0;
    for (; j + 16 <= n; j += 16) {
        __m256i h = _mm256_loadu_si256((const __m256i *)(w + j));
        _mm512_storeu_ps(out + j, f16 ? _mm512_cvtph_ps(h) : _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16)));
    }
    for (; j < n; j++) {
        uint16_t h;
        memcpy(&h, w + j, 2);
        out[j] = f16 ? rwkv_half_to_float(h) : bf16_to_f32(h);
    }
}
#endif

void rwkv_matvec_widen(rwkv_real *out, rwkv_mat W, int K, int r0, int n) {
    size_t row = rwkv_dtype_bytes(W.type, (size_t)K), count = (size_t)n * K;
    const unsigned char *src = (const unsigned char *)W.data + (size_t)r0 * row;
#if RWKV_REAL_BITS == 32
    if (pick() == PATH_AVX512 && (W.type == RWKV_DT_BF16 || W.type == RWKV_DT_F16)) {
        widen512(out, (const uint16_t *)src, count, W.type == RWKV_DT_F16);
        return;
    }
#endif
    if (rwkv_dtype_is_quant(W.type)) // row by row: a block never spans rows
        for (int r = 0; r < n; r++) rwkv_tensors_convert(out + (size_t)r * K, src + r * row, W.type, (size_t)K);
    else rwkv_tensors_convert(out, src, W.type, count);
}

// Float weights aligned for rwkv_real go to BLAS on the scalar path (mapped ones may not be).
static int blas_reads(const rwkv_mat *W) {
    return W->type == RWKV_DT_REAL && (uintptr_t)W->data % sizeof(rwkv_real) == 0;
}

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
    if (p == PATH_SCALAR) { // no SIMD kernel: float products through BLAS, the others scalar
        for (int q = 0; q < n_jobs; q++)
            if (blas_reads(&jobs[q].W)) rwkv_blas_matvec(jobs[q].out, jobs[q].W.data, jobs[q].x, jobs[q].N, jobs[q].K);
    }
    size_t weights = 0;
    for (int q = 0; q < n_jobs; q++) weights += (size_t)jobs[q].N * jobs[q].K;
#pragma omp parallel if (weights >= PAR_MIN_WEIGHTS)
    {
        int nt = omp_get_num_threads(), id = omp_get_thread_num();
        for (int q = 0; q < n_jobs; q++) { // each product split evenly: no barrier needed
            const rwkv_matvec_job *jb = &jobs[q];
            if (p == PATH_SCALAR && blas_reads(&jb->W)) continue;
            int share = ((jb->N + nt - 1) / nt + ROWS - 1) / ROWS * ROWS; // whole ROWS blocks
            int i0 = id * share, i1 = i0 + share < jb->N ? i0 + share : jb->N;
            if (i0 < i1) run_rows(p, jb, i0, i1);
        }
    }
}

void rwkv_matvec_rows(const rwkv_matvec_job *jb, int i0, int i1) {
    if (i0 < i1) run_rows(pick(), jb, i0, i1);
}

int rwkv_matvec_rows_ok(void) { return pick() != PATH_SCALAR; }

void rwkv_matvec(rwkv_real *out, rwkv_mat W, const rwkv_real *x, int N, int K) {
    rwkv_matvec_job jb = {out, W, x, N, K};
    rwkv_matvec_multi(&jb, 1);
}

void rwkv_matvec_bf16(rwkv_real *out, const uint16_t *W, const rwkv_real *x, int N, int K) {
    rwkv_matvec(out, (rwkv_mat){RWKV_DT_BF16, W}, x, N, K);
}

void rwkv_matvec_f32(rwkv_real *out, const rwkv_real *W, const rwkv_real *x, int N, int K) {
    rwkv_matvec(out, (rwkv_mat){RWKV_DT_REAL, W}, x, N, K);
}

const char *rwkv_matvec_bf16_path(void) {
    switch (pick()) {
    case PATH_AVX512: return "avx512";
    case PATH_AVX2: return "avx2";
    default: return "scalar";
    }
}
