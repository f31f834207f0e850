// matvec.h: matrix-vector products for the sequential path, fp32 or bf16 weights with
// fp32 compute, AVX-512 or AVX2 chosen at runtime.
// A bf16 value widened by a 16-bit shift is exactly a float, so results equal fp32
// compute on the same (bf16-valued) weights, up to summation order.
// One token reads every weight once, so the products are memory bound: the kernels stream
// rows and keep x in cache, and several products share one parallel region (each region
// costs a wake-up and a barrier, which dominate on a loaded machine).
#ifndef RWKV_MATVEC_H
#define RWKV_MATVEC_H

#include "../base/base.h"

// One product out (N) = W (N, K) @ x (K); W16 (bf16) is used instead of W when not NULL.
typedef struct {
    rwkv_real *out;      // (N)
    const rwkv_real *W;  // (N, K) fp32 weights, or NULL when W16 is set
    const uint16_t *W16; // (N, K) bf16 weights, or NULL
    const rwkv_real *x;  // (K)
    int N, K;
} rwkv_matvec_job;

// Runs independent products in one parallel region (outputs must not overlap inputs).
void rwkv_matvec_multi(const rwkv_matvec_job *jobs, int n_jobs);
// out (N) = W (N, K) @ x (K), W in bf16.
void rwkv_matvec_bf16(rwkv_real *out, const uint16_t *W, const rwkv_real *x, int N, int K);
// out (N) = W (N, K) @ x (K) in fp32.
void rwkv_matvec_f32(rwkv_real *out, const rwkv_real *W, const rwkv_real *x, int N, int K);
// Which path the kernels take on this CPU: "avx512", "avx2" or "scalar".
const char *rwkv_matvec_bf16_path(void);

#endif
