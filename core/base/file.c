// file.c: whole-file reads and atomic outputs (see file.h).
#include "file.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define FILE_PIPE_CAP (1 << 16) // first buffer when the size is not known in advance

rwkv_status rwkv_file_read(const char *path, unsigned char **out, size_t *n_out) {
    *out = NULL;
    *n_out = 0;
    FILE *f = fopen(path, "rb");
    if (!f) return rwkv_error_set(RWKV_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    // A regular file is read into a buffer of its size, with room for the '\0' and one byte
    // more so that end of file shows without growing it; anything else (a pipe) grows the
    // buffer until end of file.
    struct stat sb;
    size_t cap = fstat(fileno(f), &sb) == 0 && S_ISREG(sb.st_mode) ? (size_t)sb.st_size + 2 : FILE_PIPE_CAP;
    size_t n = 0, k;
    unsigned char *buf = malloc(cap);
    while (buf && (k = fread(buf + n, 1, cap - n - 1, f)) > 0) {
        n += k;
        if (cap - n < 2) {
            unsigned char *nb = realloc(buf, cap *= 2);
            if (!nb) free(buf);
            buf = nb;
        }
    }
    int err = ferror(f) ? errno : 0;
    fclose(f);
    if (!buf) return rwkv_error_set(RWKV_ERR_NOMEM, "%s: out of memory reading %zu bytes", path, n);
    if (err) {
        free(buf);
        return rwkv_error_set(RWKV_ERR_IO, "%s: read error after %zu bytes: %s", path, n, strerror(err));
    }
    buf[n] = '\0';
    *out = buf;
    *n_out = n;
    return RWKV_OK;
}

// ---- atomic outputs ----

rwkv_status rwkv_file_atomic_open(rwkv_atomic_file *a, const char *path, int force, int stream) {
    *a = (rwkv_atomic_file){0};
    struct stat sb;
    int exists = stat(path, &sb) == 0;
    if (exists && !force)
        return rwkv_error_set(RWKV_ERR_EXISTS, "%s: the output exists (use --force to replace it)", path);
    if (snprintf(a->path, sizeof a->path, "%s", path) >= (int)sizeof a->path ||
        snprintf(a->tmp, sizeof a->tmp, "%s.tmpXXXXXX", path) >= (int)sizeof a->tmp)
        return rwkv_error_set(RWKV_ERR_ARG, "%s: path too long", path);
    // /dev/stdout names a regular file when stdout is redirected to one: a rename would
    // replace the device node, so nothing under /dev or /proc is written by rename.
    int special = !strncmp(path, "/dev/", 5) || !strncmp(path, "/proc/", 6);
    if (exists && (!S_ISREG(sb.st_mode) || special)) {
        a->in_place = 1;
        memcpy(a->tmp, a->path, sizeof a->tmp);
        if (stream && !(a->f = fopen(path, "ab"))) // append: /dev/stdout in `>> log` keeps the log
            return rwkv_error_set(RWKV_ERR_IO, "%s: cannot write: %s", path, strerror(errno));
        return RWKV_OK;
    }
    int fd = mkstemp(a->tmp);
    if (fd < 0) {
        rwkv_status st = rwkv_error_set(RWKV_ERR_IO, "%s: cannot write: %s", path, strerror(errno));
        a->tmp[0] = '\0';
        return st;
    }
    mode_t mask = umask(0); // mkstemp makes 0600; an output gets the usual 0666 & ~umask
    umask(mask);
    if (fchmod(fd, 0666 & ~mask) == 0 && (!stream || (a->f = fdopen(fd, "wb")))) {
        if (!stream) close(fd);
        return RWKV_OK;
    }
    rwkv_status st = rwkv_error_set(RWKV_ERR_IO, "%s: cannot write: %s", path, strerror(errno));
    close(fd);
    rwkv_file_atomic_abort(a);
    return st;
}

// fsync of the file's directory, so that the rename itself survives a power loss.
static int sync_dir(const char *path) {
    char buf[RWKV_PATH_MAX];
    snprintf(buf, sizeof buf, "%s", path);
    int fd = open(dirname(buf), O_RDONLY | O_DIRECTORY);
    if (fd < 0) return -1;
    int r = fsync(fd);
    close(fd);
    return r;
}

rwkv_status rwkv_file_atomic_commit(rwkv_atomic_file *a) {
    int err = 0;
    if (a->f) {
        // fflush reports a full disk for buffered data; ferror an earlier failed write.
        if (fflush(a->f) != 0 || ferror(a->f)) err = errno ? errno : EIO;
        if (!err && !a->in_place && fsync(fileno(a->f)) != 0) err = errno;
        if (fclose(a->f) != 0 && !err) err = errno;
        a->f = NULL;
    } else if (!a->in_place) {
        int fd = open(a->tmp, O_RDONLY);
        if (fd < 0 || fsync(fd) != 0) err = errno;
        if (fd >= 0) close(fd);
    }
    if (!err && !a->in_place && rename(a->tmp, a->path) != 0) err = errno;
    if (err) {
        rwkv_file_atomic_abort(a);
        return rwkv_error_set(RWKV_ERR_IO, "%s: cannot write: %s", a->path, strerror(err));
    }
    if (!a->in_place) sync_dir(a->path); // the file is in place; a directory that cannot sync is no error
    a->tmp[0] = '\0';
    return RWKV_OK;
}

void rwkv_file_atomic_abort(rwkv_atomic_file *a) {
    if (a->f) fclose(a->f);
    a->f = NULL;
    if (!a->in_place && a->tmp[0]) unlink(a->tmp);
    a->tmp[0] = '\0';
}

rwkv_status rwkv_file_write_f32(const char *path, const rwkv_real *x, size_t n, int force) {
    rwkv_atomic_file out;
    rwkv_status st = rwkv_file_atomic_open(&out, path, force, 1);
    if (st) return st;
    for (size_t i = 0; i < n; i++) {
        float v = (float)x[i];
        if (fwrite(&v, 4, 1, out.f) != 1) break; // commit reports the stream's error
    }
    return rwkv_file_atomic_commit(&out);
}
