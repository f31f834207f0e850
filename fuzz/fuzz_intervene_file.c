// fuzz_intervene_file.c: binding add:FILE and patch:FILE (the vector file and the dump rows
// of docs/interventions.md) to the fixture model's shape, with the input as that file.
// The seeds are a steering vector and a dump of rand-L3-C64-V300 (two sequences of 8 tokens).
#include "util.h"

#include "core/inspect/intervene.h"

#include <stdio.h>
#include <stdlib.h>

static const rwkv_config CFG = {.n_layer = 3, .n_embd = 64, .n_ffn = 256, .n_vocab = 300};
#define FUZZ_T 8 // tokens of the seed dump's sequence

static const char *const SPECS[] = {
    "blocks.0.resid_in@*=add:%s", "blocks.2.att_out:0-7@2-5=add:%s:2.5", "blocks.1.state_num@*=patch:%s",
    "blocks.0.ffn_k@last=patch:%s:0", "logits@1,3=patch:%s:1",
};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const char *path = fuzz_file(data, size, ".h5");
    rwkv_intervention *iv = calloc(1, sizeof *iv);
    fuzz_require(iv != NULL, "malloc");
    for (size_t k = 0; k < sizeof SPECS / sizeof *SPECS; k++) {
        char spec[RWKV_IV_SPEC_MAX];
        snprintf(spec, sizeof spec, SPECS[k], path);
        fuzz_require(rwkv_intervene_parse(iv, spec) == RWKV_OK, "parsing a fixed spec");
        if (rwkv_intervene_bind(iv, CFG, FUZZ_T) == RWKV_OK) {
            fuzz_require(iv->vec || iv->src, "a bound add/patch has its values");
            rwkv_intervene_release(iv);
        }
    }
    free(iv);
    fuzz_h5_closed();
    return 0;
}
