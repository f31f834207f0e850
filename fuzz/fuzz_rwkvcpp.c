// fuzz_rwkvcpp.c: the rwkvcpp checkpoint reader (rwkv_rwkvcpp_read), then the model built from
// what it read.
#include "util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    fuzz_model_reader(data, size, ".bin", rwkv_rwkvcpp_read, "rwkvcpp");
    return 0;
}
