// tokenizer.c: SPEC parsing, dispatch to the back ends, and the shared piece table
// (decoding is the concatenation of the pieces' exact bytes for every back end).
#include "tokenizer_impl.h"

#include <stdlib.h>
#include <string.h>

rwkv_status rwkv_idvec_push(rwkv_idvec *v, int id) {
    if (v->n == v->cap) {
        size_t cap = v->cap ? 2 * v->cap : 256;
        int *nv = realloc(v->v, cap * sizeof *nv);
        if (!nv) return rwkv_error_set(RWKV_ERR_NOMEM, "out of memory growing the token list to %zu ids", cap);
        v->v = nv;
        v->cap = cap;
    }
    v->v[v->n++] = id;
    return RWKV_OK;
}

size_t rwkv_utf8_decode(const unsigned char *p, const unsigned char *end, uint32_t *cp) {
    unsigned c = p[0];
    if (c < 0x80) {
        *cp = c;
        return 1;
    }
    size_t n = (c >= 0xC2 && c < 0xE0) ? 2 : (c >= 0xE0 && c < 0xF0) ? 3 : (c >= 0xF0 && c < 0xF5) ? 4 : 0;
    if (!n || (size_t)(end - p) < n) return 0;
    uint32_t v = c & (0x7Fu >> n);
    for (size_t i = 1; i < n; i++) {
        if ((p[i] & 0xC0) != 0x80) return 0;
        v = v << 6 | (p[i] & 0x3Fu);
    }
    static const uint32_t min[5] = {0, 0, 0x80, 0x800, 0x10000};
    if (v < min[n] || (v >= 0xD800 && v < 0xE000) || v > 0x10FFFF) return 0;
    *cp = v;
    return n;
}

rwkv_status rwkv_tokenizer_pieces_alloc(rwkv_tokenizer *t, int n_vocab, size_t blob_cap) {
    t->n_vocab = n_vocab;
    t->piece_off = rwkv_calloc((size_t)n_vocab, sizeof *t->piece_off, "token pieces");
    t->piece_len = rwkv_calloc((size_t)n_vocab, sizeof *t->piece_len, "token pieces");
    t->blob = rwkv_calloc(blob_cap, 1, "token pieces");
    if (!t->piece_off || !t->piece_len || !t->blob) return RWKV_ERR_NOMEM;
    for (int i = 0; i < n_vocab; i++) t->piece_len[i] = RWKV_PIECE_NONE;
    return RWKV_OK;
}

void rwkv_tokenizer_free(rwkv_tokenizer *t) {
    if (!t) return;
    if (t->impl_free) t->impl_free(t->impl);
    free(t->spec);
    free(t->blob);
    free(t->piece_off);
    free(t->piece_len);
    free(t);
}

rwkv_status rwkv_tokenizer_load(rwkv_tokenizer **out, const char *spec) {
    *out = NULL;
    if (!spec) return rwkv_error_set(RWKV_ERR_ARG, "tokenizer spec missing (neox:PATH, world:PATH or bytes)");
    rwkv_tokenizer *t = rwkv_calloc(1, sizeof *t, "tokenizer");
    if (!t) return RWKV_ERR_NOMEM;
    if (!(t->spec = strdup(spec))) {
        free(t);
        return rwkv_error_set(RWKV_ERR_NOMEM, "out of memory");
    }
    rwkv_status st;
    if (!strcmp(spec, "bytes"))
        st = rwkv_bytes_load(t);
    else if (!strncmp(spec, "neox:", 5) && spec[5])
        st = rwkv_neox_load(t, spec + 5);
    else if (!strncmp(spec, "world:", 6) && spec[6])
        st = rwkv_world_load(t, spec + 6);
    else
        st = rwkv_error_set(RWKV_ERR_ARG,
                            "tokenizer spec '%s': expected neox:PATH (a tokenizer.json), "
                            "world:PATH (rwkv_vocab_v20230424.txt) or bytes",
                            spec);
    if (st) {
        rwkv_tokenizer_free(t);
        return st;
    }
    *out = t;
    return RWKV_OK;
}

rwkv_status rwkv_tokenizer_encode(rwkv_tokenizer *t, const char *text, size_t len, int **ids, size_t *n) {
    *ids = NULL;
    *n = 0;
    rwkv_idvec v = {0};
    rwkv_status st = rwkv_idvec_push(&v, 0); // ensures a non-NULL buffer, even for empty input
    v.n = 0;
    if (!st) st = t->encode(t, (const unsigned char *)text, len, &v);
    if (st) {
        free(v.v);
        return rwkv_error_wrap(st, "tokenizer %s: ", t->spec);
    }
    *ids = v.v;
    *n = v.n;
    return RWKV_OK;
}

const char *rwkv_tokenizer_piece(const rwkv_tokenizer *t, int id, size_t *len) {
    if (id < 0 || id >= t->n_vocab || t->piece_len[id] == RWKV_PIECE_NONE) return NULL;
    *len = t->piece_len[id];
    return t->blob + t->piece_off[id];
}

rwkv_status rwkv_tokenizer_decode(const rwkv_tokenizer *t, const int *ids, size_t n, char **text, size_t *len) {
    *text = NULL;
    *len = 0;
    size_t total = 0, plen;
    for (size_t i = 0; i < n; i++) {
        if (!rwkv_tokenizer_piece(t, ids[i], &plen))
            return rwkv_error_set(RWKV_ERR_ARG,
                                  "tokenizer %s: token id %d at position %zu is not in its vocabulary "
                                  "(ids 0..%d)",
                                  t->spec, ids[i], i, t->n_vocab - 1);
        total += plen;
    }
    char *out = rwkv_calloc(total + 1, 1, "decoded text");
    if (!out) return RWKV_ERR_NOMEM;
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        const char *p = rwkv_tokenizer_piece(t, ids[i], &plen);
        memcpy(out + k, p, plen);
        k += plen;
    }
    out[k] = '\0';
    *text = out;
    *len = k;
    return RWKV_OK;
}

int rwkv_tokenizer_vocab_size(const rwkv_tokenizer *t) { return t->n_vocab; }

const char *rwkv_tokenizer_spec(const rwkv_tokenizer *t) { return t->spec; }

rwkv_status rwkv_tokenizer_check_vocab(const rwkv_tokenizer *t, int n_vocab) {
    if (n_vocab >= t->n_vocab) return RWKV_OK;
    return rwkv_error_set(RWKV_ERR_ARG,
                          "tokenizer %s has %d ids (0..%d) but the model's vocabulary has only %d "
                          "entries: the model needs a vocabulary of at least %d for this tokenizer",
                          t->spec, t->n_vocab, t->n_vocab - 1, n_vocab, t->n_vocab);
}

rwkv_status rwkv_tokenizer_one(rwkv_tokenizer *t, const char *s, size_t len, const char *what, int *id) {
    char text[256];
    if (len == 0 || len >= sizeof text)
        return rwkv_error_set(RWKV_ERR_ARG, "%s: empty or too long token '%.*s'", what, (int)len, s);
    memcpy(text, s, len);
    text[len] = 0;
    char *end;
    long v = strtol(text, &end, 10);
    if (!*end && v >= 0 && v <= INT32_MAX) {
        *id = (int)v;
        return RWKV_OK;
    }
    if (!t) return rwkv_error_set(RWKV_ERR_ARG, "%s: '%s' is not a token id (the prompts were given as ids)", what, text);
    int *ids;
    size_t n;
    rwkv_status st = rwkv_tokenizer_encode(t, text, len, &ids, &n);
    if (st) return st;
    if (n != 1) st = rwkv_error_set(RWKV_ERR_ARG, "%s: '%s' encodes to %zu tokens, expected one", what, text, n);
    else *id = ids[0];
    free(ids);
    return st;
}
