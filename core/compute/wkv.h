// wkv.h: the RWKV-4 time-mix recurrence with the running-max trick.
//   wkv_t = (sum_{i<t} e^{-(t-1-i)w + k_i} v_i + e^{u+k_t} v_t)
//         / (sum_{i<t} e^{-(t-1-i)w + k_i}     + e^{u+k_t})
// The state keeps num and den scaled by e^{-max}, so no exponent ever exceeds 0.
// Training uses the same scan (its trace keeps what the backward needs) and the backward
// scan below; both run over a range of channels so callers can spread blocks over threads.
#ifndef RWKV_WKV_H
#define RWKV_WKV_H

#include "../base/base.h"

// Channels per block of the scans: the inner loop runs over a block, the threads over blocks.
#define RWKV_WKV_BLOCK 64

typedef struct {
    rwkv_real *num; // (T, C) or NULL: the state after each token
    rwkv_real *den; // (T, C)
    rwkv_real *max; // (T, C)
    rwkv_real *p;   // (T, C) or NULL: p_t = max(max_{t-1}, u + k_t), the exponent of wkv_t
    rwkv_real *d;   // (T, C) or NULL: d_t = D_t e^{-p_t} >= 1, the scaled denominator of wkv_t
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

// The scan of rows [0, T) for channels [c0, c1) on the calling thread, from the zero state
// (a training sequence); the final state is dropped. trace as above.
void rwkv_wkv_scan_channels(rwkv_real *out, const rwkv_real *k, const rwkv_real *v, const rwkv_real *w,
                            const rwkv_real *u, int T, int C, int c0, int c1, const rwkv_wkv_trace *trace);

// Backward of the scan from the zero state (one channel, w = e^{time_decay} > 0, u = time_first):
//   a_t = sum_{i<t} e^{-(t-1-i)w + k_i} v_i,  b_t = sum_{i<t} e^{-(t-1-i)w + k_i}
//   y_t = (a_t + e^{u+k_t} v_t) / (b_t + e^{u+k_t}) = N_t / D_t
// With g_t = dL/dy_t and z_t = g_t / D_t:
//   direct (the bonus term):  dv_t += z_t e^{u+k_t};  dk_t, du += z_t e^{u+k_t} (v_t - y_t)
//   through the state, with  G_i = sum_{t>i} e^{-(t-1-i)w} z_t,  H_i = same with z_t y_t,
//                            G'_i = sum_{t>i} (t-1-i) e^{-(t-1-i)w} z_t,  H'_i likewise:
//   dv_i += e^{k_i} G_i;  dk_i += e^{k_i} (v_i G_i - H_i);  dw -= e^{k_i} (v_i G'_i - H'_i)
// A reverse scan builds them: G_{i-1} = e^{-w} G_i + z_i,  G'_{i-1} = e^{-w} (G'_i + G_i),
// keeping G, H, G', H' scaled by one running max exponent M, exactly like the forward;
// since p_t bounds k_i - (t-1-i)w for i < t, e^{k_i + M} never overflows.
// dk, dv (T, C) are written for channels [c0, c1); dtd and du (C) are ADDED to: dtd is the
// gradient of the raw time_decay (dL/dw * w). gy (T, C) = dL/dy; y, p, d from the forward
// (out and trace->p, trace->d of rwkv_wkv_scan_channels).
void rwkv_wkv_backward(rwkv_real *dk, rwkv_real *dv, rwkv_real *dtd, rwkv_real *du,
                       const rwkv_real *gy, const rwkv_real *k, const rwkv_real *v,
                       const rwkv_real *w, const rwkv_real *u, const rwkv_real *y,
                       const rwkv_real *p, const rwkv_real *d, int T, int C, int c0, int c1);

#endif
