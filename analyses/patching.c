// patching.c: the activation patching sweep (see patching.h for the method).
#include "patching.h"

#include "../core/inspect/intervene.h"
#include "../core/inspect/record.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PATCH_MAX_CHUNK 1024 // parallel chunk length of the sweep's workspace
#define PATCH_STATE_BUDGET ((size_t)256 << 20) // bytes of corrupt-state checkpoints (auto stride)

static int parse_id(const char *s, size_t len, int V, int *out) {
    if (len == 0 || len > 9) return 0;
    int v = 0;
    for (size_t i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9') return 0;
        v = v * 10 + (s[i] - '0');
    }
    if (v >= V) return 0;
    *out = v;
    return 1;
}

rwkv_status rwkv_patch_metric_parse(rwkv_patch_metric *mt, const char *spec, int n_vocab) {
    static const char *names[] = {"logit-diff:", "logit:", "logprob:"};
    memset(mt, 0, sizeof *mt);
    for (int k = 0; k < 3; k++) {
        size_t nl = strlen(names[k]);
        if (strncmp(spec, names[k], nl)) continue;
        const char *a = spec + nl, *comma = strchr(a, ',');
        int ok = k == RWKV_METRIC_LOGIT_DIFF
                     ? comma && parse_id(a, (size_t)(comma - a), n_vocab, &mt->a) &&
                           parse_id(comma + 1, strlen(comma + 1), n_vocab, &mt->b)
                     : parse_id(a, strlen(a), n_vocab, &mt->a);
        if (!ok)
            return rwkv_error_set(RWKV_ERR_ARG, "metric '%s': expected %s%s with token ids below %d", spec, names[k],
                                  k == RWKV_METRIC_LOGIT_DIFF ? "A,B" : "A", n_vocab);
        mt->kind = (rwkv_metric_kind)k;
        return RWKV_OK;
    }
    return rwkv_error_set(RWKV_ERR_ARG, "metric '%s': expected logit-diff:A,B, logit:A or logprob:A", spec);
}

double rwkv_patch_metric_eval(const rwkv_patch_metric *mt, const rwkv_real *logits, int V) {
    if (mt->kind == RWKV_METRIC_LOGIT_DIFF) return (double)logits[mt->a] - (double)logits[mt->b];
    if (mt->kind == RWKV_METRIC_LOGIT) return logits[mt->a];
    double mx = logits[0], z = 0;
    for (int i = 1; i < V; i++) mx = logits[i] > mx ? logits[i] : mx;
    for (int i = 0; i < V; i++) z += exp((double)logits[i] - mx);
    return (double)logits[mt->a] - mx - log(z); // log softmax(logits)[a]
}

void rwkv_patch_result_free(rwkv_patch_result *r) {
    if (!r) return;
    free(r->metric);
    free(r->recovery);
    free(r);
}

// Everything one sweep holds; freed in one place.
typedef struct {
    rwkv_workspace *ws;
    rwkv_state *s;
    rwkv_record *clean;
    rwkv_intervene_list *list;
    rwkv_real *logits; // (V)
    // Checkpoints of the corrupt run: ckpt[k] is the state after position k * stride - 1
    // (k >= 1); k = 0 is the empty state.
    int64_t stride, n_ckpt;
    rwkv_real *ckpt;   // (n_ckpt, 5, L, C)
    uint32_t *ckpt_mask; // (L + 1) the five state taps
    rwkv_hook ckpt_hook;
} sweep_ctx;

// Hook on the corrupt run: keeps the state rows of positions p with (p + 1) % stride == 0.
static rwkv_status ckpt_hook(void *ctx, int layer, rwkv_tap tap, int64_t pos, int n, int D, rwkv_real *data) {
    sweep_ctx *c = ctx;
    const int L = c->ws->cfg.n_layer, v = (int)tap - RWKV_TAP_STATE_ATT_XPREV;
    for (int i = 0; i < n; i++) {
        int64_t p = pos + i;
        if ((p + 1) % c->stride || (p + 1) / c->stride >= c->n_ckpt) continue;
        size_t k = (size_t)((p + 1) / c->stride);
        memcpy(c->ckpt + ((k * RWKV_STATE_NVEC + v) * L + layer) * D, data + (size_t)i * D, (size_t)D * sizeof *data);
    }
    return RWKV_OK;
}

// The corrupt state after position k * stride - 1 into s.
static void ckpt_restore(const sweep_ctx *c, int64_t k, rwkv_state *s) {
    if (k == 0) {
        rwkv_state_reset(s);
        return;
    }
    size_t lc = (size_t)s->n_layer * s->n_embd;
    memcpy(s->data, c->ckpt + (size_t)k * RWKV_STATE_NVEC * lc, RWKV_STATE_NVEC * lc * sizeof(rwkv_real));
}

static void sweep_free(sweep_ctx *c) {
    rwkv_workspace_free(c->ws);
    rwkv_state_free(c->s);
    rwkv_record_free(c->clean);
    free(c->ckpt);
    free(c->ckpt_mask);
    rwkv_intervene_list_free(c->list);
    free(c->logits);
}

// One full run of tokens from the empty state with a recording hook, giving the metric.
static rwkv_status record_run(const rwkv_model *m, sweep_ctx *c, const int *tokens, int64_t T, rwkv_hook *hook,
                              const rwkv_patch_opts *o, double *metric) {
    rwkv_state_reset(c->s);
    hook->pos = 0;
    rwkv_status st = (o->seq ? rwkv_forward_seq : rwkv_forward_par)(m, c->s, tokens, T, c->logits, RWKV_LOGITS_LAST,
                                                                    hook, c->ws);
    *metric = st ? 0 : rwkv_patch_metric_eval(&o->metric, c->logits, m->cfg.n_vocab);
    return st;
}

static rwkv_status setup(sweep_ctx *c, const rwkv_model *m, int64_t T, const rwkv_patch_opts *o) {
    const int L = m->cfg.n_layer;
    rwkv_status st = rwkv_workspace_alloc(&c->ws, m->cfg, (int)(T < PATCH_MAX_CHUNK ? T : PATCH_MAX_CHUNK));
    if (!st) st = rwkv_state_alloc(&c->s, m->cfg);
    if (!st) st = rwkv_intervene_list_alloc(&c->list, m->cfg);
    if (!st && !(c->logits = rwkv_calloc((size_t)m->cfg.n_vocab, sizeof(rwkv_real), "logits"))) st = RWKV_ERR_NOMEM;
    uint32_t *mask = st ? NULL : rwkv_calloc((size_t)L + 1, sizeof *mask, "tap mask");
    if (!st && !mask) st = RWKV_ERR_NOMEM;
    for (int l = 0; !st && l < L; l++)
        for (int k = 0; k < o->n_taps; k++) mask[l] |= 1u << o->taps[k];
    if (!st) st = rwkv_record_alloc(&c->clean, m->cfg, T, mask);
    free(mask);
    // Checkpoints every `stride` positions: every position when they fit the budget.
    size_t state_bytes = RWKV_STATE_NVEC * (size_t)L * m->cfg.n_embd * sizeof(rwkv_real);
    c->stride = o->checkpoint_every > 0 ? o->checkpoint_every : 1;
    while (o->checkpoint_every <= 0 && (size_t)(T / c->stride + 1) * state_bytes > PATCH_STATE_BUDGET) c->stride *= 2;
    c->n_ckpt = T / c->stride + 1;
    if (!st && !(c->ckpt = rwkv_calloc((size_t)c->n_ckpt * state_bytes / sizeof(rwkv_real), sizeof(rwkv_real),
                                       "patching checkpoints")))
        st = RWKV_ERR_NOMEM;
    if (!st && !(c->ckpt_mask = rwkv_calloc((size_t)L + 1, sizeof *c->ckpt_mask, "checkpoint mask"))) st = RWKV_ERR_NOMEM;
    if (!st) {
        rwkv_record_mask_states(c->ckpt_mask, L);
        c->ckpt_hook = (rwkv_hook){.mask = c->ckpt_mask, .fn = ckpt_hook, .ctx = c, .pos = 0};
    }
    return st;
}

// The patched metric of cell (layer, tap k) at every position, into metric (T).
static rwkv_status sweep_cell_row(const rwkv_model *m, sweep_ctx *c, const int *corrupt, int64_t T, int layer,
                                  rwkv_tap tap, const rwkv_patch_opts *o, rwkv_patch_result *r, double *metric,
                                  int64_t *done, int64_t total) {
    char spec[64];
    snprintf(spec, sizeof spec, "blocks.%d.%s@0=patch:clean", layer, RWKV_TAP_NAMES[tap]);
    rwkv_intervention iv;
    rwkv_status st = rwkv_intervene_parse(&iv, spec);
    if (!st) st = rwkv_intervene_bind_src(&iv, m->cfg, T, rwkv_record_rows(c->clean, layer, tap));
    if (!st) st = rwkv_intervene_list_add(c->list, &iv);
    if (st) return st;
    uint8_t *pos_mask = c->list->items[0].pos_mask;
    pos_mask[0] = 0;
    for (int64_t p = 0; p < T && !st; p++) {
        if (o->progress) o->progress(o->progress_ctx, ++*done, total);
        if ((o->positions && !o->positions[p]) || (o->layers && !o->layers[layer])) {
            metric[p] = NAN; // not swept
            continue;
        }
        if (!o->naive && p < r->first_diff) {
            metric[p] = r->m_corrupt; // the shared prefix: the patch copies the same value
            continue;
        }
        pos_mask[p] = 1;
        int64_t k = o->naive ? 0 : p / c->stride; // the last checkpoint at or before p
        int64_t from = k * c->stride;
        ckpt_restore(c, k, c->s); // the corrupt state before `from`
        st = rwkv_intervene_forward(m, c->s, corrupt + from, T - from, from, c->logits, RWKV_LOGITS_LAST, c->list,
                                    c->ws, o->seq);
        pos_mask[p] = 0;
        metric[p] = rwkv_patch_metric_eval(&o->metric, c->logits, m->cfg.n_vocab);
        r->tokens_rerun += T - from;
    }
    rwkv_intervene_list_clear(c->list);
    return st;
}

rwkv_status rwkv_patch_sweep(rwkv_patch_result **out, const rwkv_model *m, const int *clean, const int *corrupt,
                             int64_t T, const rwkv_patch_opts *o) {
    *out = NULL;
    if (T < 1) return rwkv_error_set(RWKV_ERR_ARG, "patching: the clean and corrupt runs are empty");
    if (o->n_taps < 1 || o->n_taps > RWKV_TAP_N_BLOCK)
        return rwkv_error_set(RWKV_ERR_ARG, "patching: %d taps selected, expected 1 to %d block taps", o->n_taps,
                              RWKV_TAP_N_BLOCK);
    for (int k = 0; k < o->n_taps; k++)
        if ((int)o->taps[k] < 0 || o->taps[k] >= RWKV_TAP_N_BLOCK)
            return rwkv_error_set(RWKV_ERR_ARG, "patching: tap %d is not a block tap", (int)o->taps[k]);
    const int L = m->cfg.n_layer;
    rwkv_patch_result *r = rwkv_calloc(1, sizeof *r, "patching result");
    if (!r) return RWKV_ERR_NOMEM;
    r->n_taps = o->n_taps;
    r->n_layer = L;
    r->T = T;
    memcpy(r->taps, o->taps, sizeof r->taps);
    size_t cells = (size_t)o->n_taps * L * (size_t)T;
    r->metric = rwkv_calloc(cells, sizeof(double), "patching metric");
    r->recovery = rwkv_calloc(cells, sizeof(double), "patching recovery");
    sweep_ctx c = {0};
    rwkv_status st = r->metric && r->recovery ? setup(&c, m, T, o) : RWKV_ERR_NOMEM;
    if (!st) st = record_run(m, &c, clean, T, &c.clean->hook, o, &r->m_clean);
    if (!st) st = record_run(m, &c, corrupt, T, &c.ckpt_hook, o, &r->m_corrupt);
    r->checkpoint_every = c.stride;
    for (r->first_diff = 0; r->first_diff < T && clean[r->first_diff] == corrupt[r->first_diff];) r->first_diff++;
    int64_t done = 0;
    for (int k = 0; k < o->n_taps && !st; k++)
        for (int l = 0; l < L && !st; l++)
            st = sweep_cell_row(m, &c, corrupt, T, l, o->taps[k], o, r, r->metric + rwkv_patch_cell(r, k, l, 0), &done,
                                (int64_t)cells);
    sweep_free(&c);
    if (st) {
        rwkv_patch_result_free(r);
        return st;
    }
    double span = r->m_clean - r->m_corrupt;
    for (size_t i = 0; i < cells; i++) r->recovery[i] = span != 0 ? (r->metric[i] - r->m_corrupt) / span : NAN;
    *out = r;
    return RWKV_OK;
}
