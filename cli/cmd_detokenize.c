// cmd_detokenize.c: rwkvscope detokenize: token ids back to the exact bytes.
#include "cli.h"
#include "input.h"
#include "options.h"

#include <stdlib.h>
#include <string.h>

const char cmd_detokenize_summary[] = "decode token ids back into the exact bytes of the text";

static void usage(FILE *f) {
    fprintf(f, "usage: rwkvscope detokenize --tokenizer SPEC --tokens LIST\n\n"
           "%s.\n\n"
           "  --tokenizer SPEC  neox:PATH (a Hugging Face tokenizer.json), world:PATH\n"
           "                    (rwkv_vocab_v20230424.txt) or bytes\n"
           "  --tokens LIST     comma-separated ids, e.g. 12092,1533\n\n"
           "The bytes go to stdout exactly, with no newline added; special tokens such as\n"
           "<|endoftext|> are written out as their text.\n"
           "Example: rwkvscope detokenize --tokenizer neox:tests/fixtures/20B_tokenizer.json --tokens 12092,1533\n",
           cmd_detokenize_summary);
}

int cmd_detokenize(int argc, char **argv) {
    static const struct option OPTS[] = {{"tokenizer", required_argument, NULL, CLI_OPT_TOKENIZER},
                                         {"tokens", required_argument, NULL, CLI_OPT_TOKENS}, CLI_OPTIONS_END};
    const char *cmd = "detokenize";
    cli_input in = {0};
    cli_parser p = {.cmd = cmd, .help = usage, .opts = OPTS, .in = &in};
    const char *v;
    while (cli_opt_next(&p, argc, argv, &v) != -1) {}
    if (p.status) return cli_opt_exit(p.status);
    const char *spec = in.tokenizer, *list = in.tokens;
    if (!spec) return cli_usage_error(cmd, "--tokenizer SPEC is required");
    if (!list) return cli_usage_error(cmd, "--tokens LIST is required");
    int *ids = NULL;
    size_t n = 0, len;
    char *text = NULL;
    rwkv_tokenizer *tok = NULL;
    rwkv_status st = cli_parse_id_list(list, &ids, &n);
    if (!st) st = rwkv_tokenizer_load(&tok, spec);
    if (!st) st = rwkv_tokenizer_decode(tok, ids, n, &text, &len);
    if (!st) fwrite(text, 1, len, stdout);
    free(ids);
    free(text);
    rwkv_tokenizer_free(tok);
    return st ? cli_fail(cmd, st, "ids must be comma-separated and inside the tokenizer's vocabulary") : CLI_OK;
}
