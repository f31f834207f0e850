// forward_v7.c: the RWKV-7 block, following the official numpy reference
// (BlinkDL/RWKV-LM RWKV-v7/rwkv_v7_numpy.py) equation by equation. A chunk of one token runs
// its projections as matrix-vector products, a longer chunk as GEMMs over (n, C); the state
// scan runs token by token in both, so both modes give the same numbers.
#include "forward_v7.h"

#include "blas.h"
#include "kernels.h"
#include "matvec.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define V7_MAX_PRODUCTS 7     // projections sharing one call of products(): r, k, v, w1, a1, g1, v1
#define V7_NORM_MIN 1e-12     // kk / max(||kk||, 1e-12), as torch.nn.functional.normalize
#define V7_DECAY_SCALE 0.6065306597126334 // e^{-1/2}: w = exp(-e^{-1/2} sigmoid(.)), w in (0.545, 1)
#define V7_PAR_MIN_FLOPS (1 << 18) // scan work (n H N^2) below which it stays on one thread
#define V7_PAR_MIN_ELEMS (1 << 16) // (n, C) loops below this size stay on one thread
#define V7_HEAD_64 64             // the official head size, compiled as a constant in the scan
#define V7_COLS_MIN_T 16          // chunk length from which the scan runs on S^T (two transposes per call)
#define V7_LINE 64                // bytes of a cache line; the trace's rows start on one

#if RWKV_REAL_BITS == 64
#define V7_TANH tanh
#else
#define V7_TANH tanhf
#endif

struct rwkv_v7_scratch {
    rwkv_real *xw, *xa, *xg;   // (T, C) token-shifted mixes besides ws->xr, xk, xv
    rwkv_real *w, *a, *g;      // (T, C) decay, in-context learning rate, output gate
    rwkv_real *kk;             // (T, C) normalised removal key
    rwkv_real *v_first;        // (T, C) layer 0's value, mixed into later layers
    rwkv_real *vgate;          // (T, C) value residual gate
    rwkv_real *hw, *ha, *hv, *hg; // (T, n_lora) LoRA hidden rows
    rwkv_real *trace;          // (T, H*N*N) the state after each token, when state_wkv is tapped
    void *trace_mem;           // the allocation trace is aligned to V7_LINE in
};

rwkv_status rwkv_v7_scratch_alloc(struct rwkv_v7_scratch **out, rwkv_config cfg, int max_T) {
    *out = NULL;
    struct rwkv_v7_scratch *s = rwkv_calloc(1, sizeof *s, "RWKV-7 workspace");
    if (!s) return RWKV_ERR_NOMEM;
    size_t tc = (size_t)max_T * cfg.n_embd, td = (size_t)max_T * (cfg.n_lora > 0 ? cfg.n_lora : 1);
    rwkv_real **bufs[] = {&s->xw, &s->xa, &s->xg, &s->w, &s->a, &s->g, &s->kk, &s->v_first, &s->vgate};
    rwkv_real **hid[] = {&s->hw, &s->ha, &s->hv, &s->hg};
    int ok = 1;
    for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++)
        ok = ok && (*bufs[i] = rwkv_calloc(tc, sizeof(rwkv_real), "RWKV-7 workspace"));
    for (size_t i = 0; i < sizeof hid / sizeof hid[0]; i++)
        ok = ok && (*hid[i] = rwkv_calloc(td, sizeof(rwkv_real), "RWKV-7 workspace"));
    // On a cache line: the scan's tile stores (trace_transposed) each fill one line, not two halves.
    size_t trace_bytes = tc * (size_t)cfg.head_size * sizeof(rwkv_real) + V7_LINE;
    ok = ok && (s->trace_mem = rwkv_calloc(trace_bytes, 1, "RWKV-7 state trace"));
    if (ok) s->trace = (rwkv_real *)(((uintptr_t)s->trace_mem + V7_LINE - 1) & ~(uintptr_t)(V7_LINE - 1));
    if (!ok) {
        rwkv_v7_scratch_free(s);
        return RWKV_ERR_NOMEM;
    }
    *out = s;
    return RWKV_OK;
}

void rwkv_v7_scratch_free(struct rwkv_v7_scratch *s) {
    if (!s) return;
    void *bufs[] = {s->xw, s->xa, s->xg, s->w, s->a, s->g, s->kk, s->v_first, s->vgate,
                    s->hw, s->ha, s->hv, s->hg, s->trace_mem};
    for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++) free(bufs[i]);
    free(s);
}

int rwkv_v7_tap_width(rwkv_tap tap, rwkv_config cfg) {
    int v5 = cfg.version == RWKV_VERSION_5, v56 = v5 || cfg.version == RWKV_VERSION_6;
    if (v5 && tap == RWKV_TAP_ATT_W) return 0; // RWKV-5.2's decay is a parameter, not a row per token
    if (v56 && (tap == RWKV_TAP_ATT_A || tap == RWKV_TAP_ATT_KK || tap == RWKV_TAP_V_FIRST))
        return 0; // RWKV-7 only
    if (v56 && tap == RWKV_TAP_FFN_GATE) return cfg.n_embd;
    switch (tap) {
    case RWKV_TAP_ATT_GATE: case RWKV_TAP_FFN_GATE: case RWKV_TAP_STATE_NUM: case RWKV_TAP_STATE_DEN:
    case RWKV_TAP_STATE_MAX:
        return 0; // RWKV-4 only
    case RWKV_TAP_FFN_K: return cfg.n_ffn;
    case RWKV_TAP_LOGITS: return cfg.n_vocab;
    case RWKV_TAP_STATE_WKV: return cfg.n_embd * cfg.head_size; // H * N * N
    default: return cfg.n_embd;
    }
}

rwkv_real *rwkv_v7_rows(const rwkv_v7_chunk *c) { return c->ws->v7->w; }

void rwkv_v7_scratch_rows(const rwkv_v7_chunk *c, rwkv_real **rows_tc, rwkv_real **rows_tl) {
    struct rwkv_v7_scratch *s = c->ws->v7;
    rwkv_real *tc[8] = {s->xw, s->xa, s->xg, s->w, s->a, s->g, s->kk, s->vgate}, *tl[3] = {s->hw, s->ha, s->hg};
    memcpy(rows_tc, tc, sizeof tc);
    memcpy(rows_tl, tl, sizeof tl);
}

int rwkv_v7_tapped(const rwkv_v7_chunk *c, int layer, rwkv_tap tap) {
    return c->hook && c->hook->mask && (c->hook->mask[layer] >> tap & 1u);
}

rwkv_status rwkv_v7_tap(const rwkv_v7_chunk *c, int layer, rwkv_tap t, rwkv_real *data) {
    if (!rwkv_v7_tapped(c, layer, t)) return RWKV_OK;
    return c->hook->fn(c->hook->ctx, layer, t, c->pos, c->n, rwkv_tap_width(t, c->m->cfg), data);
}


rwkv_v7_product rwkv_v7_matrix(const rwkv_v7_chunk *c, rwkv_real *out, const rwkv_real *x, int which, int l) {
    const rwkv_v7_weights *w = c->m->v7;
    const rwkv_real *const fields[RWKV_V7_N_VIEWS] = {w->att_receptance, w->att_key, w->att_value, w->att_output,
                                                      w->att_gate, w->ffn_key, w->ffn_value, w->ffn_receptance};
    int C = c->m->cfg.n_embd, F = c->m->cfg.n_ffn;
    int N = which == RWKV_V7_FK ? F : C, K = which == RWKV_V7_FV ? F : C;
    const rwkv_real *W = fields[which] ? fields[which] + (size_t)l * N * K : NULL;
    return (rwkv_v7_product){out, x, W, N, K, RWKV_V7_MAT(w, which, l)};
}

void rwkv_v7_products(const rwkv_v7_chunk *c, const rwkv_v7_product *p, int n_products) {
    if (c->n > 1) {
        for (int i = 0; i < n_products; i++) {
            if (p[i].W) rwkv_blas_matmul_nt(p[i].out, p[i].x, p[i].W, c->n, p[i].N, p[i].K, 0);
            else rwkv_gemm_view(c->ws, p[i].out, p[i].x, p[i].V, c->n, p[i].N, p[i].K);
        }
        return;
    }
    rwkv_matvec_job jobs[V7_MAX_PRODUCTS];
    for (int i = 0; i < n_products; i++)
        jobs[i] = (rwkv_matvec_job){p[i].out, p[i].V ? *p[i].V : (rwkv_mat){RWKV_DT_REAL, p[i].W}, p[i].x, p[i].N, p[i].K};
    rwkv_matvec_multi(jobs, n_products);
}

// One row of a token-shift mix: x + (x_prev - x) m (RWKV-6 and 7), or m x + (1 - m) x_prev
// (RWKV-4 and 5.2); with no m, the difference x_prev - x itself (RWKV-6's sx).
static void mix_row(rwkv_real *o, const rwkv_real *x, const rwkv_real *xp, const rwkv_real *m, int C, int v67) {
    if (!m)
        for (int i = 0; i < C; i++) o[i] = xp[i] - x[i];
    else if (!v67)
        for (int i = 0; i < C; i++) o[i] = x[i] * m[i] + xp[i] * (1 - m[i]);
    else
        for (int i = 0; i < C; i++) o[i] = x[i] + (xp[i] - x[i]) * m[i];
}

rwkv_status rwkv_token_shift(const rwkv_v7_chunk *c, int l, rwkv_tap t, rwkv_real *const *out,
                             const rwkv_real *const *mix, int n_mix, rwkv_real *xprev) {
    rwkv_workspace *ws = c->ws;
    const int n = c->n, C = c->m->cfg.n_embd, v67 = c->m->cfg.version >= RWKV_VERSION_6;
    const size_t row = (size_t)C * sizeof(rwkv_real);
#pragma omp parallel for schedule(static) if ((size_t)n * C * n_mix >= V7_PAR_MIN_ELEMS)
    for (int r = 0; r < n; r++)
        for (int q = 0; q < n_mix; q++)
            mix_row(out[q] + (size_t)r * C, ws->xln + (size_t)r * C, r ? ws->xln + (size_t)(r - 1) * C : xprev, mix[q], C, v67);
    const rwkv_real *after = ws->xln; // (n, C) the shift state after each token
    if (rwkv_v7_tapped(c, l, t)) {
        memcpy(ws->tr_xprev, ws->xln, (size_t)n * row);
        rwkv_status st = rwkv_v7_tap(c, l, t, ws->tr_xprev);
        if (st) return st;
        for (int r = 0; r + 1 < n; r++) {
            size_t o = (size_t)r * C;
            if (memcmp(ws->tr_xprev + o, ws->xln + o, row))
                for (int q = 0; q < n_mix; q++) mix_row(out[q] + o + C, ws->xln + o + C, ws->tr_xprev + o, mix[q], C, v67);
        }
        after = ws->tr_xprev;
    }
    memcpy(xprev, after + (size_t)(n - 1) * C, row);
    return RWKV_OK;
}

rwkv_status rwkv_v7_scan(const rwkv_v7_chunk *c, int l, rwkv_real *S, void (*scan)(void *ctx, int t0, int t1, rwkv_real *trace),
                         void *ctx) {
    rwkv_real *trace = rwkv_v7_tapped(c, l, RWKV_TAP_STATE_WKV) ? c->ws->v7->trace : NULL;
    if (!trace) {
        scan(ctx, 0, c->n, NULL);
        return RWKV_OK;
    }
    const size_t D = (size_t)rwkv_tap_width(RWKV_TAP_STATE_WKV, c->m->cfg);
    rwkv_status st = RWKV_OK;
    for (int t0 = 0, t1; t0 < c->n && !st; t0 = t1) {
        for (t1 = t0 + 1; t1 < c->n && !(c->hook->scan_cut && c->hook->scan_cut(c->hook->ctx, l, c->pos + t1 - 1));) t1++;
        scan(ctx, t0, t1, trace + (size_t)t0 * D);
        st = c->hook->fn(c->hook->ctx, l, RWKV_TAP_STATE_WKV, c->pos + t0, t1 - t0, (int)D, trace + (size_t)t0 * D);
        memcpy(S, trace + (size_t)(t1 - 1) * D, D * sizeof(rwkv_real)); // the hook's last row carries on
    }
    return st;
}

static void add_bias(rwkv_real *x, const rwkv_real *b, int n, int C) {
    for (int t = 0; t < n; t++)
        for (int i = 0; i < C; i++) x[(size_t)t * C + i] += b[i];
}

void rwkv_v7_tanh(rwkv_real *x, size_t n) {
#pragma omp parallel for schedule(static) if (n >= V7_PAR_MIN_ELEMS)
    for (size_t i = 0; i < n; i++) x[i] = V7_TANH(x[i]);
}


// kk = normalize(k * k_k) per head; k = k + k (a - 1) k_a.
static void keys(rwkv_real *kk, rwkv_real *k, const rwkv_real *a, const rwkv_real *k_k, const rwkv_real *k_a,
                 int n, int C, int N) {
#pragma omp parallel for schedule(static) if ((size_t)n * C >= V7_PAR_MIN_ELEMS)
    for (int t = 0; t < n; t++) {
        size_t o = (size_t)t * C;
        for (int i = 0; i < C; i++) kk[o + i] = k[o + i] * k_k[i];
        for (int h = 0; h < C; h += N) {
            double ss = 0;
            for (int j = 0; j < N; j++) ss += (double)kk[o + h + j] * kk[o + h + j];
            double norm = sqrt(ss);
            rwkv_real inv = (rwkv_real)(1.0 / (norm > V7_NORM_MIN ? norm : V7_NORM_MIN));
            for (int j = 0; j < N; j++) kk[o + h + j] *= inv;
        }
        for (int i = 0; i < C; i++) k[o + i] += k[o + i] * (a[o + i] - 1) * k_a[i];
    }
}

// S (N, N) in place to its transpose.
static void transpose_square(rwkv_real *S, int N) {
    for (int i = 0; i < N; i++)
        for (int j = i + 1; j < N; j++) {
            rwkv_real x = S[(size_t)i * N + j];
            S[(size_t)i * N + j] = S[(size_t)j * N + i];
            S[(size_t)j * N + i] = x;
        }
}

// The S^T scan's trace: each token's S, written in W x W tiles of one vector of W reals per
// row, each transposed in registers by log2(W) butterfly stages; stage b swaps bit b of the row
// index with bit b of the column index (rows q and q + b trade blocks of b reals). W fills a
// register: 64 bytes (a cache line) under AVX-512, 32 bytes under AVX2, where GCC splits the
// shuffles of wider vectors into single elements.
typedef rwkv_real v7_zmm __attribute__((vector_size(64)));
typedef rwkv_real v7_ymm __attribute__((vector_size(32)));
#define V7_ZMM ((int)(sizeof(v7_zmm) / sizeof(rwkv_real)))
#define V7_YMM ((int)(sizeof(v7_ymm) / sizeof(rwkv_real)))
#define V7_LO(W, b, j) (((j) & (b)) ? (W) + (j) - (b) : (j)) // row q: its own block, then row q + b's
#define V7_HI(W, b, j) (((j) & (b)) ? (W) + (j) : (j) + (b)) // row q + b: row q's other block, then its own
#define V7_LANES4(F, W, b) F(W, b, 0), F(W, b, 1), F(W, b, 2), F(W, b, 3)
#define V7_LANES8(F, W, b) V7_LANES4(F, W, b), F(W, b, 4), F(W, b, 5), F(W, b, 6), F(W, b, 7)
#define V7_LANES16(F, W, b) V7_LANES8(F, W, b), F(W, b, 8), F(W, b, 9), F(W, b, 10), F(W, b, 11), \
                            F(W, b, 12), F(W, b, 13), F(W, b, 14), F(W, b, 15)
#if RWKV_REAL_BITS == 64
#define V7_LANES_ZMM V7_LANES8
#define V7_LANES_YMM V7_LANES4
#else
#define V7_LANES_ZMM V7_LANES16
#define V7_LANES_YMM V7_LANES8
#endif
// (A stage b >= W does nothing; its indices, taken for b % W = 0, stay in range.)
#define V7_STAGE(x, W, LANES, b)                                                                          \
    for (int q = 0; q < (W); q++)                                                                         \
        if ((b) < (W) && !(q & (b))) {                                                                    \
            __typeof__(x[0]) lo = __builtin_shufflevector(x[q], x[q + (b)], LANES(V7_LO, W, (b) % (W)));  \
            x[q + (b)] = __builtin_shufflevector(x[q], x[q + (b)], LANES(V7_HI, W, (b) % (W)));           \
            x[q] = lo;                                                                                    \
        }

// Asks for the next block of `rows` rows of a trace head at dst (N lines at most) to be in cache
// for writing. The tiles write a block in strips of one vector per row, which the hardware
// prefetcher does not follow: without this the trace write took 1.4x as long (measured at the
// 0.1B shape under AVX-512).
static inline __attribute__((always_inline)) void trace_prefetch(const rwkv_real *dst, int rows, int N) {
    for (int c = 0; c < (N < rows ? N : rows) * N; c += V7_LINE / (int)sizeof(rwkv_real))
        __builtin_prefetch(dst + c, 1, 3);
}

// dst (N, N) = St^T in tiles of W (N % W == 0) with vectors of type vec: the body of the
// trace_tiles_* kernels.
#define V7_TILES(vec, W, LANES)                                                                       \
    for (int i0 = 0; i0 < N; i0 += (W)) {                                                             \
        if (i0 + (W) < N) trace_prefetch(dst + (size_t)(i0 + (W)) * N, (W), N);                       \
        for (int j0 = 0; j0 < N; j0 += (W)) {                                                         \
            vec x[W];                                                                                 \
            for (int q = 0; q < (W); q++) memcpy(&x[q], St + (size_t)(j0 + q) * N + i0, sizeof x[q]); \
            V7_STAGE(x, W, LANES, 8) V7_STAGE(x, W, LANES, 4) V7_STAGE(x, W, LANES, 2)                \
            V7_STAGE(x, W, LANES, 1)                                                                  \
            for (int q = 0; q < (W); q++) memcpy(dst + (size_t)(i0 + q) * N + j0, &x[q], sizeof x[q]); \
        }                                                                                             \
    }

__attribute__((target("avx512f")))
static void trace_tiles_avx512(rwkv_real *dst, const rwkv_real *St, int N) { V7_TILES(v7_zmm, V7_ZMM, V7_LANES_ZMM) }

__attribute__((target("avx2")))
static void trace_tiles_avx2(rwkv_real *dst, const rwkv_real *St, int N) { V7_TILES(v7_ymm, V7_YMM, V7_LANES_YMM) }

// dst (N, N) = St^T, both row-major: St is the scan's S^T, dst a head of a trace row whose
// first rows the caller prefetched (trace_prefetch, V7_ZMM rows).
static void trace_transposed(rwkv_real *dst, const rwkv_real *St, int N) {
    if (N % V7_ZMM == 0 && __builtin_cpu_supports("avx512f")) trace_tiles_avx512(dst, St, N);
    else if (N % V7_YMM == 0 && __builtin_cpu_supports("avx2")) trace_tiles_avx2(dst, St, N);
    else
        for (int i = 0; i < N; i++)
            for (int j = 0; j < N; j++) dst[(size_t)i * N + j] = St[(size_t)j * N + i];
}

// One head over n tokens; rows are strided by C. The scan works on S^T (row j = key channel
// j), so both sums over j, (S kk)_i and (S r)_i, run with the vector lanes over i: no
// horizontal reduction, each sum in order of j. Inlined into the kernels below, so that for
// N = 64 the sums stay in registers.
static inline __attribute__((always_inline)) void wkv_head_body(
    rwkv_real *y, rwkv_real *S, rwkv_real *trace, const rwkv_real *r, const rwkv_real *w, const rwkv_real *k,
    const rwkv_real *v, const rwkv_real *kk, const rwkv_real *a, int n, int C, int N, size_t trace_stride) {
    rwkv_real kka[RWKV_V7_MAX_HEAD_SIZE], sa[RWKV_V7_MAX_HEAD_SIZE], yt[RWKV_V7_MAX_HEAD_SIZE];
    transpose_square(S, N); // S[j][i] from here on
    for (int t = 0; t < n; t++) {
        size_t o = (size_t)t * C;
        const rwkv_real *wt = w + o, *kt = k + o, *kkt = kk + o, *rt = r + o, *vt = v + o;
        rwkv_real *dst = trace ? trace + (size_t)t * trace_stride : NULL; // S, not S^T
        if (dst) trace_prefetch(dst, V7_ZMM, N); // in cache by the end of the token's update
        for (int i = 0; i < N; i++) sa[i] = yt[i] = 0, kka[i] = kkt[i] * a[o + i];
        for (int j = 0; j < N; j++) {
            const rwkv_real *col = S + (size_t)j * N, kj = kkt[j];
#pragma omp simd
            for (int i = 0; i < N; i++) sa[i] += col[i] * kj; // (S kk)_i, the old state
        }
        for (int j = 0; j < N; j++) {
            rwkv_real *col = S + (size_t)j * N, wj = wt[j], kaj = kka[j], kj = kt[j], rj = rt[j];
#pragma omp simd
            for (int i = 0; i < N; i++) {
                col[i] = col[i] * wj - sa[i] * kaj + vt[i] * kj; // S w - (S kk)(kk a)^T + v k^T
                yt[i] += col[i] * rj;
            }
        }
        for (int i = 0; i < N; i++) y[o + i] = yt[i]; // (S r)_i
        if (dst) trace_transposed(dst, S, N);
    }
    transpose_square(S, N);
}

// Compiled for AVX-512 and AVX2 as well; the official head size (64) as a constant.
__attribute__((target_clones("avx512f", "avx2", "default")))
static void wkv_head_cols(rwkv_real *y, rwkv_real *S, rwkv_real *trace, const rwkv_real *r, const rwkv_real *w,
                          const rwkv_real *k, const rwkv_real *v, const rwkv_real *kk, const rwkv_real *a, int n,
                          int C, int N, size_t trace_stride) {
    if (N == V7_HEAD_64) wkv_head_body(y, S, trace, r, w, k, v, kk, a, n, C, V7_HEAD_64, trace_stride);
    else wkv_head_body(y, S, trace, r, w, k, v, kk, a, n, C, N, trace_stride);
}

// The same on S as it is, for a chunk of a few tokens (the transposes would cost more than
// the scan): each row's sums run over j, vectorised with a reduction.
__attribute__((target_clones("avx512f", "avx2", "default")))
static void wkv_head_rows(rwkv_real *y, rwkv_real *S, rwkv_real *trace, const rwkv_real *r, const rwkv_real *w,
                          const rwkv_real *k, const rwkv_real *v, const rwkv_real *kk, const rwkv_real *a, int n,
                          int C, int N, size_t trace_stride) {
    rwkv_real kka[RWKV_V7_MAX_HEAD_SIZE];
    for (int t = 0; t < n; t++) {
        size_t o = (size_t)t * C;
        for (int j = 0; j < N; j++) kka[j] = kk[o + j] * a[o + j];
        const rwkv_real *wt = w + o, *kt = k + o, *kkt = kk + o, *rt = r + o;
        for (int i = 0; i < N; i++) {
            rwkv_real *row = S + (size_t)i * N, sa = 0, yi = 0, vi = v[o + i];
#pragma omp simd reduction(+ : sa)
            for (int j = 0; j < N; j++) sa += row[j] * kkt[j]; // (S kk)_i, the old state
#pragma omp simd reduction(+ : yi)
            for (int j = 0; j < N; j++) {
                row[j] = row[j] * wt[j] - sa * kka[j] + vi * kt[j]; // S w - (S kk)(kk a)^T + v k^T
                yi += row[j] * rt[j];
            }
            y[o + i] = yi; // (S r)_i
        }
        if (trace) memcpy(trace + (size_t)t * trace_stride, S, (size_t)N * N * sizeof(rwkv_real));
    }
}

// rwkv_v7_wkv with the kernel chosen by the caller: the two kernels sum in different orders,
// so a chunk runs every stretch of its scan (rwkv_v7_scan's stops) on the same one, and an
// intervention that changes nothing changes no bit.
static void wkv_heads(rwkv_real *y, rwkv_real *S, rwkv_real *trace, const rwkv_real *r, const rwkv_real *w,
                      const rwkv_real *k, const rwkv_real *v, const rwkv_real *kk, const rwkv_real *a, int n, int H,
                      int N, int cols) {
    int C = H * N;
    size_t NN = (size_t)N * N;
#pragma omp parallel for schedule(static) if ((size_t)n * H * NN >= V7_PAR_MIN_FLOPS && H > 1)
    for (int h = 0; h < H; h++) {
        size_t o = (size_t)h * N;
        (cols ? wkv_head_cols : wkv_head_rows)(y + o, S + h * NN, trace ? trace + h * NN : NULL, r + o, w + o, k + o,
                                               v + o, kk + o, a + o, n, C, N, (size_t)C * N);
    }
}

void rwkv_v7_wkv(rwkv_real *y, rwkv_real *S, rwkv_real *trace, const rwkv_real *r, const rwkv_real *w,
                 const rwkv_real *k, const rwkv_real *v, const rwkv_real *kk, const rwkv_real *a, int n,
                 int H, int N) {
    wkv_heads(y, S, trace, r, w, k, v, kk, a, n, H, N, n >= V7_COLS_MIN_T);
}

void rwkv_v7_group_norm(rwkv_real *y, const rwkv_real *ln_w, const rwkv_real *ln_b, int n, int C, int N, double eps) {
#pragma omp parallel for schedule(static) if ((size_t)n * C >= V7_PAR_MIN_ELEMS)
    for (int t = 0; t < n; t++)
        for (int h = 0; h < C; h += N) {
            rwkv_real *yh = y + (size_t)t * C + h;
            double mean = 0, var = 0;
            for (int j = 0; j < N; j++) mean += yh[j];
            mean /= N;
            for (int j = 0; j < N; j++) var += (yh[j] - mean) * (yh[j] - mean);
            var /= N; // biased, as torch GroupNorm
            rwkv_real rstd = (rwkv_real)(1.0 / sqrt(var + eps));
            for (int j = 0; j < N; j++) yh[j] = (rwkv_real)(yh[j] - mean) * rstd * ln_w[h + j] + ln_b[h + j];
        }
}

// y = GroupNorm_h(y) * ln_w + ln_b + (sum_j r_j k_j r_k_j) v per head, then y *= g.
static void readout(rwkv_real *y, const rwkv_real *r, const rwkv_real *k, const rwkv_real *v, const rwkv_real *g,
                    const rwkv_real *ln_w, const rwkv_real *ln_b, const rwkv_real *r_k, int n, int C, int N) {
    rwkv_v7_group_norm(y, ln_w, ln_b, n, C, N, RWKV_V7_GN_EPS);
#pragma omp parallel for schedule(static) if ((size_t)n * C >= V7_PAR_MIN_ELEMS)
    for (int t = 0; t < n; t++) {
        size_t o = (size_t)t * C;
        for (int h = 0; h < C; h += N) {
            double bonus = 0;
            for (int j = 0; j < N; j++) bonus += (double)r[o + h + j] * k[o + h + j] * r_k[h + j];
            for (int j = 0; j < N; j++) {
                int i = h + j;
                y[o + i] = (y[o + i] + (rwkv_real)bonus * v[o + i]) * g[o + i];
            }
        }
    }
}

// The LoRA projections and the value residual; on return ws->v holds the mixed value.
static void lora(const rwkv_v7_chunk *c, int l) {
    const rwkv_v7_weights *w = c->m->v7;
    rwkv_workspace *ws = c->ws;
    struct rwkv_v7_scratch *s = ws->v7;
    int n = c->n, C = c->m->cfg.n_embd;
    const rwkv_v7_dims *d = &w->d;
    size_t lc = (size_t)l * C, nc = (size_t)n * C;
    rwkv_v7_product p1[V7_MAX_PRODUCTS] = {
        rwkv_v7_matrix(c, ws->r, ws->xr, RWKV_V7_R, l),
        rwkv_v7_matrix(c, ws->k, ws->xk, RWKV_V7_K, l),
        rwkv_v7_matrix(c, ws->v, ws->xv, RWKV_V7_V, l),
        {s->hw, s->xw, w->w1 + lc * d->d_w, d->d_w, C, NULL},
        {s->ha, s->xa, w->a1 + lc * d->d_a, d->d_a, C, NULL},
        {s->hg, s->xg, w->g1 + lc * d->d_g, d->d_g, C, NULL},
        {s->hv, ws->xv, w->v1 + lc * d->d_v, d->d_v, C, NULL}};
    rwkv_v7_products(c, p1, l > 0 ? 7 : 6);
    rwkv_v7_tanh(s->hw, (size_t)n * d->d_w);
    rwkv_sigmoid(s->hg, s->hg, (size_t)n * d->d_g);
    rwkv_v7_product p2[4] = {{s->w, s->hw, w->w2 + lc * d->d_w, C, d->d_w, NULL},
                             {s->a, s->ha, w->a2 + lc * d->d_a, C, d->d_a, NULL},
                             {s->g, s->hg, w->g2 + lc * d->d_g, C, d->d_g, NULL},
                             {s->vgate, s->hv, w->v2 + lc * d->d_v, C, d->d_v, NULL}};
    rwkv_v7_products(c, p2, l > 0 ? 4 : 3);
    add_bias(s->w, w->w0 + lc, n, C);
    rwkv_exp_neg_sigmoid(s->w, s->w, (rwkv_real)V7_DECAY_SCALE, nc); // w = exp(-e^{-1/2} sigmoid(w0 + W2 tanh(W1 xw)))
    add_bias(s->a, w->a0 + lc, n, C);
    rwkv_sigmoid(s->a, s->a, nc);
    if (l == 0) {
        memcpy(s->v_first, ws->v, nc * sizeof(rwkv_real));
        return;
    }
    add_bias(s->vgate, w->v0 + lc, n, C);
    rwkv_sigmoid(s->vgate, s->vgate, nc);
    for (size_t i = 0; i < nc; i++) ws->v[i] += (s->v_first[i] - ws->v[i]) * s->vgate[i]; // v + (v0 - v) sigmoid(.)
}

// The delta-rule scan over rows [t0, t1) of the chunk (rwkv_v7_scan's callback).
typedef struct {
    rwkv_workspace *ws;
    rwkv_real *S; // (H, N, N)
    int H, N;
    int cols;     // the kernel of the whole chunk (wkv_heads)
} scan7;

static void run_scan7(void *ctx, int t0, int t1, rwkv_real *trace) {
    const scan7 *a = ctx;
    const struct rwkv_v7_scratch *s = a->ws->v7;
    size_t o = (size_t)t0 * a->H * a->N;
    wkv_heads(a->ws->wkv + o, a->S, trace, a->ws->r + o, s->w + o, a->ws->k + o, a->ws->v + o, s->kk + o, s->a + o,
              t1 - t0, a->H, a->N, a->cols);
}

static rwkv_status time_mix(const rwkv_v7_chunk *c, int l, rwkv_state *state) {
    const rwkv_v7_weights *w = c->m->v7;
    rwkv_workspace *ws = c->ws;
    struct rwkv_v7_scratch *s = ws->v7;
    int n = c->n, C = c->m->cfg.n_embd, N = c->m->cfg.head_size, H = C / N;
    size_t lc = (size_t)l * C, nc = (size_t)n * C;
    rwkv_status st;
    rwkv_layernorm(ws->xln, ws->x, w->ln1_w + lc, w->ln1_b + lc, n, C);
    if ((st = rwkv_v7_tap(c, l, RWKV_TAP_ATT_IN, ws->xln))) return st;
    rwkv_real *const mixed[6] = {ws->xr, s->xw, ws->xk, ws->xv, s->xa, s->xg};
    const rwkv_real *const mix[6] = {w->x_r + lc, w->x_w + lc, w->x_k + lc, w->x_v + lc, w->x_a + lc, w->x_g + lc};
    if ((st = rwkv_token_shift(c, l, RWKV_TAP_STATE_ATT_XPREV, mixed, mix, 6, state->att_xprev + lc))) return st;
    if (l > 0 && (st = rwkv_v7_tap(c, l, RWKV_TAP_V_FIRST, s->v_first))) return st;
    lora(c, l);
    keys(s->kk, ws->k, s->a, w->k_k + lc, w->k_a + lc, n, C, N);
    rwkv_tap order[] = {RWKV_TAP_ATT_R, RWKV_TAP_ATT_W, RWKV_TAP_ATT_K, RWKV_TAP_ATT_V,
                        RWKV_TAP_ATT_A, RWKV_TAP_ATT_G, RWKV_TAP_ATT_KK};
    rwkv_real *rows[] = {ws->r, s->w, ws->k, ws->v, s->a, s->g, s->kk};
    for (int i = 0; i < 7; i++)
        if ((st = rwkv_v7_tap(c, l, order[i], rows[i]))) return st;
    if (l == 0 && (st = rwkv_v7_tap(c, l, RWKV_TAP_V_FIRST, s->v_first))) return st;
    scan7 sc = {ws, state->wkv + lc * N, H, N, n >= V7_COLS_MIN_T};
    if ((st = rwkv_v7_scan(c, l, sc.S, run_scan7, &sc))) return st;
    if ((st = rwkv_v7_tap(c, l, RWKV_TAP_ATT_WKV, ws->wkv))) return st;
    readout(ws->wkv, ws->r, ws->k, ws->v, s->g, w->ln_x_w + lc, w->ln_x_b + lc, w->r_k + lc, n, C, N);
    rwkv_v7_product o = rwkv_v7_matrix(c, ws->out, ws->wkv, RWKV_V7_O, l);
    rwkv_v7_products(c, &o, 1);
    if ((st = rwkv_v7_tap(c, l, RWKV_TAP_ATT_OUT, ws->out))) return st;
    rwkv_add_inplace(ws->x, ws->out, nc);
    return RWKV_OK;
}

rwkv_status rwkv_v7_channel_mix(const rwkv_v7_chunk *c, int l, rwkv_state *s) {
    const rwkv_v7_weights *w = c->m->v7;
    rwkv_workspace *ws = c->ws;
    int n = c->n, C = c->m->cfg.n_embd, F = c->m->cfg.n_ffn, gated = !RWKV_IS_V7(c->m->cfg); // RWKV-5.2 and 6
    size_t lc = (size_t)l * C, nc = (size_t)n * C;
    rwkv_status st;
    rwkv_layernorm(ws->xln, ws->x, w->ln2_w + lc, w->ln2_b + lc, n, C);
    if ((st = rwkv_v7_tap(c, l, RWKV_TAP_FFN_IN, ws->xln))) return st;
    rwkv_real *const mixed[2] = {ws->xk, ws->xr};
    const rwkv_real *const mix[2] = {w->ffn_x_k + lc, gated ? w->ffn_x_r + lc : NULL};
    if ((st = rwkv_token_shift(c, l, RWKV_TAP_STATE_FFN_XPREV, mixed, mix, gated ? 2 : 1, s->ffn_xprev + lc)))
        return st;
    rwkv_v7_product kr[2] = {rwkv_v7_matrix(c, ws->fk, ws->xk, RWKV_V7_FK, l),
                             rwkv_v7_matrix(c, ws->r, ws->xr, RWKV_V7_FR, l)};
    rwkv_v7_products(c, kr, gated ? 2 : 1);
    if (gated) {
        rwkv_sigmoid(ws->r, ws->r, nc);
        if ((st = rwkv_v7_tap(c, l, RWKV_TAP_FFN_GATE, ws->r))) return st;
    }
    rwkv_relu_sq(ws->fk, ws->fk, (size_t)n * F);
    if ((st = rwkv_v7_tap(c, l, RWKV_TAP_FFN_K, ws->fk))) return st;
    rwkv_v7_product v = rwkv_v7_matrix(c, ws->out, ws->fk, RWKV_V7_FV, l);
    rwkv_v7_products(c, &v, 1);
    if (gated) rwkv_mul(ws->out, ws->r, ws->out, nc); // sigmoid(W_r x'_r) * W_v relu(W_k x'_k)^2
    if ((st = rwkv_v7_tap(c, l, RWKV_TAP_FFN_OUT, ws->out))) return st;
    rwkv_add_inplace(ws->x, ws->out, nc);
    return RWKV_OK;
}

rwkv_status rwkv_v7_block(const rwkv_v7_chunk *c, int layer, rwkv_state *s) {
    if (c->m->cfg.version == RWKV_VERSION_5) return rwkv_v5_block(c, layer, s);
    if (c->m->cfg.version == RWKV_VERSION_6) return rwkv_v6_block(c, layer, s);
    rwkv_status st = time_mix(c, layer, s);
    return st ? st : rwkv_v7_channel_mix(c, layer, s);
}
