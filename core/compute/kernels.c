// kernels.c: layernorm, token shift and the element-wise ops.
// A parallel chunk (T = 512 tokens) spends most of its time in GEMMs, but these loops are
// single passes over (T, C) arrays and were ~8% of it on one thread; they split over rows
// between threads when the array is large. One token stays on one thread: a parallel
// region costs more than the loop.
#include "kernels.h"

#include <math.h>

#define SIGMOID_SPAN 4096 // elements per call of the vectorised element-wise loops
#define LN_COL_BLOCK 32   // channels per thread task in the column sums of the layernorm backward

// glibc's libmvec provides vector exp/expf; declaring them lets the sigmoid loop vectorise.
#pragma omp declare simd notinbranch
float expf(float);
#pragma omp declare simd notinbranch
double exp(double);

void rwkv_layernorm(rwkv_real *out, const rwkv_real *x, const rwkv_real *w, const rwkv_real *b,
                    int T, int C) {
    rwkv_layernorm_stats(out, NULL, NULL, x, w, b, T, C);
}

void rwkv_layernorm_stats(rwkv_real *out, rwkv_real *mean_out, rwkv_real *rstd_out, const rwkv_real *x,
                          const rwkv_real *w, const rwkv_real *b, int T, int C) {
#pragma omp parallel for schedule(static) if ((size_t)T * C >= RWKV_PAR_MIN_ELEMS)
    for (int t = 0; t < T; t++) {
        const rwkv_real *xt = x + (size_t)t * C;
        rwkv_real *ot = out + (size_t)t * C;
        double mean = 0, var = 0;
        for (int i = 0; i < C; i++) mean += xt[i];
        mean /= C;
        for (int i = 0; i < C; i++) var += (xt[i] - mean) * (xt[i] - mean);
        var /= C; // biased variance, as torch.nn.LayerNorm
        rwkv_real rstd = (rwkv_real)(1.0 / sqrt(var + RWKV_LN_EPS));
        for (int i = 0; i < C; i++) ot[i] = (rwkv_real)(xt[i] - mean) * rstd * w[i] + b[i];
        if (mean_out) mean_out[t] = (rwkv_real)mean;
        if (rstd_out) rstd_out[t] = rstd;
    }
}

// With xh = (x - mean) rstd and g = dy w:  dx = rstd (g - mean(g) - xh mean(g xh)),
// dw = sum dy xh,  db = sum dy (sums over rows, in a fixed order per channel).
void rwkv_layernorm_backward(rwkv_real *dx, rwkv_real *dw, rwkv_real *db, const rwkv_real *dy,
                             const rwkv_real *x, const rwkv_real *mean, const rwkv_real *rstd,
                             const rwkv_real *w, int T, int C) {
#pragma omp parallel for schedule(static) if ((size_t)T * C >= RWKV_PAR_MIN_ELEMS)
    for (int n = 0; n < T; n++) {
        const rwkv_real *xn = x + (size_t)n * C, *dyn = dy + (size_t)n * C;
        rwkv_real *dxn = dx + (size_t)n * C;
        double sg = 0, sgx = 0;
#pragma omp simd reduction(+ : sg, sgx)
        for (int i = 0; i < C; i++) {
            rwkv_real xh = (xn[i] - mean[n]) * rstd[n];
            sg += dyn[i] * w[i];
            sgx += dyn[i] * w[i] * xh;
        }
        rwkv_real mg = (rwkv_real)(sg / C), mgx = (rwkv_real)(sgx / C);
#pragma omp simd
        for (int i = 0; i < C; i++) {
            rwkv_real xh = (xn[i] - mean[n]) * rstd[n];
            dxn[i] += rstd[n] * (dyn[i] * w[i] - mg - xh * mgx);
        }
    }
    int nb = (C + LN_COL_BLOCK - 1) / LN_COL_BLOCK;
#pragma omp parallel for schedule(static) if ((size_t)T * C >= RWKV_PAR_MIN_ELEMS)
    for (int blk = 0; blk < nb; blk++) { // column sums, a block of channels per thread
        int c0 = blk * LN_COL_BLOCK, nc = C - c0 < LN_COL_BLOCK ? C - c0 : LN_COL_BLOCK;
        double sw[LN_COL_BLOCK] = {0}, sb[LN_COL_BLOCK] = {0};
        for (int n = 0; n < T; n++) {
            const rwkv_real *dyn = dy + (size_t)n * C + c0, *xn = x + (size_t)n * C + c0;
            rwkv_real mu = mean[n], rs = rstd[n];
#pragma omp simd
            for (int j = 0; j < nc; j++) {
                sw[j] += dyn[j] * (xn[j] - mu) * rs;
                sb[j] += dyn[j];
            }
        }
        for (int j = 0; j < nc; j++) dw[c0 + j] += (rwkv_real)sw[j], db[c0 + j] += (rwkv_real)sb[j];
    }
}

void rwkv_token_mix(rwkv_real *out, const rwkv_real *x, const rwkv_real *prev,
                    const rwkv_real *mix, int T, int C) {
#pragma omp parallel for schedule(static) if ((size_t)T * C >= RWKV_PAR_MIN_ELEMS)
    for (int t = 0; t < T; t++) {
        const rwkv_real *xt = x + (size_t)t * C;
        const rwkv_real *xp = t ? xt - C : prev;
        rwkv_real *ot = out + (size_t)t * C;
        for (int i = 0; i < C; i++) ot[i] = xt[i] * mix[i] + xp[i] * (1 - mix[i]); // x' = mix x_t + (1-mix) x_{t-1}
    }
}

// The vectorised element-wise loops: out (n) from x (n) and a scalar, one span at a time.
typedef void (*span_fn)(rwkv_real *out, const rwkv_real *x, rwkv_real arg, size_t n);

// Runs span over x in spans of SIGMOID_SPAN elements, split between threads when n is large.
static void over_spans(span_fn span, rwkv_real *out, const rwkv_real *x, rwkv_real arg, size_t n) {
    size_t spans = (n + SIGMOID_SPAN - 1) / SIGMOID_SPAN;
#pragma omp parallel for schedule(static) if (n >= RWKV_PAR_MIN_ELEMS)
    for (size_t s = 0; s < spans; s++) {
        size_t i0 = s * SIGMOID_SPAN, len = n - i0 < SIGMOID_SPAN ? n - i0 : SIGMOID_SPAN;
        span(out + i0, x + i0, arg, len);
    }
}

__attribute__((target_clones("avx512f", "avx2", "default")))
static void sigmoid_span(rwkv_real *out, const rwkv_real *x, rwkv_real unused, size_t n) {
    (void)unused;
#pragma omp simd
    for (size_t i = 0; i < n; i++) out[i] = 1 / (1 + RWKV_EXP(-x[i]));
}

void rwkv_sigmoid(rwkv_real *out, const rwkv_real *x, size_t n) { over_spans(sigmoid_span, out, x, 0, n); }

void rwkv_sigmoid_gate_backward(rwkv_real *restrict dval, rwkv_real *restrict dr, const rwkv_real *restrict dout,
                                const rwkv_real *restrict s, const rwkv_real *restrict val, size_t n) {
#pragma omp parallel for simd schedule(static) if (n >= RWKV_PAR_MIN_ELEMS)
    for (size_t i = 0; i < n; i++) {
        dval[i] = dout[i] * s[i];
        dr[i] = dout[i] * val[i] * s[i] * (1 - s[i]);
    }
}

__attribute__((target_clones("avx512f", "avx2", "default")))
static void relu_sq_span(rwkv_real *out, const rwkv_real *x, rwkv_real unused, size_t n) {
    (void)unused;
#pragma omp simd
    for (size_t i = 0; i < n; i++) {
        rwkv_real r = x[i] > 0 ? x[i] : 0; // branch-free once vectorised: half the signs flip
        out[i] = r * r;
    }
}

__attribute__((target_clones("avx512f", "avx2", "default")))
static void exp_neg_sigmoid_span(rwkv_real *out, const rwkv_real *x, rwkv_real scale, size_t n) {
#pragma omp simd
    for (size_t i = 0; i < n; i++) out[i] = RWKV_EXP(-scale / (1 + RWKV_EXP(-x[i])));
}

void rwkv_relu_sq(rwkv_real *out, const rwkv_real *x, size_t n) { over_spans(relu_sq_span, out, x, 0, n); }

void rwkv_exp_neg_sigmoid(rwkv_real *out, const rwkv_real *x, rwkv_real scale, size_t n) {
    over_spans(exp_neg_sigmoid_span, out, x, scale, n);
}

void rwkv_relu_sq_backward(rwkv_real *restrict g, const rwkv_real *restrict x, size_t n) {
#pragma omp parallel for simd schedule(static) if (n >= RWKV_PAR_MIN_ELEMS)
    for (size_t i = 0; i < n; i++) g[i] *= x[i] > 0 ? 2 * x[i] : 0; // 2 relu(x)
}

void rwkv_mul(rwkv_real *out, const rwkv_real *a, const rwkv_real *b, size_t n) {
#pragma omp parallel for schedule(static) if (n >= RWKV_PAR_MIN_ELEMS)
    for (size_t i = 0; i < n; i++) out[i] = a[i] * b[i];
}

void rwkv_add_inplace(rwkv_real *x, const rwkv_real *y, size_t n) {
#pragma omp parallel for schedule(static) if (n >= RWKV_PAR_MIN_ELEMS)
    for (size_t i = 0; i < n; i++) x[i] += y[i];
}

int rwkv_all_finite(const rwkv_real *x, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (!isfinite(x[i])) return 0;
    return 1;
}
