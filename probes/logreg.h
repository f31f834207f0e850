// logreg.h: multinomial logistic regression with an L2 penalty on the weights, fitted by
// L-BFGS (liblbfgs, backtracking line search to the Wolfe conditions), which keeps the last
// RWKV_LOGREG_HISTORY steps. GSL's BFGS2 keeps O(dim) state too, not a dense Hessian, but
// builds each direction from the last step alone (a memoryless BFGS).
//   f(W, b) = (1/n) sum_i [ logsumexp(x_i W + b) - (x_i W + b)_{y_i} ] + (lambda/2) ||W||^2
//   grad_W  = X^T (P - Y) / n + lambda W,   grad_b = colsum(P - Y) / n
// The bias is not penalised. X is expected standardised by the caller.
#ifndef RWKV_LOGREG_H
#define RWKV_LOGREG_H

#include "../core/base/base.h"

#define RWKV_LOGREG_HISTORY 8 // L-BFGS memory (pairs of steps and gradient changes)

typedef struct {
    double l2;      // lambda
    int max_iter;   // L-BFGS iterations (0: none, theta is only evaluated)
    double gtol;    // stop when max |grad| <= gtol
    double ftol;    // or when the loss falls by less than ftol * max(1, |f|) in an iteration
    int single;     // 1: the X W and X^T (P - Y) products and the softmax in float32 (about
                    // 2x faster; gradients good to ~1e-6 relative, enough for probing)
} rwkv_logreg_opts;

typedef struct {
    int p, K, n_max;   // features, classes, most rows a fit or prediction may pass
    int dim;           // (p + 1) K parameters
    double *theta;     // (dim) W (p, K) row-major, then b (K); from lbfgs_malloc
    double *W, *b;     // views into theta
    // results of the last fit
    int iters;
    int converged;     // 1: stopped by gtol, ftol or no possible decrease; 0: hit max_iter
    double loss, gmax;
    // workspace
    double *Z;         // (n_max, K) logits, then P - Y
    double *g;         // (dim) the gradient when max_iter is 0
    float *Xf;         // (n_max, p) float copy of X (single mode)
    float *Wf, *Gf;    // (p, K)
    float *Zf;         // (n_max, K)
} rwkv_logreg;

rwkv_status rwkv_logreg_alloc(rwkv_logreg **out, int p, int K, int n_max);
void rwkv_logreg_free(rwkv_logreg *m);
// Fits from theta's current value (zero after alloc; a previous fit is a warm start).
// X (n, p) row-major, y (n) in [0, K). n <= n_max.
rwkv_status rwkv_logreg_fit(rwkv_logreg *m, const double *X, const int *y, int n,
                            const rwkv_logreg_opts *o);
// The loss and its gradient at theta (dim) into g (dim); exposed for tests.
double rwkv_logreg_loss(rwkv_logreg *m, const double *theta, double *g, const double *X,
                        const int *y, int n, double l2);
// Class probabilities (n, K) into P; pred (n) the argmax (either may be NULL). n <= n_max.
void rwkv_logreg_predict(rwkv_logreg *m, const double *X, int n, int *pred, double *P);

#endif
