// cli.c: shared helpers for the subcommands.
#include "cli.h"

#include <cblas.h>
#include <errno.h>
#include <math.h>
#include <omp.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char command_line[4096];

int cli_fail(const char *cmd, rwkv_status st, const char *hint) {
    fprintf(stderr, "rwkvscope %s: %s: %s\n", cmd, rwkv_status_name(st), rwkv_error_message());
    if (hint) fprintf(stderr, "hint: %s\n", hint);
    return st == RWKV_ERR_EXISTS ? CLI_USAGE : CLI_FAIL; // one rule for existing outputs
}

int cli_usage_error(const char *cmd, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "rwkvscope %s: ", cmd);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\nTry 'rwkvscope %s --help'.\n", cmd);
    return CLI_USAGE;
}

int cli_parse_int(const char *cmd, const char *opt, const char *s, long lo, long hi, long *out) {
    char *end;
    errno = 0;
    long v = s ? strtol(s, &end, 10) : 0;
    if (!s || errno || end == s || *end || v < lo || v > hi) {
        cli_usage_error(cmd, "%s expects an integer in [%ld, %ld], got '%s'", opt, lo, hi, s ? s : "");
        return 0;
    }
    *out = v;
    return 1;
}

int cli_parse_double(const char *cmd, const char *opt, const char *s, double *out) {
    char *end;
    errno = 0;
    double v = s ? strtod(s, &end) : 0;
    if (!s || errno || end == s || *end || !isfinite(v)) {
        cli_usage_error(cmd, "%s expects a number, got '%s'", opt, s ? s : "");
        return 0;
    }
    *out = v;
    return 1;
}

void cli_set_command_line(int argc, char **argv) {
    size_t k = 0;
    command_line[0] = '\0';
    for (int i = 0; i < argc && k + 2 < sizeof command_line; i++)
        k += (size_t)snprintf(command_line + k, sizeof command_line - k, "%s%s", i ? " " : "", argv[i]);
}

const char *cli_command_line(void) { return command_line; }

void cli_set_threads(int n) {
    if (n <= 0) n = omp_get_num_procs();
    omp_set_num_threads(n);
    openblas_set_num_threads(n);
}

// The commands that run RWKV-5.2, 6 and 7 models; the others are RWKV-4 only for now.
static int runs_v7(const char *cmd) {
    static const char *const V7[] = {"run", "generate", "eval", "dump", "compare", "state", "recall"};
    for (size_t i = 0; i < sizeof V7 / sizeof V7[0]; i++)
        if (!strcmp(cmd, V7[i])) return 1;
    return 0;
}

#define CLI_PROGRESS_MIN_BYTES (1ull << 30) // smaller files load too fast to need a progress line

typedef struct {
    const char *cmd, *path;
    int last; // last percentage printed, -1 before the first
} load_progress;

static void print_progress(void *ctx, uint64_t done, uint64_t total) {
    load_progress *p = ctx;
    if (total < CLI_PROGRESS_MIN_BYTES) return;
    int pct = (int)(100 * done / total);
    if (pct == p->last) return;
    p->last = pct;
    fprintf(stderr, "\rrwkvscope %s: loading %s: %3d%% of %.1f GB", p->cmd, p->path, pct, total / 1e9);
    if (done == total) fputc('\n', stderr);
}

static int weights_mode(const char *w, rwkv_weights_mode *mode) {
    static const char *const NAMES[] = {"auto", "fp32", "bf16", "int8"};
    static const rwkv_weights_mode MODES[] = {RWKV_WEIGHTS_FILE, RWKV_WEIGHTS_FP32, RWKV_WEIGHTS_BF16, RWKV_WEIGHTS_INT8};
    for (int i = 0; i < 4; i++)
        if (!strcmp(w, NAMES[i])) {
            *mode = MODES[i];
            return 1;
        }
    return 0;
}

rwkv_model *cli_load_model(const char *cmd, const char *path, const char *weights) {
    load_progress lp = {cmd, path, -1};
    rwkv_load_opts o = {.weights = RWKV_WEIGHTS_FP32, .progress = print_progress, .progress_ctx = &lp};
    if (weights && !weights_mode(weights, &o.weights)) {
        cli_usage_error(cmd, "--weights expects auto, fp32, bf16 or int8, got '%s'", weights);
        return NULL;
    }
    rwkv_model *m;
    rwkv_status st = rwkv_model_open(&m, path, &o);
    if (!st && !weights && strcmp(m->dtype, "bfloat16") == 0) st = rwkv_model_use_bf16(m); // lossless
    if (lp.last >= 0 && lp.last < 100) fputc('\n', stderr); // a failed load ends its progress line
    if (st) {
        cli_fail(cmd, st, st == RWKV_ERR_IO ? "check the path" :
                 st == RWKV_ERR_NUMERIC ? "the checkpoint holds NaN or inf weights: re-export it" :
                 "rwkvscope reads official .pth, Hugging Face safetensors and rwkv.cpp .bin "
                 "(RWKV-4, 5.2, 6, 7; FP32, FP16, Q4_0, Q4_1, Q5_0, Q5_1, Q8_0)");
        rwkv_model_free(m);
        return NULL;
    }
    if (!runs_v7(cmd) && (st = rwkv_model_require_v4(m, cmd))) {
        cli_fail(cmd, st, "RWKV-5.2, 6 and 7 models run in run, generate, eval, dump, compare, state and recall");
        rwkv_model_free(m);
        return NULL;
    }
    return m;
}

static volatile sig_atomic_t stop_requested;

static void on_stop_signal(int sig) {
    (void)sig;
    stop_requested = 1;
}

const volatile sig_atomic_t *cli_stop_on_signals(void) {
    struct sigaction sa = {0};
    sa.sa_handler = on_stop_signal;
    sa.sa_flags = SA_RESETHAND; // the next signal gets the default action: impatience wins
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    return &stop_requested;
}

int cli_check_output(const char *cmd, const char *path, int force) {
    struct stat sb;
    if (force || !path || !strcmp(path, "-") || !strncmp(path, "/dev/", 5) || stat(path, &sb) || !S_ISREG(sb.st_mode))
        return 1;
    cli_usage_error(cmd, "%s exists; pass --force to overwrite it", path);
    return 0;
}

rwkv_model *cli_model_open(const char *cmd, const char *path, const cli_model_opts *o) {
    cli_set_threads((int)o->threads);
    return cli_load_model(cmd, path, o->weights ? o->weights : "auto");
}

void cli_progress(time_t *last, int final, const char *fmt, ...) {
    static int tty = -1;
    if (tty < 0) tty = isatty(fileno(stderr));
    time_t now = time(NULL);
    if (!final && now - *last < (tty ? 1 : CLI_PROGRESS_LOG_SECONDS)) return;
    *last = now;
    va_list ap;
    va_start(ap, fmt);
    if (tty) fputs("\r\033[K", stderr); // back to the line's start and clear it
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    if (final || !tty) fputc('\n', stderr);
}
