// deflate.c: deflate of shuffled chunks (see deflate.h).
//
// After the shuffle a float chunk is one plane per byte, least significant first. The
// mantissa planes are noise: no deflate setting shrinks them (ratio 0.99-1.0 at any zlib
// or igzip level, measured on dumps), so they go into stored blocks, a plain copy. The top
// plane (sign and exponent) takes few values and shrinks to about a third; igzip codes it
// at ~340 MB/s where zlib manages ~120. The result is one zlib stream:
//   header | stored blocks (low planes) | igzip's raw deflate of the top plane, whose last
//   block is the final one | Adler-32 of the whole chunk
// which any inflate, HDF5's deflate filter included, reads back as the shuffled chunk.
#include "deflate.h"

#include <isa-l/igzip_lib.h>
#include <stdlib.h>
#include <string.h>

// Room for a chunk that does not compress: igzip then falls back to stored blocks
// (5 bytes per 64 KB) inside the zlib header and trailer.
#define DEFLATE_OUT_BOUND(bytes) ((bytes) + (bytes) / 64 + 1024)
#define DEFLATE_STORED_MAX 65535 // largest stored block (LEN is 16 bits)
#define DEFLATE_ZLIB_CMF 0x78    // RFC 1950: method 8 (deflate), 32 KB window
#define DEFLATE_ZLIB_FLG 0x01    // no dictionary, level 0; (CMF * 256 + FLG) % 31 == 0
#define DEFLATE_ADLER_INIT 1     // Adler-32 of the empty string
#define DEFLATE_ADLER_BYTES 4

rwkv_status rwkv_deflate_init(rwkv_deflate *c, size_t max_bytes) {
    memset(c, 0, sizeof *c);
    c->out_cap = DEFLATE_OUT_BOUND(max_bytes);
    c->work_size = ISAL_DEF_LVL1_DEFAULT;
    c->out = rwkv_calloc(c->out_cap, 1, "deflate output");
    c->work = rwkv_calloc(c->work_size, 1, "deflate work buffer");
    return c->out && c->work ? RWKV_OK : RWKV_ERR_NOMEM;
}

void rwkv_deflate_free(rwkv_deflate *c) {
    if (!c) return;
    free(c->out);
    free(c->work);
    memset(c, 0, sizeof *c);
}

void rwkv_deflate_shuffle(unsigned char *chunk, size_t n, size_t at, const void *src, size_t count, size_t size) {
    const unsigned char *s = src;
    unsigned char *d = chunk + at;
    if (size == 4) { // one pass over the source, four sequential writes (float32)
        for (size_t i = 0; i < count; i++) {
            d[i] = s[4 * i];
            d[n + i] = s[4 * i + 1];
            d[2 * n + i] = s[4 * i + 2];
            d[3 * n + i] = s[4 * i + 3];
        }
        return;
    }
    for (size_t j = 0; j < size; j++)
        for (size_t i = 0; i < count; i++) d[j * n + i] = s[i * size + j];
}

static unsigned char *put_stored(unsigned char *o, const unsigned char *src, size_t len) {
    for (size_t off = 0; off < len; off += DEFLATE_STORED_MAX) {
        size_t k = len - off < DEFLATE_STORED_MAX ? len - off : DEFLATE_STORED_MAX;
        *o++ = 0x00; // BFINAL = 0, BTYPE = 00 (stored), padded to the byte boundary
        o[0] = (unsigned char)k, o[1] = (unsigned char)(k >> 8);            // LEN, little-endian
        o[2] = (unsigned char)~k, o[3] = (unsigned char)(~k >> 8);          // NLEN = ~LEN
        memcpy(o + 4, src + off, k);
        o += 4 + k;
    }
    return o;
}

size_t rwkv_deflate_bound(size_t bytes) { return DEFLATE_OUT_BOUND(bytes); }

int rwkv_deflate_chunk(rwkv_deflate *c, const unsigned char *chunk, size_t n, size_t size, size_t *len) {
    return rwkv_deflate_chunk_to(c, c->out, c->out_cap, chunk, n, size, len);
}

int rwkv_deflate_chunk_to(rwkv_deflate *c, unsigned char *out, size_t out_cap, const unsigned char *chunk, size_t n,
                          size_t size, size_t *len) {
    size_t bytes = n * size, coded = (size < RWKV_DEFLATE_CODED_PLANES ? size : RWKV_DEFLATE_CODED_PLANES) * n;
    *len = 0;
    if (DEFLATE_OUT_BOUND(bytes) > out_cap || bytes > UINT32_MAX) return STATELESS_OVERFLOW;
    unsigned char *o = out;
    *o++ = DEFLATE_ZLIB_CMF;
    *o++ = DEFLATE_ZLIB_FLG;
    o = put_stored(o, chunk, bytes - coded);
    struct isal_zstream z;
    isal_deflate_stateless_init(&z);
    z.next_in = (uint8_t *)chunk + (bytes - coded); // igzip's API is not const; it only reads
    z.avail_in = (uint32_t)coded;
    z.next_out = o;
    z.avail_out = (uint32_t)(out + out_cap - o - DEFLATE_ADLER_BYTES);
    z.level = RWKV_DEFLATE_LEVEL;
    z.level_buf = c->work;
    z.level_buf_size = (uint32_t)c->work_size;
    z.gzip_flag = IGZIP_DEFLATE; // raw: the zlib wrapper is ours
    z.end_of_stream = 1;
    z.flush = NO_FLUSH;
    int err = isal_deflate_stateless(&z);
    if (err != COMP_OK) return err;
    o += z.total_out;
    uint32_t adler = isal_adler32(DEFLATE_ADLER_INIT, chunk, bytes);
    for (int i = 3; i >= 0; i--) *o++ = (unsigned char)(adler >> (8 * i)); // big-endian
    *len = (size_t)(o - out);
    return COMP_OK;
}
