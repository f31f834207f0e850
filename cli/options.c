// options.c: getopt_long with the shared option groups, and the messages for bad options.
#include "options.h"
#include "task_opts.h"

#include <ctype.h>
#include <string.h>

void cli_print_version(void) { printf("rwkvscope %s (%d-bit)\n", RWKVSCOPE_VERSION, RWKV_REAL_BITS); }

const char *cli_path_in(const char *path) { return path && !strcmp(path, "-") ? "/dev/stdin" : path; }

const char *cli_path_out(const char *path) { return path && !strcmp(path, "-") ? "/dev/stdout" : path; }

int cli_refuse_stdout(const char *cmd, const char *opt, const char *path, const char *what) {
    if (!path || strcmp(path, "-")) return CLI_OK;
    return cli_usage_error(cmd, "%s -: %s cannot go to stdout (it needs a seekable file); give a file name", opt,
                           what);
}

// getopt's short-option string: "-" (positional arguments come back in order, as id 1),
// ":" (a missing value is told apart), then every one-letter id of the table.
static void build_shorts(cli_parser *p) {
    size_t k = 0;
    p->shorts[k++] = '-';
    p->shorts[k++] = ':';
    for (const struct option *o = p->opts; o->name && k + 3 < sizeof p->shorts; o++) {
        if (o->val >= 256 || !isalnum(o->val)) continue;
        p->shorts[k++] = (char)o->val;
        if (o->has_arg == required_argument) p->shorts[k++] = ':';
    }
    p->shorts[k] = '\0';
}

// The message for getopt's '?': an unknown, ambiguous, or valued flag option.
static int bad_option(cli_parser *p, char **argv) {
    const char *a = argv[optind - 1];
    if (strncmp(a, "--", 2)) return cli_usage_error(p->cmd, "unknown option '-%c'", optopt ? optopt : '?');
    size_t n = strcspn(a + 2, "=");
    if (optopt && a[2 + n] == '=') return cli_usage_error(p->cmd, "option '--%.*s' takes no value", (int)n, a + 2);
    char seen[256] = "";
    int hits = 0;
    for (const struct option *o = p->opts; o->name; o++)
        if (!strncmp(o->name, a + 2, n) && ++hits)
            snprintf(seen + strlen(seen), sizeof seen - strlen(seen), "%s--%s", hits > 1 ? ", " : "", o->name);
    if (hits > 1) return cli_usage_error(p->cmd, "option '%.*s' is ambiguous (%s)", (int)n + 2, a, seen);
    return cli_usage_error(p->cmd, "unknown option '%.*s'", (int)n + 2, a);
}

// The option's name as typed in the table, for messages: "--threads", "-o".
static void opt_name(const cli_parser *p, int id, char *buf, size_t n) {
    for (const struct option *o = p->opts; o->name; o++)
        if (o->val == id) { snprintf(buf, n, "--%s", o->name); return; }
    snprintf(buf, n, "-%c", id);
}

// The input, model, intervene and output groups; 1 if id was one, -1 on a bad value.
static int group_option(cli_parser *p, int id, const char *v) {
    char name[64];
    opt_name(p, id, name, sizeof name);
    switch (id) {
    case CLI_OPT_TOKENS: p->in->tokens = v; return 1;
    case CLI_OPT_BYTES: p->in->bytes = v; return 1;
    case CLI_OPT_TEXT: p->in->text = v; return 1;
    case CLI_OPT_FILE: p->in->file = cli_path_in(v); return 1;
    case CLI_OPT_TOKENIZER: p->in->tokenizer = v; return 1;
    case CLI_OPT_WEIGHTS: p->model->weights = v; return 1;
    case CLI_OPT_THREADS: return cli_parse_int(p->cmd, name, v, 0, CLI_MAX_THREADS, &p->model->threads) ? 1 : -1;
    case CLI_OPT_INTERVENE: return cli_intervene_add(p->iv, p->cmd, v) ? 1 : -1;
    case CLI_OPT_FORCE: *p->force = 1; return 1;
    case 'o':
        if (!p->out) return 0;
        if (p->out_seekable && cli_refuse_stdout(p->cmd, "-o", v, p->out_seekable)) return -1;
        *p->out = v;
        return 1;
    default:
        if (id >= CLI_OPT_VOCAB && id <= CLI_OPT_SPAN) return cli_task_set(p->task, p->cmd, name, id, v) ? 1 : -1;
        return 0;
    }
}

static int stop(cli_parser *p, int status) {
    p->status = status;
    return -1;
}

static int add_arg(cli_parser *p, const char *a) {
    if (p->nargs >= p->max_args || p->nargs >= CLI_MAX_ARGS) {
        cli_usage_error(p->cmd, "unexpected argument '%s'", a);
        return 0;
    }
    p->args[p->nargs++] = a;
    return 1;
}

int cli_opt_next(cli_parser *p, int argc, char **argv, const char **val) {
    if (!p->shorts[0]) { // the first call: a fresh getopt
        build_shorts(p);
        optind = 0; // glibc: 0 re-initialises getopt's state entirely
        opterr = 0; // the messages are ours
    }
    if (p->status) return -1;
    for (;;) {
        int c = getopt_long(argc, argv, p->shorts, p->opts, NULL);
        *val = optarg;
        if (c == -1) { // after --, everything is an argument
            for (; optind < argc; optind++)
                if (!add_arg(p, argv[optind])) return stop(p, CLI_USAGE);
            return stop(p, CLI_OK);
        }
        if (c == 1) {
            if (!add_arg(p, optarg)) return stop(p, CLI_USAGE);
            continue;
        }
        if (c == ':') return stop(p, cli_usage_error(p->cmd, "%s needs a value", argv[optind - 1]));
        if (c == '?') return stop(p, bad_option(p, argv));
        if (c == 'h') {
            p->help(stdout);
            fputs(CLI_HELP_FOOTER, stdout);
            return stop(p, CLI_DONE);
        }
        if (c == CLI_OPT_VERSION) {
            cli_print_version();
            return stop(p, CLI_DONE);
        }
        int r = group_option(p, c, optarg);
        if (r < 0) return stop(p, CLI_USAGE);
        if (!r) return c;
    }
}

int cli_opt_dispatch_flag(int argc, char **argv, void (*help)(FILE *)) {
    if (argc < 2) return 0;
    if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
        help(stdout);
        fputs(CLI_HELP_FOOTER, stdout);
        return 1;
    }
    if (!strcmp(argv[1], "--version")) {
        cli_print_version();
        return 1;
    }
    return 0;
}
