// dataset.c: JSONL dataset files. Line 1 is a header naming the format, version, task
// configuration and seed; each further line is one example with its tokens and answer spans.
#include "dataset.h"

#include "../core/base/file.h"

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

gsl_rng *rwkv_dataset_rng(unsigned long seed) {
    gsl_rng *r = gsl_rng_alloc(gsl_rng_mt19937);
    if (r) gsl_rng_set(r, seed);
    return r;
}

static json_t *header_json(const rwkv_task *t, unsigned long seed, int n) {
    json_t *cfg = json_pack("{s:s, s:i, s:i}", "task", rwkv_task_kind_name(t->kind), "len", t->len,
                            "vocab", t->vocab);
    if (t->kind == RWKV_TASK_PASSKEY) {
        json_object_set_new(cfg, "key_len", json_integer(t->key_len));
        json_object_set_new(cfg, "depth", t->depth == RWKV_TASK_DEPTH_RANDOM
                                              ? json_string("random") : json_real(t->depth));
        json_object_set_new(cfg, "query_first", t->query_first == RWKV_TASK_QUERY_MIXED
                                                     ? json_string("mixed") : json_boolean(t->query_first));
        json_object_set_new(cfg, "filler", json_string(t->filler ? "file" : "builtin"));
        json_object_set_new(cfg, "filler_random_offset", json_boolean(t->filler_random_offset));
    } else if (t->kind == RWKV_TASK_MQAR) {
        json_object_set_new(cfg, "n_pairs", json_integer(t->n_pairs));
        json_object_set_new(cfg, "n_queries", json_integer(t->n_queries));
    } else if (t->kind == RWKV_TASK_COPY) {
        json_object_set_new(cfg, "span_len", json_integer(t->span_len));
    }
    return json_pack("{s:s, s:i, s:o, s:I, s:i, s:s}", "format", "rwkvscope-dataset", "version",
                     RWKV_DATASET_VERSION, "config", cfg, "seed", (json_int_t)seed, "n", n, "rng",
                     "gsl mt19937");
}

static json_t *example_json(int i, const int *tok, const uint8_t *ans, int T,
                            const rwkv_task_info *info, const rwkv_task *t) {
    json_t *tokens = json_array(), *spans = json_array();
    for (int k = 0; k < T; k++) json_array_append_new(tokens, json_integer(tok[k]));
    for (int k = 0; k < T; k++) {
        if (!ans[k] || (k && ans[k - 1])) continue;
        int e = k;
        while (e < T && ans[e]) e++;
        json_array_append_new(spans, json_pack("[i, i]", k, e - k));
    }
    json_t *ex = json_pack("{s:i, s:o, s:o}", "i", i, "tokens", tokens, "answers", spans);
    if (t->kind == RWKV_TASK_PASSKEY) {
        json_object_set_new(ex, "depth", json_real(info->depth));
        json_object_set_new(ex, "needle_pos", json_integer(info->needle_pos));
        json_object_set_new(ex, "query_first", json_boolean(info->query_first));
    }
    return ex;
}

static rwkv_status write_line(FILE *f, json_t *j, const char *path) {
    int bad = !j || json_dumpf(j, f, JSON_COMPACT | JSON_PRESERVE_ORDER) || fputc('\n', f) == EOF;
    json_decref(j);
    return bad ? rwkv_error_set(RWKV_ERR_IO, "%s: write failed: %s", path, j ? strerror(errno) : "out of memory") : RWKV_OK;
}

rwkv_status rwkv_dataset_write(const char *path, const rwkv_task *t, unsigned long seed, int n,
                               int force) {
    if (n < 1) return rwkv_error_set(RWKV_ERR_ARG, "%s: need at least one example (n = %d)", path, n);
    rwkv_status st = rwkv_task_check(t, t->len);
    if (st) return st;
    if (!force && access(path, F_OK) == 0)
        return rwkv_error_set(RWKV_ERR_EXISTS, "%s: exists (use --force to overwrite)", path);
    int T = t->len;
    int *tok = rwkv_calloc((size_t)T, sizeof *tok, "dataset tokens");
    uint8_t *ans = rwkv_calloc((size_t)T, 1, "dataset answers");
    gsl_rng *rng = rwkv_dataset_rng(seed);
    rwkv_atomic_file out = {0};
    FILE *f = NULL;
    if (!tok || !ans || !rng) { st = rwkv_error_set(RWKV_ERR_NOMEM, "%s: out of memory", path); goto done; }
    if ((st = rwkv_file_atomic_open(&out, path, 1, 1))) goto done;
    f = out.f;
    if ((st = write_line(f, header_json(t, seed, n), path))) goto done;
    for (int i = 0; i < n; i++) {
        rwkv_task_info info;
        if ((st = rwkv_task_sample(t, rng, tok, ans, T, &info))) goto done;
        if ((st = write_line(f, example_json(i, tok, ans, T, &info, t), path))) goto done;
    }
done:
    if (f && !st) st = rwkv_file_atomic_commit(&out);
    else if (f) rwkv_file_atomic_abort(&out);
    gsl_rng_free(rng);
    free(tok);
    free(ans);
    return st;
}

rwkv_status rwkv_task_stream(const rwkv_task *t, unsigned long seed, int n_examples, int **tokens,
                             rwkv_real **mask, int64_t *n) {
    *tokens = NULL;
    *mask = NULL;
    *n = 0;
    if (n_examples < 1) return rwkv_error_set(RWKV_ERR_ARG, "task stream: need at least one example");
    rwkv_status st = rwkv_task_check(t, t->len);
    if (st) return st;
    size_t total = (size_t)n_examples * t->len;
    int *tok = rwkv_calloc(total, sizeof *tok, "task stream tokens");
    rwkv_real *m = rwkv_calloc(total, sizeof *m, "task stream mask");
    uint8_t *ans = rwkv_calloc((size_t)t->len, 1, "task answers");
    gsl_rng *rng = rwkv_dataset_rng(seed);
    if (!tok || !m || !ans || !rng) st = rwkv_error_set(RWKV_ERR_NOMEM, "task stream of %zu tokens", total);
    for (int e = 0; e < n_examples && !st; e++) {
        size_t off = (size_t)e * t->len;
        st = rwkv_task_sample(t, rng, tok + off, ans, t->len, NULL);
        for (int i = 0; i < t->len; i++) m[off + i] = ans[i];
    }
    free(ans);
    gsl_rng_free(rng);
    if (st) { free(tok); free(m); return st; }
    *tokens = tok;
    *mask = m;
    *n = (int64_t)total;
    return RWKV_OK;
}

rwkv_status rwkv_task_training_data(rwkv_data **out, const rwkv_task *t, unsigned long seed, int n_examples,
                                    double text_weight, double val_frac) {
    *out = NULL;
    if (t->len < 1) return rwkv_error_set(RWKV_ERR_ARG, "task %s: example length %d", rwkv_task_kind_name(t->kind), t->len);
    if (!(text_weight >= 0)) return rwkv_error_set(RWKV_ERR_ARG, "task training data: text weight %g < 0", text_weight);
    if (!n_examples) n_examples = (int)(RWKV_TASK_STREAM_TOKENS / t->len);
    int *tok = NULL;
    rwkv_real *mask = NULL;
    int64_t n = 0;
    char source[256];
    int k = snprintf(source, sizeof source, "task:%s (%d examples of %d tokens", rwkv_task_kind_name(t->kind),
                     n_examples, t->len);
    if (t->filler) k += snprintf(source + k, sizeof source - (size_t)k, ", filler text of %zu bytes", t->filler_len);
    if (text_weight > 0) k += snprintf(source + k, sizeof source - (size_t)k, ", text weight %g", text_weight);
    snprintf(source + k, sizeof source - (size_t)k, ")");
    rwkv_status st = rwkv_task_stream(t, seed, n_examples, &tok, &mask, &n);
    for (int64_t i = 0; !st && i < n; i++)
        if (mask[i] == 0) mask[i] = (rwkv_real)text_weight; // the haystack text, as a language model
    if (!st) st = rwkv_data_from_tokens(out, tok, mask, n, t->vocab, val_frac, source);
    free(tok);
    free(mask);
    return st;
}
