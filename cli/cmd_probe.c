// cmd_probe.c: rwkvscope probe (one label, many taps) and rwkvscope probe horizon
// (token@-d for d = 1..D, accuracy against d per layer, CSV + PNG).
#include "cli.h"
#include "options.h"

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
    "                       label file (.csv/.h5, docs/probe-labels.md; - reads a CSV from stdin)\n"
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
    "  --head H|LIST|all    RWKV-5.2/7 dumps: one probe per head of each (H, N, N) tap\n"
    "                       (state_wkv), on that head's N*N state entries; tap column\n"
    "                       'state_wkv:H' (docs/probe-labels.md)\n"
    "  --svd K              with --head: the head's top-K singular values and vectors\n"
    "                       (K (2N+1) features, 1 <= K <= N) instead of its entries\n"
    "  --max-d D            horizon: largest distance (1 <= D <= 4096)\n"
    "  --png PATH           horizon: plot path (default: the CSV path with -plot.png; the plot's\n"
    "                       data and gnuplot script go beside it as <stem>.csv and <stem>.gp)\n"
    "  --threads N          threads for BLAS (default: all cores)\n"
    "  -o, --output PATH    output CSV (- for stdout)\n"
    "  --force              replace an existing output\n";

typedef struct {
    const char *dump, *label, *taps, *out, *model, *dataset, *png, *heads;
    long svd;
    rwkv_probe_opts po;
    int kind_given, no_baseline, horizon, force;
    long max_d;
    cli_model_opts mo; // --threads
} probe_args;

static void usage(FILE *f) { fputs(USAGE, f); }

enum { O_TAPS = CLI_OPT_USER, O_LABEL, O_MODEL, O_DATASET, O_PNG, O_PROBE, O_FOLDS, O_SEED, O_L2, O_FTOL,
       O_MAX_ITER, O_MAX_TRAIN, O_BOOT, O_MAX_D, O_NO_BASELINE, O_HEAD, O_SVD };

#define PROBE_MAX_SVD 4096 // the dump's head size bounds --svd (checked by the library)

// One option of the command's own; 0 after a usage error.
static int probe_option(probe_args *a, const char *cmd, int c, const char *val) {
    long v;
    switch (c) {
    case O_TAPS: a->taps = val; return 1;
    case O_LABEL: a->label = val; return 1;
    case O_MODEL: a->model = val; return 1;
    case O_DATASET: a->dataset = val; return 1;
    case O_PNG: a->png = val; return 1;
    case O_NO_BASELINE: a->no_baseline = 1; return 1;
    case O_HEAD: a->heads = val; return 1;
    case O_SVD: return cli_parse_int(cmd, "--svd", val, 1, PROBE_MAX_SVD, &a->svd);
    case O_PROBE:
        if (!strcmp(val, "logistic")) a->po.kind = RWKV_PROBE_LOGISTIC;
        else if (!strcmp(val, "ridge")) a->po.kind = RWKV_PROBE_RIDGE;
        else return !cli_usage_error(cmd, "--probe expects logistic or ridge, got '%s'", val);
        a->kind_given = 1;
        return 1;
    case O_FOLDS: if (!cli_parse_int(cmd, "--folds", val, 2, 64, &v)) return 0; a->po.folds = (int)v; return 1;
    case O_SEED: if (!cli_parse_int(cmd, "--seed", val, 0, INT32_MAX, &v)) return 0; a->po.seed = (uint64_t)v; return 1;
    case O_L2:
        if (!cli_parse_double(cmd, "--l2", val, &a->po.lr.l2)) return 0;
        return a->po.lr.l2 >= 0 || !cli_usage_error(cmd, "--l2 must be >= 0");
    case O_FTOL: return cli_parse_double(cmd, "--ftol", val, &a->po.lr.ftol);
    case O_MAX_ITER: if (!cli_parse_int(cmd, "--max-iter", val, 1, 100000, &v)) return 0; a->po.lr.max_iter = (int)v; return 1;
    case O_MAX_TRAIN: if (!cli_parse_int(cmd, "--max-train", val, 0, INT32_MAX, &v)) return 0; a->po.max_train = (int)v; return 1;
    case O_BOOT: if (!cli_parse_int(cmd, "--boot", val, 10, 1000000, &v)) return 0; a->po.n_boot = (int)v; return 1;
    case O_MAX_D: return cli_parse_int(cmd, "--max-d", val, 1, HORIZON_MAX_D, &a->max_d);
    }
    return 1;
}

static int parse_args(probe_args *a, int argc, char **argv) {
    static const struct option OPTS[] = {
        {"taps", required_argument, NULL, O_TAPS}, {"label", required_argument, NULL, O_LABEL},
        {"model", required_argument, NULL, O_MODEL}, {"dataset", required_argument, NULL, O_DATASET},
        {"png", required_argument, NULL, O_PNG}, {"probe", required_argument, NULL, O_PROBE},
        {"folds", required_argument, NULL, O_FOLDS}, {"seed", required_argument, NULL, O_SEED},
        {"l2", required_argument, NULL, O_L2}, {"ftol", required_argument, NULL, O_FTOL},
        {"max-iter", required_argument, NULL, O_MAX_ITER}, {"max-train", required_argument, NULL, O_MAX_TRAIN},
        {"boot", required_argument, NULL, O_BOOT}, {"max-d", required_argument, NULL, O_MAX_D},
        {"no-baseline", no_argument, NULL, O_NO_BASELINE}, {"threads", required_argument, NULL, CLI_OPT_THREADS},
        {"head", required_argument, NULL, O_HEAD}, {"svd", required_argument, NULL, O_SVD},
        CLI_OPTIONS_OUTPUT, CLI_OPTIONS_END};
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
    cli_parser p = {.cmd = cmd, .help = usage, .opts = OPTS, .max_args = 1, .model = &a->mo, .out = &a->out,
                    .force = &a->force};
    const char *val;
    for (int c; (c = cli_opt_next(&p, argc, argv, &val)) != -1;)
        if (!probe_option(a, cmd, c, val)) return CLI_USAGE;
    if (p.status) return p.status;
    a->dump = p.args[0];
    if (!a->dump) return cli_usage_error(cmd, "missing DUMP.h5");
    if (!a->out) return cli_usage_error(cmd, "missing -o OUTPUT.csv");
    if (!a->taps) return cli_usage_error(cmd, "missing --taps PATTERNS");
    if (a->horizon && !a->max_d) return cli_usage_error(cmd, "missing --max-d D");
    if (!a->horizon && !a->label) return cli_usage_error(cmd, "missing --label SPEC|FILE");
    if (a->svd && !a->heads) return cli_usage_error(cmd, "--svd K needs --head (singular vectors are per head)");
    if (a->label && a->dataset && !strcmp(a->label, "-") && !strcmp(a->dataset, "-"))
        return cli_usage_error(cmd, "--label - and --dataset -: only one of them can read stdin");
    a->label = cli_path_in(a->label); // - : CSV labels from stdin (an HDF5 label file must be seekable)
    a->dataset = cli_path_in(a->dataset);
    if (a->horizon && !strcmp(a->out, "-") && !a->png)
        return cli_usage_error(cmd, "-o -: the plot goes beside the CSV; give --png PATH too");
    if (!cli_check_output(cmd, a->out, a->force)) return CLI_USAGE;
    a->out = cli_path_out(a->out);
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
                                   .heads = a->heads, .svd = (int)a->svd, .po = a->po, .kind_given = a->kind_given,
                                   .progress = report};
}

static int cmd_probe_one(probe_args *a) {
    rwkv_probe_sweep_opts o = sweep_opts(a);
    rwkv_status st = rwkv_probe_sweep(a->out, &o, a->label, a->dataset);
    if (st) return cli_fail("probe", st, "check the dump and label with 'rwkvscope probe --help'");
    return CLI_OK;
}

// The plot beside the CSV (or at --png); a failed plot leaves the CSV and says so.
static void horizon_plot(const probe_args *a, const rwkv_probe_horizon_result *h) {
    char png[1024];
    if (a->png) snprintf(png, sizeof png, "%s", a->png);
    else rwkv_probe_horizon_png(png, sizeof png, a->out);
    rwkv_status st = rwkv_probe_horizon_plot(h, png, a->out);
    if (st) fprintf(stderr, "rwkvscope probe horizon: no plot (%s); the CSV has the data\n", rwkv_error_message());
    else fprintf(stderr, "probe horizon: wrote %s\n", png);
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
    int rc = a.horizon ? parse_args(&a, argc - 1, argv + 1) : parse_args(&a, argc, argv);
    if (rc != CLI_OK) return cli_opt_exit(rc);
    cli_set_threads((int)a.mo.threads);
    return a.horizon ? cmd_probe_horizon(&a) : cmd_probe_one(&a);
}
