// rwkvcpp.c: rwkv.cpp .bin files (versions 100 and 101; FP32, FP16, and in version 101 the
// ggml block types Q4_0, Q4_1, Q5_0, Q5_1, Q8_0 of core/formats/quant.h).
// Header: int32 magic, version, n_vocab, n_embd, n_layer, data_type. Then each tensor:
// int32 n_dims, name_len, data_type; n_dims int32 dims in ggml order (innermost first, the
// reverse of torch); the name; the data. rwkv.cpp stores att.time_decay as -exp(time_decay);
// we undo that so every reader hands over the raw parameter.
#include "formats.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define RWKVCPP_MAGIC 0x67676d66u
#define RWKVCPP_HEADER_BYTES 24
#define RWKVCPP_MAX_DIMS 3
#define RWKVCPP_NAME_MAX 127

// ggml/rwkv.cpp data types; 2..9 are the quantized formats.
static const char *const TYPE_NAMES[] = {"FP32", "FP16", "Q4_0", "Q4_1", "Q4_1_O",
                                         "Q4_2", "Q4_3", "Q5_0", "Q5_1", "Q8_0"};
#define RWKVCPP_N_TYPES 10

typedef struct {
    const char *path;
    const unsigned char *buf;
    size_t n, pos;
} reader;

static int32_t le_i32(const unsigned char *b) {
    return (int32_t)((uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 | (uint32_t)b[3] << 24);
}

static rwkv_status read_i32(reader *r, int32_t *v, const char *what) {
    if (r->n - r->pos < 4)
        return rwkv_error_set(RWKV_ERR_FORMAT, "%s: truncated at byte %zu reading %s", r->path, r->pos, what);
    *v = le_i32(r->buf + r->pos);
    r->pos += 4;
    return RWKV_OK;
}

// rwkv.cpp type codes to ours; -1 for the retired Q4_1_O, Q4_2, Q4_3.
static const int TYPE_DTYPES[RWKVCPP_N_TYPES] = {RWKV_DT_F32, RWKV_DT_F16, RWKV_DT_Q4_0, RWKV_DT_Q4_1, -1,
                                                 -1, -1, RWKV_DT_Q5_0, RWKV_DT_Q5_1, RWKV_DT_Q8_0};
#define RWKVCPP_VERSION_GGML_BLOCKS 101 // version 100's quantized blocks are ggml's old layout

// Checks a data type: the retired ones, and version 100 quantized blocks, are a clear
// "not supported".
static rwkv_status check_type(const reader *r, int32_t type, int32_t version, const char *what) {
    if (type < 0 || type >= RWKVCPP_N_TYPES)
        return rwkv_error_set(RWKV_ERR_FORMAT, "%s: %s: unknown data type %d", r->path, what, (int)type);
    if (TYPE_DTYPES[type] < 0 || (type > 1 && version < RWKVCPP_VERSION_GGML_BLOCKS))
        return rwkv_error_set(RWKV_ERR_UNSUPPORTED, "%s: %s: quantized type %s%s is not supported "
                              "(requantize it with a current rwkv.cpp)", r->path, what, TYPE_NAMES[type],
                              TYPE_DTYPES[type] < 0 ? "" : " of file version 100");
    return RWKV_OK;
}

// -exp(time_decay) back to time_decay: raw = log(-stored). RWKV-5.2 files (time_decay of
// shape (H, N, 1)) store the decay itself, exp(-exp(time_decay)): raw = log(-log(stored)).
static rwkv_status undo_decay(const reader *r, const char *name, rwkv_dtype dt, const void *src,
                              int64_t n, int v5, rwkv_tensor_set *out, const void **dst) {
    float *f = rwkv_calloc((size_t)n, sizeof *f, name);
    if (!f) return RWKV_ERR_NOMEM;
    rwkv_status st = rwkv_tensors_own(out, f);
    if (st) return st;
    for (int64_t i = 0; i < n; i++) {
        float s;
        if (dt == RWKV_DT_F32) memcpy(&s, (const unsigned char *)src + 4 * i, 4);
        else {
            uint16_t h;
            memcpy(&h, (const unsigned char *)src + 2 * i, 2);
            s = rwkv_half_to_float(h);
        }
        f[i] = (float)(v5 ? log(-log((double)s)) : log(-(double)s)); // time_decay = ln(-stored)
        if (!isfinite(f[i]))
            return rwkv_error_set(RWKV_ERR_FORMAT, "%s: tensor %s: element %lld is %g, but rwkv.cpp "
                                  "stores %s", r->path, name, (long long)i, s,
                                  v5 ? "exp(-exp(time_decay)) in (0, 1)" : "-exp(time_decay) < 0");
    }
    *dst = f;
    return RWKV_OK;
}

// blocks.N.att.time_decay, which rwkv.cpp transforms (not RWKV-6's time_decay_w1/w2).
static int is_stored_decay(const char *name) {
    const char *p = strstr(name, ".att.time_decay");
    return p && p[strlen(".att.time_decay")] == '\0';
}

// Once every tensor is read: RWKV-4/5.2 decays back to time_decay. RWKV-6 files (those with
// att.time_maa_x) store time_decay raw.
static rwkv_status undo_decays(const reader *r, rwkv_tensor_set *out) {
    if (rwkv_tensors_find(out, "blocks.0.att.time_maa_x")) return RWKV_OK;
    for (int i = 0; i < out->n; i++) {
        rwkv_tensor *t = &out->items[i];
        if (!is_stored_decay(t->name)) continue;
        rwkv_status st = undo_decay(r, t->name, t->dtype, t->data, rwkv_tensor_numel(t), t->ndim == 3, out, &t->data);
        if (st) return st;
        t->dtype = RWKV_DT_F32;
    }
    return RWKV_OK;
}

// N for "blocks.N.*" names, else -1.
static int layer_of(const char *name) {
    if (strncmp(name, "blocks.", 7) != 0) return -1;
    char *end;
    long l = strtol(name + 7, &end, 10);
    return end != name + 7 && *end == '.' && l >= 0 && l < INT32_MAX ? (int)l : -1;
}

// One tensor record. *layer gets N for "blocks.N.*" names (else -1).
static rwkv_status read_tensor(reader *r, int32_t file_type, int32_t version, rwkv_tensor_set *out,
                               int *layer) {
    int32_t nd = 0, name_len = 0, type = 0, dims[RWKVCPP_MAX_DIMS] = {0};
    size_t at = r->pos;
    rwkv_status st;
    if ((st = read_i32(r, &nd, "tensor n_dims")) || (st = read_i32(r, &name_len, "tensor name length")) ||
        (st = read_i32(r, &type, "tensor data type")))
        return st;
    if (nd < 1 || nd > RWKVCPP_MAX_DIMS || name_len < 1 || name_len > RWKVCPP_NAME_MAX)
        return rwkv_error_set(RWKV_ERR_FORMAT, "%s: tensor record at byte %zu: bad n_dims %d or name "
                              "length %d", r->path, at, (int)nd, (int)name_len);
    for (int i = 0; i < nd; i++)
        if ((st = read_i32(r, &dims[i], "tensor dims"))) return st;
    if (r->n - r->pos < (size_t)name_len)
        return rwkv_error_set(RWKV_ERR_FORMAT, "%s: truncated at byte %zu reading a tensor name", r->path, r->pos);
    char name[RWKVCPP_NAME_MAX + 1];
    memcpy(name, r->buf + r->pos, (size_t)name_len);
    name[name_len] = '\0';
    r->pos += (size_t)name_len;
    for (int i = 0; i < name_len; i++)
        if (name[i] < 32 || name[i] > 126)
            return rwkv_error_set(RWKV_ERR_FORMAT, "%s: tensor record at byte %zu: name is not printable "
                                  "ASCII", r->path, at);
    char what[160];
    snprintf(what, sizeof what, "tensor %s", name);
    if ((st = check_type(r, type, version, what))) return st;
    if (file_type == 0 && type != 0)
        return rwkv_error_set(RWKV_ERR_FORMAT, "%s: tensor %s is %s in an FP32 file", r->path, name, TYPE_NAMES[type]);
    rwkv_dtype dt = (rwkv_dtype)TYPE_DTYPES[type];
    if (rwkv_dtype_is_quant(dt) && (nd != 2 || dims[0] % RWKV_DT_QK))
        return rwkv_error_set(RWKV_ERR_FORMAT, "%s: tensor %s: a %s tensor must be a matrix whose rows are "
                              "whole blocks of %d", r->path, name, TYPE_NAMES[type], RWKV_DT_QK);
    int64_t shape[RWKVCPP_MAX_DIMS], numel = 1;
    for (int i = 0; i < nd; i++) {
        if (dims[i] < 1)
            return rwkv_error_set(RWKV_ERR_FORMAT, "%s: tensor %s: dimension %d is %d", r->path, name, i, (int)dims[i]);
        shape[nd - 1 - i] = dims[i]; // ggml lists the innermost dimension first
        if (numel > (int64_t)(r->n / (size_t)dims[i])) numel = INT64_MAX; // more than the file holds
        else numel *= dims[i];
    }
    // The record is checked against the file's end before any of its data is touched.
    size_t bytes = numel == INT64_MAX ? SIZE_MAX : rwkv_dtype_bytes(dt, (size_t)numel);
    if (bytes > r->n - r->pos)
        return rwkv_error_set(RWKV_ERR_FORMAT, "%s: tensor %s: %lld elements overrun the file (truncated?)",
                              r->path, name, (long long)numel);
    const void *data = r->buf + r->pos;
    r->pos += bytes;
    if (is_stored_decay(name) && rwkv_dtype_is_quant(dt))
        return rwkv_error_set(RWKV_ERR_FORMAT, "%s: tensor %s is quantized", r->path, name);
    *layer = layer_of(name);
    st = rwkv_tensors_add(out, name, dt, nd, shape, data);
    return st ? rwkv_error_wrap(st, "%s: ", r->path) : RWKV_OK;
}

// The header's sizes must agree with the tensors (this also catches corrupt headers).
static rwkv_status check_header(const reader *r, const int32_t *h, int max_layer, const rwkv_tensor_set *out) {
    const rwkv_tensor *emb = rwkv_tensors_find(out, "emb.weight");
    if (!emb) return rwkv_error_set(RWKV_ERR_SHAPE, "%s: tensor emb.weight is missing", r->path);
    if (emb->ndim != 2 || emb->shape[0] != h[2] || emb->shape[1] != h[3])
        return rwkv_error_set(RWKV_ERR_FORMAT, "%s: header says n_vocab=%d n_embd=%d, but tensor "
                              "emb.weight disagrees", r->path, (int)h[2], (int)h[3]);
    if (max_layer + 1 != h[4])
        return rwkv_error_set(RWKV_ERR_FORMAT, "%s: header says n_layer=%d, but the tensors have %d layers",
                              r->path, (int)h[4], max_layer + 1);
    return RWKV_OK;
}

rwkv_status rwkv_rwkvcpp_read(const char *path, rwkv_tensor_set *out) {
    const unsigned char *buf;
    size_t n;
    rwkv_status st = rwkv_tensors_map_file(out, path, &buf, &n);
    if (st) return st;
    reader r = {path, buf, n, 0};
    if (n < RWKVCPP_HEADER_BYTES)
        return rwkv_error_set(RWKV_ERR_FORMAT, "%s: %zu bytes is too short for an rwkv.cpp header", path, n);
    int32_t h[6] = {0}; // magic, version, n_vocab, n_embd, n_layer, data_type
    for (int i = 0; i < 6; i++) read_i32(&r, &h[i], "header");
    if ((uint32_t)h[0] != RWKVCPP_MAGIC)
        return rwkv_error_set(RWKV_ERR_FORMAT, "%s: bad magic 0x%08x (expected 0x%08x)", path, (unsigned)h[0], RWKVCPP_MAGIC);
    if (h[1] != 100 && h[1] != 101)
        return rwkv_error_set(RWKV_ERR_UNSUPPORTED, "%s: rwkv.cpp file version %d is not supported (100, 101)",
                              path, (int)h[1]);
    if (h[2] < 1 || h[3] < 1 || h[4] < 1)
        return rwkv_error_set(RWKV_ERR_FORMAT, "%s: header sizes n_vocab=%d n_embd=%d n_layer=%d", path,
                              (int)h[2], (int)h[3], (int)h[4]);
    if ((st = check_type(&r, h[5], h[1], "header"))) return st;
    int max_layer = -1;
    while (!st && r.pos < n) {
        int layer = -1;
        st = read_tensor(&r, h[5], h[1], out, &layer);
        if (layer > max_layer) max_layer = layer;
    }
    if (!st) st = check_header(&r, h, max_layer, out);
    return st ? st : undo_decays(&r, out);
}
