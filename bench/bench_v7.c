// bench_v7.c: RWKV-7 inference speed at the 0.1B G1 shape (L=12, C=768, 12 heads of 64,
// FFN 3072, vocab 65536, LoRA ranks 64/64/32/128), random weights, against this machine's
// measured limits, each round back to back. Prints medians; never fails on timing.
#include "bench_limits.h"
#include "bench_util.h"

#include "core/compute/blas.h"
#include "core/compute/forward.h"
#include "core/compute/forward_v7.h"
#include "core/compute/matvec.h"
#include "core/inspect/dump.h"
#include "core/model/model.h"

#include <stdio.h>
#include <string.h>
#include <unistd.h>

#define RUNS 3                // rounds of the engine figures; every figure is a median
#define DUMP_RUNS 5           // rounds of the dumps (each writes ~2 GB through the page cache: noisier)
#define SEQ_TOKENS 8          // sequential tokens timed per round
#define PAR_T 512             // tokens of the timed parallel call
#define BW_BYTES (1ull << 30) // the read-bandwidth array: 1 GiB
#define DUMP_T 128            // tokens of the dump comparison (one parallel chunk)
#define DUMP_STATE_EVERY 16   // state_wkv rows every 16th position (192 KiB per layer per row)

static const rwkv_config G1_01B = {.n_layer = 12, .n_embd = 768, .n_ffn = 3072, .n_vocab = 65536, .head_size = 64};
static const rwkv_v7_dims G1_01B_LORA = {.d_w = 64, .d_a = 64, .d_v = 32, .d_g = 128};

static void fill_random(rwkv_model *m) {
    uint64_t s = 88172645463325252ull;
    for (size_t i = 0; i < m->v7->total; i++) {
        s ^= s << 13, s ^= s >> 7, s ^= s << 17;
        m->v7->block[i] = (rwkv_real)((double)(s >> 11) / 9007199254740992.0 - 0.5) * 0.05f;
    }
}

// Elements of the matrices one token reads: every layer's projections and LoRA factors, and
// the head (the embedding contributes one row).
static double layer_matrix_elems(const rwkv_model *m) {
    const rwkv_config *c = &m->cfg;
    const rwkv_v7_dims *d = &m->v7->d;
    double C = c->n_embd, lora = 2.0 * C * (d->d_w + d->d_a + d->d_g) + 2.0 * C * d->d_v * (c->n_layer - 1) / c->n_layer;
    return c->n_layer * (4 * C * C + 2 * C * c->n_ffn + lora);
}

static double seq_ms(const rwkv_model *m, rwkv_workspace *ws, rwkv_state *s, rwkv_real *logits) {
    double t0 = bench_now();
    for (int i = 0; i < SEQ_TOKENS; i++) {
        int tok = (i * 7919) % m->cfg.n_vocab;
        if (rwkv_forward_seq(m, s, &tok, 1, logits, RWKV_LOGITS_LAST, NULL, ws)) return -1;
    }
    return (bench_now() - t0) / SEQ_TOKENS * 1e3;
}

// The matrix views of m (the layer matrices and the head), saved or put back, so that one
// model serves both the fp32 and the bf16 figures of a round.
typedef struct {
    rwkv_mat *views, head;
} view_set;

static view_set views_save(const rwkv_model *m) {
    size_t n = (size_t)RWKV_V7_N_VIEWS * m->cfg.n_layer;
    view_set v = {malloc(n * sizeof *v.views), m->mats.head};
    memcpy(v.views, m->v7->views, n * sizeof *v.views);
    return v;
}

static void views_use(rwkv_model *m, const view_set *v) {
    memcpy(m->v7->views, v->views, (size_t)RWKV_V7_N_VIEWS * m->cfg.n_layer * sizeof *v->views);
    m->mats.head = v->head;
}

static double par_tps(const rwkv_model *m, rwkv_workspace *ws, rwkv_state *s, const int *tok, rwkv_real *logits) {
    rwkv_state_reset(s);
    double t0 = bench_now();
    if (rwkv_forward_par(m, s, tok, PAR_T, logits, RWKV_LOGITS_LAST, NULL, ws)) return -1;
    return PAR_T / (bench_now() - t0);
}

// ms of the delta-rule scan alone over PAR_T tokens of one layer, times the layers.
static double scan_ms(const rwkv_model *m, rwkv_real *buf) {
    int C = m->cfg.n_embd, N = m->cfg.head_size, H = C / N;
    size_t tc = (size_t)PAR_T * C;
    rwkv_real *y = buf, *r = y + tc, *w = r + tc, *k = w + tc, *v = k + tc, *kk = v + tc, *a = kk + tc, *S = a + tc;
    double t0 = bench_now();
    for (int l = 0; l < m->cfg.n_layer; l++) rwkv_v7_wkv(y, S, NULL, r, w, k, v, kk, a, PAR_T, H, N);
    return (bench_now() - t0) * 1e3;
}

// Seconds of one parallel pass over DUMP_T tokens dumping `taps` at `positions` into path
// (taps NULL: the plain pass), from creating the file to closing it; -1 on an error.
static double dump_s(const rwkv_model *m, rwkv_workspace *ws, rwkv_state *s, const int *tok, const char *taps,
                     const char *positions, const char *path, rwkv_real *logits, rwkv_dump_compress compress) {
    rwkv_state_reset(s);
    double t0 = bench_now();
    if (!taps) return rwkv_forward_par(m, s, tok, DUMP_T, logits, RWKV_LOGITS_LAST, NULL, ws) ? -1 : bench_now() - t0;
    uint32_t mask[16];
    rwkv_positions pos;
    rwkv_dump *d;
    rwkv_dump_opts o = {.parallel = 1, .force = 1, .taps = taps, .positions = positions, .compress = compress};
    if (rwkv_select_taps(mask, m->cfg.n_layer, taps) || rwkv_select_restrict(mask, m->cfg, taps) ||
        rwkv_select_positions(&pos, positions))
        return -1;
    rwkv_status st = rwkv_dump_create(&d, path, m, mask, &pos, &o);
    rwkv_select_positions_free(&pos);
    if (!st) st = rwkv_dump_run(d, s, ws, tok, DUMP_T, NULL, NULL);
    if (!st) st = rwkv_dump_close(d);
    else rwkv_dump_free(d);
    double s_taken = bench_now() - t0;
    remove(path); // not the dump's work: unlinking drops hundreds of MB of page cache
    return st ? -1 : s_taken;
}

static double med(double *v) { return bench_median(v, RUNS); }
static double dmed(double *v) { return bench_median(v, DUMP_RUNS); }

int main(int argc, char **argv) {
    rwkv_blas_ensure_coretype(argc, argv);
    printf("RWKV-7 bench: 0.1B G1 shape (L=12, C=768, H=12 x N=64, F=3072, V=65536, LoRA 64/64/32/128), "
           "random weights, fp32\n");
    printf("threads: %d; OpenBLAS core: %s; matvec kernels: %s\n", omp_get_max_threads(), rwkv_blas_corename(),
           rwkv_matvec_bf16_path());
    rwkv_model *m;
    if (rwkv_v7_model_alloc(&m, G1_01B, G1_01B_LORA)) {
        fprintf(stderr, "%s\n", rwkv_error_message());
        return 1;
    }
    fill_random(m);
    int C = m->cfg.n_embd, V = m->cfg.n_vocab;
    rwkv_workspace *ws1, *wsT;
    rwkv_state *s;
    if (rwkv_workspace_alloc(&ws1, m->cfg, 1) || rwkv_workspace_alloc(&wsT, m->cfg, PAR_T) ||
        rwkv_state_alloc(&s, m->cfg)) {
        fprintf(stderr, "%s\n", rwkv_error_message());
        return 1;
    }
    rwkv_real *logits = malloc((size_t)V * sizeof *logits);
    rwkv_real *scan = calloc((size_t)PAR_T * C * 7 + (size_t)C * m->cfg.head_size, sizeof *scan);
    for (size_t i = 0; i < (size_t)PAR_T * C * 7; i++) scan[i] = (rwkv_real)((i % 97) * 0.01f);
    for (size_t i = 0; i < (size_t)PAR_T * C; i++) { // decays in (0.9, 1) and short removal keys: S stays finite
        scan[2 * (size_t)PAR_T * C + i] = (rwkv_real)(0.9 + (i % 89) * 0.001);
        scan[5 * (size_t)PAR_T * C + i] *= (rwkv_real)0.1;
    }
    int *tok = malloc(PAR_T * sizeof *tok);
    for (int i = 0; i < PAR_T; i++) tok[i] = (i * 7919) % V;
    size_t nbw = BW_BYTES / sizeof(float);
    float *bw_a = malloc(BW_BYTES);
    float *ga = calloc(512 * 768, 4), *gb = calloc(768 * 768, 4), *gc = calloc(512 * 768, 4);
#pragma omp parallel for schedule(static)
    for (size_t i = 0; i < nbw; i++) bw_a[i] = (float)(i & 7);
    double elems = layer_matrix_elems(m), bytes = (elems + (double)V * C) * sizeof(rwkv_real);
    double flops_per_token = 2.0 * elems;
    double bw[RUNS], gf[RUNS], ms[RUNS], tps[RUNS], sc[RUNS], rseq[RUNS], rpar[RUNS], ms16[RUNS], r16[RUNS];
    view_set f32 = views_save(m);
    if (rwkv_model_use_bf16(m)) { // bf16 views of the matrices; the block stays float for parallel mode
        fprintf(stderr, "%s\n", rwkv_error_message());
        return 1;
    }
    view_set b16 = views_save(m);
    // bf16 bytes per token: the viewed matrices in bf16, the float LoRA factors
    double bytes16 = (double)rwkv_model_mat_bytes(m) + (bytes - (double)rwkv_model_mat_bytes(m) * 2);
    views_use(m, &f32);
    seq_ms(m, ws1, s, logits); // warm-up: page in the weights
    for (int r = 0; r < RUNS; r++) {
        bw[r] = bench_read_bandwidth(bw_a, nbw, BW_PASSES);
        gf[r] = sgemm_gflops(ga, gb, gc);
        ms[r] = seq_ms(m, ws1, s, logits);
        views_use(m, &b16);
        ms16[r] = seq_ms(m, ws1, s, logits);
        views_use(m, &f32);
        tps[r] = par_tps(m, wsT, s, tok, logits);
        sc[r] = scan_ms(m, scan);
        if (ms[r] < 0 || tps[r] < 0) {
            fprintf(stderr, "engine error: %s\n", rwkv_error_message());
            return 1;
        }
        rseq[r] = ms[r] / (bytes / (bw[r] * 1e9) * 1e3);
        r16[r] = ms16[r] / (bytes16 / (bw[r] * 1e9) * 1e3);
        rpar[r] = tps[r] / (gf[r] * 1e9 / flops_per_token);
        fprintf(stderr, "round %d/%d: %.1f GB/s, %.0f GFLOP/s, seq %.1f ms, bf16 %.1f ms, T=%d %.0f tok/s, scan %.0f ms\n",
                r + 1, RUNS, bw[r], gf[r], ms[r], ms16[r], PAR_T, tps[r], sc[r]);
    }
    double BW = med(bw), GF = med(gf);
    printf("machine limits: read bandwidth %.1f GB/s, sgemm %.0f GFLOP/s (M=512, N=K=768)\n", BW, GF);
    printf("sequential fp32: %.2f ms/token; floor %.2f ms (%.0f MB / bandwidth); ratio %.2fx (target <= 1.3x)\n",
           med(ms), bytes / (BW * 1e9) * 1e3, bytes / 1e6, med(rseq));
    printf("sequential bf16 (matrices as bf16 views, LoRA float): %.2f ms/token; floor %.2f ms (%.0f MB / bandwidth); "
           "ratio %.2fx\n", med(ms16), bytes16 / (BW * 1e9) * 1e3, bytes16 / 1e6, med(r16));
    printf("parallel T=%d: %.0f tokens/s (last-position logits); ceiling %.0f tok/s at sgemm speed; %.0f%% of it "
           "(target >= 60%%)\n", PAR_T, med(tps), GF * 1e9 / flops_per_token, 100 * med(rpar));
    printf("  of which the delta-rule scan: %.0f ms per %d tokens (%.0f%% of the call)\n", med(sc), PAR_T,
           100 * med(sc) / (PAR_T / med(tps) * 1e3));
    // The engine figures' buffers go first: 1.6 GB of them slowed the dumps by ~25% here.
    free(bw_a); free(ga); free(gb); free(gc); free(scan);
    bw_a = ga = gb = gc = scan = NULL;
    rwkv_workspace_free(wsT);
    wsT = NULL;
    // A dump of every tap: the per-position taps at every position, state_wkv at every 16th.
    char path[64], every[32];
    snprintf(path, sizeof path, "/tmp/bench_v7_%d.h5", (int)getpid());
    snprintf(every, sizeof every, "every:%d", DUMP_STATE_EVERY);
    // Each round: the plain pass, then the three dumps; ratios to that round's plain pass.
    rwkv_workspace *wsD;
    rwkv_workspace_alloc(&wsD, m->cfg, DUMP_T);
    double plain[DUMP_RUNS], taps[DUMP_RUNS], state[DUMP_RUNS], notstate[DUMP_RUNS], rt[DUMP_RUNS], rs[DUMP_RUNS], rn[DUMP_RUNS];
    double tall[DUMP_RUNS], tnone[DUMP_RUNS], ra[DUMP_RUNS], rz[DUMP_RUNS];
    const rwkv_dump_compress SMALL = RWKV_DUMP_COMPRESS_SMALL;
    int bad = 0;
    for (int r = 0; r < DUMP_RUNS && !bad; r++) {
        plain[r] = dump_s(m, wsD, s, tok, NULL, NULL, NULL, logits, SMALL);
        taps[r] = dump_s(m, wsD, s, tok, "*", "all", path, logits, SMALL);
        tall[r] = dump_s(m, wsD, s, tok, "*", "all", path, logits, RWKV_DUMP_COMPRESS_ALL);
        tnone[r] = dump_s(m, wsD, s, tok, "*", "all", path, logits, RWKV_DUMP_COMPRESS_NONE);
        state[r] = dump_s(m, wsD, s, tok, "blocks.*.state_wkv", every, path, logits, SMALL);
        notstate[r] = dump_s(m, wsD, s, tok, "blocks.*.[!s]*,blocks.*.state_*_xprev,resid_out,logits", "all", path,
                             logits, SMALL);
        bad = plain[r] <= 0 || taps[r] <= 0 || tall[r] <= 0 || tnone[r] <= 0 || state[r] <= 0 || notstate[r] <= 0;
        rt[r] = taps[r] / plain[r], rs[r] = state[r] / plain[r], rn[r] = notstate[r] / plain[r];
        ra[r] = tall[r] / plain[r], rz[r] = tnone[r] / plain[r];
        fprintf(stderr, "dump round %d/%d: plain %.2f s, all taps %.2f s (--compress all %.2f s, none %.2f s), "
                "state_wkv every %d %.2f s, all but state_wkv %.2f s\n", r + 1, DUMP_RUNS, plain[r], taps[r], tall[r],
                tnone[r], DUMP_STATE_EVERY, state[r], notstate[r]);
    }
    rwkv_workspace_free(wsD);
    if (!bad)
        printf("dump T=%d: plain pass %.2f s; every tap but state_wkv, all positions, %.2f s (%.2fx); state_wkv "
               "every %d positions %.2f s (%.2fx); every tap incl. state_wkv at all positions %.2f s (%.2fx; "
               "target <= 3x)\n", DUMP_T, dmed(plain), dmed(notstate), dmed(rn), DUMP_STATE_EVERY, dmed(state), dmed(rs),
               dmed(taps), dmed(rt));
    if (!bad)
        printf("  the same with --compress all (state_wkv deflated too): %.2f s (%.2fx); --compress none: %.2f s "
               "(%.2fx)\n", dmed(tall), dmed(ra), dmed(tnone), dmed(rz));
    else fprintf(stderr, "dump error: %s\n", rwkv_error_message());
    printf("fp32 weights %.0f MiB; peak RSS %.0f MiB (with the 1 GiB bandwidth array)\n",
           m->v7->total * sizeof(rwkv_real) / 1048576.0, bench_peak_rss_mib());
    free(f32.views); free(b16.views);
    free(logits); free(tok);
    rwkv_workspace_free(ws1);
    rwkv_state_free(s);
    rwkv_model_free(m);
    return 0;
}
