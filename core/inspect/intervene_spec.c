// intervene_spec.c: the TAP[:CHANNELS]@POSITIONS=OP parser, and binding a parsed spec to a
// model and a sequence length (range checks, the add vector, the patch rows from a dump).
// Every message quotes the offending part and the whole spec.
#include "intervene.h"

#include "dump.h"
#include "h5util.h"

#include <errno.h>
#include <hdf5.h>
#include <stdlib.h>
#include <string.h>

const char *const RWKV_IV_OP_NAMES[] = {"zero", "scale", "add", "set", "patch"};

#define IV_FILE_BUDGET_S 2.0   // seconds for the trial read of a vector file, plus its read time
#define OPS_HELP "expected zero, scale:a, add:FILE[:alpha], set:VALUE or patch:DUMP[:seq]"

#if RWKV_REAL_BITS == 64
#define H5_REAL H5T_NATIVE_DOUBLE
#else
#define H5_REAL H5T_NATIVE_FLOAT
#endif

// ---- parsing ---------------------------------------------------------------------------

// A non-negative decimal integer filling all of s[0, len).
static int parse_uint(const char *s, size_t len, int64_t *out) {
    if (len == 0 || len > 18) return 0;
    int64_t v = 0;
    for (size_t i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9') return 0;
        v = v * 10 + (s[i] - '0');
    }
    *out = v;
    return 1;
}

// A finite number filling all of s.
static int parse_number(const char *s, double *out) {
    if (!*s) return 0;
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (*end || errno || !isfinite(v)) return 0;
    *out = v;
    return 1;
}

// One bound of a range: N, or "last" when allowed.
static int parse_bound(const char *s, size_t len, int allow_last, int64_t *out) {
    if (allow_last && len == 4 && !strncmp(s, "last", 4)) {
        *out = RWKV_IV_LAST;
        return 1;
    }
    return parse_uint(s, len, out);
}

// "a,b-c,..." into ranges; "*" anywhere means all (n = 0). what = "channel" or "position".
static rwkv_status parse_list(rwkv_intervention *iv, const char *s, size_t len, const char *what,
                              int allow_last, rwkv_iv_range *r, int *n) {
    *n = 0;
    if (len == 0) return rwkv_error_set(RWKV_ERR_ARG, "empty %s list in '%s'", what, iv->spec);
    const char *hint = allow_last ? "expected N, A-B, last or *" : "expected N, A-B or *";
    const char *p = s, *end = s + len;
    while (p <= end) {
        const char *q = memchr(p, ',', (size_t)(end - p));
        if (!q) q = end;
        size_t k = (size_t)(q - p);
        if (k == 1 && *p == '*') {
            *n = 0;
            return RWKV_OK; // every channel / position
        }
        const char *dash = memchr(p, '-', k);
        int64_t lo, hi;
        int ok = dash ? parse_bound(p, (size_t)(dash - p), allow_last, &lo) &&
                            parse_bound(dash + 1, (size_t)(q - dash - 1), allow_last, &hi)
                      : parse_bound(p, k, allow_last, &lo);
        if (!dash) hi = lo;
        if (!ok)
            return rwkv_error_set(RWKV_ERR_ARG, "%s '%.*s' in '%s': %s", what, (int)k, p, iv->spec, hint);
        int reversed = lo == RWKV_IV_LAST ? hi != RWKV_IV_LAST : hi != RWKV_IV_LAST && hi < lo;
        if (reversed)
            return rwkv_error_set(RWKV_ERR_ARG, "%s range '%.*s' in '%s': the start is after the end",
                                  what, (int)k, p, iv->spec);
        if (*n == RWKV_IV_MAX_RANGES)
            return rwkv_error_set(RWKV_ERR_ARG, "%s list in '%s': more than %d entries", what,
                                  iv->spec, RWKV_IV_MAX_RANGES);
        r[(*n)++] = (rwkv_iv_range){lo, hi};
        p = q + 1;
    }
    return RWKV_OK;
}

// "blocks.<l>.<tap>" or a global name.
static rwkv_status parse_tap(rwkv_intervention *iv, const char *s, size_t len) {
    static const char prefix[] = "blocks.";
    const size_t pl = sizeof prefix - 1;
    const char *name = s;
    size_t nl = len;
    iv->layer = -1;
    if (len >= pl && !strncmp(s, prefix, pl)) {
        const char *dot = memchr(s + pl, '.', len - pl);
        size_t ll = dot ? (size_t)(dot - s) - pl : len - pl;
        int64_t l;
        if (!dot) return rwkv_error_set(RWKV_ERR_ARG, "tap '%.*s' in '%s': expected blocks.N.TAP", (int)len, s, iv->spec);
        if (!parse_uint(s + pl, ll, &l) || l > INT32_MAX)
            return rwkv_error_set(RWKV_ERR_ARG, "layer '%.*s' in '%s': expected a block index", (int)ll, s + pl, iv->spec);
        iv->layer = (int)l;
        name = dot + 1;
        nl = len - (size_t)(name - s);
    }
    char buf[64];
    int t = -1;
    if (nl < sizeof buf) {
        memcpy(buf, name, nl);
        buf[nl] = 0;
        t = rwkv_tap_from_name(buf);
    }
    if (t < 0)
        return rwkv_error_set(RWKV_ERR_ARG, "tap '%.*s' in '%s': unknown (block taps: %s .. %s; globals: %s, %s)",
                              (int)nl, name, iv->spec, RWKV_TAP_NAMES[0], RWKV_TAP_NAMES[RWKV_TAP_N_BLOCK - 1],
                              RWKV_TAP_NAMES[RWKV_TAP_RESID_OUT], RWKV_TAP_NAMES[RWKV_TAP_LOGITS]);
    int global = t >= RWKV_TAP_N_BLOCK;
    if (global && iv->layer >= 0)
        return rwkv_error_set(RWKV_ERR_ARG, "tap '%.*s' in '%s': %s is a global tap, written without blocks.N",
                              (int)len, s, iv->spec, buf);
    if (!global && iv->layer < 0)
        return rwkv_error_set(RWKV_ERR_ARG, "tap '%.*s' in '%s': a block tap needs its layer, blocks.N.%s",
                              (int)len, s, iv->spec, buf);
    iv->tap = (rwkv_tap)t;
    return RWKV_OK;
}

// OP: zero | scale:a | add:FILE[:alpha] | set:VALUE | patch:DUMP[:seq].
static rwkv_status parse_op(rwkv_intervention *iv, const char *s) {
    const char *colon = strchr(s, ':');
    size_t nl = colon ? (size_t)(colon - s) : strlen(s);
    const char *arg = colon ? colon + 1 : NULL;
    int op = -1;
    for (int i = 0; i <= RWKV_IV_PATCH; i++)
        if (strlen(RWKV_IV_OP_NAMES[i]) == nl && !strncmp(s, RWKV_IV_OP_NAMES[i], nl)) op = i;
    if (op < 0) return rwkv_error_set(RWKV_ERR_ARG, "op '%s' in '%s': %s", s, iv->spec, OPS_HELP);
    iv->op = (rwkv_iv_op)op;
    iv->value = 1;
    if (op == RWKV_IV_ZERO) {
        if (arg) return rwkv_error_set(RWKV_ERR_ARG, "op '%s' in '%s': zero takes no argument", s, iv->spec);
        return RWKV_OK;
    }
    if (!arg || !*arg)
        return rwkv_error_set(RWKV_ERR_ARG, "op '%s' in '%s': %s needs an argument (%s)", s, iv->spec,
                              RWKV_IV_OP_NAMES[op], OPS_HELP);
    if (op == RWKV_IV_SCALE || op == RWKV_IV_SET) {
        if (!parse_number(arg, &iv->value))
            return rwkv_error_set(RWKV_ERR_ARG, "%s value '%s' in '%s': not a finite number",
                                  RWKV_IV_OP_NAMES[op], arg, iv->spec);
        return RWKV_OK;
    }
    // add and patch: FILE, then an optional ":alpha" / ":seq" when the last part is a number
    // (so a path may itself hold colons).
    size_t plen = strlen(arg);
    const char *last = strrchr(arg, ':');
    if (last) {
        int64_t seq;
        int num = op == RWKV_IV_ADD ? parse_number(last + 1, &iv->value)
                                    : parse_uint(last + 1, strlen(last + 1), &seq) && seq <= INT32_MAX;
        if (!num)
            return rwkv_error_set(RWKV_ERR_ARG, "%s '%s' in '%s': not a %s", op == RWKV_IV_ADD ? "alpha" : "sequence",
                                  last + 1, iv->spec, op == RWKV_IV_ADD ? "finite number" : "sequence index");
        if (op == RWKV_IV_PATCH) iv->seq = (int)seq;
        plen = (size_t)(last - arg);
    }
    if (plen == 0)
        return rwkv_error_set(RWKV_ERR_ARG, "op '%s' in '%s': %s needs a file name", s, iv->spec, RWKV_IV_OP_NAMES[op]);
    if (plen >= sizeof iv->path)
        return rwkv_error_set(RWKV_ERR_ARG, "op '%s' in '%s': the file name is too long", s, iv->spec);
    memcpy(iv->path, arg, plen);
    iv->path[plen] = 0;
    return RWKV_OK;
}

// state_wkv's HEAD[:ROW[:COL]] between s and end.
static rwkv_status parse_matrix(rwkv_intervention *iv, const char *s, const char *end) {
    const char *what[3] = {"head", "row", "column"};
    rwkv_iv_range *r[3] = {iv->chan, iv->row, iv->col};
    int *n[3] = {&iv->n_chan, &iv->n_row, &iv->n_col};
    for (int i = 0; i < 3; i++) {
        const char *c = memchr(s, ':', (size_t)(end - s));
        const char *stop = c ? c : end;
        rwkv_status st = parse_list(iv, s, (size_t)(stop - s), what[i], 0, r[i], n[i]);
        if (st) return st;
        if (!c) return RWKV_OK;
        s = c + 1;
    }
    return rwkv_error_set(RWKV_ERR_ARG, "state_wkv channels in '%s': expected HEAD[:ROW[:COL]]", iv->spec);
}

rwkv_status rwkv_intervene_parse(rwkv_intervention *iv, const char *spec) {
    memset(iv, 0, sizeof *iv);
    size_t n = strlen(spec);
    if (n >= sizeof iv->spec)
        return rwkv_error_set(RWKV_ERR_ARG, "intervention '%.40s...': longer than %d characters", spec,
                              RWKV_IV_SPEC_MAX - 1);
    memcpy(iv->spec, spec, n + 1);
    const char *at = strchr(spec, '@');
    const char *eq = at ? strchr(at, '=') : NULL;
    if (!at || !eq)
        return rwkv_error_set(RWKV_ERR_ARG, "intervention '%s': expected TAP[:CHANNELS]@POSITIONS=OP (missing '%c')",
                              spec, at ? '=' : '@');
    const char *colon = memchr(spec, ':', (size_t)(at - spec));
    rwkv_status st = parse_tap(iv, spec, (size_t)((colon ? colon : at) - spec));
    if (!st && colon && iv->tap == RWKV_TAP_STATE_WKV) st = parse_matrix(iv, colon + 1, at);
    else if (!st && colon) st = parse_list(iv, colon + 1, (size_t)(at - colon - 1), "channel", 0, iv->chan, &iv->n_chan);
    if (!st) st = parse_list(iv, at + 1, (size_t)(eq - at - 1), "position", 1, iv->pos, &iv->n_pos);
    if (!st) st = parse_op(iv, eq + 1);
    return st;
}

// ---- binding ---------------------------------------------------------------------------

static int64_t resolve(int64_t b, int64_t T) { return b == RWKV_IV_LAST ? T - 1 : b; }

// Marks ranges in mask (n); a bound >= n is an error quoting it and `limit` ("the ... has n ...").
static rwkv_status fill_mask(const rwkv_intervention *iv, uint8_t *mask, int64_t n, const rwkv_iv_range *r,
                             int nr, const char *what, const char *limit) {
    if (nr == 0) {
        memset(mask, 1, (size_t)n);
        return RWKV_OK;
    }
    if (n == 0) return rwkv_error_set(RWKV_ERR_ARG, "%s list in '%s': out of range, %s", what, iv->spec, limit);
    for (int i = 0; i < nr; i++) {
        int64_t lo = resolve(r[i].lo, n), hi = resolve(r[i].hi, n);
        if (hi >= n || lo >= n) // "90-last" on a shorter sequence has lo >= n > hi
            return rwkv_error_set(RWKV_ERR_ARG, "%s %lld in '%s': out of range, %s", what,
                                  (long long)(lo >= n ? lo : hi), iv->spec, limit);
        if (lo < 0 || lo > hi)
            return rwkv_error_set(RWKV_ERR_ARG, "%s range %lld-%lld in '%s': empty, %s", what, (long long)lo,
                                  (long long)hi, iv->spec, limit);
        memset(mask + lo, 1, (size_t)(hi - lo + 1));
    }
    return RWKV_OK;
}

// state_wkv: channel h*N*N + i*N + j for the selected heads h, rows i and columns j.
static rwkv_status matrix_mask(rwkv_intervention *iv, rwkv_config cfg) {
    int N = cfg.head_size, H = cfg.n_embd / N;
    uint8_t *m[3] = {rwkv_calloc((size_t)H, 1, "heads"), rwkv_calloc((size_t)N, 1, "rows"), rwkv_calloc((size_t)N, 1, "columns")};
    char hl[64], nl[64];
    snprintf(hl, sizeof hl, "the model has %d heads", H);
    snprintf(nl, sizeof nl, "a head's state is %d x %d", N, N);
    rwkv_status st = !m[0] || !m[1] || !m[2] ? RWKV_ERR_NOMEM : RWKV_OK;
    if (!st) st = fill_mask(iv, m[0], H, iv->chan, iv->n_chan, "head", hl);
    if (!st) st = fill_mask(iv, m[1], N, iv->row, iv->n_row, "row", nl);
    if (!st) st = fill_mask(iv, m[2], N, iv->col, iv->n_col, "column", nl);
    for (int h = 0; !st && h < H; h++)
        for (int i = 0; i < N; i++)
            for (int j = 0; j < N; j++)
                iv->chan_mask[((size_t)h * N + i) * N + j] = m[0][h] && m[1][i] && m[2][j];
    for (int k = 0; k < 3; k++) free(m[k]);
    return st;
}

// Checks layer, channels and positions; allocates the masks.
static rwkv_status bind_common(rwkv_intervention *iv, rwkv_config cfg, int64_t T) {
    if (T < 1) return rwkv_error_set(RWKV_ERR_ARG, "intervention '%s': the sequence is empty", iv->spec);
    if (iv->layer >= cfg.n_layer)
        return rwkv_error_set(RWKV_ERR_ARG, "layer %d in '%s': out of range, the model has %d layers",
                              iv->layer, iv->spec, cfg.n_layer);
    iv->D = rwkv_tap_width(iv->tap, cfg);
    if (!iv->D)
        return rwkv_error_set(RWKV_ERR_ARG, "tap %s in '%s': an RWKV-%d model has no such tap", RWKV_TAP_NAMES[iv->tap],
                              iv->spec, RWKV_HAS_HEADS(cfg) ? cfg.version : 4);
    iv->T = T;
    iv->chan_mask = rwkv_calloc((size_t)iv->D, 1, "intervention channels");
    iv->pos_mask = rwkv_calloc((size_t)T, 1, "intervention positions");
    if (!iv->chan_mask || !iv->pos_mask) return RWKV_ERR_NOMEM;
    char climit[96], plimit[96];
    snprintf(climit, sizeof climit, "%s has %d channels", RWKV_TAP_NAMES[iv->tap], iv->D);
    snprintf(plimit, sizeof plimit, "the sequence has %lld tokens", (long long)T);
    rwkv_status st = iv->tap == RWKV_TAP_STATE_WKV ? matrix_mask(iv, cfg)
                                                   : fill_mask(iv, iv->chan_mask, iv->D, iv->chan, iv->n_chan, "channel", climit);
    if (!st) st = fill_mask(iv, iv->pos_mask, T, iv->pos, iv->n_pos, "position", plimit);
    return st;
}

// Reads rows [r0, r0 + nr) of a (N, D) or (D) float dataset into out (nr, D).
static rwkv_status read_rows(hid_t d, int64_t r0, int64_t nr, int D, rwkv_real *out) {
    if (!rwkv_h5_numeric(d)) return RWKV_ERR_FORMAT;
    hid_t fs = H5Dget_space(d);
    int nd = H5Sget_simple_extent_ndims(fs);
    hsize_t start[2] = {(hsize_t)r0, 0}, count[2] = {(hsize_t)nr, (hsize_t)D};
    if (nd == 1) count[0] = (hsize_t)D;
    hid_t ms = H5Screate_simple(nd, count, NULL);
    herr_t e = -1;
    H5E_BEGIN_TRY {
        e = H5Sselect_hyperslab(fs, H5S_SELECT_SET, start, NULL, count, NULL);
        if (e >= 0) e = H5Dread(d, H5_REAL, ms, fs, H5P_DEFAULT, out);
    } H5E_END_TRY;
    H5Sclose(ms);
    H5Sclose(fs);
    return e < 0 ? RWKV_ERR_FORMAT : RWKV_OK;
}

// Rank of a dataset and its first two dimensions.
static int dims_of(hid_t d, hsize_t dims[2]) {
    hid_t sp = H5Dget_space(d);
    hsize_t all[8] = {0};
    int nd = H5Sget_simple_extent_dims(sp, all, NULL);
    dims[0] = all[0];
    dims[1] = all[1];
    H5Sclose(sp);
    return nd;
}

static hid_t open_dset(hid_t f, const char *name) {
    hid_t d = -1;
    H5E_BEGIN_TRY { d = H5Dopen2(f, name, H5P_DEFAULT); } H5E_END_TRY;
    return d;
}

static hid_t open_file(const char *path) {
    hid_t f = -1;
    H5E_BEGIN_TRY { f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT); } H5E_END_TRY;
    return f;
}

static rwkv_status bind_vector(rwkv_intervention *iv) {
    hid_t f = open_file(iv->path), d = f >= 0 ? open_dset(f, "/vector") : -1;
    hsize_t dims[2] = {0, 0};
    int nd = d >= 0 ? dims_of(d, dims) : 0;
    rwkv_status st = RWKV_OK;
    if (f < 0) st = rwkv_error_set(RWKV_ERR_IO, "vector file '%s' in '%s': cannot open as HDF5", iv->path, iv->spec);
    else if (d < 0) st = rwkv_error_set(RWKV_ERR_FORMAT, "vector file '%s' in '%s': no dataset /vector", iv->path, iv->spec);
    else if (nd != 1 || dims[0] != (hsize_t)iv->D)
        st = rwkv_error_set(RWKV_ERR_SHAPE, "vector file '%s' in '%s': /vector has %d dimension(s) of which the first is %llu, %s needs [%d]",
                            iv->path, iv->spec, nd, (unsigned long long)dims[0], RWKV_TAP_NAMES[iv->tap], iv->D);
    else if (!(iv->vec = rwkv_calloc((size_t)iv->D, sizeof(rwkv_real), "add vector"))) st = RWKV_ERR_NOMEM;
    else if (read_rows(d, 0, 1, iv->D, iv->vec))
        st = rwkv_error_set(RWKV_ERR_FORMAT, "vector file '%s' in '%s': /vector is not numeric", iv->path, iv->spec);
    for (int c = 0; !st && c < iv->D; c++) {
        if (!isfinite(iv->vec[c]))
            st = rwkv_error_set(RWKV_ERR_NUMERIC, "vector file '%s' in '%s': /vector[%d] is not finite", iv->path, iv->spec, c);
        iv->vec[c] = (rwkv_real)(iv->value * iv->vec[c]); // alpha * vector
    }
    if (d >= 0) H5Dclose(d);
    if (f >= 0) H5Fclose(f);
    return st;
}

// The dump must be complete and recorded with this model's shape.
static rwkv_status check_shape(const rwkv_intervention *iv, const rwkv_dump_reader *r, rwkv_config cfg) {
    if (!r->complete)
        return rwkv_error_set(RWKV_ERR_FORMAT, "patch source '%s' in '%s': the dump is incomplete (its run was cut short)",
                              iv->path, iv->spec);
    const char *names[] = {"n_layer", "n_embd", "n_ffn", "n_vocab", "rwkv_version", "head_size"};
    int heads = RWKV_HAS_HEADS(cfg) || RWKV_HAS_HEADS(r->cfg);
    int want[] = {cfg.n_layer, cfg.n_embd, cfg.n_ffn, cfg.n_vocab, RWKV_HAS_HEADS(cfg) ? cfg.version : 4, cfg.head_size};
    int got[] = {r->cfg.n_layer, r->cfg.n_embd, r->cfg.n_ffn, r->cfg.n_vocab,
                 RWKV_HAS_HEADS(r->cfg) ? r->cfg.version : 4, r->cfg.head_size};
    for (int i = 0; i < (heads ? 6 : 5); i++)
        if (got[i] != want[i])
            return rwkv_error_set(RWKV_ERR_SHAPE, "patch source '%s' in '%s': recorded with %s = %d, this model has %d",
                                  iv->path, iv->spec, names[i], got[i], want[i]);
    return RWKV_OK;
}

// Reads the source rows of the patch into iv->src (T, D): sequence iv->seq must have the run's
// length, and every position the op touches must have been recorded.
static rwkv_status load_patch(rwkv_intervention *iv, const rwkv_dump_reader *r, rwkv_config cfg) {
    rwkv_status st = check_shape(iv, r, cfg);
    if (st) return st;
    int layer = iv->layer >= 0 ? iv->layer : r->cfg.n_layer;
    const char *tap = RWKV_TAP_NAMES[iv->tap];
    char name[128];
    if (iv->layer >= 0) snprintf(name, sizeof name, "/blocks/%d/%s", iv->layer, tap);
    else snprintf(name, sizeof name, "/%s", tap);
    int D = rwkv_dump_width_of(r, layer, tap);
    if (!D)
        return rwkv_error_set(RWKV_ERR_FORMAT, "patch source '%s' in '%s': no dataset %s (dump that tap)", iv->path,
                              iv->spec, name);
    if (D != iv->D)
        return rwkv_error_set(RWKV_ERR_SHAPE, "patch source '%s' in '%s': %s has %d columns, %s needs %d", iv->path,
                              iv->spec, name, D, tap, iv->D);
    if (iv->seq >= r->n_seq)
        return rwkv_error_set(RWKV_ERR_ARG, "patch source '%s' in '%s': sequence %d requested, the dump holds %lld",
                              iv->path, iv->spec, iv->seq, (long long)r->n_seq);
    int64_t len = r->token_offsets[iv->seq + 1] - r->token_offsets[iv->seq], r0 = 0, n = 0;
    if (len != iv->T)
        return rwkv_error_set(RWKV_ERR_SHAPE, "patch source '%s' in '%s': sequence %d has %lld positions, this run has %lld",
                              iv->path, iv->spec, iv->seq, (long long)len, (long long)iv->T);
    if ((st = rwkv_dump_seq_rows(r, iv->seq, 0, -1, &r0, &n))) return st;
    rwkv_real *rows = rwkv_calloc((size_t)(n ? n : 1) * iv->D, sizeof(rwkv_real), "patch rows");
    uint8_t *have = rwkv_calloc((size_t)iv->T, 1, "patch positions");
    if (!rows || !have) st = RWKV_ERR_NOMEM;
    if (!st && (st = rwkv_dump_read_tap(r, layer, tap, r0, n, rows)))
        st = rwkv_error_wrap(st, "patch source '%s' in '%s': ", iv->path, iv->spec);
    if (!st && !(iv->src = rwkv_calloc((size_t)iv->T * iv->D, sizeof(rwkv_real), "patch source"))) st = RWKV_ERR_NOMEM;
    iv->src_owned = 1;
    for (int64_t i = 0; !st && i < n; i++) { // the reader checked 0 <= position < len
        int64_t p = r->positions[r0 + i];
        memcpy(iv->src + (size_t)p * iv->D, rows + (size_t)i * iv->D, (size_t)iv->D * sizeof(rwkv_real));
        have[p] = 1;
    }
    for (int64_t p = 0; !st && p < iv->T; p++)
        if (iv->pos_mask[p] && !have[p])
            st = rwkv_error_set(RWKV_ERR_ARG, "patch source '%s' in '%s': position %lld was not recorded in sequence %d",
                                iv->path, iv->spec, (long long)p, iv->seq);
    free(have);
    free(rows);
    return st;
}

// Patch sources are dumps, opened (in a guarded trial) by the one dump reader.
static rwkv_status bind_patch(rwkv_intervention *iv, rwkv_config cfg) {
    rwkv_dump_reader *r;
    rwkv_status st = rwkv_dump_open(&r, iv->path);
    if (st) return rwkv_error_wrap(st, "patch source '%s' in '%s': ", iv->path, iv->spec);
    st = load_patch(iv, r, cfg);
    rwkv_dump_reader_free(r);
    return st;
}

typedef struct {
    rwkv_intervention *iv;
    rwkv_config cfg;
} bind_args;

static rwkv_status bind_file(void *ctx) {
    bind_args *a = ctx;
    return bind_vector(a->iv);
}

rwkv_status rwkv_intervene_bind(rwkv_intervention *iv, rwkv_config cfg, int64_t T) {
    rwkv_status st = bind_common(iv, cfg, T);
    bind_args a = {iv, cfg};
    if (!st && iv->op == RWKV_IV_ADD)
        st = rwkv_h5_guarded(iv->path, "vector file", rwkv_h5_budget(iv->path, IV_FILE_BUDGET_S), bind_file, &a);
    else if (!st && iv->op == RWKV_IV_PATCH && !iv->src)
        st = bind_patch(iv, cfg);
    if (st) rwkv_intervene_release(iv);
    return st;
}

rwkv_status rwkv_intervene_bind_src(rwkv_intervention *iv, rwkv_config cfg, int64_t T, rwkv_real *src) {
    if (iv->op != RWKV_IV_PATCH)
        return rwkv_error_set(RWKV_ERR_ARG, "intervention '%s': an in-memory source needs a patch op", iv->spec);
    iv->src = src;
    iv->src_owned = 0;
    return rwkv_intervene_bind(iv, cfg, T);
}

rwkv_status rwkv_intervene_index_list(uint8_t *mask, int64_t n, const char *list, const char *what, int allow_last) {
    rwkv_intervention *iv = rwkv_calloc(1, sizeof *iv, "index list"); // holds the text and ranges
    if (!iv) return RWKV_ERR_NOMEM;
    snprintf(iv->spec, sizeof iv->spec, "%s", list);
    char limit[96];
    snprintf(limit, sizeof limit, "there are %lld %ss", (long long)n, what);
    memset(mask, 0, (size_t)n);
    rwkv_status st = parse_list(iv, list, strlen(list), what, allow_last, iv->pos, &iv->n_pos);
    if (!st) st = fill_mask(iv, mask, n, iv->pos, iv->n_pos, what, limit);
    free(iv);
    return st;
}

void rwkv_intervene_release(rwkv_intervention *iv) {
    free(iv->chan_mask);
    free(iv->pos_mask);
    free(iv->vec);
    if (iv->src_owned) free(iv->src);
    iv->chan_mask = iv->pos_mask = NULL;
    iv->vec = iv->src = NULL;
    iv->src_owned = 0;
}
