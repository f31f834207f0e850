// kernels.h: the element-wise and row-wise kernels of the forward pass, shared by inference
// and training, with the backward of each beside it for training.
// Outputs come first; shapes are (rows, cols) row-major.
#ifndef RWKV_KERNELS_H
#define RWKV_KERNELS_H

#include "../base/base.h"

#define RWKV_LN_EPS 1e-5 // torch.nn.LayerNorm default, as in the official model
#define RWKV_PAR_MIN_ELEMS (1 << 16) // elements below which a loop stays on one thread

// out (T, C) = layernorm(x) * w + b, row by row. out may alias x.
void rwkv_layernorm(rwkv_real *out, const rwkv_real *x, const rwkv_real *w, const rwkv_real *b,
                    int T, int C);
// The same, keeping mean (T) and rstd (T) = 1/sqrt(var + eps) of each row for the backward.
void rwkv_layernorm_stats(rwkv_real *out, rwkv_real *mean, rwkv_real *rstd, const rwkv_real *x,
                          const rwkv_real *w, const rwkv_real *b, int T, int C);
// dx (T, C) += d layernorm; dw, db (C) += their gradients; dy (T, C) = dL/dout, x the input,
// mean and rstd from rwkv_layernorm_stats.
void rwkv_layernorm_backward(rwkv_real *dx, rwkv_real *dw, rwkv_real *db, const rwkv_real *dy,
                             const rwkv_real *x, const rwkv_real *mean, const rwkv_real *rstd,
                             const rwkv_real *w, int T, int C);
// Token shift and mix: out_t = mix*x_t + (1-mix)*x_{t-1}, with x_{-1} = prev (C).
void rwkv_token_mix(rwkv_real *out, const rwkv_real *x, const rwkv_real *prev,
                    const rwkv_real *mix, int T, int C);
// out = 1 / (1 + e^{-x}), n elements. out may alias x.
void rwkv_sigmoid(rwkv_real *out, const rwkv_real *x, size_t n);
// Gradients of out = s * val with s = sigmoid(r): dval = dout s, dr = dout val s (1 - s).
void rwkv_sigmoid_gate_backward(rwkv_real *dval, rwkv_real *dr, const rwkv_real *dout,
                                const rwkv_real *s, const rwkv_real *val, size_t n);
// out = relu(x)^2. out may alias x.
void rwkv_relu_sq(rwkv_real *out, const rwkv_real *x, size_t n);
// out = exp(-scale sigmoid(x)) = exp(-scale / (1 + e^{-x})) (RWKV-7's decay), vectorised.
void rwkv_exp_neg_sigmoid(rwkv_real *out, const rwkv_real *x, rwkv_real scale, size_t n);
// g *= d relu(x)^2 / dx = 2 relu(x).
void rwkv_relu_sq_backward(rwkv_real *g, const rwkv_real *x, size_t n);
// out = a * b element-wise. out may alias a or b.
void rwkv_mul(rwkv_real *out, const rwkv_real *a, const rwkv_real *b, size_t n);
// x += y
void rwkv_add_inplace(rwkv_real *x, const rwkv_real *y, size_t n);
// 1 if every element is finite.
int rwkv_all_finite(const rwkv_real *x, size_t n);

#endif
