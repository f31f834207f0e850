// dataset.h: task examples written to a JSONL dataset file (docs/dataset-format.md, v1).
#ifndef RWKV_DATASET_H
#define RWKV_DATASET_H

#include "task.h"

#define RWKV_DATASET_VERSION 1

// The rng every generator uses (MT19937 seeded with `seed`); free with gsl_rng_free.
gsl_rng *rwkv_dataset_rng(unsigned long seed);
// Writes n examples of t->len tokens drawn from rwkv_dataset_rng(seed).
// Refuses an existing path unless force (RWKV_ERR_EXISTS).
rwkv_status rwkv_dataset_write(const char *path, const rwkv_task *t, unsigned long seed, int n,
                               int force);

#endif
