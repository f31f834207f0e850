// fuzz_intervene_spec.c: the TAP[:CHANNELS]@POSITIONS=OP parser and binding (range checks
// against a model and a sequence length), then applying the bound op to rows; also the
// CHANNELS / POSITIONS list parser on its own. The first byte picks the sequence length.
// add: and patch: read files: fuzz_intervene_file covers their binding.
#include "util.h"

#include "core/inspect/intervene.h"

#include <stdlib.h>
#include <string.h>

static const rwkv_config CFG = {.n_layer = 3, .n_embd = 64, .n_ffn = 256, .n_vocab = 300};

static void bind_and_apply(rwkv_intervention *iv, int64_t T) {
    if (iv->op == RWKV_IV_ADD || iv->op == RWKV_IV_PATCH) return;
    if (rwkv_intervene_bind(iv, CFG, T) != RWKV_OK) return;
    fuzz_require(iv->D > 0 && iv->T == T && iv->chan_mask && iv->pos_mask, "a bound intervention has its masks");
    rwkv_real *rows = calloc((size_t)T * iv->D, sizeof *rows); // every position at once
    fuzz_require(rows != NULL, "malloc");
    rwkv_intervene_apply(iv, 0, (int)T, rows);
    free(rows);
    rwkv_intervene_release(iv);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    int64_t T = 1 + data[0];
    char *spec = fuzz_str(data + 1, size - 1);
    rwkv_intervention *iv = calloc(1, sizeof *iv);
    fuzz_require(iv != NULL, "malloc");
    if (rwkv_intervene_parse(iv, spec) == RWKV_OK) bind_and_apply(iv, T);
    uint8_t mask[256];
    rwkv_intervene_index_list(mask, T, spec, "position", data[0] & 1);
    free(iv);
    free(spec);
    return 0;
}
