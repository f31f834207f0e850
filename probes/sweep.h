// sweep.h: probe tables over a dump, as `rwkvscope probe` and `probe horizon` write them.
// rwkv_probe_sweep fits one label at every selected tap; rwkv_probe_horizon fits token@-d
// for d = 1..D at every tap (the memory horizon). Each fit comes with its control task
// (Hewitt & Liang 2019) and, unless disabled, a baseline probe on the input embedding.
// The CSV (docs: `rwkvscope probe --help`) is written atomically: its rows appear in a
// temporary as they are fitted and it is renamed into place only when the run succeeds.
#ifndef RWKV_PROBE_SWEEP_H
#define RWKV_PROBE_SWEEP_H

#include "dumpview.h"
#include "labels.h"
#include "probe.h"

// One CSV row: the probe, its control task and the baseline.
typedef struct {
    rwkv_probe_result main, control, base;
    int has_base;
} rwkv_probe_row;

// Called after each row; what names it ("probe [2/6] blocks.1.state_num token@-1").
typedef void (*rwkv_probe_progress)(void *ctx, const char *what, const rwkv_probe_opts *po,
                                    const rwkv_probe_row *row);

typedef struct {
    const char *dump;         // DUMP.h5
    const char *taps;         // feature patterns (rwkv_dumpview_match)
    const char *model;        // baseline: the embedding of each row's token from this model;
                              //   NULL: the dump's /blocks/0/resid_in if present
    int no_baseline;          // 1: no baseline probe
    const char *heads;        // NULL: each tap whole; "all" or "0,2": one probe per head of
                              //   each (H, N, N) tap (rwkv_dumpview_by_head)
    int svd;                  // with heads: 0 the N*N entries, k the top-k singular triplets
    rwkv_probe_opts po;
    int kind_given;           // 0: po.kind follows the label (logistic for classes)
    rwkv_probe_progress progress; // NULL = quiet
    void *progress_ctx;
} rwkv_probe_sweep_opts;

// One label (a built-in spec of rwkv_labels_builtin, or a .csv/.h5 label file; dataset is
// the JSONL file for the answer label, else NULL) probed at every tap; CSV at csv_path.
rwkv_status rwkv_probe_sweep(const char *csv_path, const rwkv_probe_sweep_opts *o, const char *label,
                             const char *dataset);

typedef struct {
    int n_curves, D;
    double *acc;         // (n_curves, D) accuracy at d = 1..D: each tap, then the majority
                         //   rate, then the baseline (when there is one)
    char (*names)[128];  // (n_curves) "layer 1 state_num", "majority class (chance)", ...
} rwkv_probe_horizon_result;

// token@-d for d = 1..max_d at every tap (logistic probes), CSV at csv_path with a leading d
// column; out receives the curves to plot.
rwkv_status rwkv_probe_horizon(rwkv_probe_horizon_result *out, const char *csv_path, const rwkv_probe_sweep_opts *o,
                               int max_d);
void rwkv_probe_horizon_free(rwkv_probe_horizon_result *r);
// The default plot path of a horizon CSV: its extension replaced by -plot.png.
void rwkv_probe_horizon_png(char *buf, size_t n, const char *csv);
// Accuracy against d, one curve per tap with the majority rate and the baseline, at png
// (its data and gnuplot script beside it, analyses/plot.h). RWKV_ERR_ARG when that data
// file would be csv itself (nothing is written).
rwkv_status rwkv_probe_horizon_plot(const rwkv_probe_horizon_result *h, const char *png, const char *csv);

#endif
