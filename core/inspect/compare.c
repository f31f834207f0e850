// compare.c: streams both dumps tap by tap in row blocks and keeps the worst errors.
#include "compare.h"

#include "../base/file.h"

#include "intervene.h"
#include "record.h"

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
// state_num is made scale-free by state_den, state_den by state_max (RWKV_TAP_N: no partner).
static rwkv_tap scale_partner(rwkv_tap tap) {
    return tap == RWKV_TAP_STATE_NUM ? RWKV_TAP_STATE_DEN : tap == RWKV_TAP_STATE_DEN ? RWKV_TAP_STATE_MAX : RWKV_TAP_N;
}

static rwkv_tap scale_tap(const rwkv_dump_reader *a, const rwkv_dump_reader *b, int layer, rwkv_tap tap, int D) {
    rwkv_tap s = scale_partner(tap);
    if (s == RWKV_TAP_N || rwkv_dump_width(a, layer, s) != D || rwkv_dump_width(b, layer, s) != D) return RWKV_TAP_N;
    return s;
}

// Compares rows [row0, row0 + n) held in buf: 0 the reference, 1 the other, 2 and 3 their
// scale tap s (RWKV_TAP_N: none), which rewrites 0 and 1 in the scale-free form first.
static void compare_block(rwkv_compare_row *r, rwkv_tap s, double *buf[4], int64_t row0, int64_t n, double tol) {
    if (s != RWKV_TAP_N) scale_free(r->tap, buf[1], buf[0], buf[3], buf[2], n * r->D);
    accumulate(r, buf[1], buf[0], row0, n, r->D, tol);
}

static const char *form_name(rwkv_tap s) {
    return s == RWKV_TAP_N ? "value" : s == RWKV_TAP_STATE_DEN ? "num/den" : "den at common max";
}

static rwkv_status compare_tap(rwkv_compare_row *r, const rwkv_dump_reader *a, const rwkv_dump_reader *b,
                               double *buf[4], double tol) {
    int64_t block = COMPARE_BLOCK_ELEMS / r->D;
    if (block < 1) block = 1;
    rwkv_tap s = scale_tap(a, b, r->layer, r->tap, r->D);
    r->form = form_name(s);
    for (int64_t row = 0; row < a->n_rows; row += block) {
        int64_t n = a->n_rows - row < block ? a->n_rows - row : block;
        rwkv_status st = rwkv_dump_read_rows_f64(a, r->layer, r->tap, row, n, buf[0]);
        if (!st) st = rwkv_dump_read_rows_f64(b, r->layer, r->tap, row, n, buf[1]);
        if (!st && s != RWKV_TAP_N) st = rwkv_dump_read_rows_f64(a, r->layer, s, row, n, buf[2]);
        if (!st && s != RWKV_TAP_N) st = rwkv_dump_read_rows_f64(b, r->layer, s, row, n, buf[3]);
        if (st) return st;
        compare_block(r, s, buf, row, n, tol);
    }
    return RWKV_OK;
}

// Earlier position first; at the same row, the earlier layer, then the earlier tap.
static int earlier(const rwkv_compare_row *x, const rwkv_compare_row *y) {
    if (x->first_row != y->first_row) return x->first_row < y->first_row;
    if (x->layer != y->layer) return x->layer < y->layer;
    return x->tap < y->tap;
}

static rwkv_compare_row *add_row(rwkv_compare_result *out, int layer, rwkv_tap tap, int D, int L) {
    rwkv_compare_row *r = &out->rows[out->n++];
    *r = (rwkv_compare_row){.layer = layer, .tap = tap, .D = D, .first_row = -1, .first_seq = -1, .first_pos = -1,
                            .first_channel = -1};
    rwkv_select_tap_name(r->name, sizeof r->name, layer, L, tap);
    return r;
}

// Places row i's first exceeding row in its sequence (off (S + 1) row offsets; pos (rows),
// or NULL when every position is a row) and keeps the earliest divergence.
static void finish_row(rwkv_compare_result *out, int i, const int64_t *pos, const int64_t *off) {
    rwkv_compare_row *r = &out->rows[i];
    if (r->first_row < 0) return;
    out->n_exceeded++;
    for (r->first_seq = 0; off[r->first_seq + 1] <= r->first_row; r->first_seq++) {}
    r->first_pos = pos ? pos[r->first_row] : r->first_row - off[r->first_seq];
    if (out->first < 0 || earlier(r, &out->rows[out->first])) out->first = i;
}

// Four buffers of n doubles (compare_block's).
static rwkv_status alloc_bufs(double *buf[4], size_t n) {
    for (int k = 0; k < 4; k++) buf[k] = rwkv_calloc(n, sizeof *buf[k], "compare buffer");
    return buf[0] && buf[1] && buf[2] && buf[3] ? RWKV_OK : RWKV_ERR_NOMEM;
}

static void free_bufs(double *buf[4]) {
    for (int k = 0; k < 4; k++) free(buf[k]);
}

static rwkv_status run(rwkv_compare_result *out, const rwkv_dump_reader *a, const rwkv_dump_reader *b, double tol) {
    int64_t *pos, *off;
    rwkv_status st = same_layout(a, b, &pos, &off);
    if (st) return st;
    int L = a->cfg.n_layer;
    double *buf[4] = {NULL}; // rows of the tap in a and b, then of its scale tap (state only)
    out->rows = rwkv_calloc((size_t)(L + 1) * RWKV_TAP_N, sizeof *out->rows, "compare table");
    size_t maxd = (size_t)(a->cfg.n_vocab > a->cfg.n_ffn ? a->cfg.n_vocab : a->cfg.n_ffn);
    st = alloc_bufs(buf, maxd > COMPARE_BLOCK_ELEMS ? maxd : COMPARE_BLOCK_ELEMS);
    if (!out->rows) st = RWKV_ERR_NOMEM;
    for (int l = 0; l <= L && !st; l++)
        for (int t = 0; t < RWKV_TAP_N && !st; t++) {
            if ((l < L) != (t < RWKV_TAP_N_BLOCK)) continue;
            int D = rwkv_dump_width(a, l, (rwkv_tap)t);
            if (!D || rwkv_dump_width(b, l, (rwkv_tap)t) != D) continue;
            rwkv_compare_row *r = add_row(out, l, (rwkv_tap)t, D, L);
            if ((st = compare_tap(r, a, b, buf, tol))) break;
            finish_row(out, out->n - 1, pos, off);
        }
    if (!st && !out->n)
        st = rwkv_error_set(RWKV_ERR_ARG, "%s and %s: no tap is present in both dumps", a->path, b->path);
    free_bufs(buf);
    free(pos); free(off);
    return st;
}

static void result_init(rwkv_compare_result *out, double tol) {
    memset(out, 0, sizeof *out);
    out->first = -1;
    out->tol = tol;
}

rwkv_status rwkv_compare_dumps(rwkv_compare_result *out, const char *ref, const char *other, double tol) {
    result_init(out, tol);
    rwkv_dump_reader *a = NULL, *b = NULL;
    rwkv_status st = rwkv_dump_open(&a, ref);
    if (!st) st = rwkv_dump_open(&b, other);
    if (!st) st = run(out, a, b, tol);
    rwkv_dump_reader_free(a);
    rwkv_dump_reader_free(b);
    if (st) rwkv_compare_free(out);
    return st;
}

// Both runs of rwkv_compare_modes: 0 the sequential reference, 1 parallel.
typedef struct {
    const rwkv_model *m;
    const rwkv_compare_modes_opts *o;
    rwkv_state *s[2];
    rwkv_workspace *ws;
    rwkv_record *rec[2];  // the taps of the current chunk
    rwkv_real *logits;    // (max_T, V)
    double *buf[4];       // compare_block's, (max_T * widest tap)
} modes;

static void modes_free(modes *x) {
    for (int k = 0; k < 2; k++) {
        rwkv_state_free(x->s[k]);
        rwkv_record_free(x->rec[k]);
    }
    rwkv_workspace_free(x->ws);
    free(x->logits);
    free_bufs(x->buf);
}

static rwkv_status modes_alloc(modes *x, const rwkv_model *m, const rwkv_compare_modes_opts *o, const uint32_t *mask) {
    *x = (modes){.m = m, .o = o};
    rwkv_config c = m->cfg;
    int widest = 0;
    for (int t = 0; t < RWKV_TAP_N; t++)
        if (rwkv_tap_width((rwkv_tap)t, c) > widest) widest = rwkv_tap_width((rwkv_tap)t, c);
    rwkv_status st = rwkv_workspace_alloc(&x->ws, c, o->max_T);
    for (int k = 0; k < 2 && !st; k++)
        if (!(st = rwkv_state_alloc(&x->s[k], c))) st = rwkv_record_alloc(&x->rec[k], c, o->max_T, mask);
    if (!st) st = alloc_bufs(x->buf, (size_t)o->max_T * (size_t)widest);
    if (!st && !(x->logits = rwkv_calloc((size_t)o->max_T * (size_t)c.n_vocab, sizeof *x->logits, "compare logits")))
        st = RWKV_ERR_NOMEM;
    return st;
}

// Tokens [t, t + n) of one sequence in one mode, recorded; list: the reference's changes.
static rwkv_status run_chunk(modes *x, int par, const int *ids, int64_t t, int64_t n, rwkv_intervene_list *list) {
    rwkv_record *rec = x->rec[par];
    rec->pos0 = rec->hook.pos = t;
    if (list) {
        rwkv_intervene_list_chain(list, &rec->hook);
        rwkv_status st = rwkv_intervene_forward(x->m, x->s[par], ids + t, n, t, x->logits, RWKV_LOGITS_ALL, list,
                                                x->ws, 1);
        rwkv_intervene_list_chain(list, NULL);
        return st;
    }
    return par ? rwkv_forward_par(x->m, x->s[par], ids + t, n, x->logits, RWKV_LOGITS_ALL, &rec->hook, x->ws)
               : rwkv_forward_seq(x->m, x->s[par], ids + t, n, x->logits, RWKV_LOGITS_ALL, &rec->hook, x->ws);
}

static void to_f64(double *dst, const rwkv_real *src, size_t n) {
    for (size_t i = 0; i < n; i++) dst[i] = (double)src[i];
}

// The chunk's n rows of every table row, compared; row0 is the chunk's first row.
static void compare_chunk(rwkv_compare_result *out, modes *x, int64_t row0, int64_t n) {
    for (int i = 0; i < out->n; i++) {
        rwkv_compare_row *r = &out->rows[i];
        rwkv_tap s = r->form == form_name(RWKV_TAP_N) ? RWKV_TAP_N : scale_partner(r->tap); // as modes_table chose
        size_t k = (size_t)n * (size_t)r->D;
        for (int par = 0; par < 2; par++) {
            to_f64(x->buf[par], rwkv_record_rows(x->rec[par], r->layer, r->tap), k);
            if (s != RWKV_TAP_N) to_f64(x->buf[2 + par], rwkv_record_rows(x->rec[par], r->layer, s), k);
        }
        compare_block(r, s, x->buf, row0, n, out->tol);
    }
}

static rwkv_status compare_sequence(rwkv_compare_result *out, modes *x, const rwkv_sequence *q, int64_t row0) {
    rwkv_intervene_list *list = NULL;
    rwkv_status st = RWKV_OK;
    if (x->o->n_ref_interventions &&
        (st = rwkv_intervene_list_from_specs(&list, x->m->cfg, q->n, x->o->ref_interventions, x->o->n_ref_interventions)))
        return st;
    rwkv_state_reset(x->s[0]);
    rwkv_state_reset(x->s[1]);
    for (int64_t t = 0; t < q->n && !st; t += x->o->max_T) {
        int64_t n = q->n - t < x->o->max_T ? q->n - t : x->o->max_T;
        st = run_chunk(x, 0, q->ids, t, n, list);
        if (!st) st = run_chunk(x, 1, q->ids, t, n, NULL);
        if (!st) compare_chunk(out, x, row0 + t, n);
    }
    rwkv_intervene_list_free(list);
    return st;
}

// The table: every tap of the model, in the order of rwkv_compare_dumps.
static rwkv_status modes_table(rwkv_compare_result *out, uint32_t *mask, rwkv_config c) {
    int L = c.n_layer;
    rwkv_status st = rwkv_select_taps(mask, L, "*");
    if (!st && !(out->rows = rwkv_calloc((size_t)(L + 1) * RWKV_TAP_N, sizeof *out->rows, "compare table")))
        st = RWKV_ERR_NOMEM;
    for (int l = 0; l <= L && !st; l++)
        for (int t = 0; t < RWKV_TAP_N; t++) {
            int D = rwkv_tap_width((rwkv_tap)t, c);
            if ((l < L) != (t < RWKV_TAP_N_BLOCK) || !(mask[l] >> t & 1u) || !D) continue;
            rwkv_tap s = scale_partner((rwkv_tap)t);
            if (s != RWKV_TAP_N && (rwkv_tap_width(s, c) != D || !(mask[l] >> s & 1u))) s = RWKV_TAP_N;
            add_row(out, l, (rwkv_tap)t, D, L)->form = form_name(s);
        }
    return st;
}

rwkv_status rwkv_compare_modes(rwkv_compare_result *out, const rwkv_model *m, const rwkv_sequences *seqs, double tol,
                               const rwkv_compare_modes_opts *opts) {
    result_init(out, tol);
    modes x = {0};
    int64_t *off = rwkv_calloc((size_t)seqs->n + 1, sizeof *off, "sequence offsets");
    uint32_t *mask = rwkv_calloc((size_t)m->cfg.n_layer + 1, sizeof *mask, "tap mask");
    rwkv_status st = off && mask ? modes_table(out, mask, m->cfg) : RWKV_ERR_NOMEM;
    if (!st && opts->max_T < 1) st = rwkv_error_set(RWKV_ERR_ARG, "compare: max_T %d is not positive", opts->max_T);
    if (!st) st = modes_alloc(&x, m, opts, mask);
    for (int i = 0; i < seqs->n && !st; i++) {
        off[i + 1] = off[i] + seqs->items[i].n;
        st = compare_sequence(out, &x, &seqs->items[i], off[i]);
        if (!st && opts->progress) opts->progress(opts->progress_ctx, i, seqs->n, seqs->items[i].n);
    }
    for (int i = 0; i < out->n && !st; i++) finish_row(out, i, NULL, off);
    modes_free(&x);
    free(off);
    free(mask);
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

rwkv_status rwkv_compare_write_csv(const rwkv_compare_result *r, const char *path, int force) {
    rwkv_atomic_file out;
    rwkv_status st = rwkv_file_atomic_open(&out, path, force, 1);
    if (st) return st;
    FILE *f = out.f;
    fprintf(f, "tap,layer,name,width,max_abs,max_rel,max_scaled,first_row,first_seq,first_pos,first_channel,form\n");
    for (int i = 0; i < r->n; i++) {
        const rwkv_compare_row *x = &r->rows[i];
        fprintf(f, "%s,%d,%s,%d,%.9e,%.9e,%.9e,%lld,%lld,%lld,%lld,%s\n", RWKV_TAP_NAMES[x->tap], x->layer, x->name, x->D,
                x->max_abs, x->max_rel, x->max_scaled, (long long)x->first_row, (long long)x->first_seq,
                (long long)x->first_pos, (long long)x->first_channel, x->form);
    }
    return rwkv_file_atomic_commit(&out);
}
