// model_v7.c: tells the RWKV versions apart by their tensor names, and builds RWKV-7 models.
#include "model.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int has(const rwkv_tensor_set *ts, const char *name) { return rwkv_tensors_find(ts, name) != NULL; }

// The tensors that only one version has (as rwkv.cpp's converter tells them apart).
rwkv_status rwkv_model_version(const rwkv_tensor_set *ts, const char *path, int *version) {
    *version = 0;
    if (has(ts, "blocks.0.att.k_k") || has(ts, "blocks.0.att.x_rwkvag")) *version = RWKV_VERSION_7;
    else if (has(ts, "blocks.0.att.time_maa_x")) *version = RWKV_VERSION_6;
    else if (has(ts, "blocks.0.att.ln_x.weight") && has(ts, "blocks.0.att.time_decay") &&
             has(ts, "blocks.0.att.gate.weight"))
        *version = RWKV_VERSION_5;
    else if (has(ts, "blocks.0.att.ln_x.weight") && has(ts, "blocks.0.att.time_decay"))
        return rwkv_error_set(RWKV_ERR_UNSUPPORTED, "%s: an RWKV-5.0/5.1 checkpoint (ln_x without att.gate): "
                              "not supported (RWKV-4, RWKV-5.2, RWKV-6 and RWKV-7 are)", path);
    else if (has(ts, "blocks.0.att.time_decay")) *version = 4;
    else
        return rwkv_error_set(RWKV_ERR_UNSUPPORTED, "%s: unknown RWKV version: neither blocks.0.att.time_decay "
                              "(RWKV-4) nor blocks.0.att.k_k (RWKV-7) is present", path);
    return RWKV_OK;
}

// A zero-filled model; typed: the block holds no viewed matrix (rwkv_v7_weights_fill_typed
// points the views into a file's tensors).
static rwkv_status model_new(rwkv_model **out, rwkv_config cfg, rwkv_v7_dims d, int typed) {
    *out = NULL;
    if (cfg.version != RWKV_VERSION_5 && cfg.version != RWKV_VERSION_6) cfg.version = RWKV_VERSION_7;
    rwkv_status st = rwkv_weights_check_config(cfg);
    if (st) return st;
    if (cfg.head_size < 1 || cfg.head_size > RWKV_V7_MAX_HEAD_SIZE || cfg.n_embd % cfg.head_size)
        return rwkv_error_set(RWKV_ERR_SHAPE, "head size %d must divide n_embd %d and be at most %d", cfg.head_size,
                              cfg.n_embd, RWKV_V7_MAX_HEAD_SIZE);
    rwkv_model *m = rwkv_calloc(1, sizeof *m, "model");
    if (!m) return RWKV_ERR_NOMEM;
    int ranks[5] = {d.d_w, d.d_a, d.d_v, d.d_g, RWKV_V6_MIXES * d.d_m};
    cfg.n_lora = 0;
    for (int i = 0; i < 5; i++)
        if (ranks[i] > cfg.n_lora) cfg.n_lora = ranks[i];
    m->cfg = cfg;
    st = typed ? rwkv_v7_weights_alloc_typed(&m->v7, cfg, d) : rwkv_v7_weights_alloc(&m->v7, cfg, d);
    if (st || (st = rwkv_v7_table_alloc(&m->table, cfg, m->v7))) {
        rwkv_model_free(m);
        return st;
    }
    m->block = m->v7->block; // owned by v7; the table walks it (training, writing) when full
    m->full = !typed;
    // The driver in forward.c reads the globals through m->w, as for RWKV-4.
    m->w.emb = m->v7->emb;
    m->w.ln0_w = m->v7->ln0_w;
    m->w.ln0_b = m->v7->ln0_b;
    m->w.ln_out_w = m->v7->ln_out_w;
    m->w.ln_out_b = m->v7->ln_out_b;
    m->w.head = m->v7->head;
    m->mats.head = (rwkv_mat){RWKV_DT_REAL, m->w.head}; // the sequential head reads the view
    snprintf(m->format, sizeof m->format, "memory");
    snprintf(m->dtype, sizeof m->dtype, "%s", RWKV_REAL_BITS == 64 ? "float64" : "float32");
    *out = m;
    return RWKV_OK;
}

rwkv_status rwkv_v7_model_alloc(rwkv_model **out, rwkv_config cfg, rwkv_v7_dims d) {
    return model_new(out, cfg, d, 0);
}

// The model of ts: a float copy, or (typed) float vectors and views of ts's matrices.
static rwkv_status from_tensors(rwkv_model **out, const rwkv_tensor_set *ts, const char *path, const char *format,
                                int typed, int headers) {
    *out = NULL;
    int lora_out_in = strcmp(format, "rwkvcpp") == 0; // rwkv.cpp's converter transposed them
    rwkv_config cfg;
    rwkv_v7_dims d;
    int version;
    rwkv_status st = rwkv_model_version(ts, path, &version);
    if (!st) st = version == RWKV_VERSION_5 ? rwkv_v5_infer(ts, path, &cfg, &d)
                  : version == RWKV_VERSION_6 ? rwkv_v6_infer(ts, path, lora_out_in, &cfg, &d)
                  : rwkv_v7_infer(ts, path, lora_out_in, &cfg, &d);
    if (st) return st;
    rwkv_model *m;
    if ((st = model_new(&m, cfg, d, typed))) return rwkv_error_wrap(st, "%s: ", path);
    st = typed ? rwkv_v7_weights_fill_typed(m->v7, m->cfg, ts, path, lora_out_in, headers, &m->mats.head)
               : rwkv_v7_weights_fill(m->v7, m->cfg, ts, path, lora_out_in);
    if (st) {
        rwkv_model_free(m);
        return st;
    }
    snprintf(m->path, sizeof m->path, "%s", path);
    snprintf(m->format, sizeof m->format, "%s", format);
    const rwkv_tensor *k = rwkv_tensors_find(ts, "blocks.0.att.key.weight");
    snprintf(m->dtype, sizeof m->dtype, "%s", k ? rwkv_dtype_name(k->dtype) : "float32");
    const char *tok = rwkv_tensors_meta(ts, "tokenizer");
    if (tok) snprintf(m->tokenizer, sizeof m->tokenizer, "%s", tok);
    *out = m;
    return RWKV_OK;
}

rwkv_status rwkv_v7_model_from_tensors(rwkv_model **out, const rwkv_tensor_set *ts, const char *path,
                                       const char *format) {
    return from_tensors(out, ts, path, format, 0, 0);
}

rwkv_status rwkv_v7_model_typed(rwkv_model **out, const rwkv_tensor_set *ts, const char *path, const char *format,
                                int headers) {
    return from_tensors(out, ts, path, format, 1, headers);
}

rwkv_status rwkv_model_require_v4(const rwkv_model *m, const char *what) {
    if (!RWKV_HAS_HEADS(m->cfg)) return RWKV_OK;
    return rwkv_error_set(RWKV_ERR_UNSUPPORTED, "%s: %s supports RWKV-4 models only; this is an RWKV-%d model",
                          m->path[0] ? m->path : "model", what, m->cfg.version);
}
