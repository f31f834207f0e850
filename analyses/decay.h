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

#endif
