// attention.c: effective attention matrices of one time-mix layer.
#include "attention.h"

#include "plot.h"
#include "../core/inspect/h5util.h"

#include <hdf5.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define ATTENTION_VERSION 2 // 2: RWKV-5.2/6/7 head weights (/heads, n_heads), rwkv_version

typedef struct {
    double *dst[RWKV_TAP_N_BLOCK]; // (T, width) per tap, NULL where not wanted
} capture;

static rwkv_status capture_fn(void *ctx, int layer, rwkv_tap tap, int64_t pos, int n, int D,
                              rwkv_real *data) {
    (void)layer;
    double *dst = tap < RWKV_TAP_N_BLOCK ? ((capture *)ctx)->dst[tap] : NULL;
    if (!dst) return RWKV_OK;
    for (size_t i = 0; i < (size_t)n * D; i++) dst[(size_t)pos * D + i] = data[i];
    return RWKV_OK;
}

// Runs tokens sequentially from the zero state, copying layer's taps that cap wants.
static rwkv_status run_capture(const rwkv_model *m, const int *tokens, int T, int layer, capture *cap) {
    int L = m->cfg.n_layer;
    if (layer < 0 || layer >= L)
        return rwkv_error_set(RWKV_ERR_ARG, "%s: layer %d out of range [0, %d)", m->path, layer, L);
    uint32_t *mask = rwkv_calloc((size_t)L + 1, sizeof *mask, "tap mask");
    if (!mask) return RWKV_ERR_NOMEM;
    for (int t = 0; t < RWKV_TAP_N_BLOCK; t++)
        if (cap->dst[t]) mask[layer] |= 1u << t;
    rwkv_hook hook = {.mask = mask, .fn = capture_fn, .ctx = cap, .pos = 0};
    rwkv_state *s = NULL;
    rwkv_status st = rwkv_state_alloc(&s, m->cfg);
    if (!st) st = rwkv_forward_run(m, s, tokens, T, 1, &hook);
    rwkv_state_free(s);
    free(mask);
    return st;
}

rwkv_status rwkv_attention_capture(const rwkv_model *m, const int *tokens, int T, int layer,
                                   double *k, double *v, double *wkv) {
    capture cap = {{0}};
    cap.dst[RWKV_TAP_ATT_K] = k, cap.dst[RWKV_TAP_ATT_V] = v, cap.dst[RWKV_TAP_ATT_WKV] = wkv;
    return run_capture(m, tokens, T, layer, &cap);
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

static double dot(const double *x, const double *y, int n) {
    double s = 0;
    for (int j = 0; j < n; j++) s += x[j] * y[j];
    return s;
}

void rwkv_attention_head(double *att, const rwkv_attention_heads *x, int h, double *q) {
    const int T = x->T, C = x->C, N = x->N, o = h * N, v7 = x->kk != NULL;
    for (int t = 0; t < T; t++) {
        double *row = att + (size_t)t * T;
        memset(row, 0, (size_t)T * sizeof *row);
        memcpy(q, x->r + (size_t)t * C + o, (size_t)N * sizeof *q); // q = A_{i+1} ... A_t r_t, from i = t
        if (v7) {
            for (int i = t; i >= 0; i--) {
                const size_t ri = (size_t)i * C + o;
                row[i] = dot(x->k + ri, q, N); // k_i^T A_{i+1} ... A_t r_t
                if (!i) break;
                double s = 0; // q <- A_i q = w_i * q - kk_i ((kk_i * a_i)^T q)
                for (int j = 0; j < N; j++) s += x->kk[ri + j] * x->a[ri + j] * q[j];
                for (int j = 0; j < N; j++) q[j] = x->w[ri + j] * q[j] - x->kk[ri + j] * s;
            }
            continue;
        }
        const double *kt = x->k + (size_t)t * C + o, *u = x->u + o;
        for (int j = 0; j < N; j++) row[t] += u[j] * kt[j] * q[j]; // (u * k_t)^T r_t
        for (int i = t - 1; i >= 0; i--) {
            const size_t ri = (size_t)i * C + o;
            row[i] = dot(x->k + ri, q, N); // k_i^T diag(w_{i+1} ... w_{t-1}) r_t
            for (int j = 0; j < N; j++) q[j] *= x->w[ri + j];
        }
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

const char *rwkv_attention_unit(const rwkv_model *m, int *n) {
    int heads = RWKV_HAS_HEADS(m->cfg);
    *n = heads ? m->cfg.n_embd / m->cfg.head_size : m->cfg.n_embd;
    return heads ? "head" : "channel";
}

// The mean over the selection of one unit's matrices: one(ctx, unit, buf) fills buf (T, T).
static void mean_over(double *att, double *one, int T, const int *sel, int n_sel,
                      void (*fill)(void *ctx, int unit, double *buf), void *ctx) {
    memset(att, 0, (size_t)T * T * sizeof *att);
    for (int j = 0; j < n_sel; j++) {
        fill(ctx, sel ? sel[j] : j, one);
        for (size_t i = 0; i < (size_t)T * T; i++) att[i] += one[i] / n_sel;
    }
}

typedef struct {
    const rwkv_model *m;
    const double *k; // (T, C)
    int T, layer;
} channels_ctx;

static void fill_channel(void *ctx, int c, double *buf) {
    const channels_ctx *x = ctx;
    int C = x->m->cfg.n_embd;
    size_t lc = (size_t)x->layer * C + c;
    rwkv_attention_channel(buf, x->k, x->T, C, c, x->m->decay_w[lc], x->m->w.att_time_first[lc]);
}

typedef struct {
    rwkv_attention_heads in;
    double *q; // (N)
} heads_ctx;

static void fill_head(void *ctx, int h, double *buf) {
    heads_ctx *x = ctx;
    rwkv_attention_head(buf, &x->in, h, x->q);
}

// RWKV-5.2, 6 and 7: the taps of the head weights, then their mean over sel.
static rwkv_status heads_mean(const rwkv_model *m, const int *tokens, int T, int layer, const int *sel, int n_sel,
                              double *att, double *one) {
    const int C = m->cfg.n_embd, N = m->cfg.head_size, v7 = RWKV_IS_V7(m->cfg), v5 = m->cfg.version == RWKV_VERSION_5;
    const size_t tc = (size_t)T * C;
    double *buf = rwkv_calloc(5 * tc + (size_t)C + N, sizeof *buf, "attention taps");
    if (!buf) return RWKV_ERR_NOMEM;
    capture cap = {{0}};
    heads_ctx x = {.in = {.T = T, .C = C, .N = N, .r = buf, .k = buf + tc, .w = buf + 2 * tc}, .q = buf + 5 * tc + C};
    cap.dst[RWKV_TAP_ATT_R] = buf, cap.dst[RWKV_TAP_ATT_K] = buf + tc;
    if (!v5) cap.dst[RWKV_TAP_ATT_W] = buf + 2 * tc; // the per-token decay
    if (v7) {
        x.in.kk = cap.dst[RWKV_TAP_ATT_KK] = buf + 3 * tc;
        x.in.a = cap.dst[RWKV_TAP_ATT_A] = buf + 4 * tc;
    } else { // RWKV-5.2 and 6: the bonus u, and 5.2's decay, are weights
        double *u = buf + 5 * tc;
        for (int i = 0; i < C; i++) {
            size_t lc = (size_t)layer * C + i;
            u[i] = m->v7->time_faaaa[lc];
            for (int t = 0; v5 && t < T; t++) buf[2 * tc + (size_t)t * C + i] = exp(-exp((double)m->v7->time_decay[lc]));
        }
        x.in.u = u;
    }
    rwkv_status st = run_capture(m, tokens, T, layer, &cap);
    if (!st) mean_over(att, one, T, sel, n_sel, fill_head, &x);
    free(buf);
    return st;
}

rwkv_status rwkv_attention_compute(const rwkv_model *m, const int *tokens, int T, int layer,
                                   const int *sel, int n_sel, size_t max_bytes, double *att) {
    int n_units;
    const char *unit = rwkv_attention_unit(m, &n_units);
    rwkv_status st = rwkv_attention_check_size(T, max_bytes);
    if (st) return st;
    if (layer < 0 || layer >= m->cfg.n_layer)
        return rwkv_error_set(RWKV_ERR_ARG, "%s: layer %d out of range [0, %d)", m->path, layer, m->cfg.n_layer);
    if (!sel) n_sel = n_units;
    for (int j = 0; sel && j < n_sel; j++)
        if (sel[j] < 0 || sel[j] >= n_units)
            return rwkv_error_set(RWKV_ERR_ARG, "attention: %s %d out of range [0, %d)", unit, sel[j], n_units);
    double *one = rwkv_calloc((size_t)T * T, sizeof *one, "attention matrix of one unit");
    if (!one) return RWKV_ERR_NOMEM;
    if (RWKV_HAS_HEADS(m->cfg)) {
        st = heads_mean(m, tokens, T, layer, sel, n_sel, att, one);
        free(one);
        return st;
    }
    const int C = m->cfg.n_embd;
    double *k = rwkv_calloc((size_t)T * C, sizeof *k, "att_k");
    if (!k) { free(one); return RWKV_ERR_NOMEM; }
    st = rwkv_attention_capture(m, tokens, T, layer, k, NULL, NULL);
    channels_ctx x = {m, k, T, layer};
    if (!st) mean_over(att, one, T, sel, n_sel, fill_channel, &x);
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

rwkv_status rwkv_attention_write(const char *path, const rwkv_model *m, const double *att, int T, const int *tokens,
                                 const int *sel, int n_sel, int layer, int force) {
    int n_units;
    int heads = !strcmp(rwkv_attention_unit(m, &n_units), "head");
    if (!sel) n_sel = n_units;
    hid_t f;
    rwkv_atomic_file out;
    rwkv_status st = rwkv_h5_create_atomic(&f, &out, path, force);
    if (st) return st;
    hsize_t d2[2] = {(hsize_t)T, (hsize_t)T}, d1 = (hsize_t)T, dc = (hsize_t)n_sel;
    int version = !m->v7 ? 4 : m->cfg.version;
    int bad = write_ds(f, "/attention", H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, 2, d2, att) |
              write_ds(f, "/tokens", H5T_STD_I32LE, H5T_NATIVE_INT, 1, &d1, tokens) |
              write_attr_int(f, "version", ATTENTION_VERSION) | write_attr_int(f, "layer", layer) |
              write_attr_int(f, "rwkv_version", version) |
              write_attr_int(f, heads ? "n_heads" : "n_channels", n_sel) |
              write_attr_str(f, "model_path", m->path);
    if (sel) bad |= write_ds(f, heads ? "/heads" : "/channels", H5T_STD_I32LE, H5T_NATIVE_INT, 1, &dc, sel);
    if (bad) st = rwkv_h5_fail(path, "writing the attention map");
    return rwkv_h5_commit(f, &out, st);
}

rwkv_status rwkv_attention_plot(const char *png, const rwkv_model *m, const double *att, int T, int layer,
                                int selected) {
    int n_units;
    const char *unit = rwkv_attention_unit(m, &n_units);
    double zmax = 0, zmin = 0;
    for (size_t i = 0; i < (size_t)T * T; i++) zmax = fmax(zmax, fabs(att[i])), zmin = fmin(zmin, att[i]);
    char title[256];
    snprintf(title, sizeof title, "effective attention, layer %d (%s %ss)", layer, selected ? "chosen" : "mean over",
             unit);
    rwkv_plot_opts o = {.title = title, .xlabel = "key position i", .ylabel = "query position t",
                        .width = 800, .height = 700, .zrange = zmin < 0 ? zmax : 0}; // signed: white at 0
    return rwkv_plot_heatmap(png, &o, att, T, T, NULL, NULL, "weight");
}
