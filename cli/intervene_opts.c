// intervene_opts.c: collecting --intervene specs and building the intervention list.
#include "intervene_opts.h"

#include "cli.h"

#include <stdlib.h>
#include <string.h>

int cli_intervene_add(cli_intervene_opts *o, const char *cmd, const char *spec) {
    rwkv_intervention iv;
    if (rwkv_intervene_parse(&iv, spec)) {
        cli_usage_error(cmd, "--intervene: %s", rwkv_error_message());
        return 0;
    }
    if (o->n == o->cap) {
        int cap = o->cap ? 2 * o->cap : 4;
        const char **s = realloc(o->specs, (size_t)cap * sizeof *s);
        if (!s) {
            cli_usage_error(cmd, "--intervene: out of memory");
            return 0;
        }
        o->specs = s;
        o->cap = cap;
    }
    o->specs[o->n++] = spec;
    return 1;
}

rwkv_status cli_intervene_build(const cli_intervene_opts *o, const rwkv_model *m, int64_t T, rwkv_hook *next,
                                rwkv_intervene_list **out) {
    rwkv_status st = rwkv_intervene_list_from_specs(out, m->cfg, T, o->specs, o->n);
    if (st) return rwkv_error_wrap(st, "--intervene: ");
    rwkv_intervene_list_chain(*out, next);
    return RWKV_OK;
}

void cli_intervene_opts_free(cli_intervene_opts *o) {
    free(o->specs);
    o->specs = NULL;
    o->n = o->cap = 0;
}
