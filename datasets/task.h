// task.h: seeded synthetic recall tasks (passkey, mqar, copy, induction) for training and
// scoring. An example is T tokens plus an answer mask: answer[t] = 1 when tokens[t] is to be
// predicted (from the logits after token t-1). Byte-level by default (vocab 256), so that the
// tiny byte models can learn them. The same rng state gives the same example.
#ifndef RWKV_TASK_H
#define RWKV_TASK_H

#include "../core/base/base.h"

#include <gsl/gsl_rng.h>

typedef enum { RWKV_TASK_PASSKEY, RWKV_TASK_MQAR, RWKV_TASK_COPY, RWKV_TASK_INDUCTION } rwkv_task_kind;

#define RWKV_TASK_DEPTH_RANDOM (-1.0) // passkey depth drawn uniformly per example
#define RWKV_TASK_PAD 0               // mqar filler token and copy delimiter
#define RWKV_TASK_QUERY_MIXED 2       // passkey query_first drawn per example (training on both)

typedef struct {
    rwkv_task_kind kind;
    int len;   // T, tokens per example (exact)
    int vocab; // tokens are < vocab (passkey is text: needs 256)
    // passkey: "The pass key is 12345. Remember it. " hidden in filler, then
    // "What is the pass key? The pass key is 12345" (the digits are the answer).
    int key_len;      // digits in the key
    double depth;     // fraction of the filler before the needle, in [0,1], or DEPTH_RANDOM
    int query_first;  // 1: the question also comes before the context; RWKV_TASK_QUERY_MIXED: either, 50/50
    uint8_t *filler;  // (filler_len) haystack bytes, owned; NULL = the built-in sentences
    size_t filler_len;
    int filler_random_offset; // 1: each example starts at a random filler offset (training)
    // mqar (Zoology): n_pairs key-value pairs, then n_queries (key, value) pairs in random
    // 2-token slots of the rest (others hold PAD). Keys in [1, vocab/2), values in [vocab/2, vocab).
    int n_pairs, n_queries;
    // copy: noise, a span of span_len random tokens, PAD, the span again (the answer).
    // induction: random tokens with "A B" once and A at T-2; B at T-1 is the answer.
    int span_len;
} rwkv_task;

// What an example was made of, for scoring and grouping.
typedef struct {
    // Leading tokens that do not depend on the rng: two examples of one configuration (any
    // len and depth) with shared_prefix a <= b agree on their first a tokens. 0 = none.
    int shared_prefix;
    int needle_pos;    // passkey: first token of the needle; others -1
    double depth;      // passkey: the depth used
    int query_first;   // passkey: the prompt order used
} rwkv_task_info;

// Defaults for each task (len 256, vocab 256, key_len 5, depth 0.5, n_pairs 8, ...).
void rwkv_task_defaults(rwkv_task *t, rwkv_task_kind kind);
rwkv_status rwkv_task_parse_kind(const char *name, rwkv_task_kind *out);
const char *rwkv_task_kind_name(rwkv_task_kind kind);
// Uses the bytes of `path` as the passkey haystack (e.g. tinyshakespeare).
rwkv_status rwkv_task_set_filler_file(rwkv_task *t, const char *path);
// RWKV_ERR_ARG naming the field when the configuration cannot produce an example of len T.
rwkv_status rwkv_task_check(const rwkv_task *t, int T);
// Draws one example of T tokens (T may differ from t->len, e.g. for training windows).
// tokens (T), answer (T); info may be NULL.
rwkv_status rwkv_task_sample(const rwkv_task *t, gsl_rng *rng, int *tokens, uint8_t *answer,
                             int T, rwkv_task_info *info);
// Training stream: n_examples examples of t->len tokens drawn from rwkv_dataset_rng(seed)
// (datasets/dataset.h), concatenated; mask[i] = 1 where tokens[i] is an answer token (the
// loss weight of predicting tokens[i], as core/train/data.h rwkv_data_from_tokens takes it).
// tokens and mask are malloc'd, (n_examples * t->len) each.
rwkv_status rwkv_task_stream(const rwkv_task *t, unsigned long seed, int n_examples, int **tokens,
                             rwkv_real **mask, int64_t *n);
void rwkv_task_free(rwkv_task *t); // frees the filler; the struct itself is the caller's

#endif
