// test_plot.c: gnuplot plots: image size from the PNG header, data files equal the input,
// and clear errors for a bad suffix, a missing or failing gnuplot and an unwritable path.
#include "analyses/plot.h"
#include "util.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

// Reads the numbers of a CSV data file (skipping '#' and blank lines) into out; returns count.
static size_t read_csv_numbers(const char *path, double *out, size_t cap) {
    FILE *f = fopen(path, "r");
    if (!f) return 0;
    char line[4096];
    size_t n = 0;
    while (fgets(line, sizeof line, f)) {
        if (line[0] == '#' || line[0] == '\n') continue;
        for (char *p = line, *end; *p && *p != '\n'; p = (*end == ',') ? end + 1 : end) {
            double v = strtod(p, &end);
            if (end == p) break;
            if (n < cap) out[n] = v;
            n++;
        }
    }
    fclose(f);
    return n;
}

static const char *tmp(const char *name) {
    static char buf[1024];
    snprintf(buf, sizeof buf, "%s/%s", test_tmpdir(), name);
    return buf;
}

START_TEST(lines_png_size_and_data) {
    double x[5] = {64, 128, 256, 512, 1024}, y[10];
    for (int i = 0; i < 10; i++) y[i] = 0.1 * i - 0.3 + (i == 7 ? 1e-9 : 0);
    const char *names[2] = {"query after", "query_before 'q'"};
    rwkv_plot_opts o = {.title = "acc vs length", .xlabel = "length", .ylabel = "accuracy",
                        .width = 640, .height = 480, .logx = 1};
    char out[1024], data[1024];
    snprintf(out, sizeof out, "%s", tmp("lines.png"));
    ck_assert_int_eq(rwkv_plot_lines(out, &o, x, y, 5, 2, names), RWKV_OK);
    unsigned w = 0, h = 0;
    ck_assert(test_png_size(out, &w, &h));
    ck_assert_uint_eq(w, 640);
    ck_assert_uint_eq(h, 480);
    ck_assert_int_eq(rwkv_plot_data_path(out, data, sizeof data), RWKV_OK);
    ck_assert_str_eq(data + strlen(data) - 9, "lines.csv");
    double got[64];
    ck_assert_uint_eq(read_csv_numbers(data, got, 64), 15);
    for (int i = 0; i < 5; i++) {
        ck_assert(got[3 * i] == x[i]);
        ck_assert(got[3 * i + 1] == y[i]);     // %.17g round-trips doubles exactly
        ck_assert(got[3 * i + 2] == y[5 + i]);
    }
}
END_TEST

START_TEST(heatmap_png_size_and_data) {
    enum { R = 3, C = 4 };
    double z[R * C], xv[C] = {64, 128, 256, 512}, yv[R] = {0, 0.5, 1};
    for (int i = 0; i < R * C; i++) z[i] = (i * 37 % 11) / 10.0;
    rwkv_plot_opts o = {.title = "passkey", .xlabel = "length", .ylabel = "depth",
                        .width = 500, .height = 300};
    char out[1024], data[1024];
    snprintf(out, sizeof out, "%s", tmp("heat.png"));
    ck_assert_int_eq(rwkv_plot_heatmap(out, &o, z, R, C, xv, yv, "accuracy"), RWKV_OK);
    unsigned w = 0, h = 0;
    ck_assert(test_png_size(out, &w, &h));
    ck_assert_uint_eq(w, 500);
    ck_assert_uint_eq(h, 300);
    rwkv_plot_data_path(out, data, sizeof data);
    double got[5 * R * C + 8];
    ck_assert_uint_eq(read_csv_numbers(data, got, 5 * R * C + 8), 5 * R * C);
    for (int r = 0; r < R; r++)
        for (int c = 0; c < C; c++) {
            const double *g = got + 5 * (r * C + c);
            ck_assert(g[0] == c && g[1] == r && g[2] == xv[c] && g[3] == yv[r]);
            ck_assert(g[4] == z[r * C + c]);
        }
}
END_TEST

START_TEST(hist_svg_and_data) {
    double v[2 * 50];
    for (int i = 0; i < 100; i++) v[i] = (i % 50) * 0.5 + (i >= 50 ? 3 : 0);
    const char *names[2] = {"layer 0", "layer 1"};
    rwkv_plot_opts o = {.title = "half-life", .xlabel = "tokens"};
    char out[1024], data[1024];
    snprintf(out, sizeof out, "%s", tmp("hist.svg"));
    ck_assert_int_eq(rwkv_plot_hist(out, &o, v, 50, 2, names, 10), RWKV_OK);
    struct stat sb;
    ck_assert_int_eq(stat(out, &sb), 0);
    ck_assert_int_gt(sb.st_size, 100);
    rwkv_plot_data_path(out, data, sizeof data);
    double got[128];
    ck_assert_uint_eq(read_csv_numbers(data, got, 128), 100);
    for (int i = 0; i < 50; i++) {
        ck_assert(got[2 * i] == v[i]);
        ck_assert(got[2 * i + 1] == v[50 + i]);
    }
}
END_TEST

// The script names its image and data without a directory, so the three files can move
// together and be redrawn where they land. A diverging heatmap has its fixed range.
START_TEST(script_relative_and_movable) {
    if (!rwkv_plot_available()) return;
    char dir[1024], moved[1024], out[1200], cmd[4400];
    snprintf(dir, sizeof dir, "%s/plotdir", test_tmpdir());
    snprintf(moved, sizeof moved, "%s/plotdir-moved", test_tmpdir());
    mkdir(dir, 0755);
    snprintf(out, sizeof out, "%s/heat.png", dir);
    double z[6] = {-2, -0.5, 0, 0.25, 1, 3};
    rwkv_plot_opts o = {.title = "recovery", .zrange = 1};
    ck_assert_int_eq(rwkv_plot_heatmap(out, &o, z, 2, 3, NULL, NULL, "recovery"), RWKV_OK);
    snprintf(out, sizeof out, "%s/heat.gp", dir);
    char *gp = test_read_text(out);
    ck_assert_ptr_nonnull(gp);
    ck_assert_msg(strstr(gp, test_tmpdir()) == NULL, "absolute path in the script:\n%s", gp);
    ck_assert_ptr_nonnull(strstr(gp, "rwkvscope_output = 'heat.png'"));
    ck_assert_ptr_nonnull(strstr(gp, "data = 'heat.csv'"));
    ck_assert_ptr_nonnull(strstr(gp, "set cbrange [-1:1]"));
    ck_assert_ptr_nonnull(strstr(gp, "0 'white'"));
    free(gp);
    // Error bars: per series y, lo, hi in the data, drawn with yerrorlines.
    snprintf(out, sizeof out, "%s/bars.png", dir);
    double x[2] = {1, 2}, y[2] = {0.5, 0.6}, lo[2] = {0.4, 0.5}, hi[2] = {0.6, 0.7};
    ck_assert_int_eq(rwkv_plot_lines_ci(out, NULL, x, y, lo, hi, 2, 1, NULL), RWKV_OK);
    snprintf(out, sizeof out, "%s/bars.csv", dir);
    double got[8];
    ck_assert_uint_eq(read_csv_numbers(out, got, 8), 8);
    ck_assert(got[0] == 1 && got[1] == 0.5 && got[2] == 0.4 && got[3] == 0.6);
    snprintf(out, sizeof out, "%s/bars.gp", dir);
    gp = test_read_text(out);
    ck_assert_ptr_nonnull(strstr(gp, "using 1:2:3:4 with yerrorlines"));
    free(gp);
    snprintf(cmd, sizeof cmd, "rm -rf '%s' && mv '%s' '%s' && cd '%s' && rm heat.png && gnuplot heat.gp", moved, dir, moved, moved);
    ck_assert_int_eq(system(cmd), 0);
    snprintf(out, sizeof out, "%s/heat.png", moved);
    unsigned w = 0, h = 0;
    ck_assert(test_png_size(out, &w, &h));
}
END_TEST

START_TEST(bad_suffix_and_size) {
    double x[2] = {0, 1}, y[2] = {1, 2};
    ck_assert_int_eq(rwkv_plot_lines(tmp("a.jpg"), NULL, x, y, 2, 1, NULL), RWKV_ERR_ARG);
    ck_assert_ptr_nonnull(strstr(rwkv_error_message(), ".png or .svg"));
    rwkv_plot_opts o = {.width = 5, .height = 5};
    ck_assert_int_eq(rwkv_plot_lines(tmp("a.png"), &o, x, y, 2, 1, NULL), RWKV_ERR_ARG);
    ck_assert_int_eq(rwkv_plot_lines(tmp("a.png"), NULL, x, y, 0, 1, NULL), RWKV_ERR_ARG);
}
END_TEST

START_TEST(unwritable_output) {
    double x[2] = {0, 1}, y[2] = {1, 2};
    ck_assert_int_eq(rwkv_plot_lines("/nonexistent-dir/x/a.png", NULL, x, y, 2, 1, NULL),
                     RWKV_ERR_IO);
    ck_assert_ptr_nonnull(strstr(rwkv_error_message(), "/nonexistent-dir/x/a.csv"));
}
END_TEST

START_TEST(gnuplot_missing) {
    setenv("RWKVSCOPE_GNUPLOT", "/nonexistent/gnuplot", 1);
    double x[2] = {0, 1}, y[2] = {1, 2};
    ck_assert_int_eq(rwkv_plot_available(), 0);
    ck_assert_int_eq(rwkv_plot_lines(tmp("m.png"), NULL, x, y, 2, 1, NULL), RWKV_ERR_UNSUPPORTED);
    ck_assert_ptr_nonnull(strstr(rwkv_error_message(), "gnuplot"));
    unsetenv("RWKVSCOPE_GNUPLOT");
}
END_TEST

// A stand-in gnuplot that fails with a message: the error comes back, nothing blocks.
START_TEST(gnuplot_error_reported) {
    char fake[1024];
    snprintf(fake, sizeof fake, "%s", tmp("fake-gnuplot.sh"));
    FILE *f = fopen(fake, "w");
    ck_assert_ptr_nonnull(f);
    fputs("#!/bin/sh\necho 'line 3: undefined variable: boom' >&2\nexit 1\n", f);
    fclose(f);
    chmod(fake, 0755);
    setenv("RWKVSCOPE_GNUPLOT", fake, 1);
    double x[2] = {0, 1}, y[2] = {1, 2};
    ck_assert_int_eq(rwkv_plot_lines(tmp("e.png"), NULL, x, y, 2, 1, NULL), RWKV_ERR_IO);
    ck_assert_ptr_nonnull(strstr(rwkv_error_message(), "undefined variable: boom"));
    unsetenv("RWKVSCOPE_GNUPLOT");
}
END_TEST

// The training-log curve: per evaluation the mean training loss since the previous one and
// the held-out loss; rows after the last evaluation and the header are not points.
START_TEST(train_log_curve) {
    char log[1024], out[1024], data[1024];
    snprintf(log, sizeof log, "%s", tmp("loss.csv"));
    snprintf(out, sizeof out, "%s", tmp("loss-curve.png"));
    FILE *f = fopen(log, "w");
    ck_assert_ptr_nonnull(f);
    fputs("step,loss,val_loss,lr,grad_norm,tokens_per_s,elapsed_s\n"
          "1,2.0,nan,1e-3,1,100,0.1\n2,1.0,1.5,1e-3,1,100,0.2\n3,3.0,nan,1e-3,1,100,0.3\n"
          "4,5.0,nan,1e-3,1,100,0.4\n5,1.0,0.7,1e-3,1,100,0.5\n6,9.0,nan,1e-3,1,100,0.6\n", f);
    fclose(f);
    ck_assert_int_eq(rwkv_plot_train_log(log, out), RWKV_OK);
    unsigned w = 0, h = 0;
    ck_assert(test_png_size(out, &w, &h));
    ck_assert_int_eq(rwkv_plot_data_path(out, data, sizeof data), RWKV_OK);
    double got[16], want[6] = {2, (2.0 + 1.0) / 2, 1.5, 5, (3.0 + 5.0 + 1.0) / 3, 0.7};
    ck_assert_uint_eq(read_csv_numbers(data, got, 16), 6);
    for (int i = 0; i < 6; i++) ck_assert_double_eq_tol(got[i], want[i], 1e-12);
    ck_assert_int_eq(rwkv_plot_train_log(tmp("no-such-log.csv"), out), RWKV_ERR_IO);
    f = fopen(log, "w");
    fputs("step,loss,val_loss,lr,grad_norm,tokens_per_s,elapsed_s\n1,2.0,nan,1e-3,1,100,0.1\n", f);
    fclose(f);
    ck_assert_int_eq(rwkv_plot_train_log(log, out), RWKV_ERR_ARG);
    ck_assert_ptr_nonnull(strstr(rwkv_error_message(), "no evaluated steps"));
}
END_TEST

int main(void) {
    Suite *s = suite_create("plot");
    TCase *tc = tcase_create("plot");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, lines_png_size_and_data);
    tcase_add_test(tc, train_log_curve);
    tcase_add_test(tc, heatmap_png_size_and_data);
    tcase_add_test(tc, hist_svg_and_data);
    tcase_add_test(tc, script_relative_and_movable);
    tcase_add_test(tc, bad_suffix_and_size);
    tcase_add_test(tc, unwritable_output);
    tcase_add_test(tc, gnuplot_missing);
    tcase_add_test(tc, gnuplot_error_reported);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int nf = srunner_ntests_failed(sr);
    srunner_free(sr);
    return nf ? 1 : 0;
}
