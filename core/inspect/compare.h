// compare.h: tap-by-tap differences between two dumps of the same inputs (e.g. the two
// modes, two precisions, two chunkings). The first dump is the reference.
// The WKV state is stored scaled by e^{-max} (state_num, state_den beside state_max), so its
// raw values carry an arbitrary common factor; they are compared scale-free: state_num as
// num/den (the weighted mean of v, when both dumps have state_den), state_den after rescaling
// both to their common max, den * e^{max - max(max_ref, max_other)} (when both have state_max).
#ifndef RWKV_COMPARE_H
#define RWKV_COMPARE_H

#include "dump.h"
#include "sequences.h"

#define RWKV_COMPARE_TOL 1e-4       // default: |a - ref| <= tol * max(1, |ref|)
#define RWKV_COMPARE_REL_FLOOR 1e-6 // max_rel divides by max(|ref|, this)

typedef struct {
    int layer;          // n_layer for the globals
    rwkv_tap tap;
    char name[96];      // "blocks.3.state_num", "logits"
    int D;
    const char *form;   // what was compared: "value", "num/den" or "den at common max"
    double max_abs;     // max |a - ref|
    double max_rel;     // max |a - ref| / max(|ref|, RWKV_COMPARE_REL_FLOOR)
    double max_scaled;  // max |a - ref| / max(1, |ref|), the quantity held to tol
    int64_t first_row;  // first row exceeding tol, -1 if none
    int64_t first_seq, first_pos, first_channel; // where that row is (-1 if none)
} rwkv_compare_row;

typedef struct {
    rwkv_compare_row *rows; // (n) in (layer, tap) order
    int n;
    int n_exceeded;         // rows with first_row >= 0
    int first;              // the row that diverges earliest (position, then layer, then tap), -1
    double tol;
} rwkv_compare_result;

// Compares every tap present in both dumps. The dumps must have the same model shape,
// tokens, sequences and positions.
rwkv_status rwkv_compare_dumps(rwkv_compare_result *out, const char *ref, const char *other, double tol);

typedef struct {
    int max_T;                                // tokens per forward call in both modes
    const char *const *ref_interventions;     // (n_ref_interventions) specs applied to the
    int n_ref_interventions;                  //   reference run only (a known change to find)
    rwkv_sequences_progress progress;         // NULL = quiet
    void *progress_ctx;
} rwkv_compare_modes_opts;

// Runs every sequence from the zero state in sequential mode (the reference) and parallel
// mode, max_T tokens per call, and compares every tap of the model in memory, as
// rwkv_compare_dumps compares dumps of both runs with all taps at all positions; chunk by
// chunk, so memory does not grow with the input.
rwkv_status rwkv_compare_modes(rwkv_compare_result *out, const rwkv_model *m, const rwkv_sequences *seqs, double tol,
                               const rwkv_compare_modes_opts *opts);
void rwkv_compare_free(rwkv_compare_result *r);
// The table as CSV: tap,layer,name,width,max_abs,max_rel,max_scaled,first_row,first_seq,
// first_pos,first_channel,form, one row per tap and layer. Refuses an existing path unless force.
rwkv_status rwkv_compare_write_csv(const rwkv_compare_result *r, const char *path, int force);

#endif
