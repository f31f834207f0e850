// cmd_dataset.c: rwkvscope dataset make TASK: write seeded task examples to a JSONL file.
#include "cli.h"
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
            "  -o FILE              output .jsonl\n"
            "  --force              overwrite FILE\n\n%s", CLI_TASK_HELP);
}

static int dataset_make(int argc, char **argv) {
    const char *cmd = "dataset make", *out = NULL;
    if (argc < 2 || argv[1][0] == '-') return cli_usage_error(cmd, "which task? (passkey, mqar, copy, induction)");
    rwkv_task_kind kind;
    rwkv_status st = rwkv_task_parse_kind(argv[1], &kind);
    if (st) return cli_usage_error(cmd, "%s", rwkv_error_message());
    rwkv_task t;
    rwkv_task_defaults(&t, kind);
    long n = 100, len = t.len, seed = 1;
    int force = 0, rc = CLI_OK;
    for (int i = 2; i < argc; i++) {
        const char *a = argv[i];
        int r = cli_task_option(&t, cmd, argc, argv, &i);
        if (r < 0) { rc = CLI_USAGE; goto done; }
        if (r) continue;
        if (!strcmp(a, "--force")) { force = 1; continue; }
        if (i + 1 >= argc) { rc = cli_usage_error(cmd, "unknown option or missing value: %s", a); goto done; }
        const char *v = argv[++i];
        if (!strcmp(a, "--n")) { if (!cli_parse_int(cmd, a, v, 1, INT_MAX, &n)) { rc = CLI_USAGE; goto done; } }
        else if (!strcmp(a, "--len")) { if (!cli_parse_int(cmd, a, v, 1, INT_MAX / 2, &len)) { rc = CLI_USAGE; goto done; } }
        else if (!strcmp(a, "--seed")) { if (!cli_parse_int(cmd, a, v, 0, LONG_MAX, &seed)) { rc = CLI_USAGE; goto done; } }
        else if (!strcmp(a, "-o")) out = v;
        else { rc = cli_usage_error(cmd, "unknown option %s", a); goto done; }
    }
    if (!out) { rc = cli_usage_error(cmd, "-o FILE is required"); goto done; }
    t.len = (int)len;
    if ((st = rwkv_dataset_write(out, &t, (unsigned long)seed, (int)n, force))) {
        rc = cli_fail(cmd, st, st == RWKV_ERR_ARG ? "choose a longer --len or a smaller task" : NULL);
        goto done;
    }
    fprintf(stderr, "wrote %ld %s examples of %ld tokens to %s\n", n, rwkv_task_kind_name(kind), len, out);
done:
    rwkv_task_free(&t);
    return rc;
}

int cmd_dataset(int argc, char **argv) {
    if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? CLI_USAGE : CLI_OK;
    }
    if (!strcmp(argv[1], "make")) {
        if (cli_wants_help(argc, argv)) { usage(stdout); return CLI_OK; }
        return dataset_make(argc - 1, argv + 1);
    }
    return cli_usage_error("dataset", "unknown sub-command '%s' (expected: make)", argv[1]);
}
