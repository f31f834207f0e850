// weights_v7.c: the RWKV-7 tensor table: names, shapes, where each lives in the block.
#include "weights_v7.h"

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <math.h>
#include <string.h>

typedef enum { D_ONE, D_C, D_F, D_V, D_W, D_A, D_VG, D_G, D_M, D_M5, D_C5 } dim_id;

enum {
    K_GLOBAL = 1,   // one tensor, full name
    K_LORA = 2,     // official storage is (in, out): transposed unless the file is rwkv.cpp's
    K_FROM_L1 = 4,  // absent from block 0 (value residual: layer 0 makes v_first)
    K_HEADS = 8,    // a vector stored as (H, N)
    K_MIX = 16,     // rwkv.cpp concatenates these six into att.x_rwkvag
    K_STACK = 32,   // RWKV-6 time_maa_w2: 5 LoRA factors, official (5, Dm, C), ours and rwkv.cpp's (5, C, Dm)
};

typedef struct {
    const char *name; // full name (K_GLOBAL) or the part after "blocks.N."
    size_t field;     // offsetof the pointer in rwkv_v7_weights
    dim_id rows, cols;
    int kind;
    int view;         // 1 + its rwkv_v7_view, VIEW_HEAD, or 0: read through a typed view
} field;

#define VIEW(x) (1 + (x))
#define VIEW_HEAD (1 + RWKV_V7_N_VIEWS)

#define F(x) offsetof(rwkv_v7_weights, x)
// The tensors every version has: the embedding and ln0, the block LayerNorms, the head.
#define FIELDS_FIRST                                                \
    {"emb.weight", F(emb), D_V, D_C, K_GLOBAL, 0},                     \
    {"blocks.0.ln0.weight", F(ln0_w), D_ONE, D_C, K_GLOBAL, 0},        \
    {"blocks.0.ln0.bias", F(ln0_b), D_ONE, D_C, K_GLOBAL, 0},          \
    {"ln1.weight", F(ln1_w), D_ONE, D_C, 0, 0},                        \
    {"ln1.bias", F(ln1_b), D_ONE, D_C, 0, 0},                          \
    {"ln2.weight", F(ln2_w), D_ONE, D_C, 0, 0},                        \
    {"ln2.bias", F(ln2_b), D_ONE, D_C, 0, 0}
#define FIELDS_LAST                                                 \
    {"ln_out.weight", F(ln_out_w), D_ONE, D_C, K_GLOBAL, 0},           \
    {"ln_out.bias", F(ln_out_b), D_ONE, D_C, K_GLOBAL, 0},             \
    {"head.weight", F(head), D_V, D_C, K_GLOBAL, VIEW_HEAD}

static const field FIELDS[] = {
    FIELDS_FIRST,
    {"att.x_r", F(x_r), D_ONE, D_C, K_MIX, 0},
    {"att.x_w", F(x_w), D_ONE, D_C, K_MIX, 0},
    {"att.x_k", F(x_k), D_ONE, D_C, K_MIX, 0},
    {"att.x_v", F(x_v), D_ONE, D_C, K_MIX, 0},
    {"att.x_a", F(x_a), D_ONE, D_C, K_MIX, 0},
    {"att.x_g", F(x_g), D_ONE, D_C, K_MIX, 0},
    {"att.w0", F(w0), D_ONE, D_C, 0, 0},
    {"att.w1", F(w1), D_W, D_C, K_LORA, 0},
    {"att.w2", F(w2), D_C, D_W, K_LORA, 0},
    {"att.a0", F(a0), D_ONE, D_C, 0, 0},
    {"att.a1", F(a1), D_A, D_C, K_LORA, 0},
    {"att.a2", F(a2), D_C, D_A, K_LORA, 0},
    {"att.v0", F(v0), D_ONE, D_C, K_FROM_L1, 0},
    {"att.v1", F(v1), D_VG, D_C, K_LORA | K_FROM_L1, 0},
    {"att.v2", F(v2), D_C, D_VG, K_LORA | K_FROM_L1, 0},
    {"att.g1", F(g1), D_G, D_C, K_LORA, 0},
    {"att.g2", F(g2), D_C, D_G, K_LORA, 0},
    {"att.k_k", F(k_k), D_ONE, D_C, 0, 0},
    {"att.k_a", F(k_a), D_ONE, D_C, 0, 0},
    {"att.r_k", F(r_k), D_ONE, D_C, K_HEADS, 0},
    {"att.receptance.weight", F(att_receptance), D_C, D_C, 0, VIEW(RWKV_V7_R)},
    {"att.key.weight", F(att_key), D_C, D_C, 0, VIEW(RWKV_V7_K)},
    {"att.value.weight", F(att_value), D_C, D_C, 0, VIEW(RWKV_V7_V)},
    {"att.output.weight", F(att_output), D_C, D_C, 0, VIEW(RWKV_V7_O)},
    {"att.ln_x.weight", F(ln_x_w), D_ONE, D_C, 0, 0},
    {"att.ln_x.bias", F(ln_x_b), D_ONE, D_C, 0, 0},
    {"ffn.x_k", F(ffn_x_k), D_ONE, D_C, 0, 0},
    {"ffn.key.weight", F(ffn_key), D_F, D_C, 0, VIEW(RWKV_V7_FK)},
    {"ffn.value.weight", F(ffn_value), D_C, D_F, 0, VIEW(RWKV_V7_FV)},
    FIELDS_LAST,
};

// RWKV-5.2 and 6 share the gated time mix's matrices and GroupNorm, and the gated channel mix.
#define FIELDS_V56_ATT                                                          \
    {"att.receptance.weight", F(att_receptance), D_C, D_C, 0, VIEW(RWKV_V7_R)}, \
    {"att.key.weight", F(att_key), D_C, D_C, 0, VIEW(RWKV_V7_K)},               \
    {"att.value.weight", F(att_value), D_C, D_C, 0, VIEW(RWKV_V7_V)},           \
    {"att.gate.weight", F(att_gate), D_C, D_C, 0, VIEW(RWKV_V7_G)},             \
    {"att.output.weight", F(att_output), D_C, D_C, 0, VIEW(RWKV_V7_O)},         \
    {"att.ln_x.weight", F(ln_x_w), D_ONE, D_C, 0, 0},                           \
    {"att.ln_x.bias", F(ln_x_b), D_ONE, D_C, 0, 0}
#define FIELDS_V56_FFN                                                          \
    {"ffn.key.weight", F(ffn_key), D_F, D_C, 0, VIEW(RWKV_V7_FK)},              \
    {"ffn.value.weight", F(ffn_value), D_C, D_F, 0, VIEW(RWKV_V7_FV)},          \
    {"ffn.receptance.weight", F(ffn_receptance), D_C, D_C, 0, VIEW(RWKV_V7_FR)}

// RWKV-5.2 (rwkv.cpp stores time_decay as exp(-exp(.)) and its reader undoes that).
static const field FIELDS_V5[] = {
    FIELDS_FIRST,
    {"att.time_mix_k", F(x_k), D_ONE, D_C, 0, 0},
    {"att.time_mix_v", F(x_v), D_ONE, D_C, 0, 0},
    {"att.time_mix_r", F(x_r), D_ONE, D_C, 0, 0},
    {"att.time_mix_g", F(x_g), D_ONE, D_C, 0, 0},
    {"att.time_decay", F(time_decay), D_ONE, D_C, K_HEADS, 0},
    {"att.time_faaaa", F(time_faaaa), D_ONE, D_C, K_HEADS, 0},
    FIELDS_V56_ATT,
    {"ffn.time_mix_k", F(ffn_x_k), D_ONE, D_C, 0, 0},
    {"ffn.time_mix_r", F(ffn_x_r), D_ONE, D_C, 0, 0},
    FIELDS_V56_FFN,
    FIELDS_LAST,
};

// RWKV-6 (rwkv.cpp stores its time_decay raw, and the LoRA factors as (out, in)).
static const field FIELDS_V6[] = {
    FIELDS_FIRST,
    {"att.time_maa_x", F(maa_x), D_ONE, D_C, 0, 0},
    {"att.time_maa_w", F(x_w), D_ONE, D_C, 0, 0},
    {"att.time_maa_k", F(x_k), D_ONE, D_C, 0, 0},
    {"att.time_maa_v", F(x_v), D_ONE, D_C, 0, 0},
    {"att.time_maa_r", F(x_r), D_ONE, D_C, 0, 0},
    {"att.time_maa_g", F(x_g), D_ONE, D_C, 0, 0},
    {"att.time_maa_w1", F(maa_w1), D_M5, D_C, K_LORA, 0},
    {"att.time_maa_w2", F(maa_w2), D_C5, D_M, K_STACK, 0},
    {"att.time_decay", F(time_decay), D_ONE, D_C, K_HEADS, 0},
    {"att.time_decay_w1", F(decay_w1), D_W, D_C, K_LORA, 0},
    {"att.time_decay_w2", F(decay_w2), D_C, D_W, K_LORA, 0},
    {"att.time_faaaa", F(time_faaaa), D_ONE, D_C, K_HEADS, 0},
    FIELDS_V56_ATT,
    {"ffn.time_maa_k", F(ffn_x_k), D_ONE, D_C, 0, 0},
    {"ffn.time_maa_r", F(ffn_x_r), D_ONE, D_C, 0, 0},
    FIELDS_V56_FFN,
    FIELDS_LAST,
};

// The table of cfg's version and its length.
static const field *fields(rwkv_config cfg, int *n) {
#define N_OF(t) ((int)(sizeof t / sizeof t[0]))
    if (cfg.version == RWKV_VERSION_5) return *n = N_OF(FIELDS_V5), FIELDS_V5;
    if (cfg.version == RWKV_VERSION_6) return *n = N_OF(FIELDS_V6), FIELDS_V6;
    return *n = N_OF(FIELDS), FIELDS;
#undef N_OF
}
static const char *const MIX_ORDER[6] = {"att.x_r", "att.x_w", "att.x_k", "att.x_v", "att.x_a", "att.x_g"};

static int64_t dim(dim_id id, rwkv_config c, rwkv_v7_dims d) {
    switch (id) {
    case D_ONE: return 1;
    case D_C: return c.n_embd;
    case D_F: return c.n_ffn;
    case D_V: return c.n_vocab;
    case D_W: return d.d_w;
    case D_A: return d.d_a;
    case D_VG: return d.d_v;
    case D_G: return d.d_g;
    case D_M: return d.d_m;
    case D_M5: return RWKV_V6_MIXES * (int64_t)d.d_m;
    case D_C5: return RWKV_V6_MIXES * (int64_t)c.n_embd;
    }
    return 0;
}

static size_t field_numel(const field *f, rwkv_config c, rwkv_v7_dims d) {
    size_t n = (size_t)dim(f->rows, c, d) * (size_t)dim(f->cols, c, d);
    return f->kind & K_GLOBAL ? n : n * (size_t)c.n_layer;
}

static rwkv_real **slot(rwkv_v7_weights *w, const field *f) {
    return (rwkv_real **)((char *)w + f->field);
}

// Points the fields into block (a typed block skips the viewed matrices), and the views of
// the matrices it holds at them.
static void bind(rwkv_v7_weights *w, rwkv_real *block, rwkv_config cfg, int typed) {
    int nf;
    const field *fs = fields(cfg, &nf);
    size_t off = 0;
    w->block = block;
    for (int i = 0; i < nf; i++) {
        const field *f = &fs[i];
        if (typed && f->view) {
            *slot(w, f) = NULL;
            continue;
        }
        *slot(w, f) = block + off;
        off += field_numel(f, cfg, w->d);
        size_t per = (size_t)dim(f->rows, cfg, w->d) * (size_t)dim(f->cols, cfg, w->d);
        if (w->views && f->view && f->view != VIEW_HEAD)
            for (int l = 0; l < cfg.n_layer; l++)
                *RWKV_V7_MAT(w, f->view - 1, l) = (rwkv_mat){RWKV_DT_REAL, *slot(w, f) + (size_t)l * per};
    }
}

static rwkv_status weights_alloc(rwkv_v7_weights **out, rwkv_config cfg, rwkv_v7_dims d, int typed) {
    *out = NULL;
    rwkv_v7_weights *w = rwkv_calloc(1, sizeof *w, "RWKV-7 weights");
    if (!w) return RWKV_ERR_NOMEM;
    w->d = d;
    w->n_layer = cfg.n_layer;
    int nf;
    const field *fs = fields(cfg, &nf);
    for (int i = 0; i < nf; i++) {
        size_t n = field_numel(&fs[i], cfg, d);
        w->total += n;
        if (!typed || !fs[i].view) w->in_block += n;
    }
    w->views = rwkv_calloc((size_t)RWKV_V7_N_VIEWS * cfg.n_layer, sizeof *w->views, "RWKV-7 matrix views");
    if (!w->views || !(w->block = rwkv_calloc(w->in_block, sizeof(rwkv_real), "RWKV-7 parameters"))) {
        rwkv_v7_weights_free(w);
        return RWKV_ERR_NOMEM;
    }
    bind(w, w->block, cfg, typed);
    *out = w;
    return RWKV_OK;
}

rwkv_status rwkv_v7_weights_alloc(rwkv_v7_weights **out, rwkv_config cfg, rwkv_v7_dims d) {
    return weights_alloc(out, cfg, d, 0);
}

rwkv_status rwkv_v7_weights_alloc_typed(rwkv_v7_weights **out, rwkv_config cfg, rwkv_v7_dims d) {
    return weights_alloc(out, cfg, d, 1);
}

void rwkv_v7_weights_bind(rwkv_v7_weights *w, rwkv_real *block, rwkv_config cfg) { bind(w, block, cfg, 0); }

// The rwkv_weights field of a global tensor, so rwkv_weights_bind finds it; -1 for the rest.
static int global_field(const field *f) {
    static const struct { size_t v7, v4; } map[] = {
        {F(emb), offsetof(rwkv_weights, emb)},           {F(ln0_w), offsetof(rwkv_weights, ln0_w)},
        {F(ln0_b), offsetof(rwkv_weights, ln0_b)},       {F(ln_out_w), offsetof(rwkv_weights, ln_out_w)},
        {F(ln_out_b), offsetof(rwkv_weights, ln_out_b)}, {F(head), offsetof(rwkv_weights, head)}};
    for (size_t i = 0; i < sizeof map / sizeof map[0]; i++)
        if (f->field == map[i].v7) return (int)(map[i].v4 / sizeof(rwkv_real *));
    return -1;
}

rwkv_status rwkv_v7_table_alloc(rwkv_param_table *t, rwkv_config cfg, const rwkv_v7_weights *w) {
    memset(t, 0, sizeof *t);
    int nf;
    const field *fs = fields(cfg, &nf);
    t->cfg = cfg;
    t->params = rwkv_calloc((size_t)nf * cfg.n_layer, sizeof *t->params, "parameter table");
    if (!t->params) return RWKV_ERR_NOMEM;
    size_t base = 0; // offsets in the full block (a typed block holds a subset)
    for (int i = 0; i < nf; i++) {
        const field *f = &fs[i];
        int64_t rows = dim(f->rows, cfg, w->d), cols = dim(f->cols, cfg, w->d);
        int global = f->kind & K_GLOBAL, nl = global ? 1 : cfg.n_layer;
        for (int l = f->kind & K_FROM_L1 ? 1 : 0; l < nl; l++) {
            rwkv_param *p = &t->params[t->n++];
            if (global) snprintf(p->name, sizeof p->name, "%s", f->name);
            else snprintf(p->name, sizeof p->name, "blocks.%d.%s", l, f->name);
            p->field = global ? global_field(f) : -1;
            p->layer = global ? -1 : l;
            p->numel = (size_t)(rows * cols);
            p->offset = base + (size_t)l * p->numel;
            p->ndim = f->rows == D_ONE ? 1 : 2;
            p->shape[0] = f->rows == D_ONE ? cols : rows;
            p->shape[1] = f->rows == D_ONE ? 1 : cols;
            size_t n = strlen(f->name); // weight decay: the 2-D ".weight" tensors but emb (as RWKV-4)
            p->is_matrix = p->ndim == 2 && n > 7 && !strcmp(f->name + n - 7, ".weight") && f->field != F(emb);
        }
        base += field_numel(f, cfg, w->d);
    }
    t->total = w->total;
    return RWKV_OK;
}

// The table entry of parameter p, or NULL.
static const field *field_of(const rwkv_param *p, rwkv_config cfg) {
    int nf;
    const field *fs = fields(cfg, &nf);
    const char *suffix = p->layer < 0 ? p->name : strchr(strchr(p->name, '.') + 1, '.') + 1;
    for (int i = 0; i < nf; i++)
        if (!strcmp(fs[i].name, suffix)) return &fs[i];
    return NULL;
}

int rwkv_v7_view_of(const rwkv_param *p, rwkv_config cfg) {
    const field *f = field_of(p, cfg);
    return f && f->view ? f->view - 1 : -1;
}

int rwkv_v7_official_shape(const rwkv_param *p, rwkv_config cfg, int64_t shape[3], int *transposed) {
    const field *f = field_of(p, cfg);
    *transposed = 0;
    if (f) {
        if (f->kind & K_STACK) { // (5, Dm, C) officially, each slice transposed
            *transposed = 1;
            shape[0] = RWKV_V6_MIXES, shape[1] = p->shape[1], shape[2] = p->shape[0] / RWKV_V6_MIXES;
            return 3;
        }
        if (f->kind & K_LORA) { // stored (in, out) officially
            *transposed = 1;
            shape[0] = p->shape[1], shape[1] = p->shape[0];
            return 2;
        }
        if (f->kind & K_HEADS) {
            shape[0] = cfg.n_embd / cfg.head_size, shape[1] = cfg.head_size;
            return 2;
        }
        if (p->ndim == 1 && !strstr(f->name, "ln")) { // x_*, w0, a0, v0, k_k, k_a, time_*: [1, 1, C]
            shape[0] = shape[1] = 1, shape[2] = p->shape[0];
            return 3;
        }
    }
    shape[0] = p->shape[0], shape[1] = p->shape[1];
    return p->ndim;
}

void rwkv_v7_weights_free(rwkv_v7_weights *w) {
    if (!w) return;
    free(w->block);
    free(w->views);
    free(w);
}

static const rwkv_tensor *need(const rwkv_tensor_set *ts, const char *path, const char *name) {
    const rwkv_tensor *t = rwkv_tensors_find(ts, name);
    if (!t) rwkv_error_set(RWKV_ERR_SHAPE, "%s: tensor %s is missing", path, name);
    else if (t->ndim != 2) {
        rwkv_error_set(RWKV_ERR_SHAPE, "%s: tensor %s has %d dimensions, expected 2", path, name, t->ndim);
        return NULL;
    }
    return t;
}

// The LoRA rank of a (C, D) official / (D, C) rwkv.cpp factor.
static int lora_rank(const rwkv_tensor *t, int lora_out_in) { return (int)t->shape[lora_out_in ? 0 : 1]; }

rwkv_status rwkv_v7_infer(const rwkv_tensor_set *ts, const char *path, int lora_out_in,
                          rwkv_config *cfg, rwkv_v7_dims *d) {
    const rwkv_tensor *emb = need(ts, path, "emb.weight"), *fk = NULL, *w1 = NULL, *a1 = NULL, *g1 = NULL;
    if (!emb || !(fk = need(ts, path, "blocks.0.ffn.key.weight")) || !(w1 = need(ts, path, "blocks.0.att.w1")) ||
        !(a1 = need(ts, path, "blocks.0.att.a1")) || !(g1 = need(ts, path, "blocks.0.att.g1")))
        return RWKV_ERR_SHAPE;
    const rwkv_tensor *rk = rwkv_tensors_find(ts, "blocks.0.att.r_k");
    if (!rk) return rwkv_error_set(RWKV_ERR_SHAPE, "%s: tensor blocks.0.att.r_k is missing", path);
    if (emb->shape[0] > INT32_MAX || emb->shape[1] > INT32_MAX || fk->shape[0] > INT32_MAX)
        return rwkv_error_set(RWKV_ERR_SHAPE, "%s: implausible tensor sizes", path);
    *cfg = (rwkv_config){.n_layer = rwkv_tensors_count_layers(ts), .n_embd = (int)emb->shape[1], .n_ffn = (int)fk->shape[0],
                         .n_vocab = (int)emb->shape[0], .version = 7};
    cfg->head_size = rk->ndim == 2 ? (int)rk->shape[1] : RWKV_V7_HEAD_SIZE_DEFAULT;
    *d = (rwkv_v7_dims){.d_w = lora_rank(w1, lora_out_in), .d_a = lora_rank(a1, lora_out_in), .d_g = lora_rank(g1, lora_out_in)};
    if (cfg->n_layer > 1) {
        const rwkv_tensor *v1 = need(ts, path, "blocks.1.att.v1");
        if (!v1) return RWKV_ERR_SHAPE;
        d->d_v = lora_rank(v1, lora_out_in);
    }
    int ranks[4] = {d->d_w, d->d_a, d->d_v, d->d_g};
    for (int i = 0; i < 4; i++)
        if (ranks[i] > cfg->n_lora) cfg->n_lora = ranks[i];
    rwkv_status st = rwkv_weights_check_config(*cfg);
    if (st) return rwkv_error_wrap(st, "%s: ", path);
    if (cfg->head_size < 1 || cfg->head_size > RWKV_V7_MAX_HEAD_SIZE || cfg->n_embd % cfg->head_size)
        return rwkv_error_set(RWKV_ERR_SHAPE, "%s: head size %d (from blocks.0.att.r_k) must divide n_embd %d and be at most %d",
                              path, cfg->head_size, cfg->n_embd, RWKV_V7_MAX_HEAD_SIZE);
    if (cfg->n_lora < 1 || cfg->n_lora > cfg->n_embd)
        return rwkv_error_set(RWKV_ERR_SHAPE, "%s: LoRA ranks w=%d a=%d v=%d g=%d must lie in [1, n_embd=%d]",
                              path, d->d_w, d->d_a, d->d_v, d->d_g, cfg->n_embd);
    return RWKV_OK;
}

rwkv_status rwkv_v5_infer(const rwkv_tensor_set *ts, const char *path, rwkv_config *cfg, rwkv_v7_dims *d) {
    const rwkv_tensor *emb = need(ts, path, "emb.weight"), *fk = NULL, *u = NULL;
    if (!emb || !(fk = need(ts, path, "blocks.0.ffn.key.weight"))) return RWKV_ERR_SHAPE;
    if (!(u = rwkv_tensors_find(ts, "blocks.0.att.time_faaaa")))
        return rwkv_error_set(RWKV_ERR_SHAPE, "%s: tensor blocks.0.att.time_faaaa is missing", path);
    if (emb->shape[0] > INT32_MAX || emb->shape[1] > INT32_MAX || fk->shape[0] > INT32_MAX || u->ndim < 2)
        return rwkv_error_set(RWKV_ERR_SHAPE, "%s: implausible tensor sizes (time_faaaa must be (H, N))", path);
    *cfg = (rwkv_config){.n_layer = rwkv_tensors_count_layers(ts), .n_embd = (int)emb->shape[1],
                         .n_ffn = (int)fk->shape[0], .n_vocab = (int)emb->shape[0], .version = RWKV_VERSION_5,
                         .head_size = (int)u->shape[1]};
    *d = (rwkv_v7_dims){0};
    rwkv_status st = rwkv_weights_check_config(*cfg);
    if (st) return rwkv_error_wrap(st, "%s: ", path);
    if (cfg->head_size < 1 || cfg->head_size > RWKV_V7_MAX_HEAD_SIZE || cfg->n_embd % cfg->head_size)
        return rwkv_error_set(RWKV_ERR_SHAPE, "%s: head size %d (from blocks.0.att.time_faaaa) must divide n_embd %d "
                              "and be at most %d", path, cfg->head_size, cfg->n_embd, RWKV_V7_MAX_HEAD_SIZE);
    return RWKV_OK;
}

rwkv_status rwkv_v6_infer(const rwkv_tensor_set *ts, const char *path, int lora_out_in, rwkv_config *cfg,
                          rwkv_v7_dims *d) {
    rwkv_status st = rwkv_v5_infer(ts, path, cfg, d); // the same sizes and head size
    if (st) return st;
    cfg->version = RWKV_VERSION_6;
    const rwkv_tensor *m1 = need(ts, path, "blocks.0.att.time_maa_w1"), *d1 = NULL;
    if (!m1 || !(d1 = need(ts, path, "blocks.0.att.time_decay_w1"))) return RWKV_ERR_SHAPE;
    int64_t m5 = m1->shape[lora_out_in ? 0 : 1];
    if (m5 % RWKV_V6_MIXES)
        return rwkv_error_set(RWKV_ERR_SHAPE, "%s: tensor blocks.0.att.time_maa_w1: its rank %lld is not 5 slices "
                              "(w, k, v, r, g)", path, (long long)m5);
    d->d_m = (int)(m5 / RWKV_V6_MIXES);
    d->d_w = lora_rank(d1, lora_out_in);
    cfg->n_lora = RWKV_V6_MIXES * d->d_m > d->d_w ? RWKV_V6_MIXES * d->d_m : d->d_w;
    if (d->d_m < 1 || d->d_w < 1 || d->d_m > cfg->n_embd || d->d_w > cfg->n_embd)
        return rwkv_error_set(RWKV_ERR_SHAPE, "%s: LoRA ranks mix=%d decay=%d must lie in [1, n_embd=%d]", path,
                              d->d_m, d->d_w, cfg->n_embd);
    return RWKV_OK;
}

// Vectors may be [C], [1, 1, C] or (for r_k) [H, N]; matrices must match `want` exactly.
static int shape_ok(const rwkv_tensor *t, const field *f, const int64_t want[2], int head_size) {
    if (f->rows != D_ONE) return t->ndim == 2 && t->shape[0] == want[0] && t->shape[1] == want[1];
    if (t->ndim < 1) return 0;
    if (f->kind & K_HEADS && t->ndim >= 2 && t->shape[1] == head_size && (t->ndim == 2 || t->shape[2] == 1))
        return t->shape[0] * head_size == want[1]; // (H, N), or rwkv.cpp's RWKV-5 (H, N, 1)
    for (int i = 0; i + 1 < t->ndim; i++)
        if (t->shape[i] != 1) return 0;
    return t->shape[t->ndim - 1] == want[1];
}

static rwkv_status shape_error(const char *path, const char *name, const rwkv_tensor *t, const int64_t want[2], int nd) {
    char got[96], exp[96];
    rwkv_tensors_format_shape(got, sizeof got, t->shape, t->ndim);
    rwkv_tensors_format_shape(exp, sizeof exp, nd == 1 ? want + 1 : want, nd);
    return rwkv_error_set(RWKV_ERR_SHAPE, "%s: tensor %s has shape %s, expected %s", path, name, got, exp);
}

// x_r .. x_g of layer l from rwkv.cpp's (6, 1, C) concatenation; NULL data if absent.
static rwkv_status mix_slice(const rwkv_tensor_set *ts, const char *path, int l, const char *which, int C,
                             rwkv_tensor *out) {
    char name[64];
    snprintf(name, sizeof name, "blocks.%d.att.x_rwkvag", l);
    const rwkv_tensor *t = rwkv_tensors_find(ts, name);
    out->data = NULL;
    if (!t) return RWKV_OK;
    if (rwkv_tensor_numel(t) != 6 * (int64_t)C || t->shape[t->ndim - 1] != C)
        return rwkv_error_set(RWKV_ERR_SHAPE, "%s: tensor %s has %lld elements, expected 6 x %d", path, name,
                              (long long)rwkv_tensor_numel(t), C);
    int i = 0;
    while (strcmp(MIX_ORDER[i], which)) i++;
    *out = (rwkv_tensor){.dtype = t->dtype, .ndim = 1, .shape = {C}};
    out->data = (const char *)t->data + (size_t)i * C * rwkv_dtype_size(t->dtype);
    return RWKV_OK;
}

// dst (rows, cols) from src stored (cols, rows).
static void fill_transposed(rwkv_real *dst, const rwkv_tensor *t, int64_t rows, int64_t cols) {
    size_t es = rwkv_dtype_size(t->dtype);
    for (int64_t i = 0; i < rows; i++)
        for (int64_t j = 0; j < cols; j++)
            rwkv_tensors_convert(dst + i * cols + j, (const char *)t->data + ((size_t)(j * rows + i)) * es, t->dtype, 1);
}

// RWKV-6's stack of 5 factors into dst (5, rows, cols): stored (5, cols, rows) officially
// (each slice transposed), (5, rows, cols) by rwkv.cpp.
static rwkv_status fill_stack(rwkv_real *dst, const rwkv_tensor *t, int64_t rows, int64_t cols, int transposed,
                              const char *path, const char *name) {
    int64_t want[3] = {RWKV_V6_MIXES, transposed ? cols : rows, transposed ? rows : cols};
    if (t->ndim != 3 || t->shape[0] != want[0] || t->shape[1] != want[1] || t->shape[2] != want[2]) {
        char got[96], exp[96];
        rwkv_tensors_format_shape(got, sizeof got, t->shape, t->ndim);
        rwkv_tensors_format_shape(exp, sizeof exp, want, 3);
        return rwkv_error_set(RWKV_ERR_SHAPE, "%s: tensor %s has shape %s, expected %s", path, name, got, exp);
    }
    size_t per = (size_t)(rows * cols), es = rwkv_dtype_size(t->dtype);
    for (int q = 0; q < RWKV_V6_MIXES; q++) {
        rwkv_tensor slice = *t;
        slice.data = (const char *)t->data + q * per * es;
        if (transposed) fill_transposed(dst + q * per, &slice, rows, cols);
        else rwkv_tensors_convert(dst + q * per, slice.data, t->dtype, per);
    }
    return RWKV_OK;
}

static rwkv_status fill_one(rwkv_real *dst, const rwkv_tensor_set *ts, const field *f, int l, rwkv_config c,
                            rwkv_v7_dims d, const char *path, int lora_out_in) {
    char name[128];
    if (f->kind & K_GLOBAL) snprintf(name, sizeof name, "%s", f->name);
    else snprintf(name, sizeof name, "blocks.%d.%s", l, f->name);
    int64_t want[2] = {dim(f->rows, c, d), dim(f->cols, c, d)};
    const rwkv_tensor *t = rwkv_tensors_find(ts, name);
    rwkv_tensor slice;
    if (!t && f->kind & K_MIX) {
        rwkv_status st = mix_slice(ts, path, l, f->name, c.n_embd, &slice);
        if (st) return st;
        if (slice.data) t = &slice;
    }
    if (!t) return rwkv_error_set(RWKV_ERR_SHAPE, "%s: tensor %s is missing", path, name);
    int transposed = f->kind & (K_LORA | K_STACK) && !lora_out_in;
    size_t n = (size_t)(want[0] * want[1]);
    if (f->kind & K_STACK) {
        rwkv_status st = fill_stack(dst, t, want[0] / RWKV_V6_MIXES, want[1], transposed, path, name);
        if (st) return st;
    } else {
        int64_t stored[2] = {transposed ? want[1] : want[0], transposed ? want[0] : want[1]};
        if (!shape_ok(t, f, stored, c.head_size)) return shape_error(path, name, t, stored, f->rows == D_ONE ? 1 : 2);
        if (transposed) fill_transposed(dst, t, want[0], want[1]);
        else rwkv_tensors_convert(dst, t->data, t->dtype, n);
    }
    return rwkv_tensors_check_finite(dst, n, path, name);
}

rwkv_status rwkv_v7_weights_fill(rwkv_v7_weights *w, rwkv_config cfg, const rwkv_tensor_set *ts,
                                 const char *path, int lora_out_in) {
    int nf;
    const field *fs = fields(cfg, &nf);
    for (int i = 0; i < nf; i++) {
        const field *f = &fs[i];
        size_t per = (size_t)dim(f->rows, cfg, w->d) * (size_t)dim(f->cols, cfg, w->d);
        int n = f->kind & K_GLOBAL ? 1 : cfg.n_layer;
        if (!*slot(w, f)) continue; // a viewed matrix of a typed block
        for (int l = f->kind & K_FROM_L1 ? 1 : 0; l < n; l++) {
            rwkv_status st = fill_one(*slot(w, f) + (size_t)l * per, ts, f, l, cfg, w->d, path, lora_out_in);
            if (st) return st;
        }
    }
    return RWKV_OK;
}

// The view of one matrix of ts in its stored type, checked against want (rows, cols).
static rwkv_status view_one(rwkv_mat *v, const rwkv_tensor_set *ts, const char *name, const int64_t want[2],
                            const char *path, int headers) {
    const rwkv_tensor *t = rwkv_tensors_find(ts, name);
    if (!t) return rwkv_error_set(RWKV_ERR_SHAPE, "%s: tensor %s is missing", path, name);
    if (t->ndim != 2 || t->shape[0] != want[0] || t->shape[1] != want[1]) {
        char got[96], exp[96];
        rwkv_tensors_format_shape(got, sizeof got, t->shape, t->ndim);
        rwkv_tensors_format_shape(exp, sizeof exp, want, 2);
        return rwkv_error_set(RWKV_ERR_SHAPE, "%s: tensor %s has shape %s, expected %s", path, name, got, exp);
    }
    if (rwkv_dtype_is_quant(t->dtype) && want[1] % RWKV_DT_QK)
        return rwkv_error_set(RWKV_ERR_FORMAT, "%s: tensor %s is %s with rows of %lld weights, not a multiple of %d",
                              path, name, rwkv_dtype_name(t->dtype), (long long)want[1], RWKV_DT_QK);
    int64_t bad = headers || !t->data ? -1 : rwkv_tensors_first_nonfinite(t->data, t->dtype, (size_t)(want[0] * want[1]));
    if (bad >= 0)
        return rwkv_error_set(RWKV_ERR_NUMERIC, "%s: tensor %s: element %lld is not finite (NaN or inf): "
                              "corrupt weights", path, name, (long long)bad);
    *v = (rwkv_mat){t->dtype, t->data};
    return RWKV_OK;
}

rwkv_status rwkv_v7_weights_fill_typed(rwkv_v7_weights *w, rwkv_config cfg, const rwkv_tensor_set *ts,
                                       const char *path, int lora_out_in, int headers, rwkv_mat *head) {
    rwkv_status st = rwkv_v7_weights_fill(w, cfg, ts, path, lora_out_in);
    int nf;
    const field *fs = fields(cfg, &nf);
    for (int i = 0; i < nf && !st; i++) {
        const field *f = &fs[i];
        if (!f->view) continue;
        int64_t want[2] = {dim(f->rows, cfg, w->d), dim(f->cols, cfg, w->d)};
        char name[128];
        if (f->view == VIEW_HEAD) st = view_one(head, ts, f->name, want, path, headers);
        for (int l = 0; l < cfg.n_layer && !st && f->view != VIEW_HEAD; l++) {
            snprintf(name, sizeof name, "blocks.%d.%s", l, f->name);
            st = view_one(RWKV_V7_MAT(w, f->view - 1, l), ts, name, want, path, headers);
        }
    }
    return st;
}
#undef F
