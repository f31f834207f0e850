// formats.h: checkpoint readers. Each parses one container into official-name tensors;
// rwkv_model_from_tensors then checks shapes and converts. Errors name the file and tensor.
#ifndef RWKV_FORMATS_H
#define RWKV_FORMATS_H

#include "../model/model.h"
#include "tensors.h"

typedef enum { RWKV_FMT_UNKNOWN, RWKV_FMT_PTH, RWKV_FMT_SAFETENSORS, RWKV_FMT_RWKVCPP } rwkv_format;

// Guesses the format from the first bytes (zip "PK", rwkv.cpp magic, safetensors header).
rwkv_status rwkv_format_detect(const char *path, rwkv_format *out);
const char *rwkv_format_name(rwkv_format f);

// PyTorch torch.save zip archive of a state dict (pickle + raw storages).
rwkv_status rwkv_pth_read(const char *path, rwkv_tensor_set *out);
// headers_only: matrices (2-D views, both sides > 1) get data NULL and are not inflated.
rwkv_status rwkv_pth_read_opt(const char *path, int headers_only, rwkv_tensor_set *out);
// Hugging Face safetensors; RwkvForCausalLM names are mapped to official ones, and the
// __metadata__ strings are kept in out->meta.
rwkv_status rwkv_safetensors_read(const char *path, rwkv_tensor_set *out);
// rwkv.cpp .bin (versions 100/101, FP32/FP16, version 101 Q4_0/Q4_1/Q5_0/Q5_1/Q8_0 matrices);
// time_decay is converted back to the raw value. safetensors and rwkv.cpp files are mapped
// (rwkv_tensors_map_file): tensors point into the page cache.
rwkv_status rwkv_rwkvcpp_read(const char *path, rwkv_tensor_set *out);

// Writes the model as safetensors: float32 tensors under the official names (time_mix as
// [1, 1, C]) and a __metadata__ object of meta_kv = key, value, key, value... (n_meta pairs).
// Writes a temporary file and renames it over path.
rwkv_status rwkv_safetensors_write(const char *path, const rwkv_model *m, const char *const *meta_kv,
                                   int n_meta);

#endif
