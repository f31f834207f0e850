// ridge.c: ridge regression through the SVD. Tall X: GSL's multifit workspace (SVD by
// gsl_linalg_SV_decomp_mod, which QR-factors first and suits n >> p), solved for each
// lambda by gsl_multifit_linear_solve. Wide X: the same SVD of X^T, solved here.
#include "ridge.h"

#include <gsl/gsl_blas.h>
#include <gsl/gsl_errno.h>
#include <gsl/gsl_linalg.h>
#include <gsl/gsl_multifit.h>
#include <math.h>
#include <stdlib.h>

#define RIDGE_TINY_SV 1e-12 // relative singular value treated as zero when lambda = 0

struct rwkv_ridge_svd {
    int n, p, r;                        // rows, columns, r = min(n, p)
    const double *X;                    // (n, p) the caller's X
    gsl_multifit_linear_workspace *ls;  // tall X: U in ls->A (n, p), V in ls->Q (p, p), s in ls->S
    gsl_matrix *U, *V;                  // wide X: U (n, r), V (p, r) of X = U diag(s) V^T
    gsl_vector *s;                      // (r)
    gsl_vector *uty;                    // (r) scratch for U^T y
};

void rwkv_ridge_svd_free(rwkv_ridge_svd *d) {
    if (!d) return;
    if (d->ls) gsl_multifit_linear_free(d->ls);
    gsl_matrix_free(d->U); gsl_matrix_free(d->V); gsl_vector_free(d->s); gsl_vector_free(d->uty);
    free(d);
}

static rwkv_status gsl_status(int e, const char *what) {
    return e ? rwkv_error_set(RWKV_ERR_NUMERIC, "ridge: %s failed (%s)", what, gsl_strerror(e)) : RWKV_OK;
}

// Wide X (n < p): X^T = V diag(s) U^T, decomposed in place of a copy of X^T.
static rwkv_status svd_wide(rwkv_ridge_svd *d, const double *X) {
    int n = d->n, p = d->p;
    gsl_matrix *Xw = gsl_matrix_alloc((size_t)n, (size_t)n);
    gsl_vector *work = gsl_vector_alloc((size_t)n);
    d->V = gsl_matrix_alloc((size_t)p, (size_t)n);
    d->U = gsl_matrix_alloc((size_t)n, (size_t)n);
    d->s = gsl_vector_alloc((size_t)n);
    rwkv_status st = Xw && work && d->V && d->U && d->s ? RWKV_OK
                   : rwkv_error_set(RWKV_ERR_NOMEM, "ridge: out of memory for a %d x %d SVD", n, p);
    for (int i = 0; !st && i < n; i++)
        for (int j = 0; j < p; j++) gsl_matrix_set(d->V, (size_t)j, (size_t)i, X[(size_t)i * p + j]);
    if (!st) st = gsl_status(gsl_linalg_SV_decomp_mod(d->V, Xw, d->U, d->s, work), "SVD");
    gsl_matrix_free(Xw);
    gsl_vector_free(work);
    return st;
}

rwkv_status rwkv_ridge_svd_alloc(rwkv_ridge_svd **out, const double *X, int n, int p) {
    *out = NULL;
    if (n < 1 || p < 1) return rwkv_error_set(RWKV_ERR_ARG, "ridge: empty design matrix (%d x %d)", n, p);
    rwkv_ridge_svd *d = rwkv_calloc(1, sizeof *d, "ridge svd");
    if (!d) return RWKV_ERR_NOMEM;
    d->n = n, d->p = p, d->r = n >= p ? p : n;
    d->X = X;
    gsl_matrix_const_view Xv = gsl_matrix_const_view_array(X, (size_t)n, (size_t)p);
    gsl_error_handler_t *old = gsl_set_error_handler_off(); // report, never abort
    rwkv_status st = (d->uty = gsl_vector_alloc((size_t)d->r)) ? RWKV_OK : RWKV_ERR_NOMEM;
    if (!st && n >= p) {
        if (!(d->ls = gsl_multifit_linear_alloc((size_t)n, (size_t)p)))
            st = rwkv_error_set(RWKV_ERR_NOMEM, "ridge: out of memory for a %d x %d SVD", n, p);
        else
            st = gsl_status(gsl_multifit_linear_svd(&Xv.matrix, d->ls), "SVD");
    } else if (!st) {
        st = svd_wide(d, X);
    }
    gsl_set_error_handler(old);
    if (st) { rwkv_ridge_svd_free(d); return st; }
    *out = d;
    return RWKV_OK;
}

// w = V diag(s / (s^2 + lambda)) U^T y, the columns j < r of U and V.
static void solve_factors(gsl_vector *w, const gsl_matrix *U, const gsl_vector *s, const gsl_matrix *V,
                          gsl_vector *uty, const gsl_vector *y, double lambda, int r) {
    gsl_matrix_const_view Ur = gsl_matrix_const_submatrix(U, 0, 0, U->size1, (size_t)r);
    gsl_matrix_const_view Vr = gsl_matrix_const_submatrix(V, 0, 0, V->size1, (size_t)r);
    gsl_blas_dgemv(CblasTrans, 1.0, &Ur.matrix, y, 0.0, uty); // U^T y
    double smax = gsl_vector_get(s, 0);
    for (int j = 0; j < r; j++) {
        double sj = gsl_vector_get(s, (size_t)j), *u = gsl_vector_ptr(uty, (size_t)j);
        *u = (lambda == 0 && sj <= RIDGE_TINY_SV * smax) ? 0 : *u * sj / (sj * sj + lambda);
    }
    gsl_blas_dgemv(CblasNoTrans, 1.0, &Vr.matrix, uty, 0.0, w);
}

rwkv_status rwkv_ridge_solve(double *w, rwkv_ridge_svd *d, const double *y, double lambda) {
    gsl_vector_const_view yv = gsl_vector_const_view_array(y, (size_t)d->n);
    gsl_vector_view wv = gsl_vector_view_array(w, (size_t)d->p);
    if (!d->ls) {
        solve_factors(&wv.vector, d->U, d->s, d->V, d->uty, &yv.vector, lambda, d->r);
        return RWKV_OK;
    }
    if (lambda == 0) { // GSL's least squares keeps singular values down to DBL_EPSILON: ours is safer
        solve_factors(&wv.vector, d->ls->A, d->ls->S, d->ls->Q, d->uty, &yv.vector, 0, d->r);
        return RWKV_OK;
    }
    gsl_matrix_const_view Xv = gsl_matrix_const_view_array(d->X, (size_t)d->n, (size_t)d->p);
    double rnorm, snorm;
    gsl_error_handler_t *old = gsl_set_error_handler_off();
    // GSL minimises ||y - X w||^2 + lambda'^2 ||w||^2: lambda' = sqrt(lambda)
    int e = gsl_multifit_linear_solve(sqrt(lambda), &Xv.matrix, &yv.vector, &wv.vector, &rnorm, &snorm, d->ls);
    gsl_set_error_handler(old);
    return gsl_status(e, "solve");
}

rwkv_status rwkv_ridge_fit(double *w, const double *X, int n, int p, const double *y, double lambda) {
    rwkv_ridge_svd *d = NULL;
    rwkv_status st = rwkv_ridge_svd_alloc(&d, X, n, p);
    if (!st) st = rwkv_ridge_solve(w, d, y, lambda);
    rwkv_ridge_svd_free(d);
    return st;
}
