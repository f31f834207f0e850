// compare.h: tap-by-tap differences between two dumps of the same inputs (e.g. the two
// modes, two precisions, two chunkings). The first dump is the reference.
#ifndef RWKV_COMPARE_H
#define RWKV_COMPARE_H

#include "dump.h"

#define RWKV_COMPARE_TOL 1e-4       // default: |a - ref| <= tol * max(1, |ref|)
#define RWKV_COMPARE_REL_FLOOR 1e-6 // max_rel divides by max(|ref|, this)

typedef struct {
    int layer;          // n_layer for the globals
    rwkv_tap tap;
    char name[96];      // "blocks.3.state_num", "logits"
    int D;
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
void rwkv_compare_free(rwkv_compare_result *r);

#endif
