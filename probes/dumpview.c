// dumpview.c: reading a dump's row index and tap matrices for the probes.
#include "dumpview.h"

#include "../core/inspect/h5util.h"

#include <fnmatch.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DUMPVIEW_MAX_CONCAT 16 // taps in one concat(...)
#define DUMPVIEW_OPEN_BUDGET_S 5.0 // seconds for the trial open, plus the file's read time

// Reads a 1-D integer dataset as int64 (or int32 when want32) into a malloc'd array.
static rwkv_status read_ints(const rwkv_dumpview *v, const char *name, int want32, void **out,
                             int64_t *n) {
    *out = NULL;
    if (H5Lexists(v->file, name, H5P_DEFAULT) <= 0)
        return rwkv_error_set(RWKV_ERR_FORMAT, "%s: %s: missing (not an rwkvscope dump?)", v->path, name);
    hid_t d = H5Dopen2(v->file, name, H5P_DEFAULT);
    if (d < 0) return rwkv_error_set(RWKV_ERR_FORMAT, "%s: %s: cannot open", v->path, name);
    hid_t sp = H5Dget_space(d);
    int nd = H5Sget_simple_extent_ndims(sp);
    hsize_t dim = 0;
    if (nd == 1) H5Sget_simple_extent_dims(sp, &dim, NULL);
    H5Sclose(sp);
    if (nd != 1) {
        H5Dclose(d);
        return rwkv_error_set(RWKV_ERR_SHAPE, "%s: %s: expected 1 dimension, found %d", v->path, name, nd);
    }
    if (!rwkv_h5_numeric(d)) {
        H5Dclose(d);
        return rwkv_error_set(RWKV_ERR_FORMAT, "%s: %s: does not hold numbers", v->path, name);
    }
    void *buf = rwkv_calloc(dim ? dim : 1, want32 ? 4 : 8, name);
    if (!buf) { H5Dclose(d); return RWKV_ERR_NOMEM; }
    herr_t e = dim ? H5Dread(d, want32 ? H5T_NATIVE_INT32 : H5T_NATIVE_INT64, H5S_ALL, H5S_ALL,
                             H5P_DEFAULT, buf) : 0;
    H5Dclose(d);
    if (e < 0) {
        free(buf);
        return rwkv_error_set(RWKV_ERR_IO, "%s: %s: read failed", v->path, name);
    }
    *out = buf;
    *n = (int64_t)dim;
    return RWKV_OK;
}

// Row -> sequence. With row offsets (the dump writer's /sequences/offsets when
// /sequences/token_offsets exists, or a legacy /sequences/row_offsets) they say it; otherwise
// positions increase strictly inside a sequence and stay below its length.
static rwkv_status assign_rows(rwkv_dumpview *v, const int64_t *ro) {
    if (ro) {
        if (ro[0] != 0 || ro[v->n_seq] != v->n_rows)
            return rwkv_error_set(RWKV_ERR_SHAPE, "%s: row offsets: run from %lld to %lld, not over the %lld rows",
                                  v->path, (long long)ro[0], (long long)ro[v->n_seq], (long long)v->n_rows);
        for (int s = 0; s < v->n_seq; s++) {
            if (ro[s + 1] < ro[s])
                return rwkv_error_set(RWKV_ERR_FORMAT, "%s: row offsets: decrease at sequence %d", v->path, s);
            for (int64_t r = ro[s]; r < ro[s + 1]; r++) v->row_seq[r] = s;
        }
    } else {
        int s = 0;
        int64_t prev = -1;
        for (int64_t r = 0; r < v->n_rows; r++) {
            int64_t p = v->positions[r];
            if (p <= prev) s++, prev = -1; // a new sequence starts
            while (s < v->n_seq && p >= v->offsets[s + 1] - v->offsets[s]) s++, prev = -1;
            if (s >= v->n_seq) break;
            v->row_seq[r] = s;
            prev = p;
        }
    }
    for (int64_t r = 0; r < v->n_rows; r++) {
        int s = v->row_seq[r];
        int64_t p = v->positions[r];
        if (s < 0 || s >= v->n_seq || p < 0 || p >= v->offsets[s + 1] - v->offsets[s])
            return rwkv_error_set(RWKV_ERR_FORMAT,
                                  "%s: /sequences/positions: row %lld (position %lld) fits no sequence",
                                  v->path, (long long)r, (long long)p);
    }
    return RWKV_OK;
}

// Reads the offsets under either convention; *row_offsets is NULL when rows must be inferred.
static rwkv_status read_offsets(rwkv_dumpview *v, int64_t **row_offsets, int64_t *n_off) {
    int64_t *a = NULL, *b = NULL, na = 0, nb = 0;
    *row_offsets = NULL;
    rwkv_status st = read_ints(v, "/sequences/offsets", 0, (void **)&a, &na);
    if (st) return st;
    const char *tok_name = "/sequences/token_offsets", *row_name = "/sequences/row_offsets";
    if (H5Lexists(v->file, tok_name, H5P_DEFAULT) > 0) { // offsets are row offsets
        if ((st = read_ints(v, tok_name, 0, (void **)&b, &nb))) { free(a); return st; }
        v->offsets = b, *row_offsets = a;
    } else if (H5Lexists(v->file, row_name, H5P_DEFAULT) > 0) {
        if ((st = read_ints(v, row_name, 0, (void **)&b, &nb))) { free(a); return st; }
        v->offsets = a, *row_offsets = b;
    } else {
        v->offsets = a, nb = na;
    }
    if (nb != na) {
        return rwkv_error_set(RWKV_ERR_SHAPE, "%s: /sequences: %lld row offsets but %lld token offsets",
                              v->path, (long long)(*row_offsets == a ? na : nb), (long long)(*row_offsets == a ? nb : na));
    }
    *n_off = na;
    return RWKV_OK;
}

// A dump from a newer schema is refused (its layout may differ).
#define DUMPVIEW_SCHEMA_VERSION 2
static rwkv_status check_schema(const rwkv_dumpview *v) {
    if (H5Aexists(v->file, "schema_version") <= 0) return RWKV_OK;
    int ver = 0;
    hid_t a = H5Aopen(v->file, "schema_version", H5P_DEFAULT);
    herr_t e = a >= 0 && rwkv_h5_numeric(a) ? H5Aread(a, H5T_NATIVE_INT, &ver) : -1;
    if (a >= 0) H5Aclose(a);
    if (e < 0) return rwkv_error_set(RWKV_ERR_FORMAT, "%s: attribute schema_version: unreadable", v->path);
    if (ver > DUMPVIEW_SCHEMA_VERSION)
        return rwkv_error_set(RWKV_ERR_UNSUPPORTED, "%s: dump schema version %d is newer than this reader's %d",
                              v->path, ver, DUMPVIEW_SCHEMA_VERSION);
    return RWKV_OK;
}

static rwkv_status count_layers(rwkv_dumpview *v) {
    if (H5Lexists(v->file, "/blocks", H5P_DEFAULT) <= 0)
        return rwkv_error_set(RWKV_ERR_FORMAT, "%s: /blocks: missing (no taps were dumped)", v->path);
    char name[64];
    for (v->n_layer = 0;; v->n_layer++) {
        snprintf(name, sizeof name, "/blocks/%d", v->n_layer);
        if (H5Lexists(v->file, name, H5P_DEFAULT) <= 0) break;
    }
    return RWKV_OK;
}

typedef struct {
    rwkv_dumpview **out;
    const char *path;
} view_open_args;

static rwkv_status open_view(void *ctx) {
    rwkv_dumpview **out = ((view_open_args *)ctx)->out;
    const char *path = ((view_open_args *)ctx)->path;
    *out = NULL;
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL); // errors become messages, not stderr noise
    rwkv_dumpview *v = rwkv_calloc(1, sizeof *v, "dump view");
    if (!v) return RWKV_ERR_NOMEM;
    snprintf(v->path, sizeof v->path, "%s", path);
    v->file = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    if (v->file < 0) {
        free(v);
        return rwkv_error_set(RWKV_ERR_IO, "%s: cannot open as HDF5", path);
    }
    int64_t n_off = 0, n_tok = 0, *row_offsets = NULL;
    rwkv_status st = check_schema(v);
    if (!st) st = count_layers(v);
    if (!st) st = read_offsets(v, &row_offsets, &n_off);
    if (!st) st = read_ints(v, "/sequences/positions", 0, (void **)&v->positions, &v->n_rows);
    if (!st) st = read_ints(v, "/tokens", 1, (void **)&v->tokens, &n_tok);
    if (!st && (n_off < 2 || v->offsets[0] != 0 || v->offsets[n_off - 1] != n_tok))
        st = rwkv_error_set(RWKV_ERR_FORMAT, "%s: sequence token offsets: must run from 0 to the %lld tokens",
                            path, (long long)n_tok);
    for (int64_t s = 0; !st && s + 1 < n_off; s++)
        if (v->offsets[s + 1] < v->offsets[s])
            st = rwkv_error_set(RWKV_ERR_FORMAT, "%s: sequence token offsets: decrease at %lld", path, (long long)s);
    if (!st) {
        v->n_seq = (int)(n_off - 1);
        v->n_tokens = n_tok;
        v->row_seq = rwkv_calloc((size_t)(v->n_rows ? v->n_rows : 1), sizeof(int), "row sequences");
        st = v->row_seq ? assign_rows(v, row_offsets) : RWKV_ERR_NOMEM;
    }
    free(row_offsets);
    if (st) { rwkv_dumpview_free(v); return st; }
    *out = v;
    return RWKV_OK;
}

rwkv_status rwkv_dumpview_open(rwkv_dumpview **out, const char *path) {
    view_open_args a = {out, path};
    return rwkv_h5_guarded(path, "dump", rwkv_h5_budget(path, DUMPVIEW_OPEN_BUDGET_S), open_view, &a);
}

void rwkv_dumpview_free(rwkv_dumpview *v) {
    if (!v) return;
    if (v->file >= 0 && v->file) H5Fclose(v->file);
    free(v->offsets); free(v->positions); free(v->tokens); free(v->row_seq);
    free(v);
}

int rwkv_dumpview_token_at(const rwkv_dumpview *v, int64_t r, int d) {
    int64_t p = v->positions[r];
    if (p < d) return -1;
    return v->tokens[v->offsets[v->row_seq[r]] + p - d];
}

int rwkv_dumpview_has(const rwkv_dumpview *v, int layer, const char *tap) {
    char name[256];
    if (strchr(tap, '/')) return 0;
    snprintf(name, sizeof name, "/blocks/%d/%s", layer, tap);
    return H5Lexists(v->file, name, H5P_DEFAULT) > 0;
}

// The stored tap names of a layer, sorted (H5Literate by name), into names (max n).
typedef struct { char (*names)[RWKV_DUMPVIEW_NAME_MAX]; int n, max; } name_list;

static herr_t collect(hid_t g, const char *name, const H5L_info_t *info, void *ctx) {
    (void)g; (void)info;
    name_list *l = ctx;
    if (l->n < l->max) snprintf(l->names[l->n++], RWKV_DUMPVIEW_NAME_MAX, "%s", name);
    return 0;
}

#define DUMPVIEW_MAX_TAPS 64
static int layer_taps(const rwkv_dumpview *v, int layer, char (*names)[RWKV_DUMPVIEW_NAME_MAX]) {
    char g[64];
    snprintf(g, sizeof g, "/blocks/%d", layer);
    name_list l = {names, 0, DUMPVIEW_MAX_TAPS};
    hid_t grp = H5Gopen2(v->file, g, H5P_DEFAULT);
    if (grp < 0) return 0;
    H5Literate(grp, H5_INDEX_NAME, H5_ITER_INC, NULL, collect, &l);
    H5Gclose(grp);
    return l.n;
}

// Is `feat` (ratio, concat or plain name) available at layer l?
static int feature_ok(const rwkv_dumpview *v, int l, const char *feat) {
    const char *slash = strchr(feat, '/');
    if (slash) {
        char a[RWKV_DUMPVIEW_NAME_MAX];
        snprintf(a, sizeof a, "%.*s", (int)(slash - feat), feat);
        return rwkv_dumpview_has(v, l, a) && rwkv_dumpview_has(v, l, slash + 1);
    }
    if (!strncmp(feat, "concat(", 7)) {
        char names[DUMPVIEW_MAX_TAPS][RWKV_DUMPVIEW_NAME_MAX], glob[RWKV_DUMPVIEW_NAME_MAX];
        snprintf(glob, sizeof glob, "%.*s", (int)strlen(feat + 7) - 1, feat + 7);
        int n = layer_taps(v, l, names), k = 0;
        for (int i = 0; i < n; i++) k += !fnmatch(glob, names[i], 0);
        return k > 0;
    }
    return rwkv_dumpview_has(v, l, feat);
}

static rwkv_status push(rwkv_feature_ref **refs, int *n, int *cap, int layer, const char *name) {
    for (int i = 0; i < *n; i++)
        if ((*refs)[i].layer == layer && !strcmp((*refs)[i].name, name)) return RWKV_OK;
    if (*n == *cap) {
        *cap = *cap ? 2 * *cap : 16;
        rwkv_feature_ref *r = realloc(*refs, (size_t)*cap * sizeof *r);
        if (!r) return rwkv_error_set(RWKV_ERR_NOMEM, "out of memory listing features");
        *refs = r;
    }
    (*refs)[*n].layer = layer;
    snprintf((*refs)[*n].name, RWKV_DUMPVIEW_NAME_MAX, "%s", name);
    (*n)++;
    return RWKV_OK;
}

static rwkv_status match_one(const rwkv_dumpview *v, const char *pat, rwkv_feature_ref **refs,
                             int *n, int *cap) {
    if (strncmp(pat, "blocks.", 7))
        return rwkv_error_set(RWKV_ERR_ARG, "tap pattern '%s': expected blocks.<layer>.<tap>", pat);
    const char *dot = strchr(pat + 7, '.');
    if (!dot || !dot[1])
        return rwkv_error_set(RWKV_ERR_ARG, "tap pattern '%s': expected blocks.<layer>.<tap>", pat);
    char lglob[32];
    snprintf(lglob, sizeof lglob, "%.*s", (int)(dot - pat - 7), pat + 7);
    const char *feat = dot + 1;
    int derived = strchr(feat, '/') || !strncmp(feat, "concat(", 7);
    if (!strncmp(feat, "concat(", 7) && feat[strlen(feat) - 1] != ')')
        return rwkv_error_set(RWKV_ERR_ARG, "tap pattern '%s': concat( is not closed", pat);
    int before = *n;
    for (int l = 0; l < v->n_layer; l++) {
        char ls[16];
        snprintf(ls, sizeof ls, "%d", l);
        if (fnmatch(lglob, ls, 0)) continue;
        if (derived) {
            if (feature_ok(v, l, feat)) {
                rwkv_status st = push(refs, n, cap, l, feat);
                if (st) return st;
            }
            continue;
        }
        char names[DUMPVIEW_MAX_TAPS][RWKV_DUMPVIEW_NAME_MAX];
        int k = layer_taps(v, l, names);
        for (int i = 0; i < k; i++) {
            if (fnmatch(feat, names[i], 0)) continue;
            rwkv_status st = push(refs, n, cap, l, names[i]);
            if (st) return st;
        }
    }
    if (*n > before) return RWKV_OK;
    char names[DUMPVIEW_MAX_TAPS][RWKV_DUMPVIEW_NAME_MAX], list[2048] = "";
    int k = v->n_layer ? layer_taps(v, 0, names) : 0;
    for (int i = 0; i < k && strlen(list) + RWKV_DUMPVIEW_NAME_MAX + 3 < sizeof list; i++) {
        if (i) strcat(list, ", ");
        strcat(list, names[i]);
    }
    return rwkv_error_set(RWKV_ERR_ARG,
                          "%s: tap pattern '%s' matches nothing; the dump has layers 0..%d with taps: %s"
                          " (derived: A/B, concat(GLOB))", v->path, pat, v->n_layer - 1, list);
}

rwkv_status rwkv_dumpview_match(const rwkv_dumpview *v, const char *patterns,
                                rwkv_feature_ref **refs, int *n) {
    *refs = NULL;
    *n = 0;
    int cap = 0;
    char buf[1024];
    snprintf(buf, sizeof buf, "%s", patterns);
    // Split at commas outside parentheses: concat(a,b) is not supported, but keep it whole.
    char *save = NULL;
    for (char *p = strtok_r(buf, ",", &save); p; p = strtok_r(NULL, ",", &save)) {
        while (*p == ' ') p++;
        rwkv_status st = match_one(v, p, refs, n, &cap);
        if (st) { free(*refs); *refs = NULL; *n = 0; return st; }
    }
    if (!*n) return rwkv_error_set(RWKV_ERR_ARG, "no tap patterns given");
    // Layer order, then name order, for stable output.
    for (int i = 1; i < *n; i++)
        for (int j = i; j > 0 && ((*refs)[j].layer < (*refs)[j - 1].layer); j--) {
            rwkv_feature_ref t = (*refs)[j]; (*refs)[j] = (*refs)[j - 1]; (*refs)[j - 1] = t;
        }
    return RWKV_OK;
}

// Reads /blocks/<l>/<tap> into dst (N, ld) at column col; *D gets its width.
static rwkv_status read_tap(const rwkv_dumpview *v, int l, const char *tap, rwkv_real **X, int *D) {
    char name[256];
    snprintf(name, sizeof name, "/blocks/%d/%s", l, tap);
    hid_t d = H5Dopen2(v->file, name, H5P_DEFAULT);
    if (d < 0) return rwkv_error_set(RWKV_ERR_SHAPE, "%s: %s: missing", v->path, name);
    hid_t sp = H5Dget_space(d);
    hsize_t dims[2] = {0, 0};
    int nd = H5Sget_simple_extent_ndims(sp);
    if (nd == 2) H5Sget_simple_extent_dims(sp, dims, NULL);
    H5Sclose(sp);
    if (nd != 2 || (int64_t)dims[0] != v->n_rows || dims[1] > INT32_MAX || !rwkv_h5_numeric(d)) {
        H5Dclose(d);
        return rwkv_error_set(RWKV_ERR_SHAPE, "%s: %s: expected [%lld, D] numbers, found %d dims of %lld rows",
                              v->path, name, (long long)v->n_rows, nd, (long long)dims[0]);
    }
    *D = (int)dims[1];
    *X = rwkv_calloc((size_t)v->n_rows * dims[1] + 1, sizeof(rwkv_real), name);
    if (!*X) { H5Dclose(d); return RWKV_ERR_NOMEM; }
    hid_t mt = RWKV_REAL_BITS == 64 ? H5T_NATIVE_DOUBLE : H5T_NATIVE_FLOAT;
    herr_t e = v->n_rows ? H5Dread(d, mt, H5S_ALL, H5S_ALL, H5P_DEFAULT, *X) : 0;
    H5Dclose(d);
    if (e < 0) { free(*X); *X = NULL; return rwkv_error_set(RWKV_ERR_IO, "%s: %s: read failed", v->path, name); }
    return RWKV_OK;
}

static rwkv_status check_finite(const rwkv_dumpview *v, const rwkv_feature_ref *f, const rwkv_real *X,
                                int D) {
    for (int64_t i = 0; i < v->n_rows * D; i++)
        if (!isfinite(X[i]))
            return rwkv_error_set(RWKV_ERR_NUMERIC, "%s: blocks.%d.%s: %s at row %lld, column %lld",
                                  v->path, f->layer, f->name, isnan(X[i]) ? "NaN" : "inf",
                                  (long long)(i / D), (long long)(i % D));
    return RWKV_OK;
}

static rwkv_status read_ratio(const rwkv_dumpview *v, const rwkv_feature_ref *f, rwkv_real **X, int *D) {
    const char *slash = strchr(f->name, '/');
    char a[RWKV_DUMPVIEW_NAME_MAX];
    snprintf(a, sizeof a, "%.*s", (int)(slash - f->name), f->name);
    rwkv_real *B = NULL;
    int Db = 0;
    rwkv_status st = read_tap(v, f->layer, a, X, D);
    if (!st) st = read_tap(v, f->layer, slash + 1, &B, &Db);
    if (!st && Db != *D)
        st = rwkv_error_set(RWKV_ERR_SHAPE, "%s: blocks.%d.%s: widths %d and %d differ", v->path,
                            f->layer, f->name, *D, Db);
    for (int64_t i = 0; !st && i < v->n_rows * *D; i++) (*X)[i] /= B[i]; // num / den
    free(B);
    if (st) { free(*X); *X = NULL; }
    return st;
}

static rwkv_status read_concat(const rwkv_dumpview *v, const rwkv_feature_ref *f, rwkv_real **X, int *D) {
    char names[DUMPVIEW_MAX_TAPS][RWKV_DUMPVIEW_NAME_MAX], glob[RWKV_DUMPVIEW_NAME_MAX];
    snprintf(glob, sizeof glob, "%.*s", (int)strlen(f->name + 7) - 1, f->name + 7);
    int n = layer_taps(v, f->layer, names), k = 0, width[DUMPVIEW_MAX_CONCAT];
    rwkv_real *parts[DUMPVIEW_MAX_CONCAT] = {0};
    rwkv_status st = RWKV_OK;
    *D = 0;
    for (int i = 0; i < n && !st; i++) {
        if (fnmatch(glob, names[i], 0)) continue;
        if (k == DUMPVIEW_MAX_CONCAT) { st = rwkv_error_set(RWKV_ERR_ARG, "%s: too many taps", f->name); break; }
        st = read_tap(v, f->layer, names[i], &parts[k], &width[k]);
        if (!st) *D += width[k++];
    }
    if (!st) *X = rwkv_calloc((size_t)v->n_rows * *D + 1, sizeof(rwkv_real), f->name);
    if (!st && !*X) st = RWKV_ERR_NOMEM;
    for (int64_t r = 0; !st && r < v->n_rows; r++)
        for (int j = 0, col = 0; j < k; col += width[j++])
            memcpy(*X + r * *D + col, parts[j] + r * width[j], (size_t)width[j] * sizeof(rwkv_real));
    for (int j = 0; j < k; j++) free(parts[j]);
    return st;
}

rwkv_status rwkv_dumpview_read(const rwkv_dumpview *v, const rwkv_feature_ref *f, rwkv_real **X,
                               int *D) {
    *X = NULL;
    rwkv_status st;
    if (strchr(f->name, '/')) st = read_ratio(v, f, X, D);
    else if (!strncmp(f->name, "concat(", 7)) st = read_concat(v, f, X, D);
    else st = read_tap(v, f->layer, f->name, X, D);
    if (!st) st = check_finite(v, f, *X, *D);
    if (st) { free(*X); *X = NULL; }
    return st;
}
