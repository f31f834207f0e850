// attention.h: RWKV-4's implicit attention. Per channel, the WKV output at position t is a
// weighted mean of the values v_i, i <= t, with weights
//   a_{t,i} = e^{-(t-1-i) w + k_i} / den_t   (i < t),   a_{t,t} = e^{u + k_t} / den_t,
// den_t the sum of the numerators (so each row sums to 1), w = e^{time_decay}, u = time_first.
#ifndef RWKV_ATTENTION_H
#define RWKV_ATTENTION_H

#include "../core/compute/forward.h"

#define RWKV_ATTENTION_MAX_BYTES_DEFAULT (1ULL << 30) // refuse T x T matrices beyond 1 GiB

// Runs tokens (T) from the zero state in sequential mode and copies layer `layer`'s att_k,
// att_v and att_wkv (each (T, C), may be NULL) through a hook.
rwkv_status rwkv_attention_capture(const rwkv_model *m, const int *tokens, int T, int layer,
                                   double *k, double *v, double *wkv);
// One channel: att (T, T), row t over i <= t (zero above the diagonal), from k (T, C).
void rwkv_attention_channel(double *att, const double *k, int T, int C, int c, double w, double u);
// The matrix averaged over `channels` (n_ch of them; NULL = all C), into att (T, T).
// max_bytes bounds the T x T matrix (0 = the default); beyond it, RWKV_ERR_ARG.
rwkv_status rwkv_attention_compute(const rwkv_model *m, const int *tokens, int T, int layer,
                                   const int *channels, int n_ch, size_t max_bytes, double *att);
// Checks T against max_bytes before anything is allocated.
rwkv_status rwkv_attention_check_size(int T, size_t max_bytes);
// Writes /attention (T, T) float64, /tokens int32 (T), /channels int32, attributes layer,
// model_path, n_channels (docs/attention-format.md). Refuses an existing file unless force.
rwkv_status rwkv_attention_write(const char *path, const double *att, int T, const int *tokens,
                                 const int *channels, int n_ch, int layer, const char *model_path,
                                 int force);

#endif
