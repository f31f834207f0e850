// bench_limits.h: this machine's measured limits for the engine benchmarks beside bench_util.h's
// DRAM read bandwidth: sgemm throughput (header-only, static).
#ifndef RWKV_BENCH_LIMITS_H
#define RWKV_BENCH_LIMITS_H

#include "bench_util.h"

#include <cblas.h>
#include <omp.h>
#include <stddef.h>

#define SGEMM_REPS 20 // sgemm calls timed per round

// sgemm GFLOP/s at M=512, N=K=768, the shape of a T=512 projection.
static inline double sgemm_gflops(const float *a, const float *b, float *c) {
    int M = 512, N = 768, K = 768;
    double t0 = bench_now();
    for (int q = 0; q < SGEMM_REPS; q++)
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, M, N, K, 1, a, K, b, K, 0, c, N);
    return 2.0 * M * N * K * SGEMM_REPS / (bench_now() - t0) / 1e9;
}

#endif
