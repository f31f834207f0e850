// test_recall.c: the recall sweep against a direct re-scoring (one full sequential pass with
// all logits, log-softmax by hand), the prefix cache against no cache, and clear errors.
#include "analyses/recall.h"
#include "datasets/dataset.h"
#include "util.h"

#include <check.h>
#include <gsl/gsl_randist.h>
#include <stdlib.h>
#include <string.h>

static rwkv_model *random_model(int L, int C, int V, unsigned long seed) {
    rwkv_config cfg = {.n_layer = L, .n_embd = C, .n_ffn = 2 * C, .n_vocab = V};
    rwkv_model *m = NULL;
    ck_assert_int_eq(rwkv_model_alloc(&m, cfg), RWKV_OK);
    gsl_rng *r = rwkv_dataset_rng(seed);
    for (size_t i = 0; i < m->table.total; i++) m->block[i] = (rwkv_real)gsl_ran_gaussian(r, 0.5);
    for (int i = 0; i < L * C; i++) m->w.att_time_decay[i] = (rwkv_real)gsl_ran_flat(r, -4, 1);
    gsl_rng_free(r);
    rwkv_model_refresh(m);
    return m;
}

static const int LENGTHS[2] = {110, 131};
static const double DEPTHS[3] = {0, 0.5, 1};

static rwkv_recall_opts passkey_opts(void) {
    rwkv_recall_opts o = {.lengths = LENGTHS, .n_lengths = 2, .depths = DEPTHS, .n_depths = 3,
                          .trials = 3, .seed = 11, .use_cache = 1};
    rwkv_task_defaults(&o.task, RWKV_TASK_PASSKEY);
    o.task.key_len = 3;
    return o;
}

// Mean summed answer log-prob and correct count of cell (li, di), computed from scratch.
static int token_hits; // answer tokens that were the argmax in the last rescore()

// par: one parallel (GPT-mode) pass per example instead of a sequential one.
static void rescore_mode(const rwkv_model *m, const rwkv_recall_opts *o, int li, int di,
                         double *mean_lp, int *correct, int par) {
    int T = o->lengths[li], V = m->cfg.n_vocab;
    rwkv_task t = o->task;
    t.len = T;
    if (t.kind == RWKV_TASK_PASSKEY) t.depth = o->depths[di];
    gsl_rng *rng = rwkv_dataset_rng(rwkv_recall_cell_seed(o->seed, li, di));
    int *tok = malloc(T * sizeof *tok);
    uint8_t *ans = malloc(T);
    rwkv_real *logits = malloc((size_t)T * V * sizeof *logits);
    rwkv_state *s;
    rwkv_workspace *ws;
    ck_assert_int_eq(rwkv_state_alloc(&s, m->cfg), RWKV_OK);
    ck_assert_int_eq(rwkv_workspace_alloc(&ws, m->cfg, par ? T : 1), RWKV_OK);
    *mean_lp = 0;
    *correct = 0;
    token_hits = 0;
    for (int k = 0; k < o->trials; k++) {
        ck_assert_int_eq(rwkv_task_sample(&t, rng, tok, ans, T, NULL), RWKV_OK);
        rwkv_state_reset(s);
        ck_assert_int_eq((par ? rwkv_forward_par : rwkv_forward_seq)(m, s, tok, T, logits, RWKV_LOGITS_ALL, NULL, ws),
                         RWKV_OK);
        int ok = 1;
        for (int a = 1; a < T; a++) {
            if (!ans[a]) continue;
            const rwkv_real *z = logits + (size_t)(a - 1) * V;
            double mx = -INFINITY, sum = 0;
            int best = -1;
            for (int i = 0; i < V; i++) if (z[i] > mx) { mx = z[i]; best = i; }
            for (int i = 0; i < V; i++) sum += exp(z[i] - mx);
            *mean_lp += (z[tok[a]] - mx - log(sum)) / o->trials;
            ok &= best == tok[a];
            token_hits += best == tok[a];
        }
        *correct += ok;
    }
    rwkv_workspace_free(ws);
    rwkv_state_free(s);
    gsl_rng_free(rng);
    free(tok);
    free(ans);
    free(logits);
}

static void rescore(const rwkv_model *m, const rwkv_recall_opts *o, int li, int di, double *mean_lp,
                    int *correct) {
    rescore_mode(m, o, li, di, mean_lp, correct, 0);
}

START_TEST(sweep_equals_direct_rescoring) {
    rwkv_model *m = random_model(2, 32, 256, 3);
    rwkv_recall_opts o = passkey_opts();
    rwkv_recall_cell cells[6];
    rwkv_recall_stats stats;
    ck_assert_int_eq(rwkv_recall_run(m, &o, cells, &stats, NULL), RWKV_OK);
    for (int li = 0; li < 2; li++)
        for (int di = 0; di < 3; di++) {
            const rwkv_recall_cell *c = cells + li * 3 + di;
            double lp;
            int correct;
            rescore(m, &o, li, di, &lp, &correct);
            ck_assert_int_eq(c->length, LENGTHS[li]);
            ck_assert(c->depth == DEPTHS[di]);
            ck_assert_int_eq(c->correct, correct);
            ck_assert_double_eq_tol(c->accuracy, correct / 3.0, 1e-12);
            ck_assert_int_eq(c->answer_tokens, 3 * 3); // 3 trials of a 3-digit key
            ck_assert_int_eq(c->tokens_correct, token_hits);
            ck_assert_msg(fabs(c->logprob - lp) <= 1e-4 * fmax(1, fabs(lp)), "%g vs %g", c->logprob, lp);
            ck_assert_double_eq_tol(c->token_logprob, c->logprob / 3, 1e-4 * fmax(1, fabs(lp)));
            ck_assert(c->logprob < 0);
        }
    ck_assert_int_lt(stats.tokens_run, stats.tokens_total); // the cache saved work
    rwkv_model_free(m);
}
END_TEST

START_TEST(cache_matches_no_cache) {
    rwkv_model *m = random_model(2, 32, 256, 4);
    rwkv_recall_opts o = passkey_opts();
    o.task.query_first = 1;
    rwkv_recall_cell a[6], b[6];
    rwkv_recall_stats sa, sb;
    ck_assert_int_eq(rwkv_recall_run(m, &o, a, &sa, NULL), RWKV_OK);
    o.use_cache = 0;
    ck_assert_int_eq(rwkv_recall_run(m, &o, b, &sb, NULL), RWKV_OK);
    for (int i = 0; i < 6; i++) {
        ck_assert_int_eq(a[i].correct, b[i].correct);
        ck_assert_double_eq_tol(a[i].logprob, b[i].logprob, 1e-5 * fmax(1, fabs(b[i].logprob)));
    }
    ck_assert_int_eq(sb.tokens_run, sb.tokens_total);
    ck_assert_int_lt(sa.tokens_run, sb.tokens_run);
    rwkv_model_free(m);
}
END_TEST

START_TEST(mqar_sweep_rescoring) {
    rwkv_model *m = random_model(2, 16, 64, 5);
    static const int lens[1] = {40};
    static const double dep[1] = {0};
    rwkv_recall_opts o = {.lengths = lens, .n_lengths = 1, .depths = dep, .n_depths = 1,
                          .trials = 4, .seed = 2, .use_cache = 1};
    rwkv_task_defaults(&o.task, RWKV_TASK_MQAR);
    o.task.vocab = 64;
    o.task.n_pairs = o.task.n_queries = 4;
    rwkv_recall_cell c;
    rwkv_recall_stats st;
    ck_assert_int_eq(rwkv_recall_run(m, &o, &c, &st, NULL), RWKV_OK);
    double lp;
    int correct;
    rescore(m, &o, 0, 0, &lp, &correct);
    ck_assert_int_eq(c.correct, correct);
    ck_assert_msg(fabs(c.logprob - lp) <= 1e-4 * fmax(1, fabs(lp)), "%g vs %g", c.logprob, lp);
    ck_assert(isnan(c.depth));
    ck_assert_int_eq(c.answer_tokens, 4 * 4);
    ck_assert_int_eq(c.tokens_correct, token_hits);
    ck_assert_double_eq_tol(c.token_accuracy, token_hits / 16.0, 1e-12);
    rwkv_model_free(m);
}
END_TEST

START_TEST(errors) {
    rwkv_model *m = random_model(1, 8, 50, 6);
    rwkv_recall_opts o = passkey_opts();
    rwkv_recall_cell cells[6];
    rwkv_recall_stats st;
    ck_assert_int_eq(rwkv_recall_run(m, &o, cells, &st, NULL), RWKV_ERR_ARG);
    ck_assert_ptr_nonnull(strstr(rwkv_error_message(), "do not match"));
    rwkv_model_free(m);
    m = random_model(1, 8, 300, 6); // room for the bytes, but not a byte model
    ck_assert_int_eq(rwkv_recall_run(m, &o, cells, &st, NULL), RWKV_ERR_ARG);
    ck_assert_ptr_nonnull(strstr(rwkv_error_message(), "vocabulary of 300, not 256"));
    rwkv_model_free(m);
    m = random_model(1, 8, 256, 6);
    snprintf(m->tokenizer, sizeof m->tokenizer, "neox:20B_tokenizer.json");
    ck_assert_int_eq(rwkv_recall_run(m, &o, cells, &st, NULL), RWKV_ERR_ARG);
    ck_assert_ptr_nonnull(strstr(rwkv_error_message(), "uses the tokenizer 'neox:20B_tokenizer.json'"));
    snprintf(m->tokenizer, sizeof m->tokenizer, "bytes");
    static const double bad_depths[3] = {0, 0.5, 1.25};
    o.depths = bad_depths;
    ck_assert_int_eq(rwkv_recall_run(m, &o, cells, &st, NULL), RWKV_ERR_ARG);
    ck_assert_ptr_nonnull(strstr(rwkv_error_message(), "depth 1.25"));
    static const int short_len[1] = {30};
    o.depths = DEPTHS;
    o.lengths = short_len;
    o.n_lengths = 1;
    ck_assert_int_eq(rwkv_recall_run(m, &o, cells, &st, NULL), RWKV_ERR_ARG);
    ck_assert_ptr_nonnull(strstr(rwkv_error_message(), "length 30"));
    o.trials = 0;
    ck_assert_int_eq(rwkv_recall_run(m, &o, cells, &st, NULL), RWKV_ERR_ARG);
    rwkv_model_free(m);
}
END_TEST

// The CLI's CSV rows equal a direct re-scoring of the same examples with the loaded model.
// The Wilson score interval, written out here from its formula (Wilson 1927), independently of
// analyses/recall.c: centre (k + z^2/2) / (n + z^2), half-width z sqrt(k(n-k)/n + z^2/4) / (n + z^2).
static void wilson_ref(int k, int n, double *lo, double *hi) {
    const double z = 1.959963984540054;
    double c = (k + z * z / 2) / (n + z * z), h = z * sqrt((double)k * (n - k) / n + z * z / 4) / (n + z * z);
    *lo = c - h < 0 ? 0 : c - h;
    *hi = c + h > 1 ? 1 : c + h;
}

// Published values: 5/10 -> [0.2366, 0.7634], 0/10 -> [0, 0.2775], 10/10 -> [0.7225, 1]
// (Newcombe 1998, table I style); McNemar exact: b=0, c=5 -> 2/32; b=1, c=9 -> 2 * 11/1024.
START_TEST(wilson_and_mcnemar_known_values) {
    double lo, hi;
    rwkv_recall_wilson(5, 10, RWKV_RECALL_Z95, &lo, &hi);
    ck_assert_double_eq_tol(lo, 0.2366, 1e-4);
    ck_assert_double_eq_tol(hi, 0.7634, 1e-4);
    rwkv_recall_wilson(0, 10, RWKV_RECALL_Z95, &lo, &hi);
    ck_assert_double_eq_tol(lo, 0, 1e-12);
    ck_assert_double_eq_tol(hi, 0.2775, 1e-4);
    rwkv_recall_wilson(10, 10, RWKV_RECALL_Z95, &lo, &hi);
    ck_assert_double_eq_tol(lo, 0.7225, 1e-4);
    ck_assert_double_eq_tol(hi, 1, 1e-12);
    for (int n = 1; n <= 50; n += 7)
        for (int k = 0; k <= n; k++) {
            double rl, rh;
            wilson_ref(k, n, &rl, &rh);
            rwkv_recall_wilson(k, n, RWKV_RECALL_Z95, &lo, &hi);
            ck_assert(fabs(lo - rl) < 1e-12 && fabs(hi - rh) < 1e-12);
        }
    ck_assert_double_eq_tol(rwkv_recall_mcnemar_p(0, 5), 2.0 / 32, 1e-12);
    ck_assert_double_eq_tol(rwkv_recall_mcnemar_p(9, 1), 2 * 11.0 / 1024, 1e-12);
    ck_assert_double_eq_tol(rwkv_recall_mcnemar_p(3, 3), 1, 1e-12);
    ck_assert_double_eq_tol(rwkv_recall_mcnemar_p(0, 0), 1, 1e-12);
}
END_TEST

START_TEST(cli_csv_equals_rescoring) {
    const char *model = test_fixture("tiny-rwkv-4v0-660K-FP32.bin");
    char csv[1024], *out = NULL;
    snprintf(csv, sizeof csv, "%s/recall.csv", test_tmpdir());
    int rc = test_cli(&out, "recall %s --lengths 110,150 --depths 0,1 --trials 2 --seed 4 "
                      "--no-plots -o %s", model, csv);
    ck_assert_msg(rc == 0, "%s", out);
    free(out);
    rwkv_model *m = NULL;
    ck_assert_int_eq(rwkv_model_load(&m, model), RWKV_OK);
    static const int lens[2] = {110, 150};
    static const double dep[2] = {0, 1};
    rwkv_recall_opts o = {.lengths = lens, .n_lengths = 2, .depths = dep, .n_depths = 2,
                          .trials = 2, .seed = 4};
    rwkv_task_defaults(&o.task, RWKV_TASK_PASSKEY);
    FILE *f = fopen(csv, "r");
    char line[512];
    ck_assert_ptr_nonnull(fgets(line, sizeof line, f)); // header
    for (int li = 0; li < 2; li++)
        for (int di = 0; di < 2; di++) {
            ck_assert_ptr_nonnull(fgets(line, sizeof line, f));
            int len, trials, correct;
            double depth, acc, lp, tlp;
            ck_assert_int_eq(sscanf(line, "passkey,query_after,%d,%lf,%d,%d,%lf,%lf,%lf", &len,
                                    &depth, &trials, &correct, &acc, &lp, &tlp), 7);
            ck_assert_int_eq(len, lens[li]);
            ck_assert(depth == dep[di]);
            double want_lp;
            int want_correct;
            rescore(m, &o, li, di, &want_lp, &want_correct);
            ck_assert_int_eq(correct, want_correct);
            double tacc;
            ck_assert_int_eq(sscanf(line, "%*[^,],%*[^,],%*d,%*f,%*d,%*d,%*f,%*f,%*f,%lf", &tacc), 1);
            ck_assert_double_eq_tol(tacc, token_hits / 10.0, 1e-6); // 2 trials x 5 digits
            ck_assert_msg(fabs(lp - want_lp) <= 1e-4 * fmax(1, fabs(want_lp)), "%g vs %g", lp, want_lp);
            // The interval columns: the Wilson interval of correct / trials.
            double lo, hi, want_lo, want_hi;
            ck_assert_int_eq(sscanf(line, "%*[^,],%*[^,],%*d,%*f,%*d,%*d,%*f,%*f,%*f,%*f,%lf,%lf", &lo, &hi), 2);
            wilson_ref(correct, trials, &want_lo, &want_hi);
            ck_assert_double_eq_tol(lo, want_lo, 1e-6);
            ck_assert_double_eq_tol(hi, want_hi, 1e-6);
            ck_assert(lo <= acc && acc <= hi);
        }
    fclose(f);
    // The per-example CSV: 2 x 2 cells x 2 trials; each cell's rows add up to its correct count.
    snprintf(line, sizeof line, "%s/recall_examples.csv", test_tmpdir());
    f = fopen(line, "r");
    ck_assert_ptr_nonnull(f);
    ck_assert_ptr_nonnull(fgets(line, sizeof line, f));
    ck_assert_str_eq(line, "task,order,length,depth,trial,correct,logprob,answer_tokens,tokens_correct\n");
    int n_ex = 0;
    while (fgets(line, sizeof line, f)) {
        int len, trial, ok, na, nc;
        double depth, lp;
        ck_assert_int_eq(sscanf(line, "passkey,query_after,%d,%lf,%d,%d,%lf,%d,%d", &len, &depth, &trial, &ok, &lp, &na, &nc), 7);
        ck_assert_int_eq(trial, n_ex % 2);
        ck_assert_int_eq(len, lens[n_ex / 4]);
        ck_assert(depth == dep[(n_ex / 2) % 2]);
        ck_assert(ok == (nc == na) && lp <= 0);
        n_ex++;
    }
    fclose(f);
    ck_assert_int_eq(n_ex, 8);
    rwkv_model_free(m);
    ck_assert_int_ne(test_cli(&out, "recall %s --lengths 110 -o %s", model, csv), 0); // exists
    ck_assert_ptr_nonnull(strstr(out, "exists"));
    free(out);
    ck_assert_int_eq(test_cli(&out, "recall %s --lengths 50 --no-plots --force -o %s", model, csv), 1);
    ck_assert_ptr_nonnull(strstr(out, "length 50 is shorter"));
    free(out);
    ck_assert_int_eq(test_cli(&out, "recall %s --depths 0,2 -o %s --force", model, csv), 2);
    free(out);
    ck_assert_int_eq(test_cli(&out, "recall %s --lengths 128 --no-plots -o /nonexistent/r.csv", model), 1);
    ck_assert_ptr_nonnull(strstr(out, "/nonexistent/r.csv"));
    free(out);
}
END_TEST

// Runs `recall MODEL args -o csv` (csv: name in the test's scratch directory) and checks it succeeded.
static void recall_cli(char *csv, size_t n, const char *name, const char *fixture, const char *args) {
    char *out = NULL;
    snprintf(csv, n, "%s/%s", test_tmpdir(), name);
    int rc = test_cli(&out, "recall %s %s -o %s", test_fixture(fixture), args, csv);
    ck_assert_msg(rc == 0, "%s", out);
    free(out);
}

// --compare-prompt-order: both orders in the CSV, two heatmaps and the curves, whose data
// files hold the CSV's accuracies.
START_TEST(cli_compare_plots) {
    char csv[1024], path[1024];
    recall_cli(csv, sizeof csv, "cmp.csv", "tiny-rwkv-4v0-660K-FP32.bin",
               "--lengths 110,140 --depths 0,0.5,1 --trials 2 --compare-prompt-order");
    double acc[2][2][3]; // order, length, depth
    FILE *f = fopen(csv, "r");
    char line[512];
    ck_assert_ptr_nonnull(fgets(line, sizeof line, f));
    for (int o = 0; o < 2; o++)
        for (int li = 0; li < 2; li++)
            for (int di = 0; di < 3; di++) {
                char order[32];
                int len;
                ck_assert_ptr_nonnull(fgets(line, sizeof line, f));
                ck_assert_int_eq(sscanf(line, "passkey,%31[a-z_],%d,%*[^,],%*d,%*d,%lf", order, &len,
                                        &acc[o][li][di]), 3);
                ck_assert_str_eq(order, o ? "query_first" : "query_after");
            }
    fclose(f);
    static const char *const IMG[3] = {"cmp_heatmap", "cmp_heatmap_query_first", "cmp_accuracy"};
    for (int i = 0; i < 3; i++) {
        unsigned w = 0, h = 0;
        snprintf(path, sizeof path, "%s/%s.png", test_tmpdir(), IMG[i]);
        ck_assert_msg(test_png_size(path, &w, &h), "%s", path);
        ck_assert_uint_eq(w, 900);
        ck_assert_uint_eq(h, 600);
    }
    // The curve data: x = length, per order the accuracy over all depths (their mean, as the
    // trials are equal) and its Wilson interval over the pooled 3 x 2 examples.
    snprintf(path, sizeof path, "%s/cmp_accuracy.csv", test_tmpdir());
    f = fopen(path, "r");
    ck_assert_ptr_nonnull(fgets(line, sizeof line, f)); // '#' header
    for (int li = 0; li < 2; li++) {
        double x, y0, lo0, hi0, y1, want_lo, want_hi;
        ck_assert_ptr_nonnull(fgets(line, sizeof line, f));
        ck_assert_int_eq(sscanf(line, "%lf,%lf,%lf,%lf,%lf", &x, &y0, &lo0, &hi0, &y1), 5);
        ck_assert(x == (li ? 140 : 110));
        wilson_ref((int)lround(y0 * 6), 6, &want_lo, &want_hi);
        ck_assert_double_eq_tol(lo0, want_lo, 1e-9);
        ck_assert_double_eq_tol(hi0, want_hi, 1e-9);
        ck_assert_double_eq_tol(y0, (acc[0][li][0] + acc[0][li][1] + acc[0][li][2]) / 3, 1e-6);
        ck_assert_double_eq_tol(y1, (acc[1][li][0] + acc[1][li][1] + acc[1][li][2]) / 3, 1e-6);
    }
    fclose(f);
}
END_TEST

// ---------------------------------------------------------------- RWKV-5.2 and RWKV-7

static rwkv_model *load_fixture(const char *name) {
    rwkv_model *m = NULL;
    ck_assert_int_eq(rwkv_model_load(&m, test_fixture(name)), RWKV_OK);
    return m;
}

// Every cell of a sweep against re-scoring its examples from the model's own logits, in
// parallel mode (one GEMM pass per example, the matrix state scanned in order) and in
// sequential mode: the same correct counts and argmax hits, log-probabilities within float
// rounding (the sweep steps token by token from cached prefix states).
static void check_against_rescoring(const rwkv_model *m, const rwkv_recall_opts *o, const rwkv_recall_cell *cells) {
    for (int li = 0; li < o->n_lengths; li++)
        for (int di = 0; di < o->n_depths; di++) {
            const rwkv_recall_cell *c = cells + li * o->n_depths + di;
            for (int par = 0; par < 2; par++) {
                double lp;
                int correct;
                rescore_mode(m, o, li, di, &lp, &correct, par);
                ck_assert_int_eq(c->correct, correct);
                ck_assert_int_eq(c->tokens_correct, token_hits);
                ck_assert_msg(fabs(c->logprob - lp) <= 1e-4 * fmax(1, fabs(lp)), "%s length %d: %.9g vs %.9g",
                              par ? "parallel" : "sequential", c->length, c->logprob, lp);
                ck_assert(c->logprob < 0);
            }
        }
}

// rwkv.cpp's trained tiny RWKV-7 (one head of 64) on passkey: the sweep equals the model's
// own logits in both modes, and the prefix cache (copies of the matrix state) saved work.
START_TEST(v7_passkey_equals_rescoring) {
    rwkv_model *m = load_fixture("tiny-rwkv-7v0-834K-FP32.bin");
    ck_assert_int_eq(m->cfg.version, RWKV_VERSION_7);
    rwkv_recall_opts o = passkey_opts();
    rwkv_recall_cell cells[6];
    rwkv_recall_stats stats;
    ck_assert_int_eq(rwkv_recall_run(m, &o, cells, &stats, NULL), RWKV_OK);
    check_against_rescoring(m, &o, cells);
    ck_assert_int_lt(stats.tokens_run, stats.tokens_total);
    rwkv_model_free(m);
}
END_TEST

// The trained tiny RWKV-5.2 (8 heads of 8) on mqar and the tiny RWKV-7 on induction.
START_TEST(v5_v7_other_tasks_equal_rescoring) {
    static const int lens[1] = {48};
    static const double dep[1] = {0};
    rwkv_recall_opts o = {.lengths = lens, .n_lengths = 1, .depths = dep, .n_depths = 1,
                          .trials = 4, .seed = 3, .use_cache = 1};
    rwkv_recall_cell c;
    rwkv_recall_stats st;
    rwkv_model *m = load_fixture("tiny-rwkv-5v2-730K-FP32.bin");
    ck_assert_int_eq(m->cfg.version, RWKV_VERSION_5);
    rwkv_task_defaults(&o.task, RWKV_TASK_MQAR);
    o.task.n_pairs = o.task.n_queries = 4;
    ck_assert_int_eq(rwkv_recall_run(m, &o, &c, &st, NULL), RWKV_OK);
    ck_assert_int_eq(c.answer_tokens, 4 * 4);
    check_against_rescoring(m, &o, &c);
    rwkv_model_free(m);
    m = load_fixture("tiny-rwkv-7v0-834K-FP32.bin");
    rwkv_task_free(&o.task);
    rwkv_task_defaults(&o.task, RWKV_TASK_INDUCTION);
    ck_assert_int_eq(rwkv_recall_run(m, &o, &c, &st, NULL), RWKV_OK);
    check_against_rescoring(m, &o, &c);
    rwkv_task_free(&o.task);
    rwkv_model_free(m);
}
END_TEST

// On RWKV-7: the cache changes no result; one seed gives the same numbers twice, another
// seed other examples.
START_TEST(v7_cache_and_seed) {
    rwkv_model *m = load_fixture("tiny-rwkv-7v0-834K-FP32.bin");
    rwkv_recall_opts o = passkey_opts();
    o.task.query_first = 1;
    rwkv_recall_cell a[6], b[6], c[6], d[6];
    rwkv_recall_stats sa, sb;
    ck_assert_int_eq(rwkv_recall_run(m, &o, a, &sa, NULL), RWKV_OK);
    ck_assert_int_eq(rwkv_recall_run(m, &o, d, &sa, NULL), RWKV_OK);
    o.use_cache = 0;
    ck_assert_int_eq(rwkv_recall_run(m, &o, b, &sb, NULL), RWKV_OK);
    ck_assert_int_eq(sb.tokens_run, sb.tokens_total);
    ck_assert_int_lt(sa.tokens_run, sb.tokens_run);
    o.seed = 12;
    ck_assert_int_eq(rwkv_recall_run(m, &o, c, &sb, NULL), RWKV_OK);
    int differ = 0;
    for (int i = 0; i < 6; i++) {
        ck_assert_int_eq(a[i].correct, b[i].correct);
        ck_assert_int_eq(a[i].tokens_correct, b[i].tokens_correct);
        ck_assert_double_eq_tol(a[i].logprob, b[i].logprob, 1e-5 * fmax(1, fabs(b[i].logprob)));
        ck_assert(a[i].logprob == d[i].logprob && a[i].correct == d[i].correct); // bit for bit
        differ += c[i].logprob != a[i].logprob;
    }
    ck_assert_int_ge(differ, 5);
    rwkv_model_free(m);
}
END_TEST

// The CLI on RWKV-7: the CSV's cells are the library's (same options, same seed).
START_TEST(v7_cli_csv) {
    char csv[1024], line[512];
    recall_cli(csv, sizeof csv, "recall7.csv", "tiny-rwkv-7v0-834K-FP32.bin",
               "--lengths 110,131 --depths 0,0.5,1 --trials 3 --key-len 3 --seed 11 --no-plots");
    rwkv_model *m = load_fixture("tiny-rwkv-7v0-834K-FP32.bin");
    rwkv_recall_opts o = passkey_opts();
    rwkv_recall_cell cells[6];
    rwkv_recall_stats stats;
    ck_assert_int_eq(rwkv_recall_run(m, &o, cells, &stats, NULL), RWKV_OK);
    FILE *f = fopen(csv, "r");
    ck_assert_ptr_nonnull(f);
    ck_assert_ptr_nonnull(fgets(line, sizeof line, f));
    for (int i = 0; i < 6; i++) {
        int len, trials, correct;
        double depth, acc, lp;
        ck_assert_ptr_nonnull(fgets(line, sizeof line, f));
        ck_assert_int_eq(sscanf(line, "passkey,query_after,%d,%lf,%d,%d,%lf,%lf", &len, &depth, &trials, &correct,
                                &acc, &lp), 6);
        ck_assert(len == cells[i].length && depth == cells[i].depth && correct == cells[i].correct);
        ck_assert_double_eq_tol(lp, cells[i].logprob, 1e-6 * fmax(1, fabs(lp)));
    }
    ck_assert_ptr_null(fgets(line, sizeof line, f));
    fclose(f);
    rwkv_model_free(m);
}
END_TEST

int main(void) {
    Suite *s = suite_create("recall");
    TCase *tc = tcase_create("recall");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, sweep_equals_direct_rescoring);
    tcase_add_test(tc, cache_matches_no_cache);
    tcase_add_test(tc, mqar_sweep_rescoring);
    tcase_add_test(tc, errors);
    tcase_add_test(tc, wilson_and_mcnemar_known_values);
    tcase_add_test(tc, cli_csv_equals_rescoring);
    tcase_add_test(tc, cli_compare_plots);
    tcase_add_test(tc, v7_passkey_equals_rescoring);
    tcase_add_test(tc, v5_v7_other_tasks_equal_rescoring);
    tcase_add_test(tc, v7_cache_and_seed);
    tcase_add_test(tc, v7_cli_csv);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int nf = srunner_ntests_failed(sr);
    srunner_free(sr);
    return nf ? 1 : 0;
}
