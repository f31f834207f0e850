// decay.h: what a model's own time-mix parameters say about its memory. Per channel the
// state is multiplied by e^{-w} each token, w = e^{time_decay}; a token's contribution halves
// after ln2 / w tokens (the half-life); u = time_first is the current token's bonus.
#ifndef RWKV_DECAY_H
#define RWKV_DECAY_H

#include "../core/model/model.h"

typedef struct {
    int n_layer, n_embd;
    double *time_decay; // (L, C) the raw parameter
    double *w;          // (L, C) per-token decay rate e^{time_decay}
    double *retention;  // (L, C) e^{-w}: the factor the state keeps per token
    double *half_life;  // (L, C) ln2 / w, in tokens
    double *time_first; // (L, C) u
} rwkv_decay;

rwkv_status rwkv_decay_compute(rwkv_decay **out, const rwkv_model *m);
void rwkv_decay_free(rwkv_decay *d);
// Writes layer,channel,time_decay,w,retention,half_life,time_first rows.
rwkv_status rwkv_decay_write_csv(const rwkv_decay *d, const char *path);
// Three plots beside `stem`: <stem>_halflife_hist.png (log10 half-life per layer),
// <stem>_halflife_sorted.png (sorted half-lives per layer, log scale), <stem>_time_first_hist.png.
rwkv_status rwkv_decay_plot(const rwkv_decay *d, const char *stem);

// RWKV-6 and 7: the decay w_t of every channel depends on the token (att_w). Over an input's
// tokens: per channel the mean w and the 10/50/90% quantiles of the half-life ln2/(-ln w_t),
// and the half-life of the bias alone; per head the quantiles of its channels' medians.
typedef struct {
    int n_layer, n_embd, n_head;
    int64_t T;                          // tokens of the input
    double *w_mean;                     // (L, C)
    double *hl_p10, *hl_med, *hl_p90;   // (L, C) per-token half-life quantiles (tokens)
    double *hl_bias;                    // (L, C) ln2 / (e^{-1/2} sigmoid(w0)); RWKV-6: ln2 / exp(time_decay)
    double *head_p10, *head_med, *head_p90; // (L, H) over the head's channel medians
} rwkv_decay_v7;

rwkv_status rwkv_decay_v7_compute(rwkv_decay_v7 **out, const rwkv_model *m, const int *tokens, int64_t T);
void rwkv_decay_v7_free(rwkv_decay_v7 *d);
// layer,head,channel,w_mean,half_life_p10,half_life_median,half_life_p90,half_life_bias rows.
rwkv_status rwkv_decay_v7_write_csv(const rwkv_decay_v7 *d, const char *path);

#endif
