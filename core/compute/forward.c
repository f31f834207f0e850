// forward.c: one block code path for both modes; the modes differ only in chunk size
// (1 token with matrix-vector products, or up to max_T tokens with GEMMs).
#include "forward.h"
#include "forward_v7.h"

#include "blas.h"
#include "kernels.h"
#include "matvec.h"
#include "wkv.h"
#include "../formats/tensors.h"

#include <assert.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#define RWKV_MAX_PRODUCTS 3 // projections sharing one call of linear(): time-mix r, k, v
#define LANE_VECS 4 // C-wide vectors per thread in ws->lanes: ln output, mixes k, v, r
#define SPLIT RWKV_WKV_BLOCK // rows per unit of work of the one-region path: a WKV block and
                             // a multiple of every vector width, so each channel meets the
                             // instructions it meets on one thread
#define PAR_MIN_LAYER_WEIGHTS (1 << 18) // a token of smaller layers stays on one thread

const char *const RWKV_TAP_NAMES[RWKV_TAP_N] = {
    "resid_in", "att_in", "att_r", "att_gate", "att_k", "att_v", "att_wkv", "att_out",
    "ffn_in", "ffn_gate", "ffn_k", "ffn_out", "state_att_xprev", "state_num", "state_den",
    "state_max", "state_ffn_xprev", "att_w", "att_a", "att_g", "att_kk", "v_first", "state_wkv",
    "resid_out", "logits"};

int rwkv_tap_width(rwkv_tap tap, rwkv_config cfg) {
    if (RWKV_HAS_HEADS(cfg)) return rwkv_v7_tap_width(tap, cfg);
    if (tap >= RWKV_TAP_ATT_W && tap <= RWKV_TAP_STATE_WKV) return 0;
    if (tap == RWKV_TAP_FFN_K) return cfg.n_ffn;
    if (tap == RWKV_TAP_LOGITS) return cfg.n_vocab;
    return cfg.n_embd;
}

int rwkv_tap_is_state(rwkv_tap tap) {
    return (tap >= RWKV_TAP_STATE_ATT_XPREV && tap <= RWKV_TAP_STATE_FFN_XPREV) || tap == RWKV_TAP_STATE_WKV;
}

int rwkv_tap_from_name(const char *name) {
    for (int i = 0; i < RWKV_TAP_N; i++)
        if (!strcmp(name, RWKV_TAP_NAMES[i])) return i;
    return -1;
}

rwkv_status rwkv_workspace_alloc(rwkv_workspace **out, rwkv_config cfg, int max_T) {
    *out = NULL;
    if (max_T < 1) return rwkv_error_set(RWKV_ERR_ARG, "workspace needs max_T >= 1, got %d", max_T);
    rwkv_workspace *ws = rwkv_calloc(1, sizeof *ws, "workspace");
    if (!ws) return RWKV_ERR_NOMEM;
    ws->max_T = max_T;
    ws->cfg = cfg;
    size_t tc = (size_t)max_T * cfg.n_embd;
    rwkv_real **bufs[] = {&ws->x, &ws->xln, &ws->xk, &ws->xv, &ws->xr, &ws->r, &ws->k, &ws->v,
                          &ws->wkv, &ws->out, &ws->tr_num, &ws->tr_den, &ws->tr_max, &ws->tr_xprev};
    for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++)
        if (!(*bufs[i] = rwkv_calloc(tc, sizeof(rwkv_real), "workspace"))) goto fail;
    if (!(ws->fk = rwkv_calloc((size_t)max_T * cfg.n_ffn, sizeof(rwkv_real), "workspace"))) goto fail;
    if (!(ws->xlast = rwkv_calloc((size_t)cfg.n_embd, sizeof(rwkv_real), "workspace"))) goto fail;
    if (!(ws->logit_row = rwkv_calloc((size_t)cfg.n_vocab, sizeof(rwkv_real), "workspace"))) goto fail;
    if (!(ws->carry = rwkv_calloc(3 * (size_t)cfg.n_embd, sizeof(double), "workspace"))) goto fail;
    if (RWKV_HAS_HEADS(cfg) && rwkv_v7_scratch_alloc(&ws->v7, cfg, max_T)) goto fail;
    size_t wide = (size_t)(cfg.n_ffn > cfg.n_embd ? cfg.n_ffn : cfg.n_embd);
    size_t tile = wide > RWKV_TILE_FLOATS ? wide : RWKV_TILE_FLOATS; // at least one row
    if (max_T > 1 && !(ws->tile = rwkv_calloc_huge(tile, sizeof(rwkv_real), "workspace"))) goto fail; // widened, then read by sgemm
    ws->n_lanes = omp_get_max_threads();
    if (!(ws->lanes = rwkv_calloc((size_t)ws->n_lanes * LANE_VECS * cfg.n_embd, sizeof(rwkv_real), "workspace")))
        goto fail;
    *out = ws;
    return RWKV_OK;
fail:
    rwkv_workspace_free(ws);
    return RWKV_ERR_NOMEM;
}

void rwkv_workspace_free(rwkv_workspace *ws) {
    if (!ws) return;
    rwkv_real *bufs[] = {ws->x, ws->xln, ws->xk, ws->xv, ws->xr, ws->r, ws->k, ws->v,
                         ws->wkv, ws->out, ws->tr_num, ws->tr_den, ws->tr_max, ws->fk, ws->xlast, ws->logit_row,
                         ws->tr_xprev, ws->tile, ws->lanes};
    for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++) free(bufs[i]);
    free(ws->carry);
    rwkv_v7_scratch_free(ws->v7);
    free(ws);
}

// What one chunk needs besides the model (every version's blocks take it; its taps go
// through rwkv_v7_tap).
typedef rwkv_v7_chunk chunk;

// Rows [t0, t0 + n) of a tapped state (C wide) of the chunk.
static rwkv_status tap_rows(const chunk *c, int layer, rwkv_tap t, int t0, int n, rwkv_real *rows) {
    return c->hook->fn(c->hook->ctx, layer, t, c->pos + t0, n, c->m->cfg.n_embd, rows);
}

// 1 if the hook may change the WKV state of layer after the chunk's row t.
static int scan_cut(const chunk *c, int layer, int t) {
    return c->hook && c->hook->scan_cut && c->hook->scan_cut(c->hook->ctx, layer, c->pos + t);
}

// One projection of a chunk: out (n, N) = x (n, K) @ W^T; W is the float matrix (NULL when
// the model holds none), V its typed view.
typedef struct {
    rwkv_real *out;
    const rwkv_real *x;
    const rwkv_real *W;
    const rwkv_mat *V;
    int N, K;
} product;

void rwkv_gemm_view(rwkv_workspace *ws, rwkv_real *out, const rwkv_real *x, const rwkv_mat *V, int n, int N, int K) {
    if (V->type == RWKV_DT_REAL && (uintptr_t)V->data % sizeof(rwkv_real) == 0) { // a mapped float file
        rwkv_blas_matmul_nt(out, x, V->data, n, N, K, 0);
        return;
    }
    int rows = RWKV_TILE_FLOATS / K > 0 ? RWKV_TILE_FLOATS / K : 1;
    for (int r0 = 0; r0 < N; r0 += rows) {
        int nr = N - r0 < rows ? N - r0 : rows;
        rwkv_real *tile = ws->tile;
#pragma omp parallel
        { // each thread widens its share of the tile's rows
            int nt = omp_get_num_threads(), id = omp_get_thread_num();
            int a = (int)((int64_t)nr * id / nt), b = (int)((int64_t)nr * (id + 1) / nt);
            rwkv_matvec_widen(tile + (size_t)a * K, *V, K, r0 + a, b - a);
        }
        rwkv_blas_gemm(0, 1, n, nr, K, 1, x, K, tile, K, 0, out + r0, N); // x tile^T
    }
}

static void gemm_tiled(const chunk *c, const product *p) {
    rwkv_gemm_view(c->ws, p->out, p->x, p->V, c->n, p->N, p->K);
}

// Independent projections of one chunk. A single token runs them all in one parallel
// region of streaming matrix-vector kernels over the typed views; a longer chunk runs one
// GEMM each.
static void linear(const chunk *c, const product *p, int n_products) {
    if (c->n > 1) {
        for (int i = 0; i < n_products; i++) {
            if (p[i].W) rwkv_blas_matmul_nt(p[i].out, p[i].x, p[i].W, c->n, p[i].N, p[i].K, 0);
            else gemm_tiled(c, &p[i]);
        }
        return;
    }
    rwkv_matvec_job jobs[RWKV_MAX_PRODUCTS];
    assert(n_products <= RWKV_MAX_PRODUCTS);
    for (int i = 0; i < n_products; i++) jobs[i] = (rwkv_matvec_job){p[i].out, *p[i].V, p[i].x, p[i].N, p[i].K};
    rwkv_matvec_multi(jobs, n_products);
}

// Layer l's float matrix of a field (NULL when the block holds none), and its view.
#define WF(field, l, stride) (w->field ? w->field + (size_t)(l) * (stride) : NULL)
#define MV(field, l) (&c->m->mats.field[l])

// A traced row after the hook: channels it changed (bitwise) replace the double state.
static void merge_row(double *state, const rwkv_real *row, int C) {
    for (int j = 0; j < C; j++) {
        rwkv_real was = (rwkv_real)state[j];
        if (memcmp(&was, &row[j], sizeof was)) state[j] = row[j];
    }
}

// The WKV scan of the chunk, stopping after every row where the hook may change the state
// (scan_cut): the traced rows so far go to the hook, and its changes carry into the next row.
// The state stays in double across stops, so the stops alone change no number.
static rwkv_status wkv_scan(const chunk *c, int l, rwkv_state *s) {
    rwkv_workspace *ws = c->ws;
    const int n = c->n, C = c->m->cfg.n_embd;
    const size_t lc = (size_t)l * C;
    const rwkv_tap taps[3] = {RWKV_TAP_STATE_NUM, RWKV_TAP_STATE_DEN, RWKV_TAP_STATE_MAX};
    rwkv_real *state[3] = {s->num + lc, s->den + lc, s->max + lc};
    rwkv_real *rows[3] = {ws->tr_num, ws->tr_den, ws->tr_max}; // (n, C) when tapped
    for (int i = 0; i < 3; i++) {
        if (!rwkv_v7_tapped(c, l, taps[i])) rows[i] = NULL;
        for (int j = 0; j < C; j++) ws->carry[i * C + j] = state[i][j];
    }
    rwkv_wkv_trace tr = {.num = rows[0], .den = rows[1], .max = rows[2]};
    rwkv_status st = RWKV_OK;
    for (int t0 = 0, t1; t0 < n && !st; t0 = t1) {
        for (t1 = t0 + 1; t1 < n && !scan_cut(c, l, t1 - 1);) t1++;
        rwkv_wkv_scan(ws->wkv, ws->k, ws->v, c->m->decay_w + lc, c->m->w.att_time_first + lc, t0, t1, C, ws->carry,
                      rows[0] || rows[1] || rows[2] ? &tr : NULL);
        for (int i = 0; i < 3 && !st; i++) {
            if (!rows[i]) continue;
            st = tap_rows(c, l, taps[i], t0, t1 - t0, rows[i] + (size_t)t0 * C);
            merge_row(ws->carry + i * C, rows[i] + (size_t)(t1 - 1) * C, C);
        }
    }
    for (int i = 0; i < 3; i++)
        for (int j = 0; j < C; j++) state[i][j] = (rwkv_real)ws->carry[i * C + j];
    return st;
}

static rwkv_status time_mix(const chunk *c, int l, rwkv_state *s) {
    const rwkv_weights *w = &c->m->w;
    rwkv_workspace *ws = c->ws;
    int n = c->n, C = c->m->cfg.n_embd;
    size_t lc = (size_t)l * C, cc = (size_t)C * C, nc = (size_t)n * C;
    rwkv_status st;
    rwkv_layernorm(ws->xln, ws->x, w->ln1_w + lc, w->ln1_b + lc, n, C);
    if ((st = rwkv_v7_tap(c, l, RWKV_TAP_ATT_IN, ws->xln))) return st;
    rwkv_real *const kvr[3] = {ws->xk, ws->xv, ws->xr};
    const rwkv_real *const kvr_mix[3] = {w->att_mix_k + lc, w->att_mix_v + lc, w->att_mix_r + lc};
    if ((st = rwkv_token_shift(c, l, RWKV_TAP_STATE_ATT_XPREV, kvr, kvr_mix, 3, s->att_xprev + lc))) return st; // ln1 output
    product rkv[3] = {{ws->r, ws->xr, WF(att_receptance, l, cc), MV(att_receptance, l), C, C},
                      {ws->k, ws->xk, WF(att_key, l, cc), MV(att_key, l), C, C},
                      {ws->v, ws->xv, WF(att_value, l, cc), MV(att_value, l), C, C}};
    linear(c, rkv, 3);
    if ((st = rwkv_v7_tap(c, l, RWKV_TAP_ATT_R, ws->r))) return st;
    rwkv_sigmoid(ws->r, ws->r, nc); // r becomes the receptance gate sigmoid(r)
    if ((st = rwkv_v7_tap(c, l, RWKV_TAP_ATT_GATE, ws->r))) return st;
    if ((st = rwkv_v7_tap(c, l, RWKV_TAP_ATT_K, ws->k))) return st;
    if ((st = rwkv_v7_tap(c, l, RWKV_TAP_ATT_V, ws->v))) return st;
    if ((st = wkv_scan(c, l, s))) return st;
    if ((st = rwkv_v7_tap(c, l, RWKV_TAP_ATT_WKV, ws->wkv))) return st;
    rwkv_mul(ws->wkv, ws->r, ws->wkv, nc); // sigmoid(r) * wkv
    product o = {ws->out, ws->wkv, WF(att_output, l, cc), MV(att_output, l), C, C};
    linear(c, &o, 1);
    if ((st = rwkv_v7_tap(c, l, RWKV_TAP_ATT_OUT, ws->out))) return st;
    rwkv_add_inplace(ws->x, ws->out, nc);
    return RWKV_OK;
}

static rwkv_status channel_mix(const chunk *c, int l, rwkv_state *s) {
    const rwkv_weights *w = &c->m->w;
    rwkv_workspace *ws = c->ws;
    int n = c->n, C = c->m->cfg.n_embd, F = c->m->cfg.n_ffn;
    size_t lc = (size_t)l * C, nc = (size_t)n * C;
    rwkv_status st;
    rwkv_layernorm(ws->xln, ws->x, w->ln2_w + lc, w->ln2_b + lc, n, C);
    if ((st = rwkv_v7_tap(c, l, RWKV_TAP_FFN_IN, ws->xln))) return st;
    rwkv_real *const kr[2] = {ws->xk, ws->xr};
    const rwkv_real *const kr_mix[2] = {w->ffn_mix_k + lc, w->ffn_mix_r + lc};
    if ((st = rwkv_token_shift(c, l, RWKV_TAP_STATE_FFN_XPREV, kr, kr_mix, 2, s->ffn_xprev + lc))) return st; // ln2 output
    size_t cc = (size_t)C * C, fc = (size_t)F * C;
    product rk[2] = {{ws->r, ws->xr, WF(ffn_receptance, l, cc), MV(ffn_receptance, l), C, C},
                     {ws->fk, ws->xk, WF(ffn_key, l, fc), MV(ffn_key, l), F, C}};
    linear(c, rk, 2);
    rwkv_sigmoid(ws->r, ws->r, nc);
    if ((st = rwkv_v7_tap(c, l, RWKV_TAP_FFN_GATE, ws->r))) return st;
    rwkv_relu_sq(ws->fk, ws->fk, (size_t)n * F); // relu(W_k x')^2
    if ((st = rwkv_v7_tap(c, l, RWKV_TAP_FFN_K, ws->fk))) return st;
    product fv = {ws->out, ws->fk, WF(ffn_value, l, fc), MV(ffn_value, l), C, F};
    linear(c, &fv, 1);
    rwkv_mul(ws->out, ws->r, ws->out, nc); // sigmoid(W_r x') * W_v relu(W_k x')^2
    if ((st = rwkv_v7_tap(c, l, RWKV_TAP_FFN_OUT, ws->out))) return st;
    rwkv_add_inplace(ws->x, ws->out, nc);
    return RWKV_OK;
}

// Logits for rows [0, n) into the caller's (n, V) buffer, or, when the caller wants only the
// last row but the logits are tapped, one row at a time through ws->logit_row.
static rwkv_status head(const chunk *c, rwkv_real *logits, rwkv_logits_mode mode) {
    const rwkv_model *m = c->m;
    int C = m->cfg.n_embd, V = m->cfg.n_vocab, L = m->cfg.n_layer;
    rwkv_workspace *ws = c->ws;
    rwkv_status st;
    if ((st = rwkv_v7_tap(c, L, RWKV_TAP_RESID_OUT, ws->x))) return st;
    int tapped_logits = rwkv_v7_tapped(c, L, RWKV_TAP_LOGITS);
    if (mode == RWKV_LOGITS_ALL) {
        rwkv_layernorm(ws->xln, ws->x, m->w.ln_out_w, m->w.ln_out_b, c->n, C);
        product hd = {logits, ws->xln, m->w.head, &m->mats.head, V, C};
        linear(c, &hd, 1);
        return rwkv_v7_tap(c, L, RWKV_TAP_LOGITS, logits);
    }
    chunk one = *c;
    one.n = 1;
    for (int t = tapped_logits ? 0 : c->n - 1; t < c->n; t++) {
        int last = t == c->n - 1;
        if (!tapped_logits && (!last || mode == RWKV_LOGITS_NONE)) continue;
        rwkv_real *dst = (last && mode == RWKV_LOGITS_LAST) ? logits : ws->logit_row;
        rwkv_layernorm(ws->xlast, ws->x + (size_t)t * C, m->w.ln_out_w, m->w.ln_out_b, 1, C);
        product hd = {dst, ws->xlast, m->w.head, &m->mats.head, V, C};
        linear(&one, &hd, 1);
        one.pos = c->pos + t;
        if ((st = rwkv_v7_tap(&one, L, RWKV_TAP_LOGITS, dst))) return st;
    }
    return RWKV_OK;
}

static rwkv_status check_tokens(const rwkv_model *m, const int *tokens, int64_t T) {
    for (int64_t t = 0; t < T; t++)
        if (tokens[t] < 0 || tokens[t] >= m->cfg.n_vocab)
            return rwkv_error_set(RWKV_ERR_ARG, "%s: token %d at position %lld is outside the vocabulary [0, %d)",
                                  m->path[0] ? m->path : "model", tokens[t], (long long)t, m->cfg.n_vocab);
    return RWKV_OK;
}

static rwkv_status check_finite(const chunk *c, int l) {
    int C = c->m->cfg.n_embd;
    for (int t = 0; t < c->n; t++)
        if (!rwkv_all_finite(c->ws->x + (size_t)t * C, (size_t)C))
            return rwkv_error_set(RWKV_ERR_NUMERIC,
                                  "%s: non-finite value in the output of blocks.%d at position %lld",
                                  c->m->path[0] ? c->m->path : "model", l, (long long)(c->pos + t));
    return RWKV_OK;
}

// A hook-free sequential token runs every layer and the head in one parallel region instead
// of one region per batch of products (49 for 12 layers, each a wake-up of the other
// threads). Within a phase the threads claim units of SPLIT channels from a shared counter
// and do the element-wise steps on the channels they claimed (gate, WKV, residual add), so
// four barriers per layer remain: before the products that read a whole vector (att_output,
// ffn_value) and before each layer norm. Claiming instead of a fixed split keeps a phase
// going when another process holds one of the cores. Every thread computes the layer norms
// and token shifts itself into its lane of ws->lanes (C-wide, cheap next to a barrier). The
// numbers are those of the per-batch path: the same kernels on the same rows, in the same
// order per element, whichever thread computes a unit.
#define HEAD_UNIT 1024 // rows of the head per claim (V is large: fewer claims)

typedef struct {
    int *next;                     // (2) the shared unit counters, one per phase in turn
    int phase, first;              // phases this thread has ended; thread 0 resets counters
    rwkv_real *xln, *xk, *xv, *xr; // (C) this thread's ln output and mixes
} lane;

// Claims the next unit of the current phase: 0 when all n_units are taken.
static int claim(const lane *t, int n_units, int *u) {
    int v;
#pragma omp atomic capture
    v = t->next[t->phase & 1]++;
    *u = v;
    return v < n_units;
}

// Ends a phase: every thread waits for the others. The next phase's counter was last used
// two phases ago, so thread 0 clears it before the barrier.
static void end_phase(lane *t) {
    if (t->first) t->next[(t->phase + 1) & 1] = 0;
#pragma omp barrier
    t->phase++;
}

// Rows [i0, i1) of out (N) = V @ x on the calling thread.
static void rows_of(rwkv_real *out, const rwkv_mat *V, const rwkv_real *x, int N, int K, int i0, int i1) {
    rwkv_matvec_job jb = {out, *V, x, N, K};
    rwkv_matvec_rows(&jb, i0, i1);
}

static int units(int n) { return (n + SPLIT - 1) / SPLIT; }

// Channels [*c0, *c1) of unit u of n rows.
static void unit_rows(int u, int n, int *c0, int *c1) {
    *c0 = u * SPLIT;
    *c1 = *c0 + SPLIT < n ? *c0 + SPLIT : n;
}

// The WKV of channels [c0, c0 + nc), from the state in double (as wkv_scan keeps it), in
// their (3, nc) part of ws->carry.
static void unit_wkv(const chunk *c, int l, rwkv_state *s, int c0, int nc) {
    rwkv_workspace *ws = c->ws;
    size_t o = (size_t)l * c->m->cfg.n_embd + c0;
    rwkv_real *state[3] = {s->num + o, s->den + o, s->max + o};
    double *carry = ws->carry + 3 * (size_t)c0;
    for (int i = 0; i < 3; i++)
        for (int j = 0; j < nc; j++) carry[i * nc + j] = state[i][j];
    rwkv_wkv_scan(ws->wkv + c0, ws->k + c0, ws->v + c0, c->m->decay_w + o, c->m->w.att_time_first + o, 0, 1, nc,
                  carry, NULL);
    for (int i = 0; i < 3; i++)
        for (int j = 0; j < nc; j++) state[i][j] = (rwkv_real)carry[i * nc + j];
}

static void lane_time_mix(const chunk *c, int l, rwkv_state *s, lane *t) {
    const rwkv_weights *w = &c->m->w;
    rwkv_workspace *ws = c->ws;
    int C = c->m->cfg.n_embd, u, c0, c1;
    size_t lc = (size_t)l * C;
    rwkv_real *xprev = s->att_xprev + lc;
    rwkv_layernorm(t->xln, ws->x, w->ln1_w + lc, w->ln1_b + lc, 1, C);
    rwkv_token_mix(t->xk, t->xln, xprev, w->att_mix_k + lc, 1, C);
    rwkv_token_mix(t->xv, t->xln, xprev, w->att_mix_v + lc, 1, C);
    rwkv_token_mix(t->xr, t->xln, xprev, w->att_mix_r + lc, 1, C);
    while (claim(t, units(C), &u)) {
        unit_rows(u, C, &c0, &c1);
        rows_of(ws->r, MV(att_receptance, l), t->xr, C, C, c0, c1);
        rows_of(ws->k, MV(att_key, l), t->xk, C, C, c0, c1);
        rows_of(ws->v, MV(att_value, l), t->xv, C, C, c0, c1);
        rwkv_sigmoid(ws->r + c0, ws->r + c0, (size_t)(c1 - c0));
        unit_wkv(c, l, s, c0, c1 - c0);
        rwkv_mul(ws->wkv + c0, ws->r + c0, ws->wkv + c0, (size_t)(c1 - c0)); // sigmoid(r) * wkv
    }
    end_phase(t);
    while (claim(t, units(C), &u)) {
        unit_rows(u, C, &c0, &c1);
        memcpy(xprev + c0, t->xln + c0, (size_t)(c1 - c0) * sizeof *xprev); // every thread has read xprev
        rows_of(ws->out, MV(att_output, l), ws->wkv, C, C, c0, c1);
        rwkv_add_inplace(ws->x + c0, ws->out + c0, (size_t)(c1 - c0));
    }
    end_phase(t);
}

// Returns 0 when the channels this thread finished of the block's output are not all finite.
static int lane_channel_mix(const chunk *c, int l, rwkv_state *s, lane *t) {
    const rwkv_weights *w = &c->m->w;
    rwkv_workspace *ws = c->ws;
    int C = c->m->cfg.n_embd, F = c->m->cfg.n_ffn, u, c0, c1, finite = 1;
    size_t lc = (size_t)l * C;
    rwkv_real *xprev = s->ffn_xprev + lc;
    rwkv_layernorm(t->xln, ws->x, w->ln2_w + lc, w->ln2_b + lc, 1, C);
    rwkv_token_mix(t->xk, t->xln, xprev, w->ffn_mix_k + lc, 1, C);
    rwkv_token_mix(t->xr, t->xln, xprev, w->ffn_mix_r + lc, 1, C);
    while (claim(t, units(C) + units(F), &u)) { // receptance units, then key units
        if (u < units(C)) {
            unit_rows(u, C, &c0, &c1);
            rows_of(ws->r, MV(ffn_receptance, l), t->xr, C, C, c0, c1);
            rwkv_sigmoid(ws->r + c0, ws->r + c0, (size_t)(c1 - c0));
        } else {
            unit_rows(u - units(C), F, &c0, &c1);
            rows_of(ws->fk, MV(ffn_key, l), t->xk, F, C, c0, c1);
            rwkv_relu_sq(ws->fk + c0, ws->fk + c0, (size_t)(c1 - c0)); // relu(W_k x')^2
        }
    }
    end_phase(t);
    while (claim(t, units(C), &u)) {
        unit_rows(u, C, &c0, &c1);
        size_t nc = (size_t)(c1 - c0);
        memcpy(xprev + c0, t->xln + c0, nc * sizeof *xprev);
        rows_of(ws->out, MV(ffn_value, l), ws->fk, C, F, c0, c1);
        rwkv_mul(ws->out + c0, ws->r + c0, ws->out + c0, nc); // sigmoid(W_r x') * W_v relu(W_k x')^2
        rwkv_add_inplace(ws->x + c0, ws->out + c0, nc);
        finite &= rwkv_all_finite(ws->x + c0, nc);
    }
    return finite;
}

static void lane_head(const chunk *c, rwkv_real *logits, lane *t) {
    const rwkv_model *m = c->m;
    int V = m->cfg.n_vocab, u;
    rwkv_layernorm(t->xln, c->ws->x, m->w.ln_out_w, m->w.ln_out_b, 1, m->cfg.n_embd);
    while (claim(t, (V + HEAD_UNIT - 1) / HEAD_UNIT, &u)) {
        int r1 = (u + 1) * HEAD_UNIT < V ? (u + 1) * HEAD_UNIT : V;
        rows_of(logits, &m->mats.head, t->xln, V, m->cfg.n_embd, u * HEAD_UNIT, r1);
    }
}

static int one_region(const chunk *c) {
    const rwkv_hook *h = c->hook;
    return c->n == 1 && !c->m->v7 && (!h || (!h->mask && !h->scan_cut)) && rwkv_matvec_rows_ok();
}

static rwkv_status run_token_one_region(const chunk *c, rwkv_state *s, rwkv_real *logits, rwkv_logits_mode mode) {
    const rwkv_config *cfg = &c->m->cfg;
    int C = cfg->n_embd, bad = -1, next[2] = {0, 0}; // bad: the first layer whose output is not finite
    size_t layer_weights = (size_t)C * (4 * C + 2 * cfg->n_ffn + C);
    int nt = omp_get_max_threads() < c->ws->n_lanes ? omp_get_max_threads() : c->ws->n_lanes;
#pragma omp parallel num_threads(nt) if (layer_weights >= PAR_MIN_LAYER_WEIGHTS)
    {
        int id = omp_get_thread_num();
        rwkv_real *p = c->ws->lanes + (size_t)id * LANE_VECS * C;
        lane t = {next, 0, id == 0, p, p + C, p + 2 * C, p + 3 * C};
        int stop = -1;
        for (int l = 0; l < cfg->n_layer && stop < 0; l++) {
            lane_time_mix(c, l, s, &t);
            if (!lane_channel_mix(c, l, s, &t)) {
#pragma omp atomic write
                bad = l;
            }
            end_phase(&t);
#pragma omp atomic read
            stop = bad;
        }
        if (stop < 0 && mode != RWKV_LOGITS_NONE) lane_head(c, logits, &t); // n = 1: ALL and LAST are one row
    }
    return bad >= 0 ? check_finite(c, bad) : RWKV_OK;
}

static rwkv_status run_chunk(chunk *c, rwkv_state *s, const int *tokens, rwkv_real *logits,
                             rwkv_logits_mode mode) {
    const rwkv_model *m = c->m;
    int C = m->cfg.n_embd;
    rwkv_workspace *ws = c->ws;
    for (int t = 0; t < c->n; t++)
        memcpy(ws->x + (size_t)t * C, m->w.emb + (size_t)tokens[t] * C, C * sizeof(rwkv_real));
    rwkv_layernorm(ws->x, ws->x, m->w.ln0_w, m->w.ln0_b, c->n, C); // ln0 on the embedding
    if (one_region(c)) return run_token_one_region(c, s, logits, mode);
    rwkv_status st;
    for (int l = 0; l < m->cfg.n_layer; l++) {
        if ((st = rwkv_v7_tap(c, l, RWKV_TAP_RESID_IN, ws->x))) return st;
        if (m->v7) st = rwkv_v7_block(c, l, s);
        else if (!(st = time_mix(c, l, s))) st = channel_mix(c, l, s);
        if (st) return st;
        if ((st = check_finite(c, l))) return st;
    }
    return head(c, logits, mode);
}

static rwkv_status forward(const rwkv_model *m, rwkv_state *s, const int *tokens, int64_t T,
                           rwkv_real *logits, rwkv_logits_mode mode, rwkv_hook *hook,
                           rwkv_workspace *ws, int seq) {
    if (T < 1) return rwkv_error_set(RWKV_ERR_ARG, "forward pass needs at least one token");
    rwkv_status st = check_tokens(m, tokens, T);
    if (st) return st;
    int64_t pos0 = hook ? hook->pos : 0;
    int V = m->cfg.n_vocab;
    if (ws->cfg.n_embd != m->cfg.n_embd || ws->cfg.n_ffn != m->cfg.n_ffn || ws->cfg.n_vocab != m->cfg.n_vocab ||
        (m->v7 && (!ws->v7 || ws->cfg.head_size != m->cfg.head_size || ws->cfg.n_lora < m->cfg.n_lora)))
        return rwkv_error_set(RWKV_ERR_ARG, "workspace was made for another model shape");
    int step = seq ? 1 : ws->max_T;
    chunk c = {.m = m, .ws = ws, .hook = hook};
    for (int64_t t = 0; t < T; t += c.n) {
        c.n = (int)(T - t < step ? T - t : step);
        c.pos = pos0 + t;
        int last = t + c.n == T;
        rwkv_logits_mode cm = mode == RWKV_LOGITS_ALL ? mode : (last ? mode : RWKV_LOGITS_NONE);
        rwkv_real *dst = mode == RWKV_LOGITS_ALL ? logits + (size_t)t * V : logits;
        if ((st = run_chunk(&c, s, tokens + t, dst, cm))) return st;
    }
    return RWKV_OK;
}

rwkv_status rwkv_forward_seq(const rwkv_model *m, rwkv_state *state, const int *tokens, int64_t T,
                             rwkv_real *logits, rwkv_logits_mode mode, rwkv_hook *hook,
                             rwkv_workspace *ws) {
    return forward(m, state, tokens, T, logits, mode, hook, ws, 1);
}

rwkv_status rwkv_forward_par(const rwkv_model *m, rwkv_state *state, const int *tokens, int64_t T,
                             rwkv_real *logits, rwkv_logits_mode mode, rwkv_hook *hook,
                             rwkv_workspace *ws) {
    return forward(m, state, tokens, T, logits, mode, hook, ws, 0);
}
