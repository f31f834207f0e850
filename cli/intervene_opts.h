// intervene_opts.h: the repeatable --intervene SPEC option of run, dump, generate and recall.
// A command collects the specs while parsing argv (syntax errors are usage errors at once),
// builds the list once it knows the model and the sequence length, and runs the model
// through rwkv_intervene_forward instead of rwkv_forward_seq / rwkv_forward_par:
//
//     cli_intervene_opts iv = {0};
//     ... parsing argv: CLI_OPTIONS_INTERVENE in the table, .iv = &iv in the parser (options.h)
//     rwkv_intervene_list *list;
//     st = cli_intervene_build(&iv, model, T, dump_hook_or_NULL, &list);   // cli_fail on error
//     st = rwkv_intervene_forward(model, state, ids, T, 0, logits, mode, list, ws, seq);
//     rwkv_intervene_list_free(list); cli_intervene_opts_free(&iv);
#ifndef RWKV_CLI_INTERVENE_OPTS_H
#define RWKV_CLI_INTERVENE_OPTS_H

#include "core/inspect/intervene.h"

typedef struct {
    const char **specs; // (n) argv strings, not copied
    int n, cap;
} cli_intervene_opts;

#define CLI_INTERVENE_HELP                                                                         \
    "  --intervene SPEC     change a tap while the model runs (repeatable):\n"                    \
    "                       TAP[:CHANNELS]@POSITIONS=OP, e.g. blocks.3.state_num:0-63@10-20=zero,\n" \
    "                       blocks.2.att_gate@*=scale:0.5, blocks.5.resid_in@last=add:vec.h5:4;\n" \
    "                       OP = zero | scale:a | add:VEC.h5[:alpha] | set:VALUE | patch:DUMP.h5[:seq]\n" \
    "                       (docs/interventions.md)\n"

// Checks the syntax of one --intervene spec and stores it; returns 1, or 0 after printing a
// usage error naming the bad part.
int cli_intervene_add(cli_intervene_opts *o, const char *cmd, const char *spec);
// Binds every spec to the model and a sequence of T tokens (positions 0 .. T-1) and returns
// the list with `next` (a dump hook, or NULL) chained behind it. An empty option set gives an
// empty list, so commands always run through rwkv_intervene_forward.
rwkv_status cli_intervene_build(const cli_intervene_opts *o, const rwkv_model *m, int64_t T, rwkv_hook *next,
                                rwkv_intervene_list **out);
void cli_intervene_opts_free(cli_intervene_opts *o);

#endif
