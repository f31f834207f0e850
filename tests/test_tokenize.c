// test_tokenize.c: the NeoX, World and bytes tokenizers against independent ids.
//   tokenizer-golden.jsonl      neox ids from the Hugging Face tokenizers library, world ids
//                               from the reference greedy longest match
//   neox-golden-extra.jsonl     420 more texts with the library's ids (whitespace classes,
//                               NFC, added tokens, scripts, tinyshakespeare chunks)
//   neox-flags-golden.jsonl     extra added tokens with lstrip/rstrip/single_word/normalized
//                               and the library's ids for texts that exercise them
//   tinyshakespeare             count and FNV-1a hash of the whole file's ids: neox from the
//                               library, world from a separate Python greedy matcher
// plus round trips of random bytes, fuzzed vocabulary files and the CLI.
#include "core/formats/formats.h"
#include "core/model/model.h"
#include "core/tokenize/tokenizer.h"
#include "util.h"

#include <check.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <utf8proc.h>

#define NEOX "neox:tests/fixtures/20B_tokenizer.json"
#define WORLD "world:tests/fixtures/rwkv_vocab_v20230424.txt"
#define NEOX_VOCAB 50277  // ids 0..50276: 50254 BPE tokens and 23 added
#define WORLD_VOCAB 65530 // ids 1..65529 in the file, and 0 (end of text)
#define SHAKESPEARE_NEOX_IDS 340240
#define SHAKESPEARE_NEOX_FNV 0x3d5c73b97a8fa212ull
#define SHAKESPEARE_WORLD_IDS 331658
#define SHAKESPEARE_WORLD_FNV 0x15ee66597358dec9ull
#define N_RANDOM 10000

static rwkv_tokenizer *neox, *world, *bytes;

static void setup(void) {
    ck_assert_msg(!rwkv_tokenizer_load(&neox, NEOX), "%s", rwkv_error_message());
    ck_assert_msg(!rwkv_tokenizer_load(&world, WORLD), "%s", rwkv_error_message());
    ck_assert_msg(!rwkv_tokenizer_load(&bytes, "bytes"), "%s", rwkv_error_message());
}

static void teardown(void) {
    rwkv_tokenizer_free(neox);
    rwkv_tokenizer_free(world);
    rwkv_tokenizer_free(bytes);
}

static char *slurp(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    ck_assert_msg(f != NULL, "cannot open %s", path);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *b = malloc((size_t)n + 1);
    ck_assert(fread(b, 1, (size_t)n, f) == (size_t)n);
    fclose(f);
    b[n] = 0;
    *len = (size_t)n;
    return b;
}

static void spit(const char *path, const char *b, size_t n) {
    FILE *f = fopen(path, "wb");
    ck_assert_msg(f != NULL, "cannot write %s", path);
    ck_assert(fwrite(b, 1, n, f) == n);
    fclose(f);
}

static uint64_t fnv_ids(const int *ids, size_t n) {
    uint64_t h = 0xcbf29ce484222325ull;
    for (size_t i = 0; i < n; i++)
        for (int k = 0; k < 4; k++) h = (h ^ ((uint32_t)ids[i] >> (8 * k) & 0xFF)) * 0x100000001b3ull;
    return h;
}

static uint64_t rng_state = 0x9E3779B97F4A7C15ull;
static uint64_t rng(void) { // xorshift64*
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return rng_state * 0x2545F4914F6CDD1Dull;
}

// Length of the well-formed UTF-8 sequence at p (Unicode Table 3-7), 0 if ill-formed.
static size_t wf_len(const unsigned char *p, size_t n) {
    unsigned c = p[0];
    if (c < 0x80) return 1;
    unsigned lo = 0x80, hi = 0xBF;
    size_t k;
    if (c >= 0xC2 && c <= 0xDF)
        k = 2;
    else if (c >= 0xE0 && c <= 0xEF)
        k = 3, lo = c == 0xE0 ? 0xA0 : 0x80, hi = c == 0xED ? 0x9F : 0xBF;
    else if (c >= 0xF0 && c <= 0xF4)
        k = 4, lo = c == 0xF0 ? 0x90 : 0x80, hi = c == 0xF4 ? 0x8F : 0xBF;
    else
        return 0;
    if (n < k || p[1] < lo || p[1] > hi) return 0;
    for (size_t i = 2; i < k; i++)
        if (p[i] < 0x80 || p[i] > 0xBF) return 0;
    return k;
}

// What NeoX decoding gives back: each maximal well-formed run NFC-normalised, other bytes as is.
static char *nfc_runs(const char *s, size_t n, size_t *out_len) {
    char *out = malloc(4 * n + 16);
    size_t k = 0, i = 0;
    while (i < n) {
        size_t j = i;
        while (j < n) {
            size_t w = wf_len((const unsigned char *)s + j, n - j);
            if (!w) break;
            j += w;
        }
        if (j > i) {
            utf8proc_uint8_t *nfc;
            utf8proc_ssize_t m = utf8proc_map((const utf8proc_uint8_t *)s + i, (utf8proc_ssize_t)(j - i), &nfc,
                                              UTF8PROC_STABLE | UTF8PROC_COMPOSE);
            ck_assert(m >= 0);
            out = realloc(out, k + (size_t)m + 4 * (n - j) + 16);
            memcpy(out + k, nfc, (size_t)m);
            k += (size_t)m;
            free(nfc);
            i = j;
        } else {
            out[k++] = s[i++];
        }
    }
    *out_len = k;
    return out;
}

static void encode(rwkv_tokenizer *t, const char *s, size_t n, int **ids, size_t *m) {
    ck_assert_msg(!rwkv_tokenizer_encode(t, s, n, ids, m), "%s", rwkv_error_message());
}

static void assert_ids(const int *got, size_t n, json_t *want, const char *what, size_t line) {
    ck_assert_msg(n == json_array_size(want), "%s line %zu: %zu ids, want %zu", what, line, n, json_array_size(want));
    for (size_t i = 0; i < n; i++)
        ck_assert_msg(got[i] == json_integer_value(json_array_get(want, i)), "%s line %zu: id %zu is %d, want %d", what,
                      line, i, got[i], (int)json_integer_value(json_array_get(want, i)));
}

// decode(ids) == expect exactly.
static void assert_decodes(rwkv_tokenizer *t, const int *ids, size_t n, const char *expect, size_t elen) {
    char *text;
    size_t len;
    ck_assert_msg(!rwkv_tokenizer_decode(t, ids, n, &text, &len), "%s", rwkv_error_message());
    ck_assert_msg(len == elen && !memcmp(text, expect, len), "decoded %zu bytes, want %zu", len, elen);
    ck_assert(text[len] == 0);
    free(text);
}

// Checks every line of a golden file (text plus neox and/or world ids) with tokenizer t.
static size_t check_golden(rwkv_tokenizer *t, const char *file, const char *key, int skip_first) {
    size_t len, lines = 0;
    char *all = slurp(test_fixture(file), &len);
    char *save = NULL;
    for (char *l = strtok_r(all, "\n", &save); l; l = strtok_r(NULL, "\n", &save)) {
        if (skip_first-- > 0) continue;
        json_error_t je;
        json_t *o = json_loads(l, JSON_ALLOW_NUL, &je);
        ck_assert_msg(o != NULL, "%s: %s", file, je.text);
        const char *text = json_string_value(json_object_get(o, "text"));
        size_t tlen = json_string_length(json_object_get(o, "text")), m, elen;
        int *ids;
        encode(t, text, tlen, &ids, &m);
        assert_ids(ids, m, json_object_get(o, key), file, ++lines);
        char *expect = t == world ? NULL : nfc_runs(text, tlen, &elen); // world keeps the bytes
        assert_decodes(t, ids, m, expect ? expect : text, expect ? elen : tlen);
        free(expect);
        free(ids);
        json_decref(o);
    }
    free(all);
    return lines;
}

START_TEST(golden_neox_and_world) {
    ck_assert_uint_eq(check_golden(neox, "tokenizer-golden.jsonl", "neox", 0), 15);
    ck_assert_uint_eq(check_golden(world, "tokenizer-golden.jsonl", "world", 0), 15);
    ck_assert_uint_eq(check_golden(neox, "neox-golden-extra.jsonl", "neox", 0), 420);
}
END_TEST

// NFC is part of NeoX encoding: a decomposed é gives the ids of the composed one.
START_TEST(neox_nfc) {
    int *a, *b;
    size_t na, nb;
    encode(neox, "caf\xc3\xa9", 5, &a, &na);
    encode(neox, "cafe\xcc\x81", 6, &b, &nb);
    ck_assert_uint_eq(na, nb);
    ck_assert(!memcmp(a, b, na * sizeof *a));
    assert_decodes(neox, b, nb, "caf\xc3\xa9", 5);
    free(a);
    free(b);
}
END_TEST

// The flags of added tokens: the NeoX file plus five tokens, against the library's ids.
START_TEST(neox_added_token_flags) {
    size_t len;
    char *lines = slurp(test_fixture("neox-flags-golden.jsonl"), &len);
    json_t *extra = json_loadb(lines, (size_t)(strchr(lines, '\n') - lines), 0, NULL);
    json_t *root = json_load_file(test_fixture("20B_tokenizer.json"), 0, NULL);
    ck_assert(extra && root);
    json_array_extend(json_object_get(root, "added_tokens"), json_object_get(extra, "added_tokens"));
    char path[512], spec[600];
    snprintf(path, sizeof path, "%s/flags.json", test_tmpdir());
    ck_assert(!json_dump_file(root, path, JSON_COMPACT));
    json_decref(root);
    json_decref(extra);
    free(lines);
    snprintf(spec, sizeof spec, "neox:%s", path);
    rwkv_tokenizer *t;
    ck_assert_msg(!rwkv_tokenizer_load(&t, spec), "%s", rwkv_error_message());
    char *save = NULL, *all = slurp(test_fixture("neox-flags-golden.jsonl"), &len);
    size_t n = 0;
    for (char *l = strtok_r(all, "\n", &save); l; l = strtok_r(NULL, "\n", &save)) {
        json_t *o = json_loads(l, JSON_ALLOW_NUL, NULL);
        json_t *txt = json_object_get(o, "text");
        if (txt) {
            int *ids;
            size_t m;
            encode(t, json_string_value(txt), json_string_length(txt), &ids, &m);
            assert_ids(ids, m, json_object_get(o, "neox"), "neox-flags-golden.jsonl", ++n);
            free(ids);
        }
        json_decref(o);
    }
    ck_assert_uint_eq(n, 36);
    free(all);
    rwkv_tokenizer_free(t);
}
END_TEST

START_TEST(shakespeare_both) {
    size_t len, m;
    char *text = slurp(test_fixture("tinyshakespeare.txt"), &len);
    int *ids;
    encode(neox, text, len, &ids, &m);
    ck_assert_uint_eq(m, SHAKESPEARE_NEOX_IDS);
    ck_assert(fnv_ids(ids, m) == SHAKESPEARE_NEOX_FNV);
    assert_decodes(neox, ids, m, text, len);
    free(ids);
    encode(world, text, len, &ids, &m);
    ck_assert_uint_eq(m, SHAKESPEARE_WORLD_IDS);
    ck_assert(fnv_ids(ids, m) == SHAKESPEARE_WORLD_FNV);
    assert_decodes(world, ids, m, text, len);
    free(ids);
    free(text);
}
END_TEST

// A random string: raw bytes, or a mix of code points (combining marks, spaces of every
// class, CJK, emoji), special-token text and ill-formed sequences.
static size_t random_string(char *s, int neox_safe) {
    static const char *units[] = {"a",
                                  "Z",
                                  "7",
                                  " ",
                                  "  ",
                                  "\t",
                                  "\n",
                                  "\r\n",
                                  "'s",
                                  "'ll",
                                  ".",
                                  "\xc2\xa0",
                                  "\xe3\x80\x80",
                                  "\xcc\x81",
                                  "e\xcc\x81",
                                  "\xc3\xa9",
                                  "\xe6\x97\xa5",
                                  "\xf0\x9f\x98\x80",
                                  "<|endoftext|>",
                                  "<|padding|>",
                                  "\x80",
                                  "\xbf",
                                  "\xe2\x82",
                                  "\xed\xa0\x80",
                                  "\xe0\x80\x80",
                                  "\xf4\x90\x80\x80",
                                  "\xf0\x9f",
                                  "\xc2",
                                  "\x00",
                                  "\xe1\x84\x80\xe1\x85\xa1",
                                  "\xcd\x84",
                                  "\xef\xbf\xbd"};
    size_t n = 0, len = rng() % 48;
    int raw = rng() % 3 == 0;
    while (n < len) {
        if (raw) {
            unsigned char b = (unsigned char)rng();
            if (neox_safe && (b == 0xC0 || b == 0xC1 || b >= 0xF5)) continue; // no NeoX token (see docs)
            s[n++] = (char)b;
        } else {
            const char *u = units[rng() % (sizeof units / sizeof *units)];
            memcpy(s + n, u, strlen(u));
            n += strlen(u);
        }
    }
    return n;
}

START_TEST(random_round_trip) {
    char s[128];
    for (int i = 0; i < N_RANDOM; i++) {
        size_t n = random_string(s, 1), m, elen;
        int *ids;
        rwkv_tokenizer *ts[] = {neox, world, bytes};
        for (int k = 0; k < 3; k++) {
            encode(ts[k], s, n, &ids, &m);
            for (size_t j = 0; j < m; j++) ck_assert(ids[j] >= 0 && ids[j] < rwkv_tokenizer_vocab_size(ts[k]));
            char *expect = k == 0 ? nfc_runs(s, n, &elen) : NULL;
            assert_decodes(ts[k], ids, m, expect ? expect : s, expect ? elen : n);
            free(expect);
            free(ids);
        }
    }
}
END_TEST

// The 13 bytes that never occur in UTF-8 have no NeoX token: a clean error naming the byte.
START_TEST(neox_unencodable_bytes) {
    for (int b = 0; b < 256; b++) {
        if (!(b == 0xC0 || b == 0xC1 || b >= 0xF5)) continue;
        char s[4] = {'a', (char)b, 'b', 0}, want[8];
        int *ids;
        size_t m;
        ck_assert_int_eq(rwkv_tokenizer_encode(neox, s, 3, &ids, &m), RWKV_ERR_ARG);
        snprintf(want, sizeof want, "0x%02x", b);
        ck_assert_msg(strstr(rwkv_error_message(), "offset 1"), "%s", rwkv_error_message());
        ck_assert_msg(strstr(rwkv_error_message(), want), "%s", rwkv_error_message());
        ck_assert(ids == NULL && m == 0);
        encode(world, s, 3, &ids, &m); // World and bytes take every byte
        assert_decodes(world, ids, m, s, 3);
        free(ids);
    }
}
END_TEST

// Long runs of one character class (the regex and the BPE queue on one big word).
START_TEST(long_runs) {
    size_t n = 200000, m;
    char *s = malloc(n);
    int *ids;
    memset(s, ' ', 1000);
    encode(neox, s, 1000, &ids, &m);
    // leftmost-longest over the added runs of 2..24 spaces: 41 x 24 (id 50254) + 16 (id 50262)
    ck_assert_uint_eq(m, 42);
    for (size_t i = 0; i < 41; i++) ck_assert_int_eq(ids[i], 50254);
    ck_assert_int_eq(ids[41], 50262);
    free(ids);
    const char fill[] = {'a', '.', '\n', '7'};
    for (int f = 0; f < 4; f++) {
        memset(s, fill[f], n);
        rwkv_tokenizer *ts[] = {neox, world};
        for (int k = 0; k < 2; k++) {
            encode(ts[k], s, n, &ids, &m);
            ck_assert(m > 0 && m <= n);
            assert_decodes(ts[k], ids, m, s, n);
            free(ids);
        }
    }
    free(s);
}
END_TEST

START_TEST(empty_input) {
    rwkv_tokenizer *ts[] = {neox, world, bytes};
    for (int k = 0; k < 3; k++) {
        int *ids;
        size_t m = 7;
        encode(ts[k], "", 0, &ids, &m);
        ck_assert_uint_eq(m, 0);
        free(ids);
    }
}
END_TEST

START_TEST(pieces_and_sizes) {
    size_t len;
    const char *p = rwkv_tokenizer_piece(neox, 0, &len);
    ck_assert(p && len == 13 && !memcmp(p, "<|endoftext|>", 13));
    p = rwkv_tokenizer_piece(neox, 50276, &len);
    ck_assert(p && len == 2 && !memcmp(p, "  ", 2));
    p = rwkv_tokenizer_piece(neox, 12092, &len); // "Hello"
    ck_assert(p && len == 5 && !memcmp(p, "Hello", 5));
    p = rwkv_tokenizer_piece(world, 0, &len);
    ck_assert(p && len == 0);
    p = rwkv_tokenizer_piece(world, 65529, &len); // 128 spaces, the file's last line
    ck_assert(p && len == 128 && p[0] == ' ' && p[127] == ' ');
    p = rwkv_tokenizer_piece(world, 129, &len); // b'\x80'
    ck_assert(p && len == 1 && (unsigned char)p[0] == 0x80);
    p = rwkv_tokenizer_piece(bytes, 200, &len);
    ck_assert(p && len == 1 && (unsigned char)p[0] == 200);
    ck_assert(!rwkv_tokenizer_piece(neox, NEOX_VOCAB, &len) && !rwkv_tokenizer_piece(world, -1, &len));
    ck_assert(!rwkv_tokenizer_piece(bytes, 256, &len));
    ck_assert_int_eq(rwkv_tokenizer_vocab_size(neox), NEOX_VOCAB);
    ck_assert_int_eq(rwkv_tokenizer_vocab_size(world), WORLD_VOCAB);
    ck_assert_int_eq(rwkv_tokenizer_vocab_size(bytes), 256);
    ck_assert_str_eq(rwkv_tokenizer_spec(neox), NEOX);
    ck_assert_str_eq(rwkv_tokenizer_spec(bytes), "bytes");
}
END_TEST

// A model's vocab must hold the tokenizer's largest id: RWKV-4 Pile models have 50277.
START_TEST(vocab_check) {
    ck_assert_int_eq(rwkv_tokenizer_check_vocab(neox, 50277), RWKV_OK);
    ck_assert_int_eq(rwkv_tokenizer_check_vocab(neox, 50276), RWKV_ERR_ARG);
    ck_assert_msg(strstr(rwkv_error_message(), "50277") && strstr(rwkv_error_message(), "50276"), "%s",
                  rwkv_error_message());
    ck_assert_int_eq(rwkv_tokenizer_check_vocab(world, 65536), RWKV_OK);
    ck_assert_int_eq(rwkv_tokenizer_check_vocab(world, 50277), RWKV_ERR_ARG);
    ck_assert_msg(strstr(rwkv_error_message(), "65530") && strstr(rwkv_error_message(), "50277"), "%s",
                  rwkv_error_message());
    ck_assert_int_eq(rwkv_tokenizer_check_vocab(bytes, 256), RWKV_OK);
    ck_assert_int_eq(rwkv_tokenizer_check_vocab(bytes, 50), RWKV_ERR_ARG);
}
END_TEST

START_TEST(decode_errors) {
    int bad[][2] = {{12092, 50277}, {-1, 5}, {1, 1 << 30}};
    for (int i = 0; i < 3; i++) {
        char *text = (char *)1;
        size_t len;
        ck_assert_int_eq(rwkv_tokenizer_decode(neox, bad[i], 2, &text, &len), RWKV_ERR_ARG);
        ck_assert(text == NULL);
        ck_assert_msg(strstr(rwkv_error_message(), "position"), "%s", rwkv_error_message());
    }
    int w[] = {65530};
    char *text;
    size_t len;
    ck_assert_int_eq(rwkv_tokenizer_decode(world, w, 1, &text, &len), RWKV_ERR_ARG);
    int b[] = {256};
    ck_assert_int_eq(rwkv_tokenizer_decode(bytes, b, 1, &text, &len), RWKV_ERR_ARG);
}
END_TEST

START_TEST(spec_errors) {
    const char *bad[] = {"", "neox:", "world:", "foo", "bytes:x", "NEOX:x", "gpt2"};
    rwkv_tokenizer *t = (rwkv_tokenizer *)1;
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        ck_assert_int_eq(rwkv_tokenizer_load(&t, bad[i]), RWKV_ERR_ARG);
        ck_assert(t == NULL);
        ck_assert_msg(strstr(rwkv_error_message(), "neox:PATH"), "%s", rwkv_error_message());
    }
    ck_assert_int_eq(rwkv_tokenizer_load(&t, NULL), RWKV_ERR_ARG);
    ck_assert_int_eq(rwkv_tokenizer_load(&t, "neox:/nonexistent/tok.json"), RWKV_ERR_IO);
    ck_assert(strstr(rwkv_error_message(), "/nonexistent/tok.json"));
    ck_assert_int_eq(rwkv_tokenizer_load(&t, "world:/nonexistent/vocab.txt"), RWKV_ERR_IO);
    ck_assert(strstr(rwkv_error_message(), "/nonexistent/vocab.txt"));
    ck_assert(t == NULL);
}
END_TEST

// Writes content to a scratch file and loads it; returns the status (t freed).
static rwkv_status load_text(const char *kind, const char *name, const char *content, size_t n, char *path) {
    snprintf(path, 512, "%s/%s", test_tmpdir(), name);
    spit(path, content, n);
    char spec[600];
    snprintf(spec, sizeof spec, "%s:%s", kind, path);
    rwkv_tokenizer *t = NULL;
    rwkv_status st = rwkv_tokenizer_load(&t, spec);
    if (!st) { // whatever loaded must encode anything without crashing
        char s[256];
        for (int i = 0; i < 20; i++) {
            size_t k = random_string(s, 0), m;
            int *ids = NULL;
            rwkv_status e = rwkv_tokenizer_encode(t, s, k, &ids, &m);
            ck_assert_msg(e == RWKV_OK || e == RWKV_ERR_ARG, "%s", rwkv_error_message());
            free(ids);
        }
    }
    rwkv_tokenizer_free(t);
    return st;
}

START_TEST(world_malformed_lines) {
    static const struct {
        const char *line, *why;
    } cases[] = {
        {"x1 'a' 1\n", "id"},
        {"5 'ab' 3\n", "length"},
        {"5 'ab 2\n", "quote"},
        {"5 'a'b' 3\n", "quote"},
        {"5 b'\\xZZ' 1\n", "escape"},
        {"5 '\\u12' 1\n", "escape"},
        {"5 '\\ud800' 3\n", "code point"},
        {"5 b'\xc3\xa9' 2\n", "non-ASCII"},
        {"5 '\xff' 1\n", "UTF-8"},
        {"5 'a'\n", "expected"},
        {"\n", "expected"},
        {"5 '' 0\n", "empty"},
        {"5 'a' 1\n5 'b' 1\n", "twice"},
        {"5 'a' 1\n6 'a' 1\n", "same bytes"},
        {"99999999999 'a' 1\n", "id"},
        {"5 'a' 1\n6 \"b\" x\n", "length"},
        {"5 '\\N{DASH}' 3\n", "\\N"},
        {"", "no tokens"},
    };
    char path[512];
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        ck_assert_int_eq(load_text("world", "bad_vocab.txt", cases[i].line, strlen(cases[i].line), path),
                         RWKV_ERR_FORMAT);
        const char *msg = rwkv_error_message();
        ck_assert_msg(strstr(msg, path) && strstr(msg, cases[i].why), "case %zu: %s", i, msg);
        if (cases[i].line[0] && strcmp(cases[i].why, "same bytes") && strcmp(cases[i].why, "twice") &&
            !strstr(cases[i].line, "6 \""))
            ck_assert_msg(strstr(msg, "line 1"), "case %zu: %s", i, msg);
    }
    // The escapes python allows, CRLF line ends and a str with UTF-8 all load.
    const char ok[] = "1 '\\x00' 1\r\n2 '\\\\' 1\n3 '\\'' 1\n4 \"a'\" 2\n5 '\\u00e9' 2\n6 b'\\xff\\n' 2\n7 '\\q' 2\n"
                      "8 '\xc3\xa9t\xc3\xa9' 5\n9 '\\101\\t' 2\n10 '\\U0001F600' 4\n";
    ck_assert_msg(load_text("world", "ok_vocab.txt", ok, strlen(ok), path) == RWKV_OK, "%s", rwkv_error_message());
    char spec[600];
    snprintf(spec, sizeof spec, "world:%s", path);
    rwkv_tokenizer *t;
    ck_assert(!rwkv_tokenizer_load(&t, spec));
    static const char *want[] = {
        "", "\x00", "\\", "'", "a'", "\xc3\xa9", "\xff\n", "\\q", "\xc3\xa9t\xc3\xa9", "A\t", "\xf0\x9f\x98\x80"};
    static const size_t want_len[] = {0, 1, 1, 1, 2, 2, 2, 2, 5, 2, 4};
    for (int id = 0; id <= 10; id++) {
        size_t len;
        const char *p = rwkv_tokenizer_piece(t, id, &len);
        ck_assert_msg(p && len == want_len[id] && !memcmp(p, want[id], len), "id %d", id);
    }
    int *ids;
    size_t m;
    ck_assert_int_eq(rwkv_tokenizer_encode(t, "zz", 2, &ids, &m), RWKV_ERR_ARG); // no token for 'z'
    ck_assert_msg(strstr(rwkv_error_message(), "0x7a"), "%s", rwkv_error_message());
    rwkv_tokenizer_free(t);
}
END_TEST

// The NeoX file cut down to ids below SMALL_VOCAB and the merges among them: fast to load,
// so the error paths can be driven many times.
#define SMALL_VOCAB 1000
static json_t *small_neox(void) {
    json_t *root = json_load_file(test_fixture("20B_tokenizer.json"), 0, NULL);
    ck_assert(root);
    json_t *model = json_object_get(root, "model"), *vocab = json_object(), *merges = json_array(),
           *added = json_array();
    const char *key;
    json_t *v;
    json_object_foreach(json_object_get(model, "vocab"), key, v) if (json_integer_value(v) < SMALL_VOCAB)
        json_object_set(vocab, key, v);
    size_t i;
    json_array_foreach(json_object_get(model, "merges"), i, v) {
        char buf[256];
        const char *m = json_string_value(v), *sp = strchr(m, ' ');
        if (strlen(m) >= sizeof buf) continue;
        memcpy(buf, m, (size_t)(sp - m));
        strcpy(buf + (sp - m), sp + 1);
        json_t *a = json_object_get(vocab, buf);
        buf[sp - m] = 0;
        if (a && json_object_get(vocab, buf) && json_object_get(vocab, sp + 1)) json_array_append(merges, v);
    }
    json_array_foreach(json_object_get(root, "added_tokens"), i,
                       v) if (json_integer_value(json_object_get(v, "id")) < SMALL_VOCAB) json_array_append(added, v);
    json_object_set_new(model, "vocab", vocab);
    json_object_set_new(model, "merges", merges);
    json_object_set_new(root, "added_tokens", added);
    return root;
}

// Truncated and garbled copies of both vocabulary files: a clean error or a usable tokenizer.
START_TEST(fuzz_vocab_files) {
    size_t wlen, nlen;
    char *wv = slurp(test_fixture("rwkv_vocab_v20230424.txt"), &wlen);
    char *nj = slurp(test_fixture("20B_tokenizer.json"), &nlen);
    char *buf = malloc(wlen > nlen ? wlen : nlen), path[512];
    for (int i = 0; i < 24; i++) {
        size_t cut = 1 + rng() % (wlen - 1);
        rwkv_status st = load_text("world", "trunc_vocab.txt", wv, cut, path);
        ck_assert_msg(st == RWKV_OK || (st == RWKV_ERR_FORMAT && strstr(rwkv_error_message(), path) &&
                                        strstr(rwkv_error_message(), "line ")),
                      "%s", rwkv_error_message());
        memcpy(buf, wv, wlen);
        for (int k = 0; k < 8; k++) buf[rng() % wlen] = (char)rng();
        st = load_text("world", "garbled_vocab.txt", buf, wlen, path);
        ck_assert_msg(st == RWKV_OK || (st == RWKV_ERR_FORMAT && strstr(rwkv_error_message(), path)), "%s",
                      rwkv_error_message());
    }
    json_t *small = small_neox();
    char *sj = json_dumps(small, JSON_COMPACT);
    size_t slen = strlen(sj);
    json_decref(small);
    for (int i = 0; i < 12; i++) { // the full 2.4 MB json is slow to parse: 2 rounds of it
        const char *src = i < 2 ? nj : sj;
        size_t len = i < 2 ? nlen : slen, cut = rng() % len;
        ck_assert_int_eq(load_text("neox", "trunc.json", src, cut, path), RWKV_ERR_FORMAT);
        ck_assert_msg(strstr(rwkv_error_message(), path), "%s", rwkv_error_message());
        memcpy(buf, src, len);
        for (int k = 0; k < 6; k++) buf[rng() % len] = (char)(rng() % 128);
        rwkv_status st = load_text("neox", "garbled.json", buf, len, path);
        ck_assert_msg(st == RWKV_OK ||
                          ((st == RWKV_ERR_FORMAT || st == RWKV_ERR_UNSUPPORTED) && strstr(rwkv_error_message(), path)),
                      "%s", rwkv_error_message());
    }
    free(sj);
    free(buf);
    free(wv);
    free(nj);
}
END_TEST

// A tokenizer.json with one field missing or wrong names the file and the field.
START_TEST(neox_missing_fields) {
    static const struct {
        const char *parent, *field, *set, *why;
    } cases[] = {
        {"model", "vocab", NULL, "model.vocab"},
        {"model", "merges", NULL, "model.merges"},
        {"", "model", NULL, "field model"},
        {"", "added_tokens", NULL, "added_tokens"},
        {"", "pre_tokenizer", NULL, "pre_tokenizer"},
        {"model", "merges", "[\"a b\", \"q \\u0120zzzzqq\"]", "model.merges[1]"},
        {"model", "merges", "[\"a b c\"]", "model.merges[0]"},
        {"model", "type", "\"WordPiece\"", "model.type"},
        {"normalizer", "type", "\"NFKC\"", "normalizer.type"},
        {"model", "vocab", "{\"a\": 0}", "no token for byte"},
        {"", "added_tokens", "[{\"id\": 0}]", "added_tokens[0].content"},
        {"", "added_tokens", "[{\"content\": \"<zq|>\"}]", "added_tokens[0].id"},
        {"", "added_tokens", "[{\"id\": 5, \"content\": \"<z>\", \"lstrip\": 1}]", "added_tokens[0].lstrip"},
    };
    json_t *root = small_neox();
    char path[512], spec[600];
    snprintf(path, sizeof path, "%s/field.json", test_tmpdir());
    ck_assert(!json_dump_file(root, path, JSON_COMPACT)); // the cut-down file itself loads
    snprintf(spec, sizeof spec, "neox:%s", path);
    rwkv_tokenizer *small;
    ck_assert_msg(!rwkv_tokenizer_load(&small, spec), "%s", rwkv_error_message());
    ck_assert_int_eq(rwkv_tokenizer_vocab_size(small), SMALL_VOCAB);
    rwkv_tokenizer_free(small);
    snprintf(spec, sizeof spec, "neox:%s", path);
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        json_t *copy = json_copy(root); // shallow: restore what we change
        json_t *parent = cases[i].parent[0] ? json_copy(json_object_get(root, cases[i].parent)) : copy;
        if (parent != copy) json_object_set_new(copy, cases[i].parent, parent);
        if (cases[i].set)
            json_object_set_new(parent, cases[i].field, json_loads(cases[i].set, JSON_DECODE_ANY, NULL));
        else
            json_object_del(parent, cases[i].field);
        ck_assert(!json_dump_file(copy, path, JSON_COMPACT));
        json_decref(copy);
        rwkv_tokenizer *t = NULL;
        rwkv_status st = rwkv_tokenizer_load(&t, spec);
        ck_assert_msg(st == RWKV_ERR_FORMAT || st == RWKV_ERR_UNSUPPORTED, "case %zu: status %d", i, st);
        ck_assert_msg(strstr(rwkv_error_message(), path) && strstr(rwkv_error_message(), cases[i].why), "case %zu: %s",
                      i, rwkv_error_message());
        ck_assert(t == NULL);
    }
    json_decref(root);
    char p2[512];
    ck_assert_int_eq(load_text("neox", "array.json", "[1, 2]", 6, p2), RWKV_ERR_FORMAT);
    ck_assert(strstr(rwkv_error_message(), p2));
    ck_assert_int_eq(load_text("neox", "empty.json", "", 0, p2), RWKV_ERR_FORMAT);
}
END_TEST

START_TEST(cli_tokenize_detokenize) {
    char *out;
    ck_assert_int_eq(test_cli(&out, "tokenize --help"), 0);
    ck_assert(strstr(out, "--tokenizer") && strstr(out, "--pieces"));
    free(out);
    ck_assert_int_eq(test_cli(&out, "detokenize --help"), 0);
    ck_assert(strstr(out, "--tokens"));
    free(out);
    ck_assert_int_eq(
        test_cli(&out, "tokenize --tokenizer " NEOX " --text 'Hello, world! It'\\''s a test; don'\\''t panic.'"), 0);
    ck_assert_str_eq(out, "12092,13,1533,2,733,434,247,1071,28,1053,626,18829,15\n");
    free(out);
    ck_assert_int_eq(test_cli(&out, "tokenize --tokenizer " WORLD " --text 'Hello world' --ids"), 0);
    ck_assert_str_eq(out, "33155,40213\n");
    free(out);
    ck_assert_int_eq(test_cli(&out, "tokenize --tokenizer " NEOX " --text '  leading' --pieces"), 0);
    ck_assert_str_eq(out, "50276\t\"  \"\n16378\t\"leading\"\n");
    free(out);
    ck_assert_int_eq(test_cli(&out, "tokenize --tokenizer bytes --text 'A\n' --pieces"), 0);
    ck_assert_str_eq(out, "65\t\"A\"\n10\t\"\\n\"\n");
    free(out);
    ck_assert_int_eq(test_cli(&out, "detokenize --tokenizer " NEOX " --tokens 0,12092,1533"), 0);
    ck_assert_str_eq(out, "<|endoftext|>Hello world");
    free(out);
    ck_assert_int_eq(test_cli(&out, "detokenize --tokenizer " WORLD " --tokens 33155,40213"), 0);
    ck_assert_str_eq(out, "Hello world");
    free(out);
    char path[512];
    snprintf(path, sizeof path, "%s/in.txt", test_tmpdir());
    spit(path, "tabs\tand\nnewlines\r\n\n\nend", 24);
    ck_assert_int_eq(test_cli(&out, "tokenize --tokenizer " NEOX " --file %s", path), 0);
    ck_assert_str_eq(out, "33754,186,395,187,1826,8737,190,535,187,423\n");
    free(out);
    // errors: bad spec, missing options, ids outside the vocabulary
    ck_assert_int_eq(test_cli(&out, "tokenize --tokenizer gpt2 --text hi"), 1);
    ck_assert(strstr(out, "gpt2") && strstr(out, "neox:PATH"));
    free(out);
    ck_assert_int_eq(test_cli(&out, "tokenize --text hi"), 2);
    ck_assert(strstr(out, "--tokenizer"));
    free(out);
    ck_assert_int_eq(test_cli(&out, "tokenize --tokenizer bytes"), 2);
    free(out);
    ck_assert_int_eq(test_cli(&out, "tokenize --tokenizer bytes --text hi --frob"), 2);
    free(out);
    ck_assert_int_eq(test_cli(&out, "tokenize --tokenizer neox:/nonexistent.json --text hi"), 1);
    ck_assert(strstr(out, "/nonexistent.json"));
    free(out);
    ck_assert_int_eq(test_cli(&out, "detokenize --tokenizer " NEOX " --tokens 1,50277"), 1);
    ck_assert(strstr(out, "50277"));
    free(out);
    ck_assert_int_eq(test_cli(&out, "detokenize --tokenizer bytes --tokens 1,x"), 1);
    free(out);
    ck_assert_int_eq(test_cli(&out, "detokenize --tokens 1"), 2);
    free(out);
}
END_TEST

// run --text goes through cli/input.c: a (zero) model of the NeoX or World vocabulary size
// accepts the spec, the text becomes the golden ids, and a too-small vocabulary is refused.
static void write_model(const char *path, int n_vocab) {
    rwkv_model *m;
    ck_assert(!rwkv_model_alloc(&m, (rwkv_config){.n_layer = 1, .n_embd = 4, .n_ffn = 8, .n_vocab = n_vocab}));
    ck_assert_msg(!rwkv_safetensors_write(path, m, NULL, 0), "%s", rwkv_error_message());
    rwkv_model_free(m);
}

START_TEST(cli_run_text) {
    char pile[512], wmodel[512], *out;
    snprintf(pile, sizeof pile, "%s/pile.safetensors", test_tmpdir());
    snprintf(wmodel, sizeof wmodel, "%s/world.safetensors", test_tmpdir());
    write_model(pile, NEOX_VOCAB);
    write_model(wmodel, 65536);
    // "Hello world" is [12092, 1533] in NeoX and [33155, 40213] in World: two positions each
    ck_assert_int_eq(test_cli(&out, "run %s --text 'Hello world' --tokenizer " NEOX " --all-positions --top-k 1", pile),
                     0);
    ck_assert_msg(strstr(out, "position 1:") && !strstr(out, "position 2:"), "%s", out);
    free(out);
    ck_assert_int_eq(
        test_cli(&out, "run %s --text 'Hello world' --tokenizer " WORLD " --all-positions --top-k 1", wmodel), 0);
    ck_assert_msg(strstr(out, "position 1:") && !strstr(out, "position 2:"), "%s", out);
    free(out);
    ck_assert_int_eq(test_cli(&out, "run %s --text 'Hello world' --tokenizer " WORLD, pile), 1);
    ck_assert_msg(strstr(out, "65530") && strstr(out, "50277"), "%s", out);
    free(out);
}
END_TEST

int main(void) {
    Suite *s = suite_create("tokenize");
    TCase *tc = tcase_create("tokenize");
    tcase_add_unchecked_fixture(tc, setup, teardown); // loaded once, shared by the forked tests
    tcase_set_timeout(tc, 300);                       // under ASan the fuzz rounds parse the 2.4 MB json several times
    tcase_add_test(tc, golden_neox_and_world);
    tcase_add_test(tc, neox_nfc);
    tcase_add_test(tc, neox_added_token_flags);
    tcase_add_test(tc, shakespeare_both);
    tcase_add_test(tc, random_round_trip);
    tcase_add_test(tc, neox_unencodable_bytes);
    tcase_add_test(tc, long_runs);
    tcase_add_test(tc, empty_input);
    tcase_add_test(tc, pieces_and_sizes);
    tcase_add_test(tc, vocab_check);
    tcase_add_test(tc, decode_errors);
    tcase_add_test(tc, spec_errors);
    tcase_add_test(tc, world_malformed_lines);
    tcase_add_test(tc, fuzz_vocab_files);
    tcase_add_test(tc, neox_missing_fields);
    tcase_add_test(tc, cli_tokenize_detokenize);
    tcase_add_test(tc, cli_run_text);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
