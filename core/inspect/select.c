// select.c: tap patterns -> the hook's mask; position specs -> a membership test.
#include "select.h"

#include <errno.h>
#include <fnmatch.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SELECT_PATTERN_MAX 256 // longest single pattern

void rwkv_select_tap_name(char *buf, size_t size, int layer, int n_layer, rwkv_tap tap) {
    if (layer >= n_layer) snprintf(buf, size, "%s", RWKV_TAP_NAMES[tap]);
    else snprintf(buf, size, "blocks.%d.%s", layer, RWKV_TAP_NAMES[tap]);
}

// Sets the bit of every name the pattern matches; returns how many matched.
static int select_one(uint32_t *mask, int n_layer, const char *pat) {
    int hits = 0;
    char name[96];
    for (int l = 0; l <= n_layer; l++) {
        int lo = l < n_layer ? 0 : RWKV_TAP_N_BLOCK, hi = l < n_layer ? RWKV_TAP_N_BLOCK : RWKV_TAP_N;
        for (int t = lo; t < hi; t++) {
            rwkv_select_tap_name(name, sizeof name, l, n_layer, (rwkv_tap)t);
            if (fnmatch(pat, name, 0) == 0) {
                mask[l] |= 1u << t;
                hits++;
            }
        }
    }
    return hits;
}

static rwkv_status no_match(const char *pat, int n_layer) {
    char list[512];
    size_t k = 0;
    for (int t = 0; t < RWKV_TAP_N_BLOCK; t++)
        k += (size_t)snprintf(list + k, sizeof list - k, "%s%s", t ? "," : "", RWKV_TAP_NAMES[t]);
    return rwkv_error_set(RWKV_ERR_ARG,
                          "--taps: pattern '%s' matches no tap; valid names are blocks.<0..%d>.{%s}, "
                          "resid_out, logits (globs like blocks.*.state_* allowed)",
                          pat, n_layer - 1, list);
}

rwkv_status rwkv_select_taps(uint32_t *mask, int n_layer, const char *patterns) {
    memset(mask, 0, (size_t)(n_layer + 1) * sizeof *mask);
    if (!patterns || !*patterns) return rwkv_error_set(RWKV_ERR_ARG, "--taps: empty pattern list");
    const char *p = patterns;
    while (1) {
        const char *end = strchr(p, ',');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        char pat[SELECT_PATTERN_MAX];
        if (len == 0 || len >= sizeof pat)
            return rwkv_error_set(RWKV_ERR_ARG, "--taps: empty or overlong pattern in '%s'", patterns);
        memcpy(pat, p, len);
        pat[len] = '\0';
        if (!select_one(mask, n_layer, pat)) return no_match(pat, n_layer);
        if (!end) break;
        p = end + 1;
    }
    return RWKV_OK;
}

int rwkv_select_count(const uint32_t *mask, int n_layer) {
    int n = 0;
    for (int l = 0; l <= n_layer; l++) n += __builtin_popcount(mask[l]);
    return n;
}

// A non-negative integer at *s, advancing *s; -1 if none.
static int64_t parse_nonneg(const char **s) {
    char *end;
    errno = 0;
    if (**s < '0' || **s > '9') return -1;
    long long v = strtoll(*s, &end, 10);
    if (errno || end == *s) return -1;
    *s = end;
    return v;
}

static int cmp_range(const void *a, const void *b) {
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

// A list bound: a position, or "last" (RWKV_SELECT_LAST, resolved against each sequence's length).
static int64_t parse_bound(const char **s) {
    if (!strncmp(*s, "last", 4)) { *s += 4; return RWKV_SELECT_LAST; }
    return parse_nonneg(s);
}

static rwkv_status parse_list(rwkv_positions *p, const char *spec) {
    int cap = 1;
    for (const char *c = spec; *c; c++) cap += *c == ',';
    p->ranges = rwkv_calloc((size_t)cap * 2, sizeof *p->ranges, "position list");
    if (!p->ranges) return RWKV_ERR_NOMEM;
    const char *s = spec;
    while (1) {
        int64_t lo = parse_bound(&s), hi = lo;
        if (lo >= 0 && *s == '-') {
            s++;
            hi = parse_bound(&s);
        }
        if (lo < 0 || hi < lo || (*s && *s != ',')) { // "last-5" is reversed too (LAST is the largest)
            rwkv_select_positions_free(p);
            return rwkv_error_set(RWKV_ERR_ARG,
                                  "--positions: '%s' is not all, last, every:N or a list like 0,5,10-20,last", spec);
        }
        p->ranges[2 * p->n_ranges] = lo;
        p->ranges[2 * p->n_ranges + 1] = hi;
        p->n_ranges++;
        if (!*s) break;
        s++;
    }
    qsort(p->ranges, (size_t)p->n_ranges, 2 * sizeof *p->ranges, cmp_range);
    return RWKV_OK;
}

rwkv_status rwkv_select_positions(rwkv_positions *p, const char *spec) {
    memset(p, 0, sizeof *p);
    if (!spec || !strcmp(spec, "all")) return RWKV_OK;
    if (!strcmp(spec, "last")) {
        p->kind = RWKV_POS_LAST;
        return RWKV_OK;
    }
    if (!strncmp(spec, "every:", 6)) {
        const char *s = spec + 6;
        p->kind = RWKV_POS_EVERY;
        p->every = parse_nonneg(&s);
        if (p->every < 1 || *s)
            return rwkv_error_set(RWKV_ERR_ARG, "--positions: '%s': every:N needs an integer N >= 1", spec);
        return RWKV_OK;
    }
    p->kind = RWKV_POS_LIST;
    return parse_list(p, spec);
}

void rwkv_select_positions_free(rwkv_positions *p) {
    if (!p) return;
    free(p->ranges);
    p->ranges = NULL;
    p->n_ranges = 0;
}

int rwkv_select_has(const rwkv_positions *p, int64_t pos, int64_t T) {
    switch (p->kind) {
    case RWKV_POS_ALL: return 1;
    case RWKV_POS_LAST: return pos == T - 1;
    case RWKV_POS_EVERY: return pos % p->every == 0;
    case RWKV_POS_LIST:
        for (int i = 0; i < p->n_ranges; i++) { // "last" bounds resolve against this T
            int64_t lo = p->ranges[2 * i] == RWKV_SELECT_LAST ? T - 1 : p->ranges[2 * i];
            int64_t hi = p->ranges[2 * i + 1] == RWKV_SELECT_LAST ? T - 1 : p->ranges[2 * i + 1];
            if (lo <= pos && pos <= hi) return 1;
        }
        return 0;
    }
    return 0;
}
