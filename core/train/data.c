// data.c: token streams, the held-out split and batch sampling.
#include "data.h"

#include "../base/file.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define BYTE_VOCAB 256

rwkv_status rwkv_data_from_tokens(rwkv_data **out, const int *tokens, const rwkv_real *mask,
                                  int64_t n, int n_vocab, double val_frac, const char *source) {
    *out = NULL;
    if (!(val_frac >= 0 && val_frac < 1))
        return rwkv_error_set(RWKV_ERR_ARG, "%s: the held-out share must be in [0, 1), got %g", source, val_frac);
    if (n < 2) return rwkv_error_set(RWKV_ERR_ARG, "%s: %lld tokens: need at least 2", source, (long long)n);
    for (int64_t i = 0; i < n; i++)
        if (tokens[i] < 0 || tokens[i] >= n_vocab)
            return rwkv_error_set(RWKV_ERR_ARG, "%s: token %d at %lld is outside the vocabulary [0, %d)",
                                  source, tokens[i], (long long)i, n_vocab);
    rwkv_data *d = rwkv_calloc(1, sizeof *d, "data");
    if (!d) return RWKV_ERR_NOMEM;
    d->tokens = rwkv_calloc((size_t)n, sizeof(int), "data tokens");
    if (mask) d->mask = rwkv_calloc((size_t)n, sizeof(rwkv_real), "data mask");
    if (!d->tokens || (mask && !d->mask)) {
        rwkv_data_free(d);
        return RWKV_ERR_NOMEM;
    }
    memcpy(d->tokens, tokens, (size_t)n * sizeof(int));
    if (mask) memcpy(d->mask, mask, (size_t)n * sizeof(rwkv_real));
    d->n = n;
    d->n_train = n - (int64_t)((double)n * val_frac);
    d->n_vocab = n_vocab;
    snprintf(d->source, sizeof d->source, "%s", source);
    *out = d;
    return RWKV_OK;
}

rwkv_status rwkv_data_load_bytes(rwkv_data **out, const char *path, double val_frac) {
    *out = NULL;
    unsigned char *buf;
    size_t n;
    rwkv_status st = rwkv_file_read(path, &buf, &n);
    if (st) return st;
    int *tok = malloc((n ? n : 1) * sizeof *tok);
    if (!tok) {
        free(buf);
        return rwkv_error_set(RWKV_ERR_NOMEM, "%s: out of memory", path);
    }
    for (size_t i = 0; i < n; i++) tok[i] = buf[i];
    free(buf);
    st = rwkv_data_from_tokens(out, tok, NULL, (int64_t)n, BYTE_VOCAB, val_frac, path);
    free(tok);
    return st;
}

void rwkv_data_free(rwkv_data *d) {
    if (!d) return;
    free(d->tokens);
    free(d->mask);
    free(d);
}

rwkv_status rwkv_data_check(const rwkv_data *d, int T) {
    if (T < 1) return rwkv_error_set(RWKV_ERR_ARG, "ctx must be >= 1, got %d", T);
    if (d->n_train < (int64_t)T + 1)
        return rwkv_error_set(RWKV_ERR_ARG,
                              "%s: ctx %d is longer than the training part of the data (%lld tokens; a window needs ctx+1)",
                              d->source, T, (long long)d->n_train);
    if (d->n > d->n_train && rwkv_data_val_windows(d, T) < 1)
        return rwkv_error_set(RWKV_ERR_ARG,
                              "%s: ctx %d is longer than the held-out part of the data (%lld tokens); use a shorter ctx or more data",
                              d->source, T, (long long)(d->n - d->n_train));
    return RWKV_OK;
}

// splitmix64: a counter-based hash, so batch offsets need no generator state.
static uint64_t mix64(uint64_t x) {
    x += 0x9E3779B97F4A7C15ULL;
    x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ULL;
    x = (x ^ (x >> 27)) * 0x94D049BB133111EBULL;
    return x ^ (x >> 31);
}

static void fill_row(const rwkv_data *d, rwkv_batch *b, int row, int64_t s) {
    size_t o = (size_t)row * b->T;
    for (int t = 0; t < b->T; t++) {
        b->inputs[o + t] = d->tokens[s + t];
        b->targets[o + t] = d->tokens[s + t + 1];
        b->mask[o + t] = d->mask ? d->mask[s + t + 1] : 1;
    }
}

void rwkv_data_train_batch(const rwkv_data *d, rwkv_batch *b, unsigned long seed, int64_t step) {
    uint64_t span = (uint64_t)(d->n_train - b->T); // starts 0 .. n_train - T - 1
    for (int r = 0; r < b->B; r++) {
        uint64_t h = mix64(mix64(mix64((uint64_t)seed) ^ (uint64_t)step) ^ (uint64_t)r);
        fill_row(d, b, r, (int64_t)(h % span));
    }
}

int64_t rwkv_data_val_windows(const rwkv_data *d, int T) {
    int64_t nval = d->n - d->n_train;
    return nval > T ? (nval - 1) / T : 0;
}

void rwkv_data_val_batch(const rwkv_data *d, rwkv_batch *b, int64_t first) {
    int64_t nw = rwkv_data_val_windows(d, b->T);
    for (int r = 0; r < b->B; r++) {
        if (first + r < nw) {
            fill_row(d, b, r, d->n_train + (first + r) * b->T);
            continue;
        }
        size_t o = (size_t)r * b->T; // padding row: ignored by the loss
        for (int t = 0; t < b->T; t++) b->inputs[o + t] = 0, b->targets[o + t] = 0, b->mask[o + t] = 0;
    }
}
