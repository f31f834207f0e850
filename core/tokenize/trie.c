// trie.c: a byte trie built from sorted keys, then frozen into flat arrays. Nodes with
// many children get a dense 256-entry table (one load per byte); the rest keep a short
// sorted edge list scanned linearly. The World vocabulary (65k keys) takes a few MB.
#include "trie.h"

#include <stdlib.h>
#include <string.h>

#define TRIE_DENSE_MIN 8 // children at which a node switches to a dense table

typedef struct {
    int32_t value;    // key's value, or -1
    int32_t dense;    // index of the node's 256-entry table, or -1
    uint32_t edge_off; // first edge in edge_byte/edge_child when dense < 0
    uint32_t n_edges;
} trie_node;

struct rwkv_trie {
    trie_node *nodes;      // (n_nodes)
    unsigned char *edge_byte; // (n_edges)
    int32_t *edge_child;   // (n_edges)
    int32_t *dense;        // (n_dense, 256): child per byte or -1
    unsigned char first[32]; // bit set of the first bytes of all keys
    int32_t *depth2;       // (65536) node reached by the first two bytes b0<<8|b1, or -1
    int32_t depth1[256];   // node reached by the first byte, or -1
};

typedef struct {
    const unsigned char *const *keys;
    const size_t *lens;
} sort_ctx;

static _Thread_local sort_ctx sort_keys; // qsort has no context argument in C11

static int key_cmp(const void *a, const void *b) {
    size_t i = *(const size_t *)a, j = *(const size_t *)b;
    size_t li = sort_keys.lens[i], lj = sort_keys.lens[j];
    int c = memcmp(sort_keys.keys[i], sort_keys.keys[j], li < lj ? li : lj);
    if (c) return c;
    if (li != lj) return li < lj ? -1 : 1;
    return i < j ? -1 : (i > j); // stable: the first copy of a duplicate comes first
}

void rwkv_trie_free(rwkv_trie *t) {
    if (!t) return;
    free(t->nodes);
    free(t->edge_byte);
    free(t->edge_child);
    free(t->dense);
    free(t->depth2);
    free(t);
}

// Builds first_child/next_sibling lists in DFS order from the sorted keys.
static rwkv_status build_lists(rwkv_trie *t, const unsigned char *const *keys, const size_t *lens,
                               const int *values, const size_t *order, size_t n, int32_t *first_child,
                               int32_t *next_sib, unsigned char *byte, size_t *n_nodes, long *dup) {
    size_t maxlen = 0;
    for (size_t i = 0; i < n; i++) maxlen = lens[i] > maxlen ? lens[i] : maxlen;
    int32_t *path = rwkv_calloc(maxlen + 1, sizeof *path, "trie path");
    int32_t *last_child = rwkv_calloc(*n_nodes, sizeof *last_child, "trie build");
    if (!path || !last_child) {
        free(path);
        free(last_child);
        return RWKV_ERR_NOMEM;
    }
    size_t count = 1, prev = (size_t)-1;
    path[0] = 0; // the root
    t->nodes[0].value = -1;
    first_child[0] = next_sib[0] = last_child[0] = -1;
    for (size_t r = 0; r < n; r++) {
        size_t k = order[r], len = lens[k], lcp = 0;
        if (prev != (size_t)-1) {
            size_t pl = lens[prev];
            while (lcp < len && lcp < pl && keys[k][lcp] == keys[prev][lcp]) lcp++;
            if (lcp == len && pl == len) {
                *dup = (long)k;
                free(path);
                free(last_child);
                return rwkv_error_set(RWKV_ERR_FORMAT, "key %zu repeats key %zu", k, prev);
            }
        }
        for (size_t d = lcp; d < len; d++) {
            int32_t parent = path[d], node = (int32_t)count++;
            t->nodes[node].value = -1;
            first_child[node] = next_sib[node] = last_child[node] = -1;
            byte[node] = keys[k][d];
            if (last_child[parent] < 0) first_child[parent] = node;
            else next_sib[last_child[parent]] = node;
            last_child[parent] = node;
            path[d + 1] = node;
        }
        t->nodes[path[len]].value = values[k];
        t->first[keys[k][0] >> 3] |= (unsigned char)(1u << (keys[k][0] & 7));
        prev = k;
    }
    *n_nodes = count;
    free(path);
    free(last_child);
    return RWKV_OK;
}

// Lays out each node's children as a dense table or a contiguous edge run.
static rwkv_status freeze(rwkv_trie *t, size_t n_nodes, const int32_t *first_child,
                          const int32_t *next_sib, const unsigned char *byte) {
    size_t n_dense = 0, n_edges = 0;
    for (size_t v = 0; v < n_nodes; v++) {
        uint32_t c = 0;
        for (int32_t ch = first_child[v]; ch >= 0; ch = next_sib[ch]) c++;
        t->nodes[v].n_edges = c;
        if (c >= TRIE_DENSE_MIN) n_dense++;
        else n_edges += c;
    }
    t->edge_byte = rwkv_calloc(n_edges, 1, "trie edges");
    t->edge_child = rwkv_calloc(n_edges, sizeof *t->edge_child, "trie edges");
    t->dense = rwkv_calloc(n_dense * 256, sizeof *t->dense, "trie tables");
    if (!t->edge_byte || !t->edge_child || !t->dense) return RWKV_ERR_NOMEM;
    size_t e = 0, d = 0;
    for (size_t v = 0; v < n_nodes; v++) {
        trie_node *nd = &t->nodes[v];
        nd->dense = -1;
        if (nd->n_edges >= TRIE_DENSE_MIN) {
            nd->dense = (int32_t)d;
            int32_t *tab = t->dense + d++ * 256;
            for (int b = 0; b < 256; b++) tab[b] = -1;
            for (int32_t ch = first_child[v]; ch >= 0; ch = next_sib[ch]) tab[byte[ch]] = ch;
        } else {
            nd->edge_off = (uint32_t)e;
            for (int32_t ch = first_child[v]; ch >= 0; ch = next_sib[ch]) {
                t->edge_byte[e] = byte[ch];
                t->edge_child[e++] = ch;
            }
        }
    }
    return RWKV_OK;
}

static inline int32_t step(const rwkv_trie *t, const trie_node *nd, unsigned char b) {
    if (nd->dense >= 0) return t->dense[(size_t)nd->dense * 256 + b];
    const unsigned char *eb = t->edge_byte + nd->edge_off;
    for (uint32_t i = 0; i < nd->n_edges; i++)
        if (eb[i] == b) return t->edge_child[nd->edge_off + i];
    return -1;
}

// The first two levels as direct tables: most matches start with two dependent loads less.
static rwkv_status index_top(rwkv_trie *t) {
    if (!(t->depth2 = rwkv_calloc(65536, sizeof *t->depth2, "trie index"))) return RWKV_ERR_NOMEM;
    for (int b0 = 0; b0 < 256; b0++) {
        int32_t c = t->depth1[b0] = step(t, &t->nodes[0], (unsigned char)b0);
        for (int b1 = 0; b1 < 256; b1++) t->depth2[b0 << 8 | b1] = c < 0 ? -1 : step(t, &t->nodes[c], (unsigned char)b1);
    }
    return RWKV_OK;
}

rwkv_status rwkv_trie_build(rwkv_trie **out, const unsigned char *const *keys, const size_t *lens,
                            const int *values, size_t n, long *dup) {
    *out = NULL;
    *dup = -1;
    size_t total = 1;
    for (size_t i = 0; i < n; i++) {
        if (!lens[i]) return rwkv_error_set(RWKV_ERR_FORMAT, "key %zu is empty", i);
        total += lens[i];
    }
    if (total > INT32_MAX) return rwkv_error_set(RWKV_ERR_UNSUPPORTED, "trie too large (%zu bytes of keys)", total);
    rwkv_trie *t = rwkv_calloc(1, sizeof *t, "trie");
    size_t *order = rwkv_calloc(n, sizeof *order, "trie order");
    int32_t *first_child = rwkv_calloc(total, sizeof *first_child, "trie build");
    int32_t *next_sib = rwkv_calloc(total, sizeof *next_sib, "trie build");
    unsigned char *byte = rwkv_calloc(total, 1, "trie build");
    rwkv_status st = RWKV_ERR_NOMEM;
    if (t && order && first_child && next_sib && byte &&
        (t->nodes = rwkv_calloc(total, sizeof *t->nodes, "trie nodes"))) {
        for (size_t i = 0; i < n; i++) order[i] = i;
        sort_keys = (sort_ctx){keys, lens};
        qsort(order, n, sizeof *order, key_cmp);
        size_t n_nodes = total;
        st = build_lists(t, keys, lens, values, order, n, first_child, next_sib, byte, &n_nodes, dup);
        if (!st) st = freeze(t, n_nodes, first_child, next_sib, byte);
        if (!st) st = index_top(t);
    }
    free(order);
    free(first_child);
    free(next_sib);
    free(byte);
    if (st) {
        rwkv_trie_free(t);
        return st;
    }
    *out = t;
    return RWKV_OK;
}

int rwkv_trie_longest(const rwkv_trie *t, const unsigned char *s, size_t len, size_t *mlen) {
    *mlen = 0;
    if (!len) return -1;
    int32_t c1 = t->depth1[s[0]];
    if (c1 < 0) return -1;
    int best = t->nodes[c1].value;
    size_t best_len = best >= 0;
    int32_t c2 = len >= 2 ? t->depth2[s[0] << 8 | s[1]] : -1;
    if (c2 >= 0) {
        const trie_node *nd = &t->nodes[c2];
        if (nd->value >= 0) best = nd->value, best_len = 2;
        for (size_t i = 2; i < len; i++) {
            int32_t ch = step(t, nd, s[i]);
            if (ch < 0) break;
            nd = &t->nodes[ch];
            if (nd->value >= 0) best = nd->value, best_len = i + 1;
        }
    }
    *mlen = best_len;
    return best;
}

int rwkv_trie_starts(const rwkv_trie *t, unsigned char b) { return (t->first[b >> 3] >> (b & 7)) & 1; }
