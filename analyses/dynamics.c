// dynamics.c: taps of one sequence of a dump (read through core/inspect/dump.h), drawn over time.
#include "dynamics.h"

#include "../core/inspect/dump.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DYN_NAME_MAX 64
#define DYN_LIST_MAX 512     // characters of the "dumped taps" list in an error

rwkv_status rwkv_dyn_parse_kind(const char *s, rwkv_dyn_kind *out) {
    static const char *const NAMES[3] = {"heatmap", "lines", "norm"};
    for (int k = 0; k < 3; k++)
        if (s && !strcmp(s, NAMES[k])) { *out = (rwkv_dyn_kind)k; return RWKV_OK; }
    return rwkv_error_set(RWKV_ERR_ARG, "unknown plot kind '%s' (heatmap, lines, norm)", s ? s : "");
}

void rwkv_dyn_series_free(rwkv_dyn_series *s) {
    if (!s) return;
    free(s->data);
    free(s->pos);
    s->data = s->pos = NULL;
}

// "blocks.L.name[/den]" -> layer L, name; a bare "name" is a global (layer -1).
static rwkv_status parse_spec(const char *spec, int *layer, char *name, int *derived) {
    *derived = 0;
    *layer = -1;
    const char *n = spec;
    if (!strncmp(spec, "blocks.", 7)) {
        char *end;
        long l = strtol(spec + 7, &end, 10);
        if (end == spec + 7 || *end != '.' || l < 0 || l > 100000)
            return rwkv_error_set(RWKV_ERR_ARG, "tap '%s': expected blocks.<layer>.<name>", spec);
        *layer = (int)l;
        n = end + 1;
    }
    if (strlen(n) >= DYN_NAME_MAX || !*n) return rwkv_error_set(RWKV_ERR_ARG, "tap '%s': bad name", spec);
    strcpy(name, n);
    char *slash = strchr(name, '/');
    if (slash) {
        if (strcmp(name, "state_num/den"))
            return rwkv_error_set(RWKV_ERR_ARG, "tap '%s': the only derived tap is state_num/den", spec);
        *slash = '\0';
        *derived = 1;
    }
    if (*layer < 0 && strcmp(name, "logits") && strcmp(name, "resid_out"))
        return rwkv_error_set(RWKV_ERR_ARG, "tap '%s': block taps are named blocks.<layer>.%s", spec, name);
    return RWKV_OK;
}

// "a, b, c": the datasets of the layer (or the globals) that were dumped, for an error.
static void list_taps(const rwkv_dump_reader *r, int layer, char *list) {
    char names[RWKV_DUMP_TAPS_MAX][RWKV_DUMP_NAME_MAX];
    int n = rwkv_dump_taps(r, layer, names, RWKV_DUMP_TAPS_MAX);
    list[0] = '\0';
    for (int i = 0; i < n; i++) {
        size_t k = strlen(list);
        if (k + strlen(names[i]) + 3 < DYN_LIST_MAX) snprintf(list + k, DYN_LIST_MAX - k, "%s%s", k ? ", " : "", names[i]);
    }
}

// Rows of sequence seq of tap `name` at layer (-1: a global) as doubles.
static rwkv_status read_tap(const rwkv_dump_reader *r, int layer, const char *name, int64_t r0, int64_t n,
                            rwkv_dyn_series *s) {
    int l = layer < 0 ? r->cfg.n_layer : layer;
    int D = layer < r->cfg.n_layer ? rwkv_dump_width_of(r, l, name) : 0;
    if (!D) {
        char list[DYN_LIST_MAX], dset[128], group[32] = "the root";
        if (layer >= 0) snprintf(group, sizeof group, "/blocks/%d", layer);
        snprintf(dset, sizeof dset, "%s/%s", layer >= 0 ? group : "", name);
        list_taps(r, layer < r->cfg.n_layer ? l : -1, list);
        return rwkv_error_set(RWKV_ERR_ARG, "%s: tap %s was not dumped (%s holds: %s); dump it with --taps", r->path,
                              dset, group, list[0] ? list : "nothing");
    }
    s->D = D;
    s->n = n;
    if (!(s->data = rwkv_calloc((size_t)(n ? n : 1) * D, sizeof(double), "tap rows"))) return RWKV_ERR_NOMEM;
    return rwkv_dump_read_tap_f64(r, l, name, r0, n, s->data);
}

// Tap `name` (num / den when derived) of sequence seq: its rows and their positions.
static rwkv_status read_series(const rwkv_dump_reader *r, int layer, const char *name, int derived, int seq,
                               rwkv_dyn_series *out) {
    memset(out, 0, sizeof *out);
    int64_t r0 = 0, n = 0;
    rwkv_status st = rwkv_dump_seq_rows(r, seq, 0, -1, &r0, &n);
    if (!st && n == 0) st = rwkv_error_set(RWKV_ERR_ARG, "%s: sequence %d has no dumped positions", r->path, seq);
    if (!st && !(out->pos = rwkv_calloc((size_t)n, sizeof(double), "positions"))) st = RWKV_ERR_NOMEM;
    for (int64_t i = 0; !st && i < n; i++) out->pos[i] = (double)r->positions[r0 + i];
    if (!st) st = read_tap(r, layer, name, r0, n, out);
    if (!st && derived) { // num / den, elementwise
        rwkv_dyn_series den = {0};
        st = read_tap(r, layer, "state_den", r0, n, &den);
        for (int64_t i = 0; !st && i < n * out->D; i++) out->data[i] /= den.data[i];
        rwkv_dyn_series_free(&den);
    }
    if (st) rwkv_dyn_series_free(out);
    return st;
}

rwkv_status rwkv_dyn_read(const char *dump, const char *spec, int layer_override, int seq,
                          rwkv_dyn_series *out) {
    memset(out, 0, sizeof *out);
    int layer, derived;
    char name[DYN_NAME_MAX];
    rwkv_status st = parse_spec(spec, &layer, name, &derived);
    if (st) return st;
    if (layer_override >= 0) layer = layer_override;
    rwkv_dump_reader *r;
    if ((st = rwkv_dump_open(&r, dump))) return st;
    st = read_series(r, layer, name, derived, seq, out);
    rwkv_dump_reader_free(r);
    return st;
}

static rwkv_status check_channels(const int *ch, int n, int D, const char *spec) {
    for (int i = 0; i < n; i++)
        if (ch[i] < 0 || ch[i] >= D)
            return rwkv_error_set(RWKV_ERR_ARG, "%s: channel %d out of range [0, %d)", spec, ch[i], D);
    return RWKV_OK;
}

static rwkv_status plot_norm(const char *dump, const char *spec, int seq, const rwkv_plot_opts *o,
                             const char *out) {
    int layer, derived;
    char tap[DYN_NAME_MAX];
    rwkv_status st = parse_spec(spec, &layer, tap, &derived);
    if (st) return st;
    rwkv_dump_reader *r;
    if ((st = rwkv_dump_open(&r, dump))) return st;
    int L = r->cfg.n_layer;
    double *y = NULL, *x = NULL;
    char (*names)[DYN_NAME_MAX] = calloc((size_t)L, sizeof *names);
    const char **np = calloc((size_t)L, sizeof *np);
    int64_t n = 0;
    int ns = 0;
    if (!names || !np) st = rwkv_error_set(RWKV_ERR_NOMEM, "norm plot");
    for (int l = 0; l < L && !st; l++) {
        rwkv_dyn_series s;
        if (!rwkv_dump_width_of(r, l, tap)) continue; // not dumped at this layer
        st = read_series(r, l, tap, derived, seq, &s);
        if (st) break;
        if (!y) {
            n = s.n;
            y = calloc((size_t)L * n, sizeof *y);
            x = malloc((size_t)n * sizeof *x);
            if (!y || !x) { rwkv_dyn_series_free(&s); st = rwkv_error_set(RWKV_ERR_NOMEM, "norm plot"); break; }
            memcpy(x, s.pos, (size_t)n * sizeof *x);
        }
        for (int64_t t = 0; t < n; t++) {
            double q = 0;
            for (int c = 0; c < s.D; c++) q += s.data[t * s.D + c] * s.data[t * s.D + c];
            y[(size_t)ns * n + t] = sqrt(q); // ||h_t||_2 over channels
        }
        snprintf(names[ns], DYN_NAME_MAX, "layer %d", l);
        np[ns] = names[ns];
        ns++;
        rwkv_dyn_series_free(&s);
    }
    if (!st && !ns) st = rwkv_error_set(RWKV_ERR_ARG, "%s: tap %s was not dumped in any layer", dump, spec);
    if (!st) st = rwkv_plot_lines(out, o, x, y, (int)n, ns, np);
    rwkv_dump_reader_free(r);
    free(y);
    free(x);
    free(names);
    free(np);
    return st;
}

rwkv_status rwkv_dyn_plot(const char *dump, const char *spec, rwkv_dyn_kind kind, int seq,
                          const int *channels, int n_channels, const rwkv_plot_opts *o,
                          const char *out) {
    if (kind == RWKV_DYN_NORM) return plot_norm(dump, spec, seq, o, out);
    rwkv_dyn_series s;
    rwkv_status st = rwkv_dyn_read(dump, spec, -1, seq, &s);
    if (st) return st;
    int nch = n_channels;
    int *ch = NULL;
    if (!channels) nch = kind == RWKV_DYN_LINES && s.D > RWKV_DYN_DEFAULT_LINES ? RWKV_DYN_DEFAULT_LINES : s.D;
    double *z = NULL, *yv = NULL;
    char (*names)[DYN_NAME_MAX] = NULL;
    const char **np = NULL;
    if (!(ch = malloc((size_t)nch * sizeof *ch)) || !(z = malloc((size_t)nch * s.n * sizeof *z)) ||
        !(yv = malloc((size_t)nch * sizeof *yv)) || !(names = malloc((size_t)nch * sizeof *names)) ||
        !(np = malloc((size_t)nch * sizeof *np))) {
        st = rwkv_error_set(RWKV_ERR_NOMEM, "plot of %s", spec);
        goto done;
    }
    for (int i = 0; i < nch; i++) ch[i] = channels ? channels[i] : i;
    if ((st = check_channels(ch, nch, s.D, spec))) goto done;
    // z (channels, positions): row i is channel ch[i] over time.
    for (int i = 0; i < nch; i++) {
        yv[i] = ch[i];
        snprintf(names[i], DYN_NAME_MAX, "channel %d", ch[i]);
        np[i] = names[i];
        for (int64_t t = 0; t < s.n; t++) z[(size_t)i * s.n + t] = s.data[t * s.D + ch[i]];
    }
    if (kind == RWKV_DYN_HEATMAP)
        st = rwkv_plot_heatmap(out, o, z, nch, (int)s.n, s.pos, yv, spec);
    else
        st = rwkv_plot_lines(out, o, s.pos, z, (int)s.n, nch, np);
done:
    free(ch);
    free(z);
    free(yv);
    free(names);
    free(np);
    rwkv_dyn_series_free(&s);
    return st;
}
