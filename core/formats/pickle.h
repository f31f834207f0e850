// pickle.h: a small pickle reader for the state dict that torch.save writes.
// It runs exactly the opcodes and globals torch.save emits for a dict of float tensors
// (protocols 2-4) and refuses anything else by name. Every read is bounded.
#ifndef RWKV_PICKLE_H
#define RWKV_PICKLE_H

#include "tensors.h"

#define RWKV_PICKLE_KEY_MAX 64 // storage keys are small decimal strings ("0", "41")

// One tensor of the state dict, before its storage is read.
typedef struct {
    char name[128];                       // the state-dict key
    rwkv_dtype dtype;                     // from the storage class (FloatStorage...)
    char storage[RWKV_PICKLE_KEY_MAX];    // storage key: the archive holds <top>/data/<key>
    int64_t storage_numel;                // elements in that storage
    int64_t offset;                       // elements from the storage start
    int ndim;
    int64_t shape[RWKV_TENSOR_MAX_DIMS];  // (ndim)
    int64_t stride[RWKV_TENSOR_MAX_DIMS]; // (ndim) in elements
} rwkv_pickle_tensor;

// Runs the pickle in buf (n bytes) and returns its top-level dict of tensors as a malloc'd
// array (*out, *n_out). `where` names the data for messages ("x.pth: archive/data.pkl").
rwkv_status rwkv_pickle_read_state_dict(const unsigned char *buf, size_t n, const char *where,
                                        rwkv_pickle_tensor **out, int *n_out);

#endif
