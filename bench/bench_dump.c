// bench_dump.c: the cost of dumping every tap of a 169M-shaped model over 4096 tokens,
// against the plain parallel forward. Each case runs in its own child process so that
// the peak RSS (getrusage ru_maxrss) of one does not mix with another.
//   targets: all taps <= 3x plain time, zero taps <= 3% over plain, all-taps RSS <= 1.5x plain.
#include "core/compute/blas.h"
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
#define BENCH_REPS 2 // interleaved repetitions of plain and zero-taps (best of)

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
    rwkv_config cfg = {.n_layer = BENCH_L, .n_embd = BENCH_C, .n_ffn = 4 * BENCH_C, .n_vocab = BENCH_V};
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

typedef struct {
    rwkv_model *m;
    rwkv_state *s;
    rwkv_workspace *ws;
    int *tok;          // (BENCH_T)
    rwkv_real *logits; // (V)
} bench_env;

static int env_init(bench_env *e) {
    e->m = random_model();
    e->tok = malloc(BENCH_T * sizeof *e->tok);
    e->logits = malloc(BENCH_V * sizeof *e->logits);
    if (!e->m || !e->tok || !e->logits || rwkv_state_alloc(&e->s, e->m->cfg) ||
        rwkv_workspace_alloc(&e->ws, e->m->cfg, BENCH_CHUNK))
        return 1;
    for (int t = 0; t < BENCH_T; t++) e->tok[t] = (int)(uniform() * BENCH_V);
    return 0;
}

static double cpu_seconds(void) {
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return ru.ru_utime.tv_sec + 1e-6 * ru.ru_utime.tv_usec + ru.ru_stime.tv_sec + 1e-6 * ru.ru_stime.tv_usec;
}

// One timed pass of case c from the zero state; keeps the fastest wall and CPU time in res.
static void measure(bench_env *e, bench_case c, const char *path, bench_result *res) {
    uint32_t mask[BENCH_L + 1] = {0};
    rwkv_positions pos = {0};
    if (c == CASE_ALL_TAPS && rwkv_select_taps(mask, BENCH_L, "*")) return;
    rwkv_state_reset(e->s);
    double c0 = cpu_seconds(), t0 = now();
    rwkv_status st;
    if (c == CASE_PLAIN) {
        st = rwkv_forward_par(e->m, e->s, e->tok, BENCH_T, e->logits, RWKV_LOGITS_LAST, NULL, e->ws);
    } else {
        rwkv_dump *d;
        rwkv_dump_opts o = {.parallel = 1, .force = 1, .taps = c == CASE_ALL_TAPS ? "*" : ""};
        st = rwkv_dump_create(&d, path, e->m, mask, &pos, &o);
        if (!st) st = rwkv_dump_run(d, e->s, e->ws, e->tok, BENCH_T, NULL, NULL);
        if (!st) st = rwkv_dump_close(d);
        else rwkv_dump_free(d);
    }
    double wall = now() - t0, cpu = cpu_seconds() - c0;
    if (st) fprintf(stderr, "bench_dump: %s\n", rwkv_error_message());
    if (!res->ok || wall < res->seconds) res->seconds = wall;
    if (!res->ok || cpu < res->cpu) res->cpu = cpu;
    res->ok = st == RWKV_OK;
}

// Runs cases[0..n) reps times, interleaved, in a child (one model), so that a load spike
// on the shared machine hits each case alike; results come back through a pipe. The peak
// RSS is the child's.
static void in_child(const bench_case *cases, int n, int reps, const char *path, bench_result *out) {
    int fd[2];
    memset(out, 0, (size_t)n * sizeof *out);
    if (pipe(fd)) return;
    pid_t pid = fork();
    if (pid == 0) {
        close(fd[0]);
        bench_result mine[3] = {{0}};
        bench_env e = {0};
        if (!env_init(&e))
            for (int r = 0; r < reps; r++)
                for (int i = 0; i < n; i++) measure(&e, cases[i], path, &mine[i]);
        struct rusage ru;
        getrusage(RUSAGE_SELF, &ru);
        for (int i = 0; i < n; i++) mine[i].maxrss_kb = ru.ru_maxrss;
        ssize_t w = write(fd[1], mine, (size_t)n * sizeof *mine);
        _exit(w == (ssize_t)(n * sizeof *mine) ? 0 : 1);
    }
    close(fd[1]);
    if (read(fd[0], out, (size_t)n * sizeof *out) != (ssize_t)(n * sizeof *out)) out[0].ok = 0;
    close(fd[0]);
    waitpid(pid, NULL, 0);
}

int main(int argc, char **argv) {
    rwkv_blas_ensure_coretype(argc, argv); // the kernels the CLI gets (see core/compute/blas.h)
    char path[256];
    const char *tmp = getenv("TMPDIR");
    snprintf(path, sizeof path, "%s/bench_dump_%d.h5", tmp ? tmp : "/tmp", (int)getpid());
    printf("bench_dump: L=%d C=%d V=%d, %d tokens, parallel mode, chunk %d\n", BENCH_L, BENCH_C, BENCH_V,
           BENCH_T, BENCH_CHUNK);
    // Child 1: plain and zero-taps dump, interleaved twice (the zero-taps dump adds no memory,
    // so this child's peak RSS is the plain pass's). Child 2: the all-taps dump.
    bench_result r[3];
    const bench_case first[2] = {CASE_PLAIN, CASE_ZERO_TAPS}, second[1] = {CASE_ALL_TAPS};
    in_child(first, 2, BENCH_REPS, path, r);
    in_child(second, 1, 1, path, r + 2);
    for (int c = 0; c < 3; c++) {
        if (!r[c].ok) {
            fprintf(stderr, "bench_dump: case '%s' failed\n", CASE_NAMES[c]);
            unlink(path);
            return 1;
        }
        printf("  %-16s %8.2f s wall %8.2f s cpu   peak RSS %7.1f MB\n", CASE_NAMES[c], r[c].seconds, r[c].cpu,
               r[c].maxrss_kb / 1024.0);
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
    double load[1] = {0};
    getloadavg(load, 1);
    printf("  load average %.1f on %ld cores: wall-time ratios hold only on an otherwise idle machine\n", load[0],
           sysconf(_SC_NPROCESSORS_ONLN));
    printf("  peak RSS all taps / plain: %.2fx (target <= 1.5x)\n", rss);
    return 0;
}
