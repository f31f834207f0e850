// dumpmeta.c: dimension scales and descriptions of a dump's datasets (dumpmeta.h).
#include "dumpmeta.h"

#include "h5util.h"

#include <hdf5_hl.h>
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

typedef enum { AX_CHANNEL, AX_FFN, AX_TOKEN } axis; // what a column axis counts

// A /dims/<name> scale of n int64 values v(i); made on first use.
static hid_t scale(hid_t file, const char *name, int64_t n, int64_t div, int64_t mod, const char *desc) {
    char path[64];
    snprintf(path, sizeof path, "/dims/%s", name);
    if (rwkv_h5_exists(file, path)) return H5Dopen2(file, path, H5P_DEFAULT);
    if (!rwkv_h5_exists(file, "/dims")) {
        hid_t g = H5Gcreate2(file, "/dims", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
        if (g < 0) return -1;
        H5Gclose(g);
    }
    int64_t *v = malloc((size_t)(n ? n : 1) * sizeof *v);
    if (!v) return -1;
    for (int64_t i = 0; i < n; i++) v[i] = i / div % mod; // the index this axis position stands for
    int bad = rwkv_h5_write(file, path, H5T_STD_I64LE, H5T_NATIVE_INT64, (hsize_t)n, 0, v);
    free(v);
    hid_t d = bad ? -1 : H5Dopen2(file, path, H5P_DEFAULT);
    if (d >= 0 && (H5DSset_scale(d, name) < 0 || rwkv_h5_attr_str(d, "description", desc))) {
        H5Dclose(d);
        return -1;
    }
    return d;
}

// Attaches scale /dims/<name> (made as above) to dimension idx of dset.
static int attach(hid_t file, hid_t dset, unsigned idx, const char *name, int64_t n, int64_t div, int64_t mod,
                  const char *desc) {
    hid_t s = scale(file, name, n, div, mod, desc);
    if (s < 0) return -1;
    int bad = H5DSattach_scale(dset, s, idx) < 0;
    H5Dclose(s);
    return bad ? -1 : 0;
}

// Column axis idx: channel (C, with the head scale for RWKV-5/7), ffn_channel (F) or token (V).
static int columns(hid_t file, hid_t dset, unsigned idx, axis ax, rwkv_config cfg) {
    int D = ax == AX_CHANNEL ? cfg.n_embd : ax == AX_FFN ? cfg.n_ffn : cfg.n_vocab;
    if (ax == AX_CHANNEL) {
        int bad = H5DSset_label(dset, idx, "channel") < 0 ||
                  attach(file, dset, idx, "channel", D, 1, D, "channel index c");
        if (!bad && RWKV_HAS_HEADS(cfg))
            bad = attach(file, dset, idx, "head", D, cfg.head_size, D, "head of channel c: c / head_size");
        return bad ? -1 : 0;
    }
    if (ax == AX_FFN)
        return H5DSset_label(dset, idx, "ffn_channel") < 0 ||
                       attach(file, dset, idx, "ffn_channel", D, 1, D, "channel-mix hidden channel")
                   ? -1 : 0;
    return H5DSset_label(dset, idx, "token") < 0 || attach(file, dset, idx, "token", D, 1, D, "token id") ? -1 : 0;
}

// state_wkv column h*N*N + i*N + j: scales of h, i (value channel) and j (key channel).
static int state_columns(hid_t file, hid_t dset, rwkv_config cfg) {
    int64_t N = cfg.head_size, n = (int64_t)cfg.n_embd * N, H = cfg.n_embd / N;
    return H5DSset_label(dset, 1, "state_index") < 0 ||
                   attach(file, dset, 1, "state_head", n, N * N, H, "head h of the state_wkv column h*N*N + i*N + j") ||
                   attach(file, dset, 1, "state_value", n, N, N, "value channel i within the head") ||
                   attach(file, dset, 1, "state_key", n, 1, N, "key channel j within the head")
               ? -1 : 0;
}

int rwkv_dumpmeta_rows(hid_t positions) {
    return H5DSset_scale(positions, "position") < 0 || H5DSset_label(positions, 0, "row") < 0 ||
                   rwkv_h5_attr_str(positions, "units", "tokens") ||
                   rwkv_h5_attr_str(positions, "description", "position of each row within its sequence (0-based)")
               ? -1 : 0;
}

int rwkv_dumpmeta_tap(hid_t file, hid_t dset, hid_t positions, rwkv_tap tap, rwkv_config cfg) {
    int bad = H5DSset_label(dset, 0, "row") < 0 || H5DSattach_scale(dset, positions, 0) < 0 ||
              rwkv_h5_attr_str(dset, "description", TAP_DESC[tap]);
    if (!bad && tap == RWKV_TAP_LOGITS) bad = rwkv_h5_attr_str(dset, "units", "nats");
    if (!bad && tap == RWKV_TAP_STATE_WKV) bad = state_columns(file, dset, cfg);
    else if (!bad) bad = columns(file, dset, 1, tap == RWKV_TAP_FFN_K ? AX_FFN : tap == RWKV_TAP_LOGITS ? AX_TOKEN : AX_CHANNEL, cfg);
    return bad ? -1 : 0;
}

int rwkv_dumpmeta_param(hid_t file, hid_t dset, const char *name, rwkv_config cfg) {
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
        int bad = rwkv_h5_attr_str(dset, "description", P[i].desc) || (*P[i].units && rwkv_h5_attr_str(dset, "units", P[i].units)) ||
                  columns(file, dset, 0, AX_CHANNEL, cfg);
        if (!bad && P[i].matrix) bad = columns(file, dset, 1, AX_CHANNEL, cfg);
        return bad ? -1 : 0;
    }
    return rwkv_h5_attr_str(dset, "description", name);
}

hid_t rwkv_dumpmeta_ordered_gcpl(void) {
    hid_t p = H5Pcreate(H5P_GROUP_CREATE);
    if (p >= 0 && H5Pset_link_creation_order(p, H5P_CRT_ORDER_TRACKED | H5P_CRT_ORDER_INDEXED) < 0) {
        H5Pclose(p);
        return -1;
    }
    return p;
}
