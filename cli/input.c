// input.c: token input shared by run, generate, dump and the analyses.
#include "input.h"

#include "cli.h"
#include "core/base/file.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>



static const char *input_hint; // why the last cli_input_tokens failed, as a hint; NULL: none

const char *cli_input_hint(void) { return input_hint; }

void cli_input_set_hint(const char *hint) { input_hint = hint; }

// st, with hint as the hint when st is an error.
static rwkv_status hinted(rwkv_status st, const char *hint) {
    if (st) input_hint = hint;
    return st;
}

int cli_input_given(const cli_input *in) { return in->tokens || in->bytes || in->text || in->file; }

rwkv_status cli_parse_id_list(const char *s, int **ids, size_t *n) {
    *ids = NULL;
    *n = 0;
    size_t cap = 1;
    for (const char *p = s; *p; p++) cap += *p == ',';
    int *out = rwkv_calloc(cap, sizeof *out, "token list");
    if (!out) return RWKV_ERR_NOMEM;
    const char *p = s;
    size_t k = 0;
    while (*p) {
        char *end;
        errno = 0;
        long v = strtol(p, &end, 10);
        if (end == p || errno || v < 0 || v > INT32_MAX || (*end && *end != ',')) {
            free(out);
            return rwkv_error_set(RWKV_ERR_ARG, "--tokens: '%s' is not a comma-separated list of ids (at '%.20s')", s, p);
        }
        out[k++] = (int)v;
        p = *end ? end + 1 : end;
    }
    if (!k) {
        free(out);
        return rwkv_error_set(RWKV_ERR_ARG, "--tokens: empty list");
    }
    *ids = out;
    *n = k;
    return RWKV_OK;
}

rwkv_status cli_input_tokens(const cli_input *in, int n_vocab, int **ids, size_t *n,
                             rwkv_tokenizer **tok_out) {
    *ids = NULL;
    *n = 0;
    input_hint = NULL;
    if (tok_out) *tok_out = NULL;
    int given = !!in->tokens + !!in->bytes + !!in->text + !!in->file;
    if (given != 1)
        return rwkv_error_set(RWKV_ERR_ARG, "give exactly one of --tokens, --bytes, --text, --file");
    rwkv_status st;
    if (in->tokens) {
        st = hinted(cli_parse_id_list(in->tokens, ids, n), "--tokens takes comma-separated ids, e.g. --tokens 1,2,3");
    } else {
        const char *spec = in->bytes ? "bytes" : (in->tokenizer ? in->tokenizer : "bytes");
        rwkv_tokenizer *tok;
        if ((st = rwkv_tokenizer_load(&tok, spec)))
            return hinted(st, "--tokenizer takes neox:tokenizer.json, world:rwkv_vocab_v20230424.txt or bytes");
        unsigned char *file = NULL;
        size_t len = 0;
        const char *src = in->bytes ? in->bytes : in->text;
        if (in->file) st = hinted(rwkv_file_read(in->file, &file, &len), "check the --file path (- reads stdin)");
        else len = strlen(src);
        const char *buf = (const char *)file;
        if (!st && (in->file ? len : strlen(src)) == 0)
            st = rwkv_error_set(RWKV_ERR_ARG, "the input is empty");
        if (!st) st = rwkv_tokenizer_encode(tok, buf ? buf : src, len, ids, n);
        if (!st && *n == 0) st = rwkv_error_set(RWKV_ERR_ARG, "the input encodes to no tokens");
        free(file);
        if (!st && n_vocab > 0)
            st = hinted(rwkv_tokenizer_check_vocab(tok, n_vocab), "give --tokenizer the model's own tokenizer "
                                                                   "('rwkvscope info MODEL' names it)");
        if (!st && tok_out) *tok_out = tok;
        else rwkv_tokenizer_free(tok);
    }
    if (!st && n_vocab > 0)
        for (size_t i = 0; i < *n; i++)
            if ((*ids)[i] >= n_vocab) {
                st = hinted(rwkv_error_set(RWKV_ERR_ARG, "token %d at position %zu is outside the model's vocabulary [0, %d)",
                                           (*ids)[i], i, n_vocab), CLI_HINT_VOCAB);
                break;
            }
    if (st) {
        free(*ids);
        *ids = NULL;
        *n = 0;
    }
    return st;
}
