// steer.h: steering vectors by contrastive activation addition. A vector is the mean of a
// tap's value at the last position of the positive prompts minus that of the negative ones
// (for a state tap: the state after the last token). It is stored as /vector [D] in an HDF5
// file (docs/interventions.md) and applied with the add op, e.g. blocks.5.resid_in@*=add:vec.h5:4.
#ifndef RWKV_STEER_H
#define RWKV_STEER_H

#include "../core/compute/forward.h"
#include "../core/inspect/sequences.h"
#include "../core/tokenize/tokenizer.h"

#include <stdio.h>

// The tap (layer, tap) at the last of T tokens, run from the empty state, into out (D).
rwkv_status rwkv_steer_activation(rwkv_real *out, const rwkv_model *m, int layer, rwkv_tap tap, const int *tokens,
                                  int64_t T, int seq);
// vec (D) = mean over pos prompts - mean over neg prompts. prompts[i] has len[i] tokens.
rwkv_status rwkv_steer_build(rwkv_real *vec, const rwkv_model *m, int layer, rwkv_tap tap, int n_pos,
                             const int *const *pos, const int64_t *pos_len, int n_neg, const int *const *neg,
                             const int64_t *neg_len, int seq);
// The same over two lists of prompts (e.g. from rwkv_dataset_read_sequences).
rwkv_status rwkv_steer_build_seqs(rwkv_real *vec, const rwkv_model *m, int layer, rwkv_tap tap,
                                  const rwkv_sequences *pos, const rwkv_sequences *neg, int seq);
// "blocks.L.TAP" into layer and tap: a block tap this model has.
rwkv_status rwkv_steer_parse_tap(const char *s, rwkv_config cfg, int *layer, rwkv_tap *tap);
// The Euclidean norm of a vector (D).
double rwkv_steer_norm(const rwkv_real *vec, int D);
// Writes /vector [D] with attributes tap ("blocks.L.name"), tap_name, layer, n_pos, n_neg,
// the model shape (n_layer, n_embd, n_ffn, n_vocab) and format_version.
rwkv_status rwkv_steer_write(const char *path, const rwkv_real *vec, int D, rwkv_config cfg, int layer, rwkv_tap tap,
                             int n_pos, int n_neg);
// The tap_name attribute of a vector file ("resid_in"), into buf.
rwkv_status rwkv_steer_read_tap(const char *path, char *buf, size_t size);

// One sweep point: p(a), p(b) at the last position with the vector added at `layer`.
typedef struct {
    int layer;
    double multiplier;
    double p_a, p_b;
} rwkv_steer_point;

// For each layer and multiplier: applies "blocks.<layer>.<tap>@<positions>=add:<vec_path>:<mult>"
// to the prompt and records the answers' probabilities. points has n_layers * n_mult entries
// (layer-major); base receives the unsteered p(a), p(b).
rwkv_status rwkv_steer_sweep(rwkv_steer_point *points, double base[2], const rwkv_model *m, const char *vec_path,
                             const char *tap_name, const char *positions, const int *layers, int n_layers,
                             const double *mults, int n_mult, const int *prompt, int64_t T, int a, int b, int seq);
// "A,B": two answers, each a token id or text that encodes to one token with tok.
rwkv_status rwkv_steer_parse_answers(const char *spec, rwkv_tokenizer *tok, int *a, int *b);
// CSV of n sweep points against the unsteered base: layer,multiplier,p_a,p_b,dp_a,dp_b,logit_diff.
rwkv_status rwkv_steer_write_csv(FILE *f, const rwkv_steer_point *points, int n, const double base[2]);
// log p(A) - log p(B) against the multiplier, one curve per layer (points from a sweep of
// n_layers x n_mult), into the image out.
rwkv_status rwkv_steer_plot(const char *out, const rwkv_steer_point *points, int n_layers, int n_mult);

#endif
