// state.h: the recurrent state: RWKV-4 has five vectors per layer; RWKV-7 two vectors and
// one (N, N) matrix per head per layer.
#ifndef RWKV_STATE_H
#define RWKV_STATE_H

#include "weights.h"

#define RWKV_MAX_INIT (-1e30) // state_max before any token: exp(max) is 0 in any precision

typedef struct {
    int n_layer, n_embd;
    int version;          // the model's cfg.version
    int n_head, head_size; // RWKV-7: H, N
    rwkv_real *data;      // (5, L, C) one allocation; RWKV-7: (2, L, C) then (L, H, N, N)
    rwkv_real *att_xprev; // (L, C) ln1 output of the previous token
    rwkv_real *num;       // (L, C) aa: sum of e^{k_i - max} v_i, decayed
    rwkv_real *den;       // (L, C) bb: sum of e^{k_i - max}, decayed
    rwkv_real *max;       // (L, C) pp: the running exponent offset
    rwkv_real *ffn_xprev; // (L, C) ln2 output of the previous token
    rwkv_real *wkv;       // (L, H, N, N) RWKV-7 only: S[h][i][j], i a value and j a key channel
} rwkv_state; // RWKV-7 has no num, den, max (NULL)

#define RWKV_STATE_NVEC 5
extern const char *const RWKV_STATE_NAMES[RWKV_STATE_NVEC]; // "att_xprev", "num", ...

rwkv_status rwkv_state_alloc(rwkv_state **out, rwkv_config cfg);
void rwkv_state_free(rwkv_state *s);
void rwkv_state_reset(rwkv_state *s);                  // the zero state (max = RWKV_MAX_INIT)
void rwkv_state_copy(rwkv_state *dst, const rwkv_state *src); // same shape (asserted)
rwkv_real *rwkv_state_vec(const rwkv_state *s, int which);    // (L, C) block of vector `which` (RWKV-4)
size_t rwkv_state_numel(const rwkv_state *s);                 // elements in data

#endif
