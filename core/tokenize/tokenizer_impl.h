// tokenizer_impl.h: what the three tokenizer back ends share (not part of the public API).
// The common part is the piece table: the exact bytes of every id, so decoding is the
// same concatenation for all back ends. Each back end fills it and supplies an encoder.
#ifndef RWKV_TOKENIZER_IMPL_H
#define RWKV_TOKENIZER_IMPL_H

#include "tokenizer.h"

#include <stdint.h>

#define RWKV_PIECE_NONE UINT32_MAX // piece_len of an id that names no token

// A growable list of ids: the encoders' output.
typedef struct {
    int *v;
    size_t n, cap;
} rwkv_idvec;

rwkv_status rwkv_idvec_push(rwkv_idvec *v, int id);

struct rwkv_tokenizer {
    char *spec;
    int n_vocab;         // largest id + 1
    char *blob;          // every piece's bytes, back to back
    size_t *piece_off;   // (n_vocab) offset of each piece in blob
    uint32_t *piece_len; // (n_vocab) its length, or RWKV_PIECE_NONE
    void *impl;          // the back end's state
    rwkv_status (*encode)(rwkv_tokenizer *t, const unsigned char *s, size_t len, rwkv_idvec *out);
    void (*impl_free)(void *impl);
};

// Allocates the piece table for n_vocab ids (all RWKV_PIECE_NONE) and a blob of blob_cap bytes.
rwkv_status rwkv_tokenizer_pieces_alloc(rwkv_tokenizer *t, int n_vocab, size_t blob_cap);

// Length of the valid UTF-8 sequence at p (p < end) and its code point in *cp; 0 if invalid
// (bad lead or continuation byte, truncated, overlong, surrogate, above U+10FFFF).
size_t rwkv_utf8_decode(const unsigned char *p, const unsigned char *end, uint32_t *cp);

// The back ends fill t (pieces, impl, encode, impl_free); path is for error messages.
rwkv_status rwkv_neox_load(rwkv_tokenizer *t, const char *path);
rwkv_status rwkv_world_load(rwkv_tokenizer *t, const char *path);
rwkv_status rwkv_bytes_load(rwkv_tokenizer *t);

#endif
