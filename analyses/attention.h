// attention.h: the implicit attention of RWKV's time mix: the WKV output at position t is
// linear in the values v_i, i <= t.
// RWKV-4, per channel: a weighted mean, with weights
//   a_{t,i} = e^{-(t-1-i) w + k_i} / den_t   (i < t),   a_{t,t} = e^{u + k_t} / den_t,
// den_t the sum of the numerators (so each row sums to 1), w = e^{time_decay}, u = time_first.
// RWKV-5.2, 6 and 7, per head (its N value channels share the weights), y_t = S_t r_t
// (att_wkv, before the GroupNorm) = sum_{i<=t} a_{t,i} v_i with
//   RWKV-7:   S_t = S_{t-1} A_t + v_t k_t^T,  A_t = diag(w_t) - kk_t (kk_t * a_t)^T,
//             a_{t,i} = k_i^T A_{i+1} ... A_t r_t
//   RWKV-5.2 and 6: S_t = S_{t-1} diag(w_t) + v_t k_t^T, y_t = (S_{t-1} + v_t (u * k_t)^T) r_t,
//             a_{t,i} = k_i^T diag(w_{i+1} ... w_{t-1}) r_t (i < t),  a_{t,t} = (u * k_t)^T r_t
//             (RWKV-5.2's decay w is the same at every token, RWKV-6's depends on it)
// These weights are not normalised: rows need not sum to 1 and may be negative.
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
// The matrix averaged over `sel` (n_sel of them; NULL = all): channels of an RWKV-4 model,
// heads of an RWKV-5.2, 6 or 7 model (rwkv_attention_unit names which), into att (T, T).
// max_bytes bounds the T x T matrix (0 = the default); beyond it, RWKV_ERR_ARG.
rwkv_status rwkv_attention_compute(const rwkv_model *m, const int *tokens, int T, int layer,
                                   const int *sel, int n_sel, size_t max_bytes, double *att);
// "channel" for RWKV-4, "head" for RWKV-5.2, 6 and 7; *n gets how many the model has.
const char *rwkv_attention_unit(const rwkv_model *m, int *n);
// One head's inputs, from a run's taps (float64).
typedef struct {
    int T, C, N;          // tokens, width, head size
    const double *r, *k;  // (T, C) att_r, att_k (RWKV-7: after the k_a rescale)
    const double *w;      // (T, C) the per-token decay: att_w (RWKV-6, 7), exp(-exp(time_decay)) (5.2)
    const double *kk, *a; // RWKV-7: (T, C) att_kk, att_a; NULL otherwise
    const double *u;      // RWKV-5.2 and 6: (C) time_faaaa, the bonus; NULL for RWKV-7
} rwkv_attention_heads;
// Head h: att (T, T), row t over i <= t (zero above the diagonal), in O(T^2 N): for each t
// the vector A_{i+1} ... A_t r_t is carried from i = t down to 0. scratch (N).
void rwkv_attention_head(double *att, const rwkv_attention_heads *x, int h, double *scratch);
// Checks T against max_bytes before anything is allocated.
rwkv_status rwkv_attention_check_size(int T, size_t max_bytes);
// Writes /attention (T, T) float64, /tokens int32 (T), /channels or /heads int32 (sel, when
// not NULL), attributes version, layer, rwkv_version, model_path, n_channels or n_heads
// (docs/attention-format.md). Refuses an existing file unless force.
rwkv_status rwkv_attention_write(const char *path, const rwkv_model *m, const double *att, int T, const int *tokens,
                                 const int *sel, int n_sel, int layer, int force);
// The heatmap of att (T, T) into png (its data and script beside it); the title names the
// layer and what was averaged. Weights of both signs get a diverging palette.
rwkv_status rwkv_attention_plot(const char *png, const rwkv_model *m, const double *att, int T, int layer,
                                int selected);

#endif
