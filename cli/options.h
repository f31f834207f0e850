// options.h: the one option parser of every subcommand: getopt_long over a table of the
// command's own options and the shared groups it takes (input, model, intervene, task,
// output), so every command accepts --opt=value and --opt value, ends options at --, takes
// - for stdin or stdout where that makes sense, and answers --help and --version.
//
//     enum { O_TAPS = CLI_OPT_USER, O_CHUNK };
//     static const struct option OPTS[] = {
//         {"taps", required_argument, NULL, O_TAPS}, {"chunk", required_argument, NULL, O_CHUNK},
//         CLI_OPTIONS_INPUT, CLI_OPTIONS_MODEL, CLI_OPTIONS_OUTPUT, CLI_OPTIONS_END};
//     cli_parser p = {.cmd = "dump", .help = usage, .opts = OPTS, .max_args = 1,
//                     .in = &o->in, .model = &o->mo, .out = &o->out, .force = &o->force,
//                     .out_seekable = "an HDF5 dump"};
//     for (const char *v; (c = cli_opt_next(&p, argc, argv, &v)) != -1;)
//         switch (c) { case O_TAPS: o->taps = v; break; ... }
//     if (p.status) return p.status; // CLI_USAGE, or CLI_DONE after --help / --version
//     o->model = p.args[0];          // positional arguments in order (NULL past npos)
#ifndef RWKV_CLI_OPTIONS_H
#define RWKV_CLI_OPTIONS_H

#include "cli.h"
#include "input.h"
#include "intervene_opts.h"
#include "datasets/task.h"

#include <getopt.h>
#include <stdio.h>

#define CLI_DONE (-1)   // parse status: --help or --version was answered; exit 0
#define CLI_MAX_ARGS 8  // positional arguments a parser keeps

// Option ids. A short option's id is its letter; long-only options use ids above 255.
enum {
    CLI_OPT_VERSION = 256,
    CLI_OPT_TOKENS, CLI_OPT_BYTES, CLI_OPT_TEXT, CLI_OPT_FILE, CLI_OPT_TOKENIZER, // input
    CLI_OPT_WEIGHTS, CLI_OPT_THREADS,                                           // model
    CLI_OPT_INTERVENE,                                                          // intervene
    CLI_OPT_FORCE,                                                              // output (with -o)
    CLI_OPT_VOCAB, CLI_OPT_KEY_LEN, CLI_OPT_DEPTH, CLI_OPT_QUERY_FIRST,         // task
    CLI_OPT_QUERY_MIXED, CLI_OPT_FILLER, CLI_OPT_RANDOM_OFFSET, CLI_OPT_PAIRS, CLI_OPT_QUERIES,
    CLI_OPT_SPAN,
    CLI_OPT_USER = 400, // the first id of a command's own long options
};

#define CLI_OPTIONS_INPUT                                                                          \
    {"tokens", required_argument, NULL, CLI_OPT_TOKENS}, {"bytes", required_argument, NULL, CLI_OPT_BYTES}, \
    {"text", required_argument, NULL, CLI_OPT_TEXT}, {"file", required_argument, NULL, CLI_OPT_FILE},   \
    {"tokenizer", required_argument, NULL, CLI_OPT_TOKENIZER}
#define CLI_OPTIONS_MODEL                                                                          \
    {"weights", required_argument, NULL, CLI_OPT_WEIGHTS}, {"threads", required_argument, NULL, CLI_OPT_THREADS}
#define CLI_OPTIONS_INTERVENE {"intervene", required_argument, NULL, CLI_OPT_INTERVENE}
#define CLI_OPTIONS_OUTPUT                                                                         \
    {"output", required_argument, NULL, 'o'}, {"force", no_argument, NULL, CLI_OPT_FORCE}
#define CLI_OPTIONS_TASK                                                                           \
    {"vocab", required_argument, NULL, CLI_OPT_VOCAB}, {"key-len", required_argument, NULL, CLI_OPT_KEY_LEN}, \
    {"depth", required_argument, NULL, CLI_OPT_DEPTH}, {"query-first", no_argument, NULL, CLI_OPT_QUERY_FIRST}, \
    {"query-mixed", no_argument, NULL, CLI_OPT_QUERY_MIXED}, {"filler", required_argument, NULL, CLI_OPT_FILLER}, \
    {"random-offset", no_argument, NULL, CLI_OPT_RANDOM_OFFSET},                                   \
    {"pairs", required_argument, NULL, CLI_OPT_PAIRS}, {"queries", required_argument, NULL, CLI_OPT_QUERIES}, \
    {"span", required_argument, NULL, CLI_OPT_SPAN}
// Every table ends with these.
#define CLI_OPTIONS_END                                                                            \
    {"help", no_argument, NULL, 'h'}, {"version", no_argument, NULL, CLI_OPT_VERSION}, {NULL, 0, NULL, 0}

// The lines every --help ends with: - for stdin/stdout, the exit status.
#define CLI_HELP_FOOTER                                                                            \
    "\nA file that is read may be - (stdin); a CSV or text output may be - (stdout) unless\n"       \
    "files go beside it. HDF5 files and models need a name. An existing output is replaced\n"     \
    "only with --force.\n\n"                                                                      \
    "exit status:\n"                                                                               \
    "  0    success\n"                                                                             \
    "  1    runtime error (unreadable or corrupt file, failed write, numeric error)\n"            \
    "  2    usage error (bad option or value, existing output without --force)\n"                 \
    "  3    compare: some tap differs by more than --tol\n"                                        \
    "  130  interrupted by SIGINT or SIGTERM (dump closes its output first)\n"

typedef struct {
    const char *cmd;           // "dump", "probe horizon": in messages
    void (*help)(FILE *);      // the command's usage; --help prints it and CLI_HELP_FOOTER
    const struct option *opts; // the table, CLI_OPTIONS_END last
    int max_args;              // positional arguments allowed
    // The shared groups the table takes (NULL: not taken).
    cli_input *in;
    cli_model_opts *model;
    cli_intervene_opts *iv;
    rwkv_task *task;
    const char **out;          // -o / --output
    int *force;                // --force
    const char *out_seekable;  // not NULL: -o - is refused, the output being this ("an HDF5 dump")
    // Results.
    const char *args[CLI_MAX_ARGS]; // the positional arguments, in order
    int nargs;
    int status;                // after the last option: CLI_OK, CLI_USAGE or CLI_DONE
    char shorts[64];           // getopt's short-option string, built from the table
} cli_parser;

// The next option of the command's own (the shared groups are handled inside) with its
// value in *val; -1 at the end or on an error, with p->status saying which.
int cli_opt_next(cli_parser *p, int argc, char **argv, const char **val);
// A parse status as an exit code: CLI_DONE (help shown) is success.
static inline int cli_opt_exit(int status) { return status == CLI_DONE ? CLI_OK : status; }
// Answers --help, -h and --version as argv[1] of a command that dispatches on a sub-command
// (analyze, dataset, state): returns 1 if it did.
int cli_opt_dispatch_flag(int argc, char **argv, void (*help)(FILE *));
// "-" as a file to read: the path that reads stdin.
const char *cli_path_in(const char *path);
// A text output given as "-": the path that writes stdout; others unchanged.
const char *cli_path_out(const char *path);
// Refuses "-" for an output that must be a file: a usage error naming what it is.
int cli_refuse_stdout(const char *cmd, const char *opt, const char *path, const char *what);
// Prints the version line (also `rwkvscope --version`).
void cli_print_version(void);

#endif
