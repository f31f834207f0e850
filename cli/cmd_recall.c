// cmd_recall.c: rwkvscope recall MODEL: needle-in-a-haystack style recall sweeps.
#include "analyses/plot.h"
#include "analyses/recall.h"
#include "cli.h"
#include "input.h"
#include "intervene_opts.h"
#include "task_opts.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

const char cmd_recall_summary[] = "recall sweeps over length x depth (passkey, mqar, copy, induction)";

#define CMD "recall"
#define MAX_LIST 256
#define RECALL_SMALL_EMBD 256 // up to this width one thread beats several
// Examples per cell: enough to tell 50% from 60% (a 10-point difference where it is hardest
// to see) between two cells at alpha 0.05 two-sided with power 0.8 (docs/analysis-outputs.md):
// n = (1.96 sqrt(2 0.55 0.45) + 0.8416 sqrt(0.5 0.5 + 0.6 0.4))^2 / 0.1^2 = 387.3.
#define RECALL_DEFAULT_TRIALS 400

static void usage(FILE *f) {
    fprintf(f,
            "usage: rwkvscope recall MODEL [--task passkey] [--lengths 64,128,...] [--depths 0,0.25,...]\n"
            "                        [--trials N] [--compare-prompt-order] -o results.csv [options]\n\n"
            "Scores seeded task examples in sequential (RNN) mode, so memory stays flat in the length:\n"
            "exact-match accuracy (greedy decoding reproduces every answer token) and the answer\n"
            "log-probability (nats, summed over answer tokens) per (length, depth) cell. Examples that\n"
            "share a prefix start from a cached state.\n\n"
            "Writes results.csv (task,order,length,depth,trials,correct,accuracy,logprob,token_logprob,\n"
            "token_accuracy: the share of answer tokens that are the argmax, acc_ci_lo,acc_ci_hi: the\n"
            "95%% Wilson interval of accuracy), results_examples.csv (one row per example, for paired\n"
            "tests: the same length, depth and trial is the same seeded draw in both prompt orders),\n"
            "results_heatmap.png (depth x length accuracy; _query_first too with --compare-prompt-order)\n"
            "and results_accuracy.png (accuracy vs length over all depths, with 95%% Wilson error\n"
            "bars), each with its data. With --compare-prompt-order, prints per length both orders'\n"
            "accuracy with its interval and an exact McNemar test on the paired examples.\n\n"
            "  --task T             passkey (default), mqar, copy, induction\n"
            "  --lengths LIST       example lengths in tokens (default 128,256,512,1024)\n"
            "  --depths LIST        passkey needle depths in [0,1] (default 0,0.25,0.5,0.75,1)\n"
            "  --trials N           examples per cell (default %d: tells 50%% from 60%% between two\n"
            "                       cells at alpha 0.05 with power 0.8)\n"
            "  --compare-prompt-order  passkey: run query-after and query-first (question before too)\n"
            "  --seed S             rng seed (default 1)\n"
            "  --no-cache           do not reuse prefix states (for timing)\n"
            "  --no-plots           write only the CSV\n"
            "  --threads N          threads (default: 1 for n_embd <= %d, whose matvecs are too small\n"
            "                       to share, else all cores)\n"
            "  -o FILE              output CSV\n"
            "  --force              overwrite FILE\n"
            CLI_INTERVENE_HELP
            "                       (positions count within each example; the prefix cache keeps them)\n\n%s",
            RECALL_DEFAULT_TRIALS, RECALL_SMALL_EMBD, CLI_TASK_HELP);
}

static int parse_depths(const char *s, double *out, int *n) {
    *n = 0;
    for (const char *p = s; *p && *n < MAX_LIST;) {
        char *end;
        errno = 0;
        double v = strtod(p, &end);
        if (end == p || errno || (*end && *end != ',')) return 0;
        if (!(v >= 0 && v <= 1)) { cli_usage_error(CMD, "--depths: %g is outside [0, 1]", v); return -1; }
        out[(*n)++] = v;
        p = *end ? end + 1 : end;
    }
    return *n > 0;
}

static void progress(int done, int total) { fprintf(stderr, "recall: %d/%d lengths\n", done, total); }

static void write_csv(FILE *f, const char *task, const char *order, const rwkv_recall_cell *c, int n) {
    for (int i = 0; i < n; i++) {
        fprintf(f, "%s,%s,%d,", task, order, c[i].length);
        if (!isnan(c[i].depth)) fprintf(f, "%.6g", c[i].depth); // empty for tasks without one
        fprintf(f, ",%d,%d,%.6f,%.9g,%.9g,%.6f,%.6f,%.6f\n", c[i].trials, c[i].correct, c[i].accuracy,
                c[i].logprob, c[i].token_logprob, c[i].token_accuracy, c[i].ci_lo, c[i].ci_hi);
    }
}

// One row per example: (length, depth, trial) names the same seeded draw in every run.
static void write_examples(FILE *f, const char *task, const char *order, const rwkv_recall_cell *c,
                           const rwkv_recall_example *ex, int n_cells, int trials) {
    for (int i = 0; i < n_cells; i++)
        for (int k = 0; k < trials; k++) {
            const rwkv_recall_example *e = ex + (size_t)i * trials + k;
            fprintf(f, "%s,%s,%d,", task, order, c[i].length);
            if (!isnan(c[i].depth)) fprintf(f, "%.6g", c[i].depth);
            fprintf(f, ",%d,%d,%.9g,%d,%d\n", k, e->correct, e->logprob, e->answer_tokens, e->tokens_correct);
        }
}

// Per length: both orders' accuracy over all depths with Wilson intervals, and the exact
// McNemar test on the paired examples (same length, depth and trial).
static void paired_report(rwkv_recall_cell *const cells[2], rwkv_recall_example *const ex[2], int nl,
                          int nd, int trials) {
    for (int li = 0; li < nl; li++) {
        int64_t k[2] = {0, 0}, n = (int64_t)nd * trials, b = 0, c = 0;
        for (size_t i = (size_t)li * nd * trials; i < (size_t)(li + 1) * nd * trials; i++) {
            k[0] += ex[0][i].correct, k[1] += ex[1][i].correct;
            b += ex[0][i].correct && !ex[1][i].correct;
            c += !ex[0][i].correct && ex[1][i].correct;
        }
        double lo[2], hi[2];
        for (int o = 0; o < 2; o++) rwkv_recall_wilson(k[o], n, RWKV_RECALL_Z95, &lo[o], &hi[o]);
        fprintf(stderr, "recall: length %d: query after %.3f [%.3f, %.3f], query first %.3f [%.3f, %.3f] "
                "(%lld examples each); McNemar exact p = %.3g (%lld vs %lld discordant)\n",
                cells[0][li * nd].length, (double)k[0] / n, lo[0], hi[0], (double)k[1] / n, lo[1], hi[1],
                (long long)n, rwkv_recall_mcnemar_p(b, c), (long long)b, (long long)c);
    }
}

// <stem><suffix>.png beside the CSV.
static void sibling(char *buf, size_t n, const char *csv, const char *suffix) {
    const char *dot = strrchr(csv, '.'), *slash = strrchr(csv, '/');
    size_t stem = (dot && (!slash || dot > slash)) ? (size_t)(dot - csv) : strlen(csv);
    snprintf(buf, n, "%.*s%s", (int)stem, csv, suffix);
}

static rwkv_status plots(const char *csv, const char *task, rwkv_recall_cell *const cells[2],
                         int orders, const int *lengths, int nl, const double *depths, int nd) {
    static const char *const ORDER_NAMES[2] = {"query after", "query first"};
    double *z = calloc((size_t)nl * nd, sizeof *z), *x = calloc(nl, sizeof *x),
           *y = calloc((size_t)2 * nl, sizeof *y), *lo = calloc((size_t)2 * nl, sizeof *lo),
           *hi = calloc((size_t)2 * nl, sizeof *hi);
    rwkv_status st = (!z || !x || !y || !lo || !hi) ? rwkv_error_set(RWKV_ERR_NOMEM, "recall plots") : RWKV_OK;
    char out[4096], title[256];
    for (int li = 0; li < nl && !st; li++) x[li] = lengths[li];
    for (int o = 0; o < orders && !st; o++) {
        for (int li = 0; li < nl; li++) {
            int64_t k = 0, n = 0;
            for (int di = 0; di < nd; di++) {
                const rwkv_recall_cell *c = &cells[o][li * nd + di];
                z[di * nl + li] = c->accuracy; // rows are depths, columns lengths
                k += c->correct, n += c->trials;
            }
            y[o * nl + li] = (double)k / (double)n; // pooled over depths (equal trials: their mean)
            rwkv_recall_wilson(k, n, RWKV_RECALL_Z95, &lo[o * nl + li], &hi[o * nl + li]);
        }
        if (nd > 1 || !strcmp(task, "passkey")) {
            sibling(out, sizeof out, csv, o ? "_heatmap_query_first.png" : "_heatmap.png");
            snprintf(title, sizeof title, "%s recall accuracy (%s)", task, ORDER_NAMES[o]);
            rwkv_plot_opts po = {.title = title, .xlabel = "context length (tokens)",
                                 .ylabel = "needle depth", .width = 900, .height = 600};
            st = rwkv_plot_heatmap(out, &po, z, nd, nl, x, depths, "accuracy");
        }
    }
    if (!st) {
        sibling(out, sizeof out, csv, "_accuracy.png");
        snprintf(title, sizeof title, "%s recall accuracy vs length (95%% Wilson intervals)", task);
        rwkv_plot_opts po = {.title = title, .xlabel = "context length (tokens)",
                             .ylabel = "accuracy (all depths)", .width = 900, .height = 600,
                             .logx = nl > 1 && lengths[nl - 1] >= 4 * lengths[0]};
        st = rwkv_plot_lines_ci(out, &po, x, y, lo, hi, nl, orders, (const char *const *)ORDER_NAMES);
    }
    free(lo);
    free(hi);
    free(z);
    free(x);
    free(y);
    return st;
}

int cmd_recall(int argc, char **argv) {
    if (argc < 2 || cli_wants_help(argc, argv)) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? CLI_USAGE : CLI_OK;
    }
    const char *model_path = NULL, *out = NULL, *task_name = "passkey";
    const char *lengths_s = "128,256,512,1024", *depths_s = "0,0.25,0.5,0.75,1";
    long trials = RECALL_DEFAULT_TRIALS, seed = 1, threads = -1;
    int compare = 0, no_cache = 0, no_plots = 0, force = 0, rc = CLI_OK;
    rwkv_task task;
    rwkv_task_defaults(&task, RWKV_TASK_PASSKEY);
    cli_intervene_opts iv = {0};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        int r = cli_task_option(&task, CMD, argc, argv, &i);
        if (r < 0) { rc = CLI_USAGE; goto done; }
        if (r) continue;
        if ((r = cli_intervene_option(&iv, CMD, argc, argv, &i)) < 0) { rc = CLI_USAGE; goto done; }
        if (r) continue;
        if (!strcmp(a, "--compare-prompt-order")) { compare = 1; continue; }
        if (!strcmp(a, "--no-cache")) { no_cache = 1; continue; }
        if (!strcmp(a, "--no-plots")) { no_plots = 1; continue; }
        if (!strcmp(a, "--force")) { force = 1; continue; }
        if (a[0] != '-') {
            if (model_path) { rc = cli_usage_error(CMD, "unexpected argument '%s'", a); goto done; }
            model_path = a;
            continue;
        }
        if (i + 1 >= argc) { rc = cli_usage_error(CMD, "unknown option or missing value: %s", a); goto done; }
        const char *v = argv[++i];
        if (!strcmp(a, "--task")) task_name = v;
        else if (!strcmp(a, "--lengths")) lengths_s = v;
        else if (!strcmp(a, "--depths")) depths_s = v;
        else if (!strcmp(a, "-o")) out = v;
        else if (!strcmp(a, "--trials")) { if (!cli_parse_int(CMD, a, v, 1, 1000000, &trials)) { rc = CLI_USAGE; goto done; } }
        else if (!strcmp(a, "--seed")) { if (!cli_parse_int(CMD, a, v, 0, LONG_MAX, &seed)) { rc = CLI_USAGE; goto done; } }
        else if (!strcmp(a, "--threads")) { if (!cli_parse_int(CMD, a, v, 0, CLI_MAX_THREADS, &threads)) { rc = CLI_USAGE; goto done; } }
        else { rc = cli_usage_error(CMD, "unknown option %s", a); goto done; }
    }
    if (!model_path) { rc = cli_usage_error(CMD, "MODEL is required"); goto done; }
    if (!out) { rc = cli_usage_error(CMD, "-o results.csv is required"); goto done; }
    rwkv_task_kind kind;
    if (rwkv_task_parse_kind(task_name, &kind)) { rc = cli_usage_error(CMD, "%s", rwkv_error_message()); goto done; }
    task.kind = kind; // the defaults are shared, so options given before --task still hold
    if (task.query_first == RWKV_TASK_QUERY_MIXED) { rc = cli_usage_error(CMD, "--query-mixed is for training; recall scores one order, or both with --compare-prompt-order"); goto done; }
    if (compare && kind != RWKV_TASK_PASSKEY) { rc = cli_usage_error(CMD, "--compare-prompt-order needs --task passkey"); goto done; }
    int *lengths = NULL;
    size_t nl = 0;
    if (cli_parse_id_list(lengths_s, &lengths, &nl)) { rc = cli_usage_error(CMD, "--lengths: expected a list like 64,128,256"); goto done; }
    double depths[MAX_LIST];
    int nd = 0, pr = parse_depths(depths_s, depths, &nd);
    if (pr <= 0) { free(lengths); rc = pr < 0 ? CLI_USAGE : cli_usage_error(CMD, "--depths: expected a list like 0,0.5,1"); goto done; }
    if (kind != RWKV_TASK_PASSKEY) { nd = 1; depths[0] = 0; }
    if (!force && access(out, F_OK) == 0) {
        free(lengths);
        rc = cli_usage_error(CMD, "%s exists (use --force to overwrite)", out);
        goto done;
    }
    rwkv_model *m = NULL;
    rwkv_status st = rwkv_model_load(&m, model_path);
    if (st) { free(lengths); rc = cli_fail(CMD, st, NULL); goto done; }
    cli_set_threads(threads >= 0 ? (int)threads : m->cfg.n_embd <= RECALL_SMALL_EMBD ? 1 : 0);
    int orders = compare ? 2 : 1;
    rwkv_recall_cell *cells[2] = {calloc(nl * nd, sizeof(rwkv_recall_cell)), calloc(nl * nd, sizeof(rwkv_recall_cell))};
    rwkv_recall_example *ex[2] = {calloc(nl * nd * trials, sizeof(rwkv_recall_example)),
                                  calloc(nl * nd * trials, sizeof(rwkv_recall_example))};
    FILE *f = NULL;
    char ex_path[4096];
    sibling(ex_path, sizeof ex_path, out, "_examples.csv");
    if (!cells[0] || !cells[1] || !ex[0] || !ex[1]) { st = rwkv_error_set(RWKV_ERR_NOMEM, "recall cells"); goto fail; }
    // Open the output before the sweep, so an unwritable path fails at once.
    if (!(f = fopen(out, "w"))) { st = rwkv_error_set(RWKV_ERR_IO, "%s: cannot write: %s", out, strerror(errno)); goto fail; }
    for (int o = 0; o < orders && !st; o++) {
        rwkv_recall_opts ro = {.task = task, .lengths = lengths, .n_lengths = (int)nl, .depths = depths,
                               .n_depths = nd, .trials = (int)trials, .seed = (unsigned long)seed,
                               .use_cache = !no_cache, .interventions = iv.specs, .n_interventions = iv.n,
                               .examples = ex[o]};
        if (compare) ro.task.query_first = o;
        rwkv_recall_stats stats;
        st = rwkv_recall_run(m, &ro, cells[o], &stats, progress);
        if (!st)
            fprintf(stderr, "recall: fed %lld tokens (%lld without the prefix cache)\n",
                    (long long)stats.tokens_run, (long long)stats.tokens_total);
    }
    if (st) goto fail;
    fputs("task,order,length,depth,trials,correct,accuracy,logprob,token_logprob,token_accuracy,acc_ci_lo,acc_ci_hi\n", f);
    for (int o = 0; o < orders; o++)
        write_csv(f, task_name, (compare ? o : task.query_first) ? "query_first" : "query_after",
                  cells[o], (int)nl * nd);
    int bad = fclose(f);
    f = NULL;
    if (bad) { st = rwkv_error_set(RWKV_ERR_IO, "%s: write failed", out); goto fail; }
    fprintf(stderr, "recall: wrote %s\n", out);
    if (!(f = fopen(ex_path, "w"))) { st = rwkv_error_set(RWKV_ERR_IO, "%s: cannot write: %s", ex_path, strerror(errno)); goto fail; }
    fputs("task,order,length,depth,trial,correct,logprob,answer_tokens,tokens_correct\n", f);
    for (int o = 0; o < orders; o++)
        write_examples(f, task_name, (compare ? o : task.query_first) ? "query_first" : "query_after",
                       cells[o], ex[o], (int)nl * nd, (int)trials);
    bad = fclose(f);
    f = NULL;
    if (bad) { st = rwkv_error_set(RWKV_ERR_IO, "%s: write failed", ex_path); goto fail; }
    fprintf(stderr, "recall: wrote %s\n", ex_path);
    if (compare) paired_report(cells, ex, (int)nl, nd, (int)trials);
    if (!no_plots) st = plots(out, task_name, cells, orders, lengths, (int)nl, depths, nd);
fail:
    if (f) { fclose(f); remove(out); remove(ex_path); } // no partial CSV after a failed sweep
    if (st) rc = cli_fail(CMD, st, st == RWKV_ERR_UNSUPPORTED ? "use --no-plots to skip the plots" : NULL);
    free(cells[0]);
    free(cells[1]);
    free(ex[0]);
    free(ex[1]);
    free(lengths);
    rwkv_model_free(m);
done:
    rwkv_task_free(&task);
    cli_intervene_opts_free(&iv);
    return rc;
}
