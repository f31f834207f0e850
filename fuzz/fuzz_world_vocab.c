// fuzz_world_vocab.c: the RWKV World vocabulary loader; a file it accepts must encode and decode
// a fixed text without breaking.
#include "tok.h"
#include "util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    fuzz_tok_vocab(data, size, "world", ".txt");
    return 0;
}
