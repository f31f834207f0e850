// test_patch_pairs.c: patch --pairs: per cell the mean recovery over the pairs, its sd and
// 95% t interval, checked against single-pair sweeps averaged here; errors name the line.
#include "util.h"

#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MODEL "models/demo.safetensors" // byte-level
#define N_PAIRS 3
#define T_975_DF2 4.302652729911275 // Student t, 97.5% quantile, 2 degrees of freedom (tables)
#define CELLS (2 * 2 * 16) // taps x layers x positions (16 bytes)

static const char *const CLEAN[N_PAIRS] = {"The key is 41. K", "The key is 72. K", "The key is 05. K"};
static const char *const CORRUPT[N_PAIRS] = {"The key is 49. K", "The key is 73. K", "The key is 08. K"};
static const char *const METRIC[N_PAIRS] = {"logit-diff:49,57", "logit-diff:50,51", "logit-diff:53,56"};

// A path in the scratch directory: one buffer per distinct name, kept for the process.
#define TMP_NAMES 16
static const char *tmp(const char *name) {
    static char names[TMP_NAMES][64], paths[TMP_NAMES][1024];
    static int n;
    for (int i = 0; i < n; i++)
        if (!strcmp(names[i], name)) return paths[i];
    ck_assert_int_lt(n, TMP_NAMES);
    snprintf(names[n], sizeof names[n], "%s", name);
    snprintf(paths[n], sizeof paths[n], "%s/%s", test_tmpdir(), name);
    return paths[n++];
}

// The recovery column of a single-pair CSV, by row (the CSV lists cells in the same order).
static int read_single(const char *path, double *rec) {
    FILE *f = fopen(path, "r");
    ck_assert_ptr_nonnull(f);
    char line[512];
    int n = 0;
    ck_assert_ptr_nonnull(fgets(line, sizeof line, f));
    while (fgets(line, sizeof line, f) && n < CELLS) rec[n++] = strtod(strrchr(line, ',') + 1, NULL);
    fclose(f);
    return n;
}

START_TEST(pairs_mean_and_interval) {
    const char *pairs = tmp("pairs.tsv"), *csv = tmp("pairs.csv");
    FILE *f = fopen(pairs, "w");
    fprintf(f, "# clean<TAB>corrupt<TAB>metric\n");
    for (int i = 0; i < N_PAIRS; i++) fprintf(f, "%s\t%s\t%s\n", CLEAN[i], CORRUPT[i], METRIC[i]);
    fclose(f);
    double rec[N_PAIRS][CELLS];
    char *out;
    for (int i = 0; i < N_PAIRS; i++) {
        const char *one = tmp("one.csv");
        int rc = test_cli(&out, "patch " MODEL " --clean '%s' --corrupt '%s' --metric %s --taps resid_in,state_num --seq "
                          "--no-plot --force -o %s", CLEAN[i], CORRUPT[i], METRIC[i], one);
        ck_assert_msg(rc == 0, "%s", out);
        free(out);
        ck_assert_int_eq(read_single(one, rec[i]), CELLS);
    }
    int rc = test_cli(&out, "patch " MODEL " --pairs %s --taps resid_in,state_num --seq -o %s", pairs, csv);
    ck_assert_msg(rc == 0, "%s", out);
    ck_assert_msg(strchr(out, '\r') == NULL, "progress with \\r while stderr is not a terminal:\n%s", out);
    ck_assert_ptr_nonnull(strstr(out, "patch: 3 pairs of 16 tokens"));
    free(out);
    f = fopen(csv, "r");
    char line[512];
    ck_assert_ptr_nonnull(fgets(line, sizeof line, f));
    ck_assert_str_eq(line, "tap,layer,position,pairs,recovery,ci_lo,ci_hi,sd\n");
    int n = 0, moved = 0;
    while (fgets(line, sizeof line, f)) {
        char tap[32];
        int layer, pos, np;
        double mean, lo, hi, sd;
        ck_assert_int_eq(sscanf(line, "%31[^,],%d,%d,%d,%lf,%lf,%lf,%lf", tap, &layer, &pos, &np, &mean, &lo, &hi, &sd), 8);
        ck_assert_int_eq(np, N_PAIRS);
        double m = 0, v = 0;
        for (int i = 0; i < N_PAIRS; i++) m += rec[i][n] / N_PAIRS;
        for (int i = 0; i < N_PAIRS; i++) v += (rec[i][n] - m) * (rec[i][n] - m) / (N_PAIRS - 1);
        ck_assert_msg(fabs(mean - m) <= 1e-6 * fmax(1, fabs(m)), "cell %d: mean %g vs %g", n, mean, m);
        ck_assert_msg(fabs(sd - sqrt(v)) <= 1e-6 * fmax(1, sqrt(v)), "cell %d: sd %g vs %g", n, sd, sqrt(v));
        double half = T_975_DF2 * sqrt(v / N_PAIRS);
        ck_assert(fabs(lo - (m - half)) <= 1e-6 * fmax(1, half) && fabs(hi - (m + half)) <= 1e-6 * fmax(1, half));
        moved += fabs(m) > 0.5;
        n++;
    }
    fclose(f);
    ck_assert_int_eq(n, CELLS);
    ck_assert(moved > 0); // patching the differing digit's embedding restores the clean answer
    if (test_png_size(tmp("pairs_state_num.png"), &(unsigned){0}, &(unsigned){0})) {
        char *gp = test_read_text(tmp("pairs_state_num.gp"));
        ck_assert_ptr_nonnull(gp);
        ck_assert_ptr_nonnull(strstr(gp, "set cbrange [-1:1]")); // centred on 0, fixed range
        free(gp);
    }
}
END_TEST

START_TEST(pairs_errors) {
    const char *pairs = tmp("bad.tsv");
    FILE *f = fopen(pairs, "w");
    fprintf(f, "%s\t%s\t%s\nno tab here\n", CLEAN[0], CORRUPT[0], METRIC[0]);
    fclose(f);
    char *out;
    ck_assert_int_eq(test_cli(&out, "patch " MODEL " --pairs %s --taps resid_in --no-plot -o %s", pairs, tmp("x.csv")), 1);
    ck_assert_msg(strstr(out, "bad.tsv: line 2: expected CLEAN<TAB>CORRUPT") != NULL, "%s", out);
    free(out);
    f = fopen(pairs, "w");
    fprintf(f, "%s\t%s\t%s\nabc\tabd\t%s\n", CLEAN[0], CORRUPT[0], METRIC[0], METRIC[0]);
    fclose(f);
    ck_assert_int_eq(test_cli(&out, "patch " MODEL " --pairs %s --taps resid_in --no-plot -o %s", pairs, tmp("x.csv")), 1);
    ck_assert_msg(strstr(out, "line 2: the prompts have 3 and 3 tokens; every prompt needs 16") != NULL, "%s", out);
    free(out);
    f = fopen(pairs, "w");
    fprintf(f, "%s\t%s\n", CLEAN[0], CORRUPT[0]);
    fclose(f);
    ck_assert_int_eq(test_cli(&out, "patch " MODEL " --pairs %s --taps resid_in --no-plot -o %s", pairs, tmp("x.csv")), 1);
    ck_assert_msg(strstr(out, "line 1: no METRIC field and no --metric") != NULL, "%s", out);
    free(out);
    ck_assert_int_eq(test_cli(&out, "patch " MODEL " --pairs %s/none.tsv --taps resid_in --metric logit:1", test_tmpdir()), 1);
    ck_assert_ptr_nonnull(strstr(out, "none.tsv: cannot open"));
    free(out);
    ck_assert_int_eq(test_cli(&out, "patch " MODEL " --pairs %s --clean abc --taps resid_in --metric logit:1", pairs), 2);
    free(out);
}
END_TEST

int main(void) {
    Suite *s = suite_create("patch_pairs");
    TCase *tc = tcase_create("pairs");
    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, pairs_mean_and_interval);
    tcase_add_test(tc, pairs_errors);
    suite_add_tcase(s, tc);
    SRunner *r = srunner_create(s);
    srunner_run_all(r, CK_NORMAL);
    int failed = srunner_ntests_failed(r);
    srunner_free(r);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
