// main.c: the rwkvscope binary. Dispatches to cmd_<name>.c; the table is generated
// by the Makefile from the file names.
#include "cli.h"
#include "options.h"
#include "core/compute/blas.h"

#include <stdio.h>
#include <string.h>

#define RWKV_CMD(name)                                                                             \
    int cmd_##name(int argc, char **argv);                                                         \
    extern const char cmd_##name##_summary[];
#include "commands.h"
#undef RWKV_CMD

typedef struct {
    const char *name;
    int (*fn)(int, char **);
    const char *summary;
} command;

#define RWKV_CMD(name) {#name, cmd_##name, cmd_##name##_summary},
static const command COMMANDS[] = {
#include "commands.h"
};
#undef RWKV_CMD

static void usage(FILE *f) {
    fprintf(f, "rwkvscope %s: run, dump, compare, probe and train RWKV-4 models.\n\n"
               "usage: rwkvscope COMMAND [options]   (rwkvscope COMMAND --help for details)\n\n"
               "Every command takes --help and --version; options take --opt VALUE or --opt=VALUE,\n"
               "and -- ends them.\n" CLI_HELP_FOOTER "\ncommands:\n", RWKVSCOPE_VERSION);
    for (size_t i = 0; i < sizeof COMMANDS / sizeof COMMANDS[0]; i++)
        fprintf(f, "  %-12s %s\n", COMMANDS[i].name, COMMANDS[i].summary);
}

int main(int argc, char **argv) {
    // OpenBLAS picks its kernels when it loads; re-exec once if it would pick a slow core.
    rwkv_blas_ensure_coretype(argc, argv);
    if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? CLI_USAGE : CLI_OK;
    }
    if (!strcmp(argv[1], "--version")) {
        cli_print_version();
        return CLI_OK;
    }
    cli_set_command_line(argc, argv);
    for (size_t i = 0; i < sizeof COMMANDS / sizeof COMMANDS[0]; i++)
        if (!strcmp(argv[1], COMMANDS[i].name)) return COMMANDS[i].fn(argc - 1, argv + 1);
    fprintf(stderr, "rwkvscope: unknown command '%s'\n\n", argv[1]);
    usage(stderr);
    return CLI_USAGE;
}
