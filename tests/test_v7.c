// test_v7.c: the RWKV-7 engine against rwkv.cpp's trained tiny model and its expected logits,
// and against float64 goldens of random models (tests/fixtures/gen/gen_v7_golden.py); both
// modes, chunked runs, taps, the final state, and bad files.
#include "core/compute/forward.h"
#include "core/compute/forward_v7.h"
#include "core/model/model.h"
#include "core/formats/formats.h"
#include "core/inspect/dump.h"
#include "core/inspect/h5util.h"
#include "core/inspect/intervene.h"
#include "core/inspect/state_io.h"
#include "core/model/state.h"
#include "util.h"

#include <hdf5.h>
#include <hdf5_hl.h>

#include <check.h>
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define TINY7 "tiny-rwkv-7v0-834K-FP32.bin"
#define TINY7_LOGITS "expected-logits-7v0-834K.bin"
#define RWKVCPP_SUM_BOUND 0.001 // rwkv.cpp's test: |sum(ours - expected)| for FP32 files

static float *read_floats(const char *path, size_t n) {
    FILE *f = fopen(path, "rb");
    ck_assert_ptr_nonnull(f);
    float *x = malloc(n * sizeof *x);
    ck_assert_uint_eq(fread(x, sizeof *x, n, f), n);
    fclose(f);
    return x;
}

static rwkv_model *load(const char *name) {
    rwkv_model *m;
    rwkv_status st = rwkv_model_load(&m, test_fixture(name));
    ck_assert_msg(st == RWKV_OK, "%s", rwkv_error_message());
    return m;
}

#define TINY5 "tiny-rwkv-5v2-730K-FP32.bin"
#define TINY5_LOGITS "expected-logits-5v2-730K.bin"

// rwkv.cpp's test feeds the prompt "\"in" (tokens 34, 105, 110) and compares the last logits.
static void check_tiny_model_as(const char *model, const char *expect, int version, int head_size, int seq, int chunk,
                                rwkv_weights_mode weights) {
    rwkv_model *m;
    rwkv_load_opts o = {.weights = weights};
    ck_assert_msg(!rwkv_model_open(&m, test_fixture(model), &o), "%s", rwkv_error_message());
    ck_assert_int_eq(m->cfg.version, version);
    ck_assert_int_eq(m->cfg.n_layer, 12);
    ck_assert_int_eq(m->cfg.n_embd, 64);
    ck_assert_int_eq(m->cfg.head_size, head_size);
    int V = m->cfg.n_vocab;
    float *expected = read_floats(test_fixture(expect), (size_t)V);
    rwkv_state *s;
    rwkv_workspace *ws;
    ck_assert(!rwkv_state_alloc(&s, m->cfg));
    ck_assert(!rwkv_workspace_alloc(&ws, m->cfg, chunk));
    const int tokens[3] = {34, 105, 110};
    rwkv_real *logits = malloc((size_t)V * sizeof *logits);
    rwkv_status st = (seq ? rwkv_forward_seq : rwkv_forward_par)(m, s, tokens, 3, logits, RWKV_LOGITS_LAST, NULL, ws);
    ck_assert_msg(st == RWKV_OK, "%s", rwkv_error_message());
    double sum = 0, worst = 0;
    for (int i = 0; i < V; i++) {
        sum += (double)logits[i] - expected[i];
        worst = fmax(worst, fabs((double)logits[i] - expected[i]));
    }
    ck_assert_msg(fabs(sum) <= RWKVCPP_SUM_BOUND, "%s seq=%d chunk=%d: sum of differences %g (max %g)", model, seq,
                  chunk, sum, worst);
    ck_assert_msg(worst < 1e-4, "%s seq=%d chunk=%d: max difference %g", model, seq, chunk, worst);
    free(logits);
    free(expected);
    rwkv_workspace_free(ws);
    rwkv_state_free(s);
    rwkv_model_free(m);
}

// With a float copy, and with the matrices read in place (rwkv.cpp packs them unaligned).
static void check_tiny_model(const char *model, const char *expect, int version, int head_size, int seq, int chunk) {
    check_tiny_model_as(model, expect, version, head_size, seq, chunk, RWKV_WEIGHTS_FP32);
    check_tiny_model_as(model, expect, version, head_size, seq, chunk, RWKV_WEIGHTS_FILE);
}

static void check_tiny(int seq, int chunk) { check_tiny_model(TINY7, TINY7_LOGITS, RWKV_VERSION_7, 64, seq, chunk); }

START_TEST(test_tiny_rwkvcpp) {
    check_tiny(1, 1);
    check_tiny(0, 64);
    check_tiny(0, 2); // a chunk boundary inside the prompt
}
END_TEST

// RWKV-5.2: rwkv.cpp's trained tiny model (8 heads of 8), its expected logits, both modes.
START_TEST(test_tiny5_rwkvcpp) {
    check_tiny_model(TINY5, TINY5_LOGITS, RWKV_VERSION_5, 8, 1, 1);
    check_tiny_model(TINY5, TINY5_LOGITS, RWKV_VERSION_5, 8, 0, 64);
    check_tiny_model(TINY5, TINY5_LOGITS, RWKV_VERSION_5, 8, 0, 2);
}
END_TEST


// float32 lands within ~1e-4 of the float64 reference; float64 within ~1e-9.
#if RWKV_REAL_BITS == 64
#define TOL 1e-9
#else
#define TOL 1e-4
#endif

static const struct {
    const char *golden, *model;
} CASES[] = {
    {"golden7-a.h5", "rand7-a.pth"},
    {"golden7-a.h5", "rand7-a.safetensors"},
    {"golden7-b.h5", "rand7-b.pth"},
    {"golden5-a.h5", "rand5-a.pth"}, // RWKV-5.2
    {"golden6-a.h5", "rand6-a.pth"}, // RWKV-6 (gen_v6_golden.py)
    {"golden6-a.h5", "rand6-a.bin"}, // the same tensors as rwkv.cpp's converter writes them
    {"golden6-a.h5", "rand6-a.safetensors"},
};
#define N_CASES ((int)(sizeof CASES / sizeof CASES[0]))


// Runs tok in calls of `call` tokens carrying the state (chunks of `chunk` inside a parallel
// call); logits (T, V); the hook, if any, sees absolute positions.
static void run_calls(const rwkv_model *m, rwkv_state *s, const int *tok, int T, int call, int chunk, int seq,
                      rwkv_real *logits, rwkv_hook *hook) {
    rwkv_workspace *ws;
    ck_assert_int_eq(rwkv_workspace_alloc(&ws, m->cfg, chunk), RWKV_OK);
    rwkv_state_reset(s);
    for (int t = 0; t < T; t += call) {
        int n = T - t < call ? T - t : call;
        if (hook) hook->pos = t;
        rwkv_status st = (seq ? rwkv_forward_seq : rwkv_forward_par)(m, s, tok + t, n, logits + (size_t)t * m->cfg.n_vocab,
                                                                    RWKV_LOGITS_ALL, hook, ws);
        ck_assert_msg(st == RWKV_OK, "%s", rwkv_error_message());
    }
    rwkv_workspace_free(ws);
}

static void expect_close(const char *golden, const char *dset, const rwkv_real *got, size_t n, const char *what) {
    int nd;
    uint64_t d[4];
    double *ref = test_h5_read(golden, dset, &nd, d);
    ck_assert_msg(ref != NULL, "%s lacks %s", golden, dset);
    size_t numel = 1;
    for (int i = 0; i < nd; i++) numel *= d[i];
    ck_assert_msg(numel == n, "%s: %s has %zu elements, the engine %zu", golden, dset, numel, n);
    double e = test_max_scaled_err(got, ref, n);
    ck_assert_msg(e < TOL, "%s %s (%s): error %g", golden, dset, what, e);
    free(ref);
}

// Logits, every tap and the final state against the golden, in one mode and call pattern,
// with the weights held as `weights` says.
static void check_golden_as(int ci, int seq, int call, int chunk, rwkv_weights_mode weights) {
    char golden[512], what[64];
    snprintf(golden, sizeof golden, "%s", test_fixture(CASES[ci].golden));
    snprintf(what, sizeof what, "%s %s call %d chunk %d", CASES[ci].model, seq ? "seq" : "par", call, chunk);
    rwkv_model *m;
    rwkv_load_opts o = {.weights = weights};
    ck_assert_msg(!rwkv_model_open(&m, test_fixture(CASES[ci].model), &o), "%s", rwkv_error_message());
    if (weights == RWKV_WEIGHTS_FILE && RWKV_REAL_BITS == 32) // the matrices read in place
        ck_assert(!m->full && !m->v7->att_key && m->v7->in_block < m->v7->total);
    size_t T;
    int *tok = test_h5_read_int(golden, "/tokens", &T);
    ck_assert_ptr_nonnull(tok);
    int L = m->cfg.n_layer, C = m->cfg.n_embd, V = m->cfg.n_vocab;
    uint32_t mask[16];
    test_capture cap;
    test_capture_init(&cap, m->cfg, (int)T, mask);
    rwkv_hook hook = {.mask = mask, .fn = test_capture_fn, .ctx = &cap};
    rwkv_real *logits = malloc(T * V * sizeof *logits);
    rwkv_state *s;
    ck_assert(!rwkv_state_alloc(&s, m->cfg));
    run_calls(m, s, tok, (int)T, call, chunk, seq, logits, &hook);
    expect_close(golden, "/logits", logits, T * V, what);
    int traces = 0, taps = 0;
    for (int t = 0; t < RWKV_TAP_N_BLOCK; t++) {
        char name[96];
        snprintf(name, sizeof name, "/trace/%s", RWKV_TAP_NAMES[t]);
        taps += cap.taps[t] != NULL;
        if (!cap.taps[t] || (t == RWKV_TAP_STATE_WKV && strstr(golden, "golden7-b"))) continue; // b: final only
        expect_close(golden, name, cap.taps[t], (size_t)L * T * rwkv_tap_width(t, m->cfg), what);
        traces++;
    }
    ck_assert_int_eq(taps, m->cfg.version == RWKV_VERSION_7 ? 18 : m->cfg.version == RWKV_VERSION_6 ? 16 : 15);
    ck_assert_int_eq(traces, strstr(golden, "golden7-b") ? taps - 1 : taps); // every tap the version has
    expect_close(golden, "/final_state/att_xprev", s->att_xprev, (size_t)L * C, what);
    expect_close(golden, "/final_state/ffn_xprev", s->ffn_xprev, (size_t)L * C, what);
    expect_close(golden, "/final_state/wkv", s->wkv, (size_t)L * C * m->cfg.head_size, what);
    test_capture_free(&cap);
    free(logits);
    free(tok);
    rwkv_state_free(s);
    rwkv_model_free(m);
}

static void check_golden(int ci, int seq, int call, int chunk) { check_golden_as(ci, seq, call, chunk, RWKV_WEIGHTS_FP32); }

START_TEST(test_golden_seq) { check_golden(_i, 1, 1 << 20, 1); }
END_TEST

// The same goldens with the matrices read in place (views of the file's tensors): sequential,
// parallel, and chunks of 7 carrying the state.
START_TEST(test_golden_in_place) {
    check_golden_as(_i, 1, 1 << 20, 1, RWKV_WEIGHTS_FILE);
    check_golden_as(_i, 0, 1 << 20, 64, RWKV_WEIGHTS_FILE);
    check_golden_as(_i, 0, 7, 7, RWKV_WEIGHTS_FILE);
}
END_TEST

START_TEST(test_golden_par) { check_golden(_i, 0, 1 << 20, 64); }
END_TEST

// Chunks of 1, 7 and 64 in one parallel call, and calls of 7 tokens carrying the state.
START_TEST(test_golden_chunks) {
    int chunks[] = {1, 7, 64};
    for (int c = 2; c <= 4; c++) { // rand7-b (RWKV-7), rand5-a (RWKV-5.2), rand6-a (RWKV-6)
        for (int i = 0; i < 3; i++) check_golden(c, 0, 1 << 20, chunks[i]);
        check_golden(c, 0, 7, 64);
        check_golden(c, 1, 7, 1);
    }
}
END_TEST


// 600 tokens: sequential equals one parallel call; chunks of 1, 7, 64 equal it too.
START_TEST(test_modes_and_chunks_agree) {
    rwkv_model *m = load("rand7-b.pth");
    int T = 600, V = m->cfg.n_vocab;
    int *tok = test_random_tokens(T, V, 11);
    size_t nl = (size_t)T * V;
    rwkv_real *ref = malloc(nl * sizeof *ref), *got = malloc(nl * sizeof *got);
    rwkv_state *sref, *s;
    rwkv_state_alloc(&sref, m->cfg);
    rwkv_state_alloc(&s, m->cfg);
    size_t ns = rwkv_state_numel(s);
    run_calls(m, sref, tok, T, T, T, 0, ref, NULL);
    run_calls(m, s, tok, T, T, 1, 1, got, NULL);
    ck_assert_msg(test_max_scaled_err_r(got, ref, nl) < TOL, "seq vs par logits %g", test_max_scaled_err_r(got, ref, nl));
    ck_assert_msg(test_max_scaled_err_r(s->data, sref->data, ns) < TOL, "seq vs par state %g", test_max_scaled_err_r(s->data, sref->data, ns));
    int chunks[] = {1, 7, 64};
    for (int i = 0; i < 3; i++) {
        run_calls(m, s, tok, T, chunks[i], chunks[i], 0, got, NULL);
        ck_assert_msg(test_max_scaled_err_r(got, ref, nl) < TOL, "chunk %d logits %g", chunks[i], test_max_scaled_err_r(got, ref, nl));
        ck_assert_msg(test_max_scaled_err_r(s->data, sref->data, ns) < TOL, "chunk %d state", chunks[i]);
    }
    free(tok); free(ref); free(got);
    rwkv_state_free(s);
    rwkv_state_free(sref);
    rwkv_model_free(m);
}
END_TEST

// RWKV-5.2 over 300 tokens: sequential equals parallel, chunks of 1, 7, 64 equal one call, and a
// saved state resumes exactly; the state file says RWKV-5.
START_TEST(test_v5_modes_and_state) {
    rwkv_model *m = load(TINY5);
    int T = 300, V = m->cfg.n_vocab;
    int *tok = test_random_tokens(T, V, 5);
    size_t nl = (size_t)T * V;
    rwkv_real *ref = malloc(nl * sizeof *ref), *got = malloc(nl * sizeof *got);
    rwkv_state *sref, *s;
    rwkv_state_alloc(&sref, m->cfg);
    rwkv_state_alloc(&s, m->cfg);
    ck_assert_uint_eq(rwkv_state_numel(s), (size_t)12 * (2 * 64 + 8 * 8 * 8));
    run_calls(m, sref, tok, T, T, T, 0, ref, NULL);
    run_calls(m, s, tok, T, T, 1, 1, got, NULL);
    ck_assert_msg(test_max_scaled_err_r(got, ref, nl) < TOL, "seq vs par logits %g", test_max_scaled_err_r(got, ref, nl));
    int chunks[] = {1, 7, 64};
    for (int i = 0; i < 3; i++) {
        run_calls(m, s, tok, T, chunks[i], chunks[i], 0, got, NULL);
        ck_assert_msg(test_max_scaled_err_r(got, ref, nl) < TOL, "chunk %d logits %g", chunks[i], test_max_scaled_err_r(got, ref, nl));
        ck_assert_msg(test_max_scaled_err_r(s->data, sref->data, rwkv_state_numel(s)) < TOL, "chunk %d state", chunks[i]);
    }
    char path[512];
    snprintf(path, sizeof path, "%s/v5state.h5", test_tmpdir());
    ck_assert_msg(!rwkv_state_save(path, sref, m, T, "test", 1), "%s", rwkv_error_message());
    rwkv_state_reset(s);
    ck_assert_msg(!rwkv_state_load(s, path, m), "%s", rwkv_error_message());
    ck_assert(!memcmp(s->data, sref->data, rwkv_state_numel(s) * sizeof(rwkv_real)));
    rwkv_model *m7 = load("rand7-a.pth");
    rwkv_state *s7;
    rwkv_state_alloc(&s7, m7->cfg);
    ck_assert_int_eq(rwkv_state_load(s7, path, m7), RWKV_ERR_SHAPE);
    ck_assert_ptr_nonnull(strstr(rwkv_error_message(), "RWKV-5 model, but the model is RWKV-7"));
    rwkv_state_free(s7);
    rwkv_model_free(m7);
    free(tok); free(ref); free(got);
    rwkv_state_free(s);
    rwkv_state_free(sref);
    rwkv_model_free(m);
}
END_TEST

// A saved state reloads bit for bit, and resuming from it equals the unbroken run.
START_TEST(test_state_save_load) {
    rwkv_model *m = load("rand7-b.pth");
    int T = 30, V = m->cfg.n_vocab;
    int *tok = test_random_tokens(T, V, 3);
    rwkv_state *s, *r;
    rwkv_workspace *ws;
    rwkv_state_alloc(&s, m->cfg);
    rwkv_state_alloc(&r, m->cfg);
    rwkv_workspace_alloc(&ws, m->cfg, 16);
    rwkv_real *full = malloc((size_t)T * V * sizeof *full), *tail = malloc((size_t)T * V * sizeof *tail);
    ck_assert(!rwkv_forward_seq(m, s, tok, T, full, RWKV_LOGITS_ALL, NULL, ws));
    rwkv_state_reset(s);
    ck_assert(!rwkv_forward_seq(m, s, tok, 12, tail, RWKV_LOGITS_ALL, NULL, ws));
    char path[512];
    snprintf(path, sizeof path, "%s/v7state.h5", test_tmpdir());
    ck_assert_msg(!rwkv_state_save(path, s, m, 12, "test", 1), "%s", rwkv_error_message());
    ck_assert_msg(!rwkv_state_load(r, path, m), "%s", rwkv_error_message());
    ck_assert(!memcmp(r->data, s->data, rwkv_state_numel(s) * sizeof(rwkv_real)));
    ck_assert(!rwkv_forward_seq(m, r, tok + 12, T - 12, tail, RWKV_LOGITS_ALL, NULL, ws));
    ck_assert(!memcmp(tail, full + (size_t)12 * V, (size_t)(T - 12) * V * sizeof *tail)); // same arithmetic: exact
    int nd;
    uint64_t d[4];
    double *wkv = test_h5_read(path, "/state/wkv", &nd, d);
    ck_assert_int_eq(nd, 4);
    ck_assert(d[0] == 3 && d[1] == 2 && d[2] == 32 && d[3] == 32);
    free(wkv);
    // an RWKV-4 model refuses it, naming both versions
    rwkv_model *m4 = load("rand-L2-C32-V50.pth");
    rwkv_state *s4;
    rwkv_state_alloc(&s4, m4->cfg);
    ck_assert_int_eq(rwkv_state_load(s4, path, m4), RWKV_ERR_SHAPE);
    ck_assert_ptr_nonnull(strstr(rwkv_error_message(), "RWKV-7 model, but the model is RWKV-4"));
    // a v7 model of another head size refuses it
    rwkv_model *ma = load("rand7-a.pth");
    rwkv_state *sa;
    rwkv_state_alloc(&sa, ma->cfg);
    ck_assert_int_ne(rwkv_state_load(sa, path, ma), RWKV_OK);
    // a misshaped /state/wkv is a shape error naming the dataset
    hid_t f = H5Fopen(path, H5F_ACC_RDWR, H5P_DEFAULT);
    H5Ldelete(f, "/state/wkv", H5P_DEFAULT);
    hsize_t bad[4] = {3, 2, 32, 31};
    hid_t sp = H5Screate_simple(4, bad, NULL);
    hid_t ds = H5Dcreate2(f, "/state/wkv", H5T_IEEE_F32LE, sp, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    H5Dclose(ds);
    H5Sclose(sp);
    H5Fclose(f);
    ck_assert_int_eq(rwkv_state_load(r, path, m), RWKV_ERR_SHAPE);
    ck_assert_ptr_nonnull(strstr(rwkv_error_message(), "/state/wkv has the wrong shape (want [3, 2, 32, 32])"));
    rwkv_state_free(sa);
    rwkv_model_free(ma);
    rwkv_state_free(s4);
    rwkv_model_free(m4);
    free(full); free(tail); free(tok);
    rwkv_workspace_free(ws);
    rwkv_state_free(s);
    rwkv_state_free(r);
    rwkv_model_free(m);
}
END_TEST

// Dumps every tap of the golden's tokens at every 7th position (sequential mode) to path.
static int *dump_every_7th(const rwkv_model *m, const char *golden, const char *path, size_t *T) {
    int *tok = test_h5_read_int(golden, "/tokens", T);
    uint32_t mask[8];
    rwkv_positions pos;
    ck_assert(!rwkv_select_taps(mask, m->cfg.n_layer, "*"));
    ck_assert(!rwkv_select_positions(&pos, "every:7"));
    rwkv_dump_opts o = {.parallel = 0, .force = 1, .taps = "*", .positions = "every:7", .chunk_rows = 8};
    rwkv_dump *d;
    rwkv_state *s;
    rwkv_workspace *ws;
    rwkv_state_alloc(&s, m->cfg);
    rwkv_workspace_alloc(&ws, m->cfg, 1);
    ck_assert_msg(!rwkv_dump_create(&d, path, m, mask, &pos, &o), "%s", rwkv_error_message());
    ck_assert_msg(!rwkv_dump_run(d, s, ws, tok, (int64_t)*T, NULL, NULL), "%s", rwkv_error_message());
    ck_assert(!rwkv_dump_close(d));
    rwkv_select_positions_free(&pos);
    rwkv_workspace_free(ws);
    rwkv_state_free(s);
    return tok;
}

// Every tap's rows of a dump_every_7th file against the golden trace; the taps checked.
static int check_dump_rows(const rwkv_dump_reader *r, const rwkv_model *m, const char *golden, size_t T) {
    ck_assert_int_eq(r->n_rows, ((int64_t)T + 6) / 7);
    int L = m->cfg.n_layer, checked = 0;
    for (int t = 0; t < RWKV_TAP_N_BLOCK; t++) {
        int D = rwkv_tap_width(t, m->cfg);
        ck_assert_int_eq(rwkv_dump_width(r, 0, t), D); // 0 for the RWKV-4 taps: not written
        if (!D) continue;
        char name[96];
        snprintf(name, sizeof name, "/trace/%s", RWKV_TAP_NAMES[t]);
        int nd;
        uint64_t dims[4];
        double *ref = test_h5_read(golden, name, &nd, dims);
        ck_assert_ptr_nonnull(ref);
        rwkv_real *rows = malloc((size_t)r->n_rows * D * sizeof *rows);
        for (int l = 0; l < L; l++) {
            ck_assert(!rwkv_dump_read_rows(r, l, t, 0, r->n_rows, rows));
            for (int64_t i = 0; i < r->n_rows; i++) {
                double e = test_max_scaled_err(rows + i * D, ref + ((size_t)l * T + (size_t)(7 * i)) * D, (size_t)D);
                ck_assert_msg(e < TOL, "%s layer %d row %lld: %g", name, l, (long long)i, e);
            }
        }
        free(rows);
        free(ref);
        checked++;
    }
    return checked;
}

// A sequential dump of every tap, subsampled to every 7th position, holds the golden's rows;
// state_wkv rows carry row_shape [H, N, N].
START_TEST(test_dump_every_tap) {
    char golden[512], path[512];
    snprintf(golden, sizeof golden, "%s", test_fixture("golden7-a.h5"));
    snprintf(path, sizeof path, "%s/v7dump.h5", test_tmpdir());
    rwkv_model *m = load("rand7-a.pth");
    size_t T;
    int *tok = dump_every_7th(m, golden, path, &T);
    rwkv_dump_reader *r;
    ck_assert_msg(!rwkv_dump_open(&r, path), "%s", rwkv_error_message());
    ck_assert_int_eq(r->cfg.version, RWKV_VERSION_7);
    ck_assert_int_eq(check_dump_rows(r, m, golden, T), 18);
    rwkv_dump_reader_free(r);
    hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    hid_t ds = H5Dopen2(f, "/blocks/1/state_wkv", H5P_DEFAULT);
    hid_t a = H5Aopen(ds, "row_shape", H5P_DEFAULT);
    int64_t shape[3] = {0, 0, 0};
    H5Aread(a, H5T_NATIVE_INT64, shape);
    ck_assert(shape[0] == 2 && shape[1] == 16 && shape[2] == 16);
    H5Aclose(a);
    // Dimension scales: column h*N*N + i*N + j of state_wkv is head h, value i, key j; channel
    // c of a tap is in head c / N.
    ck_assert_int_eq(H5DSget_num_scales(ds, 1), 3);
    const char *scales[3] = {"/dims/state_head", "/dims/state_value", "/dims/state_key"};
    int64_t *idx = malloc(2 * 16 * 16 * sizeof *idx);
    for (int k = 0; k < 3; k++) {
        hid_t sc = H5Dopen2(f, scales[k], H5P_DEFAULT);
        ck_assert_int_eq(H5DSis_attached(ds, sc, 1), 1);
        ck_assert_int_ge(H5Dread(sc, H5T_NATIVE_INT64, H5S_ALL, H5S_ALL, H5P_DEFAULT, idx), 0);
        for (int h = 0; h < 2; h++)
            for (int i = 0; i < 16; i++)
                for (int j = 0; j < 16; j++) ck_assert_int_eq(idx[(h * 16 + i) * 16 + j], k == 0 ? h : k == 1 ? i : j);
        H5Dclose(sc);
    }
    H5Dclose(ds);
    ds = H5Dopen2(f, "/blocks/0/att_kk", H5P_DEFAULT);
    hid_t head = H5Dopen2(f, "/dims/head", H5P_DEFAULT);
    char label[32] = "";
    ck_assert_int_eq(H5DSis_attached(ds, head, 1), 1);
    ck_assert_int_gt(H5DSget_scale_name(head, label, sizeof label), 0);
    ck_assert_str_eq(label, "head");
    ck_assert_int_ge(H5Dread(head, H5T_NATIVE_INT64, H5S_ALL, H5S_ALL, H5P_DEFAULT, idx), 0);
    for (int c = 0; c < 32; c++) ck_assert_int_eq(idx[c], c / 16);
    free(idx);
    H5Dclose(head);
    H5Dclose(ds);
    H5Fclose(f);
    free(tok);
    rwkv_model_free(m);
}
END_TEST

// An RWKV-6 dump: its 16 taps against the golden, read back as RWKV-6 (head size 8); a dump
// whose rwkv_version no rwkvscope writes is refused, not read as RWKV-4.
START_TEST(test_v6_dump) {
    char golden[512], path[512];
    snprintf(golden, sizeof golden, "%s", test_fixture("golden6-a.h5"));
    snprintf(path, sizeof path, "%s/v6dump.h5", test_tmpdir());
    rwkv_model *m = load("rand6-a.pth");
    size_t T;
    int *tok = dump_every_7th(m, golden, path, &T);
    rwkv_dump_reader *r;
    ck_assert_msg(!rwkv_dump_open(&r, path), "%s", rwkv_error_message());
    ck_assert_int_eq(r->cfg.version, RWKV_VERSION_6);
    ck_assert_int_eq(r->cfg.head_size, 8);
    ck_assert_int_eq(check_dump_rows(r, m, golden, T), 16);
    rwkv_dump_reader_free(r);
    hid_t f = H5Fopen(path, H5F_ACC_RDWR, H5P_DEFAULT);
    hid_t a = H5Aopen(f, "rwkv_version", H5P_DEFAULT);
    int64_t v = 9;
    ck_assert_int_ge(H5Awrite(a, H5T_NATIVE_INT64, &v), 0);
    H5Aclose(a);
    H5Fclose(f);
    r = (rwkv_dump_reader *)1;
    ck_assert_int_eq(rwkv_dump_open(&r, path), RWKV_ERR_UNSUPPORTED);
    ck_assert_msg(strstr(rwkv_error_message(), "v6dump.h5: rwkv_version 9 is not one this rwkvscope reads"), "%s",
                  rwkv_error_message());
    free(tok);
    rwkv_model_free(m);
}
END_TEST

// Reads fixture `file` (safetensors), lets `edit` damage it, and builds a model: the error it gives.
static rwkv_status build_edited_from(const char *file, void (*edit)(rwkv_tensor_set *), rwkv_model **m) {
    rwkv_tensor_set ts;
    rwkv_tensors_init(&ts);
    ck_assert(!rwkv_safetensors_read(test_fixture(file), &ts));
    edit(&ts);
    rwkv_status st = rwkv_model_from_tensors(m, &ts, "edited.safetensors", "safetensors");
    rwkv_tensors_free(&ts);
    return st;
}

// A damage, and the error it must give.
typedef struct {
    void (*edit)(rwkv_tensor_set *);
    rwkv_status st;
    const char *msg;
} edit_case;

// Each case on fixture `file`: its status and message, and no model.
static void check_edits(const char *file, const edit_case *cases, size_t n) {
    for (size_t i = 0; i < n; i++) {
        rwkv_model *m = (rwkv_model *)1;
        rwkv_status st = build_edited_from(file, cases[i].edit, &m);
        ck_assert_msg(st == cases[i].st, "%s case %zu: status %d: %s", file, i, st, rwkv_error_message());
        ck_assert_ptr_null(m);
        ck_assert_msg(strstr(rwkv_error_message(), cases[i].msg), "%s case %zu: '%s'", file, i, rwkv_error_message());
    }
}

static rwkv_tensor *item(rwkv_tensor_set *ts, const char *name) {
    for (int i = 0; i < ts->n; i++)
        if (!strcmp(ts->items[i].name, name)) return &ts->items[i];
    ck_abort_msg("no tensor %s", name);
    return NULL;
}

static void drop_a2(rwkv_tensor_set *ts) { snprintf(item(ts, "blocks.1.att.a2")->name, 128, "blocks.1.att.a2_gone"); }
static void shrink_w1(rwkv_tensor_set *ts) { item(ts, "blocks.1.att.w1")->shape[1] = 7; }
static void bad_rk(rwkv_tensor_set *ts) { item(ts, "blocks.0.att.r_k")->shape[1] = 12; }
static void no_version(rwkv_tensor_set *ts) {
    for (int l = 0; l < 2; l++) {
        char n[64];
        snprintf(n, sizeof n, "blocks.%d.att.k_k", l);
        snprintf(item(ts, n)->name, 128, "blocks.%d.att.kk_renamed", l);
    }
}
static void looks_v5(rwkv_tensor_set *ts) {
    no_version(ts);
    snprintf(item(ts, "blocks.0.att.w0")->name, 128, "blocks.0.att.time_decay"); // RWKV-5: time_decay and ln_x
}

// A NaN at element 3 of a float32 tensor, in a copy the set owns (the file is mapped read-only).
static void put_nan(rwkv_tensor_set *ts, const char *name) {
    rwkv_tensor *t = item(ts, name);
    ck_assert_int_eq(t->dtype, RWKV_DT_F32);
    size_t n = (size_t)rwkv_tensor_numel(t);
    float *copy = malloc(n * sizeof *copy);
    ck_assert_ptr_nonnull(copy);
    memcpy(copy, t->data, n * sizeof *copy);
    copy[3] = NAN;
    ck_assert_int_eq(rwkv_tensors_own(ts, copy), RWKV_OK);
    t->data = copy;
}
static void nan_w0(rwkv_tensor_set *ts) { put_nan(ts, "blocks.1.att.w0"); }
static void nan_head(rwkv_tensor_set *ts) { put_nan(ts, "head.weight"); }

// Damaged v7 checkpoints: each error names the file and the tensor, and nothing leaks.
START_TEST(test_bad_v7_files) {
    static const edit_case cases[] = {
        {drop_a2, RWKV_ERR_SHAPE, "edited.safetensors: tensor blocks.1.att.a2 is missing"},
        {shrink_w1, RWKV_ERR_SHAPE, "edited.safetensors: tensor blocks.1.att.w1 has shape [32, 7], expected [32, 8]"},
        {bad_rk, RWKV_ERR_SHAPE, "head size 12 (from blocks.0.att.r_k) must divide n_embd 32"},
        {no_version, RWKV_ERR_UNSUPPORTED, "edited.safetensors: unknown RWKV version"},
        {looks_v5, RWKV_ERR_UNSUPPORTED, "an RWKV-5.0/5.1 checkpoint (ln_x without att.gate): not supported"},
        {nan_w0, RWKV_ERR_NUMERIC, "edited.safetensors: tensor blocks.1.att.w0: element 3 is not finite"},
        {nan_head, RWKV_ERR_NUMERIC, "edited.safetensors: tensor head.weight: element 3 is not finite"},
    };
    check_edits("rand7-a.safetensors", cases, sizeof cases / sizeof cases[0]);
    // a truncated rwkv.cpp file
    char path[512];
    snprintf(path, sizeof path, "%s/tiny7-cut.bin", test_tmpdir());
    FILE *in = fopen(test_fixture(TINY7), "rb"), *out = fopen(path, "wb");
    char buf[4096];
    for (int k = 0; k < 200; k++) fwrite(buf, 1, fread(buf, 1, sizeof buf, in), out);
    fclose(in);
    fclose(out);
    rwkv_model *m;
    ck_assert_int_eq(rwkv_model_load(&m, path), RWKV_ERR_FORMAT);
    ck_assert_ptr_nonnull(strstr(rwkv_error_message(), "overrun the file (truncated?)"));
}
END_TEST

static void drop_maa_w2(rwkv_tensor_set *ts) {
    snprintf(item(ts, "blocks.1.att.time_maa_w2")->name, 128, "blocks.1.att.time_maa_w2_gone");
}
static void bad_maa_w2(rwkv_tensor_set *ts) { item(ts, "blocks.1.att.time_maa_w2")->shape[1] = 2; }
static void flat_maa_w2(rwkv_tensor_set *ts) {
    rwkv_tensor *t = item(ts, "blocks.0.att.time_maa_w2");
    t->ndim = 2, t->shape[0] = 20, t->shape[1] = 32;
}
static void bad_maa_rank(rwkv_tensor_set *ts) { item(ts, "blocks.0.att.time_maa_w1")->shape[1] = 19; }
static void bad_decay_w1(rwkv_tensor_set *ts) { item(ts, "blocks.1.att.time_decay_w1")->shape[0] = 16; }
static void nan_decay_w2(rwkv_tensor_set *ts) { put_nan(ts, "blocks.1.att.time_decay_w2"); }

// Damaged RWKV-6 checkpoints: each error names the file and the tensor.
START_TEST(test_bad_v6_files) {
    static const edit_case cases[] = {
        {drop_maa_w2, RWKV_ERR_SHAPE, "edited.safetensors: tensor blocks.1.att.time_maa_w2 is missing"},
        {bad_maa_w2, RWKV_ERR_SHAPE, "tensor blocks.1.att.time_maa_w2 has shape [5, 2, 32], expected [5, 4, 32]"},
        {flat_maa_w2, RWKV_ERR_SHAPE, "tensor blocks.0.att.time_maa_w2 has shape [20, 32], expected [5, 4, 32]"},
        {bad_maa_rank, RWKV_ERR_SHAPE, "blocks.0.att.time_maa_w1: its rank 19 is not 5 slices"},
        {bad_decay_w1, RWKV_ERR_SHAPE, "tensor blocks.1.att.time_decay_w1 has shape [16, 8], expected [32, 8]"},
        {nan_decay_w2, RWKV_ERR_NUMERIC, "tensor blocks.1.att.time_decay_w2: element 24 is not finite"}, // (3, 0) once transposed
    };
    check_edits("rand6-a.safetensors", cases, sizeof cases / sizeof cases[0]);
    // rwkv.cpp's reader tells RWKV-6's raw time_decay by the file's tensors, not their order
    rwkv_model *a = load("rand6-a.bin"), *b = load("rand6-a-misordered.bin");
    ck_assert_uint_eq(a->v7->total, b->v7->total);
    ck_assert(!memcmp(a->v7->block, b->v7->block, a->v7->total * sizeof(rwkv_real)));
    rwkv_model_free(a);
    rwkv_model_free(b);
    rwkv_model *m = load("rand6-a.pth"); // the version and sizes the loader found
    ck_assert_int_eq(m->cfg.version, RWKV_VERSION_6);
    ck_assert_int_eq(m->cfg.head_size, 8);
    ck_assert_int_eq(m->v7->d.d_m, 4);
    ck_assert_int_eq(m->v7->d.d_w, 8);
    ck_assert_int_eq(rwkv_tap_width(RWKV_TAP_ATT_W, m->cfg), 32);
    ck_assert_int_eq(rwkv_tap_width(RWKV_TAP_ATT_KK, m->cfg), 0);
    ck_assert_int_eq(rwkv_tap_width(RWKV_TAP_FFN_GATE, m->cfg), 32);
    rwkv_model_free(m);
}
END_TEST

// Tools and taps that RWKV-7 does not have say so.
START_TEST(test_v7_refusals) {
    rwkv_model *m = load("rand7-a.pth");
    ck_assert_int_eq(rwkv_tap_width(RWKV_TAP_STATE_NUM, m->cfg), 0);
    ck_assert_int_eq(rwkv_tap_width(RWKV_TAP_STATE_WKV, m->cfg), 2 * 16 * 16);
    uint32_t mask[3];
    ck_assert(!rwkv_select_taps(mask, 2, "*") && !rwkv_select_restrict(mask, m->cfg, "*"));
    ck_assert_int_eq(rwkv_select_count(mask, 2), 2 * 18 + 2); // the taps an RWKV-7 block has, and the globals
    ck_assert(!rwkv_select_taps(mask, 2, "blocks.*.state_num"));
    ck_assert_int_eq(rwkv_select_restrict(mask, m->cfg, "blocks.*.state_num"), RWKV_ERR_ARG);
    ck_assert_ptr_nonnull(strstr(rwkv_error_message(), "selects no tap this RWKV-7 model has"));
    ck_assert_int_eq(rwkv_model_require_v4(m, "train"), RWKV_ERR_UNSUPPORTED);
    ck_assert_ptr_nonnull(strstr(rwkv_error_message(), "train supports RWKV-4 models only"));
    rwkv_model_free(m);
    char *out = NULL;
    // recall runs on RWKV-7 (tests/test_recall.c) but checks the task's bytes fit its vocabulary.
    int rc = test_cli(&out, "recall %s --lengths 100 --trials 1 -o %s/r.csv 2>&1", test_fixture("rand7-a.pth"), test_tmpdir());
    ck_assert_int_ne(rc, 0);
    ck_assert_msg(strstr(out, "vocabulary of 40") && !strstr(out, "RWKV-4 models only"), "%s", out);
    free(out);
    rc = test_cli(&out, "run %s --tokens 1,2,3 --intervene 'blocks.0.att_gate@*=zero' 2>&1", test_fixture("rand7-a.pth"));
    ck_assert_int_ne(rc, 0);
    ck_assert_msg(strstr(out, "an RWKV-7 model has no such tap"), "%s", out);
    free(out);
    rc = test_cli(&out, "info %s", test_fixture(TINY7));
    ck_assert_int_eq(rc, 0);
    ck_assert_msg(strstr(out, "version: RWKV-7") && strstr(out, "heads: 1\nhead_size: 64\n") &&
                      strstr(out, "state: 4224 values per layer") && strstr(out, "parameters: 834048"),
                  "%s", out);
    free(out);
}
END_TEST

// A state_wkv stream wider than the dump's buffer budget (64 KB rows, 200 per call): the hook
// compresses full chunks as the rows come, and the file holds exactly the run's rows.
// A random one-layer RWKV-7 with the official head size (4 heads of 64).
static rwkv_model *wide_model(void) {
    rwkv_config cfg = {.n_layer = 1, .n_embd = 256, .n_ffn = 256, .n_vocab = 40, .head_size = 64};
    rwkv_model *m;
    ck_assert(!rwkv_v7_model_alloc(&m, cfg, (rwkv_v7_dims){.d_w = 8, .d_a = 8, .d_g = 8}));
    uint64_t x = 12345;
    for (size_t i = 0; i < m->v7->total; i++) { // xorshift in [-0.1, 0.1)
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        m->v7->block[i] = (rwkv_real)((double)(x >> 11) / 9007199254740992.0 - 0.5) * (rwkv_real)0.2;
    }
    return m;
}

// Every tap of T tokens of m into cap (mask: its selection), in parallel calls of `step`.
static void capture_calls(const rwkv_model *m, const int *tok, int T, int step, test_capture *cap, uint32_t *mask) {
    test_capture_init(cap, m->cfg, T, mask);
    rwkv_hook hook = {.mask = mask, .fn = test_capture_fn, .ctx = cap};
    rwkv_state *s;
    rwkv_workspace *ws;
    rwkv_state_alloc(&s, m->cfg);
    rwkv_workspace_alloc(&ws, m->cfg, step);
    for (int t = 0; t < T; t += step) {
        hook.pos = t;
        ck_assert(!rwkv_forward_par(m, s, tok + t, T - t < step ? T - t : step, NULL, RWKV_LOGITS_NONE, &hook, ws));
    }
    rwkv_workspace_free(ws);
    rwkv_state_free(s);
}

START_TEST(test_dump_wide_state) {
    rwkv_model *m = wide_model();
    rwkv_config cfg = m->cfg;
    int T = 200;
    int *tok = test_random_tokens(T, cfg.n_vocab, 9);
    uint32_t mask[2];
    test_capture cap;
    capture_calls(m, tok, T, T, &cap, mask);
    rwkv_state *s;
    rwkv_workspace *ws;
    rwkv_state_alloc(&s, m->cfg);
    rwkv_workspace_alloc(&ws, m->cfg, T);
    char path[512];
    snprintf(path, sizeof path, "%s/v7wide.h5", test_tmpdir());
    rwkv_positions pos;
    ck_assert(!rwkv_select_taps(mask, 1, "blocks.*.state_wkv") && !rwkv_select_positions(&pos, "all"));
    rwkv_dump_opts o = {.parallel = 1, .force = 1, .taps = "blocks.*.state_wkv", .positions = "all"};
    rwkv_dump *d;
    rwkv_state_reset(s);
    ck_assert_msg(!rwkv_dump_create(&d, path, m, mask, &pos, &o), "%s", rwkv_error_message());
    ck_assert_msg(!rwkv_dump_run(d, s, ws, tok, T, NULL, NULL), "%s", rwkv_error_message());
    ck_assert(!rwkv_dump_close(d));
    rwkv_select_positions_free(&pos);
    rwkv_dump_reader *r;
    ck_assert_msg(!rwkv_dump_open(&r, path), "%s", rwkv_error_message());
    size_t D = (size_t)rwkv_tap_width(RWKV_TAP_STATE_WKV, m->cfg), n = (size_t)T * D;
    ck_assert_uint_eq(D, 256 * 64);
    ck_assert_int_eq(r->n_rows, T);
    rwkv_real *rows = malloc(n * sizeof *rows);
    ck_assert(!rwkv_dump_read_rows(r, 0, RWKV_TAP_STATE_WKV, 0, T, rows));
    ck_assert(!memcmp(rows, cap.taps[RWKV_TAP_STATE_WKV], n * sizeof *rows));
    free(rows);
    rwkv_dump_reader_free(r);
    test_capture_free(&cap);
    free(tok);
    rwkv_workspace_free(ws);
    rwkv_state_free(s);
    rwkv_model_free(m);
}
END_TEST

// A hook that passes the rows on to the dump and, at position exit_at, ends the process as a
// kill would (no close), after the flushes of the calls before it.
static rwkv_dump *raw_dump;
static int64_t raw_exit_at = -1;
static rwkv_status raw_hook_fn(void *ctx, int layer, rwkv_tap tap, int64_t pos, int n, int D, rwkv_real *data) {
    (void)ctx;
    if (pos == raw_exit_at) _exit(0);
    return rwkv_dump_tap(raw_dump, layer, tap, pos, n, D, data);
}

// Dumps `taps` of T tokens of the wide model in calls of 30 rows under policy c, with chunks of
// chunk_rows rows (0: the writer's; state_wkv's are then 16, so calls end mid-chunk and rows are
// both buffered and stored straight from the trace), flushing to disk after each call;
// exit_at >= 0 kills the run there.
static void dump_wide(const rwkv_model *m, const int *tok, int T, const char *taps, rwkv_dump_compress c,
                      int chunk_rows, const char *path, int64_t exit_at) {
    uint32_t mask[2];
    rwkv_positions pos;
    ck_assert(!rwkv_select_taps(mask, 1, taps) && !rwkv_select_positions(&pos, "all"));
    rwkv_dump_opts o = {.parallel = 1, .force = 1, .taps = taps, .positions = "all", .compress = c, .flush_mb = 1,
                        .chunk_rows = chunk_rows};
    rwkv_state *s;
    rwkv_workspace *ws;
    rwkv_state_alloc(&s, m->cfg);
    rwkv_workspace_alloc(&ws, m->cfg, 30);
    ck_assert_msg(!rwkv_dump_create(&raw_dump, path, m, mask, &pos, &o), "%s", rwkv_error_message());
    raw_exit_at = exit_at;
    rwkv_hook h = {.mask = mask, .fn = raw_hook_fn};
    ck_assert_msg(!rwkv_dump_run(raw_dump, s, ws, tok, T, NULL, &h), "%s", rwkv_error_message());
    ck_assert(!rwkv_dump_close(raw_dump));
    rwkv_select_positions_free(&pos);
    rwkv_workspace_free(ws);
    rwkv_state_free(s);
}

// Rows [0, n) of state_wkv in path, through the library's reader and HDF5's own H5Dread,
// equal the forward's rows bit for bit; the dataset has the filters policy c gives it.
static void check_wide_state(const char *path, const rwkv_real *want, int64_t n, size_t D, int filtered) {
    rwkv_dump_reader *r;
    ck_assert_msg(!rwkv_dump_open(&r, path), "%s", rwkv_error_message());
    ck_assert_int_eq(r->n_rows, n);
    rwkv_real *rows = malloc((size_t)n * D * sizeof *rows);
    ck_assert(!rwkv_dump_read_rows(r, 0, RWKV_TAP_STATE_WKV, 0, n, rows));
    ck_assert(!memcmp(rows, want, (size_t)n * D * sizeof *rows));
    rwkv_dump_reader_free(r);
    memset(rows, 0, (size_t)n * D * sizeof *rows);
    hid_t f = H5Fopen(path, H5F_ACC_RDONLY | H5F_ACC_SWMR_READ, H5P_DEFAULT);
    hid_t ds = H5Dopen2(f, "/blocks/0/state_wkv", H5P_DEFAULT);
    hid_t p = H5Dget_create_plist(ds), sp = H5Dget_space(ds);
    hsize_t dims[2];
    H5Sget_simple_extent_dims(sp, dims, NULL);
    ck_assert(dims[0] == (hsize_t)n && dims[1] == D);
    ck_assert_int_eq(H5Pget_nfilters(p), filtered ? 2 : 0);
    ck_assert_int_ge(H5Dread(ds, RWKV_H5_REAL, H5S_ALL, H5S_ALL, H5P_DEFAULT, rows), 0);
    ck_assert(!memcmp(rows, want, (size_t)n * D * sizeof *rows));
    H5Sclose(sp); H5Pclose(p); H5Dclose(ds); H5Fclose(f);
    free(rows);
}

// state_wkv under each --compress policy (_i: all, small, none) reads back bit-identical, also
// from a run killed mid-sequence (rows up to its last flush; SWMR keeps them readable).
START_TEST(test_dump_raw_state) {
    static const rwkv_dump_compress policy[3] = {RWKV_DUMP_COMPRESS_ALL, RWKV_DUMP_COMPRESS_SMALL,
                                                 RWKV_DUMP_COMPRESS_NONE};
    rwkv_model *m = wide_model();
    int T = 200;
    int *tok = test_random_tokens(T, m->cfg.n_vocab, 9);
    uint32_t mask[2];
    test_capture cap;
    capture_calls(m, tok, T, 30, &cap, mask); // the dump's calls: the same rows bit for bit
    size_t D = (size_t)rwkv_tap_width(RWKV_TAP_STATE_WKV, m->cfg);
    const rwkv_real *want = cap.taps[RWKV_TAP_STATE_WKV];
    char path[512];
    snprintf(path, sizeof path, "%s/v7raw%d.h5", test_tmpdir(), _i);
    dump_wide(m, tok, T, "blocks.*.state_wkv", policy[_i], 0, path, -1);
    check_wide_state(path, want, T, D, _i == 0);
    remove(path); // the killed run below writes path itself, not a temporary beside it
    fflush(NULL);
    pid_t pid = fork(); // killed in the call at 150: the calls up to 120 were flushed
    ck_assert_int_ge(pid, 0);
    if (pid == 0) { // libgomp's thread pool does not survive fork: the child runs on one thread
        omp_set_num_threads(1);
        dump_wide(m, tok, T, "blocks.*.state_wkv", policy[_i], 0, path, 150);
        _exit(1);
    }
    int status;
    ck_assert_int_eq(waitpid(pid, &status, 0), pid);
    ck_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    check_wide_state(path, want, 144, D, _i == 0); // the 9 whole chunks of 16 of the 150 rows run
    test_capture_free(&cap);
    free(tok);
    rwkv_model_free(m);
}
END_TEST

// Every tap of the wide model in parallel calls of 30 with chunks of 8 rows: at each layer's
// state_wkv rows the other taps' full chunks are waiting, so the raw rows are stored while
// they are compressed. Every block tap reads back bit-identical to the same calls' rows.
START_TEST(test_dump_every_tap_overlapped) {
    rwkv_model *m = wide_model();
    int T = 200, step = 30;
    int *tok = test_random_tokens(T, m->cfg.n_vocab, 10);
    uint32_t mask[2];
    test_capture cap;
    capture_calls(m, tok, T, step, &cap, mask);
    char path[512];
    snprintf(path, sizeof path, "%s/v7overlap.h5", test_tmpdir());
    dump_wide(m, tok, T, "*", RWKV_DUMP_COMPRESS_SMALL, 8, path, -1); // in calls of 30 = step
    rwkv_dump_reader *r;
    ck_assert_msg(!rwkv_dump_open(&r, path), "%s", rwkv_error_message());
    ck_assert_int_eq(r->n_rows, T);
    int checked = 0;
    for (int t = 0; t < RWKV_TAP_N_BLOCK; t++) {
        if (!cap.taps[t]) continue;
        size_t n = (size_t)T * rwkv_tap_width((rwkv_tap)t, m->cfg);
        rwkv_real *rows = malloc(n * sizeof *rows);
        ck_assert_msg(!rwkv_dump_read_rows(r, 0, (rwkv_tap)t, 0, T, rows), "%s", rwkv_error_message());
        ck_assert_msg(!memcmp(rows, cap.taps[t], n * sizeof *rows), "%s differs", RWKV_TAP_NAMES[t]);
        free(rows);
        checked++;
    }
    ck_assert_int_eq(checked, 18); // the RWKV-7 block taps
    rwkv_dump_reader_free(r);
    remove(path);
    test_capture_free(&cap);
    free(tok);
    rwkv_model_free(m);
}
END_TEST

// Runs T tokens of rand7-a with one intervention; the final state into s, logits (T, V).
static void run_iv(const rwkv_model *m, const char *spec, const int *tok, int T, int seq, rwkv_state *s,
                   rwkv_real *logits) {
    rwkv_intervene_list *l = NULL;
    rwkv_workspace *ws;
    rwkv_workspace_alloc(&ws, m->cfg, 16);
    if (spec) ck_assert_msg(!rwkv_intervene_list_from_specs(&l, m->cfg, T, &spec, 1), "%s", rwkv_error_message());
    rwkv_state_reset(s);
    rwkv_status st = rwkv_intervene_forward(m, s, tok, T, 0, logits, RWKV_LOGITS_ALL, l, ws, seq);
    ck_assert_msg(st == RWKV_OK, "%s", rwkv_error_message());
    rwkv_intervene_list_free(l);
    rwkv_workspace_free(ws);
}

// blocks.L.state_wkv:HEAD[:ROW[:COL]]@POS=OP acts on exactly those entries of the matrix
// state, the same in both modes; a head, row or column out of range is a clear error.
START_TEST(test_state_interventions) {
    rwkv_model *m = load("rand7-a.pth");
    int T = 20, V = m->cfg.n_vocab, N = 16;
    size_t NN = (size_t)N * N, per_layer = 2 * NN;
    int *tok = test_random_tokens(T, V, 9);
    rwkv_state *clean, *s, *p;
    rwkv_state_alloc(&clean, m->cfg);
    rwkv_state_alloc(&s, m->cfg);
    rwkv_state_alloc(&p, m->cfg);
    rwkv_real *lc = malloc((size_t)T * V * sizeof *lc), *ls = malloc((size_t)T * V * sizeof *ls),
              *lp = malloc((size_t)T * V * sizeof *lp);
    run_iv(m, NULL, tok, T, 1, clean, lc);
    // zero layer 1's head 1 at the last position: that head is 0 in the final state, head 0 untouched
    run_iv(m, "blocks.1.state_wkv:1@last=zero", tok, T, 1, s, ls);
    for (size_t i = 0; i < NN; i++) {
        ck_assert(s->wkv[per_layer + NN + i] == 0);
        ck_assert(s->wkv[per_layer + i] == clean->wkv[per_layer + i]);
    }
    ck_assert(!memcmp(s->wkv, clean->wkv, per_layer * sizeof(rwkv_real))); // layer 0 untouched
    // one entry S[0][2][3] of layer 0 set at position 7 changes what follows, the same in both modes
    run_iv(m, "blocks.0.state_wkv:0:2:3@7=set:5", tok, T, 1, s, ls);
    run_iv(m, "blocks.0.state_wkv:0:2:3@7=set:5", tok, T, 0, p, lp);
    ck_assert(!memcmp(ls, lc, (size_t)8 * V * sizeof *ls)); // positions 0..7 read the state before it
    double moved = 0;
    for (size_t i = (size_t)8 * V; i < (size_t)T * V; i++) moved = fmax(moved, fabs((double)ls[i] - lc[i]));
    ck_assert_msg(moved > 1e-3, "setting S[0][2][3] = 5 moved later logits by only %g", moved);
    double e = 0;
    for (size_t i = 0; i < (size_t)T * V; i++) e = fmax(e, fabs((double)ls[i] - lp[i]));
    ck_assert_msg(e < TOL, "seq and par disagree by %g", e);
    // a token-shift state changed inside a parallel chunk feeds the next token, as in seq mode
    run_iv(m, "blocks.1.state_att_xprev@7=zero", tok, T, 1, s, ls);
    run_iv(m, "blocks.1.state_att_xprev@7=zero", tok, T, 0, p, lp);
    e = 0;
    for (size_t i = 0; i < (size_t)T * V; i++) e = fmax(e, fabs((double)ls[i] - lp[i]));
    ck_assert_msg(e < TOL, "state_att_xprev: seq and par disagree by %g", e);
    ck_assert(memcmp(ls + (size_t)8 * V, lc + (size_t)8 * V, (size_t)V * sizeof *ls)); // token 8 saw it
    // a no-op on the matrix state at every position changes no bit in either mode
    for (int seq = 0; seq <= 1; seq++) {
        run_iv(m, NULL, tok, T, seq, clean, lc);
        run_iv(m, "blocks.0.state_wkv:*@*=scale:1", tok, T, seq, s, ls);
        ck_assert(!memcmp(ls, lc, (size_t)T * V * sizeof *ls));
        ck_assert(!memcmp(s->data, clean->data, rwkv_state_numel(s) * sizeof(rwkv_real)));
    }
    // a spec naming a head, row or column out of range
    static const struct {
        const char *spec, *msg;
    } bad[] = {
        {"blocks.0.state_wkv:2@0=zero", "head 2 in 'blocks.0.state_wkv:2@0=zero': out of range, the model has 2 heads"},
        {"blocks.0.state_wkv:0:16@0=zero", "row 16 in 'blocks.0.state_wkv:0:16@0=zero': out of range, a head's state is 16 x 16"},
        {"blocks.0.state_wkv:0:1:99@0=zero", "column 99 in 'blocks.0.state_wkv:0:1:99@0=zero': out of range"},
        {"blocks.0.state_wkv:0:1:2:3@0=zero", "expected HEAD[:ROW[:COL]]"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        rwkv_intervene_list *l = NULL;
        ck_assert_int_eq(rwkv_intervene_list_from_specs(&l, m->cfg, T, &bad[i].spec, 1), RWKV_ERR_ARG);
        ck_assert_msg(strstr(rwkv_error_message(), bad[i].msg), "'%s'", rwkv_error_message());
        rwkv_intervene_list_free(l);
    }
    free(lc); free(ls); free(lp); free(tok);
    rwkv_state_free(clean);
    rwkv_state_free(s);
    rwkv_state_free(p);
    rwkv_model_free(m);
}
END_TEST

// Head size 64: a no-op on the matrix state at every position changes no bit in either mode
// (the scan stops after every row, and a chunk keeps one kernel for all its stretches), and
// the modes agree.
START_TEST(test_no_op_wide_heads) {
    rwkv_model *m = wide_model();
    int T = 40, V = m->cfg.n_vocab; // parallel chunks of 16, 16 and 8
    int *tok = test_random_tokens(T, V, 4);
    rwkv_state *s, *clean;
    rwkv_state_alloc(&s, m->cfg);
    rwkv_state_alloc(&clean, m->cfg);
    rwkv_real *lc = malloc((size_t)T * V * sizeof *lc), *ls = malloc((size_t)T * V * sizeof *ls);
    for (int seq = 0; seq <= 1; seq++) {
        run_iv(m, NULL, tok, T, seq, clean, lc);
        run_iv(m, "blocks.0.state_wkv:*@*=scale:1", tok, T, seq, s, ls);
        ck_assert_msg(!memcmp(ls, lc, (size_t)T * V * sizeof *ls), "%s: a no-op moved the logits", seq ? "seq" : "par");
        ck_assert(!memcmp(s->data, clean->data, rwkv_state_numel(s) * sizeof(rwkv_real)));
    }
    run_iv(m, NULL, tok, T, 0, s, ls); // parallel against the sequential run left in lc, clean
    ck_assert_msg(test_max_scaled_err_r(ls, lc, (size_t)T * V) < TOL, "modes disagree");
    ck_assert(test_max_scaled_err_r(s->data, clean->data, rwkv_state_numel(s)) < TOL);
    free(lc); free(ls); free(tok);
    rwkv_state_free(s);
    rwkv_state_free(clean);
    rwkv_model_free(m);
}
END_TEST

// Uniform reals in [lo, hi) for n entries (xorshift: reproducible, not statistical).
static void fill_uniform(rwkv_real *x, size_t n, double lo, double hi, uint64_t *s) {
    for (size_t i = 0; i < n; i++) {
        *s ^= *s << 13, *s ^= *s >> 7, *s ^= *s << 17;
        x[i] = (rwkv_real)(lo + (hi - lo) * ((double)(*s >> 11) / 9007199254740992.0));
    }
}

// The trace of a chunk of 40 tokens (the scan on S^T, each token's state transposed out in
// tiles of a cache line per row) against the state the row kernel reaches in calls of one
// token, which never transposes: head sizes of whole tiles (floats: 16, 64, 128; doubles: all
// but 12) and not, the trace at an address off a cache line. The last row is the state the
// call returns, bit for bit.
START_TEST(test_trace_rows_seq) {
    const int sizes[] = {8, 12, 16, 24, 64, 128}, T = 40, H = 2;
    uint64_t seed = 2026;
    for (size_t q = 0; q < sizeof sizes / sizeof sizes[0]; q++) {
        int N = sizes[q], C = H * N;
        size_t tc = (size_t)T * C, D = (size_t)C * N;
        rwkv_real *in = malloc(6 * tc * sizeof *in), *y = malloc(tc * sizeof *y);
        rwkv_real *r = in, *w = r + tc, *k = w + tc, *v = k + tc, *kk = v + tc, *a = kk + tc;
        fill_uniform(in, 6 * tc, -1, 1, &seed);
        fill_uniform(w, tc, 0.9, 1, &seed); // decays below 1 and short removal keys: S stays finite
        fill_uniform(kk, tc, -0.1, 0.1, &seed);
        fill_uniform(a, tc, 0, 1, &seed);
        rwkv_real *S = malloc(D * sizeof *S), *Sseq = malloc(D * sizeof *Sseq);
        fill_uniform(S, D, -0.5, 0.5, &seed);
        memcpy(Sseq, S, D * sizeof *S);
        rwkv_real *buf = malloc(((size_t)T * D + 1) * sizeof *buf), *trace = buf + 1;
        rwkv_v7_wkv(y, S, trace, r, w, k, v, kk, a, T, H, N);
        ck_assert(!memcmp(S, trace + (size_t)(T - 1) * D, D * sizeof *S));
        for (int t = 0; t < T; t++) {
            size_t o = (size_t)t * C;
            rwkv_v7_wkv(y, Sseq, NULL, r + o, w + o, k + o, v + o, kk + o, a + o, 1, H, N);
            double e = test_max_scaled_err_r(trace + (size_t)t * D, Sseq, D);
            ck_assert_msg(e < TOL, "N=%d, token %d: traced state vs token by token %g", N, t, e);
        }
        free(in); free(y); free(S); free(Sseq); free(buf);
    }
}
END_TEST

// The same through the engine at the official head size: state_wkv of one parallel chunk of
// 40 tokens against the sequential mode's, and both final states.
START_TEST(test_state_trace_modes) {
    rwkv_model *m = wide_model();
    int T = 40, V = m->cfg.n_vocab;
    size_t D = (size_t)rwkv_tap_width(RWKV_TAP_STATE_WKV, m->cfg);
    int *tok = test_random_tokens(T, V, 12);
    rwkv_real *logits = malloc((size_t)T * V * sizeof *logits);
    uint32_t mask[2];
    test_capture par, seq;
    rwkv_state *sp, *ss;
    rwkv_state_alloc(&sp, m->cfg);
    rwkv_state_alloc(&ss, m->cfg);
    test_capture_init(&par, m->cfg, T, mask);
    rwkv_hook hook = {.mask = mask, .fn = test_capture_fn, .ctx = &par};
    run_calls(m, sp, tok, T, T, T, 0, logits, &hook);
    test_capture_init(&seq, m->cfg, T, mask);
    hook.ctx = &seq;
    run_calls(m, ss, tok, T, T, 1, 1, logits, &hook);
    double e = test_max_scaled_err_r(par.taps[RWKV_TAP_STATE_WKV], seq.taps[RWKV_TAP_STATE_WKV], (size_t)T * D);
    ck_assert_msg(e < TOL, "state_wkv: parallel vs sequential %g", e);
    ck_assert(!memcmp(sp->wkv, par.taps[RWKV_TAP_STATE_WKV] + (size_t)(T - 1) * D, D * sizeof(rwkv_real)));
    ck_assert(test_max_scaled_err_r(sp->data, ss->data, rwkv_state_numel(sp)) < TOL);
    test_capture_free(&par);
    test_capture_free(&seq);
    rwkv_state_free(sp);
    rwkv_state_free(ss);
    free(logits);
    free(tok);
    rwkv_model_free(m);
}
END_TEST

// RWKV-6: interventions on its shift state (which feeds the data-dependent mixes through sx)
// and on its matrix state agree between modes and reach the next token; a no-op changes no
// bit; a saved state resumes the run exactly.
START_TEST(test_v6_interventions_and_state) {
    rwkv_model *m = load("rand6-a.pth");
    int T = 20, V = m->cfg.n_vocab;
    int *tok = test_random_tokens(T, V, 6);
    size_t nl = (size_t)T * V;
    rwkv_state *clean, *s, *p;
    rwkv_state_alloc(&clean, m->cfg);
    rwkv_state_alloc(&s, m->cfg);
    rwkv_state_alloc(&p, m->cfg);
    rwkv_real *lc = malloc(nl * sizeof *lc), *ls = malloc(nl * sizeof *ls), *lp = malloc(nl * sizeof *lp);
    run_iv(m, NULL, tok, T, 1, clean, lc);
    const char *specs[] = {"blocks.1.state_att_xprev@7=zero", "blocks.0.state_wkv:2:3:4@7=set:5"};
    for (int k = 0; k < 2; k++) {
        run_iv(m, specs[k], tok, T, 1, s, ls);
        run_iv(m, specs[k], tok, T, 0, p, lp);
        ck_assert_msg(test_max_scaled_err_r(lp, ls, nl) < TOL, "%s: seq and par disagree", specs[k]);
        ck_assert(!memcmp(ls, lc, (size_t)8 * V * sizeof *ls)); // positions 0..7 come before it
        ck_assert_msg(memcmp(ls + (size_t)8 * V, lc + (size_t)8 * V, (size_t)V * sizeof *ls), "%s: token 8 "
                      "did not see it", specs[k]);
    }
    for (int seq = 0; seq <= 1; seq++) {
        run_iv(m, NULL, tok, T, seq, clean, lc);
        run_iv(m, "blocks.1.state_att_xprev@*=scale:1", tok, T, seq, s, ls);
        ck_assert(!memcmp(ls, lc, nl * sizeof *ls));
        ck_assert(!memcmp(s->data, clean->data, rwkv_state_numel(s) * sizeof(rwkv_real)));
    }
    // the first 12 tokens, saved and reloaded, then the last 8: the unbroken run's logits
    char path[512];
    snprintf(path, sizeof path, "%s/v6state.h5", test_tmpdir());
    run_calls(m, s, tok, 12, 12, 12, 0, ls, NULL);
    ck_assert_msg(!rwkv_state_save(path, s, m, 12, "test", 1), "%s", rwkv_error_message());
    rwkv_state_reset(p);
    ck_assert_msg(!rwkv_state_load(p, path, m), "%s", rwkv_error_message());
    ck_assert(!memcmp(p->data, s->data, rwkv_state_numel(s) * sizeof(rwkv_real)));
    rwkv_workspace *ws;
    ck_assert_int_eq(rwkv_workspace_alloc(&ws, m->cfg, 8), RWKV_OK);
    ck_assert(!rwkv_forward_par(m, p, tok + 12, 8, lp, RWKV_LOGITS_ALL, NULL, ws));
    run_calls(m, clean, tok, T, T, T, 0, lc, NULL);
    ck_assert_msg(test_max_scaled_err_r(lp, lc + (size_t)12 * V, (size_t)8 * V) < TOL, "resumed run differs");
    rwkv_workspace_free(ws);
    free(lc); free(ls); free(lp); free(tok);
    rwkv_state_free(clean);
    rwkv_state_free(s);
    rwkv_state_free(p);
    rwkv_model_free(m);
}
END_TEST

static Suite *v7_suite(void) {
    Suite *s = suite_create("v7");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_tiny_rwkvcpp);
    tcase_add_test(tc, test_tiny5_rwkvcpp);
    tcase_add_test(tc, test_v5_modes_and_state);
    tcase_add_loop_test(tc, test_golden_seq, 0, N_CASES);
    tcase_add_loop_test(tc, test_golden_par, 0, N_CASES);
    tcase_add_loop_test(tc, test_golden_in_place, 0, N_CASES);
    tcase_add_test(tc, test_golden_chunks);
    tcase_add_test(tc, test_modes_and_chunks_agree);
    tcase_add_test(tc, test_state_save_load);
    tcase_add_test(tc, test_dump_every_tap);
    tcase_add_test(tc, test_dump_wide_state);
    tcase_add_test(tc, test_dump_every_tap_overlapped);
    tcase_add_loop_test(tc, test_dump_raw_state, 0, 3);
    tcase_add_test(tc, test_v6_dump);
    tcase_add_test(tc, test_bad_v7_files);
    tcase_add_test(tc, test_bad_v6_files);
    tcase_add_test(tc, test_v7_refusals);
    tcase_add_test(tc, test_state_interventions);
    tcase_add_test(tc, test_no_op_wide_heads);
    tcase_add_test(tc, test_trace_rows_seq);
    tcase_add_test(tc, test_state_trace_modes);
    tcase_add_test(tc, test_v6_interventions_and_state);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) {
    SRunner *sr = srunner_create(v7_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
