// bench_patch.c: cost of an activation patching sweep with reuse of the corrupt run's state
// (cells in the shared prefix skipped, every other cell rerun from its position) against a
// naive rerun of every cell from position 0. 4 x 128 random model, T = 256, the corrupt prompt
// differs from the clean one at one token in the middle (a key in a passkey prompt).
// Target: >= 5x. Also the sweep of a WKV state tap (state_num), whose patch stops the
// parallel scan inside the chunk; the reuse sweeps are run BENCH_REPS times, medians printed.
#include "core/compute/blas.h"
#include "analyses/patching.h"
#include "bench_util.h"

#include <cblas.h>
#include <omp.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define BENCH_L 4
#define BENCH_C 128
#define BENCH_V 256
#define BENCH_T 256
#define BENCH_DIFF (BENCH_T / 2) // the one differing token
#define TARGET_SPEEDUP 5.0
#define BENCH_REPS 5 // reuse sweeps per tap; the median is reported

static uint64_t rng = 0x2545F4914F6CDD1Dull;
static double urand(void) {
    rng ^= rng >> 12, rng ^= rng << 25, rng ^= rng >> 27;
    return (double)((rng * 2685821657736338717ull) >> 11) / 9007199254740992.0;
}

// Weights in trained-model ranges (ln near 1, mixes in [0, 1], decays spread).
static void fill(rwkv_model *m) {
    for (int i = 0; i < m->table.n; i++) {
        const rwkv_param *p = &m->table.params[i];
        int in = p->ndim == 2 ? (int)p->shape[1] : 1;
        for (size_t j = 0; j < p->numel; j++) {
            double u = urand(), v;
            if (strstr(p->name, "ln") && strstr(p->name, "weight")) v = 1 + 0.2 * (2 * u - 1);
            else if (strstr(p->name, "ln")) v = 0.2 * (2 * u - 1);
            else if (strstr(p->name, "time_decay")) v = -3 + 4 * u;
            else if (strstr(p->name, "time_mix")) v = u;
            else v = 1.5 * (2 * u - 1) / sqrt((double)in);
            m->block[p->offset + j] = (rwkv_real)v;
        }
    }
    rwkv_model_refresh(m);
}

// CPU seconds of this process: on a shared machine a one-thread sweep's CPU time moves less
// than its wall time.
static double cpu_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

// Median wall and CPU seconds of BENCH_REPS reuse sweeps of one tap; the last result stays in *out.
static int time_sweep(rwkv_patch_result **out, const rwkv_model *m, const int *clean, const int *corrupt,
                      const rwkv_patch_opts *o, double *median, double *cpu_median) {
    double t[BENCH_REPS], u[BENCH_REPS];
    *out = NULL;
    for (int r = 0; r < BENCH_REPS; r++) {
        rwkv_patch_result_free(*out);
        double t0 = bench_now(), u0 = cpu_now();
        if (rwkv_patch_sweep(out, m, clean, corrupt, BENCH_T, o)) return 1;
        t[r] = bench_now() - t0;
        u[r] = cpu_now() - u0;
    }
    *median = bench_median(t, BENCH_REPS);
    *cpu_median = bench_median(u, BENCH_REPS);
    return 0;
}

int main(int argc, char **argv) {
    rwkv_blas_ensure_coretype(argc, argv); // the kernels the CLI gets (see core/compute/blas.h)
    // One thread for both sweeps: the model is small, and on a shared machine idle-spinning
    // worker threads cost more than they bring.
    omp_set_num_threads(1);
    openblas_set_num_threads(1);
    rwkv_config cfg = {.n_layer = BENCH_L, .n_embd = BENCH_C, .n_ffn = 4 * BENCH_C, .n_vocab = BENCH_V};
    rwkv_model *m;
    if (rwkv_model_alloc(&m, cfg)) return fprintf(stderr, "bench_patch: %s\n", rwkv_error_message()), 1;
    fill(m);
    int clean[BENCH_T], corrupt[BENCH_T];
    for (int t = 0; t < BENCH_T; t++) clean[t] = corrupt[t] = (int)(urand() * BENCH_V);
    corrupt[BENCH_DIFF] = (clean[BENCH_DIFF] + 1) % BENCH_V;
    rwkv_patch_opts o = {.n_taps = 1, .taps = {RWKV_TAP_RESID_IN}};
    rwkv_patch_metric_parse(&o.metric, "logit-diff:1,2", BENCH_V);
    rwkv_patch_result *fast, *naive, *state;
    double t_fast, t_state, u_fast, u_state;
    if (time_sweep(&fast, m, clean, corrupt, &o, &t_fast, &u_fast)) return fprintf(stderr, "bench_patch: %s\n", rwkv_error_message()), 1;
    rwkv_patch_opts os = o;
    os.taps[0] = RWKV_TAP_STATE_NUM;
    if (time_sweep(&state, m, clean, corrupt, &os, &t_state, &u_state)) return fprintf(stderr, "bench_patch: %s\n", rwkv_error_message()), 1;
    double t1 = bench_now();
    o.naive = 1;
    if (rwkv_patch_sweep(&naive, m, clean, corrupt, BENCH_T, &o)) return fprintf(stderr, "bench_patch: %s\n", rwkv_error_message()), 1;
    double t2 = bench_now();
    double maxd = 0;
    for (size_t i = 0; i < (size_t)o.n_taps * BENCH_L * BENCH_T; i++) {
        double d = fabs(fast->metric[i] - naive->metric[i]);
        if (!(d <= maxd)) maxd = d;
    }
    double speedup = (t2 - t1) / t_fast;
    printf("patch sweep: %dx%d model, V=%d, T=%d, tap resid_in, %d cells, corrupt differs at %d\n",
           BENCH_L, BENCH_C, BENCH_V, BENCH_T, o.n_taps * BENCH_L * BENCH_T, BENCH_DIFF);
    printf("  naive rerun:  %8.3f s  (%lld tokens)\n", t2 - t1, (long long)naive->tokens_rerun);
    printf("  prefix reuse: %8.3f s, CPU %.3f s  (%lld tokens; medians of %d)\n", t_fast, u_fast,
           (long long)fast->tokens_rerun, BENCH_REPS);
    printf("  state_num, prefix reuse: %8.3f s, CPU %.3f s  (%lld tokens; medians of %d)\n", t_state, u_state,
           (long long)state->tokens_rerun, BENCH_REPS);
    printf("  peak RSS %.0f MiB (corrupt-state checkpoints included)\n", bench_peak_rss_mib());
    printf("  speed-up %.1fx (target >= %.0fx): %s; max |metric diff| %.2e\n", speedup, TARGET_SPEEDUP,
           speedup >= TARGET_SPEEDUP ? "met" : "NOT met", maxd);
    // Where the saving comes from: cells in the shared prefix are free, the others rerun
    // T - p tokens instead of T. Without a shared prefix only the second part remains.
    printf("  note: with the first token differing (no shared prefix) the reuse reruns T(T+1)/2 tokens\n"
           "  per (tap, layer) instead of T^2: about %.1fx fewer tokens\n",
           (double)BENCH_T * BENCH_T / (BENCH_T * (BENCH_T + 1) / 2.0));
    rwkv_patch_result_free(fast);
    rwkv_patch_result_free(state);
    rwkv_patch_result_free(naive);
    rwkv_model_free(m);
    return 0;
}
