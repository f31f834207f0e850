// task_opts.c: parsing of the shared task options.
#include "task_opts.h"
#include "cli.h"

#include <limits.h>
#include <string.h>

int cli_task_option(rwkv_task *t, const char *cmd, int argc, char **argv, int *i) {
    const char *a = argv[*i];
    if (!strcmp(a, "--query-first")) { t->query_first = 1; return 1; }
    if (!strcmp(a, "--query-mixed")) { t->query_first = RWKV_TASK_QUERY_MIXED; return 1; }
    if (!strcmp(a, "--random-offset")) { t->filler_random_offset = 1; return 1; }
    static const char *const WITH_VALUE[] = {"--vocab", "--key-len", "--depth", "--filler",
                                             "--pairs", "--queries", "--span"};
    int k = -1;
    for (int j = 0; j < (int)(sizeof WITH_VALUE / sizeof *WITH_VALUE); j++)
        if (!strcmp(a, WITH_VALUE[j])) k = j;
    if (k < 0) return 0;
    if (*i + 1 >= argc) { cli_usage_error(cmd, "%s needs a value", a); return -1; }
    const char *v = argv[++*i];
    long n;
    switch (k) {
    case 0: if (!cli_parse_int(cmd, a, v, 4, INT_MAX, &n)) return -1; t->vocab = (int)n; break;
    case 1: if (!cli_parse_int(cmd, a, v, 1, 64, &n)) return -1; t->key_len = (int)n; break;
    case 2:
        if (!strcmp(v, "random")) { t->depth = RWKV_TASK_DEPTH_RANDOM; break; }
        if (!cli_parse_double(cmd, a, v, &t->depth)) return -1;
        if (t->depth < 0 || t->depth > 1) {
            cli_usage_error(cmd, "--depth must be in [0, 1] or 'random', got %s", v);
            return -1;
        }
        break;
    case 3: {
        rwkv_status st = rwkv_task_set_filler_file(t, v);
        if (st) { cli_fail(cmd, st, "--filler takes a text file, e.g. tinyshakespeare.txt"); return -1; }
        break;
    }
    case 4:
        if (!cli_parse_int(cmd, a, v, 1, INT_MAX / 4, &n)) return -1;
        if (t->n_queries == t->n_pairs) t->n_queries = (int)n; // queries follow pairs by default
        t->n_pairs = (int)n;
        break;
    case 5: if (!cli_parse_int(cmd, a, v, 1, INT_MAX / 4, &n)) return -1; t->n_queries = (int)n; break;
    case 6: if (!cli_parse_int(cmd, a, v, 1, INT_MAX / 4, &n)) return -1; t->span_len = (int)n; break;
    }
    return 1;
}
