// fuzz_safetensors.c: the safetensors checkpoint reader (rwkv_safetensors_read), then the model built from
// what it read (every shape check of rwkv_model_from_tensors).
#include "util.h"

#include "core/formats/formats.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const char *path = fuzz_file(data, size, ".safetensors");
    rwkv_tensor_set ts;
    rwkv_tensors_init(&ts);
    if (rwkv_safetensors_read(path, &ts) == RWKV_OK) {
        rwkv_model *m = NULL;
        if (rwkv_model_from_tensors(&m, &ts, path, "safetensors") == RWKV_OK) rwkv_model_free(m);
    }
    rwkv_tensors_free(&ts);
    return 0;
}
