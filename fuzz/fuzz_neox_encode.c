// fuzz_neox_encode.c: the GPT-NeoX encoder (20B_tokenizer.json) on any bytes. Every id is in
// the vocabulary, decoding succeeds, and ASCII text comes back byte for byte
// (docs/tokenizers.md: only non-NFC text may come back changed).
#include "tok.h"
#include "util.h"

static rwkv_tokenizer *tok;

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc, (void)argv;
    tok = fuzz_tok_fixture("neox", "20B_tokenizer.json");
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    int ascii = 1;
    for (size_t i = 0; i < size; i++) ascii &= data[i] < 0x80;
    fuzz_tok_roundtrip(tok, (const char *)data, size, ascii);
    return 0;
}
