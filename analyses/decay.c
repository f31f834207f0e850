// decay.c: decay and half-life spectra of a model's time-mix parameters.
#include "decay.h"
#include "plot.h"

#include "../core/base/file.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DECAY_BINS 30
#define DECAY_NAME_MAX 32

void rwkv_decay_free(rwkv_decay *d) {
    if (!d) return;
    free(d->time_decay); // one allocation holds all five arrays
    free(d);
}

rwkv_status rwkv_decay_compute(rwkv_decay **out, const rwkv_model *m) {
    *out = NULL;
    int L = m->cfg.n_layer, C = m->cfg.n_embd;
    size_t n = (size_t)L * C;
    rwkv_decay *d = rwkv_calloc(1, sizeof *d, "decay");
    if (!d) return RWKV_ERR_NOMEM;
    if (!(d->time_decay = rwkv_calloc(5 * n, sizeof(double), "decay arrays"))) {
        free(d);
        return RWKV_ERR_NOMEM;
    }
    d->n_layer = L;
    d->n_embd = C;
    d->w = d->time_decay + n;
    d->retention = d->w + n;
    d->half_life = d->retention + n;
    d->time_first = d->half_life + n;
    for (size_t i = 0; i < n; i++) {
        d->time_decay[i] = m->w.att_time_decay[i];
        d->w[i] = exp(d->time_decay[i]);      // w = e^{time_decay}
        d->retention[i] = exp(-d->w[i]);      // state *= e^{-w} per token
        d->half_life[i] = M_LN2 / d->w[i];    // e^{-w h} = 1/2
        d->time_first[i] = m->w.att_time_first[i];
        if (isnan(d->half_life[i]) || isnan(d->time_first[i])) { // inf (w = 0: no decay) is fine
            rwkv_decay_free(d);
            return rwkv_error_set(RWKV_ERR_NUMERIC, "%s: blocks.%zu.att: time_decay or time_first "
                                  "of channel %zu is NaN", m->path, i / C, i % C);
        }
    }
    *out = d;
    return RWKV_OK;
}

rwkv_status rwkv_decay_write_csv(const rwkv_decay *d, const char *path) {
    rwkv_atomic_file out;
    rwkv_status st = rwkv_file_atomic_open(&out, path, 1, 1);
    if (st) return st;
    FILE *f = out.f;
    fputs("layer,channel,time_decay,w,retention,half_life,time_first\n", f);
    for (int l = 0; l < d->n_layer; l++)
        for (int c = 0; c < d->n_embd; c++) {
            size_t i = (size_t)l * d->n_embd + c;
            fprintf(f, "%d,%d,%.9g,%.9g,%.9g,%.9g,%.9g\n", l, c, d->time_decay[i], d->w[i],
                    d->retention[i], d->half_life[i], d->time_first[i]);
        }
    return rwkv_file_atomic_commit(&out);
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

rwkv_status rwkv_decay_plot(const rwkv_decay *d, const char *stem) {
    int L = d->n_layer, C = d->n_embd;
    size_t n = (size_t)L * C;
    double *v = malloc(n * sizeof *v), *x = malloc((size_t)C * sizeof *x);
    char (*names)[DECAY_NAME_MAX] = malloc((size_t)L * sizeof *names);
    const char **np = malloc((size_t)L * sizeof *np);
    char path[4096];
    rwkv_status st = (!v || !x || !names || !np) ? rwkv_error_set(RWKV_ERR_NOMEM, "decay plots") : RWKV_OK;
    for (int l = 0; l < L && !st; l++) {
        snprintf(names[l], DECAY_NAME_MAX, "layer %d", l);
        np[l] = names[l];
    }
    if (!st) {
        for (size_t i = 0; i < n; i++) v[i] = log10(d->half_life[i]);
        snprintf(path, sizeof path, "%s_halflife_hist.png", stem);
        rwkv_plot_opts o = {.title = "half-life per channel", .xlabel = "log10 half-life (tokens)",
                            .ylabel = "channels"};
        st = rwkv_plot_hist(path, &o, v, C, L, np, DECAY_BINS);
    }
    if (!st) {
        for (int l = 0; l < L; l++) {
            memcpy(v + (size_t)l * C, d->half_life + (size_t)l * C, (size_t)C * sizeof *v);
            qsort(v + (size_t)l * C, (size_t)C, sizeof *v, cmp_double);
        }
        for (int c = 0; c < C; c++) x[c] = c;
        snprintf(path, sizeof path, "%s_halflife_sorted.png", stem);
        rwkv_plot_opts o = {.title = "sorted half-lives", .xlabel = "channel rank",
                            .ylabel = "half-life (tokens)", .logy = 1};
        st = rwkv_plot_lines(path, &o, x, v, C, L, np);
    }
    if (!st) {
        snprintf(path, sizeof path, "%s_time_first_hist.png", stem);
        rwkv_plot_opts o = {.title = "time_first (u) per channel", .xlabel = "u", .ylabel = "channels"};
        st = rwkv_plot_hist(path, &o, d->time_first, C, L, np, DECAY_BINS);
    }
    free(v);
    free(x);
    free(names);
    free(np);
    return st;
}
