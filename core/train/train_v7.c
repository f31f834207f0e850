// train_v7.c: the RWKV-7 block for training over N = B*T rows (forward_v7.c's equations).
// Forward, per row (x' the token-shifted mixes x + (x_{t-1} - x) mix_q):
//   r = W_r x'_r,  k0 = W_k x'_k,  v' = W_v x'_v
//   w = exp(-e^{-1/2} s),  s = sigmoid(w0 + W2 tanh(W1 x'_w))
//   a = sigmoid(a0 + A2 A1 x'_a),  g = G2 sigmoid(G1 x'_g)
//   v = v' + (v_first - v') sigmoid(v0 + V2 V1 x'_v)   (layer 0: v = v' = v_first)
//   kk = normalize_h(k0 * k_k),  k = k0 + k0 (a - 1) k_a
//   S_t = S_{t-1} diag(w) - (S_{t-1} kk)(kk a)^T + v k^T,  y = S_t r
//   o2 = GroupNorm_h(y) ln_x_w + ln_x_b + (sum_h r k r_k) v,  x_mid = x + W_o (o2 * g)
//   x_next = x_mid + W_v' relu(W_k' x'_f)^2 with x'_f the shifted ln2 output.
// Backward of the scan (per head, reverse in time, dS = dL/dS_t):
//   dS += dy r^T;  dr = S_t^T dy;  dv = dS k;  dk = dS^T v;  dw_j = sum_i dS_ij S_{t-1,ij}
//   with sa = S_{t-1} kk:  dsa = -dS (kk a);  d(kk a) = -dS^T sa;  dkk += S_{t-1}^T dsa
//   dS_{t-1} = dS diag(w) + dsa kk^T.
#include "train_v7.h"

#include "../compute/blas.h"
#include "../compute/forward_v7.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define PAR_MIN (1 << 15)     // elements below which a loop stays on one thread
#define COL_BLOCK 32          // channels per thread task in column sums
#define LN_EPS 1e-5           // LayerNorm (ln1, ln2)
#define NORM_MIN 1e-12        // kk / max(||kk||, 1e-12)
#define DECAY_SCALE 0.6065306597126334 // e^{-1/2}
#if RWKV_REAL_BITS == 64
#define TANH tanh
#define ABS fabs
#else
#define TANH tanhf
#define ABS fabsf
#endif

enum { MR, MW, MK, MV, MA, MG, N_MIX }; // the six time-mix inputs, in x_r .. x_g order

typedef struct {
    rwkv_real *xa, *ln1_mean, *ln1_rstd; // (N, C) ln1 output; (N) its statistics
    rwkv_real *r, *k0, *k, *vr, *v;      // (N, C) receptance, key before/after k_a, value before/after the residual
    rwkv_real *w, *ws, *a, *g, *kk;      // (N, C) decay, its sigmoid, rate, gate, unit removal key
    rwkv_real *kn;                       // (N, H) ||k0 k_k|| per head
    rwkv_real *vg;                       // (N, C) value residual gate (layers > 0)
    rwkv_real *hw, *ha, *hv, *hg;        // (N, D) LoRA hidden rows (tanh / - / - / sigmoid applied)
    rwkv_real *y;                        // (N, C) S r
    rwkv_real *gn_mean, *gn_rstd, *bonus; // (N, H)
    rwkv_real *o2;                       // (N, C) readout before the gate
    rwkv_real *S0;                       // (B, n_chunk, H, N, N) the state at each chunk start
    rwkv_real *x_mid, *xf, *ln2_mean, *ln2_rstd; // (N, C), (N)
    rwkv_real *kp;                       // (N, F) ffn key before relu^2
} layer7;

struct rwkv_train_v7 {
    int B, T, C, H, N, F, n_chunk, Dmax;
    rwkv_real *arena;
    layer7 *layers;                // (L)
    rwkv_real *mix[N_MIX];         // (N, C) shifted inputs (recomputed in the backward)
    rwkv_real *dmix[N_MIX];        // (N, C) their gradients
    rwkv_real *dr, *dk, *dv, *dw, *da, *dg, *dkk, *s1, *s2; // (N, C)
    rwkv_real *dvfirst;            // (N, C) gradient of layer 0's value from the later layers
    rwkv_real *dh;                 // (N, Dmax)
    rwkv_real *sF, *dF;            // (N, F)
    rwkv_real *states;             // (B*H, K+1, N, N) one chunk's states per (sequence, head)
    rwkv_real *dS;                 // (B*H, N, N); (B, H, N, N) running state in the forward
};

// ---------------------------------------------------------------- arena

static rwkv_real *carve(rwkv_real *base, size_t *used, size_t n) {
    rwkv_real *p = base ? base + *used : NULL;
    *used += n;
    return p;
}

// LoRA hidden rows are carved at the largest rank (cfg.n_lora) and used at their own.
static size_t layout(struct rwkv_train_v7 *a, int L, rwkv_real *base) {
    size_t used = 0, N = (size_t)a->B * a->T, NC = N * a->C, NH = N * a->H;
    size_t NN = (size_t)a->N * a->N;
#define CARVE(n) carve(base, &used, (n))
    for (int l = 0; l < L; l++) {
        layer7 *y = &a->layers[l];
        rwkv_real **nc[] = {&y->xa, &y->r, &y->k0, &y->k, &y->vr, &y->v, &y->w, &y->ws, &y->a, &y->g, &y->kk,
                            &y->vg, &y->y, &y->o2, &y->x_mid, &y->xf};
        for (size_t i = 0; i < sizeof nc / sizeof nc[0]; i++) *nc[i] = CARVE(NC);
        rwkv_real **nh[] = {&y->kn, &y->gn_mean, &y->gn_rstd, &y->bonus};
        for (size_t i = 0; i < sizeof nh / sizeof nh[0]; i++) *nh[i] = CARVE(NH);
        y->ln1_mean = CARVE(N), y->ln1_rstd = CARVE(N), y->ln2_mean = CARVE(N), y->ln2_rstd = CARVE(N);
        y->hw = CARVE(N * a->Dmax), y->ha = CARVE(N * a->Dmax), y->hv = CARVE(N * a->Dmax), y->hg = CARVE(N * a->Dmax);
        y->S0 = CARVE((size_t)a->B * a->n_chunk * a->H * NN);
        y->kp = CARVE(N * a->F);
    }
    for (int q = 0; q < N_MIX; q++) a->mix[q] = CARVE(NC), a->dmix[q] = CARVE(NC);
    rwkv_real **sc[] = {&a->dr, &a->dk, &a->dv, &a->dw, &a->da, &a->dg, &a->dkk, &a->s1, &a->s2, &a->dvfirst};
    for (size_t i = 0; i < sizeof sc / sizeof sc[0]; i++) *sc[i] = CARVE(NC);
    a->dh = CARVE(N * a->Dmax), a->sF = CARVE(N * a->F), a->dF = CARVE(N * a->F);
    a->states = CARVE((size_t)a->B * a->H * (RWKV_V7_TRAIN_CHUNK + 1) * NN);
    a->dS = CARVE((size_t)a->B * a->H * NN);
#undef CARVE
    return used;
}

rwkv_status rwkv_train_v7_alloc(struct rwkv_train_v7 **out, rwkv_config cfg, int B, int T) {
    *out = NULL;
    struct rwkv_train_v7 *a = rwkv_calloc(1, sizeof *a, "RWKV-7 training state");
    if (!a) return RWKV_ERR_NOMEM;
    a->B = B, a->T = T, a->C = cfg.n_embd, a->N = cfg.head_size, a->H = cfg.n_embd / cfg.head_size, a->F = cfg.n_ffn;
    a->n_chunk = (T + RWKV_V7_TRAIN_CHUNK - 1) / RWKV_V7_TRAIN_CHUNK;
    a->Dmax = cfg.n_lora > 0 ? cfg.n_lora : 1;
    a->layers = rwkv_calloc((size_t)cfg.n_layer, sizeof *a->layers, "RWKV-7 training layers");
    size_t n = a->layers ? layout(a, cfg.n_layer, NULL) : 0;
    if (!a->layers || !(a->arena = rwkv_calloc(n, sizeof(rwkv_real), "RWKV-7 training activations"))) {
        rwkv_train_v7_free(a);
        return RWKV_ERR_NOMEM;
    }
    layout(a, cfg.n_layer, a->arena);
    *out = a;
    return RWKV_OK;
}

void rwkv_train_v7_free(struct rwkv_train_v7 *a) {
    if (!a) return;
    free(a->arena);
    free(a->layers);
    free(a);
}

// ---------------------------------------------------------------- kernels

// out (n, C) = GroupNorm over groups of G channels * w + b (LayerNorm when G = C), keeping
// mean and rstd (n, C/G). Double sums, as the inference kernels.
static void gn_forward(rwkv_real *out, rwkv_real *mean, rwkv_real *rstd, const rwkv_real *x, const rwkv_real *w,
                       const rwkv_real *b, int n, int C, int G, double eps) {
    int ng = C / G;
#pragma omp parallel for schedule(static) if ((size_t)n * C >= PAR_MIN)
    for (int r = 0; r < n; r++)
        for (int h = 0; h < ng; h++) {
            size_t o = (size_t)r * C + (size_t)h * G;
            double mu = 0, var = 0;
            for (int j = 0; j < G; j++) mu += x[o + j];
            mu /= G;
            for (int j = 0; j < G; j++) var += (x[o + j] - mu) * (x[o + j] - mu);
            var /= G; // biased, as torch
            rwkv_real rs = (rwkv_real)(1.0 / sqrt(var + eps));
            for (int j = 0; j < G; j++) out[o + j] = (rwkv_real)(x[o + j] - mu) * rs * w[h * G + j] + b[h * G + j];
            mean[(size_t)r * ng + h] = (rwkv_real)mu, rstd[(size_t)r * ng + h] = rs;
        }
}

// dst (C) += sum over rows of a (n, C) [* b (n, C)], a block of channels per thread, rows in order.
static void colsum(rwkv_real *dst, const rwkv_real *a, const rwkv_real *b, int n, int C) {
    int nb = (C + COL_BLOCK - 1) / COL_BLOCK;
#pragma omp parallel for schedule(static) if ((size_t)n * C >= PAR_MIN)
    for (int blk = 0; blk < nb; blk++) {
        int c0 = blk * COL_BLOCK, nc = C - c0 < COL_BLOCK ? C - c0 : COL_BLOCK;
        double s[COL_BLOCK] = {0};
        for (int r = 0; r < n; r++) {
            size_t o = (size_t)r * C + c0;
            for (int j = 0; j < nc; j++) s[j] += b ? (double)a[o + j] * b[o + j] : a[o + j];
        }
        for (int j = 0; j < nc; j++) dst[c0 + j] += (rwkv_real)s[j];
    }
}

// dx (n, C) += d GroupNorm; dw, db (C) += theirs. With xh = (x - mean) rstd and g = dy w per
// group: dx = rstd (g - mean(g) - xh mean(g xh)), dw = sum dy xh, db = sum dy. xh goes to tmp.
static void gn_backward(rwkv_real *dx, rwkv_real *dw, rwkv_real *db, rwkv_real *tmp, const rwkv_real *dy,
                        const rwkv_real *x, const rwkv_real *mean, const rwkv_real *rstd, const rwkv_real *w, int n,
                        int C, int G) {
    int ng = C / G;
#pragma omp parallel for schedule(static) if ((size_t)n * C >= PAR_MIN)
    for (int r = 0; r < n; r++)
        for (int h = 0; h < ng; h++) {
            size_t o = (size_t)r * C + (size_t)h * G, s = (size_t)r * ng + h;
            double sg = 0, sgx = 0;
            for (int j = 0; j < G; j++) {
                tmp[o + j] = (x[o + j] - mean[s]) * rstd[s];
                sg += dy[o + j] * w[h * G + j];
                sgx += dy[o + j] * w[h * G + j] * tmp[o + j];
            }
            rwkv_real mg = (rwkv_real)(sg / G), mgx = (rwkv_real)(sgx / G);
            for (int j = 0; j < G; j++) dx[o + j] += rstd[s] * (dy[o + j] * w[h * G + j] - mg - tmp[o + j] * mgx);
        }
    colsum(dw, dy, tmp, n, C);
    colsum(db, dy, NULL, n, C);
}

// The six (or one) token shifts of x per sequence: out_q = x + (x_{t-1} - x) mix_q, x_{-1} = 0.
static void shift(const struct rwkv_train_v7 *a, rwkv_real *const *out, const rwkv_real *const *mix, int nmix,
                  const rwkv_real *x) {
    int C = a->C, T = a->T, n = a->B * a->T;
#pragma omp parallel for schedule(static) if ((size_t)n * C * nmix >= PAR_MIN)
    for (int r = 0; r < n; r++) {
        const rwkv_real *xt = x + (size_t)r * C, *xp = r % T ? xt - C : NULL;
        for (int q = 0; q < nmix; q++) {
            rwkv_real *o = out[q] + (size_t)r * C;
            for (int i = 0; i < C; i++) o[i] = xt[i] + ((xp ? xp[i] : 0) - xt[i]) * mix[q][i];
        }
    }
}

// Backward of shift(): dx = sum_q (1 - mix_q) dX_q[t] + mix_q dX_q[t+1];
// dmix_q += sum_t dX_q[t] (x_{t-1} - x_t).
static void shift_backward(const struct rwkv_train_v7 *a, rwkv_real *dx, rwkv_real *const *dmix,
                           const rwkv_real *const *dX, const rwkv_real *const *mix, int nmix, const rwkv_real *x) {
    int C = a->C, T = a->T, n = a->B * a->T;
#pragma omp parallel for schedule(static) if ((size_t)n * C * nmix >= PAR_MIN)
    for (int r = 0; r < n; r++) {
        rwkv_real *d = dx + (size_t)r * C;
        int last = r % T == T - 1;
        for (int i = 0; i < C; i++) d[i] = 0;
        for (int q = 0; q < nmix; q++) {
            const rwkv_real *g = dX[q] + (size_t)r * C;
            for (int i = 0; i < C; i++) d[i] += (1 - mix[q][i]) * g[i] + (last ? 0 : mix[q][i] * g[i + C]);
        }
    }
    for (int q = 0; q < nmix; q++) { // (x_{t-1} - x_t) into s2, then the column sums
        rwkv_real *diff = a->s2;
#pragma omp parallel for schedule(static) if ((size_t)n * C >= PAR_MIN)
        for (int r = 0; r < n; r++)
            for (int i = 0; i < C; i++) {
                size_t o = (size_t)r * C + i;
                diff[o] = (r % T ? x[o - C] : 0) - x[o];
            }
        colsum(dmix[q], dX[q], diff, n, C);
    }
}

// out (n, O) = in (n, I) @ W (O, I)^T
static void mm(rwkv_real *out, const rwkv_real *in, const rwkv_real *W, int n, int O, int I) {
    rwkv_blas_matmul_nt(out, in, W, n, O, I, 0);
}

// dW (O, I) = dout^T in (overwritten); din (n, I) = dout W, added to when acc.
static void mm_back(rwkv_real *din, int acc, rwkv_real *dW, const rwkv_real *dout, const rwkv_real *in,
                    const rwkv_real *W, int n, int O, int I) {
    rwkv_blas_gemm(1, 0, O, I, n, 1, dout, O, in, I, 0, dW, I);
    rwkv_blas_gemm(0, 0, n, I, O, 1, dout, O, W, I, acc ? 1 : 0, din, I);
}

static void add_rows(rwkv_real *x, const rwkv_real *b, int n, int C) {
    for (int r = 0; r < n; r++)
        for (int i = 0; i < C; i++) x[(size_t)r * C + i] += b[i];
}

static rwkv_real sigm(rwkv_real x) { return 1 / (1 + RWKV_EXP(-x)); }

// ---------------------------------------------------------------- forward

// The LoRA branches, the value residual and the keys of layer l (rows of y filled).
static void projections(struct rwkv_train_v7 *a, const rwkv_v7_weights *w, layer7 *y, int l) {
    int n = a->B * a->T, C = a->C, N = a->N, H = a->H;
    const rwkv_v7_dims *d = &w->d;
    size_t lc = (size_t)l * C, nc = (size_t)n * C;
    mm(y->r, a->mix[MR], w->att_receptance + lc * C, n, C, C);
    mm(y->k0, a->mix[MK], w->att_key + lc * C, n, C, C);
    mm(y->vr, a->mix[MV], w->att_value + lc * C, n, C, C);
    mm(y->hw, a->mix[MW], w->w1 + lc * d->d_w, n, d->d_w, C);
    mm(y->ha, a->mix[MA], w->a1 + lc * d->d_a, n, d->d_a, C);
    mm(y->hg, a->mix[MG], w->g1 + lc * d->d_g, n, d->d_g, C);
    for (size_t i = 0; i < (size_t)n * d->d_w; i++) y->hw[i] = TANH(y->hw[i]);
    for (size_t i = 0; i < (size_t)n * d->d_g; i++) y->hg[i] = sigm(y->hg[i]);
    mm(y->ws, y->hw, w->w2 + lc * d->d_w, n, C, d->d_w);
    mm(y->a, y->ha, w->a2 + lc * d->d_a, n, C, d->d_a);
    mm(y->g, y->hg, w->g2 + lc * d->d_g, n, C, d->d_g);
    add_rows(y->ws, w->w0 + lc, n, C);
    add_rows(y->a, w->a0 + lc, n, C);
    const rwkv_real *vfirst = a->layers[0].v;
    if (l > 0) {
        mm(y->hv, a->mix[MV], w->v1 + lc * d->d_v, n, d->d_v, C);
        mm(y->vg, y->hv, w->v2 + lc * d->d_v, n, C, d->d_v);
        add_rows(y->vg, w->v0 + lc, n, C);
    }
#pragma omp parallel for schedule(static) if (nc >= PAR_MIN)
    for (size_t i = 0; i < nc; i++) {
        y->ws[i] = sigm(y->ws[i]);
        y->w[i] = RWKV_EXP((rwkv_real)-DECAY_SCALE * y->ws[i]); // exp(-e^{-1/2} sigmoid(.))
        y->a[i] = sigm(y->a[i]);
        if (l > 0) {
            y->vg[i] = sigm(y->vg[i]);
            y->v[i] = y->vr[i] + (vfirst[i] - y->vr[i]) * y->vg[i]; // v + (v_first - v) sigmoid(.)
        } else {
            y->v[i] = y->vr[i];
        }
    }
    const rwkv_real *k_k = w->k_k + lc, *k_a = w->k_a + lc;
#pragma omp parallel for schedule(static) if (nc >= PAR_MIN)
    for (int r = 0; r < n; r++) {
        size_t o = (size_t)r * C;
        for (int h = 0; h < H; h++) {
            double ss = 0;
            for (int j = 0; j < N; j++) {
                size_t i = o + (size_t)h * N + j;
                y->kk[i] = y->k0[i] * k_k[h * N + j];
                ss += (double)y->kk[i] * y->kk[i];
            }
            double norm = sqrt(ss);
            y->kn[(size_t)r * H + h] = (rwkv_real)norm;
            rwkv_real inv = (rwkv_real)(1.0 / (norm > NORM_MIN ? norm : NORM_MIN));
            for (int j = 0; j < N; j++) y->kk[o + (size_t)h * N + j] *= inv;
        }
        for (int i = 0; i < C; i++) y->k[o + i] = y->k0[o + i] + y->k0[o + i] * (y->a[o + i] - 1) * k_a[i];
    }
}

// The scan per sequence (forward_v7.c's kernel), saving the state at each chunk start.
static void scan(struct rwkv_train_v7 *a, layer7 *y) {
    int C = a->C, N = a->N, H = a->H, T = a->T, K = RWKV_V7_TRAIN_CHUNK;
    size_t HNN = (size_t)H * N * N;
#pragma omp parallel for schedule(static) if ((size_t)a->B * T * C * N >= PAR_MIN)
    for (int b = 0; b < a->B; b++) {
        rwkv_real *S = a->dS + (size_t)b * HNN;
        memset(S, 0, HNN * sizeof *S);
        for (int c = 0; c < a->n_chunk; c++) {
            int t0 = c * K, n = T - t0 < K ? T - t0 : K;
            size_t o = ((size_t)b * T + t0) * C;
            memcpy(y->S0 + ((size_t)b * a->n_chunk + c) * HNN, S, HNN * sizeof *S);
            rwkv_v7_wkv(y->y + o, S, NULL, y->r + o, y->w + o, y->k + o, y->v + o, y->kk + o, y->a + o, n, H, N);
        }
    }
}

// o2 = GroupNorm(y) ln_x_w + ln_x_b + bonus v;  the gated o2 * g goes to out.
static void readout(struct rwkv_train_v7 *a, const rwkv_v7_weights *w, layer7 *y, int l, rwkv_real *out) {
    int n = a->B * a->T, C = a->C, N = a->N, H = a->H;
    size_t lc = (size_t)l * C;
    gn_forward(y->o2, y->gn_mean, y->gn_rstd, y->y, w->ln_x_w + lc, w->ln_x_b + lc, n, C, N, RWKV_V7_GN_EPS);
    const rwkv_real *r_k = w->r_k + lc;
#pragma omp parallel for schedule(static) if ((size_t)n * C >= PAR_MIN)
    for (int r = 0; r < n; r++)
        for (int h = 0; h < H; h++) {
            size_t o = (size_t)r * C + (size_t)h * N;
            double s = 0;
            for (int j = 0; j < N; j++) s += (double)y->r[o + j] * y->k[o + j] * r_k[h * N + j];
            y->bonus[(size_t)r * H + h] = (rwkv_real)s;
            for (int j = 0; j < N; j++) {
                y->o2[o + j] += (rwkv_real)s * y->v[o + j];
                out[o + j] = y->o2[o + j] * y->g[o + j];
            }
        }
}

void rwkv_train_v7_block_forward(rwkv_train *t, const rwkv_model *m, int l, rwkv_real *x_next) {
    struct rwkv_train_v7 *a = t->v7;
    const rwkv_v7_weights *w = m->v7;
    layer7 *y = &a->layers[l];
    const rwkv_real *x_in = t->layers[l].x_in;
    int n = a->B * a->T, C = a->C, F = a->F;
    size_t lc = (size_t)l * C, nc = (size_t)n * C;
    gn_forward(y->xa, y->ln1_mean, y->ln1_rstd, x_in, w->ln1_w + lc, w->ln1_b + lc, n, C, C, LN_EPS);
    const rwkv_real *mix[N_MIX] = {w->x_r + lc, w->x_w + lc, w->x_k + lc, w->x_v + lc, w->x_a + lc, w->x_g + lc};
    shift(a, a->mix, mix, N_MIX, y->xa);
    projections(a, w, y, l);
    scan(a, y);
    readout(a, w, y, l, a->s1);
    mm(a->s2, a->s1, w->att_output + lc * C, n, C, C);
    for (size_t i = 0; i < nc; i++) y->x_mid[i] = x_in[i] + a->s2[i];
    // channel mix: x_next = x_mid + W_v relu(W_k x'_f)^2
    gn_forward(y->xf, y->ln2_mean, y->ln2_rstd, y->x_mid, w->ln2_w + lc, w->ln2_b + lc, n, C, C, LN_EPS);
    const rwkv_real *fmix = w->ffn_x_k + lc;
    shift(a, a->mix, &fmix, 1, y->xf);
    mm(y->kp, a->mix[0], w->ffn_key + lc * F, n, F, C);
    for (size_t i = 0; i < (size_t)n * F; i++) {
        rwkv_real r = (y->kp[i] + ABS(y->kp[i])) * (rwkv_real)0.5;
        a->sF[i] = r * r;
    }
    mm(a->s2, a->sF, w->ffn_value + lc * F, n, C, F);
    for (size_t i = 0; i < nc; i++) x_next[i] = y->x_mid[i] + a->s2[i];
}

// ---------------------------------------------------------------- backward

// dx: dL/d(block output) -> dL/d(x_mid).
static void channel_mix_backward(rwkv_train *t, const rwkv_v7_weights *w, rwkv_v7_weights *g, int l) {
    struct rwkv_train_v7 *a = t->v7;
    layer7 *y = &a->layers[l];
    int n = a->B * a->T, C = a->C, F = a->F;
    size_t lc = (size_t)l * C, nf = (size_t)n * F;
    const rwkv_real *fmix = w->ffn_x_k + lc;
    shift(a, a->mix, &fmix, 1, y->xf);
    for (size_t i = 0; i < nf; i++) {
        rwkv_real r = (y->kp[i] + ABS(y->kp[i])) * (rwkv_real)0.5;
        a->sF[i] = r * r;
    }
    mm_back(a->dF, 0, g->ffn_value + lc * F, t->dx, a->sF, w->ffn_value + lc * F, n, C, F);
    for (size_t i = 0; i < nf; i++) a->dF[i] *= y->kp[i] + ABS(y->kp[i]); // d relu(k)^2 = 2 relu(k)
    mm_back(a->dmix[0], 0, g->ffn_key + lc * F, a->dF, a->mix[0], w->ffn_key + lc * F, n, F, C);
    rwkv_real *gmix = g->ffn_x_k + lc;
    const rwkv_real *dX = a->dmix[0];
    shift_backward(a, a->s1, &gmix, &dX, &fmix, 1, y->xf);
    gn_backward(t->dx, g->ln2_w + lc, g->ln2_b + lc, a->s2, a->s1, y->x_mid, y->ln2_mean, y->ln2_rstd, w->ln2_w + lc,
                n, C, C);
}

// One (sequence, head) of the scan backward: dr, dk, dv added to; dw, dkk, da written.
static void scan_backward_head(struct rwkv_train_v7 *a, const layer7 *y, const rwkv_real *dy, int b, int h) {
    int C = a->C, N = a->N, H = a->H, T = a->T, K = RWKV_V7_TRAIN_CHUNK;
    size_t NN = (size_t)N * N, task = (size_t)b * H + h;
    rwkv_real *St = a->states + task * (K + 1) * NN, *dS = a->dS + task * NN;
    rwkv_real kka[RWKV_V7_MAX_HEAD_SIZE], dsa[RWKV_V7_MAX_HEAD_SIZE], dkka[RWKV_V7_MAX_HEAD_SIZE];
    memset(dS, 0, NN * sizeof *dS);
    for (int c = a->n_chunk - 1; c >= 0; c--) {
        int t0 = c * K, n = T - t0 < K ? T - t0 : K;
        memcpy(St, y->S0 + (((size_t)b * a->n_chunk + c) * H + h) * NN, NN * sizeof *St);
        for (int s = 0; s < n; s++) { // recompute the chunk's states as the forward did
            size_t o = ((size_t)b * T + t0 + s) * C + (size_t)h * N;
            const rwkv_real *S = St + s * NN;
            rwkv_real *Sn = St + (s + 1) * NN;
            for (int i = 0; i < N; i++) {
                rwkv_real sa = 0;
                for (int j = 0; j < N; j++) sa += S[i * N + j] * y->kk[o + j];
                for (int j = 0; j < N; j++)
                    Sn[i * N + j] = S[i * N + j] * y->w[o + j] - sa * (y->kk[o + j] * y->a[o + j]) + y->v[o + i] * y->k[o + j];
            }
        }
        for (int s = n - 1; s >= 0; s--) {
            size_t o = ((size_t)b * T + t0 + s) * C + (size_t)h * N;
            const rwkv_real *S = St + s * NN, *Sn = St + (s + 1) * NN;
            const rwkv_real *r = y->r + o, *w = y->w + o, *k = y->k + o, *v = y->v + o, *kk = y->kk + o, *aa = y->a + o;
            const rwkv_real *g = dy + o;
            for (int j = 0; j < N; j++) kka[j] = kk[j] * aa[j], dkka[j] = 0;
            for (int i = 0; i < N; i++) { // y = S_t r
                rwkv_real dv = 0, sa = 0, ds = 0;
                for (int j = 0; j < N; j++) {
                    dS[i * N + j] += g[i] * r[j];
                    a->dr[o + j] += Sn[i * N + j] * g[i];
                    dv += dS[i * N + j] * k[j];
                    sa += S[i * N + j] * kk[j];
                    ds -= dS[i * N + j] * kka[j];
                }
                a->dv[o + i] += dv;
                dsa[i] = ds;
                for (int j = 0; j < N; j++) dkka[j] -= dS[i * N + j] * sa;
            }
            for (int j = 0; j < N; j++) {
                rwkv_real dk = 0, dw = 0, dkk = 0;
                for (int i = 0; i < N; i++) {
                    dk += dS[i * N + j] * v[i];
                    dw += dS[i * N + j] * S[i * N + j];
                    dkk += S[i * N + j] * dsa[i];
                }
                a->dk[o + j] += dk;
                a->dw[o + j] = dw;
                a->dkk[o + j] = dkk + dkka[j] * aa[j];
                a->da[o + j] = dkka[j] * kk[j];
            }
            for (int i = 0; i < N; i++) // dS_{t-1} = dS diag(w) + dsa kk^T
                for (int j = 0; j < N; j++) dS[i * N + j] = dS[i * N + j] * w[j] + dsa[i] * kk[j];
        }
    }
}

// s1 = dL/d(gated readout input) -> dr, dk, dv, dg and the scan's gradients.
static void readout_backward(struct rwkv_train_v7 *a, const rwkv_v7_weights *w, rwkv_v7_weights *g, int l,
                             rwkv_real *dout) {
    layer7 *y = &a->layers[l];
    int n = a->B * a->T, C = a->C, N = a->N, H = a->H;
    size_t lc = (size_t)l * C;
    const rwkv_real *r_k = w->r_k + lc;
#pragma omp parallel for schedule(static) if ((size_t)n * C >= PAR_MIN)
    for (int r = 0; r < n; r++)
        for (int h = 0; h < H; h++) {
            size_t o = (size_t)r * C + (size_t)h * N;
            rwkv_real bonus = y->bonus[(size_t)r * H + h];
            double db = 0;
            for (int j = 0; j < N; j++) {
                a->dg[o + j] = dout[o + j] * y->o2[o + j];
                dout[o + j] *= y->g[o + j]; // d o2
                db += (double)dout[o + j] * y->v[o + j];
            }
            for (int j = 0; j < N; j++) {
                a->dv[o + j] = dout[o + j] * bonus;
                a->dr[o + j] = (rwkv_real)db * y->k[o + j] * r_k[h * N + j];
                a->dk[o + j] = (rwkv_real)db * y->r[o + j] * r_k[h * N + j];
                a->s2[o + j] = (rwkv_real)db * y->r[o + j] * y->k[o + j]; // for d r_k
            }
        }
    colsum(g->r_k + lc, a->s2, NULL, n, C);
    rwkv_real *dy = a->dmix[MR]; // free until the projections' backward
    memset(dy, 0, (size_t)n * C * sizeof *dy);
    gn_backward(dy, g->ln_x_w + lc, g->ln_x_b + lc, a->s2, dout, y->y, y->gn_mean, y->gn_rstd, w->ln_x_w + lc, n, C, N);
#pragma omp parallel for collapse(2) schedule(static) if ((size_t)a->B * a->T * C * N >= PAR_MIN)
    for (int b = 0; b < a->B; b++)
        for (int h = 0; h < H; h++) scan_backward_head(a, y, dy, b, h);
}

// The gradients of the per-token r, w, k, v, a, g, kk (in a->d*) back to the mixes and weights.
static void projections_backward(struct rwkv_train_v7 *a, const rwkv_v7_weights *w, rwkv_v7_weights *g, int l) {
    layer7 *y = &a->layers[l];
    int n = a->B * a->T, C = a->C, N = a->N, H = a->H;
    const rwkv_v7_dims *d = &w->d;
    size_t lc = (size_t)l * C, nc = (size_t)n * C;
    const rwkv_real *k_k = w->k_k + lc, *k_a = w->k_a + lc;
    // k = k0 (1 + (a-1) k_a);  kk = normalize(k0 k_k): dkkpre = (dkk - kk (kk . dkk)) / ||.||
#pragma omp parallel for schedule(static) if (nc >= PAR_MIN)
    for (int r = 0; r < n; r++) {
        size_t o = (size_t)r * C;
        for (int h = 0; h < H; h++) {
            size_t oh = o + (size_t)h * N;
            rwkv_real norm = y->kn[(size_t)r * H + h], dot = 0;
            for (int j = 0; j < N; j++) dot += y->kk[oh + j] * a->dkk[oh + j];
            if (!(norm > NORM_MIN)) norm = (rwkv_real)NORM_MIN, dot = 0; // clamped: kk = kkpre / 1e-12
            for (int j = 0; j < N; j++) a->dkk[oh + j] = (a->dkk[oh + j] - y->kk[oh + j] * dot) / norm;
        }
        for (int i = 0; i < C; i++) {
            size_t e = o + i;
            rwkv_real dk = a->dk[e], k0 = y->k0[e];
            a->da[e] += dk * k0 * k_a[i];
            a->s1[e] = dk * k0 * (y->a[e] - 1);               // for d k_a
            a->s2[e] = a->dkk[e] * k0;                         // for d k_k
            a->dk[e] = dk * (1 + (y->a[e] - 1) * k_a[i]) + a->dkk[e] * k_k[i]; // d k0
        }
    }
    colsum(g->k_a + lc, a->s1, NULL, n, C);
    colsum(g->k_k + lc, a->s2, NULL, n, C);
#pragma omp parallel for schedule(static) if (nc >= PAR_MIN)
    for (size_t i = 0; i < nc; i++) {
        a->da[i] *= y->a[i] * (1 - y->a[i]);                                 // d a0 + A2 A1 x
        a->dw[i] *= -(rwkv_real)DECAY_SCALE * y->w[i] * y->ws[i] * (1 - y->ws[i]); // d w0 + W2 tanh(.)
    }
    colsum(g->a0 + lc, a->da, NULL, n, C);
    colsum(g->w0 + lc, a->dw, NULL, n, C);
    // decay LoRA
    mm_back(a->dh, 0, g->w2 + lc * d->d_w, a->dw, y->hw, w->w2 + lc * d->d_w, n, C, d->d_w);
    for (size_t i = 0; i < (size_t)n * d->d_w; i++) a->dh[i] *= 1 - y->hw[i] * y->hw[i];
    mm_back(a->dmix[MW], 0, g->w1 + lc * d->d_w, a->dh, a->mix[MW], w->w1 + lc * d->d_w, n, d->d_w, C);
    // in-context rate LoRA
    mm_back(a->dh, 0, g->a2 + lc * d->d_a, a->da, y->ha, w->a2 + lc * d->d_a, n, C, d->d_a);
    mm_back(a->dmix[MA], 0, g->a1 + lc * d->d_a, a->dh, a->mix[MA], w->a1 + lc * d->d_a, n, d->d_a, C);
    // gate LoRA
    mm_back(a->dh, 0, g->g2 + lc * d->d_g, a->dg, y->hg, w->g2 + lc * d->d_g, n, C, d->d_g);
    for (size_t i = 0; i < (size_t)n * d->d_g; i++) a->dh[i] *= y->hg[i] * (1 - y->hg[i]);
    mm_back(a->dmix[MG], 0, g->g1 + lc * d->d_g, a->dh, a->mix[MG], w->g1 + lc * d->d_g, n, d->d_g, C);
    // value residual: v = v' + (v_first - v') s;  layer 0's v' gets v_first's gradient too
    int vacc = 0;
    if (l > 0) {
        const rwkv_real *vf = a->layers[0].v;
#pragma omp parallel for schedule(static) if (nc >= PAR_MIN)
        for (size_t i = 0; i < nc; i++) {
            rwkv_real dv = a->dv[i], s = y->vg[i];
            a->dvfirst[i] += dv * s;
            a->s1[i] = dv * (vf[i] - y->vr[i]) * s * (1 - s); // d v0 + V2 V1 x
            a->dv[i] = dv * (1 - s);
        }
        colsum(g->v0 + lc, a->s1, NULL, n, C);
        mm_back(a->dh, 0, g->v2 + lc * d->d_v, a->s1, y->hv, w->v2 + lc * d->d_v, n, C, d->d_v);
        mm_back(a->dmix[MV], 0, g->v1 + lc * d->d_v, a->dh, a->mix[MV], w->v1 + lc * d->d_v, n, d->d_v, C);
        vacc = 1;
    } else {
        for (size_t i = 0; i < nc; i++) a->dv[i] += a->dvfirst[i];
    }
    mm_back(a->dmix[MV], vacc, g->att_value + lc * C, a->dv, a->mix[MV], w->att_value + lc * C, n, C, C);
    mm_back(a->dmix[MK], 0, g->att_key + lc * C, a->dk, a->mix[MK], w->att_key + lc * C, n, C, C);
    mm_back(a->dmix[MR], 0, g->att_receptance + lc * C, a->dr, a->mix[MR], w->att_receptance + lc * C, n, C, C);
}

// dx: dL/d(x_mid) -> dL/d(x_in).
static void time_mix_backward(rwkv_train *t, const rwkv_v7_weights *w, rwkv_v7_weights *g, int l) {
    struct rwkv_train_v7 *a = t->v7;
    layer7 *y = &a->layers[l];
    int n = a->B * a->T, C = a->C;
    size_t lc = (size_t)l * C, nc = (size_t)n * C;
    const rwkv_real *mix[N_MIX] = {w->x_r + lc, w->x_w + lc, w->x_k + lc, w->x_v + lc, w->x_a + lc, w->x_g + lc};
    shift(a, a->mix, mix, N_MIX, y->xa);
    for (size_t i = 0; i < nc; i++) a->s1[i] = y->o2[i] * y->g[i]; // the gated readout again
    mm_back(a->dmix[MK], 0, g->att_output + lc * C, t->dx, a->s1, w->att_output + lc * C, n, C, C);
    memcpy(a->s1, a->dmix[MK], nc * sizeof *a->s1);
    readout_backward(a, w, g, l, a->s1);
    projections_backward(a, w, g, l);
    rwkv_real *gmix[N_MIX] = {g->x_r + lc, g->x_w + lc, g->x_k + lc, g->x_v + lc, g->x_a + lc, g->x_g + lc};
    const rwkv_real *dX[N_MIX] = {a->dmix[0], a->dmix[1], a->dmix[2], a->dmix[3], a->dmix[4], a->dmix[5]};
    shift_backward(a, a->s1, gmix, dX, mix, N_MIX, y->xa);
    gn_backward(t->dx, g->ln1_w + lc, g->ln1_b + lc, a->s2, a->s1, t->layers[l].x_in, y->ln1_mean, y->ln1_rstd,
                w->ln1_w + lc, n, C, C);
}

void rwkv_train_v7_block_backward(rwkv_train *t, const rwkv_model *m, rwkv_real *grad, int l) {
    struct rwkv_train_v7 *a = t->v7;
    rwkv_v7_weights g = {.d = m->v7->d};
    rwkv_v7_weights_bind(&g, grad, m->cfg);
    size_t nc = (size_t)a->B * a->T * a->C;
    if (l == m->cfg.n_layer - 1) memset(a->dvfirst, 0, nc * sizeof *a->dvfirst);
    channel_mix_backward(t, m->v7, &g, l);
    time_mix_backward(t, m->v7, &g, l);
    if (l == 0) { // layer 0 has no value residual: its slots are not parameters
        int C = a->C, Dv = m->v7->d.d_v;
        memset(g.v0, 0, (size_t)C * sizeof *g.v0);
        memset(g.v1, 0, (size_t)Dv * C * sizeof *g.v1);
        memset(g.v2, 0, (size_t)C * Dv * sizeof *g.v2);
    }
}
