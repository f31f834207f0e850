// patching.h: activation patching sweeps. The clean and the corrupt run go once each; then
// every (tap, layer, position) cell is patched from clean into corrupt, one at a time, and a
// metric of the last position's logits is compared with both runs:
//     recovery = (metric(patched) - metric(corrupt)) / (metric(clean) - metric(corrupt)).
// The two runs share the RNN state over their common prefix: a patch there copies the same
// value and changes nothing, so it is not rerun; a patch at p >= the first differing token
// restarts from the corrupt run's state after p - 1 and reruns only positions p .. T-1 (the
// states are checkpointed every position, or every few when they would not fit in memory).
#ifndef RWKV_PATCHING_H
#define RWKV_PATCHING_H

#include "../core/compute/forward.h"

typedef enum { RWKV_METRIC_LOGIT_DIFF, RWKV_METRIC_LOGIT, RWKV_METRIC_LOGPROB } rwkv_metric_kind;

typedef struct {
    rwkv_metric_kind kind;
    int a, b; // token ids: logit[a] - logit[b], logit[a], log p(a)
} rwkv_patch_metric;

// "logit-diff:A,B" | "logit:A" | "logprob:A" with token ids below n_vocab.
rwkv_status rwkv_patch_metric_parse(rwkv_patch_metric *mt, const char *spec, int n_vocab);
// The metric of one row of logits (V).
double rwkv_patch_metric_eval(const rwkv_patch_metric *mt, const rwkv_real *logits, int V);

typedef struct {
    int n_taps;
    rwkv_tap taps[RWKV_TAP_N_BLOCK]; // block taps to sweep (every layer)
    rwkv_patch_metric metric;
    int seq;   // sequential mode (default parallel)
    int naive; // rerun every cell from position 0 without reuse (the benchmark's baseline)
    const uint8_t *positions; // (T) positions to sweep, NULL = all; other cells are NaN
    const uint8_t *layers;    // (L) layers to sweep, NULL = all
    int64_t checkpoint_every; // keep the corrupt state every N positions; 0 = every position
                              // if the states fit in 256 MB, else the smallest power of 2 that fits
    void (*progress)(void *ctx, int64_t done, int64_t total); // optional, per cell
    void *progress_ctx;
} rwkv_patch_opts;

typedef struct {
    int n_taps, n_layer;
    int64_t T;
    rwkv_tap taps[RWKV_TAP_N_BLOCK];
    int64_t first_diff;      // first position where the clean and corrupt tokens differ
    double m_clean, m_corrupt;
    double *metric;          // (n_taps, L, T) the metric with that one cell patched
    double *recovery;        // (n_taps, L, T) normalised recovery (NaN if clean == corrupt)
    int64_t tokens_rerun;    // tokens processed by the patched reruns (the sweep's cost)
    int64_t checkpoint_every; // the stride used: a patch at p reruns from the checkpoint <= p
} rwkv_patch_result;

// Runs the sweep over tokens clean and corrupt of the same length T.
rwkv_status rwkv_patch_sweep(rwkv_patch_result **out, const rwkv_model *m, const int *clean,
                             const int *corrupt, int64_t T, const rwkv_patch_opts *o);
void rwkv_patch_result_free(rwkv_patch_result *r);
// Index of cell (tap index k, layer l, position p) in metric and recovery.
static inline size_t rwkv_patch_cell(const rwkv_patch_result *r, int k, int l, int64_t p) {
    return ((size_t)k * r->n_layer + (size_t)l) * (size_t)r->T + (size_t)p;
}

#endif
