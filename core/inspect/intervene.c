// intervene.c: applying bound interventions through the forward hook, in both modes.
// Every op acts on the rows in place between the kernels, so a run with interventions has the
// chunks (and the float rounding) of a run without: a state intervention at p makes the
// parallel pass stop its WKV scan after p (the hook's scan_cut), not split its GEMMs.
#include "intervene.h"

#include <stdlib.h>
#include <string.h>

#define LIST_CAP0 8

void rwkv_intervene_apply(const rwkv_intervention *iv, int64_t pos, int n, rwkv_real *data) {
    const int D = iv->D;
    // zero means "the empty state": 0 everywhere but state_max, whose empty value is -1e30.
    const rwkv_real zero = iv->tap == RWKV_TAP_STATE_MAX ? (rwkv_real)RWKV_MAX_INIT : 0;
    const rwkv_real a = (rwkv_real)iv->value;
    for (int r = 0; r < n; r++) {
        int64_t p = pos + r;
        if (p < 0 || p >= iv->T || !iv->pos_mask[p]) continue;
        rwkv_real *row = data + (size_t)r * D;
        const rwkv_real *src = iv->src ? iv->src + (size_t)p * D : NULL;
        for (int c = 0; c < D; c++) {
            if (!iv->chan_mask[c]) continue;
            switch (iv->op) {
            case RWKV_IV_ZERO: row[c] = zero; break;
            case RWKV_IV_SCALE: row[c] *= a; break; // x * 1 == x exactly: scale:1 is a no-op
            case RWKV_IV_ADD:
                // Adding an exact 0 is skipped so that add:0 keeps -0.0 too (a bit-exact no-op).
                if (iv->vec[c] != 0) row[c] += iv->vec[c];
                break;
            case RWKV_IV_SET: row[c] = a; break;
            case RWKV_IV_PATCH: row[c] = src[c]; break;
            }
        }
    }
}

static rwkv_status list_hook(void *ctx, int layer, rwkv_tap tap, int64_t pos, int n, int D, rwkv_real *data) {
    rwkv_intervene_list *l = ctx;
    const int L = l->cfg.n_layer;
    for (int i = 0; i < l->n; i++) {
        const rwkv_intervention *iv = &l->items[i];
        if (iv->tap == tap && (iv->layer < 0 ? L : iv->layer) == layer) rwkv_intervene_apply(iv, pos, n, data);
    }
    rwkv_hook *next = l->next;
    if (next && next->mask && (next->mask[layer] >> tap & 1u)) return next->fn(next->ctx, layer, tap, pos, n, D, data);
    return RWKV_OK;
}

static int is_scan_state(rwkv_tap tap) { return tap >= RWKV_TAP_STATE_NUM && tap <= RWKV_TAP_STATE_MAX; }

// 1 if an item (or the chained hook) changes a WKV state of layer at position p.
static int list_scan_cut(void *ctx, int layer, int64_t p) {
    const rwkv_intervene_list *l = ctx;
    for (int i = 0; i < l->n; i++) {
        const rwkv_intervention *iv = &l->items[i];
        if (iv->layer == layer && is_scan_state(iv->tap) && p >= 0 && p < iv->T && iv->pos_mask[p]) return 1;
    }
    const rwkv_hook *next = l->next;
    return next && next->scan_cut && next->scan_cut(next->ctx, layer, p);
}

// The union of the items' taps and the chained hook's.
static void update_mask(rwkv_intervene_list *l) {
    const int L = l->cfg.n_layer;
    memset(l->mask, 0, (size_t)(L + 1) * sizeof *l->mask);
    for (int i = 0; i < l->n; i++) {
        const rwkv_intervention *iv = &l->items[i];
        l->mask[iv->layer < 0 ? L : iv->layer] |= 1u << iv->tap;
    }
    if (l->next && l->next->mask)
        for (int i = 0; i <= L; i++) l->mask[i] |= l->next->mask[i];
}

rwkv_status rwkv_intervene_list_alloc(rwkv_intervene_list **out, rwkv_config cfg) {
    *out = NULL;
    rwkv_intervene_list *l = rwkv_calloc(1, sizeof *l, "intervention list");
    if (!l) return RWKV_ERR_NOMEM;
    l->cfg = cfg;
    l->mask = rwkv_calloc((size_t)cfg.n_layer + 1, sizeof *l->mask, "intervention mask");
    l->items = rwkv_calloc(LIST_CAP0, sizeof *l->items, "intervention list");
    if (!l->mask || !l->items) {
        rwkv_intervene_list_free(l);
        return RWKV_ERR_NOMEM;
    }
    l->cap = LIST_CAP0;
    l->hook = (rwkv_hook){.mask = l->mask, .fn = list_hook, .ctx = l, .pos = 0, .scan_cut = list_scan_cut};
    *out = l;
    return RWKV_OK;
}

void rwkv_intervene_list_clear(rwkv_intervene_list *l) {
    for (int i = 0; i < l->n; i++) rwkv_intervene_release(&l->items[i]);
    l->n = 0;
    update_mask(l);
}

void rwkv_intervene_list_free(rwkv_intervene_list *l) {
    if (!l) return;
    for (int i = 0; l->items && i < l->n; i++) rwkv_intervene_release(&l->items[i]); // next may be gone
    free(l->items);
    free(l->mask);
    free(l);
}

rwkv_status rwkv_intervene_list_add(rwkv_intervene_list *l, rwkv_intervention *iv) {
    if (!iv->pos_mask || !iv->chan_mask)
        return rwkv_error_set(RWKV_ERR_ARG, "intervention '%s': not bound to a model", iv->spec);
    if (iv->layer >= l->cfg.n_layer || iv->D != rwkv_tap_width(iv->tap, l->cfg))
        return rwkv_error_set(RWKV_ERR_ARG, "intervention '%s': bound to another model shape", iv->spec);
    if (l->n == l->cap) {
        rwkv_intervention *items = realloc(l->items, (size_t)l->cap * 2 * sizeof *items);
        if (!items) return rwkv_error_set(RWKV_ERR_NOMEM, "intervention list: out of memory");
        l->items = items;
        l->cap *= 2;
    }
    l->items[l->n++] = *iv;
    memset(iv, 0, sizeof *iv); // the list owns the buffers now
    update_mask(l);
    return RWKV_OK;
}

rwkv_status rwkv_intervene_list_from_specs(rwkv_intervene_list **out, rwkv_config cfg, int64_t T,
                                           const char *const *specs, int n) {
    *out = NULL;
    rwkv_intervene_list *l;
    rwkv_status st = rwkv_intervene_list_alloc(&l, cfg);
    for (int k = 0; k < n && !st; k++) {
        rwkv_intervention iv;
        st = rwkv_intervene_parse(&iv, specs[k]);
        if (!st) st = rwkv_intervene_bind(&iv, cfg, T);
        if (!st) st = rwkv_intervene_list_add(l, &iv);
        if (st) rwkv_intervene_release(&iv);
    }
    if (st) rwkv_intervene_list_free(l); // NULL when the allocation failed
    else *out = l;
    return st;
}

void rwkv_intervene_list_chain(rwkv_intervene_list *l, rwkv_hook *next) {
    l->next = next;
    update_mask(l);
}

rwkv_status rwkv_intervene_forward(const rwkv_model *m, rwkv_state *state, const int *tokens,
                                   int64_t T, int64_t pos0, rwkv_real *logits,
                                   rwkv_logits_mode mode, rwkv_intervene_list *l,
                                   rwkv_workspace *ws, int seq) {
    rwkv_hook *h = l ? &l->hook : NULL;
    if (h) h->pos = pos0;
    return (seq ? rwkv_forward_seq : rwkv_forward_par)(m, state, tokens, T, logits, mode, h, ws);
}
