// bench_recall.c: passkey recall throughput (examples/s) at length 1024 for a 4 x 128 random
// byte model in sequential mode, with and without the prefix-state cache (median of RUNS). Never fails on timing.
#include "core/compute/blas.h"
#include "bench_util.h"

#include "analyses/recall.h"
#include "core/model/model.h"

#include <cblas.h>
#include <omp.h>
#include <stdio.h>

#define LEN 1024
#define TRIALS 2
#define N_DEPTHS 5
#define RUNS 3

static const rwkv_config SHAPE = {.n_layer = 4, .n_embd = 128, .n_ffn = 512, .n_vocab = 256};

static void fill_random(rwkv_model *m) {
    uint64_t s = 88172645463325252ull;
    for (size_t i = 0; i < m->table.total; i++) {
        s ^= s << 13, s ^= s >> 7, s ^= s << 17;
        m->block[i] = (rwkv_real)((double)(s >> 11) / 9007199254740992.0 - 0.5) * 0.2f;
    }
    rwkv_model_refresh(m);
}

static double run(const rwkv_model *m, int use_cache, rwkv_recall_stats *stats) {
    static const int lengths[1] = {LEN};
    static const double depths[N_DEPTHS] = {0, 0.25, 0.5, 0.75, 1};
    rwkv_recall_opts o = {.lengths = lengths, .n_lengths = 1, .depths = depths,
                          .n_depths = N_DEPTHS, .trials = TRIALS, .seed = 1, .use_cache = use_cache};
    rwkv_task_defaults(&o.task, RWKV_TASK_PASSKEY);
    rwkv_recall_cell cells[N_DEPTHS];
    double t0 = bench_now();
    rwkv_status st = rwkv_recall_run(m, &o, cells, stats, NULL);
    double dt = bench_now() - t0;
    if (st) fprintf(stderr, "bench_recall: %s\n", rwkv_error_message());
    return dt;
}

int main(int argc, char **argv) {
    rwkv_blas_ensure_coretype(argc, argv); // the kernels the CLI gets (see core/compute/blas.h)
    // A 4 x 128 model's matvecs are too small to share: one thread is fastest.
    omp_set_num_threads(1);
    openblas_set_num_threads(1);
    rwkv_model *m = NULL;
    if (rwkv_model_alloc(&m, SHAPE)) { fprintf(stderr, "bench_recall: %s\n", rwkv_error_message()); return 1; }
    fill_random(m);
    int n = N_DEPTHS * TRIALS;
    rwkv_recall_stats with, without;
    double tc[RUNS], tp[RUNS];
    for (int r = 0; r < RUNS; r++) {
        tc[r] = run(m, 1, &with);
        tp[r] = run(m, 0, &without);
    }
    double t_cache = bench_median(tc, RUNS), t_plain = bench_median(tp, RUNS);
    printf("recall passkey, length %d, model %dx%d, %d examples (depths 0..1), sequential mode, 1 thread\n",
           LEN, SHAPE.n_layer, SHAPE.n_embd, n);
    printf("  no cache:     %8.2f examples/s  (%lld tokens, %.0f tokens/s)\n", n / t_plain,
           (long long)without.tokens_run, without.tokens_run / t_plain);
    printf("  prefix cache: %8.2f examples/s  (%lld tokens fed)\n", n / t_cache, (long long)with.tokens_run);
    printf("  prefix-cache speed-up: %.2fx (tokens saved: %.0f%%)\n", t_plain / t_cache,
           100.0 * (1 - (double)with.tokens_run / without.tokens_run));
    printf("  peak RSS: %.1f MiB (sequential scoring: flat in the length)\n", bench_peak_rss_mib());
    rwkv_model_free(m);
    return 0;
}
