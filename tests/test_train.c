// test_train.c: training against independent data: the float64 golden gradients, a
// finite-difference check of the WKV alone, the official init, and training behaviour.
#include "util.h"

#include "core/compute/blas.h"
#include "core/compute/forward.h"
#include "core/compute/wkv.h"
#include "core/model/model.h"
#include "core/model/state.h"
#include "core/train/adamw.h"
#include "core/train/checkpoint.h"
#include "core/train/data.h"
#include "core/train/init.h"
#include "core/train/schedule.h"
#include "core/train/train.h"
#include "core/train/trainer.h"

#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#if RWKV_REAL_BITS == 64
#define GRAD_TOL 1e-9 // the bound for a float64 engine
#define FD_TOL 1e-7
#define MATCH_TOL 1e-12
#else
#define GRAD_TOL 1e-4 // the bound for a float32 engine
#define FD_TOL 1e-4
#define MATCH_TOL 2e-5
#endif

// ---------------------------------------------------------------- fixture model

static rwkv_model *load_rand_model(void) {
    rwkv_model *m = NULL;
    ck_assert_msg(rwkv_model_load(&m, test_fixture("rand-L2-C32-V50.pth")) == RWKV_OK, "%s", rwkv_error_message());
    return m;
}

// max |a - ref| / max(max |ref|, 1e-6): the per-tensor error of the issue.
static double tensor_rel_err(const rwkv_real *a, const double *ref, size_t n) {
    double emax = 0, rmax = 0;
    for (size_t i = 0; i < n; i++) {
        double e = fabs((double)a[i] - ref[i]);
        if (!(e <= emax)) emax = e; // NaN propagates
        if (fabs(ref[i]) > rmax) rmax = fabs(ref[i]);
    }
    return emax / fmax(rmax, 1e-6);
}

static double scaled_err_r(const rwkv_real *a, const double *b, size_t n) {
    double m = 0;
    for (size_t i = 0; i < n; i++) {
        double e = fabs((double)a[i] - b[i]) / fmax(1.0, fabs(b[i]));
        if (!(e <= m)) m = e;
    }
    return m;
}

static double scaled_err_rr(const rwkv_real *a, const rwkv_real *b, size_t n) {
    double m = 0;
    for (size_t i = 0; i < n; i++) {
        double e = fabs((double)a[i] - b[i]) / fmax(1.0, fabs((double)b[i]));
        if (!(e <= m)) m = e;
    }
    return m;
}

// A pseudo-random value in [-1, 1), rounded to the engine's precision so that the float64
// reference and the engine see the same inputs.
static double rnd(uint64_t *s) {
    *s = *s * 6364136223846793005ULL + 1442695040888963407ULL;
    return (rwkv_real)((double)(*s >> 11) / (double)(1ULL << 53) * 2 - 1);
}

static void load_grad_batch(rwkv_batch *b) {
    size_t ni, nt;
    int *in = test_h5_read_int(test_fixture("golden-grad.h5"), "/inputs", &ni);
    int *tg = test_h5_read_int(test_fixture("golden-grad.h5"), "/targets", &nt);
    ck_assert(in && tg && ni == 48 && nt == 48);
    ck_assert_int_eq(rwkv_batch_alloc(b, 2, 24), RWKV_OK);
    memcpy(b->inputs, in, ni * sizeof(int));
    memcpy(b->targets, tg, nt * sizeof(int));
    free(in);
    free(tg);
}

// ---------------------------------------------------------------- gradients

START_TEST(test_grad_golden) {
    rwkv_model *m = load_rand_model();
    rwkv_batch b;
    load_grad_batch(&b);
    rwkv_train *t;
    ck_assert_int_eq(rwkv_train_alloc(&t, m->cfg, 2, 24), RWKV_OK);
    double loss;
    ck_assert_int_eq(rwkv_train_forward(t, m, &b, &loss), RWKV_OK);
    int nd;
    uint64_t dims[4];
    double *ref_loss = test_h5_read(test_fixture("golden-grad.h5"), "/loss", &nd, dims);
    ck_assert(ref_loss);
    double lerr = fabs(loss - *ref_loss) / fmax(fabs(*ref_loss), 1e-6);
    ck_assert_msg(lerr <= GRAD_TOL, "loss %.10g vs golden %.10g (rel err %.3g)", loss, *ref_loss, lerr);
    rwkv_real *grad = calloc(m->table.total, sizeof *grad);
    for (size_t i = 0; i < m->table.total; i++) grad[i] = NAN; // the backward must overwrite all
    ck_assert_int_eq(rwkv_train_backward(t, m, &b, grad), RWKV_OK);
    double worst = 0;
    const char *worst_name = "";
    for (int i = 0; i < m->table.n; i++) {
        const rwkv_param *p = &m->table.params[i];
        char dset[128];
        snprintf(dset, sizeof dset, "/grad/%s", p->name);
        double *ref = test_h5_read(test_fixture("golden-grad.h5"), dset, &nd, dims);
        ck_assert_msg(ref != NULL, "golden-grad.h5 lacks %s", dset);
        double e = tensor_rel_err(grad + p->offset, ref, p->numel);
        ck_assert_msg(e <= GRAD_TOL, "gradient of %s: relative error %.3g > %g", p->name, e, GRAD_TOL);
        if (e > worst) worst = e, worst_name = p->name;
        free(ref);
    }
    printf("golden gradients: loss err %.3g, worst tensor %s %.3g (%d tensors)\n", lerr, worst_name,
           worst, m->table.n);
    free(grad);
    free(ref_loss);
    rwkv_train_free(t);
    rwkv_batch_free(&b);
    rwkv_model_free(m);
}
END_TEST


// A batch big enough for the threaded paths (B*T*C >= 2^15) gives the mean of the gradients
// of its rows taken one at a time (small, single-threaded): loss = (1/B) sum_b loss_b.
#define PAR_B 8
#define PAR_T 160
START_TEST(test_grad_parallel_equals_rows) {
    rwkv_model *m = load_rand_model();
    size_t total = m->table.total;
    rwkv_batch big, one;
    ck_assert_int_eq(rwkv_batch_alloc(&big, PAR_B, PAR_T), RWKV_OK);
    ck_assert_int_eq(rwkv_batch_alloc(&one, 1, PAR_T), RWKV_OK);
    uint64_t s = 99;
    for (int i = 0; i < PAR_B * PAR_T; i++) {
        big.inputs[i] = (int)((rnd(&s) + 1) / 2 * m->cfg.n_vocab) % m->cfg.n_vocab;
        big.targets[i] = (int)((rnd(&s) + 1) / 2 * m->cfg.n_vocab) % m->cfg.n_vocab;
    }
    rwkv_train *tb, *t1;
    ck_assert_int_eq(rwkv_train_alloc(&tb, m->cfg, PAR_B, PAR_T), RWKV_OK);
    ck_assert_int_eq(rwkv_train_alloc(&t1, m->cfg, 1, PAR_T), RWKV_OK);
    rwkv_real *g = calloc(total, sizeof *g), *gr = calloc(total, sizeof *gr);
    double *sum = calloc(total, sizeof *sum), lb, l1, lsum = 0;
    ck_assert_int_eq(rwkv_train_forward(tb, m, &big, &lb), RWKV_OK);
    ck_assert_int_eq(rwkv_train_backward(tb, m, &big, g), RWKV_OK);
    for (int b = 0; b < PAR_B; b++) {
        memcpy(one.inputs, big.inputs + b * PAR_T, PAR_T * sizeof(int));
        memcpy(one.targets, big.targets + b * PAR_T, PAR_T * sizeof(int));
        ck_assert_int_eq(rwkv_train_forward(t1, m, &one, &l1), RWKV_OK);
        ck_assert_int_eq(rwkv_train_backward(t1, m, &one, gr), RWKV_OK);
        lsum += l1 / PAR_B;
        for (size_t i = 0; i < total; i++) sum[i] += (double)gr[i] / PAR_B;
    }
    ck_assert_msg(fabs(lb - lsum) <= GRAD_TOL * lsum, "batch loss %.9g vs mean of rows %.9g", lb, lsum);
    for (int i = 0; i < m->table.n; i++) {
        const rwkv_param *p = &m->table.params[i];
        double e = tensor_rel_err(g + p->offset, sum + p->offset, p->numel);
        ck_assert_msg(e <= GRAD_TOL, "%s: batched gradient vs mean of rows: %.3g", p->name, e);
    }
    free(g), free(gr), free(sum);
    rwkv_train_free(tb), rwkv_train_free(t1);
    rwkv_batch_free(&big), rwkv_batch_free(&one);
    rwkv_model_free(m);
}
END_TEST

// The training forward gives the inference forward's logits (each row from the zero state).
START_TEST(test_forward_matches_inference) {
    rwkv_model *m = load_rand_model();
    rwkv_batch b;
    load_grad_batch(&b);
    rwkv_train *t;
    ck_assert_int_eq(rwkv_train_alloc(&t, m->cfg, 2, 24), RWKV_OK);
    double loss;
    ck_assert_int_eq(rwkv_train_forward(t, m, &b, &loss), RWKV_OK);
    rwkv_workspace *ws;
    rwkv_state *s;
    ck_assert_int_eq(rwkv_workspace_alloc(&ws, m->cfg, 24), RWKV_OK);
    ck_assert_int_eq(rwkv_state_alloc(&s, m->cfg), RWKV_OK);
    int V = m->cfg.n_vocab;
    rwkv_real *logits = malloc((size_t)24 * V * sizeof *logits);
    for (int r = 0; r < 2; r++) {
        rwkv_state_reset(s);
        ck_assert_int_eq(rwkv_forward_par(m, s, b.inputs + r * 24, 24, logits, RWKV_LOGITS_ALL, NULL, ws), RWKV_OK);
        double e = 0;
        for (int i = 0; i < 24 * V; i++) {
            double d = fabs((double)logits[i] - t->logits[(size_t)r * 24 * V + i]) / fmax(1, fabs(logits[i]));
            if (!(d <= e)) e = d;
        }
        ck_assert_msg(e <= MATCH_TOL, "row %d: training logits differ from rwkv_forward_par by %.3g", r, e);
    }
    free(logits);
    rwkv_state_free(s);
    rwkv_workspace_free(ws);
    rwkv_train_free(t);
    rwkv_batch_free(&b);
    rwkv_model_free(m);
}
END_TEST

// ---------------------------------------------------------------- WKV alone

typedef struct {
    int T, C;
    double *k, *v, *td, *u, *gy; // (T, C), (T, C), (C), (C), (T, C)
} wkv_case;

// L = sum_t gy_t y_t for one channel, straight from the definition in float64 (O(T^2)).
static double naive_loss(const wkv_case *w, int c, const double *k, const double *v, double td, double u) {
    double ew = exp(td), L = 0;
    for (int t = 0; t < w->T; t++) {
        double num = exp(u + k[t * w->C + c]) * v[t * w->C + c], den = exp(u + k[t * w->C + c]);
        for (int i = 0; i < t; i++) {
            double e = exp(-(t - 1 - i) * ew + k[i * w->C + c]);
            num += e * v[i * w->C + c];
            den += e;
        }
        L += w->gy[t * w->C + c] * num / den;
    }
    return L;
}

static double fd_err(const rwkv_real *an, const double *fd, size_t n) { return tensor_rel_err(an, fd, n); }

// Central differences of the naive float64 loss against rwkv_wkv_backward.
static void check_wkv_fd(wkv_case *w, double h) {
    int T = w->T, C = w->C;
    size_t TC = (size_t)T * C;
    rwkv_real *k = malloc(TC * sizeof *k), *v = malloc(TC * sizeof *v), *gy = malloc(TC * sizeof *gy);
    rwkv_real *y = malloc(TC * sizeof *y), *p = malloc(TC * sizeof *p), *d = malloc(TC * sizeof *d);
    rwkv_real *dk = malloc(TC * sizeof *dk), *dv = malloc(TC * sizeof *dv);
    rwkv_real ew[64] = {0}, u[64] = {0}, dtd[64] = {0}, du[64] = {0};
    for (size_t i = 0; i < TC; i++) k[i] = w->k[i], v[i] = w->v[i], gy[i] = w->gy[i];
    for (int c = 0; c < C; c++) ew[c] = exp(w->td[c]), u[c] = w->u[c];
    rwkv_wkv_scan_channels(y, k, v, ew, u, T, C, 0, C, &(rwkv_wkv_trace){.p = p, .d = d});
    rwkv_wkv_backward(dk, dv, dtd, du, gy, k, v, ew, u, y, p, d, T, C, 0, C);
    double *fk = malloc(TC * sizeof *fk), *fv = malloc(TC * sizeof *fv), ftd[64], fu[64];
    for (int c = 0; c < C; c++) {
        for (int t = 0; t < T; t++) {
            size_t o = (size_t)t * C + c;
            double s = w->k[o];
            w->k[o] = s + h; double lp = naive_loss(w, c, w->k, w->v, w->td[c], w->u[c]);
            w->k[o] = s - h; double lm = naive_loss(w, c, w->k, w->v, w->td[c], w->u[c]);
            w->k[o] = s;
            fk[o] = (lp - lm) / (2 * h);
            s = w->v[o];
            w->v[o] = s + h; lp = naive_loss(w, c, w->k, w->v, w->td[c], w->u[c]);
            w->v[o] = s - h; lm = naive_loss(w, c, w->k, w->v, w->td[c], w->u[c]);
            w->v[o] = s;
            fv[o] = (lp - lm) / (2 * h);
        }
        ftd[c] = (naive_loss(w, c, w->k, w->v, w->td[c] + h, w->u[c]) -
                  naive_loss(w, c, w->k, w->v, w->td[c] - h, w->u[c])) / (2 * h);
        fu[c] = (naive_loss(w, c, w->k, w->v, w->td[c], w->u[c] + h) -
                 naive_loss(w, c, w->k, w->v, w->td[c], w->u[c] - h)) / (2 * h);
    }
    double ek = fd_err(dk, fk, TC), ev = fd_err(dv, fv, TC), etd = fd_err(dtd, ftd, C), eu = fd_err(du, fu, C);
    printf("wkv finite differences (T=%d C=%d): k %.2g v %.2g time_decay %.2g time_first %.2g\n", T, C,
           ek, ev, etd, eu);
    ck_assert_msg(ek <= FD_TOL, "dk vs finite differences: %.3g", ek);
    ck_assert_msg(ev <= FD_TOL, "dv vs finite differences: %.3g", ev);
    ck_assert_msg(etd <= FD_TOL, "dtime_decay vs finite differences: %.3g", etd);
    ck_assert_msg(eu <= FD_TOL, "dtime_first vs finite differences: %.3g", eu);
    free(k), free(v), free(gy), free(y), free(p), free(d), free(dk), free(dv), free(fk), free(fv);
}

START_TEST(test_wkv_fd_random) {
    wkv_case w = {.T = 20, .C = 8};
    size_t TC = 160;
    uint64_t s = 42;
    w.k = malloc(TC * 8), w.v = malloc(TC * 8), w.gy = malloc(TC * 8), w.td = malloc(64), w.u = malloc(64);
    for (size_t i = 0; i < TC; i++) w.k[i] = 3 * rnd(&s), w.v[i] = rnd(&s), w.gy[i] = rnd(&s);
    for (int c = 0; c < 8; c++) w.td[c] = 2 * rnd(&s), w.u[c] = rnd(&s);
    check_wkv_fd(&w, 1e-5);
    free(w.k), free(w.v), free(w.gy), free(w.td), free(w.u);
}
END_TEST

// The golden WKV inputs: keys to 85 (exp overflows float32 without the running max) and
// decays from 0.0025 to 20 per token. Forward against the golden, backward against FD.
START_TEST(test_wkv_golden_extreme) {
    const char *f = test_fixture("golden-wkv.h5");
    int nd;
    uint64_t dims[4];
    wkv_case w;
    w.k = test_h5_read(f, "/k", &nd, dims);
    w.T = (int)dims[0], w.C = (int)dims[1];
    w.v = test_h5_read(f, "/v", &nd, dims);
    w.td = test_h5_read(f, "/time_decay", &nd, dims);
    w.u = test_h5_read(f, "/time_first", &nd, dims);
    double *ref = test_h5_read(f, "/wkv", &nd, dims);
    ck_assert(w.k && w.v && w.td && w.u && ref && w.C <= 64);
    size_t TC = (size_t)w.T * w.C;
    rwkv_real *k = malloc(TC * sizeof *k), *v = malloc(TC * sizeof *v), *y = malloc(TC * sizeof *y);
    rwkv_real *p = malloc(TC * sizeof *p), *d = malloc(TC * sizeof *d), *y2 = malloc(TC * sizeof *y2);
    rwkv_real ew[64], u[64], num[64] = {0}, den[64] = {0}, mx[64];
    for (size_t i = 0; i < TC; i++) k[i] = w.k[i], v[i] = w.v[i];
    for (int c = 0; c < w.C; c++) ew[c] = exp(w.td[c]), u[c] = w.u[c], mx[c] = (rwkv_real)RWKV_MAX_INIT;
    rwkv_wkv_scan_channels(y, k, v, ew, u, w.T, w.C, 0, w.C, &(rwkv_wkv_trace){.p = p, .d = d});
    ck_assert_msg(scaled_err_r(y, ref, TC) <= (RWKV_REAL_BITS == 64 ? 1e-9 : 1e-4),
                  "training wkv vs golden: %.3g", scaled_err_r(y, ref, TC));
    rwkv_wkv_forward(y2, k, v, ew, u, w.T, w.C, num, den, mx, NULL);
    ck_assert_msg(memcmp(y, y2, TC * sizeof *y) == 0, "training wkv differs from rwkv_wkv_forward by %.3g",
                  scaled_err_rr(y, y2, TC)); // one scan: the same bits
    // Backward on the extreme inputs; the reference loss weights are pseudo-random.
    uint64_t s = 7;
    w.gy = malloc(TC * 8);
    for (size_t i = 0; i < TC; i++) w.gy[i] = rnd(&s);
    for (size_t i = 0; i < TC; i++) w.k[i] = k[i], w.v[i] = v[i];
    check_wkv_fd(&w, 1e-6);
    free(k), free(v), free(y), free(p), free(d), free(y2), free(ref);
    free(w.k), free(w.v), free(w.gy), free(w.td), free(w.u);
}
END_TEST


// ---------------------------------------------------------------- init

// The golden holds float32-rounded values of magnitude <= 5: one rounding is <= 5 * 2^-24.
#define INIT_TOL 3e-7

static rwkv_model *init_model(rwkv_config cfg, unsigned long seed) {
    rwkv_model *m;
    ck_assert_int_eq(rwkv_init_new_model(&m, cfg, seed), RWKV_OK); // what init and train call
    ck_assert_ptr_null(m->v7);
    return m;
}

START_TEST(test_init_golden) {
    rwkv_model *m = init_model((rwkv_config){.n_layer = 4, .n_embd = 64, .n_ffn = 256, .n_vocab = 300}, 1);
    const char *f = test_fixture("golden-init.h5");
    int checked = 0;
    for (int i = 0; i < m->table.n; i++) {
        const rwkv_param *p = &m->table.params[i];
        if (!strstr(p->name, ".time_")) continue;
        int nd;
        uint64_t dims[4];
        char dset[96];
        snprintf(dset, sizeof dset, "/%s", p->name);
        double *ref = test_h5_read(f, dset, &nd, dims);
        ck_assert_msg(ref != NULL, "golden-init.h5 lacks %s", p->name);
        double e = scaled_err_r(m->block + p->offset, ref, p->numel);
        ck_assert_msg(e <= INIT_TOL, "%s differs from golden-init.h5 by %.3g", p->name, e);
        free(ref);
        checked++;
    }
    ck_assert_int_eq(checked, 4 * 7);
    rwkv_model_free(m);
}
END_TEST

// Orthogonal matrices: W W^T (or W^T W) = gain^2 I; zeros where the scheme says; emb range.
static double ortho_err(const rwkv_real *W, int rows, int cols, double gain) {
    int n = rows < cols ? rows : cols;
    double e = 0;
    for (int a = 0; a < n; a++)
        for (int b = 0; b < n; b++) {
            double s = 0;
            for (int k = 0; k < (rows < cols ? cols : rows); k++)
                s += rows < cols ? (double)W[(size_t)a * cols + k] * W[(size_t)b * cols + k]
                                 : (double)W[(size_t)k * cols + a] * W[(size_t)k * cols + b];
            e = fmax(e, fabs(s - (a == b ? gain * gain : 0)));
        }
    return e;
}

START_TEST(test_init_properties) {
    rwkv_config cfg = {.n_layer = 2, .n_embd = 32, .n_ffn = 128, .n_vocab = 100};
    rwkv_model *m = init_model(cfg, 5), *m2 = init_model(cfg, 5), *m3 = init_model(cfg, 6);
    ck_assert_msg(memcmp(m->block, m2->block, m->table.total * sizeof(rwkv_real)) == 0,
                  "the same seed gave different models");
    ck_assert_msg(memcmp(m->block, m3->block, m->table.total * sizeof(rwkv_real)) != 0,
                  "different seeds gave the same model");
    double tol = RWKV_REAL_BITS == 64 ? 1e-12 : 1e-5;
    ck_assert_msg(ortho_err(m->w.head, 100, 32, 0.5 * sqrt(100.0 / 32)) < tol * 10, "head is not 0.5 sqrt(V/C) orthogonal");
    ck_assert_msg(ortho_err(m->w.ffn_key, 128, 32, 2.0) < tol * 10, "ffn.key is not sqrt(F/C) orthogonal");
    ck_assert_msg(ortho_err(m->w.att_value, 32, 32, 1.0) < tol, "att.value is not orthogonal");
    rwkv_real *zero[] = {m->w.att_key, m->w.att_receptance, m->w.att_output, m->w.ffn_receptance};
    for (int i = 0; i < 4; i++)
        for (int j = 0; j < 2 * 32 * 32; j++) ck_assert(zero[i][j] == 0);
    for (int j = 0; j < 2 * 32 * 128; j++) ck_assert(m->w.ffn_value[j] == 0);
    double emax = 0;
    for (int j = 0; j < 100 * 32; j++) emax = fmax(emax, fabs(m->w.emb[j]));
    ck_assert_msg(emax <= 1e-4 && emax > 0.9e-4, "emb max %g not in U(-1e-4, 1e-4)", emax);
    for (int i = 0; i < 32; i++) {
        ck_assert(m->w.ln1_w[i] == 1 && m->w.ln1_b[i] == 0 && m->w.ln_out_w[i] == 1 && m->w.ln0_b[i] == 0);
    }
    rwkv_model_free(m), rwkv_model_free(m2), rwkv_model_free(m3);
}
END_TEST

// ---------------------------------------------------------------- optimiser

START_TEST(test_adamw_schedule_and_step) {
    rwkv_adamw_opts o = rwkv_adamw_defaults();
    o.lr = 1e-3, o.min_lr = 1e-4, o.warmup = 10, o.total_steps = 110;
    ck_assert(fabs(rwkv_adamw_lr(&o, 0) - 1e-4) < 1e-15);     // warm-up: lr (s+1)/warmup
    ck_assert(fabs(rwkv_adamw_lr(&o, 9) - 1e-3) < 1e-15);
    ck_assert(fabs(rwkv_adamw_lr(&o, 10) - 1e-3) < 1e-15);    // cosine starts at lr
    ck_assert(fabs(rwkv_adamw_lr(&o, 109) - 1e-4) < 1e-15);   // ... ends at min_lr
    o.warmup = 0, o.total_steps = 3;
    ck_assert(fabs(rwkv_adamw_lr(&o, 1) - 5.5e-4) < 1e-15); // cos(pi/2): halfway
    o.schedule = RWKV_SCHED_EXP;
    ck_assert(fabs(rwkv_adamw_lr(&o, 1) - sqrt(1e-3 * 1e-4)) < 1e-15); // geometric halfway
    // One update on a 1x1x1 model by hand: every parameter gets g = 2, clipped to norm 1.
    rwkv_config cfg = {.n_layer = 1, .n_embd = 1, .n_ffn = 1, .n_vocab = 1};
    rwkv_param_table t;
    ck_assert_int_eq(rwkv_weights_table_alloc(&t, cfg), RWKV_OK);
    rwkv_adamw_opts a = rwkv_adamw_defaults();
    a.lr = 0.1, a.min_lr = 0.1, a.schedule = RWKV_SCHED_CONSTANT, a.weight_decay = 0.5, a.clip = 1.0;
    rwkv_adamw *opt;
    ck_assert_int_eq(rwkv_adamw_alloc(&opt, &t, &a), RWKV_OK);
    rwkv_real *p = calloc(t.total, sizeof *p), *g = calloc(t.total, sizeof *g);
    for (size_t i = 0; i < t.total; i++) p[i] = 1, g[i] = 2;
    double norm;
    ck_assert_int_eq(rwkv_adamw_step(opt, p, g, &norm), RWKV_OK);
    ck_assert(fabs(norm - 2 * sqrt((double)t.total)) < 1e-5);
    // First step: m_hat = g', v_hat = g'^2, update = sign(g') lr (1 - tiny eps term) (+ lr wd p).
    double gc = 2 / norm, upd = gc / (gc + 1e-8);
    for (int i = 0; i < t.n; i++) {
        const rwkv_param *q = &t.params[i];
        double want = 1 - 0.1 * (upd + (q->is_matrix ? 0.5 : 0));
        ck_assert_msg(fabs(p[q->offset] - want) < 1e-6, "%s: %g, expected %g", q->name, (double)p[q->offset], want);
    }
    g[3] = NAN;
    ck_assert_int_eq(rwkv_adamw_step(opt, p, g, &norm), RWKV_ERR_NUMERIC);
    ck_assert_int_eq(opt->step, 1);
    o.lr = -1;
    ck_assert_int_eq(rwkv_adamw_check(&o), RWKV_ERR_ARG);
    free(p), free(g);
    rwkv_adamw_free(opt);
    rwkv_weights_table_free(&t);
}
END_TEST

// ---------------------------------------------------------------- training runs

#define PATTERN_LEN 16
#define PATTERN_VOCAB 16

// A pattern of 16 random tokens repeated: after a period, every token is predictable.
static rwkv_data *pattern_data(int64_t n) {
    int *tok = malloc((size_t)n * sizeof *tok);
    uint64_t s = 3;
    int pat[PATTERN_LEN];
    for (int i = 0; i < PATTERN_LEN; i++) pat[i] = (int)((rnd(&s) + 1) / 2 * PATTERN_VOCAB) % PATTERN_VOCAB;
    for (int64_t i = 0; i < n; i++) tok[i] = pat[i % PATTERN_LEN];
    rwkv_data *d;
    ck_assert_int_eq(rwkv_data_from_tokens(&d, tok, NULL, n, PATTERN_VOCAB, 0.1, "pattern"), RWKV_OK);
    free(tok);
    return d;
}

static rwkv_trainer_opts tiny_opts(int64_t steps) {
    rwkv_trainer_opts o = {.B = 4, .T = 32, .steps = steps, .seed = 11, .opt = rwkv_adamw_defaults(), .eval_batches = 2};
    o.opt.lr = 3e-3, o.opt.min_lr = 3e-4, o.opt.warmup = 10;
    return o;
}

#define TINY_CFG ((rwkv_config){.n_layer = 2, .n_embd = 32, .n_ffn = 64, .n_vocab = PATTERN_VOCAB})
#define PATTERN_BOUND 0.2 // nats; a unigram model of the pattern needs about ln 16 = 2.77

START_TEST(test_train_pattern) {
    rwkv_data *d = pattern_data(4000);
    rwkv_model *m = init_model(TINY_CFG, 1);
    rwkv_trainer_opts o = tiny_opts(300);
    rwkv_trainer *tr;
    ck_assert_int_eq(rwkv_trainer_alloc(&tr, m, d, &o), RWKV_OK);
    double loss = 0, first = 0, val;
    for (int i = 0; i < o.steps; i++) {
        ck_assert_int_eq(rwkv_trainer_step(tr, &loss), RWKV_OK);
        if (!i) first = loss;
    }
    ck_assert_int_eq(rwkv_trainer_eval(tr, &val), RWKV_OK);
    printf("pattern: loss %.3f -> %.4f, val %.4f after %lld steps\n", first, loss, val, (long long)o.steps);
    ck_assert_msg(first > 2.5, "the first loss %.3f should be near ln 16", first);
    ck_assert_msg(val < PATTERN_BOUND, "val loss %.4f did not fall below %g", val, PATTERN_BOUND);
    rwkv_trainer_free(tr);
    rwkv_model_free(m);
    rwkv_data_free(d);
}
END_TEST

// N steps straight == N/2, save, resume in a fresh trainer, N/2 more: bit for bit.
START_TEST(test_resume_bitwise) {
    rwkv_data *d = pattern_data(2000);
    rwkv_trainer_opts o = tiny_opts(20);
    rwkv_model *a = init_model(TINY_CFG, 1), *b = init_model(TINY_CFG, 1);
    rwkv_trainer *ta, *tb;
    ck_assert_int_eq(rwkv_trainer_alloc(&ta, a, d, &o), RWKV_OK);
    ck_assert_int_eq(rwkv_trainer_alloc(&tb, b, d, &o), RWKV_OK);
    double l;
    for (int i = 0; i < 20; i++) ck_assert_int_eq(rwkv_trainer_step(ta, &l), RWKV_OK);
    for (int i = 0; i < 10; i++) ck_assert_int_eq(rwkv_trainer_step(tb, &l), RWKV_OK);
    char path[512];
    snprintf(path, sizeof path, "%s/resume.optim.h5", test_tmpdir());
    ck_assert_int_eq(rwkv_checkpoint_save_optim(tb, path), RWKV_OK);
    rwkv_trainer_free(tb);
    rwkv_model_free(b);
    rwkv_config cfg;
    rwkv_trainer_opts o2;
    int64_t step;
    ck_assert_int_eq(rwkv_checkpoint_read_opts(path, &cfg, &o2, &step), RWKV_OK);
    ck_assert_int_eq(step, 10);
    ck_assert(o2.opt.lr == o.opt.lr && o2.B == o.B && o2.seed == o.seed && o2.steps == 20);
    rwkv_model *c;
    ck_assert_int_eq(rwkv_model_alloc(&c, cfg), RWKV_OK); // zeros: everything comes from the file
    rwkv_trainer *tc;
    ck_assert_int_eq(rwkv_trainer_alloc(&tc, c, d, &o2), RWKV_OK);
    ck_assert_int_eq(rwkv_checkpoint_resume(tc, path), RWKV_OK);
    for (int i = 0; i < 10; i++) ck_assert_int_eq(rwkv_trainer_step(tc, &l), RWKV_OK);
    size_t n = a->table.total;
    ck_assert_msg(memcmp(a->block, c->block, n * sizeof(rwkv_real)) == 0, "resumed parameters differ");
    ck_assert_msg(memcmp(ta->opt->m, tc->opt->m, n * sizeof(rwkv_real)) == 0, "resumed moments differ");
    ck_assert_msg(memcmp(ta->opt->v, tc->opt->v, n * sizeof(rwkv_real)) == 0, "resumed moments differ");
    // A run at its last step cannot resume; a corrupt file is a clear error.
    tc->o.steps = 10;
    ck_assert_int_eq(rwkv_checkpoint_resume(tc, path), RWKV_ERR_ARG);
    char bad[512];
    snprintf(bad, sizeof bad, "%s/bad.optim.h5", test_tmpdir());
    FILE *f = fopen(bad, "wb");
    fputs("not hdf5 at all", f);
    fclose(f);
    ck_assert_int_eq(rwkv_checkpoint_read_opts(bad, &cfg, &o2, &step), RWKV_ERR_FORMAT);
    ck_assert(strstr(rwkv_error_message(), "bad.optim.h5") != NULL);
    ck_assert_int_eq(rwkv_checkpoint_read_opts("/nonexistent/x.optim.h5", &cfg, &o2, &step), RWKV_ERR_IO);
    // A truncated copy of the good state is refused with an error naming it.
    char cut[512];
    snprintf(cut, sizeof cut, "%s/cut.optim.h5", test_tmpdir());
    FILE *in = fopen(path, "rb"), *outf = fopen(cut, "wb");
    fseek(in, 0, SEEK_END);
    long len = ftell(in);
    fseek(in, 0, SEEK_SET);
    char *bytes = malloc((size_t)len);
    ck_assert(fread(bytes, 1, (size_t)len, in) == (size_t)len);
    fwrite(bytes, 1, (size_t)len / 2, outf);
    fclose(in), fclose(outf), free(bytes);
    tc->o.steps = 20;
    rwkv_status cst = rwkv_checkpoint_resume(tc, cut);
    ck_assert_msg(cst == RWKV_ERR_FORMAT && strstr(rwkv_error_message(), "cut.optim.h5"), "truncated state: %d %s", cst,
                  rwkv_error_message());
    // A state for another shape is refused.
    rwkv_model *other = init_model((rwkv_config){.n_layer = 2, .n_embd = 16, .n_ffn = 64, .n_vocab = PATTERN_VOCAB}, 1);
    rwkv_trainer *to;
    ck_assert_int_eq(rwkv_trainer_alloc(&to, other, d, &o), RWKV_OK);
    ck_assert_int_eq(rwkv_checkpoint_resume(to, path), RWKV_ERR_SHAPE);
    rwkv_trainer_free(to);
    rwkv_model_free(other);
    rwkv_trainer_free(ta), rwkv_trainer_free(tc);
    rwkv_model_free(a), rwkv_model_free(c);
    rwkv_data_free(d);
}
END_TEST

// A huge learning rate blows the model up: the step that fails is named, the model is kept.
START_TEST(test_nan_detection) {
    rwkv_data *d = pattern_data(2000);
    rwkv_model *m = init_model(TINY_CFG, 1);
    rwkv_trainer_opts o = tiny_opts(50);
    o.opt.lr = 1e30, o.opt.min_lr = 1e30, o.opt.warmup = 0, o.opt.clip = 0;
    rwkv_trainer *tr;
    ck_assert_int_eq(rwkv_trainer_alloc(&tr, m, d, &o), RWKV_OK);
    double l;
    rwkv_status st = RWKV_OK;
    int i;
    for (i = 0; i < 50 && !st; i++) st = rwkv_trainer_step(tr, &l);
    ck_assert_int_eq(st, RWKV_ERR_NUMERIC);
    char want[32];
    snprintf(want, sizeof want, "step %d:", i);
    ck_assert_msg(strstr(rwkv_error_message(), want) != NULL, "message '%s' lacks '%s'", rwkv_error_message(), want);
    ck_assert_int_eq(tr->opt->step, i - 1); // the failing update was not applied
    // A poisoned weight: the very first step fails.
    rwkv_model *p = init_model(TINY_CFG, 1);
    p->w.att_value[5] = NAN;
    rwkv_trainer *tp;
    o = tiny_opts(5);
    ck_assert_int_eq(rwkv_trainer_alloc(&tp, p, d, &o), RWKV_OK);
    ck_assert_int_eq(rwkv_trainer_step(tp, &l), RWKV_ERR_NUMERIC);
    ck_assert_msg(strstr(rwkv_error_message(), "step 1:") != NULL, "%s", rwkv_error_message());
    rwkv_trainer_free(tr), rwkv_trainer_free(tp);
    rwkv_model_free(m), rwkv_model_free(p);
    rwkv_data_free(d);
}
END_TEST

START_TEST(test_bad_hyperparameters) {
    rwkv_data *d = pattern_data(200); // 180 train tokens, 20 held out
    rwkv_model *m = init_model(TINY_CFG, 1);
    rwkv_trainer *tr = NULL;
    rwkv_trainer_opts o = tiny_opts(5);
    o.T = 500;
    ck_assert_int_eq(rwkv_trainer_alloc(&tr, m, d, &o), RWKV_ERR_ARG);
    ck_assert(strstr(rwkv_error_message(), "ctx 500 is longer") != NULL);
    o.T = 32; // fits the training part but not the 20 held-out tokens
    ck_assert_int_eq(rwkv_trainer_alloc(&tr, m, d, &o), RWKV_ERR_ARG);
    ck_assert(strstr(rwkv_error_message(), "held-out") != NULL);
    o = tiny_opts(5);
    o.T = 8, o.B = 0;
    ck_assert_int_eq(rwkv_trainer_alloc(&tr, m, d, &o), RWKV_ERR_ARG);
    rwkv_train *huge = NULL;
    ck_assert_int_eq(rwkv_train_alloc(&huge, m->cfg, 1 << 16, 1 << 20), RWKV_ERR_ARG);
    ck_assert(huge == NULL);
    o.B = 2, o.steps = 0;
    ck_assert_int_eq(rwkv_trainer_alloc(&tr, m, d, &o), RWKV_ERR_ARG);
    o.steps = 5, o.opt.lr = 0;
    ck_assert_int_eq(rwkv_trainer_alloc(&tr, m, d, &o), RWKV_ERR_ARG);
    ck_assert(tr == NULL);
    rwkv_model *small = init_model((rwkv_config){.n_layer = 1, .n_embd = 8, .n_ffn = 16, .n_vocab = 4}, 1); // vocab 4 < the data's 16
    o = tiny_opts(5);
    o.T = 8;
    ck_assert_int_eq(rwkv_trainer_alloc(&tr, small, d, &o), RWKV_ERR_ARG);
    rwkv_data *e = NULL;
    ck_assert_int_eq(rwkv_data_load_bytes(&e, "/nonexistent/data.txt", 0.1), RWKV_ERR_IO);
    int bad[3] = {1, 99, 2};
    ck_assert_int_eq(rwkv_data_from_tokens(&e, bad, NULL, 3, 16, 0.1, "bad"), RWKV_ERR_ARG);
    ck_assert(e == NULL);
    // Out-of-vocabulary ids in a batch are refused by the forward.
    rwkv_train *t;
    rwkv_batch b;
    ck_assert_int_eq(rwkv_train_alloc(&t, m->cfg, 1, 4), RWKV_OK);
    ck_assert_int_eq(rwkv_batch_alloc(&b, 1, 4), RWKV_OK);
    b.inputs[2] = 40;
    double l;
    ck_assert_int_eq(rwkv_train_forward(t, m, &b, &l), RWKV_ERR_ARG);
    rwkv_batch_free(&b);
    rwkv_train_free(t);
    rwkv_model_free(small);
    rwkv_model_free(m);
    rwkv_data_free(d);
}
END_TEST

// The loss mask weights positions: masking all but one position gives that position's loss.
START_TEST(test_loss_mask) {
    rwkv_model *m = load_rand_model();
    rwkv_batch b;
    load_grad_batch(&b);
    rwkv_train *t;
    ck_assert_int_eq(rwkv_train_alloc(&t, m->cfg, 2, 24), RWKV_OK);
    double full, one;
    ck_assert_int_eq(rwkv_train_forward(t, m, &b, &full), RWKV_OK);
    double l30 = t->losses[30];
    for (int i = 0; i < 48; i++) b.mask[i] = i == 30;
    ck_assert_int_eq(rwkv_train_forward(t, m, &b, &one), RWKV_OK);
    ck_assert(fabs(one - l30) < 1e-6 * fmax(1, l30));
    for (int i = 0; i < 48; i++) b.mask[i] = 0;
    ck_assert_int_eq(rwkv_train_forward(t, m, &b, &one), RWKV_ERR_ARG);
    rwkv_train_free(t);
    rwkv_batch_free(&b);
    rwkv_model_free(m);
}
END_TEST

// A saved checkpoint loads with the engine's loader, with the same parameters (float32
// storage), its metadata, and sequential inference equal to parallel inference on it.
START_TEST(test_checkpoint_roundtrip) {
    rwkv_data *d = pattern_data(2000);
    rwkv_model *m = init_model(TINY_CFG, 3);
    rwkv_trainer_opts o = tiny_opts(30);
    rwkv_trainer *tr;
    ck_assert_int_eq(rwkv_trainer_alloc(&tr, m, d, &o), RWKV_OK);
    double l;
    for (int i = 0; i < 30; i++) ck_assert_int_eq(rwkv_trainer_step(tr, &l), RWKV_OK);
    char path[512], optim[1200];
    snprintf(path, sizeof path, "%s/ck.safetensors", test_tmpdir());
    ck_assert_int_eq(rwkv_checkpoint_save(tr, path, "bytes"), RWKV_OK);
    rwkv_checkpoint_optim_path(optim, sizeof optim, path);
    ck_assert(strstr(optim, "ck.optim.h5") != NULL);
    rwkv_model *back;
    ck_assert_int_eq(rwkv_model_load(&back, path), RWKV_OK);
    ck_assert_str_eq(back->tokenizer, "bytes");
    for (size_t i = 0; i < m->table.total; i++) ck_assert(back->block[i] == (rwkv_real)(float)m->block[i]);
    rwkv_workspace *ws;
    rwkv_state *s1, *s2;
    ck_assert_int_eq(rwkv_workspace_alloc(&ws, back->cfg, 64), RWKV_OK);
    ck_assert_int_eq(rwkv_state_alloc(&s1, back->cfg), RWKV_OK);
    ck_assert_int_eq(rwkv_state_alloc(&s2, back->cfg), RWKV_OK);
    int V = back->cfg.n_vocab;
    rwkv_real *lp = malloc(48 * (size_t)V * sizeof *lp), *ls = malloc(48 * (size_t)V * sizeof *ls);
    ck_assert_int_eq(rwkv_forward_par(back, s1, d->tokens, 48, lp, RWKV_LOGITS_ALL, NULL, ws), RWKV_OK);
    ck_assert_int_eq(rwkv_forward_seq(back, s2, d->tokens, 48, ls, RWKV_LOGITS_ALL, NULL, ws), RWKV_OK);
    double e = scaled_err_rr(ls, lp, 48 * (size_t)V);
    ck_assert_msg(e <= (RWKV_REAL_BITS == 64 ? 1e-12 : 1e-5), "sequential vs parallel on a trained model: %.3g", e);
    // An unwritable destination is a clear error, and the good checkpoint stays.
    ck_assert_int_eq(rwkv_checkpoint_save(tr, "/nonexistent-dir/x.safetensors", NULL), RWKV_ERR_IO);
    rwkv_model *again;
    ck_assert_int_eq(rwkv_model_load(&again, path), RWKV_OK);
    free(lp), free(ls);
    rwkv_state_free(s1), rwkv_state_free(s2);
    rwkv_workspace_free(ws);
    rwkv_model_free(back), rwkv_model_free(again);
    rwkv_trainer_free(tr);
    rwkv_model_free(m);
    rwkv_data_free(d);
}
END_TEST

typedef struct {
    int calls, evals;
    int64_t eval_steps[8];
} session_seen;

static void session_progress(void *ctx, const rwkv_train_progress *p) {
    session_seen *s = ctx;
    s->calls++;
    ck_assert_int_eq(p->step, p->start + s->calls);
    if (p->evaluated) {
        ck_assert(isfinite(p->val) && p->val == p->last_val && p->saved == p->step);
        if (s->evals < 8) s->eval_steps[s->evals] = p->step;
        s->evals++;
    } else {
        ck_assert(isnan(p->val));
    }
}

static int count_lines(const char *path) {
    FILE *f = fopen(path, "r");
    int n = 0, c;
    while (f && (c = fgetc(f)) != EOF) n += c == '\n';
    if (f) fclose(f);
    return n;
}

// A session evaluates and checkpoints every eval_every steps and at its end (--stop-at),
// logs one row per step, and a resumed trainer's session continues to the run's end.
START_TEST(test_train_session_schedule) {
    rwkv_data *d = pattern_data(2000);
    rwkv_model *m = init_model(TINY_CFG, 3);
    rwkv_trainer_opts o = tiny_opts(10);
    rwkv_trainer *tr;
    ck_assert_int_eq(rwkv_trainer_alloc(&tr, m, d, &o), RWKV_OK);
    char path[512], log_path[600];
    snprintf(path, sizeof path, "%s/session.safetensors", test_tmpdir());
    snprintf(log_path, sizeof log_path, "%s/session-loss.csv", test_tmpdir());
    FILE *log = fopen(log_path, "w");
    session_seen seen = {0};
    rwkv_train_session_opts so = {.stop = 7, .eval_every = 3, .checkpoint = path, .log = log,
                                  .progress = session_progress, .progress_ctx = &seen};
    rwkv_train_progress p;
    ck_assert_int_eq(rwkv_train_session(tr, &so, &p), RWKV_OK);
    ck_assert(p.start == 0 && p.stop == 7 && p.step == 7 && p.steps == 10 && p.saved == 7);
    ck_assert_int_eq(seen.calls, 7);
    ck_assert_int_eq(seen.evals, 3); // steps 3, 6 and the session's end, 7
    ck_assert(seen.eval_steps[0] == 3 && seen.eval_steps[1] == 6 && seen.eval_steps[2] == 7);
    ck_assert_int_eq(tr->opt->step, 7);
    // The rest of the run: steps 8..10 (evaluated at 9 and 10).
    seen = (session_seen){0};
    so.stop = 0;
    ck_assert_int_eq(rwkv_train_session(tr, &so, &p), RWKV_OK);
    ck_assert(p.start == 7 && p.step == 10 && p.saved == 10 && seen.calls == 3 && seen.evals == 2);
    fclose(log);
    ck_assert_int_eq(count_lines(log_path), 10);
    rwkv_model *back;
    ck_assert_int_eq(rwkv_model_load(&back, path), RWKV_OK);
    rwkv_model_free(back);
    // An unwritable checkpoint stops the session after the step it was due at.
    rwkv_trainer_free(tr);
    ck_assert_int_eq(rwkv_trainer_alloc(&tr, m, d, &o), RWKV_OK);
    so = (rwkv_train_session_opts){.eval_every = 2, .checkpoint = "/nonexistent-dir/x.safetensors"};
    ck_assert_int_eq(rwkv_train_session(tr, &so, &p), RWKV_ERR_IO);
    ck_assert(p.step == 2 && p.saved == -1 && p.failed_checkpoint);
    ck_assert_ptr_nonnull(strstr(rwkv_error_message(), "checkpoint at step 2"));
    rwkv_trainer_free(tr);
    rwkv_model_free(m);
    rwkv_data_free(d);
}
END_TEST

// ---------------------------------------------------------------- CLI

static int cli_has(const char *out, const char *what) { return out && strstr(out, what) != NULL; }

START_TEST(test_cli_init) {
    char *out = NULL;
    const char *dir = test_tmpdir();
    ck_assert_int_eq(test_cli(&out, "init --help"), 0);
    ck_assert(cli_has(out, "--layers"));
    free(out);
    ck_assert_int_eq(test_cli(&out, "init --layers 2 --embd 16 --vocab 40 --seed 9 -o %s/i1.safetensors", dir), 0);
    free(out);
    ck_assert_int_eq(test_cli(&out, "init --layers 2 --embd 16 --vocab 40 --seed 9 -o %s/i1.safetensors", dir), 2);
    ck_assert_msg(cli_has(out, "exists"), "%s", out);
    free(out);
    rwkv_model *a, *b = init_model((rwkv_config){.n_layer = 2, .n_embd = 16, .n_ffn = 64, .n_vocab = 40}, 9);
    char p[512];
    snprintf(p, sizeof p, "%s/i1.safetensors", dir);
    ck_assert_int_eq(rwkv_model_load(&a, p), RWKV_OK);
    ck_assert_int_eq(a->cfg.n_ffn, 64);
    for (size_t i = 0; i < a->table.total; i++) ck_assert(a->block[i] == (rwkv_real)(float)b->block[i]);
    ck_assert_int_eq(test_cli(&out, "init --layers 0 --embd 16 -o %s/i2.safetensors", dir), 2);
    free(out);
    ck_assert_int_eq(test_cli(&out, "init --layers 2 --embd 16 -o /nonexistent-dir/i.safetensors"), 1);
    ck_assert_msg(cli_has(out, "/nonexistent-dir/i.safetensors"), "%s", out);
    free(out);
    rwkv_model_free(a), rwkv_model_free(b);
}
END_TEST

START_TEST(test_cli_train) {
    char *out = NULL, data[512];
    const char *dir = test_tmpdir();
    snprintf(data, sizeof data, "%s/pattern.txt", dir);
    FILE *f = fopen(data, "w");
    for (int i = 0; i < 300; i++) fputs("abcdefghij", f);
    fclose(f);
    const char *common = "--layers 1 --embd 16 --ctx 16 --batch 2 --lr 1e-2 --eval-every 5 --threads 1";
    ck_assert_int_eq(test_cli(&out, "train --help"), 0);
    ck_assert(cli_has(out, "--resume"));
    free(out);
    ck_assert_int_eq(test_cli(&out, "train --data %s %s --steps 10 -o %s/t.safetensors --plot", data, common, dir), 0);
    ck_assert_msg(cli_has(out, "step 10/10") && cli_has(out, "val"), "%s", out);
    free(out);
    char p[512];
    snprintf(p, sizeof p, "%s/loss.csv", dir);
    f = fopen(p, "r");
    ck_assert(f != NULL);
    int lines = 0;
    char buf[256];
    while (fgets(buf, sizeof buf, f)) lines++;
    fclose(f);
    ck_assert_int_eq(lines, 11); // header + 10 steps
    ck_assert_int_eq(test_cli(&out, "train --data %s %s --steps 20 -o %s/t.safetensors --resume", data, common, dir), 0);
    ck_assert_msg(cli_has(out, "resuming") && cli_has(out, "step 20/20"), "%s", out);
    free(out);
    ck_assert_int_eq(test_cli(&out, "train --data %s %s --steps 5 --val-frac 0 -o %s/nv.safetensors --force", data, common, dir), 0);
    // no held-out data: the lines say so instead of printing "val nan"
    ck_assert_msg(cli_has(out, "val -- (no held-out data)") && cli_has(out, "val loss -- (no held-out data)") &&
                  !cli_has(out, "nan"), "%s", out);
    free(out);
    ck_assert_int_eq(test_cli(&out, "train --data %s %s --steps 10 -o %s/t.safetensors", data, common, dir), 2);
    ck_assert_msg(cli_has(out, "exists"), "%s", out);
    free(out);
    // The loss log follows the rule for existing outputs: refused without --force (exit 2,
    // naming it, nothing trained), replaced with it, appended to by --resume; - is stdout.
    char lg[600], lg_text[64];
    snprintf(lg, sizeof lg, "%s/keep.csv", dir);
    f = fopen(lg, "w");
    fputs("keep me\n", f);
    fclose(f);
    ck_assert_int_eq(test_cli(&out, "train --data %s %s --steps 2 -o %s/l.safetensors --log %s", data, common, dir, lg), 2);
    ck_assert_msg(cli_has(out, "keep.csv exists") && cli_has(out, "--force"), "%s", out);
    free(out);
    f = fopen(lg, "r");
    ck_assert(fgets(lg_text, sizeof lg_text, f) && !strcmp(lg_text, "keep me\n"));
    fclose(f);
    snprintf(p, sizeof p, "%s/l.safetensors", dir);
    ck_assert_int_eq(access(p, F_OK), -1);
    ck_assert_int_eq(test_cli(&out, "train --data %s %s --steps 2 -o %s/l.safetensors --log %s --force", data, common, dir, lg), 0);
    free(out);
    f = fopen(lg, "r");
    ck_assert(fgets(lg_text, sizeof lg_text, f) && !strncmp(lg_text, "step,loss,val_loss", 18));
    fclose(f);
    ck_assert_int_eq(test_cli(&out, "train --data %s %s --steps 2 -o %s/l.safetensors --log -", data, common, dir), 2);
    ck_assert_msg(cli_has(out, "l.safetensors exists"), "%s", out); // -o still needs --force; - is never refused
    free(out);
    char *so = NULL;
    char line[1400];
    snprintf(line, sizeof line, "$RS train --data %s %s --steps 2 -o %s/l.safetensors --log - --force 2>/dev/null", data,
             common, dir);
    ck_assert_int_eq(test_sh(&so, line), 0);
    ck_assert_msg(!strncmp(so, "step,loss,val_loss", 18) && cli_has(so, "\n2,") && !cli_has(so, "trained"), "%s", so);
    free(so);
    ck_assert_int_eq(test_cli(&out, "train --data %s %s --steps 2 -o %s/l.safetensors --log - --plot --force", data,
                              common, dir), 2);
    ck_assert_msg(cli_has(out, "--plot reads the loss log back"), "%s", out);
    free(out);
    ck_assert_int_eq(test_cli(&out, "train --data %s %s --steps 10 --ctx 5000 -o %s/u.safetensors --force", data, common, dir), 1);
    ck_assert_msg(cli_has(out, "ctx 5000 is longer"), "%s", out);
    free(out);
    ck_assert_int_eq(test_cli(&out, "train --data %s/none.txt %s --steps 10 -o %s/u.safetensors --force", dir, common, dir), 1);
    ck_assert_msg(cli_has(out, "none.txt"), "%s", out);
    free(out);
    ck_assert_int_eq(test_cli(&out, "train --data %s %s --steps 10 --batch 0 -o %s/u.safetensors --force", data, common, dir), 2);
    free(out);
    ck_assert_int_eq(test_cli(&out, "train --data %s %s --steps 30 --lr 1e30 --clip 0 -o %s/n.safetensors --force", data, common, dir), 1);
    ck_assert_msg(cli_has(out, "not finite") && cli_has(out, "step "), "%s", out);
    free(out);
    // Through the CLI: 12 steps straight == --stop-at 6, then --resume, byte for byte.
    char da[600], db[600];
    snprintf(da, sizeof da, "%s/straight", dir);
    snprintf(db, sizeof db, "%s/resumed", dir);
    mkdir(da, 0755), mkdir(db, 0755);
    const char *run = "--layers 1 --embd 16 --ctx 16 --batch 2 --lr 1e-2 --eval-every 3 --steps 12";
    ck_assert_int_eq(test_cli(NULL, "train --data %s %s -o %s/m.safetensors", data, run, da), 0);
    ck_assert_int_eq(test_cli(&out, "train --data %s %s --stop-at 6 -o %s/m.safetensors", data, run, db), 0);
    ck_assert_msg(cli_has(out, "stopped at step 6 of 12"), "%s", out);
    free(out);
    ck_assert_int_eq(test_cli(NULL, "train --data %s %s --resume -o %s/m.safetensors", data, run, db), 0);
    const char *files[] = {"m.safetensors", "m.optim.h5"};
    for (int k = 0; k < 2; k++) {
        char pa[700], pb[700];
        snprintf(pa, sizeof pa, "%s/%s", da, files[k]);
        snprintf(pb, sizeof pb, "%s/%s", db, files[k]);
        if (k == 0) {
            ck_assert_msg(test_same_bytes(pa, pb), "%s differs after --stop-at/--resume", files[k]);
            continue;
        }
        int nd;
        uint64_t da_dims[4], db_dims[4];
        const char *dsets[] = {"/params", "/m", "/v"};
        for (int j = 0; j < 3; j++) {
            double *xa = test_h5_read(pa, dsets[j], &nd, da_dims), *xb = test_h5_read(pb, dsets[j], &nd, db_dims);
            ck_assert(xa && xb && da_dims[0] == db_dims[0]);
            ck_assert_msg(memcmp(xa, xb, da_dims[0] * sizeof(double)) == 0, "%s %s differs", files[k], dsets[j]);
            free(xa), free(xb);
        }
    }
    // --task (tests/test_train_task.c): a passkey example cannot fit this small ctx.
    ck_assert_int_eq(test_cli(&out, "train --task passkey %s --steps 10 -o %s/u.safetensors --force", common, dir), 1);
    ck_assert_msg(cli_has(out, "shorter than the needle"), "%s", out);
    free(out);
}
END_TEST

static Suite *suite(void) {
    Suite *s = suite_create("train");
    TCase *g = tcase_create("gradients");
    tcase_set_timeout(g, 60);
    tcase_add_test(g, test_grad_golden);
    tcase_add_test(g, test_forward_matches_inference);
    tcase_add_test(g, test_grad_parallel_equals_rows);
    tcase_add_test(g, test_wkv_fd_random);
    tcase_add_test(g, test_wkv_golden_extreme);
    suite_add_tcase(s, g);
    TCase *i = tcase_create("init_optim");
    tcase_add_test(i, test_init_golden);
    tcase_add_test(i, test_init_properties);
    tcase_add_test(i, test_adamw_schedule_and_step);
    suite_add_tcase(s, i);
    TCase *r = tcase_create("runs");
    tcase_set_timeout(r, 120);
    tcase_add_test(r, test_train_pattern);
    tcase_add_test(r, test_resume_bitwise);
    tcase_add_test(r, test_nan_detection);
    tcase_add_test(r, test_bad_hyperparameters);
    tcase_add_test(r, test_loss_mask);
    tcase_add_test(r, test_checkpoint_roundtrip);
    tcase_add_test(r, test_train_session_schedule);
    tcase_add_test(r, test_cli_init);
    tcase_add_test(r, test_cli_train);
    suite_add_tcase(s, r);
    return s;
}

int main(int argc, char **argv) {
    rwkv_blas_ensure_coretype(argc, argv); // fast OpenBLAS kernels, as the CLI gets
    SRunner *r = srunner_create(suite());
    srunner_run_all(r, CK_NORMAL);
    int failed = srunner_ntests_failed(r);
    srunner_free(r);
    return failed ? 1 : 0;
}
