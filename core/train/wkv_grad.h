// wkv_grad.h: the WKV operator for training: a forward scan that keeps what the backward
// needs, and the backward scan. Both work on one sequence and a range of channels, so the
// trainer can spread (sequence, channel block) pairs over threads.
//
// Forward (one channel, w = e^{time_decay} > 0, u = time_first, zero initial state):
//   a_t = sum_{i<t} e^{-(t-1-i)w + k_i} v_i,  b_t = sum_{i<t} e^{-(t-1-i)w + k_i}
//   y_t = (a_t + e^{u+k_t} v_t) / (b_t + e^{u+k_t}) = N_t / D_t
// Everything is kept scaled by e^{-p_t} (p_t the running max exponent, as in wkv.h);
// the forward saves p_t and the scaled denominator d_t = D_t e^{-p_t} (>= 1) per step.
//
// Backward, with g_t = dL/dy_t and z_t = g_t / D_t:
//   direct (the bonus term):  dv_t += z_t e^{u+k_t};  dk_t, du += z_t e^{u+k_t} (v_t - y_t)
//   through the state, with  G_i = sum_{t>i} e^{-(t-1-i)w} z_t,  H_i = same with z_t y_t,
//                            G'_i = sum_{t>i} (t-1-i) e^{-(t-1-i)w} z_t,  H'_i likewise:
//   dv_i += e^{k_i} G_i;  dk_i += e^{k_i} (v_i G_i - H_i);  dw -= e^{k_i} (v_i G'_i - H'_i)
// A reverse scan builds them: G_{i-1} = e^{-w} G_i + z_i,  G'_{i-1} = e^{-w} (G'_i + G_i).
// The reverse scan keeps G, H, G', H' scaled by one running max exponent M, exactly like
// the forward; since p_t bounds k_i - (t-1-i)w for i < t, e^{k_i + M} never overflows.
#ifndef RWKV_WKV_GRAD_H
#define RWKV_WKV_GRAD_H

#include "../base/base.h"

// Channels per block of the scans: the inner loop runs over a block, the threads over blocks.
#define RWKV_WKV_BLOCK 64

// y, p, d (T, C) for channels [c0, c1); k, v (T, C); w (C) = e^{time_decay}; u (C).
// The state starts at zero (a training sequence). Same arithmetic as rwkv_wkv_forward.
void rwkv_wkv_train_forward(rwkv_real *y, rwkv_real *p, rwkv_real *d, const rwkv_real *k,
                            const rwkv_real *v, const rwkv_real *w, const rwkv_real *u, int T,
                            int C, int c0, int c1);

// dk, dv (T, C) are written for channels [c0, c1); dtd and du (C) are ADDED to: dtd is the
// gradient of the raw time_decay (dL/dw * w). gy (T, C) = dL/dy; y, p, d from the forward.
void rwkv_wkv_backward(rwkv_real *dk, rwkv_real *dv, rwkv_real *dtd, rwkv_real *du,
                       const rwkv_real *gy, const rwkv_real *k, const rwkv_real *v,
                       const rwkv_real *w, const rwkv_real *u, const rwkv_real *y,
                       const rwkv_real *p, const rwkv_real *d, int T, int C, int c0, int c1);

#endif
