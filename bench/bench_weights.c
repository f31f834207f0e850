// bench_weights.c: weights kept in their file's type (issue 15). Random bf16 safetensors
// files in real RWKV-4 shapes are written to /tmp and deleted afterwards:
//   1. per shape (169M, 1.5B, 3B, 7B), a fresh process loads the file in place and runs 16
//      sequential tokens: peak RSS against 1.1x the file + 200 MB, load and info times, ms/token;
//   2. at 169M, in RUNS rounds: sequential ms/token of fp32, bf16, fp16 (mapped files), int8 (I8
//      blocks) and bf16 converted in memory, each as a ratio to the floor of the bytes it reads at
//      the bandwidth read just before it; parallel T=512 tokens/s with bf16 weights (tiled GEMMs)
//      as a share of the fp32 path's in the same round.
// Shapes are skipped, with a message, when /tmp or the memory is short. RWKV_BENCH_SMALL=1
// runs only the 169M shape. Prints medians; never fails on timing.
#include "bench_util.h"

#include "core/compute/blas.h"
#include "core/compute/forward.h"
#include "core/model/model.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/statvfs.h>
#include <sys/wait.h>
#include <unistd.h>

#define RUNS 7                // rounds of the 169M speed figures; medians over them
#define SEQ_TOKENS 16         // sequential tokens per run
#define PAR_T 512             // tokens of the parallel figure
#define BW_BYTES (1ull << 30) // the read-bandwidth array
#define RSS_SLACK_MB 200.0    // the allowance over 1.1x the file
#define RSS_FACTOR 1.1
#define SPARE_BYTES (2ull << 30) // disk and memory kept free beyond the file
#define WRITE_CHUNK (1u << 20)   // elements generated and written per fwrite

typedef struct {
    const char *name;
    rwkv_config cfg;
} shape;

static const shape SHAPES[] = {
    {"169M", {.n_layer = 12, .n_embd = 768, .n_ffn = 3072, .n_vocab = 50277}},
    {"1.5B", {.n_layer = 24, .n_embd = 2048, .n_ffn = 8192, .n_vocab = 50277}},
    {"3B", {.n_layer = 32, .n_embd = 2560, .n_ffn = 10240, .n_vocab = 50277}},
    {"7B", {.n_layer = 32, .n_embd = 4096, .n_ffn = 16384, .n_vocab = 50277}},
};
#define N_SHAPES (int)(sizeof SHAPES / sizeof SHAPES[0])

static uint64_t rng = 88172645463325252ull;

// A random 16-bit value of a float uniform in +-0.025 (the weights of bench_engine).
static uint16_t random16(int bf16) {
    rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
    float f = (float)(((double)(rng >> 11) / 9007199254740992.0 - 0.5) * 0.05);
    return bf16 ? rwkv_float_to_bf16(f) : rwkv_float_to_half(f);
}

// Writes a safetensors file of random 16-bit weights under the official names, streaming (a
// 7B model is never in memory). Returns the file size, 0 on a write error (file removed).
static uint64_t write_model(const char *path, rwkv_config cfg, int bf16) {
    rwkv_param_table t;
    if (rwkv_weights_table_alloc(&t, cfg)) return 0;
    size_t cap = (size_t)t.n * 160 + 64, k = 0;
    char *h = malloc(cap);
    uint64_t off = 0;
    k += (size_t)snprintf(h + k, cap - k, "{");
    for (int i = 0; i < t.n; i++) {
        const rwkv_param *p = &t.params[i];
        uint64_t bytes = 2ull * p->numel;
        if (p->ndim == 2)
            k += (size_t)snprintf(h + k, cap - k, "%s\"%s\":{\"dtype\":\"%s\",\"shape\":[%lld,%lld],\"data_offsets\":[%llu,%llu]}",
                                  i ? "," : "", p->name, bf16 ? "BF16" : "F16", (long long)p->shape[0],
                                  (long long)p->shape[1], (unsigned long long)off, (unsigned long long)(off + bytes));
        else
            k += (size_t)snprintf(h + k, cap - k, "%s\"%s\":{\"dtype\":\"%s\",\"shape\":[%lld],\"data_offsets\":[%llu,%llu]}",
                                  i ? "," : "", p->name, bf16 ? "BF16" : "F16", (long long)p->shape[0],
                                  (unsigned long long)off, (unsigned long long)(off + bytes));
        off += bytes;
    }
    k += (size_t)snprintf(h + k, cap - k, "}");
    while (k % 8) h[k++] = ' '; // the data starts 8-byte aligned
    FILE *f = fopen(path, "wb");
    uint16_t *buf = malloc(WRITE_CHUNK * sizeof *buf);
    int ok = f && buf;
    uint64_t hlen = k;
    unsigned char len8[8];
    for (int i = 0; i < 8; i++) len8[i] = (unsigned char)(hlen >> (8 * i));
    ok = ok && fwrite(len8, 1, 8, f) == 8 && fwrite(h, 1, k, f) == k;
    for (uint64_t left = off / 2; ok && left > 0;) {
        size_t n = left < WRITE_CHUNK ? (size_t)left : WRITE_CHUNK;
        for (size_t i = 0; i < n; i++) buf[i] = random16(bf16);
        ok = fwrite(buf, 2, n, f) == n;
        left -= n;
    }
    if (f && fclose(f)) ok = 0;
    if (!ok) {
        fprintf(stderr, "writing %s: %s\n", path, strerror(errno));
        unlink(path);
    }
    free(buf);
    free(h);
    rwkv_weights_table_free(&t);
    return ok ? 8 + hlen + off : 0;
}

static uint64_t mem_available(void) {
    FILE *f = fopen("/proc/meminfo", "r");
    char line[256];
    unsigned long long kb = 0;
    while (f && fgets(line, sizeof line, f))
        if (sscanf(line, "MemAvailable: %llu kB", &kb) == 1) break;
    if (f) fclose(f);
    return kb * 1024ull;
}

static uint64_t disk_available(const char *dir) {
    struct statvfs v;
    return statvfs(dir, &v) == 0 ? (uint64_t)v.f_bavail * v.f_frsize : 0;
}

static uint64_t file_bytes(rwkv_config cfg) {
    rwkv_param_table t;
    if (rwkv_weights_table_alloc(&t, cfg)) return 0;
    uint64_t n = 2ull * t.total;
    rwkv_weights_table_free(&t);
    return n;
}

// The child's figures, passed back through a pipe.
typedef struct {
    double rss_mib, load_s, info_s, ms_token;
    int ok;
} child_result;

// In a fresh process (fork, then nothing inherited is touched): open the file's headers (what
// info does), load it in place, run SEQ_TOKENS sequential tokens.
static void child_run(const char *path, int fd) {
    child_result r = {0};
    rwkv_model *m;
    double t0 = bench_now();
    rwkv_load_opts oh = {.weights = RWKV_WEIGHTS_HEADERS}, of = {.weights = RWKV_WEIGHTS_FILE};
    if (rwkv_model_open(&m, path, &oh) == RWKV_OK) {
        r.info_s = bench_now() - t0;
        rwkv_model_free(m);
        t0 = bench_now();
        if (rwkv_model_open(&m, path, &of) == RWKV_OK) {
            r.load_s = bench_now() - t0;
            rwkv_workspace *ws;
            rwkv_state *s;
            rwkv_real *lg = malloc((size_t)m->cfg.n_vocab * sizeof *lg);
            int ok = !rwkv_workspace_alloc(&ws, m->cfg, 1) && !rwkv_state_alloc(&s, m->cfg);
            t0 = bench_now();
            for (int i = 0; ok && i < SEQ_TOKENS; i++) {
                int tok = (i * 7919) % m->cfg.n_vocab;
                ok = rwkv_forward_seq(m, s, &tok, 1, lg, RWKV_LOGITS_LAST, NULL, ws) == RWKV_OK;
            }
            r.ms_token = (bench_now() - t0) / SEQ_TOKENS * 1e3;
            r.ok = ok;
        }
    }
    if (!r.ok) fprintf(stderr, "%s: %s\n", path, rwkv_error_message());
    r.rss_mib = bench_peak_rss_mib();
    if (write(fd, &r, sizeof r) != sizeof r) _exit(1);
    _exit(0);
}

static child_result run_child(const char *path) {
    child_result r = {0};
    int fd[2];
    if (pipe(fd)) return r;
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    if (pid == 0) child_run(path, fd[1]);
    if (read(fd[0], &r, sizeof r) != sizeof r) r.ok = 0;
    waitpid(pid, NULL, 0);
    close(fd[0]);
    close(fd[1]);
    return r;
}

// Figure 1 for one shape; returns 0 when skipped.
static int rss_figure(const shape *sh) {
    const char *path = "/tmp/rwkvscope-bench-weights.safetensors";
    uint64_t need = file_bytes(sh->cfg), disk = disk_available("/tmp"), mem = mem_available();
    if (disk < need + SPARE_BYTES || mem < need * RSS_FACTOR + SPARE_BYTES) {
        printf("%s (L=%d C=%d): skipped: needs %.1f GB of /tmp and %.1f GB of memory, has %.1f and %.1f\n",
               sh->name, sh->cfg.n_layer, sh->cfg.n_embd, (need + SPARE_BYTES) / 1e9,
               (need * RSS_FACTOR + SPARE_BYTES) / 1e9, disk / 1e9, mem / 1e9);
        return 0;
    }
    double t0 = bench_now();
    uint64_t size = write_model(path, sh->cfg, 1);
    double write_s = bench_now() - t0;
    if (!size) return 0;
    child_result r = run_child(path);
    unlink(path);
    double budget = RSS_FACTOR * size / 1048576.0 + RSS_SLACK_MB * 1e6 / 1048576.0;
    if (!r.ok) {
        printf("%s: the run failed (see above)\n", sh->name);
        return 1;
    }
    printf("%s (L=%d C=%d, bf16 safetensors %.2f GB, written in %.0f s): peak RSS %.0f MiB, budget 1.1x file + 200 MB "
           "= %.0f MiB (%s); info (headers) %.0f ms; load in place %.2f s; sequential %.1f ms/token (%d tokens)\n",
           sh->name, sh->cfg.n_layer, sh->cfg.n_embd, size / 1e9, write_s, r.rss_mib, budget,
           r.rss_mib <= budget ? "met" : "MISSED", r.info_s * 1e3, r.load_s, r.ms_token, SEQ_TOKENS);
    return 1;
}



enum { W_F32, W_BF16, W_F16, W_INT8, W_BF16_COPY, N_W };
static const char *const W_NAMES[N_W] = {"fp32", "bf16 mapped", "fp16 mapped", "int8", "bf16 copy (--weights bf16)"};
static const char *const W_SHORT[N_W] = {"fp32", "bf16", "fp16", "int8", "bf16 copy"};
static const double W_TARGET[N_W] = {1.2, 1.25, 1.25, 1.4, 1.25}; // ratio to the bandwidth floor

// ms per token of SEQ_TOKENS sequential tokens: the median of the single tokens' times, so a
// token during which another process held the core does not move the figure; -1 on an error.
static double seq_ms_median(const rwkv_model *m, rwkv_workspace *ws, rwkv_state *s, rwkv_real *logits) {
    double t[SEQ_TOKENS];
    for (int i = 0; i < SEQ_TOKENS; i++)
        if ((t[i] = bench_seq_ms(m, ws, s, logits, 1)) < 0) return -1;
    return bench_median(t, SEQ_TOKENS);
}

#define BW_READS 5 // single reads of the bandwidth array per floor; their median counts

// GB/s of the bandwidth array: the median of BW_READS reads, the same statistic as the
// tokens' (under load the fastest read and a typical token would not compare).
static double bandwidth_median(const float *a, size_t n) {
    double g[BW_READS];
    for (int i = 0; i < BW_READS; i++) g[i] = bench_read_bandwidth(a, n, 1);
    return bench_median(g, BW_READS);
}

// The 169M models and what the speed figures need.
typedef struct {
    rwkv_model *m[N_W];
    rwkv_workspace *ws1, *wsT;
    rwkv_state *s;
    rwkv_real *logits; // (V)
    int *tok;          // (PAR_T)
    float *bw_a;       // (BW_BYTES / 4) the bandwidth array
    size_t nbw;
} speed_setup;

// Figures of one round r, each sequential path right after its own bandwidth read (the floor
// it is held against), the paths and the parallel pair in an order that turns every round.
static int speed_round(speed_setup *z, int r, double bw[N_W][RUNS], double ms[N_W][RUNS], double ratio[N_W][RUNS],
                       double *tps32, double *tps16) {
    int bad = 0;
    for (int k = 0; k < N_W; k++) {
        int w = (k + r) % N_W;
        bw[w][r] = bandwidth_median(z->bw_a, z->nbw);
        ms[w][r] = seq_ms_median(z->m[w], z->ws1, z->s, z->logits);
        ratio[w][r] = ms[w][r] / (rwkv_model_mat_bytes(z->m[w]) / (bw[w][r] * 1e9) * 1e3);
        bad |= ms[w][r] < 0;
    }
    for (int k = 0; k < 2; k++) { // fp32 first in even rounds, bf16 first in odd ones
        if ((k + r) % 2 == 0) *tps32 = bench_par_tps(z->m[W_F32], z->wsT, z->s, z->tok, PAR_T, z->logits);
        else *tps16 = bench_par_tps(z->m[W_BF16], z->wsT, z->s, z->tok, PAR_T, z->logits);
    }
    bad |= *tps32 < 0 || *tps16 < 0;
    fprintf(stderr, "round %d/%d:", r + 1, RUNS);
    for (int w = 0; w < N_W; w++)
        fprintf(stderr, " %s %.2f ms %.2fx (%.1f GB/s);", W_SHORT[w], ms[w][r], ratio[w][r], bw[w][r]);
    fprintf(stderr, " T=%d %.0f vs %.0f tok/s %.0f%%\n", PAR_T, *tps32, *tps16, 100 * *tps16 / *tps32);
    return bad;
}

static void speed_report(speed_setup *z, double bw[N_W][RUNS], double ms[N_W][RUNS], double ratio[N_W][RUNS],
                         double *tps32, double *tps16, double *share) {
    double all_bw[N_W * RUNS];
    for (int w = 0; w < N_W; w++) memcpy(all_bw + w * RUNS, bw[w], sizeof bw[w]);
    printf("169M speed, medians of %d rounds (ms/token: median of %d tokens; floor: matrix bytes / the median of %d "
           "bandwidth reads just before; ratio: median over the rounds; bandwidth median %.1f GB/s):\n", RUNS,
           SEQ_TOKENS, BW_READS, bench_median(all_bw, N_W * RUNS));
    for (int w = 0; w < N_W; w++) {
        double bytes = (double)rwkv_model_mat_bytes(z->m[w]), BW = bench_median(bw[w], RUNS);
        printf("  sequential %s (%s): %.2f ms/token; floor %.2f ms (%.0f MB of matrices / %.1f GB/s); "
               "ratio %.2fx (target <= %.2fx)\n", W_NAMES[w], rwkv_dtype_name(z->m[w]->mats.att_key[0].type),
               bench_median(ms[w], RUNS), bytes / (BW * 1e9) * 1e3, bytes / 1e6, BW, bench_median(ratio[w], RUNS),
               W_TARGET[w]);
    }
    printf("  parallel T=%d: fp32 %.0f tok/s, bf16 in place (tiles of up to %d MiB widened per GEMM) %.0f tok/s: "
           "%.0f%% (median of the rounds' shares; target >= 90%%)\n", PAR_T, bench_median(tps32, RUNS),
           RWKV_TILE_FLOATS * 4 >> 20, bench_median(tps16, RUNS), 100 * bench_median(share, RUNS));
}

// Figure 2: the 169M models in every weight type, timed side by side.
static int speed_figures(void) {
    const char *pb = "/tmp/rwkvscope-bench-weights-bf16.safetensors", *ph = "/tmp/rwkvscope-bench-weights-fp16.safetensors";
    rwkv_config cfg = SHAPES[0].cfg;
    if (!write_model(pb, cfg, 1) || !write_model(ph, cfg, 0)) return 1;
    speed_setup z = {0};
    const char *src[N_W] = {pb, pb, ph, pb, pb};
    const rwkv_weights_mode mode[N_W] = {RWKV_WEIGHTS_FP32, RWKV_WEIGHTS_FILE, RWKV_WEIGHTS_FILE, RWKV_WEIGHTS_INT8,
                                         RWKV_WEIGHTS_BF16};
    int bad = 0;
    for (int w = 0; w < N_W && !bad; w++) {
        rwkv_load_opts o = {.weights = mode[w]};
        bad = rwkv_model_open(&z.m[w], src[w], &o) != RWKV_OK;
    }
    unlink(pb); // the mappings stay valid until unmapped
    unlink(ph);
    if (bad) {
        fprintf(stderr, "%s\n", rwkv_error_message());
        for (int w = 0; w < N_W; w++) rwkv_model_free(z.m[w]);
        return 1;
    }
    rwkv_workspace_alloc(&z.ws1, cfg, 1);
    rwkv_workspace_alloc(&z.wsT, cfg, PAR_T);
    rwkv_state_alloc(&z.s, cfg);
    z.logits = malloc((size_t)cfg.n_vocab * sizeof *z.logits);
    z.tok = malloc(PAR_T * sizeof *z.tok);
    for (int i = 0; i < PAR_T; i++) z.tok[i] = (i * 7919) % cfg.n_vocab;
    z.nbw = BW_BYTES / sizeof(float);
    z.bw_a = rwkv_calloc_huge(z.nbw, sizeof(float), "bandwidth array"); // on huge pages like the weights
#pragma omp parallel for schedule(static)
    for (size_t i = 0; i < z.nbw; i++) z.bw_a[i] = (float)(i & 7);
    double bw[N_W][RUNS], ms[N_W][RUNS], ratio[N_W][RUNS], tps32[RUNS], tps16[RUNS], share[RUNS];
    for (int w = 0; w < N_W; w++) bench_seq_ms(z.m[w], z.ws1, z.s, z.logits, SEQ_TOKENS); // warm-up: page the weights in
    bench_par_tps(z.m[W_F32], z.wsT, z.s, z.tok, PAR_T, z.logits);
    bench_par_tps(z.m[W_BF16], z.wsT, z.s, z.tok, PAR_T, z.logits);
    for (int r = 0; r < RUNS && !bad; r++) {
        bad = speed_round(&z, r, bw, ms, ratio, &tps32[r], &tps16[r]);
        share[r] = tps16[r] / tps32[r];
    }
    if (bad) fprintf(stderr, "engine error: %s\n", rwkv_error_message());
    else speed_report(&z, bw, ms, ratio, tps32, tps16, share);
    free(z.bw_a); free(z.logits); free(z.tok);
    rwkv_workspace_free(z.ws1);
    rwkv_workspace_free(z.wsT);
    rwkv_state_free(z.s);
    for (int w = 0; w < N_W; w++) rwkv_model_free(z.m[w]);
    return bad;
}

int main(int argc, char **argv) {
    rwkv_blas_ensure_coretype(argc, argv);
    const char *small = getenv("RWKV_BENCH_SMALL");
    printf("weights bench: bf16 safetensors read in place, random weights in RWKV-4 shapes (V=50277, F=4C)\n");
    printf("threads: %d; OpenBLAS core: %s; cblas_sbgemm: not in Debian 12's OpenBLAS 0.3.21 build "
           "(parallel mode widens bf16 tiles for sgemm)\n", omp_get_max_threads(), rwkv_blas_corename());
    double load[3] = {0};
    if (getloadavg(load, 3) > 0) printf("machine load average at start: %.2f %.2f %.2f (1, 5, 15 min)\n", load[0], load[1], load[2]);
    for (int i = 0; i < N_SHAPES; i++) { // first, while this process is small: children fork from it
        if (i > 0 && small && *small == '1') {
            printf("%s: skipped (RWKV_BENCH_SMALL=1)\n", SHAPES[i].name);
            continue;
        }
        rss_figure(&SHAPES[i]);
    }
    int st = speed_figures();
    if (getloadavg(load, 3) > 0) printf("machine load average at end: %.2f %.2f %.2f\n", load[0], load[1], load[2]);
    return st;
}
