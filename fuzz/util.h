// util.h: what the libFuzzer harnesses share (docs/fuzzing.md). Each fuzz_<target>.c
// defines LLVMFuzzerTestOneInput; readers that take a path get the input as a file.
#ifndef RWKV_FUZZ_UTIL_H
#define RWKV_FUZZ_UTIL_H

#include "core/formats/formats.h"

#include <stddef.h>
#include <stdint.h>

// Writes the input to this process's scratch file (name ends in suffix, e.g. ".h5") and
// returns its path; the file is rewritten by the next call and removed at exit.
const char *fuzz_file(const uint8_t *data, size_t size, const char *suffix);
// A malloc'd NUL-terminated copy of the input.
char *fuzz_str(const uint8_t *data, size_t size);
// Aborts (a finding) when a library call broke a property the harness checks.
void fuzz_require(int ok, const char *what);
// Aborts unless every HDF5 object (file, group, dataset, attribute, type, space) is closed:
// the readers must close them on every path.
void fuzz_h5_closed(void);
// A checkpoint harness: the input as a file (name ending in suffix) through read, then the
// model built from what it read (every shape check of rwkv_model_from_tensors).
void fuzz_model_reader(const uint8_t *data, size_t size, const char *suffix,
                       rwkv_status (*read)(const char *path, rwkv_tensor_set *out), const char *format);
// A fixture path under $RWKV_FUZZ_ROOT (the repo root; default: the current directory).
const char *fuzz_fixture(const char *name);

#endif
