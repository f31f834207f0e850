// test_decay.c: analyze decay against the official deterministic RWKV-4 init formulas that
// rand-L3-C64-V300.pth was made with (tests/fixtures/README.md), and its plots and errors.
#include "analyses/decay.h"
#include "util.h"

#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define L 3
#define C 64

static double init_time_decay(int l, int i) { // -5 + 8 (i/(C-1))^(0.7 + 1.3 l/(L-1))
    return -5 + 8 * pow(i / (double)(C - 1), 0.7 + 1.3 * l / (L - 1));
}
static double init_time_first(int i) { return log(0.3) + 0.5 * (((i + 1) % 3) - 1); }

START_TEST(spectra_match_init_formula) {
    rwkv_model *m = NULL;
    ck_assert_int_eq(rwkv_model_load(&m, test_fixture("rand-L3-C64-V300.pth")), RWKV_OK);
    rwkv_decay *d = NULL;
    ck_assert_int_eq(rwkv_decay_compute(&d, m), RWKV_OK);
    for (int l = 0; l < L; l++)
        for (int i = 0; i < C; i++) {
            double td = init_time_decay(l, i), w = exp(td), hl = log(2) / w;
            size_t k = (size_t)l * C + i;
            ck_assert_double_eq_tol(d->time_decay[k], td, 1e-5);
            ck_assert_msg(fabs(d->half_life[k] - hl) <= 1e-5 * hl, "%g vs %g", d->half_life[k], hl);
            ck_assert_double_eq_tol(pow(d->retention[k], d->half_life[k]), 0.5, 1e-9);
            ck_assert_double_eq_tol(d->time_first[k], init_time_first(i), 1e-6);
        }
    rwkv_decay_free(d);
    rwkv_model_free(m);
}
END_TEST

START_TEST(cli_csv_and_plots) {
    char csv[1024], png[1024], *out = NULL;
    snprintf(csv, sizeof csv, "%s/decay.csv", test_tmpdir());
    int rc = test_cli(&out, "analyze decay %s -o %s", test_fixture("rand-L3-C64-V300.pth"), csv);
    ck_assert_msg(rc == 0, "%s", out);
    ck_assert_ptr_nonnull(strstr(out, "half-life"));
    FILE *f = fopen(csv, "r");
    char line[512];
    ck_assert_ptr_nonnull(fgets(line, sizeof line, f));
    int rows = 0;
    double hls[L][C];
    while (fgets(line, sizeof line, f)) {
        int l, i;
        double td, w, ret, hl, u;
        ck_assert_int_eq(sscanf(line, "%d,%d,%lf,%lf,%lf,%lf,%lf", &l, &i, &td, &w, &ret, &hl, &u), 7);
        hls[l][i] = hl;
        ck_assert_int_eq(l * C + i, rows);
        double want = log(2) / exp(init_time_decay(l, i));
        ck_assert_msg(fabs(hl - want) <= 1e-5 * want, "%g vs %g", hl, want);
        ck_assert_double_eq_tol(u, init_time_first(i), 1e-6);
        rows++;
    }
    fclose(f);
    ck_assert_int_eq(rows, L * C);
    // The summary's median of an even count is the mean of the middle two (not s[C / 2]).
    for (int l = 0; l < L; l++) {
        double s[C];
        memcpy(s, hls[l], sizeof s);
        for (int i = 1; i < C; i++) // insertion sort, independent of the program's qsort
            for (int j = i; j > 0 && s[j - 1] > s[j]; j--) { double t = s[j]; s[j] = s[j - 1]; s[j - 1] = t; }
        char want[64], upper[64];
        snprintf(want, sizeof want, "/ %10.3g /", 0.5 * (s[C / 2 - 1] + s[C / 2]));
        snprintf(upper, sizeof upper, "/ %10.3g /", s[C / 2]);
        ck_assert_msg(strstr(out, want) != NULL, "layer %d: no median '%s' in:\n%s", l, want, out);
        if (l == 0) ck_assert_str_ne(want, upper); // the case tells the two apart
    }
    free(out);
    static const char *const PNGS[3] = {"halflife_hist", "halflife_sorted", "time_first_hist"};
    for (int p = 0; p < 3; p++) {
        unsigned w = 0, h = 0;
        snprintf(png, sizeof png, "%s/decay_%s.png", test_tmpdir(), PNGS[p]);
        ck_assert_msg(test_png_size(png, &w, &h), "%s", png);
        ck_assert_uint_eq(w, 800);
        ck_assert_uint_eq(h, 600);
    }
    ck_assert_int_eq(test_cli(&out, "analyze decay %s -o %s", test_fixture("rand-L3-C64-V300.pth"), csv), 2);
    ck_assert_ptr_nonnull(strstr(out, "exists"));
    free(out);
    ck_assert_int_eq(test_cli(&out, "analyze decay /nonexistent.pth -o %s --force", csv), 1);
    ck_assert_ptr_nonnull(strstr(out, "/nonexistent.pth"));
    free(out);
    ck_assert_int_eq(test_cli(&out, "analyze nosuch x"), 2);
    free(out);
}
END_TEST

static int cmp_d(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static const char *const PER_TOKEN[2][2] = {{"golden7-a.h5", "rand7-a.pth"}, {"golden6-a.h5", "rand6-a.pth"}};

// RWKV-7 and RWKV-6: the per-token spectra against the float64 reference's att_w trace: the
// median half-life ln2 / (-ln w_t) of every channel over the golden's tokens.
START_TEST(v7_spectra_match_golden_trace) {
    char gold[1024], model[1024];
    snprintf(gold, sizeof gold, "%s", test_fixture(PER_TOKEN[_i][0]));
    snprintf(model, sizeof model, "%s", test_fixture(PER_TOKEN[_i][1]));
    rwkv_model *m = NULL;
    ck_assert_int_eq(rwkv_model_load(&m, model), RWKV_OK);
    size_t T;
    int *tok = test_h5_read_int(gold, "/tokens", &T), nd;
    uint64_t dims[4];
    double *w = test_h5_read(gold, "/trace/att_w", &nd, dims);
    ck_assert(tok && w && nd == 3 && dims[1] == T);
    int nl = (int)dims[0], nc = (int)dims[2];
    rwkv_decay_v7 *d = NULL;
    ck_assert_int_eq(rwkv_decay_v7_compute(&d, m, tok, (int64_t)T), RWKV_OK);
    ck_assert_int_eq(d->n_head, nc / m->cfg.head_size);
    double *hl = malloc(T * sizeof *hl), worst = 0;
    for (int l = 0; l < nl; l++)
        for (int c = 0; c < nc; c++) {
            for (size_t t = 0; t < T; t++) hl[t] = log(2.0) / -log(w[((size_t)l * T + t) * nc + c]);
            qsort(hl, T, sizeof *hl, cmp_d);
            double med = T % 2 ? hl[T / 2] : (hl[T / 2 - 1] + hl[T / 2]) / 2, got = d->hl_med[(size_t)l * nc + c];
            worst = fmax(worst, fabs(got - med) / med);
        }
    ck_assert_msg(worst < (RWKV_REAL_BITS == 64 ? 1e-9 : 1e-3), "median half-life vs the golden trace: %.3g", worst);
    char *out = NULL, csv[1100];
    snprintf(csv, sizeof csv, "%s/decay7.csv", test_tmpdir());
    ck_assert_int_eq(test_cli(&out, "analyze decay %s -o %s --force", model, csv), 2);
    ck_assert_ptr_nonnull(strstr(out, "depends on the tokens"));
    free(out);
    ck_assert_int_eq(test_cli(&out, "analyze decay %s --tokens 1,5,9,3,2 -o %s --force --no-plots", model, csv), 0);
    ck_assert_ptr_nonnull(strstr(out, "over 5 tokens"));
    free(out);
    char *text = test_read_text(csv);
    ck_assert_ptr_nonnull(text);
    ck_assert_ptr_nonnull(strstr(text, "layer,head,channel,w_mean,half_life_p10"));
    free(text);
    free(hl), free(w), free(tok);
    rwkv_decay_v7_free(d);
    rwkv_model_free(m);
}
END_TEST

int main(void) {
    Suite *s = suite_create("decay");
    TCase *tc = tcase_create("decay");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, spectra_match_init_formula);
    tcase_add_test(tc, cli_csv_and_plots);
    tcase_add_loop_test(tc, v7_spectra_match_golden_trace, 0, 2);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int nf = srunner_ntests_failed(sr);
    srunner_free(sr);
    return nf ? 1 : 0;
}
