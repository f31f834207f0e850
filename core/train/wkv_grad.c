// wkv_grad.c: the training WKV scans (equations in wkv_grad.h).
#include "wkv_grad.h"

#include "../model/state.h"

static inline rwkv_real maxr(rwkv_real a, rwkv_real b) { return a > b ? a : b; }

void rwkv_wkv_train_forward(rwkv_real *y, rwkv_real *p, rwkv_real *d, const rwkv_real *k,
                            const rwkv_real *v, const rwkv_real *w, const rwkv_real *u, int T,
                            int C, int c0, int c1) {
    rwkv_real num[RWKV_WKV_BLOCK], den[RWKV_WKV_BLOCK], mx[RWKV_WKV_BLOCK];
    for (int c0b = c0; c0b < c1; c0b += RWKV_WKV_BLOCK) {
        int n = c1 - c0b < RWKV_WKV_BLOCK ? c1 - c0b : RWKV_WKV_BLOCK;
        for (int j = 0; j < n; j++) num[j] = 0, den[j] = 0, mx[j] = (rwkv_real)RWKV_MAX_INIT;
        for (int t = 0; t < T; t++) {
            size_t o = (size_t)t * C + c0b;
            for (int j = 0; j < n; j++) {
                // Same operations as wkv_step in compute/wkv.c, so y is bit-identical.
                rwkv_real kk = k[o + j], uk = u[c0b + j] + kk;
                rwkv_real pt = maxr(mx[j], uk);
                rwkv_real e1 = RWKV_EXP(mx[j] - pt), e2 = RWKV_EXP(uk - pt);
                rwkv_real dd = e1 * den[j] + e2; // D_t e^{-p_t}
                y[o + j] = (e1 * num[j] + e2 * v[o + j]) / dd;
                p[o + j] = pt;
                d[o + j] = dd;
                rwkv_real decayed = mx[j] - w[c0b + j];
                rwkv_real q = maxr(decayed, kk);
                rwkv_real f1 = RWKV_EXP(decayed - q), f2 = RWKV_EXP(kk - q);
                num[j] = f1 * num[j] + f2 * v[o + j]; // a_{t+1} = e^{-w} a_t + e^{k_t} v_t
                den[j] = f1 * den[j] + f2;            // b_{t+1} = e^{-w} b_t + e^{k_t}
                mx[j] = q;
            }
        }
    }
}

void rwkv_wkv_backward(rwkv_real *dk, rwkv_real *dv, rwkv_real *dtd, rwkv_real *du,
                       const rwkv_real *gy, const rwkv_real *k, const rwkv_real *v,
                       const rwkv_real *w, const rwkv_real *u, const rwkv_real *y,
                       const rwkv_real *p, const rwkv_real *d, int T, int C, int c0, int c1) {
    // Scaled reverse sums over t > i: G, H, G' (Gd), H' (Hd), all times e^{-M}.
    rwkv_real G[RWKV_WKV_BLOCK], H[RWKV_WKV_BLOCK], Gd[RWKV_WKV_BLOCK], Hd[RWKV_WKV_BLOCK];
    rwkv_real M[RWKV_WKV_BLOCK];
    double sdw[RWKV_WKV_BLOCK], sdu[RWKV_WKV_BLOCK];
    for (int c0b = c0; c0b < c1; c0b += RWKV_WKV_BLOCK) {
        int n = c1 - c0b < RWKV_WKV_BLOCK ? c1 - c0b : RWKV_WKV_BLOCK;
        for (int j = 0; j < n; j++) {
            G[j] = H[j] = Gd[j] = Hd[j] = 0;
            M[j] = (rwkv_real)RWKV_MAX_INIT;
            sdw[j] = sdu[j] = 0;
        }
        for (int i = T - 1; i >= 0; i--) {
            size_t o = (size_t)i * C + c0b;
            for (int j = 0; j < n; j++) {
                rwkv_real ki = k[o + j], vi = v[o + j], yi = y[o + j], pi = p[o + j];
                rwkv_real zi = gy[o + j] / d[o + j];        // z_i e^{p_i}: g_i / D_i, scaled
                rwkv_real eb = RWKV_EXP(u[c0b + j] + ki - pi); // e^{u+k_i} / e^{p_i} <= 1
                rwkv_real es = RWKV_EXP(ki + M[j]);            // e^{k_i} times the scale of G..
                rwkv_real bonus = zi * eb;
                dv[o + j] = bonus + es * G[j];                   // dv_i = z_i e^{u+k_i} + e^{k_i} G_i
                dk[o + j] = bonus * (vi - yi) + es * (vi * G[j] - H[j]);
                sdu[j] += (double)bonus * (vi - yi);             // du = sum_t z_t e^{u+k_t}(v_t - y_t)
                sdw[j] -= (double)es * (vi * Gd[j] - Hd[j]);     // dw = -sum_i e^{k_i}(v_i G'_i - H'_i)
                // Step to sums over t > i-1: decay by e^{-w}, add term i with exponent -p_i.
                rwkv_real decayed = M[j] - w[c0b + j];
                rwkv_real q = maxr(decayed, -pi);
                rwkv_real f1 = RWKV_EXP(decayed - q), f2 = RWKV_EXP(-pi - q);
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
