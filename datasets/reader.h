// reader.h: reading the JSON Lines that datasets/dataset.h writes (docs/dataset-format.md
// v1), and the sequence files of `dump --input`, `compare --input` and `steer`, which are
// the same lines: an optional header, then one example per line, {"tokens": [...]} (with
// "answers" spans in a dataset) or {"text": "..."}; with RWKV_READER_TEXT_LINES a line that
// is not a JSON object is a prompt. Empty lines are skipped. Every error names path:line.
#ifndef RWKV_DATASET_READER_H
#define RWKV_DATASET_READER_H

#include "../core/base/base.h"

#include <stdio.h>

#define RWKV_READER_TEXT_LINES 1 // a line not starting with '{' is a text prompt

typedef struct {
    int64_t lineno;         // 1-based line of the file
    int *tokens;            // (n_tokens) the "tokens" array, or NULL
    int64_t n_tokens;
    char *text;             // the "text" string or the plain line, or NULL
    int64_t (*answers)[2];  // (n_answers) [start, length] spans, or NULL when absent
    int n_answers;
} rwkv_dataset_example;

typedef struct {
    char path[1024];
    FILE *f;
    int flags;
    int64_t lineno;
    int header;             // the file began with an rwkvscope-dataset header
    char *line;
    size_t cap;
} rwkv_dataset_reader;

rwkv_status rwkv_dataset_reader_open(rwkv_dataset_reader **out, const char *path, int flags);
// The next example into ex (cleared first); *got = 0 at the end of the file.
rwkv_status rwkv_dataset_reader_next(rwkv_dataset_reader *r, rwkv_dataset_example *ex, int *got);
void rwkv_dataset_example_clear(rwkv_dataset_example *ex);
void rwkv_dataset_reader_free(rwkv_dataset_reader *r);

#endif
