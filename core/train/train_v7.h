// train_v7.h: the RWKV-7 block for training: forward keeping what the backward needs, and
// the backward (equations in train_v7.c). train.c runs the embedding, ln0, ln_out, the head
// and the loss for both versions and calls these per block in place of the RWKV-4 ones.
//
// The delta-rule scan keeps the state only at the start of every RWKV_V7_TRAIN_CHUNK tokens;
// the backward recomputes the states of one chunk at a time (memory B H (T/K + K) N^2).
#ifndef RWKV_TRAIN_V7_H
#define RWKV_TRAIN_V7_H

#include "train.h"

#define RWKV_V7_TRAIN_CHUNK 16 // tokens between saved states of the scan

struct rwkv_train_v7;

rwkv_status rwkv_train_v7_alloc(struct rwkv_train_v7 **out, rwkv_config cfg, int B, int T);
void rwkv_train_v7_free(struct rwkv_train_v7 *a);
// Block l on t->layers[l].x_in (N, C) into x_next (N, C).
void rwkv_train_v7_block_forward(rwkv_train *t, const rwkv_model *m, int l, rwkv_real *x_next);
// t->dx holds dL/d(block output); on return dL/d(x_in). Block l's parameter gradients go into
// grad (the v7 block layout): matrices and LoRA factors written, vectors added to.
void rwkv_train_v7_block_backward(rwkv_train *t, const rwkv_model *m, rwkv_real *grad, int l);

#endif
