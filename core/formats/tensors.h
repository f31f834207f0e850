// tensors.h: the raw tensors a checkpoint reader hands to the model builder.
// Readers only parse their container; naming, shapes and dtype conversion are common.
#ifndef RWKV_TENSORS_H
#define RWKV_TENSORS_H

#include "../base/base.h"

typedef enum { RWKV_DT_F32, RWKV_DT_F16, RWKV_DT_BF16, RWKV_DT_F64 } rwkv_dtype;

#define RWKV_TENSOR_MAX_DIMS 4

typedef struct {
    char name[128];  // official checkpoint name (readers map other schemes to it)
    rwkv_dtype dtype;
    int ndim;
    int64_t shape[RWKV_TENSOR_MAX_DIMS];
    const void *data; // numel elements of dtype, little-endian, contiguous; owned by the set
} rwkv_tensor;

typedef struct {
    rwkv_tensor *items; // (n)
    int n, cap;
    void **owned;       // buffers freed with the set
    int n_owned, cap_owned;
    char **meta;        // (2 * n_meta) key, value, key, value... (safetensors __metadata__)
    int n_meta;
} rwkv_tensor_set;

void rwkv_tensors_init(rwkv_tensor_set *s);
void rwkv_tensors_free(rwkv_tensor_set *s);
// Takes ownership of buf (freed with the set, also on failure).
rwkv_status rwkv_tensors_own(rwkv_tensor_set *s, void *buf);
rwkv_status rwkv_tensors_add(rwkv_tensor_set *s, const char *name, rwkv_dtype dt, int ndim,
                             const int64_t *shape, const void *data);
// Copies key and value; a repeated key replaces the old value.
rwkv_status rwkv_tensors_set_meta(rwkv_tensor_set *s, const char *key, const char *value);
const char *rwkv_tensors_meta(const rwkv_tensor_set *s, const char *key); // NULL if absent
const rwkv_tensor *rwkv_tensors_find(const rwkv_tensor_set *s, const char *name);
// n_layer of a checkpoint: one more than the largest N of the "blocks.N.*" names (0 if none).
int rwkv_tensors_count_layers(const rwkv_tensor_set *ts);
// "[a, b, c]" into buf (for shape messages).
void rwkv_tensors_format_shape(char *buf, size_t n, const int64_t *shape, int ndim);
size_t rwkv_dtype_size(rwkv_dtype dt);
const char *rwkv_dtype_name(rwkv_dtype dt);
int64_t rwkv_tensor_numel(const rwkv_tensor *t);
// Converts n elements of dt to rwkv_real.
void rwkv_tensors_convert(rwkv_real *out, const void *src, rwkv_dtype dt, size_t n);

float rwkv_half_to_float(uint16_t h);
float rwkv_bf16_to_float(uint16_t b);
uint16_t rwkv_float_to_bf16(float f); // round to nearest even
uint16_t rwkv_float_to_half(float f); // round to nearest even

#endif
