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

// Block `layer` on ws->x (n, C) in place: time mix then channel mix, updating s. RWKV-5.2
// models run rwkv_v5_block (forward_v5.c).
rwkv_status rwkv_v7_block(const rwkv_v7_chunk *c, int layer, rwkv_state *s);
rwkv_status rwkv_v5_block(const rwkv_v7_chunk *c, int layer, rwkv_state *s);
// The end of the RWKV-5.2/6 time mix, from r, k, v in the workspace: the scan with decay rows
// w_rows (advancing by w_stride per token: 0 for RWKV-5.2, C for RWKV-6), the att_wkv tap, the
// GroupNorm per head (eps), times the gate g (n, C), the output projection into x (att_out).
rwkv_status rwkv_v5_scan_out(const rwkv_v7_chunk *c, int l, rwkv_state *state, const rwkv_real *w_rows,
                             size_t w_stride, const rwkv_real *g, double eps);
// RWKV-6: RWKV-5.2's block with data-dependent token-shift mixes and decay (forward_v6.c).
rwkv_status rwkv_v6_block(const rwkv_v7_chunk *c, int layer, rwkv_state *s);

// Shared by the blocks (rwkv_token_shift, rwkv_v7_tap and the chunk also by RWKV-4's):
// A (T, C) workspace buffer the RWKV-5.2 block may use.
rwkv_real *rwkv_v7_rows(const rwkv_v7_chunk *c);
// The RWKV-7 scratch (forward_v7.c) the RWKV-6 block borrows: eight (T, C) buffers and three
// (T, n_lora) ones, in the order of the arguments; any may be NULL.
void rwkv_v7_scratch_rows(const rwkv_v7_chunk *c, rwkv_real **rows_tc, rwkv_real **rows_tl);
// x = tanh(x), n elements (threads share a long array).
void rwkv_v7_tanh(rwkv_real *x, size_t n);
// 1 if the chunk's hook wants tap t of layer; rwkv_v7_tap calls it on data (n, D).
int rwkv_v7_tapped(const rwkv_v7_chunk *c, int layer, rwkv_tap tap);
rwkv_status rwkv_v7_tap(const rwkv_v7_chunk *c, int layer, rwkv_tap t, rwkv_real *data);
// The token shifts of ws->xln (n, C) from xprev, which becomes the last row (every version's
// blocks): out[q] = the mix with mix[q]. The hook on state tap t sees each row as the shift
// state after its token (a copy): a row it changes is the x_{t-1} of the next token, whose
// mixes are recomputed; the rest of the chunk is untouched. A NULL mix[q] makes out[q] the
// difference x_{t-1} - x_t.
rwkv_status rwkv_token_shift(const rwkv_v7_chunk *c, int l, rwkv_tap t, rwkv_real *const *out,
                             const rwkv_real *const *mix, int n_mix, rwkv_real *xprev);
// Runs scan(ctx, t0, t1, trace rows of t0 or NULL) over the chunk. When state_wkv is tapped the
// scan stops after every row where the hook's scan_cut says it may change the state: the hook
// sees the rows so far, and its last row becomes S (H, N, N) for the next row.
rwkv_status rwkv_v7_scan(const rwkv_v7_chunk *c, int l, rwkv_real *S,
                         void (*scan)(void *ctx, int t0, int t1, rwkv_real *trace), void *ctx);
// One projection: out (n, N) = x (n, K) @ W^T, W row-major (N, K): a float matrix W (NULL
// when the block holds none), V its typed view (NULL for the float-only LoRA factors).
typedef struct {
    rwkv_real *out;
    const rwkv_real *x, *W;
    int N, K;
    const rwkv_mat *V;
} rwkv_v7_product;
// The projection out = x @ W^T by layer l's viewed matrix `which` (an rwkv_v7_view).
rwkv_v7_product rwkv_v7_matrix(const rwkv_v7_chunk *c, rwkv_real *out, const rwkv_real *x, int which, int l);
// Independent projections: one GEMM each for a chunk (float matrices as they are, typed
// views widened tile by tile), one parallel region of matrix-vector kernels on the views for
// a single token (at most 7).
void rwkv_v7_products(const rwkv_v7_chunk *c, const rwkv_v7_product *p, int n_products);
// The channel mix: x += W_v relu(W_k x'_k)^2, x' = the ln2 output token-shifted; RWKV-5.2
// (ffn_receptance set) gates it by sigmoid(W_r x'_r), as RWKV-4.
rwkv_status rwkv_v7_channel_mix(const rwkv_v7_chunk *c, int l, rwkv_state *s);
// y (n, C) = GroupNorm over each head's N channels (biased variance, eps) * ln_w + ln_b.
void rwkv_v7_group_norm(rwkv_real *y, const rwkv_real *ln_w, const rwkv_real *ln_b, int n, int C, int N, double eps);

// The RWKV-5.2/6 scan for H heads over n tokens, rows (n, C): per head y_i = sum_j r_j (u_j k_j v_i
// + S_ij), then S_ij = v_i k_j + w_j S_ij, with the decay row w advancing by w_stride per token
// (0 for RWKV-5.2's fixed decay, C for RWKV-6's). S (H, N, N), trace as rwkv_v7_wkv's.
void rwkv_v5_wkv(rwkv_real *y, rwkv_real *S, rwkv_real *trace, const rwkv_real *r, const rwkv_real *k,
                 const rwkv_real *v, const rwkv_real *w, size_t w_stride, const rwkv_real *u, int n, int H, int N);
// The delta-rule scan for H heads over n tokens, all (n, C) rows with C = H*N; S (H, N, N)
// is updated in place; y (n, C) = S r after each token; trace (n, H*N*N) gets S after each
// token when not NULL (written fastest from a 64-byte boundary, as the workspace's). From 16 tokens on the scan runs on S^T (no horizontal sums; it sums
// in another order than the per-row kernel of shorter calls).
void rwkv_v7_wkv(rwkv_real *y, rwkv_real *S, rwkv_real *trace, const rwkv_real *r, const rwkv_real *w,
                 const rwkv_real *k, const rwkv_real *v, const rwkv_real *kk, const rwkv_real *a, int n,
                 int H, int N);

#endif
