// trie.c: a byte trie built from sorted keys, then frozen into one flat node array in
// breadth-first order, so that the children of a node are contiguous. A node with up to 7
// children packs their bytes into one word (found with a SWAR byte compare); a node with
// more has a dense 256-entry table of child offsets. The first two levels are also direct
// tables. One step is then one dependent load. The World vocabulary (65k keys, 116k
// nodes) takes about 2.5 MB.
#include "trie.h"

#include <stdlib.h>
#include <string.h>

#define TRIE_SPARSE_MAX 7    // children packed in a node's word; more get a dense table
#define TRIE_DENSE_TAG 0xFFu // top byte of `bytes` for a dense node
#define ONES 0x0101010101010101ull
#define HIGHS 0x8080808080808080ull

typedef struct {
    int32_t value;  // the key's value, or -1
    int32_t first;  // index of the first child (children are contiguous, in byte order), or -1
    uint64_t bytes; // sparse: child bytes in the low n bytes, n in the top byte;
                    // dense: TRIE_DENSE_TAG in the top byte, the table index in the low 32 bits
} trie_node;

struct rwkv_trie {
    trie_node *nodes;        // (n_nodes)
    int16_t *dense;          // (n_dense, 256): child offset from `first`, or -1
    int32_t depth1[256];     // node reached by the first byte, or -1
    int32_t *depth2;         // (65536) node reached by the first two bytes b0<<8|b1, or -1
    unsigned char first[32]; // bit set of the first bytes of all keys
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
    free(t->dense);
    free(t->depth2);
    free(t);
}

// The trie while it is built: first-child / next-sibling lists, children in byte order.
typedef struct {
    int32_t *value, *first_child, *next_sib, *last_child;
    unsigned char *byte;
    size_t n;
} build_trie;

// Inserts the sorted keys; each new node is appended as the last child of its parent.
static rwkv_status build_lists(build_trie *b, rwkv_trie *t, const unsigned char *const *keys, const size_t *lens,
                               const int *values, const size_t *order, size_t n, long *dup) {
    size_t maxlen = 0;
    for (size_t i = 0; i < n; i++) maxlen = lens[i] > maxlen ? lens[i] : maxlen;
    int32_t *path = rwkv_calloc(maxlen + 1, sizeof *path, "trie path");
    if (!path) return RWKV_ERR_NOMEM;
    size_t count = 1, prev = (size_t)-1;
    path[0] = 0; // the root
    b->value[0] = b->first_child[0] = b->next_sib[0] = b->last_child[0] = -1;
    for (size_t r = 0; r < n; r++) {
        size_t k = order[r], len = lens[k], lcp = 0;
        if (prev != (size_t)-1) {
            size_t pl = lens[prev];
            while (lcp < len && lcp < pl && keys[k][lcp] == keys[prev][lcp]) lcp++;
            if (lcp == len && pl == len) {
                *dup = (long)k;
                free(path);
                return rwkv_error_set(RWKV_ERR_FORMAT, "key %zu repeats key %zu", k, prev);
            }
        }
        for (size_t d = lcp; d < len; d++) {
            int32_t parent = path[d], node = (int32_t)count++;
            b->value[node] = b->first_child[node] = b->next_sib[node] = b->last_child[node] = -1;
            b->byte[node] = keys[k][d];
            if (b->last_child[parent] < 0)
                b->first_child[parent] = node;
            else
                b->next_sib[b->last_child[parent]] = node;
            b->last_child[parent] = node;
            path[d + 1] = node;
        }
        b->value[path[len]] = values[k];
        t->first[keys[k][0] >> 3] |= (unsigned char)(1u << (keys[k][0] & 7));
        prev = k;
    }
    b->n = count;
    free(path);
    return RWKV_OK;
}

// Renumbers the nodes breadth-first (children contiguous) and packs each node's children.
static rwkv_status freeze(rwkv_trie *t, const build_trie *b) {
    int32_t *order = rwkv_calloc(b->n, sizeof *order, "trie order"); // new index -> build index
    t->nodes = rwkv_calloc(b->n, sizeof *t->nodes, "trie nodes");
    size_t n_dense = 0;
    for (size_t v = 0; v < b->n; v++) {
        size_t c = 0;
        for (int32_t ch = b->first_child[v]; ch >= 0; ch = b->next_sib[ch]) c++;
        n_dense += c > TRIE_SPARSE_MAX;
    }
    t->dense = rwkv_calloc(n_dense * 256, sizeof *t->dense, "trie tables");
    if (!order || !t->nodes || !t->dense) {
        free(order);
        return RWKV_ERR_NOMEM;
    }
    size_t next = 1, d = 0;
    order[0] = 0;
    for (size_t i = 0; i < b->n; i++) {
        int32_t u = order[i];
        trie_node *nd = &t->nodes[i];
        nd->value = b->value[u];
        nd->first = b->first_child[u] >= 0 ? (int32_t)next : -1;
        uint64_t c = 0, packed = 0;
        for (int32_t ch = b->first_child[u]; ch >= 0; ch = b->next_sib[ch], c++) {
            if (c < 8) packed |= (uint64_t)b->byte[ch] << (8 * c);
            order[next++] = ch;
        }
        if (c <= TRIE_SPARSE_MAX) {
            nd->bytes = packed | c << 56;
        } else {
            int16_t *tab = t->dense + d * 256;
            for (int k = 0; k < 256; k++) tab[k] = -1;
            int16_t off = 0;
            for (int32_t ch = b->first_child[u]; ch >= 0; ch = b->next_sib[ch]) tab[b->byte[ch]] = off++;
            nd->bytes = (uint64_t)TRIE_DENSE_TAG << 56 | d++;
        }
    }
    free(order);
    return RWKV_OK;
}

// The child of nd by byte c, or -1.
static inline int32_t step(const rwkv_trie *t, const trie_node *nd, unsigned char c) {
    unsigned n = (unsigned)(nd->bytes >> 56);
    if (n == TRIE_DENSE_TAG) {
        int off = t->dense[(nd->bytes & 0xFFFFFFFFu) * 256 + c];
        return off < 0 ? -1 : nd->first + off;
    }
    uint64_t x = nd->bytes ^ (ONES * c);  // a zero byte where a child byte equals c
    uint64_t z = (x - ONES) & ~x & HIGHS; // its lowest set bit marks the first zero byte
    if (!z) return -1;
    unsigned k = (unsigned)__builtin_ctzll(z) >> 3;
    return k < n ? nd->first + (int32_t)k : -1;
}

static rwkv_status index_top(rwkv_trie *t) {
    if (!(t->depth2 = rwkv_calloc(65536, sizeof *t->depth2, "trie index"))) return RWKV_ERR_NOMEM;
    for (int b0 = 0; b0 < 256; b0++) {
        int32_t c = t->depth1[b0] = step(t, &t->nodes[0], (unsigned char)b0);
        for (int b1 = 0; b1 < 256; b1++)
            t->depth2[b0 << 8 | b1] = c < 0 ? -1 : step(t, &t->nodes[c], (unsigned char)b1);
    }
    return RWKV_OK;
}

rwkv_status rwkv_trie_build(rwkv_trie **out, const unsigned char *const *keys, const size_t *lens, const int *values,
                            size_t n, long *dup) {
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
    build_trie b = {rwkv_calloc(total, sizeof(int32_t), "trie build"),
                    rwkv_calloc(total, sizeof(int32_t), "trie build"),
                    rwkv_calloc(total, sizeof(int32_t), "trie build"),
                    rwkv_calloc(total, sizeof(int32_t), "trie build"),
                    rwkv_calloc(total, 1, "trie build"),
                    0};
    rwkv_status st = RWKV_ERR_NOMEM;
    if (t && order && b.value && b.first_child && b.next_sib && b.last_child && b.byte) {
        for (size_t i = 0; i < n; i++) order[i] = i;
        sort_keys = (sort_ctx){keys, lens};
        qsort(order, n, sizeof *order, key_cmp);
        st = build_lists(&b, t, keys, lens, values, order, n, dup);
        if (!st) st = freeze(t, &b);
        if (!st) st = index_top(t);
    }
    free(order);
    free(b.value);
    free(b.first_child);
    free(b.next_sib);
    free(b.last_child);
    free(b.byte);
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
