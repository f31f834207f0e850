// init.h: the official RWKV-4 initialisation (RWKV-LM v4), seeded and deterministic.
//   time_decay[i] = -5 + 8 (i/(C-1))^(0.7 + 1.3 l/(L-1)),  time_first[i] = ln 0.3 + 0.5 (((i+1) mod 3) - 1)
//   with x = i/C: att.time_mix_k = x^(1-l/L), att.time_mix_v = x^(1-l/L) + 0.3 l/(L-1),
//   att.time_mix_r = x^(0.5 (1-l/L)), ffn.time_mix_k = ffn.time_mix_r = x^(1-l/L)
//   emb uniform in +-1e-4; att.key/receptance/output and ffn.value/receptance zero;
//   other matrices orthogonal with gain sqrt(rows/cols) when rows > cols, else 1;
//   head orthogonal with gain 0.5 sqrt(V/C) when V > C, else 0.5; LayerNorm w 1, b 0.
// (With one layer, or one channel, the l/(L-1) and i/(C-1) ratios are taken as 0.)
#ifndef RWKV_INIT_H
#define RWKV_INIT_H

#include "../model/model.h"

#include <gsl/gsl_rng.h>

#define RWKV_INIT_EMB_RANGE 1e-4 // emb.weight ~ U(-1e-4, 1e-4)
#define RWKV_INIT_HEAD_SCALE 0.5 // head gain factor

// Overwrites every parameter of m (RWKV-7 models: rwkv_init_v7_model). Random draws come from one gsl_rng mt19937 seeded with
// seed, in parameter-table order: the same seed and shape give the identical model.
rwkv_status rwkv_init_model(rwkv_model *m, unsigned long seed);
// A new model of shape cfg (RWKV-7 when cfg.version is RWKV_VERSION_7, with the official LoRA
// ranks rwkv_init_v7_dims; else RWKV-4), initialised by rwkv_init_model(seed).
rwkv_status rwkv_init_new_model(rwkv_model **out, rwkv_config cfg, unsigned long seed);

// dst (rows, cols) = gain * a uniformly random orthogonal matrix (torch.nn.init.orthogonal_),
// drawn from rng; name labels errors.
rwkv_status rwkv_init_orthogonal(rwkv_real *dst, int rows, int cols, double gain, gsl_rng *rng,
                                 const char *name);

// The official RWKV-7 initialisation (RWKV-LM RWKV-v7/train_temp/src/model.py, init_v7.c).
rwkv_status rwkv_init_v7_model(rwkv_model *m, unsigned long seed);
// The official LoRA ranks for n_embd C: max(32, round(k sqrt(C) / 32) 32) with k = 2.5
// (decay, in-context rate), 1.7 (value residual; none with L = 1 layer), 5 (gate), capped at
// C for tiny models.
rwkv_v7_dims rwkv_init_v7_dims(int C, int L);

#endif
