// forward_v6.c: the RWKV-6 ("Finch", x060) block, as in the official RNN code (ChatRWKV
// rwkv/model.py att_one_v6_0 / att_seq_v6_0, ffn_one_v6) and rwkv.cpp's rwkv_att_v6. It is
// RWKV-5.2's block with two data-dependent parts. With xx the ln1 output, sx = x_prev - xx:
//   (m_w, m_k, m_v, m_r, m_g) = W2_q tanh(W1 (xx + sx maa_x))   (5 slices of one LoRA)
//   x_q = xx + sx (maa_q + m_q)                                   for q in w, k, v, r, g
//   w_t = exp(-exp(time_decay + W_d2 tanh(W_d1 x_w)))             (per token and channel)
// then RWKV-5.2's scan y_i = sum_j r_j (u_j k_j v_i + S_ij), S_ij = v_i k_j + w_tj S_ij, the
// GroupNorm per head (eps 64e-5), times silu(W_g x_g), and the output projection. The channel
// mix is RWKV-5.2's with RWKV-6's mix convention (xx + sx maa).
#include "forward_v7.h"

#include "kernels.h"

#include <math.h>
#include <string.h>

// The buffers of one chunk, borrowed from the RWKV-7 scratch and the workspace.
typedef struct {
    rwkv_real *mixed[RWKV_V6_MIXES]; // (n, C) x_w, x_k, x_v, x_r, x_g
    rwkv_real *xxx;                  // (n, C) xx + sx maa_x, the mix LoRA's input
    rwkv_real *sx;                   // (n, C) x_prev - xx
    rwkv_real *decay;                // (n, C) w_t
    rwkv_real *gate;                 // (n, C) silu(W_g x_g)
    rwkv_real *h;                    // (n, 5 Dm) tanh(W1 xxx)
    rwkv_real *hq;                   // (5, n, Dm) its slices, each contiguous for a GEMM
    rwkv_real *hd;                   // (n, Dw) tanh(W_d1 x_w)
} v6_rows;

static v6_rows rows_of(const rwkv_v7_chunk *c) {
    rwkv_workspace *ws = c->ws;
    rwkv_real *tc[8], *tl[3];
    rwkv_v7_scratch_rows(c, tc, tl);
    return (v6_rows){.mixed = {tc[0], ws->xk, ws->xv, ws->xr, tc[2]}, .xxx = tc[1], .sx = tc[6], .decay = tc[3],
                     .gate = tc[5], .h = tl[1], .hq = tl[2], .hd = tl[0]};
}

// The five data-dependent mixes x_q = xx + sx (maa_q + m_q) into b->mixed.
static void mixes(const rwkv_v7_chunk *c, int l, const v6_rows *b) {
    const rwkv_v7_weights *w = c->m->v7;
    int n = c->n, C = c->m->cfg.n_embd, Dm = w->d.d_m, D5 = RWKV_V6_MIXES * Dm;
    size_t lc = (size_t)l * C;
    rwkv_v7_product h = {b->h, b->xxx, w->maa_w1 + lc * D5, D5, C, NULL};
    rwkv_v7_products(c, &h, 1);
    rwkv_v7_tanh(b->h, (size_t)n * D5);
    rwkv_v7_product m[RWKV_V6_MIXES];
    for (int q = 0; q < RWKV_V6_MIXES; q++) {
        rwkv_real *hq = b->hq + (size_t)q * n * Dm;
        for (int t = 0; t < n; t++) memcpy(hq + (size_t)t * Dm, b->h + (size_t)t * D5 + (size_t)q * Dm, Dm * sizeof *hq);
        m[q] = (rwkv_v7_product){b->mixed[q], hq, w->maa_w2 + (lc * RWKV_V6_MIXES + (size_t)q * C) * Dm, C, Dm, NULL};
    }
    rwkv_v7_products(c, m, RWKV_V6_MIXES);
    const rwkv_real *maa[RWKV_V6_MIXES] = {w->x_w + lc, w->x_k + lc, w->x_v + lc, w->x_r + lc, w->x_g + lc};
    for (int q = 0; q < RWKV_V6_MIXES; q++)
        for (int t = 0; t < n; t++) {
            size_t o = (size_t)t * C;
            for (int i = 0; i < C; i++) // xx + sx (maa + m)
                b->mixed[q][o + i] = c->ws->xln[o + i] + b->sx[o + i] * (maa[q][i] + b->mixed[q][o + i]);
        }
}

// w_t = exp(-exp(time_decay + W_d2 tanh(W_d1 x_w))) into b->decay.
static void decays(const rwkv_v7_chunk *c, int l, const v6_rows *b) {
    const rwkv_v7_weights *w = c->m->v7;
    int n = c->n, C = c->m->cfg.n_embd, Dw = w->d.d_w;
    size_t lc = (size_t)l * C;
    rwkv_v7_product d1 = {b->hd, b->mixed[0], w->decay_w1 + lc * Dw, Dw, C, NULL};
    rwkv_v7_products(c, &d1, 1);
    rwkv_v7_tanh(b->hd, (size_t)n * Dw);
    rwkv_v7_product d2 = {b->decay, b->hd, w->decay_w2 + lc * Dw, C, Dw, NULL};
    rwkv_v7_products(c, &d2, 1);
    for (int t = 0; t < n; t++)
        for (int i = 0; i < C; i++) {
            rwkv_real *d = b->decay + (size_t)t * C + i;
            *d = RWKV_EXP(-RWKV_EXP(w->time_decay[lc + i] + *d));
        }
}

// The token shift: xxx = xx + sx maa_x, and sx = x_prev - xx itself (so that a hook's change
// to state_att_xprev reaches both).
static rwkv_status shift(const rwkv_v7_chunk *c, int l, const v6_rows *b, rwkv_state *state) {
    size_t lc = (size_t)l * c->m->cfg.n_embd;
    rwkv_real *const out[2] = {b->xxx, b->sx};
    const rwkv_real *const mix[2] = {c->m->v7->maa_x + lc, NULL};
    return rwkv_token_shift(c, l, RWKV_TAP_STATE_ATT_XPREV, out, mix, 2, state->att_xprev + lc);
}

static rwkv_status time_mix(const rwkv_v7_chunk *c, int l, rwkv_state *state) {
    const rwkv_v7_weights *w = c->m->v7;
    rwkv_workspace *ws = c->ws;
    int n = c->n, C = c->m->cfg.n_embd;
    size_t lc = (size_t)l * C, nc = (size_t)n * C;
    v6_rows b = rows_of(c);
    rwkv_status st;
    rwkv_layernorm(ws->xln, ws->x, w->ln1_w + lc, w->ln1_b + lc, n, C);
    if ((st = rwkv_v7_tap(c, l, RWKV_TAP_ATT_IN, ws->xln)) || (st = shift(c, l, &b, state))) return st;
    mixes(c, l, &b);
    decays(c, l, &b);
    rwkv_v7_product p[4] = {rwkv_v7_matrix(c, ws->r, ws->xr, RWKV_V7_R, l), rwkv_v7_matrix(c, ws->k, ws->xk, RWKV_V7_K, l),
                            rwkv_v7_matrix(c, ws->v, ws->xv, RWKV_V7_V, l),
                            rwkv_v7_matrix(c, b.gate, b.mixed[4], RWKV_V7_G, l)};
    rwkv_v7_products(c, p, 4);
    for (size_t i = 0; i < nc; i++) b.gate[i] = b.gate[i] / (1 + RWKV_EXP(-b.gate[i])); // silu
    rwkv_tap order[] = {RWKV_TAP_ATT_R, RWKV_TAP_ATT_W, RWKV_TAP_ATT_K, RWKV_TAP_ATT_V, RWKV_TAP_ATT_G};
    rwkv_real *rows[] = {ws->r, b.decay, ws->k, ws->v, b.gate};
    for (int i = 0; i < 5; i++)
        if ((st = rwkv_v7_tap(c, l, order[i], rows[i]))) return st;
    return rwkv_v5_scan_out(c, l, state, b.decay, (size_t)C, b.gate, RWKV_V7_GN_EPS);
}

rwkv_status rwkv_v6_block(const rwkv_v7_chunk *c, int layer, rwkv_state *s) {
    rwkv_status st = time_mix(c, layer, s);
    return st ? st : rwkv_v7_channel_mix(c, layer, s); // RWKV-5.2's, gated
}
