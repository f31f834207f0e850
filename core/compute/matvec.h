// matvec.h: matrix-vector products for the sequential path: weights in their stored type
// (fp32, fp16, bf16, or ggml blocks Q4_0..Q8_0), fp32 compute (rwkv_real in PRECISION=64),
// AVX-512 or AVX2 chosen at runtime.
// A bf16 or fp16 value widens exactly to a float, and a block weight is q*d (+ m) computed in
// float, so results equal fp32 compute on the same weights, up to summation order.
// One token reads every weight once, so the products are memory bound: the kernels stream
// rows and keep x in cache, and several products share one parallel region (each region
// costs a wake-up and a barrier, which dominate on a loaded machine).
#ifndef RWKV_MATVEC_H
#define RWKV_MATVEC_H

#include "../formats/tensors.h"

// One product out (N) = W (N, K) @ x (K).
typedef struct {
    rwkv_real *out;     // (N)
    rwkv_mat W;         // (N, K); a block type needs K a multiple of RWKV_DT_QK
    const rwkv_real *x; // (K)
    int N, K;
} rwkv_matvec_job;

// Runs independent products in one parallel region (outputs must not overlap inputs).
void rwkv_matvec_multi(const rwkv_matvec_job *jobs, int n_jobs);
// Rows [i0, i1) of one product on the calling thread, for callers that split the rows of
// their products between the threads of their own parallel region: every row gets the
// numbers rwkv_matvec gives it, whichever thread computes it. Needs rwkv_matvec_rows_ok().
void rwkv_matvec_rows(const rwkv_matvec_job *jb, int i0, int i1);
// 1 when the kernels take a SIMD path, which rwkv_matvec_rows may run on several threads at
// once; 0 on the scalar path (float products then go to BLAS, which threads itself).
int rwkv_matvec_rows_ok(void);
// out (n, K) = rows [r0, r0 + n) of W (rows of K weights) widened to rwkv_real, on the
// calling thread (the tiles of parallel mode's GEMMs over typed weights): exact for fp16,
// bf16 and fp32, the format's q d (+ m) for the block types.
void rwkv_matvec_widen(rwkv_real *out, rwkv_mat W, int K, int r0, int n);
// out (N) = W (N, K) @ x (K), W in bf16.
void rwkv_matvec_bf16(rwkv_real *out, const uint16_t *W, const rwkv_real *x, int N, int K);
// out (N) = W (N, K) @ x (K) in fp32.
void rwkv_matvec_f32(rwkv_real *out, const rwkv_real *W, const rwkv_real *x, int N, int K);
// out (N) = W (N, K) @ x (K), W of any type.
void rwkv_matvec(rwkv_real *out, rwkv_mat W, const rwkv_real *x, int N, int K);
// Which path the kernels take on this CPU: "avx512", "avx2" or "scalar".
const char *rwkv_matvec_bf16_path(void);

#endif
