// h5util.h: small HDF5 helpers shared by the dump and state files (attributes, errors).
#ifndef RWKV_H5UTIL_H
#define RWKV_H5UTIL_H

#include "../base/base.h"
#include "../base/file.h"

#include <hdf5.h>

#if RWKV_REAL_BITS == 64
#define RWKV_H5_REAL H5T_NATIVE_DOUBLE
#define RWKV_H5_REAL_FILE H5T_IEEE_F64LE
#else
#define RWKV_H5_REAL H5T_NATIVE_FLOAT
#define RWKV_H5_REAL_FILE H5T_IEEE_F32LE
#endif

// Turns off HDF5's own error printing (we report through rwkv_error_set).
void rwkv_h5_quiet(void);
// Records RWKV_ERR_IO "path: what: <innermost HDF5 message>".
rwkv_status rwkv_h5_fail(const char *path, const char *what);
// Creates path for writing with file access list fapl (H5P_DEFAULT for the default):
// RWKV_ERR_EXISTS if it exists and !force, RWKV_ERR_IO naming it when it cannot be created.
// Returns the file id in *out.
rwkv_status rwkv_h5_create(hid_t *out, const char *path, int force, hid_t fapl);
rwkv_status rwkv_h5_open(hid_t *out, const char *path);
// Flushes and closes a file written by us (f < 0 is a no-op); RWKV_ERR_IO naming path if the
// writes fail (disk full). The id is released either way: HDF5 1.10 frees a file whose
// close fails in its final flush but keeps its id, and crashes on it at exit
// (H5F__close_cb <- H5_term_library), so after a failed flush the rest of the close is
// written to an anonymous memory file and the file on disk keeps what reached it before.
rwkv_status rwkv_h5_close(hid_t f, const char *path);
// Creates an HDF5 output through the atomic helper (core/base/file.h): HDF5 writes a->tmp,
// and rwkv_h5_commit closes it and renames it over path (or removes it if anything failed).
rwkv_status rwkv_h5_create_atomic(hid_t *out, rwkv_atomic_file *a, const char *path, int force);
rwkv_status rwkv_h5_commit(hid_t f, rwkv_atomic_file *a, rwkv_status st);
// Attributes on loc (a file or group). Strings are variable-length UTF-8 (as h5py writes).
int rwkv_h5_attr_str(hid_t loc, const char *name, const char *value);
int rwkv_h5_attr_i64(hid_t loc, const char *name, int64_t value);
// A new 1-D attribute of n elements of file_type, written from data (mem_type).
int rwkv_h5_attr_array(hid_t loc, const char *name, hid_t file_type, hid_t mem_type, hsize_t n, const void *data);
// Reads an integer / string attribute; returns -1 when missing or of the wrong type.
int rwkv_h5_get_i64(hid_t loc, const char *name, int64_t *out);
int rwkv_h5_get_str(hid_t loc, const char *name, char *buf, size_t size);
// 1 if the dataset or attribute obj stores integers or floats of at most 8 bytes, so that
// reading it into a native number type needs no conversion buffer of a size the file chose.
int rwkv_h5_numeric(hid_t obj);
// libhdf5 1.10 can crash (use after free, wild reads) or loop forever on corrupt metadata, and
// no API bounds that. So a reader of a user file runs read(ctx) first in a forked child
// within budget_s seconds; if the child crashed or ran out of time, this returns
// RWKV_ERR_FORMAT naming path and what, without running it here. Otherwise read(ctx) runs
// here (the same deterministic parse, now known to finish) and its status is returned.
// RWKVSCOPE_H5_TRIAL=0 turns the trial off (for debugging a reader under gdb).
rwkv_status rwkv_h5_guarded(const char *path, const char *what, double budget_s, rwkv_status (*read)(void *ctx),
                            void *ctx);
// A time budget for reading path: base_s plus the file read at RWKV_H5_MIN_RATE.
#define RWKV_H5_MIN_RATE (20.0 * (1 << 20)) // bytes/s: a slow disk
double rwkv_h5_budget(const char *path, double base_s);
// 1 if every component of the absolute path exists.
int rwkv_h5_exists(hid_t file, const char *path);
// A 1-D or 2-D dataset of values (rows, cols) (cols = 0 for 1-D), written at once.
int rwkv_h5_write(hid_t loc, const char *name, hid_t file_type, hid_t mem_type, hsize_t rows,
                  hsize_t cols, const void *data);
// The current time as ISO 8601 UTC.
void rwkv_h5_now(char *buf, size_t size);

#endif
