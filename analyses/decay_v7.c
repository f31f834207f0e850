// decay_v7.c: RWKV-7's decay is per token: w_t = exp(-e^{-1/2} sigmoid(w0 + W2 tanh(W1 x'_w)))
// (the att_w tap). Over the tokens of an input, per channel: the mean w and quantiles of the
// half-life ln2 / (-ln w_t); per head the same over its channels and tokens. The bias alone
// (x'_w = 0) gives ln2 / (e^{-1/2} sigmoid(w0)), as `info` prints. RWKV-6's decay is per token
// too, w_t = exp(-exp(time_decay + W_d2 tanh(W_d1 x'_w))): its base alone gives ln2 / exp(time_decay).
#include "decay.h"

#include "../core/base/file.h"
#include "../core/compute/forward.h"
#include "../core/model/state.h"

#include <gsl/gsl_sort.h>
#include <gsl/gsl_statistics_double.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DECAY_SCALE 0.6065306597126334 // e^{-1/2}
#define CHUNK_T 256                     // tokens per parallel chunk

typedef struct {
    double *hl;     // (L, T, C) half-life per token and channel
    int64_t T;
    int C;
} capture;

static rwkv_status on_tap(void *ctx, int layer, rwkv_tap tap, int64_t pos, int n, int D, rwkv_real *data) {
    capture *c = ctx;
    (void)tap, (void)D;
    for (int t = 0; t < n; t++)
        for (int i = 0; i < c->C; i++) {
            double w = data[(size_t)t * c->C + i];
            c->hl[((size_t)layer * c->T + pos + t) * c->C + i] = log(2.0) / -log(w); // ln2 / (-ln w)
        }
    return RWKV_OK;
}

// Quantiles q of x (n), sorted in place.
static void quantiles(double *x, size_t n, double *p10, double *p50, double *p90) {
    gsl_sort(x, 1, n);
    *p10 = gsl_stats_quantile_from_sorted_data(x, 1, n, 0.1);
    *p50 = gsl_stats_quantile_from_sorted_data(x, 1, n, 0.5);
    *p90 = gsl_stats_quantile_from_sorted_data(x, 1, n, 0.9);
}

rwkv_status rwkv_decay_v7_compute(rwkv_decay_v7 **out, const rwkv_model *m, const int *tokens, int64_t T) {
    *out = NULL;
    if (!RWKV_IS_V7(m->cfg) && m->cfg.version != RWKV_VERSION_6)
        return rwkv_error_set(RWKV_ERR_UNSUPPORTED, "per-token decay spectra need an RWKV-6 or RWKV-7 model");
    if (T < 1) return rwkv_error_set(RWKV_ERR_ARG, "analyze decay: the input has no tokens");
    int L = m->cfg.n_layer, C = m->cfg.n_embd, N = m->cfg.head_size, H = C / N;
    rwkv_decay_v7 *d = rwkv_calloc(1, sizeof *d, "decay spectra");
    capture c = {.T = T, .C = C};
    uint32_t *mask = rwkv_calloc((size_t)L + 1, sizeof *mask, "decay tap mask");
    double *buf = rwkv_calloc((size_t)(T > N ? T : N) * N, sizeof *buf, "decay scratch");
    rwkv_state *s = NULL;
    rwkv_workspace *ws = NULL;
    rwkv_status st = !d || !mask || !buf ? RWKV_ERR_NOMEM : RWKV_OK;
    if (!st) {
        *d = (rwkv_decay_v7){.n_layer = L, .n_embd = C, .n_head = H, .T = T};
        double **arr[] = {&d->w_mean, &d->hl_p10, &d->hl_med, &d->hl_p90, &d->hl_bias};
        for (size_t i = 0; i < sizeof arr / sizeof arr[0]; i++)
            if (!(*arr[i] = rwkv_calloc((size_t)L * C, sizeof(double), "decay spectra"))) st = RWKV_ERR_NOMEM;
        double **harr[] = {&d->head_p10, &d->head_med, &d->head_p90};
        for (size_t i = 0; i < sizeof harr / sizeof harr[0]; i++)
            if (!(*harr[i] = rwkv_calloc((size_t)L * H, sizeof(double), "decay spectra"))) st = RWKV_ERR_NOMEM;
        if (!(c.hl = rwkv_calloc((size_t)L * T * C, sizeof(double), "per-token half-lives"))) st = RWKV_ERR_NOMEM;
    }
    for (int l = 0; l <= L && mask; l++) mask[l] = l < L ? 1u << RWKV_TAP_ATT_W : 0;
    rwkv_hook hook = {.mask = mask, .fn = on_tap, .ctx = &c};
    if (!st) st = rwkv_state_alloc(&s, m->cfg);
    if (!st) st = rwkv_workspace_alloc(&ws, m->cfg, (int)(T < CHUNK_T ? T : CHUNK_T));
    if (!st) st = rwkv_forward_par(m, s, tokens, T, NULL, RWKV_LOGITS_NONE, &hook, ws);
    for (int l = 0; l < L && !st; l++) {
        for (int i = 0; i < C; i++) {
            size_t k = (size_t)l * C + i;
            double wm = 0;
            for (int64_t t = 0; t < T; t++) {
                buf[t] = c.hl[((size_t)l * T + t) * C + i];
                wm += exp(log(0.5) / buf[t]) / (double)T; // w = 2^{-1/half-life}
            }
            d->w_mean[k] = wm;
            quantiles(buf, (size_t)T, &d->hl_p10[k], &d->hl_med[k], &d->hl_p90[k]);
            d->hl_bias[k] = RWKV_IS_V7(m->cfg) ? log(2.0) / (DECAY_SCALE / (1 + exp(-(double)m->v7->w0[k])))
                                               : log(2.0) / exp((double)m->v7->time_decay[k]); // RWKV-6's base
        }
        for (int h = 0; h < H; h++) { // the head's medians over its channels' per-token spectra
            for (int j = 0; j < N; j++) buf[j] = d->hl_med[(size_t)l * C + h * N + j];
            quantiles(buf, (size_t)N, &d->head_p10[l * H + h], &d->head_med[l * H + h], &d->head_p90[l * H + h]);
        }
    }
    rwkv_workspace_free(ws);
    rwkv_state_free(s);
    free(c.hl);
    free(mask);
    free(buf);
    if (st) {
        rwkv_decay_v7_free(d);
        return st;
    }
    *out = d;
    return RWKV_OK;
}

void rwkv_decay_v7_free(rwkv_decay_v7 *d) {
    if (!d) return;
    double *p[] = {d->w_mean, d->hl_p10, d->hl_med, d->hl_p90, d->hl_bias, d->head_p10, d->head_med, d->head_p90};
    for (size_t i = 0; i < sizeof p / sizeof p[0]; i++) free(p[i]);
    free(d);
}

rwkv_status rwkv_decay_v7_write_csv(const rwkv_decay_v7 *d, const char *path) {
    rwkv_atomic_file out;
    rwkv_status st = rwkv_file_atomic_open(&out, path, 1, 1);
    if (st) return st;
    FILE *f = out.f;
    int N = d->n_embd / d->n_head;
    fprintf(f, "layer,head,channel,w_mean,half_life_p10,half_life_median,half_life_p90,half_life_bias\n");
    for (int l = 0; l < d->n_layer; l++)
        for (int i = 0; i < d->n_embd; i++) {
            size_t k = (size_t)l * d->n_embd + i;
            fprintf(f, "%d,%d,%d,%.9g,%.9g,%.9g,%.9g,%.9g\n", l, i / N, i, d->w_mean[k], d->hl_p10[k], d->hl_med[k],
                    d->hl_p90[k], d->hl_bias[k]);
        }
    return rwkv_file_atomic_commit(&out); // names the file on a write error
}
