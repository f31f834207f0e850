// sequences.h: a list of token sequences (each with its prompt text, when it had one) and the
// driver that dumps them one after another into one file. Reading them from a file is
// datasets/reader.h's job; the CLI's single-input options build a one-item list.
#ifndef RWKV_SEQUENCES_H
#define RWKV_SEQUENCES_H

#include "dump.h"

typedef struct {
    int *ids;     // (n)
    int64_t n;
    char *text;   // the prompt when it was text, else NULL
} rwkv_sequence;

typedef struct {
    rwkv_sequence *items; // (n)
    int n;
    int has_text;         // some sequence came from text
    char tokenizer[256];  // spec used ("" for token ids only)
} rwkv_sequences;

// Appends ids (n, taken over: freed on failure too) and a copy of text (NULL = none).
rwkv_status rwkv_sequences_push(rwkv_sequences *s, int *ids, int64_t n, const char *text);
// Checks every id of every sequence is in [0, n_vocab); where names the source in messages.
rwkv_status rwkv_sequences_check_vocab(const rwkv_sequences *s, int n_vocab, const char *where);
void rwkv_sequences_free(rwkv_sequences *s);

// Called after each sequence (i from 0) of a multi-sequence run; ctx is the caller's.
typedef void (*rwkv_sequences_progress)(void *ctx, int i, int n, int64_t n_tokens);

typedef struct {
    int max_T;                         // tokens per forward call
    const rwkv_state *init;            // every sequence starts here (NULL = the zero state)
    const char *const *interventions;  // (n_interventions) specs (docs/interventions.md),
    int n_interventions;               //   positions counted within each sequence
    rwkv_sequences_progress progress;  // NULL = quiet
    void *progress_ctx;
} rwkv_dump_sequences_opts;

// Dumps every sequence of seqs to path with the taps of mask (L + 1) at pos. A stopped
// dump (opts->cancel) is closed with what was run and returns RWKV_ERR_INTERRUPTED.
rwkv_status rwkv_dump_sequences(const char *path, const rwkv_model *m, const rwkv_sequences *seqs,
                                const uint32_t *mask, const rwkv_positions *pos, const rwkv_dump_opts *opts,
                                const rwkv_dump_sequences_opts *so);

#endif
