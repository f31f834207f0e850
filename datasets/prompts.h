// prompts.h: a sequence file (datasets/reader.h: prompt lines, {"text": ...} or {"tokens": ...}
// objects, or a whole dataset file) as a list of token sequences.
#ifndef RWKV_DATASET_PROMPTS_H
#define RWKV_DATASET_PROMPTS_H

#include "../core/inspect/sequences.h"
#include "../core/tokenize/tokenizer.h"

// Appends every example of path to out (text encoded with tok, ids checked against n_vocab;
// tok may be NULL when every line has tokens). An empty file, an empty sequence or an id
// outside the vocabulary is an error naming path:line.
rwkv_status rwkv_dataset_read_sequences(rwkv_sequences *out, const char *path, rwkv_tokenizer *tok, int n_vocab);

#endif
