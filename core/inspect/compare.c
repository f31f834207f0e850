// compare.c: streams both dumps tap by tap in row blocks and keeps the worst errors.
#include "compare.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define COMPARE_BLOCK_ELEMS (1 << 20) // values read per block and dump

static rwkv_status same_layout(const rwkv_dump_reader *a, const rwkv_dump_reader *b, int64_t **pos, int64_t **off) {
    *pos = *off = NULL;
    if (memcmp(&a->cfg, &b->cfg, sizeof a->cfg))
        return rwkv_error_set(RWKV_ERR_SHAPE, "%s and %s: dumps of different model shapes", a->path, b->path);
    if (a->n_rows != b->n_rows || a->n_seq != b->n_seq || a->n_tokens != b->n_tokens)
        return rwkv_error_set(RWKV_ERR_SHAPE, "%s (%lld rows, %lld sequences) and %s (%lld rows, %lld sequences): "
                              "not the same inputs and positions", a->path, (long long)a->n_rows, (long long)a->n_seq,
                              b->path, (long long)b->n_rows, (long long)b->n_seq);
    int64_t *pb = NULL, *ob = NULL;
    int *ta = NULL, *tb = NULL;
    rwkv_status st = rwkv_dump_read_positions(a, pos);
    if (!st) st = rwkv_dump_read_positions(b, &pb);
    if (!st) st = rwkv_dump_read_offsets(a, off);
    if (!st) st = rwkv_dump_read_offsets(b, &ob);
    if (!st) st = rwkv_dump_read_tokens(a, &ta);
    if (!st) st = rwkv_dump_read_tokens(b, &tb);
    if (!st && (memcmp(*pos, pb, (size_t)a->n_rows * sizeof *pb) || memcmp(*off, ob, (size_t)(a->n_seq + 1) * sizeof *ob) ||
                memcmp(ta, tb, (size_t)a->n_tokens * sizeof *ta)))
        st = rwkv_error_set(RWKV_ERR_SHAPE, "%s and %s: different tokens, sequences or positions", a->path, b->path);
    free(pb); free(ob); free(ta); free(tb);
    if (st) {
        free(*pos); free(*off);
        *pos = *off = NULL;
    }
    return st;
}

// Updates r with rows [row0, row0 + n) of (x, ref), each of width D.
static void accumulate(rwkv_compare_row *r, const double *x, const double *ref, int64_t row0, int64_t n, int D, double tol) {
    for (int64_t i = 0; i < n; i++)
        for (int c = 0; c < D; c++) {
            double y = ref[i * D + c], e = fabs(x[i * D + c] - y);
            double rel = e / fmax(fabs(y), RWKV_COMPARE_REL_FLOOR), sc = e / fmax(1.0, fabs(y));
            if (!(e <= r->max_abs)) r->max_abs = e; // NaN sticks
            if (!(rel <= r->max_rel)) r->max_rel = rel;
            if (!(sc <= r->max_scaled)) r->max_scaled = sc;
            if (r->first_row < 0 && !(sc <= tol)) {
                r->first_row = row0 + i;
                r->first_channel = c;
            }
        }
}

// The scale-free form of a state tap (compare.h): num/den, or den at the common max.
// x, ref (n, D) are rewritten in place; sx, sref hold the other tap's rows of the same dumps.
static void scale_free(rwkv_tap tap, double *x, double *ref, const double *sx, const double *sref, int64_t n) {
    for (int64_t i = 0; i < n; i++) {
        if (tap == RWKV_TAP_STATE_NUM) { // num / den; den >= 1 after a token (one term is e^0)
            if (sx[i] != 0) x[i] /= sx[i];
            if (sref[i] != 0) ref[i] /= sref[i];
        } else { // den e^{max - m}, m = max(max_x, max_ref): both in one scale
            double m = fmax(sx[i], sref[i]);
            x[i] *= exp(sx[i] - m);
            ref[i] *= exp(sref[i] - m);
        }
    }
}

// The tap whose rows make tap scale-free (RWKV_TAP_N for none), if both dumps have it.
static rwkv_tap scale_tap(const rwkv_dump_reader *a, const rwkv_dump_reader *b, int layer, rwkv_tap tap, int D) {
    rwkv_tap s = tap == RWKV_TAP_STATE_NUM ? RWKV_TAP_STATE_DEN : tap == RWKV_TAP_STATE_DEN ? RWKV_TAP_STATE_MAX : RWKV_TAP_N;
    if (s == RWKV_TAP_N || rwkv_dump_width(a, layer, s) != D || rwkv_dump_width(b, layer, s) != D) return RWKV_TAP_N;
    return s;
}

static rwkv_status compare_tap(rwkv_compare_row *r, const rwkv_dump_reader *a, const rwkv_dump_reader *b,
                               double *buf[4], double tol) {
    int64_t block = COMPARE_BLOCK_ELEMS / r->D;
    if (block < 1) block = 1;
    rwkv_tap s = scale_tap(a, b, r->layer, r->tap, r->D);
    r->form = s == RWKV_TAP_N ? "value" : s == RWKV_TAP_STATE_DEN ? "num/den" : "den at common max";
    for (int64_t row = 0; row < a->n_rows; row += block) {
        int64_t n = a->n_rows - row < block ? a->n_rows - row : block;
        rwkv_status st = rwkv_dump_read_rows_f64(a, r->layer, r->tap, row, n, buf[0]);
        if (!st) st = rwkv_dump_read_rows_f64(b, r->layer, r->tap, row, n, buf[1]);
        if (!st && s != RWKV_TAP_N) st = rwkv_dump_read_rows_f64(a, r->layer, s, row, n, buf[2]);
        if (!st && s != RWKV_TAP_N) st = rwkv_dump_read_rows_f64(b, r->layer, s, row, n, buf[3]);
        if (st) return st;
        if (s != RWKV_TAP_N) scale_free(r->tap, buf[1], buf[0], buf[3], buf[2], n * r->D);
        accumulate(r, buf[1], buf[0], row, n, r->D, tol);
    }
    return RWKV_OK;
}

// Earlier position first; at the same row, the earlier layer, then the earlier tap.
static int earlier(const rwkv_compare_row *x, const rwkv_compare_row *y) {
    if (x->first_row != y->first_row) return x->first_row < y->first_row;
    if (x->layer != y->layer) return x->layer < y->layer;
    return x->tap < y->tap;
}

static rwkv_status run(rwkv_compare_result *out, const rwkv_dump_reader *a, const rwkv_dump_reader *b, double tol) {
    int64_t *pos, *off;
    rwkv_status st = same_layout(a, b, &pos, &off);
    if (st) return st;
    int L = a->cfg.n_layer;
    double *buf[4] = {NULL}; // rows of the tap in a and b, then of its scale tap (state only)
    out->rows = rwkv_calloc((size_t)(L + 1) * RWKV_TAP_N, sizeof *out->rows, "compare table");
    size_t maxd = (size_t)(a->cfg.n_vocab > a->cfg.n_ffn ? a->cfg.n_vocab : a->cfg.n_ffn);
    size_t nbuf = maxd > COMPARE_BLOCK_ELEMS ? maxd : COMPARE_BLOCK_ELEMS;
    for (int k = 0; k < 4; k++) buf[k] = rwkv_calloc(nbuf, sizeof *buf[k], "compare buffer");
    if (!out->rows || !buf[0] || !buf[1] || !buf[2] || !buf[3]) st = RWKV_ERR_NOMEM;
    for (int l = 0; l <= L && !st; l++)
        for (int t = 0; t < RWKV_TAP_N && !st; t++) {
            if ((l < L) != (t < RWKV_TAP_N_BLOCK)) continue;
            int D = rwkv_dump_width(a, l, (rwkv_tap)t);
            if (!D || rwkv_dump_width(b, l, (rwkv_tap)t) != D) continue;
            rwkv_compare_row *r = &out->rows[out->n++];
            *r = (rwkv_compare_row){.layer = l, .tap = (rwkv_tap)t, .D = D, .first_row = -1, .first_seq = -1,
                                    .first_pos = -1, .first_channel = -1};
            rwkv_select_tap_name(r->name, sizeof r->name, l, L, (rwkv_tap)t);
            if ((st = compare_tap(r, a, b, buf, tol))) break;
            if (r->first_row < 0) continue;
            out->n_exceeded++;
            r->first_pos = pos[r->first_row];
            for (r->first_seq = 0; off[r->first_seq + 1] <= r->first_row; r->first_seq++) {}
            if (out->first < 0 || earlier(r, &out->rows[out->first])) out->first = out->n - 1;
        }
    if (!st && !out->n)
        st = rwkv_error_set(RWKV_ERR_ARG, "%s and %s: no tap is present in both dumps", a->path, b->path);
    for (int k = 0; k < 4; k++) free(buf[k]);
    free(pos); free(off);
    return st;
}

rwkv_status rwkv_compare_dumps(rwkv_compare_result *out, const char *ref, const char *other, double tol) {
    memset(out, 0, sizeof *out);
    out->first = -1;
    out->tol = tol;
    rwkv_dump_reader *a = NULL, *b = NULL;
    rwkv_status st = rwkv_dump_open(&a, ref);
    if (!st) st = rwkv_dump_open(&b, other);
    if (!st) st = run(out, a, b, tol);
    rwkv_dump_reader_free(a);
    rwkv_dump_reader_free(b);
    if (st) rwkv_compare_free(out);
    return st;
}

void rwkv_compare_free(rwkv_compare_result *r) {
    if (!r) return;
    free(r->rows);
    r->rows = NULL;
    r->n = r->n_exceeded = 0;
    r->first = -1;
}
