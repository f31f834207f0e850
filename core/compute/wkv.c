// wkv.c: a scan over time, vectorised across channels; the same code serves both modes.
// The scan runs in double whatever rwkv_real is: a weighted average of v whose weights span
// e^{±85} loses digits to cancellation in float32 (5e-4 relative on golden-wkv.h5), and the
// O(T*C) scan is cheap next to the O(T*C*C) projections. The backward (equations in
// wkv.h) runs in double for the same reason.
#include "wkv.h"

#include "../model/state.h"

#include <math.h>
#include <string.h>

// glibc's libmvec provides vector exp; declaring it lets the channel loop vectorise.
#pragma omp declare simd notinbranch
double exp(double);

#define WKV_BLOCK RWKV_WKV_BLOCK // channels per block: state stays in registers/L1
#define WKV_PAR_MIN (1 << 14) // T*C below which threads cost more than they save

static inline double maxd(double a, double b) { return a > b ? a : b; }

// Channels [c0, c0+nc) of rows [t0, t1); the state (a, b, p: num, den, max of these channels)
// is read at the start and written at the end, in double, and stays in registers/L1 between.
__attribute__((target_clones("avx512f", "avx2", "default")))
static void wkv_block(rwkv_real *out, const rwkv_real *k, const rwkv_real *v, const rwkv_real *w,
                      const rwkv_real *u, int t0, int t1, int C, int c0, int nc, double *sa, double *sb,
                      double *sp, const rwkv_wkv_trace *tr) {
    double a[WKV_BLOCK], b[WKV_BLOCK], p[WKV_BLOCK], pt[WKV_BLOCK], dt[WKV_BLOCK];
    for (int j = 0; j < nc; j++) {
        a[j] = sa[j];
        b[j] = sb[j];
        p[j] = sp[j];
    }
    for (int t = t0; t < t1; t++) {
        size_t o = (size_t)t * C + c0;
#pragma omp simd
        for (int j = 0; j < nc; j++) {
            double kt = k[o + j], vt = v[o + j], uk = u[c0 + j] + kt;
            double q = maxd(p[j], uk);
            double e1 = exp(p[j] - q), e2 = exp(uk - q);
            double dd = e1 * b[j] + e2;                          // D_t e^{-p_t}
            out[o + j] = (rwkv_real)((e1 * a[j] + e2 * vt) / dd); // wkv_t with bonus e^{u+k_t}
            pt[j] = q;
            dt[j] = dd;
            double decayed = p[j] - w[c0 + j]; // the state decays by e^{-w} per token
            double r = maxd(decayed, kt);
            double f1 = exp(decayed - r), f2 = exp(kt - r);
            a[j] = f1 * a[j] + f2 * vt; // num = e^{-w} num + e^{k_t} v_t, scaled by e^{-max}
            b[j] = f1 * b[j] + f2;      // den = e^{-w} den + e^{k_t}
            p[j] = r;
        }
        if (!tr) continue;
        for (int j = 0; j < nc; j++) {
            if (tr->num) tr->num[o + j] = (rwkv_real)a[j];
            if (tr->den) tr->den[o + j] = (rwkv_real)b[j];
            if (tr->max) tr->max[o + j] = (rwkv_real)p[j];
            if (tr->p) tr->p[o + j] = (rwkv_real)pt[j];
            if (tr->d) tr->d[o + j] = (rwkv_real)dt[j];
        }
    }
    for (int j = 0; j < nc; j++) {
        sa[j] = a[j];
        sb[j] = b[j];
        sp[j] = p[j];
    }
}

void rwkv_wkv_forward(rwkv_real *out, const rwkv_real *k, const rwkv_real *v, const rwkv_real *w,
                      const rwkv_real *u, int T, int C, rwkv_real *num, rwkv_real *den,
                      rwkv_real *max, const rwkv_wkv_trace *trace) {
    int nb = (C + WKV_BLOCK - 1) / WKV_BLOCK;
#pragma omp parallel for schedule(static) if ((size_t)T * C >= WKV_PAR_MIN)
    for (int bi = 0; bi < nb; bi++) {
        int c0 = bi * WKV_BLOCK, nc = C - c0 < WKV_BLOCK ? C - c0 : WKV_BLOCK;
        double a[WKV_BLOCK], b[WKV_BLOCK], p[WKV_BLOCK];
        for (int j = 0; j < nc; j++) a[j] = num[c0 + j], b[j] = den[c0 + j], p[j] = max[c0 + j];
        wkv_block(out, k, v, w, u, 0, T, C, c0, nc, a, b, p, trace);
        for (int j = 0; j < nc; j++) {
            num[c0 + j] = (rwkv_real)a[j];
            den[c0 + j] = (rwkv_real)b[j];
            max[c0 + j] = (rwkv_real)p[j];
        }
    }
}

void rwkv_wkv_scan(rwkv_real *out, const rwkv_real *k, const rwkv_real *v, const rwkv_real *w,
                   const rwkv_real *u, int t0, int t1, int C, double *state, const rwkv_wkv_trace *trace) {
    int nb = (C + WKV_BLOCK - 1) / WKV_BLOCK;
#pragma omp parallel for schedule(static) if ((size_t)(t1 - t0) * C >= WKV_PAR_MIN)
    for (int bi = 0; bi < nb; bi++) {
        int c0 = bi * WKV_BLOCK, nc = C - c0 < WKV_BLOCK ? C - c0 : WKV_BLOCK;
        wkv_block(out, k, v, w, u, t0, t1, C, c0, nc, state + c0, state + C + c0, state + 2 * (size_t)C + c0, trace);
    }
}

void rwkv_wkv_scan_channels(rwkv_real *out, const rwkv_real *k, const rwkv_real *v, const rwkv_real *w,
                            const rwkv_real *u, int T, int C, int c0, int c1, const rwkv_wkv_trace *trace) {
    double a[WKV_BLOCK], b[WKV_BLOCK], p[WKV_BLOCK];
    for (int cb = c0; cb < c1; cb += WKV_BLOCK) {
        int nc = c1 - cb < WKV_BLOCK ? c1 - cb : WKV_BLOCK;
        for (int j = 0; j < nc; j++) a[j] = 0, b[j] = 0, p[j] = RWKV_MAX_INIT;
        wkv_block(out, k, v, w, u, 0, T, C, cb, nc, a, b, p, trace);
    }
}

// clang 14 (make fuzz) emits a target_clones function's dispatcher only in a file that calls
// it, which this one does not for the backward: it gets the default version there.
#if defined(__clang__) && __clang_major__ < 16
#define WKV_BACKWARD_CLONES
#else
#define WKV_BACKWARD_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
#endif

WKV_BACKWARD_CLONES
void rwkv_wkv_backward(rwkv_real *dk, rwkv_real *dv, rwkv_real *dtd, rwkv_real *du,
                       const rwkv_real *gy, const rwkv_real *k, const rwkv_real *v,
                       const rwkv_real *w, const rwkv_real *u, const rwkv_real *y,
                       const rwkv_real *p, const rwkv_real *d, int T, int C, int c0, int c1) {
    // Scaled reverse sums over t > i: G, H, G' (Gd), H' (Hd), all times e^{-M}.
    double G[WKV_BLOCK], H[WKV_BLOCK], Gd[WKV_BLOCK], Hd[WKV_BLOCK];
    double M[WKV_BLOCK], sdw[WKV_BLOCK], sdu[WKV_BLOCK];
    for (int c0b = c0; c0b < c1; c0b += WKV_BLOCK) {
        int n = c1 - c0b < WKV_BLOCK ? c1 - c0b : WKV_BLOCK;
        for (int j = 0; j < n; j++) {
            G[j] = H[j] = Gd[j] = Hd[j] = 0;
            M[j] = RWKV_MAX_INIT;
            sdw[j] = sdu[j] = 0;
        }
        for (int i = T - 1; i >= 0; i--) {
            size_t o = (size_t)i * C + c0b;
#pragma omp simd
            for (int j = 0; j < n; j++) {
                double ki = k[o + j], vi = v[o + j], yi = y[o + j], pi = p[o + j];
                double zi = gy[o + j] / (double)d[o + j];   // z_i e^{p_i}: g_i / D_i, scaled
                double eb = exp(u[c0b + j] + ki - pi);      // e^{u+k_i} / e^{p_i} <= 1
                double es = exp(ki + M[j]);                 // e^{k_i} times the scale of G..
                double bonus = zi * eb;
                dv[o + j] = (rwkv_real)(bonus + es * G[j]); // dv_i = z_i e^{u+k_i} + e^{k_i} G_i
                dk[o + j] = (rwkv_real)(bonus * (vi - yi) + es * (vi * G[j] - H[j]));
                sdu[j] += bonus * (vi - yi);                // du = sum_t z_t e^{u+k_t}(v_t - y_t)
                sdw[j] -= es * (vi * Gd[j] - Hd[j]);        // dw = -sum_i e^{k_i}(v_i G'_i - H'_i)
                // Step to sums over t > i-1: decay by e^{-w}, add term i with exponent -p_i.
                double decayed = M[j] - w[c0b + j];
                double q = maxd(decayed, -pi);
                double f1 = exp(decayed - q), f2 = exp(-pi - q);
                Gd[j] = f1 * (Gd[j] + G[j]); // G'_{i-1} = e^{-w} (G'_i + G_i)
                Hd[j] = f1 * (Hd[j] + H[j]);
                G[j] = f1 * G[j] + f2 * zi;      // G_{i-1} = e^{-w} G_i + z_i
                H[j] = f1 * H[j] + f2 * zi * yi; // H_{i-1} = e^{-w} H_i + z_i y_i
                M[j] = q;
            }
        }
        for (int j = 0; j < n; j++) {
            dtd[c0b + j] += (rwkv_real)(sdw[j] * w[c0b + j]); // dL/dtime_decay = dL/dw * e^{time_decay}
            du[c0b + j] += (rwkv_real)sdu[j];
        }
    }
}
