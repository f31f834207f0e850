// fuzz_world_encode.c: the RWKV World encoder (rwkv_vocab_v20230424.txt) on any bytes: every
// input encodes and decodes back byte for byte (docs/tokenizers.md).
#include "tok.h"
#include "util.h"

static rwkv_tokenizer *tok;

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc, (void)argv;
    tok = fuzz_tok_fixture("world", "rwkv_vocab_v20230424.txt");
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    fuzz_tok_roundtrip(tok, (const char *)data, size, 1);
    return 0;
}
