// dynamics.h: state-dynamics plots from a dump (schema "rwkvscope-dump" v1, core/inspect/
// dump.h on the dump branch; read here with the HDF5 C API). A tap is named like
// "blocks.2.state_num", a global "logits"/"resid_out", or the derived "blocks.2.state_num/den"
// (num / den elementwise: the state's normalised value, a weighted mean of past v).
#ifndef RWKV_DYNAMICS_H
#define RWKV_DYNAMICS_H

#include "../core/base/base.h"
#include "plot.h"

typedef enum { RWKV_DYN_HEATMAP, RWKV_DYN_LINES, RWKV_DYN_NORM } rwkv_dyn_kind;

#define RWKV_DYN_DEFAULT_LINES 8 // channels drawn by --kind lines when none are chosen

// One tap of one sequence: rows are that sequence's dumped positions.
typedef struct {
    int64_t n;        // rows (positions)
    int D;            // width
    double *data;     // (n, D)
    double *pos;      // (n) positions within the sequence
} rwkv_dyn_series;

rwkv_status rwkv_dyn_parse_kind(const char *s, rwkv_dyn_kind *out);
// Reads tap `spec` ("blocks.L.name", "name" for globals, "blocks.L.state_num/den") of
// sequence `seq` (0-based) from the dump. layer_override >= 0 replaces L (for the norm plot).
rwkv_status rwkv_dyn_read(const char *dump, const char *spec, int layer_override, int seq,
                          rwkv_dyn_series *out);
void rwkv_dyn_series_free(rwkv_dyn_series *s);
// Draws `kind` to out (PNG/SVG). channels (n_channels) selects channels for heatmap/lines
// (NULL = all for heatmap, the first RWKV_DYN_DEFAULT_LINES for lines). norm plots the L2
// norm over channels per position, one series per layer that the dump holds for the tap.
rwkv_status rwkv_dyn_plot(const char *dump, const char *spec, rwkv_dyn_kind kind, int seq,
                          const int *channels, int n_channels, const rwkv_plot_opts *o,
                          const char *out);

#endif
