// ridge.h: ridge regression through the SVD, for continuous probe targets.
//   minimise ||y - X w||^2 + lambda ||w||^2   =>   w = V diag(s / (s^2 + lambda)) U^T y
// X is decomposed once; every lambda of a grid then costs O(n r) (r = min(n, p)).
// Tall X (n >= p) goes through GSL's gsl_multifit_linear_svd / _solve; wide X through the
// SVD of X^T. Intercepts are the caller's business (centre X and y first).
#ifndef RWKV_RIDGE_H
#define RWKV_RIDGE_H

#include "../core/base/base.h"

typedef struct rwkv_ridge_svd rwkv_ridge_svd;

// Decomposes X (n, p) row-major. n and p must be >= 1. X must stay alive and unchanged
// while d is used (GSL's solve takes the matrix it decomposed).
rwkv_status rwkv_ridge_svd_alloc(rwkv_ridge_svd **out, const double *X, int n, int p);
void rwkv_ridge_svd_free(rwkv_ridge_svd *d);
// w (p) for one lambda >= 0 (lambda = 0 gives the minimum-norm least-squares solution,
// singular values below 1e-12 of the largest treated as zero).
rwkv_status rwkv_ridge_solve(double *w, rwkv_ridge_svd *d, const double *y, double lambda);
// Convenience: decompose and solve once.
rwkv_status rwkv_ridge_fit(double *w, const double *X, int n, int p, const double *y, double lambda);

#endif
