// weights.h: the RWKV-4 parameters as one block with a pointer table (llm.c style).
// The same layout binds gradients and optimiser moments during training.
#ifndef RWKV_WEIGHTS_H
#define RWKV_WEIGHTS_H

#include "../base/base.h"

typedef struct {
    int n_layer; // L
    int n_embd;  // C
    int n_ffn;   // F, the channel-mix width (4C in Pile models, 2C in the tiny model)
    int n_vocab; // V
    int version;   // RWKV_VERSION_7, _6, _5 (5.2); 0 (zero-initialised) or 4 for RWKV-4
    int head_size; // N, RWKV-5/6/7 only: C / N heads of (N, N) matrix state
    int n_lora;    // RWKV-6/7 only: the widest LoRA hidden row (workspace size)
} rwkv_config;

#define RWKV_VERSION_7 7
#define RWKV_VERSION_6 6 // RWKV-6 (x060, Finch)
#define RWKV_VERSION_5 5 // RWKV-5.2
#define RWKV_IS_V7(cfg) ((cfg).version == RWKV_VERSION_7)
// RWKV-5.2, 6 and 7: H heads of (N, N) matrix state, weights in rwkv_v7_weights.
#define RWKV_HAS_HEADS(cfg) \
    ((cfg).version == RWKV_VERSION_5 || (cfg).version == RWKV_VERSION_6 || (cfg).version == RWKV_VERSION_7)

// Layers are stacked: att_key + l*C*C is layer l's matrix. Matrices are row-major (out, in),
// as in the checkpoints, so y = W x is cblas_gemv(RowMajor, NoTrans).
typedef struct {
    rwkv_real *emb;            // (V, C)
    rwkv_real *ln0_w, *ln0_b;  // (C)   block 0 only
    rwkv_real *ln1_w, *ln1_b;  // (L, C)
    rwkv_real *ln2_w, *ln2_b;  // (L, C)
    rwkv_real *att_time_decay; // (L, C) raw: per-token decay is exp(-exp(time_decay))
    rwkv_real *att_time_first; // (L, C) u, the bonus of the current token
    rwkv_real *att_mix_k, *att_mix_v, *att_mix_r; // (L, C)
    rwkv_real *att_key, *att_value, *att_receptance, *att_output; // (L, C, C)
    rwkv_real *ffn_mix_k, *ffn_mix_r; // (L, C)
    rwkv_real *ffn_key;        // (L, F, C)
    rwkv_real *ffn_value;      // (L, C, F)
    rwkv_real *ffn_receptance; // (L, C, C)
    rwkv_real *ln_out_w, *ln_out_b; // (C)
    rwkv_real *head;           // (V, C)
} rwkv_weights;

#define RWKV_N_FIELDS 24 // pointers in rwkv_weights, in declaration order

// One checkpoint tensor: its official name, where it lives in the block, its shape.
typedef struct {
    char name[64];     // official name, e.g. "blocks.3.att.time_decay"
    int field;         // index of the pointer in rwkv_weights (declaration order); -1: none (RWKV-7)
    int layer;         // -1 for globals
    size_t offset;     // elements from the start of the block
    size_t numel;
    int ndim;          // 1 or 2 (time_mix is stored [1,1,C] but is a vector)
    int64_t shape[2];
    int is_matrix;     // gets weight decay and orthogonal init in training
} rwkv_param;

// The parameter table: every tensor of an official checkpoint, in a fixed order.
typedef struct {
    rwkv_config cfg;
    rwkv_param *params; // (n)
    int n;
    size_t total;       // elements in the block
} rwkv_param_table;

rwkv_status rwkv_weights_table_alloc(rwkv_param_table *t, rwkv_config cfg);
void rwkv_weights_table_free(rwkv_param_table *t);
// Points every field of w into block (which holds t->total elements).
void rwkv_weights_bind(rwkv_weights *w, rwkv_real *block, const rwkv_param_table *t);
// Finds a tensor by official name; NULL if absent.
const rwkv_param *rwkv_weights_find(const rwkv_param_table *t, const char *name);
// Validates a config (positive sizes, sane limits); records why not.
rwkv_status rwkv_weights_check_config(rwkv_config cfg);

#endif
