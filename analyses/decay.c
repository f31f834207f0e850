// decay.c: decay and half-life spectra of a model's time-mix parameters, and the plots of
// both the RWKV-4 and the RWKV-7 spectra (decay_v7.c computes those).
#include "decay.h"
#include "plot.h"

#include "../core/base/file.h"

#include <errno.h>
#include <gsl/gsl_sort.h>
#include <gsl/gsl_statistics_double.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DECAY_BINS 30
#define DECAY_NAME_MAX 32

void rwkv_decay_free(rwkv_decay *d) {
    if (!d) return;
    free(d->time_decay); // one allocation holds every array
    free(d);
}

rwkv_status rwkv_decay_compute(rwkv_decay **out, const rwkv_model *m) {
    *out = NULL;
    if (RWKV_HAS_HEADS(m->cfg) && m->cfg.version != RWKV_VERSION_5)
        return rwkv_error_set(RWKV_ERR_UNSUPPORTED, "%s: the decay of an RWKV-%d model depends on the token: "
                              "per-token spectra (rwkv_decay_v7_compute)", m->path, m->cfg.version);
    int L = m->cfg.n_layer, C = m->cfg.n_embd;
    size_t n = (size_t)L * C;
    rwkv_decay *d = rwkv_calloc(1, sizeof *d, "decay");
    if (!d) return RWKV_ERR_NOMEM;
    if (!(d->time_decay = rwkv_calloc(5 * n + 4 * (size_t)L + C, sizeof(double), "decay arrays"))) {
        free(d);
        return RWKV_ERR_NOMEM;
    }
    d->n_layer = L;
    d->n_embd = C;
    d->w = d->time_decay + n;
    d->retention = d->w + n;
    d->half_life = d->retention + n;
    d->time_first = d->half_life + n;
    d->hl_min = d->time_first + n;
    d->hl_median = d->hl_min + L;
    d->hl_max = d->hl_median + L;
    d->u_mean = d->hl_max + L;
    double *sorted = d->u_mean + L; // (C) scratch
    // RWKV-5.2's decay is fixed per channel as RWKV-4's: exp(-exp(time_decay)), u = time_faaaa.
    const rwkv_real *td = m->v7 ? m->v7->time_decay : m->w.att_time_decay;
    const rwkv_real *tf = m->v7 ? m->v7->time_faaaa : m->w.att_time_first;
    for (size_t i = 0; i < n; i++) {
        d->time_decay[i] = td[i];
        d->w[i] = exp(d->time_decay[i]);      // w = e^{time_decay}
        d->retention[i] = exp(-d->w[i]);      // state *= e^{-w} per token
        d->half_life[i] = M_LN2 / d->w[i];    // e^{-w h} = 1/2
        d->time_first[i] = tf[i];
        if (isnan(d->half_life[i]) || isnan(d->time_first[i])) { // inf (w = 0: no decay) is fine
            rwkv_decay_free(d);
            return rwkv_error_set(RWKV_ERR_NUMERIC, "%s: blocks.%zu.att: time_decay or time_first "
                                  "of channel %zu is NaN", m->path, i / C, i % C);
        }
    }
    for (int l = 0; l < L; l++) {
        memcpy(sorted, d->half_life + (size_t)l * C, (size_t)C * sizeof *sorted);
        gsl_sort(sorted, 1, (size_t)C);
        d->hl_min[l] = sorted[0], d->hl_max[l] = sorted[C - 1];
        d->hl_median[l] = gsl_stats_median_from_sorted_data(sorted, 1, (size_t)C);
        d->u_mean[l] = gsl_stats_mean(d->time_first + (size_t)l * C, 1, (size_t)C);
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

// "layer 0", "layer 1", ...: the legend of one line per layer (names (L), np (L) point into it).
typedef struct {
    char (*names)[DECAY_NAME_MAX];
    const char **np;
} layer_names;

static rwkv_status layer_names_alloc(layer_names *n, int L) {
    n->names = malloc((size_t)L * sizeof *n->names);
    n->np = malloc((size_t)L * sizeof *n->np);
    if (!n->names || !n->np) return rwkv_error_set(RWKV_ERR_NOMEM, "decay plots");
    for (int l = 0; l < L; l++) {
        snprintf(n->names[l], DECAY_NAME_MAX, "layer %d", l);
        n->np[l] = n->names[l];
    }
    return RWKV_OK;
}

static void layer_names_free(layer_names *n) {
    free(n->names);
    free(n->np);
}

// Each layer's C values of v (L, C) sorted, one line per layer over the channel rank x (C).
static rwkv_status plot_sorted(const char *stem, const char *title, double *v, double *x, int L, int C,
                               const layer_names *n) {
    char path[4096];
    for (int l = 0; l < L; l++) gsl_sort(v + (size_t)l * C, 1, (size_t)C);
    for (int c = 0; c < C; c++) x[c] = c;
    snprintf(path, sizeof path, "%s_halflife_sorted.png", stem);
    rwkv_plot_opts o = {.title = title, .xlabel = "channel rank", .ylabel = "half-life (tokens)", .logy = 1};
    return rwkv_plot_lines(path, &o, x, v, C, L, n->np);
}

rwkv_status rwkv_decay_plot(const rwkv_decay *d, const char *stem) {
    int L = d->n_layer, C = d->n_embd;
    size_t n = (size_t)L * C;
    double *v = malloc(n * sizeof *v), *x = malloc((size_t)C * sizeof *x);
    layer_names names = {0};
    char path[4096];
    rwkv_status st = (!v || !x) ? rwkv_error_set(RWKV_ERR_NOMEM, "decay plots") : layer_names_alloc(&names, L);
    if (!st) {
        for (size_t i = 0; i < n; i++) v[i] = log10(d->half_life[i]);
        snprintf(path, sizeof path, "%s_halflife_hist.png", stem);
        rwkv_plot_opts o = {.title = "half-life per channel", .xlabel = "log10 half-life (tokens)",
                            .ylabel = "channels"};
        st = rwkv_plot_hist(path, &o, v, C, L, names.np, DECAY_BINS);
    }
    if (!st) {
        memcpy(v, d->half_life, n * sizeof *v);
        st = plot_sorted(stem, "sorted half-lives", v, x, L, C, &names);
    }
    if (!st) {
        snprintf(path, sizeof path, "%s_time_first_hist.png", stem);
        rwkv_plot_opts o = {.title = "time_first (u) per channel", .xlabel = "u", .ylabel = "channels"};
        st = rwkv_plot_hist(path, &o, d->time_first, C, L, names.np, DECAY_BINS);
    }
    free(v);
    free(x);
    layer_names_free(&names);
    return st;
}

rwkv_status rwkv_decay_v7_plot(const rwkv_decay_v7 *d, const char *stem) {
    int L = d->n_layer, H = d->n_head, C = d->n_embd;
    double *x = malloc((size_t)(C > H ? C : H) * sizeof *x), *v = malloc((size_t)L * C * sizeof *v);
    layer_names names = {0};
    char path[4200];
    rwkv_status st = !x || !v ? rwkv_error_set(RWKV_ERR_NOMEM, "decay plots") : layer_names_alloc(&names, L);
    if (!st) {
        for (int h = 0; h < H; h++) x[h] = h;
        snprintf(path, sizeof path, "%s_heads.png", stem);
        rwkv_plot_opts o = {.title = "per-token half-life per head (median of channels, 10-90%)", .xlabel = "head",
                            .ylabel = "half-life (tokens)", .logy = 1};
        st = rwkv_plot_lines_ci(path, &o, x, d->head_med, d->head_p10, d->head_p90, H, L, names.np);
    }
    if (!st) {
        memcpy(v, d->hl_med, (size_t)L * C * sizeof *v);
        st = plot_sorted(stem, "sorted median per-token half-lives", v, x, L, C, &names);
    }
    free(x);
    free(v);
    layer_names_free(&names);
    return st;
}
