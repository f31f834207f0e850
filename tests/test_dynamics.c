// test_dynamics.c: `rwkvscope plot` on a dump built (by hand with the HDF5 C API)
// from the golden traces of golden-small.h5: PNG sizes from the header, data files equal the
// golden values, the derived num/den and per-layer norms, and clear errors.
#include "analyses/dynamics.h"
#include "util.h"

#include <check.h>
#include <hdf5.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define L 2
#define T 48
#define C 32
#define SPLIT 5 // sequence 0 is golden rows 0..4, sequence 1 rows 5..47 (positions restart)

static double *g_num, *g_den, *g_wkv; // (L, T, C) golden traces

static void write_2d(hid_t g, const char *name, const double *data, hsize_t n, hsize_t d) {
    hsize_t dims[2] = {n, d};
    hid_t sp = H5Screate_simple(2, dims, NULL);
    hid_t ds = H5Dcreate2(g, name, H5T_IEEE_F32LE, sp, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    H5Dwrite(ds, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, data);
    H5Dclose(ds);
    H5Sclose(sp);
}

static void write_i64(hid_t f, const char *name, const int64_t *v, hsize_t n) {
    hid_t sp = H5Screate_simple(1, &n, NULL);
    hid_t ds = H5Dcreate2(f, name, H5T_STD_I64LE, sp, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    H5Dwrite(ds, H5T_NATIVE_INT64, H5S_ALL, H5S_ALL, H5P_DEFAULT, v);
    H5Dclose(ds);
    H5Sclose(sp);
}

// A dump holding state_num, state_den (both layers) and att_wkv (layer 1 only).
static const char *make_dump(int schema_version) {
    static char path[1024];
    snprintf(path, sizeof path, "%s/dump-v%d.h5", test_tmpdir(), schema_version);
    int nd;
    uint64_t dims[4];
    g_num = test_h5_read(test_fixture("golden-small.h5"), "/trace/state_num", &nd, dims);
    g_den = test_h5_read(test_fixture("golden-small.h5"), "/trace/state_den", &nd, dims);
    g_wkv = test_h5_read(test_fixture("golden-small.h5"), "/trace/att_wkv", &nd, dims);
    ck_assert(g_num && g_den && g_wkv && dims[0] == L && dims[1] == T && dims[2] == C);
    hid_t f = H5Fcreate(path, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    test_dump_attrs(f, L, C, 4 * C, 50, schema_version, 1);
    hid_t seqs = H5Gcreate2(f, "/sequences", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    H5Gclose(seqs);
    int64_t off[3] = {0, SPLIT, T}, pos[T];
    for (int t = 0; t < T; t++) pos[t] = t < SPLIT ? t : t - SPLIT;
    write_i64(f, "/sequences/offsets", off, 3);
    write_i64(f, "/sequences/token_offsets", off, 3); // every position was dumped
    write_i64(f, "/sequences/positions", pos, T);
    int64_t tokens[T] = {0}; // the plots do not look at them
    write_i64(f, "/tokens", tokens, T);
    hid_t b = H5Gcreate2(f, "/blocks", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    for (int l = 0; l < L; l++) {
        char name[16];
        snprintf(name, sizeof name, "%d", l);
        hid_t g = H5Gcreate2(b, name, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
        write_2d(g, "state_num", g_num + (size_t)l * T * C, T, C);
        write_2d(g, "state_den", g_den + (size_t)l * T * C, T, C);
        if (l == 1) write_2d(g, "att_wkv", g_wkv + (size_t)l * T * C, T, C);
        H5Gclose(g);
    }
    H5Gclose(b);
    H5Fclose(f);
    return path;
}

static void free_golden(void) { free(g_num); free(g_den); free(g_wkv); }

// Rows of numbers from a CSV data file (skipping '#' and blank lines): (rows, cols) into out.
static int read_csv(const char *path, double *out, int cap, int *cols) {
    FILE *f = fopen(path, "r");
    if (!f) return -1;
    char line[8192];
    int n = 0, rows = 0;
    while (fgets(line, sizeof line, f)) {
        if (line[0] == '#' || line[0] == '\n') continue;
        int c = 0;
        for (char *p = line, *end;; p = end + 1) {
            double v = strtod(p, &end);
            if (end == p) break;
            if (n < cap) out[n] = v;
            n++, c++;
            if (*end != ',') break;
        }
        *cols = c;
        rows++;
    }
    fclose(f);
    return rows;
}

static const char *tmp(const char *name) {
    static char buf[1024];
    snprintf(buf, sizeof buf, "%s/%s", test_tmpdir(), name);
    return buf;
}

// Golden value of a tap at sequence 1, position t (golden row SPLIT + t), channel c.
#define G(arr, l, t, c) (arr)[((size_t)(l) * T + SPLIT + (t)) * C + (c)]
#define F32_TOL(x) (1e-6 * fmax(1.0, fabs(x))) // the dump stores float32

START_TEST(heatmap_cli_png_and_data) {
    const char *dump = make_dump(1);
    char *out = NULL, png[1024];
    snprintf(png, sizeof png, "%s", tmp("heat.png"));
    int rc = test_cli(&out, "plot %s --tap blocks.1.state_num --kind heatmap --seq 1 --width 640 "
                      "--height 360 -o %s", dump, png);
    ck_assert_msg(rc == 0, "%s", out);
    free(out);
    unsigned w = 0, h = 0;
    ck_assert(test_png_size(png, &w, &h));
    ck_assert_uint_eq(w, 640);
    ck_assert_uint_eq(h, 360);
    static double d[5 * C * (T - SPLIT) + 8];
    int cols = 0, rows = read_csv(tmp("heat.csv"), d, (int)(sizeof d / sizeof *d), &cols);
    ck_assert_int_eq(rows, C * (T - SPLIT));
    ck_assert_int_eq(cols, 5);
    for (int r = 0; r < rows; r++) { // col (time index), row (channel), x (position), y, z
        const double *e = d + 5 * r;
        int t = (int)e[0], c = (int)e[1];
        ck_assert_int_eq(e[2], t); // positions of sequence 1 restart at 0
        ck_assert_int_eq(e[3], c);
        ck_assert_msg(fabs(e[4] - G(g_num, 1, t, c)) <= F32_TOL(G(g_num, 1, t, c)), "t %d c %d", t, c);
    }
    free_golden();
}
END_TEST

START_TEST(lines_channels_and_derived) {
    const char *dump = make_dump(1);
    char *out = NULL;
    int rc = test_cli(&out, "plot %s --tap blocks.0.state_num/den --kind lines --channels 3,17 --seq 1 -o %s",
                      dump, tmp("lines.svg"));
    ck_assert_msg(rc == 0, "%s", out);
    free(out);
    static double d[3 * T];
    int cols = 0, rows = read_csv(tmp("lines.csv"), d, 3 * T, &cols);
    ck_assert_int_eq(rows, T - SPLIT);
    ck_assert_int_eq(cols, 3);
    static const int CH[2] = {3, 17};
    for (int t = 0; t < rows; t++) {
        ck_assert_int_eq(d[3 * t], t);
        for (int k = 0; k < 2; k++) {
            double want = G(g_num, 0, t, CH[k]) / G(g_den, 0, t, CH[k]); // num / den
            ck_assert_msg(fabs(d[3 * t + 1 + k] - want) <= 1e-5 * fmax(1, fabs(want)), "t %d", t);
        }
    }
    free_golden();
}
END_TEST

START_TEST(norm_per_layer) {
    const char *dump = make_dump(1);
    rwkv_plot_opts o = {.width = 500, .height = 400};
    ck_assert_int_eq(rwkv_dyn_plot(dump, "blocks.0.state_den", RWKV_DYN_NORM, 0, NULL, 0, &o,
                                   tmp("norm.png")), RWKV_OK);
    unsigned w = 0, h = 0;
    ck_assert(test_png_size(tmp("norm.png"), &w, &h));
    ck_assert_uint_eq(w, 500);
    ck_assert_uint_eq(h, 400);
    static double d[3 * T];
    int cols = 0, rows = read_csv(tmp("norm.csv"), d, 3 * T, &cols);
    ck_assert_int_eq(rows, SPLIT);
    ck_assert_int_eq(cols, 1 + L);
    for (int t = 0; t < SPLIT; t++)
        for (int l = 0; l < L; l++) {
            double q = 0;
            for (int c = 0; c < C; c++) q += g_den[((size_t)l * T + t) * C + c] * g_den[((size_t)l * T + t) * C + c];
            ck_assert_msg(fabs(d[3 * t + 1 + l] - sqrt(q)) <= 1e-5 * fmax(1, sqrt(q)), "t %d l %d", t, l);
        }
    // att_wkv exists in layer 1 only: one series.
    ck_assert_int_eq(rwkv_dyn_plot(dump, "blocks.0.att_wkv", RWKV_DYN_NORM, 1, NULL, 0, &o,
                                   tmp("norm2.png")), RWKV_OK);
    ck_assert_int_eq(read_csv(tmp("norm2.csv"), d, 3 * T, &cols), T - SPLIT);
    ck_assert_int_eq(cols, 2);
    free_golden();
}
END_TEST

START_TEST(errors) {
    const char *dump = make_dump(1);
    char *out = NULL;
    rwkv_plot_opts o = {0};
    ck_assert_int_eq(rwkv_dyn_plot(dump, "blocks.0.att_k", RWKV_DYN_HEATMAP, 0, NULL, 0, &o, tmp("e.png")), RWKV_ERR_ARG);
    ck_assert_ptr_nonnull(strstr(rwkv_error_message(), "state_den, state_num")); // lists what is there
    ck_assert_int_eq(rwkv_dyn_plot(dump, "blocks.0.state_num", RWKV_DYN_HEATMAP, 2, NULL, 0, &o, tmp("e.png")), RWKV_ERR_ARG);
    ck_assert_ptr_nonnull(strstr(rwkv_error_message(), "sequence 2 out of range"));
    static const int bad_ch[1] = {32};
    ck_assert_int_eq(rwkv_dyn_plot(dump, "blocks.0.state_num", RWKV_DYN_LINES, 0, bad_ch, 1, &o, tmp("e.png")), RWKV_ERR_ARG);
    ck_assert_ptr_nonnull(strstr(rwkv_error_message(), "channel 32 out of range"));
    ck_assert_int_eq(rwkv_dyn_plot(dump, "blocks.0.state_max/den", RWKV_DYN_LINES, 0, NULL, 0, &o, tmp("e.png")), RWKV_ERR_ARG);
    ck_assert_int_eq(rwkv_dyn_plot(dump, "state_num", RWKV_DYN_LINES, 0, NULL, 0, &o, tmp("e.png")), RWKV_ERR_ARG);
    ck_assert_int_eq(rwkv_dyn_plot(test_fixture("golden-small.h5"), "blocks.0.state_num", RWKV_DYN_LINES, 0, NULL, 0, &o, tmp("e.png")), RWKV_ERR_FORMAT);
    ck_assert_ptr_nonnull(strstr(rwkv_error_message(), "not an rwkvscope dump"));
    ck_assert_int_eq(rwkv_dyn_plot(test_fixture("README.md"), "blocks.0.state_num", RWKV_DYN_LINES, 0, NULL, 0, &o, tmp("e.png")), RWKV_ERR_FORMAT);
    ck_assert_int_eq(rwkv_dyn_plot("/nonexistent.h5", "blocks.0.state_num", RWKV_DYN_LINES, 0, NULL, 0, &o, tmp("e.png")), RWKV_ERR_IO);
    free_golden();
    const char *v3 = make_dump(3);
    ck_assert_int_eq(rwkv_dyn_plot(v3, "blocks.0.state_num", RWKV_DYN_LINES, 0, NULL, 0, &o, tmp("e.png")), RWKV_ERR_UNSUPPORTED);
    ck_assert_ptr_nonnull(strstr(rwkv_error_message(), "schema version 3 is not supported"));
    ck_assert_int_eq(test_cli(&out, "plot %s --tap blocks.0.state_num --kind pie -o %s", v3, tmp("e.png")), 2);
    free(out);
    ck_assert_int_eq(test_cli(&out, "plot %s --tap blocks.0.state_num -o %s", v3, tmp("e.png")), 1);
    ck_assert_ptr_nonnull(strstr(out, "newer"));
    free(out);
    free_golden();
}
END_TEST

// With the real dump writer (skipped while this build has no `dump` command): the plot data
// of a sequential-mode dump of rand-L2-C32-V50 equals the golden state_num trace.
START_TEST(plot_from_real_dump) {
    char *out = NULL;
    if (test_cli(&out, "dump --help") != 0) { free(out); return; }
    free(out);
    make_dump(1); // loads the goldens
    size_t n = 0;
    int *tok = test_h5_read_int(test_fixture("golden-small.h5"), "/tokens", &n);
    char list[512] = "", dump[1024];
    for (size_t t = 0; t < n; t++) snprintf(list + strlen(list), sizeof list - strlen(list), "%s%d", t ? "," : "", tok[t]);
    snprintf(dump, sizeof dump, "%s", tmp("real.h5"));
    int rc = test_cli(&out, "dump %s --tokens %s --taps 'blocks.*.state_num,blocks.*.state_den' --mode seq -o %s",
                      test_fixture("rand-L2-C32-V50.pth"), list, dump);
    ck_assert_msg(rc == 0, "%s", out);
    free(out);
    rc = test_cli(&out, "plot %s --tap blocks.1.state_num --kind lines --channels 0,31 -o %s", dump, tmp("real.png"));
    ck_assert_msg(rc == 0, "%s", out);
    free(out);
    static double d[3 * T];
    int cols = 0;
    ck_assert_int_eq(read_csv(tmp("real.csv"), d, 3 * T, &cols), T);
    for (int t = 0; t < T; t++)
        for (int k = 0; k < 2; k++) {
            double want = g_num[((size_t)T + t) * C + (k ? 31 : 0)];
            ck_assert_msg(fabs(d[3 * t + 1 + k] - want) <= 1e-4 * fmax(1, fabs(want)), "t %d", t);
        }
    free(tok);
    free_golden();
}
END_TEST

int main(void) {
    Suite *s = suite_create("dynamics");
    TCase *tc = tcase_create("dynamics");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, heatmap_cli_png_and_data);
    tcase_add_test(tc, lines_channels_and_derived);
    tcase_add_test(tc, norm_per_layer);
    tcase_add_test(tc, errors);
    tcase_add_test(tc, plot_from_real_dump);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int nf = srunner_ntests_failed(sr);
    srunner_free(sr);
    return nf ? 1 : 0;
}
