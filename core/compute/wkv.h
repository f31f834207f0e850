// wkv.h: the RWKV-4 time-mix recurrence with the running-max trick.
//   wkv_t = (sum_{i<t} e^{-(t-1-i)w + k_i} v_i + e^{u+k_t} v_t)
//         / (sum_{i<t} e^{-(t-1-i)w + k_i}     + e^{u+k_t})
// The state keeps num and den scaled by e^{-max}, so no exponent ever exceeds 0.
#ifndef RWKV_WKV_H
#define RWKV_WKV_H

#include "../base/base.h"

typedef struct {
    rwkv_real *num; // (T, C) or NULL: the state after each token
    rwkv_real *den; // (T, C)
    rwkv_real *max; // (T, C)
} rwkv_wkv_trace;

// out (T, C); k, v (T, C); w (C) = exp(time_decay) > 0; u (C) = time_first.
// num, den, max (C): the state, read at the start and written with the state after T tokens.
// trace (may be NULL, or have NULL members) receives the state after every token.
void rwkv_wkv_forward(rwkv_real *out, const rwkv_real *k, const rwkv_real *v, const rwkv_real *w,
                      const rwkv_real *u, int T, int C, rwkv_real *num, rwkv_real *den,
                      rwkv_real *max, const rwkv_wkv_trace *trace);

// The same scan over rows [t0, t1) of the (T, C) arrays, from a state kept in double between
// calls: state (3, C) = num, den, max, read and written. A run split into such calls gives
// the numbers of one call (the state is not rounded to rwkv_real in between).
void rwkv_wkv_scan(rwkv_real *out, const rwkv_real *k, const rwkv_real *v, const rwkv_real *w,
                   const rwkv_real *u, int t0, int t1, int C, double *state, const rwkv_wkv_trace *trace);

#endif
