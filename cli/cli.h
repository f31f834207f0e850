// cli.h: what the subcommands share: option parsing helpers and error reporting.
// Only cli/ prints and exits.
#ifndef RWKV_CLI_H
#define RWKV_CLI_H

#include "core/base/base.h"

#include <signal.h>
#include <stdio.h>

#define CLI_OK 0
#define CLI_FAIL 1  // the work failed (bad file, numeric error)
#define CLI_USAGE 2 // the command line was wrong (an existing output without --force too)
#define CLI_EXCEEDED 3 // compare: a tap differs by more than --tol
#define CLI_MAX_THREADS 1024 // largest --threads value
#define CLI_INTERRUPTED 130  // SIGINT/SIGTERM stopped the work cleanly (128 + SIGINT, as shells report)

// Prints "rwkvscope CMD: <library message>" and a hint line; returns CLI_FAIL (CLI_USAGE for
// RWKV_ERR_EXISTS: an existing output without --force).
int cli_fail(const char *cmd, rwkv_status st, const char *hint);
// Prints "rwkvscope CMD: <formatted>" and "Try 'rwkvscope CMD --help'."; returns CLI_USAGE.
int cli_usage_error(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
// Parses an integer/float option value; on failure prints a usage error and returns 0.
int cli_parse_int(const char *cmd, const char *opt, const char *s, long lo, long hi, long *out);
int cli_parse_double(const char *cmd, const char *opt, const char *s, double *out);
// The full command line, for provenance attributes (static buffer).
const char *cli_command_line(void);
void cli_set_command_line(int argc, char **argv);
// Threads for OpenMP and OpenBLAS (0 = cores available).
void cli_set_threads(int n);

// Loads MODEL with --weights: "auto" (matrices in the file's type, mapped), "fp32", "bf16",
// "int8"; NULL is a float copy of every weight (for commands that read the raw matrices).
// Shows a progress line on stderr for files of a gigabyte or more. Prints the error with a
// hint and returns NULL on failure.
#include "core/model/model.h"
rwkv_model *cli_load_model(const char *cmd, const char *path, const char *weights);

// --weights and --threads, taken by every command that runs a model.
typedef struct {
    const char *weights; // NULL = "auto"
    long threads;        // 0 = all cores
} cli_model_opts;
#define CLI_MODEL_HELP                                                                            \
    "  --weights W          auto | fp32 | bf16 | int8 (storage of the matrices; compute is fp32;\n" \
    "                       default auto: as stored in the file, read in place (mapped), so\n"  \
    "                       bf16/fp16/Q5_1... files need no float copy; int8: int8 blocks of 32)\n"  \
    "  --threads N          threads for OpenMP and OpenBLAS (default: all cores)\n"
// Sets the threads and loads MODEL with the options' weights (cli_load_model).
rwkv_model *cli_model_open(const char *cmd, const char *path, const cli_model_opts *o);
// A progress line on stderr: on a terminal it rewrites itself (\r) at most once a second;
// elsewhere (a log file, a pipe) each is a line of its own, at most every
// CLI_PROGRESS_LOG_SECONDS. A final line (final = 1) is always printed and ends the line.
#include <time.h>
#define CLI_PROGRESS_LOG_SECONDS 10
void cli_progress(time_t *last, int final, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
// Refuses an existing regular file unless force, with a usage error naming it (the caller
// returns CLI_USAGE: the same rule and exit code in every command); returns 1 if writing
// may go ahead. "-" (stdout) and devices (/dev/null, /dev/stdout) are never refused.
int cli_check_output(const char *cmd, const char *path, int force);
// Installs SIGINT and SIGTERM handlers that only set the returned flag, which library work
// polls between steps to stop cleanly (the library installs no handlers); a second signal
// ends the process at once.
const volatile sig_atomic_t *cli_stop_on_signals(void);

#endif
