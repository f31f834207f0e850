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
// Runs a shell line with its own redirections and pipes, $RS being the CLI; *out gets
// (malloc'd) what reaches stdout and stderr. Returns the exit status.
int test_sh(char **out, const char *line);
// The first 64 KiB of a text file, NUL-terminated (malloc'd), or NULL if it cannot be opened.
char *test_read_text(const char *path);
// 1 if both files can be read and hold the same bytes.
int test_same_bytes(const char *a, const char *b);
// Width and height from a PNG's IHDR chunk; 0 if the file is not a PNG.
int test_png_size(const char *path, unsigned *w, unsigned *h);
// max |a-b| / max(1, |b|) over n elements.
#include "core/base/base.h"
double test_max_scaled_err(const rwkv_real *a, const double *b, size_t n);
double test_max_scaled_err_d(const double *a, const double *b, size_t n);

// max |a-b| / max(1, |b|) of two engine arrays.
double test_max_scaled_err_r(const rwkv_real *a, const rwkv_real *b, size_t n);

#include "core/compute/forward.h"
// Captures every block tap of a run into (L, T, D) arrays laid out like /trace in the goldens
// (NULL for the taps the model's version lacks). init sets mask (L + 1) to every block tap.
typedef struct {
    rwkv_config cfg;
    int T;
    rwkv_real *taps[RWKV_TAP_N_BLOCK]; // (L, T, D)
} test_capture;
void test_capture_init(test_capture *c, rwkv_config cfg, int T, uint32_t *mask);
rwkv_status test_capture_fn(void *ctx, int layer, rwkv_tap tap, int64_t pos, int n, int D, rwkv_real *data);
void test_capture_free(test_capture *c);

#include "core/model/model.h"
// A model of the given shape with seeded random weights in plausible ranges
// (matrices ~ U(-a, a) with a = 1/sqrt(in), decays spread over [-6, 1], mixes in [0, 1]).
rwkv_model *test_random_model(rwkv_config cfg, unsigned seed);
// A seeded pseudo-random token sequence in [0, V).
int *test_random_tokens(int T, int V, unsigned seed);
// Writes the root attributes a dump needs to open (docs/dump-format.md: schema,
// schema_version, the model shape, complete, precision) on file f (an hid_t), for tests that
// build a dump by hand with the HDF5 API.
void test_dump_attrs(int64_t f, int n_layer, int n_embd, int n_ffn, int n_vocab, int64_t schema_version,
                     int64_t complete);

// A golden file's /tokens (*tokens, T of them, malloc'd) and /logits (returned, (T, V)).
double *test_golden_logits(const char *golden, int **tokens, size_t *T, size_t *V);
// sum over t in [t0, t1 - 1) of -log softmax(logits_t)[tokens_{t+1}], in double; logits (T, V).
double test_nll(const double *logits, const int *tokens, size_t V, size_t t0, size_t t1);

// Runs a Check suite (CK_NORMAL) and returns main's exit status: 1 if any test failed.
struct Suite;
int test_run_suite(struct Suite *s);

#endif
