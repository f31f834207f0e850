// probe.c: grouped k-fold probes (logistic or ridge), control labels, pooled scores.
#include "probe.h"

#include "ridge.h"

#include <gsl/gsl_randist.h>
#include <gsl/gsl_rng.h>
#include <stdlib.h>
#include <string.h>

#define PROBE_DEFAULT_FOLDS 5
#define PROBE_DEFAULT_MAX_TRAIN 20000
#define PROBE_DEFAULT_BOOT 1000
#define PROBE_DEFAULT_L2 1e-3      // lambda of the logistic probe on standardised features
#define PROBE_DEFAULT_ITERS 200
#define PROBE_DEFAULT_GTOL 1e-5
#define PROBE_DEFAULT_FTOL 1e-7
#define PROBE_MIN_SD_REL 1e-9      // a column with sd <= this * |mean| (or 0) is only centred;
                                   // relative, because real states can be tiny (1e-12) yet vary
#define PROBE_CONTROL_TRIES 100    // redraws of the control map while it has a single class
#define PROBE_SEED_CONTROL 0x9e3779b97f4a7c15ULL // decorrelates the control map from the folds

static const double RIDGE_GRID[RWKV_PROBE_N_RIDGE_GRID] = {1e-6, 1e-5, 1e-4, 1e-3, 1e-2,
                                                           1e-1, 1, 10, 100};

void rwkv_probe_opts_default(rwkv_probe_opts *o) {
    memset(o, 0, sizeof *o);
    o->kind = RWKV_PROBE_LOGISTIC;
    o->folds = PROBE_DEFAULT_FOLDS;
    o->seed = 1;
    o->max_train = PROBE_DEFAULT_MAX_TRAIN;
    o->min_fold_rows = RWKV_PROBE_MIN_FOLD_ROWS;
    o->n_boot = PROBE_DEFAULT_BOOT;
    o->lr = (rwkv_logreg_opts){PROBE_DEFAULT_L2, PROBE_DEFAULT_ITERS, PROBE_DEFAULT_GTOL, PROBE_DEFAULT_FTOL, 1};
}

static int row_ok(const rwkv_probe_data *d, int64_t r) { return !d->valid || d->valid[r]; }

rwkv_status rwkv_probe_folds(int *fold_of_group, const rwkv_probe_data *d, int k, uint64_t seed) {
    if (k < 2) return rwkv_error_set(RWKV_ERR_ARG, "%s: --folds must be >= 2 (got %d)", d->name, k);
    int *present = rwkv_calloc((size_t)d->n_groups + 1, sizeof(int), "fold groups");
    if (!present) return RWKV_ERR_NOMEM;
    for (int s = 0; s < d->n_groups; s++) fold_of_group[s] = -1;
    for (int64_t r = 0; r < d->N; r++)
        if (row_ok(d, r)) fold_of_group[d->group[r]] = 0;
    int G = 0;
    for (int s = 0; s < d->n_groups; s++)
        if (!fold_of_group[s]) present[G++] = s;
    if (G < k) {
        free(present);
        return rwkv_error_set(RWKV_ERR_ARG,
                              "%s: %d sequence%s with labelled rows, but %d folds need at least %d "
                              "(folds are grouped by sequence): use fewer --folds or more sequences",
                              d->name, G, G == 1 ? "" : "s", k, k);
    }
    gsl_rng *rng = gsl_rng_alloc(gsl_rng_mt19937);
    if (!rng) { free(present); return rwkv_error_set(RWKV_ERR_NOMEM, "out of memory for an RNG"); }
    gsl_rng_set(rng, seed);
    gsl_ran_shuffle(rng, present, (size_t)G, sizeof(int));
    for (int i = 0; i < G; i++) fold_of_group[present[i]] = i % k; // deal round-robin
    gsl_rng_free(rng);
    free(present);
    return RWKV_OK;
}

void rwkv_probe_split(int64_t *train, int64_t *n_train, int64_t *test, int64_t *n_test,
                      const rwkv_probe_data *d, const int *fold_of_group, int f) {
    *n_train = *n_test = 0;
    for (int64_t r = 0; r < d->N; r++) {
        if (!row_ok(d, r)) continue;
        if (fold_of_group[d->group[r]] == f) test[(*n_test)++] = r;
        else train[(*n_train)++] = r;
    }
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static int cmp_i64(const void *a, const void *b) {
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

rwkv_status rwkv_probe_control(double *y_ctrl, const rwkv_probe_data *d, const int *types,
                               uint64_t seed) {
    int max_type = 0;
    int64_t n = 0;
    for (int64_t r = 0; r < d->N; r++) {
        if (!row_ok(d, r)) continue;
        if (types[r] < 0) return rwkv_error_set(RWKV_ERR_ARG, "%s: control task: row %lld has no token type", d->name, (long long)r);
        max_type = types[r] > max_type ? types[r] : max_type;
        n++;
    }
    if (!n) return rwkv_error_set(RWKV_ERR_ARG, "%s: control task: no row has a label", d->name);
    double *pool = rwkv_calloc((size_t)n + 1, sizeof(double), "control pool");
    double *map = rwkv_calloc((size_t)max_type + 1, sizeof(double), "control map");
    gsl_rng *rng = gsl_rng_alloc(gsl_rng_mt19937);
    if (!pool || !map || !rng) { free(pool); free(map); gsl_rng_free(rng); return RWKV_ERR_NOMEM; }
    gsl_rng_set(rng, seed ^ PROBE_SEED_CONTROL);
    int64_t k = 0;
    for (int64_t r = 0; r < d->N; r++)
        if (row_ok(d, r)) pool[k++] = d->y[r];
    // Each type draws one label from the empirical label distribution. A draw where every
    // type got the same label (likely for a rare positive class over few types) is redrawn:
    // a single-class control cannot be fitted, and the real labels have two classes or more.
    int64_t first = 0;
    while (!row_ok(d, first)) first++;
    int single = 1;
    for (int tries = 0; single && tries < PROBE_CONTROL_TRIES; tries++) {
        for (int t = 0; t <= max_type; t++) map[t] = pool[gsl_rng_uniform_int(rng, (unsigned long)n)];
        for (int64_t r = first + 1; single && r < d->N; r++)
            if (row_ok(d, r) && map[types[r]] != map[types[first]]) single = 0;
    }
    for (int64_t r = 0; r < d->N; r++) y_ctrl[r] = row_ok(d, r) ? map[types[r]] : d->y[r];
    free(pool); free(map); gsl_rng_free(rng);
    return RWKV_OK;
}

// Everything one run allocates, freed in one place.
typedef struct {
    int64_t *rows, *train, *test, n;
    int *fold_of_group;
    double *classes; int K;      // sorted distinct labels (logistic)
    int *yi, *pi;                // (N) class index of label / prediction
    double *pr;                  // (N) ridge prediction
    double *mean, *sd;           // (D) standardisation
    double *Xtr, *Xte, *ytr;     // standardised copies
    int *ytr_i, *lmap, *gmap;    // logistic: train labels, global->local, local->global
    double *yv, *pv; int *gv, *yvi, *pvi, *gid; // pooled out-of-fold arrays
    double lambdas[64];
    gsl_rng *rng;
} probe_ws;

static void ws_free(probe_ws *w) {
    free(w->rows); free(w->train); free(w->test); free(w->fold_of_group); free(w->classes);
    free(w->yi); free(w->pi); free(w->pr); free(w->mean); free(w->sd); free(w->Xtr); free(w->Xte);
    free(w->ytr); free(w->ytr_i); free(w->lmap); free(w->gmap); free(w->yv); free(w->pv);
    free(w->gv); free(w->yvi); free(w->pvi); free(w->gid);
    gsl_rng_free(w->rng);
}

// Distinct labels and class indices; error on a single class.
static rwkv_status set_classes(probe_ws *w, const rwkv_probe_data *d) {
    w->classes = rwkv_calloc((size_t)w->n + 1, sizeof(double), "classes");
    w->yi = rwkv_calloc((size_t)d->N + 1, sizeof(int), "class ids");
    if (!w->classes || !w->yi) return RWKV_ERR_NOMEM;
    for (int64_t i = 0; i < w->n; i++) w->classes[i] = d->y[w->rows[i]];
    qsort(w->classes, (size_t)w->n, sizeof(double), cmp_double);
    int K = 0;
    for (int64_t i = 0; i < w->n; i++)
        if (!K || w->classes[i] != w->classes[K - 1]) w->classes[K++] = w->classes[i];
    w->K = K;
    if (K < 2)
        return rwkv_error_set(RWKV_ERR_ARG, "%s: every one of the %lld labelled rows has the same label (%g): "
                              "a single class cannot be probed", d->name, (long long)w->n, w->classes[0]);
    for (int64_t i = 0; i < w->n; i++) {
        double *c = bsearch(&d->y[w->rows[i]], w->classes, (size_t)K, sizeof(double), cmp_double);
        w->yi[w->rows[i]] = (int)(c - w->classes);
    }
    return RWKV_OK;
}

// mean/sd over train rows; Xdst (m, D) = (X[rows] - mean) / sd.
static void standardise_fit(probe_ws *w, const rwkv_probe_data *d, const int64_t *rows, int64_t m) {
    int D = d->D;
    for (int j = 0; j < D; j++) w->mean[j] = 0, w->sd[j] = 0;
    for (int64_t i = 0; i < m; i++)
        for (int j = 0; j < D; j++) w->mean[j] += d->X[rows[i] * D + j];
    for (int j = 0; j < D; j++) w->mean[j] /= (double)m;
    for (int64_t i = 0; i < m; i++)
        for (int j = 0; j < D; j++) {
            double c = d->X[rows[i] * D + j] - w->mean[j];
            w->sd[j] += c * c;
        }
    for (int j = 0; j < D; j++) {
        w->sd[j] = sqrt(w->sd[j] / (double)m);
        if (w->sd[j] == 0 || w->sd[j] <= PROBE_MIN_SD_REL * fabs(w->mean[j])) w->sd[j] = 1.0;
    }
}

static void standardise_apply(double *dst, const probe_ws *w, const rwkv_probe_data *d,
                              const int64_t *rows, int64_t m) {
    int D = d->D;
    for (int64_t i = 0; i < m; i++)
        for (int j = 0; j < D; j++) dst[i * D + j] = (d->X[rows[i] * D + j] - w->mean[j]) / w->sd[j];
}

static rwkv_status fit_logistic(probe_ws *w, const rwkv_probe_data *d, const rwkv_probe_opts *o,
                                int64_t ntr, int64_t nte, int *iters, int *converged) {
    int Kf = 0;
    for (int k = 0; k < w->K; k++) w->lmap[k] = -1;
    for (int64_t i = 0; i < ntr; i++) {
        int c = w->yi[w->train[i]];
        if (w->lmap[c] < 0) w->gmap[Kf] = c, w->lmap[c] = Kf++;
        w->ytr_i[i] = w->lmap[c];
    }
    if (Kf == 1) { // one class in training: the probe can only predict it
        for (int64_t i = 0; i < nte; i++) w->pi[w->test[i]] = w->gmap[0];
        return RWKV_OK;
    }
    rwkv_logreg *m = NULL;
    rwkv_status st = rwkv_logreg_alloc(&m, d->D, Kf, (int)ntr);
    if (!st) st = rwkv_logreg_fit(m, w->Xtr, w->ytr_i, (int)ntr, &o->lr);
    if (!st) {
        int *pl = w->ytr_i; // reuse as scratch: nte <= N, ytr_i holds N
        rwkv_logreg_predict(m, w->Xte, (int)nte, pl, NULL);
        for (int64_t i = 0; i < nte; i++) w->pi[w->test[i]] = w->gmap[pl[i]];
        if (m->iters > *iters) *iters = m->iters;
        *converged &= m->converged;
    }
    rwkv_logreg_free(m);
    return st;
}

// Ridge with lambda chosen by inner CV over the other folds of the training rows. The inner
// fits reuse the outer fold's standardisation: it only steers lambda, never the test rows.
static rwkv_status fit_ridge(probe_ws *w, const rwkv_probe_data *d, const rwkv_probe_opts *o,
                             int64_t ntr, int64_t nte, int f, double *lambda_out) {
    int D = d->D;
    double sse[RWKV_PROBE_N_RIDGE_GRID] = {0};
    double *Xi = rwkv_calloc((size_t)ntr * D + 1, sizeof(double), "ridge inner X");
    double *yi = rwkv_calloc((size_t)ntr + 1, sizeof(double), "ridge inner y");
    double *wv = rwkv_calloc((size_t)D, sizeof(double), "ridge weights");
    rwkv_status st = Xi && yi && wv ? RWKV_OK : RWKV_ERR_NOMEM;
    for (int j = 0; !st && j < o->folds; j++) {
        if (j == f) continue;
        int64_t m = 0;
        double ym = 0;
        for (int64_t i = 0; i < ntr; i++)
            if (w->fold_of_group[d->group[w->train[i]]] != j) {
                memcpy(Xi + m * D, w->Xtr + i * D, (size_t)D * sizeof(double));
                yi[m++] = w->ytr[i];
            }
        if (m == 0 || m == ntr) continue;
        for (int64_t i = 0; i < m; i++) ym += yi[i];
        ym /= (double)m;
        for (int64_t i = 0; i < m; i++) yi[i] -= ym;
        rwkv_ridge_svd *svd = NULL;
        if ((st = rwkv_ridge_svd_alloc(&svd, Xi, (int)m, D))) break;
        for (int g = 0; g < RWKV_PROBE_N_RIDGE_GRID; g++) {
            if ((st = rwkv_ridge_solve(wv, svd, yi, RIDGE_GRID[g] * (double)m))) break;
            for (int64_t i = 0; i < ntr; i++) {
                if (w->fold_of_group[d->group[w->train[i]]] != j) continue;
                double p = ym;
                for (int c = 0; c < D; c++) p += w->Xtr[i * D + c] * wv[c];
                sse[g] += (p - w->ytr[i]) * (p - w->ytr[i]);
            }
        }
        rwkv_ridge_svd_free(svd);
    }
    int best = 0;
    for (int g = 1; g < RWKV_PROBE_N_RIDGE_GRID; g++) best = sse[g] < sse[best] ? g : best;
    double ym = 0;
    for (int64_t i = 0; !st && i < ntr; i++) ym += w->ytr[i];
    ym /= (double)ntr;
    for (int64_t i = 0; !st && i < ntr; i++) yi[i] = w->ytr[i] - ym;
    *lambda_out = RIDGE_GRID[best] * (double)ntr;
    if (!st) st = rwkv_ridge_fit(wv, w->Xtr, (int)ntr, D, yi, *lambda_out);
    for (int64_t i = 0; !st && i < nte; i++) {
        double p = ym; // intercept = training mean (features are centred)
        for (int c = 0; c < D; c++) p += w->Xte[i * D + c] * wv[c];
        w->pr[w->test[i]] = p;
    }
    free(Xi); free(yi); free(wv);
    return st;
}

static rwkv_status alloc_ws(probe_ws *w, const rwkv_probe_data *d) {
    size_t N = (size_t)d->N + 1, D = (size_t)d->D;
    w->rows = rwkv_calloc(N, sizeof(int64_t), "probe rows");
    w->train = rwkv_calloc(N, sizeof(int64_t), "probe train rows");
    w->test = rwkv_calloc(N, sizeof(int64_t), "probe test rows");
    w->fold_of_group = rwkv_calloc((size_t)d->n_groups + 1, sizeof(int), "folds");
    w->pi = rwkv_calloc(N, sizeof(int), "predictions");
    w->pr = rwkv_calloc(N, sizeof(double), "predictions");
    w->mean = rwkv_calloc(D, sizeof(double), "feature means");
    w->sd = rwkv_calloc(D, sizeof(double), "feature sds");
    w->ytr = rwkv_calloc(N, sizeof(double), "train labels");
    w->ytr_i = rwkv_calloc(N, sizeof(int), "train labels");
    w->yv = rwkv_calloc(N, sizeof(double), "pooled labels");
    w->pv = rwkv_calloc(N, sizeof(double), "pooled predictions");
    w->gv = rwkv_calloc(N, sizeof(int), "pooled groups");
    w->yvi = rwkv_calloc(N, sizeof(int), "pooled labels");
    w->pvi = rwkv_calloc(N, sizeof(int), "pooled predictions");
    w->gid = rwkv_calloc((size_t)d->n_groups + 1, sizeof(int), "group ids");
    w->rng = gsl_rng_alloc(gsl_rng_mt19937);
    if (!w->rows || !w->train || !w->test || !w->fold_of_group || !w->pi || !w->pr || !w->mean ||
        !w->sd || !w->ytr || !w->ytr_i || !w->yv || !w->pv || !w->gv || !w->yvi || !w->pvi ||
        !w->gid || !w->rng)
        return RWKV_ERR_NOMEM;
    return RWKV_OK;
}

static rwkv_status check_input(const rwkv_probe_data *d, const rwkv_probe_opts *o) {
    if (d->D < 1 || d->N < 1) return rwkv_error_set(RWKV_ERR_ARG, "%s: empty feature matrix", d->name);
    for (int64_t i = 0; i < d->N * d->D; i++)
        if (!isfinite(d->X[i]))
            return rwkv_error_set(RWKV_ERR_NUMERIC, "%s: feature %s at row %lld, column %lld",
                                  d->name, isnan(d->X[i]) ? "NaN" : "inf", (long long)(i / d->D), (long long)(i % d->D));
    for (int64_t r = 0; r < d->N; r++) {
        if (!row_ok(d, r)) continue;
        if (!isfinite(d->y[r])) return rwkv_error_set(RWKV_ERR_NUMERIC, "%s: label of row %lld is not finite", d->name, (long long)r);
        if (d->group[r] < 0 || d->group[r] >= d->n_groups)
            return rwkv_error_set(RWKV_ERR_ARG, "%s: row %lld: sequence %d outside [0, %d)", d->name, (long long)r, d->group[r], d->n_groups);
        if (o->kind == RWKV_PROBE_LOGISTIC && d->y[r] != (double)(int64_t)d->y[r])
            return rwkv_error_set(RWKV_ERR_ARG, "%s: row %lld: label %g is not a class id (use --probe ridge for real targets)",
                                  d->name, (long long)r, d->y[r]);
    }
    return RWKV_OK;
}

// Out-of-fold predictions of all valid rows, pooled, then scored with bootstrap intervals.
static rwkv_status score(rwkv_probe_result *res, probe_ws *w, const rwkv_probe_data *d,
                         const rwkv_probe_opts *o) {
    int G = 0;
    for (int s = 0; s < d->n_groups; s++) w->gid[s] = -1;
    for (int64_t i = 0; i < w->n; i++) {
        int64_t r = w->rows[i];
        if (w->gid[d->group[r]] < 0) w->gid[d->group[r]] = G++;
        w->gv[i] = w->gid[d->group[r]];
        w->yv[i] = d->y[r], w->pv[i] = w->pr[r], w->yvi[i] = w->yi ? w->yi[r] : 0, w->pvi[i] = w->pi[r];
    }
    res->n_groups = G;
    if (o->kind == RWKV_PROBE_RIDGE) {
        res->f1 = (rwkv_metric_ci){NAN, NAN, NAN};
        return rwkv_metrics_r2_ci(&res->score, w->yv, w->pv, w->gv, w->n, G, o->n_boot, o->seed);
    }
    return rwkv_metrics_class_ci(&res->score, &res->f1, w->yvi, w->pvi, w->gv, w->n, w->K, G,
                                 o->n_boot, o->seed);
}

static rwkv_status run_folds(rwkv_probe_result *res, probe_ws *w, const rwkv_probe_data *d,
                             const rwkv_probe_opts *o) {
    int D = d->D;
    rwkv_status st = rwkv_probe_folds(w->fold_of_group, d, o->folds, o->seed);
    gsl_rng_set(w->rng, o->seed);
    res->converged = 1;
    for (int f = 0; !st && f < o->folds; f++) {
        int64_t ntr, nte;
        rwkv_probe_split(w->train, &ntr, w->test, &nte, d, w->fold_of_group, f);
        if (nte < o->min_fold_rows || ntr < o->min_fold_rows)
            return rwkv_error_set(RWKV_ERR_ARG,
                                  "%s: fold %d has %lld test and %lld training rows (minimum %d): too few samples "
                                  "per fold; use fewer --folds or more data", d->name, f, (long long)nte,
                                  (long long)ntr, o->min_fold_rows);
        if (o->max_train > 0 && ntr > o->max_train) { // seeded subsample, kept in row order
            gsl_ran_shuffle(w->rng, w->train, (size_t)ntr, sizeof(int64_t));
            ntr = o->max_train;
            qsort(w->train, (size_t)ntr, sizeof(int64_t), cmp_i64);
        }
        free(w->Xtr); free(w->Xte);
        w->Xtr = rwkv_calloc((size_t)ntr * D, sizeof(double), "standardised train rows");
        w->Xte = rwkv_calloc((size_t)nte * D, sizeof(double), "standardised test rows");
        if (!w->Xtr || !w->Xte) return RWKV_ERR_NOMEM;
        standardise_fit(w, d, w->train, ntr);
        standardise_apply(w->Xtr, w, d, w->train, ntr);
        standardise_apply(w->Xte, w, d, w->test, nte);
        for (int64_t i = 0; i < ntr; i++) w->ytr[i] = d->y[w->train[i]];
        if (o->kind == RWKV_PROBE_LOGISTIC) st = fit_logistic(w, d, o, ntr, nte, &res->max_iters, &res->converged);
        else st = fit_ridge(w, d, o, ntr, nte, f, &w->lambdas[f]);
    }
    return st;
}

rwkv_status rwkv_probe_run(rwkv_probe_result *res, const rwkv_probe_data *d,
                           const rwkv_probe_opts *o) {
    memset(res, 0, sizeof *res);
    if (o->folds < 2 || o->folds > 64)
        return rwkv_error_set(RWKV_ERR_ARG, "%s: folds must be in [2, 64] (got %d)", d->name, o->folds);
    rwkv_status st = check_input(d, o);
    if (st) return st;
    probe_ws w = {0};
    if ((st = alloc_ws(&w, d))) { ws_free(&w); return st; }
    for (int64_t r = 0; r < d->N; r++)
        if (row_ok(d, r)) w.rows[w.n++] = r;
    if (!w.n) { ws_free(&w); return rwkv_error_set(RWKV_ERR_ARG, "%s: no row has a label", d->name); }
    res->n_rows = w.n;
    if (o->kind == RWKV_PROBE_LOGISTIC) {
        st = set_classes(&w, d);
        if (!st) {
            w.lmap = rwkv_calloc((size_t)w.K, sizeof(int), "class map");
            w.gmap = rwkv_calloc((size_t)w.K, sizeof(int), "class map");
            if (!w.lmap || !w.gmap) st = RWKV_ERR_NOMEM;
        }
        if (!st) {
            int64_t *cnt = w.train; // scratch: class counts for the chance rate
            memset(cnt, 0, (size_t)w.K * sizeof *cnt);
            for (int64_t i = 0; i < w.n; i++) cnt[w.yi[w.rows[i]]]++;
            int64_t mx = 0;
            for (int k = 0; k < w.K; k++) mx = cnt[k] > mx ? cnt[k] : mx;
            res->chance = (double)mx / (double)w.n;
            res->n_classes = w.K;
            res->lambda = o->lr.l2;
        }
    } else {
        double lo = d->y[w.rows[0]], hi = lo;
        for (int64_t i = 0; i < w.n; i++) lo = fmin(lo, d->y[w.rows[i]]), hi = fmax(hi, d->y[w.rows[i]]);
        if (lo == hi)
            st = rwkv_error_set(RWKV_ERR_ARG, "%s: every labelled row has the same value (%g): nothing to regress", d->name, lo);
    }
    if (!st) st = run_folds(res, &w, d, o);
    if (!st && o->kind == RWKV_PROBE_RIDGE) { // median lambda over folds
        qsort(w.lambdas, (size_t)o->folds, sizeof(double), cmp_double);
        res->lambda = w.lambdas[o->folds / 2];
    }
    if (!st) st = score(res, &w, d, o);
    ws_free(&w);
    return st;
}
