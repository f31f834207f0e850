// state_io.c: save and load the state arrays (RWKV-4 or RWKV-7) with the model's shape.
#include "state_io.h"

#include "h5util.h"

#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#define STATE_FILE_SLACK (1 << 20) // bytes of attributes and HDF5 metadata a state file may add
#define STATE_READ_BUDGET_S 1.0    // seconds a state read may take (it takes milliseconds)

// The arrays of a state: five (L, C) vectors for RWKV-4; two and the (L, H, N, N) matrices
// for RWKV-7.
typedef struct {
    const char *name;
    int nd;
    hsize_t dims[4];
    rwkv_real *data;
} state_array;

static int state_arrays(const rwkv_state *s, state_array *a) {
    hsize_t L = (hsize_t)s->n_layer, C = (hsize_t)s->n_embd;
    if (!s->wkv) {
        for (int i = 0; i < RWKV_STATE_NVEC; i++)
            a[i] = (state_array){RWKV_STATE_NAMES[i], 2, {L, C}, rwkv_state_vec(s, i)};
        return RWKV_STATE_NVEC;
    }
    hsize_t H = (hsize_t)s->n_head, N = (hsize_t)s->head_size;
    a[0] = (state_array){"att_xprev", 2, {L, C}, s->att_xprev};
    a[1] = (state_array){"ffn_xprev", 2, {L, C}, s->ffn_xprev};
    a[2] = (state_array){"wkv", 4, {L, H, N, N}, s->wkv};
    return 3;
}

static int write_array(hid_t g, const state_array *a) {
    hid_t sp = H5Screate_simple(a->nd, a->dims, NULL);
    hid_t d = H5Dcreate2(g, a->name, RWKV_H5_REAL_FILE, sp, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    int ok = d >= 0 && H5Dwrite(d, RWKV_H5_REAL, H5S_ALL, H5S_ALL, H5P_DEFAULT, a->data) >= 0;
    if (d >= 0) H5Dclose(d);
    H5Sclose(sp);
    return ok ? 0 : -1;
}

static int model_version(const rwkv_model *m) { return RWKV_HAS_HEADS(m->cfg) ? m->cfg.version : 4; }

rwkv_status rwkv_state_save(const char *path, const rwkv_state *s, const rwkv_model *m, int64_t n_tokens,
                            const char *command_line, int force) {
    if (s->n_layer != m->cfg.n_layer || s->n_embd != m->cfg.n_embd || s->version != m->cfg.version)
        return rwkv_error_set(RWKV_ERR_SHAPE, "%s: state (L=%d, C=%d) does not fit the model (L=%d, C=%d)", path,
                              s->n_layer, s->n_embd, m->cfg.n_layer, m->cfg.n_embd);
    hid_t f;
    rwkv_atomic_file out;
    rwkv_status st = rwkv_h5_create_atomic(&f, &out, path, force);
    if (st) return st;
    char now[64];
    rwkv_h5_now(now, sizeof now);
    int bad = rwkv_h5_attr_str(f, "schema", RWKV_STATE_SCHEMA) |
              rwkv_h5_attr_i64(f, "schema_version", RWKV_STATE_SCHEMA_VERSION) |
              rwkv_h5_attr_i64(f, "n_layer", m->cfg.n_layer) | rwkv_h5_attr_i64(f, "n_embd", m->cfg.n_embd) |
              rwkv_h5_attr_i64(f, "n_ffn", m->cfg.n_ffn) | rwkv_h5_attr_i64(f, "n_vocab", m->cfg.n_vocab) |
              rwkv_h5_attr_str(f, "model_path", m->path) | rwkv_h5_attr_i64(f, "n_tokens", n_tokens) |
              rwkv_h5_attr_i64(f, "precision", RWKV_REAL_BITS) |
              rwkv_h5_attr_str(f, "rwkvscope_version", RWKVSCOPE_VERSION) |
              rwkv_h5_attr_str(f, "command_line", command_line) | rwkv_h5_attr_str(f, "time_written", now) |
              rwkv_h5_attr_i64(f, "rwkv_version", model_version(m));
    if (s->wkv) bad |= rwkv_h5_attr_i64(f, "n_head", s->n_head) | rwkv_h5_attr_i64(f, "head_size", s->head_size);
    hid_t g = H5Gcreate2(f, "/state", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    bad |= g < 0;
    state_array a[RWKV_STATE_NVEC];
    int n = state_arrays(s, a);
    for (int i = 0; i < n && !bad; i++) bad |= write_array(g, &a[i]);
    if (g >= 0) H5Gclose(g);
    if (bad) st = rwkv_h5_fail(path, "writing the state");
    return rwkv_h5_commit(f, &out, st);
}

// Schema 1 files predate RWKV-7 and have no rwkv_version: they are RWKV-4 states.
static rwkv_status check_version(hid_t f, const char *path, const rwkv_model *m) {
    int64_t v = 4;
    if (H5Aexists(f, "rwkv_version") > 0 && rwkv_h5_get_i64(f, "rwkv_version", &v))
        return rwkv_error_set(RWKV_ERR_FORMAT, "%s: attribute rwkv_version is not an integer", path);
    if (v != model_version(m))
        return rwkv_error_set(RWKV_ERR_SHAPE, "%s: state was saved for an RWKV-%lld model, but the model is RWKV-%d",
                              path, (long long)v, model_version(m));
    return RWKV_OK;
}

static rwkv_status check_shape(hid_t f, const char *path, const rwkv_model *m) {
    const char *names[5] = {"n_layer", "n_embd", "n_ffn", "n_vocab", "head_size"};
    int want[5] = {m->cfg.n_layer, m->cfg.n_embd, m->cfg.n_ffn, m->cfg.n_vocab, m->cfg.head_size};
    rwkv_status st = check_version(f, path, m);
    if (st) return st;
    for (int i = 0; i < (m->v7 ? 5 : 4); i++) {
        int64_t v;
        if (rwkv_h5_get_i64(f, names[i], &v))
            return rwkv_error_set(RWKV_ERR_FORMAT, "%s: missing attribute %s", path, names[i]);
        if (v != want[i])
            return rwkv_error_set(RWKV_ERR_SHAPE, "%s: state was saved for %s=%lld but the model has %s=%d", path,
                                  names[i], (long long)v, names[i], want[i]);
    }
    return RWKV_OK;
}

static rwkv_status read_array(hid_t g, const char *path, const state_array *a) {
    hid_t d = H5Dopen2(g, a->name, H5P_DEFAULT);
    if (d < 0) {
        H5Eclear2(H5E_DEFAULT);
        return rwkv_error_set(RWKV_ERR_FORMAT, "%s: /state/%s is missing", path, a->name);
    }
    hid_t sp = H5Dget_space(d);
    hsize_t dims[4] = {0, 0, 0, 0};
    int nd = H5Sget_simple_extent_ndims(sp), same = nd == a->nd;
    if (same) H5Sget_simple_extent_dims(sp, dims, NULL);
    H5Sclose(sp);
    size_t n = 1;
    for (int i = 0; i < a->nd; i++) {
        same = same && dims[i] == a->dims[i];
        n *= a->dims[i];
    }
    rwkv_status st = RWKV_OK;
    if (!same) {
        char want[96];
        size_t k = 0;
        for (int i = 0; i < a->nd; i++)
            k += (size_t)snprintf(want + k, sizeof want - k, "%s%llu", i ? ", " : "", (unsigned long long)a->dims[i]);
        st = rwkv_error_set(RWKV_ERR_SHAPE, "%s: /state/%s has the wrong shape (want [%s])", path, a->name, want);
    } else if (!rwkv_h5_numeric(d))
        st = rwkv_error_set(RWKV_ERR_FORMAT, "%s: /state/%s does not hold numbers", path, a->name);
    else if (H5Dread(d, RWKV_H5_REAL, H5S_ALL, H5S_ALL, H5P_DEFAULT, a->data) < 0)
        st = rwkv_h5_fail(path, a->name);
    H5Dclose(d);
    for (size_t i = 0; !st && i < n; i++)
        if (!isfinite(a->data[i]))
            st = rwkv_error_set(RWKV_ERR_NUMERIC, "%s: /state/%s holds a non-finite value", path, a->name);
    return st;
}

typedef struct {
    rwkv_state *s;
    const char *path;
    const rwkv_model *m;
} state_read;

static rwkv_status read_state(void *ctx) {
    const state_read *r = ctx;
    rwkv_state *s = r->s;
    const char *path = r->path;
    hid_t f;
    rwkv_status st = rwkv_h5_open(&f, path);
    if (st) return st;
    char schema[64];
    int64_t ver = 0;
    if (rwkv_h5_get_str(f, "schema", schema, sizeof schema) || strcmp(schema, RWKV_STATE_SCHEMA) ||
        rwkv_h5_get_i64(f, "schema_version", &ver))
        st = rwkv_error_set(RWKV_ERR_FORMAT, "%s: not an rwkvscope state file", path);
    else if (ver > RWKV_STATE_SCHEMA_VERSION)
        st = rwkv_error_set(RWKV_ERR_UNSUPPORTED, "%s: state schema version %lld is newer than this rwkvscope reads (%d)",
                            path, (long long)ver, RWKV_STATE_SCHEMA_VERSION);
    if (!st) st = check_shape(f, path, r->m);
    hid_t g = st ? -1 : H5Gopen2(f, "/state", H5P_DEFAULT);
    if (!st && g < 0) st = rwkv_error_set(RWKV_ERR_FORMAT, "%s: no /state group", path);
    state_array a[RWKV_STATE_NVEC];
    int n = st ? 0 : state_arrays(s, a);
    for (int i = 0; i < n && !st; i++) st = read_array(g, path, &a[i]);
    if (g >= 0) H5Gclose(g);
    H5Fclose(f);
    H5Eclear2(H5E_DEFAULT);
    return st;
}

rwkv_status rwkv_state_load(rwkv_state *s, const char *path, const rwkv_model *m) {
    if (s->n_layer != m->cfg.n_layer || s->n_embd != m->cfg.n_embd || s->version != m->cfg.version ||
        s->head_size != m->cfg.head_size)
        return rwkv_error_set(RWKV_ERR_SHAPE, "%s: the state buffer does not fit the model", path);
    // Size budget: the state's float64 arrays and their attributes; a bigger file is not a state.
    state_array a[RWKV_STATE_NVEC];
    int n = state_arrays(s, a);
    uint64_t max = STATE_FILE_SLACK;
    for (int i = 0; i < n; i++) {
        uint64_t k = sizeof(double);
        for (int j = 0; j < a[i].nd; j++) k *= a[i].dims[j];
        max += k;
    }
    struct stat sb;
    if (stat(path, &sb) == 0 && (uint64_t)sb.st_size > max)
        return rwkv_error_set(RWKV_ERR_FORMAT, "%s: %lld bytes is too big for a state of this model (L=%d, C=%d): "
                              "not an rwkvscope state file", path, (long long)sb.st_size, m->cfg.n_layer, m->cfg.n_embd);
    state_read r = {s, path, m};
    return rwkv_h5_guarded(path, "state file", STATE_READ_BUDGET_S, read_state, &r);
}
