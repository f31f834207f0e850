// task.c: the synthetic recall tasks. Every random choice comes from the caller's gsl_rng,
// in a fixed order, so a seed fixes the bytes.
#include "task.h"

#include "../core/base/file.h"

#include <gsl/gsl_randist.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TASK_DEFAULT_LEN 256
#define TASK_BYTE_VOCAB 256
#define PASSKEY_DEFAULT_DIGITS 5
#define PASSKEY_MAX_DIGITS 64
#define MQAR_DEFAULT_PAIRS 8
#define COPY_DEFAULT_SPAN 16

// The haystack of the passkey retrieval test (Mohtashami & Jaggi, 2023).
static const char BUILTIN_FILLER[] =
    "The grass is green. The sky is blue. The sun is yellow. Here we go. There and back again. ";
static const char NEEDLE_HEAD[] = "The pass key is ";
static const char NEEDLE_TAIL[] = ". Remember it. ";
static const char QUESTION[] = "What is the pass key? ";
static const char ANSWER_HEAD[] = "The pass key is ";
#define SLEN(s) ((int)(sizeof(s) - 1))

static const char *const KIND_NAMES[] = {"passkey", "mqar", "copy", "induction"};

const char *rwkv_task_kind_name(rwkv_task_kind kind) {
    return (unsigned)kind < 4 ? KIND_NAMES[kind] : "?";
}

rwkv_status rwkv_task_parse_kind(const char *name, rwkv_task_kind *out) {
    for (int k = 0; k < 4; k++)
        if (name && !strcmp(name, KIND_NAMES[k])) { *out = (rwkv_task_kind)k; return RWKV_OK; }
    return rwkv_error_set(RWKV_ERR_ARG, "unknown task '%s' (passkey, mqar, copy, induction)",
                          name ? name : "");
}

void rwkv_task_defaults(rwkv_task *t, rwkv_task_kind kind) {
    memset(t, 0, sizeof *t);
    t->kind = kind;
    t->len = TASK_DEFAULT_LEN;
    t->vocab = TASK_BYTE_VOCAB;
    t->key_len = PASSKEY_DEFAULT_DIGITS;
    t->depth = 0.5;
    t->n_pairs = MQAR_DEFAULT_PAIRS;
    t->n_queries = MQAR_DEFAULT_PAIRS;
    t->span_len = COPY_DEFAULT_SPAN;
}

void rwkv_task_free(rwkv_task *t) {
    if (!t) return;
    free(t->filler);
    t->filler = NULL;
    t->filler_len = 0;
}

rwkv_status rwkv_task_set_filler_file(rwkv_task *t, const char *path) {
    uint8_t *buf;
    size_t n;
    rwkv_status st = rwkv_file_read(path, &buf, &n);
    if (st) return rwkv_error_wrap(st, "filler: ");
    if (!n) {
        free(buf);
        return rwkv_error_set(RWKV_ERR_FORMAT, "%s: filler file is empty", path);
    }
    free(t->filler);
    t->filler = buf;
    t->filler_len = n;
    return RWKV_OK;
}

// Tokens around the filler in a passkey example (all but the filler itself).
static int passkey_overhead(const rwkv_task *t, int query_first) {
    return (query_first ? SLEN(QUESTION) : 0) + SLEN(NEEDLE_HEAD) + t->key_len +
           SLEN(NEEDLE_TAIL) + SLEN(QUESTION) + SLEN(ANSWER_HEAD) + t->key_len;
}

rwkv_status rwkv_task_check(const rwkv_task *t, int T) {
    const char *name = rwkv_task_kind_name(t->kind);
    if (T < 4) return rwkv_error_set(RWKV_ERR_ARG, "%s: length %d: need at least 4 tokens", name, T);
    if (t->vocab < 4) return rwkv_error_set(RWKV_ERR_ARG, "%s: vocab %d: need at least 4", name, t->vocab);
    switch (t->kind) {
    case RWKV_TASK_PASSKEY:
        if (t->vocab < TASK_BYTE_VOCAB)
            return rwkv_error_set(RWKV_ERR_ARG, "passkey: vocab %d: the task is text, it needs "
                                  "byte tokens (vocab >= 256)", t->vocab);
        if (t->key_len < 1 || t->key_len > PASSKEY_MAX_DIGITS)
            return rwkv_error_set(RWKV_ERR_ARG, "passkey: key length %d outside [1, %d]",
                                  t->key_len, PASSKEY_MAX_DIGITS);
        if (t->depth != RWKV_TASK_DEPTH_RANDOM && !(t->depth >= 0 && t->depth <= 1))
            return rwkv_error_set(RWKV_ERR_ARG, "passkey: depth %g outside [0, 1]", t->depth);
        if (t->query_first < 0 || t->query_first > RWKV_TASK_QUERY_MIXED)
            return rwkv_error_set(RWKV_ERR_ARG, "passkey: query_first %d is not 0, 1 or mixed (2)",
                                  t->query_first);
        if (passkey_overhead(t, t->query_first != 0) > T)
            return rwkv_error_set(RWKV_ERR_ARG, "passkey: length %d is shorter than the needle and "
                                  "question%s with a %d-digit key (%d tokens)", T,
                                  t->query_first ? "s" : "", t->key_len,
                                  passkey_overhead(t, t->query_first != 0));
        return RWKV_OK;
    case RWKV_TASK_MQAR:
        if (t->n_pairs < 1 || t->n_queries < 1 || t->n_queries > t->n_pairs)
            return rwkv_error_set(RWKV_ERR_ARG, "mqar: need 1 <= queries (%d) <= pairs (%d)",
                                  t->n_queries, t->n_pairs);
        if (t->n_pairs > t->vocab / 2 - 1)
            return rwkv_error_set(RWKV_ERR_ARG, "mqar: %d pairs need %d distinct keys but vocab %d "
                                  "has %d", t->n_pairs, t->n_pairs, t->vocab, t->vocab / 2 - 1);
        if (2 * t->n_pairs + 2 * t->n_queries > T)
            return rwkv_error_set(RWKV_ERR_ARG, "mqar: length %d cannot hold %d pairs and %d "
                                  "queries (%d tokens)", T, t->n_pairs, t->n_queries,
                                  2 * t->n_pairs + 2 * t->n_queries);
        return RWKV_OK;
    case RWKV_TASK_COPY:
        if (t->span_len < 1 || 2 * t->span_len + 1 > T)
            return rwkv_error_set(RWKV_ERR_ARG, "copy: span %d does not fit twice in length %d",
                                  t->span_len, T);
        return RWKV_OK;
    case RWKV_TASK_INDUCTION: return RWKV_OK;
    }
    return rwkv_error_set(RWKV_ERR_ARG, "unknown task kind %d", (int)t->kind);
}

static int put_str(int *tokens, int at, const char *s, int n) {
    for (int i = 0; i < n; i++) tokens[at + i] = (uint8_t)s[i];
    return at + n;
}

// The filler: `n` bytes from offset `off` of the haystack, wrapping around.
static int put_filler(const rwkv_task *t, int *tokens, int at, size_t off, int n) {
    const uint8_t *h = t->filler ? t->filler : (const uint8_t *)BUILTIN_FILLER;
    size_t hn = t->filler ? t->filler_len : (size_t)SLEN(BUILTIN_FILLER);
    for (int i = 0; i < n; i++) tokens[at + i] = h[(off + (size_t)i) % hn];
    return at + n;
}

// Layout: [QUESTION] filler[0:p] NEEDLE(key) filler[p:F] QUESTION ANSWER_HEAD key.
static void sample_passkey(const rwkv_task *t, gsl_rng *rng, int *tok, uint8_t *ans, int T,
                           rwkv_task_info *info) {
    size_t hn = t->filler ? t->filler_len : (size_t)SLEN(BUILTIN_FILLER);
    int qf = t->query_first == RWKV_TASK_QUERY_MIXED ? (int)gsl_rng_uniform_int(rng, 2) : t->query_first;
    size_t off = t->filler_random_offset ? gsl_rng_uniform_int(rng, hn) : 0;
    double depth = t->depth == RWKV_TASK_DEPTH_RANDOM ? gsl_rng_uniform(rng) : t->depth;
    char key[PASSKEY_MAX_DIGITS];
    for (int i = 0; i < t->key_len; i++) key[i] = (char)('0' + gsl_rng_uniform_int(rng, 10));
    int F = T - passkey_overhead(t, qf);
    int p = (int)(depth * F + 0.5); // filler tokens before the needle
    int at = qf ? put_str(tok, 0, QUESTION, SLEN(QUESTION)) : 0;
    at = put_filler(t, tok, at, off, p);
    info->needle_pos = at;
    info->depth = depth;
    info->query_first = qf;
    // [Q] filler[0:p] is the same for every key; a mixed order shares nothing.
    info->shared_prefix = (t->filler_random_offset || t->query_first == RWKV_TASK_QUERY_MIXED) ? 0 : at;
    at = put_str(tok, at, NEEDLE_HEAD, SLEN(NEEDLE_HEAD));
    at = put_str(tok, at, key, t->key_len);
    at = put_str(tok, at, NEEDLE_TAIL, SLEN(NEEDLE_TAIL));
    at = put_filler(t, tok, at, off + (size_t)p, F - p);
    at = put_str(tok, at, QUESTION, SLEN(QUESTION));
    at = put_str(tok, at, ANSWER_HEAD, SLEN(ANSWER_HEAD));
    for (int i = 0; i < t->key_len; i++) ans[at + i] = 1;
    put_str(tok, at, key, t->key_len);
}

static int rand_token(gsl_rng *rng, int lo, int hi) { // uniform in [lo, hi)
    return lo + (int)gsl_rng_uniform_int(rng, (unsigned long)(hi - lo));
}

static rwkv_status sample_mqar(const rwkv_task *t, gsl_rng *rng, int *tok, uint8_t *ans, int T) {
    int N = t->n_pairs, Q = t->n_queries, half = t->vocab / 2;
    int slots = (T - 2 * N) / 2;
    int *keys = malloc((size_t)(half - 1) * sizeof *keys);
    int *vals = malloc((size_t)N * sizeof *vals), *which = malloc((size_t)N * sizeof *which);
    int *all = malloc((size_t)slots * sizeof *all), *slot = malloc((size_t)Q * sizeof *slot);
    rwkv_status st = RWKV_OK;
    if (!keys || !vals || !which || !all || !slot) {
        st = rwkv_error_set(RWKV_ERR_NOMEM, "mqar: out of memory for length %d", T);
        goto done;
    }
    for (int i = 0; i < half - 1; i++) keys[i] = 1 + i;
    gsl_ran_shuffle(rng, keys, (size_t)(half - 1), sizeof *keys); // the first N are distinct keys
    for (int i = 0; i < N; i++) {
        vals[i] = rand_token(rng, half, t->vocab);
        tok[2 * i] = keys[i];
        tok[2 * i + 1] = vals[i];
        which[i] = i;
    }
    for (int i = 0; i < slots; i++) all[i] = i;
    gsl_ran_choose(rng, slot, (size_t)Q, all, (size_t)slots, sizeof *slot); // sorted slots
    gsl_ran_shuffle(rng, which, (size_t)N, sizeof *which);                // pairs asked, in order
    for (int i = 2 * N; i < T; i++) tok[i] = RWKV_TASK_PAD;
    for (int q = 0; q < Q; q++) {
        int at = 2 * N + 2 * slot[q];
        tok[at] = keys[which[q]];
        tok[at + 1] = vals[which[q]];
        ans[at + 1] = 1;
    }
done:
    free(keys); free(vals); free(which); free(all); free(slot);
    return st;
}

static void sample_copy(const rwkv_task *t, gsl_rng *rng, int *tok, uint8_t *ans, int T) {
    int S = t->span_len, start = T - 2 * S - 1;
    for (int i = 0; i < start + S; i++) tok[i] = rand_token(rng, 1, t->vocab);
    tok[start + S] = RWKV_TASK_PAD;
    for (int i = 0; i < S; i++) {
        tok[start + S + 1 + i] = tok[start + i];
        ans[start + S + 1 + i] = 1;
    }
}

// A and B (B != A) are drawn first; noise avoids A so that "A" is followed by B only once before T-2.
static void sample_induction(const rwkv_task *t, gsl_rng *rng, int *tok, uint8_t *ans, int T) {
    int a = rand_token(rng, 1, t->vocab), b;
    do b = rand_token(rng, 1, t->vocab); while (b == a);
    int p = (int)gsl_rng_uniform_int(rng, (unsigned long)(T - 3)); // 0 .. T-4
    for (int i = 0; i < T - 2; i++) {
        int x;
        do x = rand_token(rng, 1, t->vocab); while (x == a);
        tok[i] = x;
    }
    tok[p] = a;
    tok[p + 1] = b;
    tok[T - 2] = a;
    tok[T - 1] = b;
    ans[T - 1] = 1;
}

rwkv_status rwkv_task_sample(const rwkv_task *t, gsl_rng *rng, int *tokens, uint8_t *answer,
                             int T, rwkv_task_info *info) {
    rwkv_status st = rwkv_task_check(t, T);
    if (st) return st;
    rwkv_task_info dummy;
    if (!info) info = &dummy;
    info->shared_prefix = 0;
    info->needle_pos = -1;
    info->depth = 0;
    info->query_first = 0;
    memset(answer, 0, (size_t)T);
    switch (t->kind) {
    case RWKV_TASK_PASSKEY: sample_passkey(t, rng, tokens, answer, T, info); break;
    case RWKV_TASK_MQAR: return sample_mqar(t, rng, tokens, answer, T);
    case RWKV_TASK_COPY: sample_copy(t, rng, tokens, answer, T); break;
    case RWKV_TASK_INDUCTION: sample_induction(t, rng, tokens, answer, T); break;
    }
    return RWKV_OK;
}
