// kernels.c: layernorm, token shift and the element-wise ops.
// A parallel chunk (T = 512 tokens) spends most of its time in GEMMs, but these loops are
// single passes over (T, C) arrays and were ~8% of it on one thread; they split over rows
// between threads when the array is large. One token stays on one thread: a parallel
// region costs more than the loop.
#include "kernels.h"

#include <math.h>

#define RWKV_PAR_MIN_ELEMS (1 << 16) // elements below which a loop stays on one thread
#define SIGMOID_SPAN 4096            // elements per call of the vectorised sigmoid

// glibc's libmvec provides vector exp/expf; declaring them lets the sigmoid loop vectorise.
#pragma omp declare simd notinbranch
float expf(float);
#pragma omp declare simd notinbranch
double exp(double);

void rwkv_layernorm(rwkv_real *out, const rwkv_real *x, const rwkv_real *w, const rwkv_real *b,
                    int T, int C) {
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

__attribute__((target_clones("avx512f", "avx2", "default")))
static void sigmoid_span(rwkv_real *out, const rwkv_real *x, size_t n) {
#pragma omp simd
    for (size_t i = 0; i < n; i++) out[i] = 1 / (1 + RWKV_EXP(-x[i]));
}

void rwkv_sigmoid(rwkv_real *out, const rwkv_real *x, size_t n) {
    size_t spans = (n + SIGMOID_SPAN - 1) / SIGMOID_SPAN;
#pragma omp parallel for schedule(static) if (n >= RWKV_PAR_MIN_ELEMS)
    for (size_t s = 0; s < spans; s++) {
        size_t i0 = s * SIGMOID_SPAN, len = n - i0 < SIGMOID_SPAN ? n - i0 : SIGMOID_SPAN;
        sigmoid_span(out + i0, x + i0, len);
    }
}

void rwkv_relu_sq(rwkv_real *out, const rwkv_real *x, size_t n) {
#pragma omp parallel for schedule(static) if (n >= RWKV_PAR_MIN_ELEMS)
    for (size_t i = 0; i < n; i++) {
        rwkv_real r = x[i] > 0 ? x[i] : 0;
        out[i] = r * r;
    }
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
