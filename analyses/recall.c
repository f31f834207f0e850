// recall.c: scoring task examples in sequential mode, with a prefix-state cache.
// Per length, all examples of all depths are drawn first and ordered by their shared prefix
// (task.h): a base state walks forward along that prefix once, and each example starts from
// a copy of it instead of from the zero state.
#include "recall.h"
#include "../core/inspect/intervene.h"
#include "../datasets/dataset.h"

#include <gsl/gsl_cdf.h>
#include <stdlib.h>
#include <string.h>

#define CELL_SEED_MUL 1000003UL // spreads cells over seeds; any odd constant works

unsigned long rwkv_recall_cell_seed(unsigned long seed, int li, int di) {
    return seed * CELL_SEED_MUL + (unsigned long)li * 1009UL + (unsigned long)di;
}

void rwkv_recall_wilson(int64_t k, int64_t n, double z, double *lo, double *hi) {
    if (n <= 0) { *lo = 0, *hi = 1; return; }
    double p = (double)k / (double)n, z2n = z * z / (double)n;
    double centre = p + z2n / 2, half = z * sqrt(p * (1 - p) / (double)n + z2n / (4 * (double)n));
    *lo = fmax(0, (centre - half) / (1 + z2n));
    *hi = fmin(1, (centre + half) / (1 + z2n));
}

double rwkv_recall_mcnemar_p(int64_t b, int64_t c) {
    if (b + c == 0) return 1;
    int64_t m = b < c ? b : c;
    return fmin(1, 2 * gsl_cdf_binomial_P((unsigned)m, 0.5, (unsigned)(b + c))); // P(X <= m)
}

// log softmax of logits[target] in double, and whether target is the first argmax.
static double log_prob(const rwkv_real *logits, int V, int target, int *is_argmax) {
    int best = 0;
    for (int i = 1; i < V; i++)
        if (logits[i] > logits[best]) best = i;
    double mx = logits[best], sum = 0;
    for (int i = 0; i < V; i++) sum += exp((double)logits[i] - mx); // sum e^{z_i - max}
    *is_argmax = best == target;
    return (double)logits[target] - mx - log(sum); // z_t - logsumexp(z)
}

// rwkv_recall_score with interventions (iv may be NULL: a plain sequential run).
static rwkv_status score(const rwkv_model *m, rwkv_state *state, const int *tokens, const uint8_t *answer, int T,
                         int start, rwkv_workspace *ws, rwkv_real *logits, double *logprob, int *correct,
                         int *n_correct, rwkv_intervene_list *iv) {
    int pos = start, all = 1, any = 0, hits = 0;
    double lp = 0;
    for (int a = 0; a < T; a++) {
        if (!answer[a]) continue;
        if (a <= pos)
            return rwkv_error_set(RWKV_ERR_ARG, "recall: answer at position %d but scoring "
                                  "starts at %d (need at least one token before it)", a, start);
        // Feed tokens[pos..a-1]; the logits after a-1 predict tokens[a].
        rwkv_status st = rwkv_intervene_forward(m, state, tokens + pos, a - pos, pos, logits,
                                                RWKV_LOGITS_LAST, iv, ws, 1);
        if (st) return st;
        int hit;
        lp += log_prob(logits, m->cfg.n_vocab, tokens[a], &hit);
        all &= hit;
        hits += hit;
        any = 1;
        pos = a;
    }
    if (!any) return rwkv_error_set(RWKV_ERR_ARG, "recall: example has no answer tokens");
    *logprob += lp;
    *correct = all;
    if (n_correct) *n_correct = hits;
    return RWKV_OK;
}

rwkv_status rwkv_recall_score(const rwkv_model *m, rwkv_state *state, const int *tokens,
                              const uint8_t *answer, int T, int start, rwkv_workspace *ws,
                              rwkv_real *logits, double *logprob, int *correct, int *n_correct) {
    return score(m, state, tokens, answer, T, start, ws, logits, logprob, correct, n_correct, NULL);
}

typedef struct {
    int *tokens;      // (T)
    uint8_t *answer;  // (T)
    int cell;         // depth index within the length
    int trial;        // index within the cell
    int prefix;       // usable cached prefix: shared_prefix capped before the first answer
    int n_answer;
} example;

static int cmp_prefix(const void *a, const void *b) {
    const example *x = a, *y = b;
    return x->prefix != y->prefix ? (x->prefix > y->prefix) - (x->prefix < y->prefix)
                                  : (x->cell > y->cell) - (x->cell < y->cell);
}

// Draws every example of length index li (n_depths * trials of them) into ex.
static rwkv_status draw_length(const rwkv_recall_opts *o, int li, example *ex, int *buf,
                               uint8_t *abuf) {
    int T = o->lengths[li];
    rwkv_task t = o->task;
    t.len = T;
    for (int di = 0; di < o->n_depths; di++) {
        if (t.kind == RWKV_TASK_PASSKEY) t.depth = o->depths[di];
        gsl_rng *rng = rwkv_dataset_rng(rwkv_recall_cell_seed(o->seed, li, di));
        if (!rng) return rwkv_error_set(RWKV_ERR_NOMEM, "recall: cannot allocate an rng");
        for (int k = 0; k < o->trials; k++) {
            example *e = ex + (size_t)di * o->trials + k;
            e->tokens = buf + ((size_t)di * o->trials + k) * T;
            e->answer = abuf + ((size_t)di * o->trials + k) * T;
            e->cell = di;
            e->trial = k;
            rwkv_task_info info;
            rwkv_status st = rwkv_task_sample(&t, rng, e->tokens, e->answer, T, &info);
            if (st) { gsl_rng_free(rng); return rwkv_error_wrap(st, "recall length %d: ", T); }
            int first = 0;
            while (first < T && !e->answer[first]) first++;
            e->prefix = info.shared_prefix < first ? info.shared_prefix : first - 1;
            if (e->prefix < 0) e->prefix = 0;
            e->n_answer = 0;
            for (int i = 0; i < T; i++) e->n_answer += e->answer[i];
        }
        gsl_rng_free(rng);
    }
    return RWKV_OK;
}

// Scores the examples of one length in prefix order. base holds the state after
// base_tok[0..b) (the prefix walked so far).
static rwkv_status score_length(const rwkv_model *m, const rwkv_recall_opts *o, int li, example *ex,
                                int n, int T, rwkv_state *base, rwkv_state *work,
                                rwkv_workspace *ws, rwkv_real *logits, rwkv_recall_cell *cells,
                                rwkv_recall_stats *stats, rwkv_intervene_list *iv) {
    if (o->use_cache) qsort(ex, (size_t)n, sizeof *ex, cmp_prefix);
    rwkv_state_reset(base);
    const int *base_tok = NULL;
    int b = 0;
    for (int i = 0; i < n; i++) {
        example *e = ex + i;
        int target = o->use_cache ? e->prefix : 0;
        // The cached prefix must be this example's prefix too; else start over.
        if (b > 0 && (b > target || memcmp(base_tok, e->tokens, (size_t)b * sizeof(int)))) {
            rwkv_state_reset(base);
            b = 0;
        }
        if (target > b) {
            // Interventions depend on the position only, so the cached prefix holds them too.
            rwkv_status st = rwkv_intervene_forward(m, base, e->tokens + b, target - b, b, logits,
                                                    RWKV_LOGITS_NONE, iv, ws, 1);
            if (st) return st;
            stats->tokens_run += target - b;
            b = target;
        }
        base_tok = e->tokens;
        rwkv_state_copy(work, base);
        double lp = 0;
        int ok = 0, hits = 0;
        rwkv_status st = score(m, work, e->tokens, e->answer, T, b, ws, logits, &lp, &ok, &hits, iv);
        if (st) return st;
        int last = T - 1;
        while (!e->answer[last]) last--;
        stats->tokens_run += last - b; // the scorer feeds up to the last answer's predecessor
        stats->tokens_total += last;
        rwkv_recall_cell *c = cells + e->cell;
        c->correct += ok;
        c->logprob += lp;
        c->token_logprob += lp / e->n_answer;
        c->answer_tokens += e->n_answer;
        c->tokens_correct += hits;
        if (o->examples)
            o->examples[((size_t)li * o->n_depths + e->cell) * o->trials + e->trial] =
                (rwkv_recall_example){ok, lp, e->n_answer, hits};
    }
    return RWKV_OK;
}

rwkv_status rwkv_recall_run(const rwkv_model *m, const rwkv_recall_opts *o, rwkv_recall_cell *cells,
                            rwkv_recall_stats *stats, void (*progress)(int done, int total)) {
    if (o->n_lengths < 1 || o->n_depths < 1 || o->trials < 1)
        return rwkv_error_set(RWKV_ERR_ARG, "recall: need at least one length, depth and trial");
    if (o->task.vocab > m->cfg.n_vocab)
        return rwkv_error_set(RWKV_ERR_ARG, "recall: the %s task uses tokens < %d but the model "
                              "%s has a vocabulary of %d (model and task tokenizer do not match)",
                              rwkv_task_kind_name(o->task.kind), o->task.vocab,
                              m->path[0] ? m->path : "", m->cfg.n_vocab);
    // The tasks are byte-level: a model with a subword tokenizer would read them as other words.
    if (m->tokenizer[0] && strcmp(m->tokenizer, "bytes"))
        return rwkv_error_set(RWKV_ERR_ARG, "recall: model %s uses the tokenizer '%s' but the tasks "
                              "are byte-level (model and tokenizer do not match)", m->path, m->tokenizer);
    if (o->task.kind == RWKV_TASK_PASSKEY && m->cfg.n_vocab != 256)
        return rwkv_error_set(RWKV_ERR_ARG, "recall: passkey is byte-level text but model %s has a "
                              "vocabulary of %d, not 256 bytes (model and tokenizer do not match)",
                              m->path, m->cfg.n_vocab);
    int maxT = 0;
    for (int li = 0; li < o->n_lengths; li++) {
        rwkv_task t = o->task;
        for (int di = 0; di < o->n_depths; di++) {
            if (t.kind == RWKV_TASK_PASSKEY) t.depth = o->depths[di];
            rwkv_status st = rwkv_task_check(&t, o->lengths[li]);
            if (st) return st;
        }
        if (o->lengths[li] > maxT) maxT = o->lengths[li];
    }
    memset(stats, 0, sizeof *stats);
    size_t n = (size_t)o->n_depths * o->trials;
    example *ex = rwkv_calloc(n, sizeof *ex, "recall examples");
    int *buf = rwkv_calloc(n * maxT, sizeof *buf, "recall tokens");
    uint8_t *abuf = rwkv_calloc(n * maxT, 1, "recall answers");
    rwkv_real *logits = rwkv_calloc((size_t)m->cfg.n_vocab, sizeof *logits, "recall logits");
    rwkv_state *base = NULL, *work = NULL;
    rwkv_workspace *ws = NULL;
    rwkv_status st = (!ex || !buf || !abuf || !logits) ? RWKV_ERR_NOMEM : RWKV_OK;
    if (!st && !(st = rwkv_state_alloc(&base, m->cfg)) && !(st = rwkv_state_alloc(&work, m->cfg)))
        st = rwkv_workspace_alloc(&ws, m->cfg, 1);
    for (int li = 0; li < o->n_lengths && !st; li++) {
        rwkv_recall_cell *row = cells + (size_t)li * o->n_depths;
        for (int di = 0; di < o->n_depths; di++) {
            memset(row + di, 0, sizeof row[di]);
            row[di].length = o->lengths[li];
            row[di].depth = o->task.kind == RWKV_TASK_PASSKEY ? o->depths[di] : NAN;
            row[di].trials = o->trials;
        }
        if ((st = draw_length(o, li, ex, buf, abuf))) break;
        rwkv_intervene_list *iv = NULL; // bound to this length
        if (o->n_interventions &&
            (st = rwkv_intervene_list_from_specs(&iv, m->cfg, o->lengths[li], o->interventions, o->n_interventions)))
            break;
        st = score_length(m, o, li, ex, (int)n, o->lengths[li], base, work, ws, logits, row, stats, iv);
        rwkv_intervene_list_free(iv);
        for (int di = 0; di < o->n_depths; di++) {
            row[di].accuracy = (double)row[di].correct / o->trials;
            rwkv_recall_wilson(row[di].correct, o->trials, RWKV_RECALL_Z95, &row[di].ci_lo, &row[di].ci_hi);
            row[di].logprob /= o->trials;
            row[di].token_logprob /= o->trials;
            row[di].token_accuracy = row[di].answer_tokens ? (double)row[di].tokens_correct / row[di].answer_tokens : 0;
        }
        if (progress) progress(li + 1, o->n_lengths);
    }
    rwkv_workspace_free(ws);
    rwkv_state_free(base);
    rwkv_state_free(work);
    free(ex);
    free(buf);
    free(abuf);
    free(logits);
    return st;
}
