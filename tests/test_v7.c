// test_v7.c: the RWKV-7 engine against rwkv.cpp's trained tiny model and its expected logits,
// and against float64 goldens of random models (tests/fixtures/gen/gen_v7_golden.py); both
// modes, chunked runs, taps, the final state, and bad files.
#include "core/compute/forward.h"
#include "core/compute/forward_v7.h"
#include "core/model/model.h"
#include "core/model/state.h"
#include "util.h"

#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

// rwkv.cpp's test feeds the prompt "\"in" (tokens 34, 105, 110) and compares the last logits.
static void check_tiny(int seq, int chunk) {
    rwkv_model *m = load(TINY7);
    ck_assert_int_eq(m->cfg.version, RWKV_VERSION_7);
    ck_assert_int_eq(m->cfg.n_layer, 12);
    ck_assert_int_eq(m->cfg.n_embd, 64);
    ck_assert_int_eq(m->cfg.head_size, 64);
    int V = m->cfg.n_vocab;
    float *expected = read_floats(test_fixture(TINY7_LOGITS), (size_t)V);
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
    ck_assert_msg(fabs(sum) <= RWKVCPP_SUM_BOUND, "seq=%d chunk=%d: sum of differences %g (max %g)", seq, chunk,
                  sum, worst);
    ck_assert_msg(worst < 1e-4, "seq=%d chunk=%d: max difference %g", seq, chunk, worst);
    free(logits);
    free(expected);
    rwkv_workspace_free(ws);
    rwkv_state_free(s);
    rwkv_model_free(m);
}

START_TEST(test_tiny_rwkvcpp) {
    check_tiny(1, 1);
    check_tiny(0, 64);
    check_tiny(0, 2); // a chunk boundary inside the prompt
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
};
#define N_CASES ((int)(sizeof CASES / sizeof CASES[0]))

// Every block tap, as (L, T, D) arrays laid out like /trace in the goldens.
typedef struct {
    rwkv_config cfg;
    int T;
    rwkv_real *taps[RWKV_TAP_N_BLOCK]; // (L, T, D), NULL for taps the version lacks
} capture;

static rwkv_status capture_fn(void *ctx, int layer, rwkv_tap tap, int64_t pos, int n, int D, rwkv_real *data) {
    capture *c = ctx;
    if (tap >= RWKV_TAP_N_BLOCK || !c->taps[tap]) return RWKV_OK;
    memcpy(c->taps[tap] + ((size_t)layer * c->T + (size_t)pos) * D, data, (size_t)n * D * sizeof(rwkv_real));
    return RWKV_OK;
}

static void capture_init(capture *c, rwkv_config cfg, int T, uint32_t *mask) {
    c->cfg = cfg;
    c->T = T;
    for (int t = 0; t < RWKV_TAP_N_BLOCK; t++) {
        int D = rwkv_tap_width(t, cfg);
        c->taps[t] = D ? calloc((size_t)cfg.n_layer * T * D, sizeof(rwkv_real)) : NULL;
    }
    for (int l = 0; l < cfg.n_layer; l++) mask[l] = (1u << RWKV_TAP_N_BLOCK) - 1;
    mask[cfg.n_layer] = 0;
}

static void capture_free(capture *c) {
    for (int t = 0; t < RWKV_TAP_N_BLOCK; t++) free(c->taps[t]);
}

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

// Logits, every tap and the final state against the golden, in one mode and call pattern.
static void check_golden(int ci, int seq, int call, int chunk) {
    char golden[512], what[64];
    snprintf(golden, sizeof golden, "%s", test_fixture(CASES[ci].golden));
    snprintf(what, sizeof what, "%s %s call %d chunk %d", CASES[ci].model, seq ? "seq" : "par", call, chunk);
    rwkv_model *m = load(CASES[ci].model);
    size_t T;
    int *tok = test_h5_read_int(golden, "/tokens", &T);
    ck_assert_ptr_nonnull(tok);
    int L = m->cfg.n_layer, C = m->cfg.n_embd, V = m->cfg.n_vocab;
    uint32_t mask[16];
    capture cap;
    capture_init(&cap, m->cfg, (int)T, mask);
    rwkv_hook hook = {.mask = mask, .fn = capture_fn, .ctx = &cap};
    rwkv_real *logits = malloc(T * V * sizeof *logits);
    rwkv_state *s;
    ck_assert(!rwkv_state_alloc(&s, m->cfg));
    run_calls(m, s, tok, (int)T, call, chunk, seq, logits, &hook);
    expect_close(golden, "/logits", logits, T * V, what);
    int traces = 0;
    for (int t = 0; t < RWKV_TAP_N_BLOCK; t++) {
        char name[96];
        snprintf(name, sizeof name, "/trace/%s", RWKV_TAP_NAMES[t]);
        if (!cap.taps[t] || (t == RWKV_TAP_STATE_WKV && strstr(golden, "golden7-b"))) continue; // b: final only
        expect_close(golden, name, cap.taps[t], (size_t)L * T * rwkv_tap_width(t, m->cfg), what);
        traces++;
    }
    ck_assert_int_ge(traces, 17);
    expect_close(golden, "/final_state/att_xprev", s->att_xprev, (size_t)L * C, what);
    expect_close(golden, "/final_state/ffn_xprev", s->ffn_xprev, (size_t)L * C, what);
    expect_close(golden, "/final_state/wkv", s->wkv, (size_t)L * C * m->cfg.head_size, what);
    capture_free(&cap);
    free(logits);
    free(tok);
    rwkv_state_free(s);
    rwkv_model_free(m);
}

START_TEST(test_golden_seq) { check_golden(_i, 1, 1 << 20, 1); }
END_TEST

START_TEST(test_golden_par) { check_golden(_i, 0, 1 << 20, 64); }
END_TEST

// Chunks of 1, 7 and 64 in one parallel call, and calls of 7 tokens carrying the state.
START_TEST(test_golden_chunks) {
    int chunks[] = {1, 7, 64};
    for (int i = 0; i < 3; i++) check_golden(2, 0, 1 << 20, chunks[i]);
    check_golden(2, 0, 7, 64);
    check_golden(2, 1, 7, 1);
}
END_TEST

static double max_diff(const rwkv_real *a, const rwkv_real *b, size_t n) {
    double m = 0;
    for (size_t i = 0; i < n; i++) {
        double e = fabs((double)a[i] - b[i]) / fmax(1.0, fabs((double)b[i]));
        if (!(e <= m)) m = e;
    }
    return m;
}

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
    ck_assert_msg(max_diff(got, ref, nl) < TOL, "seq vs par logits %g", max_diff(got, ref, nl));
    ck_assert_msg(max_diff(s->data, sref->data, ns) < TOL, "seq vs par state %g", max_diff(s->data, sref->data, ns));
    int chunks[] = {1, 7, 64};
    for (int i = 0; i < 3; i++) {
        run_calls(m, s, tok, T, chunks[i], chunks[i], 0, got, NULL);
        ck_assert_msg(max_diff(got, ref, nl) < TOL, "chunk %d logits %g", chunks[i], max_diff(got, ref, nl));
        ck_assert_msg(max_diff(s->data, sref->data, ns) < TOL, "chunk %d state", chunks[i]);
    }
    free(tok); free(ref); free(got);
    rwkv_state_free(s);
    rwkv_state_free(sref);
    rwkv_model_free(m);
}
END_TEST

static Suite *v7_suite(void) {
    Suite *s = suite_create("v7");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_tiny_rwkvcpp);
    tcase_add_loop_test(tc, test_golden_seq, 0, N_CASES);
    tcase_add_loop_test(tc, test_golden_par, 0, N_CASES);
    tcase_add_test(tc, test_golden_chunks);
    tcase_add_test(tc, test_modes_and_chunks_agree);
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
