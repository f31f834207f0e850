// blas.h: the CBLAS calls of the engine at the build's precision, and the OpenBLAS
// core-type check (Debian's 0.3.21 mistakes recent Xeons for Prescott and runs 9x slow).
#ifndef RWKV_BLAS_H
#define RWKV_BLAS_H

#include "../base/base.h"

// out (M, N) = a (M, K) @ b(N, K)^T  [+ out if accumulate]: x @ W^T with W row-major (out, in).
void rwkv_blas_matmul_nt(rwkv_real *out, const rwkv_real *a, const rwkv_real *b, int M, int N,
                         int K, int accumulate);
// out (N) = W (N, K) @ x (K)
void rwkv_blas_matvec(rwkv_real *out, const rwkv_real *W, const rwkv_real *x, int N, int K);
// General GEMM: out (M,N) = alpha op(a) op(b) + beta out, row-major, ta/tb = 0 or 1 transpose.
void rwkv_blas_gemm(int ta, int tb, int M, int N, int K, rwkv_real alpha, const rwkv_real *a,
                    int lda, const rwkv_real *b, int ldb, rwkv_real beta, rwkv_real *out, int ldo);

// Re-executes the program once with OPENBLAS_CORETYPE set when the user has not set it and
// OpenBLAS picked a core slower than the CPU supports, with GOMP_SPINCOUNT=3000 (a short
// busy-wait) when neither it nor OMP_WAIT_POLICY is set, and with OPENBLAS_THREAD_TIMEOUT=16
// (OpenBLAS workers sleep after ~25 us) unless set. Call first thing in main().
void rwkv_blas_ensure_coretype(int argc, char **argv);
// The core OpenBLAS runs, e.g. "SkylakeX", and how it was chosen (for info and bench).
const char *rwkv_blas_corename(void);
const char *rwkv_blas_core_note(void); // "auto-selected (OpenBLAS detected Prescott)", ...

#endif
