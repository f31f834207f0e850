// bench_tokenize.c: encode throughput (MB/s) of the NeoX and World tokenizers on
// tests/fixtures/tinyshakespeare.txt, one thread, median of BENCH_RUNS runs. Each run loads
// a fresh tokenizer (outside the timing), so the NeoX word cache starts cold every time.
// Throughput is bytes per second of the encoding thread's CPU time (CLOCK_THREAD_CPUTIME_ID),
// so other work on a shared machine does not distort it; the wall-clock figure is printed
// beside it. Prints the targets beside the figures; never fails on timing.
#include "core/compute/blas.h"
#include "core/tokenize/tokenizer.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define BENCH_RUNS 7
#define TARGET_NEOX_MBS 10.0
#define TARGET_WORLD_MBS 50.0

static double now(clockid_t clock) {
    struct timespec ts;
    clock_gettime(clock, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static char *read_file(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *b = malloc((size_t)n + 1);
    if (b && fread(b, 1, (size_t)n, f) != (size_t)n) {
        free(b);
        b = NULL;
    }
    fclose(f);
    *len = (size_t)n;
    return b;
}

static int bench(const char *name, const char *spec, const char *text, size_t len, double target) {
    double mbs[BENCH_RUNS], wall[BENCH_RUNS];
    size_t n_ids = 0;
    for (int r = 0; r < BENCH_RUNS; r++) {
        rwkv_tokenizer *t;
        if (rwkv_tokenizer_load(&t, spec)) {
            fprintf(stderr, "bench_tokenize: %s\n", rwkv_error_message());
            return 1;
        }
        int *ids;
        double t0 = now(CLOCK_THREAD_CPUTIME_ID), w0 = now(CLOCK_MONOTONIC);
        rwkv_status st = rwkv_tokenizer_encode(t, text, len, &ids, &n_ids);
        double dt = now(CLOCK_THREAD_CPUTIME_ID) - t0, dw = now(CLOCK_MONOTONIC) - w0;
        rwkv_tokenizer_free(t);
        if (st) {
            fprintf(stderr, "bench_tokenize: %s\n", rwkv_error_message());
            return 1;
        }
        free(ids);
        mbs[r] = (double)len / 1e6 / dt;
        wall[r] = (double)len / 1e6 / dw;
    }
    qsort(mbs, BENCH_RUNS, sizeof *mbs, cmp_double);
    qsort(wall, BENCH_RUNS, sizeof *wall, cmp_double);
    printf("%-6s encode: %7.1f MB/s (CPU time, median of %d, min %.1f, max %.1f; wall %.1f)  target >= %.0f MB/s  "
           "[%zu bytes -> %zu ids]\n",
           name, mbs[BENCH_RUNS / 2], BENCH_RUNS, mbs[0], mbs[BENCH_RUNS - 1], wall[BENCH_RUNS / 2], target, len,
           n_ids);
    return 0;
}

int main(int argc, char **argv) {
    rwkv_blas_ensure_coretype(argc, argv); // the kernels the CLI gets (see core/compute/blas.h)
    size_t len;
    char *text = read_file("tests/fixtures/tinyshakespeare.txt", &len);
    if (!text) {
        fprintf(stderr, "bench_tokenize: cannot read tests/fixtures/tinyshakespeare.txt (run from the repo root)\n");
        return 1;
    }
    int rc = bench("neox", "neox:tests/fixtures/20B_tokenizer.json", text, len, TARGET_NEOX_MBS);
    rc |= bench("world", "world:tests/fixtures/rwkv_vocab_v20230424.txt", text, len, TARGET_WORLD_MBS);
    free(text);
    return rc;
}
