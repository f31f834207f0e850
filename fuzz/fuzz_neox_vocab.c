// fuzz_neox_vocab.c: the GPT-NeoX tokenizer.json loader; a file it accepts must encode and decode
// a fixed text without breaking.
#include "tok.h"
#include "util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    fuzz_tok_vocab(data, size, "neox", ".json");
    return 0;
}
