// test_attention.c: effective attention. Rows sum to 1 per channel; the attention-weighted
// sum of v equals att_wkv, both for the golden float64 traces of golden-small.h5 (model
// rand-L2-C32-V50) and for att_k/att_v/att_wkv captured from the engine through a hook.
#include "analyses/attention.h"
#include "util.h"

#include <check.h>
#include <math.h>
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

// ---- RWKV-5.2 and RWKV-7: per head weights ----
#undef L // the shapes of rand-L2-C32-V50 above; these models have their own
#undef T
#undef C

typedef struct {
    int L, T, C, N;
    double *r, *k, *v, *w, *kk, *a, *wkv; // (L, T, C) golden traces; w, kk, a NULL for RWKV-5.2
} golden_heads;

static double *read_trace(const char *golden, const char *tap, int need) {
    char name[64];
    int nd;
    uint64_t d[4];
    snprintf(name, sizeof name, "/trace/%s", tap);
    double *x = test_h5_read(golden, name, &nd, d);
    if (need) ck_assert_msg(x != NULL, "%s", name);
    return x;
}

// version 7: w, kk and a from the traces; 6: w; 5: none.
static void golden_load(golden_heads *g, const char *golden_name, int version, int L, int C, int N) {
    char golden[1024];
    snprintf(golden, sizeof golden, "%s", test_fixture(golden_name));
    size_t T;
    free(test_h5_read_int(golden, "/tokens", &T));
    *g = (golden_heads){.L = L, .T = (int)T, .C = C, .N = N};
    g->r = read_trace(golden, "att_r", 1), g->k = read_trace(golden, "att_k", 1), g->v = read_trace(golden, "att_v", 1);
    g->wkv = read_trace(golden, "att_wkv", 1);
    if (version >= 6) g->w = read_trace(golden, "att_w", 1);
    if (version == 7) g->kk = read_trace(golden, "att_kk", 1), g->a = read_trace(golden, "att_a", 1);
}

static void golden_free(golden_heads *g) {
    free(g->r), free(g->k), free(g->v), free(g->wkv), free(g->w), free(g->kk), free(g->a);
}

// Inputs of layer l's heads from the golden traces; w5 (T, C) and u (C) from the model where
// the traces hold no decay (RWKV-5.2) or the version has a bonus (5.2 and 6).
static rwkv_attention_heads golden_in(const golden_heads *g, int l, const double *w5, const double *u) {
    size_t off = (size_t)l * g->T * g->C;
    rwkv_attention_heads in = {.T = g->T, .C = g->C, .N = g->N, .r = g->r + off, .k = g->k + off, .u = u};
    in.w = g->w ? g->w + off : w5;
    if (g->kk) in.kk = g->kk + off, in.a = g->a + off;
    return in;
}

// max over t and the head's channels of |sum_i att[t][i] v_i - wkv_t| / max(1, |wkv_t|).
static double head_mix_error(const double *att, const double *v, const double *wkv, int T, int C, int h, int N) {
    double worst = 0;
    for (int t = 0; t < T; t++)
        for (int c = h * N; c < (h + 1) * N; c++) {
            double mix = 0;
            for (int i = 0; i < T; i++) {
                if (i > t) ck_assert(att[(size_t)t * T + i] == 0); // causal
                mix += att[(size_t)t * T + i] * v[(size_t)i * C + c];
            }
            double e = fabs(mix - wkv[(size_t)t * C + c]) / fmax(1, fabs(wkv[(size_t)t * C + c]));
            if (!(e <= worst)) worst = e;
        }
    return worst;
}

// RWKV-7: the head weights mix the golden values into the golden att_wkv (S r before the
// GroupNorm, from a float64 port of the official numpy reference), and equal the explicit
// products of the (N, N) transition matrices A_i = diag(w_i) - kk_i (kk_i a_i)^T.
START_TEST(v7_heads_golden_and_explicit_products) {
    golden_heads g;
    golden_load(&g, "golden7-a.h5", 7, 2, 32, 16);
    const int T = g.T, C = g.C, N = g.N;
    double *att = malloc(sizeof(double) * T * T), q[16];
    double *P = malloc(sizeof(double) * N * N), *A = malloc(sizeof(double) * N * N), *tmp = malloc(sizeof(double) * N * N);
    for (int l = 0; l < g.L; l++)
        for (int h = 0; h < C / N; h++) {
            rwkv_attention_heads in = golden_in(&g, l, NULL, NULL);
            rwkv_attention_head(att, &in, h, q);
            double e = head_mix_error(att, g.v + (size_t)l * T * C, g.wkv + (size_t)l * T * C, T, C, h, N);
            ck_assert_msg(e <= 1e-9, "layer %d head %d: sum_i a_ti v_i vs golden att_wkv: %g", l, h, e);
            for (int t = 0; t < T; t++) { // P = A_{i+1} ... A_t, from the identity at i = t
                for (int x = 0; x < N * N; x++) P[x] = x % (N + 1) == 0;
                for (int i = t; i >= 0; i--) {
                    const size_t ri = (size_t)i * C + h * N;
                    double want = 0;
                    for (int x = 0; x < N; x++)
                        for (int y = 0; y < N; y++) want += in.k[ri + x] * P[x * N + y] * in.r[(size_t)t * C + h * N + y];
                    ck_assert_msg(fabs(att[(size_t)t * T + i] - want) <= 1e-12 * fmax(1, fabs(want)),
                                  "layer %d head %d a[%d][%d] = %.15g, product %.15g", l, h, t, i, att[(size_t)t * T + i], want);
                    for (int x = 0; x < N; x++) // A_i = diag(w_i) - kk_i (kk_i * a_i)^T
                        for (int y = 0; y < N; y++)
                            A[x * N + y] = (x == y) * in.w[ri + x] - in.kk[ri + x] * in.kk[ri + y] * in.a[ri + y];
                    for (int x = 0; x < N; x++) // P <- A_i P
                        for (int y = 0; y < N; y++) {
                            double s = 0;
                            for (int z = 0; z < N; z++) s += A[x * N + z] * P[z * N + y];
                            tmp[x * N + y] = s;
                        }
                    memcpy(P, tmp, sizeof(double) * N * N);
                }
            }
        }
    free(att), free(P), free(A), free(tmp);
    golden_free(&g);
}
END_TEST

// RWKV-5.2 (decay and bonus from the checkpoint) and RWKV-6 (the per-token decay att_w from
// the traces, the bonus from the checkpoint): the head weights mix the golden values into the
// golden att_wkv (float64 ports of the official RNN equations); the engine's run gives them.
static void check_v5_v6(const char *model, const char *golden_name, int version) {
    rwkv_model *m = NULL;
    ck_assert_int_eq(rwkv_model_load(&m, test_fixture(model)), RWKV_OK);
    golden_heads g;
    golden_load(&g, golden_name, version, m->cfg.n_layer, m->cfg.n_embd, m->cfg.head_size);
    const int T = g.T, C = g.C, N = g.N;
    size_t nt;
    int *tok = test_h5_read_int(test_fixture(golden_name), "/tokens", &nt);
    double *att = malloc(sizeof(double) * T * T), *ref = malloc(sizeof(double) * T * T);
    double *w = malloc(sizeof(double) * T * C), *u = malloc(sizeof(double) * C), q[64];
    for (int l = 0; l < g.L; l++) {
        for (int c = 0; c < C; c++) {
            for (int t = 0; t < T; t++) w[t * C + c] = exp(-exp((double)m->v7->time_decay[l * C + c]));
            u[c] = m->v7->time_faaaa[l * C + c];
        }
        for (int h = 0; h < C / N; h++) {
            rwkv_attention_heads in = golden_in(&g, l, w, u);
            rwkv_attention_head(ref, &in, h, q);
            double e = head_mix_error(ref, g.v + (size_t)l * T * C, g.wkv + (size_t)l * T * C, T, C, h, N);
            ck_assert_msg(e <= 1e-6, "%s layer %d head %d: %g", model, l, h, e); // float32 weights in the checkpoint
            ck_assert_int_eq(rwkv_attention_compute(m, tok, T, l, (int[]){h}, 1, 0, att), RWKV_OK);
            e = test_max_scaled_err_d(att, ref, (size_t)T * T);
            ck_assert_msg(e < 1e-4, "%s layer %d head %d: engine vs golden weights %g", model, l, h, e);
        }
    }
    free(att), free(ref), free(w), free(u), free(tok);
    golden_free(&g);
    rwkv_model_free(m);
}

START_TEST(v5_heads_golden) { check_v5_v6("rand5-a.pth", "golden5-a.h5", 5); }
END_TEST

START_TEST(v6_heads_golden) { check_v5_v6("rand6-a.pth", "golden6-a.h5", 6); }
END_TEST

// The engine's run gives the golden traces' head weights; heads average; bad selections.
START_TEST(v7_engine_and_cli) {
    rwkv_model *m = NULL;
    ck_assert_int_eq(rwkv_model_load(&m, test_fixture("rand7-a.pth")), RWKV_OK);
    golden_heads g;
    golden_load(&g, "golden7-a.h5", 7, 2, 32, 16);
    size_t nt;
    int *tok = test_h5_read_int(test_fixture("golden7-a.h5"), "/tokens", &nt);
    const int T = g.T;
    double *att = malloc(sizeof(double) * T * T), *ref = malloc(sizeof(double) * T * T), *mean = calloc((size_t)T * T, sizeof(double)), q[16];
    for (int h = 0; h < 2; h++) {
        int sel[1] = {h};
        ck_assert_int_eq(rwkv_attention_compute(m, tok, T, 1, sel, 1, 0, att), RWKV_OK);
        rwkv_attention_heads in = golden_in(&g, 1, NULL, NULL);
        rwkv_attention_head(ref, &in, h, q);
        double e = test_max_scaled_err_d(att, ref, (size_t)T * T);
        ck_assert_msg(e < (RWKV_REAL_BITS == 64 ? 1e-9 : 1e-4), "head %d: engine vs golden weights %g", h, e);
        for (int i = 0; i < T * T; i++) mean[i] += ref[i] / 2;
    }
    ck_assert_int_eq(rwkv_attention_compute(m, tok, T, 1, NULL, 0, 0, att), RWKV_OK);
    ck_assert(test_max_scaled_err_d(att, mean, (size_t)T * T) < (RWKV_REAL_BITS == 64 ? 1e-9 : 1e-4));
    ck_assert_int_eq(rwkv_attention_compute(m, tok, T, 1, (int[]){2}, 1, 0, att), RWKV_ERR_ARG);
    ck_assert_ptr_nonnull(strstr(rwkv_error_message(), "head 2 out of range [0, 2)"));
    char list[512] = "", h5[1024], *out;
    for (int t = 0; t < T; t++) snprintf(list + strlen(list), sizeof list - strlen(list), "%s%d", t ? "," : "", tok[t]);
    snprintf(h5, sizeof h5, "%s/att7.h5", test_tmpdir());
    int rc = test_cli(&out, "analyze attention %s --tokens %s --layer 1 --heads 1 --force -o %s", test_fixture("rand7-a.pth"),
                      list, h5);
    ck_assert_msg(rc == 0, "%s", out);
    free(out);
    int nd;
    uint64_t d[4];
    double *file = test_h5_read(h5, "/attention", &nd, d), *heads = test_h5_read(h5, "/heads", &nd, d);
    ck_assert(file && heads && d[0] == 1 && heads[0] == 1);
    rwkv_attention_heads in = golden_in(&g, 1, NULL, NULL);
    rwkv_attention_head(ref, &in, 1, q);
    ck_assert(test_max_scaled_err_d(file, ref, (size_t)T * T) < 1e-4);
    ck_assert_int_eq(test_cli(&out, "analyze attention %s --tokens 1,2 --layer 0 --channels 3 --force -o %s",
                              test_fixture("rand7-a.pth"), h5), 2);
    ck_assert_msg(strstr(out, "per head: give --heads"), "%s", out);
    free(out);
    ck_assert_int_eq(test_cli(&out, "analyze attention %s --tokens 1,2 --layer 0 --heads 0 --force -o %s",
                              test_fixture("rand-L2-C32-V50.pth"), h5), 2);
    ck_assert_msg(strstr(out, "per channel: give --channels"), "%s", out);
    free(out);
    free(file), free(heads), free(att), free(ref), free(mean), free(tok);
    golden_free(&g);
    rwkv_model_free(m);
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
    tcase_add_test(tc, v7_heads_golden_and_explicit_products);
    tcase_add_test(tc, v5_heads_golden);
    tcase_add_test(tc, v6_heads_golden);
    tcase_add_test(tc, v7_engine_and_cli);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int nf = srunner_ntests_failed(sr);
    srunner_free(sr);
    return nf ? 1 : 0;
}
