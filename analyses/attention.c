// attention.c: effective attention matrices of one time-mix layer.
#include "attention.h"

#include "../core/inspect/h5util.h"

#include <hdf5.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define ATTENTION_VERSION 1

typedef struct {
    int T, C;
    double *k, *v, *wkv; // (T, C) each, any may be NULL
} capture;

static rwkv_status capture_fn(void *ctx, int layer, rwkv_tap tap, int64_t pos, int n, int D,
                              rwkv_real *data) {
    (void)layer;
    capture *c = ctx;
    double *dst = tap == RWKV_TAP_ATT_K ? c->k : tap == RWKV_TAP_ATT_V ? c->v : c->wkv;
    if (!dst) return RWKV_OK;
    for (size_t i = 0; i < (size_t)n * D; i++) dst[(size_t)pos * D + i] = data[i];
    return RWKV_OK;
}

rwkv_status rwkv_attention_capture(const rwkv_model *m, const int *tokens, int T, int layer,
                                   double *k, double *v, double *wkv) {
    int L = m->cfg.n_layer;
    if (layer < 0 || layer >= L)
        return rwkv_error_set(RWKV_ERR_ARG, "%s: layer %d out of range [0, %d)", m->path, layer, L);
    uint32_t *mask = rwkv_calloc((size_t)L + 1, sizeof *mask, "tap mask");
    if (!mask) return RWKV_ERR_NOMEM;
    mask[layer] = 1u << RWKV_TAP_ATT_K | 1u << RWKV_TAP_ATT_V | 1u << RWKV_TAP_ATT_WKV;
    capture cap = {.T = T, .C = m->cfg.n_embd, .k = k, .v = v, .wkv = wkv};
    rwkv_hook hook = {.mask = mask, .fn = capture_fn, .ctx = &cap, .pos = 0};
    rwkv_state *s = NULL;
    rwkv_status st = rwkv_state_alloc(&s, m->cfg);
    if (!st) st = rwkv_forward_run(m, s, tokens, T, 1, &hook);
    rwkv_state_free(s);
    free(mask);
    return st;
}

void rwkv_attention_channel(double *att, const double *k, int T, int C, int c, double w, double u) {
    for (int t = 0; t < T; t++) {
        double *row = att + (size_t)t * T;
        // Exponents: -(t-1-i) w + k_i for i < t, u + k_t at i = t; normalised with their max.
        double mx = u + k[(size_t)t * C + c];
        for (int i = 0; i < t; i++) {
            row[i] = -(t - 1 - i) * w + k[(size_t)i * C + c];
            if (row[i] > mx) mx = row[i];
        }
        row[t] = u + k[(size_t)t * C + c];
        double den = 0;
        for (int i = 0; i <= t; i++) den += row[i] = exp(row[i] - mx);
        for (int i = 0; i <= t; i++) row[i] /= den; // a_{t,i} = e^{...} / den_t
        for (int i = t + 1; i < T; i++) row[i] = 0;
    }
}

rwkv_status rwkv_attention_check_size(int T, size_t max_bytes) {
    if (!max_bytes) max_bytes = RWKV_ATTENTION_MAX_BYTES_DEFAULT;
    if (T < 1) return rwkv_error_set(RWKV_ERR_ARG, "attention: no tokens");
    double need = 2.0 * T * (double)T * sizeof(double); // the mean and one channel
    if (need > (double)max_bytes)
        return rwkv_error_set(RWKV_ERR_ARG, "attention: %d tokens need two %d x %d matrices "
                              "(%.0f MiB), more than the limit of %.0f MiB; use fewer tokens",
                              T, T, T, need / (1 << 20), (double)max_bytes / (1 << 20));
    return RWKV_OK;
}

rwkv_status rwkv_attention_compute(const rwkv_model *m, const int *tokens, int T, int layer,
                                   const int *channels, int n_ch, size_t max_bytes, double *att) {
    int C = m->cfg.n_embd;
    rwkv_status st = rwkv_attention_check_size(T, max_bytes);
    if (st) return st;
    if (!channels) n_ch = C;
    for (int j = 0; channels && j < n_ch; j++)
        if (channels[j] < 0 || channels[j] >= C)
            return rwkv_error_set(RWKV_ERR_ARG, "attention: channel %d out of range [0, %d)", channels[j], C);
    double *k = rwkv_calloc((size_t)T * C, sizeof *k, "att_k");
    double *one = k ? rwkv_calloc((size_t)T * T, sizeof *one, "attention channel") : NULL;
    if (!k || !one) { free(k); return RWKV_ERR_NOMEM; }
    st = rwkv_attention_capture(m, tokens, T, layer, k, NULL, NULL);
    memset(att, 0, (size_t)T * T * sizeof *att);
    for (int j = 0; !st && j < n_ch; j++) {
        int c = channels ? channels[j] : j;
        size_t lc = (size_t)layer * C + c;
        rwkv_attention_channel(one, k, T, C, c, m->decay_w[lc], m->w.att_time_first[lc]);
        for (size_t i = 0; i < (size_t)T * T; i++) att[i] += one[i] / n_ch; // mean over channels
    }
    free(k);
    free(one);
    return st;
}

static int write_ds(hid_t f, const char *name, hid_t ftype, hid_t mtype, int rank,
                    const hsize_t *dims, const void *data) {
    hid_t sp = H5Screate_simple(rank, dims, NULL);
    hid_t ds = H5Dcreate2(f, name, ftype, sp, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    int bad = ds < 0 || H5Dwrite(ds, mtype, H5S_ALL, H5S_ALL, H5P_DEFAULT, data) < 0;
    if (ds >= 0) H5Dclose(ds);
    H5Sclose(sp);
    return bad;
}

static int write_attr_int(hid_t f, const char *name, long long v) {
    hid_t sp = H5Screate(H5S_SCALAR);
    hid_t a = H5Acreate2(f, name, H5T_STD_I64LE, sp, H5P_DEFAULT, H5P_DEFAULT);
    int bad = a < 0 || H5Awrite(a, H5T_NATIVE_LLONG, &v) < 0;
    if (a >= 0) H5Aclose(a);
    H5Sclose(sp);
    return bad;
}

static int write_attr_str(hid_t f, const char *name, const char *v) {
    hid_t t = H5Tcopy(H5T_C_S1);
    H5Tset_size(t, strlen(v) + 1);
    hid_t sp = H5Screate(H5S_SCALAR);
    hid_t a = H5Acreate2(f, name, t, sp, H5P_DEFAULT, H5P_DEFAULT);
    int bad = a < 0 || H5Awrite(a, t, v) < 0;
    if (a >= 0) H5Aclose(a);
    H5Sclose(sp);
    H5Tclose(t);
    return bad;
}

rwkv_status rwkv_attention_write(const char *path, const double *att, int T, const int *tokens,
                                 const int *channels, int n_ch, int layer, const char *model_path,
                                 int force) {
    hid_t f;
    rwkv_atomic_file out;
    rwkv_status st = rwkv_h5_create_atomic(&f, &out, path, force);
    if (st) return st;
    hsize_t d2[2] = {(hsize_t)T, (hsize_t)T}, d1 = (hsize_t)T, dc = (hsize_t)n_ch;
    int bad = write_ds(f, "/attention", H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, 2, d2, att) |
              write_ds(f, "/tokens", H5T_STD_I32LE, H5T_NATIVE_INT, 1, &d1, tokens) |
              write_attr_int(f, "version", ATTENTION_VERSION) | write_attr_int(f, "layer", layer) |
              write_attr_int(f, "n_channels", n_ch) |
              write_attr_str(f, "model_path", model_path ? model_path : "");
    if (channels) bad |= write_ds(f, "/channels", H5T_STD_I32LE, H5T_NATIVE_INT, 1, &dc, channels);
    if (bad) st = rwkv_h5_fail(path, "writing the attention map");
    return rwkv_h5_commit(f, &out, st);
}
