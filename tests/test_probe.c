// test_probe.c: the probe library against math derived independently of it.
//  - ridge vs a direct normal-equations (Cholesky) solve;
//  - logistic regression at known optima (saturated non-separable, symmetric separable);
//  - planted linear signal found, control task and random features at chance;
//  - folds never share a sequence; label functions and label files against the dump rows;
//  - every bad input (misaligned labels, single class, tiny folds, NaN) is a clear error;
//  - last: token@0 / token@-1 on the tiny trained model (needs the .bin reader on main).
#include <check.h>
#include <gsl/gsl_linalg.h>
#include <gsl/gsl_randist.h>
#include <gsl/gsl_rng.h>
#include <hdf5.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/compute/forward.h"
#include "analyses/plot.h"
#include "core/model/model.h"
#include "probes/dumpview.h"
#include "probes/labels.h"
#include "probes/logreg.h"
#include "probes/probe.h"
#include "probes/ridge.h"
#include "probes/sweep.h"
#include "tests/util.h"

// ---------------------------------------------------------------- a minimal dump writer
// Writes the schema of issue 3 (docs/dump-format.md) with the HDF5 C API, independently of
// the dump module: offsets are row offsets, token_offsets index /tokens.
typedef struct {
    int n_seq;
    const int64_t *row_off, *tok_off; // (S+1)
    int64_t n_rows, n_tokens;
    const int64_t *positions;         // (N)
    const int32_t *tokens;            // (T)
    int legacy;                       // 1: offsets are token offsets, no row offsets (no writer
                                      // ever wrote that: the reader refuses it)
} dump_spec;

static void h5_write(hid_t f, const char *name, hid_t type, int nd, const hsize_t *dims, const void *data) {
    hid_t lcpl = H5Pcreate(H5P_LINK_CREATE);
    H5Pset_create_intermediate_group(lcpl, 1);
    hid_t sp = H5Screate_simple(nd, dims, NULL);
    hid_t file_type = type == H5T_NATIVE_DOUBLE ? H5T_IEEE_F32LE : type; // features stored as float32
    hid_t d = H5Dcreate2(f, name, file_type, sp, lcpl, H5P_DEFAULT, H5P_DEFAULT);
    ck_assert_int_ge(d, 0);
    ck_assert_int_ge(H5Dwrite(d, type, H5S_ALL, H5S_ALL, H5P_DEFAULT, data), 0);
    H5Dclose(d); H5Sclose(sp); H5Pclose(lcpl);
}

static void write_dump(const char *path, const dump_spec *s) {
    hid_t f = H5Fcreate(path, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    ck_assert_int_ge(f, 0);
    test_dump_attrs(f, 2, 4, 4, 64, 2, 1);
    hsize_t ns = (hsize_t)s->n_seq + 1, nr = (hsize_t)s->n_rows, nt = (hsize_t)s->n_tokens;
    if (s->legacy) {
        h5_write(f, "/sequences/offsets", H5T_NATIVE_INT64, 1, &ns, s->tok_off);
    } else {
        h5_write(f, "/sequences/offsets", H5T_NATIVE_INT64, 1, &ns, s->row_off);
        h5_write(f, "/sequences/token_offsets", H5T_NATIVE_INT64, 1, &ns, s->tok_off);
    }
    h5_write(f, "/sequences/positions", H5T_NATIVE_INT64, 1, &nr, s->positions);
    h5_write(f, "/tokens", H5T_NATIVE_INT32, 1, &nt, s->tokens);
    H5Fclose(f);
}

// Adds /blocks/<l>/<tap> from X (N, D) in double (stored as float32).
static void write_tap(const char *path, int l, const char *tap, const double *X, int64_t N, int D) {
    hid_t f = H5Fopen(path, H5F_ACC_RDWR, H5P_DEFAULT);
    ck_assert_int_ge(f, 0);
    char name[128];
    snprintf(name, sizeof name, "/blocks/%d/%s", l, tap);
    hsize_t dims[2] = {(hsize_t)N, (hsize_t)D};
    h5_write(f, name, H5T_NATIVE_DOUBLE, 2, dims, X);
    H5Fclose(f);
}

static void write_text(const char *path, const char *text);

static char *tmp_path(const char *name) {
    static char buf[4][512];
    static int k;
    k = (k + 1) % 4;
    snprintf(buf[k], sizeof buf[k], "%s/%s", test_tmpdir(), name);
    return buf[k];
}

// A small dump: 3 sequences of 5, 7 and 4 tokens, every position, one tap per layer.
#define SMALL_S 3
static const int64_t small_tok_off[SMALL_S + 1] = {0, 5, 12, 16};
static const int32_t small_tokens[16] = {10, 11, 10, 12, 13, 20, 10, 21, 22, 10, 23, 24, 30, 31, 32, 30};
static int64_t small_pos[16];

static const char *make_small_dump(const char *name, int legacy) {
    for (int s = 0; s < SMALL_S; s++)
        for (int64_t p = 0; p < small_tok_off[s + 1] - small_tok_off[s]; p++) small_pos[small_tok_off[s] + p] = p;
    dump_spec spec = {SMALL_S, small_tok_off, small_tok_off, 16, 16, small_pos, small_tokens, legacy};
    const char *path = tmp_path(name);
    write_dump(path, &spec);
    double num[16 * 2], den[16 * 2], att[16 * 3];
    for (int r = 0; r < 16; r++) {
        num[2 * r] = r, num[2 * r + 1] = -r;
        den[2 * r] = 2, den[2 * r + 1] = 4;
        for (int j = 0; j < 3; j++) att[3 * r + j] = 100 * r + j;
    }
    for (int l = 0; l < 2; l++) {
        write_tap(path, l, "state_num", num, 16, 2);
        write_tap(path, l, "state_den", den, 16, 2);
        write_tap(path, l, "state_att_xprev", att, 16, 3);
    }
    return path;
}

// ---------------------------------------------------------------- ridge

// w = (X^T X + lambda I)^{-1} X^T y by Cholesky: a path that shares nothing with the SVD.
static void normal_equations(double *w, const double *X, int n, int p, const double *y, double lambda) {
    gsl_matrix *A = gsl_matrix_calloc(p, p);
    gsl_vector *b = gsl_vector_calloc(p), *x = gsl_vector_alloc(p);
    for (int i = 0; i < n; i++)
        for (int a = 0; a < p; a++) {
            gsl_vector_set(b, a, gsl_vector_get(b, a) + X[i * p + a] * y[i]);
            for (int c = 0; c < p; c++)
                gsl_matrix_set(A, a, c, gsl_matrix_get(A, a, c) + X[i * p + a] * X[i * p + c]);
        }
    for (int a = 0; a < p; a++) gsl_matrix_set(A, a, a, gsl_matrix_get(A, a, a) + lambda);
    ck_assert_int_eq(gsl_linalg_cholesky_decomp1(A), 0);
    gsl_linalg_cholesky_solve(A, b, x);
    for (int a = 0; a < p; a++) w[a] = gsl_vector_get(x, a);
    gsl_matrix_free(A); gsl_vector_free(b); gsl_vector_free(x);
}

// The ridge solver is double throughout in both builds (features are converted before the
// fit), so the same 1e-8 bound holds for PRECISION=32 and PRECISION=64.
#define RIDGE_TOL 1e-8

static void ridge_case(int n, int p, double lambda) {
    gsl_rng *rng = gsl_rng_alloc(gsl_rng_mt19937);
    gsl_rng_set(rng, 7);
    double *X = malloc(sizeof(double) * n * p), *y = malloc(sizeof(double) * n);
    double *w = malloc(sizeof(double) * p), *w_ref = malloc(sizeof(double) * p);
    for (int i = 0; i < n * p; i++) X[i] = gsl_ran_gaussian(rng, 1.0);
    for (int i = 0; i < n; i++) y[i] = X[i * p] - 2 * X[i * p + p - 1] + gsl_ran_gaussian(rng, 0.1);
    ck_assert_int_eq(rwkv_ridge_fit(w, X, n, p, y, lambda), RWKV_OK);
    normal_equations(w_ref, X, n, p, y, lambda);
    double err = 0;
    for (int a = 0; a < p; a++) err = fmax(err, fabs(w[a] - w_ref[a]));
    ck_assert_msg(err <= RIDGE_TOL, "ridge %dx%d lambda %g: max |w - w_ref| = %g", n, p, lambda, err);
    free(X); free(y); free(w); free(w_ref);
    gsl_rng_free(rng);
}

START_TEST(ridge_matches_normal_equations) {
    ridge_case(60, 6, 0.7);  // tall: SVD of X
    ridge_case(60, 6, 0.0);  // plain least squares, well conditioned
    ridge_case(5, 12, 2.0);  // wide: SVD of X^T
}
END_TEST

// A column twice and lambda = 0: X^T X is singular and the minimum-norm solution of
// y = 2 x splits the weight evenly, w = (1, 1); a kept ~1e-16 singular value would not.
START_TEST(ridge_rank_deficient_min_norm) {
    enum { N = 40 };
    double X[N * 2], y[N], w[2];
    for (int i = 0; i < N; i++) X[2 * i] = X[2 * i + 1] = sin(1.0 + i), y[i] = 2 * X[2 * i];
    ck_assert_int_eq(rwkv_ridge_fit(w, X, N, 2, y, 0.0), RWKV_OK);
    ck_assert_msg(fabs(w[0] - 1) <= RIDGE_TOL && fabs(w[1] - 1) <= RIDGE_TOL, "w = (%g, %g), want (1, 1)", w[0], w[1]);
}
END_TEST

// ---------------------------------------------------------------- logistic

// Saturated model: one-hot feature with 3 levels, 3 classes, no penalty. The maximum-likelihood
// probabilities are the empirical class frequencies per level. Stopping at max|grad| <= 1e-10
// puts the probabilities within ~1e-9 of the optimum (the Hessian's smallest relevant
// eigenvalue is ~ p(1-p) * level share >= 0.02); 1e-6 is a margin that still catches a
// wrong gradient or a stalled optimiser (their errors are >= 1e-3).
#define LOGREG_FREQ_TOL 1e-6
START_TEST(logistic_nonseparable_optimum) {
    static const int counts[3][3] = {{30, 10, 5}, {4, 20, 16}, {9, 9, 27}}; // [level][class]
    int n = 0;
    for (int a = 0; a < 3; a++) for (int c = 0; c < 3; c++) n += counts[a][c];
    double *X = calloc((size_t)n * 3, sizeof(double));
    int *y = malloc(sizeof(int) * n), i = 0;
    for (int a = 0; a < 3; a++)
        for (int c = 0; c < 3; c++)
            for (int k = 0; k < counts[a][c]; k++, i++) X[i * 3 + a] = 1, y[i] = c;
    rwkv_logreg *m = NULL;
    ck_assert_int_eq(rwkv_logreg_alloc(&m, 3, 3, n), RWKV_OK);
    rwkv_logreg_opts o = {0.0, 2000, 1e-10, 0.0, 0};
    ck_assert_int_eq(rwkv_logreg_fit(m, X, y, n, &o), RWKV_OK);
    double P[3 * 3], e[3] = {0};
    for (int a = 0; a < 3; a++) {
        double x[3] = {0};
        x[a] = 1;
        rwkv_logreg_predict(m, x, 1, NULL, P + 3 * a);
        int tot = counts[a][0] + counts[a][1] + counts[a][2];
        for (int c = 0; c < 3; c++) e[a] = fmax(e[a], fabs(P[3 * a + c] - (double)counts[a][c] / tot));
        ck_assert_msg(e[a] <= LOGREG_FREQ_TOL, "level %d: |P - freq| = %g (iters %d, gmax %g)", a, e[a], m->iters, m->gmax);
    }
    rwkv_logreg_free(m); free(X); free(y);
}
END_TEST

// Separable: x = +-1 with class (x > 0), n/2 each, L2 lambda. By symmetry b0 = b1 and
// W = (-w/2, w/2), so the loss is log(1 + e^{-w}) + (lambda/4) w^2, minimised where
// lambda w / 2 = 1 / (1 + e^w). The root is found by bisection here.
#define LOGREG_W_TOL 1e-6 // gtol 1e-11 over a curvature of about lambda/2 = 0.025
START_TEST(logistic_separable_optimum) {
    const double lambda = 0.05;
    const int n = 40;
    double X[40];
    int y[40];
    for (int i = 0; i < n; i++) X[i] = i % 2 ? 1.0 : -1.0, y[i] = i % 2;
    double lo = 0, hi = 100;
    for (int it = 0; it < 200; it++) {
        double mid = 0.5 * (lo + hi);
        if (lambda * mid / 2 - 1 / (1 + exp(mid)) < 0) lo = mid; else hi = mid;
    }
    double w_star = 0.5 * (lo + hi);
    rwkv_logreg *m = NULL;
    ck_assert_int_eq(rwkv_logreg_alloc(&m, 1, 2, n), RWKV_OK);
    rwkv_logreg_opts o = {lambda, 2000, 1e-11, 0.0, 0};
    ck_assert_int_eq(rwkv_logreg_fit(m, X, y, n, &o), RWKV_OK);
    double w = m->W[1] - m->W[0];
    ck_assert_msg(fabs(w - w_star) <= LOGREG_W_TOL, "w = %.10f, optimum %.10f", w, w_star);
    ck_assert_msg(fabs(m->W[1] + m->W[0]) <= LOGREG_W_TOL, "W not antisymmetric: %g %g", m->W[0], m->W[1]);
    ck_assert_msg(fabs(m->b[1] - m->b[0]) <= LOGREG_W_TOL, "biases differ: %g %g", m->b[0], m->b[1]);
    // The float32-product mode the probes use: float gradients are good to ~1e-6 relative,
    // so ask for max|grad| <= 1e-5 and accept w within 1e-3 (gtol / curvature ~ 4e-4).
    memset(m->theta, 0, sizeof(double) * m->dim);
    rwkv_logreg_opts of = {lambda, 2000, 1e-5, 0.0, 1};
    ck_assert_int_eq(rwkv_logreg_fit(m, X, y, n, &of), RWKV_OK);
    w = m->W[1] - m->W[0];
    ck_assert_msg(fabs(w - w_star) <= 1e-3, "float mode: w = %.10f, optimum %.10f", w, w_star);
    rwkv_logreg_free(m);
}
END_TEST

// The stopping rules: --ftol ends a fit by tolerance (converged, before the cap, near the
// optimum of a tight fit), and a fit stopped by max_iter says it did not converge.
START_TEST(logistic_stopping_rules) {
    enum { N = 300, P = 5, K = 3 };
    gsl_rng *rng = gsl_rng_alloc(gsl_rng_mt19937);
    gsl_rng_set(rng, 11);
    double *X = malloc(sizeof(double) * N * P);
    int *y = malloc(sizeof(int) * N);
    for (int i = 0; i < N; i++) { // labels drawn from a softmax of a linear map: not separable
        double z[K] = {0}, sum = 0;
        for (int a = 0; a < P; a++) X[i * P + a] = gsl_ran_gaussian(rng, 1.0);
        for (int k = 0; k < K; k++) z[k] = exp(X[i * P + k] - 0.5 * X[i * P + 4]), sum += z[k];
        double u = gsl_rng_uniform(rng) * sum;
        y[i] = 0;
        for (int k = 0; k < K - 1 && u > z[k]; k++) u -= z[k], y[i] = k + 1;
    }
    rwkv_logreg *m = NULL;
    ck_assert_int_eq(rwkv_logreg_alloc(&m, P, K, N), RWKV_OK);
    rwkv_logreg_opts tight = {0.01, 5000, 1e-8, 0.0, 0};
    ck_assert_int_eq(rwkv_logreg_fit(m, X, y, N, &tight), RWKV_OK);
    ck_assert_msg(m->converged && m->gmax <= 1e-8, "tight fit: converged %d, gmax %g", m->converged, m->gmax);
    double f_opt = m->loss;
    memset(m->theta, 0, sizeof(double) * m->dim);
    rwkv_logreg_opts by_ftol = {0.01, 5000, 0.0, 1e-7, 0};
    ck_assert_int_eq(rwkv_logreg_fit(m, X, y, N, &by_ftol), RWKV_OK);
    ck_assert_msg(m->converged && m->iters > 2 && m->iters < 5000, "ftol fit: converged %d after %d iterations",
                  m->converged, m->iters);
    ck_assert_msg(m->loss - f_opt <= 1e-6, "ftol fit stopped at loss %.10g, optimum %.10g", m->loss, f_opt);
    memset(m->theta, 0, sizeof(double) * m->dim);
    rwkv_logreg_opts capped = {0.01, 3, 0.0, 0.0, 0};
    ck_assert_int_eq(rwkv_logreg_fit(m, X, y, N, &capped), RWKV_OK);
    ck_assert_msg(!m->converged && m->iters == 3, "capped fit: converged %d after %d iterations", m->converged, m->iters);
    ck_assert_msg(m->loss > f_opt + 1e-6, "3 iterations cannot reach the optimum (%.10g vs %.10g)", m->loss, f_opt);
    rwkv_logreg_free(m); free(X); free(y);
    gsl_rng_free(rng);
}
END_TEST

// The analytic gradient equals central differences of the loss.
START_TEST(logistic_gradient) {
    gsl_rng *rng = gsl_rng_alloc(gsl_rng_mt19937);
    const int n = 30, p = 4, K = 3;
    double X[30 * 4], th[15], g[15], g2[15];
    int y[30];
    for (int i = 0; i < n * p; i++) X[i] = gsl_ran_gaussian(rng, 1.0);
    for (int i = 0; i < n; i++) y[i] = (int)gsl_rng_uniform_int(rng, K);
    for (int j = 0; j < 15; j++) th[j] = gsl_ran_gaussian(rng, 0.5);
    rwkv_logreg *m = NULL;
    ck_assert_int_eq(rwkv_logreg_alloc(&m, p, K, n), RWKV_OK);
    rwkv_logreg_loss(m, th, g, X, y, n, 0.3);
    for (int j = 0; j < 15; j++) {
        double h = 1e-6, save = th[j];
        th[j] = save + h;
        double fp = rwkv_logreg_loss(m, th, g2, X, y, n, 0.3);
        th[j] = save - h;
        double fm = rwkv_logreg_loss(m, th, g2, X, y, n, 0.3);
        th[j] = save;
        ck_assert_msg(fabs((fp - fm) / (2 * h) - g[j]) < 1e-7, "grad[%d]: %g vs %g", j, (fp - fm) / (2 * h), g[j]);
    }
    rwkv_logreg_free(m);
    gsl_rng_free(rng);
}
END_TEST

// ---------------------------------------------------------------- probes on synthetic data

typedef struct {
    int64_t N;
    int D, G, K;
    rwkv_real *X;
    double *y;
    int *group, *types;
} synth;

// G sequences of `per` rows; Gaussian features; if planted, y = argmax(X A) over K classes,
// else y uniform. types: a random token type per row in [0, 50).
static synth make_synth(int G, int per, int D, int K, int planted, uint64_t seed) {
    synth s = {(int64_t)G * per, D, G, K, NULL, NULL, NULL, NULL};
    gsl_rng *rng = gsl_rng_alloc(gsl_rng_mt19937);
    gsl_rng_set(rng, seed);
    s.X = malloc(sizeof(rwkv_real) * s.N * D);
    s.y = malloc(sizeof(double) * s.N);
    s.group = malloc(sizeof(int) * s.N);
    s.types = malloc(sizeof(int) * s.N);
    double *A = malloc(sizeof(double) * D * K);
    for (int i = 0; i < D * K; i++) A[i] = gsl_ran_gaussian(rng, 1.0);
    for (int64_t r = 0; r < s.N; r++) {
        for (int j = 0; j < D; j++) s.X[r * D + j] = (rwkv_real)gsl_ran_gaussian(rng, 1.0);
        int best = 0;
        double bv = -1e300;
        for (int k = 0; k < K; k++) {
            double z = 0;
            for (int j = 0; j < D; j++) z += s.X[r * D + j] * A[j * K + k];
            if (z > bv) bv = z, best = k;
        }
        s.y[r] = planted ? best : (double)gsl_rng_uniform_int(rng, K);
        s.group[r] = (int)(r / per);
        s.types[r] = (int)gsl_rng_uniform_int(rng, 50);
    }
    free(A);
    gsl_rng_free(rng);
    return s;
}

static void synth_free(synth *s) { free(s->X); free(s->y); free(s->group); free(s->types); }

static rwkv_probe_data synth_data(const synth *s, const double *y) {
    return (rwkv_probe_data){s->X, s->N, s->D, y, NULL, s->group, s->G, "synthetic"};
}

START_TEST(planted_signal_and_control) {
    synth s = make_synth(40, 50, 16, 4, 1, 11);
    rwkv_probe_opts o;
    rwkv_probe_opts_default(&o);
    o.n_boot = 200;
    rwkv_probe_data d = synth_data(&s, s.y);
    rwkv_probe_result res, ctrl;
    ck_assert_int_eq(rwkv_probe_run(&res, &d, &o), RWKV_OK);
    ck_assert_msg(res.score.value >= 0.9, "planted signal: accuracy %g", res.score.value);
    ck_assert(res.score.lo <= res.score.value && res.score.value <= res.score.hi);
    ck_assert(res.f1.value > 0.85);
    double *yc = malloc(sizeof(double) * s.N);
    ck_assert_int_eq(rwkv_probe_control(yc, &d, s.types, 3), RWKV_OK);
    // Control labels are a function of the type alone.
    for (int64_t a = 0; a < s.N; a++)
        for (int64_t b = a + 1; b < s.N && b < a + 200; b++)
            if (s.types[a] == s.types[b]) ck_assert(yc[a] == yc[b]);
    rwkv_probe_data dc = synth_data(&s, yc);
    ck_assert_int_eq(rwkv_probe_run(&ctrl, &dc, &o), RWKV_OK);
    // Features carry no information about the type: the control sits at its majority rate.
    // Binomial SE at n = 2000 is ~0.011; 0.06 is over 5 SE.
    ck_assert_msg(ctrl.score.value <= ctrl.chance + 0.06, "control %g vs chance %g", ctrl.score.value, ctrl.chance);
    ck_assert(res.score.value - ctrl.score.value > 0.5);
    // Scale-free: the same features times 1e-13 (layers 1-3 of the tiny model live at 1e-12).
    for (int64_t i = 0; i < s.N * s.D; i++) s.X[i] *= (rwkv_real)1e-13;
    rwkv_probe_result tiny;
    ck_assert_int_eq(rwkv_probe_run(&tiny, &d, &o), RWKV_OK);
    ck_assert_msg(fabs(tiny.score.value - res.score.value) < 0.01, "scaled features: %g vs %g", tiny.score.value, res.score.value);
    free(yc);
    synth_free(&s);
}
END_TEST

// A rare positive class over few token types: a control draw with one class is redrawn.
START_TEST(control_keeps_two_classes) {
    synth s = make_synth(10, 20, 4, 2, 0, 17);
    for (int64_t r = 0; r < s.N; r++) s.y[r] = r % 40 == 0, s.types[r] = (int)(r % 5);
    rwkv_probe_data d = synth_data(&s, s.y);
    double *yc = malloc(sizeof(double) * s.N);
    for (uint64_t seed = 1; seed <= 20; seed++) {
        ck_assert_int_eq(rwkv_probe_control(yc, &d, s.types, seed), RWKV_OK);
        int ones = 0;
        for (int64_t r = 0; r < s.N; r++) ones += yc[r] == 1;
        ck_assert_msg(ones > 0 && ones < s.N, "seed %d: control labels have one class", (int)seed);
    }
    free(yc);
    synth_free(&s);
}
END_TEST

START_TEST(random_features_at_chance) {
    synth s = make_synth(40, 60, 32, 5, 0, 12);
    rwkv_probe_opts o;
    rwkv_probe_opts_default(&o);
    o.n_boot = 200;
    rwkv_probe_data d = synth_data(&s, s.y);
    rwkv_probe_result res;
    ck_assert_int_eq(rwkv_probe_run(&res, &d, &o), RWKV_OK);
    // 2400 rows, chance 0.2 (uniform labels), SE ~0.008: 0.05 is 6 SE.
    ck_assert_msg(fabs(res.score.value - 0.2) <= 0.05, "random features: accuracy %g", res.score.value);
    ck_assert(res.score.lo <= 0.25);
    synth_free(&s);
}
END_TEST

START_TEST(ridge_probe_planted) {
    synth s = make_synth(30, 40, 10, 2, 0, 13);
    double *y = malloc(sizeof(double) * s.N);
    for (int64_t r = 0; r < s.N; r++) y[r] = 3.0 * s.X[r * s.D + 2] - s.X[r * s.D + 7] + 5.0 + 0.1 * s.y[r];
    rwkv_probe_opts o;
    rwkv_probe_opts_default(&o);
    o.kind = RWKV_PROBE_RIDGE;
    o.n_boot = 200;
    rwkv_probe_data d = synth_data(&s, y);
    rwkv_probe_result res;
    ck_assert_int_eq(rwkv_probe_run(&res, &d, &o), RWKV_OK);
    // Noise variance 0.0025 over a signal variance of 10: R^2 ~ 0.9997.
    ck_assert_msg(res.score.value > 0.99, "ridge R^2 %g", res.score.value);
    // Random target: R^2 at or below 0 out of sample.
    for (int64_t r = 0; r < s.N; r++) y[r] = s.y[r] + 0.5 * s.types[r] / 50.0;
    ck_assert_int_eq(rwkv_probe_run(&res, &d, &o), RWKV_OK);
    ck_assert_msg(res.score.value < 0.03, "ridge on noise R^2 %g", res.score.value);
    free(y);
    synth_free(&s);
}
END_TEST

START_TEST(folds_never_share_a_sequence) {
    // Sequences of uneven length, some rows without labels.
    const int G = 23;
    int64_t N = 0;
    int *group = malloc(sizeof(int) * 2000);
    unsigned char *valid = malloc(2000);
    for (int s = 0; s < G; s++)
        for (int k = 0; k < 10 + 7 * (s % 5); k++, N++) group[N] = s, valid[N] = (N % 7) != 0;
    rwkv_real *X = calloc((size_t)N, sizeof(rwkv_real));
    double *y = calloc((size_t)N, sizeof(double));
    rwkv_probe_data d = {X, N, 1, y, valid, group, G, "folds"};
    int fold[23];
    const int k = 5;
    ck_assert_int_eq(rwkv_probe_folds(fold, &d, k, 42), RWKV_OK);
    int64_t *tr = malloc(sizeof(int64_t) * N), *te = malloc(sizeof(int64_t) * N), ntr, nte;
    int *times_tested = calloc((size_t)N, sizeof(int));
    for (int f = 0; f < k; f++) {
        rwkv_probe_split(tr, &ntr, te, &nte, &d, fold, f);
        char in_test[23] = {0};
        for (int64_t i = 0; i < nte; i++) in_test[group[te[i]]] = 1, times_tested[te[i]]++;
        for (int64_t i = 0; i < ntr; i++) ck_assert_msg(!in_test[group[tr[i]]], "sequence %d in train and test of fold %d", group[tr[i]], f);
        ck_assert_int_eq(ntr + nte, N - N / 7 - 1);
        ck_assert(nte > 0);
    }
    for (int64_t r = 0; r < N; r++) ck_assert_int_eq(times_tested[r], valid[r] ? 1 : 0);
    // Too few sequences for the folds.
    d.n_groups = G;
    for (int64_t r = 0; r < N; r++) group[r] = r % 3;
    ck_assert_int_eq(rwkv_probe_folds(fold, &d, 5, 1), RWKV_ERR_ARG);
    ck_assert_ptr_nonnull(strstr(rwkv_error_message(), "3 sequences"));
    free(group); free(valid); free(X); free(y); free(tr); free(te); free(times_tested);
}
END_TEST

// ---------------------------------------------------------------- errors of the probe

START_TEST(error_single_class) {
    synth s = make_synth(10, 20, 4, 2, 0, 14);
    for (int64_t r = 0; r < s.N; r++) s.y[r] = 7;
    rwkv_probe_opts o;
    rwkv_probe_opts_default(&o);
    rwkv_probe_data d = synth_data(&s, s.y);
    rwkv_probe_result res;
    ck_assert_int_eq(rwkv_probe_run(&res, &d, &o), RWKV_ERR_ARG);
    ck_assert_ptr_nonnull(strstr(rwkv_error_message(), "single class"));
    o.kind = RWKV_PROBE_RIDGE;
    ck_assert_int_eq(rwkv_probe_run(&res, &d, &o), RWKV_ERR_ARG);
    ck_assert_ptr_nonnull(strstr(rwkv_error_message(), "same value"));
    synth_free(&s);
}
END_TEST

START_TEST(error_too_few_per_fold) {
    synth s = make_synth(6, 3, 4, 2, 0, 15); // 18 rows in 6 sequences, 5 folds: ~3 test rows each
    rwkv_probe_opts o;
    rwkv_probe_opts_default(&o);
    rwkv_probe_data d = synth_data(&s, s.y);
    rwkv_probe_result res;
    ck_assert_int_eq(rwkv_probe_run(&res, &d, &o), RWKV_ERR_ARG);
    ck_assert_ptr_nonnull(strstr(rwkv_error_message(), "too few samples per fold"));
    synth_free(&s);
}
END_TEST

START_TEST(error_nan_features) {
    synth s = make_synth(10, 20, 4, 2, 0, 16);
    s.X[37 * 4 + 2] = NAN;
    rwkv_probe_opts o;
    rwkv_probe_opts_default(&o);
    rwkv_probe_data d = synth_data(&s, s.y);
    rwkv_probe_result res;
    ck_assert_int_eq(rwkv_probe_run(&res, &d, &o), RWKV_ERR_NUMERIC);
    ck_assert_ptr_nonnull(strstr(rwkv_error_message(), "NaN at row 37, column 2"));
    synth_free(&s);
}
END_TEST

// ---------------------------------------------------------------- dumps and labels

START_TEST(dump_rows_and_labels) {
    rwkv_dumpview *v = NULL;
    ck_assert_int_eq(rwkv_dumpview_open(&v, make_small_dump("small-legacy.h5", 1)), RWKV_ERR_FORMAT);
    ck_assert_ptr_nonnull(strstr(rwkv_error_message(), "/sequences/token_offsets is missing"));
    {
        const char *path = make_small_dump("small.h5", 0);
        ck_assert_int_eq(rwkv_dumpview_open(&v, path), RWKV_OK);
        ck_assert_int_eq(v->n_layer, 2);
        ck_assert_int_eq(v->n_rows, 16);
        ck_assert_int_eq(v->n_seq, 3);
        for (int r = 0; r < 16; r++) ck_assert_int_eq(v->row_seq[r], r < 5 ? 0 : r < 12 ? 1 : 2);
        rwkv_labels *l = NULL;
        ck_assert_int_eq(rwkv_labels_builtin(&l, v, "token@-2", NULL), RWKV_OK);
        ck_assert_int_eq(l->n_valid, 16 - 3 * 2);
        ck_assert(!l->valid[0] && !l->valid[1] && l->valid[2] && l->value[2] == 10);
        ck_assert(!l->valid[5] && !l->valid[6] && l->value[7] == 20 && l->value[10] == 22 && l->value[11] == 10);
        ck_assert(!l->valid[13] && l->value[14] == 30 && l->value[15] == 31);
        rwkv_labels_free(l);
        ck_assert_int_eq(rwkv_labels_builtin(&l, v, "token@0", NULL), RWKV_OK);
        for (int r = 0; r < 16; r++) ck_assert(l->valid[r] && l->value[r] == small_tokens[r]);
        rwkv_labels_free(l);
        // seen(10): sequence 0 from position 0, sequence 1 from position 1, never in 2.
        static const double seen10[16] = {1, 1, 1, 1, 1, 0, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0};
        static const double count10[16] = {1, 1, 2, 2, 2, 0, 1, 1, 1, 2, 2, 2, 0, 0, 0, 0};
        ck_assert_int_eq(rwkv_labels_builtin(&l, v, "seen(10)", NULL), RWKV_OK);
        for (int r = 0; r < 16; r++) ck_assert(l->value[r] == seen10[r]);
        ck_assert_int_eq(l->kind, RWKV_LABEL_CLASS);
        rwkv_labels_free(l);
        ck_assert_int_eq(rwkv_labels_builtin(&l, v, "count(10)", NULL), RWKV_OK);
        for (int r = 0; r < 16; r++) ck_assert(l->value[r] == count10[r]);
        rwkv_labels_free(l);
        ck_assert_int_eq(rwkv_labels_builtin(&l, v, "position", NULL), RWKV_OK);
        ck_assert(l->value[4] == 4 && l->value[5] == 0 && l->value[15] == 3);
        rwkv_labels_free(l);
        // The control types: the probed token (token@-2: two back), the sequence's first token
        // for seen/count, the row's own token otherwise. Written out by hand from the tokens.
        static const int ctrl_lag2[16] = {-1, -1, 10, 11, 10, -1, -1, 20, 10, 21, 22, 10, -1, -1, 30, 31};
        static const int ctrl_first[16] = {10, 10, 10, 10, 10, 20, 20, 20, 20, 20, 20, 20, 30, 30, 30, 30};
        int types[16];
        rwkv_labels_control_types(types, v, "token@-2");
        for (int r = 0; r < 16; r++) ck_assert_int_eq(types[r], ctrl_lag2[r]);
        rwkv_labels_control_types(types, v, "seen(10)");
        for (int r = 0; r < 16; r++) ck_assert_int_eq(types[r], ctrl_first[r]);
        rwkv_labels_control_types(types, v, "count('a')");
        for (int r = 0; r < 16; r++) ck_assert_int_eq(types[r], ctrl_first[r]);
        rwkv_labels_control_types(types, v, "position");
        for (int r = 0; r < 16; r++) ck_assert_int_eq(types[r], small_tokens[r]);
        ck_assert_int_eq(rwkv_labels_builtin(&l, v, "answer", NULL), RWKV_ERR_ARG);
        ck_assert_int_eq(rwkv_labels_builtin(&l, v, "token@3", NULL), RWKV_ERR_ARG);
        ck_assert_int_eq(rwkv_labels_builtin(&l, v, "seen(x)", NULL), RWKV_ERR_ARG);
        ck_assert_int_eq(rwkv_labels_builtin(&l, v, "bogus", NULL), RWKV_ERR_ARG);
        rwkv_dumpview_free(v);
    }
}
END_TEST

// Sparse rows (a position selection): row offsets say each row's sequence.
START_TEST(dump_sparse_rows) {
    static const int64_t pos[7] = {1, 3, 0, 2, 4, 6, 3}, row_off[4] = {0, 2, 6, 7};
    static const int seq[7] = {0, 0, 1, 1, 1, 1, 2};
    static const double count10[7] = {1, 2, 0, 1, 2, 2, 0}, prev[7] = {10, 10, -1, 10, 22, 23, 32};
    {
        dump_spec spec = {SMALL_S, row_off, small_tok_off, 7, 16, pos, small_tokens, 0};
        const char *path = tmp_path("sparse.h5");
        write_dump(path, &spec);
        double x[7] = {0};
        write_tap(path, 0, "state_num", x, 7, 1);
        rwkv_dumpview *v = NULL;
        ck_assert_int_eq(rwkv_dumpview_open(&v, path), RWKV_OK);
        for (int r = 0; r < 7; r++) ck_assert_int_eq(v->row_seq[r], seq[r]);
        rwkv_labels *l = NULL;
        ck_assert_int_eq(rwkv_labels_builtin(&l, v, "count(10)", NULL), RWKV_OK);
        for (int r = 0; r < 7; r++) ck_assert_msg(l->value[r] == count10[r], "row %d: %g", r, l->value[r]);
        rwkv_labels_free(l);
        ck_assert_int_eq(rwkv_labels_builtin(&l, v, "token@-1", NULL), RWKV_OK);
        for (int r = 0; r < 7; r++) ck_assert(prev[r] < 0 ? !l->valid[r] : l->value[r] == prev[r]);
        rwkv_labels_free(l);
        rwkv_dumpview_free(v);
    }
}
END_TEST

// answer labels from a dataset file (docs/dataset-format.md) made for the small dump.
START_TEST(answer_labels) {
    const char *path = make_small_dump("answer.h5", 0);
    rwkv_dumpview *v = NULL;
    ck_assert_int_eq(rwkv_dumpview_open(&v, path), RWKV_OK);
    const char *ds = tmp_path("ds.jsonl");
    const char *header = "{\"format\":\"rwkvscope-dataset\",\"version\":1,\"config\":{},\"seed\":1,\"n\":3}\n";
    char text[2048];
    snprintf(text, sizeof text, "%s%s%s%s", header,
             "{\"i\":0,\"tokens\":[10,11,10,12,13],\"answers\":[[3,2]]}\n",
             "{\"i\":1,\"tokens\":[20,10,21,22,10,23,24],\"answers\":[[1,1],[5,2]]}\n",
             "{\"i\":2,\"tokens\":[30,31,32,30],\"answers\":[]}\n");
    write_text(ds, text);
    rwkv_labels *l = NULL;
    ck_assert_int_eq(rwkv_labels_builtin(&l, v, "answer", ds), RWKV_OK);
    // The state after position p-1 predicts the answer token at p.
    static const double want[16] = {-1, -1, 12, 13, -1, 10, -1, -1, -1, 23, 24, -1, -1, -1, -1, -1};
    for (int r = 0; r < 16; r++) ck_assert_msg(want[r] < 0 ? !l->valid[r] : l->valid[r] && l->value[r] == want[r], "row %d", r);
    ck_assert_int_eq(l->n_valid, 5);
    rwkv_labels_free(l);
    // A dataset that the dump was not made from; too few examples; not a dataset.
    snprintf(text, sizeof text, "%s%s", header, "{\"i\":0,\"tokens\":[10,11,99,12,13],\"answers\":[[3,2]]}\n");
    write_text(ds, text);
    ck_assert_int_eq(rwkv_labels_builtin(&l, v, "answer", ds), RWKV_ERR_SHAPE);
    ck_assert_ptr_nonnull(strstr(rwkv_error_message(), "differs from dump sequence 0 at token 2"));
    snprintf(text, sizeof text, "%s%s", header, "{\"i\":0,\"tokens\":[10,11,10,12,13],\"answers\":[[3,2]]}\n");
    write_text(ds, text);
    ck_assert_int_eq(rwkv_labels_builtin(&l, v, "answer", ds), RWKV_ERR_SHAPE);
    ck_assert_ptr_nonnull(strstr(rwkv_error_message(), "1 examples but the dump has 3 sequences"));
    write_text(ds, "{\"text\":\"hello\"}\n");
    ck_assert_int_eq(rwkv_labels_builtin(&l, v, "answer", ds), RWKV_ERR_FORMAT);
    ck_assert_int_eq(rwkv_labels_builtin(&l, v, "answer", tmp_path("none.jsonl")), RWKV_ERR_IO);
    rwkv_dumpview_free(v);
}
END_TEST

START_TEST(dump_features) {
    const char *path = make_small_dump("feat.h5", 0);
    rwkv_dumpview *v = NULL;
    ck_assert_int_eq(rwkv_dumpview_open(&v, path), RWKV_OK);
    rwkv_feature_ref *refs = NULL;
    int n = 0, D = 0;
    ck_assert_int_eq(rwkv_dumpview_match(v, "blocks.*.state_num", &refs, &n), RWKV_OK);
    ck_assert_int_eq(n, 2);
    ck_assert(refs[0].layer == 0 && refs[1].layer == 1 && !strcmp(refs[1].name, "state_num"));
    free(refs);
    ck_assert_int_eq(rwkv_dumpview_match(v, "blocks.1.state_*", &refs, &n), RWKV_OK);
    ck_assert_int_eq(n, 3);
    free(refs);
    ck_assert_int_eq(rwkv_dumpview_match(v, "blocks.0.state_num/state_den,blocks.1.concat(state_*)", &refs, &n), RWKV_OK);
    ck_assert_int_eq(n, 2);
    rwkv_real *X = NULL;
    ck_assert_int_eq(rwkv_dumpview_read(v, &refs[0], &X, &D), RWKV_OK);
    ck_assert_int_eq(D, 2);
    for (int r = 0; r < 16; r++) ck_assert(fabs(X[2 * r] - r / 2.0) < 1e-6 && fabs(X[2 * r + 1] + r / 4.0) < 1e-6);
    free(X);
    ck_assert_int_eq(rwkv_dumpview_read(v, &refs[1], &X, &D), RWKV_OK);
    ck_assert_int_eq(D, 3 + 2 + 2); // att_xprev, den, num in name order
    ck_assert(X[7 * 5 + 0] == 500 && X[7 * 5 + 3] == 2 && X[7 * 5 + 5] == 5);
    free(X);
    free(refs);
    ck_assert_int_eq(rwkv_dumpview_match(v, "blocks.*.att_gate", &refs, &n), RWKV_ERR_ARG);
    ck_assert_ptr_nonnull(strstr(rwkv_error_message(), "state_att_xprev, state_den, state_num"));
    rwkv_dumpview_free(v);
    ck_assert_int_eq(rwkv_dumpview_open(&v, tmp_path("missing.h5")), RWKV_ERR_IO);
    // A dump from a newer schema is refused.
    hid_t f = H5Fopen(path, H5F_ACC_RDWR, H5P_DEFAULT);
    hid_t a = H5Aopen(f, "schema_version", H5P_DEFAULT);
    int64_t ver = 3;
    H5Awrite(a, H5T_NATIVE_INT64, &ver);
    H5Aclose(a); H5Fclose(f);
    ck_assert_int_eq(rwkv_dumpview_open(&v, path), RWKV_ERR_UNSUPPORTED);
    ck_assert_ptr_nonnull(strstr(rwkv_error_message(), "schema version 3 is not supported"));
    // Not a dump at all.
    write_text(tmp_path("junk.h5"), "not hdf5");
    ck_assert_int_eq(rwkv_dumpview_open(&v, tmp_path("junk.h5")), RWKV_ERR_FORMAT);
}
END_TEST

START_TEST(dump_nan_is_an_error) {
    const char *path = make_small_dump("nan.h5", 0);
    double bad[16 * 2] = {0};
    bad[9 * 2 + 1] = NAN;
    write_tap(path, 0, "bad", bad, 16, 2);
    rwkv_dumpview *v = NULL;
    ck_assert_int_eq(rwkv_dumpview_open(&v, path), RWKV_OK);
    rwkv_feature_ref f = {.layer = 0, .name = "bad"};
    rwkv_real *X = NULL;
    int D;
    ck_assert_int_eq(rwkv_dumpview_read(v, &f, &X, &D), RWKV_ERR_NUMERIC);
    ck_assert_ptr_nonnull(strstr(rwkv_error_message(), "blocks.0.bad: NaN at row 9, column 1"));
    ck_assert_ptr_null(X);
    rwkv_dumpview_free(v);
}
END_TEST

static void write_text(const char *path, const char *text) {
    FILE *f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    fputs(text, f);
    fclose(f);
}

// A label CSV for the small dump: label = 2 * position, optionally with one row changed.
static void write_label_csv(const char *path, int rows, int bad_row, int bad_seq) {
    FILE *f = fopen(path, "w");
    fprintf(f, "# kind=class\nsequence,position,label\n");
    for (int r = 0; r < rows; r++) {
        int s = r < 5 ? 0 : r < 12 ? 1 : 2;
        fprintf(f, "%d,%lld,%lld\n", r == bad_row ? bad_seq : s, (long long)small_pos[r], 2 * (long long)small_pos[r]);
    }
    fclose(f);
}

START_TEST(label_files) {
    const char *path = make_small_dump("lab.h5", 0);
    rwkv_dumpview *v = NULL;
    ck_assert_int_eq(rwkv_dumpview_open(&v, path), RWKV_OK);
    rwkv_labels *l = NULL;
    const char *csv = tmp_path("labels.csv");
    write_label_csv(csv, 16, -1, 0);
    ck_assert_int_eq(rwkv_labels_read(&l, v, csv), RWKV_OK);
    ck_assert_int_eq(l->n_valid, 16);
    ck_assert(l->value[15] == 6 && l->kind == RWKV_LABEL_CLASS);
    rwkv_labels_free(l);
    write_label_csv(csv, 15, -1, 0); // a row short
    ck_assert_int_eq(rwkv_labels_read(&l, v, csv), RWKV_ERR_SHAPE);
    ck_assert_ptr_nonnull(strstr(rwkv_error_message(), "15 label rows but"));
    write_label_csv(csv, 16, 8, 2); // row 8 claims sequence 2
    ck_assert_int_eq(rwkv_labels_read(&l, v, csv), RWKV_ERR_SHAPE);
    ck_assert_ptr_nonnull(strstr(rwkv_error_message(), "not aligned"));
    ck_assert_ptr_nonnull(strstr(rwkv_error_message(), "row 8 is (sequence 2"));
    write_text(csv, "seq,pos,lab\n0,0,1\n");
    ck_assert_int_eq(rwkv_labels_read(&l, v, csv), RWKV_ERR_FORMAT);
    write_text(csv, "sequence,position,label\n0,0,abc\n");
    ck_assert_int_eq(rwkv_labels_read(&l, v, csv), RWKV_ERR_FORMAT);
    // HDF5 label file; then one with a wrong row count.
    const char *h5 = tmp_path("labels.h5");
    for (int rows = 16; rows >= 14; rows -= 2) {
        int64_t seq[16], pos[16];
        double val[16];
        for (int r = 0; r < 16; r++) seq[r] = r < 5 ? 0 : r < 12 ? 1 : 2, pos[r] = small_pos[r], val[r] = r == 3 ? NAN : 0.5 * r;
        hid_t f = H5Fcreate(h5, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
        hsize_t n = (hsize_t)rows;
        h5_write(f, "/labels/sequence", H5T_NATIVE_INT64, 1, &n, seq);
        h5_write(f, "/labels/position", H5T_NATIVE_INT64, 1, &n, pos);
        hid_t sp = H5Screate_simple(1, &n, NULL);
        hid_t d = H5Dcreate2(f, "/labels/value", H5T_IEEE_F64LE, sp, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
        H5Dwrite(d, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, val);
        H5Dclose(d); H5Sclose(sp); H5Fclose(f);
        rwkv_status st = rwkv_labels_read(&l, v, h5);
        if (rows == 16) {
            ck_assert_int_eq(st, RWKV_OK);
            ck_assert(l->kind == RWKV_LABEL_REAL && l->n_valid == 15 && !l->valid[3] && l->value[5] == 2.5);
            rwkv_labels_free(l);
        } else {
            ck_assert_int_eq(st, RWKV_ERR_SHAPE);
            ck_assert_ptr_nonnull(strstr(rwkv_error_message(), "14 label rows but the dump has 16"));
        }
    }
    rwkv_dumpview_free(v);
}
END_TEST


// ---------------------------------------------------------------- the CLI

// G sequences of T tokens base .. base+V-1: blocks.0.state_num = E[token] + noise (token@0 is
// decodable), blocks.1.state_num = noise, blocks.0.resid_in = E[token] (the baseline).
static const char *make_cli_dump(const char *name, int G, int T, int V, int base) {
    const int D = 8;
    int64_t N = (int64_t)G * T, *off = malloc(sizeof(int64_t) * (G + 1)), *pos = malloc(sizeof(int64_t) * N);
    int32_t *tok = malloc(sizeof(int32_t) * N);
    double *E = malloc(sizeof(double) * V * D), *A = malloc(sizeof(double) * N * D), *B = malloc(sizeof(double) * N * D);
    double *R = malloc(sizeof(double) * N * D);
    gsl_rng *rng = gsl_rng_alloc(gsl_rng_mt19937);
    gsl_rng_set(rng, 21);
    for (int i = 0; i < V * D; i++) E[i] = gsl_ran_gaussian(rng, 1.0);
    for (int s = 0; s <= G; s++) off[s] = (int64_t)s * T;
    for (int64_t r = 0; r < N; r++) {
        pos[r] = r % T;
        tok[r] = base + (int32_t)gsl_rng_uniform_int(rng, V);
        for (int j = 0; j < D; j++) {
            R[r * D + j] = E[(tok[r] - base) * D + j];
            A[r * D + j] = R[r * D + j] + gsl_ran_gaussian(rng, 0.05);
            B[r * D + j] = gsl_ran_gaussian(rng, 1.0);
        }
    }
    const char *path = tmp_path(name);
    dump_spec spec = {G, off, off, N, N, pos, tok, 0};
    write_dump(path, &spec);
    write_tap(path, 0, "state_num", A, N, D);
    write_tap(path, 1, "state_num", B, N, D);
    write_tap(path, 0, "resid_in", R, N, D);
    gsl_rng_free(rng);
    free(off); free(pos); free(tok); free(E); free(A); free(B); free(R);
    return path;
}

// Column `col` (0-based) of CSV line `line` (0 = header) as a number; NAN if absent.
static double csv_field(const char *path, int line, int col) {
    FILE *f = fopen(path, "r");
    if (!f) return NAN;
    char buf[2048];
    double v = NAN;
    for (int i = 0; fgets(buf, sizeof buf, f); i++) {
        if (i != line) continue;
        char *p = buf;
        for (int c = 0; c < col && p; c++) p = strchr(p, ',') ? strchr(p, ',') + 1 : NULL;
        if (p && *p != ',' && *p != '\n') v = strtod(p, NULL);
        break;
    }
    fclose(f);
    return v;
}

static int csv_lines(const char *path) {
    FILE *f = fopen(path, "r");
    if (!f) return -1;
    int n = 0, c;
    while ((c = fgetc(f)) != EOF) n += c == '\n';
    fclose(f);
    return n;
}

// Columns of the probe CSV (docs/probe-labels.md lists them).
enum { COL_LAYER, COL_TAP, COL_LABEL, COL_PROBE, COL_ROWS, COL_SEQS, COL_CLASSES, COL_METRIC,
       COL_SCORE, COL_LO, COL_HI, COL_F1, COL_F1LO, COL_F1HI, COL_CHANCE, COL_CONTROL,
       COL_SELECTIVITY, COL_BASELINE, COL_LAMBDA, COL_MAX_ITERS, COL_CONVERGED, COL_CONTROL_CHANCE };

START_TEST(cli_probe) {
    const char *dump = make_cli_dump("cli.h5", 24, 40, 12, 0);
    const char *out = tmp_path("probe.csv");
    char *log = NULL;
    int rc = test_cli(&log, "probe %s --taps 'blocks.*.state_num' --label token@0 --folds 4 --boot 100 --force -o %s", dump, out);
    ck_assert_msg(rc == 0, "probe failed: %s", log);
    free(log);
    ck_assert_int_eq(csv_lines(out), 3);
    ck_assert(csv_field(out, 1, COL_LAYER) == 0 && csv_field(out, 2, COL_LAYER) == 1);
    ck_assert(csv_field(out, 1, COL_ROWS) == 24 * 40 && csv_field(out, 1, COL_CLASSES) == 12);
    ck_assert_msg(csv_field(out, 1, COL_SCORE) >= 0.95, "layer 0: %g", csv_field(out, 1, COL_SCORE));
    ck_assert_msg(csv_field(out, 2, COL_SCORE) <= 0.2, "layer 1 (noise): %g", csv_field(out, 2, COL_SCORE));
    for (int l = 1; l <= 2; l++) {
        double sel = csv_field(out, l, COL_SCORE) - csv_field(out, l, COL_CONTROL);
        ck_assert(fabs(sel - csv_field(out, l, COL_SELECTIVITY)) < 1e-5);
        ck_assert(csv_field(out, l, COL_LO) <= csv_field(out, l, COL_SCORE));
        ck_assert(csv_field(out, l, COL_BASELINE) >= 0.95); // resid_in = the embedding itself
    }
    // Baseline from a model's embedding: the tiny model's byte vocab, letters 'a'.. (the
    // embeddings of bytes that never occur in training are not distinct).
    const char *dump_az = make_cli_dump("cli-az.h5", 24, 40, 12, 'a');
    rc = test_cli(&log, "probe %s --taps blocks.1.state_num --label token@0 --folds 4 --boot 100 --model %s --force -o %s",
                  dump_az, test_fixture("tiny-rwkv-4v0-660K-FP32.bin"), out);
    ck_assert_msg(rc == 0, "probe --model failed: %s", log);
    free(log);
    ck_assert_msg(csv_field(out, 1, COL_BASELINE) >= 0.95, "embedding baseline %g", csv_field(out, 1, COL_BASELINE));
    rc = test_cli(&log, "probe %s --taps blocks.1.state_num --label token@0 --model %s/none.bin --force -o %s", dump, test_tmpdir(), out);
    ck_assert_int_eq(rc, 1);
    ck_assert_ptr_nonnull(strstr(log, "baseline: "));
    free(log);
    // token@-1: the features hold only the current token. The control is keyed to token@-1's
    // token too (not the row's own, which the features hold), so both sit near their chance.
    rc = test_cli(&log, "probe %s --taps blocks.0.state_num --label token@-1 --folds 4 --boot 100 --force -o %s", dump, out);
    ck_assert_msg(rc == 0, "probe failed: %s", log);
    ck_assert_ptr_nonnull(strstr(log, "majority rate"));
    ck_assert_ptr_nonnull(strstr(log, "macro-F1"));
    free(log);
    ck_assert(csv_field(out, 1, COL_SCORE) < 0.25);
    ck_assert_msg(csv_field(out, 1, COL_CONTROL) <= csv_field(out, 1, COL_CONTROL_CHANCE) + 0.06, "control %g, its chance %g",
                  csv_field(out, 1, COL_CONTROL), csv_field(out, 1, COL_CONTROL_CHANCE));
    ck_assert(csv_field(out, 1, COL_CONVERGED) == 1);
    // A real-valued label goes to ridge: position is not in the features (R^2 about 0).
    rc = test_cli(&log, "probe %s --taps blocks.0.state_num --label position --folds 4 --boot 100 --force -o %s", dump, out);
    ck_assert_msg(rc == 0, "probe failed: %s", log);
    free(log);
    ck_assert(csv_field(out, 1, COL_SCORE) < 0.1);
}
END_TEST

// G sequences of T tokens in [0, V): blocks.0.state_num = [E[token@0] + noise (8 columns),
// 3 (cos, sin)(2 pi token@-1 / V) + noise]. token@-1 is linearly decodable from the circle
// (class k wins the arc around its angle); a random relabelling of token@-1's types is not
// (a linear probe on 2 dims gives each class one arc), and the one-hot of token@0 does not help.
static const char *make_lag_dump(const char *name, int G, int T, int V) {
    const int D = 10;
    int64_t N = (int64_t)G * T, *off = malloc(sizeof(int64_t) * (G + 1)), *pos = malloc(sizeof(int64_t) * N);
    int32_t *tok = malloc(sizeof(int32_t) * N);
    double *E = malloc(sizeof(double) * V * 8), *A = malloc(sizeof(double) * N * D);
    gsl_rng *rng = gsl_rng_alloc(gsl_rng_mt19937);
    gsl_rng_set(rng, 5);
    for (int i = 0; i < V * 8; i++) E[i] = gsl_ran_gaussian(rng, 1.0);
    for (int s = 0; s <= G; s++) off[s] = (int64_t)s * T;
    for (int64_t r = 0; r < N; r++) tok[r] = (int32_t)gsl_rng_uniform_int(rng, V);
    for (int64_t r = 0; r < N; r++) {
        pos[r] = r % T;
        double th = pos[r] ? 2 * M_PI * tok[r - 1] / V : 0;
        for (int j = 0; j < 8; j++) A[r * D + j] = E[tok[r] * 8 + j] + gsl_ran_gaussian(rng, 0.05);
        A[r * D + 8] = 3 * cos(th) + gsl_ran_gaussian(rng, 0.05);
        A[r * D + 9] = 3 * sin(th) + gsl_ran_gaussian(rng, 0.05);
    }
    const char *path = tmp_path(name);
    dump_spec spec = {G, off, off, N, N, pos, tok, 0};
    write_dump(path, &spec);
    write_tap(path, 0, "state_num", A, N, D);
    gsl_rng_free(rng);
    free(off); free(pos); free(tok); free(E); free(A);
    return path;
}

// The control task is keyed to the probed token (token@-d's), so the probe must beat it: a
// control keyed to the row's own token would be trivially easy here (the features hold it).
START_TEST(cli_control_keyed_to_probed_token) {
    const char *dump = make_lag_dump("cli-lag.h5", 40, 40, 12);
    const char *out = tmp_path("lag.csv");
    char *log = NULL;
    int rc = test_cli(&log, "probe %s --taps blocks.0.state_num --label token@-1 --folds 4 --boot 100 --no-baseline --force -o %s",
                      dump, out);
    ck_assert_msg(rc == 0, "probe failed: %s", log);
    free(log);
    double score = csv_field(out, 1, COL_SCORE), ctrl = csv_field(out, 1, COL_CONTROL);
    ck_assert_msg(score >= 0.9, "token@-1 from the circle: %g", score);
    ck_assert_msg(ctrl <= 0.7, "control %g: trivially easy (keyed to the row's own token?)", ctrl);
    ck_assert_msg(score - ctrl >= 0.25, "selectivity %g", score - ctrl);
    ck_assert(fabs(csv_field(out, 1, COL_SELECTIVITY) - (score - ctrl)) < 1e-5);
    // token@0 is the row's own token: its control is keyed to it and is as easy as the label.
    rc = test_cli(&log, "probe %s --taps blocks.0.state_num --label token@0 --folds 4 --boot 100 --no-baseline --force -o %s",
                  dump, out);
    ck_assert_msg(rc == 0, "probe failed: %s", log);
    free(log);
    ck_assert(csv_field(out, 1, COL_SCORE) >= 0.95 && csv_field(out, 1, COL_CONTROL) >= 0.9);
}
END_TEST

static void count_rows(void *ctx, const char *what, const rwkv_probe_opts *po, const rwkv_probe_row *row) {
    (void)po;
    ck_assert(strstr(what, "blocks.0.state_num") && row->main.n_rows > 0);
    ++*(int *)ctx;
}

// The horizon sweep from the library: the lag dump holds token@-1 and nothing further back,
// so accuracy is high at d = 1 and near chance at d = 2; a ridge probe is refused.
START_TEST(horizon_library) {
    const char *dump = make_lag_dump("lib-lag.h5", 40, 40, 12);
    const char *out = tmp_path("lib-horizon.csv");
    int calls = 0;
    rwkv_probe_sweep_opts o = {.dump = dump, .taps = "blocks.0.state_num", .no_baseline = 1, .progress = count_rows,
                               .progress_ctx = &calls};
    rwkv_probe_opts_default(&o.po);
    o.po.folds = 4;
    o.po.n_boot = 100;
    rwkv_probe_horizon_result h;
    ck_assert_int_eq(rwkv_probe_horizon(&h, out, &o, 2), RWKV_OK);
    ck_assert(h.D == 2 && h.n_curves == 2 && calls == 2);
    ck_assert_str_eq(h.names[0], "layer 0 state_num");
    ck_assert_str_eq(h.names[1], "majority class (chance)");
    ck_assert_msg(h.acc[0] >= 0.9, "d=1: %g", h.acc[0]);
    ck_assert_msg(h.acc[1] < 0.3, "d=2: %g", h.acc[1]);
    ck_assert(h.acc[2] > 0 && h.acc[2] < 0.3); // the majority rate of 12 classes
    ck_assert_int_eq(csv_lines(out), 1 + 2);
    ck_assert(fabs(csv_field(out, 1, 1 + COL_SCORE) - h.acc[0]) < 1e-5); // the CSV says the same
    rwkv_probe_horizon_free(&h);
    o.kind_given = 1;
    o.po.kind = RWKV_PROBE_RIDGE;
    ck_assert_int_eq(rwkv_probe_horizon(&h, out, &o, 2), RWKV_ERR_ARG);
    ck_assert_ptr_nonnull(strstr(rwkv_error_message(), "must be logistic"));
}
END_TEST

START_TEST(cli_horizon) {
    const char *dump = make_cli_dump("cli-h.h5", 20, 30, 10, 0);
    const char *out = tmp_path("horizon.csv");
    char *log = NULL;
    int rc = test_cli(&log, "probe horizon %s --max-d 3 --taps 'blocks.*.state_num' --force -o %s", dump, out);
    ck_assert_msg(rc == 0, "horizon failed: %s", log);
    free(log);
    ck_assert_int_eq(csv_lines(out), 1 + 3 * 2);
    for (int line = 1; line <= 6; line++) {
        ck_assert(csv_field(out, line, 0) == (line + 1) / 2); // d
        ck_assert(csv_field(out, line, 1 + COL_SCORE) < 0.3);  // no memory in these features
    }
    if (rwkv_plot_available()) { // the PNG and its data beside the CSV, not over it
        FILE *png = fopen(tmp_path("horizon-plot.png"), "rb");
        ck_assert_msg(png != NULL, "no horizon-plot.png");
        fclose(png);
        ck_assert(csv_field(tmp_path("horizon-plot.csv"), 1, 0) == 1); // x = d
    }
}
END_TEST

START_TEST(cli_errors) {
    const char *dump = make_cli_dump("cli-e.h5", 10, 20, 5, 0);
    const char *out = tmp_path("err.csv");
    char *log = NULL;
    ck_assert_int_eq(test_cli(&log, "probe %s/none.h5 --taps 'blocks.*.state_num' --label token@0 --force -o %s", test_tmpdir(), out), 1);
    ck_assert_ptr_nonnull(strstr(log, "none.h5: cannot open"));
    free(log);
    ck_assert_int_eq(test_cli(&log, "probe %s --taps 'blocks.*.att_k' --label token@0 --force -o %s", dump, out), 1);
    ck_assert_ptr_nonnull(strstr(log, "matches nothing"));
    ck_assert_ptr_nonnull(strstr(log, "state_num"));
    free(log);
    ck_assert_int_eq(test_cli(&log, "probe %s --taps 'blocks.*.state_num' --label 'tok@0' --force -o %s", dump, out), 1);
    ck_assert_ptr_nonnull(strstr(log, "unknown label"));
    free(log);
    const char *csv = tmp_path("short.csv");
    write_text(csv, "sequence,position,label\n0,0,1\n0,1,2\n");
    ck_assert_int_eq(test_cli(&log, "probe %s --taps 'blocks.*.state_num' --label %s --force -o %s", dump, csv, out), 1);
    ck_assert_ptr_nonnull(strstr(log, "2 label rows but"));
    free(log);
    ck_assert_int_eq(test_cli(&log, "probe %s --taps 'blocks.*.state_num' --label token@0 --folds 1 --force -o %s", dump, out), 2);
    free(log);
    ck_assert_int_eq(test_cli(&log, "probe %s --taps 'blocks.*.state_num' --label token@0 --folds 20 --force -o %s", dump, out), 1);
    ck_assert_ptr_nonnull(strstr(log, "folds need at least 20"));
    free(log);
    ck_assert_int_eq(test_cli(&log, "probe %s --taps 'blocks.*.state_num' --label token@0 --force -o %s/no/such/dir.csv", dump, test_tmpdir()), 1);
    ck_assert_ptr_nonnull(strstr(log, "cannot write"));
    free(log);
    // Logistic on a real label only works for integers: position is, so use a CSV of halves.
    const char *halves = tmp_path("halves.csv");
    FILE *hf = fopen(halves, "w");
    fprintf(hf, "sequence,position,label\n");
    for (int r = 0; r < 200; r++) fprintf(hf, "%d,%d,%g\n", r / 20, r % 20, 0.5 * (r % 3));
    fclose(hf);
    ck_assert_int_eq(test_cli(&log, "probe %s --taps blocks.0.state_num --label %s --probe logistic --folds 2 --force -o %s", dump, halves, out), 1);
    ck_assert_ptr_nonnull(strstr(log, "is not a class id"));
    free(log);
    ck_assert_int_eq(test_cli(&log, "probe %s --taps blocks.0.state_num --label %s --folds 2 --force -o %s", dump, halves, out), 0);
    ck_assert_int_eq(csv_lines(out), 2); // inferred real: ridge, R^2 of noise at or below 0
    ck_assert(csv_field(out, 1, COL_SCORE) < 0.1 && csv_field(out, 1, COL_CLASSES) == 0);
    free(log);
    ck_assert_int_eq(test_cli(&log, "probe horizon %s --force -o %s", dump, out), 2);
    ck_assert_ptr_nonnull(strstr(log, "--max-d"));
    free(log);
    ck_assert_int_eq(test_cli(&log, "probe --help"), 0);
    ck_assert_ptr_nonnull(strstr(log, "token@-D"));
    free(log);
}
END_TEST

// ---------------------------------------------------------------- the tiny trained model
// Builds a dump through the library (rwkv_forward_seq with a hook) of 30 lines of
// tinyshakespeare, 96 bytes each, then probes layer 0. Needs the rwkv.cpp .bin reader.

#define TINY_SEQ 30
#define TINY_LEN 96

typedef struct {
    rwkv_real *xprev, *num; // (N, C)
    int64_t row0;
    int C;
} tiny_capture;

static rwkv_status tiny_hook(void *ctx, int layer, rwkv_tap tap, int64_t pos, int n, int D, rwkv_real *data) {
    tiny_capture *c = ctx;
    if (layer != 0) return RWKV_OK;
    rwkv_real *dst = tap == RWKV_TAP_STATE_ATT_XPREV ? c->xprev : c->num;
    memcpy(dst + (c->row0 + pos) * D, data, sizeof(rwkv_real) * (size_t)n * D);
    return RWKV_OK;
}

START_TEST(tiny_model_token_probes) {
    rwkv_model *m = NULL;
    ck_assert_msg(rwkv_model_load(&m, test_fixture("tiny-rwkv-4v0-660K-FP32.bin")) == RWKV_OK,
                  "loading the tiny model: %s", rwkv_error_message());
    FILE *f = fopen(test_fixture("tinyshakespeare.txt"), "rb");
    ck_assert_ptr_nonnull(f);
    static char text[TINY_SEQ * TINY_LEN * 4];
    size_t got = fread(text, 1, sizeof text, f);
    fclose(f);
    ck_assert(got >= (size_t)TINY_SEQ * TINY_LEN * 2);
    int C = m->cfg.n_embd;
    int64_t N = (int64_t)TINY_SEQ * TINY_LEN;
    tiny_capture cap = {calloc((size_t)N * C, sizeof(rwkv_real)), calloc((size_t)N * C, sizeof(rwkv_real)), 0, C};
    int32_t *tokens = malloc(sizeof(int32_t) * N);
    int64_t *pos = malloc(sizeof(int64_t) * N), off[TINY_SEQ + 1];
    uint32_t mask[16] = {0};
    mask[0] = (1u << RWKV_TAP_STATE_ATT_XPREV) | (1u << RWKV_TAP_STATE_NUM);
    rwkv_hook hook = {.mask = mask, .fn = tiny_hook, .ctx = &cap};
    rwkv_state *st = NULL;
    rwkv_workspace *ws = NULL;
    ck_assert_int_eq(rwkv_state_alloc(&st, m->cfg), RWKV_OK);
    ck_assert_int_eq(rwkv_workspace_alloc(&ws, m->cfg, TINY_LEN), RWKV_OK);
    int ids[TINY_LEN];
    for (int s = 0; s < TINY_SEQ; s++) {
        off[s] = (int64_t)s * TINY_LEN;
        for (int t = 0; t < TINY_LEN; t++) {
            ids[t] = (unsigned char)text[2 * s * TINY_LEN + t]; // every other 96-byte block
            tokens[off[s] + t] = ids[t];
            pos[off[s] + t] = t;
        }
        rwkv_state_reset(st);
        cap.row0 = off[s];
        hook.pos = 0;
        ck_assert_int_eq(rwkv_forward_seq(m, st, ids, TINY_LEN, NULL, RWKV_LOGITS_NONE, &hook, ws), RWKV_OK);
    }
    off[TINY_SEQ] = N;
    const char *path = tmp_path("tiny.h5");
    dump_spec spec = {TINY_SEQ, off, off, N, N, pos, tokens, 0};
    write_dump(path, &spec);
    double *buf = malloc(sizeof(double) * N * C);
    for (int64_t i = 0; i < N * C; i++) buf[i] = cap.xprev[i];
    write_tap(path, 0, "state_att_xprev", buf, N, C);
    for (int64_t i = 0; i < N * C; i++) buf[i] = cap.num[i];
    write_tap(path, 0, "state_num", buf, N, C);

    rwkv_dumpview *v = NULL;
    ck_assert_int_eq(rwkv_dumpview_open(&v, path), RWKV_OK);
    rwkv_probe_opts o;
    rwkv_probe_opts_default(&o);
    o.n_boot = 100;
    o.lr.max_iter = 60; // near convergence in accuracy, and keeps the suite fast
    const char *label[2] = {"token@0", "token@-1"};
    const char *tap[2] = {"state_att_xprev", "state_num"};
    for (int k = 0; k < 2; k++) {
        rwkv_labels *l = NULL;
        ck_assert_int_eq(rwkv_labels_builtin(&l, v, label[k], NULL), RWKV_OK);
        rwkv_feature_ref fr = {.layer = 0, .name = ""};
        snprintf(fr.name, sizeof fr.name, "%s", tap[k]);
        rwkv_real *X = NULL;
        int D;
        ck_assert_int_eq(rwkv_dumpview_read(v, &fr, &X, &D), RWKV_OK);
        rwkv_probe_data d = {X, v->n_rows, D, l->value, l->valid, v->row_seq, v->n_seq, label[k]};
        rwkv_probe_result res;
        ck_assert_int_eq(rwkv_probe_run(&res, &d, &o), RWKV_OK);
        if (k == 0) // state_att_xprev is ln1(ln0(emb[token])): a function of the token alone
            ck_assert_msg(res.score.value >= 0.95, "token@0 from state_att_xprev: %g", res.score.value);
        else // the previous token leaves a trace in num; the majority rate (' ' ~ 0.15) is chance
            ck_assert_msg(res.score.value >= res.chance + 0.10, "token@-1 from state_num: %g (chance %g)",
                          res.score.value, res.chance);
        free(X);
        rwkv_labels_free(l);
    }
    rwkv_dumpview_free(v);
    free(buf); free(cap.xprev); free(cap.num); free(tokens); free(pos);
    rwkv_state_free(st);
    rwkv_workspace_free(ws);
    rwkv_model_free(m);
}
END_TEST

// ---------------------------------------------------------------- per-head features (RWKV-5.2/7)

#include "probes/headfeat.h"

// A random orthogonal N x N matrix as a product of plane (Givens) rotations: no SVD involved.
static void random_orthogonal(double *Q, int N, gsl_rng *rng) {
    for (int i = 0; i < N * N; i++) Q[i] = i % (N + 1) == 0;
    for (int sweep = 0; sweep < 4; sweep++)
        for (int a = 0; a < N; a++)
            for (int b = a + 1; b < N; b++) {
                double t = gsl_ran_flat(rng, 0, 2 * M_PI), c = cos(t), s = sin(t);
                for (int i = 0; i < N; i++) { // rows a and b: Q <- G Q
                    double x = Q[a * N + i], y = Q[b * N + i];
                    Q[a * N + i] = c * x - s * y, Q[b * N + i] = s * x + c * y;
                }
            }
}

// S = P diag(d) Q^T with P, Q built from rotations and d known: the triplets give back d,
// unit orthogonal vectors signed by the rule, S itself from all N triplets and P's, Q's
// leading columns (up to the shared sign) from the top 2; k = 0 is the head's block as stored.
START_TEST(head_svd_known_matrix) {
    enum { H = 3, N = 6, ROWS = 2 };
    static const double d[N] = {5, 3, 2, 1, 0.5, 0.1};
    gsl_rng *rng = gsl_rng_alloc(gsl_rng_mt19937);
    gsl_rng_set(rng, 7);
    double P[N * N], Q[N * N];
    rwkv_real X[ROWS * H * N * N];
    for (int i = 0; i < ROWS * H * N * N; i++) X[i] = (rwkv_real)gsl_ran_gaussian(rng, 1); // other heads
    double S[ROWS][N * N];
    for (int r = 0; r < ROWS; r++) {
        random_orthogonal(P, N, rng);
        random_orthogonal(Q, N, rng);
        for (int i = 0; i < N; i++)
            for (int j = 0; j < N; j++) {
                double v = 0;
                for (int c = 0; c < N; c++) v += P[i * N + c] * d[c] * Q[j * N + c]; // (P diag(d) Q^T)_ij
                S[r][i * N + j] = v;
                X[(size_t)r * H * N * N + 1 * N * N + i * N + j] = (rwkv_real)v; // head 1
            }
        if (r == ROWS - 1) break; // keep the last row's P and Q
    }
    rwkv_real flat[ROWS * N * N], full[ROWS * N * (2 * N + 1)], top2[ROWS * 2 * (2 * N + 1)];
    ck_assert_int_eq(rwkv_headfeat_width(N, 0), N * N);
    ck_assert_int_eq(rwkv_headfeat_width(N, 2), 2 * (2 * N + 1));
    ck_assert_int_eq(rwkv_headfeat_extract(flat, X, ROWS, H, N, 1, 0), RWKV_OK);
    ck_assert(!memcmp(flat + N * N, X + H * N * N + N * N, sizeof(rwkv_real) * N * N)); // row 1, head 1, bit for bit
    ck_assert_int_eq(rwkv_headfeat_extract(full, X, ROWS, H, N, 1, N), RWKV_OK);
    ck_assert_int_eq(rwkv_headfeat_extract(top2, X, ROWS, H, N, 1, 2), RWKV_OK);
    const double tol = 1e-4 * d[0];
    for (int r = 0; r < ROWS; r++) {
        const rwkv_real *f = full + (size_t)r * N * (2 * N + 1), *u = f + N, *v = f + N + N * N;
        for (int c = 0; c < N; c++) {
            ck_assert_msg(fabs(f[c] - d[c]) < tol, "row %d: s_%d = %g, want %g", r, c, f[c], d[c]);
            int big = 0;
            for (int i = 1; i < N; i++) if (fabs(u[c * N + i]) > fabs(u[c * N + big])) big = i;
            ck_assert(u[c * N + big] > 0); // the sign rule
            for (int c2 = 0; c2 < N; c2++) {
                double uu = 0, vv = 0;
                for (int i = 0; i < N; i++) uu += u[c * N + i] * u[c2 * N + i], vv += v[c * N + i] * v[c2 * N + i];
                ck_assert(fabs(uu - (c == c2)) < 1e-4 && fabs(vv - (c == c2)) < 1e-4);
            }
        }
        for (int i = 0; i < N; i++) // sum_c s_c u_c v_c^T = S
            for (int j = 0; j < N; j++) {
                double rec = 0;
                for (int c = 0; c < N; c++) rec += f[c] * u[c * N + i] * v[c * N + j];
                ck_assert_msg(fabs(rec - S[r][i * N + j]) < tol, "row %d (%d, %d): %g vs %g", r, i, j, rec, S[r][i * N + j]);
            }
        const rwkv_real *t = top2 + (size_t)r * 2 * (2 * N + 1); // the top 2 are the first 2 of all N
        for (int c = 0; c < 2; c++) {
            ck_assert(fabs(t[c] - f[c]) < 1e-6 * d[0]);
            for (int i = 0; i < N; i++)
                ck_assert(fabs(t[2 + c * N + i] - u[c * N + i]) < 1e-6 && fabs(t[2 + 2 * N + c * N + i] - v[c * N + i]) < 1e-6);
        }
    }
    // The last row's leading vectors are P's and Q's columns, up to one sign for both.
    const rwkv_real *f = full + (size_t)(ROWS - 1) * N * (2 * N + 1), *u = f + N, *v = f + N + N * N;
    for (int c = 0; c < 2; c++) {
        double sign = u[c * N] * P[0 * N + c] < 0 ? -1 : 1;
        for (int i = 0; i < N; i++)
            ck_assert(fabs(u[c * N + i] - sign * P[i * N + c]) < 1e-4 && fabs(v[c * N + i] - sign * Q[i * N + c]) < 1e-4);
    }
    ck_assert_int_eq(rwkv_headfeat_extract(flat, X, ROWS, H, N, 3, 0), RWKV_ERR_ARG);
    ck_assert_int_eq(rwkv_headfeat_extract(full, X, ROWS, H, N, 0, N + 1), RWKV_ERR_ARG);
    gsl_rng_free(rng);
}
END_TEST

// An RWKV-7 dump by hand: H = 4 heads of N = 4 (C = 16), state_wkv (rows, H N N) in layer 0
// and a v4-style state_num in layer 1. Head 2's matrix is E[token] (a 4 x 4 matrix per token
// with distinct singular values) + noise; the other heads are noise: token@0 is in head 2 only.
#define HD_H 4
#define HD_N 4
static const char *make_head_dump(const char *name, int G, int T, int V) {
    const int W = HD_H * HD_N * HD_N;
    int64_t N = (int64_t)G * T, *off = malloc(sizeof(int64_t) * (G + 1)), *pos = malloc(sizeof(int64_t) * N);
    int32_t *tok = malloc(sizeof(int32_t) * N);
    double *E = malloc(sizeof(double) * V * HD_N * HD_N), *X = malloc(sizeof(double) * N * W), *B = malloc(sizeof(double) * N * 2);
    gsl_rng *rng = gsl_rng_alloc(gsl_rng_mt19937);
    gsl_rng_set(rng, 33);
    for (int t = 0; t < V; t++) { // E[t] = P diag(4, 2, 1, 0.5) (t-dependent) Q^T
        double P[HD_N * HD_N], Q[HD_N * HD_N], dd[HD_N] = {4 + t, 2, 1, 0.5};
        random_orthogonal(P, HD_N, rng);
        random_orthogonal(Q, HD_N, rng);
        for (int i = 0; i < HD_N; i++)
            for (int j = 0; j < HD_N; j++) {
                double v = 0;
                for (int c = 0; c < HD_N; c++) v += P[i * HD_N + c] * dd[c] * Q[j * HD_N + c];
                E[(t * HD_N + i) * HD_N + j] = v;
            }
    }
    for (int s = 0; s <= G; s++) off[s] = (int64_t)s * T;
    for (int64_t r = 0; r < N; r++) {
        pos[r] = r % T;
        tok[r] = (int32_t)gsl_rng_uniform_int(rng, V);
        for (int j = 0; j < W; j++) X[r * W + j] = gsl_ran_gaussian(rng, 1.0);
        for (int j = 0; j < HD_N * HD_N; j++) X[r * W + 2 * HD_N * HD_N + j] = E[tok[r] * HD_N * HD_N + j] + gsl_ran_gaussian(rng, 0.02);
        B[2 * r] = gsl_ran_gaussian(rng, 1.0), B[2 * r + 1] = 1;
    }
    const char *path = tmp_path(name);
    dump_spec spec = {G, off, off, N, N, pos, tok, 0};
    write_dump(path, &spec);
    hid_t f = H5Fopen(path, H5F_ACC_RDWR, H5P_DEFAULT);
    static const char *const KEYS[4] = {"n_embd", "rwkv_version", "n_head", "head_size"};
    const int64_t vals[4] = {HD_H * HD_N, 7, HD_H, HD_N};
    for (int k = 0; k < 4; k++) {
        hid_t sp = H5Screate(H5S_SCALAR);
        if (H5Aexists(f, KEYS[k]) > 0) H5Adelete(f, KEYS[k]);
        hid_t a = H5Acreate2(f, KEYS[k], H5T_STD_I64LE, sp, H5P_DEFAULT, H5P_DEFAULT);
        H5Awrite(a, H5T_NATIVE_INT64, &vals[k]);
        H5Aclose(a);
        H5Sclose(sp);
    }
    H5Fclose(f);
    write_tap(path, 0, "state_wkv", X, N, W);
    write_tap(path, 1, "state_num", B, N, 2);
    gsl_rng_free(rng);
    free(off); free(pos); free(tok); free(E); free(X); free(B);
    return path;
}

// Row `line` of a probe CSV whose tap column is `tap`, or -1.
static int csv_find_tap(const char *path, const char *tap) {
    FILE *f = fopen(path, "r");
    char buf[2048], want[128];
    snprintf(want, sizeof want, ",%s,", tap);
    int found = -1;
    for (int i = 0; f && fgets(buf, sizeof buf, f); i++)
        if (i > 0 && strstr(buf, want) == strchr(buf, ',')) { found = i; break; }
    if (f) fclose(f);
    return found;
}

// The planted head is found, flattened and through its singular triplets; the other heads,
// noise, stay at chance; one head alone gives one row.
START_TEST(head_probe_planted) {
    const char *dump = make_head_dump("heads.h5", 24, 30, 6);
    const char *out = tmp_path("heads.csv");
    rwkv_probe_sweep_opts o = {.dump = dump, .taps = "blocks.0.state_wkv", .no_baseline = 1, .heads = "all"};
    rwkv_probe_opts_default(&o.po);
    o.po.folds = 3, o.po.n_boot = 50;
    ck_assert_int_eq(rwkv_probe_sweep(out, &o, "token@0", NULL), RWKV_OK);
    ck_assert_int_eq(csv_lines(out), 1 + HD_H);
    for (int h = 0; h < HD_H; h++) {
        char tap[32];
        snprintf(tap, sizeof tap, "state_wkv:%d", h);
        int row = csv_find_tap(out, tap);
        ck_assert_msg(row == 1 + h, "%s at row %d", tap, row);
        double acc = csv_field(out, row, COL_SCORE), chance = csv_field(out, row, COL_CHANCE);
        if (h == 2) ck_assert_msg(acc >= 0.95, "planted head: %g", acc);
        else ck_assert_msg(acc <= chance + 0.1, "head %d (noise): %g, chance %g", h, acc, chance);
    }
    char *log = NULL;
    int rc = test_cli(&log, "probe %s --taps blocks.0.state_wkv --head 2 --svd 2 --label token@0 --folds 3 --boot 50 "
                      "--no-baseline --force -o %s", dump, out);
    ck_assert_msg(rc == 0, "%s", log);
    free(log);
    ck_assert_int_eq(csv_lines(out), 2);
    ck_assert_int_eq(csv_find_tap(out, "state_wkv:2:svd2"), 1);
    ck_assert_msg(csv_field(out, 1, COL_SCORE) >= 0.95, "planted head, top-2 triplets: %g", csv_field(out, 1, COL_SCORE));
    rc = test_cli(&log, "probe %s --taps blocks.0.state_wkv --head 0,3 --svd 4 --label token@0 --folds 3 --boot 50 "
                  "--no-baseline --force -o %s", dump, out);
    ck_assert_msg(rc == 0, "%s", log);
    free(log);
    ck_assert(csv_find_tap(out, "state_wkv:0:svd4") == 1 && csv_find_tap(out, "state_wkv:3:svd4") == 2);
    ck_assert(csv_field(out, 1, COL_SCORE) <= csv_field(out, 1, COL_CHANCE) + 0.1);
    // probe horizon names the heads in its curves.
    rc = test_cli(&log, "probe horizon %s --taps blocks.0.state_wkv --head 2 --max-d 1 --folds 3 --boot 20 "
                  "--no-baseline --force -o %s", dump, out);
    ck_assert_msg(rc == 0, "%s", log);
    free(log);
    char *plot = test_read_text(tmp_path("heads-plot.csv"));
    ck_assert_msg((plot && strstr(plot, "layer 0 state_wkv:2")) || !rwkv_plot_available(), "horizon plot data");
    free(plot);
}
END_TEST

// A real RWKV-5.2 dump (rwkv.cpp's tiny model, 8 heads of 8): head h's flattened features
// are columns h N^2 .. (h+1) N^2 - 1 of state_wkv, and --head all gives one row per head.
START_TEST(head_features_of_real_dump) {
    char input[512], dump[512], out[512], *log = NULL;
    snprintf(input, sizeof input, "%s", tmp_path("heads-in.txt"));
    snprintf(dump, sizeof dump, "%s", tmp_path("heads-real.h5"));
    snprintf(out, sizeof out, "%s", tmp_path("heads-real.csv"));
    FILE *f = fopen(input, "w");
    for (int i = 0; i < 12; i++) fprintf(f, "To be, or not to be, that is the question %d: whether tis nobler\n", i);
    fclose(f);
    int rc = test_cli(&log, "dump %s --input %s --taps blocks.0.state_wkv --positions all --force -o %s",
                      test_fixture("tiny-rwkv-5v2-730K-FP32.bin"), input, dump);
    ck_assert_msg(rc == 0, "%s", log);
    free(log);
    rwkv_dumpview *v = NULL;
    ck_assert_int_eq(rwkv_dumpview_open(&v, dump), RWKV_OK);
    rwkv_feature_ref whole = {.layer = 0, .name = "state_wkv"}, *heads = NULL;
    int n = 0, D = 0, Dh = 0;
    ck_assert_int_eq(rwkv_dumpview_by_head(v, &whole, 1, "all", 0, &heads, &n), RWKV_OK);
    ck_assert_int_eq(n, 8);
    rwkv_real *X = NULL, *Xh = NULL;
    ck_assert_int_eq(rwkv_dumpview_read(v, &whole, &X, &D), RWKV_OK);
    ck_assert_int_eq(D, 8 * 8 * 8);
    for (int h = 0; h < n; h++) {
        ck_assert_int_eq(heads[h].head, h);
        ck_assert_int_eq(rwkv_dumpview_read(v, &heads[h], &Xh, &Dh), RWKV_OK);
        ck_assert_int_eq(Dh, 64);
        for (int64_t r = 0; r < v->n_rows; r++)
            ck_assert(!memcmp(Xh + r * 64, X + r * D + h * 64, 64 * sizeof(rwkv_real)));
        free(Xh);
    }
    free(X);
    free(heads);
    rwkv_dumpview_free(v);
    rc = test_cli(&log, "probe %s --taps blocks.0.state_wkv --head all --svd 2 --label token@-1 --folds 2 --boot 20 "
                  "--max-iter 50 --no-baseline --force -o %s", dump, out);
    ck_assert_msg(rc == 0, "%s", log);
    free(log);
    ck_assert_int_eq(csv_lines(out), 1 + 8);
    ck_assert_int_eq(csv_find_tap(out, "state_wkv:7:svd2"), 8);
}
END_TEST

// --head out of range, --svd above N, per-head options on a tap or dump without heads,
// --svd without --head, a malformed list: clear errors.
START_TEST(head_bad_input) {
    char dump[512], v4[512];
    snprintf(dump, sizeof dump, "%s", make_head_dump("heads-e.h5", 10, 20, 4));
    snprintf(v4, sizeof v4, "%s", make_cli_dump("heads-v4.h5", 10, 20, 5, 0));
    const char *out = tmp_path("heads-e.csv");
    static const struct { int v4, rc; const char *args, *want; } CASES[] = {
        {0, 1, "--taps blocks.0.state_wkv --head 4", "head 4 is out of range: blocks.0.state_wkv has 4 heads (0..3)"},
        {0, 1, "--taps blocks.0.state_wkv --head 1 --svd 5", "svd 5: a head of blocks.0.state_wkv is 4 x 4, so 1..4"},
        {0, 1, "--taps 'blocks.*.state_*' --head 0", "blocks.1.state_num has no heads"},
        {1, 1, "--taps 'blocks.*.state_num' --head all", "this dump is RWKV-4"},
        {0, 2, "--taps blocks.0.state_wkv --svd 2", "--svd K needs --head"},
        {0, 1, "--taps blocks.0.state_wkv --head 1x", "expected 'all' or a list like 0,2"},
        {0, 2, "--taps blocks.0.state_wkv --head 0 --svd 0", "--svd"},
    };
    for (size_t i = 0; i < sizeof CASES / sizeof CASES[0]; i++) {
        char *log = NULL;
        int rc = test_cli(&log, "probe %s %s --label token@0 --force -o %s", CASES[i].v4 ? v4 : dump, CASES[i].args, out);
        ck_assert_msg(rc == CASES[i].rc && strstr(log, CASES[i].want), "%s: exit %d: %s", CASES[i].args, rc, log);
        free(log);
    }
    char *log = NULL;
    ck_assert_int_eq(test_cli(&log, "probe horizon %s --max-d 2 --taps 'blocks.*.state_num' --head 0 --force -o %s", v4, out), 1);
    ck_assert_msg(strstr(log, "has no heads"), "%s", log);
    free(log);
}
END_TEST

// probe with `opt input` and with `opt -` reading input from stdin; *ta, *tb: the two CSVs.
static void file_and_stdin(char **ta, char **tb, const char *dump, const char *fit, const char *opt,
                           const char *input, const char *a, const char *b) {
    char *log = NULL, line[4096];
    int rc = test_cli(&log, "probe %s %s %s %s -o %s", dump, fit, opt, input, a);
    ck_assert_msg(rc == 0, "%s", log);
    free(log);
    snprintf(line, sizeof line, "$RS probe %s %s %s - -o %s < %s", dump, fit, opt, b, input);
    rc = test_sh(&log, line);
    ck_assert_msg(rc == 0, "%s", log);
    free(log);
    *ta = test_read_text(a), *tb = test_read_text(b);
    ck_assert(*ta && *tb);
}

// --label - and --dataset - read stdin and give the same CSV as the files; both at once is
// a usage error.
START_TEST(probe_stdin_inputs) {
    enum { G = 10, T = 20 };
    char dump[512], csv[512], a[512], b[512], ds[512]; // tmp_path's buffers rotate
    snprintf(dump, sizeof dump, "%s", make_cli_dump("stdin.h5", G, T, 5, 0));
    snprintf(csv, sizeof csv, "%s", tmp_path("stdin-labels.csv"));
    FILE *lf = fopen(csv, "w");
    fprintf(lf, "sequence,position,label\n");
    for (int r = 0; r < G * T; r++) fprintf(lf, "%d,%d,%d\n", r / T, r % T, (r % T) % 3);
    fclose(lf);
    snprintf(a, sizeof a, "%s", tmp_path("stdin-a.csv"));
    snprintf(b, sizeof b, "%s", tmp_path("stdin-b.csv"));
    char *log = NULL, line[4096], *ta, *tb;
    const char *fit = "--taps blocks.0.state_num --folds 2 --boot 20 --no-baseline --force";
    file_and_stdin(&ta, &tb, dump, fit, "--label", csv, a, b);
    ck_assert_ptr_nonnull(strstr(tb, ",state_num,stdin,")); // the label is named after its file
    ck_assert_ptr_nonnull(strstr(ta, ",state_num,stdin-labels.csv,"));
    ck_assert_str_eq(strstr(ta, ",logistic,"), strstr(tb, ",logistic,")); // the same numbers
    free(ta); free(tb);
    // --dataset - for the answer label: a dataset of the dump's own tokens, answers 1..T-1.
    size_t nt = 0;
    int *tok = test_h5_read_int(dump, "/tokens", &nt);
    ck_assert(tok && nt == G * T);
    snprintf(ds, sizeof ds, "%s", tmp_path("stdin-ds.jsonl"));
    FILE *df = fopen(ds, "w");
    fprintf(df, "{\"format\":\"rwkvscope-dataset\",\"version\":1,\"config\":{},\"seed\":1,\"n\":%d}\n", G);
    for (int g = 0; g < G; g++) {
        fprintf(df, "{\"i\":%d,\"tokens\":[", g);
        for (int t = 0; t < T; t++) fprintf(df, "%s%d", t ? "," : "", tok[g * T + t]);
        fprintf(df, "],\"answers\":[[1,%d]]}\n", T - 1);
    }
    fclose(df);
    free(tok);
    file_and_stdin(&ta, &tb, dump, fit, "--label answer --dataset", ds, a, b);
    ck_assert_msg(strstr(ta, ",answer,logistic,190,"), "%s", ta); // G (T - 1) answer rows
    ck_assert_str_eq(ta, tb);
    free(ta); free(tb);
    snprintf(line, sizeof line, "$RS probe %s %s --label - --dataset - -o %s < %s", dump, fit, b, csv);
    ck_assert_int_eq(test_sh(&log, line), 2);
    ck_assert_msg(strstr(log, "only one of them can read stdin"), "%s", log);
    free(log);
}
END_TEST

int main(void) {
    Suite *s = suite_create("probe");
    TCase *tc = tcase_create("probe");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, ridge_matches_normal_equations);
    tcase_add_test(tc, ridge_rank_deficient_min_norm);
    tcase_add_test(tc, logistic_nonseparable_optimum);
    tcase_add_test(tc, logistic_separable_optimum);
    tcase_add_test(tc, logistic_stopping_rules);
    tcase_add_test(tc, logistic_gradient);
    tcase_add_test(tc, planted_signal_and_control);
    tcase_add_test(tc, cli_control_keyed_to_probed_token);
    tcase_add_test(tc, control_keeps_two_classes);
    tcase_add_test(tc, random_features_at_chance);
    tcase_add_test(tc, ridge_probe_planted);
    tcase_add_test(tc, folds_never_share_a_sequence);
    tcase_add_test(tc, error_single_class);
    tcase_add_test(tc, error_too_few_per_fold);
    tcase_add_test(tc, error_nan_features);
    tcase_add_test(tc, dump_rows_and_labels);
    tcase_add_test(tc, dump_sparse_rows);
    tcase_add_test(tc, answer_labels);
    tcase_add_test(tc, dump_features);
    tcase_add_test(tc, dump_nan_is_an_error);
    tcase_add_test(tc, label_files);
    tcase_add_test(tc, cli_probe);
    tcase_add_test(tc, cli_horizon);
    tcase_add_test(tc, horizon_library);
    tcase_add_test(tc, cli_errors);
    tcase_add_test(tc, head_svd_known_matrix);
    tcase_add_test(tc, head_probe_planted);
    tcase_add_test(tc, head_bad_input);
    tcase_add_test(tc, head_features_of_real_dump);
    tcase_add_test(tc, probe_stdin_inputs);
    tcase_add_test(tc, tiny_model_token_probes); // last: needs the .bin reader (formats)
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
