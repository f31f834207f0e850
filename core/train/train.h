// train.h: the parallel-mode training forward and backward (llm.c style).
// Every activation the backward needs lives in one arena allocated once per (B, T);
// a step allocates nothing. Gradients use the parameter block layout (rwkv_weights_bind).
// Each of the B rows of a batch is its own sequence starting from the zero state.
// RWKV-4 and RWKV-7 models (the blocks of RWKV-7 in train_v7.c).
#ifndef RWKV_TRAIN_H
#define RWKV_TRAIN_H

#include "../model/model.h"

// One batch of B windows of T tokens. mask weights each position's loss; it is 1 by
// default (text); task generators set 0 on prompt positions to train on answers only.
typedef struct {
    int B, T;
    int *inputs;     // (B, T) token ids
    int *targets;    // (B, T) the next token at each position
    rwkv_real *mask; // (B, T) loss weight per position
} rwkv_batch;

rwkv_status rwkv_batch_alloc(rwkv_batch *b, int B, int T); // mask set to 1
void rwkv_batch_free(rwkv_batch *b);

// Activations of one block over N = B*T rows.
typedef struct {
    rwkv_real *x_in;               // (N, C) residual entering the block (block 0: after ln0)
    rwkv_real *xa;                 // (N, C) ln1 output
    rwkv_real *ln1_mean, *ln1_rstd; // (N)
    rwkv_real *sr;                 // (N, C) sigmoid(receptance)
    rwkv_real *k, *v;              // (N, C) time-mix key and value
    rwkv_real *y;                  // (N, C) wkv
    rwkv_real *wp, *wd;            // (N, C) wkv exponent offset and scaled denominator
    rwkv_real *x_mid;              // (N, C) residual after the time-mix (ln2 input)
    rwkv_real *xf;                 // (N, C) ln2 output
    rwkv_real *ln2_mean, *ln2_rstd; // (N)
    rwkv_real *fr;                 // (N, C) sigmoid(ffn receptance)
    rwkv_real *kp;                 // (N, F) ffn key before relu^2
    rwkv_real *fv;                 // (N, C) W_v relu(k)^2
} rwkv_train_layer;

typedef struct {
    rwkv_config cfg;
    int B, T;
    rwkv_real *arena;          // every activation and scratch buffer below
    size_t arena_len;
    rwkv_train_layer *layers;  // (L)
    rwkv_real *emb_x;          // (N, C) embedding rows (ln0 input)
    rwkv_real *ln0_mean, *ln0_rstd; // (N)
    rwkv_real *x_out;          // (N, C) residual after the last block
    rwkv_real *xo;             // (N, C) ln_out output
    rwkv_real *lno_mean, *lno_rstd; // (N)
    rwkv_real *logits;         // (N, V); the backward turns them into dL/dlogits
    rwkv_real *lse;            // (N) log-sum-exp of each logits row
    rwkv_real *losses;         // (N) cross-entropy per position
    // scratch
    rwkv_real *dx;             // (N, C) gradient of the residual stream
    rwkv_real *s1, *s2, *s3, *s4; // (N, C)
    rwkv_real *mk, *mv, *mr;   // (N, C) token-shifted mixes (recomputed in the backward)
    rwkv_real *sF;             // (N, F)
    rwkv_real *part_td, *part_u; // (B, C) per-sequence WKV parameter gradients
    rwkv_real *zeros;          // (C) the token before the first: zero state
    int logits_valid;          // 1 after a forward, 0 after the backward consumed them
    struct rwkv_train_v7 *v7;  // RWKV-7 blocks (train_v7.h); then layers hold only x_in
} rwkv_train;

rwkv_status rwkv_train_alloc(rwkv_train **out, rwkv_config cfg, int B, int T);
void rwkv_train_free(rwkv_train *t);

// Runs the batch through the model, keeping activations. If targets is not NULL, *loss gets
// sum(mask * cross-entropy) / sum(mask) (the mean over B*T positions when mask is 1).
// Token ids are checked; a non-finite loss returns RWKV_ERR_NUMERIC.
rwkv_status rwkv_train_forward(rwkv_train *t, const rwkv_model *m, const rwkv_batch *b,
                               double *loss);
// Gradients of that loss for the last forward's batch into grad (table.total elements,
// the parameter block layout), overwriting them.
rwkv_status rwkv_train_backward(rwkv_train *t, const rwkv_model *m, const rwkv_batch *b,
                                rwkv_real *grad);


#endif
