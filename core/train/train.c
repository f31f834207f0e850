// train.c: training forward and backward over N = B*T rows (equations inline).
// Projections are GEMMs over all rows; the WKV scans and element-wise parts are spread over
// threads with OpenMP. Reductions over rows (parameter gradients of vectors) run per
// channel in a fixed order, so a step is deterministic for a given thread count.
#include "train.h"

#include "../compute/blas.h"
#include "../compute/kernels.h"
#include "../compute/wkv.h"
#include "train_v7.h"

#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define COL_BLOCK 32 // channels per thread task in column (over-rows) sums

rwkv_status rwkv_batch_alloc(rwkv_batch *b, int B, int T) {
    memset(b, 0, sizeof *b);
    if (B < 1 || T < 1) return rwkv_error_set(RWKV_ERR_ARG, "batch needs B >= 1 and T >= 1, got B=%d T=%d", B, T);
    size_t n = (size_t)B * T;
    b->B = B, b->T = T;
    b->inputs = rwkv_calloc(n, sizeof(int), "batch inputs");
    b->targets = rwkv_calloc(n, sizeof(int), "batch targets");
    b->mask = rwkv_calloc(n, sizeof(rwkv_real), "batch mask");
    if (!b->inputs || !b->targets || !b->mask) {
        rwkv_batch_free(b);
        return RWKV_ERR_NOMEM;
    }
    for (size_t i = 0; i < n; i++) b->mask[i] = 1;
    return RWKV_OK;
}

void rwkv_batch_free(rwkv_batch *b) {
    if (!b) return;
    free(b->inputs);
    free(b->targets);
    free(b->mask);
    memset(b, 0, sizeof *b);
}

// ---------------------------------------------------------------- arena

// Hands out consecutive slices of the arena; with base == NULL it only counts.
typedef struct {
    rwkv_real *base;
    size_t used;
} carver;

static rwkv_real *carve(carver *c, size_t n) {
    rwkv_real *p = c->base ? c->base + c->used : NULL;
    c->used += n;
    return p;
}

static void layout(rwkv_train *t, carver *c) {
    int L = t->cfg.n_layer, C = t->cfg.n_embd, F = t->cfg.n_ffn, V = t->cfg.n_vocab;
    size_t N = (size_t)t->B * t->T, NC = N * C;
    for (int l = 0; l < L; l++) {
        rwkv_train_layer *a = &t->layers[l];
        a->x_in = carve(c, NC);
        if (RWKV_IS_V7(t->cfg)) continue; // the rest is in t->v7
        a->xa = carve(c, NC);
        a->ln1_mean = carve(c, N), a->ln1_rstd = carve(c, N);
        a->sr = carve(c, NC), a->k = carve(c, NC), a->v = carve(c, NC), a->y = carve(c, NC);
        a->wp = carve(c, NC), a->wd = carve(c, NC), a->x_mid = carve(c, NC), a->xf = carve(c, NC);
        a->ln2_mean = carve(c, N), a->ln2_rstd = carve(c, N);
        a->fr = carve(c, NC), a->kp = carve(c, N * F), a->fv = carve(c, NC);
    }
    t->emb_x = carve(c, NC), t->ln0_mean = carve(c, N), t->ln0_rstd = carve(c, N);
    t->x_out = carve(c, NC), t->xo = carve(c, NC), t->lno_mean = carve(c, N), t->lno_rstd = carve(c, N);
    t->logits = carve(c, N * V), t->lse = carve(c, N), t->losses = carve(c, N);
    t->dx = carve(c, NC), t->s1 = carve(c, NC), t->s2 = carve(c, NC), t->s3 = carve(c, NC);
    t->s4 = carve(c, NC), t->mk = carve(c, NC), t->mv = carve(c, NC), t->mr = carve(c, NC);
    t->sF = carve(c, N * F);
    t->part_td = carve(c, (size_t)t->B * C), t->part_u = carve(c, (size_t)t->B * C);
    t->zeros = carve(c, C);
}

rwkv_status rwkv_train_alloc(rwkv_train **out, rwkv_config cfg, int B, int T) {
    *out = NULL;
    rwkv_status st = rwkv_weights_check_config(cfg);
    if (st) return st;
    if (B < 1 || T < 1)
        return rwkv_error_set(RWKV_ERR_ARG, "training needs batch >= 1 and ctx >= 1, got batch=%d ctx=%d", B, T);
    if ((int64_t)B * T > INT_MAX / 4)
        return rwkv_error_set(RWKV_ERR_ARG, "batch x ctx = %lld tokens per step is too large", (long long)B * T);
    if (cfg.version == RWKV_VERSION_5 || cfg.version == RWKV_VERSION_6)
        return rwkv_error_set(RWKV_ERR_UNSUPPORTED, "training supports RWKV-4 and RWKV-7 models, not RWKV-%s",
                              cfg.version == RWKV_VERSION_5 ? "5.2" : "6");
    rwkv_train *t = rwkv_calloc(1, sizeof *t, "training state");
    if (!t) return RWKV_ERR_NOMEM;
    t->cfg = cfg, t->B = B, t->T = T;
    t->layers = rwkv_calloc((size_t)cfg.n_layer, sizeof *t->layers, "training layers");
    if (RWKV_IS_V7(cfg) && (st = rwkv_train_v7_alloc(&t->v7, cfg, B, T))) {
        rwkv_train_free(t);
        return st;
    }
    carver c = {0};
    if (t->layers) layout(t, &c);
    t->arena_len = c.used;
    if (!t->layers || !(t->arena = rwkv_calloc(c.used, sizeof(rwkv_real), "training activations"))) {
        rwkv_train_free(t);
        return RWKV_ERR_NOMEM;
    }
    c = (carver){t->arena, 0};
    layout(t, &c);
    *out = t;
    return RWKV_OK;
}

void rwkv_train_free(rwkv_train *t) {
    if (!t) return;
    free(t->arena);
    free(t->layers);
    rwkv_train_v7_free(t->v7);
    free(t);
}

// ---------------------------------------------------------------- kernels

// Token shift per sequence: out_t = mix x_t + (1-mix) x_{t-1}, x_{-1} = 0.
static void shift_mix(const rwkv_train *t, rwkv_real *out, const rwkv_real *x, const rwkv_real *mix) {
    int C = t->cfg.n_embd;
#pragma omp parallel for schedule(static) if ((size_t)t->B * t->T * t->cfg.n_embd >= RWKV_PAR_MIN_ELEMS)
    for (int b = 0; b < t->B; b++) {
        size_t o = (size_t)b * t->T * C;
        rwkv_token_mix(out + o, x + o, t->zeros, mix, t->T, C);
    }
}

// Backward of nmix token shifts of the same x: dx (N, C) = sum_j mix_j dX_j[t] +
// (1 - mix_j) dX_j[t+1] (within the sequence); dmix_j += sum_t dX_j[t] (x_t - x_{t-1}).
static void shift_mix_backward(const rwkv_train *t, rwkv_real *dx, rwkv_real *const *dmix,
                               const rwkv_real *const *dX, const rwkv_real *const *mix, int nmix,
                               const rwkv_real *x) {
    int C = t->cfg.n_embd, T = t->T, N = t->B * t->T;
#pragma omp parallel for schedule(static) if ((size_t)N * C >= RWKV_PAR_MIN_ELEMS)
    for (int n = 0; n < N; n++) {
        int last = n % T == T - 1;
        rwkv_real *dxn = dx + (size_t)n * C;
        for (int i = 0; i < C; i++) dxn[i] = 0;
        for (int j = 0; j < nmix; j++) {
            const rwkv_real *g = dX[j] + (size_t)n * C;
            for (int i = 0; i < C; i++) dxn[i] += mix[j][i] * g[i];
            if (last) continue;
            for (int i = 0; i < C; i++) dxn[i] += (1 - mix[j][i]) * g[i + C];
        }
    }
    int nb = (C + COL_BLOCK - 1) / COL_BLOCK;
#pragma omp parallel for schedule(static) if ((size_t)N * C >= RWKV_PAR_MIN_ELEMS)
    for (int blk = 0; blk < nb; blk++) {
        int c0 = blk * COL_BLOCK, nc = C - c0 < COL_BLOCK ? C - c0 : COL_BLOCK;
        for (int j = 0; j < nmix; j++) {
            double s[COL_BLOCK] = {0};
            for (int n = 0; n < N; n++) {
                size_t o = (size_t)n * C + c0;
                const rwkv_real *g = dX[j] + o, *xn = x + o, *xp = n % T ? x + o - C : t->zeros;
#pragma omp simd
                for (int i = 0; i < nc; i++) s[i] += g[i] * (xn[i] - xp[i]);
            }
            for (int i = 0; i < nc; i++) dmix[j][c0 + i] += (rwkv_real)s[i];
        }
    }
}

// out (N, O) = in (N, I) @ W (O, I)^T
static void mm_forward(rwkv_real *out, const rwkv_real *in, const rwkv_real *W, int N, int O, int I) {
    rwkv_blas_matmul_nt(out, in, W, N, O, I, 0);
}

// dW (O, I) = dout (N, O)^T @ in (N, I); din (N, I) = dout @ W (if din != NULL).
// Each matrix gradient is written once per backward, so dW is overwritten, not accumulated.
static void mm_backward(rwkv_real *din, rwkv_real *dW, const rwkv_real *dout, const rwkv_real *in,
                        const rwkv_real *W, int N, int O, int I) {
    rwkv_blas_gemm(1, 0, O, I, N, 1, dout, O, in, I, 0, dW, I);
    if (din) rwkv_blas_gemm(0, 0, N, I, O, 1, dout, O, W, I, 0, din, I);
}

// out = x + a * b (b NULL: out = x + a). restrict pointers let the loops vectorise.
static void add_mul_par(rwkv_real *restrict out, const rwkv_real *restrict x, const rwkv_real *restrict a,
                        const rwkv_real *restrict b, size_t n) {
    if (!b) {
#pragma omp parallel for simd schedule(static) if (n >= RWKV_PAR_MIN_ELEMS)
        for (size_t i = 0; i < n; i++) out[i] = x[i] + a[i];
        return;
    }
#pragma omp parallel for simd schedule(static) if (n >= RWKV_PAR_MIN_ELEMS)
    for (size_t i = 0; i < n; i++) out[i] = x[i] + a[i] * b[i];
}

// ---------------------------------------------------------------- forward

static void time_mix_forward(rwkv_train *t, const rwkv_model *m, int l) {
    const rwkv_weights *w = &m->w;
    rwkv_train_layer *a = &t->layers[l];
    int C = t->cfg.n_embd, N = t->B * t->T;
    size_t lc = (size_t)l * C, lcc = lc * C, NC = (size_t)N * C;
    rwkv_layernorm_stats(a->xa, a->ln1_mean, a->ln1_rstd, a->x_in, w->ln1_w + lc, w->ln1_b + lc, N, C);
    shift_mix(t, t->mk, a->xa, w->att_mix_k + lc);
    shift_mix(t, t->mv, a->xa, w->att_mix_v + lc);
    shift_mix(t, t->mr, a->xa, w->att_mix_r + lc);
    mm_forward(a->sr, t->mr, w->att_receptance + lcc, N, C, C);
    mm_forward(a->k, t->mk, w->att_key + lcc, N, C, C);
    mm_forward(a->v, t->mv, w->att_value + lcc, N, C, C);
    rwkv_sigmoid(a->sr, a->sr, NC);
    int nblk = (C + RWKV_WKV_BLOCK - 1) / RWKV_WKV_BLOCK;
#pragma omp parallel for collapse(2) schedule(static) if ((size_t)t->B * t->T * t->cfg.n_embd >= RWKV_PAR_MIN_ELEMS)
    for (int b = 0; b < t->B; b++)
        for (int j = 0; j < nblk; j++) {
            size_t o = (size_t)b * t->T * C;
            int c0 = j * RWKV_WKV_BLOCK, c1 = c0 + RWKV_WKV_BLOCK < C ? c0 + RWKV_WKV_BLOCK : C;
            rwkv_wkv_trace tr = {.p = a->wp + o, .d = a->wd + o}; // what the backward needs
            rwkv_wkv_scan_channels(a->y + o, a->k + o, a->v + o, m->decay_w + lc, w->att_time_first + lc,
                                   t->T, C, c0, c1, &tr);
        }
    rwkv_mul(t->s1, a->sr, a->y, NC); // sigmoid(r) * wkv
    mm_forward(t->s2, t->s1, w->att_output + lcc, N, C, C);
    add_mul_par(a->x_mid, a->x_in, t->s2, NULL, NC);
}

static void channel_mix_forward(rwkv_train *t, const rwkv_model *m, int l, rwkv_real *x_next) {
    const rwkv_weights *w = &m->w;
    rwkv_train_layer *a = &t->layers[l];
    int C = t->cfg.n_embd, F = t->cfg.n_ffn, N = t->B * t->T;
    size_t lc = (size_t)l * C, NC = (size_t)N * C, NF = (size_t)N * F;
    rwkv_layernorm_stats(a->xf, a->ln2_mean, a->ln2_rstd, a->x_mid, w->ln2_w + lc, w->ln2_b + lc, N, C);
    shift_mix(t, t->mk, a->xf, w->ffn_mix_k + lc);
    shift_mix(t, t->mr, a->xf, w->ffn_mix_r + lc);
    mm_forward(a->fr, t->mr, w->ffn_receptance + lc * C, N, C, C);
    rwkv_sigmoid(a->fr, a->fr, NC);
    mm_forward(a->kp, t->mk, w->ffn_key + lc * F, N, F, C);
    rwkv_relu_sq(t->sF, a->kp, NF); // relu(k)^2
    mm_forward(a->fv, t->sF, w->ffn_value + lc * F, N, C, F);
    add_mul_par(x_next, a->x_mid, a->fr, a->fv, NC); // x + sigmoid(r) * W_v relu(k)^2
}

static rwkv_status check_batch(const rwkv_train *t, const rwkv_model *m, const rwkv_batch *b) {
    if (b->B != t->B || b->T != t->T)
        return rwkv_error_set(RWKV_ERR_ARG, "batch is (%d, %d) but the trainer was made for (%d, %d)",
                              b->B, b->T, t->B, t->T);
    const rwkv_config *c = &m->cfg, *tc = &t->cfg;
    if (c->n_layer != tc->n_layer || c->n_embd != tc->n_embd || c->n_ffn != tc->n_ffn || c->n_vocab != tc->n_vocab)
        return rwkv_error_set(RWKV_ERR_ARG, "the trainer was made for another model shape");
    size_t n = (size_t)b->B * b->T;
    for (size_t i = 0; i < n; i++) {
        int bad = b->inputs[i] < 0 || b->inputs[i] >= c->n_vocab;
        if (bad || (b->targets && (b->targets[i] < 0 || b->targets[i] >= c->n_vocab)))
            return rwkv_error_set(RWKV_ERR_ARG, "batch: %s %d at row %zu position %zu is outside the vocabulary [0, %d)",
                                  bad ? "input" : "target", bad ? b->inputs[i] : b->targets[i],
                                  i / b->T, i % b->T, c->n_vocab);
    }
    return RWKV_OK;
}

// Cross-entropy per row from the logits: lse = log sum e^{logit}, loss = lse - logit[target].
static rwkv_status cross_entropy(rwkv_train *t, const rwkv_batch *b, double *loss) {
    int N = t->B * t->T, V = t->cfg.n_vocab;
#pragma omp parallel for schedule(static) if ((size_t)N * V >= RWKV_PAR_MIN_ELEMS)
    for (int n = 0; n < N; n++) {
        const rwkv_real *z = t->logits + (size_t)n * V;
        rwkv_real mx = z[0];
        for (int i = 1; i < V; i++) mx = z[i] > mx ? z[i] : mx;
        double s = 0;
        for (int i = 0; i < V; i++) s += RWKV_EXP(z[i] - mx);
        t->lse[n] = mx + (rwkv_real)log(s);
        t->losses[n] = t->lse[n] - z[b->targets[n]];
    }
    double sum = 0, wsum = 0;
    for (int n = 0; n < N; n++) sum += (double)b->mask[n] * t->losses[n], wsum += b->mask[n];
    if (!(wsum > 0)) return rwkv_error_set(RWKV_ERR_ARG, "batch: the loss mask is zero everywhere");
    *loss = sum / wsum;
    if (!isfinite(*loss)) return rwkv_error_set(RWKV_ERR_NUMERIC, "the loss is not finite (%g)", *loss);
    return RWKV_OK;
}

rwkv_status rwkv_train_forward(rwkv_train *t, const rwkv_model *m, const rwkv_batch *b, double *loss) {
    rwkv_status st = check_batch(t, m, b);
    if (st) return st;
    int L = t->cfg.n_layer, C = t->cfg.n_embd, V = t->cfg.n_vocab, N = t->B * t->T;
    for (int n = 0; n < N; n++)
        memcpy(t->emb_x + (size_t)n * C, m->w.emb + (size_t)b->inputs[n] * C, C * sizeof(rwkv_real));
    rwkv_layernorm_stats(t->layers[0].x_in, t->ln0_mean, t->ln0_rstd, t->emb_x, m->w.ln0_w, m->w.ln0_b, N, C);
    for (int l = 0; l < L; l++) {
        if (t->v7) {
            rwkv_train_v7_block_forward(t, m, l, l + 1 < L ? t->layers[l + 1].x_in : t->x_out);
            continue;
        }
        time_mix_forward(t, m, l);
        channel_mix_forward(t, m, l, l + 1 < L ? t->layers[l + 1].x_in : t->x_out);
    }
    rwkv_layernorm_stats(t->xo, t->lno_mean, t->lno_rstd, t->x_out, m->w.ln_out_w, m->w.ln_out_b, N, C);
    mm_forward(t->logits, t->xo, m->w.head, N, V, C);
    t->logits_valid = 1;
    if (!b->targets) return RWKV_OK;
    return cross_entropy(t, b, loss);
}

// ---------------------------------------------------------------- backward

// dlogits = (softmax - onehot(target)) * mask / sum(mask), in place over the logits.
static void cross_entropy_backward(rwkv_train *t, const rwkv_batch *b) {
    int N = t->B * t->T, V = t->cfg.n_vocab;
    double wsum = 0;
    for (int n = 0; n < N; n++) wsum += b->mask[n];
#pragma omp parallel for schedule(static) if ((size_t)N * V >= RWKV_PAR_MIN_ELEMS)
    for (int n = 0; n < N; n++) {
        rwkv_real *z = t->logits + (size_t)n * V;
        rwkv_real scale = (rwkv_real)(b->mask[n] / wsum);
        for (int i = 0; i < V; i++) z[i] = RWKV_EXP(z[i] - t->lse[n]) * scale;
        z[b->targets[n]] -= scale;
    }
}

// t->dx holds dL/d(block output); on return dL/d(x_mid).
static void channel_mix_backward(rwkv_train *t, const rwkv_model *m, rwkv_weights *g, int l) {
    const rwkv_weights *w = &m->w;
    rwkv_train_layer *a = &t->layers[l];
    int C = t->cfg.n_embd, F = t->cfg.n_ffn, N = t->B * t->T;
    size_t lc = (size_t)l * C, NC = (size_t)N * C, NF = (size_t)N * F;
    shift_mix(t, t->mk, a->xf, w->ffn_mix_k + lc); // recompute the mixes
    shift_mix(t, t->mr, a->xf, w->ffn_mix_r + lc);
    rwkv_sigmoid_gate_backward(t->s1, t->s2, t->dx, a->fr, a->fv, NC); // s1 = d fv, s2 = d r
    rwkv_relu_sq(t->sF, a->kp, NF);                         // relu(k)^2 again
    size_t lcf = lc * F;
    rwkv_blas_gemm(1, 0, C, F, N, 1, t->s1, C, t->sF, F, 0, g->ffn_value + lcf, F); // dWv = dfv^T kk
    rwkv_blas_gemm(0, 0, N, F, C, 1, t->s1, C, w->ffn_value + lcf, F, 0, t->sF, F); // dkk = dfv Wv
    rwkv_relu_sq_backward(t->sF, a->kp, NF);
    mm_backward(t->s3, g->ffn_key + lcf, t->sF, t->mk, w->ffn_key + lcf, N, F, C);
    mm_backward(t->s4, g->ffn_receptance + lc * C, t->s2, t->mr, w->ffn_receptance + lc * C, N, C, C);
    const rwkv_real *dX[2] = {t->s3, t->s4}, *mix[2] = {w->ffn_mix_k + lc, w->ffn_mix_r + lc};
    rwkv_real *dmix[2] = {g->ffn_mix_k + lc, g->ffn_mix_r + lc};
    shift_mix_backward(t, t->s1, dmix, dX, mix, 2, a->xf);
    rwkv_layernorm_backward(t->dx, g->ln2_w + lc, g->ln2_b + lc, t->s1, a->x_mid, a->ln2_mean, a->ln2_rstd,
                w->ln2_w + lc, N, C); // the residual path carries dx through unchanged
}

static void wkv_backward(rwkv_train *t, const rwkv_model *m, rwkv_weights *g, int l,
                         rwkv_real *dk, rwkv_real *dv, const rwkv_real *dy) {
    rwkv_train_layer *a = &t->layers[l];
    int C = t->cfg.n_embd, B = t->B;
    size_t lc = (size_t)l * C;
    int nblk = (C + RWKV_WKV_BLOCK - 1) / RWKV_WKV_BLOCK;
    memset(t->part_td, 0, (size_t)B * C * sizeof(rwkv_real));
    memset(t->part_u, 0, (size_t)B * C * sizeof(rwkv_real));
#pragma omp parallel for collapse(2) schedule(static) if ((size_t)t->B * t->T * t->cfg.n_embd >= RWKV_PAR_MIN_ELEMS)
    for (int b = 0; b < B; b++)
        for (int j = 0; j < nblk; j++) {
            size_t o = (size_t)b * t->T * C;
            int c0 = j * RWKV_WKV_BLOCK, c1 = c0 + RWKV_WKV_BLOCK < C ? c0 + RWKV_WKV_BLOCK : C;
            rwkv_wkv_backward(dk + o, dv + o, t->part_td + (size_t)b * C, t->part_u + (size_t)b * C,
                              dy + o, a->k + o, a->v + o, m->decay_w + lc, m->w.att_time_first + lc,
                              a->y + o, a->wp + o, a->wd + o, t->T, C, c0, c1);
        }
    for (int b = 0; b < B; b++)
        for (int i = 0; i < C; i++) {
            g->att_time_decay[lc + i] += t->part_td[(size_t)b * C + i];
            g->att_time_first[lc + i] += t->part_u[(size_t)b * C + i];
        }
}

// t->dx holds dL/d(x_mid); on return dL/d(x_in).
static void time_mix_backward(rwkv_train *t, const rwkv_model *m, rwkv_weights *g, int l) {
    const rwkv_weights *w = &m->w;
    rwkv_train_layer *a = &t->layers[l];
    int C = t->cfg.n_embd, N = t->B * t->T;
    size_t lc = (size_t)l * C, lcc = lc * C, NC = (size_t)N * C;
    rwkv_mul(t->s1, a->sr, a->y, NC); // recompute sigmoid(r) wkv
    mm_backward(t->s2, g->att_output + lcc, t->dx, t->s1, w->att_output + lcc, N, C, C);
    rwkv_sigmoid_gate_backward(t->s3, t->s4, t->s2, a->sr, a->y, NC); // s3 = d wkv, s4 = d r
    wkv_backward(t, m, g, l, t->s1, t->s2, t->s3); // s1 = dk, s2 = dv
    shift_mix(t, t->mk, a->xa, w->att_mix_k + lc);
    shift_mix(t, t->mv, a->xa, w->att_mix_v + lc);
    shift_mix(t, t->mr, a->xa, w->att_mix_r + lc);
    mm_backward(t->s3, g->att_key + lcc, t->s1, t->mk, w->att_key + lcc, N, C, C);
    mm_backward(t->s1, g->att_value + lcc, t->s2, t->mv, w->att_value + lcc, N, C, C);
    mm_backward(t->s2, g->att_receptance + lcc, t->s4, t->mr, w->att_receptance + lcc, N, C, C);
    const rwkv_real *dX[3] = {t->s3, t->s1, t->s2};
    const rwkv_real *mix[3] = {w->att_mix_k + lc, w->att_mix_v + lc, w->att_mix_r + lc};
    rwkv_real *dmix[3] = {g->att_mix_k + lc, g->att_mix_v + lc, g->att_mix_r + lc};
    shift_mix_backward(t, t->s4, dmix, dX, mix, 3, a->xa);
    rwkv_layernorm_backward(t->dx, g->ln1_w + lc, g->ln1_b + lc, t->s4, a->x_in, a->ln1_mean, a->ln1_rstd,
                w->ln1_w + lc, N, C);
}

rwkv_status rwkv_train_backward(rwkv_train *t, const rwkv_model *m, const rwkv_batch *b, rwkv_real *grad) {
    if (!t->logits_valid || !b->targets)
        return rwkv_error_set(RWKV_ERR_ARG, "backward needs a forward with targets on the same batch first");
    int L = t->cfg.n_layer, C = t->cfg.n_embd, V = t->cfg.n_vocab, N = t->B * t->T;
    for (int i = 0; i < m->table.n; i++) { // vectors and emb accumulate; matrices are overwritten
        const rwkv_param *p = &m->table.params[i];
        if (!p->is_matrix) memset(grad + p->offset, 0, p->numel * sizeof(rwkv_real));
    }
    rwkv_weights g;
    rwkv_weights_bind(&g, grad, &m->table);
    cross_entropy_backward(t, b);
    t->logits_valid = 0;
    mm_backward(t->s1, g.head, t->logits, t->xo, m->w.head, N, V, C);
    memset(t->dx, 0, (size_t)N * C * sizeof(rwkv_real));
    rwkv_layernorm_backward(t->dx, g.ln_out_w, g.ln_out_b, t->s1, t->x_out, t->lno_mean, t->lno_rstd,
                m->w.ln_out_w, N, C);
    for (int l = L - 1; l >= 0; l--) {
        if (t->v7) {
            rwkv_train_v7_block_backward(t, m, grad, l);
            continue;
        }
        channel_mix_backward(t, m, &g, l);
        time_mix_backward(t, m, &g, l);
    }
    memset(t->s1, 0, (size_t)N * C * sizeof(rwkv_real));
    rwkv_layernorm_backward(t->s1, g.ln0_w, g.ln0_b, t->dx, t->emb_x, t->ln0_mean, t->ln0_rstd, m->w.ln0_w, N, C);
    int nb = (C + COL_BLOCK - 1) / COL_BLOCK;
#pragma omp parallel for schedule(static) if ((size_t)N * C >= RWKV_PAR_MIN_ELEMS)
    for (int blk = 0; blk < nb; blk++) { // scatter-add per channel block: rows in a fixed order
        int c0 = blk * COL_BLOCK, nc = C - c0 < COL_BLOCK ? C - c0 : COL_BLOCK;
        for (int n = 0; n < N; n++) {
            rwkv_real *dst = g.emb + (size_t)b->inputs[n] * C + c0;
            const rwkv_real *src = t->s1 + (size_t)n * C + c0;
#pragma omp simd
            for (int i = 0; i < nc; i++) dst[i] += src[i];
        }
    }
    return RWKV_OK;
}
