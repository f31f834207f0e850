// ridge.c: ridge regression through gsl_linalg_SV_decomp_mod (one-sided Jacobi would be
// slower for n >> p; the _mod variant QR-factors first, which suits tall feature matrices).
#include "ridge.h"

#include <gsl/gsl_linalg.h>
#include <stdlib.h>
#include <string.h>

#define RIDGE_TINY_SV 1e-12 // relative singular value treated as zero when lambda = 0

void rwkv_ridge_svd_free(rwkv_ridge_svd *d) {
    if (!d) return;
    free(d->U); free(d->s); free(d->V); free(d->uty);
    free(d);
}

// SVD of a tall matrix A (m >= k) in place: A (m, k) -> U, S (k), W (k, k).
static rwkv_status svd_tall(gsl_matrix *A, gsl_vector *S, gsl_matrix *W) {
    gsl_matrix *Xw = gsl_matrix_alloc(A->size2, A->size2);
    gsl_vector *work = gsl_vector_alloc(A->size2);
    if (!Xw || !work) {
        gsl_matrix_free(Xw); gsl_vector_free(work);
        return rwkv_error_set(RWKV_ERR_NOMEM, "ridge: out of memory for the SVD workspace");
    }
    int e = gsl_linalg_SV_decomp_mod(A, Xw, W, S, work);
    gsl_matrix_free(Xw);
    gsl_vector_free(work);
    return e ? rwkv_error_set(RWKV_ERR_NUMERIC, "ridge: SVD failed (gsl error %d)", e) : RWKV_OK;
}

rwkv_status rwkv_ridge_svd_alloc(rwkv_ridge_svd **out, const double *X, int n, int p) {
    *out = NULL;
    if (n < 1 || p < 1) return rwkv_error_set(RWKV_ERR_ARG, "ridge: empty design matrix (%d x %d)", n, p);
    int tall = n >= p, m = tall ? n : p, k = tall ? p : n; // decompose X or X^T, whichever is tall
    rwkv_ridge_svd *d = rwkv_calloc(1, sizeof *d, "ridge svd");
    if (!d) return RWKV_ERR_NOMEM;
    d->n = n, d->p = p, d->r = k;
    d->U = rwkv_calloc((size_t)n * k, sizeof(double), "ridge U");
    d->V = rwkv_calloc((size_t)p * k, sizeof(double), "ridge V");
    d->s = rwkv_calloc((size_t)k, sizeof(double), "ridge s");
    d->uty = rwkv_calloc((size_t)k, sizeof(double), "ridge U^T y");
    gsl_matrix *A = gsl_matrix_alloc((size_t)m, (size_t)k);
    gsl_matrix *W = gsl_matrix_alloc((size_t)k, (size_t)k);
    gsl_vector *S = gsl_vector_alloc((size_t)k);
    rwkv_status st = d->U && d->V && d->s && d->uty && A && W && S ? RWKV_OK
                   : rwkv_error_set(RWKV_ERR_NOMEM, "ridge: out of memory for a %d x %d SVD", n, p);
    for (int i = 0; !st && i < n; i++)
        for (int j = 0; j < p; j++) {
            if (tall) gsl_matrix_set(A, (size_t)i, (size_t)j, X[(size_t)i * p + j]);
            else gsl_matrix_set(A, (size_t)j, (size_t)i, X[(size_t)i * p + j]);
        }
    if (!st) st = svd_tall(A, S, W);
    // X = A_u S W^T when tall; X^T = A_u S W^T (so U = W, V = A_u) otherwise.
    for (int i = 0; !st && i < n; i++)
        for (int j = 0; j < k; j++) d->U[(size_t)i * k + j] = tall ? gsl_matrix_get(A, i, j) : gsl_matrix_get(W, i, j);
    for (int i = 0; !st && i < p; i++)
        for (int j = 0; j < k; j++) d->V[(size_t)i * k + j] = tall ? gsl_matrix_get(W, i, j) : gsl_matrix_get(A, i, j);
    for (int j = 0; !st && j < k; j++) d->s[j] = gsl_vector_get(S, j);
    gsl_matrix_free(A); gsl_matrix_free(W); gsl_vector_free(S);
    if (st) { rwkv_ridge_svd_free(d); return st; }
    *out = d;
    return RWKV_OK;
}

void rwkv_ridge_solve(double *w, rwkv_ridge_svd *d, const double *y, double lambda) {
    int n = d->n, p = d->p, r = d->r;
    double smax = r ? d->s[0] : 0;
    for (int j = 0; j < r; j++) d->uty[j] = 0;
    for (int i = 0; i < n; i++) // uty = U^T y
        for (int j = 0; j < r; j++) d->uty[j] += d->U[(size_t)i * r + j] * y[i];
    for (int j = 0; j < r; j++) { // uty_j *= s_j / (s_j^2 + lambda)
        double s = d->s[j];
        d->uty[j] = (lambda == 0 && s <= RIDGE_TINY_SV * smax) ? 0 : d->uty[j] * s / (s * s + lambda);
    }
    for (int i = 0; i < p; i++) { // w = V uty
        double acc = 0;
        for (int j = 0; j < r; j++) acc += d->V[(size_t)i * r + j] * d->uty[j];
        w[i] = acc;
    }
}

rwkv_status rwkv_ridge_fit(double *w, const double *X, int n, int p, const double *y, double lambda) {
    rwkv_ridge_svd *d = NULL;
    rwkv_status st = rwkv_ridge_svd_alloc(&d, X, n, p);
    if (st) return st;
    rwkv_ridge_solve(w, d, y, lambda);
    rwkv_ridge_svd_free(d);
    return RWKV_OK;
}
