// cmd_state.c: rwkvscope state save: the RNN state after an input, to HDF5.
#include "cli.h"
#include "input.h"
#include "options.h"

#include "core/compute/forward.h"
#include "core/inspect/state_io.h"

#include <stdlib.h>
#include <string.h>

const char cmd_state_summary[] = "save the recurrent state after an input (state save)";

static void usage(FILE *f) {
    fprintf(f, "usage: rwkvscope state save MODEL INPUT -o STATE.h5 [options]\n\n"
           "Runs MODEL on the input and writes the recurrent state after the last token\n"
           "(docs/state-format.md). Give it to run, dump or generate with --state STATE.h5\n"
           "to continue from there.\n\n"
           "input (exactly one):\n" CLI_INPUT_HELP
           "\noptions:\n"
           "  -o, --output FILE    the state file to write (required)\n"
           "  --state FILE         start from a saved state instead of the zero state\n"
           "  --mode seq|par       sequential (RNN) or parallel (GPT) mode (default: seq)\n"
           "  --force              replace an existing output\n"
           CLI_MODEL_HELP "\n"
           "example:\n  rwkvscope state save model.pth --bytes 'Once upon a time' -o s.h5\n");
}

int cmd_state(int argc, char **argv) {
    enum { O_STATE = CLI_OPT_USER, O_MODE };
    static const struct option OPTS[] = {
        {"state", required_argument, NULL, O_STATE}, {"mode", required_argument, NULL, O_MODE},
        CLI_OPTIONS_INPUT, CLI_OPTIONS_MODEL, CLI_OPTIONS_OUTPUT, CLI_OPTIONS_END};
    if (cli_opt_dispatch_flag(argc, argv, usage)) return CLI_OK;
    if (argc < 2) return cli_usage_error("state", "expected an action: save");
    if (strcmp(argv[1], "save")) return cli_usage_error("state", "unknown action '%s' (expected: save)", argv[1]);
    const char *out = NULL, *from = NULL, *mode = "seq";
    cli_input in = {0};
    cli_model_opts mo = {0};
    int force = 0;
    cli_parser p = {.cmd = "state save", .help = usage, .opts = OPTS, .max_args = 1, .in = &in, .model = &mo,
                    .out = &out, .force = &force, .out_seekable = "an HDF5 state"};
    const char *v;
    for (int c; (c = cli_opt_next(&p, argc - 1, argv + 1, &v)) != -1;) {
        if (c == O_STATE) from = v;
        else if (c == O_MODE) mode = v;
    }
    if (p.status) return cli_opt_exit(p.status);
    const char *model = p.args[0];
    if (!model) return cli_usage_error("state", "no MODEL given");
    if (!out) return cli_usage_error("state", "no output given (-o STATE.h5)");
    if (!cli_input_given(&in)) return cli_usage_error("state", "no input: give --tokens, --bytes, --text or --file");
    if (strcmp(mode, "seq") && strcmp(mode, "par")) return cli_usage_error("state", "--mode expects seq or par, got '%s'", mode);
    if (!cli_check_output("state", out, force)) return CLI_USAGE;
    rwkv_model *m = cli_model_open("state", model, &mo);
    if (!m) return CLI_FAIL;
    int *ids = NULL, rc = CLI_FAIL;
    size_t T = 0;
    rwkv_state *s = NULL;
    rwkv_status st = cli_input_tokens(&in, m->cfg.n_vocab, &ids, &T, NULL);
    if (!st) st = rwkv_state_alloc(&s, m->cfg);
    if (!st && from) st = rwkv_state_load(s, from, m);
    if (!st) st = rwkv_forward_run(m, s, ids, (int64_t)T, !strcmp(mode, "seq"), NULL);
    if (!st) st = rwkv_state_save(out, s, m, (int64_t)T, cli_command_line(), force);
    if (st) rc = cli_fail("state", st, cli_input_hint()); // NULL unless the input failed
    else {
        fprintf(stderr, "state: %zu tokens -> %s\n", T, out);
        rc = CLI_OK;
    }
    free(ids);
    rwkv_state_free(s);
    rwkv_model_free(m);
    return rc;
}
