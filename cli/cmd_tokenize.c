// cmd_tokenize.c: rwkvscope tokenize: text to token ids (or pieces) with a tokenizer SPEC.
#include "cli.h"
#include "input.h"
#include "options.h"

#include <stdlib.h>
#include <string.h>

const char cmd_tokenize_summary[] = "encode text into token ids with a tokenizer (neox, world or bytes)";

static void usage(FILE *f) {
    fprintf(f, "usage: rwkvscope tokenize --tokenizer SPEC (--text TEXT | --file PATH) [--ids | --pieces]\n\n"
           "%s.\n\n"
           "  --tokenizer SPEC  neox:PATH (a Hugging Face tokenizer.json, e.g. 20B_tokenizer.json),\n"
           "                    world:PATH (rwkv_vocab_v20230424.txt) or bytes\n"
           "  --text TEXT       the text to encode\n"
           "  --file PATH       encode the exact bytes of PATH (- for stdin) instead\n"
           "  --ids             print the ids comma-separated on one line (the default; --tokens takes it)\n"
           "  --pieces          print one token per line: its id, a tab and its bytes quoted, with\n"
           "                    \\n, \\t, \\\\, \\\" and \\xHH for bytes that are not printable UTF-8\n\n"
           "Bytes that are not valid UTF-8 are encoded too (see docs/tokenizers.md).\n"
           "Example: rwkvscope tokenize --tokenizer neox:tests/fixtures/20B_tokenizer.json --text 'Hello world'\n",
           cmd_tokenize_summary);
}

// Prints a piece quoted: printable UTF-8 as is, everything else escaped.
static void print_piece(const unsigned char *p, size_t n) {
    putchar('"');
    for (size_t i = 0; i < n;) {
        unsigned c = p[i];
        size_t k = c < 0x80                  ? 1
                   : (c >= 0xC2 && c < 0xE0) ? 2
                   : (c >= 0xE0 && c < 0xF0) ? 3
                   : (c >= 0xF0 && c < 0xF5) ? 4
                                             : 0;
        for (size_t j = 1; j < k; j++)
            if (i + j >= n || (p[i + j] & 0xC0) != 0x80) k = 0;
        if (c == '\n')
            printf("\\n");
        else if (c == '\t')
            printf("\\t");
        else if (c == '\\' || c == '"')
            printf("\\%c", c);
        else if (k == 1 && c >= 0x20 && c < 0x7F)
            putchar((int)c);
        else if (k > 1)
            fwrite(p + i, 1, k, stdout);
        else
            printf("\\x%02x", c);
        i += k ? k : 1;
    }
    putchar('"');
}

int cmd_tokenize(int argc, char **argv) {
    enum { O_IDS = CLI_OPT_USER, O_PIECES, O_NOT_HERE };
    static const struct option OPTS[] = {
        {"ids", no_argument, NULL, O_IDS}, {"pieces", no_argument, NULL, O_PIECES},
        {"text", required_argument, NULL, CLI_OPT_TEXT}, {"file", required_argument, NULL, CLI_OPT_FILE},
        {"tokenizer", required_argument, NULL, CLI_OPT_TOKENIZER}, {"tokens", required_argument, NULL, O_NOT_HERE},
        {"bytes", required_argument, NULL, O_NOT_HERE}, CLI_OPTIONS_END};
    const char *cmd = "tokenize";
    cli_input in = {0};
    int pieces = 0;
    cli_parser p = {.cmd = cmd, .help = usage, .opts = OPTS, .in = &in};
    const char *v;
    for (int c; (c = cli_opt_next(&p, argc, argv, &v)) != -1;) {
        if (c == O_NOT_HERE) return cli_usage_error(cmd, "--tokens and --bytes are not inputs here: give --text or --file");
        pieces = c == O_PIECES;
    }
    if (p.status) return cli_opt_exit(p.status);
    if (!in.tokenizer) return cli_usage_error(cmd, "--tokenizer SPEC is required");
    if (!!in.text + !!in.file != 1) return cli_usage_error(cmd, "give exactly one of --text or --file");
    int *ids;
    size_t n;
    rwkv_tokenizer *tok;
    rwkv_status st = cli_input_tokens(&in, 0, &ids, &n, &tok);
    if (st) return cli_fail(cmd, st, "check the --tokenizer SPEC (neox:PATH, world:PATH or bytes) and the input");
    for (size_t i = 0; i < n; i++) {
        if (pieces) {
            size_t len;
            const char *p = rwkv_tokenizer_piece(tok, ids[i], &len);
            printf("%d\t", ids[i]);
            print_piece((const unsigned char *)p, len);
            putchar('\n');
        } else {
            printf(i ? ",%d" : "%d", ids[i]);
        }
    }
    if (!pieces) putchar('\n');
    free(ids);
    rwkv_tokenizer_free(tok);
    return CLI_OK;
}
