// base.h: the scalar type, status codes and error recording shared by all of rwkvscope.
#ifndef RWKV_BASE_H
#define RWKV_BASE_H

#include <stddef.h>
#include <math.h>
#include <stdint.h>

#define RWKVSCOPE_VERSION "0.1.0"

// One scalar alias for all numeric code. `make PRECISION=64` builds a double engine.
#if defined(RWKV_PRECISION) && RWKV_PRECISION == 64
typedef double rwkv_real;
#define RWKV_REAL_BITS 64
#define RWKV_EXP exp
#define RWKV_LOG log
#define RWKV_SQRT sqrt
#else
typedef float rwkv_real;
#define RWKV_REAL_BITS 32
#define RWKV_EXP expf
#define RWKV_LOG logf
#define RWKV_SQRT sqrtf
#endif

typedef enum {
    RWKV_OK = 0,
    RWKV_ERR_IO,          // cannot open, read or write a file
    RWKV_ERR_FORMAT,      // the bytes are not what the format says (corrupt, truncated, bad magic)
    RWKV_ERR_SHAPE,       // a tensor is missing or has the wrong shape
    RWKV_ERR_UNSUPPORTED, // a valid input that rwkvscope does not handle (quantized, dtype, opcode)
    RWKV_ERR_ARG,         // a bad argument from the caller (token >= vocab, bad spec)
    RWKV_ERR_NOMEM,       // allocation failed
    RWKV_ERR_NUMERIC,     // a NaN or inf appeared
    RWKV_ERR_EXISTS,      // the output exists and overwriting was not asked for
    RWKV_ERR_INTERRUPTED, // the caller asked the work to stop (a signal): outputs are partial
} rwkv_status;

#define RWKV_ERROR_MAX 1024 // longest recorded message, terminator included

// Records a message for the calling thread and returns `code`, so callers write
// `return rwkv_error_set(RWKV_ERR_IO, "%s: cannot open: %s", path, strerror(errno));`
rwkv_status rwkv_error_set(rwkv_status code, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
// Prefixes the current message with more context ("loading x.pth: " + old message).
rwkv_status rwkv_error_wrap(rwkv_status code, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
const char *rwkv_error_message(void);
const char *rwkv_status_name(rwkv_status code);
void rwkv_error_clear(void);

// Allocation helpers that record RWKV_ERR_NOMEM on failure (what names the buffer).
void *rwkv_calloc(size_t n, size_t size, const char *what);
// The same for large buffers read in full every token (weights): their whole 2 MiB pieces
// are advised as transparent huge pages (faulted in as such when first touched), so that
// streaming them misses the TLB far less: a miss walks two page tables under
// virtualisation (int8 tokens 20-25% faster on the development VM). free() releases it.
void *rwkv_calloc_huge(size_t n, size_t size, const char *what);

#endif
