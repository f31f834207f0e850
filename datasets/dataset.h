// dataset.h: task examples written to a JSONL dataset file (docs/dataset-format.md, v1).
#ifndef RWKV_DATASET_H
#define RWKV_DATASET_H

#include "task.h"
#include "../core/train/data.h"

#define RWKV_DATASET_VERSION 1

// The rng every generator uses (MT19937 seeded with `seed`); free with gsl_rng_free.
gsl_rng *rwkv_dataset_rng(unsigned long seed);
// Writes n examples of t->len tokens drawn from rwkv_dataset_rng(seed).
// Refuses an existing path unless force (RWKV_ERR_EXISTS).
rwkv_status rwkv_dataset_write(const char *path, const rwkv_task *t, unsigned long seed, int n,
                               int force);

#define RWKV_TASK_STREAM_TOKENS (4L << 20) // a training stream's default size (4M tokens)

// Training data from a task (rwkv_task_stream: n_examples examples of t->len tokens from
// rwkv_dataset_rng(seed) back to back; 0 = RWKV_TASK_STREAM_TOKENS / t->len of them), the
// last val_frac held out. Predicting an answer token has loss weight 1, any other
// text_weight (0: answers only; > 0 also learns the filler, as a language model). The data's
// source names the task, the examples and the weight.
rwkv_status rwkv_task_training_data(rwkv_data **out, const rwkv_task *t, unsigned long seed, int n_examples,
                                    double text_weight, double val_frac);

#endif
