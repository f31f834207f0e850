// sample.c: softmax, nucleus sampling and top-k.
#include "sample.h"

#include <math.h>
#include <stdlib.h>

void rwkv_sample_softmax(double *probs, const rwkv_real *logits, int V, double temperature) {
    double t = temperature > 0 ? temperature : 1, mx = -INFINITY, sum = 0;
    for (int i = 0; i < V; i++) mx = fmax(mx, logits[i] / t);
    for (int i = 0; i < V; i++) sum += probs[i] = exp(logits[i] / t - mx); // p_i ∝ e^{l_i/t}
    for (int i = 0; i < V; i++) probs[i] /= sum;
}

double rwkv_sample_log_prob(const rwkv_real *logits, int V, int target) {
    double mx = logits[0], z = 0;
    for (int i = 1; i < V; i++) mx = fmax(mx, logits[i]);
    for (int i = 0; i < V; i++) z += exp((double)logits[i] - mx);
    return (double)logits[target] - mx - log(z); // l_target - logsumexp(l)
}

static const double *sort_probs; // qsort has no context argument

static int by_prob_desc(const void *a, const void *b) {
    double pa = sort_probs[*(const int *)a], pb = sort_probs[*(const int *)b];
    if (pa != pb) return pa < pb ? 1 : -1;
    return *(const int *)a - *(const int *)b; // ties: lower id first, for determinism
}

static void sort_desc(int *order, const double *probs, int V) {
    for (int i = 0; i < V; i++) order[i] = i;
    sort_probs = probs;
    qsort(order, (size_t)V, sizeof *order, by_prob_desc);
}

int rwkv_sample_token(const rwkv_real *logits, int V, double temperature, double top_p, double u,
                      double *probs, int *order) {
    if (temperature <= 0) {
        int best = 0;
        for (int i = 1; i < V; i++)
            if (logits[i] > logits[best]) best = i;
        return best;
    }
    rwkv_sample_softmax(probs, logits, V, temperature);
    sort_desc(order, probs, V);
    double keep = 0;
    int n = 0;
    while (n < V && (n == 0 || keep < top_p)) keep += probs[order[n++]]; // nucleus
    double target = u * keep, acc = 0;
    for (int i = 0; i < n; i++) {
        acc += probs[order[i]];
        if (target < acc) return order[i];
    }
    return order[n - 1];
}

void rwkv_sample_top_k(int *ids, const double *probs, int V, int k) {
    // Partial selection: k is small, so k passes over V beat a full sort.
    for (int j = 0; j < k; j++) {
        int best = -1;
        for (int i = 0; i < V; i++) {
            int taken = 0;
            for (int q = 0; q < j && !taken; q++) taken = ids[q] == i;
            if (!taken && (best < 0 || probs[i] > probs[best])) best = i;
        }
        ids[j] = best;
    }
}
