// record.c: copies the rows a hook sees into (T, D) buffers, one per recorded tap.
#include "record.h"

#include <stdlib.h>
#include <string.h>

static rwkv_status record_hook(void *ctx, int layer, rwkv_tap tap, int64_t pos, int n, int D, rwkv_real *data) {
    rwkv_record *r = ctx;
    rwkv_real *dst = rwkv_record_rows(r, layer, tap);
    if (!dst) return RWKV_OK;
    for (int i = 0; i < n; i++)
        if (pos + i - r->pos0 >= 0 && pos + i - r->pos0 < r->T)
            memcpy(dst + (size_t)(pos + i - r->pos0) * D, data + (size_t)i * D, (size_t)D * sizeof(rwkv_real));
    return RWKV_OK;
}

rwkv_status rwkv_record_alloc(rwkv_record **out, rwkv_config cfg, int64_t T, const uint32_t *mask) {
    *out = NULL;
    rwkv_record *r = rwkv_calloc(1, sizeof *r, "recorder");
    if (!r) return RWKV_ERR_NOMEM;
    const int L = cfg.n_layer;
    r->cfg = cfg;
    r->T = T;
    r->mask = rwkv_calloc((size_t)L + 1, sizeof *r->mask, "recorder mask");
    r->rows = rwkv_calloc((size_t)(L + 1) * RWKV_TAP_N, sizeof *r->rows, "recorder rows");
    if (!r->mask || !r->rows) goto fail;
    memcpy(r->mask, mask, (size_t)(L + 1) * sizeof *mask);
    for (int l = 0; l <= L; l++)
        for (int t = 0; t < RWKV_TAP_N; t++) {
            if (!(mask[l] >> t & 1u)) continue;
            if ((l < L) != (t < RWKV_TAP_N_BLOCK)) continue; // block taps in blocks, globals at L
            if (!rwkv_tap_width((rwkv_tap)t, cfg)) continue;  // not in this model's version
            size_t n = (size_t)T * (size_t)rwkv_tap_width((rwkv_tap)t, cfg);
            if (!(r->rows[(size_t)l * RWKV_TAP_N + t] = rwkv_calloc(n, sizeof(rwkv_real), "recorded rows"))) goto fail;
        }
    r->hook = (rwkv_hook){.mask = r->mask, .fn = record_hook, .ctx = r, .pos = 0};
    *out = r;
    return RWKV_OK;
fail:
    rwkv_record_free(r);
    return RWKV_ERR_NOMEM;
}

void rwkv_record_free(rwkv_record *r) {
    if (!r) return;
    if (r->rows)
        for (size_t i = 0; i < (size_t)(r->cfg.n_layer + 1) * RWKV_TAP_N; i++) free(r->rows[i]);
    free(r->rows);
    free(r->mask);
    free(r);
}

rwkv_real *rwkv_record_rows(const rwkv_record *r, int layer, rwkv_tap tap) {
    if (layer < 0 || layer > r->cfg.n_layer || (int)tap < 0 || tap >= RWKV_TAP_N) return NULL;
    return r->rows[(size_t)layer * RWKV_TAP_N + tap];
}

void rwkv_record_mask_states(uint32_t *mask, int n_layer) {
    for (int l = 0; l < n_layer; l++)
        for (int t = RWKV_TAP_STATE_ATT_XPREV; t <= RWKV_TAP_STATE_FFN_XPREV; t++) mask[l] |= 1u << t;
}
