// fuzz_world_vocab.c: the RWKV World vocabulary loader; a file it accepts must encode and
// decode a fixed text without breaking.
#include "tok.h"
#include "util.h"

#include <stdio.h>
#include <string.h>

static const char SAMPLE[] = "Hello, world!\n  The cat's 12 hats <|endoftext|> caf\xc3\xa9 \xe4\xbd\xa0\xe5\xa5\xbd \xff";

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char spec[600];
    snprintf(spec, sizeof spec, "world:%s", fuzz_file(data, size, ".txt"));
    rwkv_tokenizer *t = NULL;
    if (rwkv_tokenizer_load(&t, spec) == RWKV_OK) fuzz_tok_roundtrip(t, SAMPLE, strlen(SAMPLE), 0);
    rwkv_tokenizer_free(t);
    return 0;
}
