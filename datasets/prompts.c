// prompts.c: reading a sequence file into an rwkv_sequences list.
#include "prompts.h"

#include "reader.h"

#include <stdlib.h>
#include <string.h>

// The example's ids: its tokens (taken over) or its text encoded.
static rwkv_status example_ids(rwkv_dataset_example *ex, rwkv_tokenizer *tok, const char *where, int **ids,
                               size_t *n) {
    if (ex->tokens) {
        *ids = ex->tokens, *n = (size_t)ex->n_tokens;
        ex->tokens = NULL;
        return RWKV_OK;
    }
    if (!tok) return rwkv_error_set(RWKV_ERR_ARG, "%s: a text line needs a tokenizer", where);
    rwkv_status st = rwkv_tokenizer_encode(tok, ex->text, strlen(ex->text), ids, n);
    return st ? rwkv_error_wrap(st, "%s: ", where) : RWKV_OK;
}

rwkv_status rwkv_dataset_read_sequences(rwkv_sequences *out, const char *path, rwkv_tokenizer *tok, int n_vocab) {
    rwkv_dataset_reader *r;
    rwkv_status st = rwkv_dataset_reader_open(&r, path, RWKV_READER_TEXT_LINES);
    if (st) return st;
    rwkv_dataset_example ex = {0};
    int got = 0, n0 = out->n;
    while (!st && !(st = rwkv_dataset_reader_next(r, &ex, &got)) && got) {
        char where[1100];
        snprintf(where, sizeof where, "%s:%lld", path, (long long)ex.lineno);
        int *ids = NULL;
        size_t n = 0;
        const char *text = ex.tokens ? NULL : ex.text;
        st = example_ids(&ex, tok, where, &ids, &n);
        if (!st && n == 0) st = rwkv_error_set(RWKV_ERR_ARG, "%s: the sequence is empty (no tokens)", where);
        if (!st) {
            rwkv_sequences one = {.items = &(rwkv_sequence){.ids = ids, .n = (int64_t)n}, .n = 1};
            st = rwkv_sequences_check_vocab(&one, n_vocab, where);
        }
        if (!st) st = rwkv_sequences_push(out, ids, (int64_t)n, text);
        else free(ids);
    }
    if (!st && out->n == n0) st = rwkv_error_set(RWKV_ERR_ARG, "%s: no sequences (empty file)", path);
    rwkv_dataset_example_clear(&ex);
    rwkv_dataset_reader_free(r);
    return st;
}
