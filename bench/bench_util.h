// bench_util.h: timing, medians and peak RSS for the benchmarks (header-only, static).
#ifndef RWKV_BENCH_UTIL_H
#define RWKV_BENCH_UTIL_H

#include "core/compute/forward.h"

#include <immintrin.h>
#include <omp.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <time.h>

static double bench_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static int bench_cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

// Median of n samples (sorts them in place).
static double bench_median(double *v, int n) {
    qsort(v, (size_t)n, sizeof *v, bench_cmp_double);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

// Peak resident set of this process in MiB.
static double bench_peak_rss_mib(void) {
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return ru.ru_maxrss / 1024.0;
}

// Sum of a[0, n) with AVX-512 loads and four independent accumulators, so the loop is
// limited by memory, not by the latency of one add chain.
__attribute__((target("avx512f")))
static inline float bench_sum_avx512(const float *a, size_t n) {
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

static inline float bench_sum_plain(const float *a, size_t n) {
    float s[8] = {0};
    size_t i = 0;
    for (; i + 8 <= n; i += 8)
        for (int j = 0; j < 8; j++) s[j] += a[i + j];
    for (; i < n; i++) s[0] += a[i];
    return s[0] + s[1] + s[2] + s[3] + s[4] + s[5] + s[6] + s[7];
}

#define BW_PASSES 3 // reads per bandwidth round; the fastest counts (as STREAM reports)

// GB/s of the fastest of `passes` reads of the whole array, every thread summing its
// contiguous share. The array is 4x the weights and beyond the caches: this is DRAM.
static inline double bench_read_bandwidth(const float *a, size_t n, int passes) {
    int avx512 = __builtin_cpu_supports("avx512f");
    double best = 0;
    for (int p = 0; p < passes; p++) {
        float total = 0;
        double t0 = bench_now();
#pragma omp parallel reduction(+ : total)
        {
            size_t nt = (size_t)omp_get_num_threads(), id = (size_t)omp_get_thread_num();
            size_t i0 = n * id / nt, i1 = n * (id + 1) / nt;
            total += avx512 ? bench_sum_avx512(a + i0, i1 - i0) : bench_sum_plain(a + i0, i1 - i0);
        }
        double gbs = n * sizeof(float) / (bench_now() - t0) / 1e9;
        volatile float sink = total; // keep the sum alive
        (void)sink;
        if (gbs > best) best = gbs;
    }
    return best;
}

// ms per token over n sequential tokens; -1 on an engine error.
static inline double bench_seq_ms(const rwkv_model *m, rwkv_workspace *ws, rwkv_state *s, rwkv_real *logits, int n) {
    double t0 = bench_now();
    for (int i = 0; i < n; i++) {
        int tok = (i * 7919) % m->cfg.n_vocab;
        if (rwkv_forward_seq(m, s, &tok, 1, logits, RWKV_LOGITS_LAST, NULL, ws)) return -1;
    }
    return (bench_now() - t0) / n * 1e3;
}

// tokens/s of one parallel call over T tokens from the zero state; -1 on an engine error.
static inline double bench_par_tps(const rwkv_model *m, rwkv_workspace *ws, rwkv_state *s, const int *tok, int T,
                                   rwkv_real *logits) {
    rwkv_state_reset(s);
    double t0 = bench_now();
    if (rwkv_forward_par(m, s, tok, T, logits, RWKV_LOGITS_LAST, NULL, ws)) return -1;
    return T / (bench_now() - t0);
}

#endif
