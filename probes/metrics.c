// metrics.c: accuracy, macro-F1, R^2 and grouped bootstrap intervals.
#include "metrics.h"

#include <gsl/gsl_rng.h>
#include <gsl/gsl_sort.h>
#include <gsl/gsl_statistics_double.h>
#include <stdlib.h>
#include <string.h>

#define METRICS_CI_LO 0.025
#define METRICS_CI_HI 0.975

double rwkv_metrics_accuracy(const int *y, const int *pred, int64_t n) {
    int64_t c = 0;
    for (int64_t i = 0; i < n; i++) c += y[i] == pred[i];
    return n ? (double)c / n : NAN;
}

static double f1_from_counts(const int64_t *tp, const int64_t *fp, const int64_t *fn, int K) {
    double sum = 0;
    int present = 0;
    for (int k = 0; k < K; k++) {
        if (tp[k] + fp[k] + fn[k] == 0) continue;
        sum += 2.0 * tp[k] / (2.0 * tp[k] + fp[k] + fn[k]);
        present++;
    }
    return present ? sum / present : NAN;
}

double rwkv_metrics_macro_f1(const int *y, const int *pred, int64_t n, int K, int64_t *work) {
    int64_t *tp = work, *fp = work + K, *fn = work + 2 * K;
    memset(work, 0, 3 * (size_t)K * sizeof *work);
    for (int64_t i = 0; i < n; i++) {
        if (y[i] == pred[i]) tp[y[i]]++;
        else fp[pred[i]]++, fn[y[i]]++;
    }
    return f1_from_counts(tp, fp, fn, K);
}

double rwkv_metrics_r2(const double *y, const double *pred, int64_t n) {
    double mean = 0, sse = 0, sst = 0;
    for (int64_t i = 0; i < n; i++) mean += y[i];
    mean /= n;
    for (int64_t i = 0; i < n; i++) sse += (y[i] - pred[i]) * (y[i] - pred[i]), sst += (y[i] - mean) * (y[i] - mean);
    return sst > 0 ? 1.0 - sse / sst : NAN;
}

// Rows sorted by group: start (n_groups + 1) and idx (n), by counting sort.
typedef struct { int64_t *start, *idx; } group_index;

static rwkv_status group_index_build(group_index *g, const int *group, int64_t n, int n_groups) {
    g->start = rwkv_calloc((size_t)n_groups + 1, sizeof(int64_t), "bootstrap groups");
    g->idx = rwkv_calloc((size_t)n + 1, sizeof(int64_t), "bootstrap rows");
    if (!g->start || !g->idx) { free(g->start); free(g->idx); return RWKV_ERR_NOMEM; }
    for (int64_t i = 0; i < n; i++) g->start[group[i] + 1]++;
    for (int s = 0; s < n_groups; s++) g->start[s + 1] += g->start[s];
    int64_t *fill = rwkv_calloc((size_t)n_groups + 1, sizeof(int64_t), "bootstrap fill");
    if (!fill) { free(g->start); free(g->idx); return RWKV_ERR_NOMEM; }
    memcpy(fill, g->start, ((size_t)n_groups + 1) * sizeof(int64_t));
    for (int64_t i = 0; i < n; i++) g->idx[fill[group[i]]++] = i;
    free(fill);
    return RWKV_OK;
}

static void percentiles(rwkv_metric_ci *m, double *draws, int n) {
    int k = 0;
    for (int i = 0; i < n; i++) if (isfinite(draws[i])) draws[k++] = draws[i];
    if (!k) { m->lo = m->hi = NAN; return; }
    gsl_sort(draws, 1, (size_t)k);
    m->lo = gsl_stats_quantile_from_sorted_data(draws, 1, (size_t)k, METRICS_CI_LO);
    m->hi = gsl_stats_quantile_from_sorted_data(draws, 1, (size_t)k, METRICS_CI_HI);
}

rwkv_status rwkv_metrics_class_ci(rwkv_metric_ci *acc, rwkv_metric_ci *f1, const int *y,
                                  const int *pred, const int *group, int64_t n, int K,
                                  int n_groups, int n_boot, uint64_t seed) {
    int64_t *work = rwkv_calloc(3 * (size_t)K, sizeof(int64_t), "f1 counts");
    double *da = rwkv_calloc((size_t)n_boot + 1, sizeof(double), "bootstrap draws");
    double *df = rwkv_calloc((size_t)n_boot + 1, sizeof(double), "bootstrap draws");
    gsl_rng *rng = gsl_rng_alloc(gsl_rng_mt19937);
    group_index g = {0};
    rwkv_status st = work && da && df && rng ? group_index_build(&g, group, n, n_groups) : RWKV_ERR_NOMEM;
    if (!st) {
        gsl_rng_set(rng, seed);
        acc->value = rwkv_metrics_accuracy(y, pred, n);
        f1->value = rwkv_metrics_macro_f1(y, pred, n, K, work);
        int64_t *tp = work, *fp = work + K, *fn = work + 2 * K;
        for (int b = 0; b < n_boot; b++) {
            memset(work, 0, 3 * (size_t)K * sizeof *work);
            int64_t correct = 0, total = 0;
            for (int t = 0; t < n_groups; t++) {
                int s = (int)gsl_rng_uniform_int(rng, (unsigned long)n_groups);
                for (int64_t j = g.start[s]; j < g.start[s + 1]; j++) {
                    int64_t i = g.idx[j];
                    total++;
                    if (y[i] == pred[i]) correct++, tp[y[i]]++;
                    else fp[pred[i]]++, fn[y[i]]++;
                }
            }
            da[b] = total ? (double)correct / total : NAN;
            df[b] = f1_from_counts(tp, fp, fn, K);
        }
        percentiles(acc, da, n_boot);
        percentiles(f1, df, n_boot);
    }
    free(work); free(da); free(df); free(g.start); free(g.idx);
    gsl_rng_free(rng);
    return st;
}

rwkv_status rwkv_metrics_r2_ci(rwkv_metric_ci *r2, const double *y, const double *pred,
                               const int *group, int64_t n, int n_groups, int n_boot,
                               uint64_t seed) {
    // Per-group sufficient statistics: count, sum y, sum y^2, sum (y - pred)^2.
    double *gs = rwkv_calloc(4 * (size_t)n_groups, sizeof(double), "r2 group sums");
    double *draws = rwkv_calloc((size_t)n_boot + 1, sizeof(double), "bootstrap draws");
    gsl_rng *rng = gsl_rng_alloc(gsl_rng_mt19937);
    if (!gs || !draws || !rng) { free(gs); free(draws); gsl_rng_free(rng); return RWKV_ERR_NOMEM; }
    gsl_rng_set(rng, seed);
    r2->value = rwkv_metrics_r2(y, pred, n);
    for (int64_t i = 0; i < n; i++) {
        double *s = gs + 4 * (size_t)group[i];
        s[0] += 1, s[1] += y[i], s[2] += y[i] * y[i], s[3] += (y[i] - pred[i]) * (y[i] - pred[i]);
    }
    for (int b = 0; b < n_boot; b++) {
        double c = 0, sy = 0, syy = 0, sse = 0;
        for (int t = 0; t < n_groups; t++) {
            const double *s = gs + 4 * gsl_rng_uniform_int(rng, (unsigned long)n_groups);
            c += s[0], sy += s[1], syy += s[2], sse += s[3];
        }
        double sst = syy - sy * sy / c; // sum (y - mean)^2
        draws[b] = c > 0 && sst > 0 ? 1.0 - sse / sst : NAN;
    }
    percentiles(r2, draws, n_boot);
    free(gs); free(draws); gsl_rng_free(rng);
    return RWKV_OK;
}
