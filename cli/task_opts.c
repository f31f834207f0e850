// task_opts.c: parsing of the shared task options.
#include "task_opts.h"
#include "cli.h"
#include "options.h"

#include <limits.h>
#include <string.h>

int cli_task_set(rwkv_task *t, const char *cmd, const char *name, int id, const char *v) {
    long n;
    switch (id) {
    case CLI_OPT_QUERY_FIRST: t->query_first = 1; return 1;
    case CLI_OPT_QUERY_MIXED: t->query_first = RWKV_TASK_QUERY_MIXED; return 1;
    case CLI_OPT_RANDOM_OFFSET: t->filler_random_offset = 1; return 1;
    case CLI_OPT_VOCAB: if (!cli_parse_int(cmd, name, v, 4, INT_MAX, &n)) return 0; t->vocab = (int)n; return 1;
    case CLI_OPT_KEY_LEN: if (!cli_parse_int(cmd, name, v, 1, 64, &n)) return 0; t->key_len = (int)n; return 1;
    case CLI_OPT_DEPTH:
        if (!strcmp(v, "random")) { t->depth = RWKV_TASK_DEPTH_RANDOM; return 1; }
        if (!cli_parse_double(cmd, name, v, &t->depth)) return 0;
        if (t->depth < 0 || t->depth > 1) {
            cli_usage_error(cmd, "--depth must be in [0, 1] or 'random', got %s", v);
            return 0;
        }
        return 1;
    case CLI_OPT_FILLER: {
        rwkv_status st = rwkv_task_set_filler_file(t, cli_path_in(v));
        if (st) { cli_fail(cmd, st, "--filler takes a text file, e.g. tinyshakespeare.txt"); return 0; }
        return 1;
    }
    case CLI_OPT_PAIRS:
        if (!cli_parse_int(cmd, name, v, 1, INT_MAX / 4, &n)) return 0;
        if (t->n_queries == t->n_pairs) t->n_queries = (int)n; // queries follow pairs by default
        t->n_pairs = (int)n;
        return 1;
    case CLI_OPT_QUERIES: if (!cli_parse_int(cmd, name, v, 1, INT_MAX / 4, &n)) return 0; t->n_queries = (int)n; return 1;
    case CLI_OPT_SPAN: if (!cli_parse_int(cmd, name, v, 1, INT_MAX / 4, &n)) return 0; t->span_len = (int)n; return 1;
    }
    return 0;
}
