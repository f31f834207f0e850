// TEMPORARY stubs until analyses/plot.c lands (the analyses helper's branch): delete this
// file when merging it (a duplicate-symbol link error says so if it is forgotten).
#include "plot.h"

rwkv_status rwkv_plot_lines(const char *out, const rwkv_plot_opts *o, const double *x,
                            const double *y, int n, int n_series, const char *const *names) {
    (void)o; (void)x; (void)y; (void)n; (void)n_series; (void)names;
    return rwkv_error_set(RWKV_ERR_UNSUPPORTED, "%s: plotting is not implemented yet (analyses/plot.c)", out);
}
rwkv_status rwkv_plot_heatmap(const char *out, const rwkv_plot_opts *o, const double *z, int rows,
                              int cols, const double *xvals, const double *yvals, const char *zlabel) {
    (void)o; (void)z; (void)rows; (void)cols; (void)xvals; (void)yvals; (void)zlabel;
    return rwkv_error_set(RWKV_ERR_UNSUPPORTED, "%s: plotting is not implemented yet (analyses/plot.c)", out);
}
rwkv_status rwkv_plot_hist(const char *out, const rwkv_plot_opts *o, const double *values, int n,
                           int n_series, const char *const *names, int bins) {
    (void)o; (void)values; (void)n; (void)n_series; (void)names; (void)bins;
    return rwkv_error_set(RWKV_ERR_UNSUPPORTED, "%s: plotting is not implemented yet (analyses/plot.c)", out);
}
int rwkv_plot_available(void) { return 0; }
