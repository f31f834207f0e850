// file.c: whole-file reads (see file.h).
#include "file.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

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
