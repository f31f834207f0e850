// weights_v7.h: the RWKV-7 ("Goose", x070) parameters, one block with a pointer per tensor.
// Kept apart from the RWKV-4 table: the two versions share only the config and the globals.
// RWKV-5.2 ("Eagle"), the other multi-head matrix-state version, uses the same struct with its
// own table (fields marked v5; the LoRA fields stay NULL, the v7-only ones too), and so does
// RWKV-6 ("Finch", fields marked v6: RWKV-5.2's plus the data-dependent mixes and decay).
//
// Every matrix is row-major (out, in), so y = W x as for RWKV-4. The official checkpoints
// store the LoRA factors w1/a1/v1/g1 as (C, D) and w2/a2/v2/g2 as (D, C) (used as x @ w1):
// the loader transposes them; rwkv.cpp files already hold them as (out, in).
#ifndef RWKV_WEIGHTS_V7_H
#define RWKV_WEIGHTS_V7_H

#include "../formats/tensors.h"
#include "weights.h"

#define RWKV_V7_HEAD_SIZE_DEFAULT 64 // N when a checkpoint does not tell (r_k stored flat)
#define RWKV_V7_MAX_HEAD_SIZE 256    // largest N the engine takes (official models use 64)
#define RWKV_V6_MIXES 5              // RWKV-6's data-dependent mixes: w, k, v, r, g
#define RWKV_V7_GN_EPS 64e-5         // ln_x GroupNorm eps: 1e-5 * head_size_divisor^2 (= 8^2)

// LoRA ranks, read from the checkpoint shapes.
typedef struct {
    int d_w; // decay
    int d_a; // in-context learning rate
    int d_v; // value residual gate (0 for a one-layer model)
    int d_g; // output gate
    int d_m; // RWKV-6: the token-shift mix LoRA (one of 5 slices; d_w is its decay LoRA)
} rwkv_v7_dims;

// The large per-layer matrices, read through typed views (rwkv_mat) as RWKV-4's are: in the
// float block, in place in the file (bf16, fp16, rwkv.cpp's types), or converted (bf16, I8).
// The LoRA factors stay float (the official files store them transposed).
typedef enum {
    RWKV_V7_R, RWKV_V7_K, RWKV_V7_V, RWKV_V7_O, // att.receptance/key/value/output (C, C)
    RWKV_V7_G,                                  // att.gate (C, C), RWKV-5.2 only
    RWKV_V7_FK, RWKV_V7_FV,                     // ffn.key (F, C), ffn.value (C, F)
    RWKV_V7_FR,                                 // ffn.receptance (C, C), RWKV-5.2 only
    RWKV_V7_N_VIEWS
} rwkv_v7_view;

typedef struct {
    rwkv_v7_dims d;
    rwkv_real *block; // (in_block) every parameter, or all but the viewed matrices (typed)
    size_t total;     // parameters of the model
    size_t in_block;  // elements of block: total, or fewer when the matrices live elsewhere
    int n_layer;
    rwkv_mat *views;  // (RWKV_V7_N_VIEWS * n_layer) what the kernels read; NULL data if absent
    // Matrix fields below are NULL when the block does not hold the matrices (typed).
    rwkv_real *emb;                      // (V, C)
    rwkv_real *ln0_w, *ln0_b;            // (C)
    rwkv_real *ln1_w, *ln1_b;            // (L, C)
    rwkv_real *ln2_w, *ln2_b;            // (L, C)
    rwkv_real *x_r, *x_w, *x_k, *x_v, *x_a, *x_g; // (L, C) token-shift mixes
    rwkv_real *w0;                       // (L, C) decay bias
    rwkv_real *w1;                       // (L, Dw, C)
    rwkv_real *w2;                       // (L, C, Dw)
    rwkv_real *a0;                       // (L, C) in-context learning rate bias
    rwkv_real *a1;                       // (L, Da, C)
    rwkv_real *a2;                       // (L, C, Da)
    rwkv_real *v0;                       // (L, C) value gate bias (layer 0 unused, zero)
    rwkv_real *v1;                       // (L, Dv, C)
    rwkv_real *v2;                       // (L, C, Dv)
    rwkv_real *g1;                       // (L, Dg, C)
    rwkv_real *g2;                       // (L, C, Dg)
    rwkv_real *k_k, *k_a, *r_k;          // (L, C) r_k is (H, N) per layer in checkpoints
    rwkv_real *att_receptance, *att_key, *att_value, *att_output; // (L, C, C)
    rwkv_real *ln_x_w, *ln_x_b;          // (L, C) per-head GroupNorm
    rwkv_real *ffn_x_k;                  // (L, C)
    rwkv_real *ffn_key;                  // (L, F, C)
    rwkv_real *ffn_value;                // (L, C, F)
    rwkv_real *ln_out_w, *ln_out_b;      // (C)
    rwkv_real *head;                     // (V, C)
    // RWKV-5.2: x_k, x_v, x_r, x_g are its time_mix_* (used as mix*x + (1-mix)*x_prev),
    // ffn_x_k its ffn.time_mix_k; besides those, ln*, ln_x, att/ffn matrices and globals:
    rwkv_real *time_decay;               // (L, C) raw: the per-token decay is exp(-exp(time_decay))
    rwkv_real *time_faaaa;               // (L, C) u, the current token's bonus
    rwkv_real *att_gate;                 // (L, C, C)
    rwkv_real *ffn_x_r;                  // (L, C)
    rwkv_real *ffn_receptance;           // (L, C, C)
    // RWKV-6: time_maa_w/k/v/r/g are x_w, x_k, x_v, x_r, x_g (used as x + (x_prev - x) * mix,
    // plus the LoRA's share), ffn.time_maa_k/r are ffn_x_k, ffn_x_r; time_decay is the base
    // of the per-token decay exp(-exp(time_decay + W_d2 tanh(W_d1 x_w))). Besides those:
    rwkv_real *maa_x;                    // (L, C) the mix that feeds the mix LoRA
    rwkv_real *maa_w1;                   // (L, 5 Dm, C) slices w, k, v, r, g of the hidden row
    rwkv_real *maa_w2;                   // (L, 5, C, Dm)
    rwkv_real *decay_w1;                 // (L, Dw, C)
    rwkv_real *decay_w2;                 // (L, C, Dw)
} rwkv_v7_weights;

// A zero-filled block for cfg (version 7, or 5 with d all 0) and LoRA ranks d; the views
// point into it.
rwkv_status rwkv_v7_weights_alloc(rwkv_v7_weights **out, rwkv_config cfg, rwkv_v7_dims d);
// The same without room for the viewed matrices and the head (their fields and views stay
// NULL): rwkv_v7_weights_view fills the views.
rwkv_status rwkv_v7_weights_alloc_typed(rwkv_v7_weights **out, rwkv_config cfg, rwkv_v7_dims d);
// The view of layer l's matrix `which`.
#define RWKV_V7_MAT(w, which, l) (&(w)->views[(size_t)(which) * (w)->n_layer + (l)])
// Which view parameter p is (table order): an rwkv_v7_view, RWKV_V7_N_VIEWS for the head,
// or -1 for the rest.
int rwkv_v7_view_of(const rwkv_param *p, rwkv_config cfg);
void rwkv_v7_weights_free(rwkv_v7_weights *w);
// Points every tensor of w (w->d set) into block, laid out as rwkv_v7_weights_alloc does
// (for gradients and optimiser moments of the same shape).
void rwkv_v7_weights_bind(rwkv_v7_weights *w, rwkv_real *block, rwkv_config cfg);
// The tensors of w as a parameter table (official names, offsets into w->block): what
// training, AdamW and the safetensors writer walk. Layer 0 has no v0/v1/v2 (its slots stay
// zero); the globals carry their rwkv_weights field, the rest field -1.
rwkv_status rwkv_v7_table_alloc(rwkv_param_table *t, rwkv_config cfg, const rwkv_v7_weights *w);
// The official checkpoint shape of p (returns ndim <= 3): LoRA factors transposed to
// (in, out), r_k and time_faaaa/time_decay (H, N), mixes and biases [1, 1, C].
int rwkv_v7_official_shape(const rwkv_param *p, rwkv_config cfg, int64_t shape[3], int *transposed);
// Infers cfg (L, C, F, V, head size) and the LoRA ranks from official-name tensors.
// lora_out_in: the LoRA factors are stored (out, in) already (rwkv.cpp files).
rwkv_status rwkv_v7_infer(const rwkv_tensor_set *ts, const char *path, int lora_out_in,
                          rwkv_config *cfg, rwkv_v7_dims *d);
// The same for an RWKV-5.2 set (head size from time_faaaa's (H, N); no LoRA).
rwkv_status rwkv_v5_infer(const rwkv_tensor_set *ts, const char *path, rwkv_config *cfg, rwkv_v7_dims *d);
// The same for an RWKV-6 set (head size from time_faaaa; LoRA ranks from time_maa_w1 and
// time_decay_w1, stored (out, in) when lora_out_in).
rwkv_status rwkv_v6_infer(const rwkv_tensor_set *ts, const char *path, int lora_out_in, rwkv_config *cfg,
                          rwkv_v7_dims *d);
// Fills every tensor from ts, checking names and shapes; errors name the file and tensor.
// rwkv.cpp's concatenated blocks.N.att.x_rwkvag (6, 1, C) stands for x_r .. x_g. A typed
// block (rwkv_v7_weights_alloc_typed) gets the viewed matrices as views of ts's tensors in
// their stored type instead (checked finite unless `headers`), the head into *head.
rwkv_status rwkv_v7_weights_fill(rwkv_v7_weights *w, rwkv_config cfg, const rwkv_tensor_set *ts,
                                 const char *path, int lora_out_in);
rwkv_status rwkv_v7_weights_fill_typed(rwkv_v7_weights *w, rwkv_config cfg, const rwkv_tensor_set *ts,
                                       const char *path, int lora_out_in, int headers, rwkv_mat *head);

#endif
