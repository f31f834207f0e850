// patching.c: the activation patching sweep (see patching.h for the method).
#include "patching.h"

#include "../core/inspect/intervene.h"
#include "../core/inspect/record.h"
#include "plot.h"

#include <fnmatch.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PATCH_MAX_CHUNK 1024 // parallel chunk length of the sweep's workspace
#define PATCH_STATE_BUDGET ((size_t)256 << 20) // bytes of corrupt-state checkpoints (auto stride)
#define PATCH_CB_RANGE 1.0 // heatmaps: recovery on a fixed [-1, 1] scale, white at 0

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

rwkv_status rwkv_patch_metric_parse_text(rwkv_patch_metric *mt, const char *spec, rwkv_tokenizer *tok,
                                         int n_vocab) {
    const char *colon = strchr(spec, ':');
    if (!colon) return rwkv_patch_metric_parse(mt, spec, n_vocab);
    const char *a = colon + 1, *comma = strncmp(spec, "logit-diff:", 11) ? NULL : strrchr(a, ',');
    int ida, idb = 0;
    rwkv_status st = rwkv_tokenizer_one(tok, a, comma ? (size_t)(comma - a) : strlen(a), "--metric", &ida);
    if (!st && comma) st = rwkv_tokenizer_one(tok, comma + 1, strlen(comma + 1), "--metric", &idb);
    if (st) return st;
    char ids[300]; // "KIND:A[,B]" rewritten with token ids
    if (comma) snprintf(ids, sizeof ids, "%.*s%d,%d", (int)(colon + 1 - spec), spec, ida, idb);
    else snprintf(ids, sizeof ids, "%.*s%d", (int)(colon + 1 - spec), spec, ida);
    return rwkv_patch_metric_parse(mt, ids, n_vocab);
}

double rwkv_patch_metric_eval(const rwkv_patch_metric *mt, const rwkv_real *logits, int V) {
    if (mt->kind == RWKV_METRIC_LOGIT_DIFF) return (double)logits[mt->a] - (double)logits[mt->b];
    if (mt->kind == RWKV_METRIC_LOGIT) return logits[mt->a];
    double mx = logits[0], z = 0;
    for (int i = 1; i < V; i++) mx = logits[i] > mx ? logits[i] : mx;
    for (int i = 0; i < V; i++) z += exp((double)logits[i] - mx);
    return (double)logits[mt->a] - mx - log(z); // log softmax(logits)[a]
}


// ---- what to sweep -----------------------------------------------------------------------

static int version_of(rwkv_config cfg) { return RWKV_HAS_HEADS(cfg) ? cfg.version : 4; }

// The block taps this model has, comma-separated, for messages.
static void model_taps(char *buf, size_t size, rwkv_config cfg) {
    size_t k = 0;
    buf[0] = 0;
    for (int t = 0; t < RWKV_TAP_N_BLOCK && k < size; t++)
        if (rwkv_tap_width((rwkv_tap)t, cfg)) k += (size_t)snprintf(buf + k, size - k, "%s%s", k ? ", " : "", RWKV_TAP_NAMES[t]);
}

static rwkv_status add_unit(rwkv_patch_opts *o, rwkv_tap tap, int head) {
    for (int k = 0; k < o->n_taps; k++)
        if (o->taps[k] == tap && o->head[k] == head) return RWKV_OK;
    if (o->n_taps == RWKV_PATCH_MAX_UNITS)
        return rwkv_error_set(RWKV_ERR_ARG, "--taps: more than %d taps and heads", RWKV_PATCH_MAX_UNITS);
    o->taps[o->n_taps] = tap;
    o->head[o->n_taps++] = head;
    return RWKV_OK;
}

// "state_wkv:HEADS": each listed head's matrix alone.
static rwkv_status select_heads(rwkv_patch_opts *o, rwkv_config cfg, const char *p, const char *heads) {
    char name[64], have[512];
    snprintf(name, sizeof name, "%.*s", (int)(heads - 1 - p), p);
    model_taps(have, sizeof have, cfg);
    if (fnmatch(name, RWKV_TAP_NAMES[RWKV_TAP_STATE_WKV], 0))
        return rwkv_error_set(RWKV_ERR_ARG, "--taps: '%s': only state_wkv takes a head list (state_wkv:HEADS)", p);
    if (!rwkv_tap_width(RWKV_TAP_STATE_WKV, cfg))
        return rwkv_error_set(RWKV_ERR_ARG, "--taps: '%s': an RWKV-%d model has no state_wkv (its block taps: %s)", p,
                              version_of(cfg), have);
    const int H = cfg.n_embd / cfg.head_size;
    uint8_t *mask = rwkv_calloc((size_t)H, 1, "heads");
    if (!mask) return RWKV_ERR_NOMEM;
    rwkv_status st = rwkv_intervene_index_list(mask, H, heads, "head", 0);
    if (st) st = rwkv_error_wrap(st, "--taps: '%s': ", p);
    for (int h = 0; !st && h < H; h++)
        if (mask[h]) st = add_unit(o, RWKV_TAP_STATE_WKV, h + 1);
    free(mask);
    return st;
}

rwkv_status rwkv_patch_select_taps(rwkv_patch_opts *o, rwkv_config cfg, const char *patterns) {
    char buf[512], have[512];
    snprintf(buf, sizeof buf, "%s", patterns);
    model_taps(have, sizeof have, cfg);
    rwkv_status st = RWKV_OK;
    for (char *save = NULL, *p = strtok_r(buf, ",", &save); p && !st; p = strtok_r(NULL, ",", &save)) {
        char *colon = strchr(p, ':');
        if (colon) {
            st = select_heads(o, cfg, p, colon + 1);
            continue;
        }
        int hit = 0, other = -1;
        for (int t = 0; t < RWKV_TAP_N_BLOCK && !st; t++) {
            if (fnmatch(p, RWKV_TAP_NAMES[t], 0)) continue;
            if (!rwkv_tap_width((rwkv_tap)t, cfg)) { // another version's tap
                other = other < 0 ? t : other;
                continue;
            }
            hit = 1;
            st = add_unit(o, (rwkv_tap)t, 0);
        }
        if (!st && !hit && other >= 0)
            st = rwkv_error_set(RWKV_ERR_ARG, "--taps: '%s' matches no block tap of this RWKV-%d model (%s is a tap of "
                                "another RWKV version; this model has: %s)", p, version_of(cfg), RWKV_TAP_NAMES[other], have);
        else if (!st && !hit)
            st = rwkv_error_set(RWKV_ERR_ARG, "--taps: '%s' matches no block tap (this RWKV-%d model has: %s)", p,
                                version_of(cfg), have);
    }
    if (!st && !o->n_taps) st = rwkv_error_set(RWKV_ERR_ARG, "--taps: empty pattern");
    return st;
}

rwkv_status rwkv_patch_select_cells(rwkv_patch_opts *o, rwkv_config cfg, int64_t T, const char *positions,
                                    const char *layers, uint8_t **pos_mask, uint8_t **layer_mask) {
    rwkv_status st = RWKV_OK;
    *pos_mask = *layer_mask = NULL;
    if (positions) {
        if (!(*pos_mask = rwkv_calloc((size_t)T, 1, "positions"))) st = RWKV_ERR_NOMEM;
        else if (!(st = rwkv_intervene_index_list(*pos_mask, T, positions, "position", 1))) o->positions = *pos_mask;
        if (st) st = rwkv_error_wrap(st, "--positions: ");
    }
    if (!st && layers) {
        if (!(*layer_mask = rwkv_calloc((size_t)cfg.n_layer, 1, "layers"))) st = RWKV_ERR_NOMEM;
        else if (!(st = rwkv_intervene_index_list(*layer_mask, cfg.n_layer, layers, "layer", 0))) o->layers = *layer_mask;
        if (st) st = rwkv_error_wrap(st, "--layers: ");
    }
    return st;
}

// ---- the sweep ---------------------------------------------------------------------------

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
    // Checkpoints of the corrupt run: ckpt[k] is the whole state after position k * stride - 1
    // (k >= 1), laid out as rwkv_state data; k = 0 is the empty state.
    int64_t stride, n_ckpt;
    size_t numel;        // elements of one state
    rwkv_real *ckpt;     // (n_ckpt, numel)
    uint32_t *ckpt_mask; // (L + 1) the state taps of this model
    rwkv_hook ckpt_hook;
} sweep_ctx;

// Offset of layer's row of a state tap within the state's data.
static size_t state_offset(const rwkv_state *s, int layer, rwkv_tap tap) {
    const rwkv_real *base = s->att_xprev;
    size_t width = (size_t)s->n_embd;
    switch (tap) {
    case RWKV_TAP_STATE_NUM: base = s->num; break;
    case RWKV_TAP_STATE_DEN: base = s->den; break;
    case RWKV_TAP_STATE_MAX: base = s->max; break;
    case RWKV_TAP_STATE_FFN_XPREV: base = s->ffn_xprev; break;
    case RWKV_TAP_STATE_WKV: base = s->wkv, width *= (size_t)s->head_size; break; // (H, N, N)
    default: break; // state_att_xprev
    }
    return (size_t)(base - s->data) + (size_t)layer * width;
}

// Hook on the corrupt run: keeps the state rows of positions p with (p + 1) % stride == 0.
static rwkv_status ckpt_hook(void *ctx, int layer, rwkv_tap tap, int64_t pos, int n, int D, rwkv_real *data) {
    sweep_ctx *c = ctx;
    const size_t off = state_offset(c->s, layer, tap);
    for (int i = 0; i < n; i++) {
        int64_t p = pos + i;
        if ((p + 1) % c->stride || (p + 1) / c->stride >= c->n_ckpt) continue;
        size_t k = (size_t)((p + 1) / c->stride);
        memcpy(c->ckpt + k * c->numel + off, data + (size_t)i * D, (size_t)D * sizeof *data);
    }
    return RWKV_OK;
}

// The corrupt state after position k * stride - 1 into s.
static void ckpt_restore(const sweep_ctx *c, int64_t k, rwkv_state *s) {
    if (k == 0) rwkv_state_reset(s);
    else memcpy(s->data, c->ckpt + (size_t)k * c->numel, c->numel * sizeof(rwkv_real));
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
    if (st) return st;
    // Checkpoints every `stride` positions: every position when they fit the budget.
    c->numel = rwkv_state_numel(c->s);
    size_t state_bytes = c->numel * sizeof(rwkv_real);
    c->stride = o->checkpoint_every > 0 ? o->checkpoint_every : 1;
    while (o->checkpoint_every <= 0 && (size_t)(T / c->stride + 1) * state_bytes > PATCH_STATE_BUDGET) c->stride *= 2;
    c->n_ckpt = T / c->stride + 1;
    if (!(c->ckpt = rwkv_calloc((size_t)c->n_ckpt * c->numel, sizeof(rwkv_real), "patching checkpoints")) ||
        !(c->ckpt_mask = rwkv_calloc((size_t)L + 1, sizeof *c->ckpt_mask, "checkpoint mask")))
        return RWKV_ERR_NOMEM;
    for (int l = 0; l < L; l++)
        for (int t = 0; t < RWKV_TAP_N_BLOCK; t++)
            if (rwkv_tap_is_state((rwkv_tap)t) && rwkv_tap_width((rwkv_tap)t, m->cfg)) c->ckpt_mask[l] |= 1u << t;
    c->ckpt_hook = (rwkv_hook){.mask = c->ckpt_mask, .fn = ckpt_hook, .ctx = c, .pos = 0};
    return RWKV_OK;
}

// The patched metric of cell (layer, unit k) at every position, into metric (T).
static rwkv_status sweep_cell_row(const rwkv_model *m, sweep_ctx *c, const int *corrupt, int64_t T, int layer, int k,
                                  const rwkv_patch_opts *o, rwkv_patch_result *r, double *metric, int64_t *done,
                                  int64_t total) {
    char spec[64], head[16] = "";
    rwkv_tap tap = o->taps[k];
    if (o->head[k]) snprintf(head, sizeof head, ":%d", o->head[k] - 1); // one head's matrix
    snprintf(spec, sizeof spec, "blocks.%d.%s%s@0=patch:clean", layer, RWKV_TAP_NAMES[tap], head);
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
        int64_t ck = o->naive ? 0 : p / c->stride; // the last checkpoint at or before p
        int64_t from = ck * c->stride;
        ckpt_restore(c, ck, c->s); // the corrupt state before `from`
        st = rwkv_intervene_forward(m, c->s, corrupt + from, T - from, from, c->logits, RWKV_LOGITS_LAST, c->list,
                                    c->ws, o->seq);
        pos_mask[p] = 0;
        metric[p] = rwkv_patch_metric_eval(&o->metric, c->logits, m->cfg.n_vocab);
        r->tokens_rerun += T - from;
    }
    rwkv_intervene_list_clear(c->list);
    return st;
}

// The units must be block taps of this model, heads only of state_wkv and in range.
static rwkv_status check_units(const rwkv_patch_opts *o, rwkv_config cfg) {
    if (o->n_taps < 1 || o->n_taps > RWKV_PATCH_MAX_UNITS)
        return rwkv_error_set(RWKV_ERR_ARG, "patching: %d taps selected, expected 1 to %d taps or heads", o->n_taps,
                              RWKV_PATCH_MAX_UNITS);
    for (int k = 0; k < o->n_taps; k++) {
        rwkv_tap t = o->taps[k];
        if ((int)t < 0 || t >= RWKV_TAP_N_BLOCK || !rwkv_tap_width(t, cfg))
            return rwkv_error_set(RWKV_ERR_ARG, "patching: tap %d is not a block tap of this RWKV-%d model", (int)t,
                                  version_of(cfg));
        int H = RWKV_HAS_HEADS(cfg) ? cfg.n_embd / cfg.head_size : 0;
        if (o->head[k] && (t != RWKV_TAP_STATE_WKV || o->head[k] < 0 || o->head[k] > H))
            return rwkv_error_set(RWKV_ERR_ARG, "patching: head %d of %s: only state_wkv has heads, %d of them",
                                  o->head[k] - 1, RWKV_TAP_NAMES[t], H);
    }
    return RWKV_OK;
}

rwkv_status rwkv_patch_sweep(rwkv_patch_result **out, const rwkv_model *m, const int *clean, const int *corrupt,
                             int64_t T, const rwkv_patch_opts *o) {
    *out = NULL;
    if (T < 1) return rwkv_error_set(RWKV_ERR_ARG, "patching: the clean and corrupt runs are empty");
    rwkv_status st = check_units(o, m->cfg);
    if (st) return st;
    const int L = m->cfg.n_layer;
    rwkv_patch_result *r = rwkv_calloc(1, sizeof *r, "patching result");
    if (!r) return RWKV_ERR_NOMEM;
    r->n_taps = o->n_taps;
    r->n_layer = L;
    r->T = T;
    memcpy(r->taps, o->taps, sizeof r->taps);
    memcpy(r->head, o->head, sizeof r->head);
    size_t cells = (size_t)o->n_taps * L * (size_t)T;
    r->metric = rwkv_calloc(cells, sizeof(double), "patching metric");
    r->recovery = rwkv_calloc(cells, sizeof(double), "patching recovery");
    sweep_ctx c = {0};
    st = r->metric && r->recovery ? setup(&c, m, T, o) : RWKV_ERR_NOMEM;
    if (!st) st = record_run(m, &c, clean, T, &c.clean->hook, o, &r->m_clean);
    if (!st) st = record_run(m, &c, corrupt, T, &c.ckpt_hook, o, &r->m_corrupt);
    r->checkpoint_every = c.stride;
    for (r->first_diff = 0; r->first_diff < T && clean[r->first_diff] == corrupt[r->first_diff];) r->first_diff++;
    int64_t done = 0;
    for (int k = 0; k < o->n_taps && !st; k++)
        for (int l = 0; l < L && !st; l++)
            st = sweep_cell_row(m, &c, corrupt, T, l, k, o, r, r->metric + rwkv_patch_cell(r, k, l, 0), &done,
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

// ---- outputs -----------------------------------------------------------------------------

void rwkv_patch_unit_name(const rwkv_patch_result *r, int k, char *buf, size_t size) {
    if (r->head[k]) snprintf(buf, size, "%s:%d", RWKV_TAP_NAMES[r->taps[k]], r->head[k] - 1);
    else snprintf(buf, size, "%s", RWKV_TAP_NAMES[r->taps[k]]);
}

// The swept cells in the CSV order (unit, layer, position): "tap,layer,position," then row().
static rwkv_status write_cells(FILE *f, const rwkv_patch_result *r, const char *header,
                               void (*row)(FILE *f, const void *ctx, size_t c, int64_t p), const void *ctx) {
    fprintf(f, "%s\n", header);
    for (int k = 0; k < r->n_taps; k++) {
        char name[64];
        rwkv_patch_unit_name(r, k, name, sizeof name);
        for (int l = 0; l < r->n_layer; l++)
            for (int64_t p = 0; p < r->T; p++) {
                size_t c = rwkv_patch_cell(r, k, l, p);
                if (isnan(r->metric[c])) continue; // not swept (positions, layers)
                fprintf(f, "%s,%d,%lld,", name, l, (long long)p);
                row(f, ctx, c, p);
            }
    }
    return ferror(f) ? rwkv_error_set(RWKV_ERR_IO, "patching: write error in the CSV") : RWKV_OK;
}

typedef struct {
    const rwkv_patch_result *r;
    const int *clean, *corrupt;
} single_row;

static void write_single(FILE *f, const void *ctx, size_t c, int64_t p) {
    const single_row *s = ctx;
    fprintf(f, "%d,%d,%.9g,%.9g\n", s->clean[p], s->corrupt[p], s->r->metric[c], s->r->recovery[c]);
}

rwkv_status rwkv_patch_write_csv(FILE *f, const rwkv_patch_result *r, const int *clean, const int *corrupt) {
    single_row s = {r, clean, corrupt};
    return write_cells(f, r, "tap,layer,position,clean_token,corrupt_token,metric,recovery", write_single, &s);
}

static void write_pair_row(FILE *f, const void *ctx, size_t c, int64_t p) {
    const rwkv_patch_pairs_result *pr = ctx;
    (void)p;
    fprintf(f, "%d,%.9g,%.9g,%.9g,%.9g\n", pr->n[c], pr->r->recovery[c], pr->ci_lo[c], pr->ci_hi[c], pr->sd[c]);
}

rwkv_status rwkv_patch_pairs_write_csv(FILE *f, const rwkv_patch_pairs_result *pr) {
    return write_cells(f, pr->r, "tap,layer,position,pairs,recovery,ci_lo,ci_hi,sd", write_pair_row, pr);
}

rwkv_status rwkv_patch_plot(const char *out, const rwkv_patch_result *r, int k, int n_pairs) {
    double *x = rwkv_calloc((size_t)r->T, sizeof *x, "plot"), *y = rwkv_calloc((size_t)r->n_layer, sizeof *y, "plot");
    rwkv_status st = x && y ? RWKV_OK : RWKV_ERR_NOMEM;
    for (int64_t p = 0; !st && p < r->T; p++) x[p] = (double)p;
    for (int l = 0; !st && l < r->n_layer; l++) y[l] = l;
    char name[64], title[160];
    rwkv_patch_unit_name(r, k, name, sizeof name);
    if (n_pairs > 1)
        snprintf(title, sizeof title, "mean recovery over %d pairs when patching %s (clean -> corrupt)", n_pairs, name);
    else snprintf(title, sizeof title, "recovery when patching %s (clean -> corrupt)", name);
    rwkv_plot_opts po = {.title = title, .xlabel = "position", .ylabel = "layer", .zrange = PATCH_CB_RANGE};
    if (!st)
        st = rwkv_plot_heatmap(out, &po, r->recovery + rwkv_patch_cell(r, k, 0, 0), r->n_layer, (int)r->T, x, y,
                               n_pairs > 1 ? "mean recovery" : "recovery");
    free(x);
    free(y);
    return st;
}

rwkv_status rwkv_patch_plot_heads(const char *out, const rwkv_patch_result *r, int n_pairs) {
    int units[RWKV_PATCH_MAX_UNITS], nh = 0;
    for (int k = 0; k < r->n_taps; k++) // the heads' units in head order (insertion sort)
        if (r->head[k]) {
            int i = nh++;
            for (; i > 0 && r->head[units[i - 1]] > r->head[k]; i--) units[i] = units[i - 1];
            units[i] = k;
        }
    if (!nh) return rwkv_error_set(RWKV_ERR_ARG, "patching: no head of state_wkv was swept");
    const int rows = r->n_layer * nh;
    double *z = rwkv_calloc((size_t)rows * (size_t)r->T, sizeof *z, "plot"), *x = rwkv_calloc((size_t)r->T, sizeof *x, "plot");
    char(*names)[24] = rwkv_calloc((size_t)rows, sizeof *names, "plot");
    const char **tics = rwkv_calloc((size_t)rows, sizeof *tics, "plot");
    rwkv_status st = z && x && names && tics ? RWKV_OK : RWKV_ERR_NOMEM;
    for (int64_t p = 0; !st && p < r->T; p++) x[p] = (double)p;
    for (int l = 0; !st && l < r->n_layer; l++)
        for (int i = 0; i < nh; i++) {
            int row = l * nh + i, h = r->head[units[i]] - 1;
            snprintf(names[row], sizeof names[row], "%d.%d", l, h); // layer.head
            tics[row] = names[row];
            memcpy(z + (size_t)row * r->T, r->recovery + rwkv_patch_cell(r, units[i], l, 0), (size_t)r->T * sizeof *z);
        }
    char title[160];
    if (n_pairs > 1) snprintf(title, sizeof title, "mean recovery over %d pairs when patching one head of state_wkv", n_pairs);
    else snprintf(title, sizeof title, "recovery when patching one head of state_wkv (clean -> corrupt)");
    rwkv_plot_opts po = {.title = title, .xlabel = "position", .ylabel = "layer.head", .zrange = PATCH_CB_RANGE};
    if (!st)
        st = rwkv_plot_heatmap_rows(out, &po, z, rows, (int)r->T, x, tics, n_pairs > 1 ? "mean recovery" : "recovery");
    free(z);
    free(x);
    free(names);
    free(tics);
    return st;
}
