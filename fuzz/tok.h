// tok.h: the tokenizer checks the four tokenizer harnesses share.
#ifndef RWKV_FUZZ_TOK_H
#define RWKV_FUZZ_TOK_H

#include "core/tokenize/tokenizer.h"

#include <stddef.h>

// Encodes len bytes of text; on success every id is in the vocabulary and decoding
// succeeds. With `exact` encoding must succeed and decoding give back the bytes. Aborts on
// a broken property.
void fuzz_tok_roundtrip(rwkv_tokenizer *t, const char *text, size_t len, int exact);

// The tokenizer of kind ("neox", "world") from tests/fixtures/<name>; aborts if it fails.
rwkv_tokenizer *fuzz_tok_fixture(const char *kind, const char *name);
// A vocabulary harness: the input as a kind vocabulary file (name ending in suffix); one it
// accepts must encode and decode a fixed text without breaking.
void fuzz_tok_vocab(const uint8_t *data, size_t size, const char *kind, const char *suffix);

#endif
