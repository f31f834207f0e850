// h5util.c: HDF5 attribute, error and file helpers.
#include "h5util.h"

#include <errno.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

// HDF5 1.10 crashes in its exit handler (H5F__close_cb <- H5_term_library) on a file whose
// close failed. Its handler is replaced by one that shuts HDF5 down only when every close
// succeeded (H5dont_atexit only sets a flag; it must come before the library starts).
static int h5_close_failed;
static void h5_term(void) {
    if (!h5_close_failed) H5close();
}
__attribute__((constructor)) static void h5_exit_setup(void) {
    H5dont_atexit();
    atexit(h5_term);
}

void rwkv_h5_quiet(void) { H5Eset_auto2(H5E_DEFAULT, NULL, NULL); }

// The innermost message of the stack (the first visited walking upward), or the first that
// reports a system error (a failed write: "..., error message = '<strerror>'"): the cause.
typedef struct {
    char msg[256];
    int sys;
} h5_cause;

static herr_t find_cause(unsigned n, const H5E_error2_t *e, void *data) {
    h5_cause *c = data;
    const char *key = "error message = '", *sys = e->desc ? strstr(e->desc, key) : NULL;
    if (sys && !c->sys) {
        sys += strlen(key);
        const char *q = strchr(sys, '\'');
        snprintf(c->msg, sizeof c->msg, "%.*s", q ? (int)(q - sys) : (int)strlen(sys), sys);
        c->sys = 1;
    } else if (n == 0 && e->desc && !c->sys) {
        snprintf(c->msg, sizeof c->msg, "%s", e->desc);
    }
    return 0;
}

rwkv_status rwkv_h5_fail(const char *path, const char *what) {
    h5_cause c = {"HDF5 error", 0};
    H5Ewalk2(H5E_DEFAULT, H5E_WALK_UPWARD, find_cause, &c);
    H5Eclear2(H5E_DEFAULT);
    return rwkv_error_set(RWKV_ERR_IO, "%s: %s: %s", path, what, c.msg);
}

rwkv_status rwkv_h5_create(hid_t *out, const char *path, int force, hid_t fapl) {
    rwkv_h5_quiet();
    *out = -1;
    if (!force && access(path, F_OK) == 0)
        return rwkv_error_set(RWKV_ERR_EXISTS, "%s: the output exists (use --force to replace it)", path);
    errno = 0;
    hid_t f = H5Fcreate(path, H5F_ACC_TRUNC, H5P_DEFAULT, fapl);
    if (f < 0) {
        int e = errno;
        H5Eclear2(H5E_DEFAULT);
        return rwkv_error_set(RWKV_ERR_IO, "%s: cannot create the output: %s", path,
                              e ? strerror(e) : "HDF5 refused to create it");
    }
    *out = f;
    return RWKV_OK;
}

rwkv_status rwkv_h5_open(hid_t *out, const char *path) {
    rwkv_h5_quiet();
    *out = -1;
    if (access(path, R_OK) != 0)
        return rwkv_error_set(RWKV_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    if (f < 0) {
        H5Eclear2(H5E_DEFAULT);
        return rwkv_error_set(RWKV_ERR_FORMAT, "%s: not an HDF5 file (or corrupt)", path);
    }
    *out = f;
    return RWKV_OK;
}

// Points the sec2 driver's descriptor of f at a fresh memory file, so that HDF5's remaining
// writes succeed and go nowhere.
static void discard_writes(hid_t f) {
    hid_t fapl = H5Fget_access_plist(f);
    int sec2 = fapl >= 0 && H5Pget_driver(fapl) == H5FD_SEC2;
    if (fapl >= 0) H5Pclose(fapl);
    void *h = NULL;
    if (!sec2 || H5Fget_vfd_handle(f, H5P_DEFAULT, &h) < 0 || !h) return;
    int fd = memfd_create("rwkvscope-discard", 0);
    if (fd < 0) return;
    dup2(fd, *(int *)h);
    close(fd);
}

rwkv_status rwkv_h5_close(hid_t f, const char *path) {
    if (f < 0) return RWKV_OK;
    rwkv_status st = RWKV_OK;
    if (H5Fflush(f, H5F_SCOPE_LOCAL) < 0) {
        st = rwkv_h5_fail(path, "writing");
        discard_writes(f);
    }
    if (H5Fclose(f) < 0) {
        h5_close_failed = 1;
        if (!st) st = rwkv_h5_fail(path, "closing");
    }
    H5Eclear2(H5E_DEFAULT);
    return st;
}

rwkv_status rwkv_h5_create_atomic(hid_t *out, rwkv_atomic_file *a, const char *path, int force) {
    *out = -1;
    rwkv_status st = rwkv_file_atomic_open(a, path, force, 0);
    if (!st && a->in_place) // HDF5 cannot write a device or a pipe (and leaks when it tries)
        st = rwkv_error_set(RWKV_ERR_IO, "%s: cannot write an HDF5 file there: not a regular file", path);
    else if (!st && (st = rwkv_h5_create(out, a->tmp, 1, H5P_DEFAULT)))
        st = rwkv_error_wrap(st, "%s: ", path);
    if (st) rwkv_file_atomic_abort(a);
    return st;
}

rwkv_status rwkv_h5_commit(hid_t f, rwkv_atomic_file *a, rwkv_status st) {
    char keep[RWKV_ERROR_MAX];
    snprintf(keep, sizeof keep, "%s", rwkv_error_message());
    rwkv_status cst = rwkv_h5_close(f, a->path);
    if (st || cst) {
        rwkv_file_atomic_abort(a);
        return st ? rwkv_error_set(st, "%s", keep) : cst;
    }
    return rwkv_file_atomic_commit(a);
}

int rwkv_h5_attr_str(hid_t loc, const char *name, const char *value) {
    hid_t t = H5Tcopy(H5T_C_S1);
    H5Tset_size(t, H5T_VARIABLE);
    H5Tset_cset(t, H5T_CSET_UTF8);
    hid_t sp = H5Screate(H5S_SCALAR);
    if (H5Aexists(loc, name) > 0) H5Adelete(loc, name);
    hid_t a = H5Acreate2(loc, name, t, sp, H5P_DEFAULT, H5P_DEFAULT);
    const char *v = value ? value : "";
    int ok = a >= 0 && H5Awrite(a, t, &v) >= 0;
    if (a >= 0) H5Aclose(a);
    H5Sclose(sp);
    H5Tclose(t);
    return ok ? 0 : -1;
}

int rwkv_h5_attr_i64(hid_t loc, const char *name, int64_t value) {
    hid_t a;
    if (H5Aexists(loc, name) > 0) a = H5Aopen(loc, name, H5P_DEFAULT);
    else {
        hid_t sp = H5Screate(H5S_SCALAR);
        a = H5Acreate2(loc, name, H5T_STD_I64LE, sp, H5P_DEFAULT, H5P_DEFAULT);
        H5Sclose(sp);
    }
    int ok = a >= 0 && H5Awrite(a, H5T_NATIVE_INT64, &value) >= 0;
    if (a >= 0) H5Aclose(a);
    return ok ? 0 : -1;
}

int rwkv_h5_get_i64(hid_t loc, const char *name, int64_t *out) {
    if (H5Aexists(loc, name) <= 0) return -1;
    hid_t a = H5Aopen(loc, name, H5P_DEFAULT);
    if (a < 0) return -1;
    hid_t t = H5Aget_type(a);
    int ok = H5Tget_class(t) == H5T_INTEGER && H5Aread(a, H5T_NATIVE_INT64, out) >= 0;
    H5Tclose(t);
    H5Aclose(a);
    return ok ? 0 : -1;
}

int rwkv_h5_get_str(hid_t loc, const char *name, char *buf, size_t size) {
    buf[0] = '\0';
    if (H5Aexists(loc, name) <= 0) return -1;
    hid_t a = H5Aopen(loc, name, H5P_DEFAULT);
    if (a < 0) return -1;
    hid_t t = H5Aget_type(a);
    int ok = -1;
    if (H5Tget_class(t) == H5T_STRING) {
        hid_t mt = H5Tcopy(H5T_C_S1);
        H5Tset_cset(mt, H5Tget_cset(t)); // HDF5 does not convert between ASCII and UTF-8
        if (H5Tis_variable_str(t) > 0) {
            char *v = NULL;
            H5Tset_size(mt, H5T_VARIABLE);
            if (H5Aread(a, mt, &v) >= 0 && v) {
                snprintf(buf, size, "%s", v);
                H5free_memory(v);
                ok = 0;
            }
        } else {
            size_t n = H5Tget_size(t);
            char tmp[4096];
            if (n < sizeof tmp) {
                H5Tset_size(mt, n + 1);
                if (H5Aread(a, mt, tmp) >= 0) {
                    tmp[n] = '\0';
                    snprintf(buf, size, "%s", tmp);
                    ok = 0;
                }
            }
        }
        H5Tclose(mt);
    }
    H5Tclose(t);
    H5Aclose(a);
    return ok;
}

int rwkv_h5_exists(hid_t file, const char *path) {
    char buf[512];
    snprintf(buf, sizeof buf, "%s", path);
    for (char *p = buf + 1;; p++) {
        if (*p == '/' || *p == '\0') {
            char c = *p;
            *p = '\0';
            if (H5Lexists(file, buf, H5P_DEFAULT) <= 0) return 0;
            if (!c) return 1;
            *p = c;
        }
    }
}

int rwkv_h5_write(hid_t loc, const char *name, hid_t file_type, hid_t mem_type, hsize_t rows,
                  hsize_t cols, const void *data) {
    hsize_t dims[2] = {rows, cols};
    hid_t sp = H5Screate_simple(cols ? 2 : 1, dims, NULL);
    hid_t d = H5Dcreate2(loc, name, file_type, sp, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    int ok = d >= 0 && H5Dwrite(d, mem_type, H5S_ALL, H5S_ALL, H5P_DEFAULT, data) >= 0;
    if (d >= 0) H5Dclose(d);
    H5Sclose(sp);
    return ok ? 0 : -1;
}

void rwkv_h5_now(char *buf, size_t size) {
    time_t t = time(NULL);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(buf, size, "%Y-%m-%dT%H:%M:%SZ", &tm);
}
