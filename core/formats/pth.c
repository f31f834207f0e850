// pth.c: PyTorch torch.save zip archives: <top>/data.pkl (the state dict pickle) and
// <top>/data/<key> (raw little-endian storages). <top> is "archive" in new torch and the
// file's stem in old torch, so it is taken from wherever data.pkl is.
#include "formats.h"
#include "pickle.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zip.h>

#define PTH_MAX_PICKLE ((zip_uint64_t)1 << 30) // a state-dict pickle is kilobytes
#define PTH_TOP_MAX 512

typedef struct {
    const char *path;
    zip_t *zip;
    char top[PTH_TOP_MAX]; // the archive's top folder, without the slash
} pth_archive;

// Finds the one "<top>/data.pkl" entry.
static rwkv_status find_pickle(pth_archive *a, zip_int64_t *index) {
    zip_int64_t n = zip_get_num_entries(a->zip, 0);
    for (zip_int64_t i = 0; i < n; i++) {
        const char *name = zip_get_name(a->zip, (zip_uint64_t)i, 0);
        if (!name) continue;
        const char *slash = strchr(name, '/');
        if (!slash || strcmp(slash, "/data.pkl") != 0) continue;
        size_t len = (size_t)(slash - name);
        if (len == 0 || len >= sizeof a->top) continue;
        memcpy(a->top, name, len);
        a->top[len] = '\0';
        *index = i;
        return RWKV_OK;
    }
    return rwkv_error_set(RWKV_ERR_FORMAT, "%s: no <top>/data.pkl entry: not a torch.save archive", a->path);
}

// Reads a whole entry into a malloc'd buffer of exactly `expect` bytes (or any size up to
// `max` when expect < 0).
static rwkv_status read_entry(pth_archive *a, zip_int64_t index, const char *name, int64_t expect,
                              zip_uint64_t max, unsigned char **out, size_t *n_out) {
    *out = NULL;
    zip_stat_t zs;
    zip_stat_init(&zs);
    if (zip_stat_index(a->zip, (zip_uint64_t)index, 0, &zs) != 0 || !(zs.valid & ZIP_STAT_SIZE))
        return rwkv_error_set(RWKV_ERR_FORMAT, "%s: entry %s: cannot stat: %s", a->path, name,
                              zip_strerror(a->zip));
    if (expect >= 0 && zs.size != (zip_uint64_t)expect)
        return rwkv_error_set(RWKV_ERR_FORMAT, "%s: entry %s holds %llu bytes, the pickle says %lld",
                              a->path, name, (unsigned long long)zs.size, (long long)expect);
    if (zs.size > max)
        return rwkv_error_set(RWKV_ERR_FORMAT, "%s: entry %s is implausibly large (%llu bytes)", a->path,
                              name, (unsigned long long)zs.size);
    unsigned char *buf = rwkv_calloc(zs.size ? zs.size : 1, 1, name);
    if (!buf) return RWKV_ERR_NOMEM;
    zip_file_t *zf = zip_fopen_index(a->zip, (zip_uint64_t)index, 0);
    if (!zf) {
        free(buf);
        return rwkv_error_set(RWKV_ERR_FORMAT, "%s: entry %s: cannot open: %s", a->path, name,
                              zip_strerror(a->zip));
    }
    zip_uint64_t got = 0;
    while (got < zs.size) {
        zip_int64_t k = zip_fread(zf, buf + got, zs.size - got);
        if (k <= 0) break;
        got += (zip_uint64_t)k;
    }
    // One more read reaches the end of the entry, where libzip checks the CRC.
    unsigned char extra;
    zip_int64_t tail = got == zs.size ? zip_fread(zf, &extra, 1) : -1;
    if (got != zs.size || tail != 0) {
        rwkv_status st = rwkv_error_set(RWKV_ERR_FORMAT, "%s: entry %s: read %llu of %llu bytes: %s",
                                        a->path, name, (unsigned long long)got,
                                        (unsigned long long)zs.size,
                                        zip_error_strerror(zip_file_get_error(zf)));
        zip_fclose(zf);
        free(buf);
        return st;
    }
    zip_fclose(zf);
    *out = buf;
    *n_out = (size_t)zs.size;
    return RWKV_OK;
}

// One storage read from the archive, shared by every tensor that views it.
typedef struct {
    const rwkv_pickle_tensor *first; // the first tensor that named it (key, dtype, numel)
    const unsigned char *data;
} loaded_storage;

static rwkv_status load_storage(pth_archive *a, const rwkv_pickle_tensor *t, rwkv_tensor_set *out,
                                const unsigned char **data) {
    char name[PTH_TOP_MAX + RWKV_PICKLE_KEY_MAX + 8];
    snprintf(name, sizeof name, "%s/data/%s", a->top, t->storage);
    zip_int64_t idx = zip_name_locate(a->zip, name, 0);
    if (idx < 0)
        return rwkv_error_set(RWKV_ERR_FORMAT, "%s: tensor %s: storage entry %s is missing", a->path,
                              t->name, name);
    size_t es = rwkv_dtype_size(t->dtype);
    if (t->storage_numel > INT64_MAX / (int64_t)es)
        return rwkv_error_set(RWKV_ERR_FORMAT, "%s: tensor %s: storage size overflows", a->path, t->name);
    unsigned char *buf;
    size_t n;
    rwkv_status st = read_entry(a, idx, name, t->storage_numel * (int64_t)es, UINT64_MAX, &buf, &n);
    if (st) return st;
    if ((st = rwkv_tensors_own(out, buf))) return st;
    *data = buf;
    return RWKV_OK;
}

// Checks that the view (offset, shape, stride) is contiguous and inside its storage.
static rwkv_status check_view(const char *path, const rwkv_pickle_tensor *t) {
    int64_t numel = 1, expect = 1;
    for (int i = t->ndim - 1; i >= 0; i--) {
        if (t->shape[i] != 1 && t->stride[i] != expect)
            return rwkv_error_set(RWKV_ERR_UNSUPPORTED, "%s: tensor %s: non-contiguous strides", path, t->name);
        if (t->shape[i] && numel > INT64_MAX / t->shape[i])
            return rwkv_error_set(RWKV_ERR_FORMAT, "%s: tensor %s: size overflows", path, t->name);
        numel *= t->shape[i];
        expect *= t->shape[i];
    }
    if (t->offset > t->storage_numel || numel > t->storage_numel - t->offset)
        return rwkv_error_set(RWKV_ERR_FORMAT,
                              "%s: tensor %s: %lld elements at offset %lld overrun its storage of %lld",
                              path, t->name, (long long)numel, (long long)t->offset,
                              (long long)t->storage_numel);
    return RWKV_OK;
}

// Elements of storage `key` that its views reach: a storage larger than that is refused
// before it is inflated (a small compressed entry can claim gigabytes).
static int64_t storage_needed(const rwkv_pickle_tensor *ts, int n, const char *key) {
    int64_t need = 0;
    for (int i = 0; i < n; i++) {
        if (strcmp(ts[i].storage, key)) continue;
        int64_t numel = 1;
        for (int d = 0; d < ts[i].ndim; d++) numel *= ts[i].shape[d]; // check_view bounded it
        if (ts[i].offset + numel > need) need = ts[i].offset + numel;
    }
    return need;
}

// The headers mode skips storages that only matrices view (2-D, both sides > 1).
static int only_matrices(const rwkv_pickle_tensor *ts, int n, const char *key) {
    for (int i = 0; i < n; i++)
        if (!strcmp(ts[i].storage, key) && !(ts[i].ndim == 2 && ts[i].shape[0] > 1 && ts[i].shape[1] > 1))
            return 0;
    return 1;
}

static rwkv_status add_tensors(pth_archive *a, const rwkv_pickle_tensor *ts, int n, int headers_only,
                               rwkv_tensor_set *out) {
    for (int i = 0; i < n; i++) {
        rwkv_status st = check_view(a->path, &ts[i]);
        if (st) return st;
    }
    loaded_storage *cache = rwkv_calloc(n ? (size_t)n : 1, sizeof *cache, "storage list");
    if (!cache) return RWKV_ERR_NOMEM;
    int n_cache = 0;
    rwkv_status st = RWKV_OK;
    for (int i = 0; i < n && !st; i++) {
        const rwkv_pickle_tensor *t = &ts[i];
        const unsigned char *data = NULL;
        int found = 0;
        for (int j = 0; j < n_cache && !found && !st; j++) {
            const rwkv_pickle_tensor *f = cache[j].first;
            if (strcmp(f->storage, t->storage)) continue;
            if (f->dtype != t->dtype || f->storage_numel != t->storage_numel)
                st = rwkv_error_set(RWKV_ERR_FORMAT, "%s: tensors %s and %s disagree on the type or size "
                                    "of storage %s", a->path, f->name, t->name, t->storage);
            data = cache[j].data;
            found = 1;
        }
        if (st) break;
        int64_t need = found ? 0 : storage_needed(ts, n, t->storage);
        if (!found && t->storage_numel > need) {
            st = rwkv_error_set(RWKV_ERR_FORMAT, "%s: tensor %s: its storage %s holds %lld elements, but "
                                "the tensors viewing it need %lld (corrupt or a zip bomb)", a->path, t->name,
                                t->storage, (long long)t->storage_numel, (long long)need);
            break;
        }
        if (!found && !(headers_only && only_matrices(ts, n, t->storage))) {
            if ((st = load_storage(a, t, out, &data))) break;
        }
        if (!found) cache[n_cache++] = (loaded_storage){t, data};
        if (data) data += (size_t)t->offset * rwkv_dtype_size(t->dtype);
        st = rwkv_tensors_add(out, t->name, t->dtype, t->ndim, t->shape, data);
        if (st) st = rwkv_error_wrap(st, "%s: ", a->path);
    }
    free(cache);
    return st;
}

rwkv_status rwkv_pth_read(const char *path, rwkv_tensor_set *out) { return rwkv_pth_read_opt(path, 0, out); }

rwkv_status rwkv_pth_read_opt(const char *path, int headers_only, rwkv_tensor_set *out) {
    int zerr = 0;
    pth_archive a = {.path = path};
    a.zip = zip_open(path, ZIP_RDONLY | ZIP_CHECKCONS, &zerr);
    if (!a.zip) {
        zip_error_t ze;
        zip_error_init_with_code(&ze, zerr);
        rwkv_status st = rwkv_error_set(zerr == ZIP_ER_OPEN || zerr == ZIP_ER_READ ? RWKV_ERR_IO : RWKV_ERR_FORMAT,
                                        "%s: not a readable zip archive: %s", path, zip_error_strerror(&ze));
        zip_error_fini(&ze);
        return st;
    }
    zip_int64_t pkl = -1;
    unsigned char *pickle = NULL;
    size_t n_pickle = 0;
    rwkv_pickle_tensor *ts = NULL;
    int n = 0;
    rwkv_status st = find_pickle(&a, &pkl);
    if (!st) st = read_entry(&a, pkl, "data.pkl", -1, PTH_MAX_PICKLE, &pickle, &n_pickle);
    if (!st) {
        char where[PTH_TOP_MAX + 1100];
        snprintf(where, sizeof where, "%s: %s/data.pkl", path, a.top);
        st = rwkv_pickle_read_state_dict(pickle, n_pickle, where, &ts, &n);
    }
    if (!st) st = add_tensors(&a, ts, n, headers_only, out);
    free(ts);
    free(pickle);
    zip_discard(a.zip);
    return st;
}
