// bytes.c: the identity tokenizer of byte-level models: byte b is token b (vocab 256).
#include "tokenizer_impl.h"

#define BYTES_VOCAB 256

static rwkv_status bytes_encode(rwkv_tokenizer *t, const unsigned char *s, size_t len, rwkv_idvec *out) {
    (void)t;
    rwkv_status st = RWKV_OK;
    for (size_t i = 0; i < len && !st; i++) st = rwkv_idvec_push(out, s[i]);
    return st;
}

rwkv_status rwkv_bytes_load(rwkv_tokenizer *t) {
    rwkv_status st = rwkv_tokenizer_pieces_alloc(t, BYTES_VOCAB, BYTES_VOCAB);
    if (st) return st;
    for (int b = 0; b < BYTES_VOCAB; b++) {
        t->blob[b] = (char)b;
        t->piece_off[b] = (size_t)b;
        t->piece_len[b] = 1;
    }
    t->encode = bytes_encode;
    return RWKV_OK;
}
