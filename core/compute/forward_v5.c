// forward_v5.c: the RWKV-5.2 ("Eagle") block, as in the official RNN code (ChatRWKV
// rwkv/model.py, v5.2) and rwkv.cpp's rwkv_att_v5. Per head of N channels, with the state
// S[i][j] (i a value, j a key channel, the layout of RWKV-7), w = exp(-exp(time_decay)) and
// u = time_faaaa:
//   y_i = sum_j r_j (u_j k_j v_i + S_ij),   then   S_ij = v_i k_j + w_j S_ij
// then a GroupNorm per head, times silu(W_g x_g), and the output projection. The channel mix
// is RWKV-4's (receptance-gated relu^2).
#include "forward_v7.h"

#include "kernels.h"

#include <string.h>

// rwkv.cpp's GroupNorm eps for RWKV-5; its tiny model's expected logits need it (64e-5, the official
// training's 1e-5 on x / head_size_divisor, moves them by up to 1.1: docs/engine.md).
#define V5_GN_EPS 1e-5
#define V5_PAR_MIN_FLOPS (1 << 18) // scan work (n H N^2) below which it stays on one thread

// One head over n tokens; rows strided by C, the decay's by w_stride (0: one for all tokens).
__attribute__((target_clones("avx512f", "avx2", "default")))
static void wkv5_head(rwkv_real *y, rwkv_real *S, rwkv_real *trace, const rwkv_real *r, const rwkv_real *k,
                      const rwkv_real *v, const rwkv_real *w_rows, size_t w_stride, const rwkv_real *u, int n,
                      int C, int N, size_t trace_stride) {
    for (int t = 0; t < n; t++) {
        const rwkv_real *rt = r + (size_t)t * C, *kt = k + (size_t)t * C, *w = w_rows + t * w_stride;
        for (int i = 0; i < N; i++) {
            rwkv_real *row = S + (size_t)i * N, vi = v[(size_t)t * C + i], yi = 0;
#pragma omp simd reduction(+ : yi)
            for (int j = 0; j < N; j++) {
                yi += rt[j] * (u[j] * kt[j] * vi + row[j]); // r (u k v^T + S)
                row[j] = vi * kt[j] + w[j] * row[j];        // S = v k^T + w S
            }
            y[(size_t)t * C + i] = yi;
        }
        if (trace) memcpy(trace + (size_t)t * trace_stride, S, (size_t)N * N * sizeof(rwkv_real));
    }
}

void rwkv_v5_wkv(rwkv_real *y, rwkv_real *S, rwkv_real *trace, const rwkv_real *r, const rwkv_real *k,
                 const rwkv_real *v, const rwkv_real *w, size_t w_stride, const rwkv_real *u, int n, int H, int N) {
    int C = H * N;
    size_t NN = (size_t)N * N;
#pragma omp parallel for schedule(static) if ((size_t)n * H * NN >= V5_PAR_MIN_FLOPS && H > 1)
    for (int h = 0; h < H; h++) {
        size_t o = (size_t)h * N;
        wkv5_head(y + o, S + h * NN, trace ? trace + h * NN : NULL, r + o, k + o, v + o, w + o, w_stride, u + o, n,
                  C, N, (size_t)C * N);
    }
}

// The scan over rows [t0, t1) of the chunk (rwkv_v7_scan's callback).
typedef struct {
    rwkv_workspace *ws;
    rwkv_real *S;              // (H, N, N)
    const rwkv_real *w, *u;    // (n, C) decay rows advancing by w_stride (0: one row), (C) bonus
    size_t w_stride;
    int H, N;
} scan5;

static void run_scan5(void *ctx, int t0, int t1, rwkv_real *trace) {
    const scan5 *a = ctx;
    size_t o = (size_t)t0 * a->H * a->N;
    rwkv_v5_wkv(a->ws->wkv + o, a->S, trace, a->ws->r + o, a->ws->k + o, a->ws->v + o, a->w + t0 * a->w_stride,
                a->w_stride, a->u, t1 - t0, a->H, a->N);
}

rwkv_status rwkv_v5_scan_out(const rwkv_v7_chunk *c, int l, rwkv_state *state, const rwkv_real *w_rows,
                             size_t w_stride, const rwkv_real *g, double eps) {
    const rwkv_v7_weights *w = c->m->v7;
    rwkv_workspace *ws = c->ws;
    int n = c->n, C = c->m->cfg.n_embd, N = c->m->cfg.head_size, H = C / N;
    size_t lc = (size_t)l * C, nc = (size_t)n * C;
    scan5 sc = {ws, state->wkv + lc * N, w_rows, w->time_faaaa + lc, w_stride, H, N};
    rwkv_status st;
    if ((st = rwkv_v7_scan(c, l, sc.S, run_scan5, &sc)) || (st = rwkv_v7_tap(c, l, RWKV_TAP_ATT_WKV, ws->wkv)))
        return st;
    rwkv_v7_group_norm(ws->wkv, w->ln_x_w + lc, w->ln_x_b + lc, n, C, N, eps);
    rwkv_mul(ws->wkv, ws->wkv, g, nc);
    rwkv_v7_product o = rwkv_v7_matrix(c, ws->out, ws->wkv, RWKV_V7_O, l);
    rwkv_v7_products(c, &o, 1);
    if ((st = rwkv_v7_tap(c, l, RWKV_TAP_ATT_OUT, ws->out))) return st;
    rwkv_add_inplace(ws->x, ws->out, nc);
    return RWKV_OK;
}

static rwkv_status time_mix(const rwkv_v7_chunk *c, int l, rwkv_state *state) {
    const rwkv_v7_weights *w = c->m->v7;
    rwkv_workspace *ws = c->ws;
    int n = c->n, C = c->m->cfg.n_embd;
    size_t lc = (size_t)l * C, nc = (size_t)n * C;
    rwkv_real *g = ws->out, *decay = rwkv_v7_rows(c); // the gate lives in out until the output projection
    rwkv_status st;
    rwkv_layernorm(ws->xln, ws->x, w->ln1_w + lc, w->ln1_b + lc, n, C);
    if ((st = rwkv_v7_tap(c, l, RWKV_TAP_ATT_IN, ws->xln))) return st;
    rwkv_real *xg = ws->wkv;
    rwkv_real *const mixed[4] = {ws->xk, ws->xv, ws->xr, xg};
    const rwkv_real *const mix[4] = {w->x_k + lc, w->x_v + lc, w->x_r + lc, w->x_g + lc};
    if ((st = rwkv_token_shift(c, l, RWKV_TAP_STATE_ATT_XPREV, mixed, mix, 4, state->att_xprev + lc))) return st;
    rwkv_v7_product p[4] = {rwkv_v7_matrix(c, ws->r, ws->xr, RWKV_V7_R, l), rwkv_v7_matrix(c, ws->k, ws->xk, RWKV_V7_K, l),
                            rwkv_v7_matrix(c, ws->v, ws->xv, RWKV_V7_V, l), rwkv_v7_matrix(c, g, xg, RWKV_V7_G, l)};
    rwkv_v7_products(c, p, 4);
    for (size_t i = 0; i < nc; i++) g[i] = g[i] / (1 + RWKV_EXP(-g[i])); // silu
    rwkv_tap order[] = {RWKV_TAP_ATT_R, RWKV_TAP_ATT_K, RWKV_TAP_ATT_V, RWKV_TAP_ATT_G};
    rwkv_real *rows[] = {ws->r, ws->k, ws->v, g};
    for (int i = 0; i < 4; i++)
        if ((st = rwkv_v7_tap(c, l, order[i], rows[i]))) return st;
    for (int i = 0; i < C; i++) decay[i] = RWKV_EXP(-RWKV_EXP(w->time_decay[lc + i])); // exp(-exp(time_decay))
    return rwkv_v5_scan_out(c, l, state, decay, 0, g, V5_GN_EPS);
}

rwkv_status rwkv_v5_block(const rwkv_v7_chunk *c, int layer, rwkv_state *s) {
    rwkv_status st = time_mix(c, layer, s);
    return st ? st : rwkv_v7_channel_mix(c, layer, s); // RWKV-4's, gated
}
