// tok.h: the tokenizer checks the four tokenizer harnesses share.
#ifndef RWKV_FUZZ_TOK_H
#define RWKV_FUZZ_TOK_H

#include "core/tokenize/tokenizer.h"

#include <stddef.h>

// Encodes len bytes of text; on success every id is in the vocabulary and decoding
// succeeds. With `exact` encoding must succeed and decoding give back the bytes. Aborts on
// a broken property.
void fuzz_tok_roundtrip(rwkv_tokenizer *t, const char *text, size_t len, int exact);

#endif
