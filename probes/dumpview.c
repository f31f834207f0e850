// dumpview.c: a dump's row index and tap matrices for the probes, through the dump reader.
#include "dumpview.h"
#include "headfeat.h"

#include <errno.h>
#include <fnmatch.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DUMPVIEW_MAX_CONCAT 16 // taps in one concat(...)

rwkv_status rwkv_dumpview_open(rwkv_dumpview **out, const char *path) {
    *out = NULL;
    rwkv_dumpview *v = rwkv_calloc(1, sizeof *v, "dump view");
    if (!v) return RWKV_ERR_NOMEM;
    snprintf(v->path, sizeof v->path, "%s", path);
    rwkv_status st = rwkv_dump_open(&v->r, path);
    if (!st && v->r->n_seq > INT32_MAX) st = rwkv_error_set(RWKV_ERR_FORMAT, "%s: too many sequences", path);
    if (!st && !(v->row_seq = rwkv_calloc((size_t)(v->r->n_rows ? v->r->n_rows : 1), sizeof(int), "row sequences")))
        st = RWKV_ERR_NOMEM;
    if (st) {
        rwkv_dumpview_free(v);
        return st;
    }
    const rwkv_dump_reader *r = v->r;
    v->n_layer = r->cfg.n_layer;
    v->n_rows = r->n_rows;
    v->n_seq = (int)r->n_seq;
    v->n_tokens = r->n_tokens;
    v->offsets = r->token_offsets;
    v->positions = r->positions;
    v->tokens = r->tokens;
    for (int s = 0; s < v->n_seq; s++) // the reader checked that offsets rise
        for (int64_t i = r->offsets[s]; i < r->offsets[s + 1]; i++) v->row_seq[i] = s;
    *out = v;
    return RWKV_OK;
}

void rwkv_dumpview_free(rwkv_dumpview *v) {
    if (!v) return;
    rwkv_dump_reader_free(v->r);
    free(v->row_seq);
    free(v);
}

int rwkv_dumpview_token_at(const rwkv_dumpview *v, int64_t r, int d) {
    int64_t p = v->positions[r];
    if (p < d) return -1;
    return v->tokens[v->offsets[v->row_seq[r]] + p - d];
}

int rwkv_dumpview_has(const rwkv_dumpview *v, int layer, const char *tap) {
    return layer >= 0 && layer < v->n_layer && rwkv_dump_width_of(v->r, layer, tap) > 0;
}

const char *rwkv_feature_label(const rwkv_feature_ref *f, char buf[RWKV_FEATURE_LABEL_MAX]) {
    if (!f->by_head) snprintf(buf, RWKV_FEATURE_LABEL_MAX, "%s", f->name);
    else if (!f->svd) snprintf(buf, RWKV_FEATURE_LABEL_MAX, "%s:%d", f->name, f->head);
    else snprintf(buf, RWKV_FEATURE_LABEL_MAX, "%s:%d:svd%d", f->name, f->head, f->svd);
    return buf;
}

// H and N of a plain tap whose rows are (H, N, N); 0 when the tap has no heads.
static int tap_heads(const rwkv_dumpview *v, const rwkv_feature_ref *f, int *H, int *N) {
    rwkv_config c = v->r->cfg;
    if (!RWKV_HAS_HEADS(c) || c.head_size < 1 || strchr(f->name, '/') || !strncmp(f->name, "concat(", 7)) return 0;
    *N = c.head_size, *H = c.n_embd / c.head_size;
    return rwkv_dump_width_of(v->r, f->layer, f->name) == *H * *N * *N;
}

// "all" or a comma list of heads in [0, H) into sel (H flags).
static rwkv_status parse_heads(const rwkv_dumpview *v, const rwkv_feature_ref *f, const char *heads, int H,
                               unsigned char *sel) {
    memset(sel, !strcmp(heads, "all"), (size_t)H);
    if (!strcmp(heads, "all")) return RWKV_OK;
    if (!*heads) return rwkv_error_set(RWKV_ERR_ARG, "heads '': expected 'all' or a list like 0,2");
    for (const char *p = heads; *p;) {
        char *end;
        errno = 0;
        long h = strtol(p, &end, 10);
        if (end == p || errno || (*end && *end != ','))
            return rwkv_error_set(RWKV_ERR_ARG, "heads '%s': expected 'all' or a list like 0,2", heads);
        if (h < 0 || h >= H)
            return rwkv_error_set(RWKV_ERR_ARG, "%s: head %ld is out of range: blocks.%d.%s has %d heads (0..%d)",
                                  v->path, h, f->layer, f->name, H, H - 1);
        sel[h] = 1;
        p = *end ? end + 1 : end;
    }
    return RWKV_OK;
}

rwkv_status rwkv_dumpview_by_head(const rwkv_dumpview *v, const rwkv_feature_ref *refs, int n, const char *heads,
                                  int svd, rwkv_feature_ref **out, int *n_out) {
    *out = NULL;
    *n_out = 0;
    int H = 0, N = 0, cap = 0;
    rwkv_status st = RWKV_OK;
    for (int i = 0; i < n && !st; i++) {
        if (!tap_heads(v, &refs[i], &H, &N)) {
            st = rwkv_error_set(RWKV_ERR_ARG, "%s: blocks.%d.%s has no heads: per-head features need an (H, N, N) "
                                "tap, state_wkv of an RWKV-5.2/7 dump (this dump is RWKV-%d)",
                                v->path, refs[i].layer, refs[i].name,
                                RWKV_HAS_HEADS(v->r->cfg) ? v->r->cfg.version : 4);
            break;
        }
        if (svd < 0 || svd > N) {
            st = rwkv_error_set(RWKV_ERR_ARG, "%s: svd %d: a head of blocks.%d.%s is %d x %d, so 1..%d singular "
                                "triplets", v->path, svd, refs[i].layer, refs[i].name, N, N, N);
            break;
        }
        unsigned char *sel = rwkv_calloc((size_t)H, 1, "head selection");
        if (!sel || (st = parse_heads(v, &refs[i], heads, H, sel))) { free(sel); st = st ? st : RWKV_ERR_NOMEM; break; }
        for (int h = 0; h < H && !st; h++) {
            if (!sel[h]) continue;
            if (*n_out == cap) {
                cap = cap ? 2 * cap : 16;
                rwkv_feature_ref *r = realloc(*out, (size_t)cap * sizeof *r);
                if (!r) { st = rwkv_error_set(RWKV_ERR_NOMEM, "out of memory listing head features"); break; }
                *out = r;
            }
            rwkv_feature_ref *r = &(*out)[(*n_out)++];
            *r = refs[i];
            r->by_head = 1, r->head = h, r->svd = svd;
        }
        free(sel);
    }
    if (st) { free(*out); *out = NULL; *n_out = 0; }
    return st;
}

#define DUMPVIEW_MAX_TAPS RWKV_DUMP_TAPS_MAX
// The stored tap names of a layer, sorted by name.
static int layer_taps(const rwkv_dumpview *v, int layer, char (*names)[RWKV_DUMPVIEW_NAME_MAX]) {
    char got[DUMPVIEW_MAX_TAPS][RWKV_DUMP_NAME_MAX];
    int n = layer < v->n_layer ? rwkv_dump_taps(v->r, layer, got, DUMPVIEW_MAX_TAPS) : 0;
    for (int i = 0; i < n; i++) memcpy(names[i], got[i], sizeof got[i]); // RWKV_DUMP_NAME_MAX <= RWKV_DUMPVIEW_NAME_MAX
    return n;
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
    (*refs)[*n] = (rwkv_feature_ref){.layer = layer}; // the whole tap (by_head 0)
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

// Reads every row of /blocks/<l>/<tap> into a malloc'd *X (N, *D).
static rwkv_status read_tap(const rwkv_dumpview *v, int l, const char *tap, rwkv_real **X, int *D) {
    *D = rwkv_dumpview_has(v, l, tap) ? rwkv_dump_width_of(v->r, l, tap) : 0;
    if (!*D) return rwkv_error_set(RWKV_ERR_SHAPE, "%s: /blocks/%d/%s: missing", v->path, l, tap);
    *X = rwkv_calloc((size_t)v->n_rows * *D + 1, sizeof(rwkv_real), tap);
    if (!*X) return RWKV_ERR_NOMEM;
    rwkv_status st = rwkv_dump_read_tap(v->r, l, tap, 0, v->n_rows, *X);
    if (st) {
        free(*X);
        *X = NULL;
    }
    return st;
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

// One head's features of an (H, N, N) tap, read whole.
static rwkv_status read_head(const rwkv_dumpview *v, const rwkv_feature_ref *f, rwkv_real **X, int *D) {
    int H, N, Dall;
    if (!tap_heads(v, f, &H, &N))
        return rwkv_error_set(RWKV_ERR_ARG, "%s: blocks.%d.%s has no heads", v->path, f->layer, f->name);
    rwkv_real *all = NULL;
    rwkv_status st = read_tap(v, f->layer, f->name, &all, &Dall);
    if (st) return st;
    *D = rwkv_headfeat_width(N, f->svd);
    *X = rwkv_calloc((size_t)v->n_rows * *D + 1, sizeof(rwkv_real), "head features");
    st = *X ? rwkv_headfeat_extract(*X, all, v->n_rows, H, N, f->head, f->svd) : RWKV_ERR_NOMEM;
    free(all);
    return st;
}

rwkv_status rwkv_dumpview_read(const rwkv_dumpview *v, const rwkv_feature_ref *f, rwkv_real **X,
                               int *D) {
    *X = NULL;
    rwkv_status st;
    if (f->by_head) st = read_head(v, f, X, D);
    else if (strchr(f->name, '/')) st = read_ratio(v, f, X, D);
    else if (!strncmp(f->name, "concat(", 7)) st = read_concat(v, f, X, D);
    else st = read_tap(v, f->layer, f->name, X, D);
    if (!st) st = check_finite(v, f, *X, *D);
    if (st) { free(*X); *X = NULL; }
    return st;
}
