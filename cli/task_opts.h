// task_opts.h: the task options shared by `dataset make`, `recall` and `train --task`.
#ifndef RWKV_CLI_TASK_OPTS_H
#define RWKV_CLI_TASK_OPTS_H

#include "datasets/task.h"

#define CLI_TASK_HELP                                                                              \
    "task options (byte-level tasks; tokens < --vocab):\n"                                         \
    "  --vocab V            token range (default 256; passkey needs 256)\n"                        \
    "  --key-len K          passkey: digits in the key (default 5)\n"                              \
    "  --depth D            passkey: needle depth in [0,1] or 'random' (default 0.5)\n"           \
    "  --query-first        passkey: ask the question before the context as well\n"              \
    "  --query-mixed        passkey: either order, drawn per example (train on both)\n"               \
    "  --filler PATH        passkey: haystack text (default: the built-in sentences)\n"           \
    "  --random-offset      passkey: start each haystack at a random offset\n"                    \
    "  --pairs N            mqar: key-value pairs (default 8)\n"                                   \
    "  --queries Q          mqar: queries (default: --pairs)\n"                                    \
    "  --span S             copy: span length (default 16)\n"

// Applies the task option id (CLI_OPT_VOCAB .. CLI_OPT_SPAN in options.h, CLI_OPTIONS_TASK in
// a table), called name, with value v; returns 1, or 0 after printing an error.
int cli_task_set(rwkv_task *t, const char *cmd, const char *name, int id, const char *v);

#endif
