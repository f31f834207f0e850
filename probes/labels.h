// labels.h: probe targets aligned to a dump's rows (sequence, position).
// Built-in label functions (d >= 0; the row is the state after the token at its position):
//   token@-d   the token d positions before the row's position (token@0: the row's own token);
//              rows with position < d are dropped
//   position   the row's position within its sequence (real)
//   seen(X)    1 if token X occurred at or before the row's position, else 0 (class)
//   count(X)   how many times X occurred at or before the row's position (real)
//   answer     the dataset's answer token, at the row whose state predicts it (position p-1 for
//              an answer token at p); other rows are dropped. Needs the dataset file
//              (docs/dataset-format.md) the dump was made from: example i = sequence i.
// X is a token id ("seen(101)") or a quoted byte ("seen('e')").
// Label files (CSV or HDF5) are described in docs/probe-labels.md.
#ifndef RWKV_LABELS_H
#define RWKV_LABELS_H

#include "dumpview.h"

typedef enum { RWKV_LABEL_CLASS, RWKV_LABEL_REAL } rwkv_label_kind;

typedef struct {
    rwkv_label_kind kind;
    int64_t n;            // rows of the dump
    double *value;        // (n) the label; class labels are integer ids
    unsigned char *valid; // (n) 0 = the row has no label (dropped)
    int64_t n_valid;
    char name[64];
} rwkv_labels;

// The answer hook: fills labels (value, valid) for the rows of `v` from a dataset file. The
// default reads the JSONL dataset format v1; another format can be plugged in here.
typedef rwkv_status (*rwkv_labels_answer_hook)(rwkv_labels *out, const rwkv_dumpview *v,
                                              const char *dataset_path);
extern rwkv_labels_answer_hook rwkv_labels_answer_fn;

// Builds a built-in label (spec as above). dataset_path is only used by `answer`.
rwkv_status rwkv_labels_builtin(rwkv_labels **out, const rwkv_dumpview *v, const char *spec,
                                const char *dataset_path);
// Reads a label file (.csv or .h5) and checks that it aligns with the dump's rows.
// A .csv file, RWKV_LABELS_STDIN (a CSV read from stdin; HDF5 needs a seekable file) or .h5.
#define RWKV_LABELS_STDIN "/dev/stdin"
rwkv_status rwkv_labels_read(rwkv_labels **out, const rwkv_dumpview *v, const char *path);
// The token each row's control label is keyed to (Hewitt & Liang 2019: each type of the token
// the label is about gets a random label): token@-d -> the token d positions back; seen(X) and
// count(X) -> the sequence's first token (the earliest the label can depend on, so the control
// needs as long a memory as the label may); any other label -> the row's own token.
// types (n rows); rows without that token get -1.
void rwkv_labels_control_types(int *types, const rwkv_dumpview *v, const char *spec);
rwkv_status rwkv_labels_alloc(rwkv_labels **out, int64_t n, rwkv_label_kind kind, const char *name);
void rwkv_labels_free(rwkv_labels *l);

#endif
