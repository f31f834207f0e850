// h5util.c: HDF5 attribute, error and file helpers.
#include "h5util.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
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

int rwkv_h5_attr_array(hid_t loc, const char *name, hid_t file_type, hid_t mem_type, hsize_t n, const void *data) {
    if (file_type < 0 || mem_type < 0) return -1;
    hid_t sp = H5Screate_simple(1, &n, NULL);
    hid_t a = H5Acreate2(loc, name, file_type, sp, H5P_DEFAULT, H5P_DEFAULT);
    int ok = a >= 0 && H5Awrite(a, mem_type, data) >= 0;
    if (a >= 0) H5Aclose(a);
    H5Sclose(sp);
    return ok ? 0 : -1;
}

int rwkv_h5_get_i64(hid_t loc, const char *name, int64_t *out) {
    if (H5Aexists(loc, name) <= 0) return -1;
    hid_t a = H5Aopen(loc, name, H5P_DEFAULT);
    if (a < 0) return -1;
    hid_t t = H5Aget_type(a);
    int ok = H5Tget_class(t) == H5T_INTEGER && H5Tget_size(t) <= 8 && H5Aread(a, H5T_NATIVE_INT64, out) >= 0;
    H5Tclose(t);
    H5Aclose(a);
    return ok ? 0 : -1;
}

// Variable-length strings live in the file's global heap. libhdf5 1.10 follows a corrupt heap
// into crashes and endless loops (H5HG_read, H5HG__protect), so we never let it: the attribute
// is read raw (its 16-byte heap ID, through a no-op conversion to an opaque type) and the
// string is taken from the heap collection by reading the file ourselves, every size bounded
// (HDF5 file format spec, "Global Heap"). Only 8-byte addresses and lengths are read (the
// default, and what h5py and rwkvscope write).
#define H5_VLEN_TAG "rwkvscope raw vlen heap id"
#define H5_HEAP_ID_SIZE 16                 // sequence length (4), collection address (8), index (4)
#define H5_GCOL_HEADER 16                  // "GCOL", version 1, reserved (3), collection size (8)
#define H5_GOBJ_HEADER 16                  // index (2), reference count (2), reserved (4), size (8)
#define H5_GCOL_MAX ((uint64_t)64 << 20)   // a collection of attribute strings is a few KB

static uint64_t le64(const unsigned char *p) {
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--) v = v << 8 | p[i];
    return v;
}

static herr_t raw_vlen_conv(hid_t src, hid_t dst, H5T_cdata_t *cdata, size_t n, size_t buf_stride,
                            size_t bkg_stride, void *buf, void *bkg, hid_t dxpl) {
    (void)n, (void)buf_stride, (void)bkg_stride, (void)buf, (void)bkg, (void)dxpl;
    if (cdata->command != H5T_CONV_INIT) return 0; // the bytes stay as they are: the disk heap ID
    char *tag = H5Tget_class(dst) == H5T_OPAQUE ? H5Tget_tag(dst) : NULL;
    int ok = tag && !strcmp(tag, H5_VLEN_TAG) && H5Tis_variable_str(src) > 0 && H5Tget_size(dst) == H5_HEAP_ID_SIZE;
    H5free_memory(tag);
    cdata->need_bkg = H5T_BKG_NO;
    return ok ? 0 : -1;
}

static hid_t heap_id_type(void) {
    static hid_t t = -1;
    if (t >= 0) return t;
    t = H5Tcreate(H5T_OPAQUE, H5_HEAP_ID_SIZE);
    H5Tset_tag(t, H5_VLEN_TAG);
    hid_t vs = H5Tcopy(H5T_C_S1);
    H5Tset_size(vs, H5T_VARIABLE);
    H5Tregister(H5T_PERS_SOFT, "rwkvscope_raw_vlen", vs, t, raw_vlen_conv);
    H5Tclose(vs);
    return t;
}

// The object `index` of the heap collection at addr (relative to base) of the open file f.
static int heap_object(FILE *f, uint64_t base, uint64_t addr, uint32_t index, uint32_t len, char *buf, size_t size) {
    unsigned char h[H5_GCOL_HEADER];
    if (fseeko(f, 0, SEEK_END) || addr > (uint64_t)ftello(f) || fseeko(f, (off_t)(base + addr), SEEK_SET) ||
        fread(h, 1, sizeof h, f) != sizeof h || memcmp(h, "GCOL", 4) || h[4] != 1)
        return -1;
    uint64_t csize = le64(h + 8), off = H5_GCOL_HEADER;
    if (csize < H5_GCOL_HEADER || csize > H5_GCOL_MAX) return -1;
    while (off + H5_GOBJ_HEADER <= csize) { // each object advances off by at least 16 bytes
        unsigned char o[H5_GOBJ_HEADER];
        if (fread(o, 1, sizeof o, f) != sizeof o) return -1;
        uint32_t idx = o[0] | (uint32_t)o[1] << 8;
        uint64_t osize = le64(o + 8);
        if (idx == 0 || osize > csize - off - H5_GOBJ_HEADER) return -1; // free space, or past the end
        if (idx == index) { // a longer string is cut to size - 1 bytes, like snprintf
            size_t take = len < size ? len : size - 1;
            if (len > osize || fread(buf, 1, take, f) != take) return -1;
            buf[take] = '\0';
            return strlen(buf) == take ? 0 : -1;
        }
        uint64_t padded = (osize + 7) & ~(uint64_t)7;
        if (padded > csize - off - H5_GOBJ_HEADER || fseeko(f, (off_t)padded, SEEK_CUR)) return -1;
        off += H5_GOBJ_HEADER + padded;
    }
    return -1;
}

static int read_vlen_str(hid_t a, hid_t loc, char *buf, size_t size) {
    unsigned char id[H5_HEAP_ID_SIZE];
    if (H5Aread(a, heap_id_type(), id) < 0) return -1;
    uint32_t len = id[0] | (uint32_t)id[1] << 8 | (uint32_t)id[2] << 16 | (uint32_t)id[3] << 24;
    uint32_t index = id[12] | (uint32_t)id[13] << 8 | (uint32_t)id[14] << 16 | (uint32_t)id[15] << 24;
    if (len == 0) return 0; // the empty string has no heap object
    hid_t fid = H5Iget_file_id(loc), fcpl = fid >= 0 ? H5Fget_create_plist(fid) : -1;
    size_t sa = 0, ss = 0;
    hsize_t ub = 0;
    char path[4096];
    ssize_t pn = fid >= 0 ? H5Fget_name(fid, path, sizeof path) : -1; // the name it was opened by
    int ok = fcpl >= 0 && H5Pget_sizes(fcpl, &sa, &ss) >= 0 && sa == 8 && ss == 8 && H5Pget_userblock(fcpl, &ub) >= 0 &&
             pn > 0 && pn < (ssize_t)sizeof path;
    if (fcpl >= 0) H5Pclose(fcpl);
    if (fid >= 0) H5Fclose(fid);
    FILE *f = ok ? fopen(path, "rb") : NULL;
    if (!f) return -1;
    ok = heap_object(f, ub, le64(id + 4), index, len, buf, size) == 0;
    fclose(f);
    return ok ? 0 : -1;
}

int rwkv_h5_get_str(hid_t loc, const char *name, char *buf, size_t size) {
    buf[0] = '\0';
    if (H5Aexists(loc, name) <= 0) return -1;
    hid_t a = H5Aopen(loc, name, H5P_DEFAULT);
    if (a < 0) return -1;
    hid_t t = H5Aget_type(a), sp = H5Aget_space(a);
    int ok = -1;
    // A scalar string only: the read size is then the type's size, checked below.
    if (H5Tget_class(t) == H5T_STRING && H5Sget_simple_extent_type(sp) == H5S_SCALAR) {
        if (H5Tis_variable_str(t) > 0) {
            ok = read_vlen_str(a, loc, buf, size);
        } else {
            hid_t mt = H5Tcopy(H5T_C_S1);
            H5Tset_cset(mt, H5Tget_cset(t)); // HDF5 does not convert between ASCII and UTF-8
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
            H5Tclose(mt);
        }
    }
    if (ok) buf[0] = '\0';
    H5Sclose(sp);
    H5Tclose(t);
    H5Aclose(a);
    H5Eclear2(H5E_DEFAULT);
    return ok;
}

int rwkv_h5_numeric(hid_t obj) {
    H5I_type_t k = H5Iget_type(obj);
    hid_t t = k == H5I_DATASET ? H5Dget_type(obj) : k == H5I_ATTR ? H5Aget_type(obj) : -1;
    if (t < 0) return 0;
    H5T_class_t c = H5Tget_class(t);
    int ok = (c == H5T_INTEGER || c == H5T_FLOAT) && H5Tget_size(t) <= 8;
    H5Tclose(t);
    return ok;
}

#define TRIAL_POLL_NS 200000L // 0.2 ms between looks at the child

// Waits for the child up to budget_s: 0 if it exited normally, else why not in why.
static int wait_trial(pid_t pid, double budget_s, char *why, size_t n) {
    struct timespec t0, now, nap = {0, TRIAL_POLL_NS};
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (;;) {
        int status;
        pid_t w = waitpid(pid, &status, WNOHANG);
        if (w == pid) {
            if (WIFEXITED(status) && WEXITSTATUS(status) == 0) return 0;
            if (WIFSIGNALED(status)) snprintf(why, n, "libhdf5 crashed reading it (signal %d)", WTERMSIG(status));
            else snprintf(why, n, "libhdf5 failed reading it (exit status %d)", WEXITSTATUS(status));
            return -1;
        }
        if (w < 0 && errno != EINTR) {
            snprintf(why, n, "cannot wait for the trial read: %s", strerror(errno));
            return -1;
        }
        clock_gettime(CLOCK_MONOTONIC, &now);
        if ((double)(now.tv_sec - t0.tv_sec) + 1e-9 * (double)(now.tv_nsec - t0.tv_nsec) > budget_s) {
            kill(pid, SIGKILL);
            while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {}
            snprintf(why, n, "libhdf5 did not finish reading it within %.3g s", budget_s);
            return -1;
        }
        nanosleep(&nap, NULL);
    }
}

rwkv_status rwkv_h5_guarded(const char *path, const char *what, double budget_s, rwkv_status (*read)(void *ctx),
                            void *ctx) {
    const char *env = getenv("RWKVSCOPE_H5_TRIAL");
    if (env && !strcmp(env, "0")) return read(ctx);
    rwkv_h5_quiet();
    fflush(NULL); // the child must not write our buffered output twice
    pid_t pid = fork();
    if (pid < 0) return rwkv_error_set(RWKV_ERR_IO, "%s: cannot fork the trial read: %s", path, strerror(errno));
    if (pid == 0) {
        read(ctx);
        _exit(0); // an error is a fine outcome: the trial only shows the read terminates
    }
    char why[128];
    if (wait_trial(pid, budget_s, why, sizeof why))
        return rwkv_error_set(RWKV_ERR_FORMAT, "%s: corrupt HDF5 %s: %s", path, what, why);
    return read(ctx);
}

double rwkv_h5_budget(const char *path, double base_s) {
    struct stat sb;
    return base_s + (stat(path, &sb) == 0 ? (double)sb.st_size / RWKV_H5_MIN_RATE : 0);
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
