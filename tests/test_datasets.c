// test_datasets.c: task generators: determinism (pinned hash), answer spans point at the
// right tokens, impossible configurations fail clearly, and the JSONL file matches the API.
#include "datasets/dataset.h"
#include "datasets/prompts.h"
#include "datasets/reader.h"
#include "util.h"

#include <check.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FNV_OFFSET 14695981039346656037ULL
#define FNV_PRIME 1099511628211ULL
// Regression pins (gsl mt19937, seed 1234, 3 examples of 100 tokens; see pinned_hashes).
#define PIN_PASSKEY 0x408f419899b0d5f4ULL
#define PIN_MQAR 0xdba595c0f4ae9f8dULL
#define PIN_COPY 0xf8e9dc2a80b3d430ULL
#define PIN_INDUCTION 0x70a430ff444b75feULL

// FNV-1a over each token (4 bytes, little-endian) and each mask byte of n examples.
static uint64_t task_hash(const rwkv_task *t, unsigned long seed, int n) {
    int T = t->len, *tok = malloc(T * sizeof *tok);
    uint8_t *ans = malloc(T);
    gsl_rng *rng = rwkv_dataset_rng(seed);
    uint64_t h = FNV_OFFSET;
    for (int e = 0; e < n; e++) {
        ck_assert_int_eq(rwkv_task_sample(t, rng, tok, ans, T, NULL), RWKV_OK);
        for (int i = 0; i < T; i++) {
            for (int b = 0; b < 4; b++) h = (h ^ ((uint32_t)tok[i] >> (8 * b) & 0xff)) * FNV_PRIME;
            h = (h ^ ans[i]) * FNV_PRIME;
        }
    }
    gsl_rng_free(rng);
    free(tok);
    free(ans);
    return h;
}

START_TEST(same_seed_same_bytes) {
    for (int k = 0; k < 4; k++) {
        rwkv_task t;
        rwkv_task_defaults(&t, (rwkv_task_kind)k);
        t.len = 128;
        if (k == RWKV_TASK_PASSKEY) t.depth = RWKV_TASK_DEPTH_RANDOM;
        ck_assert_uint_eq(task_hash(&t, 7, 5), task_hash(&t, 7, 5));
        ck_assert_uint_ne(task_hash(&t, 7, 5), task_hash(&t, 8, 5));
    }
}
END_TEST

// Pinned when the generators were written: a change here changes every dataset.
START_TEST(pinned_hashes) {
    static const uint64_t PINNED[4] = {PIN_PASSKEY, PIN_MQAR, PIN_COPY, PIN_INDUCTION};
    uint64_t got[4];
    for (int k = 0; k < 4; k++) {
        rwkv_task t;
        rwkv_task_defaults(&t, (rwkv_task_kind)k);
        t.len = 100;
        t.vocab = k == RWKV_TASK_PASSKEY ? 256 : 32;
        t.n_pairs = t.n_queries = 4;
        t.span_len = 8;
        t.depth = RWKV_TASK_DEPTH_RANDOM;
        got[k] = task_hash(&t, 1234, 3);
        if (got[k] != PINNED[k]) fprintf(stderr, "task %d hash %#llx\n", k, (unsigned long long)got[k]);
    }
    for (int k = 0; k < 4; k++) ck_assert_uint_eq(got[k], PINNED[k]);
}
END_TEST

static void expect_arg_error(const rwkv_task *t, const char *needle);

static int sample1(const rwkv_task *t, unsigned long seed, int *tok, uint8_t *ans,
                   rwkv_task_info *info) {
    gsl_rng *rng = rwkv_dataset_rng(seed);
    int st = rwkv_task_sample(t, rng, tok, ans, t->len, info);
    gsl_rng_free(rng);
    return st;
}

static int starts_with(const int *tok, const char *s) {
    for (size_t i = 0; s[i]; i++)
        if (tok[i] != (uint8_t)s[i]) return 0;
    return 1;
}

START_TEST(passkey_spans) {
    static const char *const ORDER[2] = {"after", "first"};
    for (int qf = 0; qf < 2; qf++)
        for (int d = 0; d <= 4; d++) {
            rwkv_task t;
            rwkv_task_defaults(&t, RWKV_TASK_PASSKEY);
            t.len = 200;
            t.depth = d / 4.0;
            t.query_first = qf;
            t.key_len = 7;
            int tok[200];
            uint8_t ans[200];
            rwkv_task_info info;
            ck_assert_int_eq(sample1(&t, 99 + d, tok, ans, &info), RWKV_OK);
            // The answer is the last 7 tokens, digits, equal to the key in the needle.
            int n_ans = 0;
            for (int i = 0; i < 200; i++) n_ans += ans[i];
            ck_assert_int_eq(n_ans, 7);
            const char *head = "The pass key is ";
            int key_at = info.needle_pos + (int)strlen(head);
            ck_assert(starts_with(tok + info.needle_pos, head));
            ck_assert(starts_with(tok + 200 - 7 - (int)strlen(head) - 22,
                                  "What is the pass key? The pass key is "));
            for (int i = 0; i < 7; i++) {
                ck_assert(ans[193 + i]);
                ck_assert(tok[193 + i] >= '0' && tok[193 + i] <= '9');
                ck_assert_int_eq(tok[193 + i], tok[key_at + i]);
            }
            ck_assert(starts_with(tok + key_at + 7, ". Remember it. "));
            // Depth: the needle sits after round(depth * F) filler tokens, F = 200 - overhead.
            int pre = qf ? 22 : 0, F = 200 - (pre + 16 + 7 + 15 + 22 + 16 + 7);
            ck_assert_msg(info.needle_pos == pre + (int)(t.depth * F + 0.5), "order %s", ORDER[qf]);
            if (qf) ck_assert(starts_with(tok, d ? "What is the pass key? The grass"
                                                 : "What is the pass key? The pass key is "));
            else ck_assert(starts_with(tok, d ? "The grass is green." : "The pass key is "));
            ck_assert_int_eq(info.shared_prefix, info.needle_pos);
        }
}
END_TEST

// Mixed prompt order: both layouts occur, each as info says, and nothing is shared.
START_TEST(passkey_mixed_order) {
    rwkv_task t;
    rwkv_task_defaults(&t, RWKV_TASK_PASSKEY);
    t.len = 150;
    t.query_first = RWKV_TASK_QUERY_MIXED;
    gsl_rng *rng = rwkv_dataset_rng(4);
    int tok[150], seen[2] = {0, 0};
    uint8_t ans[150];
    for (int e = 0; e < 40; e++) {
        rwkv_task_info info;
        ck_assert_int_eq(rwkv_task_sample(&t, rng, tok, ans, 150, &info), RWKV_OK);
        ck_assert(info.query_first == 0 || info.query_first == 1);
        seen[info.query_first]++;
        ck_assert_int_eq(starts_with(tok, "What is the pass key? "), info.query_first);
        ck_assert_int_eq(info.shared_prefix, 0);
        for (int i = 0; i < 5; i++) ck_assert_int_eq(tok[145 + i], tok[info.needle_pos + 16 + i]);
    }
    gsl_rng_free(rng);
    ck_assert(seen[0] > 5 && seen[1] > 5);
    t.len = 96; // fits the question once (79 tokens) but not twice (101)
    expect_arg_error(&t, "questions with a 5-digit key (101 tokens)");
}
END_TEST

START_TEST(passkey_text_filler) {
    rwkv_task t;
    rwkv_task_defaults(&t, RWKV_TASK_PASSKEY);
    ck_assert_int_eq(rwkv_task_set_filler_file(&t, test_fixture("tinyshakespeare.txt")), RWKV_OK);
    t.filler_random_offset = 1;
    t.len = 300;
    t.depth = 1;
    int tok[300];
    uint8_t ans[300];
    rwkv_task_info info;
    ck_assert_int_eq(sample1(&t, 5, tok, ans, &info), RWKV_OK);
    ck_assert_int_ge(info.needle_pos, 100);
    char probe[101];
    for (int i = 0; i < 100; i++) probe[i] = (char)tok[i];
    probe[100] = '\0';
    ck_assert_ptr_nonnull(memmem(t.filler, t.filler_len, probe, 100)); // real haystack text
    ck_assert_int_eq(info.shared_prefix, 0); // random offsets share nothing
    rwkv_task_free(&t);
    ck_assert_int_eq(rwkv_task_set_filler_file(&t, "/nonexistent/filler.txt"), RWKV_ERR_IO);
    ck_assert_ptr_nonnull(strstr(rwkv_error_message(), "/nonexistent/filler.txt"));
}
END_TEST

START_TEST(mqar_spans) {
    rwkv_task t;
    rwkv_task_defaults(&t, RWKV_TASK_MQAR);
    t.len = 96;
    t.vocab = 64;
    t.n_pairs = 10;
    t.n_queries = 6;
    int tok[96];
    uint8_t ans[96];
    for (int seed = 0; seed < 20; seed++) {
        ck_assert_int_eq(sample1(&t, seed, tok, ans, NULL), RWKV_OK);
        int n_ans = 0;
        for (int i = 0; i < 20; i += 2) {
            ck_assert(tok[i] >= 1 && tok[i] < 32 && tok[i + 1] >= 32 && tok[i + 1] < 64);
            for (int j = 0; j < i; j += 2) ck_assert_int_ne(tok[i], tok[j]); // distinct keys
        }
        for (int i = 0; i < 96; i++) {
            if (!ans[i]) continue;
            n_ans++;
            // The answer follows a key, and equals the value that key had in the pairs.
            int key = tok[i - 1], found = 0;
            for (int j = 0; j < 20; j += 2)
                if (tok[j] == key) { ck_assert_int_eq(tok[i], tok[j + 1]); found = 1; }
            ck_assert(found && i > 20);
        }
        ck_assert_int_eq(n_ans, 6);
    }
}
END_TEST

START_TEST(copy_and_induction_spans) {
    rwkv_task t;
    rwkv_task_defaults(&t, RWKV_TASK_COPY);
    t.len = 50;
    t.span_len = 12;
    int tok[50];
    uint8_t ans[50];
    ck_assert_int_eq(sample1(&t, 3, tok, ans, NULL), RWKV_OK);
    ck_assert_int_eq(tok[37], RWKV_TASK_PAD);
    for (int i = 0; i < 50; i++) ck_assert_int_eq(ans[i], i >= 38);
    for (int i = 0; i < 12; i++) ck_assert_int_eq(tok[38 + i], tok[25 + i]);
    rwkv_task_defaults(&t, RWKV_TASK_INDUCTION);
    t.len = 50;
    t.vocab = 16;
    for (int seed = 0; seed < 20; seed++) {
        ck_assert_int_eq(sample1(&t, seed, tok, ans, NULL), RWKV_OK);
        int a = tok[48], seen = 0;
        for (int i = 0; i < 48; i++)
            if (tok[i] == a) { seen++; ck_assert_int_eq(tok[i + 1], tok[49]); }
        ck_assert_int_eq(seen, 1); // A occurs once before the query
        for (int i = 0; i < 50; i++) ck_assert_int_eq(ans[i], i == 49);
    }
}
END_TEST

static void expect_arg_error(const rwkv_task *t, const char *needle) {
    int tok[400];
    uint8_t ans[400];
    gsl_rng *rng = rwkv_dataset_rng(1);
    ck_assert_int_eq(rwkv_task_sample(t, rng, tok, ans, t->len, NULL), RWKV_ERR_ARG);
    gsl_rng_free(rng);
    ck_assert_msg(strstr(rwkv_error_message(), needle), "%s", rwkv_error_message());
}

START_TEST(impossible_configs) {
    rwkv_task t;
    rwkv_task_defaults(&t, RWKV_TASK_PASSKEY);
    t.len = 100;
    t.key_len = 40; // the key and question no longer fit
    expect_arg_error(&t, "shorter than the needle");
    t.key_len = 5;
    t.depth = 1.5;
    expect_arg_error(&t, "depth 1.5 outside [0, 1]");
    t.depth = -0.25;
    expect_arg_error(&t, "depth -0.25");
    t.depth = 0.5;
    t.vocab = 50;
    expect_arg_error(&t, "vocab 50");
    rwkv_task_defaults(&t, RWKV_TASK_MQAR);
    t.len = 100;
    t.vocab = 16;
    t.n_pairs = t.n_queries = 10;
    expect_arg_error(&t, "distinct keys");
    t.vocab = 256;
    t.n_pairs = t.n_queries = 30;
    expect_arg_error(&t, "cannot hold 30 pairs");
    t.n_queries = 31;
    expect_arg_error(&t, "queries (31) <= pairs (30)");
    rwkv_task_defaults(&t, RWKV_TASK_COPY);
    t.len = 20;
    t.span_len = 10;
    expect_arg_error(&t, "span 10 does not fit");
}
END_TEST

START_TEST(jsonl_file_matches_api) {
    rwkv_task t;
    rwkv_task_defaults(&t, RWKV_TASK_MQAR);
    t.len = 40;
    t.n_pairs = t.n_queries = 4;
    char path[1024];
    snprintf(path, sizeof path, "%s/mqar.jsonl", test_tmpdir());
    ck_assert_int_eq(rwkv_dataset_write(path, &t, 42, 3, 1), RWKV_OK);
    ck_assert_int_eq(rwkv_dataset_write(path, &t, 42, 3, 0), RWKV_ERR_EXISTS);
    FILE *f = fopen(path, "r");
    char line[65536];
    ck_assert_ptr_nonnull(fgets(line, sizeof line, f));
    json_t *h = json_loads(line, 0, NULL);
    ck_assert_int_eq(json_integer_value(json_object_get(h, "version")), RWKV_DATASET_VERSION);
    ck_assert_str_eq(json_string_value(json_object_get(json_object_get(h, "config"), "task")), "mqar");
    json_decref(h);
    gsl_rng *rng = rwkv_dataset_rng(42);
    int tok[40];
    uint8_t ans[40];
    for (int e = 0; e < 3; e++) {
        ck_assert_int_eq(rwkv_task_sample(&t, rng, tok, ans, 40, NULL), RWKV_OK);
        ck_assert_ptr_nonnull(fgets(line, sizeof line, f));
        json_t *ex = json_loads(line, 0, NULL), *tj = json_object_get(ex, "tokens");
        ck_assert_uint_eq(json_array_size(tj), 40);
        for (int i = 0; i < 40; i++) ck_assert_int_eq(json_integer_value(json_array_get(tj, i)), tok[i]);
        uint8_t from_spans[40] = {0};
        json_t *sp = json_object_get(ex, "answers");
        for (size_t s = 0; s < json_array_size(sp); s++) {
            int st = (int)json_integer_value(json_array_get(json_array_get(sp, s), 0));
            int len = (int)json_integer_value(json_array_get(json_array_get(sp, s), 1));
            for (int i = st; i < st + len; i++) from_spans[i] = 1;
        }
        ck_assert_mem_eq(from_spans, ans, 40);
        json_decref(ex);
    }
    ck_assert_ptr_null(fgets(line, sizeof line, f));
    fclose(f);
    gsl_rng_free(rng);
    ck_assert_int_eq(rwkv_dataset_write("/nonexistent/d.jsonl", &t, 1, 1, 1), RWKV_ERR_IO);
}
END_TEST

// The reader gives back what rwkv_dataset_write wrote: the examples rwkv_task_sample draws,
// with spans covering exactly the answer mask; the header is recognised and skipped.
START_TEST(reader_round_trip) {
    rwkv_task t;
    rwkv_task_defaults(&t, RWKV_TASK_PASSKEY);
    t.len = 120;
    char path[1024];
    snprintf(path, sizeof path, "%s/rt.jsonl", test_tmpdir());
    ck_assert_int_eq(rwkv_dataset_write(path, &t, 7, 4, 1), RWKV_OK);
    rwkv_dataset_reader *r;
    ck_assert_int_eq(rwkv_dataset_reader_open(&r, path, 0), RWKV_OK);
    gsl_rng *rng = rwkv_dataset_rng(7);
    int tok[120], got;
    uint8_t ans[120];
    rwkv_dataset_example ex = {0};
    for (int e = 0; e < 4; e++) {
        ck_assert_int_eq(rwkv_task_sample(&t, rng, tok, ans, 120, NULL), RWKV_OK);
        ck_assert_int_eq(rwkv_dataset_reader_next(r, &ex, &got), RWKV_OK);
        ck_assert_int_eq(got, 1);
        ck_assert_int_eq(ex.lineno, e + 2); // line 1 is the header
        ck_assert_int_eq(ex.n_tokens, 120);
        ck_assert_mem_eq(ex.tokens, tok, sizeof tok);
        ck_assert_ptr_null(ex.text);
        uint8_t from_spans[120] = {0};
        for (int k = 0; k < ex.n_answers; k++)
            for (int64_t i = ex.answers[k][0]; i < ex.answers[k][0] + ex.answers[k][1]; i++) from_spans[i] = 1;
        ck_assert_mem_eq(from_spans, ans, 120);
    }
    ck_assert_int_eq(r->header, 1);
    ck_assert_int_eq(rwkv_dataset_reader_next(r, &ex, &got), RWKV_OK);
    ck_assert_int_eq(got, 0);
    rwkv_dataset_example_clear(&ex);
    rwkv_dataset_reader_free(r);
    gsl_rng_free(rng);
    // As a sequence file: the same four token sequences, no text.
    rwkv_sequences seqs = {0};
    ck_assert_int_eq(rwkv_dataset_read_sequences(&seqs, path, NULL, 256), RWKV_OK);
    ck_assert_int_eq(seqs.n, 4);
    ck_assert_int_eq(seqs.has_text, 0);
    ck_assert_int_eq(seqs.items[3].n, 120);
    ck_assert_int_eq(rwkv_dataset_read_sequences(&seqs, path, NULL, 50), RWKV_ERR_ARG); // ids >= 50
    ck_assert_msg(strstr(rwkv_error_message(), "rt.jsonl:2: token "), "%s", rwkv_error_message());
    rwkv_sequences_free(&seqs);
    rwkv_task_free(&t);
}
END_TEST

// Writes text to path and expects the first reader error to name path:line and contain needle.
static void expect_bad_line(const char *text, int flags, int line, const char *needle) {
    char path[1024], where[1100];
    snprintf(path, sizeof path, "%s/bad.jsonl", test_tmpdir());
    FILE *f = fopen(path, "w");
    fputs(text, f);
    fclose(f);
    rwkv_dataset_reader *r;
    ck_assert_int_eq(rwkv_dataset_reader_open(&r, path, flags), RWKV_OK);
    rwkv_dataset_example ex = {0};
    int got = 1;
    rwkv_status st = RWKV_OK;
    while (!st && got) st = rwkv_dataset_reader_next(r, &ex, &got);
    ck_assert_int_eq(st, RWKV_ERR_FORMAT);
    snprintf(where, sizeof where, "bad.jsonl:%d: ", line);
    ck_assert_msg(strstr(rwkv_error_message(), where) && strstr(rwkv_error_message(), needle), "%s: %s", text,
                  rwkv_error_message());
    rwkv_dataset_example_clear(&ex);
    rwkv_dataset_reader_free(r);
}

START_TEST(reader_rejects_malformed_lines) {
    const char *ok = "{\"tokens\": [1, 2, 3], \"answers\": [[1, 2]]}\n";
    char buf[512];
    snprintf(buf, sizeof buf, "%s\n%s{\"tokens\": [1, 2\n", ok, ok); // blank line 2 counts
    expect_bad_line(buf, 0, 4, "not a JSON object");
    expect_bad_line("[1, 2, 3]\n", 0, 1, "not a JSON object");
    expect_bad_line("plain text\n", 0, 1, "not a JSON object"); // prompts only with TEXT_LINES
    expect_bad_line("{\"tokens\": [1, -2]}\n", 0, 1, "tokens[1] is not a token id");
    expect_bad_line("{\"tokens\": [1, 2.5]}\n", 0, 1, "tokens[1] is not a token id");
    expect_bad_line("{\"tokens\": \"abc\"}\n", 0, 1, "\"tokens\" is not an array");
    expect_bad_line("{\"text\": 5}\n", 0, 1, "\"text\" is not a string");
    expect_bad_line("{\"i\": 0}\n", 0, 1, "needs a \"tokens\" array or a \"text\" string");
    expect_bad_line("{\"tokens\": [1, 2, 3], \"answers\": [[0, 1]]}\n", 0, 1, "answer span 0");
    expect_bad_line("{\"tokens\": [1, 2, 3], \"answers\": [[1, 1], [2, 5]]}\n", 0, 1, "answer span 1");
    expect_bad_line("{\"tokens\": [1, 2, 3], \"answers\": [[1]]}\n", 0, 1, "answer span 0");
    expect_bad_line("{\"format\": \"rwkvscope-dataset\", \"version\": 2}\n", 0, 1, "v1 header");
    expect_bad_line("{\"format\": \"other\", \"version\": 1}\n", 0, 1, "v1 header");
    snprintf(buf, sizeof buf, "%s{\"format\": \"rwkvscope-dataset\", \"version\": 1}\n", ok);
    expect_bad_line(buf, 0, 2, "header on line 1");
    expect_bad_line("{\"tokens\": [1], \"tokens\": [2]}\n", RWKV_READER_TEXT_LINES, 1, "not a JSON object");
    expect_bad_line("ok prompt\n{\"text\": \"ab\"\n", RWKV_READER_TEXT_LINES, 2, "not a JSON object");
    rwkv_dataset_reader *r;
    ck_assert_int_eq(rwkv_dataset_reader_open(&r, "/nonexistent/x.jsonl", 0), RWKV_ERR_IO);
    ck_assert_ptr_nonnull(strstr(rwkv_error_message(), "/nonexistent/x.jsonl: cannot open"));
}
END_TEST

// A sequence file mixes prompt lines and JSONL objects; text is encoded, and kept.
START_TEST(prompts_file) {
    char path[1024];
    snprintf(path, sizeof path, "%s/prompts.txt", test_tmpdir());
    FILE *f = fopen(path, "w");
    fputs("Hello\r\n\n{\"text\": \"ab\"}\n{\"tokens\": [7, 8]}\n", f);
    fclose(f);
    rwkv_tokenizer *tok;
    ck_assert_int_eq(rwkv_tokenizer_load(&tok, "bytes"), RWKV_OK);
    rwkv_sequences s = {0};
    ck_assert_int_eq(rwkv_dataset_read_sequences(&s, path, tok, 256), RWKV_OK);
    ck_assert_int_eq(s.n, 3);
    ck_assert(s.items[0].n == 5 && s.items[0].ids[0] == 'H' && s.items[0].ids[4] == 'o');
    ck_assert_str_eq(s.items[0].text, "Hello");
    ck_assert(s.items[1].n == 2 && s.items[1].ids[1] == 'b' && !strcmp(s.items[1].text, "ab"));
    ck_assert(s.items[2].n == 2 && s.items[2].ids[0] == 7 && !s.items[2].text);
    rwkv_sequences_free(&s);
    f = fopen(path, "w");
    fputs("\n\n", f);
    fclose(f);
    ck_assert_int_eq(rwkv_dataset_read_sequences(&s, path, tok, 256), RWKV_ERR_ARG);
    ck_assert_ptr_nonnull(strstr(rwkv_error_message(), "no sequences"));
    f = fopen(path, "w");
    fputs("{\"tokens\": []}\n", f);
    fclose(f);
    ck_assert_int_eq(rwkv_dataset_read_sequences(&s, path, tok, 256), RWKV_ERR_ARG);
    ck_assert_ptr_nonnull(strstr(rwkv_error_message(), "prompts.txt:1: the sequence is empty"));
    rwkv_sequences_free(&s);
    rwkv_tokenizer_free(tok);
}
END_TEST

START_TEST(cli_dataset_make) {
    char *out = NULL;
    char path[1024];
    snprintf(path, sizeof path, "%s/pk.jsonl", test_tmpdir());
    ck_assert_int_eq(test_cli(&out, "dataset make passkey --n 3 --len 128 --seed 3 -o %s", path), 0);
    free(out);
    ck_assert_int_ne(test_cli(&out, "dataset make passkey --n 3 --len 128 -o %s", path), 0);
    ck_assert_ptr_nonnull(strstr(out, "exists"));
    free(out);
    ck_assert_int_eq(test_cli(&out, "dataset make passkey --len 128 --depth 2 -o %s --force", path), 2);
    ck_assert_ptr_nonnull(strstr(out, "--depth must be in [0, 1]"));
    free(out);
    ck_assert_int_eq(test_cli(&out, "dataset make passkey --len 30 -o %s --force", path), 1);
    ck_assert_ptr_nonnull(strstr(out, "shorter than the needle"));
    free(out);
    ck_assert_int_eq(test_cli(&out, "dataset make sorting -o %s", path), 2);
    free(out);
}
END_TEST

// The training stream is the examples of rwkv_dataset_rng(seed) back to back, mask = answers.
START_TEST(training_stream) {
    rwkv_task t;
    rwkv_task_defaults(&t, RWKV_TASK_INDUCTION);
    t.len = 30;
    int *tok;
    rwkv_real *mask;
    int64_t n;
    ck_assert_int_eq(rwkv_task_stream(&t, 9, 4, &tok, &mask, &n), RWKV_OK);
    ck_assert_int_eq(n, 120);
    gsl_rng *rng = rwkv_dataset_rng(9);
    int ex[30];
    uint8_t ans[30];
    for (int e = 0; e < 4; e++) {
        ck_assert_int_eq(rwkv_task_sample(&t, rng, ex, ans, 30, NULL), RWKV_OK);
        for (int i = 0; i < 30; i++) {
            ck_assert_int_eq(tok[e * 30 + i], ex[i]);
            ck_assert(mask[e * 30 + i] == (i == 29 ? 1 : 0));
        }
    }
    gsl_rng_free(rng);
    free(tok);
    free(mask);
    t.len = 3;
    ck_assert_int_eq(rwkv_task_stream(&t, 9, 4, &tok, &mask, &n), RWKV_ERR_ARG);
}
END_TEST

// Training data from a task holds the examples of the JSONL file written with the same seed,
// with loss weight 1 on its answer spans and the text weight elsewhere.
START_TEST(task_training_data) {
    rwkv_task t;
    rwkv_task_defaults(&t, RWKV_TASK_MQAR);
    t.len = 40;
    char path[512];
    snprintf(path, sizeof path, "%s/train_mqar.jsonl", test_tmpdir());
    ck_assert_int_eq(rwkv_dataset_write(path, &t, 5, 6, 1), RWKV_OK);
    rwkv_data *d = NULL;
    ck_assert_int_eq(rwkv_task_training_data(&d, &t, 5, 6, 0.25, 0.5), RWKV_OK);
    ck_assert_int_eq(d->n, 240);
    ck_assert_int_eq(d->n_vocab, t.vocab);
    ck_assert(d->n_train > 0 && d->n_train < d->n);
    ck_assert_ptr_nonnull(strstr(d->source, "task:mqar (6 examples of 40 tokens, text weight 0.25)"));
    rwkv_dataset_reader *r = NULL;
    ck_assert_int_eq(rwkv_dataset_reader_open(&r, path, 0), RWKV_OK);
    rwkv_dataset_example ex = {0};
    int got, e = 0, answers = 0;
    while (rwkv_dataset_reader_next(r, &ex, &got) == RWKV_OK && got) {
        ck_assert_int_eq(ex.n_tokens, 40);
        double want[40];
        for (int i = 0; i < 40; i++) want[i] = 0.25;
        for (int a = 0; a < ex.n_answers; a++)
            for (int64_t i = ex.answers[a][0]; i < ex.answers[a][0] + ex.answers[a][1]; i++) want[i] = 1, answers++;
        for (int i = 0; i < 40; i++) {
            ck_assert_int_eq(d->tokens[e * 40 + i], ex.tokens[i]);
            ck_assert_double_eq(d->mask[e * 40 + i], (rwkv_real)want[i]);
        }
        e++;
    }
    ck_assert_int_eq(e, 6);
    ck_assert_int_gt(answers, 0);
    rwkv_dataset_example_clear(&ex);
    rwkv_dataset_reader_free(r);
    rwkv_data_free(d);
    ck_assert_int_eq(rwkv_task_training_data(&d, &t, 5, 6, -1, 0.5), RWKV_ERR_ARG);
    ck_assert_ptr_null(d);
}
END_TEST

int main(void) {
    Suite *s = suite_create("datasets");
    TCase *tc = tcase_create("datasets");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, same_seed_same_bytes);
    tcase_add_test(tc, pinned_hashes);
    tcase_add_test(tc, passkey_spans);
    tcase_add_test(tc, passkey_text_filler);
    tcase_add_test(tc, passkey_mixed_order);
    tcase_add_test(tc, mqar_spans);
    tcase_add_test(tc, copy_and_induction_spans);
    tcase_add_test(tc, impossible_configs);
    tcase_add_test(tc, jsonl_file_matches_api);
    tcase_add_test(tc, reader_round_trip);
    tcase_add_test(tc, reader_rejects_malformed_lines);
    tcase_add_test(tc, prompts_file);
    tcase_add_test(tc, cli_dataset_make);
    tcase_add_test(tc, training_stream);
    tcase_add_test(tc, task_training_data);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int nf = srunner_ntests_failed(sr);
    srunner_free(sr);
    return nf ? 1 : 0;
}
