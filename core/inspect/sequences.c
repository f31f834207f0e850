// sequences.c: the sequence list and the multi-sequence dump driver.
#include "sequences.h"

#include "intervene.h"

#include <stdlib.h>
#include <string.h>

rwkv_status rwkv_sequences_push(rwkv_sequences *s, int *ids, int64_t n, const char *text) {
    rwkv_sequence *items = realloc(s->items, (size_t)(s->n + 1) * sizeof *items);
    char *copy = text ? strdup(text) : NULL;
    if (!items || (text && !copy)) {
        if (items) s->items = items;
        free(ids);
        free(copy);
        return rwkv_error_set(RWKV_ERR_NOMEM, "out of memory for the sequence list");
    }
    s->items = items;
    s->items[s->n++] = (rwkv_sequence){.ids = ids, .n = n, .text = copy};
    if (text) s->has_text = 1;
    return RWKV_OK;
}

rwkv_status rwkv_sequences_check_vocab(const rwkv_sequences *s, int n_vocab, const char *where) {
    for (int i = 0; i < s->n; i++)
        for (int64_t t = 0; t < s->items[i].n; t++) {
            int id = s->items[i].ids[t];
            if (id < 0 || id >= n_vocab)
                return rwkv_error_set(RWKV_ERR_ARG, "%s: token %d at position %lld is outside the model's vocabulary [0, %d)",
                                      where, id, (long long)t, n_vocab);
        }
    return RWKV_OK;
}

void rwkv_sequences_free(rwkv_sequences *s) {
    if (!s) return;
    for (int i = 0; i < s->n; i++) {
        free(s->items[i].ids);
        free(s->items[i].text);
    }
    free(s->items);
    memset(s, 0, sizeof *s);
}

// One sequence from the start state, with the interventions bound to its length.
static rwkv_status dump_one(rwkv_dump *d, const rwkv_model *m, const rwkv_sequence *q, rwkv_state *s,
                            rwkv_workspace *ws, const rwkv_dump_sequences_opts *so) {
    if (so->init) rwkv_state_copy(s, so->init);
    else rwkv_state_reset(s);
    rwkv_intervene_list *list = NULL;
    if (so->n_interventions) {
        rwkv_status st = rwkv_intervene_list_from_specs(&list, m->cfg, q->n, so->interventions, so->n_interventions);
        if (st) return rwkv_error_wrap(st, "--intervene: ");
    }
    rwkv_dump_set_interventions(d, list);
    rwkv_status st = rwkv_dump_run(d, s, ws, q->ids, q->n, q->text, NULL);
    rwkv_dump_set_interventions(d, NULL);
    rwkv_intervene_list_free(list);
    return st;
}

rwkv_status rwkv_dump_sequences(const char *path, const rwkv_model *m, const rwkv_sequences *seqs,
                                const uint32_t *mask, const rwkv_positions *pos, const rwkv_dump_opts *opts,
                                const rwkv_dump_sequences_opts *so) {
    rwkv_dump *d = NULL;
    rwkv_state *s = NULL;
    rwkv_workspace *ws = NULL;
    rwkv_status st = rwkv_state_alloc(&s, m->cfg);
    if (!st) st = rwkv_workspace_alloc(&ws, m->cfg, so->max_T);
    if (!st) st = rwkv_dump_create(&d, path, m, mask, pos, opts);
    for (int i = 0; !st && i < seqs->n; i++) {
        st = dump_one(d, m, &seqs->items[i], s, ws, so);
        if (so->progress) so->progress(so->progress_ctx, i, seqs->n, seqs->items[i].n);
    }
    if (!st || st == RWKV_ERR_INTERRUPTED) { // a stopped dump is closed too: it keeps what was run
        st = rwkv_dump_close(d);
        d = NULL;
    }
    rwkv_dump_free(d);
    rwkv_state_free(s);
    rwkv_workspace_free(ws);
    return st;
}
