// neox.c: the GPT-NeoX 20B BPE of the RWKV-4 Pile models, read from a Hugging Face
// tokenizer.json and matching what the tokenizers library computes:
//   1. added tokens with normalized=false (<|endoftext|>) are cut out of the raw text,
//      leftmost-longest, with their lstrip/rstrip/single_word rules;
//   2. each remaining piece is NFC-normalised (utf8proc), then the normalized=true added
//      tokens (the runs of 2..24 spaces) are cut out of it the same way;
//   3. ByteLevel pre-tokenisation splits the rest with the GPT-2 regex (PCRE2, UTF + UCP);
//   4. each split is BPE-merged over its bytes by merge rank (a priority queue per word,
//      merges in a hash keyed by the pair, and a cache of words already seen).
// The library works on Unicode strings; we take any bytes. Bytes that are not valid UTF-8
// each become the token of that single byte, and cut the text around them (docs/tokenizers.md).
// Decoding concatenates the tokens' bytes, so any input round-trips exactly up to NFC.
#include "tokenizer_impl.h"
#include "trie.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <errno.h>
#include <jansson.h>
#include <pcre2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <utf8proc.h>

#define NEOX_MAX_ID (1 << 24)       // ids beyond this mean a corrupt file
#define NEOX_NFC_STABLE_BELOW 0x300 // text with only code points below U+0300 is already NFC
#define NEOX_CACHE_SLOTS (1 << 16)  // word cache slots (a power of two)
#define NEOX_CACHE_MAX_WORD 64      // longer words are merged every time
#define NEOX_CACHE_KEY_BYTES (1 << 20)
#define NEOX_CACHE_IDS (1 << 18)
#define NEOX_JIT_STACK_MAX (8 << 20) // long runs of one class need a deep JIT stack
#define MERGE_EMPTY UINT64_MAX

// The GPT-2 split of the ByteLevel pre-tokenizer. \s is written out as Unicode White_Space,
// which is what the library's Oniguruma means by it (PCRE2's \s adds U+180E).
#define WS "\\t\\n\\x{0B}\\f\\r \\x{85}\\x{A0}\\x{1680}\\x{2000}-\\x{200A}\\x{2028}\\x{2029}\\x{202F}\\x{205F}\\x{3000}"
static const char GPT2_SPLIT[] = "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^" WS "\\p{L}\\p{N}]+"
                                 "|[" WS "]+(?![^" WS "])|[" WS "]+";

typedef struct {
    int id;
    unsigned char lstrip, rstrip, single_word;
} added_tok;

typedef struct {
    int32_t id, prev, next, len;
} bpe_sym;

typedef struct {
    int32_t rank, pos, left, right, merged;
} bpe_cand;

typedef struct {
    uint64_t hash; // 0 = empty slot
    uint32_t key_off, key_len, ids_off, n_ids;
} cache_slot;

typedef struct {
    int byte_id[256]; // the token of each single byte
    uint64_t *mkey;   // (mcap) merge pair a<<32|b, or MERGE_EMPTY
    int32_t *mrank;   // (mcap) its rank (position in model.merges)
    int32_t *mid;     // (mcap) the id of the merged token
    size_t mcap;
    int mbits;
    int nfc;          // normalizer is NFC
    added_tok *added; // (n_added)
    size_t n_added;
    rwkv_trie *raw_trie; // normalized=false added tokens (values index added), or NULL
    rwkv_trie *norm_trie;
    pcre2_code *re;
    pcre2_match_data *md;
    pcre2_match_context *mctx;
    pcre2_jit_stack *jit_stack;
    int jit;
    bpe_sym *syms;  // (work_cap) scratch for one word
    bpe_cand *heap; // (2 * work_cap)
    size_t work_cap;
    cache_slot *cache;         // (NEOX_CACHE_SLOTS)
    unsigned char *cache_keys; // (NEOX_CACHE_KEY_BYTES)
    int *cache_ids;            // (NEOX_CACHE_IDS)
    size_t cache_n, cache_key_used, cache_ids_used;
    const unsigned char *input; // the text being encoded, for offsets in messages
} neox;

static void neox_free(void *p) {
    neox *x = p;
    if (!x) return;
    free(x->mkey);
    free(x->mrank);
    free(x->mid);
    free(x->added);
    rwkv_trie_free(x->raw_trie);
    rwkv_trie_free(x->norm_trie);
    pcre2_match_data_free(x->md);
    pcre2_match_context_free(x->mctx);
    pcre2_jit_stack_free(x->jit_stack);
    pcre2_code_free(x->re);
    free(x->syms);
    free(x->heap);
    free(x->cache);
    free(x->cache_keys);
    free(x->cache_ids);
    free(x);
}

// ---- merges: open addressing on the pair ----

static inline size_t merge_slot(const neox *x, uint64_t key) {
    return (size_t)((key * 0x9E3779B97F4A7C15ull) >> (64 - x->mbits));
}

static inline int merge_find(const neox *x, int a, int b, int *merged) {
    uint64_t key = (uint64_t)(uint32_t)a << 32 | (uint32_t)b;
    for (size_t h = merge_slot(x, key);; h = (h + 1) & (x->mcap - 1)) {
        if (x->mkey[h] == key) {
            *merged = x->mid[h];
            return x->mrank[h];
        }
        if (x->mkey[h] == MERGE_EMPTY) return -1;
    }
}

// A later copy of a pair replaces the earlier one, as in the library's map.
static void merge_put(neox *x, int a, int b, int rank, int merged) {
    uint64_t key = (uint64_t)(uint32_t)a << 32 | (uint32_t)b;
    size_t h = merge_slot(x, key);
    while (x->mkey[h] != MERGE_EMPTY && x->mkey[h] != key) h = (h + 1) & (x->mcap - 1);
    x->mkey[h] = key;
    x->mrank[h] = rank;
    x->mid[h] = merged;
}

// ---- BPE of one word ----

static inline int cand_less(const bpe_cand *a, const bpe_cand *b) {
    return a->rank < b->rank || (a->rank == b->rank && a->pos < b->pos);
}

static void heap_push(bpe_cand *h, size_t *n, bpe_cand c) {
    size_t i = (*n)++;
    while (i > 0 && cand_less(&c, &h[(i - 1) / 2])) {
        h[i] = h[(i - 1) / 2];
        i = (i - 1) / 2;
    }
    h[i] = c;
}

static bpe_cand heap_pop(bpe_cand *h, size_t *n) {
    bpe_cand top = h[0], last = h[--*n];
    size_t i = 0;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= *n) break;
        if (c + 1 < *n && cand_less(&h[c + 1], &h[c])) c++;
        if (!cand_less(&h[c], &last)) break;
        h[i] = h[c];
        i = c;
    }
    h[i] = last;
    return top;
}

static void queue_pair(const neox *x, bpe_cand *h, size_t *nh, int32_t pos) {
    const bpe_sym *s = x->syms;
    if (pos < 0) return;
    int32_t nx = s[pos].next;
    if (nx < 0) return;
    int merged, rank = merge_find(x, s[pos].id, s[nx].id, &merged);
    if (rank >= 0) heap_push(h, nh, (bpe_cand){rank, pos, s[pos].id, s[nx].id, merged});
}

static rwkv_status ensure_work(neox *x, size_t n) {
    if (n <= x->work_cap) return RWKV_OK;
    size_t cap = n < 256 ? 256 : 2 * n;
    free(x->syms);
    free(x->heap);
    x->syms = rwkv_calloc(cap, sizeof *x->syms, "BPE scratch");
    x->heap = rwkv_calloc(2 * cap, sizeof *x->heap, "BPE scratch");
    x->work_cap = x->syms && x->heap ? cap : 0;
    return x->work_cap ? RWKV_OK : RWKV_ERR_NOMEM;
}

// Merges the word p[0..n) (n >= 2) in x->syms; returns the first live symbol (always 0).
static rwkv_status bpe_merge(neox *x, const unsigned char *p, size_t n) {
    rwkv_status st = ensure_work(x, n);
    if (st) return st;
    bpe_sym *s = x->syms;
    for (size_t i = 0; i < n; i++)
        s[i] = (bpe_sym){x->byte_id[p[i]], (int32_t)i - 1, i + 1 < n ? (int32_t)i + 1 : -1, 1};
    size_t nh = 0;
    for (size_t i = 0; i + 1 < n; i++) queue_pair(x, x->heap, &nh, (int32_t)i);
    // Lowest rank first, leftmost among equals. An entry is stale once either side has
    // changed; ids name unique byte strings, so equal ids at pos and next mean equal spans.
    while (nh) {
        bpe_cand c = heap_pop(x->heap, &nh);
        int32_t nx = s[c.pos].next;
        if (!s[c.pos].len || s[c.pos].id != c.left || nx < 0 || s[nx].id != c.right) continue;
        s[c.pos].id = c.merged;
        s[c.pos].len += s[nx].len;
        s[c.pos].next = s[nx].next;
        if (s[nx].next >= 0) s[s[nx].next].prev = c.pos;
        s[nx].len = 0;
        queue_pair(x, x->heap, &nh, s[c.pos].prev);
        queue_pair(x, x->heap, &nh, c.pos);
    }
    return RWKV_OK;
}

static uint64_t word_hash(const unsigned char *p, size_t n) {
    uint64_t h = 0xcbf29ce484222325ull; // FNV-1a
    for (size_t i = 0; i < n; i++) h = (h ^ p[i]) * 0x100000001b3ull;
    return h | 1; // 0 marks an empty slot
}

static void cache_clear(neox *x) {
    memset(x->cache, 0, NEOX_CACHE_SLOTS * sizeof *x->cache);
    x->cache_n = x->cache_key_used = x->cache_ids_used = 0;
}

static rwkv_status push_ids(rwkv_idvec *out, const int *ids, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (rwkv_idvec_push(out, ids[i])) return RWKV_ERR_NOMEM;
    return RWKV_OK;
}

static rwkv_status bpe_word(neox *x, const unsigned char *p, size_t n, rwkv_idvec *out) {
    if (n == 1) return rwkv_idvec_push(out, x->byte_id[p[0]]);
    int cacheable = n <= NEOX_CACHE_MAX_WORD;
    uint64_t h = 0;
    size_t slot = 0;
    if (cacheable) {
        h = word_hash(p, n);
        for (slot = h & (NEOX_CACHE_SLOTS - 1); x->cache[slot].hash; slot = (slot + 1) & (NEOX_CACHE_SLOTS - 1)) {
            const cache_slot *c = &x->cache[slot];
            if (c->hash == h && c->key_len == n && !memcmp(x->cache_keys + c->key_off, p, n))
                return push_ids(out, x->cache_ids + c->ids_off, c->n_ids);
        }
    }
    rwkv_status st = bpe_merge(x, p, n);
    if (st) return st;
    size_t first = out->n;
    for (int32_t i = 0; i >= 0; i = x->syms[i].next)
        if ((st = rwkv_idvec_push(out, x->syms[i].id))) return st;
    size_t k = out->n - first;
    if (!cacheable) return RWKV_OK;
    if (x->cache_n >= NEOX_CACHE_SLOTS / 2 || x->cache_key_used + n > NEOX_CACHE_KEY_BYTES ||
        x->cache_ids_used + k > NEOX_CACHE_IDS) {
        cache_clear(x);
        for (slot = h & (NEOX_CACHE_SLOTS - 1); x->cache[slot].hash; slot = (slot + 1) & (NEOX_CACHE_SLOTS - 1)) {}
    }
    x->cache[slot] =
        (cache_slot){h, (uint32_t)x->cache_key_used, (uint32_t)n, (uint32_t)x->cache_ids_used, (uint32_t)k};
    memcpy(x->cache_keys + x->cache_key_used, p, n);
    memcpy(x->cache_ids + x->cache_ids_used, out->v + first, k * sizeof *out->v);
    x->cache_key_used += n;
    x->cache_ids_used += k;
    x->cache_n++;
    return RWKV_OK;
}

// ---- pre-tokenisation, added tokens, normalisation ----

static rwkv_status pretokenize(neox *x, const unsigned char *s, size_t len, rwkv_idvec *out) {
    rwkv_status st = RWKV_OK;
    size_t start = 0;
    while (start < len && !st) {
        int rc = x->jit ? pcre2_jit_match(x->re, s, len, start, PCRE2_NO_UTF_CHECK, x->md, x->mctx)
                        : pcre2_match(x->re, s, len, start, PCRE2_NO_UTF_CHECK, x->md, NULL);
        if (rc == PCRE2_ERROR_NOMATCH) return bpe_word(x, s + start, len - start, out);
        if (rc < 0) {
            PCRE2_UCHAR msg[256];
            pcre2_get_error_message(rc, msg, sizeof msg);
            return rwkv_error_set(RWKV_ERR_UNSUPPORTED, "pre-tokenizer regex failed at byte %zu: %s", start,
                                  (char *)msg);
        }
        const PCRE2_SIZE *ov = pcre2_get_ovector_pointer(x->md);
        if (ov[0] > start) st = bpe_word(x, s + start, ov[0] - start, out);            // unmatched text is a split too
        if (ov[1] <= ov[0]) return st ? st : bpe_word(x, s + ov[0], len - ov[0], out); // cannot happen
        if (!st) st = bpe_word(x, s + ov[0], ov[1] - ov[0], out);
        start = ov[1];
    }
    return st;
}

static int is_white_space(uint32_t c) {
    return (c >= 9 && c <= 13) || c == ' ' || c == 0x85 || c == 0xA0 || c == 0x1680 || (c >= 0x2000 && c <= 0x200A) ||
           c == 0x2028 || c == 0x2029 || c == 0x202F || c == 0x205F || c == 0x3000;
}

static int is_word_char(uint32_t c) {
    utf8proc_category_t k = utf8proc_category((utf8proc_int32_t)c);
    return (k >= UTF8PROC_CATEGORY_LU && k <= UTF8PROC_CATEGORY_NO) || k == UTF8PROC_CATEGORY_PC;
}

// Start of the code point that ends just before s + i (s + i > s).
static size_t prev_char(const unsigned char *s, size_t i) {
    size_t j = i - 1;
    while (j > 0 && i - j < 4 && (s[j] & 0xC0) == 0x80) j--;
    return j;
}

static uint32_t char_at(const unsigned char *s, size_t i, size_t len, size_t *n) {
    uint32_t cp = 0xFFFD;
    *n = rwkv_utf8_decode(s + i, s + len, &cp);
    if (!*n) *n = 1, cp = 0xFFFD;
    return cp;
}

typedef rwkv_status (*gap_fn)(neox *x, const unsigned char *s, size_t len, rwkv_idvec *out);

// Cuts the added tokens of one set out of s, leftmost-longest, and hands the text between
// them to gap, following the library's rules for single_word, lstrip and rstrip.
static rwkv_status split_added(neox *x, const rwkv_trie *trie, const unsigned char *s, size_t len, gap_fn gap,
                               rwkv_idvec *out) {
    size_t seg = 0, pos = 0, n;
    rwkv_status st = RWKV_OK;
    while (trie && pos < len && !st) {
        size_t m;
        int k = rwkv_trie_starts(trie, s[pos]) ? rwkv_trie_longest(trie, s + pos, len - pos, &m) : -1;
        if (k < 0) {
            pos++;
            continue;
        }
        const added_tok *a = &x->added[k];
        size_t start = pos, stop = pos + m;
        pos = stop;
        if (a->single_word && ((start > 0 && is_word_char(char_at(s, prev_char(s, start), len, &n))) ||
                               (stop < len && is_word_char(char_at(s, stop, len, &n)))))
            continue; // inside a word: not a match
        if (a->lstrip)
            while (start > seg && is_white_space(char_at(s, prev_char(s, start), len, &n))) start = prev_char(s, start);
        if (a->rstrip)
            while (stop < len && is_white_space(char_at(s, stop, len, &n))) stop += n;
        if (start > seg) st = gap(x, s + seg, start - seg, out);
        if (!st) st = rwkv_idvec_push(out, a->id);
        // The library resumes its search at the match's end, not after the stripped
        // space, so a following match may overlap that space and repeat it. We do the same.
        seg = stop > seg ? stop : seg;
    }
    if (!st && len > seg) st = gap(x, s + seg, len - seg, out);
    return st;
}

// A run of valid UTF-8: NFC, then the normalized added tokens, then the regex and BPE.
static rwkv_status encode_valid(neox *x, const unsigned char *s, size_t len, int needs_nfc, rwkv_idvec *out) {
    if (!len) return RWKV_OK;
    utf8proc_uint8_t *nfc = NULL;
    if (needs_nfc && x->nfc) {
        utf8proc_ssize_t n = utf8proc_map(s, (utf8proc_ssize_t)len, &nfc, UTF8PROC_STABLE | UTF8PROC_COMPOSE);
        if (n < 0) return rwkv_error_set(RWKV_ERR_NOMEM, "NFC normalisation failed: %s", utf8proc_errmsg(n));
        s = nfc;
        len = (size_t)n;
    }
    rwkv_status st = split_added(x, x->norm_trie, s, len, pretokenize, out);
    free(nfc);
    return st;
}

// Text between special tokens: valid UTF-8 runs are encoded as the library would; each
// byte that is not part of valid UTF-8 becomes its own byte token.
static rwkv_status encode_raw(neox *x, const unsigned char *s, size_t len, rwkv_idvec *out) {
    size_t run = 0, i = 0;
    int needs_nfc = 0;
    rwkv_status st = RWKV_OK;
    while (i < len && !st) {
        if (s[i] < 0x80) {
            i++;
            continue;
        }
        uint32_t cp;
        size_t k = rwkv_utf8_decode(s + i, s + len, &cp);
        if (k) {
            needs_nfc |= cp >= NEOX_NFC_STABLE_BELOW;
            i += k;
            continue;
        }
        st = encode_valid(x, s + run, i - run, needs_nfc, out);
        if (!st && x->byte_id[s[i]] < 0)
            return rwkv_error_set(RWKV_ERR_ARG,
                                  "byte 0x%02x at offset %zu (not valid UTF-8) has no token in this vocabulary, "
                                  "so it cannot be encoded",
                                  s[i], (size_t)(s + i - x->input));
        if (!st) st = rwkv_idvec_push(out, x->byte_id[s[i]]);
        run = ++i;
        needs_nfc = 0;
    }
    if (!st) st = encode_valid(x, s + run, len - run, needs_nfc, out);
    return st;
}

static rwkv_status neox_encode(rwkv_tokenizer *t, const unsigned char *s, size_t len, rwkv_idvec *out) {
    neox *x = t->impl;
    x->input = s;
    return split_added(x, x->raw_trie, s, len, encode_raw, out);
}

// ---- loading tokenizer.json ----

// The ByteLevel alphabet: printable Latin-1 bytes stand for themselves, the other bytes
// for U+0100 upwards in byte order.
static void byte_level_map(uint32_t byte_cp[256]) {
    int n = 0;
    for (int b = 0; b < 256; b++) {
        int printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
        byte_cp[b] = printable ? (uint32_t)b : 256u + (uint32_t)n++;
    }
}

// Maps a vocab string to bytes (out has strlen(s) bytes). A string with a character outside
// the alphabet stays as its UTF-8, as the library's ByteLevel decoder does.
static size_t byte_level_bytes(const char *s, size_t len, const int cp_byte[512], unsigned char *out) {
    const unsigned char *p = (const unsigned char *)s, *end = p + len;
    size_t k = 0;
    while (p < end) {
        uint32_t cp;
        size_t n = rwkv_utf8_decode(p, end, &cp);
        if (!n || cp >= 512 || cp_byte[cp] < 0) {
            memcpy(out, s, len);
            return len;
        }
        out[k++] = (unsigned char)cp_byte[cp];
        p += n;
    }
    return k;
}

static int json_id(json_t *v) {
    if (!json_is_integer(v)) return -1;
    json_int_t i = json_integer_value(v);
    return i >= 0 && i < NEOX_MAX_ID ? (int)i : -1;
}

static rwkv_status check_config(neox *x, const char *path, json_t *root) {
    json_t *norm = json_object_get(root, "normalizer"), *pre = json_object_get(root, "pre_tokenizer");
    json_t *model = json_object_get(root, "model");
    if (norm && !json_is_null(norm)) {
        const char *ty = json_string_value(json_object_get(norm, "type"));
        if (!ty) return rwkv_error_set(RWKV_ERR_FORMAT, "%s: field normalizer.type: missing or not a string", path);
        if (strcmp(ty, "NFC"))
            return rwkv_error_set(RWKV_ERR_UNSUPPORTED, "%s: field normalizer.type: '%s' is not supported (only NFC)",
                                  path, ty);
        x->nfc = 1;
    }
    const char *pty = json_string_value(json_object_get(pre, "type"));
    if (!pty) return rwkv_error_set(RWKV_ERR_FORMAT, "%s: field pre_tokenizer.type: missing or not a string", path);
    if (strcmp(pty, "ByteLevel") || json_is_true(json_object_get(pre, "add_prefix_space")) ||
        json_is_false(json_object_get(pre, "use_regex")))
        return rwkv_error_set(RWKV_ERR_UNSUPPORTED,
                              "%s: field pre_tokenizer: only ByteLevel with add_prefix_space=false "
                              "and the GPT-2 regex is supported",
                              path);
    if (!json_is_object(model))
        return rwkv_error_set(RWKV_ERR_FORMAT, "%s: field model: missing or not an object", path);
    const char *mty = json_string_value(json_object_get(model, "type"));
    if (mty && strcmp(mty, "BPE"))
        return rwkv_error_set(RWKV_ERR_UNSUPPORTED, "%s: field model.type: '%s' is not supported (only BPE)", path,
                              mty);
    static const char *off[] = {"dropout", "continuing_subword_prefix", "end_of_word_suffix"};
    for (int i = 0; i < 3; i++) {
        json_t *v = json_object_get(model, off[i]);
        if (v && !json_is_null(v) && !(json_is_string(v) && !json_string_length(v)))
            return rwkv_error_set(RWKV_ERR_UNSUPPORTED, "%s: field model.%s: only null is supported", path, off[i]);
    }
    if (json_is_true(json_object_get(model, "byte_fallback")) || json_is_true(json_object_get(model, "ignore_merges")))
        return rwkv_error_set(RWKV_ERR_UNSUPPORTED,
                              "%s: field model: byte_fallback and ignore_merges are not supported", path);
    if (!json_is_object(json_object_get(model, "vocab")))
        return rwkv_error_set(RWKV_ERR_FORMAT, "%s: field model.vocab: missing or not an object", path);
    if (!json_is_array(json_object_get(model, "merges")))
        return rwkv_error_set(RWKV_ERR_FORMAT, "%s: field model.merges: missing or not an array", path);
    if (!json_is_array(json_object_get(root, "added_tokens")))
        return rwkv_error_set(RWKV_ERR_FORMAT, "%s: field added_tokens: missing or not an array", path);
    return RWKV_OK;
}

// An added token whose content is also a model.vocab string takes that id, as in the
// library (which warns when the file says otherwise); others keep their own id.
static int added_id(json_t *vocab, json_t *a) {
    int id = json_id(json_object_get(vocab, json_string_value(json_object_get(a, "content"))));
    return id >= 0 ? id : json_id(json_object_get(a, "id"));
}

// Validates the added tokens; returns the largest id in *max_id and their bytes in *bytes.
static rwkv_status scan_added(const char *path, json_t *vocab, json_t *added, int *max_id, size_t *bytes) {
    size_t i;
    json_t *a;
    json_array_foreach(added, i, a) {
        json_t *c = json_object_get(a, "content");
        int id = json_is_string(c) ? added_id(vocab, a) : json_id(json_object_get(a, "id"));
        if (id < 0)
            return rwkv_error_set(RWKV_ERR_FORMAT, "%s: field added_tokens[%zu].id: missing or not an id", path, i);
        if (!json_is_string(c) || !json_string_length(c))
            return rwkv_error_set(RWKV_ERR_FORMAT,
                                  "%s: field added_tokens[%zu].content: missing, empty or not a string", path, i);
        static const char *flags[] = {"special", "normalized", "lstrip", "rstrip", "single_word"};
        for (int f = 0; f < 5; f++) {
            json_t *v = json_object_get(a, flags[f]);
            if (v && !json_is_boolean(v))
                return rwkv_error_set(RWKV_ERR_FORMAT, "%s: field added_tokens[%zu].%s: not a boolean", path, i,
                                      flags[f]);
        }
        *max_id = id > *max_id ? id : *max_id;
        *bytes += json_string_length(c);
    }
    return RWKV_OK;
}

// Fills the piece table from model.vocab and added_tokens.
static rwkv_status load_pieces(rwkv_tokenizer *t, const char *path, json_t *root, const int cp_byte[512]) {
    json_t *vocab = json_object_get(json_object_get(root, "model"), "vocab"),
           *added = json_object_get(root, "added_tokens");
    int max_id = -1;
    size_t bytes = 0;
    const char *key;
    json_t *v;
    json_object_foreach(vocab, key, v) {
        int id = json_id(v);
        if (id < 0) return rwkv_error_set(RWKV_ERR_FORMAT, "%s: field model.vocab['%s']: not an id", path, key);
        max_id = id > max_id ? id : max_id;
        bytes += strlen(key);
    }
    rwkv_status st = scan_added(path, vocab, added, &max_id, &bytes);
    if (st) return st;
    if (max_id < 0) return rwkv_error_set(RWKV_ERR_FORMAT, "%s: field model.vocab: empty", path);
    if ((st = rwkv_tokenizer_pieces_alloc(t, max_id + 1, bytes))) return st;
    size_t used = 0;
    json_object_foreach(vocab, key, v) {
        int id = json_id(v);
        if (t->piece_len[id] != RWKV_PIECE_NONE)
            return rwkv_error_set(RWKV_ERR_FORMAT, "%s: field model.vocab['%s']: id %d is used twice", path, key, id);
        size_t n = byte_level_bytes(key, strlen(key), cp_byte, (unsigned char *)t->blob + used);
        t->piece_off[id] = used;
        t->piece_len[id] = (uint32_t)n;
        used += n;
    }
    size_t i;
    json_array_foreach(added, i, v) { // an added token's content wins over the vocab's string
        json_t *c = json_object_get(v, "content");
        int id = added_id(vocab, v);
        memcpy(t->blob + used, json_string_value(c), json_string_length(c));
        t->piece_off[id] = used;
        t->piece_len[id] = (uint32_t)json_string_length(c);
        used += json_string_length(c);
    }
    return RWKV_OK;
}

static int vocab_id(json_t *vocab, const char *s) { return json_id(json_object_get(vocab, s)); }

static rwkv_status load_merges(neox *x, const char *path, json_t *model, const uint32_t byte_cp[256]) {
    json_t *vocab = json_object_get(model, "vocab"), *merges = json_object_get(model, "merges");
    for (int b = 0; b < 256; b++) {
        char s[8] = {0};
        utf8proc_encode_char((utf8proc_int32_t)byte_cp[b], (utf8proc_uint8_t *)s);
        // GPT-NeoX has no token for the 13 bytes that never occur in UTF-8 (C0, C1, F5..FF);
        // every other byte needs one, or valid text could not be encoded.
        int never_utf8 = b == 0xC0 || b == 0xC1 || b >= 0xF5;
        if ((x->byte_id[b] = vocab_id(vocab, s)) < 0 && !never_utf8)
            return rwkv_error_set(RWKV_ERR_FORMAT, "%s: field model.vocab: no token for byte 0x%02x ('%s')", path, b,
                                  s);
    }
    size_t n = json_array_size(merges);
    for (x->mbits = 4; ((size_t)1 << x->mbits) < 2 * n + 16; x->mbits++) {}
    x->mcap = (size_t)1 << x->mbits;
    x->mkey = rwkv_calloc(x->mcap, sizeof *x->mkey, "merge table");
    x->mrank = rwkv_calloc(x->mcap, sizeof *x->mrank, "merge table");
    x->mid = rwkv_calloc(x->mcap, sizeof *x->mid, "merge table");
    if (!x->mkey || !x->mrank || !x->mid) return RWKV_ERR_NOMEM;
    memset(x->mkey, 0xFF, x->mcap * sizeof *x->mkey);
    char *buf = NULL;
    size_t cap = 0;
    rwkv_status st = RWKV_OK;
    for (size_t i = 0; i < n && !st; i++) {
        json_t *m = json_array_get(merges, i);
        const char *a = NULL, *b = NULL;
        size_t la = 0, lb = 0;
        if (json_is_string(m)) { // "A B"
            const char *s = json_string_value(m), *sp = strchr(s, ' ');
            if (sp && !strchr(sp + 1, ' ')) a = s, la = (size_t)(sp - s), b = sp + 1, lb = strlen(b);
        } else if (json_is_array(m) && json_array_size(m) == 2 && json_is_string(json_array_get(m, 0)) &&
                   json_is_string(json_array_get(m, 1))) { // ["A", "B"]
            a = json_string_value(json_array_get(m, 0)), la = json_string_length(json_array_get(m, 0));
            b = json_string_value(json_array_get(m, 1)), lb = json_string_length(json_array_get(m, 1));
        }
        if (!a || !la || !lb) {
            st = rwkv_error_set(RWKV_ERR_FORMAT, "%s: field model.merges[%zu]: not a pair of tokens", path, i);
            break;
        }
        if (la + lb + 1 > cap) {
            free(buf);
            if (!(buf = rwkv_calloc(cap = 2 * (la + lb + 1), 1, "merge"))) return RWKV_ERR_NOMEM;
        }
        int ida, idb, idm;
        memcpy(buf, a, la), buf[la] = 0;
        ida = vocab_id(vocab, buf);
        memcpy(buf + la, b, lb), buf[la + lb] = 0;
        idm = vocab_id(vocab, buf);
        idb = vocab_id(vocab, buf + la);
        if (ida < 0 || idb < 0 || idm < 0)
            st = rwkv_error_set(RWKV_ERR_FORMAT,
                                "%s: field model.merges[%zu]: '%.*s', '%s' or their merge is not in model.vocab", path,
                                i, (int)la, a, buf + la);
        else
            merge_put(x, ida, idb, (int)i, idm);
    }
    free(buf);
    return st;
}

// Builds the two tries of added tokens: matched on the raw text or on the NFC text.
static rwkv_status load_added(neox *x, const char *path, json_t *vocab, json_t *added) {
    size_t n = json_array_size(added), nraw = 0, nnorm = 0;
    const unsigned char **keys = rwkv_calloc(2 * n, sizeof *keys, "added tokens");
    size_t *lens = rwkv_calloc(2 * n, sizeof *lens, "added tokens");
    int *vals = rwkv_calloc(2 * n, sizeof *vals, "added tokens");
    utf8proc_uint8_t **nfc = rwkv_calloc(n, sizeof *nfc, "added tokens");
    x->added = rwkv_calloc(n, sizeof *x->added, "added tokens");
    x->n_added = n;
    rwkv_status st = keys && lens && vals && nfc && x->added ? RWKV_OK : RWKV_ERR_NOMEM;
    for (size_t i = 0; i < n && !st; i++) {
        json_t *a = json_array_get(added, i), *nv = json_object_get(a, "normalized");
        const char *c = json_string_value(json_object_get(a, "content"));
        size_t len = json_string_length(json_object_get(a, "content"));
        int special = json_is_true(json_object_get(a, "special"));
        int normalized = nv ? json_is_true(nv) : !special; // the library's default
        x->added[i] =
            (added_tok){added_id(vocab, a), json_is_true(json_object_get(a, "lstrip")),
                        json_is_true(json_object_get(a, "rstrip")), json_is_true(json_object_get(a, "single_word"))};
        size_t slot = normalized ? n + nnorm++ : nraw++;
        if (normalized && x->nfc) {
            utf8proc_ssize_t k = utf8proc_map((const utf8proc_uint8_t *)c, (utf8proc_ssize_t)len, &nfc[i],
                                              UTF8PROC_STABLE | UTF8PROC_COMPOSE);
            if (k <= 0)
                st = rwkv_error_set(RWKV_ERR_FORMAT, "%s: field added_tokens[%zu].content: cannot normalise", path, i);
            c = (const char *)nfc[i], len = k > 0 ? (size_t)k : 0;
        }
        keys[slot] = (const unsigned char *)c, lens[slot] = len, vals[slot] = (int)i;
    }
    long dup = -1;
    if (!st && nraw) st = rwkv_trie_build(&x->raw_trie, keys, lens, vals, nraw, &dup);
    if (!st && nnorm) st = rwkv_trie_build(&x->norm_trie, keys + n, lens + n, vals + n, nnorm, &dup);
    if (st && dup >= 0)
        st = rwkv_error_set(RWKV_ERR_FORMAT, "%s: field added_tokens: two added tokens have the same content", path);
    for (size_t i = 0; nfc && i < n; i++) free(nfc[i]);
    free(nfc);
    free(keys);
    free(lens);
    free(vals);
    return st;
}

static rwkv_status compile_regex(neox *x) {
    int err;
    PCRE2_SIZE off;
    x->re = pcre2_compile((PCRE2_SPTR)GPT2_SPLIT, PCRE2_ZERO_TERMINATED, PCRE2_UTF | PCRE2_UCP, &err, &off, NULL);
    if (!x->re) {
        PCRE2_UCHAR msg[256];
        pcre2_get_error_message(err, msg, sizeof msg);
        return rwkv_error_set(RWKV_ERR_UNSUPPORTED, "the GPT-2 split regex does not compile at %zu: %s", (size_t)off,
                              (char *)msg);
    }
    x->md = pcre2_match_data_create_from_pattern(x->re, NULL);
    if (!x->md) return rwkv_error_set(RWKV_ERR_NOMEM, "out of memory for regex match data");
    if (pcre2_jit_compile(x->re, PCRE2_JIT_COMPLETE) == 0) {
        x->mctx = pcre2_match_context_create(NULL);
        x->jit_stack = pcre2_jit_stack_create(32 << 10, NEOX_JIT_STACK_MAX, NULL);
        if (x->mctx && x->jit_stack) {
            pcre2_jit_stack_assign(x->mctx, NULL, x->jit_stack);
            x->jit = 1;
        }
    }
    return RWKV_OK;
}

rwkv_status rwkv_neox_load(rwkv_tokenizer *t, const char *path) {
    neox *x = rwkv_calloc(1, sizeof *x, "neox tokenizer");
    if (!x) return RWKV_ERR_NOMEM;
    t->impl = x;
    t->impl_free = neox_free;
    t->encode = neox_encode;
    FILE *f = fopen(path, "rb");
    if (!f) return rwkv_error_set(RWKV_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    json_error_t je;
    json_t *root = json_loadf(f, 0, &je);
    fclose(f);
    if (!root)
        return rwkv_error_set(RWKV_ERR_FORMAT, "%s: line %d column %d: not valid JSON: %s", path, je.line, je.column,
                              je.text);
    uint32_t byte_cp[256];
    int cp_byte[512];
    byte_level_map(byte_cp);
    for (int i = 0; i < 512; i++) cp_byte[i] = -1;
    for (int b = 0; b < 256; b++) cp_byte[byte_cp[b]] = b;
    rwkv_status st = json_is_object(root)
                         ? check_config(x, path, root)
                         : rwkv_error_set(RWKV_ERR_FORMAT, "%s: the top level is not a JSON object", path);
    if (!st) st = load_pieces(t, path, root, cp_byte);
    if (!st) st = load_merges(x, path, json_object_get(root, "model"), byte_cp);
    if (!st)
        st = load_added(x, path, json_object_get(json_object_get(root, "model"), "vocab"),
                        json_object_get(root, "added_tokens"));
    json_decref(root);
    if (!st) st = compile_regex(x);
    if (!st) {
        x->cache = rwkv_calloc(NEOX_CACHE_SLOTS, sizeof *x->cache, "word cache");
        x->cache_keys = rwkv_calloc(NEOX_CACHE_KEY_BYTES, 1, "word cache");
        x->cache_ids = rwkv_calloc(NEOX_CACHE_IDS, sizeof *x->cache_ids, "word cache");
        if (!x->cache || !x->cache_keys || !x->cache_ids) st = RWKV_ERR_NOMEM;
    }
    return st;
}
