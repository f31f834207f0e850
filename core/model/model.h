// model.h: a loaded RWKV-4 model: shape, weights in one block, where it came from.
#ifndef RWKV_MODEL_H
#define RWKV_MODEL_H

#include "../formats/tensors.h"
#include "weights.h"
#include "weights_v7.h"

#define RWKV_PATH_MAX 1024

// bf16 copies of the matrices, stacked over layers like rwkv_weights.
typedef struct {
    uint16_t *att_key, *att_value, *att_receptance, *att_output; // (L, C, C)
    uint16_t *ffn_key;        // (L, F, C)
    uint16_t *ffn_value;      // (L, C, F)
    uint16_t *ffn_receptance; // (L, C, C)
    uint16_t *head;           // (V, C)
} rwkv_weights16;

typedef struct {
    rwkv_config cfg;
    rwkv_param_table table;
    rwkv_real *block;         // (table.total) every parameter
    rwkv_weights w;           // pointers into block
    rwkv_real *decay_w;       // (L, C) w = exp(time_decay), precomputed for the WKV
    uint16_t *bf16;           // optional bf16 copy of the matrices for the sequential path
    rwkv_weights16 w16;       // pointers into bf16, when bf16 != NULL
    rwkv_v7_weights *v7;      // RWKV-7 weights (cfg.version 7); then w holds only the globals
                              // (emb, ln0, ln_out, head, into v7) and block, decay_w are NULL
    char path[RWKV_PATH_MAX];
    char format[16];          // "pth", "safetensors", "rwkvcpp"
    char dtype[16];           // stored dtype of the matrices, e.g. "bfloat16"
    char tokenizer[256];      // from checkpoint metadata, if any ("" when unknown)
} rwkv_model;

// Reads any supported checkpoint, detecting the format from its leading bytes.
rwkv_status rwkv_model_load(rwkv_model **out, const char *path);
// Builds a model from official-name tensors (infers L, C, F, V; checks every shape).
rwkv_status rwkv_model_from_tensors(rwkv_model **out, const rwkv_tensor_set *ts, const char *path,
                                    const char *format);
// A zero-filled model of the given shape (for init, training and benchmarks).
rwkv_status rwkv_model_alloc(rwkv_model **out, rwkv_config cfg);
void rwkv_model_free(rwkv_model *m);
// Recomputes derived arrays (decay_w) after the block changed (init, training).
void rwkv_model_refresh(rwkv_model *m);
// Stores a bf16 copy of the matrices; the sequential path then reads them (fp32 compute).
rwkv_status rwkv_model_use_bf16(rwkv_model *m);
// Drops the bf16 copy (and its pointers): the sequential path reads the fp32 matrices again.
void rwkv_model_drop_bf16(rwkv_model *m);
size_t rwkv_model_n_params(const rwkv_model *m);

// RWKV-5.2/7 (model_v7.c). The version of a tensor set from its names: 4, RWKV_VERSION_5 (5.2)
// or RWKV_VERSION_7; RWKV-5.0/5.1, 6 and unknown sets are an error naming the file.
rwkv_status rwkv_model_version(const rwkv_tensor_set *ts, const char *path, int *version);
// A zero-filled RWKV-7 model, or RWKV-5.2 when cfg.version is 5 (cfg.head_size set; n_lora
// is filled in).
rwkv_status rwkv_v7_model_alloc(rwkv_model **out, rwkv_config cfg, rwkv_v7_dims d);
rwkv_status rwkv_v7_model_from_tensors(rwkv_model **out, const rwkv_tensor_set *ts, const char *path,
                                       const char *format);
// RWKV_ERR_UNSUPPORTED naming `what` (a tool) for an RWKV-5/7 model.
rwkv_status rwkv_model_require_v4(const rwkv_model *m, const char *what);

#endif
