// plot.h: plots through a gnuplot pipe (popen) to PNG or SVG (chosen by the file suffix).
// Every plot also writes its data beside the image (<out>.csv or .dat) so it can be redone.
// Errors from gnuplot never block: they are collected and returned as a status.
#ifndef RWKV_PLOT_H
#define RWKV_PLOT_H

#include "../core/base/base.h"

typedef struct {
    const char *title, *xlabel, *ylabel;
    int width, height; // pixels; 0 = 800 x 600
    int logx, logy;
    double zrange;     // heatmaps: > 0 draws a diverging palette (blue, white at 0, red) on
                       // the fixed range [-zrange, zrange]; 0 = a sequential palette, autoscaled
} rwkv_plot_opts;

// n_series curves over shared x (n points each); y is (n_series, n); names label the legend.
rwkv_status rwkv_plot_lines(const char *out, const rwkv_plot_opts *o, const double *x,
                            const double *y, int n, int n_series, const char *const *names);
// The same with an error bar [lo, hi] (each (n_series, n)) at every point.
rwkv_status rwkv_plot_lines_ci(const char *out, const rwkv_plot_opts *o, const double *x,
                               const double *y, const double *lo, const double *hi, int n,
                               int n_series, const char *const *names);
// A heatmap of z (rows, cols): x runs over cols, y over rows. Tick labels may be NULL.
rwkv_status rwkv_plot_heatmap(const char *out, const rwkv_plot_opts *o, const double *z, int rows,
                              int cols, const double *xvals, const double *yvals,
                              const char *zlabel);
// The same with a name per row (rows) as the y tick labels; the data file's y is the row index.
rwkv_status rwkv_plot_heatmap_rows(const char *out, const rwkv_plot_opts *o, const double *z, int rows,
                                   int cols, const double *xvals, const char *const *row_names,
                                   const char *zlabel);
// A histogram of n values in `bins` bins, one series per name (values (n_series, n)).
rwkv_status rwkv_plot_hist(const char *out, const rwkv_plot_opts *o, const double *values, int n,
                           int n_series, const char *const *names, int bins);
// The loss curve of a training log (core/train/schedule.h RWKV_TRAIN_LOG_HEADER rows, a
// resumed run's log holding the whole run): the mean training loss over each evaluation
// interval and the held-out loss at each evaluation, over the step, drawn into out (its data
// beside it). RWKV_ERR_IO if the log cannot be read, RWKV_ERR_ARG if it has no evaluated step.
rwkv_status rwkv_plot_train_log(const char *log_path, const char *out);
// 1 if gnuplot is on PATH (or $RWKVSCOPE_GNUPLOT names an executable).
int rwkv_plot_available(void);
// The data file written beside `out`: the image path with its suffix replaced by ".csv".
// The gnuplot script goes beside it as ".gp" (`gnuplot stem.gp` redraws the image).
rwkv_status rwkv_plot_data_path(const char *out, char *buf, size_t n);

#endif
