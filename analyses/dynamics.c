// dynamics.c: reading taps of one sequence from a dump, and drawing them over time.
#include "dynamics.h"

#include <hdf5.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define DYN_SCHEMA_VERSION 2 // newest dump schema this reader knows
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

static herr_t list_name(hid_t g, const char *name, const H5L_info_t *info, void *buf) {
    (void)g; (void)info;
    size_t k = strlen(buf);
    if (k + strlen(name) + 3 < DYN_LIST_MAX) snprintf((char *)buf + k, DYN_LIST_MAX - k, "%s%s", k ? ", " : "", name);
    return 0;
}

static rwkv_status open_dump(hid_t *out, const char *path) {
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL); // errors come back as statuses, not printed
    if (access(path, R_OK) != 0) return rwkv_error_set(RWKV_ERR_IO, "%s: cannot open the dump", path);
    hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    if (f < 0) return rwkv_error_set(RWKV_ERR_FORMAT, "%s: not an HDF5 file (or corrupt)", path);
    int64_t ver = -1;
    if (H5Aexists(f, "schema_version") > 0) {
        hid_t a = H5Aopen(f, "schema_version", H5P_DEFAULT);
        if (H5Aread(a, H5T_NATIVE_INT64, &ver) < 0) ver = -1;
        H5Aclose(a);
    }
    if (ver < 1 || H5Lexists(f, "/sequences", H5P_DEFAULT) <= 0) {
        H5Fclose(f);
        return rwkv_error_set(RWKV_ERR_FORMAT, "%s: not an rwkvscope dump (no schema_version or /sequences)", path);
    }
    if (ver > DYN_SCHEMA_VERSION) {
        H5Fclose(f);
        return rwkv_error_set(RWKV_ERR_FORMAT, "%s: dump schema version %lld is newer than this "
                              "reader (%d)", path, (long long)ver, DYN_SCHEMA_VERSION);
    }
    *out = f;
    return RWKV_OK;
}

// Reads rows [r0, r0+n) of a 1-D (D = 0) or 2-D dataset as doubles into out.
static rwkv_status read_rows(hid_t f, const char *path, const char *dset, int64_t r0, int64_t n,
                             int *D, double *out) {
    hid_t d = H5Dopen2(f, dset, H5P_DEFAULT);
    if (d < 0) return rwkv_error_set(RWKV_ERR_SHAPE, "%s: no dataset %s", path, dset);
    hid_t sp = H5Dget_space(d);
    hsize_t dims[2] = {0, 0};
    int nd = H5Sget_simple_extent_dims(sp, dims, NULL);
    rwkv_status st = RWKV_OK;
    if (nd < 1 || nd > 2 || (hsize_t)(r0 + n) > dims[0]) {
        st = rwkv_error_set(RWKV_ERR_SHAPE, "%s: %s has shape [%llu%s] but rows up to %lld are needed",
                            path, dset, (unsigned long long)dims[0], nd == 2 ? ", D" : "", (long long)(r0 + n));
    } else if (D && nd == 2 && !out) {
        *D = (int)dims[1];
    } else {
        hsize_t start[2] = {(hsize_t)r0, 0}, count[2] = {(hsize_t)n, nd == 2 ? dims[1] : 1};
        hid_t mem = H5Screate_simple(nd, count, NULL);
        H5Sselect_hyperslab(sp, H5S_SELECT_SET, start, NULL, count, NULL);
        if (n > 0 && H5Dread(d, H5T_NATIVE_DOUBLE, mem, sp, H5P_DEFAULT, out) < 0)
            st = rwkv_error_set(RWKV_ERR_FORMAT, "%s: cannot read %s (corrupt?)", path, dset);
        H5Sclose(mem);
        if (D) *D = nd == 2 ? (int)dims[1] : 0;
    }
    H5Sclose(sp);
    H5Dclose(d);
    return st;
}

static rwkv_status read_tap(hid_t f, const char *path, int layer, const char *name, int64_t r0,
                            int64_t n, rwkv_dyn_series *s) {
    char dset[128];
    if (layer >= 0) snprintf(dset, sizeof dset, "/blocks/%d/%s", layer, name);
    else snprintf(dset, sizeof dset, "/%s", name);
    if (H5Lexists(f, dset, H5P_DEFAULT) <= 0) { // negative too when a parent group is missing
        char list[DYN_LIST_MAX] = "";
        char g[64];
        snprintf(g, sizeof g, "/blocks/%d", layer >= 0 ? layer : 0);
        if (H5Lexists(f, "/blocks", H5P_DEFAULT) > 0 && H5Lexists(f, g, H5P_DEFAULT) > 0)
            H5Literate_by_name(f, g, H5_INDEX_NAME, H5_ITER_INC, NULL, list_name, list, H5P_DEFAULT);
        return rwkv_error_set(RWKV_ERR_ARG, "%s: tap %s was not dumped (%s holds: %s); dump it "
                              "with --taps", path, dset, g, list[0] ? list : "nothing");
    }
    int D = 0;
    rwkv_status st = read_rows(f, path, dset, 0, 0, &D, NULL);
    if (st) return st;
    s->D = D;
    s->n = n;
    if (!(s->data = rwkv_calloc((size_t)(n ? n : 1) * D, sizeof(double), "tap rows"))) return RWKV_ERR_NOMEM;
    return read_rows(f, path, dset, r0, n, NULL, s->data);
}

rwkv_status rwkv_dyn_read(const char *dump, const char *spec, int layer_override, int seq,
                          rwkv_dyn_series *out) {
    memset(out, 0, sizeof *out);
    int layer, derived;
    char name[DYN_NAME_MAX];
    rwkv_status st = parse_spec(spec, &layer, name, &derived);
    if (st) return st;
    if (layer_override >= 0) layer = layer_override;
    hid_t f;
    if ((st = open_dump(&f, dump))) return st;
    // Rows of sequence seq: offsets[seq] .. offsets[seq+1].
    hid_t d = H5Dopen2(f, "/sequences/offsets", H5P_DEFAULT);
    hssize_t S1 = d >= 0 ? H5Sget_simple_extent_npoints(H5Dget_space(d)) : -1;
    int64_t *off = S1 > 1 ? malloc((size_t)S1 * sizeof *off) : NULL;
    if (!off || H5Dread(d, H5T_NATIVE_INT64, H5S_ALL, H5S_ALL, H5P_DEFAULT, off) < 0) {
        st = rwkv_error_set(RWKV_ERR_FORMAT, "%s: cannot read /sequences/offsets", dump);
    } else if (seq < 0 || seq >= S1 - 1) {
        st = rwkv_error_set(RWKV_ERR_ARG, "%s: sequence %d out of range (the dump holds %lld)", dump,
                            seq, (long long)(S1 - 1));
    } else if (off[seq + 1] <= off[seq]) {
        st = rwkv_error_set(RWKV_ERR_ARG, "%s: sequence %d has no dumped positions", dump, seq);
    }
    if (d >= 0) H5Dclose(d);
    if (!st) {
        int64_t r0 = off[seq], n = off[seq + 1] - off[seq];
        int zero = 0;
        if (!(out->pos = rwkv_calloc((size_t)n, sizeof(double), "positions"))) st = RWKV_ERR_NOMEM;
        if (!st) st = read_rows(f, dump, "/sequences/positions", r0, n, &zero, out->pos);
        if (!st) st = read_tap(f, dump, layer, name, r0, n, out);
        if (!st && derived) { // num / den, elementwise
            rwkv_dyn_series den = {0};
            st = read_tap(f, dump, layer, "state_den", r0, n, &den);
            for (int64_t i = 0; !st && i < n * out->D; i++) out->data[i] /= den.data[i];
            rwkv_dyn_series_free(&den);
        }
    }
    free(off);
    H5Fclose(f);
    if (st) rwkv_dyn_series_free(out);
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
    hid_t f;
    rwkv_status st = open_dump(&f, dump);
    if (st) return st;
    int64_t L = 0;
    if (H5Aexists(f, "n_layer") > 0) {
        hid_t a = H5Aopen(f, "n_layer", H5P_DEFAULT);
        if (H5Aread(a, H5T_NATIVE_INT64, &L) < 0) L = 0;
        H5Aclose(a);
    }
    H5Fclose(f);
    if (L < 1 || L > 100000) return rwkv_error_set(RWKV_ERR_FORMAT, "%s: no n_layer attribute", dump);
    double *y = NULL, *x = NULL;
    char (*names)[DYN_NAME_MAX] = calloc((size_t)L, sizeof *names);
    const char **np = calloc((size_t)L, sizeof *np);
    int64_t n = 0;
    int ns = 0;
    if (!names || !np) st = rwkv_error_set(RWKV_ERR_NOMEM, "norm plot");
    for (int l = 0; l < L && !st; l++) {
        rwkv_dyn_series s;
        st = rwkv_dyn_read(dump, spec, l, seq, &s);
        if (st == RWKV_ERR_ARG && strstr(rwkv_error_message(), "was not dumped")) { st = RWKV_OK; continue; }
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
