// intervene.h: causal interventions on the forward pass, in both modes.
//
// An intervention is written TAP[:CHANNELS]@POSITIONS=OP (docs/interventions.md):
//   TAP        blocks.<l>.<tap> (resid_in, att_gate, state_num, ...) or a global, resid_out | logits
//   CHANNELS   a list of channels and inclusive ranges "0-63" or "1,5,9" (default: all)
//   POSITIONS  a list of positions, ranges "10-20", "last", or "*" (every position)
//   OP         zero | scale:a | add:VECTOR.h5[:alpha] | set:VALUE | patch:DUMP.h5[:seq]
// A computed tap's change affects the rest of its block; a state tap's change at position p is
// the state carried into p + 1. `zero` on state_max sets the empty value RWKV_MAX_INIT, so
// zeroing all five state vectors of a layer restarts that layer's state.
//
// Life cycle: rwkv_intervene_parse (syntax only) -> rwkv_intervene_bind (checks ranges against
// the model and the sequence length, reads the vector or dump) -> rwkv_intervene_list_add ->
// rwkv_intervene_forward (runs the model applying every item, chained to another hook).
#ifndef RWKV_INTERVENE_H
#define RWKV_INTERVENE_H

#include "../compute/forward.h"

#define RWKV_IV_SPEC_MAX 512  // longest spec kept for messages
#define RWKV_IV_MAX_RANGES 64 // channel or position ranges per spec
#define RWKV_IV_LAST (-1)     // a range bound meaning "the last position"

typedef enum { RWKV_IV_ZERO, RWKV_IV_SCALE, RWKV_IV_ADD, RWKV_IV_SET, RWKV_IV_PATCH } rwkv_iv_op;
extern const char *const RWKV_IV_OP_NAMES[]; // "zero", "scale", "add", "set", "patch"

typedef struct {
    int64_t lo, hi; // inclusive; RWKV_IV_LAST stands for T - 1
} rwkv_iv_range;

typedef struct {
    char spec[RWKV_IV_SPEC_MAX]; // the text as given, quoted in every message
    int layer;                   // block index, or -1 for the globals resid_out and logits
    rwkv_tap tap;
    int n_chan;                  // ranges in chan; 0 = every channel
    rwkv_iv_range chan[RWKV_IV_MAX_RANGES];
    int n_pos;                   // ranges in pos; 0 = every position ("*")
    rwkv_iv_range pos[RWKV_IV_MAX_RANGES];
    rwkv_iv_op op;
    double value;                // a of scale, VALUE of set, alpha of add (default 1)
    char path[1024];             // the vector file of add, the dump of patch
    int seq;                     // patch: sequence index in the dump (default 0)
    // Filled by bind (or by the caller for an in-memory patch, see rwkv_intervene_bind_src):
    int D;                       // width of the tap
    int64_t T;                   // length of the sequence the positions refer to
    uint8_t *chan_mask;          // (D) 1 where the op applies
    uint8_t *pos_mask;           // (T) 1 at the positions the op applies to
    rwkv_real *vec;              // (D) add: alpha * vector
    rwkv_real *src;              // (T, D) patch: the source run's rows at this tap
    int src_owned;               // 1 if src is freed with the intervention
} rwkv_intervention;

// Parses one spec (syntax only). Errors are RWKV_ERR_ARG quoting the offending part, e.g.
// "position '3x' in 'blocks.2.att_gate@3x=zero': expected N, A-B, last or *".
rwkv_status rwkv_intervene_parse(rwkv_intervention *iv, const char *spec);
// Checks layer, channels and positions against cfg and a sequence of T tokens, and reads the
// vector (add) or the dump rows (patch). Release with rwkv_intervene_release.
rwkv_status rwkv_intervene_bind(rwkv_intervention *iv, rwkv_config cfg, int64_t T);
// Like bind for a patch whose source rows (T, D) are already in memory (not copied, not owned).
rwkv_status rwkv_intervene_bind_src(rwkv_intervention *iv, rwkv_config cfg, int64_t T,
                                    rwkv_real *src);
void rwkv_intervene_release(rwkv_intervention *iv);
// A list in the CHANNELS / POSITIONS syntax ("1,5-9,last", "*") over indices [0, n) into
// mask (n); what ("position", "layer") names the items in messages; `last` only if allow_last.
rwkv_status rwkv_intervene_index_list(uint8_t *mask, int64_t n, const char *list, const char *what, int allow_last);
// Applies iv to rows (n, D) of positions pos .. pos + n - 1 (the hook's arguments).
void rwkv_intervene_apply(const rwkv_intervention *iv, int64_t pos, int n, rwkv_real *data);

// A set of bound interventions and the hook that applies them, then calls `next` (a dump or
// recorder sees the values the model used).
typedef struct {
    rwkv_config cfg;
    rwkv_intervention *items; // (n) owned
    int n, cap;
    uint32_t *mask;           // (L + 1) taps of the items and of next
    rwkv_hook hook;           // give &list->hook to the forward pass (rwkv_intervene_forward does)
    rwkv_hook *next;          // chained hook or NULL
} rwkv_intervene_list;

rwkv_status rwkv_intervene_list_alloc(rwkv_intervene_list **out, rwkv_config cfg);
void rwkv_intervene_list_free(rwkv_intervene_list *l);
// Takes ownership of a bound intervention (iv is cleared).
rwkv_status rwkv_intervene_list_add(rwkv_intervene_list *l, rwkv_intervention *iv);
// A list of n specs, each parsed and bound to cfg and a sequence of T tokens.
rwkv_status rwkv_intervene_list_from_specs(rwkv_intervene_list **out, rwkv_config cfg, int64_t T,
                                           const char *const *specs, int n);
// Removes (and releases) every item; the chained hook stays.
void rwkv_intervene_list_clear(rwkv_intervene_list *l);
// Chains a hook called after the interventions at the taps in its mask (NULL to unchain).
void rwkv_intervene_list_chain(rwkv_intervene_list *l, rwkv_hook *next);

// Runs tokens (positions pos0 .. pos0 + T - 1 of their sequence) from state, applying the
// list (may be NULL or empty). seq selects the sequential mode. The parallel mode keeps the
// chunks of a run without interventions (a state intervention stops only the WKV scan, see
// rwkv_hook), so no-op ops (scale:1, add:0, patching a run into itself) change no bit in
// either mode. logits and mode as in rwkv_forward_par.
rwkv_status rwkv_intervene_forward(const rwkv_model *m, rwkv_state *state, const int *tokens,
                                   int64_t T, int64_t pos0, rwkv_real *logits,
                                   rwkv_logits_mode mode, rwkv_intervene_list *l,
                                   rwkv_workspace *ws, int seq);

#endif
