// util.h: helpers shared by the Check suites (fixture paths, HDF5 reads, CLI runs).
#ifndef RWKV_TEST_UTIL_H
#define RWKV_TEST_UTIL_H

#include <stddef.h>
#include <stdint.h>

// tests/fixtures/<name> (static buffer, valid until the next call).
const char *test_fixture(const char *name);
// A fresh scratch directory under build/tmp for this test process (created once).
const char *test_tmpdir(void);
// Reads a dataset of any float type as double; returns malloc'd data or NULL.
// dims receives up to 4 dimensions; *ndim their count.
double *test_h5_read(const char *path, const char *dset, int *ndim, uint64_t dims[4]);
int *test_h5_read_int(const char *path, const char *dset, size_t *n);
// Runs the rwkvscope CLI (from RWKVSCOPE_BIN) with args (a shell string); captures output.
// Returns the exit status; *out gets malloc'd stdout+stderr.
int test_cli(char **out, const char *args_fmt, ...) __attribute__((format(printf, 2, 3)));
// max |a-b| / max(1, |b|) over n elements.
double test_max_scaled_err(const float *a, const double *b, size_t n);
double test_max_scaled_err_d(const double *a, const double *b, size_t n);

#endif
