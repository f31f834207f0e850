// test_dump.c: tap selection, HDF5 dumps (schema, goldens in both modes, sequences,
// positions), comparison of dumps, state save/load, and every error case.
#include "core/compute/forward.h"
#include "core/inspect/compare.h"
#include "core/inspect/dump.h"
#include "core/inspect/h5util.h"
#include "core/inspect/select.h"
#include "core/inspect/sequences.h"
#include "core/inspect/state_io.h"
#include "core/model/model.h"
#include "util.h"

#include <check.h>
#include <hdf5.h>
#include <hdf5_hl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

// float32 lands within ~1e-4 of the float64 goldens; float64 within ~1e-9 (fixtures README).
#if RWKV_REAL_BITS == 64
#define TOL 1e-9
#else
#define TOL 1e-4
#endif

static const rwkv_config SMALL = {.n_layer = 2, .n_embd = 16, .n_ffn = 48, .n_vocab = 30}; // a random in-memory model

static const char *tmp(const char *name) {
    static char buf[16][512];
    static int k;
    k = (k + 1) % 16;
    snprintf(buf[k], sizeof buf[k], "%s/%s", test_tmpdir(), name);
    return buf[k];
}

// One dump of `ns` sequences (lens[s] tokens each, concatenated in tokens) of model m.
static rwkv_status make_dump(const char *path, const rwkv_model *m, const char *taps, const char *positions,
                             int parallel, int max_T, const int *tokens, const int64_t *lens, int ns,
                             rwkv_hook *hook_or_null, rwkv_state *final) {
    uint32_t mask[64];
    rwkv_positions pos;
    rwkv_status st = rwkv_select_taps(mask, m->cfg.n_layer, taps);
    if (st) return st;
    if ((st = rwkv_select_positions(&pos, positions))) return st;
    rwkv_dump_opts o = {.parallel = parallel, .force = 1, .taps = taps, .positions = positions, .chunk_rows = 8};
    rwkv_dump *d;
    rwkv_state *s;
    rwkv_workspace *ws;
    rwkv_state_alloc(&s, m->cfg);
    rwkv_workspace_alloc(&ws, m->cfg, max_T);
    st = rwkv_dump_create(&d, path, m, mask, &pos, &o);
    rwkv_select_positions_free(&pos);
    for (int i = 0, at = 0; !st && i < ns; at += (int)lens[i++]) {
        rwkv_state_reset(s);
        if (hook_or_null) hook_or_null->ctx = d;
        st = rwkv_dump_run(d, s, ws, tokens + at, lens[i], NULL, hook_or_null);
    }
    if (!st) st = rwkv_dump_close(d);
    else rwkv_dump_free(d);
    if (final) rwkv_state_copy(final, s);
    rwkv_state_free(s);
    rwkv_workspace_free(ws);
    return st;
}

static int64_t attr_i64(const char *path, const char *name) {
    hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    int64_t v = -12345;
    hid_t a = H5Aopen(f, name, H5P_DEFAULT);
    H5Aread(a, H5T_NATIVE_INT64, &v);
    H5Aclose(a);
    H5Fclose(f);
    return v;
}

static void set_attr_i64(const char *path, const char *name, int64_t v) {
    hid_t f = H5Fopen(path, H5F_ACC_RDWR, H5P_DEFAULT);
    hid_t a = H5Aopen(f, name, H5P_DEFAULT);
    H5Awrite(a, H5T_NATIVE_INT64, &v);
    H5Aclose(a);
    H5Fclose(f);
}

// ---- selection ----

START_TEST(test_select_taps) {
    uint32_t mask[4];
    ck_assert_int_eq(rwkv_select_taps(mask, 3, "blocks.*.att_gate,blocks.1.state_*,logits"), RWKV_OK);
    uint32_t states = 0;
    for (int t = RWKV_TAP_STATE_ATT_XPREV; t <= RWKV_TAP_STATE_FFN_XPREV; t++) states |= 1u << t;
    states |= 1u << RWKV_TAP_STATE_WKV; // names match across versions; the model's version filters
    ck_assert_uint_eq(mask[0], 1u << RWKV_TAP_ATT_GATE);
    ck_assert_uint_eq(mask[1], (1u << RWKV_TAP_ATT_GATE) | states);
    ck_assert_uint_eq(mask[2], 1u << RWKV_TAP_ATT_GATE);
    ck_assert_uint_eq(mask[3], 1u << RWKV_TAP_LOGITS);
    ck_assert_int_eq(rwkv_select_taps(mask, 3, "*"), RWKV_OK);
    ck_assert_int_eq(rwkv_select_count(mask, 3), 3 * RWKV_TAP_N_BLOCK + 2); // names of every version
    ck_assert_int_eq(rwkv_select_taps(mask, 3, "resid_out"), RWKV_OK);
    ck_assert_uint_eq(mask[3], 1u << RWKV_TAP_RESID_OUT);
    ck_assert_uint_eq(mask[0] | mask[1] | mask[2], 0);
    // errors: no match lists the valid names; layer out of range; empty pattern
    ck_assert_int_eq(rwkv_select_taps(mask, 3, "blocks.*.att_gate,blocks.*.nope"), RWKV_ERR_ARG);
    ck_assert_ptr_nonnull(strstr(rwkv_error_message(), "'blocks.*.nope' matches no tap"));
    ck_assert_ptr_nonnull(strstr(rwkv_error_message(), "state_ffn_xprev"));
    ck_assert_ptr_nonnull(strstr(rwkv_error_message(), "blocks.<0..2>"));
    ck_assert_int_eq(rwkv_select_taps(mask, 3, "blocks.3.att_k"), RWKV_ERR_ARG);
    ck_assert_int_eq(rwkv_select_taps(mask, 3, "logits,,resid_out"), RWKV_ERR_ARG);
    ck_assert_int_eq(rwkv_select_taps(mask, 3, ""), RWKV_ERR_ARG);
}
END_TEST

START_TEST(test_select_positions) {
    rwkv_positions p;
    ck_assert_int_eq(rwkv_select_positions(&p, "all"), RWKV_OK);
    ck_assert(rwkv_select_has(&p, 0, 5) && rwkv_select_has(&p, 4, 5));
    ck_assert_int_eq(rwkv_select_positions(&p, "last"), RWKV_OK);
    ck_assert(!rwkv_select_has(&p, 3, 5) && rwkv_select_has(&p, 4, 5));
    ck_assert_int_eq(rwkv_select_positions(&p, "every:3"), RWKV_OK);
    for (int t = 0; t < 10; t++) ck_assert_int_eq(rwkv_select_has(&p, t, 10), t % 3 == 0);
    ck_assert_int_eq(rwkv_select_positions(&p, "10-20,0,5"), RWKV_OK);
    for (int t = 0; t < 30; t++) ck_assert_int_eq(rwkv_select_has(&p, t, 30), t == 0 || t == 5 || (t >= 10 && t <= 20));
    rwkv_select_positions_free(&p);
    // "last" inside a list, as in --intervene: resolved against each sequence's length.
    ck_assert_int_eq(rwkv_select_positions(&p, "0,last"), RWKV_OK);
    for (int64_t T = 1; T < 8; T++)
        for (int t = 0; t < T; t++) ck_assert_int_eq(rwkv_select_has(&p, t, T), t == 0 || t == T - 1);
    rwkv_select_positions_free(&p);
    ck_assert_int_eq(rwkv_select_positions(&p, "3-last,1"), RWKV_OK);
    for (int t = 0; t < 9; t++) ck_assert_int_eq(rwkv_select_has(&p, t, 9), t == 1 || t >= 3);
    for (int t = 0; t < 2; t++) ck_assert_int_eq(rwkv_select_has(&p, t, 2), t == 1); // 3-last is empty here
    rwkv_select_positions_free(&p);
    const char *bad[] = {"every:0", "every:x", "5-2", "a", "1,,2", "-3", "1-", "lastx", "last-5", "0,lastly"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        ck_assert_msg(rwkv_select_positions(&p, bad[i]) == RWKV_ERR_ARG, "'%s' accepted", bad[i]);
        ck_assert_ptr_nonnull(strstr(rwkv_error_message(), "--positions"));
    }
}
END_TEST

// ---- the dump against the forward pass, on a random in-memory model ----

typedef struct {
    rwkv_config cfg;
    int T;
    rwkv_real *taps[RWKV_TAP_N]; // (L + 1, T, D)
} capture;

static rwkv_status capture_fn(void *ctx, int layer, rwkv_tap tap, int64_t pos, int n, int D, rwkv_real *data) {
    capture *c = ctx;
    memcpy(c->taps[tap] + ((size_t)layer * c->T + (size_t)pos) * D, data, (size_t)n * D * sizeof *data);
    return RWKV_OK;
}

// Every tap of a plain sequential pass over tokens, for reference.
static void capture_run(capture *c, const rwkv_model *m, const int *tokens, int T) {
    c->cfg = m->cfg;
    c->T = T;
    uint32_t mask[64];
    rwkv_select_taps(mask, m->cfg.n_layer, "*");
    for (int t = 0; t < RWKV_TAP_N; t++)
        c->taps[t] = calloc((size_t)(m->cfg.n_layer + 1) * T * rwkv_tap_width(t, m->cfg), sizeof(rwkv_real));
    rwkv_state *s;
    rwkv_workspace *ws;
    rwkv_state_alloc(&s, m->cfg);
    rwkv_workspace_alloc(&ws, m->cfg, 1);
    rwkv_hook h = {.mask = mask, .fn = capture_fn, .ctx = c};
    rwkv_real *logits = malloc((size_t)T * m->cfg.n_vocab * sizeof *logits);
    ck_assert_int_eq(rwkv_forward_seq(m, s, tokens, T, logits, RWKV_LOGITS_ALL, &h, ws), RWKV_OK);
    free(logits);
    rwkv_state_free(s);
    rwkv_workspace_free(ws);
}

static void capture_free(capture *c) {
    for (int t = 0; t < RWKV_TAP_N; t++) free(c->taps[t]);
}

// Max scaled error of dump dataset (T, D) against the capture's layer slice.
static double dump_vs_capture(const char *path, const capture *c, int layer, int tap) {
    char name[96];
    if (layer < c->cfg.n_layer) snprintf(name, sizeof name, "/blocks/%d/%s", layer, RWKV_TAP_NAMES[tap]);
    else snprintf(name, sizeof name, "/%s", RWKV_TAP_NAMES[tap]);
    int nd;
    uint64_t d[4];
    double *x = test_h5_read(path, name, &nd, d);
    ck_assert_msg(x != NULL, "%s: %s missing", path, name);
    int D = rwkv_tap_width(tap, c->cfg);
    ck_assert_int_eq(nd, 2);
    ck_assert_uint_eq(d[0], (uint64_t)c->T);
    ck_assert_uint_eq(d[1], (uint64_t)D);
    double *ref = malloc((size_t)c->T * D * sizeof *ref);
    const rwkv_real *src = c->taps[tap] + (size_t)layer * c->T * D;
    for (size_t i = 0; i < (size_t)c->T * D; i++) ref[i] = src[i];
    double e = test_max_scaled_err_d(x, ref, (size_t)c->T * D);
    free(x);
    free(ref);
    return e;
}

START_TEST(test_dump_matches_forward) {
    rwkv_model *m = test_random_model(SMALL, 7);
    int T = 29;
    int *tok = test_random_tokens(T, SMALL.n_vocab, 3);
    capture c;
    capture_run(&c, m, tok, T);
    int64_t len = T;
    for (int par = 0; par <= 1; par++) {
        const char *path = tmp(par ? "fwd_par.h5" : "fwd_seq.h5");
        // parallel chunks of 6 tokens: the hook sees 6-row blocks and a 5-row tail
        ck_assert_int_eq(make_dump(path, m, "*", "all", par, 6, tok, &len, 1, NULL, NULL), RWKV_OK);
        for (int l = 0; l <= SMALL.n_layer; l++)
            for (int t = 0; t < RWKV_TAP_N; t++) {
                if ((l < SMALL.n_layer) != (t < RWKV_TAP_N_BLOCK) || !rwkv_tap_width(t, SMALL)) continue;
                double e = dump_vs_capture(path, &c, l, t);
                // the same mode is the same arithmetic: stored exactly
                if (!par) ck_assert_msg(e == 0, "seq dump layer %d %s differs by %g", l, RWKV_TAP_NAMES[t], e);
                else ck_assert_msg(e < TOL, "par dump layer %d %s differs by %g", l, RWKV_TAP_NAMES[t], e);
            }
        ck_assert_int_eq(attr_i64(path, "complete"), 1);
        ck_assert_int_eq(attr_i64(path, "schema_version"), RWKV_DUMP_SCHEMA_VERSION);
        ck_assert_int_eq(attr_i64(path, "n_layer"), SMALL.n_layer);
        ck_assert_int_eq(attr_i64(path, "n_ffn"), SMALL.n_ffn);
        ck_assert_int_eq(attr_i64(path, "n_vocab"), SMALL.n_vocab);
        ck_assert_int_eq(attr_i64(path, "precision"), RWKV_REAL_BITS);
        rwkv_dump_reader *r;
        ck_assert_int_eq(rwkv_dump_open(&r, path), RWKV_OK);
        ck_assert_str_eq(r->mode, par ? "parallel" : "sequential");
        ck_assert_int_eq(r->n_rows, T);
        ck_assert_int_eq(r->n_seq, 1);
        ck_assert_int_eq(rwkv_dump_width(r, 1, RWKV_TAP_FFN_K), SMALL.n_ffn);
        ck_assert_int_eq(rwkv_dump_width(r, SMALL.n_layer, RWKV_TAP_LOGITS), SMALL.n_vocab);
        // reader API rows == the capture rows 10..14 of blocks.1.att_wkv
        rwkv_real rows[5 * 16];
        ck_assert_int_eq(rwkv_dump_read_rows(r, 1, RWKV_TAP_ATT_WKV, 10, 5, rows), RWKV_OK);
        const rwkv_real *want = c.taps[RWKV_TAP_ATT_WKV] + ((size_t)T + 10) * 16;
        for (int i = 0; i < 5 * 16; i++)
            ck_assert_msg(fabs(rows[i] - want[i]) <= TOL * fmax(1, fabs(want[i])), "row data %d", i);
        ck_assert_int_eq(rwkv_dump_read_rows(r, 1, RWKV_TAP_ATT_WKV, T - 2, 5, rows), RWKV_ERR_ARG);
        rwkv_dump_reader_free(r);
    }
    capture_free(&c);
    free(tok);
    rwkv_model_free(m);
}
END_TEST

// A tap wider than the chunk budget (logits of a 40k vocabulary: 160 KB a row) gets fewer
// rows per chunk, so a chunk stays within one HDF5 chunk cache; a forward call then fills
// several chunks and leaves a partial one for the next call. The rows must come out whole,
// in order, in both modes.
START_TEST(test_dump_wide_chunks) {
    const rwkv_config WIDE = {.n_layer = 1, .n_embd = 16, .n_ffn = 32, .n_vocab = 40000};
    rwkv_model *m = test_random_model(WIDE, 11);
    int T = 31;
    int *tok = test_random_tokens(T, WIDE.n_vocab, 12);
    capture c;
    capture_run(&c, m, tok, T);
    int64_t len = T;
    int want_rows = (1 << 20) / (WIDE.n_vocab * (int)sizeof(rwkv_real)); // 6 (float32) or 3 (float64)
    for (int par = 0; par <= 1; par++) {
        const char *path = tmp(par ? "wide_par.h5" : "wide_seq.h5");
        ck_assert_int_eq(make_dump(path, m, "logits,blocks.0.att_k", "all", par, 7, tok, &len, 1, NULL, NULL), RWKV_OK);
        const char *names[2] = {"/logits", "/blocks/0/att_k"};
        hsize_t expect[2][2] = {{(hsize_t)want_rows, (hsize_t)WIDE.n_vocab}, {8, 16}}; // make_dump: 8 rows a chunk
        hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
        for (int i = 0; i < 2; i++) {
            hid_t d = H5Dopen2(f, names[i], H5P_DEFAULT);
            hid_t p = H5Dget_create_plist(d);
            hsize_t ch[2] = {0, 0};
            ck_assert_int_eq(H5Pget_chunk(p, 2, ch), 2);
            ck_assert_msg(ch[0] == expect[i][0] && ch[1] == expect[i][1], "%s chunk [%llu, %llu]", names[i],
                          (unsigned long long)ch[0], (unsigned long long)ch[1]);
            H5Pclose(p);
            H5Dclose(d);
        }
        H5Fclose(f);
        double e = dump_vs_capture(path, &c, WIDE.n_layer, RWKV_TAP_LOGITS);
        ck_assert_msg(par ? e < TOL : e == 0, "logits differ by %g (par %d)", e, par);
        e = dump_vs_capture(path, &c, 0, RWKV_TAP_ATT_K);
        ck_assert_msg(par ? e < TOL : e == 0, "att_k differs by %g (par %d)", e, par);
    }
    capture_free(&c);
    free(tok);
    rwkv_model_free(m);
}
END_TEST

// Logits of a 65536-token vocabulary over 100 tokens in one call: 25 MB of chunks, more than
// the writer holds, so full chunks are written from inside the logits hook (while the rest
// are compressed). The rows come out whole and in order, in both modes.
START_TEST(test_dump_writes_from_hook) {
    const rwkv_config VOCAB = {.n_layer = 1, .n_embd = 16, .n_ffn = 32, .n_vocab = 65536};
    rwkv_model *m = test_random_model(VOCAB, 21);
    int T = 100;
    int *tok = test_random_tokens(T, VOCAB.n_vocab, 22);
    capture c;
    capture_run(&c, m, tok, T);
    int64_t len = T;
    for (int par = 0; par <= 1; par++) {
        const char *path = tmp(par ? "hookw_par.h5" : "hookw_seq.h5");
        ck_assert_int_eq(make_dump(path, m, "logits,resid_out,blocks.0.att_k", "all", par, T, tok, &len, 1, NULL, NULL),
                         RWKV_OK);
        double e = dump_vs_capture(path, &c, VOCAB.n_layer, RWKV_TAP_LOGITS);
        ck_assert_msg(par ? e < TOL : e == 0, "logits differ by %g (par %d)", e, par);
        e = dump_vs_capture(path, &c, VOCAB.n_layer, RWKV_TAP_RESID_OUT);
        ck_assert_msg(par ? e < TOL : e == 0, "resid_out differs by %g (par %d)", e, par);
        e = dump_vs_capture(path, &c, 0, RWKV_TAP_ATT_K);
        ck_assert_msg(par ? e < TOL : e == 0, "att_k differs by %g (par %d)", e, par);
        remove(path);
    }
    capture_free(&c);
    free(tok);
    rwkv_model_free(m);
}
END_TEST

// The storage properties the schema promises: real type, chunked, shuffle + deflate, extendible.
START_TEST(test_dump_storage) {
    rwkv_model *m = test_random_model(SMALL, 8);
    int *tok = test_random_tokens(20, SMALL.n_vocab, 4);
    int64_t len = 20;
    const char *path = tmp("storage.h5");
    ck_assert_int_eq(make_dump(path, m, "blocks.0.att_k,logits", "all", 1, 7, tok, &len, 1, NULL, NULL), RWKV_OK);
    hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    hid_t d = H5Dopen2(f, "/blocks/0/att_k", H5P_DEFAULT);
    hid_t t = H5Dget_type(d);
    ck_assert_int_eq(H5Tget_class(t), H5T_FLOAT);
    ck_assert_uint_eq(H5Tget_size(t), sizeof(rwkv_real));
    hid_t p = H5Dget_create_plist(d);
    ck_assert_int_eq(H5Pget_layout(p), H5D_CHUNKED);
    ck_assert_int_eq(H5Pget_nfilters(p), 2);
    unsigned flags, cd[8];
    size_t ncd = 8;
    ck_assert_int_eq(H5Pget_filter2(p, 0, &flags, &ncd, cd, 0, NULL, NULL), H5Z_FILTER_SHUFFLE);
    ncd = 8;
    ck_assert_int_eq(H5Pget_filter2(p, 1, &flags, &ncd, cd, 0, NULL, NULL), H5Z_FILTER_DEFLATE);
    hid_t sp = H5Dget_space(d);
    hsize_t dims[2], maxd[2];
    H5Sget_simple_extent_dims(sp, dims, maxd);
    ck_assert(maxd[0] == H5S_UNLIMITED && dims[0] == 20 && dims[1] == 16);
    H5Sclose(sp); H5Pclose(p); H5Tclose(t); H5Dclose(d); H5Fclose(f);
    // /params: decay = exp(-exp(time_decay)), half_life: decay^half_life = 1/2
    int nd;
    uint64_t dd[4];
    double *dec = test_h5_read(path, "/params/blocks/1/decay", &nd, dd);
    double *hl = test_h5_read(path, "/params/blocks/1/half_life", &nd, dd);
    double *td = test_h5_read(path, "/params/blocks/1/time_decay", &nd, dd);
    ck_assert(dec && hl && td && dd[0] == 16);
    for (int c = 0; c < 16; c++) {
        double raw = m->w.att_time_decay[16 + c];
        ck_assert_double_eq_tol(td[c], raw, 1e-6 * fmax(1, fabs(raw)));
        ck_assert_double_eq_tol(dec[c], exp(-exp(raw)), 1e-6);
        ck_assert_double_eq_tol(pow(exp(-exp(raw)), hl[c]), 0.5, 1e-5);
    }
    free(dec); free(hl); free(td); free(tok);
    rwkv_model_free(m);
}
END_TEST

START_TEST(test_dump_sequences) {
    rwkv_model *m = test_random_model(SMALL, 9);
    int64_t lens[3] = {7, 13, 4};
    int *tok = test_random_tokens(24, SMALL.n_vocab, 5);
    const char *all = tmp("seq3.h5");
    ck_assert_int_eq(make_dump(all, m, "blocks.*.state_*,blocks.1.att_wkv,logits", "all", 0, 4, tok, lens, 3, NULL, NULL), RWKV_OK);
    rwkv_dump_reader *r;
    ck_assert_int_eq(rwkv_dump_open(&r, all), RWKV_OK);
    int64_t *off, *pos, *toff;
    int *tk;
    ck_assert_int_eq(rwkv_dump_read_offsets(r, &off), RWKV_OK);
    ck_assert_int_eq(rwkv_dump_read_positions(r, &pos), RWKV_OK);
    ck_assert_int_eq(rwkv_dump_read_token_offsets(r, &toff), RWKV_OK);
    ck_assert_int_eq(rwkv_dump_read_tokens(r, &tk), RWKV_OK);
    int64_t want_off[4] = {0, 7, 20, 24};
    for (int i = 0; i < 4; i++) ck_assert_int_eq(off[i], want_off[i]);
    for (int i = 0; i < 4; i++) ck_assert_int_eq(toff[i], want_off[i]);
    for (int s = 0; s < 3; s++)
        for (int64_t i = off[s]; i < off[s + 1]; i++) ck_assert_int_eq(pos[i], i - off[s]);
    for (int i = 0; i < 24; i++) ck_assert_int_eq(tk[i], tok[i]);
    // each sequence equals its own single-sequence dump
    for (int s = 0; s < 3; s++) {
        const char *one = tmp("seq1.h5");
        ck_assert_int_eq(make_dump(one, m, "blocks.*.state_*,blocks.1.att_wkv,logits", "all", 0, 4, tok + off[s],
                                   &lens[s], 1, NULL, NULL), RWKV_OK);
        rwkv_dump_reader *r1;
        ck_assert_int_eq(rwkv_dump_open(&r1, one), RWKV_OK);
        for (int l = 0; l <= SMALL.n_layer; l++)
            for (int t = 0; t < RWKV_TAP_N; t++) {
                int D = rwkv_dump_width(r, l, t);
                ck_assert_int_eq(D, rwkv_dump_width(r1, l, t));
                if (!D) continue;
                double *a = malloc((size_t)lens[s] * D * sizeof *a), *b = malloc((size_t)lens[s] * D * sizeof *b);
                ck_assert_int_eq(rwkv_dump_read_rows_f64(r, l, t, off[s], lens[s], a), RWKV_OK);
                ck_assert_int_eq(rwkv_dump_read_rows_f64(r1, l, t, 0, lens[s], b), RWKV_OK);
                ck_assert_msg(!memcmp(a, b, (size_t)lens[s] * D * sizeof *a), "seq %d layer %d %s", s, l, RWKV_TAP_NAMES[t]);
                free(a); free(b);
            }
        rwkv_dump_reader_free(r1);
    }
    // position selections keep exactly the right rows of the full dump
    const char *specs[] = {"last", "every:3", "0,2-4,100"};
    for (int k = 0; k < 3; k++) {
        const char *sel = tmp("seqsel.h5");
        ck_assert_int_eq(make_dump(sel, m, "blocks.*.state_*,blocks.1.att_wkv,logits", specs[k], 1, 5, tok, lens, 3, NULL, NULL), RWKV_OK);
        rwkv_dump_reader *rs;
        ck_assert_int_eq(rwkv_dump_open(&rs, sel), RWKV_OK);
        int64_t *soff, *spos;
        rwkv_dump_read_offsets(rs, &soff);
        rwkv_dump_read_positions(rs, &spos);
        int64_t row = 0;
        for (int s = 0; s < 3; s++) {
            ck_assert_int_eq(soff[s], row);
            for (int64_t p = 0; p < lens[s]; p++) {
                int keep = k == 0 ? p == lens[s] - 1 : k == 1 ? p % 3 == 0 : (p == 0 || (p >= 2 && p <= 4));
                if (!keep) continue;
                ck_assert_int_eq(spos[row], p);
                double a[64], b[64];
                ck_assert_int_eq(rwkv_dump_read_rows_f64(rs, 1, RWKV_TAP_STATE_NUM, row, 1, a), RWKV_OK);
                ck_assert_int_eq(rwkv_dump_read_rows_f64(r, 1, RWKV_TAP_STATE_NUM, off[s] + p, 1, b), RWKV_OK);
                for (int c = 0; c < 16; c++) ck_assert(fabs(a[c] - b[c]) <= TOL * fmax(1, fabs(b[c])));
                row++;
            }
        }
        ck_assert_int_eq(soff[3], row);
        ck_assert_int_eq(rs->n_rows, row);
        free(soff); free(spos);
        rwkv_dump_reader_free(rs);
    }
    free(off); free(pos); free(toff); free(tk); free(tok);
    rwkv_dump_reader_free(r);
    rwkv_model_free(m);
}
END_TEST

// Appends v to the 1-D int64 dataset `name` of an open file (an extendible index).
static void append_i64(hid_t f, const char *name, int64_t v) {
    hid_t d = H5Dopen2(f, name, H5P_DEFAULT), sp = H5Dget_space(d);
    hsize_t n, one = 1;
    H5Sget_simple_extent_dims(sp, &n, NULL);
    H5Sclose(sp);
    hsize_t grown = n + 1;
    ck_assert_int_ge(H5Dset_extent(d, &grown), 0);
    sp = H5Dget_space(d);
    H5Sselect_hyperslab(sp, H5S_SELECT_SET, &n, NULL, &one, NULL);
    hid_t mem = H5Screate_simple(1, &one, NULL);
    ck_assert_int_ge(H5Dwrite(d, H5T_NATIVE_INT64, mem, sp, H5P_DEFAULT, &v), 0);
    H5Sclose(mem), H5Sclose(sp), H5Dclose(d);
}

// A killed run's metadata reaches the file in no set order: its sequence index may name a
// sequence whose rows never did. The reader drops that entry (as the unfinished sequence)
// instead of refusing the file; a complete file with the same index is refused.
START_TEST(test_killed_index_ahead_of_rows) {
    rwkv_model *m = test_random_model(SMALL, 9);
    int64_t lens[3] = {7, 13, 4};
    int *tok = test_random_tokens(24, SMALL.n_vocab, 5);
    const char *path = tmp("ahead.h5");
    for (int complete = 0; complete <= 1; complete++) {
        ck_assert_int_eq(make_dump(path, m, "blocks.*.state_*,logits", "all", 0, 4, tok, lens, 3, NULL, NULL), RWKV_OK);
        hid_t f = H5Fopen(path, H5F_ACC_RDWR, H5P_DEFAULT);
        ck_assert_int_ge(f, 0);
        append_i64(f, "/sequences/offsets", 24 + 9); // a fourth sequence of 9 rows that are not there
        append_i64(f, "/sequences/token_offsets", 24 + 9);
        hid_t a = H5Aopen(f, "complete", H5P_DEFAULT);
        int64_t c = complete;
        ck_assert_int_ge(H5Awrite(a, H5T_NATIVE_INT64, &c), 0);
        H5Aclose(a), H5Fclose(f);
        rwkv_dump_reader *r = NULL;
        rwkv_status st = rwkv_dump_open(&r, path);
        if (complete) {
            ck_assert_int_eq(st, RWKV_ERR_FORMAT);
            ck_assert_msg(strstr(rwkv_error_message(), "/sequences/offsets[4] = 33"), "%s", rwkv_error_message());
            continue;
        }
        ck_assert_msg(st == RWKV_OK, "%s", rwkv_error_message());
        ck_assert_int_eq(r->n_seq, 3);
        ck_assert_int_eq(r->n_rows, 24);
        rwkv_dump_reader_free(r);
    }
    free(tok);
    rwkv_model_free(m);
}
END_TEST

// ---- comparison ----

typedef struct {
    int layer;
    int64_t pos;
    int channel;
} perturb;

static rwkv_status perturb_fn(void *ctx, int layer, rwkv_tap tap, int64_t pos, int n, int D, rwkv_real *data) {
    perturb *p = *(perturb **)((char *)ctx + 0); // ctx is replaced below; see perturb_hook
    (void)p;
    return rwkv_dump_tap(ctx, layer, tap, pos, n, D, data);
}

// The wrapped hook: adds 1e-2 to one channel of state_num at one (layer, position).
static perturb g_perturb;
static rwkv_status perturbed_tap(void *ctx, int layer, rwkv_tap tap, int64_t pos, int n, int D, rwkv_real *data) {
    if (tap == RWKV_TAP_STATE_NUM && layer == g_perturb.layer && pos <= g_perturb.pos && g_perturb.pos < pos + n)
        data[(size_t)(g_perturb.pos - pos) * D + g_perturb.channel] += (rwkv_real)1e-2;
    return perturb_fn(ctx, layer, tap, pos, n, D, data);
}

// The same state in another scale: num and den times e^2 with max lowered by 2 (what a run
// with another running max stores). A scale-free compare sees no difference.
static rwkv_status rescaled_tap(void *ctx, int layer, rwkv_tap tap, int64_t pos, int n, int D, rwkv_real *data) {
    for (size_t i = 0; i < (size_t)n * D; i++) {
        if (tap == RWKV_TAP_STATE_NUM || tap == RWKV_TAP_STATE_DEN) data[i] *= (rwkv_real)exp(2.0);
        if (tap == RWKV_TAP_STATE_MAX) data[i] -= 2;
    }
    return perturb_fn(ctx, layer, tap, pos, n, D, data);
}

START_TEST(test_compare_scale_free) {
    rwkv_model *m = test_random_model(SMALL, 12);
    int *tok = test_random_tokens(300, SMALL.n_vocab, 8);
    int64_t len = 300;
    const char *a = tmp("cmp_sf_a.h5"), *b = tmp("cmp_sf_b.h5");
    uint32_t mask[64];
    rwkv_select_taps(mask, SMALL.n_layer, "*");
    rwkv_hook h = {.mask = mask, .fn = rescaled_tap};
    ck_assert_int_eq(make_dump(a, m, "*", "all", 0, 64, tok, &len, 1, NULL, NULL), RWKV_OK);
    ck_assert_int_eq(make_dump(b, m, "*", "all", 0, 64, tok, &len, 1, &h, NULL), RWKV_OK);
    rwkv_compare_result res;
    ck_assert_int_eq(rwkv_compare_dumps(&res, a, b, RWKV_COMPARE_TOL), RWKV_OK);
    for (int i = 0; i < res.n; i++) {
        const rwkv_compare_row *r = &res.rows[i];
        if (r->tap == RWKV_TAP_STATE_MAX) ck_assert_double_ge(r->max_abs, 1); // the raw scales differ
        else ck_assert_msg(r->max_scaled < 1e-5, "%s (%s): %g", r->name, r->form, r->max_scaled);
        if (r->tap == RWKV_TAP_STATE_NUM) ck_assert_str_eq(r->form, "num/den");
        if (r->tap == RWKV_TAP_STATE_DEN) ck_assert_str_eq(r->form, "den at common max");
    }
    rwkv_compare_free(&res);
    unlink(a); unlink(b);
    free(tok);
    rwkv_model_free(m);
}
END_TEST

static void count_sequences(void *ctx, int i, int n, int64_t n_tokens) {
    ck_assert(n == 3 && n_tokens == 20 + 10 * i);
    ++*(int *)ctx;
}

// The multi-sequence driver writes the dump a loop over rwkv_dump_run writes, reports each
// sequence, and binds interventions to each sequence's own length ("last").
START_TEST(test_dump_sequences_driver) {
    rwkv_model *m;
    ck_assert_int_eq(rwkv_model_load(&m, test_fixture("rand-L3-C64-V300.pth")), RWKV_OK);
    int *tok = test_random_tokens(60, 300, 5);
    int64_t lens[3] = {20, 30, 40};
    rwkv_sequences seqs = {0};
    for (int i = 0, at = 0; i < 3; at += (int)lens[i++]) {
        int *ids = malloc((size_t)lens[i] * sizeof *ids);
        for (int64_t t = 0; t < lens[i]; t++) ids[t] = tok[(at + t) % 60];
        ck_assert_int_eq(rwkv_sequences_push(&seqs, ids, lens[i], NULL), RWKV_OK);
    }
    int *cat = malloc(90 * sizeof *cat);
    for (int i = 0, at = 0; i < 3; at += (int)lens[i++]) memcpy(cat + at, seqs.items[i].ids, (size_t)lens[i] * sizeof *cat);
    const char *a = tmp("drv_a.h5"), *b = tmp("drv_b.h5"), *c = tmp("drv_c.h5");
    ck_assert_int_eq(make_dump(a, m, "blocks.1.resid_in,logits", "all", 0, 16, cat, lens, 3, NULL, NULL), RWKV_OK);
    uint32_t mask[64];
    rwkv_positions pos;
    ck_assert_int_eq(rwkv_select_taps(mask, m->cfg.n_layer, "blocks.1.resid_in,logits"), RWKV_OK);
    ck_assert_int_eq(rwkv_select_positions(&pos, "all"), RWKV_OK);
    rwkv_dump_opts o = {.force = 1, .taps = "blocks.1.resid_in,logits", .positions = "all", .chunk_rows = 8};
    int calls = 0;
    rwkv_dump_sequences_opts so = {.max_T = 16, .progress = count_sequences, .progress_ctx = &calls};
    ck_assert_int_eq(rwkv_dump_sequences(b, m, &seqs, mask, &pos, &o, &so), RWKV_OK);
    ck_assert_int_eq(calls, 3);
    const char *spec[] = {"blocks.1.resid_in@last=zero"};
    so = (rwkv_dump_sequences_opts){.max_T = 16, .interventions = spec, .n_interventions = 1};
    ck_assert_int_eq(rwkv_dump_sequences(c, m, &seqs, mask, &pos, &o, &so), RWKV_OK);
    rwkv_select_positions_free(&pos);
    rwkv_dump_reader *ra, *rb, *rc;
    ck_assert_int_eq(rwkv_dump_open(&ra, a), RWKV_OK);
    ck_assert_int_eq(rwkv_dump_open(&rb, b), RWKV_OK);
    ck_assert_int_eq(rwkv_dump_open(&rc, c), RWKV_OK);
    ck_assert(rb->n_seq == 3 && rb->n_rows == 90 && rc->n_rows == 90);
    int C = m->cfg.n_embd, V = m->cfg.n_vocab;
    double *x = malloc(90 * (size_t)V * sizeof *x), *y = malloc(90 * (size_t)V * sizeof *y);
    ck_assert_int_eq(rwkv_dump_read_rows_f64(ra, m->cfg.n_layer, RWKV_TAP_LOGITS, 0, 90, x), RWKV_OK);
    ck_assert_int_eq(rwkv_dump_read_rows_f64(rb, m->cfg.n_layer, RWKV_TAP_LOGITS, 0, 90, y), RWKV_OK);
    ck_assert_mem_eq(x, y, 90 * (size_t)V * sizeof *x); // the same run, bit for bit
    ck_assert_int_eq(rwkv_dump_read_rows_f64(rc, 1, RWKV_TAP_RESID_IN, 0, 90, y), RWKV_OK);
    for (int i = 0, at = 0; i < 3; at += (int)lens[i++]) {
        double n_last = 0, n_before = 0;
        for (int k = 0; k < C; k++) {
            n_last += fabs(y[(size_t)(at + lens[i] - 1) * C + k]);
            n_before += fabs(y[(size_t)(at + lens[i] - 2) * C + k]);
        }
        ck_assert_msg(n_last == 0 && n_before > 0, "sequence %d: |last| %g, |before| %g", i, n_last, n_before);
    }
    rwkv_dump_reader_free(ra);
    rwkv_dump_reader_free(rb);
    rwkv_dump_reader_free(rc);
    free(x), free(y), free(cat), free(tok);
    rwkv_sequences_free(&seqs);
    rwkv_model_free(m);
}
END_TEST

START_TEST(test_compare_modes) {
    rwkv_model *m = test_random_model(SMALL, 10);
    int T = 2048;
    int *tok = test_random_tokens(T, SMALL.n_vocab, 6);
    int64_t len = T;
    const char *a = tmp("cmp_seq.h5"), *b = tmp("cmp_par.h5"), *c = tmp("cmp_pert.h5");
    ck_assert_int_eq(make_dump(a, m, "*", "all", 0, 64, tok, &len, 1, NULL, NULL), RWKV_OK);
    ck_assert_int_eq(make_dump(b, m, "*", "all", 1, 64, tok, &len, 1, NULL, NULL), RWKV_OK);
    rwkv_compare_result res;
    ck_assert_int_eq(rwkv_compare_dumps(&res, a, b, RWKV_COMPARE_TOL), RWKV_OK);
    ck_assert_int_eq(res.n, SMALL.n_layer * RWKV_V4_BLOCK_TAPS + 2);
    ck_assert_msg(res.n_exceeded == 0, "modes disagree: %s", res.first >= 0 ? res.rows[res.first].name : "");
    for (int i = 0; i < res.n; i++) ck_assert(res.rows[i].max_scaled < RWKV_COMPARE_TOL);
    rwkv_compare_free(&res);
    // a perturbed sequential run: exactly that layer and position diverge first
    g_perturb = (perturb){1, 777, 5};
    uint32_t mask[64];
    rwkv_select_taps(mask, SMALL.n_layer, "*");
    rwkv_hook h = {.mask = mask, .fn = perturbed_tap};
    ck_assert_int_eq(make_dump(c, m, "*", "all", 0, 64, tok, &len, 1, &h, NULL), RWKV_OK);
    ck_assert_int_eq(rwkv_compare_dumps(&res, b, c, RWKV_COMPARE_TOL), RWKV_OK);
    ck_assert_int_ge(res.first, 0);
    const rwkv_compare_row *f = &res.rows[res.first];
    ck_assert_str_eq(f->name, "blocks.1.state_num");
    ck_assert_int_eq(f->first_pos, 777);
    ck_assert_int_eq(f->first_seq, 0);
    ck_assert_int_eq(f->first_channel, 5);
    // state_num is compared as num/den: the 1e-2 added to num shows as 1e-2 / den there.
    rwkv_dump_reader *rd = NULL;
    double den[64];
    ck_assert_int_eq(rwkv_dump_open(&rd, c), RWKV_OK);
    ck_assert_int_eq(rwkv_dump_read_rows_f64(rd, 1, RWKV_TAP_STATE_DEN, 777, 1, den), RWKV_OK);
    rwkv_dump_reader_free(rd);
    ck_assert_str_eq(f->form, "num/den");
    ck_assert_double_eq_tol(f->max_abs, 1e-2 / den[5], 2e-3 / den[5]);
    for (int i = 0; i < res.n; i++) { // layer 0 never sees it; nothing diverges before 777
        if (res.rows[i].layer == 0) ck_assert_int_eq(res.rows[i].first_row, -1);
        if (res.rows[i].first_row >= 0) ck_assert_int_ge(res.rows[i].first_pos, 777);
    }
    rwkv_compare_free(&res);
    unlink(a); unlink(b); unlink(c);
    free(tok);
    rwkv_model_free(m);
}
END_TEST

START_TEST(test_compare_errors) {
    rwkv_model *m = test_random_model(SMALL, 11);
    int *tok = test_random_tokens(12, SMALL.n_vocab, 7);
    int64_t l1 = 12, l2 = 11;
    const char *a = tmp("ce_a.h5"), *b = tmp("ce_b.h5");
    ck_assert_int_eq(make_dump(a, m, "logits", "all", 0, 4, tok, &l1, 1, NULL, NULL), RWKV_OK);
    ck_assert_int_eq(make_dump(b, m, "logits", "all", 0, 4, tok, &l2, 1, NULL, NULL), RWKV_OK);
    rwkv_compare_result res;
    ck_assert_int_eq(rwkv_compare_dumps(&res, a, b, 1e-4), RWKV_ERR_SHAPE);
    ck_assert_ptr_nonnull(strstr(rwkv_error_message(), "not the same inputs"));
    ck_assert_int_eq(make_dump(b, m, "resid_out", "all", 0, 4, tok, &l1, 1, NULL, NULL), RWKV_OK);
    ck_assert_int_eq(rwkv_compare_dumps(&res, a, b, 1e-4), RWKV_ERR_ARG);
    ck_assert_ptr_nonnull(strstr(rwkv_error_message(), "no tap"));
    free(tok);
    rwkv_model_free(m);
}
END_TEST

// ---- errors ----

static rwkv_status failing_tap(void *ctx, int layer, rwkv_tap tap, int64_t pos, int n, int D, rwkv_real *data) {
    if (pos + n > 9) return rwkv_error_set(RWKV_ERR_IO, "simulated write failure at position %lld", (long long)pos);
    return rwkv_dump_tap(ctx, layer, tap, pos, n, D, data);
}

// Creates a dump at path, runs 20 tokens through a hook that fails, and closes it: both
// report the failure.
static void close_failed_run(const char *path, const rwkv_model *m, const uint32_t *mask, const rwkv_positions *pos,
                             const rwkv_dump_opts *o, rwkv_state *s, rwkv_workspace *ws, const int *tok) {
    rwkv_dump *d;
    ck_assert_int_eq(rwkv_dump_create(&d, path, m, mask, pos, o), RWKV_OK);
    rwkv_hook h = rwkv_dump_hook(d);
    h.fn = failing_tap;
    rwkv_state_reset(s);
    ck_assert_int_eq(rwkv_dump_run(d, s, ws, tok, 20, NULL, &h), RWKV_ERR_IO);
    ck_assert_int_eq(rwkv_dump_close(d), RWKV_ERR_IO);
}

START_TEST(test_dump_errors) {
    rwkv_model *m = test_random_model(SMALL, 12);
    int *tok = test_random_tokens(20, SMALL.n_vocab, 8);
    uint32_t mask[3];
    rwkv_select_taps(mask, 2, "*");
    rwkv_positions pos = {0};
    rwkv_dump_opts o = {.chunk_rows = 4};
    rwkv_dump *d = NULL;
    const char *path = tmp("err_exists.h5");
    FILE *f = fopen(path, "w");
    fputs("precious", f);
    fclose(f);
    // an existing output is refused, and left alone
    ck_assert_int_eq(rwkv_dump_create(&d, path, m, mask, &pos, &o), RWKV_ERR_EXISTS);
    ck_assert_ptr_null(d);
    ck_assert_ptr_nonnull(strstr(rwkv_error_message(), path));
    ck_assert_ptr_nonnull(strstr(rwkv_error_message(), "--force"));
    char buf[16] = {0};
    f = fopen(path, "r");
    ck_assert_ptr_nonnull(fgets(buf, sizeof buf, f));
    fclose(f);
    ck_assert_str_eq(buf, "precious");
    // unwritable paths name the path
    const char *bad[] = {"/proc/rwkvscope-test.h5", "/nonexistent-dir/x.h5", NULL};
    char under_file[600];
    snprintf(under_file, sizeof under_file, "%s/x.h5", path); // a regular file as directory
    bad[2] = under_file;
    for (int i = 0; i < 3; i++) {
        ck_assert_int_eq(rwkv_dump_create(&d, bad[i], m, mask, &pos, &o), RWKV_ERR_IO);
        ck_assert_ptr_nonnull(strstr(rwkv_error_message(), bad[i]));
        ck_assert_ptr_nonnull(strstr(rwkv_error_message(), "cannot create"));
    }
    // (a full device is tested through the CLI: HDF5 1.10 leaks 1 KB when H5Fcreate fails there)
    o.force = 1;
    // a failure inside the run of a new dump leaves complete = 0 and a readable file
    unlink(path);
    ck_assert_int_eq(rwkv_dump_create(&d, path, m, mask, &pos, &o), RWKV_OK);
    rwkv_state *s;
    rwkv_workspace *ws;
    rwkv_state_alloc(&s, m->cfg);
    rwkv_workspace_alloc(&ws, m->cfg, 3);
    rwkv_hook h = rwkv_dump_hook(d);
    h.fn = failing_tap;
    ck_assert_int_eq(rwkv_dump_run(d, s, ws, tok, 20, NULL, &h), RWKV_ERR_IO);
    ck_assert_ptr_nonnull(strstr(rwkv_error_message(), "simulated"));
    ck_assert_int_eq(rwkv_dump_run(d, s, ws, tok, 20, NULL, NULL), RWKV_ERR_IO); // no silent continuation
    rwkv_dump_free(d);
    ck_assert_int_eq(attr_i64(path, "complete"), 0);
    rwkv_dump_reader *r;
    ck_assert_int_eq(rwkv_dump_open(&r, path), RWKV_OK);
    ck_assert_int_eq(r->complete, 0);
    rwkv_dump_reader_free(r);
    // close after a failed run also reports it and leaves complete = 0
    unlink(path);
    close_failed_run(path, m, mask, &pos, &o, s, ws, tok);
    ck_assert_int_eq(attr_i64(path, "complete"), 0);
    // a newer schema version is a clear error
    rwkv_state_reset(s);
    ck_assert_int_eq(rwkv_dump_create(&d, path, m, mask, &pos, &o), RWKV_OK);
    ck_assert_int_eq(rwkv_dump_run(d, s, ws, tok, 20, NULL, NULL), RWKV_OK);
    ck_assert_int_eq(rwkv_dump_close(d), RWKV_OK);
    ck_assert_int_eq(attr_i64(path, "complete"), 1);
    // replacing that dump (--force) with a run that fails keeps it, and leaves no temporary
    close_failed_run(path, m, mask, &pos, &o, s, ws, tok);
    ck_assert_int_eq(attr_i64(path, "complete"), 1);
    ck_assert_int_eq(rwkv_dump_open(&r, path), RWKV_OK);
    ck_assert_int_eq(r->n_rows, 20);
    rwkv_dump_reader_free(r);
    char ls[1200], listing[256] = {0};
    snprintf(ls, sizeof ls, "ls %s | grep -c 'err_exists.h5.tmp'", test_tmpdir());
    FILE *lp = popen(ls, "r");
    ck_assert_ptr_nonnull(fgets(listing, sizeof listing, lp));
    pclose(lp);
    ck_assert_str_eq(listing, "0\n");
    set_attr_i64(path, "schema_version", RWKV_DUMP_SCHEMA_VERSION + 1);
    ck_assert_int_eq(rwkv_dump_open(&r, path), RWKV_ERR_UNSUPPORTED);
    char want[64];
    snprintf(want, sizeof want, "schema version %d", RWKV_DUMP_SCHEMA_VERSION + 1);
    ck_assert_ptr_nonnull(strstr(rwkv_error_message(), want));
    ck_assert_ptr_nonnull(strstr(rwkv_error_message(), "newer"));
    // not a dump, not HDF5, missing
    ck_assert_int_eq(rwkv_dump_open(&r, test_fixture("golden-small.h5")), RWKV_ERR_FORMAT);
    ck_assert_int_eq(rwkv_dump_open(&r, test_fixture("tinyshakespeare.txt")), RWKV_ERR_FORMAT);
    ck_assert_int_eq(rwkv_dump_open(&r, tmp("missing.h5")), RWKV_ERR_IO);
    ck_assert_ptr_nonnull(strstr(rwkv_error_message(), "missing.h5"));
    // a truncated dump
    const char *cut = tmp("cut.h5");
    char cmd[1400];
    set_attr_i64(path, "schema_version", RWKV_DUMP_SCHEMA_VERSION);
    snprintf(cmd, sizeof cmd, "head -c 3000 %s > %s", path, cut);
    ck_assert_int_eq(system(cmd), 0);
    ck_assert_int_ne(rwkv_dump_open(&r, cut), RWKV_OK);
    rwkv_state_free(s);
    rwkv_workspace_free(ws);
    free(tok);
    rwkv_model_free(m);
}
END_TEST

// h5ls and h5dump (hdf5-tools) read a dump without any rwkvscope code.
// ---- what generic HDF5 readers see: dimension scales, descriptions, layer order ----

// Appends name to the comma-joined list in buf[256].
static void join(char *buf, const char *name) {
    size_t k = strlen(buf);
    snprintf(buf + k, 256 - k, "%s%s", k ? "," : "", name);
}

static herr_t push_name(hid_t g, const char *name, const H5L_info_t *info, void *ctx) {
    (void)g; (void)info;
    join(ctx, name);
    return 0;
}

// Links of group `path` iterated by index (creation order or name), comma-joined.
static void iterate(hid_t f, const char *path, H5_index_t idx, char out[256]) {
    out[0] = '\0';
    hid_t g = H5Gopen2(f, path, H5P_DEFAULT);
    ck_assert_int_ge(g, 0);
    ck_assert_int_ge(H5Literate(g, idx, H5_ITER_INC, NULL, push_name, out), 0);
    H5Gclose(g);
}

// 1 if dimension idx of dataset dpath has the scale spath attached, and that scale's name is `name`.
static int scale_is(hid_t f, const char *dpath, unsigned idx, const char *spath, const char *name) {
    hid_t d = H5Dopen2(f, dpath, H5P_DEFAULT), s = H5Dopen2(f, spath, H5P_DEFAULT);
    char got[64] = "";
    int ok = d >= 0 && s >= 0 && H5DSis_attached(d, s, idx) == 1 && H5DSis_scale(s) == 1 &&
             H5DSget_scale_name(s, got, sizeof got) > 0 && !strcmp(got, name);
    if (d >= 0) H5Dclose(d);
    if (s >= 0) H5Dclose(s);
    return ok;
}

static void label_is(hid_t f, const char *dpath, unsigned idx, const char *want) {
    hid_t d = H5Dopen2(f, dpath, H5P_DEFAULT);
    char got[64] = "";
    ck_assert_int_gt(H5DSget_label(d, idx, got, sizeof got), 0);
    ck_assert_str_eq(got, want);
    H5Dclose(d);
}

static void str_attr_is(hid_t f, const char *dpath, const char *name, const char *want) {
    hid_t d = H5Dopen2(f, dpath, H5P_DEFAULT);
    char got[256] = "";
    ck_assert_int_eq(rwkv_h5_get_str(d, name, got, sizeof got), 0);
    ck_assert_msg(strstr(got, want), "%s@%s = '%s', expected '%s'", dpath, name, got, want);
    H5Dclose(d);
}

START_TEST(test_dump_scales) {
    const rwkv_config TWELVE = {.n_layer = 12, .n_embd = 8, .n_ffn = 24, .n_vocab = 20};
    rwkv_model *m = test_random_model(TWELVE, 5);
    int *tok = test_random_tokens(9, TWELVE.n_vocab, 6);
    int64_t len = 9;
    const char *path = tmp("scales.h5");
    ck_assert_int_eq(make_dump(path, m, "blocks.2.att_k,blocks.10.ffn_k,blocks.10.state_num,logits", "every:2", 0, 4,
                               tok, &len, 1, NULL, NULL), RWKV_OK);
    hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    ck_assert_int_ge(f, 0);
    // only the tapped layers have groups, and they iterate in numeric order by creation index
    ck_assert(!rwkv_h5_exists(f, "/blocks/0") && !rwkv_h5_exists(f, "/blocks/11"));
    char order[256], names[256];
    iterate(f, "/blocks", H5_INDEX_CRT_ORDER, order);
    ck_assert_str_eq(order, "2,10");
    iterate(f, "/params/blocks", H5_INDEX_CRT_ORDER, order);
    ck_assert_str_eq(order, "0,1,2,3,4,5,6,7,8,9,10,11");
    iterate(f, "/params/blocks", H5_INDEX_NAME, names); // the name index sorts as strings
    ck_assert_str_eq(names, "0,1,10,11,2,3,4,5,6,7,8,9");
    // rows are positions, columns channels / ffn channels / token ids
    ck_assert(scale_is(f, "/blocks/2/att_k", 0, "/sequences/positions", "position"));
    ck_assert(scale_is(f, "/blocks/2/att_k", 1, "/dims/channel", "channel"));
    ck_assert(scale_is(f, "/blocks/10/state_num", 1, "/dims/channel", "channel"));
    ck_assert(scale_is(f, "/blocks/10/ffn_k", 1, "/dims/ffn_channel", "ffn_channel"));
    ck_assert(scale_is(f, "/logits", 0, "/sequences/positions", "position"));
    ck_assert(scale_is(f, "/logits", 1, "/dims/token", "token"));
    ck_assert(scale_is(f, "/params/blocks/7/half_life", 0, "/dims/channel", "channel"));
    ck_assert(!scale_is(f, "/blocks/10/ffn_k", 1, "/dims/channel", "channel"));
    label_is(f, "/blocks/2/att_k", 0, "row");
    label_is(f, "/blocks/2/att_k", 1, "channel");
    label_is(f, "/blocks/10/ffn_k", 1, "ffn_channel");
    label_is(f, "/logits", 1, "token");
    hid_t d = H5Dopen2(f, "/blocks/2/att_k", H5P_DEFAULT);
    ck_assert_int_eq(H5DSget_num_scales(d, 1), 1); // RWKV-4 has no head axis
    H5Dclose(d);
    // a scale holds the index it names
    int64_t ch[8], ffn[24];
    d = H5Dopen2(f, "/dims/channel", H5P_DEFAULT);
    ck_assert_int_ge(H5Dread(d, H5T_NATIVE_INT64, H5S_ALL, H5S_ALL, H5P_DEFAULT, ch), 0);
    H5Dclose(d);
    d = H5Dopen2(f, "/dims/ffn_channel", H5P_DEFAULT);
    ck_assert_int_ge(H5Dread(d, H5T_NATIVE_INT64, H5S_ALL, H5S_ALL, H5P_DEFAULT, ffn), 0);
    H5Dclose(d);
    for (int i = 0; i < 8; i++) ck_assert_int_eq(ch[i], i);
    for (int i = 0; i < 24; i++) ck_assert_int_eq(ffn[i], i);
    // units and descriptions
    str_attr_is(f, "/params/blocks/3/half_life", "units", "tokens");
    str_attr_is(f, "/params/blocks/3/half_life", "description", "ln 2");
    str_attr_is(f, "/sequences/positions", "units", "tokens");
    str_attr_is(f, "/blocks/10/state_num", "description", "numerator");
    str_attr_is(f, "/logits", "units", "nats");
    H5Fclose(f);
    // the reader still reads it
    rwkv_dump_reader *r;
    ck_assert_int_eq(rwkv_dump_open(&r, path), RWKV_OK);
    ck_assert_int_eq(r->n_rows, 5);
    ck_assert_int_eq(rwkv_dump_width(r, 0, RWKV_TAP_ATT_K), 0);
    ck_assert_int_eq(rwkv_dump_width(r, 10, RWKV_TAP_FFN_K), TWELVE.n_ffn);
    // the reader lists what each layer holds, and finds rows by position
    char taps[RWKV_DUMP_TAPS_MAX][RWKV_DUMP_NAME_MAX];
    ck_assert_int_eq(rwkv_dump_taps(r, 10, taps, RWKV_DUMP_TAPS_MAX), 2);
    ck_assert_str_eq(taps[0], "ffn_k");
    ck_assert_str_eq(taps[1], "state_num");
    ck_assert_int_eq(rwkv_dump_taps(r, 0, taps, RWKV_DUMP_TAPS_MAX), 0);
    ck_assert_int_eq(rwkv_dump_taps(r, TWELVE.n_layer, taps, RWKV_DUMP_TAPS_MAX), 1);
    ck_assert_str_eq(taps[0], "logits");
    int64_t row0 = -1, n = -1;
    ck_assert_int_eq(rwkv_dump_seq_rows(r, 0, 3, 7, &row0, &n), RWKV_OK); // positions 0 2 4 6 8: 4 and 6
    ck_assert(row0 == 2 && n == 2);
    ck_assert_int_eq(rwkv_dump_seq_rows(r, 0, 0, -1, &row0, &n), RWKV_OK);
    ck_assert(row0 == 0 && n == 5);
    ck_assert_int_eq(rwkv_dump_seq_rows(r, 1, 0, -1, &row0, &n), RWKV_ERR_ARG);
    rwkv_dump_reader_free(r);
    // a corrupt index is refused at open, whoever opens the file
    static const struct { const char *dset; int64_t at, value; const char *msg; } BAD[] = {
        {"/sequences/positions", 1, 0, "not a rising position"},
        {"/sequences/positions", 4, 9, "not a rising position"},
        {"/sequences/offsets", 1, 7, "offsets must rise from 0"},
        {"/sequences/token_offsets", 0, 1, "offsets must rise from 0"},
    };
    for (size_t i = 0; i < sizeof BAD / sizeof *BAD; i++) {
        const char *bad = tmp("scales_bad.h5");
        char cmd[1200];
        snprintf(cmd, sizeof cmd, "cp '%s' '%s'", path, bad);
        ck_assert_int_eq(system(cmd), 0);
        f = H5Fopen(bad, H5F_ACC_RDWR, H5P_DEFAULT);
        hid_t ds = H5Dopen2(f, BAD[i].dset, H5P_DEFAULT), sp = H5Dget_space(ds);
        hsize_t at = (hsize_t)BAD[i].at, one = 1;
        hid_t ms = H5Screate_simple(1, &one, NULL);
        H5Sselect_hyperslab(sp, H5S_SELECT_SET, &at, NULL, &one, NULL);
        ck_assert_int_ge(H5Dwrite(ds, H5T_NATIVE_INT64, ms, sp, H5P_DEFAULT, &BAD[i].value), 0);
        H5Sclose(ms);
        H5Sclose(sp);
        H5Dclose(ds);
        H5Fclose(f);
        ck_assert_int_eq(rwkv_dump_open(&r, bad), RWKV_ERR_FORMAT);
        ck_assert_msg(strstr(rwkv_error_message(), BAD[i].msg), "%s", rwkv_error_message());
    }
    free(tok);
    rwkv_model_free(m);
}
END_TEST

// Every dataset of a dump against the axis table of docs/dump-format.md, read through the
// H5DS API (as h5py's Dataset.dims reads them): the scales each axis lists, in order, that
// H5DSis_attached confirms (the scale's REFERENCE_LIST names the dataset), its label, and
// that each scale's REFERENCE_LIST has exactly one entry per attached axis.
#define N_SCALES 8
static const char *const SCALE_PATH[N_SCALES] = {"/sequences/positions", "/dims/channel", "/dims/head",
                                                 "/dims/ffn_channel", "/dims/token", "/dims/state_head",
                                                 "/dims/state_value", "/dims/state_key"};
static const char *const SCALE_NAME[N_SCALES] = {"position", "channel", "head", "ffn_channel",
                                                 "token", "state_head", "state_value", "state_key"};

// The scales (indices into SCALE_PATH) and label of dimension dim of the dataset at path;
// how many, or -1 for a dataset the table does not name. heads: RWKV-5/6/7 (the head scale).
static int axis_wanted(const char *path, unsigned dim, int heads, int sc[3], const char **label) {
    static const char *const MATRICES[] = {"receptance", "key", "value"};
    int l;
    char name[64] = "";
    *label = NULL;
    if (!strncmp(path, "/dims/", 6) || !strcmp(path, "/tokens") || !strcmp(path, "/sequences/offsets") ||
        !strcmp(path, "/sequences/token_offsets"))
        return 0;
    if (!strcmp(path, "/sequences/positions")) { // itself the row scale
        *label = "row";
        return 0;
    }
    int param = sscanf(path, "/params/blocks/%d/%63s", &l, name) == 2;
    int tap = sscanf(path, "/blocks/%d/%63s", &l, name) == 2 || !strcmp(path, "/logits") || !strcmp(path, "/resid_out");
    if (!param && !tap) return -1;
    if (tap && !*name) snprintf(name, sizeof name, "%s", path + 1);
    if (tap && dim == 0) {
        *label = "row";
        sc[0] = 0;
        return 1;
    }
    int matrix = 0;
    for (int i = 0; i < 3; i++) matrix |= param && !strcmp(name, MATRICES[i]);
    if (param && dim == 1 && !matrix) return -1;
    if (!strcmp(name, "state_wkv")) {
        *label = "state_index";
        sc[0] = 5, sc[1] = 6, sc[2] = 7;
        return 3;
    }
    if (tap && (!strcmp(name, "ffn_k") || !strcmp(name, "logits"))) {
        *label = name[0] == 'f' ? "ffn_channel" : "token";
        sc[0] = name[0] == 'f' ? 3 : 4;
        return 1;
    }
    *label = "channel";
    sc[0] = 1, sc[1] = 2;
    return heads ? 2 : 1;
}

typedef struct {
    char path[512][64];
    int n;
} path_list;

static herr_t push_dataset(hid_t obj, const char *name, const H5O_info_t *info, void *op) {
    path_list *p = op;
    (void)obj;
    if (info->type == H5O_TYPE_DATASET && p->n < 512) snprintf(p->path[p->n++], sizeof p->path[0], "/%s", name);
    return 0;
}

static herr_t push_scale_name(hid_t dset, unsigned dim, hid_t scale, void *op) {
    char name[64] = "";
    (void)dset, (void)dim;
    if (H5DSget_scale_name(scale, name, sizeof name) <= 0) return -1;
    join(op, name);
    return 0;
}

// Elements of attribute name of the object at path (-1: none).
static hssize_t attr_points(hid_t f, const char *path, const char *name) {
    hid_t o = H5Oopen(f, path, H5P_DEFAULT);
    hssize_t n = -1;
    if (o >= 0 && H5Aexists(o, name) > 0) {
        hid_t a = H5Aopen(o, name, H5P_DEFAULT), sp = H5Aget_space(a);
        n = H5Sget_simple_extent_npoints(sp);
        H5Sclose(sp);
        H5Aclose(a);
    }
    if (o >= 0) H5Oclose(o);
    return n;
}

// Checks every axis of every dataset of f; returns the number of tap datasets.
static int check_every_axis(hid_t f, int heads) {
    path_list *p = calloc(1, sizeof *p);
    ck_assert_ptr_nonnull(p);
    ck_assert_int_ge(H5Ovisit2(f, H5_INDEX_NAME, H5_ITER_INC, push_dataset, p, H5O_INFO_BASIC), 0);
    ck_assert_int_lt(p->n, 512);
    int uses[N_SCALES] = {0}, taps = 0;
    for (int i = 0; i < p->n; i++) {
        const char *path = p->path[i];
        hid_t d = H5Dopen2(f, path, H5P_DEFAULT), sp = H5Dget_space(d);
        int rank = H5Sget_simple_extent_ndims(sp);
        H5Sclose(sp);
        taps += !strncmp(path, "/blocks/", 8) || !strcmp(path, "/logits") || !strcmp(path, "/resid_out");
        for (int dim = 0; dim < rank; dim++) {
            int sc[3];
            const char *label;
            int n = axis_wanted(path, (unsigned)dim, heads, sc, &label);
            ck_assert_msg(n >= 0, "%s axis %d is not in the axis table", path, dim);
            ck_assert_msg(H5DSget_num_scales(d, (unsigned)dim) == n, "%s axis %d: %d scales, want %d", path, dim,
                          H5DSget_num_scales(d, (unsigned)dim), n);
            char got[256] = "", want[256] = "";
            for (int k = 0; k < n; k++) {
                join(want, SCALE_NAME[sc[k]]);
                hid_t s = H5Dopen2(f, SCALE_PATH[sc[k]], H5P_DEFAULT);
                ck_assert_msg(H5DSis_scale(s) == 1 && H5DSis_attached(d, s, (unsigned)dim) == 1,
                              "%s axis %d: %s not attached", path, dim, SCALE_PATH[sc[k]]);
                H5Dclose(s);
                uses[sc[k]]++;
            }
            if (n) ck_assert_int_ge(H5DSiterate_scales(d, (unsigned)dim, NULL, push_scale_name, got), 0);
            ck_assert_msg(!strcmp(got, want), "%s axis %d: scales %s, want %s", path, dim, got, want);
            char lab[64] = "";
            ck_assert_int_eq(H5DSget_label(d, (unsigned)dim, lab, sizeof lab), label ? (ssize_t)strlen(label) : 0);
            if (label) ck_assert_str_eq(lab, label);
        }
        H5Dclose(d);
    }
    for (int k = 0; k < N_SCALES; k++)
        ck_assert_msg(attr_points(f, SCALE_PATH[k], "REFERENCE_LIST") == (uses[k] ? uses[k] : -1),
                      "%s: REFERENCE_LIST of %lld, %d axes use it", SCALE_PATH[k],
                      (long long)attr_points(f, SCALE_PATH[k], "REFERENCE_LIST"), uses[k]);
    free(p);
    return taps;
}

static void copy_file(const char *from, const char *to) {
    FILE *a = fopen(from, "rb"), *b = fopen(to, "wb");
    ck_assert(a && b);
    char buf[1 << 16];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, a)) > 0) ck_assert_uint_eq(fwrite(buf, 1, n, b), n);
    fclose(a);
    ck_assert_int_eq(fclose(b), 0);
}

// A dump of every tap of m at path, made and closed with no rows (the axes are made first);
// killed, if set, gets a copy of the file as a kill right after rwkv_dump_create leaves it.
// Returns the number of tap datasets, as the dump reader lists them.
static int dump_all_taps(const char *path, const rwkv_model *m, const char *killed) {
    uint32_t mask[64];
    rwkv_positions pos;
    ck_assert_int_eq(rwkv_select_taps(mask, m->cfg.n_layer, "*"), RWKV_OK);
    ck_assert_int_eq(rwkv_select_restrict(mask, m->cfg, "*"), RWKV_OK);
    ck_assert_int_eq(rwkv_select_positions(&pos, "all"), RWKV_OK);
    rwkv_dump_opts o = {.parallel = 1, .force = 1, .taps = "*", .positions = "all"};
    rwkv_dump *d;
    unlink(path);
    ck_assert_msg(rwkv_dump_create(&d, path, m, mask, &pos, &o) == RWKV_OK, "%s", rwkv_error_message());
    rwkv_select_positions_free(&pos);
    if (killed) copy_file(path, killed);
    ck_assert_msg(rwkv_dump_close(d) == RWKV_OK, "%s", rwkv_error_message());
    rwkv_dump_reader *r;
    ck_assert_int_eq(rwkv_dump_open(&r, path), RWKV_OK);
    int n = 0;
    char taps[RWKV_DUMP_TAPS_MAX][RWKV_DUMP_NAME_MAX];
    for (int l = 0; l <= m->cfg.n_layer; l++) n += rwkv_dump_taps(r, l, taps, RWKV_DUMP_TAPS_MAX);
    rwkv_dump_reader_free(r);
    return n;
}

static rwkv_model *v7_zero_model(void) {
    rwkv_model *m;
    rwkv_config cfg = {.n_layer = 2, .n_embd = 32, .n_ffn = 64, .n_vocab = 20, .head_size = 16};
    ck_assert_int_eq(rwkv_v7_model_alloc(&m, cfg, (rwkv_v7_dims){.d_w = 8, .d_a = 8, .d_v = 8, .d_g = 8}), RWKV_OK);
    return m;
}

// Every tap (RWKV-4 and RWKV-7), every /params dataset: each axis has the scales and label the
// schema gives it, in a closed dump and in one killed right after it was created.
START_TEST(test_dump_scales_every_dataset) {
    rwkv_model *models[2] = {test_random_model((rwkv_config){.n_layer = 3, .n_embd = 8, .n_ffn = 24, .n_vocab = 20}, 3),
                             v7_zero_model()};
    const char *path = tmp("allaxes.h5"), *killed = tmp("allaxes_killed.h5");
    for (int i = 0; i < 2; i++) {
        int n_taps = dump_all_taps(path, models[i], killed);
        ck_assert_int_ge(n_taps, models[i]->cfg.n_layer * 10);
        hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
        ck_assert_int_ge(f, 0);
        ck_assert_int_eq(check_every_axis(f, i == 1), n_taps);
        ck_assert(rwkv_h5_exists(f, i ? "/blocks/1/state_wkv" : "/blocks/2/state_num") && rwkv_h5_exists(f, "/logits"));
        H5Fclose(f);
        f = H5Fopen(killed, H5F_ACC_RDONLY | H5F_ACC_SWMR_READ, H5P_DEFAULT); // the writer never closed it
        ck_assert_int_ge(f, 0);
        ck_assert_int_eq(check_every_axis(f, i == 1), n_taps);
        H5Fclose(f);
        rwkv_model_free(models[i]);
    }
}
END_TEST

// Type of attribute name of the object at path.
static hid_t attr_type(hid_t f, const char *path, const char *name) {
    hid_t o = H5Oopen(f, path, H5P_DEFAULT), a = H5Aopen(o, name, H5P_DEFAULT), t = H5Aget_type(a);
    H5Aclose(a);
    H5Oclose(o);
    ck_assert_int_ge(t, 0);
    return t;
}

// The dump's scale attributes have the types H5DSattach_scale and H5DSset_label write, and
// H5DS edits them: a detach removes exactly one axis's entry, an attach adds it back.
START_TEST(test_dump_scales_h5ds_layout) {
    const char *path = tmp("h5ds_layout.h5"), *ref = tmp("h5ds_ref.h5");
    rwkv_model *m = v7_zero_model();
    dump_all_taps(path, m, NULL);
    rwkv_model_free(m);
    // the reference: one dataset with a labelled, attached axis, written by H5DS itself
    hid_t g = H5Fcreate(ref, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    hsize_t dims[2] = {2, 4};
    hid_t sp2 = H5Screate_simple(2, dims, NULL), sp1 = H5Screate_simple(1, dims + 1, NULL);
    hid_t data = H5Dcreate2(g, "data", H5T_NATIVE_FLOAT, sp2, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    hid_t scale = H5Dcreate2(g, "scale", H5T_NATIVE_INT64, sp1, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    ck_assert(H5DSset_scale(scale, "s") >= 0 && H5DSset_label(data, 0, "a") >= 0 && H5DSset_label(data, 1, "b") >= 0 &&
              H5DSattach_scale(data, scale, 1) >= 0);
    H5Dclose(data);
    H5Dclose(scale);
    H5Sclose(sp1);
    H5Sclose(sp2);
    hid_t f = H5Fopen(path, H5F_ACC_RDWR, H5P_DEFAULT);
    ck_assert_int_ge(f, 0);
    static const char *const ATTRS[3][3] = {{"/blocks/0/att_k", "/data", "DIMENSION_LIST"},
                                            {"/blocks/0/att_k", "/data", "DIMENSION_LABELS"},
                                            {"/dims/channel", "/scale", "REFERENCE_LIST"}};
    for (int i = 0; i < 3; i++) {
        hid_t a = attr_type(f, ATTRS[i][0], ATTRS[i][2]), b = attr_type(g, ATTRS[i][1], ATTRS[i][2]);
        ck_assert_msg(H5Tequal(a, b) > 0, "%s of %s", ATTRS[i][2], ATTRS[i][0]);
        H5Tclose(a);
        H5Tclose(b);
    }
    H5Fclose(g);
    ck_assert_int_eq(attr_points(f, "/blocks/0/att_k", "DIMENSION_LIST"), 2); // one list per axis
    hssize_t users = attr_points(f, "/dims/channel", "REFERENCE_LIST");
    hid_t k0 = H5Dopen2(f, "/blocks/0/att_k", H5P_DEFAULT), k1 = H5Dopen2(f, "/blocks/1/att_k", H5P_DEFAULT);
    hid_t ch = H5Dopen2(f, "/dims/channel", H5P_DEFAULT);
    ck_assert_int_ge(H5DSdetach_scale(k1, ch, 1), 0);
    ck_assert_int_eq(H5DSis_attached(k1, ch, 1), 0);
    ck_assert_int_eq(H5DSis_attached(k0, ch, 1), 1);
    ck_assert_int_eq(H5DSget_num_scales(k1, 1), 1); // the head scale stays
    ck_assert_int_eq(attr_points(f, "/dims/channel", "REFERENCE_LIST"), users - 1);
    ck_assert_int_ge(H5DSattach_scale(k1, ch, 1), 0);
    ck_assert_int_eq(H5DSis_attached(k1, ch, 1), 1);
    ck_assert_int_eq(attr_points(f, "/dims/channel", "REFERENCE_LIST"), users);
    H5Dclose(ch);
    H5Dclose(k1);
    H5Dclose(k0);
    H5Fclose(f);
}
END_TEST

START_TEST(test_dump_h5tools) {
    rwkv_model *m = test_random_model(SMALL, 13);
    int *tok = test_random_tokens(10, SMALL.n_vocab, 9);
    int64_t len = 10;
    const char *path = tmp("tools.h5");
    ck_assert_int_eq(make_dump(path, m, "blocks.*.state_num,logits", "all", 0, 4, tok, &len, 1, NULL, NULL), RWKV_OK);
    char cmd[700], out[8192];
    snprintf(cmd, sizeof cmd, "h5ls -r %s 2>&1", path);
    FILE *p = popen(cmd, "r");
    size_t n = fread(out, 1, sizeof out - 1, p);
    out[n] = '\0';
    ck_assert_int_eq(pclose(p), 0);
    ck_assert_ptr_nonnull(strstr(out, "/blocks/1/state_num"));
    ck_assert_ptr_nonnull(strstr(out, "Dataset {10/Inf, 16}"));
    ck_assert_ptr_nonnull(strstr(out, "/sequences/offsets"));
    snprintf(cmd, sizeof cmd, "h5dump -a /schema -a /complete -d /sequences/offsets %s 2>&1", path);
    p = popen(cmd, "r");
    n = fread(out, 1, sizeof out - 1, p);
    out[n] = '\0';
    ck_assert_int_eq(pclose(p), 0);
    ck_assert_ptr_nonnull(strstr(out, "\"rwkvscope-dump\""));
    ck_assert_ptr_nonnull(strstr(out, "(0): 0, 10"));
    free(tok);
    rwkv_model_free(m);
}
END_TEST

// ---- state save / load ----

START_TEST(test_state_io) {
    rwkv_model *m = test_random_model(SMALL, 14);
    int *tok = test_random_tokens(30, SMALL.n_vocab, 10);
    rwkv_state *a, *b;
    rwkv_workspace *ws;
    rwkv_state_alloc(&a, m->cfg);
    rwkv_state_alloc(&b, m->cfg);
    rwkv_workspace_alloc(&ws, m->cfg, 8);
    rwkv_real la[30], lb[30];
    ck_assert_int_eq(rwkv_forward_seq(m, a, tok, 18, NULL, RWKV_LOGITS_NONE, NULL, ws), RWKV_OK);
    const char *path = tmp("state.h5");
    unlink(path);
    ck_assert_int_eq(rwkv_state_save(path, a, m, 18, "test", 0), RWKV_OK);
    ck_assert_int_eq(rwkv_state_save(path, a, m, 18, "test", 0), RWKV_ERR_EXISTS);
    ck_assert_int_eq(rwkv_state_save("/proc/nope/state.h5", a, m, 18, "test", 1), RWKV_ERR_IO);
    ck_assert_int_eq(rwkv_state_load(b, path, m), RWKV_OK);
    ck_assert(!memcmp(a->data, b->data, 5 * sizeof(rwkv_real) * 2 * 16));
    ck_assert_int_eq(attr_i64(path, "n_tokens"), 18);
    // continuing from the loaded state == one run over all 30 tokens
    ck_assert_int_eq(rwkv_forward_seq(m, b, tok + 18, 12, la, RWKV_LOGITS_LAST, NULL, ws), RWKV_OK);
    rwkv_state_reset(a);
    ck_assert_int_eq(rwkv_forward_seq(m, a, tok, 30, lb, RWKV_LOGITS_LAST, NULL, ws), RWKV_OK);
    ck_assert(!memcmp(la, lb, SMALL.n_vocab * sizeof *la));
    ck_assert(!memcmp(a->data, b->data, 5 * sizeof(rwkv_real) * 2 * 16));
    // wrong model shape, not a state file
    rwkv_config other = SMALL;
    other.n_embd = 8;
    rwkv_model *m2 = test_random_model(other, 1);
    rwkv_state *c;
    rwkv_state_alloc(&c, other);
    ck_assert_int_eq(rwkv_state_load(c, path, m2), RWKV_ERR_SHAPE);
    ck_assert_ptr_nonnull(strstr(rwkv_error_message(), "n_embd=16"));
    ck_assert_int_eq(rwkv_state_load(b, test_fixture("golden-small.h5"), m), RWKV_ERR_FORMAT);
    ck_assert_int_eq(rwkv_state_load(b, tmp("nostate.h5"), m), RWKV_ERR_IO);
    rwkv_state_free(c);
    rwkv_model_free(m2);
    rwkv_state_free(a);
    rwkv_state_free(b);
    rwkv_workspace_free(ws);
    free(tok);
    rwkv_model_free(m);
}
END_TEST


// ---- goldens: a dump in each mode matches /trace, /logits and /final_state ----

static const struct {
    const char *golden, *model;
} GOLDENS[] = {
    {"golden-small.h5", "rand-L2-C32-V50.pth"},
    {"golden-rand.h5", "rand-L3-C64-V300.pth"},
    {"golden-tiny4.h5", "tiny-rwkv-4v0-660K-FP32.bin"},
};

// [L, T, D] golden slice l against a dump dataset [T, D].
static double golden_vs_dump(const char *dump, const char *dset, const double *ref, int l, uint64_t T, uint64_t D) {
    int nd;
    uint64_t d[4];
    double *x = test_h5_read(dump, dset, &nd, d);
    ck_assert_msg(x != NULL, "%s: %s missing", dump, dset);
    ck_assert_int_eq(nd, 2);
    ck_assert_uint_eq(d[0], T);
    ck_assert_uint_eq(d[1], D);
    double e = test_max_scaled_err_d(x, ref + (size_t)l * T * D, T * D);
    free(x);
    return e;
}

static void check_golden(int gi, int par) {
    char golden[512], dump[512];
    snprintf(golden, sizeof golden, "%s", test_fixture(GOLDENS[gi].golden));
    snprintf(dump, sizeof dump, "%s", tmp(par ? "golden_par.h5" : "golden_seq.h5"));
    rwkv_model *m;
    ck_assert_msg(rwkv_model_load(&m, test_fixture(GOLDENS[gi].model)) == RWKV_OK, "%s", rwkv_error_message());
    size_t T;
    int *tok = test_h5_read_int(golden, "/tokens", &T);
    ck_assert_ptr_nonnull(tok);
    int64_t len = (int64_t)T;
    rwkv_state *fin;
    rwkv_state_alloc(&fin, m->cfg);
    // parallel chunks of 16 tokens: several chunks and a ragged tail
    rwkv_status st = make_dump(dump, m, "*", "all", par, 16, tok, &len, 1, NULL, fin);
    ck_assert_msg(st == RWKV_OK, "%s", rwkv_error_message());
    // rwkv.cpp files store exp(time_decay) rounded to float32: a float64 engine is then held to
    // the file's precision, 1e-5 (see test_engine.c); float32 gets 1e-4 everywhere.
    double tol = (RWKV_REAL_BITS == 64 && strstr(GOLDENS[gi].model, ".bin")) ? 1e-5 : TOL;
    int L = m->cfg.n_layer, nd, traces = 0;
    uint64_t d[4];
    for (int t = 0; t < RWKV_V4_BLOCK_TAPS; t++) {
        char name[96];
        snprintf(name, sizeof name, "/trace/%s", RWKV_TAP_NAMES[t]);
        double *ref = test_h5_read(golden, name, &nd, d);
        if (!ref) { // only tiny4's zero FFN has no ffn_* traces
            ck_assert_msg(gi == 2 && !strncmp(RWKV_TAP_NAMES[t], "ffn_", 4), "%s lacks %s", GOLDENS[gi].golden, name);
            continue;
        }
        traces++;
        ck_assert_uint_eq(d[0], (uint64_t)L);
        ck_assert_uint_eq(d[1], T);
        for (int l = 0; l < L; l++) {
            char dset[96];
            snprintf(dset, sizeof dset, "/blocks/%d/%s", l, RWKV_TAP_NAMES[t]);
            double e = golden_vs_dump(dump, dset, ref, l, T, d[2]);
            ck_assert_msg(e < tol, "%s %s %s: error %g", GOLDENS[gi].model, par ? "par" : "seq", dset, e);
        }
        free(ref);
    }
    ck_assert_int_eq(traces, gi == 2 ? 14 : 17);
    double *ref = test_h5_read(golden, "/logits", &nd, d);
    ck_assert_ptr_nonnull(ref);
    double e = golden_vs_dump(dump, "/logits", ref, 0, T, d[1]);
    ck_assert_msg(e < tol, "%s %s logits: error %g", GOLDENS[gi].model, par ? "par" : "seq", e);
    free(ref);
    for (int v = 0; v < RWKV_STATE_NVEC; v++) {
        char name[64];
        snprintf(name, sizeof name, "/final_state/%s", RWKV_STATE_NAMES[v]);
        ref = test_h5_read(golden, name, &nd, d);
        ck_assert_ptr_nonnull(ref);
        e = test_max_scaled_err(rwkv_state_vec(fin, v), ref, (size_t)L * m->cfg.n_embd);
        ck_assert_msg(e < tol, "%s final %s error %g", GOLDENS[gi].model, name, e);
        free(ref);
    }
    ck_assert_int_eq(attr_i64(dump, "complete"), 1);
    rwkv_state_free(fin);
    free(tok);
    rwkv_model_free(m);
}

START_TEST(test_golden_seq) { check_golden(_i, 0); }
END_TEST
START_TEST(test_golden_par) { check_golden(_i, 1); }
END_TEST

// ---- the CLI ----

static char *token_list(const int *tok, size_t n) {
    char *s = malloc(n * 12 + 1), *p = s;
    for (size_t i = 0; i < n; i++) p += sprintf(p, "%s%d", i ? "," : "", tok[i]);
    return s;
}

static int contains(const char *hay, const char *needle) { return hay && strstr(hay, needle) != NULL; }

START_TEST(test_cli_dump) {
    const char *model = test_fixture("rand-L2-C32-V50.pth");
    char mpath[256];
    snprintf(mpath, sizeof mpath, "%s", model);
    size_t T;
    int *tok = test_h5_read_int(test_fixture("golden-small.h5"), "/tokens", &T);
    char *list = token_list(tok, T);
    const char *out = tmp("cli_dump.h5");
    unlink(out);
    char *o = NULL;
    int rc = test_cli(&o, "dump %s --tokens %s --taps 'blocks.*.att_wkv,logits' --mode seq -o %s", mpath, list, out);
    ck_assert_msg(rc == 0, "%s", o);
    free(o);
    // end to end against the golden: blocks.1.att_wkv
    int nd;
    uint64_t d[4];
    double *ref = test_h5_read(test_fixture("golden-small.h5"), "/trace/att_wkv", &nd, d);
    ck_assert_double_lt(golden_vs_dump(out, "/blocks/1/att_wkv", ref, 1, T, d[2]), TOL);
    free(ref);
    ck_assert_int_eq(attr_i64(out, "complete"), 1);
    // an existing output is refused; --force replaces it
    rc = test_cli(&o, "dump %s --tokens 1,2,3 --taps logits -o %s", mpath, out);
    ck_assert_int_ne(rc, 0);
    ck_assert_msg(contains(o, "exists") && contains(o, "--force"), "%s", o);
    free(o);
    rc = test_cli(&o, "dump %s --tokens 1,2,3 --taps logits --positions last --force -o %s", mpath, out);
    ck_assert_msg(rc == 0, "%s", o);
    free(o);
    size_t n;
    int *pos = test_h5_read_int(out, "/sequences/positions", &n);
    ck_assert(pos && n == 1 && pos[0] == 2);
    free(pos);
    // unwritable output, bad pattern, bad positions, bad mode, missing input, bad token
    const char *bad[][2] = {
        {"--tokens 1,2 --taps logits -o /proc/rwkvscope.h5", "/proc/rwkvscope.h5"},
        {"--tokens 1,2 --taps logits --force -o /dev/full", "/dev/full: cannot write an HDF5 file there"},
        {"--tokens 1,2 --taps 'blocks.*.nope' -o x.h5", "valid names"},
        {"--tokens 1,2 --taps logits --positions every:0 -o x.h5", "--positions"},
        {"--tokens 1,2 --taps logits --mode gpt -o x.h5", "--mode"},
        {"--tokens 1,2 --taps logits --compress fast -o x.h5", "--compress expects small, all or none"},
        {"--taps logits -o x.h5", "input"},
        {"--tokens 1,99 --taps logits -o x.h5", "vocabulary"},
        {"--tokens 1,2 --taps logits --state /nonexistent/s.h5 -o x.h5", "/nonexistent/s.h5"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char args[600];
        snprintf(args, sizeof args, "%s", bad[i][0]);
        char *x = strstr(args, "x.h5");
        char outp[300];
        snprintf(outp, sizeof outp, "%s", tmp("never.h5"));
        if (x) { *x = '\0'; }
        rc = test_cli(&o, "dump %s %s%s", mpath, args, x ? outp : "");
        ck_assert_msg(rc != 0 && contains(o, bad[i][1]), "case %zu: rc %d, %s", i, rc, o);
        ck_assert_msg(access(outp, F_OK) != 0 || i == 0, "case %zu left an output", i);
        free(o);
    }
    // --matrices writes the time-mix matrices under /params, equal to the checkpoint's
    rc = test_cli(&o, "dump %s --tokens 1,2,3 --taps logits --matrices --force -o %s", mpath, out);
    ck_assert_msg(rc == 0, "%s", o);
    free(o);
    rwkv_model *m;
    ck_assert_int_eq(rwkv_model_load(&m, mpath), RWKV_OK);
    const char *mats[3] = {"receptance", "key", "value"};
    const rwkv_real *src[3] = {m->w.att_receptance, m->w.att_key, m->w.att_value};
    for (int k = 0; k < 3; k++) {
        char dset[64];
        snprintf(dset, sizeof dset, "/params/blocks/1/%s", mats[k]);
        double *x = test_h5_read(out, dset, &nd, d);
        ck_assert_msg(x && nd == 2 && d[0] == 32 && d[1] == 32, "%s", dset);
        ck_assert_double_eq(test_max_scaled_err(src[k] + 32 * 32, x, 32 * 32), 0);
        free(x);
    }
    rwkv_model_free(m);
    // --compress none: the same logits in an unfiltered dataset
    double *lz = test_h5_read(out, "/logits", &nd, d);
    rc = test_cli(&o, "dump %s --tokens 1,2,3 --taps logits --compress none --force -o %s", mpath, out);
    ck_assert_msg(rc == 0, "%s", o);
    free(o);
    double *lr = test_h5_read(out, "/logits", &nd, d);
    ck_assert(lz && lr && nd == 2 && d[0] == 3 && d[1] == 50);
    ck_assert(!memcmp(lz, lr, 3 * 50 * sizeof *lz));
    hid_t f = H5Fopen(out, H5F_ACC_RDONLY, H5P_DEFAULT);
    hid_t ds = H5Dopen2(f, "/logits", H5P_DEFAULT), p = H5Dget_create_plist(ds);
    ck_assert_int_eq(H5Pget_nfilters(p), 0);
    H5Pclose(p); H5Dclose(ds); H5Fclose(f);
    free(lz); free(lr);
    ck_assert_int_eq(test_cli(&o, "dump --help"), 0);
    ck_assert(contains(o, "--taps") && contains(o, "--positions"));
    free(o);
    free(list);
    free(tok);
}
END_TEST

// --input: one prompt per line, or JSONL; each sequence equals its own single dump.
START_TEST(test_cli_input) {
    char mpath[256];
    snprintf(mpath, sizeof mpath, "%s", test_fixture("rand-L3-C64-V300.pth"));
    const char *lines = tmp("prompts.txt"), *jsonl = tmp("prompts.jsonl");
    FILE *f = fopen(lines, "w");
    fputs("ab\nhello world\n\nxyz!\n", f);
    fclose(f);
    f = fopen(jsonl, "w");
    fputs("{\"text\": \"ab\"}\n{\"tokens\": [104, 101, 108, 108, 111, 32, 119, 111, 114, 108, 100]}\n{\"text\": \"xyz!\"}\n", f);
    fclose(f);
    const char *a = tmp("in_lines.h5"), *b = tmp("in_jsonl.h5"), *one = tmp("in_one.h5");
    char *o;
    int rc = test_cli(&o, "dump %s --input %s --taps 'blocks.2.state_*,logits' --force -o %s", mpath, lines, a);
    ck_assert_msg(rc == 0, "%s", o);
    free(o);
    rc = test_cli(&o, "dump %s --input %s --taps 'blocks.2.state_*,logits' --force -o %s", mpath, jsonl, b);
    ck_assert_msg(rc == 0, "%s", o);
    free(o);
    const char *seqs[3] = {"ab", "hello world", "xyz!"};
    int64_t want[4] = {0, 2, 13, 17};
    for (int k = 0; k < 2; k++) {
        rwkv_dump_reader *r;
        ck_assert_int_eq(rwkv_dump_open(&r, k ? b : a), RWKV_OK);
        int64_t *off;
        ck_assert_int_eq(rwkv_dump_read_offsets(r, &off), RWKV_OK);
        ck_assert_int_eq(r->n_seq, 3);
        for (int i = 0; i < 4; i++) ck_assert_int_eq(off[i], want[i]);
        for (int s = 0; s < 3; s++) {
            rc = test_cli(&o, "dump %s --bytes '%s' --taps 'blocks.2.state_*,logits' --force -o %s", mpath, seqs[s], one);
            ck_assert_msg(rc == 0, "%s", o);
            free(o);
            rwkv_dump_reader *r1;
            ck_assert_int_eq(rwkv_dump_open(&r1, one), RWKV_OK);
            int64_t n = want[s + 1] - want[s];
            double x[11 * 300], y[11 * 300];
            ck_assert_int_eq(rwkv_dump_read_rows_f64(r, 3, RWKV_TAP_LOGITS, off[s], n, x), RWKV_OK);
            ck_assert_int_eq(rwkv_dump_read_rows_f64(r1, 3, RWKV_TAP_LOGITS, 0, n, y), RWKV_OK);
            ck_assert(!memcmp(x, y, (size_t)n * 300 * sizeof *x));
            ck_assert_int_eq(rwkv_dump_read_rows_f64(r, 2, RWKV_TAP_STATE_NUM, off[s], n, x), RWKV_OK);
            ck_assert_int_eq(rwkv_dump_read_rows_f64(r1, 2, RWKV_TAP_STATE_NUM, 0, n, y), RWKV_OK);
            ck_assert(!memcmp(x, y, (size_t)n * 64 * sizeof *x));
            rwkv_dump_reader_free(r1);
        }
        free(off);
        rwkv_dump_reader_free(r);
    }
    // the prompts are kept in /text (the token-id line has "")
    hid_t h = H5Fopen(b, H5F_ACC_RDONLY, H5P_DEFAULT);
    hid_t ds = H5Dopen2(h, "/text", H5P_DEFAULT);
    hid_t st = H5Tcopy(H5T_C_S1);
    H5Tset_size(st, H5T_VARIABLE);
    H5Tset_cset(st, H5T_CSET_UTF8);
    char *txt[3] = {0};
    ck_assert_int_ge(H5Dread(ds, st, H5S_ALL, H5S_ALL, H5P_DEFAULT, txt), 0);
    ck_assert_str_eq(txt[0], "ab");
    ck_assert_str_eq(txt[1], "");
    ck_assert_str_eq(txt[2], "xyz!");
    for (int i = 0; i < 3; i++) H5free_memory(txt[i]);
    H5Tclose(st); H5Dclose(ds); H5Fclose(h);
    // --file keeps its text in /text too; --positions takes "last" inside a list
    f = fopen(lines, "w");
    fputs("Once upon\na time", f);
    fclose(f);
    rc = test_cli(&o, "dump %s --file %s --taps logits --positions 0,last --force -o %s", mpath, lines, one);
    ck_assert_msg(rc == 0, "%s", o);
    free(o);
    rwkv_dump_reader *rf;
    ck_assert_int_eq(rwkv_dump_open(&rf, one), RWKV_OK);
    ck_assert_int_eq(rf->n_rows, 2); // positions 0 and 15 of the 16 bytes
    int64_t *fpos = NULL;
    ck_assert_int_eq(rwkv_dump_read_positions(rf, &fpos), RWKV_OK);
    ck_assert(fpos[0] == 0 && fpos[1] == 15);
    free(fpos);
    rwkv_dump_reader_free(rf);
    h = H5Fopen(one, H5F_ACC_RDONLY, H5P_DEFAULT);
    ds = H5Dopen2(h, "/text", H5P_DEFAULT);
    st = H5Tcopy(H5T_C_S1);
    H5Tset_size(st, H5T_VARIABLE);
    H5Tset_cset(st, H5T_CSET_UTF8);
    ck_assert_int_ge(H5Dread(ds, st, H5S_ALL, H5S_ALL, H5P_DEFAULT, txt), 0);
    ck_assert_str_eq(txt[0], "Once upon\na time");
    H5free_memory(txt[0]);
    H5Tclose(st); H5Dclose(ds); H5Fclose(h);
    // bad JSONL names the file and line
    f = fopen(jsonl, "w");
    fputs("{\"text\": \"ab\"}\n{\"tokens\": [1, \"x\"]}\n", f);
    fclose(f);
    rc = test_cli(&o, "dump %s --input %s --taps logits --force -o %s", mpath, jsonl, one);
    ck_assert_msg(rc != 0 && contains(o, "prompts.jsonl:2"), "%s", o);
    free(o);
    f = fopen(jsonl, "w");
    fputs("{\"text\": \"ab\"\n", f);
    fclose(f);
    rc = test_cli(&o, "dump %s --input %s --taps logits --force -o %s", mpath, jsonl, one);
    ck_assert_msg(rc != 0 && contains(o, "prompts.jsonl:1"), "%s", o);
    free(o);
    rc = test_cli(&o, "dump %s --input %s --taps logits --force -o %s", mpath, tmp("none.txt"), one);
    ck_assert_msg(rc != 0 && contains(o, "none.txt"), "%s", o);
    free(o);
}
END_TEST

// compare: agreement on 2048 random tokens; the perturbation is found exactly.
START_TEST(test_cli_compare) {
    char mpath[256];
    snprintf(mpath, sizeof mpath, "%s", test_fixture("rand-L3-C64-V300.pth"));
    int *tok = test_random_tokens(2048, 300, 21);
    char *list = token_list(tok, 2048), *o;
    const char *csv = tmp("cmp.csv");
    int rc = test_cli(&o, "compare %s --tokens %s --csv %s", mpath, list, csv);
    ck_assert_msg(rc == 0 && contains(o, "agreement: all 53 taps"), "rc %d: %s", rc, o);
    free(o);
    FILE *f = fopen(csv, "r");
    char line[512];
    int rows = 0;
    while (fgets(line, sizeof line, f)) rows++;
    fclose(f);
    ck_assert_int_eq(rows, 54);
    char *shorter = token_list(tok, 600); // the perturbation test needs no 2048 tokens
    // A change to the reference run (through the library: the binary has no test hook) is
    // found exactly where it was made, and nothing below the changed layer moves.
    rwkv_model *m;
    ck_assert_int_eq(rwkv_model_load(&m, mpath), RWKV_OK);
    const char *spec[] = {"blocks.1.state_num:9@500=set:1"};
    rwkv_sequences seqs = {0};
    int *ids = malloc(600 * sizeof *ids);
    memcpy(ids, tok, 600 * sizeof *ids);
    ck_assert_int_eq(rwkv_sequences_push(&seqs, ids, 600, NULL), RWKV_OK);
    rwkv_compare_result r;
    rwkv_compare_modes_opts co = {.max_T = 128, .ref_interventions = spec, .n_ref_interventions = 1};
    ck_assert_int_eq(rwkv_compare_modes(&r, m, &seqs, RWKV_COMPARE_TOL, &co), RWKV_OK);
    ck_assert_int_eq(r.n, 53);
    ck_assert_int_ge(r.first, 0);
    const rwkv_compare_row *fr = &r.rows[r.first];
    ck_assert_str_eq(fr->name, "blocks.1.state_num");
    ck_assert_str_eq(fr->form, "num/den");
    ck_assert(fr->first_seq == 0 && fr->first_pos == 500 && fr->first_channel == 9);
    for (int i = 0; i < r.n; i++)
        if (r.rows[i].layer == 0) ck_assert_msg(r.rows[i].first_row < 0, "%s moved", r.rows[i].name);
    // The CSV of the table: the first divergence's row as found above; an existing file needs force.
    const char *rcsv = tmp("cmp_lib.csv");
    ck_assert_int_eq(rwkv_compare_write_csv(&r, rcsv, 1), RWKV_OK);
    ck_assert_int_eq(rwkv_compare_write_csv(&r, rcsv, 0), RWKV_ERR_EXISTS);
    char *text = test_read_text(rcsv);
    ck_assert_ptr_nonnull(text);
    const char *head = "tap,layer,name,width,max_abs,max_rel,max_scaled,first_row,first_seq,first_pos,first_channel,form\n";
    ck_assert(!strncmp(text, head, strlen(head)));
    const char *row = strstr(text, "\nstate_num,1,blocks.1.state_num,64,");
    ck_assert_ptr_nonnull(row);
    long long seq, pos, ch;
    ck_assert_int_eq(sscanf(row + 1, "state_num,1,blocks.1.state_num,64,%*g,%*g,%*g,%*d,%lld,%lld,%lld,num/den", &seq, &pos,
                            &ch), 3);
    ck_assert(seq == 0 && pos == 500 && ch == 9);
    free(text);
    rwkv_compare_free(&r);
    co.n_ref_interventions = 0; // without the change: the modes agree, as the CLI said
    ck_assert_int_eq(rwkv_compare_modes(&r, m, &seqs, RWKV_COMPARE_TOL, &co), RWKV_OK);
    ck_assert_int_eq(r.n_exceeded, 0);
    rwkv_compare_free(&r);
    rwkv_sequences_free(&seqs);
    rwkv_model_free(m);
    // A tolerance no rounding meets: exit 3 and the first divergence is named.
    rc = test_cli(&o, "compare %s --tokens %s --tol 1e-300 --only-exceeding", mpath, shorter);
    ck_assert_msg(rc == 3 && contains(o, "first divergence: "), "rc %d: %s", rc, o);
    free(o);
    // two dumps: modes agree; a non-dump is refused
    const char *a = tmp("cmp_a.h5"), *b = tmp("cmp_b.h5");
    rc = test_cli(&o, "dump %s --tokens %s --taps '*' --mode seq --force -o %s", mpath, shorter, a);
    ck_assert_msg(rc == 0, "%s", o);
    free(o);
    rc = test_cli(&o, "dump %s --tokens %s --taps '*' --mode par --chunk 100 --force -o %s", mpath, shorter, b);
    ck_assert_msg(rc == 0, "%s", o);
    free(o);
    rc = test_cli(&o, "compare %s %s", a, b);
    ck_assert_msg(rc == 0 && contains(o, "agreement"), "%s", o);
    free(o);
    rc = test_cli(&o, "compare %s %s", a, test_fixture("golden-rand.h5"));
    ck_assert_msg(rc == 1 && contains(o, "not an rwkvscope dump"), "%s", o);
    free(o);
    unlink(a); unlink(b);
    free(shorter);
    free(list);
    free(tok);
}
END_TEST

// state save, then --state on dump continues exactly where the saved run stopped.
START_TEST(test_cli_state) {
    char mpath[256];
    snprintf(mpath, sizeof mpath, "%s", test_fixture("rand-L3-C64-V300.pth"));
    const char *st = tmp("cli_state.h5"), *a = tmp("st_a.h5"), *b = tmp("st_b.h5");
    unlink(st);
    char *o;
    int rc = test_cli(&o, "state save %s --bytes 'Once upon a ' -o %s", mpath, st);
    ck_assert_msg(rc == 0, "%s", o);
    free(o);
    ck_assert_int_eq(attr_i64(st, "n_tokens"), 12);
    ck_assert_int_eq(attr_i64(st, "n_embd"), 64);
    rc = test_cli(&o, "state save %s --bytes 'x' -o %s", mpath, st);
    ck_assert_msg(rc != 0 && contains(o, "exists"), "%s", o);
    free(o);
    rc = test_cli(&o, "dump %s --bytes 'time' --state %s --taps 'logits,blocks.*.state_num' --mode seq --force -o %s", mpath, st, a);
    ck_assert_msg(rc == 0, "%s", o);
    free(o);
    rc = test_cli(&o, "dump %s --bytes 'Once upon a time' --taps 'logits,blocks.*.state_num' --positions 12-15 --mode seq --force -o %s", mpath, b);
    ck_assert_msg(rc == 0, "%s", o);
    free(o);
    int nd;
    uint64_t d1[4], d2[4];
    double *x = test_h5_read(a, "/logits", &nd, d1), *y = test_h5_read(b, "/logits", &nd, d2);
    ck_assert(x && y && d1[0] == 4 && d2[0] == 4);
    ck_assert_double_lt(test_max_scaled_err_d(x, y, 4 * 300), TOL);
    free(x); free(y);
    x = test_h5_read(a, "/blocks/2/state_num", &nd, d1);
    y = test_h5_read(b, "/blocks/2/state_num", &nd, d2);
    ck_assert_double_lt(test_max_scaled_err_d(x, y, 4 * 64), TOL);
    free(x); free(y);
    // a state of another model shape is refused, naming the mismatch
    rc = test_cli(&o, "dump %s --bytes 'a' --state %s --taps logits --force -o %s", test_fixture("tiny-rwkv-4v0-660K-FP32.bin"), st, a);
    ck_assert_msg(rc != 0 && contains(o, "n_layer=3") && contains(o, "n_layer=4"), "%s", o);
    free(o);
    rc = test_cli(&o, "state load x");
    ck_assert_int_eq(rc, 2);
    free(o);
}
END_TEST

Suite *dump_suite(void);
Suite *dump_suite(void) {
    Suite *s = suite_create("dump");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_select_taps);
    tcase_add_test(tc, test_select_positions);
    tcase_add_test(tc, test_dump_matches_forward);
    tcase_add_test(tc, test_dump_storage);
    tcase_add_test(tc, test_dump_wide_chunks);
    tcase_add_test(tc, test_dump_writes_from_hook);
    tcase_add_test(tc, test_dump_sequences);
    tcase_add_test(tc, test_killed_index_ahead_of_rows);
    tcase_add_test(tc, test_compare_modes);
    tcase_add_test(tc, test_dump_sequences_driver);
    tcase_add_test(tc, test_compare_scale_free);
    tcase_add_test(tc, test_compare_errors);
    tcase_add_test(tc, test_dump_errors);
    tcase_add_test(tc, test_dump_h5tools);
    tcase_add_test(tc, test_dump_scales);
    tcase_add_test(tc, test_dump_scales_every_dataset);
    tcase_add_test(tc, test_dump_scales_h5ds_layout);
    tcase_add_test(tc, test_state_io);
    suite_add_tcase(s, tc);
    TCase *tg = tcase_create("goldens");
    tcase_set_timeout(tg, 120);
    tcase_add_loop_test(tg, test_golden_seq, 0, 3);
    tcase_add_loop_test(tg, test_golden_par, 0, 3);
    suite_add_tcase(s, tg);
    TCase *tcli = tcase_create("cli");
    tcase_set_timeout(tcli, 300);
    tcase_add_test(tcli, test_cli_dump);
    tcase_add_test(tcli, test_cli_input);
    tcase_add_test(tcli, test_cli_compare);
    tcase_add_test(tcli, test_cli_state);
    suite_add_tcase(s, tcli);
    return s;
}

int main(void) {
    SRunner *sr = srunner_create(dump_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
