// sequences.h: the inputs of dump, compare and state: one sequence from the single-input
// options (cli/input.h), or many from --input FILE (one prompt per line, or JSONL objects
// with a "text" or a "tokens" field), and the loop that dumps them.
#ifndef RWKV_CLI_SEQUENCES_H
#define RWKV_CLI_SEQUENCES_H

#include "input.h"
#include "intervene_opts.h"

#include "core/inspect/dump.h"

typedef struct {
    int *ids;     // (n)
    int64_t n;
    char *text;   // the prompt when it was text, else NULL
} cli_sequence;

typedef struct {
    cli_sequence *items; // (n)
    int n;
    int has_text;        // some sequence came from text
    char tokenizer[256]; // spec used ("" for token ids only)
} cli_sequences;

#define CLI_SEQUENCES_HELP                                                                         \
    CLI_INPUT_HELP                                                                                 \
    "  --input FILE         many sequences (- for stdin): one prompt per line, or JSONL lines\n"                 \
    "                       {\"text\": \"...\"} or {\"tokens\": [1, 2, 3]}\n"

// Produces the sequences of `in` or of input_file (exactly one of them), ids < n_vocab.
rwkv_status cli_sequences_read(cli_sequences *out, const cli_input *in, const char *input_file, int n_vocab);
void cli_sequences_free(cli_sequences *s);

// A test-only intervention (RWKVSCOPE_TEST_PERTURB="layer,pos,channel"): adds 1e-2 to
// state_num at that point of every sequence.
typedef struct {
    int layer, channel;
    int64_t pos;
} cli_perturb;
#define CLI_PERTURB_DELTA 1e-2
// Parses RWKVSCOPE_TEST_PERTURB if set; 1 if *p was filled.
int cli_perturb_from_env(cli_perturb *p);

// Dumps every sequence to path, each from `init` (NULL = the zero state). When final is not
// NULL it receives the state after the last sequence. Progress goes to stderr if verbose.
// iv (may be NULL): --intervene specs, bound to each sequence's length in turn.
rwkv_status cli_dump_sequences(const char *path, const rwkv_model *m, const cli_sequences *seqs, const uint32_t *mask,
                               const rwkv_positions *pos, const rwkv_dump_opts *opts, int max_T,
                               const rwkv_state *init, const cli_perturb *perturb, const cli_intervene_opts *iv,
                               int verbose);

#endif
