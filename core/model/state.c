// state.c: allocation, reset and copy of the recurrent state.
#include "state.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>

const char *const RWKV_STATE_NAMES[RWKV_STATE_NVEC] = {"att_xprev", "num", "den", "max", "ffn_xprev"};

rwkv_status rwkv_state_alloc(rwkv_state **out, rwkv_config cfg) {
    *out = NULL;
    rwkv_state *s = rwkv_calloc(1, sizeof *s, "state");
    if (!s) return RWKV_ERR_NOMEM;
    size_t lc = (size_t)cfg.n_layer * (size_t)cfg.n_embd;
    s->n_layer = cfg.n_layer;
    s->n_embd = cfg.n_embd;
    s->version = cfg.version;
    if (RWKV_HAS_HEADS(cfg)) {
        s->head_size = cfg.head_size;
        s->n_head = cfg.n_embd / cfg.head_size;
    }
    s->data = rwkv_calloc(rwkv_state_numel(s), sizeof(rwkv_real), "state vectors");
    if (!s->data) {
        free(s);
        return RWKV_ERR_NOMEM;
    }
    s->att_xprev = s->data;
    if (RWKV_HAS_HEADS(cfg)) {
        s->ffn_xprev = s->data + lc;
        s->wkv = s->data + 2 * lc;
        *out = s;
        return RWKV_OK; // the zero state
    }
    s->num = s->data + lc;
    s->den = s->data + 2 * lc;
    s->max = s->data + 3 * lc;
    s->ffn_xprev = s->data + 4 * lc;
    rwkv_state_reset(s);
    *out = s;
    return RWKV_OK;
}

void rwkv_state_free(rwkv_state *s) {
    if (!s) return;
    free(s->data);
    free(s);
}

size_t rwkv_state_numel(const rwkv_state *s) {
    size_t lc = (size_t)s->n_layer * (size_t)s->n_embd;
    if (RWKV_HAS_HEADS(*s)) return 2 * lc + lc * (size_t)s->head_size; // + (L, H, N, N)
    return RWKV_STATE_NVEC * lc;
}

void rwkv_state_reset(rwkv_state *s) {
    size_t lc = (size_t)s->n_layer * (size_t)s->n_embd;
    memset(s->data, 0, rwkv_state_numel(s) * sizeof(rwkv_real));
    if (s->wkv) return;
    for (size_t i = 0; i < lc; i++) s->max[i] = (rwkv_real)RWKV_MAX_INIT;
}

void rwkv_state_copy(rwkv_state *dst, const rwkv_state *src) {
    assert(dst->n_layer == src->n_layer && dst->n_embd == src->n_embd && dst->version == src->version &&
           dst->head_size == src->head_size);
    memcpy(dst->data, src->data, rwkv_state_numel(src) * sizeof(rwkv_real));
}

rwkv_real *rwkv_state_vec(const rwkv_state *s, int which) {
    assert(which >= 0 && which < RWKV_STATE_NVEC && !s->wkv);
    return s->data + (size_t)which * (size_t)s->n_layer * (size_t)s->n_embd;
}
