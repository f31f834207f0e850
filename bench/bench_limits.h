// bench_limits.h: this machine's measured limits for the engine benchmarks: DRAM read
// bandwidth and sgemm throughput (header-only, static).
#ifndef RWKV_BENCH_LIMITS_H
#define RWKV_BENCH_LIMITS_H

#include "bench_util.h"

#include <cblas.h>
#include <immintrin.h>
#include <omp.h>
#include <stddef.h>

#define BW_PASSES 3   // reads per round; the fastest counts (as STREAM reports)
#define SGEMM_REPS 20 // sgemm calls timed per round

// Sum of a[0, n) with AVX-512 loads and four independent accumulators, so the loop is
// limited by memory, not by the latency of one add chain.
__attribute__((target("avx512f")))
static float sum_avx512(const float *a, size_t n) {
    __m512 s0 = _mm512_setzero_ps(), s1 = s0, s2 = s0, s3 = s0;
    size_t i = 0;
    for (; i + 64 <= n; i += 64) {
        s0 = _mm512_add_ps(s0, _mm512_loadu_ps(a + i));
        s1 = _mm512_add_ps(s1, _mm512_loadu_ps(a + i + 16));
        s2 = _mm512_add_ps(s2, _mm512_loadu_ps(a + i + 32));
        s3 = _mm512_add_ps(s3, _mm512_loadu_ps(a + i + 48));
    }
    float sum = _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(s0, s1), _mm512_add_ps(s2, s3)));
    for (; i < n; i++) sum += a[i];
    return sum;
}

static float sum_plain(const float *a, size_t n) {
    float s[8] = {0};
    size_t i = 0;
    for (; i + 8 <= n; i += 8)
        for (int j = 0; j < 8; j++) s[j] += a[i + j];
    for (; i < n; i++) s[0] += a[i];
    return s[0] + s[1] + s[2] + s[3] + s[4] + s[5] + s[6] + s[7];
}

// GB/s of the fastest of BW_PASSES reads of the whole array, every thread summing its
// contiguous share. The array is 4x the weights and beyond the caches: this is DRAM.
static double read_bandwidth(const float *a, size_t n) {
    int avx512 = __builtin_cpu_supports("avx512f");
    double best = 0;
    for (int p = 0; p < BW_PASSES; p++) {
        float total = 0;
        double t0 = bench_now();
#pragma omp parallel reduction(+ : total)
        {
            size_t nt = (size_t)omp_get_num_threads(), id = (size_t)omp_get_thread_num();
            size_t i0 = n * id / nt, i1 = n * (id + 1) / nt;
            total += avx512 ? sum_avx512(a + i0, i1 - i0) : sum_plain(a + i0, i1 - i0);
        }
        double gbs = n * sizeof(float) / (bench_now() - t0) / 1e9;
        volatile float sink = total; // keep the sum alive
        (void)sink;
        if (gbs > best) best = gbs;
    }
    return best;
}

// sgemm GFLOP/s at M=512, N=K=768, the shape of a T=512 projection.
static double sgemm_gflops(const float *a, const float *b, float *c) {
    int M = 512, N = 768, K = 768;
    double t0 = bench_now();
    for (int q = 0; q < SGEMM_REPS; q++)
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, M, N, K, 1, a, K, b, K, 0, c, N);
    return 2.0 * M * N * K * SGEMM_REPS / (bench_now() - t0) / 1e9;
}

#endif
