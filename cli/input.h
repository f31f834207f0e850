// input.h: the input options every model command shares:
//   --tokens 1,2,3 | --bytes TEXT | --text TEXT --tokenizer SPEC | --file PATH [--tokenizer SPEC]
// Without --tokenizer, --text and --file use the model's metadata tokenizer, else bytes.
#ifndef RWKV_CLI_INPUT_H
#define RWKV_CLI_INPUT_H

#include "core/model/model.h"
#include "core/tokenize/tokenizer.h"

typedef struct {
    const char *tokens, *bytes, *text, *file, *tokenizer;
} cli_input;

#define CLI_INPUT_HELP                                                                             \
    "  --tokens LIST        comma-separated token ids\n"                                           \
    "  --bytes TEXT         the UTF-8 bytes of TEXT as tokens (byte-level models)\n"              \
    "  --text TEXT          TEXT encoded with --tokenizer\n"                                       \
    "  --file PATH          the contents of PATH (- for stdin) encoded with --tokenizer\n"                    \
    "  --tokenizer SPEC     neox:tokenizer.json | world:vocab.txt | bytes (default: bytes)\n"

// 1 if some input was given.
int cli_input_given(const cli_input *in);
// Produces the token ids (malloc'd) and checks them against n_vocab (0 = no check).
// If tok_out is not NULL it receives the tokenizer (caller frees), or NULL for --tokens.
rwkv_status cli_input_tokens(const cli_input *in, int n_vocab, int **ids, size_t *n,
                             rwkv_tokenizer **tok_out);
// A hint for the error of the last cli_input_tokens (or cli_sequences_read) that matches its
// cause (a bad --tokens list, an unreadable --file, a token outside the vocabulary...), or
// NULL when the message says it all; cli_input_set_hint sets it.
const char *cli_input_hint(void);
void cli_input_set_hint(const char *hint);
#define CLI_HINT_VOCAB "token ids must be below the model's vocabulary size (n_vocab in 'rwkvscope info MODEL')"
// Parses "1,2,3" into malloc'd ids.
rwkv_status cli_parse_id_list(const char *s, int **ids, size_t *n);

#endif
