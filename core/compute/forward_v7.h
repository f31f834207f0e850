// forward_v7.h: the RWKV-7 ("Goose", x070) block. forward.c's driver runs it in place of the
// RWKV-4 time mix and channel mix (same embedding, head, chunking and hooks), so both modes and
// chunked runs share one code path as for RWKV-4.
//
// Per head h (N = head size) the state is a matrix S (N, N), S[i][j] with i a value channel and
// j a key channel. Per token, with w the decay, kk the unit removal key, a the in-context rate:
//   S = S diag(w) - (S kk) (kk * a)^T + v k^T,   y = S r
// then a GroupNorm per head, the bonus (sum_j r_j k_j r_k_j) v, the gate g and the output.
#ifndef RWKV_FORWARD_V7_H
#define RWKV_FORWARD_V7_H

#include "forward.h"

struct rwkv_v7_scratch;

rwkv_status rwkv_v7_scratch_alloc(struct rwkv_v7_scratch **out, rwkv_config cfg, int max_T);
void rwkv_v7_scratch_free(struct rwkv_v7_scratch *s);
// rwkv_tap_width for an RWKV-7 config.
int rwkv_v7_tap_width(rwkv_tap tap, rwkv_config cfg);

// One chunk of n tokens at positions pos .. pos+n-1 (forward.c's driver fills it).
typedef struct {
    const rwkv_model *m;
    rwkv_workspace *ws;
    rwkv_hook *hook;
    int n;
    int64_t pos;
} rwkv_v7_chunk;

// Block `layer` on ws->x (n, C) in place: time mix then channel mix, updating s.
rwkv_status rwkv_v7_block(const rwkv_v7_chunk *c, int layer, rwkv_state *s);

// The delta-rule scan for H heads over n tokens, all (n, C) rows with C = H*N; S (H, N, N)
// is updated in place; y (n, C) = S r after each token; trace (n, H*N*N) gets S after each
// token when not NULL.
void rwkv_v7_wkv(rwkv_real *y, rwkv_real *S, rwkv_real *trace, const rwkv_real *r, const rwkv_real *w,
                 const rwkv_real *k, const rwkv_real *v, const rwkv_real *kk, const rwkv_real *a, int n,
                 int H, int N);

#endif
