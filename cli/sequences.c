// sequences.c: reading many sequences (--input) and dumping them.
#include "sequences.h"

#include "core/base/file.h"

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static rwkv_status push(cli_sequences *s, int *ids, int64_t n, const char *text) {
    cli_sequence *items = realloc(s->items, (size_t)(s->n + 1) * sizeof *items);
    if (!items) {
        free(ids);
        return rwkv_error_set(RWKV_ERR_NOMEM, "out of memory for the sequence list");
    }
    s->items = items;
    cli_sequence *q = &s->items[s->n++];
    q->ids = ids;
    q->n = n;
    q->text = text ? strdup(text) : NULL;
    if (text) s->has_text = 1;
    return RWKV_OK;
}

static rwkv_status check_ids(const int *ids, int64_t n, int n_vocab, const char *where) {
    for (int64_t i = 0; i < n; i++)
        if (ids[i] < 0 || ids[i] >= n_vocab)
            return rwkv_error_set(RWKV_ERR_ARG, "%s: token %d at position %lld is outside the model's vocabulary [0, %d)",
                                  where, ids[i], (long long)i, n_vocab);
    return RWKV_OK;
}

// {"tokens": [...]} or {"text": "..."}.
static rwkv_status json_line(cli_sequences *s, rwkv_tokenizer *tok, const char *line, const char *where, int n_vocab) {
    json_error_t err;
    json_t *j = json_loads(line, 0, &err);
    if (!j || !json_is_object(j)) {
        json_decref(j);
        return rwkv_error_set(RWKV_ERR_FORMAT, "%s: not a JSON object (%s)", where, j ? "not an object" : err.text);
    }
    json_t *fmt = json_object_get(j, "format");
    if (json_is_string(fmt) && !strcmp(json_string_value(fmt), "rwkvscope-dataset")) {
        json_decref(j); // a dataset file's header line (docs/dataset-format.md): not a sequence
        return RWKV_OK;
    }
    json_t *tk = json_object_get(j, "tokens"), *tx = json_object_get(j, "text");
    rwkv_status st = RWKV_OK;
    int *ids = NULL;
    size_t n = 0;
    if (json_is_array(tk)) {
        n = json_array_size(tk);
        ids = calloc(n ? n : 1, sizeof *ids);
        for (size_t i = 0; ids && i < n && !st; i++) {
            json_t *v = json_array_get(tk, i);
            if (!json_is_integer(v) || json_integer_value(v) < 0 || json_integer_value(v) > INT32_MAX)
                st = rwkv_error_set(RWKV_ERR_FORMAT, "%s: tokens[%zu] is not a token id", where, i);
            else ids[i] = (int)json_integer_value(v);
        }
        if (!ids) st = rwkv_error_set(RWKV_ERR_NOMEM, "%s: out of memory", where);
    } else if (json_is_string(tx)) {
        st = rwkv_tokenizer_encode(tok, json_string_value(tx), json_string_length(tx), &ids, &n);
    } else {
        st = rwkv_error_set(RWKV_ERR_FORMAT, "%s: needs a \"tokens\" array or a \"text\" string", where);
    }
    if (!st && n == 0) st = rwkv_error_set(RWKV_ERR_ARG, "%s: the sequence is empty", where);
    if (!st) st = check_ids(ids, (int64_t)n, n_vocab, where);
    if (!st) st = push(s, ids, (int64_t)n, json_is_array(tk) ? NULL : json_string_value(tx));
    else free(ids);
    json_decref(j);
    return st;
}

static rwkv_status read_file_lines(cli_sequences *s, const cli_input *in, const char *path, int n_vocab) {
    FILE *f = fopen(path, "r");
    if (!f) return rwkv_error_set(RWKV_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    const char *spec = in->tokenizer ? in->tokenizer : "bytes";
    rwkv_tokenizer *tok = NULL;
    rwkv_status st = rwkv_tokenizer_load(&tok, spec);
    if (!st) st = rwkv_tokenizer_check_vocab(tok, n_vocab);
    snprintf(s->tokenizer, sizeof s->tokenizer, "%s", spec);
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    long lineno = 0;
    while (!st && (len = getline(&line, &cap, f)) >= 0) {
        lineno++;
        while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r')) line[--len] = '\0';
        if (len == 0) continue;
        char where[1100];
        snprintf(where, sizeof where, "%s:%ld", path, lineno);
        if (line[0] == '{') {
            st = json_line(s, tok, line, where, n_vocab);
            continue;
        }
        int *ids;
        size_t n;
        st = rwkv_tokenizer_encode(tok, line, (size_t)len, &ids, &n);
        if (!st && !n) st = rwkv_error_set(RWKV_ERR_ARG, "%s: encodes to no tokens", where);
        if (!st && (st = check_ids(ids, (int64_t)n, n_vocab, where))) free(ids);
        else if (!st) st = push(s, ids, (int64_t)n, line);
    }
    if (!st && ferror(f)) st = rwkv_error_set(RWKV_ERR_IO, "%s: read error", path);
    if (!st && !s->n) st = rwkv_error_set(RWKV_ERR_ARG, "%s: no sequences (empty file)", path);
    free(line);
    fclose(f);
    rwkv_tokenizer_free(tok);
    return st;
}

rwkv_status cli_sequences_read(cli_sequences *out, const cli_input *in, const char *input_file, int n_vocab) {
    memset(out, 0, sizeof *out);
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
        if (file && len && !memchr(file, 0, len)) as_text.file = NULL, as_text.text = (const char *)file;
        if (!st) st = cli_input_tokens(&as_text, n_vocab, &ids, &n, &tok);
        if (!st) {
            snprintf(out->tokenizer, sizeof out->tokenizer, "%s", tok ? rwkv_tokenizer_spec(tok) : "");
            st = push(out, ids, (int64_t)n, as_text.text ? as_text.text : in->bytes);
        }
        free(file);
        rwkv_tokenizer_free(tok);
    }
    if (st) cli_sequences_free(out);
    return st;
}

void cli_sequences_free(cli_sequences *s) {
    if (!s) return;
    for (int i = 0; i < s->n; i++) {
        free(s->items[i].ids);
        free(s->items[i].text);
    }
    free(s->items);
    memset(s, 0, sizeof *s);
}

int cli_perturb_from_env(cli_perturb *p) {
    const char *e = getenv("RWKVSCOPE_TEST_PERTURB");
    long long pos;
    if (!e || sscanf(e, "%d,%lld,%d", &p->layer, &pos, &p->channel) != 3) return 0;
    p->pos = pos;
    return 1;
}

typedef struct {
    rwkv_dump *d;
    const cli_perturb *p;
} perturb_ctx;

static rwkv_status perturbed_tap(void *ctx, int layer, rwkv_tap tap, int64_t pos, int n, int D, rwkv_real *data) {
    perturb_ctx *c = ctx;
    const cli_perturb *p = c->p;
    if (tap == RWKV_TAP_STATE_NUM && layer == p->layer && p->pos >= pos && p->pos < pos + n && p->channel >= 0 &&
        p->channel < D)
        data[(size_t)(p->pos - pos) * D + p->channel] += (rwkv_real)CLI_PERTURB_DELTA;
    return rwkv_dump_tap(c->d, layer, tap, pos, n, D, data);
}

rwkv_status cli_dump_sequences(const char *path, const rwkv_model *m, const cli_sequences *seqs, const uint32_t *mask,
                               const rwkv_positions *pos, const rwkv_dump_opts *opts, int max_T,
                               const rwkv_state *init, const cli_perturb *perturb, const cli_intervene_opts *iv,
                               int verbose) {
    rwkv_dump *d = NULL;
    rwkv_state *s = NULL;
    rwkv_workspace *ws = NULL;
    uint32_t *pmask = NULL;
    rwkv_status st = rwkv_state_alloc(&s, m->cfg);
    if (!st) st = rwkv_workspace_alloc(&ws, m->cfg, max_T);
    if (!st) st = rwkv_dump_create(&d, path, m, mask, pos, opts);
    perturb_ctx pc = {d, perturb};
    rwkv_hook ph = {0};
    if (!st && perturb) { // the perturbed tap must fire even when not dumped
        pmask = calloc((size_t)m->cfg.n_layer + 1, sizeof *pmask);
        if (!pmask) st = rwkv_error_set(RWKV_ERR_NOMEM, "out of memory");
        else {
            memcpy(pmask, mask, ((size_t)m->cfg.n_layer + 1) * sizeof *pmask);
            if (perturb->layer >= 0 && perturb->layer < m->cfg.n_layer) pmask[perturb->layer] |= 1u << RWKV_TAP_STATE_NUM;
            ph = (rwkv_hook){.mask = pmask, .fn = perturbed_tap, .ctx = &pc};
        }
    }
    for (int i = 0; !st && i < seqs->n; i++) {
        if (init) rwkv_state_copy(s, init);
        else rwkv_state_reset(s);
        rwkv_intervene_list *list = NULL; // positions of --intervene count within each sequence
        if (iv && iv->n && (st = cli_intervene_build(iv, m, seqs->items[i].n, NULL, &list))) break;
        rwkv_dump_set_interventions(d, list);
        st = rwkv_dump_run(d, s, ws, seqs->items[i].ids, seqs->items[i].n, seqs->items[i].text, perturb ? &ph : NULL);
        rwkv_dump_set_interventions(d, NULL);
        rwkv_intervene_list_free(list);
        if (verbose && seqs->n > 1)
            fprintf(stderr, "  sequence %d/%d (%lld tokens)\n", i + 1, seqs->n, (long long)seqs->items[i].n);
    }
    if (!st || st == RWKV_ERR_INTERRUPTED) { // a stopped dump is closed too: it keeps what was run
        st = rwkv_dump_close(d);
        d = NULL;
    }
    rwkv_dump_free(d);
    free(pmask);
    rwkv_state_free(s);
    rwkv_workspace_free(ws);
    return st;
}
