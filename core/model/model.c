// model.c: builds a model from checkpoint tensors, checking every name, shape and value.
#include "model.h"

#include "../formats/formats.h"
#include "../formats/quant.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

// rwkv_weights field indices of the matrices, in rwkv_mats order (head last).
static const int MAT_FIELDS[RWKV_N_MATS + 1] = {12, 13, 14, 15, 18, 19, 20, 23};

static int mat_slot(int field) {
    for (int k = 0; k <= RWKV_N_MATS; k++)
        if (MAT_FIELDS[k] == field) return k;
    return -1;
}

const rwkv_mat *rwkv_model_mat(const rwkv_model *m, const rwkv_param *p) {
    if (m->v7) {
        int v = rwkv_v7_view_of(p, m->cfg);
        return v < 0 ? NULL : v == RWKV_V7_N_VIEWS ? &m->mats.head : RWKV_V7_MAT(m->v7, v, p->layer);
    }
    int k = mat_slot(p->field);
    if (k < 0) return NULL;
    return k == RWKV_N_MATS ? &m->mats.head : &m->mat_store[(size_t)k * m->cfg.n_layer + p->layer];
}

// Allocates the views and points mats into them.
static rwkv_status alloc_mats(rwkv_model *m) {
    int L = m->cfg.n_layer;
    m->mat_store = rwkv_calloc((size_t)RWKV_N_MATS * L + 1, sizeof *m->mat_store, "matrix views");
    if (!m->mat_store) return RWKV_ERR_NOMEM;
    rwkv_mat **f[RWKV_N_MATS] = {&m->mats.att_key, &m->mats.att_value, &m->mats.att_receptance,
                                 &m->mats.att_output, &m->mats.ffn_key, &m->mats.ffn_value,
                                 &m->mats.ffn_receptance};
    for (int k = 0; k < RWKV_N_MATS; k++) *f[k] = m->mat_store + (size_t)k * L;
    return RWKV_OK;
}

void rwkv_model_use_block(rwkv_model *m) {
    if (!m->full) return;
    for (int i = 0; i < m->table.n; i++) {
        const rwkv_param *p = &m->table.params[i];
        rwkv_mat *v = (rwkv_mat *)rwkv_model_mat(m, p);
        if (v) *v = (rwkv_mat){RWKV_DT_REAL, m->block + p->offset};
    }
    free(m->mat_buf);
    m->mat_buf = NULL;
}

// A model with its table, decays and views; the block holds `block_n` elements.
static rwkv_status model_new(rwkv_model **out, rwkv_config cfg, size_t block_n) {
    *out = NULL;
    rwkv_model *m = rwkv_calloc(1, sizeof *m, "model");
    if (!m) return RWKV_ERR_NOMEM;
    rwkv_status st = rwkv_weights_table_alloc(&m->table, cfg);
    if (st) {
        free(m);
        return st;
    }
    m->cfg = cfg;
    if (!block_n) block_n = m->table.total;
    m->full = block_n == m->table.total;
    m->block = rwkv_calloc_huge(block_n, sizeof(rwkv_real), "model parameters");
    m->decay_w = rwkv_calloc((size_t)cfg.n_layer * cfg.n_embd, sizeof(rwkv_real), "decays");
    if (!m->block || !m->decay_w || alloc_mats(m)) {
        rwkv_model_free(m);
        return RWKV_ERR_NOMEM;
    }
    *out = m;
    return RWKV_OK;
}

rwkv_status rwkv_model_alloc(rwkv_model **out, rwkv_config cfg) {
    rwkv_model *m;
    rwkv_status st = model_new(&m, cfg, 0);
    if (st) return st;
    rwkv_weights_bind(&m->w, m->block, &m->table);
    rwkv_model_use_block(m);
    rwkv_model_refresh(m);
    snprintf(m->format, sizeof m->format, "memory");
    snprintf(m->dtype, sizeof m->dtype, "%s", RWKV_REAL_BITS == 64 ? "float64" : "float32");
    *out = m;
    return RWKV_OK;
}

void rwkv_model_free(rwkv_model *m) {
    if (!m) return;
    rwkv_weights_table_free(&m->table);
    if (!m->v7) free(m->block); // RWKV-5/7: the block is v7's
    rwkv_v7_weights_free(m->v7);
    free(m->decay_w);
    free(m->mat_store);
    free(m->mat_buf);
    rwkv_tensors_free(m->src);
    free(m->src);
    free(m);
}

void rwkv_model_refresh(rwkv_model *m) {
    if (m->v7) return; // RWKV-5/7 derive nothing from the block
    size_t n = (size_t)m->cfg.n_layer * m->cfg.n_embd;
    for (size_t i = 0; i < n; i++) m->decay_w[i] = exp(m->w.att_time_decay[i]); // w = e^{time_decay}
}

size_t rwkv_model_n_params(const rwkv_model *m) { return m->v7 ? m->v7->total : m->table.total; }

size_t rwkv_model_mat_bytes(const rwkv_model *m) {
    size_t n = 0;
    for (int i = 0; i < m->table.n; i++) {
        const rwkv_param *p = &m->table.params[i];
        const rwkv_mat *v = rwkv_model_mat(m, p);
        if (v) n += (size_t)p->shape[0] * rwkv_dtype_bytes(v->type, (size_t)p->shape[1]);
    }
    return n;
}

// The source tensors are freed once no view points into them.
static void drop_src(rwkv_model *m) {
    rwkv_tensors_free(m->src);
    free(m->src);
    m->src = NULL;
}

// Converts every view to `to` (BF16 or I8) in one new buffer, a row at a time.
static rwkv_status convert_mats(rwkv_model *m, rwkv_dtype to, const char *what) {
    size_t total = 0, maxcols = 0;
    for (int i = 0; i < m->table.n; i++) {
        const rwkv_param *p = &m->table.params[i];
        if (!rwkv_model_mat(m, p)) continue;
        if (rwkv_dtype_is_quant(to) && p->shape[1] % RWKV_DT_QK)
            return rwkv_error_set(RWKV_ERR_UNSUPPORTED, "%s: tensor %s: %s weights need rows of a multiple of %d "
                                  "weights, this has %lld", m->path[0] ? m->path : "model", p->name, what,
                                  RWKV_DT_QK, (long long)p->shape[1]);
        total += (size_t)p->shape[0] * rwkv_dtype_bytes(to, (size_t)p->shape[1]);
        if ((size_t)p->shape[1] > maxcols) maxcols = (size_t)p->shape[1];
    }
    unsigned char *buf = rwkv_calloc_huge(total ? total : 1, 1, what);
    rwkv_real *row = rwkv_calloc(maxcols, sizeof *row, "conversion row");
    if (!buf || !row) {
        free(buf);
        free(row);
        return RWKV_ERR_NOMEM;
    }
    size_t off = 0;
    for (int i = 0; i < m->table.n; i++) {
        const rwkv_param *p = &m->table.params[i];
        rwkv_mat *v = (rwkv_mat *)rwkv_model_mat(m, p);
        if (!v) continue;
        size_t K = (size_t)p->shape[1], in_row = rwkv_dtype_bytes(v->type, K), out_row = rwkv_dtype_bytes(to, K);
        for (int64_t r = 0; r < p->shape[0]; r++) {
            rwkv_tensors_convert(row, (const unsigned char *)v->data + r * in_row, v->type, K);
            unsigned char *dst = buf + off + r * out_row;
            if (to == RWKV_DT_I8) rwkv_quant_int8(dst, row, K);
            else
                for (size_t j = 0; j < K; j++) {
                    uint16_t h = rwkv_float_to_bf16((float)row[j]);
                    memcpy(dst + 2 * j, &h, 2);
                }
        }
        *v = (rwkv_mat){to, buf + off};
        off += (size_t)p->shape[0] * out_row;
    }
    free(row);
    free(m->mat_buf);
    m->mat_buf = buf;
    drop_src(m);
    return RWKV_OK;
}

rwkv_status rwkv_model_use_bf16(rwkv_model *m) {
    if (m->mats.head.type == RWKV_DT_BF16 && m->mat_buf) return RWKV_OK;
    return convert_mats(m, RWKV_DT_BF16, "bf16 weights");
}

rwkv_status rwkv_model_use_int8(rwkv_model *m) {
    if (m->mats.head.type == RWKV_DT_I8 && m->mat_buf) return RWKV_OK;
    return convert_mats(m, RWKV_DT_I8, "int8 weights");
}

static rwkv_status infer_config(const rwkv_tensor_set *ts, const char *path, rwkv_config *cfg) {
    const rwkv_tensor *emb = rwkv_tensors_find(ts, "emb.weight");
    const rwkv_tensor *fk = rwkv_tensors_find(ts, "blocks.0.ffn.key.weight");
    if (!emb) return rwkv_error_set(RWKV_ERR_SHAPE, "%s: tensor emb.weight is missing", path);
    if (!fk) return rwkv_error_set(RWKV_ERR_SHAPE, "%s: tensor blocks.0.ffn.key.weight is missing", path);
    if (emb->ndim != 2)
        return rwkv_error_set(RWKV_ERR_SHAPE, "%s: tensor emb.weight has %d dimensions, expected 2 (vocab, n_embd)", path, emb->ndim);
    if (fk->ndim != 2)
        return rwkv_error_set(RWKV_ERR_SHAPE, "%s: tensor blocks.0.ffn.key.weight has %d dimensions, expected 2", path, fk->ndim);
    *cfg = (rwkv_config){.version = 4}; // RWKV-4: no heads, no LoRA
    cfg->n_layer = rwkv_tensors_count_layers(ts);
    cfg->n_vocab = (int)emb->shape[0];
    cfg->n_embd = (int)emb->shape[1];
    cfg->n_ffn = (int)fk->shape[0];
    if (emb->shape[0] > INT32_MAX || emb->shape[1] > INT32_MAX || fk->shape[0] > INT32_MAX)
        return rwkv_error_set(RWKV_ERR_SHAPE, "%s: implausible tensor sizes", path);
    rwkv_status st = rwkv_weights_check_config(*cfg);
    if (st) return rwkv_error_wrap(st, "%s: ", path);
    return RWKV_OK;
}

// Vectors may be stored as [C] or [1, 1, C]; matrices must match exactly.
static int shape_matches(const rwkv_tensor *t, const rwkv_param *p) {
    if (p->ndim == 2)
        return t->ndim == 2 && t->shape[0] == p->shape[0] && t->shape[1] == p->shape[1];
    if (t->ndim < 1) return 0;
    for (int i = 0; i + 1 < t->ndim; i++)
        if (t->shape[i] != 1) return 0;
    return t->shape[t->ndim - 1] == p->shape[0];
}

// The tensor for p, with p's shape (and, for a block type, only where the model has a view).
static rwkv_status find_param(const rwkv_tensor_set *ts, const rwkv_param *p, const char *path,
                              const rwkv_tensor **out) {
    const rwkv_tensor *t = rwkv_tensors_find(ts, p->name);
    if (!t) return rwkv_error_set(RWKV_ERR_SHAPE, "%s: tensor %s is missing", path, p->name);
    if (!shape_matches(t, p)) {
        char got[96], want[96];
        rwkv_tensors_format_shape(got, sizeof got, t->shape, t->ndim);
        rwkv_tensors_format_shape(want, sizeof want, p->shape, p->ndim);
        return rwkv_error_set(RWKV_ERR_SHAPE, "%s: tensor %s has shape %s, expected %s", path,
                              p->name, got, want);
    }
    if (rwkv_dtype_is_quant(t->dtype) && mat_slot(p->field) < 0)
        return rwkv_error_set(RWKV_ERR_FORMAT, "%s: tensor %s is %s, but only the block matrices may be "
                              "quantized", path, p->name, rwkv_dtype_name(t->dtype));
    *out = t;
    return RWKV_OK;
}

static void set_names(rwkv_model *m, const rwkv_tensor_set *ts, const char *path, const char *format) {
    snprintf(m->path, sizeof m->path, "%s", path);
    snprintf(m->format, sizeof m->format, "%s", format);
    const rwkv_tensor *k = rwkv_tensors_find(ts, "blocks.0.att.key.weight");
    snprintf(m->dtype, sizeof m->dtype, "%s", k ? rwkv_dtype_name(k->dtype) : "?");
    const char *tok = rwkv_tensors_meta(ts, "tokenizer");
    if (tok) snprintf(m->tokenizer, sizeof m->tokenizer, "%s", tok);
}

static uint64_t tensor_bytes(const rwkv_tensor *t) {
    return rwkv_dtype_bytes(t->dtype, (size_t)rwkv_tensor_numel(t));
}

static uint64_t total_bytes(const rwkv_tensor_set *ts) {
    uint64_t n = 0;
    for (int i = 0; i < ts->n; i++) n += tensor_bytes(&ts->items[i]);
    return n;
}

static void progress(const rwkv_load_opts *o, uint64_t done, uint64_t total) {
    if (o && o->progress) o->progress(o->progress_ctx, done, total);
}

// A float copy of every weight.
static rwkv_status build_full(rwkv_model **out, const rwkv_tensor_set *ts, const char *path,
                              const char *format, const rwkv_load_opts *o) {
    *out = NULL;
    int version;
    rwkv_status st = rwkv_model_version(ts, path, &version);
    if (st) return st;
    if (version != 4) return rwkv_v7_model_from_tensors(out, ts, path, format);
    rwkv_config cfg;
    st = infer_config(ts, path, &cfg);
    if (st) return st;
    rwkv_model *m;
    if ((st = rwkv_model_alloc(&m, cfg))) return rwkv_error_wrap(st, "%s: ", path);
    uint64_t done = 0, total = total_bytes(ts);
    for (int i = 0; i < m->table.n && !st; i++) {
        const rwkv_param *p = &m->table.params[i];
        const rwkv_tensor *t;
        if ((st = find_param(ts, p, path, &t))) break;
        rwkv_tensors_convert(m->block + p->offset, t->data, t->dtype, p->numel);
        st = rwkv_tensors_check_finite(m->block + p->offset, p->numel, path, p->name);
        progress(o, done += tensor_bytes(t), total);
    }
    if (st) {
        rwkv_model_free(m);
        return st;
    }
    rwkv_model_refresh(m);
    set_names(m, ts, path, format);
    *out = m;
    return RWKV_OK;
}

rwkv_status rwkv_model_from_tensors(rwkv_model **out, const rwkv_tensor_set *ts, const char *path,
                                    const char *format) {
    return build_full(out, ts, path, format, NULL);
}

// Points the vector fields of w into a block that holds only the vectors, in table order.
static size_t bind_vectors(rwkv_model *m, int count_only) {
    rwkv_real **ptrs = (rwkv_real **)&m->w;
    size_t off = 0;
    for (int i = 0; i < m->table.n; i++) {
        const rwkv_param *p = &m->table.params[i];
        if (mat_slot(p->field) >= 0) continue;
        if (!count_only && p->layer <= 0) ptrs[p->field] = m->block + off;
        off += p->numel;
    }
    return off;
}

// The vector of p in a vectors-only block.
static rwkv_real *vector_of(rwkv_model *m, const rwkv_param *p) {
    rwkv_real *first = ((rwkv_real **)&m->w)[p->field];
    return first + (p->layer > 0 ? (size_t)p->layer * p->numel : 0);
}

// One tensor of a typed model: a vector converted to float, or a matrix viewed in place.
static rwkv_status take_param(rwkv_model *m, const rwkv_tensor_set *ts, const rwkv_param *p, const char *path,
                              int headers, uint64_t *done) {
    const rwkv_tensor *t;
    rwkv_status st = find_param(ts, p, path, &t);
    if (st) return st;
    *done += tensor_bytes(t);
    rwkv_mat *v = (rwkv_mat *)rwkv_model_mat(m, p);
    if (v) {
        *v = (rwkv_mat){t->dtype, t->data};
        int64_t bad = headers || !t->data ? -1 : rwkv_tensors_first_nonfinite(t->data, t->dtype, p->numel);
        return bad < 0 ? RWKV_OK : rwkv_tensors_nonfinite_error(path, p->name, bad);
    }
    if (!t->data || (headers && p->ndim == 2)) return RWKV_OK; // headers mode: the embedding stays unread
    rwkv_real *dst = vector_of(m, p);
    rwkv_tensors_convert(dst, t->data, t->dtype, p->numel);
    rwkv_tensors_map_release(ts, t->data, tensor_bytes(t)); // the embedding's mapped pages: copied
    return rwkv_tensors_check_finite(dst, p->numel, path, p->name);
}

// Vectors as float, matrices as views of the tensors (which the model takes over).
static rwkv_status build_typed(rwkv_model **out, rwkv_tensor_set *ts, const char *path, const char *format,
                               const rwkv_load_opts *o, int version) {
    *out = NULL;
    rwkv_status st;
    if (version != 4) {
        if ((st = rwkv_v7_model_typed(out, ts, path, format, o->weights == RWKV_WEIGHTS_HEADERS))) return st;
        if (!((*out)->src = malloc(sizeof *(*out)->src))) {
            rwkv_model_free(*out);
            *out = NULL;
            return rwkv_error_set(RWKV_ERR_NOMEM, "out of memory");
        }
        *(*out)->src = *ts; // the views point into the tensors' buffers and mapping
        rwkv_tensors_init(ts);
        return RWKV_OK;
    }
    rwkv_config cfg;
    st = infer_config(ts, path, &cfg);
    if (st) return st;
    rwkv_model tmp = {.cfg = cfg};
    if ((st = rwkv_weights_table_alloc(&tmp.table, cfg))) return rwkv_error_wrap(st, "%s: ", path);
    size_t nvec = bind_vectors(&tmp, 1);
    rwkv_weights_table_free(&tmp.table);
    rwkv_model *m;
    if ((st = model_new(&m, cfg, nvec))) return rwkv_error_wrap(st, "%s: ", path);
    bind_vectors(m, 0);
    uint64_t done = 0, total = total_bytes(ts);
    int headers = o->weights == RWKV_WEIGHTS_HEADERS;
    for (int i = 0; i < m->table.n && !st; i++) {
        st = take_param(m, ts, &m->table.params[i], path, headers, &done);
        progress(o, done, total);
    }
    if (!st && !(m->src = malloc(sizeof *m->src))) st = rwkv_error_set(RWKV_ERR_NOMEM, "out of memory");
    if (st) {
        rwkv_model_free(m);
        return st;
    }
    *m->src = *ts; // the views point into the tensors' buffers and mapping
    rwkv_tensors_init(ts);
    rwkv_model_refresh(m);
    set_names(m, m->src, path, format);
    *out = m;
    return RWKV_OK;
}

// Matrices the kernels cannot read in place (float64) need a float copy.
static int kernels_read(const rwkv_tensor_set *ts) {
    for (int i = 0; i < ts->n; i++)
        if (ts->items[i].ndim == 2 && ts->items[i].dtype == RWKV_DT_F64) return 0;
    return 1;
}

static rwkv_status read_tensors(const char *path, int headers, rwkv_tensor_set *ts, rwkv_format *fmt) {
    rwkv_status st = rwkv_format_detect(path, fmt);
    if (st) return st;
    switch (*fmt) {
    case RWKV_FMT_PTH: return rwkv_pth_read_opt(path, headers, ts);
    case RWKV_FMT_SAFETENSORS: return rwkv_safetensors_read(path, ts);
    case RWKV_FMT_RWKVCPP: return rwkv_rwkvcpp_read(path, ts);
    default:
        return rwkv_error_set(RWKV_ERR_FORMAT,
                              "%s: not a model file (expected a .pth zip, safetensors or rwkv.cpp .bin)", path);
    }
}

rwkv_status rwkv_model_open(rwkv_model **out, const char *path, const rwkv_load_opts *o) {
    *out = NULL;
    rwkv_weights_mode mode = o->weights;
    rwkv_format fmt;
    rwkv_tensor_set ts;
    rwkv_tensors_init(&ts);
    rwkv_status st = read_tensors(path, mode == RWKV_WEIGHTS_HEADERS, &ts, &fmt);
    int version = 4;
    if (!st) st = rwkv_model_version(&ts, path, &version);
    if (!st && version != 4 && mode == RWKV_WEIGHTS_HEADERS && fmt == RWKV_FMT_PTH) { // the vectors are read
        rwkv_tensors_free(&ts);
        rwkv_tensors_init(&ts);
        st = read_tensors(path, 0, &ts, &fmt);
    }
    int full = mode == RWKV_WEIGHTS_FP32 ||
               (mode == RWKV_WEIGHTS_FILE && (RWKV_REAL_BITS == 64 || !kernels_read(&ts)));
    if (!st) st = full ? build_full(out, &ts, path, rwkv_format_name(fmt), o)
                       : build_typed(out, &ts, path, rwkv_format_name(fmt), o, version);
    if (!st && mode == RWKV_WEIGHTS_BF16) st = rwkv_model_use_bf16(*out);
    if (!st && mode == RWKV_WEIGHTS_INT8) st = rwkv_model_use_int8(*out);
    if (st && *out) {
        rwkv_model_free(*out);
        *out = NULL;
    }
    rwkv_tensors_free(&ts);
    return st;
}

rwkv_status rwkv_model_load(rwkv_model **out, const char *path) {
    rwkv_load_opts o = {.weights = RWKV_WEIGHTS_FP32};
    rwkv_status st = rwkv_model_open(out, path, &o);
    if (!st && strcmp((*out)->dtype, "bfloat16") == 0) st = rwkv_model_use_bf16(*out); // lossless
    if (st && *out) {
        rwkv_model_free(*out);
        *out = NULL;
    }
    return st;
}
