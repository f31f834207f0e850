// bench_deflate.c: the dump's chunk compressor (core/inspect/deflate.c) alone, single-threaded,
// on 600 shuffled chunks of 64 x 768 float32 activations of varying scale: whole-chunk MB/s
// and the compressed ratio. Medians of 5 passes.
#include "bench_util.h"
#include "core/inspect/deflate.h"

#include <stdint.h>
#include <stdio.h>

#define BENCH_CHUNKS 600
#define BENCH_ROWS 64
#define BENCH_D 768
#define BENCH_REPS 5

// Uniform values in [-0.5, 0.5) scaled by 1 + 0.01 * channel: the exponent plane spans
// several binades, as activations do.
static void fill_chunk(float *x, uint64_t *s) {
    for (int i = 0; i < BENCH_ROWS * BENCH_D; i++) {
        *s ^= *s << 13, *s ^= *s >> 7, *s ^= *s << 17; // xorshift64
        double u = (double)(*s >> 11) / 9007199254740992.0; // / 2^53
        x[i] = (float)((u - 0.5) * (1 + (i % BENCH_D) * 0.01));
    }
}

int main(void) {
    size_t n = (size_t)BENCH_ROWS * BENCH_D, bytes = n * sizeof(float);
    unsigned char *chunks = malloc(BENCH_CHUNKS * bytes);
    float *x = malloc(bytes);
    rwkv_deflate c;
    if (!chunks || !x || rwkv_deflate_init(&c, bytes)) {
        fprintf(stderr, "bench_deflate: out of memory\n");
        return 1;
    }
    uint64_t s = 88172645463325252ull;
    for (int k = 0; k < BENCH_CHUNKS; k++) {
        fill_chunk(x, &s);
        rwkv_deflate_shuffle(chunks + k * bytes, n, 0, x, n, sizeof(float));
    }
    double t[BENCH_REPS];
    size_t total = 0;
    for (int r = 0; r < BENCH_REPS; r++) {
        total = 0;
        double t0 = bench_now();
        for (int k = 0; k < BENCH_CHUNKS; k++) {
            size_t len = 0;
            if (rwkv_deflate_chunk(&c, chunks + k * bytes, n, sizeof(float), &len)) {
                fprintf(stderr, "bench_deflate: chunk %d failed\n", k);
                return 1;
            }
            total += len;
        }
        t[r] = bench_now() - t0;
    }
    double sec = bench_median(t, BENCH_REPS), mb = BENCH_CHUNKS * (double)bytes / 1e6;
    printf("deflate %d chunks of %dx%d float32 (%.0f MB): %.2f GB/s single-threaded, ratio %.4f, peak RSS %.0f MiB\n",
           BENCH_CHUNKS, BENCH_ROWS, BENCH_D, mb, mb / sec / 1e3, (double)total / (BENCH_CHUNKS * (double)bytes),
           bench_peak_rss_mib());
    rwkv_deflate_free(&c);
    free(chunks);
    free(x);
    return 0;
}
