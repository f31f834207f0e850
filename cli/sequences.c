// sequences.c: the sequences of the input options.
#include "sequences.h"

#include "core/base/file.h"
#include "datasets/prompts.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static rwkv_status read_file_lines(rwkv_sequences *s, const cli_input *in, const char *path, int n_vocab) {
    const char *spec = in->tokenizer ? in->tokenizer : "bytes";
    rwkv_tokenizer *tok = NULL;
    rwkv_status st = rwkv_tokenizer_load(&tok, spec);
    if (st) {
        cli_input_set_hint("--tokenizer takes neox:tokenizer.json, world:rwkv_vocab_v20230424.txt or bytes");
        return st;
    }
    // An explicit tokenizer must fit the model; the default (bytes) only matters for text
    // lines, whose ids are checked with the others (a {"tokens"} file needs no tokenizer).
    if (in->tokenizer && (st = rwkv_tokenizer_check_vocab(tok, n_vocab))) {
        cli_input_set_hint("give --tokenizer the model's own tokenizer ('rwkvscope info MODEL' names it)");
    } else if (!st && (st = rwkv_dataset_read_sequences(s, path, tok, n_vocab))) {
        const char *msg = rwkv_error_message();
        cli_input_set_hint(st == RWKV_ERR_IO ? "check the --input path (- reads stdin)"
                           : st == RWKV_ERR_FORMAT ? "--input takes one prompt per line or JSONL lines "
                                                     "{\"text\": ...} or {\"tokens\": [...]}"
                           : strstr(msg, "outside the model's vocabulary") ? CLI_HINT_VOCAB : NULL);
    }
    snprintf(s->tokenizer, sizeof s->tokenizer, "%s", spec);
    rwkv_tokenizer_free(tok);
    return st;
}

rwkv_status cli_sequences_read(rwkv_sequences *out, const cli_input *in, const char *input_file, int n_vocab) {
    memset(out, 0, sizeof *out);
    cli_input_set_hint(NULL);
    if (!!input_file + cli_input_given(in) != 1)
        return rwkv_error_set(RWKV_ERR_ARG, "give exactly one input: --tokens, --bytes, --text, --file or --input");
    rwkv_status st;
    if (input_file) {
        st = read_file_lines(out, in, input_file, n_vocab);
    } else {
        int *ids = NULL;
        size_t n;
        rwkv_tokenizer *tok = NULL;
        // --file is read once here: its text goes to /text as --text's does (a file with a
        // NUL byte is tokenized whole, without /text, and must then be a regular file).
        unsigned char *file = NULL;
        size_t len = 0;
        cli_input as_text = *in;
        st = in->file ? rwkv_file_read(in->file, &file, &len) : RWKV_OK;
        if (st) cli_input_set_hint("check the --file path (- reads stdin)");
        if (file && len && !memchr(file, 0, len)) as_text.file = NULL, as_text.text = (const char *)file;
        if (!st) st = cli_input_tokens(&as_text, n_vocab, &ids, &n, &tok);
        if (!st) {
            snprintf(out->tokenizer, sizeof out->tokenizer, "%s", tok ? rwkv_tokenizer_spec(tok) : "");
            st = rwkv_sequences_push(out, ids, (int64_t)n, as_text.text ? as_text.text : in->bytes);
        }
        free(file);
        rwkv_tokenizer_free(tok);
    }
    if (st) rwkv_sequences_free(out);
    return st;
}

void cli_sequences_progress(void *ctx, int i, int n, int64_t n_tokens) {
    (void)ctx;
    if (n > 1) fprintf(stderr, "  sequence %d/%d (%lld tokens)\n", i + 1, n, (long long)n_tokens);
}
