// cmd_probe.c: rwkvscope probe (one label, many taps) and rwkvscope probe horizon
// (token@-d for d = 1..D, accuracy against d per layer, CSV + PNG).
#include "cli.h"

#include "analyses/plot.h"
#include "core/model/model.h"
#include "probes/dumpview.h"
#include "probes/labels.h"
#include "probes/probe.h"

#include <cblas.h>
#include <omp.h>
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

// Baseline features: the embedding of each row's token (--model), else the dump's
// /blocks/0/resid_in (ln0 of that embedding), else none (*Xb = NULL).
static rwkv_status load_baseline(const probe_args *a, const rwkv_dumpview *v, rwkv_real **Xb, int *Db) {
    *Xb = NULL;
    *Db = 0;
    if (a->no_baseline) return RWKV_OK;
    if (!a->model) {
        if (!rwkv_dumpview_has(v, 0, "resid_in")) return RWKV_OK;
        rwkv_feature_ref f = {0, "resid_in"};
        return rwkv_dumpview_read(v, &f, Xb, Db);
    }
    rwkv_model *m = NULL;
    rwkv_status st = rwkv_model_load(&m, a->model);
    if (st) return rwkv_error_wrap(st, "baseline: ");
    int C = m->cfg.n_embd, V = m->cfg.n_vocab;
    *Xb = rwkv_calloc((size_t)v->n_rows * C + 1, sizeof(rwkv_real), "baseline embeddings");
    if (!*Xb) st = RWKV_ERR_NOMEM;
    for (int64_t r = 0; !st && r < v->n_rows; r++) {
        int t = rwkv_dumpview_token_at(v, r, 0);
        if (t < 0 || t >= V)
            st = rwkv_error_set(RWKV_ERR_ARG, "baseline: %s: row %lld has token %d but %s has %d tokens",
                                v->path, (long long)r, t, a->model, V);
        else memcpy(*Xb + r * C, m->w.emb + (size_t)t * C, (size_t)C * sizeof(rwkv_real));
    }
    rwkv_model_free(m);
    if (st) { free(*Xb); *Xb = NULL; }
    *Db = C;
    return st;
}

typedef struct {
    rwkv_probe_result main, control, base;
    int has_base;
} probe_row;

// One probe fit to run: independent fits run in parallel, one per OpenMP thread, each with
// a single-threaded BLAS (small GEMMs scale better this way than with threaded BLAS calls).
typedef struct {
    rwkv_probe_data d;
    rwkv_probe_result *res;
    rwkv_status st;
    char msg[512]; // the failing thread's error message (messages are thread-local)
    const char *what; // prefix for the message
} probe_job;

static rwkv_status run_jobs(probe_job *jobs, int n, const rwkv_probe_opts *po) {
    openblas_set_num_threads(1);
    #pragma omp parallel for schedule(dynamic)
    for (int j = 0; j < n; j++) {
        jobs[j].st = rwkv_probe_run(jobs[j].res, &jobs[j].d, po);
        if (jobs[j].st) snprintf(jobs[j].msg, sizeof jobs[j].msg, "%s", rwkv_error_message());
    }
    openblas_set_num_threads(omp_get_max_threads());
    for (int j = 0; j < n; j++)
        if (jobs[j].st) return rwkv_error_set(jobs[j].st, "%s%s", jobs[j].what ? jobs[j].what : "", jobs[j].msg);
    return RWKV_OK;
}

// The probe and its control task (types = the row's own token), in parallel.
static rwkv_status run_probe(probe_row *out, const rwkv_dumpview *v, const rwkv_real *X, int D,
                             const rwkv_labels *l, const int *types, double *y_ctrl,
                             const rwkv_probe_opts *po) {
    rwkv_probe_data d = {X, v->n_rows, D, l->value, l->valid, v->row_seq, v->n_seq, l->name};
    rwkv_status st = rwkv_probe_control(y_ctrl, &d, types, po->seed);
    if (st) return st;
    probe_job jobs[2] = {{d, &out->main, RWKV_OK, "", NULL}, {d, &out->control, RWKV_OK, "", "control task: "}};
    jobs[1].d.y = y_ctrl;
    return run_jobs(jobs, 2, po);
}

static void csv_header(FILE *f, int horizon) {
    fprintf(f, "%slayer,tap,label,probe,rows,sequences,classes,metric,score,ci_lo,ci_hi,macro_f1,f1_ci_lo,"
               "f1_ci_hi,chance,control,selectivity,baseline,lambda,max_iters,converged,control_chance\n", horizon ? "d," : "");
}

static void csv_row(FILE *f, int d, const rwkv_feature_ref *fr, const rwkv_labels *l,
                    const rwkv_probe_opts *po, const probe_row *r) {
    const rwkv_probe_result *m = &r->main;
    int logistic = po->kind == RWKV_PROBE_LOGISTIC;
    if (d >= 0) fprintf(f, "%d,", d);
    fprintf(f, "%d,%s,%s,%s,%lld,%d,%d,%s,%.6f,%.6f,%.6f,", fr->layer, fr->name, l->name,
            logistic ? "logistic" : "ridge", (long long)m->n_rows, m->n_groups, m->n_classes,
            logistic ? "accuracy" : "r2", m->score.value, m->score.lo, m->score.hi);
    if (logistic) fprintf(f, "%.6f,%.6f,%.6f,%.6f,", m->f1.value, m->f1.lo, m->f1.hi, m->chance);
    else fprintf(f, ",,,,");
    fprintf(f, "%.6f,%.6f,", r->control.score.value, m->score.value - r->control.score.value);
    if (r->has_base) fprintf(f, "%.6f,", r->base.score.value);
    else fprintf(f, ",");
    fprintf(f, "%g,%d,%d,", m->lambda, m->max_iters, m->converged && r->control.converged);
    if (logistic) fprintf(f, "%.6f\n", r->control.chance);
    else fprintf(f, "\n");
    fflush(f);
}

// One stderr line: the score with its interval, and for logistic probes the majority rate and
// macro-F1 beside it, the control, selectivity and a warning for a fit stopped by --max-iter.
static void report(const char *what, const rwkv_probe_opts *po, const probe_row *r) {
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

// Shared setup: the dump, the feature list, the control types, the baseline.
typedef struct {
    rwkv_dumpview *v;
    rwkv_feature_ref *refs;
    int n_refs, Db;
    int *types;       // (N) the token each row's control label is keyed to
    double *y_ctrl;   // (N)
    rwkv_real *Xb;    // (N, Db) baseline features or NULL
    FILE *out;
} probe_ctx;

static void ctx_free(probe_ctx *c) {
    rwkv_dumpview_free(c->v);
    free(c->refs); free(c->types); free(c->y_ctrl); free(c->Xb);
    if (c->out) fclose(c->out);
}

static rwkv_status ctx_open(probe_ctx *c, const probe_args *a) {
    rwkv_status st = rwkv_dumpview_open(&c->v, a->dump);
    if (!st) st = rwkv_dumpview_match(c->v, a->taps, &c->refs, &c->n_refs);
    if (st) return st;
    c->types = rwkv_calloc((size_t)c->v->n_rows + 1, sizeof(int), "token types");
    c->y_ctrl = rwkv_calloc((size_t)c->v->n_rows + 1, sizeof(double), "control labels");
    if (!c->types || !c->y_ctrl) return RWKV_ERR_NOMEM;
    if ((st = load_baseline(a, c->v, &c->Xb, &c->Db))) return st;
    c->out = fopen(a->out, "w");
    if (!c->out) return rwkv_error_set(RWKV_ERR_IO, "%s: cannot write the output CSV", a->out);
    return RWKV_OK;
}

static rwkv_status load_label(rwkv_labels **l, const rwkv_dumpview *v, const char *spec, const char *dataset) {
    size_t n = strlen(spec);
    int is_file = (n > 4 && !strcmp(spec + n - 4, ".csv")) || (n > 3 && !strcmp(spec + n - 3, ".h5"));
    return is_file ? rwkv_labels_read(l, v, spec) : rwkv_labels_builtin(l, v, spec, dataset);
}

static int cmd_probe_one(probe_args *a) {
    const char *cmd = "probe";
    probe_ctx c = {0};
    rwkv_labels *l = NULL;
    rwkv_status st = ctx_open(&c, a);
    if (!st) st = load_label(&l, c.v, a->label, a->dataset);
    if (st) { ctx_free(&c); rwkv_labels_free(l); return cli_fail(cmd, st, NULL); }
    if (!a->kind_given) a->po.kind = l->kind == RWKV_LABEL_CLASS ? RWKV_PROBE_LOGISTIC : RWKV_PROBE_RIDGE;
    rwkv_labels_control_types(c.types, c.v, l->name);
    probe_row row = {0};
    if (c.Xb) { // the baseline does not depend on the tap: fit it once
        rwkv_probe_data d = {c.Xb, c.v->n_rows, c.Db, l->value, l->valid, c.v->row_seq, c.v->n_seq, "baseline"};
        probe_job job = {d, &row.base, RWKV_OK, "", "baseline: "};
        st = run_jobs(&job, 1, &a->po);
        row.has_base = !st;
    }
    if (!st) csv_header(c.out, 0);
    for (int i = 0; !st && i < c.n_refs; i++) {
        rwkv_real *X = NULL;
        int D = 0;
        st = rwkv_dumpview_read(c.v, &c.refs[i], &X, &D);
        if (!st) st = run_probe(&row, c.v, X, D, l, c.types, c.y_ctrl, &a->po);
        free(X);
        if (st) { rwkv_error_wrap(st, "blocks.%d.%s: ", c.refs[i].layer, c.refs[i].name); break; }
        csv_row(c.out, -1, &c.refs[i], l, &a->po, &row);
        char what[256];
        snprintf(what, sizeof what, "probe [%d/%d] blocks.%d.%s %s", i + 1, c.n_refs, c.refs[i].layer,
                 c.refs[i].name, l->name);
        report(what, &a->po, &row);
    }
    rwkv_labels_free(l);
    ctx_free(&c);
    if (st) return cli_fail(cmd, st, "check the dump and label with 'rwkvscope probe --help'");
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

static void horizon_plot(const probe_args *a, const probe_ctx *c, const double *acc) {
    int D = (int)a->max_d;
    double *x = malloc(sizeof(double) * D);
    int n = c->n_refs + 1 + (c->Xb != NULL); // the taps, the majority rate, the baseline
    char (*names)[128] = malloc(sizeof *names * (size_t)n);
    const char **np = malloc(sizeof(char *) * (size_t)n);
    if (!x || !names || !np) { free(x); free(names); free(np); return; }
    for (int d = 0; d < D; d++) x[d] = d + 1;
    for (int i = 0; i < c->n_refs; i++) {
        snprintf(names[i], sizeof names[i], "layer %d %s", c->refs[i].layer, c->refs[i].name);
        np[i] = names[i];
    }
    np[c->n_refs] = "majority class (chance)";
    if (c->Xb) np[c->n_refs + 1] = "baseline (input embedding)";
    char png[1024], data[1100];
    png_path(png, sizeof png, a);
    if (!rwkv_plot_data_path(png, data, sizeof data) && !strcmp(data, a->out)) {
        fprintf(stderr, "rwkvscope probe horizon: --png %s would write its data over %s; no plot\n", png, a->out);
        free(x); free(names); free(np);
        return;
    }
    rwkv_plot_opts po = {"memory horizon: token@-d decoded from the state", "distance d (tokens)",
                         "probe accuracy", 0, 0, 0, 0, 0};
    rwkv_status st = rwkv_plot_lines(png, &po, x, acc, D, n, np);
    if (st) fprintf(stderr, "rwkvscope probe horizon: no plot (%s); the CSV has the data\n", rwkv_error_message());
    else fprintf(stderr, "probe horizon: wrote %s\n", png);
    free(x); free(names); free(np);
}

// One distance d: every tap's probe and control, and the baseline, as parallel jobs.
static rwkv_status horizon_step(probe_ctx *c, const probe_args *a, rwkv_real **X, const int *Dw,
                                const rwkv_labels *l, int d, double *acc, double *extra) {
    int n = c->n_refs, D = (int)a->max_d;
    probe_row *rows = rwkv_calloc((size_t)n, sizeof *rows, "horizon rows");
    probe_job *jobs = rwkv_calloc(2 * (size_t)n + 1, sizeof *jobs, "horizon jobs");
    if (!rows || !jobs) { free(rows); free(jobs); return RWKV_ERR_NOMEM; }
    rwkv_probe_data d0 = {NULL, c->v->n_rows, 0, l->value, l->valid, c->v->row_seq, c->v->n_seq, l->name};
    rwkv_labels_control_types(c->types, c->v, l->name); // keyed to token@-d's token
    rwkv_status st = rwkv_probe_control(c->y_ctrl, &d0, c->types, a->po.seed); // same for every tap
    int nj = 0;
    probe_row base = {0};
    for (int i = 0; !st && i < n; i++) {
        d0.X = X[i], d0.D = Dw[i];
        jobs[nj++] = (probe_job){d0, &rows[i].main, RWKV_OK, "", NULL};
        jobs[nj] = (probe_job){d0, &rows[i].control, RWKV_OK, "", "control task: "};
        jobs[nj++].d.y = c->y_ctrl;
    }
    if (!st && c->Xb) {
        d0.X = c->Xb, d0.D = c->Db, d0.name = "baseline";
        jobs[nj++] = (probe_job){d0, &base.main, RWKV_OK, "", "baseline: "};
    }
    if (!st) st = run_jobs(jobs, nj, &a->po);
    for (int i = 0; !st && i < n; i++) {
        rows[i].base = base.main;
        rows[i].has_base = c->Xb != NULL;
        acc[(size_t)i * D + (d - 1)] = rows[i].main.score.value;
        csv_row(c->out, d, &c->refs[i], l, &a->po, &rows[i]);
        char what[256];
        snprintf(what, sizeof what, "probe horizon d=%d blocks.%d.%s", d, c->refs[i].layer, c->refs[i].name);
        report(what, &a->po, &rows[i]);
    }
    if (!st) { // the majority rate and the baseline, drawn beside the curves
        extra[d - 1] = rows[0].main.chance;
        extra[D + d - 1] = c->Xb ? base.main.score.value : NAN;
    }
    free(rows);
    free(jobs);
    return st;
}

static int cmd_probe_horizon(probe_args *a) {
    const char *cmd = "probe horizon";
    probe_ctx c = {0};
    rwkv_status st = ctx_open(&c, a);
    if (st) { ctx_free(&c); return cli_fail(cmd, st, NULL); }
    if (a->kind_given && a->po.kind != RWKV_PROBE_LOGISTIC) {
        ctx_free(&c);
        return cli_usage_error(cmd, "token@-d labels are classes: --probe must be logistic");
    }
    a->po.kind = RWKV_PROBE_LOGISTIC;
    int D = (int)a->max_d;
    // (refs + 2, D): each tap's accuracy, then the majority rate and the baseline
    double *acc = rwkv_calloc((size_t)(c.n_refs + 2) * D, sizeof(double), "horizon accuracies");
    rwkv_real **X = rwkv_calloc((size_t)c.n_refs, sizeof(rwkv_real *), "horizon features");
    int *Dw = rwkv_calloc((size_t)c.n_refs, sizeof(int), "horizon widths");
    if (!acc || !X || !Dw) st = RWKV_ERR_NOMEM;
    for (int i = 0; !st && i < c.n_refs; i++) st = rwkv_dumpview_read(c.v, &c.refs[i], &X[i], &Dw[i]);
    if (!st) csv_header(c.out, 1);
    for (int d = 1; !st && d <= D; d++) {
        char spec[32];
        snprintf(spec, sizeof spec, "token@-%d", d);
        rwkv_labels *l = NULL;
        st = rwkv_labels_builtin(&l, c.v, spec, NULL);
        if (!st) st = horizon_step(&c, a, X, Dw, l, d, acc, acc + (size_t)c.n_refs * D);
        rwkv_labels_free(l);
    }
    if (!st) horizon_plot(a, &c, acc);
    for (int i = 0; X && i < c.n_refs; i++) free(X[i]);
    free(X); free(Dw); free(acc);
    ctx_free(&c);
    if (st) return cli_fail(cmd, st, NULL);
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
