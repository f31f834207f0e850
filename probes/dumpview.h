// dumpview.h: a dump (docs/dump-format.md) seen by the probes: the row index (sequence,
// position, token) and feature matrices per tap, read through the one dump reader
// (core/inspect/dump.h: killed SWMR files, schema versions, bounded and checked reads).
#ifndef RWKV_DUMPVIEW_H
#define RWKV_DUMPVIEW_H

#include "../core/inspect/dump.h"

#define RWKV_DUMPVIEW_NAME_MAX 96

typedef struct {
    char path[1024];
    rwkv_dump_reader *r;  // the open dump
    int n_layer;          // the model's layers (/blocks/<l> exists only for tapped ones)
    int64_t n_rows;       // N
    int n_seq;            // S
    int64_t n_tokens;     // T
    const int64_t *offsets;   // (S+1) token offsets of each sequence in tokens (r's)
    const int64_t *positions; // (N) position of each row within its sequence (r's)
    const int *tokens;        // (n_tokens) (r's)
    int *row_seq;         // (N) sequence index of each row
} rwkv_dumpview;

// One probe feature: a stored tap ("state_num"), a ratio of two ("state_num/state_den") or
// a concatenation of the taps matching a glob ("concat(state_*)"), at one layer.
// With by_head, only head `head`'s (N, N) block of an (H, N, N) tap (state_wkv of an
// RWKV-5.2/7 dump), flattened (svd 0) or as its top-svd singular triplets (headfeat.h).
typedef struct {
    int layer;
    char name[RWKV_DUMPVIEW_NAME_MAX]; // the part after "blocks.<l>."
    int by_head, head, svd;
} rwkv_feature_ref;

rwkv_status rwkv_dumpview_open(rwkv_dumpview **out, const char *path);
void rwkv_dumpview_free(rwkv_dumpview *v);

// The token of row r offset by -d (d >= 0); -1 when position < d.
int rwkv_dumpview_token_at(const rwkv_dumpview *v, int64_t r, int d);

// Expands comma-separated patterns "blocks.<lglob>.<feature>" into features present in the
// dump, in layer order. <feature> is a glob over stored taps, "A/B" or "concat(GLOB)".
// *refs is malloc'd. A pattern matching nothing is RWKV_ERR_ARG listing the stored taps.
rwkv_status rwkv_dumpview_match(const rwkv_dumpview *v, const char *patterns,
                                rwkv_feature_ref **refs, int *n);
// Reads a feature as a (N, *D) matrix (malloc'd). A NaN or inf is RWKV_ERR_NUMERIC naming
// the dataset, row and column.
rwkv_status rwkv_dumpview_read(const rwkv_dumpview *v, const rwkv_feature_ref *f, rwkv_real **X,
                               int *D);
// Per-head features: every ref (plain taps of (H, N, N) rows) becomes one ref per head of
// `heads` ("all" or a list "0,2"), with svd (0: flattened; 1..N: top-svd triplets). *out is
// malloc'd. A tap without heads (any tap of an RWKV-4 dump), a head out of range or svd > N is
// RWKV_ERR_ARG naming the dump and the tap.
rwkv_status rwkv_dumpview_by_head(const rwkv_dumpview *v, const rwkv_feature_ref *refs, int n, const char *heads,
                                  int svd, rwkv_feature_ref **out, int *n_out);
// The feature's name in tables and plots: "state_num", "state_wkv:2", "state_wkv:2:svd4".
#define RWKV_FEATURE_LABEL_MAX (RWKV_DUMPVIEW_NAME_MAX + 32)
const char *rwkv_feature_label(const rwkv_feature_ref *f, char buf[RWKV_FEATURE_LABEL_MAX]);
// 1 if /blocks/<layer>/<tap> exists.
int rwkv_dumpview_has(const rwkv_dumpview *v, int layer, const char *tap);

#endif
