// bench_train.c: training speed (tokens/s) with the forward / backward / optimiser split,
// for the 4x128 byte model of scripts/train_tiny.sh and a 12x768 model (the 169M shape
// with a byte vocabulary, B=1, T=512). Target: backward <= 2.5x forward. Prints medians;
// never fails on timing.
#include "bench_util.h"

#include "core/compute/blas.h"
#include "core/train/adamw.h"
#include "core/train/init.h"
#include "core/train/train.h"

#include <omp.h>
#include <stdio.h>
#include <string.h>

#define BACKWARD_TARGET 2.5 // backward time / forward time

typedef struct {
    const char *name;
    rwkv_config cfg;
    int B, T, runs;
} bench_case;

static const bench_case CASES[] = {
    {"4x128 (train_tiny)", {.n_layer = 4, .n_embd = 128, .n_ffn = 512, .n_vocab = 256}, 16, 128, 7},
    {"12x768 (169M shape, byte vocab)", {.n_layer = 12, .n_embd = 768, .n_ffn = 3072, .n_vocab = 256}, 1, 512, 3},
};

static void run_case(const bench_case *c) {
    rwkv_model *m;
    rwkv_train *t;
    rwkv_adamw *opt;
    rwkv_batch b;
    rwkv_adamw_opts o = rwkv_adamw_defaults();
    if (rwkv_model_alloc(&m, c->cfg) || rwkv_init_model(m, 1) || rwkv_train_alloc(&t, c->cfg, c->B, c->T) ||
        rwkv_adamw_alloc(&opt, &m->table, &o) || rwkv_batch_alloc(&b, c->B, c->T)) {
        printf("%s: setup failed: %s\n", c->name, rwkv_error_message());
        return;
    }
    rwkv_real *grad = calloc(m->table.total, sizeof *grad);
    for (int i = 0; i < c->B * c->T; i++) b.inputs[i] = (i * 37) % 256, b.targets[i] = (i * 37 + 11) % 256;
    double tf[16], tb[16], to[16], loss, gn;
    for (int r = 0; r <= c->runs; r++) { // run 0 warms up
        double t0 = bench_now();
        rwkv_train_forward(t, m, &b, &loss);
        double t1 = bench_now();
        rwkv_train_backward(t, m, &b, grad);
        double t2 = bench_now();
        rwkv_adamw_step(opt, m->block, grad, &gn);
        rwkv_model_refresh(m);
        double t3 = bench_now();
        if (r) tf[r - 1] = t1 - t0, tb[r - 1] = t2 - t1, to[r - 1] = t3 - t2;
    }
    double f = bench_median(tf, c->runs), bw = bench_median(tb, c->runs), op = bench_median(to, c->runs);
    double tokens = (double)c->B * c->T;
    printf("%-32s B=%-2d T=%-3d %6.1fM params: %8.0f tokens/s | forward %7.1f ms | backward %7.1f ms (%.2fx forward, target <= %.1fx) | adamw %6.1f ms | activations %.0f MiB\n",
           c->name, c->B, c->T, m->table.total / 1e6, tokens / (f + bw + op), f * 1e3, bw * 1e3, bw / f,
           BACKWARD_TARGET, op * 1e3, t->arena_len * sizeof(rwkv_real) / 1048576.0);
    free(grad);
    rwkv_batch_free(&b);
    rwkv_adamw_free(opt);
    rwkv_train_free(t);
    rwkv_model_free(m);
}

int main(int argc, char **argv) {
    rwkv_blas_ensure_coretype(argc, argv);
    printf("training speed, %d threads, %d-bit, OpenBLAS %s\n", omp_get_max_threads(), RWKV_REAL_BITS,
           rwkv_blas_corename());
    size_t n = argc > 1 && !strcmp(argv[1], "--small") ? 1 : sizeof CASES / sizeof CASES[0]; // --small: 4x128 only
    for (size_t i = 0; i < n; i++) run_case(&CASES[i]);
    printf("peak RSS %.0f MiB\n", bench_peak_rss_mib());
    return 0;
}
