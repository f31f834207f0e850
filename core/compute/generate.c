// generate.c: prompt, then sampling token by token (see generate.h).
#include "generate.h"

#include "sample.h"

#include <gsl/gsl_rng.h>
#include <stdlib.h>

// One forward call with the hook's positions starting at pos0.
static rwkv_status step(const rwkv_model *m, rwkv_state *s, const int *tokens, int64_t T, int64_t pos0,
                        rwkv_real *logits, const rwkv_generate_opts *o, rwkv_workspace *ws, int seq) {
    if (o->hook) o->hook->pos = pos0;
    return (seq ? rwkv_forward_seq : rwkv_forward_par)(m, s, tokens, T, logits, RWKV_LOGITS_LAST, o->hook, ws);
}

rwkv_status rwkv_generate(const rwkv_model *m, rwkv_state *state, const int *prompt, int64_t T,
                          const rwkv_generate_opts *o, int *tokens) {
    if (T < 1) return rwkv_error_set(RWKV_ERR_ARG, "generate: the prompt is empty");
    if (o->temperature < 0 || !(o->top_p > 0 && o->top_p <= 1))
        return rwkv_error_set(RWKV_ERR_ARG, "generate: temperature %g must be >= 0 and top_p %g in (0, 1]",
                              o->temperature, o->top_p);
    const int V = m->cfg.n_vocab;
    rwkv_workspace *ws = NULL;
    rwkv_real *logits = rwkv_calloc((size_t)V, sizeof *logits, "generate logits");
    double *probs = rwkv_calloc((size_t)V, sizeof *probs, "generate probabilities");
    int *order = rwkv_calloc((size_t)V, sizeof *order, "generate order");
    gsl_rng *rng = gsl_rng_alloc(gsl_rng_mt19937);
    rwkv_status st = logits && probs && order ? RWKV_OK : RWKV_ERR_NOMEM;
    if (!st && !rng) st = rwkv_error_set(RWKV_ERR_NOMEM, "generate: random number generator");
    if (!st) st = rwkv_workspace_alloc(&ws, m->cfg, (int)(T < RWKV_GENERATE_CHUNK ? T : RWKV_GENERATE_CHUNK));
    if (!st) {
        gsl_rng_set(rng, o->seed);
        st = step(m, state, prompt, T, 0, logits, o, ws, 0);
    }
    for (int64_t i = 0; !st && i < o->n; i++) {
        int next = rwkv_sample_token(logits, V, o->temperature, o->top_p, gsl_rng_uniform(rng), probs, order);
        if (tokens) tokens[i] = next;
        if (o->on_token) st = o->on_token(o->ctx, next);
        if (!st) st = step(m, state, &next, 1, T + i, logits, o, ws, 1);
    }
    gsl_rng_free(rng);
    rwkv_workspace_free(ws);
    free(logits);
    free(probs);
    free(order);
    return st;
}
