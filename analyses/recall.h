// recall.h: recall sweeps. For each (length, depth) cell, `trials` seeded task examples are
// scored in sequential (RNN) mode, so memory stays flat in the length: exact match (every
// answer token is the argmax of the logits before it, i.e. greedy decoding reproduces the
// answer) and the answer log-probability (summed over answer tokens, teacher-forced).
// Examples that share a prefix (passkey with a fixed haystack) reuse a cached prefix state.
#ifndef RWKV_RECALL_H
#define RWKV_RECALL_H

#include "../core/compute/forward.h"
#include "../datasets/task.h"

// One example's outcome (for paired tests between runs on the same examples).
typedef struct {
    int correct;           // 1 if every answer token is the argmax
    double logprob;        // summed answer log-probability (nats)
    int answer_tokens, tokens_correct;
} rwkv_recall_example;

typedef struct {
    rwkv_task task;        // the task; len and depth are set per cell
    const int *lengths;    // (n_lengths)
    int n_lengths;
    const double *depths;  // (n_depths) passkey only; other tasks use one row (depth ignored)
    int n_depths;
    int trials;
    unsigned long seed;
    int use_cache;         // 1: reuse prefix states across examples (the default)
    const char *const *interventions; // (n_interventions) intervention specs (core/inspect/
    int n_interventions;              // intervene.h), positions within each example
    rwkv_recall_example *examples;    // (n_lengths, n_depths, trials) each example's outcome, or NULL
} rwkv_recall_opts;

#define RWKV_RECALL_Z95 1.959963984540054 // the standard normal's 97.5% quantile

// Wilson score interval of k successes in n trials at normal quantile z (RWKV_RECALL_Z95
// for 95%): (p + z^2/2n -+ z sqrt(p(1-p)/n + z^2/4n^2)) / (1 + z^2/n), p = k/n.
void rwkv_recall_wilson(int64_t k, int64_t n, double z, double *lo, double *hi);
// Exact two-sided McNemar test on paired outcomes: b and c are the discordant pairs (one run
// right, the other wrong); p = min(1, 2 P(X <= min(b, c))), X ~ Binomial(b + c, 1/2).
double rwkv_recall_mcnemar_p(int64_t b, int64_t c);

typedef struct {
    int length;
    double depth;          // NAN for tasks without a depth
    int trials, correct;
    double accuracy;       // correct / trials
    double ci_lo, ci_hi;   // its 95% Wilson interval
    double logprob;        // mean over trials of the summed answer log-probability (nats)
    double token_logprob;  // mean per answer token
    int64_t answer_tokens, tokens_correct; // over all trials
    double token_accuracy; // tokens_correct / answer_tokens (partial credit, e.g. for mqar)
} rwkv_recall_cell;

typedef struct {
    int64_t tokens_run;    // tokens fed to the model
    int64_t tokens_total;  // tokens in all examples (what a run without the cache feeds)
} rwkv_recall_stats;

// The rng seed of cell (li, di): its trials are drawn in order from rwkv_dataset_rng(seed).
unsigned long rwkv_recall_cell_seed(unsigned long seed, int li, int di);
// Scores tokens[start..T) given `state` after tokens[0..start): adds the answer tokens'
// log-probabilities to *logprob, sets *correct (1 if every answer token is the argmax) and
// *n_correct (answer tokens that are the argmax; may be NULL).
// state is advanced; logits is scratch (V). Needs start < first answer position.
rwkv_status rwkv_recall_score(const rwkv_model *m, rwkv_state *state, const int *tokens,
                              const uint8_t *answer, int T, int start, rwkv_workspace *ws,
                              rwkv_real *logits, double *logprob, int *correct, int *n_correct);
// Runs the sweep; cells is (n_lengths * n_depths), row-major over (length, depth).
// progress (may be NULL) is called after each length with the lengths done.
rwkv_status rwkv_recall_run(const rwkv_model *m, const rwkv_recall_opts *o, rwkv_recall_cell *cells,
                            rwkv_recall_stats *stats, void (*progress)(int done, int total));

// ---- outputs (recall_out.c): the CSVs, the paired comparison of prompt orders, the plots.
// One sweep per prompt order: cells[o] (n_cells) and examples[o] (n_cells, trials) of order o,
// whose CSV name is order_names[o] ("query_after", "query_first").

#include <stdio.h>

#define RWKV_RECALL_CSV_HEADER "task,order,length,depth,trials,correct,accuracy,logprob,token_logprob," \
                               "token_accuracy,acc_ci_lo,acc_ci_hi"
#define RWKV_RECALL_EXAMPLES_HEADER "task,order,length,depth,trial,correct,logprob,answer_tokens,tokens_correct"

// The header and one row per cell of every order (docs/analysis-outputs.md).
void rwkv_recall_write_cells(FILE *f, const char *task, const char *const *order_names,
                             rwkv_recall_cell *const *cells, int orders, int n_cells);
// The header and one row per example: (length, depth, trial) names the same seeded draw in
// every run, so two runs pair up example by example.
void rwkv_recall_write_examples(FILE *f, const char *task, const char *const *order_names,
                                rwkv_recall_cell *const *cells, rwkv_recall_example *const *examples,
                                int orders, int n_cells, int trials);

// Two prompt orders at one length, over all its depths: each order's pooled accuracy with
// its 95% Wilson interval, and the exact McNemar test on the paired examples.
typedef struct {
    int length;
    int64_t n;            // examples per order
    int64_t correct[2];
    double acc[2], lo[2], hi[2];
    int64_t b, c;         // discordant pairs: only order 0 right, only order 1 right
    double p;             // exact McNemar p
} rwkv_recall_pair;
// Length li of a sweep with n_depths depths and `trials` trials per cell.
void rwkv_recall_paired(rwkv_recall_pair *out, rwkv_recall_cell *const cells[2],
                        rwkv_recall_example *const examples[2], int li, int n_depths, int trials);

// <stem><suffix> beside a CSV path (its extension replaced): "r.csv", "_examples.csv" -> "r_examples.csv".
void rwkv_recall_sibling(char *buf, size_t n, const char *csv, const char *suffix);
// The plots beside csv: <stem>_heatmap.png (depth x length accuracy; _heatmap_query_first.png
// for order 1) when there are depths, and <stem>_accuracy.png (accuracy pooled over depths vs
// length, 95% Wilson error bars, one curve per order), each with its data (analyses/plot.h).
rwkv_status rwkv_recall_plots(const char *csv, const char *task, rwkv_recall_cell *const *cells, int orders,
                              const int *lengths, int n_lengths, const double *depths, int n_depths);

#endif
