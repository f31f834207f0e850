// sweep.c: probe tables: one label at every selected tap (with its control task and the
// baseline), and the memory horizon, token@-d for d = 1..D. Independent fits run in parallel.
#include "sweep.h"

#include "../analyses/plot.h"
#include "../core/base/file.h"
#include "../core/model/model.h"

#include <cblas.h>
#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

// Baseline features: the embedding of each row's token (--model), else the dump's
// /blocks/0/resid_in (ln0 of that embedding), else none (*Xb = NULL).
static rwkv_status load_baseline(const rwkv_probe_sweep_opts *a, const rwkv_dumpview *v, rwkv_real **Xb, int *Db) {
    *Xb = NULL;
    *Db = 0;
    if (a->no_baseline) return RWKV_OK;
    if (!a->model) {
        if (!rwkv_dumpview_has(v, 0, "resid_in")) return RWKV_OK;
        rwkv_feature_ref f = {.layer = 0, .name = "resid_in"};
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
static rwkv_status run_probe(rwkv_probe_row *out, const rwkv_dumpview *v, const rwkv_real *X, int D,
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
                    const rwkv_probe_opts *po, const rwkv_probe_row *r) {
    const rwkv_probe_result *m = &r->main;
    int logistic = po->kind == RWKV_PROBE_LOGISTIC;
    if (d >= 0) fprintf(f, "%d,", d);
    char tap[RWKV_FEATURE_LABEL_MAX];
    fprintf(f, "%d,%s,%s,%s,%lld,%d,%d,%s,%.6f,%.6f,%.6f,", fr->layer, rwkv_feature_label(fr, tap), l->name,
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

// Shared setup: the dump, the feature list, the control types, the baseline.
typedef struct {
    rwkv_dumpview *v;
    rwkv_feature_ref *refs;
    int n_refs, Db;
    int *types;       // (N) the token each row's control label is keyed to
    double *y_ctrl;   // (N)
    rwkv_real *Xb;    // (N, Db) baseline features or NULL
    rwkv_atomic_file out_file;
    FILE *out;        // out_file's stream: rows appear in out_file.tmp as they are fitted
} probe_ctx;

// Frees c; the CSV is renamed into place only after a run without error (st).
static rwkv_status ctx_close(probe_ctx *c, rwkv_status st) {
    rwkv_dumpview_free(c->v);
    free(c->refs); free(c->types); free(c->y_ctrl); free(c->Xb);
    if (c->out && !st) st = rwkv_file_atomic_commit(&c->out_file);
    else if (c->out) rwkv_file_atomic_abort(&c->out_file);
    return st;
}

static void ctx_free(probe_ctx *c) { ctx_close(c, RWKV_ERR_ARG); }

static rwkv_status ctx_open(probe_ctx *c, const rwkv_probe_sweep_opts *a, const char *out) {
    rwkv_status st = rwkv_dumpview_open(&c->v, a->dump);
    if (!st) st = rwkv_dumpview_match(c->v, a->taps, &c->refs, &c->n_refs);
    if (!st && (a->heads || a->svd)) {
        rwkv_feature_ref *whole = c->refs;
        st = a->heads ? rwkv_dumpview_by_head(c->v, whole, c->n_refs, a->heads, a->svd, &c->refs, &c->n_refs)
                      : rwkv_error_set(RWKV_ERR_ARG, "svd %d: singular triplets are per head; give heads", a->svd);
        if (st) c->refs = NULL;
        free(whole);
    }
    if (st) return st;
    c->types = rwkv_calloc((size_t)c->v->n_rows + 1, sizeof(int), "token types");
    c->y_ctrl = rwkv_calloc((size_t)c->v->n_rows + 1, sizeof(double), "control labels");
    if (!c->types || !c->y_ctrl) return RWKV_ERR_NOMEM;
    if ((st = load_baseline(a, c->v, &c->Xb, &c->Db))) return st;
    if ((st = rwkv_file_atomic_open(&c->out_file, out, 1, 1))) return st;
    c->out = c->out_file.f;
    return RWKV_OK;
}

static rwkv_status load_label(rwkv_labels **l, const rwkv_dumpview *v, const char *spec, const char *dataset) {
    size_t n = strlen(spec);
    int is_file = (n > 4 && !strcmp(spec + n - 4, ".csv")) || (n > 3 && !strcmp(spec + n - 3, ".h5")) ||
                  !strcmp(spec, RWKV_LABELS_STDIN);
    return is_file ? rwkv_labels_read(l, v, spec) : rwkv_labels_builtin(l, v, spec, dataset);
}

rwkv_status rwkv_probe_sweep(const char *csv_path, const rwkv_probe_sweep_opts *o, const char *label,
                             const char *dataset) {
    probe_ctx c = {0};
    rwkv_labels *l = NULL;
    rwkv_probe_opts po = o->po;
    rwkv_status st = ctx_open(&c, o, csv_path);
    if (!st) st = load_label(&l, c.v, label, dataset);
    if (st) { ctx_free(&c); rwkv_labels_free(l); return st; }
    if (!o->kind_given) po.kind = l->kind == RWKV_LABEL_CLASS ? RWKV_PROBE_LOGISTIC : RWKV_PROBE_RIDGE;
    rwkv_labels_control_types(c.types, c.v, l->name);
    rwkv_probe_row row = {0};
    if (c.Xb) { // the baseline does not depend on the tap: fit it once
        rwkv_probe_data d = {c.Xb, c.v->n_rows, c.Db, l->value, l->valid, c.v->row_seq, c.v->n_seq, "baseline"};
        probe_job job = {d, &row.base, RWKV_OK, "", "baseline: "};
        st = run_jobs(&job, 1, &po);
        row.has_base = !st;
    }
    if (!st) csv_header(c.out, 0);
    for (int i = 0; !st && i < c.n_refs; i++) {
        rwkv_real *X = NULL;
        int D = 0;
        st = rwkv_dumpview_read(c.v, &c.refs[i], &X, &D);
        if (!st) st = run_probe(&row, c.v, X, D, l, c.types, c.y_ctrl, &po);
        free(X);
        char tap[RWKV_FEATURE_LABEL_MAX];
        if (st) { rwkv_error_wrap(st, "blocks.%d.%s: ", c.refs[i].layer, rwkv_feature_label(&c.refs[i], tap)); break; }
        csv_row(c.out, -1, &c.refs[i], l, &po, &row);
        if (o->progress) {
            char what[256], tap[RWKV_FEATURE_LABEL_MAX];
            snprintf(what, sizeof what, "probe [%d/%d] blocks.%d.%s %s", i + 1, c.n_refs, c.refs[i].layer,
                     rwkv_feature_label(&c.refs[i], tap), l->name);
            o->progress(o->progress_ctx, what, &po, &row);
        }
    }
    rwkv_labels_free(l);
    return ctx_close(&c, st);
}

// One distance d: every tap's probe and control, and the baseline, as parallel jobs.
static rwkv_status horizon_step(probe_ctx *c, const rwkv_probe_sweep_opts *a, rwkv_real **X, const int *Dw,
                                const rwkv_labels *l, int d, int D, double *acc, double *extra) {
    int n = c->n_refs;
    rwkv_probe_row *rows = rwkv_calloc((size_t)n, sizeof *rows, "horizon rows");
    probe_job *jobs = rwkv_calloc(2 * (size_t)n + 1, sizeof *jobs, "horizon jobs");
    if (!rows || !jobs) { free(rows); free(jobs); return RWKV_ERR_NOMEM; }
    rwkv_probe_data d0 = {NULL, c->v->n_rows, 0, l->value, l->valid, c->v->row_seq, c->v->n_seq, l->name};
    rwkv_labels_control_types(c->types, c->v, l->name); // keyed to token@-d's token
    rwkv_status st = rwkv_probe_control(c->y_ctrl, &d0, c->types, a->po.seed); // same for every tap
    int nj = 0;
    rwkv_probe_row base = {0};
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
        if (a->progress) {
            char what[256], tap[RWKV_FEATURE_LABEL_MAX];
            snprintf(what, sizeof what, "probe horizon d=%d blocks.%d.%s", d, c->refs[i].layer,
                     rwkv_feature_label(&c->refs[i], tap));
            a->progress(a->progress_ctx, what, &a->po, &rows[i]);
        }
    }
    if (!st) { // the majority rate and the baseline, drawn beside the curves
        extra[d - 1] = rows[0].main.chance;
        extra[D + d - 1] = c->Xb ? base.main.score.value : NAN;
    }
    free(rows);
    free(jobs);
    return st;
}

// The curves' names: each tap, the majority rate, the baseline.
static rwkv_status horizon_names(rwkv_probe_horizon_result *r, const probe_ctx *c) {
    r->n_curves = c->n_refs + 1 + (c->Xb != NULL);
    r->names = rwkv_calloc((size_t)r->n_curves, sizeof *r->names, "horizon curve names");
    if (!r->names) return RWKV_ERR_NOMEM;
    for (int i = 0; i < c->n_refs; i++) {
        char tap[RWKV_FEATURE_LABEL_MAX];
        snprintf(r->names[i], sizeof r->names[i], "layer %d %.100s", c->refs[i].layer, rwkv_feature_label(&c->refs[i], tap));
    }
    snprintf(r->names[c->n_refs], sizeof r->names[0], "majority class (chance)");
    if (c->Xb) snprintf(r->names[c->n_refs + 1], sizeof r->names[0], "baseline (input embedding)");
    return RWKV_OK;
}

rwkv_status rwkv_probe_horizon(rwkv_probe_horizon_result *out, const char *csv_path, const rwkv_probe_sweep_opts *o,
                               int max_d) {
    memset(out, 0, sizeof *out);
    if (o->kind_given && o->po.kind != RWKV_PROBE_LOGISTIC)
        return rwkv_error_set(RWKV_ERR_ARG, "token@-d labels are classes: the probe must be logistic");
    if (max_d < 1) return rwkv_error_set(RWKV_ERR_ARG, "probe horizon: max_d %d is not positive", max_d);
    rwkv_probe_sweep_opts a = *o;
    a.po.kind = RWKV_PROBE_LOGISTIC;
    probe_ctx c = {0};
    rwkv_status st = ctx_open(&c, &a, csv_path);
    if (st) { ctx_free(&c); return st; }
    int D = max_d;
    out->D = D;
    // (refs + 2, D): each tap's accuracy, then the majority rate and the baseline
    out->acc = rwkv_calloc((size_t)(c.n_refs + 2) * D, sizeof(double), "horizon accuracies");
    rwkv_real **X = rwkv_calloc((size_t)c.n_refs, sizeof(rwkv_real *), "horizon features");
    int *Dw = rwkv_calloc((size_t)c.n_refs, sizeof(int), "horizon widths");
    if (!out->acc || !X || !Dw) st = RWKV_ERR_NOMEM;
    if (!st) st = horizon_names(out, &c);
    for (int i = 0; !st && i < c.n_refs; i++) st = rwkv_dumpview_read(c.v, &c.refs[i], &X[i], &Dw[i]);
    if (!st) csv_header(c.out, 1);
    for (int d = 1; !st && d <= D; d++) {
        char spec[32];
        snprintf(spec, sizeof spec, "token@-%d", d);
        rwkv_labels *l = NULL;
        st = rwkv_labels_builtin(&l, c.v, spec, NULL);
        if (!st) st = horizon_step(&c, &a, X, Dw, l, d, D, out->acc, out->acc + (size_t)c.n_refs * D);
        rwkv_labels_free(l);
    }
    for (int i = 0; X && i < c.n_refs; i++) free(X[i]);
    free(X); free(Dw);
    st = ctx_close(&c, st);
    if (st) rwkv_probe_horizon_free(out);
    return st;
}

void rwkv_probe_horizon_free(rwkv_probe_horizon_result *r) {
    if (!r) return;
    free(r->acc);
    free(r->names);
    memset(r, 0, sizeof *r);
}

#define HORIZON_PLOT_NARROW_CURVES 6 // up to this many curves the default 800 x 600 leaves room
#define HORIZON_PLOT_WIDE_W 1100

void rwkv_probe_horizon_png(char *buf, size_t n, const char *csv) {
    snprintf(buf, n, "%s", csv);
    char *dot = strrchr(buf, '.'), *slash = strrchr(buf, '/');
    if (dot && (!slash || dot > slash)) *dot = '\0';
    if (strlen(buf) + 10 < n) strcat(buf, "-plot.png");
}

rwkv_status rwkv_probe_horizon_plot(const rwkv_probe_horizon_result *h, const char *png, const char *csv) {
    char data[1100];
    if (!rwkv_plot_data_path(png, data, sizeof data) && !strcmp(data, csv))
        return rwkv_error_set(RWKV_ERR_ARG, "plot %s would write its data over %s", png, csv);
    double *x = rwkv_calloc((size_t)h->D, sizeof *x, "horizon plot");
    const char **names = rwkv_calloc((size_t)h->n_curves, sizeof *names, "horizon plot");
    rwkv_status st = x && names ? RWKV_OK : RWKV_ERR_NOMEM;
    for (int d = 0; !st && d < h->D; d++) x[d] = d + 1;
    for (int i = 0; !st && i < h->n_curves; i++) names[i] = h->names[i];
    // The legend sits outside on the right: widen the picture when it lists many curves.
    rwkv_plot_opts po = {.title = "memory horizon: token@-d decoded from the state",
                         .xlabel = "distance d (tokens)", .ylabel = "probe accuracy",
                         .width = h->n_curves > HORIZON_PLOT_NARROW_CURVES ? HORIZON_PLOT_WIDE_W : 0};
    if (!st) st = rwkv_plot_lines(png, &po, x, h->acc, h->D, h->n_curves, names);
    free(x);
    free(names);
    return st;
}
