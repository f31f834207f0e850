// probe.h: cross-validated linear probes on a feature matrix.
// Folds are grouped by sequence (no sequence straddles train and test); the standardisation
// (mean, std per column) is fitted on the training rows of each fold only. Scores are pooled
// over the out-of-fold predictions, with a bootstrap over sequences for the 95% interval.
// Control tasks (Hewitt & Liang 2019): each type of the token the label is about (the caller
// passes the types, see rwkv_labels_control_types) gets a random label drawn from the label's
// empirical distribution; selectivity = score - control.
// rwkv_probe_run allocates its own workspace, so independent runs may go on in parallel threads.
#ifndef RWKV_PROBE_H
#define RWKV_PROBE_H

#include "logreg.h"
#include "metrics.h"

typedef enum { RWKV_PROBE_LOGISTIC, RWKV_PROBE_RIDGE } rwkv_probe_kind;

typedef struct {
    rwkv_probe_kind kind;
    int folds;            // k >= 2
    uint64_t seed;        // folds, subsampling, bootstrap
    int max_train;        // training rows per fold are subsampled to this (0 = all)
    int min_fold_rows;    // fewer test (or training) rows in a fold is an error
    int n_boot;           // bootstrap draws
    rwkv_logreg_opts lr;  // logistic: lambda, iterations, tolerances
} rwkv_probe_opts;

#define RWKV_PROBE_MIN_FOLD_ROWS 10
#define RWKV_PROBE_N_RIDGE_GRID 9 // lambda / n_train = 1e-6 .. 1e2

void rwkv_probe_opts_default(rwkv_probe_opts *o);

// The data of one probe. Rows are those with valid[r] (all if valid is NULL).
typedef struct {
    const rwkv_real *X;         // (N, D) features
    int64_t N;
    int D;
    const double *y;            // (N) labels (class ids for logistic)
    const unsigned char *valid; // (N) or NULL
    const int *group;           // (N) sequence of each row, in [0, n_groups)
    int n_groups;
    const char *name;           // for messages ("token@-5")
} rwkv_probe_data;

typedef struct {
    int64_t n_rows;       // rows used
    int n_groups;         // sequences with rows
    int n_classes;        // logistic
    rwkv_metric_ci score; // accuracy (logistic) or R^2 (ridge)
    rwkv_metric_ci f1;    // macro-F1 (logistic; NaN for ridge)
    double chance;        // majority-class accuracy (logistic) or 0 (ridge)
    double lambda;        // ridge: median lambda chosen over folds; logistic: the L2 weight
    int max_iters;        // logistic: most L-BFGS iterations any fold used
    int converged;        // logistic: 1 if every fold's fit met its tolerance before
                          // max_iter (ridge: 1, it is solved exactly)
} rwkv_probe_result;

// Sequence -> fold: sequences with rows are shuffled (seeded) and dealt round-robin.
// fold_of_group (n_groups) gets -1 for sequences without rows. Needs >= k such sequences.
rwkv_status rwkv_probe_folds(int *fold_of_group, const rwkv_probe_data *d, int k, uint64_t seed);
// The rows of fold f: test rows are the fold's, train rows all others (before subsampling).
// train/test must hold N entries; counts go to *n_train, *n_test.
void rwkv_probe_split(int64_t *train, int64_t *n_train, int64_t *test, int64_t *n_test,
                      const rwkv_probe_data *d, const int *fold_of_group, int f);
// Control labels: y_ctrl[r] = map[types[r]], map drawn from the labels of the valid rows.
rwkv_status rwkv_probe_control(double *y_ctrl, const rwkv_probe_data *d, const int *types,
                               uint64_t seed);
rwkv_status rwkv_probe_run(rwkv_probe_result *res, const rwkv_probe_data *d,
                           const rwkv_probe_opts *o);

#endif
