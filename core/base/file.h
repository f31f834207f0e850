// file.h: whole-file reads (checkpoints, vocabularies, corpora, prompt files) and atomic
// outputs (every file rwkvscope writes).
#ifndef RWKV_FILE_H
#define RWKV_FILE_H

#include "base.h"

#include <stdio.h>

// Reads all of path (a regular file, or a pipe such as /dev/stdin) into a malloc'd buffer
// (*out, *n), followed by a '\0' that *n does not count, so text can be used as a string.
// Errors name the path and cause.
rwkv_status rwkv_file_read(const char *path, unsigned char **out, size_t *n);

// An output written under a temporary name beside it (path.tmpXXXXXX, same directory, so the
// rename cannot cross file systems) and renamed over path only once complete and fsync'd:
// a failed, interrupted or out-of-space write never leaves half a file under path, and the
// previous file stays as it was. A path that exists but is not a regular file (/dev/stdout,
// /dev/full, a FIFO), or any path under /dev or /proc (/dev/stdout redirected to a file), is
// written in place: there is nothing to rename over.
#define RWKV_PATH_MAX 1024
typedef struct {
    char path[RWKV_PATH_MAX]; // the final name
    char tmp[RWKV_PATH_MAX];  // the name being written: the temporary, or path when in place
    FILE *f;                  // the open stream; NULL for a name-only output (below)
    int in_place;
} rwkv_atomic_file;

// Opens the temporary as a binary stream in a->f (stream = 1), or only creates it, empty,
// for a library that opens files by name (stream = 0: HDF5, gnuplot), which then writes
// a->tmp. RWKV_ERR_EXISTS if path exists and !force. Errors name path and cause.
rwkv_status rwkv_file_atomic_open(rwkv_atomic_file *a, const char *path, int force, int stream);
// Flushes and fsyncs the temporary, closes a->f, renames it over path and fsyncs the
// directory. On failure (a write error of the stream included: disk full) the temporary is
// removed, path is untouched and the error names path and cause.
rwkv_status rwkv_file_atomic_commit(rwkv_atomic_file *a);
// Closes a->f and removes the temporary; path is untouched. Safe after commit or twice.
void rwkv_file_atomic_abort(rwkv_atomic_file *a);

// Writes n values as float32 little-endian (x86's native order), atomically as above
// (raw logits for numpy.fromfile(..., '<f4')). RWKV_ERR_EXISTS if path exists and !force.
rwkv_status rwkv_file_write_f32(const char *path, const rwkv_real *x, size_t n, int force);

#endif
