// fuzz_pickle.c: the state-dict pickle reader on its own (inside a .pth the zip CRCs stop
// most mutations before the pickle is run).
#include "util.h"

#include "core/formats/pickle.h"

#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    rwkv_pickle_tensor *ts = NULL;
    int n = 0;
    if (rwkv_pickle_read_state_dict(data, size, "fuzz.pkl", &ts, &n) == RWKV_OK) {
        for (int i = 0; i < n; i++) {
            fuzz_require(ts[i].ndim >= 0 && ts[i].ndim <= RWKV_TENSOR_MAX_DIMS, "pickle tensor ndim in range");
            fuzz_require(ts[i].storage_numel >= 0 && ts[i].offset >= 0, "pickle storage sizes non-negative");
        }
    }
    free(ts);
    return 0;
}
