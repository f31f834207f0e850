// bench_engine.c: inference speed of a RWKV-4-Pile-169M-shaped random model, set against
// this machine's measured limits (read bandwidth and sgemm throughput). Prints medians;
// never fails on timing.
#include "bench_util.h"

#include "core/compute/blas.h"
#include "core/compute/forward.h"
#include "core/compute/matvec.h"
#include "core/model/model.h"

#include <cblas.h>
#include <omp.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define RUNS 5
#define SEQ_TOKENS 16
#define BW_BYTES (1ull << 30) // the read-bandwidth array: 1 GiB

static const rwkv_config PILE_169M = {.n_layer = 12, .n_embd = 768, .n_ffn = 3072, .n_vocab = 50277};

static void fill_random(rwkv_model *m) {
    uint64_t s = 88172645463325252ull;
    for (size_t i = 0; i < m->table.total; i++) {
        s ^= s << 13, s ^= s >> 7, s ^= s << 17;
        m->block[i] = (rwkv_real)((double)(s >> 11) / 9007199254740992.0 - 0.5) * 0.05f;
    }
    rwkv_model_refresh(m);
}

// GB/s reading a 1 GiB float array with all threads.
static double measure_bandwidth(void) {
    size_t n = BW_BYTES / sizeof(float);
    float *a = malloc(BW_BYTES);
#pragma omp parallel for schedule(static)
    for (size_t i = 0; i < n; i++) a[i] = (float)(i & 7);
    double t[RUNS];
    volatile float sink = 0;
    for (int r = 0; r < RUNS; r++) {
        double t0 = bench_now();
        float sum = 0;
#pragma omp parallel for simd reduction(+ : sum) schedule(static)
        for (size_t i = 0; i < n; i++) sum += a[i];
        t[r] = bench_now() - t0;
        sink += sum;
    }
    free(a);
    return BW_BYTES / bench_median(t, RUNS) / 1e9;
}

// sgemm GFLOP/s at M=512, N=K=768, the shape of a T=512 projection.
static double measure_sgemm(void) {
    int M = 512, N = 768, K = 768;
    float *a = calloc((size_t)M * K, 4), *b = calloc((size_t)N * K, 4), *c = calloc((size_t)M * N, 4);
    for (size_t i = 0; i < (size_t)M * K; i++) a[i] = (float)(i % 13) * 0.01f;
    for (size_t i = 0; i < (size_t)N * K; i++) b[i] = (float)(i % 7) * 0.01f;
    double t[RUNS];
    for (int r = 0; r < RUNS; r++) {
        int reps = 20;
        double t0 = bench_now();
        for (int q = 0; q < reps; q++)
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, M, N, K, 1, a, K, b, K, 0, c, N);
        t[r] = (bench_now() - t0) / reps;
    }
    free(a); free(b); free(c);
    return 2.0 * M * N * K / bench_median(t, RUNS) / 1e9;
}

// Median ms per token over RUNS runs of SEQ_TOKENS tokens each (after a warm-up).
static double seq_ms_per_token(const rwkv_model *m, rwkv_workspace *ws, rwkv_state *s, rwkv_real *logits) {
    int tok[SEQ_TOKENS];
    for (int i = 0; i < SEQ_TOKENS; i++) tok[i] = (i * 7919) % m->cfg.n_vocab;
    rwkv_forward_seq(m, s, tok, 2, logits, RWKV_LOGITS_LAST, NULL, ws);
    double t[RUNS];
    for (int r = 0; r < RUNS; r++) {
        double t0 = bench_now();
        for (int i = 0; i < SEQ_TOKENS; i++) rwkv_forward_seq(m, s, tok + i, 1, logits, RWKV_LOGITS_LAST, NULL, ws);
        t[r] = (bench_now() - t0) / SEQ_TOKENS * 1e3;
    }
    return bench_median(t, RUNS);
}

static double par_tokens_per_s(const rwkv_model *m, int T, rwkv_real *logits) {
    rwkv_workspace *ws;
    rwkv_state *s;
    rwkv_workspace_alloc(&ws, m->cfg, T);
    rwkv_state_alloc(&s, m->cfg);
    int *tok = malloc((size_t)T * sizeof *tok);
    for (int i = 0; i < T; i++) tok[i] = (i * 7919) % m->cfg.n_vocab;
    double t[RUNS];
    rwkv_forward_par(m, s, tok, T, logits, RWKV_LOGITS_LAST, NULL, ws); // warm-up
    for (int r = 0; r < RUNS; r++) {
        rwkv_state_reset(s);
        double t0 = bench_now();
        rwkv_forward_par(m, s, tok, T, logits, RWKV_LOGITS_LAST, NULL, ws);
        t[r] = bench_now() - t0;
    }
    free(tok);
    rwkv_workspace_free(ws);
    rwkv_state_free(s);
    return T / bench_median(t, RUNS);
}

// Peak RSS (MiB) of a child that runs n sequential tokens: the parent's peak must not mix in.
static double seq_rss_child(const rwkv_model *m, int n) {
    int fd[2];
    if (pipe(fd)) return -1;
    pid_t pid = fork();
    if (pid == 0) {
        rwkv_workspace *ws;
        rwkv_state *s;
        rwkv_workspace_alloc(&ws, m->cfg, 1);
        rwkv_state_alloc(&s, m->cfg);
        rwkv_real *lg = malloc((size_t)m->cfg.n_vocab * sizeof *lg);
        for (int i = 0; i < n; i++) {
            int t = i % m->cfg.n_vocab;
            rwkv_forward_seq(m, s, &t, 1, lg, RWKV_LOGITS_LAST, NULL, ws);
        }
        double rss = bench_peak_rss_mib();
        if (write(fd[1], &rss, sizeof rss) != sizeof rss) _exit(1);
        _exit(0);
    }
    double rss = -1;
    if (read(fd[0], &rss, sizeof rss) != sizeof rss) rss = -1;
    waitpid(pid, NULL, 0);
    close(fd[0]);
    close(fd[1]);
    return rss;
}

static size_t matrix_bytes(const rwkv_model *m, size_t elem) {
    size_t n = 0;
    for (int i = 0; i < m->table.n; i++)
        if (m->table.params[i].is_matrix) n += m->table.params[i].numel;
    return n * elem;
}

int main(int argc, char **argv) {
    rwkv_blas_ensure_coretype(argc, argv);
    printf("engine bench: RWKV-4-Pile-169M shape (L=12, C=768, F=3072, V=50277), random weights\n");
    printf("threads: %d; OpenBLAS core: %s (%s); bf16 matvec: %s\n", omp_get_max_threads(),
           rwkv_blas_corename(), rwkv_blas_core_note(), rwkv_matvec_bf16_path());
    double bw = measure_bandwidth(), gf = measure_sgemm();
    printf("machine limits: read bandwidth %.1f GB/s (1 GiB array); sgemm %.0f GFLOP/s (M=512, N=K=768)\n", bw, gf);
    rwkv_model *m;
    if (rwkv_model_alloc(&m, PILE_169M)) { fprintf(stderr, "%s\n", rwkv_error_message()); return 1; }
    fill_random(m);
    rwkv_workspace *ws;
    rwkv_state *s;
    rwkv_workspace_alloc(&ws, m->cfg, 1);
    rwkv_state_alloc(&s, m->cfg);
    rwkv_real *logits = malloc((size_t)m->cfg.n_vocab * sizeof *logits);
    double fp32_floor = matrix_bytes(m, 4) / (bw * 1e9) * 1e3;
    double ms32 = seq_ms_per_token(m, ws, s, logits);
    printf("sequential fp32: %.2f ms/token (median of %d x %d tokens); floor %.2f ms (%.0f MB / bandwidth); ratio %.2fx (target <= 1.2x)\n",
           ms32, RUNS, SEQ_TOKENS, fp32_floor, matrix_bytes(m, 4) / 1e6, ms32 / fp32_floor);
    rwkv_model_use_bf16(m);
    double bf16_floor = matrix_bytes(m, 2) / (bw * 1e9) * 1e3;
    double ms16 = seq_ms_per_token(m, ws, s, logits);
    printf("sequential bf16: %.2f ms/token; floor %.2f ms; ratio %.2fx (target <= 1.3x)\n", ms16, bf16_floor, ms16 / bf16_floor);
    free(m->bf16);
    m->bf16 = NULL;
    double flops_per_token = 2.0 * (matrix_bytes(m, 1) - (size_t)m->cfg.n_vocab * m->cfg.n_embd);
    double ceiling = gf * 1e9 / flops_per_token;
    int Ts[] = {512, 2048};
    for (int i = 0; i < 2; i++) {
        double tps = par_tokens_per_s(m, Ts[i], logits);
        printf("parallel T=%d: %.0f tokens/s (last-position logits); ceiling %.0f tok/s at sgemm speed; %.0f%% of it (target >= 60%% at T=512)\n",
               Ts[i], tps, ceiling, 100 * tps / ceiling);
    }
    double r64 = seq_rss_child(m, 64), r512 = seq_rss_child(m, 512);
    printf("peak RSS: %.0f MiB (this process); sequential run 64 tokens %.0f MiB, 512 tokens %.0f MiB (flat: %s)\n",
           bench_peak_rss_mib(), r64, r512, r512 <= r64 * 1.01 + 1 ? "yes" : "NO");
    free(logits);
    rwkv_workspace_free(ws);
    rwkv_state_free(s);
    rwkv_model_free(m);
    return 0;
}
