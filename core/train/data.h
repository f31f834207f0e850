// data.h: training data as one token stream with a held-out tail, and (B, T) windows of it.
// A window starting at s has inputs tok[s .. s+T-1] and targets tok[s+1 .. s+T].
// Training windows are drawn from the first part, at offsets that are a pure function of
// (seed, step, row): a resumed run draws exactly the batches the straight run would.
// Validation uses consecutive non-overlapping windows of the tail.
// Hook for task datasets: a per-token loss weight (mask[i] weights the prediction OF token
// i, i.e. the target tok[i]); text streams have no mask (weight 1 everywhere).
#ifndef RWKV_DATA_H
#define RWKV_DATA_H

#include "train.h"

#define RWKV_DATA_VAL_FRAC 0.1 // the default held-out share

typedef struct {
    int *tokens;      // (n)
    rwkv_real *mask;  // (n) or NULL: loss weight of predicting tokens[i]
    int64_t n;
    int64_t n_train;  // tokens [0, n_train) train; [n_train, n) validation
    int n_vocab;      // every id is < n_vocab
    char source[1024];
} rwkv_data;

// Bytes of a file as tokens (vocabulary 256).
rwkv_status rwkv_data_load_bytes(rwkv_data **out, const char *path, double val_frac);
// Copies a token stream (and optional per-token mask) from a generator or tokenizer.
rwkv_status rwkv_data_from_tokens(rwkv_data **out, const int *tokens, const rwkv_real *mask,
                                  int64_t n, int n_vocab, double val_frac, const char *source);
void rwkv_data_free(rwkv_data *d);
// Clear errors when windows of T tokens do not fit the train or validation part.
rwkv_status rwkv_data_check(const rwkv_data *d, int T);
// Fills b with the training windows of update number step.
void rwkv_data_train_batch(const rwkv_data *d, rwkv_batch *b, unsigned long seed, int64_t step);
// Validation windows of b->T tokens available.
int64_t rwkv_data_val_windows(const rwkv_data *d, int T);
// Fills b with validation windows first .. first+B-1; rows past the end get mask 0.
void rwkv_data_val_batch(const rwkv_data *d, rwkv_batch *b, int64_t first);

#endif
