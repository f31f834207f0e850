// bench_dump.c: the cost of dumping every tap of a 169M-shaped model over 4096 tokens,
// against the plain parallel forward. Each case runs in its own child process so that
// the peak RSS (getrusage ru_maxrss) of one does not mix with another.
//   targets: all taps <= 3x plain time, zero taps <= 3% over plain, all-taps RSS <= 1.5x plain.
#include "core/compute/forward.h"
#include "core/inspect/dump.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define BENCH_L 12
#define BENCH_C 768
#define BENCH_V 50277
#define BENCH_T 4096
#define BENCH_CHUNK 128 // tokens per parallel chunk
#define BENCH_SEED 1234u

typedef enum { CASE_PLAIN, CASE_ZERO_TAPS, CASE_ALL_TAPS } bench_case;
static const char *CASE_NAMES[] = {"plain forward", "dump, zero taps", "dump, all taps"};

typedef struct {
    double seconds, cpu; // wall time and CPU time (user + system) of the measured part
    long maxrss_kb;
    int ok;
} bench_result;

static uint64_t rng_state = BENCH_SEED;
static double uniform(void) { // xorshift64*, in [0, 1)
    rng_state ^= rng_state >> 12, rng_state ^= rng_state << 25, rng_state ^= rng_state >> 27;
    return (double)((rng_state * 2685821657736338717ull) >> 11) / 9007199254740992.0;
}

// Random weights of sane scale: unit-variance products, decays spread over [-5, 3].
static rwkv_model *random_model(void) {
    rwkv_config cfg = {BENCH_L, BENCH_C, 4 * BENCH_C, BENCH_V};
    rwkv_model *m;
    if (rwkv_model_alloc(&m, cfg)) return NULL;
    for (int i = 0; i < m->table.n; i++) {
        const rwkv_param *p = &m->table.params[i];
        rwkv_real *x = m->block + p->offset;
        int ln_w = strstr(p->name, ".weight") && strstr(p->name, "ln");
        double scale = p->ndim == 2 ? 1.7 / sqrt((double)p->shape[1]) : 0.5;
        for (size_t k = 0; k < p->numel; k++) {
            double u = uniform();
            if (ln_w) x[k] = 1;
            else if (strstr(p->name, "time_decay")) x[k] = (rwkv_real)(-5 + 8 * u);
            else if (strstr(p->name, "time_mix")) x[k] = (rwkv_real)u;
            else x[k] = (rwkv_real)(scale * (2 * u - 1));
        }
    }
    rwkv_model_refresh(m);
    return m;
}

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + 1e-9 * ts.tv_nsec;
}

static int run_case(bench_case c, const char *path, bench_result *res) {
    rwkv_model *m = random_model();
    rwkv_state *s = NULL;
    rwkv_workspace *ws = NULL;
    int *tok = malloc(BENCH_T * sizeof *tok);
    rwkv_real *logits = malloc(BENCH_V * sizeof *logits);
    if (!m || !tok || !logits || rwkv_state_alloc(&s, m->cfg) || rwkv_workspace_alloc(&ws, m->cfg, BENCH_CHUNK))
        return 1;
    for (int t = 0; t < BENCH_T; t++) tok[t] = (int)(uniform() * BENCH_V);
    uint32_t mask[BENCH_L + 1] = {0};
    rwkv_positions pos = {0};
    if (c == CASE_ALL_TAPS && rwkv_select_taps(mask, BENCH_L, "*")) return 1;
    struct rusage ru0, ru;
    getrusage(RUSAGE_SELF, &ru0);
    double t0 = now();
    rwkv_status st;
    if (c == CASE_PLAIN) {
        st = rwkv_forward_par(m, s, tok, BENCH_T, logits, RWKV_LOGITS_LAST, NULL, ws);
    } else {
        rwkv_dump *d;
        rwkv_dump_opts o = {.parallel = 1, .force = 1, .taps = c == CASE_ALL_TAPS ? "*" : ""};
        st = rwkv_dump_create(&d, path, m, mask, &pos, &o);
        if (!st) st = rwkv_dump_run(d, s, ws, tok, BENCH_T, NULL, NULL);
        if (!st) st = rwkv_dump_close(d);
        else rwkv_dump_free(d);
    }
    res->seconds = now() - t0;
    if (st) fprintf(stderr, "bench_dump: %s\n", rwkv_error_message());
    getrusage(RUSAGE_SELF, &ru);
    res->cpu = (ru.ru_utime.tv_sec - ru0.ru_utime.tv_sec) + 1e-6 * (ru.ru_utime.tv_usec - ru0.ru_utime.tv_usec) +
               (ru.ru_stime.tv_sec - ru0.ru_stime.tv_sec) + 1e-6 * (ru.ru_stime.tv_usec - ru0.ru_stime.tv_usec);
    res->maxrss_kb = ru.ru_maxrss;
    res->ok = st == RWKV_OK;
    return 0;
}

// Runs one case in a child; the result comes back through a pipe.
static bench_result in_child(bench_case c, const char *path) {
    bench_result r = {0};
    int fd[2];
    if (pipe(fd)) return r;
    pid_t pid = fork();
    if (pid == 0) {
        close(fd[0]);
        bench_result mine = {0};
        run_case(c, path, &mine);
        ssize_t w = write(fd[1], &mine, sizeof mine);
        _exit(w == (ssize_t)sizeof mine ? 0 : 1);
    }
    close(fd[1]);
    if (read(fd[0], &r, sizeof r) != (ssize_t)sizeof r) r.ok = 0;
    close(fd[0]);
    waitpid(pid, NULL, 0);
    return r;
}

int main(void) {
    char path[256];
    const char *tmp = getenv("TMPDIR");
    snprintf(path, sizeof path, "%s/bench_dump_%d.h5", tmp ? tmp : "/tmp", (int)getpid());
    printf("bench_dump: L=%d C=%d V=%d, %d tokens, parallel mode, chunk %d\n", BENCH_L, BENCH_C, BENCH_V,
           BENCH_T, BENCH_CHUNK);
    bench_result r[3];
    for (int c = 0; c < 3; c++) {
        r[c] = in_child((bench_case)c, path);
        if (!r[c].ok) {
            fprintf(stderr, "bench_dump: case '%s' failed\n", CASE_NAMES[c]);
            unlink(path);
            return 1;
        }
        printf("  %-16s %8.2f s wall %8.2f s cpu   peak RSS %7.1f MB\n", CASE_NAMES[c], r[c].seconds, r[c].cpu,
               r[c].maxrss_kb / 1024.0);
        fflush(stdout);
    }
    FILE *f = fopen(path, "rb");
    long size = 0;
    if (f) { fseek(f, 0, SEEK_END); size = ftell(f); fclose(f); }
    unlink(path);
    double all = r[2].seconds / r[0].seconds, zero = r[1].seconds / r[0].seconds - 1;
    double rss = (double)r[2].maxrss_kb / r[0].maxrss_kb;
    printf("  all-taps dump: %.2fx the plain pass (target <= 3x; cpu %.2fx), file %.1f MB\n", all,
           r[2].cpu / r[0].cpu, size / 1048576.0);
    printf("  zero-taps dump: %+.1f%% over plain (target <= 3%%; cpu %+.1f%%)\n", 100 * zero,
           100 * (r[1].cpu / r[0].cpu - 1));
    printf("  (wall-time ratios are only meaningful on an otherwise idle machine; load now: see uptime)\n");
    printf("  peak RSS all taps / plain: %.2fx (target <= 1.5x)\n", rss);
    return 0;
}
