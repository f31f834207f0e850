// state_io.c: save and load the five state vectors with the model's shape.
#include "state_io.h"

#include "h5util.h"

#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#define STATE_FILE_SLACK (1 << 20) // bytes of attributes and HDF5 metadata a state file may add
#define STATE_READ_BUDGET_S 1.0    // seconds a state read may take (it takes milliseconds)

rwkv_status rwkv_state_save(const char *path, const rwkv_state *s, const rwkv_model *m, int64_t n_tokens,
                            const char *command_line, int force) {
    if (s->n_layer != m->cfg.n_layer || s->n_embd != m->cfg.n_embd)
        return rwkv_error_set(RWKV_ERR_SHAPE, "%s: state (L=%d, C=%d) does not fit the model (L=%d, C=%d)", path,
                              s->n_layer, s->n_embd, m->cfg.n_layer, m->cfg.n_embd);
    hid_t f;
    rwkv_status st = rwkv_h5_create(&f, path, force);
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
              rwkv_h5_attr_str(f, "command_line", command_line) | rwkv_h5_attr_str(f, "time_written", now);
    hid_t g = H5Gcreate2(f, "/state", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    bad |= g < 0;
    for (int i = 0; i < RWKV_STATE_NVEC && !bad; i++)
        bad |= rwkv_h5_write(g, RWKV_STATE_NAMES[i], RWKV_H5_REAL_FILE, RWKV_H5_REAL, (hsize_t)s->n_layer,
                             (hsize_t)s->n_embd, rwkv_state_vec(s, i));
    if (g >= 0) H5Gclose(g);
    if (bad) st = rwkv_h5_fail(path, "writing the state");
    if (H5Fclose(f) < 0 && !st) st = rwkv_h5_fail(path, "closing");
    return st;
}

static rwkv_status check_shape(hid_t f, const char *path, const rwkv_model *m) {
    const char *names[4] = {"n_layer", "n_embd", "n_ffn", "n_vocab"};
    int want[4] = {m->cfg.n_layer, m->cfg.n_embd, m->cfg.n_ffn, m->cfg.n_vocab};
    for (int i = 0; i < 4; i++) {
        int64_t v;
        if (rwkv_h5_get_i64(f, names[i], &v))
            return rwkv_error_set(RWKV_ERR_FORMAT, "%s: missing attribute %s", path, names[i]);
        if (v != want[i])
            return rwkv_error_set(RWKV_ERR_SHAPE, "%s: state was saved for %s=%lld but the model has %s=%d", path,
                                  names[i], (long long)v, names[i], want[i]);
    }
    return RWKV_OK;
}

static rwkv_status read_vec(hid_t g, const char *path, const char *name, int L, int C, rwkv_real *out) {
    hid_t d = H5Dopen2(g, name, H5P_DEFAULT);
    if (d < 0) {
        H5Eclear2(H5E_DEFAULT);
        return rwkv_error_set(RWKV_ERR_FORMAT, "%s: /state/%s is missing", path, name);
    }
    hid_t sp = H5Dget_space(d);
    hsize_t dims[3] = {0, 0, 0};
    int nd = H5Sget_simple_extent_ndims(sp);
    if (nd == 2) H5Sget_simple_extent_dims(sp, dims, NULL);
    H5Sclose(sp);
    rwkv_status st = RWKV_OK;
    if (nd != 2 || dims[0] != (hsize_t)L || dims[1] != (hsize_t)C)
        st = rwkv_error_set(RWKV_ERR_SHAPE, "%s: /state/%s has the wrong shape (want [%d, %d])", path, name, L, C);
    else if (!rwkv_h5_numeric(d))
        st = rwkv_error_set(RWKV_ERR_FORMAT, "%s: /state/%s does not hold numbers", path, name);
    else if (H5Dread(d, RWKV_H5_REAL, H5S_ALL, H5S_ALL, H5P_DEFAULT, out) < 0)
        st = rwkv_h5_fail(path, name);
    H5Dclose(d);
    for (size_t i = 0; !st && i < (size_t)L * C; i++)
        if (!isfinite(out[i])) st = rwkv_error_set(RWKV_ERR_NUMERIC, "%s: /state/%s holds a non-finite value", path, name);
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
    for (int i = 0; i < RWKV_STATE_NVEC && !st; i++)
        st = read_vec(g, path, RWKV_STATE_NAMES[i], s->n_layer, s->n_embd, rwkv_state_vec(s, i));
    if (g >= 0) H5Gclose(g);
    H5Fclose(f);
    H5Eclear2(H5E_DEFAULT);
    return st;
}

rwkv_status rwkv_state_load(rwkv_state *s, const char *path, const rwkv_model *m) {
    if (s->n_layer != m->cfg.n_layer || s->n_embd != m->cfg.n_embd)
        return rwkv_error_set(RWKV_ERR_SHAPE, "%s: the state buffer does not fit the model", path);
    // Size budget: five [L, C] float64 arrays and their attributes; a bigger file is not a state.
    struct stat sb;
    uint64_t max = (uint64_t)RWKV_STATE_NVEC * m->cfg.n_layer * m->cfg.n_embd * sizeof(double) + STATE_FILE_SLACK;
    if (stat(path, &sb) == 0 && (uint64_t)sb.st_size > max)
        return rwkv_error_set(RWKV_ERR_FORMAT, "%s: %lld bytes is too big for a state of this model (L=%d, C=%d): "
                              "not an rwkvscope state file", path, (long long)sb.st_size, m->cfg.n_layer, m->cfg.n_embd);
    state_read r = {s, path, m};
    return rwkv_h5_guarded(path, "state file", STATE_READ_BUDGET_S, read_state, &r);
}
