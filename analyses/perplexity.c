// perplexity.c: mean next-token cross-entropy over windows (see perplexity.h).
#include "perplexity.h"

#include "../core/compute/sample.h"

#include <stdlib.h>

// Tokens a window [w0, w1) predicts: ids[w0+1 .. w1-1].
static int64_t predicted(int64_t T, int64_t window) {
    int64_t n = 0;
    for (int64_t w0 = 0; w0 + 1 < T; w0 += window) n += (w0 + window < T ? w0 + window : T) - w0 - 1;
    return n;
}

rwkv_status rwkv_perplexity_eval(rwkv_perplexity *out, const rwkv_model *m, const int *tokens, int64_t T,
                                 const rwkv_perplexity_opts *o) {
    *out = (rwkv_perplexity){0};
    rwkv_perplexity_opts d = {0};
    if (!o) o = &d;
    if (T < 2) return rwkv_error_set(RWKV_ERR_ARG, "perplexity: need at least 2 tokens, have %lld", (long long)T);
    if (o->ctx < 0 || o->ctx == 1)
        return rwkv_error_set(RWKV_ERR_ARG, "perplexity: a window of %lld tokens predicts nothing", (long long)o->ctx);
    const int V = m->cfg.n_vocab;
    rwkv_state *s = NULL;
    rwkv_workspace *ws = NULL;
    rwkv_real *logits = rwkv_calloc((size_t)RWKV_PERPLEXITY_CHUNK * V, sizeof *logits, "perplexity logits");
    rwkv_status st = logits ? RWKV_OK : RWKV_ERR_NOMEM;
    if (!st) st = rwkv_state_alloc(&s, m->cfg);
    if (!st) st = rwkv_workspace_alloc(&ws, m->cfg, RWKV_PERPLEXITY_CHUNK);
    int64_t window = o->ctx ? o->ctx : T, total = predicted(T, window);
    for (int64_t w0 = 0; !st && w0 + 1 < T; w0 += window) {
        int64_t w1 = w0 + window < T ? w0 + window : T;
        rwkv_state_reset(s);
        for (int64_t t = w0; !st && t + 1 < w1; t += RWKV_PERPLEXITY_CHUNK) {
            int k = (int)(w1 - 1 - t < RWKV_PERPLEXITY_CHUNK ? w1 - 1 - t : RWKV_PERPLEXITY_CHUNK);
            st = rwkv_forward_par(m, s, tokens + t, k, logits, RWKV_LOGITS_ALL, NULL, ws);
            for (int i = 0; !st && i < k; i++) // -log p(next) = logsumexp(l) - l_next
                out->nll -= rwkv_sample_log_prob(logits + (size_t)i * V, V, tokens[t + 1 + i]);
            out->n += st ? 0 : k;
            if (!st && o->progress) o->progress(o->progress_ctx, out->n, total);
        }
    }
    if (!st) out->mean = out->nll / (double)out->n;
    free(logits);
    rwkv_state_free(s);
    rwkv_workspace_free(ws);
    return st;
}
