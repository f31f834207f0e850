// forward.h: the RWKV-4 forward pass in its two modes.
//   sequential (RNN): one token at a time from the state, matrix-vector products;
//   parallel (GPT):   T tokens at once, every projection a GEMM over (T, C), the WKV a scan.
// Both run the same block code on a chunk of tokens, so they give the same numbers, and
// chunked runs that carry the state give the numbers of one long run.
#ifndef RWKV_FORWARD_H
#define RWKV_FORWARD_H

#include "../model/model.h"
#include "../model/state.h"

// Per-block taps, in the order the block computes them. Names match the goldens.
typedef enum {
    RWKV_TAP_RESID_IN, RWKV_TAP_ATT_IN, RWKV_TAP_ATT_R, RWKV_TAP_ATT_GATE, RWKV_TAP_ATT_K,
    RWKV_TAP_ATT_V, RWKV_TAP_ATT_WKV, RWKV_TAP_ATT_OUT, RWKV_TAP_FFN_IN, RWKV_TAP_FFN_GATE,
    RWKV_TAP_FFN_K, RWKV_TAP_FFN_OUT, RWKV_TAP_STATE_ATT_XPREV, RWKV_TAP_STATE_NUM,
    RWKV_TAP_STATE_DEN, RWKV_TAP_STATE_MAX, RWKV_TAP_STATE_FFN_XPREV,
    // RWKV-7 only (forward_v7.c): per-token decay, in-context learning rate, output gate,
    // the normalised removal key, layer 0's value, and the (H, N, N) matrix state.
    RWKV_TAP_ATT_W, RWKV_TAP_ATT_A, RWKV_TAP_ATT_G, RWKV_TAP_ATT_KK, RWKV_TAP_V_FIRST,
    RWKV_TAP_STATE_WKV,
    RWKV_TAP_N_BLOCK,
    RWKV_V4_BLOCK_TAPS = RWKV_TAP_ATT_W, // the block taps of an RWKV-4 model: resid_in .. state_ffn_xprev
    // Globals (layer index L in the hook): the final residual and the logits.
    RWKV_TAP_RESID_OUT = RWKV_TAP_N_BLOCK, RWKV_TAP_LOGITS,
    RWKV_TAP_N
} rwkv_tap;

extern const char *const RWKV_TAP_NAMES[RWKV_TAP_N]; // "resid_in", ..., "logits"
// Width of a tap's rows: C, F (ffn_k), V (logits) or H*N*N (state_wkv); 0 when the model's
// version has no such tap (att_gate in RWKV-7, att_w in RWKV-4, ...).
int rwkv_tap_width(rwkv_tap tap, rwkv_config cfg);
// 1 for the state_* taps.
int rwkv_tap_is_state(rwkv_tap tap);
// Parses "att_gate" etc.; -1 if unknown.
int rwkv_tap_from_name(const char *name);

// A hook sees every selected tap of every chunk: data (n, D) holds positions pos .. pos+n-1.
// It may change data (an intervention): a computed tap then affects the rest of the block.
// A state tap's row p is the state after token p: a change to the token-shift states
// (state_att_xprev, state_ffn_xprev) feeds token p + 1 and the last row is carried on; the
// WKV states (state_num, state_den, state_max) reach token p + 1 only where scan_cut says
// the hook changes them: the scan then stops after p and the hook sees those rows apart
// (several calls per chunk), with the GEMMs still over the whole chunk. A channel the hook
// leaves as it was keeps the scan's double value, so a no-op changes no bit. A non-OK return
// stops the pass.
typedef struct {
    const uint32_t *mask; // (L + 1) bit (1u << tap) per layer; mask[L] holds the global taps
    rwkv_status (*fn)(void *ctx, int layer, rwkv_tap tap, int64_t pos, int n, int D,
                      rwkv_real *data);
    void *ctx;
    int64_t pos; // position of the first token of this call within its sequence (caller sets)
    // Optional: 1 if fn may change a WKV state tap of layer at position pos (NULL: never).
    int (*scan_cut)(void *ctx, int layer, int64_t pos);
} rwkv_hook;

typedef enum { RWKV_LOGITS_NONE, RWKV_LOGITS_LAST, RWKV_LOGITS_ALL } rwkv_logits_mode;

// Scratch for a chunk of up to max_T tokens. Allocated once, reused by every call.
typedef struct {
    int max_T;
    rwkv_config cfg;
    rwkv_real *x;      // (T, C) the residual stream
    rwkv_real *xln;    // (T, C) ln1 / ln2 output
    rwkv_real *xk, *xv, *xr; // (T, C) token-shifted mixes
    rwkv_real *r, *k, *v;    // (T, C) projections; r becomes the gate
    rwkv_real *wkv;    // (T, C)
    rwkv_real *out;    // (T, C) att_out / ffn_out
    rwkv_real *fk;     // (T, F) ffn key, then relu^2
    rwkv_real *tr_num, *tr_den, *tr_max; // (T, C) per-token state, only when tapped
    rwkv_real *tr_xprev; // (T, C) token-shift state per token as a hook left it
    double *carry;     // (3, C) WKV state (num, den, max) between the scan's stops
    rwkv_real *xlast;  // (C) ln_out of one row
    rwkv_real *logit_row; // (V) logits of one row when tapped but not returned
    struct rwkv_v7_scratch *v7; // RWKV-7 buffers (forward_v7.c), NULL for RWKV-4
    rwkv_real *tile;   // (RWKV_TILE_FLOATS) rows of a typed matrix widened for a GEMM (parallel
                       // mode without float matrices); NULL when max_T == 1
    rwkv_real *lanes;  // (n_lanes, 4, C) per thread of a hook-free sequential token: its ln
    int n_lanes;       // output and token-shift mixes (forward.c's one-region path)
} rwkv_workspace;

// Floats widened per GEMM (16 MiB): a whole C x C matrix up to C = 2048, else as many rows
// as fit; a GEMM of (T, rows, K) then runs near the speed of one over the whole matrix.
#define RWKV_TILE_FLOATS (1 << 22)

rwkv_status rwkv_workspace_alloc(rwkv_workspace **out, rwkv_config cfg, int max_T);
void rwkv_workspace_free(rwkv_workspace *ws);
// out (n, N) = x (n, K) @ V^T for a typed view V (N, K), n > 1: as many rows as
// RWKV_TILE_FLOATS holds at a time widened into ws->tile, each tile one GEMM into its columns
// of out. An aligned float view goes to BLAS as it is; an unaligned one (rwkv.cpp files pack
// tensors without padding) is copied into the tile like any other type.
void rwkv_gemm_view(rwkv_workspace *ws, rwkv_real *out, const rwkv_real *x, const rwkv_mat *V, int n, int N, int K);

// Runs T tokens from `state` (updated to the state after the last token).
// logits: (T, V) for ALL, (V) for LAST, unused for NONE. hook may be NULL.
// Sequential mode steps token by token, reading the matrices' views (m->mats); parallel mode
// processes chunks of ws->max_T tokens with GEMMs over the float block, or, when the model
// holds no float matrices, over tiles of a view's rows widened into ws->tile.
rwkv_status rwkv_forward_seq(const rwkv_model *m, rwkv_state *state, const int *tokens, int64_t T,
                             rwkv_real *logits, rwkv_logits_mode mode, rwkv_hook *hook,
                             rwkv_workspace *ws);
rwkv_status rwkv_forward_par(const rwkv_model *m, rwkv_state *state, const int *tokens, int64_t T,
                             rwkv_real *logits, rwkv_logits_mode mode, rwkv_hook *hook,
                             rwkv_workspace *ws);

// Runs T tokens from `state` with a workspace of its own (parallel mode in chunks of up to
// RWKV_FORWARD_RUN_CHUNK tokens, or sequential mode), no logits: for one-off runs that read
// the state after the input or taps through hook (may be NULL).
#define RWKV_FORWARD_RUN_CHUNK 512
rwkv_status rwkv_forward_run(const rwkv_model *m, rwkv_state *state, const int *tokens, int64_t T, int seq,
                             rwkv_hook *hook);

#endif
