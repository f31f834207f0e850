// test_generate.c: rwkv_generate: greedy continues the golden logits' argmax; each sampled
// token is rwkv_sample_token on the logits of a fresh run over prompt + tokens so far with
// MT19937(seed)'s next uniform; the hook sees positions over prompt and samples; errors.
#include "core/compute/generate.h"
#include "core/compute/sample.h"
#include "util.h"

#include <check.h>
#include <gsl/gsl_rng.h>
#include <stdlib.h>
#include <string.h>

START_TEST(greedy_follows_golden) {
    char golden[1024];
    snprintf(golden, sizeof golden, "%s", test_fixture("golden-tiny4.h5"));
    rwkv_model *m = NULL;
    ck_assert_int_eq(rwkv_model_load(&m, test_fixture("tiny-rwkv-4v0-660K-FP32.bin")), RWKV_OK);
    size_t T, V;
    int *tok;
    double *ref = test_golden_logits(golden, &tok, &T, &V);
    const double *last = ref + (T - 1) * V;
    int best = 0, second = 1;
    for (int v = 1; v < (int)V; v++) best = last[v] > last[best] ? v : best;
    for (int v = 0; v < (int)V; v++) second = v != best && (second == best || last[v] > last[second]) ? v : second;
    ck_assert_double_gt(last[best] - last[second], 1e-3); // no tie the float32 engine could flip
    rwkv_state *s;
    ck_assert_int_eq(rwkv_state_alloc(&s, m->cfg), RWKV_OK);
    int out[1];
    rwkv_generate_opts o = {.n = 1, .temperature = 0, .top_p = 1};
    ck_assert_int_eq(rwkv_generate(m, s, tok, (int64_t)T, &o, out), RWKV_OK);
    ck_assert_int_eq(out[0], best);
    rwkv_state_free(s);
    free(tok), free(ref);
    rwkv_model_free(m);
}
END_TEST

typedef struct {
    int64_t next; // the position the next call should start at
    int bad;
} pos_check;

static rwkv_status check_pos(void *ctx, int layer, rwkv_tap tap, int64_t pos, int n, int D, rwkv_real *data) {
    (void)layer, (void)tap, (void)D, (void)data;
    pos_check *c = ctx;
    if (pos != c->next) c->bad = 1;
    c->next = pos + n;
    return RWKV_OK;
}

START_TEST(samples_replay) {
    rwkv_model *m = NULL;
    ck_assert_int_eq(rwkv_model_load(&m, test_fixture("rand-L2-C32-V50.pth")), RWKV_OK);
    const int V = m->cfg.n_vocab, T = 7, n = 12;
    int *seq = test_random_tokens(T + n, V, 5), got[12];
    uint32_t mask[3] = {0, 0, 1u << RWKV_TAP_LOGITS};
    pos_check pc = {0};
    rwkv_hook hook = {.mask = mask, .fn = check_pos, .ctx = &pc};
    rwkv_state *s;
    ck_assert_int_eq(rwkv_state_alloc(&s, m->cfg), RWKV_OK);
    rwkv_generate_opts o = {.n = n, .temperature = 0.8, .top_p = 0.9, .seed = 11, .hook = &hook};
    ck_assert_int_eq(rwkv_generate(m, s, seq, T, &o, got), RWKV_OK);
    ck_assert(!pc.bad && pc.next == T + n); // the logits tap of every position, in order
    gsl_rng *rng = gsl_rng_alloc(gsl_rng_mt19937);
    gsl_rng_set(rng, 11);
    rwkv_real *logits = malloc((size_t)V * sizeof *logits);
    double *probs = malloc((size_t)V * sizeof *probs);
    int *order = malloc((size_t)V * sizeof *order), distinct = 0;
    rwkv_workspace *ws;
    ck_assert_int_eq(rwkv_workspace_alloc(&ws, m->cfg, T + n), RWKV_OK);
    rwkv_state *r;
    ck_assert_int_eq(rwkv_state_alloc(&r, m->cfg), RWKV_OK);
    for (int i = 0; i < n; i++) {
        rwkv_state_reset(r);
        ck_assert_int_eq(rwkv_forward_par(m, r, seq, T + i, logits, RWKV_LOGITS_LAST, NULL, ws), RWKV_OK);
        int want = rwkv_sample_token(logits, V, 0.8, 0.9, gsl_rng_uniform(rng), probs, order);
        ck_assert_int_eq(got[i], want);
        distinct += i && got[i] != got[i - 1];
        seq[T + i] = got[i];
    }
    ck_assert_int_gt(distinct, 0);
    // the state after generate is the state after prompt + every sampled token
    rwkv_state_reset(r);
    ck_assert_int_eq(rwkv_forward_par(m, r, seq, T + n, NULL, RWKV_LOGITS_NONE, NULL, ws), RWKV_OK);
    ck_assert(test_max_scaled_err_r(rwkv_state_vec(s, 1), rwkv_state_vec(r, 1), (size_t)m->cfg.n_layer * m->cfg.n_embd) < 1e-4);
    o = (rwkv_generate_opts){.n = 1, .temperature = -1, .top_p = 1};
    ck_assert_int_eq(rwkv_generate(m, s, seq, T, &o, got), RWKV_ERR_ARG);
    o.temperature = 1, o.top_p = 0;
    ck_assert_int_eq(rwkv_generate(m, s, seq, T, &o, got), RWKV_ERR_ARG);
    o.top_p = 1;
    ck_assert_int_eq(rwkv_generate(m, s, seq, 0, &o, got), RWKV_ERR_ARG);
    gsl_rng_free(rng);
    free(logits), free(probs), free(order), free(seq);
    rwkv_workspace_free(ws);
    rwkv_state_free(s), rwkv_state_free(r);
    rwkv_model_free(m);
}
END_TEST

int main(void) {
    Suite *s = suite_create("generate");
    TCase *tc = tcase_create("generate");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, greedy_follows_golden);
    tcase_add_test(tc, samples_replay);
    suite_add_tcase(s, tc);
    return test_run_suite(s);
}
