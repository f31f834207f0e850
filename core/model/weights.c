// weights.c: the parameter table that maps official checkpoint names into one block.
#include "weights.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

// Limits that reject absurd shapes read from a corrupt header before we allocate.
#define RWKV_MAX_LAYERS 1024
#define RWKV_MAX_EMBD 65536
#define RWKV_MAX_VOCAB (1 << 22)

typedef struct {
    const char *suffix; // name after "blocks.N." (or the whole global name)
    int rows_kind, cols_kind; // 0 = none, 'C', 'F', 'V'
    int is_matrix;
} field_spec;

// Declaration order of rwkv_weights. Per-layer fields have a leading "." suffix.
static const field_spec FIELDS[RWKV_N_FIELDS] = {
    {"emb.weight", 'V', 'C', 0},
    {".ln0.weight", 'C', 0, 0}, {".ln0.bias", 'C', 0, 0},
    {".ln1.weight", 'C', 0, 0}, {".ln1.bias", 'C', 0, 0},
    {".ln2.weight", 'C', 0, 0}, {".ln2.bias", 'C', 0, 0},
    {".att.time_decay", 'C', 0, 0}, {".att.time_first", 'C', 0, 0},
    {".att.time_mix_k", 'C', 0, 0}, {".att.time_mix_v", 'C', 0, 0}, {".att.time_mix_r", 'C', 0, 0},
    {".att.key.weight", 'C', 'C', 1}, {".att.value.weight", 'C', 'C', 1},
    {".att.receptance.weight", 'C', 'C', 1}, {".att.output.weight", 'C', 'C', 1},
    {".ffn.time_mix_k", 'C', 0, 0}, {".ffn.time_mix_r", 'C', 0, 0},
    {".ffn.key.weight", 'F', 'C', 1}, {".ffn.value.weight", 'C', 'F', 1},
    {".ffn.receptance.weight", 'C', 'C', 1},
    {"ln_out.weight", 'C', 0, 0}, {"ln_out.bias", 'C', 0, 0},
    {"head.weight", 'V', 'C', 1},
};
// ln0 exists for block 0 only; emb.weight is listed first and head last.
#define FIELD_LN0_W 1
#define FIELD_LN0_B 2
_Static_assert(sizeof(rwkv_weights) == RWKV_N_FIELDS * sizeof(rwkv_real *), "FIELDS must match rwkv_weights");

static int64_t dim_of(int kind, rwkv_config c) {
    switch (kind) {
    case 'C': return c.n_embd;
    case 'F': return c.n_ffn;
    case 'V': return c.n_vocab;
    }
    return 0;
}

rwkv_status rwkv_weights_check_config(rwkv_config c) {
    if (c.n_layer < 1 || c.n_layer > RWKV_MAX_LAYERS || c.n_embd < 1 || c.n_embd > RWKV_MAX_EMBD ||
        c.n_ffn < 1 || c.n_ffn > 16 * RWKV_MAX_EMBD || c.n_vocab < 1 || c.n_vocab > RWKV_MAX_VOCAB)
        return rwkv_error_set(RWKV_ERR_SHAPE,
                              "implausible model shape: n_layer=%d n_embd=%d n_ffn=%d n_vocab=%d",
                              c.n_layer, c.n_embd, c.n_ffn, c.n_vocab);
    return RWKV_OK;
}

static void add_param(rwkv_param_table *t, int field, int layer) {
    const field_spec *f = &FIELDS[field];
    rwkv_param *p = &t->params[t->n++];
    if (f->suffix[0] == '.') snprintf(p->name, sizeof p->name, "blocks.%d%s", layer, f->suffix);
    else snprintf(p->name, sizeof p->name, "%s", f->suffix);
    p->field = field;
    p->layer = f->suffix[0] == '.' ? layer : -1;
    p->shape[0] = dim_of(f->rows_kind, t->cfg);
    p->shape[1] = f->cols_kind ? dim_of(f->cols_kind, t->cfg) : 1;
    p->ndim = f->cols_kind ? 2 : 1;
    p->numel = (size_t)p->shape[0] * (size_t)p->shape[1];
    p->is_matrix = f->is_matrix;
}

// Fields are laid out field-major (all layers of a field together) so that the
// stacked pointers of rwkv_weights index layers with a stride.
rwkv_status rwkv_weights_table_alloc(rwkv_param_table *t, rwkv_config cfg) {
    memset(t, 0, sizeof *t);
    rwkv_status st = rwkv_weights_check_config(cfg);
    if (st) return st;
    t->cfg = cfg;
    int cap = 4 + RWKV_N_FIELDS * cfg.n_layer;
    t->params = rwkv_calloc((size_t)cap, sizeof *t->params, "parameter table");
    if (!t->params) return RWKV_ERR_NOMEM;
    for (int f = 0; f < RWKV_N_FIELDS; f++) {
        int per_layer = FIELDS[f].suffix[0] == '.';
        int nl = (f == FIELD_LN0_W || f == FIELD_LN0_B) ? 1 : (per_layer ? cfg.n_layer : 1);
        for (int l = 0; l < nl; l++) {
            add_param(t, f, l);
            rwkv_param *p = &t->params[t->n - 1];
            p->offset = t->total;
            t->total += p->numel;
        }
    }
    return RWKV_OK;
}

void rwkv_weights_table_free(rwkv_param_table *t) {
    if (!t) return;
    free(t->params);
    memset(t, 0, sizeof *t);
}

void rwkv_weights_bind(rwkv_weights *w, rwkv_real *block, const rwkv_param_table *t) {
    rwkv_real **ptrs = (rwkv_real **)w;
    for (int i = 0; i < t->n; i++) {
        const rwkv_param *p = &t->params[i];
        if (p->field >= 0 && p->layer <= 0) ptrs[p->field] = block + p->offset; // first layer of the field
    }
}

const rwkv_param *rwkv_weights_find(const rwkv_param_table *t, const char *name) {
    for (int i = 0; i < t->n; i++)
        if (strcmp(t->params[i].name, name) == 0) return &t->params[i];
    return NULL;
}
