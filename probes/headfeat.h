// headfeat.h: probe features from one head's matrix state. A state_wkv row is (H, N, N),
// S[h][i][j] row-major (i a value channel, j a key channel; docs/dump-format.md). A head's
// features are its N*N entries as stored, or the top-k singular triplets of S[h] = U diag(s) V^T:
//   [s_1 .. s_k, u_1 (N) .. u_k (N), v_1 (N) .. v_k (N)]   (k (2N + 1) values, s descending)
// with each pair (u_i, v_i) signed so that the entry of u_i of largest magnitude (the first
// on ties) is positive: the SVD leaves that sign free, a probe should not see it flip.
#ifndef RWKV_HEADFEAT_H
#define RWKV_HEADFEAT_H

#include "../core/base/base.h"

// Columns of one head's features: N*N (k = 0) or k (2N + 1).
int rwkv_headfeat_width(int N, int k);
// out (rows, rwkv_headfeat_width(N, k)) from X (rows, H*N*N): head `head`'s block, or its
// top-k singular triplets (1 <= k <= N). Rows run in parallel (OpenMP).
rwkv_status rwkv_headfeat_extract(rwkv_real *out, const rwkv_real *X, int64_t rows, int H, int N, int head,
                                  int k);

#endif
