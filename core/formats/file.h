// file.h: whole-file reads for the checkpoint readers.
#ifndef RWKV_FILE_H
#define RWKV_FILE_H

#include "../base/base.h"

// Reads all of path into a malloc'd buffer (*out, *n). Errors name the path and cause.
rwkv_status rwkv_file_read(const char *path, unsigned char **out, size_t *n);

#endif
