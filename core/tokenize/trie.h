// trie.h: a frozen byte trie answering "longest key that prefixes this text" fast.
// Used by the World tokenizer (its whole vocabulary) and by the NeoX added tokens.
#ifndef RWKV_TRIE_H
#define RWKV_TRIE_H

#include "../base/base.h"

typedef struct rwkv_trie rwkv_trie;

// Builds a trie over n keys (keys[i] of lens[i] > 0 bytes, value values[i] >= 0).
// Duplicate keys are an error: RWKV_ERR_FORMAT with *dup = index of the second copy.
// Other failures leave *dup = -1. what names the keys in error messages.
rwkv_status rwkv_trie_build(rwkv_trie **out, const unsigned char *const *keys, const size_t *lens, const int *values,
                            size_t n, long *dup);
void rwkv_trie_free(rwkv_trie *t);
// The value of the longest key that is a prefix of s[0..len), its length in *mlen; -1 if none.
int rwkv_trie_longest(const rwkv_trie *t, const unsigned char *s, size_t len, size_t *mlen);
// 1 if some key starts with byte b (a cheap pre-filter before rwkv_trie_longest).
int rwkv_trie_starts(const rwkv_trie *t, unsigned char b);

#endif
