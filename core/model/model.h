// model.h: a loaded RWKV-4 model: shape, weights, where it came from.
// Vectors (layer norms, decays, mixes) and the embedding are float in `block`. The matrices
// are read through `mats`, typed views that point into the block (a float copy), into the
// file itself (a read-only mapping of safetensors or rwkv.cpp files, or .pth storages read
// once), or into a converted copy (bf16, int8). `w`'s matrix fields are NULL unless the
// block holds float matrices.
#ifndef RWKV_MODEL_H
#define RWKV_MODEL_H

#include "../formats/tensors.h"
#include "weights.h"
#include "weights_v7.h"

#define RWKV_PATH_MAX 1024

// Typed views of the matrices, one per layer.
typedef struct {
    rwkv_mat *att_key, *att_value, *att_receptance, *att_output; // (L) each (C, C)
    rwkv_mat *ffn_key;        // (L) each (F, C)
    rwkv_mat *ffn_value;      // (L) each (C, F)
    rwkv_mat *ffn_receptance; // (L) each (C, C)
    rwkv_mat head;            // (V, C)
} rwkv_mats;

#define RWKV_N_MATS 7 // per-layer matrices in rwkv_mats

typedef struct {
    rwkv_config cfg;
    rwkv_param_table table;
    rwkv_real *block;         // (table.total) every parameter, or (vectors) when !full
    int full;                 // block holds every parameter at table offsets
    rwkv_weights w;           // pointers into block (matrix fields NULL when !full)
    rwkv_real *decay_w;       // (L, C) w = exp(time_decay), precomputed for the WKV
    rwkv_mats mats;           // what the kernels read
    rwkv_mat *mat_store;      // (RWKV_N_MATS * L + 1) the views of mats
    void *mat_buf;            // converted matrices (bf16, int8) the views point into, or NULL
    rwkv_tensor_set *src;     // the file's tensors the views point into, or NULL
    rwkv_v7_weights *v7;      // RWKV-5.2/7 weights; then w holds only the globals (emb, ln0,
                              // ln_out, head, into v7), block is v7->block, table lists v7's
                              // tensors (rwkv_v7_table_alloc), decay_w is NULL, and the
                              // matrices are read through v7->views (mats holds only the head)
    char path[RWKV_PATH_MAX];
    char format[16];          // "pth", "safetensors", "rwkvcpp"
    char dtype[16];           // stored dtype of the matrices, e.g. "bfloat16"
    char tokenizer[256];      // from checkpoint metadata, if any ("" when unknown)
} rwkv_model;

// How rwkv_model_open holds the weights.
typedef enum {
    RWKV_WEIGHTS_FILE,    // matrices as stored, in place (mapped); PRECISION=64: a float copy
    RWKV_WEIGHTS_FP32,    // a float copy of every weight
    RWKV_WEIGHTS_BF16,    // matrices converted to bf16
    RWKV_WEIGHTS_INT8,    // matrices quantized to I8 (int8 per weight, a float32 scale per 32)
    RWKV_WEIGHTS_HEADERS, // shapes, types and vectors only; matrices unread (info)
} rwkv_weights_mode;

// Load progress: bytes of weights done of total, called after each tensor.
typedef void (*rwkv_progress_fn)(void *ctx, uint64_t done, uint64_t total);

typedef struct {
    rwkv_weights_mode weights;
    rwkv_progress_fn progress; // or NULL
    void *progress_ctx;
} rwkv_load_opts;

// Reads any supported checkpoint, detecting the format from its leading bytes: a float copy
// of every weight, plus bf16 views when the checkpoint is bf16 (lossless).
rwkv_status rwkv_model_load(rwkv_model **out, const char *path);
// Reads a checkpoint as o says. Every weight is checked finite (but in HEADERS mode).
rwkv_status rwkv_model_open(rwkv_model **out, const char *path, const rwkv_load_opts *o);
// Builds a float model from official-name tensors (infers L, C, F, V; checks every shape).
rwkv_status rwkv_model_from_tensors(rwkv_model **out, const rwkv_tensor_set *ts, const char *path,
                                    const char *format);
// A zero-filled model of the given shape (for init, training and benchmarks).
rwkv_status rwkv_model_alloc(rwkv_model **out, rwkv_config cfg);
void rwkv_model_free(rwkv_model *m);
// Recomputes derived arrays (decay_w) after the block changed (init, training).
void rwkv_model_refresh(rwkv_model *m);
// Converts the matrices to bf16 (rwkv_model_use_bf16) or I8 (use_int8) views; the
// sequential path then reads them (fp32 compute). A full block stays for the parallel path.
rwkv_status rwkv_model_use_bf16(rwkv_model *m);
rwkv_status rwkv_model_use_int8(rwkv_model *m);
// Points the views back at the float block (a full model only).
void rwkv_model_use_block(rwkv_model *m);
size_t rwkv_model_n_params(const rwkv_model *m);
// The view of parameter p (a matrix), or NULL.
const rwkv_mat *rwkv_model_mat(const rwkv_model *m, const rwkv_param *p);
// Bytes the kernels read per token for the matrices (sum of the views' sizes).
size_t rwkv_model_mat_bytes(const rwkv_model *m);

// RWKV-5.2/6/7 (model_v7.c). The version of a tensor set from its names: 4, RWKV_VERSION_5
// (5.2), RWKV_VERSION_6 or RWKV_VERSION_7; RWKV-5.0/5.1 and unknown sets are an error naming
// the file.
rwkv_status rwkv_model_version(const rwkv_tensor_set *ts, const char *path, int *version);
// A zero-filled RWKV-7 model, or RWKV-5.2 / RWKV-6 when cfg.version is 5 / 6 (cfg.head_size
// set; n_lora is filled in).
rwkv_status rwkv_v7_model_alloc(rwkv_model **out, rwkv_config cfg, rwkv_v7_dims d);
rwkv_status rwkv_v7_model_from_tensors(rwkv_model **out, const rwkv_tensor_set *ts, const char *path,
                                       const char *format);
// The same with the large matrices viewed in ts's tensors in their stored type (the caller
// keeps ts alive as m->src); headers: no finiteness check of the matrices (info).
rwkv_status rwkv_v7_model_typed(rwkv_model **out, const rwkv_tensor_set *ts, const char *path, const char *format,
                                int headers);
// RWKV_ERR_UNSUPPORTED naming `what` (a tool) for an RWKV-5/7 model.
rwkv_status rwkv_model_require_v4(const rwkv_model *m, const char *what);

#endif
