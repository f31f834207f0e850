// model.c: builds a model from checkpoint tensors, checking every name and shape.
#include "model.h"

#include "../formats/formats.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

rwkv_status rwkv_model_alloc(rwkv_model **out, rwkv_config cfg) {
    *out = NULL;
    rwkv_model *m = rwkv_calloc(1, sizeof *m, "model");
    if (!m) return RWKV_ERR_NOMEM;
    rwkv_status st = rwkv_weights_table_alloc(&m->table, cfg);
    if (st) {
        free(m);
        return st;
    }
    m->cfg = cfg;
    m->block = rwkv_calloc(m->table.total, sizeof(rwkv_real), "model parameters");
    m->decay_w = rwkv_calloc((size_t)cfg.n_layer * cfg.n_embd, sizeof(rwkv_real), "decays");
    if (!m->block || !m->decay_w) {
        rwkv_model_free(m);
        return RWKV_ERR_NOMEM;
    }
    rwkv_weights_bind(&m->w, m->block, &m->table);
    rwkv_model_refresh(m);
    snprintf(m->format, sizeof m->format, "memory");
    snprintf(m->dtype, sizeof m->dtype, "%s", RWKV_REAL_BITS == 64 ? "float64" : "float32");
    *out = m;
    return RWKV_OK;
}

void rwkv_model_free(rwkv_model *m) {
    if (!m) return;
    rwkv_weights_table_free(&m->table);
    rwkv_v7_weights_free(m->v7);
    free(m->block);
    free(m->decay_w);
    free(m->bf16);
    free(m);
}

void rwkv_model_refresh(rwkv_model *m) {
    size_t n = (size_t)m->cfg.n_layer * m->cfg.n_embd;
    for (size_t i = 0; i < n; i++) m->decay_w[i] = exp(m->w.att_time_decay[i]); // w = e^{time_decay}
}

size_t rwkv_model_n_params(const rwkv_model *m) { return m->v7 ? m->v7->total : m->table.total; }

// The bf16 pointer that mirrors the fp32 field starting at `first`.
static uint16_t **bf16_slot(rwkv_weights16 *h, const rwkv_weights *w, const rwkv_real *first) {
    if (first == w->att_key) return &h->att_key;
    if (first == w->att_value) return &h->att_value;
    if (first == w->att_receptance) return &h->att_receptance;
    if (first == w->att_output) return &h->att_output;
    if (first == w->ffn_key) return &h->ffn_key;
    if (first == w->ffn_value) return &h->ffn_value;
    if (first == w->ffn_receptance) return &h->ffn_receptance;
    if (first == w->head) return &h->head;
    return NULL;
}

rwkv_status rwkv_model_use_bf16(rwkv_model *m) {
    if (m->bf16 || m->v7) return RWKV_OK; // RWKV-5/7 compute from their converted block
    size_t n = 0;
    for (int i = 0; i < m->table.n; i++)
        if (m->table.params[i].is_matrix) n += m->table.params[i].numel;
    m->bf16 = rwkv_calloc(n, sizeof(uint16_t), "bf16 weights");
    if (!m->bf16) return RWKV_ERR_NOMEM;
    size_t off = 0;
    for (int i = 0; i < m->table.n; i++) {
        const rwkv_param *p = &m->table.params[i];
        if (!p->is_matrix) continue;
        uint16_t **slot = bf16_slot(&m->w16, &m->w, m->block + p->offset);
        if (p->layer <= 0 && slot) *slot = m->bf16 + off;
        for (size_t j = 0; j < p->numel; j++)
            m->bf16[off + j] = rwkv_float_to_bf16((float)m->block[p->offset + j]);
        off += p->numel;
    }
    return RWKV_OK;
}

void rwkv_model_drop_bf16(rwkv_model *m) {
    free(m->bf16);
    m->bf16 = NULL;
    memset(&m->w16, 0, sizeof m->w16);
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

static rwkv_status fill_param(rwkv_model *m, const rwkv_tensor_set *ts, const rwkv_param *p,
                              const char *path) {
    const rwkv_tensor *t = rwkv_tensors_find(ts, p->name);
    if (!t) return rwkv_error_set(RWKV_ERR_SHAPE, "%s: tensor %s is missing", path, p->name);
    if (!shape_matches(t, p)) {
        char got[96], want[96];
        rwkv_tensors_format_shape(got, sizeof got, t->shape, t->ndim);
        rwkv_tensors_format_shape(want, sizeof want, p->shape, p->ndim);
        return rwkv_error_set(RWKV_ERR_SHAPE, "%s: tensor %s has shape %s, expected %s", path,
                              p->name, got, want);
    }
    rwkv_real *dst = m->block + p->offset;
    rwkv_tensors_convert(dst, t->data, t->dtype, p->numel);
    return RWKV_OK;
}

rwkv_status rwkv_model_from_tensors(rwkv_model **out, const rwkv_tensor_set *ts, const char *path,
                                    const char *format) {
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
    for (int i = 0; i < m->table.n && !st; i++) st = fill_param(m, ts, &m->table.params[i], path);
    if (st) {
        rwkv_model_free(m);
        return st;
    }
    rwkv_model_refresh(m);
    snprintf(m->path, sizeof m->path, "%s", path);
    snprintf(m->format, sizeof m->format, "%s", format);
    const rwkv_tensor *k = rwkv_tensors_find(ts, "blocks.0.att.key.weight");
    snprintf(m->dtype, sizeof m->dtype, "%s", rwkv_dtype_name(k->dtype));
    const char *tok = rwkv_tensors_meta(ts, "tokenizer");
    if (tok) snprintf(m->tokenizer, sizeof m->tokenizer, "%s", tok);
    *out = m;
    return RWKV_OK;
}

rwkv_status rwkv_model_load(rwkv_model **out, const char *path) {
    *out = NULL;
    rwkv_format fmt;
    rwkv_status st = rwkv_format_detect(path, &fmt);
    if (st) return st;
    rwkv_tensor_set ts;
    rwkv_tensors_init(&ts);
    switch (fmt) {
    case RWKV_FMT_PTH: st = rwkv_pth_read(path, &ts); break;
    case RWKV_FMT_SAFETENSORS: st = rwkv_safetensors_read(path, &ts); break;
    case RWKV_FMT_RWKVCPP: st = rwkv_rwkvcpp_read(path, &ts); break;
    default:
        st = rwkv_error_set(RWKV_ERR_FORMAT,
                            "%s: not a model file (expected a .pth zip, safetensors or rwkv.cpp .bin)", path);
    }
    if (!st) st = rwkv_model_from_tensors(out, &ts, path, rwkv_format_name(fmt));
    if (!st && strcmp((*out)->dtype, "bfloat16") == 0) st = rwkv_model_use_bf16(*out); // lossless
    if (st && *out) {
        rwkv_model_free(*out);
        *out = NULL;
    }
    rwkv_tensors_free(&ts);
    return st;
}
