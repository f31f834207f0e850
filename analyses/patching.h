// patching.h: activation patching sweeps. The clean and the corrupt run go once each; then
// every (unit, layer, position) cell is patched from clean into corrupt, one at a time, and a
// metric of the last position's logits is compared with both runs:
//     recovery = (metric(patched) - metric(corrupt)) / (metric(clean) - metric(corrupt)).
// A unit is a block tap, or for RWKV-5/7 one head's (N, N) matrix of state_wkv alone.
// The two runs share the RNN state over their common prefix: a patch there copies the same
// value and changes nothing, so it is not rerun; a patch at p >= the first differing token
// restarts from the corrupt run's state after p - 1 and reruns only positions p .. T-1 (the
// states are checkpointed every position, or every few when they would not fit in memory).
// The same code serves every version: the checkpoints are whole states (rwkv_state_numel).
#ifndef RWKV_PATCHING_H
#define RWKV_PATCHING_H

#include "../core/compute/forward.h"
#include "../core/tokenize/tokenizer.h"

#include <stdio.h>

typedef enum { RWKV_METRIC_LOGIT_DIFF, RWKV_METRIC_LOGIT, RWKV_METRIC_LOGPROB } rwkv_metric_kind;

typedef struct {
    rwkv_metric_kind kind;
    int a, b; // token ids: logit[a] - logit[b], logit[a], log p(a)
} rwkv_patch_metric;

// "logit-diff:A,B" | "logit:A" | "logprob:A" with token ids below n_vocab.
rwkv_status rwkv_patch_metric_parse(rwkv_patch_metric *mt, const char *spec, int n_vocab);
// The same where A and B may also be text that encodes to one token with tok (NULL: ids only).
rwkv_status rwkv_patch_metric_parse_text(rwkv_patch_metric *mt, const char *spec, rwkv_tokenizer *tok,
                                         int n_vocab);
// The metric of one row of logits (V).
double rwkv_patch_metric_eval(const rwkv_patch_metric *mt, const rwkv_real *logits, int V);

#define RWKV_PATCH_MAX_UNITS 128 // the block taps and the heads of state_wkv (64 in a 13B model)

typedef struct {
    int n_taps;                             // units swept (every layer)
    rwkv_tap taps[RWKV_PATCH_MAX_UNITS];    // the unit's block tap
    int head[RWKV_PATCH_MAX_UNITS];         // 0: the whole tap; h + 1: head h of state_wkv alone
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

// Adds the units of comma-separated patterns to o: globs over the block tap names this model
// has ('*', 'state_*'), and state_wkv:HEADS (a head list, e.g. state_wkv:* or state_wkv:0-3)
// for each head alone. A pattern matching none of the model's taps is an error that says why
// (another version's tap, a head out of range) and lists the taps there are.
rwkv_status rwkv_patch_select_taps(rwkv_patch_opts *o, rwkv_config cfg, const char *patterns);
// Position and layer lists in the intervention syntax ("10-20,last", "0-3"; NULL = all) as
// masks for a sweep of T positions: allocated into *pos_mask (T), *layer_mask (L) (caller
// frees) and set in o.
rwkv_status rwkv_patch_select_cells(rwkv_patch_opts *o, rwkv_config cfg, int64_t T, const char *positions,
                                    const char *layers, uint8_t **pos_mask, uint8_t **layer_mask);

typedef struct {
    int n_taps, n_layer;
    int64_t T;
    rwkv_tap taps[RWKV_PATCH_MAX_UNITS];
    int head[RWKV_PATCH_MAX_UNITS];  // as in rwkv_patch_opts
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
// Index of cell (unit k, layer l, position p) in metric and recovery.
static inline size_t rwkv_patch_cell(const rwkv_patch_result *r, int k, int l, int64_t p) {
    return ((size_t)k * r->n_layer + (size_t)l) * (size_t)r->T + (size_t)p;
}
// The name of unit k: "att_out", or "state_wkv:3" for head 3 alone.
void rwkv_patch_unit_name(const rwkv_patch_result *r, int k, char *buf, size_t size);

// CSV of the swept cells: tap,layer,position,clean_token,corrupt_token,metric,recovery.
rwkv_status rwkv_patch_write_csv(FILE *f, const rwkv_patch_result *r, const int *clean, const int *corrupt);
// The heatmap (layer x position) of unit k's recovery, on the fixed scale [-1, 1]; a mean
// over n_pairs pairs when n_pairs > 1 (the title says so).
rwkv_status rwkv_patch_plot(const char *out, const rwkv_patch_result *r, int k, int n_pairs);
// One heatmap of every swept head of state_wkv: a row per (layer, head), labelled layer.head
// ("1.3": layer 1, head 3), over the positions; RWKV_ERR_ARG if no head was swept.
rwkv_status rwkv_patch_plot_heads(const char *out, const rwkv_patch_result *r, int n_pairs);

// ---- sweeps over N prompt pairs ----------------------------------------------------------

typedef struct {
    int *clean, *corrupt; // (T) each
    int64_t T;
    char *metric;         // the pair's own metric spec, or NULL
    int line;             // in the pairs file, for messages
} rwkv_patch_pair;

typedef struct {
    rwkv_patch_pair *items; // (n)
    int n;
    char path[1024];        // the file read, for messages
} rwkv_patch_pairs;

// A pairs file: one pair a line, CLEAN<TAB>CORRUPT[<TAB>METRIC], '#' comments and empty
// lines skipped; text encoded with tok and checked against n_vocab; every prompt must have
// as many tokens as the first. Errors name the file and line.
rwkv_status rwkv_patch_pairs_read(rwkv_patch_pairs *out, const char *path, rwkv_tokenizer *tok, int n_vocab);
void rwkv_patch_pairs_free(rwkv_patch_pairs *p);

typedef struct {
    rwkv_patch_result *r; // the last pair's sweep: shape and unswept cells; recovery = the mean
    int pairs, undefined; // pairs swept; of them, pairs whose metric was equal on both prompts
    int *n;               // (n_taps, L, T) pairs with a defined recovery per cell
    double *sd, *ci_lo, *ci_hi; // (n_taps, L, T) sample sd and 95% t interval of the mean
} rwkv_patch_pairs_result;

// Sweeps every pair with o (its taps and cells; metric from the pair or default_metric,
// text allowed with tok); progress(ctx, i, pair, result) after each pair (optional).
rwkv_status rwkv_patch_pairs_sweep(rwkv_patch_pairs_result **out, const rwkv_model *m, const rwkv_patch_pairs *p,
                                   const rwkv_patch_opts *o, const char *default_metric, rwkv_tokenizer *tok,
                                   void (*progress)(void *ctx, int i, const rwkv_patch_pair *pair,
                                                    const rwkv_patch_result *r),
                                   void *ctx);
void rwkv_patch_pairs_result_free(rwkv_patch_pairs_result *r);
// CSV of the swept cells: tap,layer,position,pairs,recovery,ci_lo,ci_hi,sd.
rwkv_status rwkv_patch_pairs_write_csv(FILE *f, const rwkv_patch_pairs_result *r);

#endif
