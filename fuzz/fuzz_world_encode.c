// fuzz_world_encode.c: the RWKV World encoder (rwkv_vocab_v20230424.txt) on any bytes: every
// input encodes and decodes back byte for byte (docs/tokenizers.md).
#include "tok.h"
#include "util.h"

#include <stdio.h>

static rwkv_tokenizer *tok;

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc, (void)argv;
    char spec[600];
    snprintf(spec, sizeof spec, "world:%s", fuzz_fixture("rwkv_vocab_v20230424.txt"));
    fuzz_require(rwkv_tokenizer_load(&tok, spec) == RWKV_OK, "loading tests/fixtures/rwkv_vocab_v20230424.txt");
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    fuzz_tok_roundtrip(tok, (const char *)data, size, 1);
    return 0;
}
