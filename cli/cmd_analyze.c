// cmd_analyze.c: rwkvscope analyze SUBCOMMAND: analyses of a model and its activations.
#include "analyze.h"
#include "cli.h"
#include "options.h"

#include <stdio.h>
#include <string.h>

const char cmd_analyze_summary[] = "analyses of a model: decay spectra, effective attention, logit lens";

typedef struct {
    const char *name;
    int (*fn)(int argc, char **argv);
    const char *summary;
} analyze_cmd;

static const analyze_cmd ANALYZE_CMDS[] = {
    {"decay", cli_analyze_decay, "per-layer decay, half-life and time_first spectra (CSV + PNG)"},
    {"attention", cli_analyze_attention, "effective attention matrix of a layer (HDF5 + heatmap)"},
    {"lens", cli_analyze_lens, "logit lens: per-layer cross-entropy, entropy, KL to the final layer, top-1 (CSV + PNG)"},
};
#define N_ANALYZE ((int)(sizeof ANALYZE_CMDS / sizeof ANALYZE_CMDS[0]))

static void usage(FILE *f) {
    fprintf(f, "usage: rwkvscope analyze SUBCOMMAND MODEL [options]   (analyze SUBCOMMAND --help)\n\n"
               "sub-commands:\n");
    for (int i = 0; i < N_ANALYZE; i++) fprintf(f, "  %-10s %s\n", ANALYZE_CMDS[i].name, ANALYZE_CMDS[i].summary);
}

int cmd_analyze(int argc, char **argv) {
    if (argc < 2) {
        usage(stderr);
        return CLI_USAGE;
    }
    if (cli_opt_dispatch_flag(argc, argv, usage)) return CLI_OK;
    for (int i = 0; i < N_ANALYZE; i++)
        if (!strcmp(argv[1], ANALYZE_CMDS[i].name)) return ANALYZE_CMDS[i].fn(argc - 1, argv + 1);
    usage(stderr);
    return cli_usage_error("analyze", "unknown sub-command '%s'", argv[1]);
}
