// tensors.h: the raw tensors a checkpoint reader hands to the model builder.
// Readers only parse their container; naming, shapes and dtype conversion are common.
#ifndef RWKV_TENSORS_H
#define RWKV_TENSORS_H

#include "../base/base.h"

// Element types. The Q* types are ggml's block formats (rwkv.cpp files): 32 weights per
// block with fp16 scales; I8 is rwkvscope's int8 block (32 int8, then a float32 scale), what
// `--weights int8` makes. See core/formats/quant.h.
typedef enum {
    RWKV_DT_F32, RWKV_DT_F16, RWKV_DT_BF16, RWKV_DT_F64,
    RWKV_DT_Q4_0, RWKV_DT_Q4_1, RWKV_DT_Q5_0, RWKV_DT_Q5_1, RWKV_DT_Q8_0, RWKV_DT_I8
} rwkv_dtype;

#define RWKV_DT_QK 32 // weights per block of every quantized type

#define RWKV_TENSOR_MAX_DIMS 4

// The element type of rwkv_real, for views of float blocks.
#define RWKV_DT_REAL (RWKV_REAL_BITS == 64 ? RWKV_DT_F64 : RWKV_DT_F32)

// One matrix (rows, cols) as the kernels read it: row-major, in its stored type.
typedef struct {
    rwkv_dtype type;
    const void *data; // rows * rwkv_dtype_bytes(type, cols) bytes
} rwkv_mat;

typedef struct {
    char name[128];  // official checkpoint name (readers map other schemes to it)
    rwkv_dtype dtype;
    int ndim;
    int64_t shape[RWKV_TENSOR_MAX_DIMS];
    const void *data; // numel elements of dtype, little-endian, contiguous; owned by the set
                      // (NULL when a reader skipped the data: rwkv_pth_read's headers mode)
} rwkv_tensor;

typedef struct {
    rwkv_tensor *items; // (n)
    int n, cap;
    void **owned;       // buffers freed with the set
    int n_owned, cap_owned;
    char **meta;        // (2 * n_meta) key, value, key, value... (safetensors __metadata__)
    int n_meta;
    void *map;          // a read-only file mapping the tensors point into (unmapped with the set)
    size_t map_bytes;
} rwkv_tensor_set;

void rwkv_tensors_init(rwkv_tensor_set *s);
void rwkv_tensors_free(rwkv_tensor_set *s);
// Takes ownership of buf (freed with the set, also on failure).
rwkv_status rwkv_tensors_own(rwkv_tensor_set *s, void *buf);
rwkv_status rwkv_tensors_add(rwkv_tensor_set *s, const char *name, rwkv_dtype dt, int ndim,
                             const int64_t *shape, const void *data);
// Maps a regular file read-only into the set (the tensors then point into the page cache;
// nothing is read until used), or reads any other file (a pipe) into an owned buffer.
rwkv_status rwkv_tensors_map_file(rwkv_tensor_set *s, const char *path, const unsigned char **data,
                                  size_t *n);
// Tells the kernel that [p, p + n) of the mapping will not be read again (a converted copy
// exists), so its pages leave the resident set.
void rwkv_tensors_map_release(const rwkv_tensor_set *s, const void *p, size_t n);
// Copies key and value; a repeated key replaces the old value.
rwkv_status rwkv_tensors_set_meta(rwkv_tensor_set *s, const char *key, const char *value);
const char *rwkv_tensors_meta(const rwkv_tensor_set *s, const char *key); // NULL if absent
const rwkv_tensor *rwkv_tensors_find(const rwkv_tensor_set *s, const char *name);
// n_layer of a checkpoint: one more than the largest N of the "blocks.N.*" names (0 if none).
int rwkv_tensors_count_layers(const rwkv_tensor_set *ts);
// "[a, b, c]" into buf (for shape messages).
void rwkv_tensors_format_shape(char *buf, size_t n, const int64_t *shape, int ndim);
size_t rwkv_dtype_size(rwkv_dtype dt); // bytes per element; 0 for the block types
int rwkv_dtype_is_quant(rwkv_dtype dt);
// Bytes of n elements (n a multiple of RWKV_DT_QK for the block types).
size_t rwkv_dtype_bytes(rwkv_dtype dt, size_t n);
const char *rwkv_dtype_name(rwkv_dtype dt);
int64_t rwkv_tensor_numel(const rwkv_tensor *t);
// Index of the first non-finite element of n elements of dt (for the block types, the
// first element of the first block with a non-finite scale), or -1.
int64_t rwkv_tensors_first_nonfinite(const void *src, rwkv_dtype dt, size_t n);
// RWKV_ERR_NUMERIC naming path, tensor and element `at`: a NaN or inf in the weights.
rwkv_status rwkv_tensors_nonfinite_error(const char *path, const char *name, int64_t at);
// The first non-finite of n converted values x is that error; RWKV_OK if there is none.
rwkv_status rwkv_tensors_check_finite(const rwkv_real *x, size_t n, const char *path, const char *name);
// Converts n elements of dt to rwkv_real.
void rwkv_tensors_convert(rwkv_real *out, const void *src, rwkv_dtype dt, size_t n);

float rwkv_half_to_float(uint16_t h);
float rwkv_bf16_to_float(uint16_t b);
uint16_t rwkv_float_to_bf16(float f); // round to nearest even
uint16_t rwkv_float_to_half(float f); // round to nearest even

#endif
