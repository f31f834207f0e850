// metrics.h: probe scores and their bootstrap intervals.
//   accuracy = mean(pred == y)
//   macro-F1 = mean over classes present in y or pred of 2 tp / (2 tp + fp + fn)
//   R^2      = 1 - sum (y - pred)^2 / sum (y - mean y)^2
// The bootstrap resamples whole groups (sequences) with replacement, because rows of one
// sequence are correlated; the interval is the 2.5 and 97.5 percentiles over the draws.
#ifndef RWKV_METRICS_H
#define RWKV_METRICS_H

#include "../core/base/base.h"

typedef struct {
    double value, lo, hi; // the score on all rows and its 95% bootstrap interval
} rwkv_metric_ci;

double rwkv_metrics_accuracy(const int *y, const int *pred, int64_t n);
// K classes (ids in [0, K)); work holds 3K counts.
double rwkv_metrics_macro_f1(const int *y, const int *pred, int64_t n, int K, int64_t *work);
double rwkv_metrics_r2(const double *y, const double *pred, int64_t n);

// Class scores with intervals: group (n) in [0, n_groups). n_boot draws seeded by seed.
rwkv_status rwkv_metrics_class_ci(rwkv_metric_ci *acc, rwkv_metric_ci *f1, const int *y,
                                  const int *pred, const int *group, int64_t n, int K,
                                  int n_groups, int n_boot, uint64_t seed);
rwkv_status rwkv_metrics_r2_ci(rwkv_metric_ci *r2, const double *y, const double *pred,
                               const int *group, int64_t n, int n_groups, int n_boot,
                               uint64_t seed);

#endif
