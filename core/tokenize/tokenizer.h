// tokenizer.h: one interface over the GPT-NeoX BPE, RWKV World and byte tokenizers.
// SPEC: "neox:PATH" (tokenizer.json), "world:PATH" (rwkv_vocab_v20230424.txt), "bytes".
// Behaviour, invalid UTF-8 included: docs/tokenizers.md. Encoding with one NeoX tokenizer
// is not thread-safe (its word cache): use one tokenizer per thread.
#ifndef RWKV_TOKENIZER_H
#define RWKV_TOKENIZER_H

#include "../base/base.h"

typedef struct rwkv_tokenizer rwkv_tokenizer;

rwkv_status rwkv_tokenizer_load(rwkv_tokenizer **out, const char *spec);
void rwkv_tokenizer_free(rwkv_tokenizer *t);
// Encodes len bytes (any bytes, valid UTF-8 or not). *ids is malloc'd; *n its length.
rwkv_status rwkv_tokenizer_encode(rwkv_tokenizer *t, const char *text, size_t len, int **ids,
                                  size_t *n);
// Decodes to the exact bytes. *text is malloc'd and NUL-terminated; *len excludes the NUL.
rwkv_status rwkv_tokenizer_decode(const rwkv_tokenizer *t, const int *ids, size_t n, char **text,
                                  size_t *len);
// The bytes of one token (for streaming and --pieces); NULL if id is out of range.
const char *rwkv_tokenizer_piece(const rwkv_tokenizer *t, int id, size_t *len);
int rwkv_tokenizer_vocab_size(const rwkv_tokenizer *t);
const char *rwkv_tokenizer_spec(const rwkv_tokenizer *t);
// RWKV_ERR_ARG naming both sizes when the tokenizer's ids do not fit the model's vocab.
rwkv_status rwkv_tokenizer_check_vocab(const rwkv_tokenizer *t, int n_vocab);
// A token given as a decimal id or as text that encodes to exactly one token with t (NULL:
// ids only), len bytes of s; what names the argument in messages ("--metric").
rwkv_status rwkv_tokenizer_one(rwkv_tokenizer *t, const char *s, size_t len, const char *what, int *id);

#endif
