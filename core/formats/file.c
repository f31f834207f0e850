// file.c: whole-file reads for the checkpoint readers.
#include "file.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

rwkv_status rwkv_file_read(const char *path, unsigned char **out, size_t *n_out) {
    *out = NULL;
    *n_out = 0;
    FILE *f = fopen(path, "rb");
    if (!f) return rwkv_error_set(RWKV_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    long size = -1;
    if (fseek(f, 0, SEEK_END) == 0) size = ftell(f);
    if (size < 0 || fseek(f, 0, SEEK_SET) != 0) {
        rwkv_status st = rwkv_error_set(RWKV_ERR_IO, "%s: cannot seek: %s", path, strerror(errno));
        fclose(f);
        return st;
    }
    unsigned char *buf = rwkv_calloc(size ? (size_t)size : 1, 1, path);
    if (!buf) {
        fclose(f);
        return RWKV_ERR_NOMEM;
    }
    size_t got = fread(buf, 1, (size_t)size, f);
    int err = ferror(f) ? errno : 0;
    fclose(f);
    if (got != (size_t)size) {
        free(buf);
        return rwkv_error_set(RWKV_ERR_IO, "%s: read %zu of %ld bytes%s%s", path, got, size,
                              err ? ": " : "", err ? strerror(err) : "");
    }
    *out = buf;
    *n_out = (size_t)size;
    return RWKV_OK;
}
