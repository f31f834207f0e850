// cmd_lens.c: TEMPORARY: `rwkvscope lens` runs `analyze lens` until cli/cmd_analyze.c is on
// main; then this file goes and cli_analyze_lens joins the analyze sub-command table.
#include "cli.h"

const char cmd_lens_summary[] = "logit lens per layer (temporary name of `analyze lens`)";

int cli_analyze_lens(int argc, char **argv);

int cmd_lens(int argc, char **argv) { return cli_analyze_lens(argc, argv); }
