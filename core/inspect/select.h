// select.h: which taps and which positions an instrumented run captures.
//   Taps: comma-separated glob patterns (fnmatch) over the names "blocks.<l>.<tap>" and the
//   globals "resid_out" and "logits", e.g. "blocks.*.att_gate,blocks.3.state_*,logits".
//   Positions: "all", "last" (the last token of each sequence), "every:N" (0, N, 2N, ...),
//   or a list of positions and inclusive ranges "0,5,10-20", where a bound may be "last"
//   (each sequence's last position), as in --intervene: "0,last", "100-last".
#ifndef RWKV_SELECT_H
#define RWKV_SELECT_H

#include "../compute/forward.h"

// Fills mask (L + 1) for rwkv_hook: bit (1u << tap) of mask[l] for block taps, mask[L] for the
// globals. A pattern that matches nothing is RWKV_ERR_ARG naming the valid names.
rwkv_status rwkv_select_taps(uint32_t *mask, int n_layer, const char *patterns);
// Number of selected (layer, tap) pairs in mask.
int rwkv_select_count(const uint32_t *mask, int n_layer);
// "blocks.<l>.<tap>" or the global's name, into buf.
void rwkv_select_tap_name(char *buf, size_t size, int layer, int n_layer, rwkv_tap tap);

typedef enum { RWKV_POS_ALL, RWKV_POS_LAST, RWKV_POS_EVERY, RWKV_POS_LIST } rwkv_pos_kind;

typedef struct {
    rwkv_pos_kind kind;
    int64_t every;    // N of every:N
    int64_t *ranges;  // (2 * n_ranges) inclusive [lo, hi] pairs of a list, sorted by lo;
                      // RWKV_SELECT_LAST stands for the sequence's last position
    int n_ranges;
} rwkv_positions;

#define RWKV_SELECT_LAST INT64_MAX
// Parses a position spec; p->ranges is malloc'd for lists (free with rwkv_select_positions_free).
rwkv_status rwkv_select_positions(rwkv_positions *p, const char *spec);
void rwkv_select_positions_free(rwkv_positions *p);
// 1 if position pos of a sequence of T tokens is selected.
int rwkv_select_has(const rwkv_positions *p, int64_t pos, int64_t T);

#endif
