// cmd_recall.c: rwkvscope recall MODEL: needle-in-a-haystack style recall sweeps.
#include "analyses/recall.h"
#include "cli.h"
#include "core/base/file.h"
#include "input.h"
#include "intervene_opts.h"
#include "options.h"
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
            "Scores seeded task examples in sequential (RNN) mode, so memory stays flat in the length\n"
            "(RWKV-4, RWKV-5.2 and RWKV-7 models; a cached prefix state holds the matrix states too):\n"
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
            "  -o, --output FILE    output CSV\n"
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

// Per length: both orders' accuracy over all depths with Wilson intervals, and the exact
// McNemar test on the paired examples (same length, depth and trial).
static void paired_report(rwkv_recall_cell *const cells[2], rwkv_recall_example *const ex[2], int nl,
                          int nd, int trials) {
    for (int li = 0; li < nl; li++) {
        rwkv_recall_pair r;
        rwkv_recall_paired(&r, cells, ex, li, nd, trials);
        fprintf(stderr, "recall: length %d: query after %.3f [%.3f, %.3f], query first %.3f [%.3f, %.3f] "
                "(%lld examples each); McNemar exact p = %.3g (%lld vs %lld discordant)\n",
                r.length, r.acc[0], r.lo[0], r.hi[0], r.acc[1], r.lo[1], r.hi[1], (long long)r.n, r.p,
                (long long)r.b, (long long)r.c);
    }
}

int cmd_recall(int argc, char **argv) {
    enum { O_TASK = CLI_OPT_USER, O_LENGTHS, O_DEPTHS, O_TRIALS, O_COMPARE, O_SEED, O_NO_CACHE, O_NO_PLOTS };
    static const struct option OPTS[] = {
        {"task", required_argument, NULL, O_TASK}, {"lengths", required_argument, NULL, O_LENGTHS},
        {"depths", required_argument, NULL, O_DEPTHS}, {"trials", required_argument, NULL, O_TRIALS},
        {"compare-prompt-order", no_argument, NULL, O_COMPARE}, {"seed", required_argument, NULL, O_SEED},
        {"no-cache", no_argument, NULL, O_NO_CACHE}, {"no-plots", no_argument, NULL, O_NO_PLOTS},
        {"threads", required_argument, NULL, CLI_OPT_THREADS}, CLI_OPTIONS_TASK, CLI_OPTIONS_INTERVENE,
        CLI_OPTIONS_OUTPUT, CLI_OPTIONS_END};
    if (argc < 2) {
        usage(stderr);
        return CLI_USAGE;
    }
    const char *model_path = NULL, *out = NULL, *task_name = "passkey";
    const char *lengths_s = "128,256,512,1024", *depths_s = "0,0.25,0.5,0.75,1";
    long trials = RECALL_DEFAULT_TRIALS, seed = 1;
    int compare = 0, no_cache = 0, no_plots = 0, force = 0, rc = CLI_OK;
    rwkv_task task;
    rwkv_task_defaults(&task, RWKV_TASK_PASSKEY);
    cli_intervene_opts iv = {0};
    cli_model_opts mo = {.threads = -1}; // -1: by the model's width
    cli_parser p = {.cmd = CMD, .help = usage, .opts = OPTS, .max_args = 1, .model = &mo, .iv = &iv, .task = &task,
                    .out = &out, .force = &force, .out_seekable = "results.csv with its examples and plots beside it"};
    const char *v;
    for (int c; (c = cli_opt_next(&p, argc, argv, &v)) != -1;) {
        int ok = 1;
        switch (c) {
        case O_TASK: task_name = v; break;
        case O_LENGTHS: lengths_s = v; break;
        case O_DEPTHS: depths_s = v; break;
        case O_COMPARE: compare = 1; break;
        case O_NO_CACHE: no_cache = 1; break;
        case O_NO_PLOTS: no_plots = 1; break;
        case O_TRIALS: ok = cli_parse_int(CMD, "--trials", v, 1, 1000000, &trials); break;
        case O_SEED: ok = cli_parse_int(CMD, "--seed", v, 0, LONG_MAX, &seed); break;
        }
        if (!ok) { rc = CLI_USAGE; goto done; }
    }
    if (p.status) { rc = cli_opt_exit(p.status); goto done; }
    model_path = p.args[0];
    long threads = mo.threads;
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
    if (!cli_check_output(CMD, out, force)) {
        free(lengths);
        rc = CLI_USAGE;
        goto done;
    }
    rwkv_model *m = cli_load_model(CMD, model_path, NULL); // RWKV-4, 5.2 and 7
    if (!m) { free(lengths); rc = CLI_FAIL; goto done; }
    rwkv_status st = RWKV_OK;
    cli_set_threads(threads >= 0 ? (int)threads : m->cfg.n_embd <= RECALL_SMALL_EMBD ? 1 : 0);
    int orders = compare ? 2 : 1;
    rwkv_recall_cell *cells[2] = {calloc(nl * nd, sizeof(rwkv_recall_cell)), calloc(nl * nd, sizeof(rwkv_recall_cell))};
    rwkv_recall_example *ex[2] = {calloc(nl * nd * trials, sizeof(rwkv_recall_example)),
                                  calloc(nl * nd * trials, sizeof(rwkv_recall_example))};
    FILE *f = NULL;
    char ex_path[4096];
    rwkv_recall_sibling(ex_path, sizeof ex_path, out, "_examples.csv");
    rwkv_atomic_file out_file, ex_file, *open_file = NULL; // open_file: aborted on failure
    if (!cells[0] || !cells[1] || !ex[0] || !ex[1]) { st = rwkv_error_set(RWKV_ERR_NOMEM, "recall cells"); goto fail; }
    // Open the output before the sweep, so an unwritable path fails at once.
    if ((st = rwkv_file_atomic_open(&out_file, out, 1, 1))) goto fail;
    open_file = &out_file;
    f = out_file.f;
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
    const char *order_names[2];
    for (int o = 0; o < orders; o++) order_names[o] = (compare ? o : task.query_first) ? "query_first" : "query_after";
    rwkv_recall_write_cells(f, task_name, order_names, cells, orders, (int)nl * nd);
    open_file = NULL;
    if ((st = rwkv_file_atomic_commit(&out_file))) goto fail;
    fprintf(stderr, "recall: wrote %s\n", out);
    if ((st = rwkv_file_atomic_open(&ex_file, ex_path, 1, 1))) goto fail;
    open_file = &ex_file;
    f = ex_file.f;
    rwkv_recall_write_examples(f, task_name, order_names, cells, ex, orders, (int)nl * nd, (int)trials);
    open_file = NULL;
    if ((st = rwkv_file_atomic_commit(&ex_file))) goto fail;
    fprintf(stderr, "recall: wrote %s\n", ex_path);
    if (compare) paired_report(cells, ex, (int)nl, nd, (int)trials);
    if (!no_plots) st = rwkv_recall_plots(out, task_name, cells, orders, lengths, (int)nl, depths, nd);
fail:
    if (open_file) rwkv_file_atomic_abort(open_file); // no partial CSV after a failed sweep
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
