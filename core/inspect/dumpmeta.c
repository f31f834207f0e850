// dumpmeta.c: dimension scales and descriptions of a dump's datasets (dumpmeta.h).
#include "dumpmeta.h"

#include "h5util.h"

#include <hdf5_hl.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

// What each tap holds (docs/dump-format.md has the long form), and its units where it has one.
static const char *const TAP_DESC[RWKV_TAP_N] = {
    "residual stream entering the block", "ln1(resid_in), the time-mix input", "receptance r",
    "sigmoid(r), the time-mix output gate", "key k", "value v", "WKV output before the gate",
    "time-mix output added to the residual", "ln2(resid), the channel-mix input",
    "sigmoid of the channel-mix receptance", "relu(key x_k)^2", "channel-mix output added to the residual",
    "state after the token: time-mix token-shift x_{t}", "state after the token: WKV numerator, scaled by e^-state_max",
    "state after the token: WKV denominator, scaled by e^-state_max", "state after the token: running max exponent",
    "state after the token: channel-mix token-shift x_{t}", "RWKV-7 per-token decay in (0.545, 1)",
    "RWKV-7 in-context learning rate", "output gate", "RWKV-7 removal key, unit norm per head",
    "RWKV-7 layer 0 value mixed into every layer", "matrix state S[h][i][j] after the token, row-major (i value, j key)",
    "residual after the last block, before ln_out", "logits after the token (unnormalised log-probabilities)"};

// The scales a dump may have: /sequences/positions (rwkv_dumpmeta_rows) and /dims/<name>.
typedef enum { SC_POSITION, SC_CHANNEL, SC_HEAD, SC_FFN, SC_TOKEN, SC_STATE_HEAD, SC_STATE_VALUE, SC_STATE_KEY, SC_N } scale_id;
static const struct { const char *name, *desc; } SCALES[SC_N] = {
    {"position", ""}, // made by the dump writer, described by rwkv_dumpmeta_rows
    {"channel", "channel index c"},
    {"head", "head of channel c: c / head_size"},
    {"ffn_channel", "channel-mix hidden channel"},
    {"token", "token id"},
    {"state_head", "head h of the state_wkv column h*N*N + i*N + j"},
    {"state_value", "value channel i within the head"},
    {"state_key", "key channel j within the head"}};

#define AXIS_SCALES_MAX 3 // scales on one dataset axis (state_index has three)

// One element of a scale's REFERENCE_LIST: the field layout H5DS reads and writes.
typedef struct {
    hobj_ref_t dataset;
    int dimension;
} ref_entry;

typedef struct {
    hid_t dset;       // the scale, -1 until made
    hobj_ref_t ref;   // object reference to it, for DIMENSION_LIST
    ref_entry *users; // (cap) the dataset axes it is attached to, n of them so far
    size_t n, cap;
} scale;

struct rwkv_dumpmeta {
    hid_t file;
    rwkv_config cfg;
    scale s[SC_N];
};

// A dataset axis: its label and the scales attached to it.
typedef struct {
    const char *label;
    int n;
    scale_id sc[AXIS_SCALES_MAX];
} axis;

rwkv_status rwkv_dumpmeta_alloc(rwkv_dumpmeta **out, hid_t file, rwkv_config cfg) {
    rwkv_dumpmeta *dm = *out = rwkv_calloc(1, sizeof *dm, "dump dimension scales");
    if (!dm) return RWKV_ERR_NOMEM;
    dm->file = file;
    dm->cfg = cfg;
    for (int i = 0; i < SC_N; i++) dm->s[i].dset = -1;
    return RWKV_OK;
}

void rwkv_dumpmeta_free(rwkv_dumpmeta *dm) {
    if (!dm) return;
    for (int i = 0; i < SC_N; i++) {
        if (dm->s[i].dset >= 0) H5Dclose(dm->s[i].dset);
        free(dm->s[i].users);
    }
    free(dm);
}

// Scale id, made on first use under /dims: n int64 values v[j] = j / div % mod, the index
// that position j of the axis stands for. 0 or -1.
static int make_scale(rwkv_dumpmeta *dm, scale_id id) {
    scale *s = &dm->s[id];
    if (s->dset >= 0) return 0;
    if (id == SC_POSITION) return -1; // rwkv_dumpmeta_rows was not called: a programmer error
    int64_t C = dm->cfg.n_embd, N = dm->cfg.head_size, n = C, div = 1, mod = C;
    if (id == SC_HEAD) div = N;
    else if (id == SC_FFN) n = mod = dm->cfg.n_ffn;
    else if (id == SC_TOKEN) n = mod = dm->cfg.n_vocab;
    else if (id >= SC_STATE_HEAD) { // the state_wkv column h*N*N + i*N + j
        n = C * N;
        div = id == SC_STATE_HEAD ? N * N : id == SC_STATE_VALUE ? N : 1;
        mod = id == SC_STATE_HEAD ? C / N : N;
    }
    if (H5Lexists(dm->file, "/dims", H5P_DEFAULT) <= 0) {
        hid_t g = H5Gcreate2(dm->file, "/dims", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
        if (g < 0) return -1;
        H5Gclose(g);
    }
    int64_t *v = malloc((size_t)(n ? n : 1) * sizeof *v);
    if (!v) return -1;
    for (int64_t j = 0, q = 0, r = 0; j < n; j++) { // j / div % mod, without dividing
        v[j] = q;
        if (++r == div) r = 0, q = q + 1 == mod ? 0 : q + 1;
    }
    char path[64];
    snprintf(path, sizeof path, "/dims/%s", SCALES[id].name);
    int bad = rwkv_h5_write(dm->file, path, H5T_STD_I64LE, H5T_NATIVE_INT64, (hsize_t)n, 0, v);
    free(v);
    s->dset = bad ? -1 : H5Dopen2(dm->file, path, H5P_DEFAULT);
    return s->dset < 0 || H5DSset_scale(s->dset, SCALES[id].name) < 0 ||
                   rwkv_h5_attr_str(s->dset, "description", SCALES[id].desc) ||
                   H5Rcreate(&s->ref, s->dset, ".", H5R_OBJECT, -1) < 0
               ? -1 : 0;
}

// Records that dimension dim of the dataset referenced by ref uses scale s.
static int add_user(scale *s, hobj_ref_t ref, int dim) {
    if (s->n == s->cap) {
        size_t cap = s->cap ? 2 * s->cap : 64;
        ref_entry *u = realloc(s->users, cap * sizeof *u);
        if (!u) return -1;
        s->users = u, s->cap = cap;
    }
    s->users[s->n++] = (ref_entry){ref, dim};
    return 0;
}

// The DIMENSION_LABELS attribute of dset: one variable-length string per axis.
static int write_labels(hid_t dset, const axis *ax, int rank) {
    const char *labels[2];
    for (int i = 0; i < rank; i++) labels[i] = ax[i].label;
    hid_t t = H5Tcopy(H5T_C_S1);
    int bad = H5Tset_size(t, H5T_VARIABLE) < 0 || rwkv_h5_attr_array(dset, "DIMENSION_LABELS", t, t, (hsize_t)rank, labels);
    H5Tclose(t);
    return bad ? -1 : 0;
}

// Labels the rank (1 or 2) axes of dset and attaches their scales: its DIMENSION_LIST (a
// variable-length list of scale references per axis) now, the scales' side at finish.
static int describe_axes(rwkv_dumpmeta *dm, hid_t dset, const axis *ax, int rank) {
    hobj_ref_t self, refs[2][AXIS_SCALES_MAX];
    hvl_t lists[2];
    if (write_labels(dset, ax, rank) || H5Rcreate(&self, dset, ".", H5R_OBJECT, -1) < 0) return -1;
    for (int i = 0; i < rank; i++) {
        for (int k = 0; k < ax[i].n; k++) {
            scale *s = &dm->s[ax[i].sc[k]];
            if (make_scale(dm, ax[i].sc[k]) || add_user(s, self, i)) return -1;
            refs[i][k] = s->ref;
        }
        lists[i] = (hvl_t){(size_t)ax[i].n, refs[i]};
    }
    hid_t t = H5Tvlen_create(H5T_STD_REF_OBJ);
    int bad = rwkv_h5_attr_array(dset, "DIMENSION_LIST", t, t, (hsize_t)rank, lists);
    if (t >= 0) H5Tclose(t);
    return bad ? -1 : 0;
}

// A column axis of C channels (with the head scale for RWKV-5/7).
static axis channel_axis(rwkv_config cfg) {
    axis a = {"channel", 1, {SC_CHANNEL}};
    if (RWKV_HAS_HEADS(cfg)) a.sc[a.n++] = SC_HEAD;
    return a;
}

int rwkv_dumpmeta_rows(rwkv_dumpmeta *dm, hid_t positions) {
    if (H5DSset_scale(positions, "position") < 0 || H5DSset_label(positions, 0, "row") < 0 ||
        rwkv_h5_attr_str(positions, "units", "tokens") ||
        rwkv_h5_attr_str(positions, "description", "position of each row within its sequence (0-based)") ||
        H5Rcreate(&dm->s[SC_POSITION].ref, positions, ".", H5R_OBJECT, -1) < 0 || H5Iinc_ref(positions) < 0)
        return -1;
    dm->s[SC_POSITION].dset = positions; // its own reference, closed by rwkv_dumpmeta_free
    return 0;
}

int rwkv_dumpmeta_tap(rwkv_dumpmeta *dm, hid_t dset, rwkv_tap tap) {
    axis ax[2] = {{"row", 1, {SC_POSITION}}, channel_axis(dm->cfg)};
    if (tap == RWKV_TAP_FFN_K) ax[1] = (axis){"ffn_channel", 1, {SC_FFN}};
    if (tap == RWKV_TAP_LOGITS) ax[1] = (axis){"token", 1, {SC_TOKEN}};
    if (tap == RWKV_TAP_STATE_WKV) ax[1] = (axis){"state_index", 3, {SC_STATE_HEAD, SC_STATE_VALUE, SC_STATE_KEY}};
    int bad = describe_axes(dm, dset, ax, 2) || rwkv_h5_attr_str(dset, "description", TAP_DESC[tap]);
    if (!bad && tap == RWKV_TAP_LOGITS) bad = rwkv_h5_attr_str(dset, "units", "nats");
    return bad ? -1 : 0;
}

int rwkv_dumpmeta_param(rwkv_dumpmeta *dm, hid_t dset, const char *name) {
    static const struct { const char *name, *units, *desc; int matrix; } P[] = {
        {"time_decay", "", "raw decay parameter w; the decay per token is exp(-exp(w))", 0},
        {"time_first", "", "u, the current-token bonus", 0},
        {"decay", "", "exp(-exp(time_decay)), the per-token multiplier of the state", 0},
        {"half_life", "tokens", "ln 2 / exp(time_decay): decay^half_life = 1/2", 0},
        {"w0", "", "RWKV-7 decay bias", 0},
        {"decay_bias", "", "RWKV-7 exp(-e^-1/2 sigmoid(w0)), the decay at the bias alone", 0},
        {"half_life_bias", "tokens", "RWKV-7 ln 2 / (e^-1/2 sigmoid(w0))", 0},
        {"receptance", "", "time-mix receptance matrix (out, in)", 1},
        {"key", "", "time-mix key matrix (out, in)", 1},
        {"value", "", "time-mix value matrix (out, in)", 1}};
    for (size_t i = 0; i < sizeof P / sizeof *P; i++) {
        if (strcmp(name, P[i].name)) continue;
        axis ax[2] = {channel_axis(dm->cfg), channel_axis(dm->cfg)};
        return rwkv_h5_attr_str(dset, "description", P[i].desc) || (*P[i].units && rwkv_h5_attr_str(dset, "units", P[i].units)) ||
                       describe_axes(dm, dset, ax, P[i].matrix ? 2 : 1)
                   ? -1 : 0;
    }
    return rwkv_h5_attr_str(dset, "description", name);
}

// A scale's REFERENCE_LIST: every (dataset, dimension) it is attached to, in one write.
static int write_reference_list(const scale *s) {
    hid_t t = H5Tcreate(H5T_COMPOUND, sizeof(ref_entry));
    int ok = t >= 0 && H5Tinsert(t, "dataset", offsetof(ref_entry, dataset), H5T_STD_REF_OBJ) >= 0 &&
             H5Tinsert(t, "dimension", offsetof(ref_entry, dimension), H5T_NATIVE_INT) >= 0 &&
             !rwkv_h5_attr_array(s->dset, "REFERENCE_LIST", t, t, s->n, s->users);
    if (t >= 0) H5Tclose(t);
    return ok ? 0 : -1;
}

int rwkv_dumpmeta_finish(rwkv_dumpmeta *dm) {
    for (int i = 0; i < SC_N; i++)
        if (dm->s[i].n && write_reference_list(&dm->s[i])) return -1;
    return 0;
}

hid_t rwkv_dumpmeta_ordered_gcpl(void) {
    hid_t p = H5Pcreate(H5P_GROUP_CREATE);
    if (p >= 0 && H5Pset_link_creation_order(p, H5P_CRT_ORDER_TRACKED | H5P_CRT_ORDER_INDEXED) < 0) {
        H5Pclose(p);
        return -1;
    }
    return p;
}
