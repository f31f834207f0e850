// test_perplexity.c: rwkv_perplexity_eval against the cross-entropy computed here, in
// float64, from the golden logits (tests/fixtures/README.md) of an RWKV-4 and an RWKV-7 model.
#include "analyses/perplexity.h"
#include "util.h"

#include <check.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define TOL (RWKV_REAL_BITS == 64 ? 1e-8 : 1e-4) // goldens: ~1e-9 in float64, ~1e-4 in float32

static void check_stream(const char *model, const char *golden) {
    size_t T, V;
    int *tok;
    double *ref = test_golden_logits(test_fixture(golden), &tok, &T, &V);
    ck_assert_ptr_nonnull(tok);
    ck_assert_ptr_nonnull(ref);
    rwkv_model *m = NULL;
    ck_assert_int_eq(rwkv_model_load(&m, test_fixture(model)), RWKV_OK);
    rwkv_perplexity r;
    ck_assert_int_eq(rwkv_perplexity_eval(&r, m, tok, (int64_t)T, NULL), RWKV_OK);
    double want = test_nll(ref, tok, V, 0, T);
    ck_assert_int_eq(r.n, (int64_t)T - 1);
    ck_assert_msg(fabs(r.nll - want) < TOL * (double)T, "%s: nll %.9g, golden %.9g", model, r.nll, want);
    ck_assert_double_eq_tol(r.mean, r.nll / (double)r.n, 1e-12);
    rwkv_model_free(m);
    free(tok);
    free(ref);
}

// One stream from the zero state is the golden run (sequential, float64).
START_TEST(stream_matches_golden_v4) { check_stream("tiny-rwkv-4v0-660K-FP32.bin", "golden-tiny4.h5"); }
END_TEST

START_TEST(stream_matches_golden_v7) { check_stream("rand7-a.pth", "golden7-a.h5"); }
END_TEST

// Windows restart from the zero state: the first window is the golden run's first ctx - 1
// predictions, and every window predicts ctx - 1 tokens (the last one what is left).
START_TEST(windows_restart_from_zero) {
    size_t T, V;
    int *tok;
    double *ref = test_golden_logits(test_fixture("golden-tiny4.h5"), &tok, &T, &V);
    rwkv_model *m = NULL;
    ck_assert_int_eq(rwkv_model_load(&m, test_fixture("tiny-rwkv-4v0-660K-FP32.bin")), RWKV_OK);
    const int64_t ctx = 10;
    ck_assert_uint_gt(T, 2 * ctx + 2);
    rwkv_perplexity first, all, whole;
    rwkv_perplexity_opts o = {.ctx = ctx};
    ck_assert_int_eq(rwkv_perplexity_eval(&first, m, tok, ctx, &o), RWKV_OK);
    ck_assert_int_eq(first.n, ctx - 1);
    double want = test_nll(ref, tok, V, 0, (size_t)ctx);
    ck_assert_msg(fabs(first.nll - want) < TOL * ctx, "first window %.9g, golden %.9g", first.nll, want);
    ck_assert_int_eq(rwkv_perplexity_eval(&all, m, tok, (int64_t)T, &o), RWKV_OK);
    int64_t full = (int64_t)T / ctx, rest = (int64_t)T % ctx;
    ck_assert_int_eq(all.n, full * (ctx - 1) + (rest > 1 ? rest - 1 : 0));
    ck_assert_int_eq(rwkv_perplexity_eval(&whole, m, tok, (int64_t)T, NULL), RWKV_OK);
    ck_assert_msg(fabs(all.nll - whole.nll) > 1e-3, "windows %.9g equal the stream %.9g: no restart", all.nll,
                  whole.nll); // the state carried across windows would give the stream's loss
    rwkv_model_free(m);
    free(tok);
    free(ref);
}
END_TEST

static int calls;
static int64_t last_done, last_total;
static void count(void *ctx, int64_t done, int64_t total) {
    (void)ctx;
    calls++, last_done = done, last_total = total;
}

// Progress reports reach the total of predicted tokens; bad inputs are errors.
START_TEST(progress_and_errors) {
    rwkv_model *m = NULL;
    ck_assert_int_eq(rwkv_model_load(&m, test_fixture("rand-L2-C32-V50.pth")), RWKV_OK);
    int *tok = test_random_tokens(600, 50, 3);
    rwkv_perplexity r;
    rwkv_perplexity_opts o = {.progress = count};
    ck_assert_int_eq(rwkv_perplexity_eval(&r, m, tok, 600, &o), RWKV_OK);
    ck_assert_int_ge(calls, 3); // 599 predictions in chunks of 256
    ck_assert_int_eq(last_done, 599);
    ck_assert_int_eq(last_total, 599);
    ck_assert_int_eq(rwkv_perplexity_eval(&r, m, tok, 1, NULL), RWKV_ERR_ARG);
    o = (rwkv_perplexity_opts){.ctx = 1};
    ck_assert_int_eq(rwkv_perplexity_eval(&r, m, tok, 600, &o), RWKV_ERR_ARG);
    tok[7] = 50; // outside the vocabulary
    ck_assert_int_ne(rwkv_perplexity_eval(&r, m, tok, 600, NULL), RWKV_OK);
    ck_assert_ptr_nonnull(strstr(rwkv_error_message(), "50"));
    free(tok);
    rwkv_model_free(m);
}
END_TEST

int main(void) {
    Suite *s = suite_create("perplexity");
    TCase *tc = tcase_create("perplexity");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, stream_matches_golden_v4);
    tcase_add_test(tc, stream_matches_golden_v7);
    tcase_add_test(tc, windows_restart_from_zero);
    tcase_add_test(tc, progress_and_errors);
    suite_add_tcase(s, tc);
    return test_run_suite(s);
}
