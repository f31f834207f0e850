// cmd_probe.c: rwkvscope probe (one label, many taps) and rwkvscope probe horizon
// (token@-d for d = 1..D, accuracy against d per layer, CSV + PNG).
#include "cli.h"

#include "analyses/plot.h"
#include "probes/sweep.h"

#include <stdlib.h>
#include <string.h>

const char cmd_probe_summary[] = "linear/logistic probes on dumped states; probe horizon for memory";

#define HORIZON_DEFAULT_TAPS "blocks.*.state_num/state_den"
#define HORIZON_DEFAULT_FOLDS 3
#define HORIZON_DEFAULT_MAX_TRAIN 6000
#define HORIZON_DEFAULT_ITERS 1000 // a cap for runaway fits: --ftol ends them well before
#define HORIZON_DEFAULT_BOOT 200
#define HORIZON_DEFAULT_FTOL 1e-5
#define HORIZON_MAX_D 4096

static const char *USAGE =
    "usage: rwkvscope probe DUMP.h5 --taps PATTERNS --label SPEC|FILE [options] -o probe.csv\n"
    "       rwkvscope probe horizon DUMP.h5 --max-d D [--taps PATTERNS] [options] -o horizon.csv\n"
    "\n"
    "Fits a probe on each selected (layer, tap) of a dump (rwkvscope dump) with k-fold\n"
    "cross-validation grouped by sequence, and writes one CSV row per (layer, tap): the score\n"
    "(accuracy or R^2) with a 95% bootstrap interval over sequences, macro-F1, the majority-\n"
    "class rate, a control task (Hewitt & Liang 2019: each type of the token the label is about\n"
    "gets a random label: token@-d's token for token@-d, the sequence's first token for seen(X)\n"
    "and count(X), the row's own token otherwise) and selectivity = score - control, a baseline\n"
    "probe on the raw input embedding, and whether every fit converged.\n"
    "`probe horizon` probes token@-d for d = 1..D and plots accuracy against d, one curve per\n"
    "layer, with the majority-class rate and the baseline (PNG beside the CSV).\n"
    "\n"
    "options:\n"
    "  --taps PATTERNS      comma-separated blocks.<layer>.<tap> globs, e.g. 'blocks.*.state_num';\n"
    "                       derived: blocks.*.state_num/state_den, blocks.*.concat(state_*)\n"
    "                       (horizon default: " HORIZON_DEFAULT_TAPS ")\n"
    "  --label SPEC|FILE    token@-D (token D positions back; token@0 = the row's own token),\n"
    "                       position, seen(X), count(X) (X a token id or 'c'), answer (the\n"
    "                       answer token, at the row that predicts it; needs --dataset), or a\n"
    "                       label file (.csv/.h5, docs/probe-labels.md)\n"
    "  --probe KIND         logistic | ridge (default: logistic for class labels, ridge for real)\n"
    "  --folds K            cross-validation folds, grouped by sequence (default 5; horizon 3)\n"
    "  --seed N             folds, subsampling, control labels and bootstrap (default 1)\n"
    "  --l2 X               L2 weight of the logistic probe on standardised features (default 1e-3)\n"
    "  --max-iter N         L-BFGS iterations per fit at most (default 200; horizon 1000); a fit\n"
    "                       stopped by this cap is marked converged=0 in the CSV\n"
    "  --ftol X             stop a fit when an iteration lowers the loss by < X relative\n"
    "                       (default 1e-7; horizon 1e-5)\n"
    "  --max-train N        training rows per fold are subsampled to N (default 20000; horizon 6000)\n"
    "  --boot N             bootstrap draws (default 1000; horizon 200)\n"
    "  --model PATH         baseline features: the embedding row of the row's token from this\n"
    "                       model; without it /blocks/0/resid_in of the dump if present\n"
    "  --no-baseline        skip the baseline probe\n"
    "  --dataset PATH       the JSONL dataset the dump was made from (for --label answer)\n"
    "  --max-d D            horizon: largest distance (1 <= D <= 4096)\n"
    "  --png PATH           horizon: plot path (default: the CSV path with -plot.png; the plot's\n"
    "                       data and gnuplot script go beside it as <stem>.csv and <stem>.gp)\n"
    "  --threads N          threads for BLAS (default: all cores)\n"
    "  -o PATH              output CSV (overwritten)\n";

typedef struct {
    const char *dump, *label, *taps, *out, *model, *dataset, *png;
    rwkv_probe_opts po;
    int kind_given, no_baseline, horizon;
    long max_d, threads;
} probe_args;

static int parse_args(probe_args *a, int argc, char **argv) {
    const char *cmd = a->horizon ? "probe horizon" : "probe";
    rwkv_probe_opts_default(&a->po);
    if (a->horizon) {
        a->po.folds = HORIZON_DEFAULT_FOLDS;
        a->po.max_train = HORIZON_DEFAULT_MAX_TRAIN;
        a->po.lr.max_iter = HORIZON_DEFAULT_ITERS;
        a->po.n_boot = HORIZON_DEFAULT_BOOT;
        a->po.lr.ftol = HORIZON_DEFAULT_FTOL;
        a->taps = HORIZON_DEFAULT_TAPS;
    }
    for (int i = 1; i < argc; i++) {
        const char *o = argv[i];
        long v;
        if (o[0] != '-') {
            if (a->dump) return cli_usage_error(cmd, "unexpected argument '%s'", o);
            a->dump = o;
            continue;
        }
        if (!strcmp(o, "--no-baseline")) { a->no_baseline = 1; continue; }
        if (i + 1 >= argc) return cli_usage_error(cmd, "%s needs a value", o);
        const char *val = argv[++i];
        if (!strcmp(o, "--taps")) a->taps = val;
        else if (!strcmp(o, "--label")) a->label = val;
        else if (!strcmp(o, "-o")) a->out = val;
        else if (!strcmp(o, "--model")) a->model = val;
        else if (!strcmp(o, "--dataset")) a->dataset = val;
        else if (!strcmp(o, "--png")) a->png = val;
        else if (!strcmp(o, "--probe")) {
            if (!strcmp(val, "logistic")) a->po.kind = RWKV_PROBE_LOGISTIC;
            else if (!strcmp(val, "ridge")) a->po.kind = RWKV_PROBE_RIDGE;
            else return cli_usage_error(cmd, "--probe expects logistic or ridge, got '%s'", val);
            a->kind_given = 1;
        } else if (!strcmp(o, "--folds")) {
            if (!cli_parse_int(cmd, o, val, 2, 64, &v)) return CLI_USAGE;
            a->po.folds = (int)v;
        } else if (!strcmp(o, "--seed")) {
            if (!cli_parse_int(cmd, o, val, 0, INT32_MAX, &v)) return CLI_USAGE;
            a->po.seed = (uint64_t)v;
        } else if (!strcmp(o, "--l2")) {
            if (!cli_parse_double(cmd, o, val, &a->po.lr.l2)) return CLI_USAGE;
            if (a->po.lr.l2 < 0) return cli_usage_error(cmd, "--l2 must be >= 0");
        } else if (!strcmp(o, "--ftol")) {
            if (!cli_parse_double(cmd, o, val, &a->po.lr.ftol)) return CLI_USAGE;
        } else if (!strcmp(o, "--max-iter")) {
            if (!cli_parse_int(cmd, o, val, 1, 100000, &v)) return CLI_USAGE;
            a->po.lr.max_iter = (int)v;
        } else if (!strcmp(o, "--max-train")) {
            if (!cli_parse_int(cmd, o, val, 0, INT32_MAX, &v)) return CLI_USAGE;
            a->po.max_train = (int)v;
        } else if (!strcmp(o, "--boot")) {
            if (!cli_parse_int(cmd, o, val, 10, 1000000, &v)) return CLI_USAGE;
            a->po.n_boot = (int)v;
        } else if (!strcmp(o, "--max-d")) {
            if (!cli_parse_int(cmd, o, val, 1, HORIZON_MAX_D, &a->max_d)) return CLI_USAGE;
        } else if (!strcmp(o, "--threads")) {
            if (!cli_parse_int(cmd, o, val, 0, CLI_MAX_THREADS, &a->threads)) return CLI_USAGE;
        } else return cli_usage_error(cmd, "unknown option '%s'", o);
    }
    if (!a->dump) return cli_usage_error(cmd, "missing DUMP.h5");
    if (!a->out) return cli_usage_error(cmd, "missing -o OUTPUT.csv");
    if (!a->taps) return cli_usage_error(cmd, "missing --taps PATTERNS");
    if (a->horizon && !a->max_d) return cli_usage_error(cmd, "missing --max-d D");
    if (!a->horizon && !a->label) return cli_usage_error(cmd, "missing --label SPEC|FILE");
    return CLI_OK;
}

// One stderr line: the score with its interval, and for logistic probes the majority rate and
// macro-F1 beside it, the control, selectivity and a warning for a fit stopped by --max-iter.
static void report(void *ctx, const char *what, const rwkv_probe_opts *po, const rwkv_probe_row *r) {
    (void)ctx;
    const rwkv_probe_result *m = &r->main;
    if (po->kind == RWKV_PROBE_LOGISTIC)
        fprintf(stderr, "%s: accuracy %.4f [%.4f, %.4f], majority rate %.4f, macro-F1 %.4f, control %.4f "
                "(majority %.4f), selectivity %.4f%s\n", what, m->score.value, m->score.lo, m->score.hi,
                m->chance, m->f1.value, r->control.score.value, r->control.chance,
                m->score.value - r->control.score.value,
                m->converged && r->control.converged ? "" : " (a fit hit --max-iter: not converged)");
    else
        fprintf(stderr, "%s: R^2 %.4f [%.4f, %.4f], control %.4f, selectivity %.4f\n", what, m->score.value,
                m->score.lo, m->score.hi, r->control.score.value, m->score.value - r->control.score.value);
}

// The library's options from the command line's.
static rwkv_probe_sweep_opts sweep_opts(const probe_args *a) {
    return (rwkv_probe_sweep_opts){.dump = a->dump, .taps = a->taps, .model = a->model, .no_baseline = a->no_baseline,
                                   .po = a->po, .kind_given = a->kind_given, .progress = report};
}

static int cmd_probe_one(probe_args *a) {
    rwkv_probe_sweep_opts o = sweep_opts(a);
    rwkv_status st = rwkv_probe_sweep(a->out, &o, a->label, a->dataset);
    if (st) return cli_fail("probe", st, "check the dump and label with 'rwkvscope probe --help'");
    return CLI_OK;
}

// PNG path: --png, or the CSV path with its extension replaced by -plot.png. (The plot
// writes its data beside the image as <stem>.csv, which must not be the output CSV.)
static void png_path(char *buf, size_t n, const probe_args *a) {
    if (a->png) { snprintf(buf, n, "%s", a->png); return; }
    snprintf(buf, n, "%s", a->out);
    char *dot = strrchr(buf, '.'), *slash = strrchr(buf, '/');
    if (dot && (!slash || dot > slash)) *dot = '\0';
    if (strlen(buf) + 10 < n) strcat(buf, "-plot.png");
}

static void horizon_plot(const probe_args *a, const rwkv_probe_horizon_result *h) {
    int D = h->D;
    double *x = malloc(sizeof(double) * D);
    const char **np = malloc(sizeof(char *) * (size_t)h->n_curves);
    if (!x || !np) { free(x); free(np); return; }
    for (int d = 0; d < D; d++) x[d] = d + 1;
    for (int i = 0; i < h->n_curves; i++) np[i] = h->names[i];
    char png[1024], data[1100];
    png_path(png, sizeof png, a);
    if (!rwkv_plot_data_path(png, data, sizeof data) && !strcmp(data, a->out)) {
        fprintf(stderr, "rwkvscope probe horizon: --png %s would write its data over %s; no plot\n", png, a->out);
        free(x); free(np);
        return;
    }
    rwkv_plot_opts po = {"memory horizon: token@-d decoded from the state", "distance d (tokens)",
                         "probe accuracy", 0, 0, 0, 0, 0};
    rwkv_status st = rwkv_plot_lines(png, &po, x, h->acc, D, h->n_curves, np);
    if (st) fprintf(stderr, "rwkvscope probe horizon: no plot (%s); the CSV has the data\n", rwkv_error_message());
    else fprintf(stderr, "probe horizon: wrote %s\n", png);
    free(x); free(np);
}

static int cmd_probe_horizon(probe_args *a) {
    const char *cmd = "probe horizon";
    if (a->kind_given && a->po.kind != RWKV_PROBE_LOGISTIC)
        return cli_usage_error(cmd, "token@-d labels are classes: --probe must be logistic");
    rwkv_probe_sweep_opts o = sweep_opts(a);
    rwkv_probe_horizon_result h;
    rwkv_status st = rwkv_probe_horizon(&h, a->out, &o, (int)a->max_d);
    if (st) return cli_fail(cmd, st, NULL);
    horizon_plot(a, &h);
    rwkv_probe_horizon_free(&h);
    return CLI_OK;
}

int cmd_probe(int argc, char **argv) {
    probe_args a = {0};
    a.horizon = argc > 1 && !strcmp(argv[1], "horizon");
    if (cli_wants_help(argc, argv)) {
        printf("%s", USAGE);
        return CLI_OK;
    }
    int rc = a.horizon ? parse_args(&a, argc - 1, argv + 1) : parse_args(&a, argc, argv);
    if (rc != CLI_OK) return rc;
    cli_set_threads((int)a.threads);
    return a.horizon ? cmd_probe_horizon(&a) : cmd_probe_one(&a);
}
