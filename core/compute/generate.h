// generate.h: sampling a continuation: the prompt in parallel mode, then one token at a time
// from the recurrent state (sequential mode), each drawn by rwkv_sample_token with a uniform
// from GSL's MT19937 seeded with `seed` (the same seed gives the same tokens).
#ifndef RWKV_GENERATE_H
#define RWKV_GENERATE_H

#include "forward.h"

#define RWKV_GENERATE_CHUNK 512 // prompt tokens per parallel call

typedef struct {
    int64_t n;              // tokens to sample
    double temperature;     // 0 = greedy
    double top_p;           // nucleus mass in (0, 1]
    unsigned long seed;
    rwkv_hook *hook;        // NULL, or a hook (interventions) whose positions count over the
                            // prompt and then the sampled tokens
    // Called with each sampled token in order; a non-OK return stops the run with that status.
    rwkv_status (*on_token)(void *ctx, int token);
    void *ctx;
} rwkv_generate_opts;

// Feeds prompt (T >= 1 tokens) from `state` and samples o->n tokens into tokens (o->n, may
// be NULL); each sampled token is fed too, so state ends after the prompt and all of them.
rwkv_status rwkv_generate(const rwkv_model *m, rwkv_state *state, const int *prompt, int64_t T,
                          const rwkv_generate_opts *o, int *tokens);

#endif
