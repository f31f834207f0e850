// fuzz_state.c: the state file reader (rwkv_state_load, docs/state-format.md) against the
// shape of rand-L2-C32-V50; the seeds are state files of that model.
#include "util.h"

#include "core/inspect/state_io.h"

static rwkv_model *model;
static rwkv_state *state;

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc, (void)argv;
    rwkv_config cfg = {.n_layer = 2, .n_embd = 32, .n_ffn = 128, .n_vocab = 50};
    fuzz_require(rwkv_model_alloc(&model, cfg) == RWKV_OK && rwkv_state_alloc(&state, cfg) == RWKV_OK,
                 "allocating the model and state");
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    rwkv_state_load(state, fuzz_file(data, size, ".h5"), model);
    fuzz_h5_closed();
    return 0;
}
