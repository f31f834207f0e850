// deflate.h: HDF5 chunks shuffled and deflated, byte for byte what HDF5's shuffle + deflate
// filter pipeline reads back. The sign/exponent plane is Huffman-coded with code tables from
// Intel ISA-L (isal_create_hufftables_subset), several times zlib's speed.
#ifndef RWKV_DEFLATE_H
#define RWKV_DEFLATE_H

#include "../base/base.h"

#define RWKV_DEFLATE_LEVEL 1        // igzip level for a plane of one byte value (a run LZ77 codes in bytes)
#define RWKV_DEFLATE_CODED_PLANES 1 // top byte planes that are coded (sign and exponent); the rest stored

struct isal_hufftables;
struct isal_huff_histogram;

typedef struct {
    unsigned char *out;                // (out_cap) the compressed chunk
    size_t out_cap;
    unsigned char *work;               // (work_size) igzip's level buffer
    size_t work_size;
    struct isal_huff_histogram *hist;  // the coded plane's byte counts, ISA-L's input
    struct isal_hufftables *codes;     // the coded plane's Huffman code and block header
    int bmi2;                          // the CPU has BMI2 (one-micro-op shifts for the bit packer)
} rwkv_deflate;

// A compressor; c->out holds chunks of at most max_bytes (rwkv_deflate_chunk_to brings its
// own output). On failure *c is left freeable.
rwkv_status rwkv_deflate_init(rwkv_deflate *c, size_t max_bytes);
void rwkv_deflate_free(rwkv_deflate *c);
// Scatters `count` elements of `size` bytes from src into a shuffled chunk of n elements,
// as elements at .. at + count - 1 (HDF5's shuffle: byte j of element i goes to j * n + i).
void rwkv_deflate_shuffle(unsigned char *chunk, size_t n, size_t at, const void *src, size_t count, size_t size);
// Deflates a shuffled chunk of n elements of `size` bytes into c->out in the zlib format
// (*len bytes). Returns 0, or the (nonzero) ISA-L status on failure.
int rwkv_deflate_chunk(rwkv_deflate *c, const unsigned char *chunk, size_t n, size_t size, size_t *len);
// The same into out (out_cap bytes, at least rwkv_deflate_bound of the chunk's bytes), so that
// one compressor can fill the output buffers of many chunks.
int rwkv_deflate_chunk_to(rwkv_deflate *c, unsigned char *out, size_t out_cap, const unsigned char *chunk, size_t n,
                          size_t size, size_t *len);
// Room that the compressed form of a chunk of `bytes` bytes may need.
size_t rwkv_deflate_bound(size_t bytes);

#endif
