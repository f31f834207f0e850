// fuzz_safetensors.c: the safetensors checkpoint reader (rwkv_safetensors_read), then the model built from
// what it read.
#include "util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    fuzz_model_reader(data, size, ".safetensors", rwkv_safetensors_read, "safetensors");
    return 0;
}
