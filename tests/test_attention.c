// test_attention.c: effective attention. Rows sum to 1 per channel; the attention-weighted
// sum of v equals att_wkv, both for the golden float64 traces of golden-small.h5 (model
// rand-L2-C32-V50) and for att_k/att_v/att_wkv captured from the engine through a hook.
#include "analyses/attention.h"
#include "util.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define L 2
#define T 48
#define C 32

// max over t of |sum_i att[t][i] v[i][c] - wkv[t][c]| / max(1, |wkv|); also checks rows sum to 1.
static double check_channel(const double *att, const double *v, const double *wkv, int n, int c) {
    double worst = 0;
    for (int t = 0; t < n; t++) {
        double sum = 0, mix = 0;
        for (int i = 0; i < n; i++) {
            if (i > t) ck_assert(att[(size_t)t * n + i] == 0); // causal
            sum += att[(size_t)t * n + i];
            mix += att[(size_t)t * n + i] * v[(size_t)i * C + c];
        }
        ck_assert_msg(fabs(sum - 1) <= 1e-5, "row %d channel %d sums to %.9f", t, c, sum);
        double e = fabs(mix - wkv[(size_t)t * C + c]) / fmax(1, fabs(wkv[(size_t)t * C + c]));
        if (!(e <= worst)) worst = e;
    }
    return worst;
}

START_TEST(golden_traces) {
    rwkv_model *m = NULL;
    ck_assert_int_eq(rwkv_model_load(&m, test_fixture("rand-L2-C32-V50.pth")), RWKV_OK);
    int nd;
    uint64_t dims[4];
    double *k = test_h5_read(test_fixture("golden-small.h5"), "/trace/att_k", &nd, dims);
    double *v = test_h5_read(test_fixture("golden-small.h5"), "/trace/att_v", &nd, dims);
    double *wkv = test_h5_read(test_fixture("golden-small.h5"), "/trace/att_wkv", &nd, dims);
    ck_assert(k && v && wkv && dims[0] == L && dims[1] == T && dims[2] == C);
    double *att = malloc(sizeof(double) * T * T);
    for (int l = 0; l < L; l++)
        for (int c = 0; c < C; c++) {
            double w = exp((double)m->w.att_time_decay[l * C + c]), u = m->w.att_time_first[l * C + c];
            size_t off = (size_t)l * T * C;
            rwkv_attention_channel(att, k + off, T, C, c, w, u);
            double e = check_channel(att, v + off, wkv + off, T, c);
            ck_assert_msg(e <= 1e-9, "layer %d channel %d: %g", l, c, e);
        }
    free(att); free(k); free(v); free(wkv);
    rwkv_model_free(m);
}
END_TEST

START_TEST(engine_capture) {
    rwkv_model *m = NULL;
    ck_assert_int_eq(rwkv_model_load(&m, test_fixture("rand-L2-C32-V50.pth")), RWKV_OK);
    int *tok = test_h5_read_int(test_fixture("golden-small.h5"), "/tokens", &(size_t){0});
    double *k = malloc(sizeof(double) * T * C), *v = malloc(sizeof(double) * T * C),
           *wkv = malloc(sizeof(double) * T * C), *att = malloc(sizeof(double) * T * T);
    for (int l = 0; l < L; l++) {
        ck_assert_int_eq(rwkv_attention_capture(m, tok, T, l, k, v, wkv), RWKV_OK);
        for (int c = 0; c < C; c++) {
            rwkv_attention_channel(att, k, T, C, c, m->decay_w[l * C + c], m->w.att_time_first[l * C + c]);
            double e = check_channel(att, v, wkv, T, c);
            ck_assert_msg(e <= 1e-4, "layer %d channel %d: %g", l, c, e); // float32 engine
        }
    }
    // The channel mean: still causal rows summing to 1.
    ck_assert_int_eq(rwkv_attention_compute(m, tok, T, 1, NULL, 0, 0, att), RWKV_OK);
    for (int t = 0; t < T; t++) {
        double s = 0;
        for (int i = 0; i < T; i++) s += att[t * T + i];
        ck_assert_double_eq_tol(s, 1, 1e-5);
    }
    ck_assert_int_eq(rwkv_attention_capture(m, tok, T, 2, k, v, wkv), RWKV_ERR_ARG);
    ck_assert_ptr_nonnull(strstr(rwkv_error_message(), "layer 2 out of range"));
    static const int bad[1] = {32};
    ck_assert_int_eq(rwkv_attention_compute(m, tok, T, 0, bad, 1, 0, att), RWKV_ERR_ARG);
    free(k); free(v); free(wkv); free(att); free(tok);
    rwkv_model_free(m);
}
END_TEST

START_TEST(too_large_refused) {
    ck_assert_int_eq(rwkv_attention_check_size(100000, 0), RWKV_ERR_ARG);
    ck_assert_ptr_nonnull(strstr(rwkv_error_message(), "use fewer tokens"));
    ck_assert_int_eq(rwkv_attention_check_size(300, 1 << 20), RWKV_ERR_ARG);
    ck_assert_int_eq(rwkv_attention_check_size(300, 0), RWKV_OK);
}
END_TEST

START_TEST(cli_h5_and_heatmap) {
    int *tok = test_h5_read_int(test_fixture("golden-small.h5"), "/tokens", &(size_t){0});
    char list[512] = "", h5[1024], png[1024], *out = NULL;
    for (int t = 0; t < T; t++) snprintf(list + strlen(list), sizeof list - strlen(list), "%s%d", t ? "," : "", tok[t]);
    snprintf(h5, sizeof h5, "%s/att.h5", test_tmpdir());
    snprintf(png, sizeof png, "%s/att.png", test_tmpdir());
    int rc = test_cli(&out, "analyze attention %s --tokens %s --layer 1 --channels 5 -o %s",
                      test_fixture("rand-L2-C32-V50.pth"), list, h5);
    ck_assert_msg(rc == 0, "%s", out);
    free(out);
    int nd;
    uint64_t dims[4];
    double *att = test_h5_read(h5, "/attention", &nd, dims);
    double *v = test_h5_read(test_fixture("golden-small.h5"), "/trace/att_v", &nd, dims);
    double *wkv = test_h5_read(test_fixture("golden-small.h5"), "/trace/att_wkv", &nd, dims);
    ck_assert(att && v && wkv);
    ck_assert_msg(check_channel(att, v + T * C, wkv + T * C, T, 5) <= 1e-4, "channel 5 vs golden wkv");
    unsigned w = 0, h = 0;
    ck_assert(test_png_size(png, &w, &h));
    ck_assert_uint_eq(w, 800);
    ck_assert_uint_eq(h, 700);
    ck_assert_int_eq(test_cli(&out, "analyze attention %s --tokens %s --layer 1 -o %s",
                              test_fixture("rand-L2-C32-V50.pth"), list, h5), 2);
    ck_assert_ptr_nonnull(strstr(out, "exists"));
    free(out);
    ck_assert_int_eq(test_cli(&out, "analyze attention %s --bytes %0600d --layer 0 --max-mb 1 --force -o %s",
                              test_fixture("tiny-rwkv-4v0-660K-FP32.bin"), 0, h5), 1);
    ck_assert_ptr_nonnull(strstr(out, "use fewer tokens"));
    free(out);
    ck_assert_int_eq(test_cli(&out, "analyze attention %s --tokens 1,2 --layer 9 --force -o %s",
                              test_fixture("rand-L2-C32-V50.pth"), h5), 1);
    ck_assert_ptr_nonnull(strstr(out, "layer 9 out of range"));
    free(out);
    free(att); free(v); free(wkv); free(tok);
}
END_TEST

int main(void) {
    Suite *s = suite_create("attention");
    TCase *tc = tcase_create("attention");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, golden_traces);
    tcase_add_test(tc, engine_capture);
    tcase_add_test(tc, too_large_refused);
    tcase_add_test(tc, cli_h5_and_heatmap);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int nf = srunner_ntests_failed(sr);
    srunner_free(sr);
    return nf ? 1 : 0;
}
