// fuzz_pth.c: the pth checkpoint reader (rwkv_pth_read), then the model built from
// what it read.
#include "util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    fuzz_model_reader(data, size, ".pth", rwkv_pth_read, "pth");
    return 0;
}
