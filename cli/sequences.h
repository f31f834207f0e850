// sequences.h: the inputs of dump, compare and state: one sequence from the single-input
// options (cli/input.h), or many from --input FILE (datasets/prompts.h: one prompt per
// line, or JSONL objects with a "text" or a "tokens" field).
#ifndef RWKV_CLI_SEQUENCES_H
#define RWKV_CLI_SEQUENCES_H

#include "input.h"

#include "core/inspect/sequences.h"

#define CLI_SEQUENCES_HELP                                                                         \
    CLI_INPUT_HELP                                                                                 \
    "  --input FILE         many sequences (- for stdin): one prompt per line, or JSONL lines\n"                 \
    "                       {\"text\": \"...\"} or {\"tokens\": [1, 2, 3]}\n"

// Produces the sequences of `in` or of input_file (exactly one of them), ids < n_vocab.
rwkv_status cli_sequences_read(rwkv_sequences *out, const cli_input *in, const char *input_file, int n_vocab);

// A progress callback (rwkv_sequences_progress) printing "  sequence i/n (T tokens)" to
// stderr when there is more than one sequence.
void cli_sequences_progress(void *ctx, int i, int n, int64_t n_tokens);

#endif
