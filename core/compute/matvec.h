// matvec.h: matrix-vector products over bf16 weights with fp32 compute.
// A bf16 value widened by a 16-bit shift is exactly a float, so results equal fp32
// compute on the same (bf16-valued) weights, up to summation order.
#ifndef RWKV_MATVEC_H
#define RWKV_MATVEC_H

#include "../base/base.h"

// out (N) = W (N, K) @ x (K), W in bf16. Picks AVX-512, AVX2 or scalar at runtime.
void rwkv_matvec_bf16(rwkv_real *out, const uint16_t *W, const rwkv_real *x, int N, int K);
// out (N) = W (N, K) @ x (K) in fp32: a streaming AVX-512 kernel where available, else BLAS.
void rwkv_matvec_f32(rwkv_real *out, const rwkv_real *W, const rwkv_real *x, int N, int K);
// Which path rwkv_matvec_bf16 takes on this CPU: "avx512", "avx2" or "scalar".
const char *rwkv_matvec_bf16_path(void);

#endif
