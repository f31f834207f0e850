// test_lens.c: the logit lens on RWKV-7, 6 and 5.2 models against the float64 goldens
// (tests/fixtures/README.md): each row's residual is the golden trace's resid_in (the last
// row the model's logits), put through ln_out and the head here, in double.
#include "analyses/lens.h"
#include "util.h"

#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TOL (RWKV_REAL_BITS == 64 ? 1e-7 : 2e-3) // nats; float32 logits carry ~1e-4 each

// log softmax (V) of head(LayerNorm(x)) with the model's ln_out and head, in double.
static void lens_ref(double *lp, const rwkv_model *m, const double *x) {
    const int C = m->cfg.n_embd, V = m->cfg.n_vocab;
    double mean = 0, var = 0, *y = malloc((size_t)C * sizeof *y);
    for (int i = 0; i < C; i++) mean += x[i] / C;
    for (int i = 0; i < C; i++) var += (x[i] - mean) * (x[i] - mean) / C;
    for (int i = 0; i < C; i++) y[i] = (x[i] - mean) / sqrt(var + 1e-5) * m->w.ln_out_w[i] + m->w.ln_out_b[i];
    double mx = -INFINITY, z = 0;
    for (int v = 0; v < V; v++) {
        double s = 0;
        for (int i = 0; i < C; i++) s += (double)m->w.head[(size_t)v * C + i] * y[i];
        lp[v] = s;
        mx = fmax(mx, s);
    }
    for (int v = 0; v < V; v++) z += exp(lp[v] - mx);
    for (int v = 0; v < V; v++) lp[v] -= mx + log(z);
    free(y);
}

static void log_softmax_d(double *lp, const double *l, int V) {
    double mx = -INFINITY, z = 0;
    for (int v = 0; v < V; v++) mx = fmax(mx, l[v]);
    for (int v = 0; v < V; v++) z += exp(l[v] - mx);
    for (int v = 0; v < V; v++) lp[v] = l[v] - mx - log(z);
}

static void check_golden(const char *model, const char *golden_name) {
    char golden[1024];
    snprintf(golden, sizeof golden, "%s", test_fixture(golden_name));
    rwkv_model *m = NULL;
    ck_assert_int_eq(rwkv_model_load(&m, test_fixture(model)), RWKV_OK);
    const int L = m->cfg.n_layer, C = m->cfg.n_embd, V = m->cfg.n_vocab;
    size_t T, nv;
    int *tok, nd;
    uint64_t d[4];
    double *logits = test_golden_logits(golden, &tok, &T, &nv), *resid = test_h5_read(golden, "/trace/resid_in", &nd, d);
    ck_assert_uint_eq(nv, (size_t)V);
    ck_assert(tok && resid && logits);
    double *lp = malloc((size_t)V * sizeof *lp), *lf = malloc((size_t)V * sizeof *lf);
    for (int seq = 0; seq <= 1; seq++) {
        rwkv_lens_result *r = NULL;
        ck_assert_int_eq(rwkv_lens_logit(&r, m, tok, (int64_t)T, seq), RWKV_OK);
        ck_assert_int_eq(r->n_rows, L + 1);
        for (size_t t = 0; t < T; t++) {
            log_softmax_d(lf, logits + t * V, V);
            int top_final = 0;
            for (int v = 1; v < V; v++) top_final = lf[v] > lf[top_final] ? v : top_final;
            for (int row = 0; row <= L; row++) {
                if (row < L) lens_ref(lp, m, resid + ((size_t)row * T + t) * C); // block row's input
                else memcpy(lp, lf, (size_t)V * sizeof *lp);
                double h = 0, kl = 0;
                int top = 0;
                for (int v = 0; v < V; v++) {
                    h -= exp(lp[v]) * lp[v];
                    kl += exp(lf[v]) * (lf[v] - lp[v]);
                    top = lp[v] > lp[top] ? v : top;
                }
                size_t k = (size_t)row * T + t;
                ck_assert_msg(fabs(r->entropy[k] - h) < TOL, "%s row %d t %zu: entropy %g, golden %g", model, row, t,
                              r->entropy[k], h);
                ck_assert_msg(fabs(r->kl[k] - kl) < TOL, "%s row %d t %zu: kl %g, golden %g", model, row, t, r->kl[k], kl);
                if (t + 1 < T) ck_assert_double_eq_tol(r->ce[k], -lp[tok[t + 1]], TOL);
                if (fabs(lp[top] - lp[top_final]) > 1e-3 || top == top_final) // no near tie
                    ck_assert_double_eq(r->top1[k], top == top_final);
            }
        }
        rwkv_lens_result_free(r);
    }
    free(lp), free(lf), free(tok), free(resid), free(logits);
    rwkv_model_free(m);
}

START_TEST(lens_v7_matches_golden) { check_golden("rand7-a.pth", "golden7-a.h5"); }
END_TEST

START_TEST(lens_v5_matches_golden) { check_golden("rand5-a.pth", "golden5-a.h5"); }
END_TEST

START_TEST(lens_v6_matches_golden) { check_golden("rand6-a.pth", "golden6-a.h5"); }
END_TEST

// analyze lens runs on an RWKV-7 model: the summary CSV has its L + 1 rows.
START_TEST(cli_lens_v7) {
    char prefix[1024], summary[1100], *out;
    snprintf(prefix, sizeof prefix, "%s/lens7", test_tmpdir());
    snprintf(summary, sizeof summary, "%s.summary.csv", prefix);
    int rc = test_cli(&out, "analyze lens %s --tokens 1,5,9,3,2,7 --no-plot --force -o %s", test_fixture("rand7-a.pth"),
                      prefix);
    ck_assert_msg(rc == 0, "%s", out);
    free(out);
    char *text = test_read_text(summary);
    ck_assert_ptr_nonnull(text);
    int lines = 0;
    for (char *p = text; *p; p++) lines += *p == '\n';
    ck_assert_int_eq(lines, 1 + 3); // header, emb, blocks.0, blocks.1
    ck_assert_ptr_nonnull(strstr(text, "logit,blocks.1,1,"));
    free(text);
}
END_TEST

// The plot's data: per row its layer index and the four means of the summary.
START_TEST(plot_data_is_the_means) {
    rwkv_model *m = NULL;
    ck_assert_int_eq(rwkv_model_load(&m, test_fixture("rand7-a.pth")), RWKV_OK);
    int tok[6] = {1, 5, 9, 3, 2, 7};
    rwkv_lens_result *r = NULL;
    ck_assert_int_eq(rwkv_lens_logit(&r, m, tok, 6, 0), RWKV_OK);
    double means[4 * 3];
    ck_assert_int_eq(rwkv_lens_write_summary(r, NULL, means), RWKV_OK);
    char png[1024], csv[1100];
    snprintf(png, sizeof png, "%s/lensplot.png", test_tmpdir());
    snprintf(csv, sizeof csv, "%s/lensplot.csv", test_tmpdir());
    ck_assert_int_eq(rwkv_lens_plot(r, means, png), RWKV_OK);
    unsigned w, h;
    ck_assert(test_png_size(png, &w, &h));
    FILE *f = fopen(csv, "r");
    ck_assert_ptr_nonnull(f);
    char line[1024];
    int row = 0;
    while (fgets(line, sizeof line, f)) {
        if (line[0] == '#') continue;
        double x, y[4];
        ck_assert_int_eq(sscanf(line, "%lf,%lf,%lf,%lf,%lf", &x, &y[0], &y[1], &y[2], &y[3]), 5);
        ck_assert(x == row - 1);
        for (int j = 0; j < 4; j++) ck_assert_double_eq_tol(y[j], means[4 * row + j], 1e-12);
        row++;
    }
    fclose(f);
    ck_assert_int_eq(row, 3);
    rwkv_lens_result_free(r);
    rwkv_model_free(m);
}
END_TEST

int main(void) {
    Suite *s = suite_create("lens");
    TCase *tc = tcase_create("lens");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, lens_v7_matches_golden);
    tcase_add_test(tc, lens_v5_matches_golden);
    tcase_add_test(tc, lens_v6_matches_golden);
    tcase_add_test(tc, cli_lens_v7);
    tcase_add_test(tc, plot_data_is_the_means);
    suite_add_tcase(s, tc);
    return test_run_suite(s);
}
