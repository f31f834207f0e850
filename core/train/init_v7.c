// init_v7.c: the official RWKV-7 initialisation, as RWKV-LM RWKV-v7/train_temp/src/model.py
// (RWKV_Tmix_x070, RWKV_CMix_x070 and generate_init_weight) sets it, with x = i/C,
// lin = i/(C-1) - 1/2, zz = z|z| for z = ((i mod N) - (N-1)/2) / ((N-1)/2), r01 = l/(L-1),
// r10 = 1 - l/L:
//   x_r, x_g = 1 - x^{0.2 r10};  x_w, x_a = 1 - x^{0.9 r10};  x_k, x_v = 1 - x^{0.7 r10}
//   w0 = -6 + 6 (i/(C-1))^{1 + r01^0.3} + 1/2 + 2.5 zz;  a0 = -0.19 + 0.3 zz + 0.4 lin
//   v0 = 0.73 - 0.4 lin;  k_k = 0.71 - 0.1 lin;  k_a = 1.02;  r_k = -0.04
//   ln_x.weight = ((l+1)/L)^0.7, bias 0;  ffn.x_k = 1 - x^{r10^4};  LayerNorms 1, 0
//   w1, a1, v1, g1 zero; w2, a2, v2, g2 orthogonal with gain 0.1 (official (D, C) shape)
//   att.receptance, att.value, ffn.key orthogonal (gain 1); att.key orthogonal (gain 0.1);
//   att.output, ffn.value zero; emb U(-1e-4, 1e-4); head orthogonal, gain 0.5 sqrt(V/C) if V > C
//   else 0.5.
// (One layer, one channel or head size 1: the ratios r01, i/(C-1) and z are taken as 0.)
// Random draws come from one mt19937 in parameter-table order.
#include "init.h"

#include <gsl/gsl_errno.h>
#include <math.h>
#include <string.h>

#define V7_GAIN_LORA 0.1 // w2, a2, v2, g2
#define V7_GAIN_KEY 0.1  // att.key

rwkv_v7_dims rwkv_init_v7_dims(int C, int L) {
    double k[4] = {2.5, 2.5, 1.7, 5.0}; // decay, rate, value residual, gate
    int r[4];
    for (int i = 0; i < 4; i++) {
        int d = (int)lround(k[i] * sqrt((double)C) / 32) * 32;
        d = d > 32 ? d : 32;
        r[i] = d < C ? d : C;
    }
    return (rwkv_v7_dims){.d_w = r[0], .d_a = r[1], .d_v = L > 1 ? r[2] : 0, .d_g = r[3]}; // one layer: no value residual
}

static void init_vectors(rwkv_model *m, int l) {
    const rwkv_v7_weights *w = m->v7;
    int L = m->cfg.n_layer, C = m->cfg.n_embd, N = m->cfg.head_size;
    double r01 = L > 1 ? (double)l / (L - 1) : 0, r10 = 1.0 - (double)l / L;
    size_t o = (size_t)l * C;
    for (int i = 0; i < C; i++) {
        double x = (double)i / C, f = C > 1 ? (double)i / (C - 1) : 0, lin = f - 0.5;
        double z = N > 1 ? ((i % N) - (N - 1) / 2.0) / ((N - 1) / 2.0) : 0, zz = z * fabs(z);
        w->x_r[o + i] = w->x_g[o + i] = (rwkv_real)(1 - pow(x, 0.2 * r10));
        w->x_w[o + i] = w->x_a[o + i] = (rwkv_real)(1 - pow(x, 0.9 * r10));
        w->x_k[o + i] = w->x_v[o + i] = (rwkv_real)(1 - pow(x, 0.7 * r10));
        w->w0[o + i] = (rwkv_real)(-6 + 6 * pow(f, 1 + pow(r01, 0.3)) + 0.5 + 2.5 * zz);
        w->a0[o + i] = (rwkv_real)(-0.19 + 0.3 * zz + 0.4 * lin);
        w->v0[o + i] = l > 0 ? (rwkv_real)(0.73 - 0.4 * lin) : 0; // layer 0 has no value residual
        w->k_k[o + i] = (rwkv_real)(0.71 - 0.1 * lin);
        w->k_a[o + i] = (rwkv_real)1.02;
        w->r_k[o + i] = (rwkv_real)-0.04;
        w->ln_x_w[o + i] = (rwkv_real)pow((double)(l + 1) / L, 0.7);
        w->ffn_x_k[o + i] = (rwkv_real)(1 - pow(x, pow(r10, 4)));
        w->ln1_w[o + i] = w->ln2_w[o + i] = 1;
    }
}

static int ends_with(const char *s, const char *suffix) {
    size_t n = strlen(s), k = strlen(suffix);
    return n >= k && !strcmp(s + n - k, suffix);
}

// The random (and zero) tensors; the vectors are set by init_vectors.
static rwkv_status init_tensor(rwkv_model *m, const rwkv_param *p, gsl_rng *rng) {
    rwkv_real *x = m->block + p->offset;
    int C = m->cfg.n_embd, V = m->cfg.n_vocab;
    if (!strcmp(p->name, "emb.weight")) {
        for (size_t i = 0; i < p->numel; i++) x[i] = (rwkv_real)((2 * gsl_rng_uniform(rng) - 1) * RWKV_INIT_EMB_RANGE);
        return RWKV_OK;
    }
    if (!strcmp(p->name, "ln_out.weight") || !strcmp(p->name, "blocks.0.ln0.weight")) {
        for (size_t i = 0; i < p->numel; i++) x[i] = 1;
        return RWKV_OK;
    }
    if (p->ndim != 2) return RWKV_OK;
    int rows = (int)p->shape[0], cols = (int)p->shape[1];
    double gain = 0;
    if (!strcmp(p->name, "head.weight")) gain = V > C ? RWKV_INIT_HEAD_SCALE * sqrt((double)V / C) : RWKV_INIT_HEAD_SCALE;
    else if (ends_with(p->name, ".att.receptance.weight") || ends_with(p->name, ".att.value.weight") ||
             ends_with(p->name, ".ffn.key.weight"))
        gain = 1;
    else if (ends_with(p->name, ".att.key.weight")) gain = V7_GAIN_KEY;
    else if (ends_with(p->name, "2")) // w2, a2, v2, g2: stored (C, D), official (D, C)
        gain = V7_GAIN_LORA * (cols > rows ? sqrt((double)cols / rows) : 1);
    if (gain == 0) {
        memset(x, 0, p->numel * sizeof *x); // output, ffn.value, w1, a1, v1, g1
        return RWKV_OK;
    }
    return rwkv_init_orthogonal(x, rows, cols, gain, rng, p->name);
}

rwkv_status rwkv_init_v7_model(rwkv_model *m, unsigned long seed) {
    if (!RWKV_IS_V7(m->cfg))
        return rwkv_error_set(RWKV_ERR_UNSUPPORTED, "init: RWKV-%d models have no initialisation here", m->cfg.version);
    gsl_rng *rng = gsl_rng_alloc(gsl_rng_mt19937);
    if (!rng) return rwkv_error_set(RWKV_ERR_NOMEM, "init: cannot allocate the random generator");
    gsl_rng_set(rng, seed);
    gsl_error_handler_t *old = gsl_set_error_handler_off();
    memset(m->block, 0, m->v7->total * sizeof *m->block); // biases, ln_x.bias, layer 0's v slots
    for (int l = 0; l < m->cfg.n_layer; l++) init_vectors(m, l);
    rwkv_status st = RWKV_OK;
    for (int i = 0; i < m->table.n && !st; i++) st = init_tensor(m, &m->table.params[i], rng);
    gsl_set_error_handler(old);
    gsl_rng_free(rng);
    return st;
}
