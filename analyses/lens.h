// lens.h: lenses read a layer's residual stream as a next-token distribution.
// The logit lens puts each layer's residual through the model's own ln_out and head:
// row "emb" is the input of block 0 (the embedding after ln0), row l the output of block l
// (blocks.<l+1>.resid_in, and resid_out for the last block, whose lens is the model's logits).
// Per row and position it reports, in nats:
//   ce       -log p_row(next token)          (NaN at the last position, which has no next token)
//   entropy  -sum p_row log p_row
//   kl_final KL(p_final || p_row) = sum p_final (log p_final - log p_row)
//   top1     1 if argmax p_row == argmax p_final
// Every lens (a tuned lens later) fills the same rwkv_lens_result and writes the same CSV
// (docs/lens.md).
#ifndef RWKV_LENS_H
#define RWKV_LENS_H

#include "../core/compute/forward.h"

typedef struct {
    char name[32];     // "logit", "tuned", ...
    int n_rows;        // L + 1
    int64_t T;
    double *ce, *entropy, *kl, *top1; // (n_rows, T) each
} rwkv_lens_result;

// ln_out then head on n rows: out (n, V) from x (n, C); scratch (n, C).
void rwkv_lens_project(const rwkv_model *m, rwkv_real *out, const rwkv_real *x, int n, rwkv_real *scratch);
// The logit lens over tokens (T) in parallel or sequential mode.
rwkv_status rwkv_lens_logit(rwkv_lens_result **out, const rwkv_model *m, const int *tokens, int64_t T, int seq);
void rwkv_lens_result_free(rwkv_lens_result *r);
// Row r's label: "emb" or "blocks.<r-1>" (static buffer of the caller, size >= 24).
void rwkv_lens_row_name(char *buf, size_t size, int row);
// Per-position CSV: lens,row,layer,position,token,next_token,ce,entropy,kl_final,top1.
rwkv_status rwkv_lens_write_csv(const rwkv_lens_result *r, const int *tokens, const char *path);
// Per-row means over positions (ce over positions with a next token):
// lens,row,layer,ce,entropy,kl_final,top1. means (n_rows, 4) may be NULL.
rwkv_status rwkv_lens_write_summary(const rwkv_lens_result *r, const char *path, double *means);
// The per-row means (n_rows, 4) as four curves over the layer index (-1 = emb) into png
// (its data and script beside it).
rwkv_status rwkv_lens_plot(const rwkv_lens_result *r, const double *means, const char *png);

#endif
