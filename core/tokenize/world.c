// world.c: the RWKV World tokenizer. The vocabulary file has one token per line,
//   <id> <python str or bytes literal> <length in bytes>
// (rwkv_vocab_v20230424.txt). Encoding is a greedy longest byte match from the left,
// as in the reference TRIE_TOKENIZER; decoding concatenates the tokens' bytes.
// Id 0 is not in the file: it is the models' end-of-text token and decodes to nothing.
#include "../base/file.h"
#include "tokenizer_impl.h"
#include "trie.h"

#include <stdlib.h>
#include <string.h>

#define WORLD_MAX_ID (1 << 24) // ids beyond this mean a corrupt line, not a real vocabulary
#define WORLD_MAX_LINE_ERR 40  // bytes of a bad line quoted in an error message

typedef struct {
    rwkv_trie *trie;
} world;

static void world_free(void *p) {
    world *w = p;
    if (!w) return;
    rwkv_trie_free(w->trie);
    free(w);
}

static rwkv_status world_encode(rwkv_tokenizer *t, const unsigned char *s, size_t len, rwkv_idvec *out) {
    const world *w = t->impl;
    for (size_t i = 0; i < len;) {
        size_t m;
        int id = rwkv_trie_longest(w->trie, s + i, len - i, &m);
        if (id < 0)
            return rwkv_error_set(RWKV_ERR_ARG, "byte 0x%02x at offset %zu has no token in the vocabulary", s[i], i);
        if (out->n < out->cap)
            out->v[out->n++] = id; // the common case, without a call
        else if (rwkv_idvec_push(out, id))
            return RWKV_ERR_NOMEM;
        i += m;
    }
    return RWKV_OK;
}

static int hexval(int c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

// Appends code point cp as UTF-8; 0 if cp cannot be encoded (surrogate or > U+10FFFF).
static size_t put_utf8(unsigned char *o, uint32_t cp) {
    if (cp < 0x80) {
        o[0] = (unsigned char)cp;
        return 1;
    }
    if (cp < 0x800) {
        o[0] = (unsigned char)(0xC0 | cp >> 6);
        o[1] = (unsigned char)(0x80 | (cp & 63));
        return 2;
    }
    if (cp >= 0xD800 && cp < 0xE000) return 0;
    if (cp < 0x10000) {
        o[0] = (unsigned char)(0xE0 | cp >> 12);
        o[1] = (unsigned char)(0x80 | (cp >> 6 & 63));
        o[2] = (unsigned char)(0x80 | (cp & 63));
        return 3;
    }
    if (cp > 0x10FFFF) return 0;
    o[0] = (unsigned char)(0xF0 | cp >> 18);
    o[1] = (unsigned char)(0x80 | (cp >> 12 & 63));
    o[2] = (unsigned char)(0x80 | (cp >> 6 & 63));
    o[3] = (unsigned char)(0x80 | (cp & 63));
    return 4;
}

// Reads an escape's digits: exactly n hex digits (n > 0), or 1-3 octal digits (n == 0).
static int read_digits(const unsigned char **pp, const unsigned char *end, int n, uint32_t *v) {
    const unsigned char *p = *pp;
    *v = 0;
    if (n == 0) {
        int k = 0;
        while (k < 3 && p < end && *p >= '0' && *p <= '7') *v = *v * 8 + (uint32_t)(*p++ - '0'), k++;
        *pp = p;
        return 1;
    }
    for (int k = 0; k < n; k++) {
        int h = p < end ? hexval(*p) : -1;
        if (h < 0) return 0;
        *v = *v * 16 + (uint32_t)h;
        p++;
    }
    *pp = p;
    return 1;
}

// Parses a python str or bytes literal in [p, end) into out (which has end - p bytes).
// Returns NULL on success, else what is wrong.
static const char *parse_literal(const unsigned char *p, const unsigned char *end, unsigned char *out, size_t *olen) {
    int is_bytes = 0;
    size_t k = 0;
    if (p < end && (*p == 'b' || *p == 'B')) is_bytes = 1, p++;
    if (p >= end || (*p != '\'' && *p != '"')) return "expected a quoted python str or bytes literal";
    unsigned char q = *p++;
    if (end - p < 1 || end[-1] != q) return "the literal does not end with its quote";
    end--;
    while (p < end) {
        unsigned c = *p;
        if (c == q) return "unescaped quote inside the literal";
        if (c != '\\') {
            uint32_t cp;
            size_t n = rwkv_utf8_decode(p, end, &cp);
            if (!n) return "invalid UTF-8 in the literal";
            if (is_bytes && n > 1) return "non-ASCII character in a bytes literal";
            memcpy(out + k, p, n);
            k += n, p += n;
            continue;
        }
        if (++p >= end) return "the literal ends with a backslash";
        unsigned char e = *p++;
        uint32_t v;
        const char *simple = strchr("\\'\"abfnrtv", e);
        if (e && simple) {
            static const unsigned char map[] = "\\'\"\a\b\f\n\r\t\v";
            out[k++] = map[simple - "\\'\"abfnrtv"];
            continue;
        }
        int hex_digits = e == 'x' ? 2 : (!is_bytes && e == 'u') ? 4 : (!is_bytes && e == 'U') ? 8 : -1;
        if (e >= '0' && e <= '7') {
            p--;
            read_digits(&p, end, 0, &v);
        } else if (hex_digits > 0) {
            if (!read_digits(&p, end, hex_digits, &v)) return "truncated \\x, \\u or \\U escape";
        } else if (e == 'N' && !is_bytes) {
            return "\\N{...} escapes are not supported";
        } else { // python keeps unknown escapes as written
            out[k++] = '\\';
            p--;
            continue;
        }
        if (is_bytes) {
            if (v > 255) return "octal escape above \\377 in a bytes literal";
            out[k++] = (unsigned char)v;
        } else {
            size_t n = put_utf8(out + k, v);
            if (!n) return "escape names a code point that UTF-8 cannot encode";
            k += n;
        }
    }
    *olen = k;
    return NULL;
}

// Parses a non-negative decimal in [p, end) below limit; -1 if it is not one.
static long parse_uint(const unsigned char *p, const unsigned char *end, long limit) {
    long v = 0;
    if (p >= end) return -1;
    for (; p < end; p++) {
        if (*p < '0' || *p > '9') return -1;
        v = v * 10 + (*p - '0');
        if (v >= limit) return -1;
    }
    return v;
}

typedef struct {
    size_t n, cap;
    int *id;                  // (n)
    size_t *line, *off, *len; // (n) line number, piece offset in the blob, piece length
} entries;

static rwkv_status entries_push(entries *e, int id, size_t line, size_t off, size_t len) {
    if (e->n == e->cap) {
        size_t cap = e->cap ? 2 * e->cap : 1 << 16;
        int *ni = realloc(e->id, cap * sizeof *ni);
        if (ni) e->id = ni;
        size_t *nl = ni ? realloc(e->line, cap * sizeof *nl) : NULL;
        if (nl) e->line = nl;
        size_t *no = nl ? realloc(e->off, cap * sizeof *no) : NULL;
        if (no) e->off = no;
        size_t *nn = no ? realloc(e->len, cap * sizeof *nn) : NULL;
        if (!nn) return rwkv_error_set(RWKV_ERR_NOMEM, "out of memory reading the vocabulary");
        e->len = nn;
        e->cap = cap;
    }
    e->id[e->n] = id, e->line[e->n] = line, e->off[e->n] = off, e->len[e->n] = len;
    e->n++;
    return RWKV_OK;
}

static void entries_free(entries *e) {
    free(e->id);
    free(e->line);
    free(e->off);
    free(e->len);
}

// Parses every line into tmp (the decoded tokens back to back) and e.
static rwkv_status parse_file(const char *path, const unsigned char *buf, size_t len, unsigned char *tmp, entries *e) {
    size_t line = 0, used = 0;
    for (const unsigned char *p = buf, *end = buf + len; p < end;) {
        const unsigned char *nl = memchr(p, '\n', (size_t)(end - p));
        size_t ll = nl ? (size_t)(nl - p) : (size_t)(end - p);
        line++;
        if (ll && p[ll - 1] == '\r') ll--;
        const unsigned char *le = p + ll, *sp1 = NULL, *sp2 = le;
        for (size_t i = 0; i < ll && !sp1; i++)
            if (p[i] == ' ') sp1 = p + i;
        while (sp2 > p && sp2[-1] != ' ') sp2--;
        sp2 = sp2 > p ? sp2 - 1 : NULL;
        const char *why = NULL;
        long id = -1, want = -1;
        size_t got = 0;
        if (!sp1 || sp2 == sp1)
            why = "expected '<id> <literal> <length>'";
        else if ((id = parse_uint(p, sp1, WORLD_MAX_ID)) < 0)
            why = "the id is not a number below 2^24";
        else if ((want = parse_uint(sp2 + 1, le, WORLD_MAX_ID)) < 0)
            why = "the length is not a number";
        else {
            const unsigned char *lit = sp1;
            while (lit < sp2 && *lit == ' ') lit++;
            why = parse_literal(lit, sp2, tmp + used, &got);
            if (!why && (long)got != want) why = "the token's byte length differs from the length on the line";
            if (!why && !got) why = "the token is empty";
        }
        if (why) {
            int show = (int)(le - p < WORLD_MAX_LINE_ERR ? le - p : WORLD_MAX_LINE_ERR);
            return rwkv_error_set(RWKV_ERR_FORMAT, "%s: line %zu: %s (line starts '%.*s')", path, line, why, show,
                                  (const char *)p);
        }
        rwkv_status st = entries_push(e, (int)id, line, used, got);
        if (st) return st;
        used += got;
        p = nl ? nl + 1 : end;
    }
    if (!e->n) return rwkv_error_set(RWKV_ERR_FORMAT, "%s: no tokens in the file", path);
    return RWKV_OK;
}

// Fills the piece table and the trie from the parsed entries.
static rwkv_status build(rwkv_tokenizer *t, world *w, const char *path, const unsigned char *tmp, const entries *e) {
    int max_id = 0;
    size_t total = 0;
    for (size_t i = 0; i < e->n; i++) {
        max_id = e->id[i] > max_id ? e->id[i] : max_id;
        total += e->len[i];
    }
    rwkv_status st = rwkv_tokenizer_pieces_alloc(t, max_id + 1, total);
    if (st) return st;
    for (size_t i = 0; i < e->n; i++) {
        int id = e->id[i];
        if (t->piece_len[id] != RWKV_PIECE_NONE)
            return rwkv_error_set(RWKV_ERR_FORMAT, "%s: line %zu: id %d appears twice", path, e->line[i], id);
        memcpy(t->blob + e->off[i], tmp + e->off[i], e->len[i]);
        t->piece_off[id] = e->off[i];
        t->piece_len[id] = (uint32_t)e->len[i];
    }
    if (t->piece_len[0] == RWKV_PIECE_NONE) t->piece_len[0] = 0; // end of text: decodes to nothing
    const unsigned char **keys = rwkv_calloc(e->n, sizeof *keys, "vocabulary keys");
    if (!keys) return RWKV_ERR_NOMEM;
    for (size_t i = 0; i < e->n; i++) keys[i] = (const unsigned char *)t->blob + e->off[i];
    long dup;
    st = rwkv_trie_build(&w->trie, keys, e->len, e->id, e->n, &dup);
    free(keys);
    if (st && dup >= 0)
        return rwkv_error_set(RWKV_ERR_FORMAT, "%s: line %zu: token id %d has the same bytes as an earlier token", path,
                              e->line[dup], e->id[dup]);
    return st ? rwkv_error_wrap(st, "%s: ", path) : RWKV_OK;
}

rwkv_status rwkv_world_load(rwkv_tokenizer *t, const char *path) {
    unsigned char *buf = NULL, *tmp = NULL;
    size_t len = 0;
    entries e = {0};
    world *w = rwkv_calloc(1, sizeof *w, "world tokenizer");
    if (!w) return RWKV_ERR_NOMEM;
    t->impl = w;
    t->impl_free = world_free;
    t->encode = world_encode;
    rwkv_status st = rwkv_file_read(path, &buf, &len);
    if (!st && !(tmp = rwkv_calloc(len, 1, "vocabulary"))) st = RWKV_ERR_NOMEM;
    if (!st) st = parse_file(path, buf, len, tmp, &e);
    if (!st) st = build(t, w, path, tmp, &e);
    free(buf);
    free(tmp);
    entries_free(&e);
    return st;
}
