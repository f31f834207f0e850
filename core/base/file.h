// file.h: whole-file reads (checkpoints, vocabularies, corpora, prompt files).
#ifndef RWKV_FILE_H
#define RWKV_FILE_H

#include "base.h"

// Reads all of path (a regular file, or a pipe such as /dev/stdin) into a malloc'd buffer
// (*out, *n), followed by a '\0' that *n does not count, so text can be used as a string.
// Errors name the path and cause.
rwkv_status rwkv_file_read(const char *path, unsigned char **out, size_t *n);

#endif
