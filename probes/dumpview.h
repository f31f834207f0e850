// dumpview.h: read-only access to an rwkvscope HDF5 dump (docs/dump-format.md, issue 3)
// for probing: the row index (sequence, position, token) and feature matrices per tap.
//   /blocks/<l>/<tap>          float32|float64 [N, D]  rows = selected positions, concatenated
//   /sequences/offsets         int64 [S+1]  row offsets of each sequence
//   /sequences/token_offsets   int64 [S+1]  offsets of each sequence in /tokens
//   /sequences/positions       int64 [N]    each row's position within its sequence
//   /tokens                    int32 [T]
// Older files without token_offsets: /sequences/offsets are token offsets, and a row's
// sequence is recovered from the positions (strictly increasing inside a sequence, below its
// length). A root attribute schema_version above 1 is refused.
#ifndef RWKV_DUMPVIEW_H
#define RWKV_DUMPVIEW_H

#include "../core/base/base.h"

#include <hdf5.h>

#define RWKV_DUMPVIEW_NAME_MAX 96

typedef struct {
    char path[1024];
    hid_t file;
    int n_layer;          // number of /blocks/<l> groups (0 .. n_layer-1)
    int64_t n_rows;       // N
    int n_seq;            // S
    int64_t n_tokens;     // offsets[S]
    int64_t *offsets;     // (S+1) token offsets of each sequence in tokens
    int64_t *positions;   // (N) position of each row within its sequence
    int32_t *tokens;      // (n_tokens)
    int *row_seq;         // (N) sequence index of each row
} rwkv_dumpview;

// One probe feature: a stored tap ("state_num"), a ratio of two ("state_num/state_den") or
// a concatenation of the taps matching a glob ("concat(state_*)"), at one layer.
typedef struct {
    int layer;
    char name[RWKV_DUMPVIEW_NAME_MAX]; // the part after "blocks.<l>."
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
// 1 if /blocks/<layer>/<tap> exists.
int rwkv_dumpview_has(const rwkv_dumpview *v, int layer, const char *tap);

#endif
