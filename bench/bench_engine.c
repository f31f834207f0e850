// bench_engine.c: inference speed of a RWKV-4-Pile-169M-shaped random model, set against
// this machine's measured limits (read bandwidth and sgemm throughput). The machine may be
// shared, so every round measures the limits and the figures back to back, and the ratios
// are medians of per-round ratios. Prints medians; never fails on timing.
#include "bench_limits.h"
#include "bench_util.h"

#include "core/compute/blas.h"
#include "core/compute/forward.h"
#include "core/compute/matvec.h"
#include "core/model/model.h"
#include "core/train/train.h"

#include <omp.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define RUNS 5                // rounds; every figure is a median over them
#define SEQ_TOKENS 16         // sequential tokens timed per round
#define BW_BYTES (1ull << 30) // the read-bandwidth array: 1 GiB
#define RSS_SHORT 32          // sequential runs whose peak RSS must agree
#define RSS_LONG 256

static const rwkv_config PILE_169M = {.n_layer = 12, .n_embd = 768, .n_ffn = 3072, .n_vocab = 50277};

static void fill_random(rwkv_model *m) {
    uint64_t s = 88172645463325252ull;
    for (size_t i = 0; i < m->table.total; i++) {
        s ^= s << 13, s ^= s >> 7, s ^= s << 17;
        m->block[i] = (rwkv_real)((double)(s >> 11) / 9007199254740992.0 - 0.5) * 0.05f;
    }
    rwkv_model_refresh(m);
}


// The same weight traffic as one sequential token through OpenBLAS sgemv, one call per
// matrix (what the engine did before its own kernels), in ms.
static double sgemv_ms(const rwkv_model *m, rwkv_real *x, rwkv_real *y) {
    const rwkv_weights *w = &m->w;
    int C = m->cfg.n_embd, F = m->cfg.n_ffn;
    size_t cc = (size_t)C * C, fc = (size_t)F * C;
    double t0 = bench_now();
    for (int l = 0; l < m->cfg.n_layer; l++) {
        const rwkv_real *sq[] = {w->att_receptance, w->att_key, w->att_value, w->att_output, w->ffn_receptance};
        for (int i = 0; i < 5; i++) rwkv_blas_matvec(y, sq[i] + l * cc, x, C, C);
        rwkv_blas_matvec(y, w->ffn_key + l * fc, x, F, C);
        rwkv_blas_matvec(y, w->ffn_value + l * fc, x, C, F);
    }
    rwkv_blas_matvec(y, w->head, x, m->cfg.n_vocab, C);
    return (bench_now() - t0) * 1e3;
}

// The same products through the engine's kernels over the model's current views, grouped as
// the engine groups them (time-mix r,k,v; output; channel-mix r,k; value; head), in ms.
static double kernels_ms(const rwkv_model *m, rwkv_real *x, rwkv_real *y) {
    const rwkv_mats *v = &m->mats;
    int C = m->cfg.n_embd, F = m->cfg.n_ffn;
    rwkv_real *y2 = y + F, *y3 = y + 2 * F; // disjoint outputs within the (V) buffer
    double t0 = bench_now();
    for (int l = 0; l < m->cfg.n_layer; l++) {
#define JOB(out, f, n, k) {out, v->f[l], x, n, k}
        rwkv_matvec_job rkv[3] = {JOB(y, att_receptance, C, C), JOB(y2, att_key, C, C), JOB(y3, att_value, C, C)};
        rwkv_matvec_job o = JOB(y, att_output, C, C);
        rwkv_matvec_job rk[2] = {JOB(y, ffn_receptance, C, C), JOB(y2, ffn_key, F, C)};
        rwkv_matvec_job vv = JOB(y, ffn_value, C, F);
#undef JOB
        rwkv_matvec_multi(rkv, 3);
        rwkv_matvec_multi(&o, 1);
        rwkv_matvec_multi(rk, 2);
        rwkv_matvec_multi(&vv, 1);
    }
    rwkv_matvec(y, v->head, x, m->cfg.n_vocab, C);
    return (bench_now() - t0) * 1e3;
}

// bf16 views kept aside, so that one model (one float block) switches between reading its
// float block and bf16 copies of it.
typedef struct {
    rwkv_mat *views; // (RWKV_N_MATS * L + 1)
    rwkv_mat head;
    void *buf;
} saved_views;

static size_t n_views(const rwkv_model *m) { return (size_t)RWKV_N_MATS * m->cfg.n_layer + 1; }

static int save_bf16_views(rwkv_model *m, saved_views *sv) {
    if (rwkv_model_use_bf16(m)) return 1;
    sv->views = malloc(n_views(m) * sizeof *sv->views);
    if (!sv->views) return 1;
    memcpy(sv->views, m->mat_store, n_views(m) * sizeof *sv->views);
    sv->head = m->mats.head;
    sv->buf = m->mat_buf;
    m->mat_buf = NULL; // the bench owns the bf16 buffer now
    rwkv_model_use_block(m);
    return 0;
}

static void set_views(rwkv_model *m, const saved_views *sv) {
    if (!sv) {
        rwkv_model_use_block(m);
        return;
    }
    memcpy(m->mat_store, sv->views, n_views(m) * sizeof *sv->views);
    m->mats.head = sv->head;
}


// Peak RSS (MiB) of a child that runs n sequential tokens: the parent's peak must not mix in.
// The child runs on one thread: libgomp's thread pool does not survive fork().
static double seq_rss_child(const rwkv_model *m, int n) {
    int fd[2];
    if (pipe(fd)) return -1;
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
        omp_set_num_threads(1);
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

static double med(double *v) { return bench_median(v, RUNS); }

int main(int argc, char **argv) {
    rwkv_blas_ensure_coretype(argc, argv);
    const char *wait = getenv("OMP_WAIT_POLICY"), *spin = getenv("GOMP_SPINCOUNT");
    printf("engine bench: RWKV-4-Pile-169M shape (L=12, C=768, F=3072, V=50277), random weights\n");
    printf("threads: %d; OMP_WAIT_POLICY=%s GOMP_SPINCOUNT=%s; OpenBLAS core: %s (%s); matvec kernels: %s\n",
           omp_get_max_threads(), wait ? wait : "(default)", spin ? spin : "(default)", rwkv_blas_corename(),
           rwkv_blas_core_note(), rwkv_matvec_bf16_path());
    double load[3] = {0};
    if (getloadavg(load, 3) > 0) printf("machine load average at start: %.2f\n", load[0]);
    fflush(stdout);

    rwkv_model *m;
    if (rwkv_model_alloc(&m, PILE_169M) || (fill_random(m), 0)) {
        fprintf(stderr, "%s\n", rwkv_error_message());
        return 1;
    }
    double rs = seq_rss_child(m, RSS_SHORT), rl = seq_rss_child(m, RSS_LONG); // fp32, before big buffers
    saved_views bf16;
    if (save_bf16_views(m, &bf16)) {
        fprintf(stderr, "%s\n", rwkv_error_message());
        return 1;
    }
    int C = m->cfg.n_embd, V = m->cfg.n_vocab, Tmax = 2048;
    rwkv_workspace *ws1, *wsT;
    rwkv_state *s;
    rwkv_workspace_alloc(&ws1, m->cfg, 1);
    rwkv_workspace_alloc(&wsT, m->cfg, Tmax);
    rwkv_state_alloc(&s, m->cfg);
    rwkv_real *logits = malloc((size_t)V * sizeof *logits), *x = calloc((size_t)m->cfg.n_ffn, sizeof *x);
    int *tok = malloc((size_t)Tmax * sizeof *tok);
    for (int i = 0; i < Tmax; i++) tok[i] = (i * 7919) % V;
    for (int i = 0; i < C; i++) x[i] = (rwkv_real)(i % 17) * 0.01f;
    size_t nbw = BW_BYTES / sizeof(float);
    float *bw_a = rwkv_calloc_huge(BW_BYTES / sizeof(float), sizeof(float), "bandwidth array"); // huge pages, as the weights
    float *ga = calloc(512 * 768, 4), *gb = calloc(768 * 768, 4), *gc = calloc(512 * 768, 4);
#pragma omp parallel for schedule(static)
    for (size_t i = 0; i < nbw; i++) bw_a[i] = (float)(i & 7);
    for (int i = 0; i < 512 * 768; i++) ga[i] = (float)(i % 13) * 0.01f;
    for (int i = 0; i < 768 * 768; i++) gb[i] = (float)(i % 7) * 0.01f;

    double bytes32 = (double)matrix_bytes(m, 4), bytes16 = (double)matrix_bytes(m, 2);
    double flops_per_token = 2.0 * ((double)matrix_bytes(m, 1) - (double)V * C); // layer matrices
    double bw[RUNS], gf[RUNS], ms32[RUNS], ms16[RUNS], gemv[RUNS], k32[RUNS], k16[RUNS], tps[2][RUNS];
    double r32[RUNS], r16[RUNS], rgemv[RUNS], rk32[RUNS], rk16[RUNS], rpar[2][RUNS];
    bench_seq_ms(m, ws1, s, logits, SEQ_TOKENS); // warm-up: page in the weights
    bench_par_tps(m, wsT, s, tok, 512, logits);
    for (int r = 0; r < RUNS; r++) { // one round: limits and figures back to back
        bw[r] = bench_read_bandwidth(bw_a, nbw, BW_PASSES);
        gf[r] = sgemm_gflops(ga, gb, gc);
        set_views(m, NULL);
        ms32[r] = bench_seq_ms(m, ws1, s, logits, SEQ_TOKENS);
        gemv[r] = sgemv_ms(m, x, logits);
        k32[r] = kernels_ms(m, x, logits);
        set_views(m, &bf16);
        k16[r] = kernels_ms(m, x, logits);
        ms16[r] = bench_seq_ms(m, ws1, s, logits, SEQ_TOKENS);
        set_views(m, NULL);
        tps[0][r] = bench_par_tps(m, wsT, s, tok, 512, logits);
        tps[1][r] = bench_par_tps(m, wsT, s, tok, 2048, logits);
        double ceiling = gf[r] * 1e9 / flops_per_token; // tokens/s if every GEMM ran at sgemm speed
        r32[r] = ms32[r] / (bytes32 / (bw[r] * 1e9) * 1e3);
        r16[r] = ms16[r] / (bytes16 / (bw[r] * 1e9) * 1e3);
        rgemv[r] = gemv[r] / k32[r];
        rk32[r] = k32[r] / (bytes32 / (bw[r] * 1e9) * 1e3);
        rk16[r] = k16[r] / (bytes16 / (bw[r] * 1e9) * 1e3);
        rpar[0][r] = tps[0][r] / ceiling;
        rpar[1][r] = tps[1][r] / ceiling;
        fprintf(stderr, "round %d/%d: %.1f GB/s, %.0f GFLOP/s, fp32 %.1f ms, bf16 %.1f ms, T=512 %.0f tok/s\n",
                r + 1, RUNS, bw[r], gf[r], ms32[r], ms16[r], tps[0][r]);
        if (ms32[r] < 0 || ms16[r] < 0 || tps[0][r] < 0 || tps[1][r] < 0) {
            fprintf(stderr, "engine error: %s\n", rwkv_error_message());
            return 1;
        }
    }
    double BW = med(bw), GF = med(gf);
    printf("machine limits: read bandwidth %.1f GB/s (1 GiB array, AVX-512 loads, all threads, best of %d reads); "
           "sgemm %.0f GFLOP/s (M=512, N=K=768)\n", BW, BW_PASSES, GF);
    printf("medians of %d rounds; ratios are medians of per-round ratios to that round's limit\n", RUNS);
    printf("sequential fp32: %.2f ms/token; floor %.2f ms (%.0f MB / bandwidth); ratio %.2fx (target <= 1.2x)\n",
           med(ms32), bytes32 / (BW * 1e9) * 1e3, bytes32 / 1e6, med(r32));
    printf("  its products alone: engine kernels %.2f ms (%.2fx floor); OpenBLAS sgemv, one call per matrix, "
           "%.2f ms (%.2fx the kernels)\n", med(k32), med(rk32), med(gemv), med(rgemv));
    printf("sequential bf16: %.2f ms/token; floor %.2f ms (%.0f MB / bandwidth); ratio %.2fx (target <= 1.3x)\n",
           med(ms16), bytes16 / (BW * 1e9) * 1e3, bytes16 / 1e6, med(r16));
    printf("  its products alone: %.2f ms (%.2fx floor)\n", med(k16), med(rk16));
    int Ts[2] = {512, 2048};
    for (int i = 0; i < 2; i++)
        printf("parallel T=%d: %.0f tokens/s (last-position logits); ceiling %.0f tok/s at sgemm speed; "
               "%.0f%% of it%s\n", Ts[i], med(tps[i]), GF * 1e9 / flops_per_token, 100 * med(rpar[i]),
               i == 0 ? " (target >= 60%)" : "");
    printf("peak RSS: sequential run of %d tokens %.0f MiB, of %d tokens %.0f MiB (flat: %s); "
           "fp32 weights %.0f MiB; this bench %.0f MiB (also holds the 1 GiB bandwidth array and bf16 weights)\n",
           RSS_SHORT, rs, RSS_LONG, rl, rl <= rs * 1.01 + 1 ? "yes" : "NO", m->table.total * sizeof(rwkv_real) / 1048576.0,
           bench_peak_rss_mib());
    if (getloadavg(load, 3) > 0) printf("machine load average at end: %.2f\n", load[0]);
    free(bw_a); free(ga); free(gb); free(gc); free(logits); free(x); free(tok);
    rwkv_workspace_free(ws1);
    rwkv_workspace_free(wsT);
    rwkv_state_free(s);
    free(bf16.views);
    free(bf16.buf);
    rwkv_model_free(m);
    return 0;
}
