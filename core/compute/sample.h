// sample.h: next-token sampling from logits (temperature, nucleus top-p) and top-k listing.
#ifndef RWKV_SAMPLE_H
#define RWKV_SAMPLE_H

#include "../base/base.h"

// probs (V) = softmax(logits / temperature); temperature <= 0 means 1.
void rwkv_sample_softmax(double *probs, const rwkv_real *logits, int V, double temperature);
// log softmax(logits)[target], in double: logits[target] - logsumexp(logits).
double rwkv_sample_log_prob(const rwkv_real *logits, int V, int target);
// Draws a token: temperature 0 is greedy (argmax); top_p in (0, 1] keeps the smallest set of
// most likely tokens whose mass reaches top_p. u is a uniform draw in [0, 1).
// order (V) is scratch for sorting.
int rwkv_sample_token(const rwkv_real *logits, int V, double temperature, double top_p, double u,
                      double *probs, int *order);
// The k most likely ids in decreasing probability (k <= V); probs must hold softmax(logits).
void rwkv_sample_top_k(int *ids, const double *probs, int V, int k);

#endif
