// checkpoint.h: saving a training run and resuming it bit-identically.
// A checkpoint is two files:
//   model.safetensors  the model under the official names (float32) with metadata:
//                      config, step, tokenizer and the training configuration; any
//                      rwkvscope command loads it (rwkv_model_load).
//   model.optim.h5     the exact training state (docs/train-checkpoint.md): parameters at
//                      the build's precision, AdamW moments, step and every hyperparameter.
//                      Batches are a pure function of (seed, step), so nothing else is needed.
// Both are written to a temporary name and renamed, so an interrupted save never leaves a
// broken checkpoint behind: the last good one stays.
#ifndef RWKV_CHECKPOINT_H
#define RWKV_CHECKPOINT_H

#include "trainer.h"

#define RWKV_OPTIM_FORMAT "rwkvscope-optim"
#define RWKV_OPTIM_VERSION 1

// model.safetensors -> model.optim.h5 (any other name gets ".optim.h5" appended).
void rwkv_checkpoint_optim_path(char *buf, size_t n, const char *model_path);
// Writes the model with metadata (tokenizer may be NULL: "bytes").
rwkv_status rwkv_checkpoint_save_model(const rwkv_model *m, const char *path, const char *tokenizer,
                                       int64_t step, const rwkv_trainer_opts *o, const char *data_source);
// Writes the model and, beside it, the optimiser state.
rwkv_status rwkv_checkpoint_save(const rwkv_trainer *tr, const char *model_path, const char *tokenizer);
rwkv_status rwkv_checkpoint_save_optim(const rwkv_trainer *tr, const char *path);
// Reads the shape, the run's options and the step from an optimiser file.
rwkv_status rwkv_checkpoint_read_opts(const char *path, rwkv_config *cfg, rwkv_trainer_opts *o,
                                      int64_t *step);
// Loads parameters, moments and step into a trainer made with those options and shape.
rwkv_status rwkv_checkpoint_resume(rwkv_trainer *tr, const char *path);

#endif
