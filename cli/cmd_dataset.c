// cmd_dataset.c: rwkvscope dataset make TASK: write seeded task examples to a JSONL file.
#include "cli.h"
#include "options.h"
#include "datasets/dataset.h"
#include "task_opts.h"

#include <limits.h>
#include <stdio.h>
#include <string.h>

const char cmd_dataset_summary[] = "generate synthetic recall datasets (passkey, mqar, copy, induction)";

static void usage(FILE *f) {
    fprintf(f,
            "usage: rwkvscope dataset make TASK --n N --len L [task options] [--seed S] -o FILE [--force]\n\n"
            "Writes N examples of L tokens of TASK (passkey, mqar, copy, induction) as JSONL\n"
            "(docs/dataset-format.md): a header line, then one line per example with its tokens\n"
            "and answer spans [start, length]. The same --seed gives the same bytes.\n\n"
            "  --n N                examples (default 100)\n"
            "  --len L              tokens per example (default 256)\n"
            "  --seed S             rng seed (default 1)\n"
            "  -o, --output FILE    output .jsonl (- for stdout)\n"
            "  --force              overwrite FILE\n\n%s", CLI_TASK_HELP);
}

enum { O_N = CLI_OPT_USER, O_LEN, O_SEED };

static int dataset_make(int argc, char **argv) {
    static const struct option OPTS[] = {
        {"n", required_argument, NULL, O_N}, {"len", required_argument, NULL, O_LEN},
        {"seed", required_argument, NULL, O_SEED}, CLI_OPTIONS_TASK, CLI_OPTIONS_OUTPUT, CLI_OPTIONS_END};
    const char *cmd = "dataset make", *out = NULL;
    if (argc < 2 || argv[1][0] == '-') {
        if (cli_opt_dispatch_flag(argc, argv, usage)) return CLI_OK;
        return cli_usage_error(cmd, "which task? (passkey, mqar, copy, induction)");
    }
    rwkv_task_kind kind;
    rwkv_status st = rwkv_task_parse_kind(argv[1], &kind);
    if (st) return cli_usage_error(cmd, "%s", rwkv_error_message());
    rwkv_task t;
    rwkv_task_defaults(&t, kind);
    long n = 100, len = t.len, seed = 1;
    int force = 0, rc = CLI_OK;
    cli_parser p = {.cmd = cmd, .help = usage, .opts = OPTS, .task = &t, .out = &out, .force = &force};
    const char *v;
    for (int c; (c = cli_opt_next(&p, argc - 1, argv + 1, &v)) != -1;) {
        int ok = 1;
        switch (c) {
        case O_N: ok = cli_parse_int(cmd, "--n", v, 1, INT_MAX, &n); break;
        case O_LEN: ok = cli_parse_int(cmd, "--len", v, 1, INT_MAX / 2, &len); break;
        case O_SEED: ok = cli_parse_int(cmd, "--seed", v, 0, LONG_MAX, &seed); break;
        }
        if (!ok) { rc = CLI_USAGE; goto done; }
    }
    if (p.status) { rc = cli_opt_exit(p.status); goto done; }
    if (!out) { rc = cli_usage_error(cmd, "-o FILE is required"); goto done; }
    if (!cli_check_output(cmd, out, force)) { rc = CLI_USAGE; goto done; }
    out = cli_path_out(out); // checked above: the library need not refuse it again
    t.len = (int)len;
    if ((st = rwkv_dataset_write(out, &t, (unsigned long)seed, (int)n, 1))) {
        rc = cli_fail(cmd, st, st == RWKV_ERR_ARG ? "choose a longer --len or a smaller task" : NULL);
        goto done;
    }
    fprintf(stderr, "wrote %ld %s examples of %ld tokens to %s\n", n, rwkv_task_kind_name(kind), len, out);
done:
    rwkv_task_free(&t);
    return rc;
}

int cmd_dataset(int argc, char **argv) {
    if (argc < 2) {
        usage(stderr);
        return CLI_USAGE;
    }
    if (cli_opt_dispatch_flag(argc, argv, usage)) return CLI_OK;
    if (!strcmp(argv[1], "make")) return dataset_make(argc - 1, argv + 1);
    return cli_usage_error("dataset", "unknown sub-command '%s' (expected: make)", argv[1]);
}
