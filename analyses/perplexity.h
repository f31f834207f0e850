// perplexity.h: a model's mean next-token cross-entropy on a token sequence, the loss a
// language model is trained on: -(1/n) sum_t log p(x_{t+1} | x_0 .. x_t), in nats.
// Windows of ctx tokens each start from the zero state (the training setting) and predict
// their own ctx - 1 next tokens; ctx 0 is one stream with the state carried throughout.
#ifndef RWKV_PERPLEXITY_H
#define RWKV_PERPLEXITY_H

#include "../core/compute/forward.h"

#define RWKV_PERPLEXITY_CHUNK 256 // tokens per parallel call: bounds the (chunk, V) logits

typedef struct {
    int64_t ctx; // window length; 0 = one stream
    // Optional: called after each forward call with the tokens predicted so far and in all.
    void (*progress)(void *ctx, int64_t done, int64_t total);
    void *progress_ctx;
} rwkv_perplexity_opts;

typedef struct {
    double nll;       // sum of -log p over the predicted tokens (nats)
    int64_t n;        // tokens predicted
    double mean;      // nll / n: the cross-entropy in nats per token
} rwkv_perplexity;

// Evaluates tokens (T >= 2) in parallel mode; o may be NULL (one stream).
rwkv_status rwkv_perplexity_eval(rwkv_perplexity *out, const rwkv_model *m, const int *tokens, int64_t T,
                                 const rwkv_perplexity_opts *o);

#endif
