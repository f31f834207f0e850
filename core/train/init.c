// init.c: the official RWKV-4 initialisation (equations in init.h).
#include "init.h"

#include <gsl/gsl_blas.h>
#include <gsl/gsl_errno.h>
#include <gsl/gsl_linalg.h>
#include <gsl/gsl_randist.h>
#include <gsl/gsl_rng.h>
#include <math.h>
#include <string.h>

// The deterministic time_* vectors of layer l, written straight into the block.
static void init_time(rwkv_model *m, int l) {
    int L = m->cfg.n_layer, C = m->cfg.n_embd;
    double r01 = L > 1 ? (double)l / (L - 1) : 0;  // ratio_0_to_1
    double r10 = 1.0 - (double)l / L;               // ratio_1_to_almost0
    size_t o = (size_t)l * C;
    const rwkv_weights *w = &m->w;
    for (int i = 0; i < C; i++) {
        double f = C > 1 ? (double)i / (C - 1) : 0, x = (double)i / C;
        w->att_time_decay[o + i] = (rwkv_real)(-5 + 8 * pow(f, 0.7 + 1.3 * r01));
        w->att_time_first[o + i] = (rwkv_real)(log(0.3) + 0.5 * (((i + 1) % 3) - 1));
        w->att_mix_k[o + i] = (rwkv_real)pow(x, r10);
        w->att_mix_v[o + i] = (rwkv_real)(pow(x, r10) + 0.3 * r01);
        w->att_mix_r[o + i] = (rwkv_real)pow(x, 0.5 * r10);
        w->ffn_mix_k[o + i] = (rwkv_real)pow(x, r10);
        w->ffn_mix_r[o + i] = (rwkv_real)pow(x, r10);
    }
}

// dst (rows, cols) = gain * an orthogonal matrix, as torch.nn.init.orthogonal_: QR of a
// Gaussian (max, min) matrix A, Q's columns signed by diag(R), transposed when rows < cols.
// The thin Q = A R^{-1} comes from a triangular solve: GSL's unpack builds the full M x M Q,
// too big for a vocabulary-sized head.
rwkv_status rwkv_init_orthogonal(rwkv_real *dst, int rows, int cols, double gain, gsl_rng *rng,
                                 const char *name) {
    int M = rows > cols ? rows : cols, N = rows > cols ? cols : rows;
    gsl_matrix *A = gsl_matrix_alloc(M, N), *QR = gsl_matrix_alloc(M, N), *T = gsl_matrix_alloc(N, N);
    rwkv_status st = RWKV_OK;
    if (!A || !QR || !T) {
        st = rwkv_error_set(RWKV_ERR_NOMEM, "init: tensor %s: cannot allocate the QR workspace", name);
        goto done;
    }
    for (int i = 0; i < M; i++)
        for (int j = 0; j < N; j++) gsl_matrix_set(A, i, j, gsl_ran_gaussian(rng, 1.0));
    gsl_matrix_memcpy(QR, A);
    if (gsl_linalg_QR_decomp_r(QR, T)) {
        st = rwkv_error_set(RWKV_ERR_NUMERIC, "init: tensor %s: QR decomposition failed", name);
        goto done;
    }
    gsl_matrix_view R = gsl_matrix_submatrix(QR, 0, 0, N, N); // upper triangle holds R
    gsl_blas_dtrsm(CblasRight, CblasUpper, CblasNoTrans, CblasNonUnit, 1.0, &R.matrix, A); // A <- A R^{-1} = Q
    for (int j = 0; j < N; j++) {
        double sign = gsl_matrix_get(QR, j, j) < 0 ? -1 : 1; // makes Q unique (uniform on O(n))
        for (int i = 0; i < M; i++) {
            double q = gain * sign * gsl_matrix_get(A, i, j);
            if (rows >= cols) dst[(size_t)i * cols + j] = (rwkv_real)q;
            else dst[(size_t)j * cols + i] = (rwkv_real)q;
        }
    }
done:
    gsl_matrix_free(A), gsl_matrix_free(QR), gsl_matrix_free(T);
    return st;
}

static int is_zero_init(const char *name) {
    static const char *const zero[] = {".att.key.weight", ".att.receptance.weight", ".att.output.weight",
                                       ".ffn.value.weight", ".ffn.receptance.weight"};
    for (size_t i = 0; i < sizeof zero / sizeof zero[0]; i++) {
        size_t n = strlen(name), k = strlen(zero[i]);
        if (n >= k && !strcmp(name + n - k, zero[i])) return 1;
    }
    return 0;
}

static rwkv_status init_param(rwkv_model *m, const rwkv_param *p, gsl_rng *rng) {
    rwkv_real *x = m->block + p->offset;
    const char *dot = strrchr(p->name, '.');
    if (!strcmp(p->name, "emb.weight")) {
        for (size_t i = 0; i < p->numel; i++)
            x[i] = (rwkv_real)((2 * gsl_rng_uniform(rng) - 1) * RWKV_INIT_EMB_RANGE);
        return RWKV_OK;
    }
    if (strstr(p->name, ".ln") || !strncmp(p->name, "ln_out", 6)) {
        rwkv_real v = !strcmp(dot, ".weight") ? 1 : 0; // LayerNorm weight 1, bias 0
        for (size_t i = 0; i < p->numel; i++) x[i] = v;
        return RWKV_OK;
    }
    if (!p->is_matrix) return RWKV_OK; // time_* are set by init_time
    if (is_zero_init(p->name)) {
        memset(x, 0, p->numel * sizeof *x);
        return RWKV_OK;
    }
    int rows = (int)p->shape[0], cols = (int)p->shape[1];
    double gain = rows > cols ? sqrt((double)rows / cols) : 1.0;
    if (!strcmp(p->name, "head.weight")) gain *= RWKV_INIT_HEAD_SCALE;
    return rwkv_init_orthogonal(x, rows, cols, gain, rng, p->name);
}

rwkv_status rwkv_init_model(rwkv_model *m, unsigned long seed) {
    if (m->v7) return rwkv_init_v7_model(m, seed);
    gsl_rng *rng = gsl_rng_alloc(gsl_rng_mt19937);
    if (!rng) return rwkv_error_set(RWKV_ERR_NOMEM, "init: cannot allocate the random generator");
    gsl_rng_set(rng, seed);
    gsl_error_handler_t *old = gsl_set_error_handler_off(); // report, never abort
    for (int l = 0; l < m->cfg.n_layer; l++) init_time(m, l);
    rwkv_status st = RWKV_OK;
    for (int i = 0; i < m->table.n && !st; i++) st = init_param(m, &m->table.params[i], rng);
    gsl_set_error_handler(old);
    gsl_rng_free(rng);
    rwkv_model_refresh(m);
    return st;
}

rwkv_status rwkv_init_new_model(rwkv_model **out, rwkv_config cfg, unsigned long seed) {
    *out = NULL;
    rwkv_status st = RWKV_IS_V7(cfg) ? rwkv_v7_model_alloc(out, cfg, rwkv_init_v7_dims(cfg.n_embd, cfg.n_layer))
                                     : rwkv_model_alloc(out, cfg);
    if (!st) st = rwkv_init_model(*out, seed);
    if (st) {
        rwkv_model_free(*out);
        *out = NULL;
    }
    return st;
}
