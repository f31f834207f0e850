// wkv_grad.c: the training WKV scans (equations in wkv_grad.h). Like compute/wkv.c, the
// scans run in double whatever rwkv_real is: the weights span e^{+-85} and float32
// accumulation loses digits to cancellation; the scans are O(T*C), cheap next to the GEMMs.
#include "wkv_grad.h"

#include "../model/state.h"

#include <math.h>

// glibc's libmvec provides vector exp; declaring it lets the channel loops vectorise.
#pragma omp declare simd notinbranch
double exp(double);

static inline double maxd(double a, double b) { return a > b ? a : b; }

// clang 14 (make fuzz) emits a target_clones function's dispatcher only in a file that calls
// it, which this one does not: it gets the default version there.
#if defined(__clang__) && __clang_major__ < 16
#define WKV_GRAD_CLONES
#else
#define WKV_GRAD_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
#endif

WKV_GRAD_CLONES
void rwkv_wkv_train_forward(rwkv_real *y, rwkv_real *p, rwkv_real *d, const rwkv_real *k,
                            const rwkv_real *v, const rwkv_real *w, const rwkv_real *u, int T,
                            int C, int c0, int c1) {
    double num[RWKV_WKV_BLOCK], den[RWKV_WKV_BLOCK], mx[RWKV_WKV_BLOCK];
    for (int c0b = c0; c0b < c1; c0b += RWKV_WKV_BLOCK) {
        int n = c1 - c0b < RWKV_WKV_BLOCK ? c1 - c0b : RWKV_WKV_BLOCK;
        for (int j = 0; j < n; j++) num[j] = 0, den[j] = 0, mx[j] = RWKV_MAX_INIT;
        for (int t = 0; t < T; t++) {
            size_t o = (size_t)t * C + c0b;
#pragma omp simd
            for (int j = 0; j < n; j++) {
                // The operations of wkv_block in compute/wkv.c, in the same order.
                double kk = k[o + j], vv = v[o + j], uk = u[c0b + j] + kk;
                double pt = maxd(mx[j], uk);
                double e1 = exp(mx[j] - pt), e2 = exp(uk - pt);
                double dd = e1 * den[j] + e2; // D_t e^{-p_t}
                y[o + j] = (rwkv_real)((e1 * num[j] + e2 * vv) / dd);
                p[o + j] = (rwkv_real)pt;
                d[o + j] = (rwkv_real)dd;
                double decayed = mx[j] - w[c0b + j];
                double q = maxd(decayed, kk);
                double f1 = exp(decayed - q), f2 = exp(kk - q);
                num[j] = f1 * num[j] + f2 * vv; // a_{t+1} = e^{-w} a_t + e^{k_t} v_t
                den[j] = f1 * den[j] + f2;      // b_{t+1} = e^{-w} b_t + e^{k_t}
                mx[j] = q;
            }
        }
    }
}

WKV_GRAD_CLONES
void rwkv_wkv_backward(rwkv_real *dk, rwkv_real *dv, rwkv_real *dtd, rwkv_real *du,
                       const rwkv_real *gy, const rwkv_real *k, const rwkv_real *v,
                       const rwkv_real *w, const rwkv_real *u, const rwkv_real *y,
                       const rwkv_real *p, const rwkv_real *d, int T, int C, int c0, int c1) {
    // Scaled reverse sums over t > i: G, H, G' (Gd), H' (Hd), all times e^{-M}.
    double G[RWKV_WKV_BLOCK], H[RWKV_WKV_BLOCK], Gd[RWKV_WKV_BLOCK], Hd[RWKV_WKV_BLOCK];
    double M[RWKV_WKV_BLOCK], sdw[RWKV_WKV_BLOCK], sdu[RWKV_WKV_BLOCK];
    for (int c0b = c0; c0b < c1; c0b += RWKV_WKV_BLOCK) {
        int n = c1 - c0b < RWKV_WKV_BLOCK ? c1 - c0b : RWKV_WKV_BLOCK;
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
