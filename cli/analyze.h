// analyze.h: the sub-commands of `rwkvscope analyze`, one file each (cli/analyze_<name>.c).
// To add one: write int cli_analyze_<name>(int argc, char **argv) (argv[0] is the
// sub-command name), declare it here and add a row to the table in cmd_analyze.c.
#ifndef RWKV_CLI_ANALYZE_H
#define RWKV_CLI_ANALYZE_H

int cli_analyze_decay(int argc, char **argv);
int cli_analyze_attention(int argc, char **argv);
int cli_analyze_lens(int argc, char **argv);

#endif
