// wkv.c: a scan over time, vectorised across channels; the same code serves both modes.
#include "wkv.h"

#include <string.h>

static inline rwkv_real maxr(rwkv_real a, rwkv_real b) { return a > b ? a : b; }

// One token for all channels; state (num, den, max) updated in place.
static inline void wkv_step(rwkv_real *restrict out, const rwkv_real *restrict k,
                            const rwkv_real *restrict v, const rwkv_real *restrict w,
                            const rwkv_real *restrict u, int C, rwkv_real *restrict num,
                            rwkv_real *restrict den, rwkv_real *restrict mx) {
    for (int c = 0; c < C; c++) {
        rwkv_real uk = u[c] + k[c];
        rwkv_real p = maxr(mx[c], uk);
        rwkv_real e1 = RWKV_EXP(mx[c] - p), e2 = RWKV_EXP(uk - p);
        out[c] = (e1 * num[c] + e2 * v[c]) / (e1 * den[c] + e2); // wkv_t with the bonus e^{u+k_t}
        rwkv_real decayed = mx[c] - w[c];                          // state decays by e^{-w}
        rwkv_real q = maxr(decayed, k[c]);
        rwkv_real f1 = RWKV_EXP(decayed - q), f2 = RWKV_EXP(k[c] - q);
        num[c] = f1 * num[c] + f2 * v[c]; // num = e^{-w} num + e^{k_t} v_t (scaled by e^{-max})
        den[c] = f1 * den[c] + f2;        // den = e^{-w} den + e^{k_t}
        mx[c] = q;
    }
}

void rwkv_wkv_forward(rwkv_real *out, const rwkv_real *k, const rwkv_real *v, const rwkv_real *w,
                      const rwkv_real *u, int T, int C, rwkv_real *num, rwkv_real *den,
                      rwkv_real *max, const rwkv_wkv_trace *trace) {
    for (int t = 0; t < T; t++) {
        size_t o = (size_t)t * C;
        wkv_step(out + o, k + o, v + o, w, u, C, num, den, max);
        if (!trace) continue;
        if (trace->num) memcpy(trace->num + o, num, C * sizeof(rwkv_real));
        if (trace->den) memcpy(trace->den + o, den, C * sizeof(rwkv_real));
        if (trace->max) memcpy(trace->max + o, max, C * sizeof(rwkv_real));
    }
}
