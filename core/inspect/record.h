// record.h: an in-memory recorder of taps over a sequence, for the analyses that compare runs
// (patching sweeps, steering vectors, lenses). Dumps to disk are the dump module's job.
#ifndef RWKV_RECORD_H
#define RWKV_RECORD_H

#include "../compute/forward.h"

typedef struct {
    rwkv_config cfg;
    int64_t T;          // positions pos0 .. pos0+T-1 of the sequence are kept; others are ignored
    int64_t pos0;       // 0 after alloc; a chunked caller moves the window along
    uint32_t *mask;     // (L + 1) the recorded taps, as in rwkv_hook
    rwkv_real **rows;   // ((L + 1) * RWKV_TAP_N) each (T, D) or NULL when not recorded
    rwkv_hook hook;     // pass &rec->hook to the forward pass (set hook.pos for chunked calls)
} rwkv_record;

// Records the taps of mask (L + 1) at positions [0, T).
rwkv_status rwkv_record_alloc(rwkv_record **out, rwkv_config cfg, int64_t T, const uint32_t *mask);
void rwkv_record_free(rwkv_record *r);
// (T, D) rows of one tap (layer = L for the globals), or NULL if it is not recorded.
rwkv_real *rwkv_record_rows(const rwkv_record *r, int layer, rwkv_tap tap);
// Sets the state taps of every layer in mask (L + 1).
void rwkv_record_mask_states(uint32_t *mask, int n_layer);

#endif
