// detect.c: tells the checkpoint formats apart by their leading bytes.
#include "formats.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#define RWKVCPP_MAGIC 0x67676d66u // "fmgg" read as a little-endian uint32
#define DETECT_BYTES 9            // enough for the safetensors length + '{'

static uint32_t le32(const unsigned char *b) {
    return (uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 | (uint32_t)b[3] << 24;
}

rwkv_status rwkv_format_detect(const char *path, rwkv_format *out) {
    *out = RWKV_FMT_UNKNOWN;
    FILE *f = fopen(path, "rb");
    if (!f) return rwkv_error_set(RWKV_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    unsigned char b[DETECT_BYTES] = {0};
    size_t n = fread(b, 1, sizeof b, f);
    int err = ferror(f);
    fclose(f);
    if (err) return rwkv_error_set(RWKV_ERR_IO, "%s: cannot read: %s", path, strerror(errno));
    if (n >= 4 && memcmp(b, "PK\x03\x04", 4) == 0) *out = RWKV_FMT_PTH; // zip local header
    else if (n >= 4 && le32(b) == RWKVCPP_MAGIC) *out = RWKV_FMT_RWKVCPP;
    else if (n >= 9 && b[8] == '{') *out = RWKV_FMT_SAFETENSORS; // u64 header length, then JSON
    return RWKV_OK;
}

const char *rwkv_format_name(rwkv_format f) {
    switch (f) {
    case RWKV_FMT_PTH: return "pth";
    case RWKV_FMT_SAFETENSORS: return "safetensors";
    case RWKV_FMT_RWKVCPP: return "rwkvcpp";
    case RWKV_FMT_UNKNOWN: break;
    }
    return "unknown";
}
