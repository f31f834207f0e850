// test_intervene.c: the intervention spec parser (a table of valid and invalid specs with
// their exact parse or message), binding errors, and the causal properties: a full state
// knockout equals a restarted layer state, scale:1 / add:0 are bit-exact no-ops, both modes
// agree, patching every tap recovers the clean run, and simple ops at the logits tap give
// what arithmetic says.
#include "core/inspect/dump.h"
#include "core/inspect/intervene.h"
#include "core/inspect/record.h"
#include "analyses/lens.h"
#include "analyses/patching.h"
#include "analyses/steer.h"
#include "util.h"

#include <check.h>
#include <hdf5.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

// ---- a seeded random model -------------------------------------------------------------

static uint64_t rng_state;
static double urand(void) { // xorshift64*, uniform in [0, 1)
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return (double)((rng_state * 2685821657736338717ull) >> 11) / 9007199254740992.0;
}
static double srand1(void) { return 2 * urand() - 1; }

// Weights in the ranges a trained RWKV-4 has: ln near 1, mixes in [0, 1], decays spread.
static rwkv_model *random_model(rwkv_config cfg, uint64_t seed) {
    rwkv_model *m;
    ck_assert_int_eq(rwkv_model_alloc(&m, cfg), RWKV_OK);
    rng_state = seed * 0x9E3779B97F4A7C15ull + 1;
    for (int i = 0; i < m->table.n; i++) {
        const rwkv_param *p = &m->table.params[i];
        rwkv_real *x = m->block + p->offset;
        int in = p->ndim == 2 ? (int)p->shape[1] : 1;
        for (size_t j = 0; j < p->numel; j++) {
            double v;
            if (strstr(p->name, "ln") && strstr(p->name, "weight")) v = 1 + 0.2 * srand1();
            else if (strstr(p->name, "ln")) v = 0.2 * srand1();
            else if (strstr(p->name, "time_decay")) v = -3 + 4 * urand();
            else if (strstr(p->name, "time_first")) v = srand1();
            else if (strstr(p->name, "time_mix")) v = urand();
            else if (strstr(p->name, "emb")) v = srand1();
            else v = 1.5 * srand1() / sqrt((double)in);
            x[j] = (rwkv_real)v;
        }
    }
    rwkv_model_refresh(m);
    return m;
}

static const rwkv_config CFG = {.n_layer = 3, .n_embd = 16, .n_ffn = 32, .n_vocab = 20};
#define T_SEQ 12

static const int CLEAN[T_SEQ] = {1, 5, 9, 2, 17, 3, 3, 8, 0, 11, 19, 4};
static const int CORRUPT[T_SEQ] = {1, 5, 9, 2, 6, 3, 3, 8, 14, 11, 19, 4};

// Logits (T, V) of a run of tokens with a list of spec strings (NULL-terminated).
static rwkv_real *run_specs(const rwkv_model *m, const int *tokens, int64_t T, const char *const *specs,
                            int seq, int max_T) {
    rwkv_intervene_list *l;
    ck_assert_int_eq(rwkv_intervene_list_alloc(&l, m->cfg), RWKV_OK);
    for (int i = 0; specs && specs[i]; i++) {
        rwkv_intervention iv;
        ck_assert_msg(rwkv_intervene_parse(&iv, specs[i]) == RWKV_OK, "%s", rwkv_error_message());
        ck_assert_msg(rwkv_intervene_bind(&iv, m->cfg, T) == RWKV_OK, "%s", rwkv_error_message());
        ck_assert_int_eq(rwkv_intervene_list_add(l, &iv), RWKV_OK);
    }
    rwkv_state *s;
    rwkv_workspace *ws;
    ck_assert_int_eq(rwkv_state_alloc(&s, m->cfg), RWKV_OK);
    ck_assert_int_eq(rwkv_workspace_alloc(&ws, m->cfg, max_T), RWKV_OK);
    rwkv_real *logits = calloc((size_t)T * m->cfg.n_vocab, sizeof *logits);
    rwkv_status st = rwkv_intervene_forward(m, s, tokens, T, 0, logits, RWKV_LOGITS_ALL, l, ws, seq);
    ck_assert_msg(st == RWKV_OK, "%s", rwkv_error_message());
    rwkv_workspace_free(ws);
    rwkv_state_free(s);
    rwkv_intervene_list_free(l);
    return logits;
}

static double max_abs_diff(const rwkv_real *a, const rwkv_real *b, size_t n) {
    double m = 0;
    for (size_t i = 0; i < n; i++) {
        double e = fabs((double)a[i] - (double)b[i]);
        if (!(e <= m)) m = e;
    }
    return m;
}

// ---- the parser table ------------------------------------------------------------------

// The parse as text: "L<layer> <tap> ch=<ranges> pos=<ranges> <op> [value] [path] [seq]".
static void range_text(char *buf, size_t size, const rwkv_iv_range *r, int n) {
    size_t k = 0;
    buf[0] = 0;
    if (n == 0) snprintf(buf, size, "*");
    for (int i = 0; i < n; i++) {
        char lo[24], hi[24];
        snprintf(lo, sizeof lo, r[i].lo == RWKV_IV_LAST ? "last" : "%lld", (long long)r[i].lo);
        snprintf(hi, sizeof hi, r[i].hi == RWKV_IV_LAST ? "last" : "%lld", (long long)r[i].hi);
        if (r[i].lo == r[i].hi) k += snprintf(buf + k, size - k, "%s%s", i ? "," : "", lo);
        else k += snprintf(buf + k, size - k, "%s%s-%s", i ? "," : "", lo, hi);
    }
}

static void parse_text(char *buf, size_t size, const rwkv_intervention *iv) {
    char ch[256], pos[256];
    range_text(ch, sizeof ch, iv->chan, iv->n_chan);
    range_text(pos, sizeof pos, iv->pos, iv->n_pos);
    int k = snprintf(buf, size, "L%d %s ch=%s pos=%s %s", iv->layer, RWKV_TAP_NAMES[iv->tap], ch, pos,
                     RWKV_IV_OP_NAMES[iv->op]);
    if (iv->op == RWKV_IV_SCALE || iv->op == RWKV_IV_SET || iv->op == RWKV_IV_ADD)
        k += snprintf(buf + k, size - k, " %g", iv->value);
    if (iv->op == RWKV_IV_ADD || iv->op == RWKV_IV_PATCH) k += snprintf(buf + k, size - k, " %s", iv->path);
    if (iv->op == RWKV_IV_PATCH) snprintf(buf + k, size - k, " seq=%d", iv->seq);
}

typedef struct {
    const char *spec;
    int ok;
    const char *expect; // the parse text, or the exact error message
} spec_case;

static const spec_case SPECS[] = {
    {"blocks.3.state_num:0-63@10-20=zero", 1, "L3 state_num ch=0-63 pos=10-20 zero"},
    {"blocks.2.att_gate@*=scale:0.5", 1, "L2 att_gate ch=* pos=* scale 0.5"},
    {"blocks.5.resid_in@last=add:steer.h5:4", 1, "L5 resid_in ch=* pos=last add 4 steer.h5"},
    {"resid_out@0=set:1.5", 1, "L-1 resid_out ch=* pos=0 set 1.5"},
    {"logits:7@last=zero", 1, "L-1 logits ch=7 pos=last zero"},
    {"blocks.0.att_k:1,5,9@3=scale:-2", 1, "L0 att_k ch=1,5,9 pos=3 scale -2"},
    {"blocks.1.state_max@2,4-6,last=set:-1e30", 1, "L1 state_max ch=* pos=2,4-6,last set -1e+30"},
    {"blocks.0.ffn_k:0-3,8@*=zero", 1, "L0 ffn_k ch=0-3,8 pos=* zero"},
    {"blocks.1.att_out@5=patch:clean.h5", 1, "L1 att_out ch=* pos=5 patch clean.h5 seq=0"},
    {"blocks.1.att_out@5=patch:clean.h5:3", 1, "L1 att_out ch=* pos=5 patch clean.h5 seq=3"},
    {"blocks.1.att_out@5=patch:dir:x.h5:2", 1, "L1 att_out ch=* pos=5 patch dir:x.h5 seq=2"},
    {"blocks.0.resid_in@0-last=add:v.h5", 1, "L0 resid_in ch=* pos=0-last add 1 v.h5"},
    {"blocks.0.resid_in@*=add:v.h5:-0.25", 1, "L0 resid_in ch=* pos=* add -0.25 v.h5"},
    {"blocks.12.state_ffn_xprev@1=zero", 1, "L12 state_ffn_xprev ch=* pos=1 zero"},
    {"blocks.0.att_v:*@1=zero", 1, "L0 att_v ch=* pos=1 zero"},
    {"blocks.0.att_wkv@1,*=zero", 1, "L0 att_wkv ch=* pos=* zero"},
    {"blocks.2.att_gate@3x=zero", 0, "position '3x' in 'blocks.2.att_gate@3x=zero': expected N, A-B, last or *"},
    {"blocks.2.att_gate=zero", 0,
     "intervention 'blocks.2.att_gate=zero': expected TAP[:CHANNELS]@POSITIONS=OP (missing '@')"},
    {"blocks.2.att_gate@3", 0, "intervention 'blocks.2.att_gate@3': expected TAP[:CHANNELS]@POSITIONS=OP (missing '=')"},
    {"blocks.x.att_gate@3=zero", 0, "layer 'x' in 'blocks.x.att_gate@3=zero': expected a block index"},
    {"blocks.2.att_gat@3=zero", 0,
     "tap 'att_gat' in 'blocks.2.att_gat@3=zero': unknown (block taps: resid_in .. state_wkv; globals: resid_out, logits)"},
    {"att_gate@3=zero", 0, "tap 'att_gate' in 'att_gate@3=zero': a block tap needs its layer, blocks.N.att_gate"},
    {"blocks.1.logits@3=zero", 0,
     "tap 'blocks.1.logits' in 'blocks.1.logits@3=zero': logits is a global tap, written without blocks.N"},
    {"blocks.2.att_gate:5-2@3=zero", 0, "channel range '5-2' in 'blocks.2.att_gate:5-2@3=zero': the start is after the end"},
    {"blocks.2.att_gate:@3=zero", 0, "empty channel list in 'blocks.2.att_gate:@3=zero'"},
    {"blocks.2.att_gate@=zero", 0, "empty position list in 'blocks.2.att_gate@=zero'"},
    {"blocks.2.att_gate@3=scale", 0,
     "op 'scale' in 'blocks.2.att_gate@3=scale': scale needs an argument (expected zero, scale:a, add:FILE[:alpha], set:VALUE or patch:DUMP[:seq])"},
    {"blocks.2.att_gate@3=scale:abc", 0, "scale value 'abc' in 'blocks.2.att_gate@3=scale:abc': not a finite number"},
    {"blocks.2.att_gate@3=zero:1", 0, "op 'zero:1' in 'blocks.2.att_gate@3=zero:1': zero takes no argument"},
    {"blocks.2.att_gate@3=mul:2", 0,
     "op 'mul:2' in 'blocks.2.att_gate@3=mul:2': expected zero, scale:a, add:FILE[:alpha], set:VALUE or patch:DUMP[:seq]"},
    {"blocks.2.att_gate@3=add:", 0,
     "op 'add:' in 'blocks.2.att_gate@3=add:': add needs an argument (expected zero, scale:a, add:FILE[:alpha], set:VALUE or patch:DUMP[:seq])"},
    {"blocks.2.att_gate@3=add:v.h5:x", 0, "alpha 'x' in 'blocks.2.att_gate@3=add:v.h5:x': not a finite number"},
    {"blocks.2.att_gate@3=patch:d.h5:-1", 0, "sequence '-1' in 'blocks.2.att_gate@3=patch:d.h5:-1': not a sequence index"},
    {"blocks.2.att_gate@last-3=zero", 0, "position range 'last-3' in 'blocks.2.att_gate@last-3=zero': the start is after the end"},
    {"blocks.2.att_gate@1,,2=zero", 0, "position '' in 'blocks.2.att_gate@1,,2=zero': expected N, A-B, last or *"},
    {"blocks.2@3=zero", 0, "tap 'blocks.2' in 'blocks.2@3=zero': expected blocks.N.TAP"},
    {"blocks.2.att_gate@3=set:inf", 0, "set value 'inf' in 'blocks.2.att_gate@3=set:inf': not a finite number"},
    {"blocks.2.att_gate@3=add::2", 0, "op 'add::2' in 'blocks.2.att_gate@3=add::2': add needs a file name"},
    {"blocks.2.att_gate:last@3=zero", 0, "channel 'last' in 'blocks.2.att_gate:last@3=zero': expected N, A-B or *"},
};

START_TEST(test_spec_table) {
    ck_assert_int_ge((int)(sizeof SPECS / sizeof SPECS[0]), 30);
    const spec_case *c = &SPECS[_i];
    rwkv_intervention iv;
    rwkv_error_clear();
    rwkv_status st = rwkv_intervene_parse(&iv, c->spec);
    if (c->ok) {
        ck_assert_msg(st == RWKV_OK, "%s: %s", c->spec, rwkv_error_message());
        char text[512];
        parse_text(text, sizeof text, &iv);
        ck_assert_str_eq(text, c->expect);
    } else {
        ck_assert_int_eq(st, RWKV_ERR_ARG);
        ck_assert_str_eq(rwkv_error_message(), c->expect);
    }
}
END_TEST

// ---- binding errors ----------------------------------------------------------------------

static const char *tmp_path(const char *name) {
    static char buf[4][512];
    static int k;
    k = (k + 1) % 4;
    snprintf(buf[k], sizeof buf[k], "%s/%s", test_tmpdir(), name);
    return buf[k];
}

// Writes /vector [n] of value v into path.
static void write_vector(const char *path, int n, double v) {
    hid_t f = H5Fcreate(path, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    hsize_t d = (hsize_t)n;
    hid_t sp = H5Screate_simple(1, &d, NULL);
    hid_t ds = H5Dcreate2(f, "/vector", H5T_IEEE_F32LE, sp, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    double *x = malloc((size_t)n * sizeof *x);
    for (int i = 0; i < n; i++) x[i] = v * (i + 1);
    H5Dwrite(ds, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, x);
    free(x);
    H5Dclose(ds);
    H5Sclose(sp);
    H5Fclose(f);
}

static void dset_i64(hid_t f, hid_t lcpl, const char *name, const int64_t *v, hsize_t n) {
    hid_t sp = H5Screate_simple(1, &n, NULL);
    hid_t ds = H5Dcreate2(f, name, H5T_STD_I64LE, sp, lcpl, H5P_DEFAULT, H5P_DEFAULT);
    H5Dwrite(ds, H5T_NATIVE_INT64, H5S_ALL, H5S_ALL, H5P_DEFAULT, v);
    H5Dclose(ds);
    H5Sclose(sp);
}

// A dump in the issue-3 layout: /blocks/<l>/<tap> (N, D) rows of sequences at
// /sequences/offsets, model shape as root attributes. rows (T, D) is sequence 0.
static void write_dump(const char *path, rwkv_config cfg, int layer, rwkv_tap tap, const rwkv_real *rows,
                       int64_t T, int D) {
    hid_t f = H5Fcreate(path, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    test_dump_attrs(f, cfg.n_layer, cfg.n_embd, cfg.n_ffn, cfg.n_vocab, RWKV_DUMP_SCHEMA_VERSION, 1);
    hid_t lcpl = H5Pcreate(H5P_LINK_CREATE);
    H5Pset_create_intermediate_group(lcpl, 1);
    char name[128];
    snprintf(name, sizeof name, "/blocks/%d/%s", layer, RWKV_TAP_NAMES[tap]);
    hsize_t d[2] = {(hsize_t)T, (hsize_t)D};
    hid_t sp = H5Screate_simple(2, d, NULL);
    hid_t ds = H5Dcreate2(f, name, RWKV_REAL_BITS == 64 ? H5T_IEEE_F64LE : H5T_IEEE_F32LE, sp, lcpl, H5P_DEFAULT, H5P_DEFAULT);
    H5Dwrite(ds, RWKV_REAL_BITS == 64 ? H5T_NATIVE_DOUBLE : H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, rows);
    H5Dclose(ds);
    H5Sclose(sp);
    int64_t off[2] = {0, T}, *index = calloc((size_t)T, sizeof *index); // every position of one sequence
    for (int64_t t = 0; t < T; t++) index[t] = t;
    dset_i64(f, lcpl, "/sequences/offsets", off, 2);
    dset_i64(f, lcpl, "/sequences/token_offsets", off, 2);
    dset_i64(f, lcpl, "/sequences/positions", index, (hsize_t)T);
    dset_i64(f, lcpl, "/tokens", index, (hsize_t)T); // not read by the patch
    free(index);
    H5Pclose(lcpl);
    H5Fclose(f);
}

static void expect_bind_error(const char *spec, rwkv_config cfg, int64_t T, rwkv_status code, const char *msg) {
    rwkv_intervention iv;
    ck_assert_msg(rwkv_intervene_parse(&iv, spec) == RWKV_OK, "%s", rwkv_error_message());
    rwkv_status st = rwkv_intervene_bind(&iv, cfg, T);
    ck_assert_int_eq(st, code);
    ck_assert_str_eq(rwkv_error_message(), msg);
    ck_assert_ptr_null(iv.pos_mask);
}

// The same for a message that a module below wrote (the dump reader's): it starts with
// the intervention's prefix and contains `part`.
static void expect_bind_error_has(const char *spec, rwkv_config cfg, int64_t T, rwkv_status code, const char *prefix,
                                  const char *part) {
    rwkv_intervention iv;
    ck_assert_msg(rwkv_intervene_parse(&iv, spec) == RWKV_OK, "%s", rwkv_error_message());
    ck_assert_int_eq(rwkv_intervene_bind(&iv, cfg, T), code);
    ck_assert_msg(!strncmp(rwkv_error_message(), prefix, strlen(prefix)) && strstr(rwkv_error_message(), part),
                  "%s: expected '%s' ... '%s'", rwkv_error_message(), prefix, part);
    ck_assert_ptr_null(iv.pos_mask);
}

START_TEST(test_bind_errors) {
    expect_bind_error("blocks.3.att_k@0=zero", CFG, T_SEQ, RWKV_ERR_ARG,
                      "layer 3 in 'blocks.3.att_k@0=zero': out of range, the model has 3 layers");
    expect_bind_error("blocks.0.att_k:0-16@0=zero", CFG, T_SEQ, RWKV_ERR_ARG,
                      "channel 16 in 'blocks.0.att_k:0-16@0=zero': out of range, att_k has 16 channels");
    expect_bind_error("blocks.0.ffn_k:40@0=zero", CFG, T_SEQ, RWKV_ERR_ARG,
                      "channel 40 in 'blocks.0.ffn_k:40@0=zero': out of range, ffn_k has 32 channels");
    expect_bind_error("logits:20@last=zero", CFG, T_SEQ, RWKV_ERR_ARG,
                      "channel 20 in 'logits:20@last=zero': out of range, logits has 20 channels");
    expect_bind_error("blocks.0.att_k@3,12=zero", CFG, T_SEQ, RWKV_ERR_ARG,
                      "position 12 in 'blocks.0.att_k@3,12=zero': out of range, the sequence has 12 tokens");
    // A range to `last` that starts past the end (found by a fuzzer: a negative memset size).
    expect_bind_error("blocks.0.att_out@90-last=zero", CFG, T_SEQ, RWKV_ERR_ARG,
                      "position 90 in 'blocks.0.att_out@90-last=zero': out of range, the sequence has 12 tokens");
    expect_bind_error("blocks.0.att_out@12-last=zero", CFG, T_SEQ, RWKV_ERR_ARG,
                      "position 12 in 'blocks.0.att_out@12-last=zero': out of range, the sequence has 12 tokens");
    const char *v15 = tmp_path("v15.h5");
    write_vector(v15, 15, 1);
    char spec[1024], msg[2048];
    snprintf(spec, sizeof spec, "blocks.0.resid_in@*=add:%s:2", v15);
    snprintf(msg, sizeof msg, "vector file '%s' in '%s': /vector has 1 dimension(s) of which the first is 15, resid_in needs [16]", v15, spec);
    expect_bind_error(spec, CFG, T_SEQ, RWKV_ERR_SHAPE, msg);
    snprintf(spec, sizeof spec, "blocks.0.resid_in@*=add:%s/none.h5", test_tmpdir());
    snprintf(msg, sizeof msg, "vector file '%s/none.h5' in '%s': cannot open as HDF5", test_tmpdir(), spec);
    expect_bind_error(spec, CFG, T_SEQ, RWKV_ERR_IO, msg);
    // A patch source recorded with another model or another sequence length.
    rwkv_real rows[T_SEQ * 16] = {0};
    rwkv_config other = CFG;
    other.n_embd = 8;
    const char *d_shape = tmp_path("dump_shape.h5"), *d_len = tmp_path("dump_len.h5");
    write_dump(d_shape, other, 1, RWKV_TAP_ATT_K, rows, T_SEQ, 8);
    snprintf(spec, sizeof spec, "blocks.1.att_k@4=patch:%s", d_shape);
    snprintf(msg, sizeof msg, "patch source '%s' in '%s': recorded with n_embd = 8, this model has 16", d_shape, spec);
    expect_bind_error(spec, CFG, T_SEQ, RWKV_ERR_SHAPE, msg);
    write_dump(d_len, CFG, 1, RWKV_TAP_ATT_K, rows, T_SEQ - 2, 16);
    snprintf(spec, sizeof spec, "blocks.1.att_k@4=patch:%s", d_len);
    snprintf(msg, sizeof msg, "patch source '%s' in '%s': sequence 0 has 10 positions, this run has 12", d_len, spec);
    expect_bind_error(spec, CFG, T_SEQ, RWKV_ERR_SHAPE, msg);
    snprintf(spec, sizeof spec, "blocks.1.att_v@4=patch:%s", d_len);
    snprintf(msg, sizeof msg, "patch source '%s' in '%s': no dataset /blocks/1/att_v (dump that tap)", d_len, spec);
    expect_bind_error(spec, CFG, T_SEQ, RWKV_ERR_FORMAT, msg);
    snprintf(spec, sizeof spec, "blocks.1.att_k@4=patch:%s:1", d_len);
    snprintf(msg, sizeof msg, "patch source '%s' in '%s': sequence 1 requested, the dump holds 1", d_len, spec);
    expect_bind_error(spec, CFG, T_SEQ, RWKV_ERR_ARG, msg);
    // A truncated file is not HDF5.
    const char *bad = tmp_path("bad.h5");
    FILE *f = fopen(bad, "wb");
    fputs("\x89HDF\r\n", f);
    fclose(f);
    snprintf(spec, sizeof spec, "blocks.1.att_k@4=patch:%s", bad);
    snprintf(msg, sizeof msg, "patch source '%s' in '%s': %s: ", bad, spec, bad);
    expect_bind_error_has(spec, CFG, T_SEQ, RWKV_ERR_FORMAT, msg, "HDF5");
}
END_TEST

// ---- causal properties -------------------------------------------------------------------

// Zeroing all five state vectors of layer l at position p equals running to p, resetting that
// layer's state (max = -1e30, the rest 0) and continuing; in both modes.
START_TEST(test_knockout_is_restart) {
    rwkv_model *m = random_model(CFG, 1);
    const int V = CFG.n_vocab, l = 1, p = 5;
    char specs[5][64];
    const char *list[6] = {0};
    for (int v = 0; v < 5; v++) {
        snprintf(specs[v], sizeof specs[v], "blocks.%d.%s@%d=zero", l, RWKV_TAP_NAMES[RWKV_TAP_STATE_ATT_XPREV + v], p);
        list[v] = specs[v];
    }
    for (int seq = 0; seq <= 1; seq++) {
        rwkv_real *iv = run_specs(m, CLEAN, T_SEQ, list, seq, 64);
        // The manual run: two calls with the layer's state reset in between.
        rwkv_state *s;
        rwkv_workspace *ws;
        rwkv_state_alloc(&s, CFG);
        rwkv_workspace_alloc(&ws, CFG, 64);
        rwkv_real *ref = calloc((size_t)T_SEQ * V, sizeof *ref);
        rwkv_status (*fwd)(const rwkv_model *, rwkv_state *, const int *, int64_t, rwkv_real *, rwkv_logits_mode,
                           rwkv_hook *, rwkv_workspace *) = seq ? rwkv_forward_seq : rwkv_forward_par;
        ck_assert_int_eq(fwd(m, s, CLEAN, p + 1, ref, RWKV_LOGITS_ALL, NULL, ws), RWKV_OK);
        for (int v = 0; v < RWKV_STATE_NVEC; v++)
            for (int c = 0; c < CFG.n_embd; c++)
                rwkv_state_vec(s, v)[l * CFG.n_embd + c] = v == 3 ? (rwkv_real)RWKV_MAX_INIT : 0;
        ck_assert_int_eq(fwd(m, s, CLEAN + p + 1, T_SEQ - p - 1, ref + (size_t)(p + 1) * V, RWKV_LOGITS_ALL, NULL, ws), RWKV_OK);
        // Exact in sequential mode. The parallel run keeps one chunk and the scan's state in
        // double across p; the reference, two calls, rounds every layer's state to float at p.
        ck_assert_msg(seq ? memcmp(iv, ref, (size_t)T_SEQ * V * sizeof *ref) == 0
                          : max_abs_diff(iv, ref, (size_t)T_SEQ * V) <= 1e-5,
                      "mode %d: knockout != restart (max diff %g)", seq, max_abs_diff(iv, ref, (size_t)T_SEQ * V));
        // And the knockout did change the later logits.
        rwkv_real *plain = run_specs(m, CLEAN, T_SEQ, NULL, seq, 64);
        ck_assert(max_abs_diff(iv + (size_t)(p + 1) * V, plain + (size_t)(p + 1) * V, (size_t)(T_SEQ - p - 1) * V) > 1e-3);
        // Earlier ones did not change, exactly in both modes (no rechunking in parallel mode).
        ck_assert(memcmp(iv, plain, (size_t)(p + 1) * V * sizeof *iv) == 0);
        free(plain);
        free(ref);
        free(iv);
        rwkv_workspace_free(ws);
        rwkv_state_free(s);
    }
    rwkv_model_free(m);
}
END_TEST

// Every tap the model's version has, per layer, then the globals: names and widths.
static int every_tap(char names[][32], int *layer, rwkv_tap *tap, rwkv_config cfg) {
    int n = 0;
    for (int l = 0; l <= cfg.n_layer; l++)
        for (int t = l < cfg.n_layer ? 0 : RWKV_TAP_N_BLOCK; t < (l < cfg.n_layer ? RWKV_TAP_N_BLOCK : RWKV_TAP_N); t++) {
            if (!rwkv_tap_width((rwkv_tap)t, cfg)) continue; // RWKV-5/7 taps
            if (l < cfg.n_layer) snprintf(names[n], 32, "blocks.%d.%s", l, RWKV_TAP_NAMES[t]);
            else snprintf(names[n], 32, "%s", RWKV_TAP_NAMES[t]);
            layer[n] = l;
            tap[n++] = (rwkv_tap)t;
        }
    return n;
}

// Parses, binds (to src for an in-memory patch) and adds one spec.
static void add_spec(rwkv_intervene_list *l, const char *spec, rwkv_real *src) {
    rwkv_intervention iv;
    ck_assert_msg(rwkv_intervene_parse(&iv, spec) == RWKV_OK, "%s", rwkv_error_message());
    rwkv_status st = src ? rwkv_intervene_bind_src(&iv, l->cfg, T_SEQ, src) : rwkv_intervene_bind(&iv, l->cfg, T_SEQ);
    ck_assert_msg(st == RWKV_OK, "%s", rwkv_error_message());
    ck_assert_int_eq(rwkv_intervene_list_add(l, &iv), RWKV_OK);
}

// A run of CLEAN through the list, with a recorder of every tap chained behind it (it sees
// the values the model used); logits (T, V).
static rwkv_record *record_through(const rwkv_model *m, rwkv_intervene_list *l, int seq, int max_T, rwkv_real *logits) {
    uint32_t mask[8];
    for (int i = 0; i < m->cfg.n_layer; i++) mask[i] = (1u << RWKV_TAP_N_BLOCK) - 1;
    mask[m->cfg.n_layer] = 1u << RWKV_TAP_RESID_OUT | 1u << RWKV_TAP_LOGITS;
    rwkv_record *r;
    rwkv_state *s;
    rwkv_workspace *ws;
    ck_assert_int_eq(rwkv_record_alloc(&r, m->cfg, T_SEQ, mask), RWKV_OK);
    ck_assert_int_eq(rwkv_state_alloc(&s, m->cfg), RWKV_OK);
    ck_assert_int_eq(rwkv_workspace_alloc(&ws, m->cfg, max_T), RWKV_OK);
    rwkv_intervene_list_chain(l, &r->hook);
    rwkv_status st = rwkv_intervene_forward(m, s, CLEAN, T_SEQ, 0, logits, RWKV_LOGITS_ALL, l, ws, seq);
    ck_assert_msg(st == RWKV_OK, "%s", rwkv_error_message());
    rwkv_intervene_list_chain(l, NULL);
    rwkv_workspace_free(ws);
    rwkv_state_free(s);
    return r;
}

// The first tap whose recorded rows differ in any bit, or NULL.
static const char *first_diff_tap(const rwkv_record *a, const rwkv_record *b, char names[][32], const int *layer,
                                  const rwkv_tap *tap, int n) {
    for (int i = 0; i < n; i++) {
        size_t bytes = (size_t)T_SEQ * rwkv_tap_width(tap[i], a->cfg) * sizeof(rwkv_real);
        if (memcmp(rwkv_record_rows(a, layer[i], tap[i]), rwkv_record_rows(b, layer[i], tap[i]), bytes)) return names[i];
    }
    return NULL;
}

// scale:1, add of a zero vector, add with alpha 0 and a patch of the run into itself change
// no bit of the logits or of any tap: each op at each tap (every tap name, every layer) at
// every position, and each op at all taps at once; in sequential mode, in one parallel chunk
// and in parallel chunks of 5 (the patch source is the plain run of the same mode and chunks).
START_TEST(test_noop_bit_exact) {
    rwkv_model *m = random_model(CFG, 2);
    const size_t n = (size_t)T_SEQ * CFG.n_vocab;
    static char names[64][32];
    int layer[64];
    rwkv_tap tap[64];
    const int n_taps = every_tap(names, layer, tap, CFG);
    ck_assert_int_eq(n_taps, CFG.n_layer * 17 + 2);
    // Vectors of each width (C, F, V): zeros, and 1..D for alpha 0.
    const int widths[3] = {CFG.n_embd, CFG.n_ffn, CFG.n_vocab};
    char zero_vec[3][600], one_vec[3][600];
    for (int w = 0; w < 3; w++) {
        char name[32];
        snprintf(name, sizeof name, "zero%d.h5", widths[w]);
        snprintf(zero_vec[w], sizeof zero_vec[w], "%s", tmp_path(name));
        snprintf(name, sizeof name, "one%d.h5", widths[w]);
        snprintf(one_vec[w], sizeof one_vec[w], "%s", tmp_path(name));
        write_vector(zero_vec[w], widths[w], 0);
        write_vector(one_vec[w], widths[w], 1);
    }
    const int configs[3][2] = {{1, 64}, {0, 64}, {0, 5}}; // (seq, max_T)
    const char *ops[4] = {"scale:1", "add:zero", "add:one:0", "patch"};
    rwkv_real *base_logits = calloc(n, sizeof *base_logits), *logits = calloc(n, sizeof *logits);
    for (int k = 0; k < 3; k++) {
        const int seq = configs[k][0], max_T = configs[k][1];
        rwkv_intervene_list *l;
        ck_assert_int_eq(rwkv_intervene_list_alloc(&l, CFG), RWKV_OK);
        rwkv_record *base = record_through(m, l, seq, max_T, base_logits);
        for (int op = 0; op < 4; op++)
            for (int i = 0; i <= n_taps; i++) { // i == n_taps: every tap at once
                for (int j = i == n_taps ? 0 : i; j < (i == n_taps ? n_taps : i + 1); j++) {
                    int w = tap[j] == RWKV_TAP_FFN_K ? 1 : tap[j] == RWKV_TAP_LOGITS ? 2 : 0;
                    char spec[800];
                    if (op == 0) snprintf(spec, sizeof spec, "%s@*=scale:1", names[j]);
                    if (op == 1) snprintf(spec, sizeof spec, "%s@*=add:%s", names[j], zero_vec[w]);
                    if (op == 2) snprintf(spec, sizeof spec, "%s@*=add:%s:0", names[j], one_vec[w]);
                    if (op == 3) snprintf(spec, sizeof spec, "%s@*=patch:memory", names[j]);
                    add_spec(l, spec, op == 3 ? rwkv_record_rows(base, layer[j], tap[j]) : NULL);
                }
                rwkv_record *got = record_through(m, l, seq, max_T, logits);
                const char *what = i == n_taps ? "every tap" : names[i];
                ck_assert_msg(memcmp(logits, base_logits, n * sizeof *logits) == 0,
                              "%s at %s, mode %d, chunks of %d: logits moved by %g", ops[op], what, seq, max_T,
                              max_abs_diff(logits, base_logits, n));
                const char *bad = first_diff_tap(got, base, names, layer, tap, n_taps);
                ck_assert_msg(!bad, "%s at %s, mode %d, chunks of %d: tap %s moved", ops[op], what, seq, max_T, bad);
                rwkv_record_free(got);
                rwkv_intervene_list_clear(l);
            }
        rwkv_record_free(base);
        rwkv_intervene_list_free(l);
    }
    free(base_logits);
    free(logits);
    rwkv_model_free(m);
}
END_TEST

// A state intervention at p is an edit of the state carried from p into p + 1: the same as
// running token by token and editing the state vector between the calls, exactly in
// sequential mode and within the modes' tolerance in parallel mode (one chunk, chunks of 4).
typedef struct {
    const char *spec;
    int layer, vec, c0, c1; // state vector (0 att_xprev, 1 num, 2 den, 3 max, 4 ffn_xprev), channels
    int pos[3], n_pos;
    double scale, set;      // the op by hand: x * scale, or set when scale is 0
} state_edit;

static const state_edit EDITS[] = {
    {"blocks.1.state_num:0-7@3,8=scale:-2", 1, 1, 0, 7, {3, 8}, 2, -2, 0},
    {"blocks.0.state_den@5=set:0.25", 0, 2, 0, 15, {5}, 1, 0, 0.25},
    {"blocks.2.state_max:4-9@2=zero", 2, 3, 4, 9, {2}, 1, 0, RWKV_MAX_INIT},
    {"blocks.1.state_att_xprev:3@6=set:1.5", 1, 0, 3, 3, {6}, 1, 0, 1.5},
    {"blocks.0.state_ffn_xprev@4-5=zero", 0, 4, 0, 15, {4, 5}, 2, 0, 0},
};
#define N_EDITS (int)(sizeof EDITS / sizeof EDITS[0])

START_TEST(test_state_edits_by_hand) {
    rwkv_model *m = random_model(CFG, 13);
    const int V = CFG.n_vocab, C = CFG.n_embd;
    const size_t n = (size_t)T_SEQ * V;
    const char *one[2] = {EDITS[_i].spec, NULL};
    const char *all[N_EDITS + 1] = {0};
    for (int e = 0; e < N_EDITS; e++) all[e] = EDITS[e].spec;
    for (int both = 0; both <= 1; both++) { // this edit alone, then all of them
        rwkv_state *s;
        rwkv_workspace *ws;
        rwkv_state_alloc(&s, CFG);
        rwkv_workspace_alloc(&ws, CFG, 1);
        rwkv_real *ref = calloc(n, sizeof *ref);
        for (int t = 0; t < T_SEQ; t++) {
            ck_assert_int_eq(rwkv_forward_seq(m, s, CLEAN + t, 1, ref + (size_t)t * V, RWKV_LOGITS_ALL, NULL, ws), RWKV_OK);
            for (int e = both ? 0 : _i; e < (both ? N_EDITS : _i + 1); e++) {
                const state_edit *d = &EDITS[e];
                for (int k = 0; k < d->n_pos; k++) {
                    if (d->pos[k] != t) continue;
                    rwkv_real *x = rwkv_state_vec(s, d->vec) + (size_t)d->layer * C;
                    for (int c = d->c0; c <= d->c1; c++) x[c] = d->scale ? (rwkv_real)(x[c] * d->scale) : (rwkv_real)d->set;
                }
            }
        }
        const char *const *specs = both ? all : one;
        rwkv_real *seq = run_specs(m, CLEAN, T_SEQ, specs, 1, 64), *par = run_specs(m, CLEAN, T_SEQ, specs, 0, 64);
        rwkv_real *par4 = run_specs(m, CLEAN, T_SEQ, specs, 0, 4), *plain = run_specs(m, CLEAN, T_SEQ, NULL, 1, 64);
        ck_assert_msg(memcmp(seq, ref, n * sizeof *ref) == 0, "%s: sequential differs from the edit by hand by %g",
                      specs[0], max_abs_diff(seq, ref, n));
        ck_assert_double_lt(max_abs_diff(par, ref, n), 1e-4);
        ck_assert_double_lt(max_abs_diff(par4, ref, n), 1e-4);
        ck_assert_double_gt(max_abs_diff(plain, ref, n), 1e-3); // the edit did something
        free(seq), free(par), free(par4), free(plain), free(ref);
        rwkv_workspace_free(ws);
        rwkv_state_free(s);
    }
    rwkv_model_free(m);
}
END_TEST

// Interventions of every kind give the same logits in both modes.
START_TEST(test_modes_agree) {
    rwkv_model *m = random_model(CFG, 3);
    const char *v = tmp_path("v16.h5");
    write_vector(v, 16, 0.05);
    char add[1100];
    snprintf(add, sizeof add, "blocks.2.resid_in@2-8=add:%s:1.5", v);
    const char *specs[] = {"blocks.0.state_num:0-7@3=zero", "blocks.1.state_den@4,9=scale:0.5",
                           "blocks.2.state_max:3@6=set:2", "blocks.0.state_att_xprev@7=zero",
                           "blocks.1.state_ffn_xprev:1-4@2-3=scale:-1", "blocks.1.att_gate@*=scale:0.5",
                           "blocks.0.att_k:0-3@5-last=set:1", "blocks.2.ffn_k:1,5,9@last=zero", add, NULL};
    rwkv_real *par = run_specs(m, CLEAN, T_SEQ, specs, 0, 64);
    rwkv_real *par4 = run_specs(m, CLEAN, T_SEQ, specs, 0, 4); // chunks of 4 as well
    rwkv_real *seq = run_specs(m, CLEAN, T_SEQ, specs, 1, 64);
    rwkv_real *plain = run_specs(m, CLEAN, T_SEQ, NULL, 1, 64);
    const size_t n = (size_t)T_SEQ * CFG.n_vocab;
    ck_assert_double_lt(max_abs_diff(par, seq, n), 1e-4);
    ck_assert_double_lt(max_abs_diff(par4, seq, n), 1e-4);
    ck_assert_double_gt(max_abs_diff(plain, seq, n), 1e-2); // the interventions did something
    free(par);
    free(par4);
    free(seq);
    free(plain);
    rwkv_model_free(m);
}
END_TEST

// A real op at each tap (every tap name, every layer) alone: both modes agree within the same
// tolerance, in one chunk and in chunks of 4, and the op changes the logits.
START_TEST(test_modes_agree_every_tap) {
    rwkv_model *m = random_model(CFG, 14);
    static char names[64][32];
    int layer[64];
    rwkv_tap tap[64];
    const int n_taps = every_tap(names, layer, tap, CFG);
    const size_t n = (size_t)T_SEQ * CFG.n_vocab;
    rwkv_real *plain = run_specs(m, CLEAN, T_SEQ, NULL, 1, 64);
    for (int i = 0; i < n_taps; i++) {
        char spec[96];
        snprintf(spec, sizeof spec, "%.31s:0-5,9@3-7,10=scale:0.5", names[i]);
        const char *specs[] = {spec, NULL};
        rwkv_real *seq = run_specs(m, CLEAN, T_SEQ, specs, 1, 64);
        rwkv_real *par = run_specs(m, CLEAN, T_SEQ, specs, 0, 64), *par4 = run_specs(m, CLEAN, T_SEQ, specs, 0, 4);
        ck_assert_msg(max_abs_diff(par, seq, n) < 1e-4, "%s: modes differ by %g", spec, max_abs_diff(par, seq, n));
        ck_assert_msg(max_abs_diff(par4, seq, n) < 1e-4, "%s: chunks of 4 differ by %g", spec, max_abs_diff(par4, seq, n));
        ck_assert_msg(max_abs_diff(plain, seq, n) > 1e-4, "%s: changed nothing (%g)", spec, max_abs_diff(plain, seq, n));
        free(seq), free(par), free(par4);
    }
    free(plain);
    rwkv_model_free(m);
}
END_TEST

// A raw hook that changes a WKV state in the middle of a parallel chunk without saying so
// (scan_cut) changes nothing downstream: only the last row is carried. With scan_cut the
// scan stops there and the change takes effect, as in sequential mode. Guards the stop
// against becoming dead code.
static rwkv_status zero_num_at_3(void *ctx, int layer, rwkv_tap tap, int64_t pos, int n, int D, rwkv_real *data) {
    (void)ctx, (void)layer, (void)tap;
    for (int r = 0; r < n; r++)
        if (pos + r == 3) memset(data + (size_t)r * D, 0, (size_t)D * sizeof *data);
    return RWKV_OK;
}

static int cut_at_3(void *ctx, int layer, int64_t pos) {
    (void)ctx;
    return layer == 0 && pos == 3;
}

START_TEST(test_scan_cut_needed) {
    rwkv_model *m = random_model(CFG, 4);
    uint32_t mask[4] = {1u << RWKV_TAP_STATE_NUM, 0, 0, 0};
    rwkv_hook h = {.mask = mask, .fn = zero_num_at_3, .ctx = NULL, .pos = 0};
    rwkv_state *s;
    rwkv_workspace *ws;
    rwkv_state_alloc(&s, CFG);
    rwkv_workspace_alloc(&ws, CFG, 64);
    const size_t n = (size_t)T_SEQ * CFG.n_vocab;
    rwkv_real *raw = calloc(n, sizeof *raw), *cut = calloc(n, sizeof *cut);
    rwkv_forward_par(m, s, CLEAN, T_SEQ, raw, RWKV_LOGITS_ALL, &h, ws);
    rwkv_state_reset(s);
    h.scan_cut = cut_at_3;
    rwkv_forward_par(m, s, CLEAN, T_SEQ, cut, RWKV_LOGITS_ALL, &h, ws);
    const char *spec[] = {"blocks.0.state_num@3=zero", NULL};
    rwkv_real *seq = run_specs(m, CLEAN, T_SEQ, spec, 1, 64);
    rwkv_real *plain = run_specs(m, CLEAN, T_SEQ, NULL, 0, 64);
    ck_assert_double_gt(max_abs_diff(raw, seq, n), 1e-3);
    ck_assert(memcmp(raw, plain, n * sizeof *raw) == 0);
    ck_assert_double_lt(max_abs_diff(cut, seq, n), 1e-4);
    free(raw), free(cut), free(seq), free(plain);
    rwkv_workspace_free(ws);
    rwkv_state_free(s);
    rwkv_model_free(m);
}
END_TEST

// Records every tap of a run of tokens; returns the recorder and (T, V) logits.
static rwkv_record *record_all(const rwkv_model *m, const int *tokens, int seq, rwkv_real *logits) {
    uint32_t mask[8];
    for (int l = 0; l < m->cfg.n_layer; l++) mask[l] = (1u << RWKV_TAP_N_BLOCK) - 1;
    mask[m->cfg.n_layer] = 1u << RWKV_TAP_RESID_OUT | 1u << RWKV_TAP_LOGITS;
    rwkv_record *r;
    ck_assert_int_eq(rwkv_record_alloc(&r, m->cfg, T_SEQ, mask), RWKV_OK);
    rwkv_state *s;
    rwkv_workspace *ws;
    rwkv_state_alloc(&s, m->cfg);
    rwkv_workspace_alloc(&ws, m->cfg, 64);
    rwkv_status st = (seq ? rwkv_forward_seq : rwkv_forward_par)(m, s, tokens, T_SEQ, logits, RWKV_LOGITS_ALL, &r->hook, ws);
    ck_assert_int_eq(st, RWKV_OK);
    rwkv_workspace_free(ws);
    rwkv_state_free(s);
    return r;
}

// Patching every block tap of every layer at every position from the clean run into the
// corrupt one gives the clean logits exactly (globals not patched: the head recomputes them).
START_TEST(test_patch_all_recovers_clean) {
    rwkv_model *m = random_model(CFG, 5);
    const int V = CFG.n_vocab;
    const size_t n = (size_t)T_SEQ * V;
    for (int seq = 0; seq <= 1; seq++) {
        rwkv_real *clean = calloc(n, sizeof *clean), *patched = calloc(n, sizeof *patched);
        rwkv_record *rec = record_all(m, CLEAN, seq, clean);
        rwkv_intervene_list *l;
        rwkv_intervene_list_alloc(&l, CFG);
        for (int layer = 0; layer < CFG.n_layer; layer++)
            for (int t = 0; t < RWKV_TAP_N_BLOCK; t++) {
                if (!rwkv_tap_width(t, CFG)) continue; // RWKV-7 taps
                rwkv_intervention iv;
                char spec[64];
                snprintf(spec, sizeof spec, "blocks.%d.%s@*=patch:memory", layer, RWKV_TAP_NAMES[t]);
                ck_assert_int_eq(rwkv_intervene_parse(&iv, spec), RWKV_OK);
                ck_assert_int_eq(rwkv_intervene_bind_src(&iv, CFG, T_SEQ, rwkv_record_rows(rec, layer, t)), RWKV_OK);
                ck_assert_int_eq(rwkv_intervene_list_add(l, &iv), RWKV_OK);
            }
        // A recorder behind the list sees the final residual the head reads.
        uint32_t mask[4] = {0, 0, 0, 1u << RWKV_TAP_RESID_OUT};
        rwkv_record *out;
        rwkv_record_alloc(&out, CFG, T_SEQ, mask);
        rwkv_intervene_list_chain(l, &out->hook);
        rwkv_state *s;
        rwkv_workspace *ws;
        rwkv_state_alloc(&s, CFG);
        rwkv_workspace_alloc(&ws, CFG, 64);
        ck_assert_int_eq(rwkv_intervene_forward(m, s, CORRUPT, T_SEQ, 0, patched, RWKV_LOGITS_ALL, l, ws, seq), RWKV_OK);
        // The residual the head reads and the logits are the clean ones bit for bit, in both
        // modes (the parallel run keeps its chunk: the state patches stop only the scan).
        const size_t nc = (size_t)T_SEQ * CFG.n_embd;
        ck_assert(memcmp(rwkv_record_rows(out, CFG.n_layer, RWKV_TAP_RESID_OUT),
                         rwkv_record_rows(rec, CFG.n_layer, RWKV_TAP_RESID_OUT), nc * sizeof(rwkv_real)) == 0);
        ck_assert_msg(memcmp(patched, clean, n * sizeof *clean) == 0, "mode %d: logits differ by %g", seq,
                      max_abs_diff(patched, clean, n));
        rwkv_record_free(out);
        // Without the patch the corrupt run differs.
        rwkv_real *corrupt = run_specs(m, CORRUPT, T_SEQ, NULL, seq, 64);
        ck_assert_double_gt(max_abs_diff(corrupt + n - V, clean + n - V, (size_t)V), 1e-3);
        free(corrupt);
        rwkv_workspace_free(ws);
        rwkv_state_free(s);
        rwkv_intervene_list_free(l);
        rwkv_record_free(rec);
        free(clean);
        free(patched);
    }
    rwkv_model_free(m);
}
END_TEST

// A patch read from a dump file equals the same patch from memory; a chained recorder sees
// the patched values.
START_TEST(test_patch_from_dump) {
    rwkv_model *m = random_model(CFG, 6);
    const size_t n = (size_t)T_SEQ * CFG.n_vocab;
    rwkv_real *clean = calloc(n, sizeof *clean);
    rwkv_record *rec = record_all(m, CLEAN, 0, clean);
    const char *dump = tmp_path("clean_dump.h5");
    write_dump(dump, CFG, 1, RWKV_TAP_STATE_NUM, rwkv_record_rows(rec, 1, RWKV_TAP_STATE_NUM), T_SEQ, 16);
    char spec[1100];
    snprintf(spec, sizeof spec, "blocks.1.state_num:2-9@4=patch:%s", dump);
    const char *list[] = {spec, NULL};
    rwkv_real *from_file = run_specs(m, CORRUPT, T_SEQ, list, 0, 64);
    // The same from memory, with a recorder chained behind the list.
    rwkv_intervene_list *l;
    rwkv_intervene_list_alloc(&l, CFG);
    rwkv_intervention iv;
    rwkv_intervene_parse(&iv, "blocks.1.state_num:2-9@4=patch:memory");
    ck_assert_int_eq(rwkv_intervene_bind_src(&iv, CFG, T_SEQ, rwkv_record_rows(rec, 1, RWKV_TAP_STATE_NUM)), RWKV_OK);
    rwkv_intervene_list_add(l, &iv);
    uint32_t mask[4] = {0, 1u << RWKV_TAP_STATE_NUM, 0, 0};
    rwkv_record *seen;
    rwkv_record_alloc(&seen, CFG, T_SEQ, mask);
    rwkv_intervene_list_chain(l, &seen->hook);
    rwkv_state *s;
    rwkv_workspace *ws;
    rwkv_state_alloc(&s, CFG);
    rwkv_workspace_alloc(&ws, CFG, 64);
    rwkv_real *from_mem = calloc(n, sizeof *from_mem);
    ck_assert_int_eq(rwkv_intervene_forward(m, s, CORRUPT, T_SEQ, 0, from_mem, RWKV_LOGITS_ALL, l, ws, 0), RWKV_OK);
    ck_assert(memcmp(from_file, from_mem, n * sizeof *from_mem) == 0);
    const rwkv_real *src = rwkv_record_rows(rec, 1, RWKV_TAP_STATE_NUM), *got = rwkv_record_rows(seen, 1, RWKV_TAP_STATE_NUM);
    for (int c = 0; c < 16; c++)
        if (c >= 2 && c <= 9) ck_assert(got[4 * 16 + c] == src[4 * 16 + c]);
    ck_assert(memcmp(got + 4 * 16, src + 4 * 16, 16 * sizeof *got) != 0); // channels outside 2-9 kept
    free(from_file);
    free(from_mem);
    free(clean);
    rwkv_workspace_free(ws);
    rwkv_state_free(s);
    rwkv_intervene_list_free(l);
    rwkv_record_free(seen);
    rwkv_record_free(rec);
    rwkv_model_free(m);
}
END_TEST


// A dump in the full schema of docs/dump-format.md holding only the rows of `positions`
// (n of them) of one sequence of T tokens: /sequences/{offsets,token_offsets,positions},
// schema_version and complete attributes.
static void write_dump_v1(const char *path, int layer, rwkv_tap tap, const rwkv_real *all_rows, int D,
                          const int64_t *positions, int n, int64_t T, int64_t version, int64_t complete) {
    hid_t f = H5Fcreate(path, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    test_dump_attrs(f, CFG.n_layer, CFG.n_embd, CFG.n_ffn, CFG.n_vocab, version, complete);
    hid_t lcpl = H5Pcreate(H5P_LINK_CREATE);
    H5Pset_create_intermediate_group(lcpl, 1);
    char name[128];
    snprintf(name, sizeof name, "/blocks/%d/%s", layer, RWKV_TAP_NAMES[tap]);
    hsize_t d[2] = {(hsize_t)n, (hsize_t)D};
    rwkv_real *rows = calloc((size_t)n * D, sizeof *rows);
    for (int i = 0; i < n; i++) memcpy(rows + (size_t)i * D, all_rows + (size_t)positions[i] * D, (size_t)D * sizeof *rows);
    hid_t sp = H5Screate_simple(2, d, NULL);
    hid_t ds = H5Dcreate2(f, name, RWKV_REAL_BITS == 64 ? H5T_IEEE_F64LE : H5T_IEEE_F32LE, sp, lcpl, H5P_DEFAULT, H5P_DEFAULT);
    H5Dwrite(ds, RWKV_REAL_BITS == 64 ? H5T_NATIVE_DOUBLE : H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, rows);
    H5Dclose(ds);
    H5Sclose(sp);
    free(rows);
    int64_t off[2] = {0, n}, toff[2] = {0, T};
    dset_i64(f, lcpl, "/sequences/offsets", off, 2);
    dset_i64(f, lcpl, "/sequences/token_offsets", toff, 2);
    dset_i64(f, lcpl, "/sequences/positions", positions, (hsize_t)n);
    int64_t *tokens = calloc((size_t)T, sizeof *tokens); // not read by the patch
    dset_i64(f, lcpl, "/tokens", tokens, (hsize_t)T);
    free(tokens);
    H5Pclose(lcpl);
    H5Fclose(f);
}

// The reader follows the dump schema: selected positions only, token_offsets for the length,
// incomplete or newer dumps refused.
START_TEST(test_patch_dump_schema) {
    rwkv_model *m = random_model(CFG, 11);
    rwkv_real *clean = calloc((size_t)T_SEQ * CFG.n_vocab, sizeof *clean);
    rwkv_record *rec = record_all(m, CLEAN, 0, clean);
    const rwkv_real *src = rwkv_record_rows(rec, 2, RWKV_TAP_ATT_V);
    const int64_t positions[2] = {4, 7};
    const char *ok = tmp_path("sel.h5"), *part = tmp_path("part.h5"), *newer = tmp_path("newer.h5");
    const char *shorter = tmp_path("short.h5");
    write_dump_v1(ok, 2, RWKV_TAP_ATT_V, src, 16, positions, 2, T_SEQ, 1, 1);
    write_dump_v1(part, 2, RWKV_TAP_ATT_V, src, 16, positions, 2, T_SEQ, 1, 0);
    write_dump_v1(newer, 2, RWKV_TAP_ATT_V, src, 16, positions, 2, T_SEQ, 3, 1);
    write_dump_v1(shorter, 2, RWKV_TAP_ATT_V, src, 16, positions, 2, T_SEQ - 1, 1, 1);
    char spec[1100], msg[2400];
    snprintf(spec, sizeof spec, "blocks.2.att_v@4,7=patch:%s", ok);
    rwkv_intervention iv;
    ck_assert_int_eq(rwkv_intervene_parse(&iv, spec), RWKV_OK);
    ck_assert_msg(rwkv_intervene_bind(&iv, CFG, T_SEQ) == RWKV_OK, "%s", rwkv_error_message());
    ck_assert(memcmp(iv.src + 4 * 16, src + 4 * 16, 16 * sizeof *src) == 0);
    ck_assert(memcmp(iv.src + 7 * 16, src + 7 * 16, 16 * sizeof *src) == 0);
    rwkv_intervene_release(&iv);
    snprintf(spec, sizeof spec, "blocks.2.att_v@5=patch:%s", ok);
    snprintf(msg, sizeof msg, "patch source '%s' in '%s': position 5 was not recorded in sequence 0", ok, spec);
    expect_bind_error(spec, CFG, T_SEQ, RWKV_ERR_ARG, msg);
    snprintf(spec, sizeof spec, "blocks.2.att_v@4=patch:%s", part);
    snprintf(msg, sizeof msg, "patch source '%s' in '%s': the dump is incomplete (its run was cut short)", part, spec);
    expect_bind_error(spec, CFG, T_SEQ, RWKV_ERR_FORMAT, msg);
    snprintf(spec, sizeof spec, "blocks.2.att_v@4=patch:%s", newer);
    snprintf(msg, sizeof msg, "patch source '%s' in '%s': %s: ", newer, spec, newer);
    expect_bind_error_has(spec, CFG, T_SEQ, RWKV_ERR_UNSUPPORTED, msg, "dump schema version 3 is not supported");
    snprintf(spec, sizeof spec, "blocks.2.att_v@4=patch:%s", shorter);
    snprintf(msg, sizeof msg, "patch source '%s' in '%s': sequence 0 has 11 positions, this run has 12", shorter, spec);
    expect_bind_error(spec, CFG, T_SEQ, RWKV_ERR_SHAPE, msg);
    free(clean);
    rwkv_record_free(rec);
    rwkv_model_free(m);
}
END_TEST

// At the logits tap the ops are plain arithmetic on the model's own logits.
START_TEST(test_ops_arithmetic) {
    rwkv_model *m = random_model(CFG, 7);
    const int V = CFG.n_vocab;
    const size_t n = (size_t)T_SEQ * V;
    const char *vec = tmp_path("vocab_vec.h5");
    write_vector(vec, V, 0.5); // vec[i] = 0.5 (i + 1)
    char add[1100];
    snprintf(add, sizeof add, "logits:2-4@last=add:%s:2", vec);
    const char *a_list[] = {add, "logits:0@*=scale:-3", "logits:7,9@1-2=set:4.25", "logits:11@0,5=zero", NULL};
    rwkv_real *plain = run_specs(m, CLEAN, T_SEQ, NULL, 0, 64);
    for (int seq = 0; seq <= 1; seq++) {
        rwkv_real *got = run_specs(m, CLEAN, T_SEQ, a_list, seq, 64);
        for (int t = 0; t < T_SEQ; t++)
            for (int c = 0; c < V; c++) {
                double want = plain[t * V + c];
                if (c >= 2 && c <= 4 && t == T_SEQ - 1) want += 2 * 0.5 * (c + 1);
                if (c == 0) want *= -3;
                if ((c == 7 || c == 9) && (t == 1 || t == 2)) want = 4.25;
                if (c == 11 && (t == 0 || t == 5)) want = 0;
                ck_assert_msg(fabs(got[t * V + c] - want) <= 1e-5 * fmax(1, fabs(want)), "t %d c %d: %g vs %g", t, c,
                              (double)got[t * V + c], want);
            }
        free(got);
    }
    free(plain);
    (void)n;
    rwkv_model_free(m);
}
END_TEST


// ---- patching sweeps ---------------------------------------------------------------------

static rwkv_patch_result *sweep(const rwkv_model *m, const int *corrupt, int seq, int naive, int64_t every) {
    rwkv_patch_opts o = {.n_taps = 3, .taps = {RWKV_TAP_RESID_IN, RWKV_TAP_STATE_NUM, RWKV_TAP_ATT_OUT}, .seq = seq,
                         .naive = naive, .checkpoint_every = every};
    ck_assert_int_eq(rwkv_patch_metric_parse(&o.metric, "logit-diff:3,7", CFG.n_vocab), RWKV_OK);
    rwkv_patch_result *r;
    rwkv_status st = rwkv_patch_sweep(&r, m, CLEAN, corrupt, T_SEQ, &o);
    ck_assert_msg(st == RWKV_OK, "%s", rwkv_error_message());
    return r;
}

// The corrupt run differs from the clean one at one position d: patching the embedding
// (blocks.0.resid_in) at d makes the runs identical (recovery 1), anywhere else it copies an
// equal value (recovery 0). Reuse of the corrupt prefix state gives the naive rerun's numbers.
START_TEST(test_patch_sweep) {
    rwkv_model *m = random_model(CFG, 8);
    const int d = 6;
    int corrupt[T_SEQ];
    memcpy(corrupt, CLEAN, sizeof corrupt);
    corrupt[d] = 13;
    for (int seq = 0; seq <= 1; seq++) {
        rwkv_patch_result *r = sweep(m, corrupt, seq, 0, 0), *naive = sweep(m, corrupt, seq, 1, 0);
        rwkv_patch_result *strided = sweep(m, corrupt, seq, 0, 5); // checkpoints at 0, 5, 10
        ck_assert_int_eq(r->checkpoint_every, 1);
        ck_assert_int_eq(strided->checkpoint_every, 5);
        rwkv_real *lc = run_specs(m, CLEAN, T_SEQ, NULL, seq, 64), *lx = run_specs(m, corrupt, T_SEQ, NULL, seq, 64);
        const int V = CFG.n_vocab;
        // (The sweep asks for the last row only: in parallel mode a 1-row head GEMM.)
        const double tol = seq ? 0 : 1e-5;
        ck_assert(fabs(r->m_clean - ((double)lc[(T_SEQ - 1) * V + 3] - (double)lc[(T_SEQ - 1) * V + 7])) <= tol);
        ck_assert(fabs(r->m_corrupt - ((double)lx[(T_SEQ - 1) * V + 3] - (double)lx[(T_SEQ - 1) * V + 7])) <= tol);
        ck_assert_double_gt(fabs(r->m_clean - r->m_corrupt), 1e-3);
        ck_assert_int_eq(r->first_diff, d);
        for (int p = 0; p < T_SEQ; p++) {
            double rec = r->recovery[rwkv_patch_cell(r, 0, 0, p)];
            ck_assert_msg(fabs(rec - (p == d)) <= (seq ? 0 : 1e-4), "mode %d p %d: recovery %g", seq, p, rec);
        }
        for (size_t i = 0; i < (size_t)3 * CFG.n_layer * T_SEQ; i++) {
            ck_assert_msg(fabs(r->metric[i] - naive->metric[i]) <= 1e-4 * fmax(1, fabs(naive->metric[i])),
                          "mode %d cell %zu: reuse %g naive %g", seq, i, r->metric[i], naive->metric[i]);
            if ((int64_t)(i % T_SEQ) < d) ck_assert(r->recovery[i] == 0);
            // Rerunning from an earlier checkpoint: the same numbers (exactly, token by token).
            ck_assert_msg(fabs(strided->metric[i] - r->metric[i]) <= (seq ? 0 : 1e-4 * fmax(1, fabs(r->metric[i]))),
                          "mode %d cell %zu: stride 5 %g, stride 1 %g", seq, i, strided->metric[i], r->metric[i]);
        }
        ck_assert_int_gt(strided->tokens_rerun, r->tokens_rerun);
        rwkv_patch_result_free(strided);
        ck_assert_int_lt(r->tokens_rerun, naive->tokens_rerun);
        free(lc);
        free(lx);
        rwkv_patch_result_free(r);
        rwkv_patch_result_free(naive);
    }
    rwkv_model_free(m);
}
END_TEST

START_TEST(test_metric_parse) {
    rwkv_patch_metric mt;
    ck_assert_int_eq(rwkv_patch_metric_parse(&mt, "logit-diff:3,19", 20), RWKV_OK);
    ck_assert(mt.kind == RWKV_METRIC_LOGIT_DIFF && mt.a == 3 && mt.b == 19);
    ck_assert_int_eq(rwkv_patch_metric_parse(&mt, "logprob:0", 20), RWKV_OK);
    ck_assert(mt.kind == RWKV_METRIC_LOGPROB && mt.a == 0);
    ck_assert_int_eq(rwkv_patch_metric_parse(&mt, "logit-diff:3,20", 20), RWKV_ERR_ARG);
    ck_assert_str_eq(rwkv_error_message(), "metric 'logit-diff:3,20': expected logit-diff:A,B with token ids below 20");
    ck_assert_int_eq(rwkv_patch_metric_parse(&mt, "kl:3", 20), RWKV_ERR_ARG);
    ck_assert_str_eq(rwkv_error_message(), "metric 'kl:3': expected logit-diff:A,B, logit:A or logprob:A");
    rwkv_real lg[3] = {1, 2, 3};
    ck_assert_int_eq(rwkv_patch_metric_parse(&mt, "logprob:2", 3), RWKV_OK);
    ck_assert_double_eq_tol(rwkv_patch_metric_eval(&mt, lg, 3), 3 - log(exp(1) + exp(2) + exp(3)), 1e-12);
}
END_TEST

// Lists of positions or layers in the spec syntax, and a sweep restricted by them.
START_TEST(test_index_list_sweep) {
    uint8_t mask[6];
    ck_assert_int_eq(rwkv_intervene_index_list(mask, 6, "1,3-4,last", "position", 1), RWKV_OK);
    const uint8_t want[6] = {0, 1, 0, 1, 1, 1};
    ck_assert(memcmp(mask, want, 6) == 0);
    ck_assert_int_eq(rwkv_intervene_index_list(mask, 6, "*", "layer", 0), RWKV_OK);
    for (int i = 0; i < 6; i++) ck_assert_int_eq(mask[i], 1);
    ck_assert_int_eq(rwkv_intervene_index_list(mask, 6, "2,9", "position", 1), RWKV_ERR_ARG);
    ck_assert_str_eq(rwkv_error_message(), "position 9 in '2,9': out of range, there are 6 positions");
    ck_assert_int_eq(rwkv_intervene_index_list(mask, 6, "last", "layer", 0), RWKV_ERR_ARG);
    ck_assert_str_eq(rwkv_error_message(), "layer 'last' in 'last': expected N, A-B or *");
    ck_assert_int_eq(rwkv_intervene_index_list(mask, 6, "1,8-last", "position", 1), RWKV_ERR_ARG);
    ck_assert_str_eq(rwkv_error_message(), "position 8 in '1,8-last': out of range, there are 6 positions");
    ck_assert_int_eq(rwkv_intervene_index_list(mask, 0, "last", "position", 1), RWKV_ERR_ARG);
    ck_assert_str_eq(rwkv_error_message(), "position list in 'last': out of range, there are 0 positions");
    // A sweep over positions 6-8 of layer 1 only: those cells as in the full sweep, others NaN.
    rwkv_model *m = random_model(CFG, 12);
    uint8_t pos[T_SEQ], layers[3] = {0, 1, 0};
    ck_assert_int_eq(rwkv_intervene_index_list(pos, T_SEQ, "6-8", "position", 1), RWKV_OK);
    rwkv_patch_opts o = {.n_taps = 1, .taps = {RWKV_TAP_ATT_OUT}, .seq = 1, .positions = pos, .layers = layers};
    rwkv_patch_metric_parse(&o.metric, "logprob:4", CFG.n_vocab);
    rwkv_patch_result *part, *full;
    ck_assert_int_eq(rwkv_patch_sweep(&part, m, CLEAN, CORRUPT, T_SEQ, &o), RWKV_OK);
    o.positions = NULL, o.layers = NULL;
    ck_assert_int_eq(rwkv_patch_sweep(&full, m, CLEAN, CORRUPT, T_SEQ, &o), RWKV_OK);
    for (int l = 0; l < 3; l++)
        for (int p = 0; p < T_SEQ; p++) {
            size_t c = rwkv_patch_cell(part, 0, l, p);
            if (l == 1 && p >= 6 && p <= 8) ck_assert(part->metric[c] == full->metric[c]);
            else ck_assert(isnan(part->metric[c]) && isnan(part->recovery[c]));
        }
    rwkv_patch_result_free(part);
    rwkv_patch_result_free(full);
    rwkv_model_free(m);
}
END_TEST

// ---- logit lens --------------------------------------------------------------------------

// The lens of the last block's output is the model's own logits (bit for bit when both
// project the same rows at once), and its statistics follow from those logits.
START_TEST(test_logit_lens) {
    rwkv_model *m = random_model(CFG, 9);
    const int V = CFG.n_vocab, L = CFG.n_layer;
    const size_t n = (size_t)T_SEQ * V;
    rwkv_real *logits = calloc(n, sizeof *logits);
    rwkv_record *rec = record_all(m, CLEAN, 0, logits);
    rwkv_real *lens = calloc(n, sizeof *lens), *scratch = calloc((size_t)T_SEQ * CFG.n_embd, sizeof *scratch);
    rwkv_lens_project(m, lens, rwkv_record_rows(rec, L, RWKV_TAP_RESID_OUT), T_SEQ, scratch);
    ck_assert(memcmp(lens, logits, n * sizeof *lens) == 0);
    for (int seq = 0; seq <= 1; seq++) {
        rwkv_lens_result *r;
        ck_assert_int_eq(rwkv_lens_logit(&r, m, CLEAN, T_SEQ, seq), RWKV_OK);
        ck_assert_int_eq(r->n_rows, L + 1);
        for (int t = 0; t < T_SEQ; t++) {
            // Independent statistics of the model's logits, in double.
            const rwkv_real *lg = logits + (size_t)t * V;
            double mx = lg[0], z = 0, h = 0;
            for (int v = 1; v < V; v++) mx = fmax(mx, lg[v]);
            for (int v = 0; v < V; v++) z += exp(lg[v] - mx);
            for (int v = 0; v < V; v++) {
                double lp = lg[v] - mx - log(z);
                h -= exp(lp) * lp;
            }
            size_t k = (size_t)L * T_SEQ + t;
            const double tol = seq ? 1e-4 : 1e-9; // sequential logits come from 1-row GEMMs
            ck_assert_double_eq_tol(r->entropy[k], h, tol);
            if (t + 1 < T_SEQ) ck_assert_double_eq_tol(r->ce[k], -(lg[CLEAN[t + 1]] - mx - log(z)), tol);
            else ck_assert(isnan(r->ce[k]));
            ck_assert(r->kl[k] == 0 && r->top1[k] == 1);
            ck_assert_double_gt(r->kl[t], 1e-6); // the embedding row is another distribution
        }
        double means[4 * 8];
        ck_assert_int_eq(rwkv_lens_write_summary(r, tmp_path("lens_summary.csv"), means), RWKV_OK);
        ck_assert_int_eq(rwkv_lens_write_csv(r, CLEAN, tmp_path("lens.csv")), RWKV_OK);
        ck_assert(means[4 * L + 2] == 0 && means[4 * L + 3] == 1);
        ck_assert_int_eq(rwkv_lens_write_csv(r, CLEAN, "/nonexistent-dir/lens.csv"), RWKV_ERR_IO);
        rwkv_lens_result_free(r);
    }
    free(lens);
    free(scratch);
    free(logits);
    rwkv_record_free(rec);
    rwkv_model_free(m);
}
END_TEST

// ---- steering vectors --------------------------------------------------------------------

// The vector is mean(positive) - mean(negative) of the tap at the last position (the state
// after the last token for a state tap); a sweep at multiplier 0 is the unsteered run.
START_TEST(test_steer) {
    rwkv_model *m = random_model(CFG, 10);
    const int C = CFG.n_embd;
    int p2[T_SEQ];
    memcpy(p2, CLEAN, sizeof p2);
    p2[T_SEQ - 1] = 2;
    const int *pos[2] = {CLEAN, p2}, *neg[1] = {CORRUPT};
    const int64_t pos_len[2] = {T_SEQ, T_SEQ}, neg_len[1] = {T_SEQ - 3};
    rwkv_tap taps[2] = {RWKV_TAP_RESID_IN, RWKV_TAP_STATE_NUM};
    for (int k = 0; k < 2; k++) {
        rwkv_real vec[16];
        ck_assert_int_eq(rwkv_steer_build(vec, m, 2, taps[k], 2, pos, pos_len, 1, neg, neg_len, 0), RWKV_OK);
        // Independent: the recorded rows of full runs.
        rwkv_real *lg = calloc((size_t)T_SEQ * CFG.n_vocab, sizeof *lg);
        rwkv_record *ra = record_all(m, CLEAN, 1, lg), *rb = record_all(m, p2, 1, lg), *rc = record_all(m, CORRUPT, 1, lg);
        const rwkv_real *a = rwkv_record_rows(ra, 2, taps[k]) + (T_SEQ - 1) * C;
        const rwkv_real *b = rwkv_record_rows(rb, 2, taps[k]) + (T_SEQ - 1) * C;
        const rwkv_real *c = rwkv_record_rows(rc, 2, taps[k]) + (T_SEQ - 4) * C; // neg prompt is 3 shorter
        for (int i = 0; i < C; i++)
            ck_assert_double_eq_tol(vec[i], 0.5 * ((double)a[i] + b[i]) - c[i], 1e-4 * fmax(1, fabs(c[i])));
        free(lg);
        rwkv_record_free(ra);
        rwkv_record_free(rb);
        rwkv_record_free(rc);
        const char *path = tmp_path("steer.h5");
        ck_assert_int_eq(rwkv_steer_write(path, vec, C, CFG, 2, taps[k], 2, 1), RWKV_OK);
        char name[32];
        ck_assert_int_eq(rwkv_steer_read_tap(path, name, sizeof name), RWKV_OK);
        ck_assert_str_eq(name, RWKV_TAP_NAMES[taps[k]]);
        int layers[2] = {0, 2};
        double mults[3] = {-2, 0, 3}, base[2];
        rwkv_steer_point pts[6];
        ck_assert_int_eq(rwkv_steer_sweep(pts, base, m, path, name, "*", layers, 2, mults, 3, CLEAN, T_SEQ, 3, 7, 0),
                         RWKV_OK);
        for (int i = 0; i < 6; i++) {
            ck_assert_int_eq(pts[i].layer, layers[i / 3]);
            // add:...:0 is a bit-exact no-op, at a state tap too.
            if (mults[i % 3] == 0) ck_assert(pts[i].p_a == base[0] && pts[i].p_b == base[1]);
            else ck_assert(fabs(pts[i].p_a - base[0]) > 1e-6);
        }
    }
    // An empty side, and a vector applied to a tap of another width.
    ck_assert_int_eq(rwkv_steer_build((rwkv_real[16]){0}, m, 0, RWKV_TAP_RESID_IN, 0, pos, pos_len, 1, neg, neg_len, 0),
                     RWKV_ERR_ARG);
    ck_assert_str_eq(rwkv_error_message(), "steering: no positive prompts");
    int layers[1] = {0};
    double mults[1] = {1}, base[2];
    rwkv_steer_point pt;
    ck_assert_int_eq(rwkv_steer_sweep(&pt, base, m, tmp_path("steer.h5"), "ffn_k", "*", layers, 1, mults, 1, CLEAN,
                                      T_SEQ, 3, 7, 0), RWKV_ERR_SHAPE);
    rwkv_model_free(m);
}
END_TEST

// ---- the commands ------------------------------------------------------------------------

#define TINY "tests/fixtures/tiny-rwkv-4v0-660K-FP32.bin"
#define RAND "tests/fixtures/rand-L2-C32-V50.pth"

START_TEST(test_cli_intervene) {
    char *out, *base;
    ck_assert_int_eq(test_cli(&out, "run " TINY " --bytes 'The cat' --intervene 'blocks.2.att_gate@3x=zero'"), 2);
    ck_assert_ptr_nonnull(strstr(out, "position '3x' in 'blocks.2.att_gate@3x=zero': expected N, A-B, last or *"));
    free(out);
    ck_assert_int_eq(test_cli(&out, "run " TINY " --bytes 'The cat' --intervene 'blocks.0.att_k:0-128@0=zero'"), 1);
    ck_assert_ptr_nonnull(strstr(out, "channel 128 in 'blocks.0.att_k:0-128@0=zero': out of range, att_k has 128 channels"));
    free(out);
    ck_assert_int_eq(test_cli(&out, "run " TINY " --bytes 'The cat' --intervene 'blocks.0.att_out@90-last=zero'"), 1);
    ck_assert_ptr_nonnull(strstr(out, "position 90 in 'blocks.0.att_out@90-last=zero': out of range, the sequence has 7 tokens"));
    free(out);
    // scale:1 changes nothing; zeroing block 0's attention output changes the prediction.
    ck_assert_int_eq(test_cli(&base, "run " TINY " --bytes 'The cat sat' --top-k 3"), 0);
    ck_assert_int_eq(test_cli(&out, "run " TINY " --bytes 'The cat sat' --top-k 3 --intervene 'blocks.0.att_out@*=scale:1'"), 0);
    ck_assert_str_eq(out, base);
    free(out);
    ck_assert_int_eq(test_cli(&out, "run " TINY " --bytes 'The cat sat' --top-k 3 --mode seq --intervene 'blocks.0.att_out@*=zero'"), 0);
    ck_assert_str_ne(out, base);
    free(out);
    free(base);
    ck_assert_int_eq(test_cli(&out, "generate " TINY " --bytes 'The' -n 8 --temperature 0 --intervene 'logits:104@*=set:100'"), 0);
    ck_assert_ptr_nonnull(strstr(out, "hhhhhhhh"));
    free(out);
}
END_TEST

START_TEST(test_cli_patch) {
    char *out;
    const char *csv = tmp_path("patch.csv");
    ck_assert_int_eq(test_cli(&out, "patch " RAND " --clean-tokens 1,2,3,4,5,6 --corrupt-tokens 1,2,9,4,5,6 --taps 'resid_in,state_n*' "
                                    "--metric logit-diff:3,7 --seq -o %s", csv), 0);
    free(out);
    FILE *f = fopen(csv, "r");
    ck_assert_ptr_nonnull(f);
    char line[256];
    int rows = 0, found = 0;
    ck_assert_ptr_nonnull(fgets(line, sizeof line, f));
    ck_assert_str_eq(line, "tap,layer,position,clean_token,corrupt_token,metric,recovery\n");
    while (fgets(line, sizeof line, f)) {
        rows++;
        // Patching the embedding at the one differing position restores the clean run.
        if (!strncmp(line, "resid_in,0,2,3,9,", 17)) found = strstr(line, ",1\n") != NULL;
    }
    fclose(f);
    ck_assert_int_eq(rows, 2 * 2 * 6);
    ck_assert(found);
    ck_assert_int_eq(test_cli(&out, "patch " RAND " --clean-tokens 1,2,3 --corrupt-tokens 1,2 --taps resid_in --metric logit:1"), 1);
    ck_assert_ptr_nonnull(strstr(out, "the clean prompt has 3 tokens and the corrupt one 2"));
    free(out);
    ck_assert_int_eq(test_cli(&out, "patch " RAND " --clean-tokens 1,2 --corrupt-tokens 1,3 --taps nope --metric logit:1"), 1);
    ck_assert_ptr_nonnull(strstr(out, "--taps: 'nope' matches no block tap"));
    free(out);
    ck_assert_int_eq(test_cli(&out, "patch " RAND " --clean-tokens 1,2 --corrupt-tokens 1,3 --taps resid_in --metric logit:50"), 1);
    ck_assert_ptr_nonnull(strstr(out, "metric 'logit:50': expected logit:A with token ids below 50"));
    free(out);
}
END_TEST

START_TEST(test_cli_steer_lens) {
    char *out;
    const char *pos = tmp_path("pos.txt"), *neg = tmp_path("neg.txt"), *vec = tmp_path("vec.h5");
    const char *sweep = tmp_path("sweep.csv"), *lens = tmp_path("lens");
    FILE *f = fopen(pos, "w");
    fputs("I love this, it is wonderful\nWhat a great day\n", f);
    fclose(f);
    f = fopen(neg, "w");
    fputs("I hate this, it is awful\n\nWhat a terrible day!\n", f);
    fclose(f);
    ck_assert_int_eq(test_cli(&out, "steer build " TINY " --pos %s --neg %s --tap blocks.1.resid_in -o %s --force", pos, neg, vec), 0);
    ck_assert_ptr_nonnull(strstr(out, "from 2 positive and 2 negative prompts"));
    free(out);
    ck_assert_int_eq(test_cli(&out, "steer build " TINY " --pos %s --neg %s --tap blocks.1.resid_in -o %s", pos, neg, vec), 2);
    free(out);
    ck_assert_int_eq(test_cli(&out, "steer sweep " TINY " --vec %s --layers 0,1 --multipliers -2,0,2 --prompt 'It was' "
                                    "--answers ' ,a' -o %s", vec, sweep), 0);
    free(out);
    f = fopen(sweep, "r");
    char line[256];
    int rows = 0;
    while (fgets(line, sizeof line, f)) {
        rows++;
        if (strstr(line, ",0,") == strchr(line, ',')) ck_assert_ptr_nonnull(strstr(line, ",0,0,")); // multiplier 0: no shift
    }
    fclose(f);
    ck_assert_int_eq(rows, 1 + 2 * 3);
    ck_assert_int_eq(test_cli(&out, "steer sweep " TINY " --vec %s --layers 0 --multipliers 1 --prompt x --answers ab,c", vec), 1);
    ck_assert_ptr_nonnull(strstr(out, "'ab' encodes to 2 tokens"));
    free(out);
    ck_assert_int_eq(test_cli(&out, "analyze lens " TINY " --bytes 'The quick brown fox' -o %s --force", lens), 0);
    ck_assert_ptr_nonnull(strstr(out, "blocks.3       "));
    free(out);
    char summary[600];
    snprintf(summary, sizeof summary, "%s.summary.csv", lens);
    f = fopen(summary, "r");
    ck_assert_ptr_nonnull(f);
    char last[256] = "";
    while (fgets(line, sizeof line, f)) memcpy(last, line, sizeof last);
    fclose(f);
    ck_assert_ptr_nonnull(strstr(last, "logit,blocks.3,3,"));
    ck_assert_ptr_nonnull(strstr(last, ",0,1\n")); // the last row: KL 0, top-1 agreement 1
}
END_TEST

// dump --intervene records the values the model used, in both modes alike; a dump written by
// `rwkvscope dump` is a patch source for `run --intervene`.
START_TEST(test_cli_dump_intervene) {
    char *out, *base, *corrupt;
    const char *clean = tmp_path("clean_cli.h5"), *d1 = tmp_path("iv_set.h5");
    const char *dpar = tmp_path("iv_par.h5"), *dseq = tmp_path("iv_seq.h5"), *dnone = tmp_path("iv_none.h5");
    ck_assert_int_eq(test_cli(&out, "dump " RAND " --tokens 1,2,3,4,5 --taps blocks.0.resid_in -o %s --force", clean), 0);
    free(out);
    ck_assert_int_eq(test_cli(&base, "run " RAND " --tokens 1,2,3,4,5 --top-k 5"), 0);
    ck_assert_int_eq(test_cli(&corrupt, "run " RAND " --tokens 1,9,3,4,5 --top-k 5"), 0);
    ck_assert_str_ne(base, corrupt);
    ck_assert_int_eq(test_cli(&out, "run " RAND " --tokens 1,9,3,4,5 --top-k 5 --intervene 'blocks.0.resid_in@1=patch:%s'", clean), 0);
    ck_assert_str_eq(out, base); // the one differing embedding patched back
    free(out);
    ck_assert_int_eq(test_cli(&out, "run " RAND " --tokens 1,9,3,4 --intervene 'blocks.0.resid_in@1=patch:%s'", clean), 1);
    ck_assert_ptr_nonnull(strstr(out, "sequence 0 has 5 positions, this run has 4"));
    free(out);
    free(base);
    free(corrupt);
    ck_assert_int_eq(test_cli(&out, "dump " RAND " --tokens 1,2,3,4,5 --taps blocks.0.att_k --intervene 'blocks.0.att_k:0-3@2-3=set:2' -o %s --force", d1), 0);
    free(out);
    int nd;
    uint64_t dims[4];
    double *k = test_h5_read(d1, "/blocks/0/att_k", &nd, dims);
    ck_assert_ptr_nonnull(k);
    ck_assert(nd == 2 && dims[0] == 5 && dims[1] == 32);
    for (int t = 0; t < 5; t++)
        for (int c = 0; c < 32; c++) ck_assert((k[t * 32 + c] == 2) == (t >= 2 && t <= 3 && c <= 3));
    free(k);
    const char *iv = "--intervene 'blocks.0.state_num:0-15@2=zero' --intervene 'blocks.1.state_den@3=scale:0.5'";
    ck_assert_int_eq(test_cli(&out, "dump " RAND " --tokens 1,2,3,4,5,6,7 --taps blocks.1.state_num,logits %s -o %s --force", iv, dpar), 0);
    free(out);
    ck_assert_int_eq(test_cli(&out, "dump " RAND " --tokens 1,2,3,4,5,6,7 --taps blocks.1.state_num,logits %s --mode seq -o %s --force", iv, dseq), 0);
    free(out);
    ck_assert_int_eq(test_cli(&out, "dump " RAND " --tokens 1,2,3,4,5,6,7 --taps blocks.1.state_num,logits -o %s --force", dnone), 0);
    free(out);
    double *a = test_h5_read(dpar, "/logits", &nd, dims), *b = test_h5_read(dseq, "/logits", &nd, dims);
    double *c = test_h5_read(dnone, "/logits", &nd, dims);
    ck_assert(a && b && c && dims[0] == 7 && dims[1] == 50);
    ck_assert_double_lt(test_max_scaled_err_d(a, b, 7 * 50), 1e-4);
    ck_assert_double_gt(test_max_scaled_err_d(a, c, 7 * 50), 1e-3);
    for (int i = 0; i < 3 * 50; i++) ck_assert_double_eq_tol(a[i], c[i], 1e-5); // positions 0-2 untouched
    free(a), free(b), free(c);
}
END_TEST

// The datasets of two dumps of every tap of an RWKV-4 model of n_layer layers: the first that
// differs in any bit (or in shape), or NULL.
static const char *dumps_differ(const char *a, const char *b, int n_layer) {
    static char name[64];
    for (int l = 0; l <= n_layer; l++)
        for (int t = l < n_layer ? 0 : RWKV_TAP_N_BLOCK; t < (l < n_layer ? RWKV_V4_BLOCK_TAPS : RWKV_TAP_N); t++) {
            if (l < n_layer) snprintf(name, sizeof name, "/blocks/%d/%s", l, RWKV_TAP_NAMES[t]);
            else snprintf(name, sizeof name, "/%s", RWKV_TAP_NAMES[t]);
            int na, nb;
            uint64_t da[4], db[4];
            double *x = test_h5_read(a, name, &na, da), *y = test_h5_read(b, name, &nb, db);
            int same = x && y && na == 2 && nb == 2 && da[0] == db[0] && da[1] == db[1] &&
                       !memcmp(x, y, (size_t)(da[0] * da[1]) * sizeof *x);
            free(x), free(y);
            if (!same) return name;
        }
    return NULL;
}

// The case: in parallel mode `blocks.1.state_num@*=scale:1` moved the logits of
// rand-L3-C64-V300 by 1.9e-6. Now no tap moves by a bit; nor does patching every tap of a run
// from a dump of that same run, in either mode.
START_TEST(test_cli_noop_dumps) {
    char *out, toks[400] = "";
    for (int t = 0, k = 0; t < 40; t++) k += snprintf(toks + k, sizeof toks - k, "%s%d", t ? "," : "", (t * 37 + 11) % 300);
    const char *L3 = "tests/fixtures/rand-L3-C64-V300.pth";
    const char *none = tmp_path("noop_none.h5"), *s1 = tmp_path("noop_scale1.h5");
    ck_assert_int_eq(test_cli(&out, "dump %s --tokens %s --taps '*' -o %s --force", L3, toks, none), 0);
    free(out);
    ck_assert_int_eq(test_cli(&out, "dump %s --tokens %s --taps '*' --intervene 'blocks.1.state_num@*=scale:1' -o %s --force",
                              L3, toks, s1), 0);
    free(out);
    const char *bad = dumps_differ(none, s1, 3);
    ck_assert_msg(!bad, "scale:1 moved %s", bad);
    const char *modes[2] = {"par", "seq"};
    for (int k = 0; k < 2; k++) {
        const char *self = tmp_path(k ? "self_seq.h5" : "self_par.h5"), *patched = tmp_path(k ? "pat_seq.h5" : "pat_par.h5");
        const char *common = "--tokens 1,2,3,4,5,6,7,8,9,10,11 --taps '*' --chunk 4";
        ck_assert_int_eq(test_cli(&out, "dump " RAND " %s --mode %s -o %s --force", common, modes[k], self), 0);
        free(out);
        char ivs[6000];
        size_t n = 0;
        for (int l = 0; l <= 2; l++)
            for (int t = l < 2 ? 0 : RWKV_TAP_N_BLOCK; t < (l < 2 ? RWKV_V4_BLOCK_TAPS : RWKV_TAP_N); t++) {
                char tapname[32];
                if (l < 2) snprintf(tapname, sizeof tapname, "blocks.%d.%s", l, RWKV_TAP_NAMES[t]);
                else snprintf(tapname, sizeof tapname, "%s", RWKV_TAP_NAMES[t]);
                n += snprintf(ivs + n, sizeof ivs - n, " --intervene '%s@*=patch:%s'", tapname, self);
            }
        ck_assert_uint_lt(n, sizeof ivs - 1);
        ck_assert_int_eq(test_cli(&out, "dump " RAND " %s --mode %s%s -o %s --force", common, modes[k], ivs, patched), 0);
        free(out);
        bad = dumps_differ(self, patched, 2);
        ck_assert_msg(!bad, "%s mode: patching the run into itself moved %s", modes[k], bad);
    }
}
END_TEST

// recall --intervene: scale:1 is a no-op, an ablation changes the scores, and the prefix cache
// gives the numbers of a run without it (interventions depend on the position only).
static char *read_all(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    char *buf = calloc(1, 1 << 16);
    size_t n = fread(buf, 1, (1 << 16) - 1, f);
    buf[n] = 0;
    fclose(f);
    return buf;
}

START_TEST(test_cli_recall_intervene) {
    char *out;
    const char *r0 = tmp_path("r0.csv"), *r1 = tmp_path("r1.csv"), *r2 = tmp_path("r2.csv"), *r3 = tmp_path("r3.csv");
    const char *args = "--lengths 128 --depths 0.5 --trials 3 --no-plots --force";
    ck_assert_int_eq(test_cli(&out, "recall " TINY " %s -o %s", args, r0), 0);
    free(out);
    ck_assert_int_eq(test_cli(&out, "recall " TINY " %s -o %s --intervene 'blocks.0.att_out@*=scale:1'", args, r1), 0);
    free(out);
    ck_assert_int_eq(test_cli(&out, "recall " TINY " %s -o %s --intervene 'blocks.0.att_out@90-last=zero'", args, r2), 0);
    free(out);
    ck_assert_int_eq(test_cli(&out, "recall " TINY " %s -o %s --intervene 'blocks.0.att_out@90-last=zero' --no-cache", args, r3), 0);
    free(out);
    char *a = read_all(r0), *b = read_all(r1), *c = read_all(r2), *d = read_all(r3);
    ck_assert(a && b && c && d);
    ck_assert_str_eq(a, b);
    ck_assert_str_ne(a, c);
    ck_assert_str_eq(c, d);
    free(a), free(b), free(c), free(d);
    ck_assert_int_eq(test_cli(&out, "recall " TINY " %s -o %s --intervene 'blocks.0.att_out@170=zero'", args, r2), 1);
    ck_assert_ptr_nonnull(strstr(out, "position 170 in 'blocks.0.att_out@170=zero': out of range, the sequence has 128 tokens"));
    free(out);
}
END_TEST

Suite *intervene_suite(void) {
    Suite *s = suite_create("intervene");
    TCase *tc = tcase_create("spec");
    tcase_add_loop_test(tc, test_spec_table, 0, (int)(sizeof SPECS / sizeof SPECS[0]));
    tcase_add_test(tc, test_bind_errors);
    suite_add_tcase(s, tc);
    tc = tcase_create("causal");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_knockout_is_restart);
    tcase_add_test(tc, test_noop_bit_exact);
    tcase_add_test(tc, test_modes_agree);
    tcase_add_test(tc, test_modes_agree_every_tap);
    tcase_add_loop_test(tc, test_state_edits_by_hand, 0, N_EDITS);
    tcase_add_test(tc, test_scan_cut_needed);
    tcase_add_test(tc, test_patch_all_recovers_clean);
    tcase_add_test(tc, test_patch_from_dump);
    tcase_add_test(tc, test_patch_dump_schema);
    tcase_add_test(tc, test_ops_arithmetic);
    tcase_add_test(tc, test_patch_sweep);
    tcase_add_test(tc, test_metric_parse);
    tcase_add_test(tc, test_index_list_sweep);
    tcase_add_test(tc, test_logit_lens);
    tcase_add_test(tc, test_steer);
    suite_add_tcase(s, tc);
    tc = tcase_create("cli");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_cli_intervene);
    tcase_add_test(tc, test_cli_patch);
    tcase_add_test(tc, test_cli_steer_lens);
    tcase_add_test(tc, test_cli_dump_intervene);
    tcase_add_test(tc, test_cli_noop_dumps);
    tcase_add_test(tc, test_cli_recall_intervene);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) {
    SRunner *sr = srunner_create(intervene_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
