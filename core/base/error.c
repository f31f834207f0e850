// error.c: one thread-local message naming file, tensor and cause of the last failure.
#include "base.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>

static _Thread_local char error_msg[RWKV_ERROR_MAX];

rwkv_status rwkv_error_set(rwkv_status code, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(error_msg, sizeof error_msg, fmt, ap);
    va_end(ap);
    return code;
}

rwkv_status rwkv_error_wrap(rwkv_status code, const char *fmt, ...) {
    char prefix[RWKV_ERROR_MAX], old[RWKV_ERROR_MAX];
    memcpy(old, error_msg, sizeof old);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(prefix, sizeof prefix, fmt, ap);
    va_end(ap);
    // A message longer than the buffer is cut; using the result tells GCC that is intended.
    if (snprintf(error_msg, sizeof error_msg, "%s%s", prefix, old) >= (int)sizeof error_msg)
        error_msg[sizeof error_msg - 2] = '~';
    return code;
}

const char *rwkv_error_message(void) { return error_msg[0] ? error_msg : "no error recorded"; }

void rwkv_error_clear(void) { error_msg[0] = '\0'; }

const char *rwkv_status_name(rwkv_status code) {
    switch (code) {
    case RWKV_OK: return "ok";
    case RWKV_ERR_IO: return "i/o error";
    case RWKV_ERR_FORMAT: return "format error";
    case RWKV_ERR_SHAPE: return "shape error";
    case RWKV_ERR_UNSUPPORTED: return "not supported";
    case RWKV_ERR_ARG: return "bad argument";
    case RWKV_ERR_NOMEM: return "out of memory";
    case RWKV_ERR_NUMERIC: return "non-finite value";
    case RWKV_ERR_EXISTS: return "output exists";
    case RWKV_ERR_INTERRUPTED: return "interrupted";
    }
    return "unknown status";
}

void *rwkv_calloc(size_t n, size_t size, const char *what) {
    void *p = (n && size) ? calloc(n, size) : calloc(1, 1);
    if (!p) rwkv_error_set(RWKV_ERR_NOMEM, "out of memory allocating %s (%zu x %zu bytes)", what, n, size);
    return p;
}

#define HUGE_PAGE ((uintptr_t)2 << 20) // x86-64's transparent huge page

void *rwkv_calloc_huge(size_t n, size_t size, const char *what) {
    void *p = rwkv_calloc(n, size, what); // a large calloc maps fresh zero pages, untouched
    if (!p || !n || !size) return p;
    uintptr_t a = ((uintptr_t)p + HUGE_PAGE - 1) & ~(HUGE_PAGE - 1), e = ((uintptr_t)p + n * size) & ~(HUGE_PAGE - 1);
    if (e > a) madvise((void *)a, e - a, MADV_HUGEPAGE); // advice: where it fails the pages stay 4 KiB
    return p;
}
