// labels.c: built-in label functions and label files aligned to dump rows.
#include "labels.h"

#include "../core/inspect/h5util.h"
#include "../datasets/reader.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define LABELS_LINE_MAX 512
#define LABELS_H5_BUDGET_S 2.0 // seconds for the trial read of an .h5 label file, plus its read time

// answer: the dataset file (datasets/reader.h; the header is optional, so the examples alone,
// as fed to `dump --input`, work too) has one example per line with "tokens" and "answers"
// ([start, length] spans). Example i is dump sequence i, and their tokens must agree. The
// answer token tokens[p] of a span is predicted from the state after tokens[p-1], so the row
// at position p-1 gets the label tokens[p].
static rwkv_status answer_example(rwkv_labels *l, const rwkv_dumpview *v, const char *path,
                                  const rwkv_dataset_example *ex, int s) {
    int64_t s0 = v->offsets[s], T = v->offsets[s + 1] - s0;
    long long line = (long long)ex->lineno;
    if (!ex->tokens || !ex->answers)
        return rwkv_error_set(RWKV_ERR_FORMAT, "%s:%lld: example without tokens/answers arrays", path, line);
    if (ex->n_tokens != T)
        return rwkv_error_set(RWKV_ERR_SHAPE, "%s:%lld: example %d has %lld tokens but dump sequence %d has %lld",
                              path, line, s, (long long)ex->n_tokens, s, (long long)T);
    for (int64_t t = 0; t < T; t++)
        if (ex->tokens[t] != v->tokens[s0 + t])
            return rwkv_error_set(RWKV_ERR_SHAPE, "%s:%lld: example %d differs from dump sequence %d at token %lld: "
                                  "the dump was not made from this dataset", path, line, s, s, (long long)t);
    // answer_at[p - 1] = tokens[p] for p in a span (the reader checked the spans); -1 elsewhere.
    for (int k = 0; k < ex->n_answers; k++) {
        int64_t a = ex->answers[k][0], n = ex->answers[k][1];
        for (int64_t r = 0; r < v->n_rows; r++) // rows of sequence s at positions a-1 .. a+n-2
            if (v->row_seq[r] == s && v->positions[r] >= a - 1 && v->positions[r] < a + n - 1) {
                l->value[r] = v->tokens[s0 + v->positions[r] + 1];
                l->valid[r] = 1;
            }
    }
    return RWKV_OK;
}

static rwkv_status answer_from_jsonl(rwkv_labels *l, const rwkv_dumpview *v, const char *path) {
    rwkv_dataset_reader *rd;
    rwkv_status st = rwkv_dataset_reader_open(&rd, path, 0);
    if (st) return st;
    rwkv_dataset_example ex = {0};
    int s = 0, got = 1;
    while (!st && s < v->n_seq && !(st = rwkv_dataset_reader_next(rd, &ex, &got)) && got)
        st = answer_example(l, v, path, &ex, s++);
    rwkv_dataset_example_clear(&ex);
    rwkv_dataset_reader_free(rd);
    if (!st && s < v->n_seq)
        st = rwkv_error_set(RWKV_ERR_SHAPE, "%s: %d examples but the dump has %d sequences", path, s, v->n_seq);
    return st;
}

rwkv_labels_answer_hook rwkv_labels_answer_fn = answer_from_jsonl;

rwkv_status rwkv_labels_alloc(rwkv_labels **out, int64_t n, rwkv_label_kind kind, const char *name) {
    rwkv_labels *l = rwkv_calloc(1, sizeof *l, "labels");
    if (!l) return RWKV_ERR_NOMEM;
    l->kind = kind;
    l->n = n;
    snprintf(l->name, sizeof l->name, "%s", name);
    l->value = rwkv_calloc((size_t)(n ? n : 1), sizeof(double), "label values");
    l->valid = rwkv_calloc((size_t)(n ? n : 1), 1, "label mask");
    if (!l->value || !l->valid) { rwkv_labels_free(l); return RWKV_ERR_NOMEM; }
    *out = l;
    return RWKV_OK;
}

void rwkv_labels_free(rwkv_labels *l) {
    if (!l) return;
    free(l->value);
    free(l->valid);
    free(l);
}

static void count_valid(rwkv_labels *l) {
    l->n_valid = 0;
    for (int64_t i = 0; i < l->n; i++) l->n_valid += l->valid[i];
}

// "101" or "'e'" inside name(...): the token id.
static rwkv_status parse_token_arg(const char *spec, const char *arg, int *tok) {
    size_t n = strlen(arg);
    if (n == 4 && arg[0] == '\'' && arg[2] == '\'' && arg[3] == ')') { *tok = (unsigned char)arg[1]; return RWKV_OK; }
    char *end;
    errno = 0;
    long t = strtol(arg, &end, 10);
    if (errno || end == arg || strcmp(end, ")") || t < 0 || t > INT32_MAX)
        return rwkv_error_set(RWKV_ERR_ARG, "label '%s': expected a token id or a quoted byte, e.g. seen(101) or seen('e')", spec);
    *tok = (int)t;
    return RWKV_OK;
}

// seen(X) / count(X): rows of a sequence come in increasing position order, so the running
// count carries from one row to the next (O(tokens), not O(rows * positions)).
static void fill_count(rwkv_labels *l, const rwkv_dumpview *v, int tok, int as_seen) {
    int64_t c = 0, next = 0; // count over positions [0, next) of the current sequence
    for (int64_t r = 0; r < v->n_rows; r++) {
        int64_t s0 = v->offsets[v->row_seq[r]], p = v->positions[r];
        if (r == 0 || v->row_seq[r] != v->row_seq[r - 1] || p < next - 1) c = 0, next = 0;
        for (; next <= p; next++) c += v->tokens[s0 + next] == tok;
        l->value[r] = as_seen ? (c > 0) : (double)c;
        l->valid[r] = 1;
    }
}

rwkv_status rwkv_labels_builtin(rwkv_labels **out, const rwkv_dumpview *v, const char *spec,
                                const char *dataset_path) {
    *out = NULL;
    rwkv_labels *l = NULL;
    rwkv_status st;
    if (!strncmp(spec, "token@", 6)) {
        char *end;
        errno = 0;
        long d = strtol(spec + 6, &end, 10);
        if (errno || end == spec + 6 || *end || d > 0 || d < -1000000)
            return rwkv_error_set(RWKV_ERR_ARG, "label '%s': expected token@-D with D >= 0 (token@0 is the row's own token)", spec);
        if ((st = rwkv_labels_alloc(&l, v->n_rows, RWKV_LABEL_CLASS, spec))) return st;
        for (int64_t r = 0; r < v->n_rows; r++) {
            int t = rwkv_dumpview_token_at(v, r, (int)-d); // position < d: dropped
            l->valid[r] = t >= 0;
            l->value[r] = t;
        }
    } else if (!strcmp(spec, "position")) {
        if ((st = rwkv_labels_alloc(&l, v->n_rows, RWKV_LABEL_REAL, spec))) return st;
        for (int64_t r = 0; r < v->n_rows; r++) l->value[r] = (double)v->positions[r], l->valid[r] = 1;
    } else if (!strncmp(spec, "seen(", 5) || !strncmp(spec, "count(", 6)) {
        int seen = spec[0] == 's', tok = -1;
        if ((st = parse_token_arg(spec, spec + (seen ? 5 : 6), &tok))) return st;
        if ((st = rwkv_labels_alloc(&l, v->n_rows, seen ? RWKV_LABEL_CLASS : RWKV_LABEL_REAL, spec))) return st;
        fill_count(l, v, tok, seen);
    } else if (!strcmp(spec, "answer")) {
        if (!dataset_path)
            return rwkv_error_set(RWKV_ERR_ARG, "label 'answer': needs the dataset file the dump was made from (--dataset)");
        if ((st = rwkv_labels_alloc(&l, v->n_rows, RWKV_LABEL_CLASS, spec))) return st;
        if ((st = rwkv_labels_answer_fn(l, v, dataset_path))) { rwkv_labels_free(l); return st; }
    } else {
        return rwkv_error_set(RWKV_ERR_ARG, "unknown label '%s': expected token@-D, position, seen(X), count(X), answer or a label file", spec);
    }
    count_valid(l);
    *out = l;
    return RWKV_OK;
}

// Class labels must be integers; with no kind given, integral values mean class.
static rwkv_status settle_kind(rwkv_labels *l, const char *path, int kind_given) {
    int integral = 1;
    for (int64_t i = 0; i < l->n; i++)
        if (l->valid[i] && l->value[i] != (double)(int64_t)l->value[i]) { integral = 0; break; }
    if (!kind_given) l->kind = integral ? RWKV_LABEL_CLASS : RWKV_LABEL_REAL;
    else if (l->kind == RWKV_LABEL_CLASS && !integral)
        return rwkv_error_set(RWKV_ERR_FORMAT, "%s: kind=class but some labels are not integers", path);
    count_valid(l);
    return RWKV_OK;
}

static rwkv_status check_row(const rwkv_dumpview *v, const char *path, int64_t r, int64_t seq,
                             int64_t pos, const char *where) {
    if (seq != v->row_seq[r] || pos != v->positions[r])
        return rwkv_error_set(RWKV_ERR_SHAPE,
                              "%s: %s: row %lld is (sequence %lld, position %lld) but dump row %lld is "
                              "(sequence %d, position %lld): the label file is not aligned with %s",
                              path, where, (long long)r, (long long)seq, (long long)pos, (long long)r,
                              v->row_seq[r], (long long)v->positions[r], v->path);
    return RWKV_OK;
}

static rwkv_status read_csv(rwkv_labels *l, const rwkv_dumpview *v, const char *path, int *kind_given) {
    FILE *f = fopen(path, "r");
    if (!f) return rwkv_error_set(RWKV_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    char line[LABELS_LINE_MAX], where[64];
    int64_t r = 0, lineno = 0;
    int header = 0;
    rwkv_status st = RWKV_OK;
    while (!st && fgets(line, sizeof line, f)) {
        lineno++;
        line[strcspn(line, "\r\n")] = '\0';
        if (line[0] == '#') {
            if (strstr(line, "kind=real")) l->kind = RWKV_LABEL_REAL, *kind_given = 1;
            if (strstr(line, "kind=class")) l->kind = RWKV_LABEL_CLASS, *kind_given = 1;
            continue;
        }
        if (!line[0]) continue;
        if (!header) {
            if (strcmp(line, "sequence,position,label"))
                st = rwkv_error_set(RWKV_ERR_FORMAT, "%s: line %lld: expected the header 'sequence,position,label'", path, (long long)lineno);
            header = 1;
            continue;
        }
        snprintf(where, sizeof where, "line %lld", (long long)lineno);
        long long seq, pos;
        char lab[128] = "";
        int k = sscanf(line, "%lld,%lld,%127s", &seq, &pos, lab);
        if (k < 2) { st = rwkv_error_set(RWKV_ERR_FORMAT, "%s: %s: expected sequence,position,label", path, where); break; }
        if (r >= v->n_rows) {
            st = rwkv_error_set(RWKV_ERR_SHAPE, "%s: more label rows than the %lld rows of %s", path, (long long)v->n_rows, v->path);
            break;
        }
        if ((st = check_row(v, path, r, seq, pos, where))) break;
        char *end;
        double x = strtod(lab, &end);
        if (k == 3 && end != lab && !*end && !isnan(x)) l->value[r] = x, l->valid[r] = 1;
        else if (k == 3 && lab[0] && strcmp(lab, "nan") && strcmp(lab, "NaN"))
            st = rwkv_error_set(RWKV_ERR_FORMAT, "%s: %s: label '%s' is not a number", path, where, lab);
        r++;
    }
    fclose(f);
    if (!st && !header) st = rwkv_error_set(RWKV_ERR_FORMAT, "%s: empty label file", path);
    if (!st && r != v->n_rows)
        st = rwkv_error_set(RWKV_ERR_SHAPE, "%s: %lld label rows but %s has %lld rows", path,
                            (long long)r, v->path, (long long)v->n_rows);
    return st;
}

static rwkv_status h5_vec(hid_t f, const char *path, const char *name, hid_t type, void *buf, int64_t n) {
    hid_t d = H5Dopen2(f, name, H5P_DEFAULT);
    if (d < 0) return rwkv_error_set(RWKV_ERR_FORMAT, "%s: %s: missing", path, name);
    hid_t sp = H5Dget_space(d);
    hssize_t k = H5Sget_simple_extent_npoints(sp);
    H5Sclose(sp);
    int num = rwkv_h5_numeric(d);
    herr_t e = k == n && num ? H5Dread(d, type, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf) : 0;
    H5Dclose(d);
    if (!num) return rwkv_error_set(RWKV_ERR_FORMAT, "%s: %s: does not hold numbers", path, name);
    if (k != n) return rwkv_error_set(RWKV_ERR_SHAPE, "%s: %s: %lld label rows but the dump has %lld rows",
                                      path, name, (long long)k, (long long)n);
    return e < 0 ? rwkv_error_set(RWKV_ERR_IO, "%s: %s: read failed", path, name) : RWKV_OK;
}

static rwkv_status read_h5(rwkv_labels *l, const rwkv_dumpview *v, const char *path, int *kind_given) {
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
    hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    if (f < 0) return rwkv_error_set(RWKV_ERR_IO, "%s: cannot open as HDF5", path);
    int64_t *seq = rwkv_calloc((size_t)v->n_rows + 1, sizeof *seq, "label sequences");
    int64_t *pos = rwkv_calloc((size_t)v->n_rows + 1, sizeof *pos, "label positions");
    rwkv_status st = seq && pos ? RWKV_OK : RWKV_ERR_NOMEM;
    if (!st) st = h5_vec(f, path, "/labels/sequence", H5T_NATIVE_INT64, seq, v->n_rows);
    if (!st) st = h5_vec(f, path, "/labels/position", H5T_NATIVE_INT64, pos, v->n_rows);
    if (!st) st = h5_vec(f, path, "/labels/value", H5T_NATIVE_DOUBLE, l->value, v->n_rows);
    for (int64_t r = 0; !st && r < v->n_rows; r++) {
        st = check_row(v, path, r, seq[r], pos[r], "/labels");
        l->valid[r] = !isnan(l->value[r]);
    }
    if (!st && H5Aexists_by_name(f, "/labels", "kind", H5P_DEFAULT) > 0) {
        char kind[16] = "";
        hid_t a = H5Aopen_by_name(f, "/labels", "kind", H5P_DEFAULT, H5P_DEFAULT);
        hid_t t = H5Tcopy(H5T_C_S1);
        H5Tset_size(t, sizeof kind - 1);
        if (H5Aread(a, t, kind) >= 0) {
            *kind_given = !strncmp(kind, "real", 4) || !strncmp(kind, "class", 5);
            l->kind = kind[0] == 'r' ? RWKV_LABEL_REAL : RWKV_LABEL_CLASS;
        }
        H5Tclose(t);
        H5Aclose(a);
    }
    free(seq);
    free(pos);
    H5Fclose(f);
    return st;
}

typedef struct {
    rwkv_labels *l;
    const rwkv_dumpview *v;
    const char *path;
    int *kind_given;
} h5_labels;

static rwkv_status read_h5_labels(void *ctx) {
    h5_labels *a = ctx;
    return read_h5(a->l, a->v, a->path, a->kind_given);
}

rwkv_status rwkv_labels_read(rwkv_labels **out, const rwkv_dumpview *v, const char *path) {
    *out = NULL;
    rwkv_labels *l = NULL;
    const char *base = strrchr(path, '/') ? strrchr(path, '/') + 1 : path;
    rwkv_status st = rwkv_labels_alloc(&l, v->n_rows, RWKV_LABEL_CLASS, base);
    if (st) return st;
    size_t n = strlen(path);
    int kind_given = 0, is_csv = (n > 4 && !strcmp(path + n - 4, ".csv")) || !strcmp(path, RWKV_LABELS_STDIN);
    h5_labels a = {l, v, path, &kind_given};
    st = is_csv ? read_csv(l, v, path, &kind_given)
                : rwkv_h5_guarded(path, "label file", rwkv_h5_budget(path, LABELS_H5_BUDGET_S), read_h5_labels, &a);
    if (!st) st = settle_kind(l, path, kind_given);
    if (st) { rwkv_labels_free(l); return st; }
    *out = l;
    return RWKV_OK;
}

void rwkv_labels_control_types(int *types, const rwkv_dumpview *v, const char *spec) {
    int d = 0;
    if (!strncmp(spec, "token@-", 7)) d = atoi(spec + 7);
    int first = !strncmp(spec, "seen(", 5) || !strncmp(spec, "count(", 6);
    for (int64_t r = 0; r < v->n_rows; r++)
        types[r] = first ? v->tokens[v->offsets[v->row_seq[r]]] : rwkv_dumpview_token_at(v, r, d);
}
