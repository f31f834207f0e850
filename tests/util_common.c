// util_common.c: implementations of tests/util.h.
#include "util.h"

#include <hdf5.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

const char *test_fixture(const char *name) {
    static char path[1024];
    snprintf(path, sizeof path, "tests/fixtures/%s", name);
    return path;
}

const char *test_tmpdir(void) {
    static char dir[256];
    if (!dir[0]) {
        const char *b = getenv("BUILD");
        snprintf(dir, sizeof dir, "%s/tmp", b ? b : "build");
        mkdir(b ? b : "build", 0755);
        mkdir(dir, 0755);
        snprintf(dir + strlen(dir), sizeof dir - strlen(dir), "/t%d", (int)getpid());
        mkdir(dir, 0755);
    }
    return dir;
}

double *test_h5_read(const char *path, const char *dset, int *ndim, uint64_t dims[4]) {
    hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    if (f < 0) return NULL;
    hid_t d = H5Dopen2(f, dset, H5P_DEFAULT);
    if (d < 0) { H5Fclose(f); return NULL; }
    hid_t sp = H5Dget_space(d);
    hsize_t hd[8] = {0};
    int nd = H5Sget_simple_extent_dims(sp, hd, NULL);
    size_t n = 1;
    for (int i = 0; i < nd; i++) { n *= hd[i]; if (i < 4) dims[i] = hd[i]; }
    *ndim = nd;
    double *out = malloc((n ? n : 1) * sizeof *out);
    if (H5Dread(d, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, out) < 0) { free(out); out = NULL; }
    H5Sclose(sp); H5Dclose(d); H5Fclose(f);
    return out;
}

int *test_h5_read_int(const char *path, const char *dset, size_t *n) {
    hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    if (f < 0) return NULL;
    hid_t d = H5Dopen2(f, dset, H5P_DEFAULT);
    if (d < 0) { H5Fclose(f); return NULL; }
    hid_t sp = H5Dget_space(d);
    *n = (size_t)H5Sget_simple_extent_npoints(sp);
    int *out = malloc((*n ? *n : 1) * sizeof *out);
    if (H5Dread(d, H5T_NATIVE_INT, H5S_ALL, H5S_ALL, H5P_DEFAULT, out) < 0) { free(out); out = NULL; }
    H5Sclose(sp); H5Dclose(d); H5Fclose(f);
    return out;
}

int test_cli(char **out, const char *args_fmt, ...) {
    char args[8192], cmd[9000];
    va_list ap;
    va_start(ap, args_fmt);
    vsnprintf(args, sizeof args, args_fmt, ap);
    va_end(ap);
    const char *bin = getenv("RWKVSCOPE_BIN");
    snprintf(cmd, sizeof cmd, "%s %s 2>&1", bin ? bin : "build/rwkvscope", args);
    FILE *p = popen(cmd, "r");
    if (!p) return -1;
    size_t cap = 4096, len = 0;
    char *buf = malloc(cap);
    size_t k;
    while ((k = fread(buf + len, 1, cap - len - 1, p)) > 0) {
        len += k;
        if (cap - len < 2) buf = realloc(buf, cap *= 2);
    }
    buf[len] = '\0';
    int st = pclose(p);
    if (out) *out = buf; else free(buf);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

double test_max_scaled_err(const float *a, const double *b, size_t n) {
    double m = 0;
    for (size_t i = 0; i < n; i++) {
        double e = fabs((double)a[i] - b[i]) / fmax(1.0, fabs(b[i]));
        if (!(e <= m)) m = e; // NaN propagates as a failure
    }
    return m;
}

double test_max_scaled_err_d(const double *a, const double *b, size_t n) {
    double m = 0;
    for (size_t i = 0; i < n; i++) {
        double e = fabs(a[i] - b[i]) / fmax(1.0, fabs(b[i]));
        if (!(e <= m)) m = e;
    }
    return m;
}
