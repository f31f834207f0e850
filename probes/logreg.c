// logreg.c: multinomial logistic regression by L-BFGS (liblbfgs); the products go through
// BLAS dgemm. liblbfgs's own tests (||g|| relative to ||x||, a rate over past iterations) are
// off: a progress callback applies gtol and ftol as rwkv_logreg_opts defines them.
#include "logreg.h"

#include <cblas.h>
#include <float.h>
#include <lbfgs.h>
#include <stdlib.h>
#include <string.h>

void rwkv_logreg_free(rwkv_logreg *m) {
    if (!m) return;
    lbfgs_free(m->theta); free(m->Z); free(m->g);
    free(m->Xf); free(m->Wf); free(m->Gf); free(m->Zf);
    free(m);
}

rwkv_status rwkv_logreg_alloc(rwkv_logreg **out, int p, int K, int n_max) {
    *out = NULL;
    if (p < 1 || K < 2 || n_max < 1)
        return rwkv_error_set(RWKV_ERR_ARG, "logreg: needs p >= 1 features, K >= 2 classes, rows >= 1 (got %d, %d, %d)", p, K, n_max);
    rwkv_logreg *m = rwkv_calloc(1, sizeof *m, "logreg");
    if (!m) return RWKV_ERR_NOMEM;
    m->p = p, m->K = K, m->n_max = n_max, m->dim = (p + 1) * K;
    size_t dim = (size_t)m->dim;
    if ((m->theta = lbfgs_malloc(m->dim))) memset(m->theta, 0, dim * sizeof(double)); // aligned for its SSE code
    m->Z = rwkv_calloc((size_t)n_max * K, sizeof(double), "logreg logits");
    m->g = rwkv_calloc(dim, sizeof(double), "logreg grad");
    m->Xf = rwkv_calloc((size_t)n_max * p, sizeof(float), "logreg float X");
    m->Wf = rwkv_calloc((size_t)p * K, sizeof(float), "logreg float W");
    m->Gf = rwkv_calloc((size_t)p * K, sizeof(float), "logreg float grad");
    m->Zf = rwkv_calloc((size_t)n_max * K, sizeof(float), "logreg float logits");
    if (!m->theta || !m->Z || !m->g || !m->Xf || !m->Wf || !m->Gf || !m->Zf) {
        int no_theta = !m->theta;
        rwkv_logreg_free(m);
        return no_theta ? rwkv_error_set(RWKV_ERR_NOMEM, "logreg: out of memory for %d x %d parameters", p + 1, K)
                        : RWKV_ERR_NOMEM;
    }
    m->W = m->theta;
    m->b = m->theta + (size_t)p * K;
    *out = m;
    return RWKV_OK;
}

// Z (n, K) = X W + b for the parameters in theta.
static void logits(rwkv_logreg *m, const double *theta, const double *X, int n) {
    int p = m->p, K = m->K;
    const double *b = theta + (size_t)p * K;
    for (int i = 0; i < n; i++) memcpy(m->Z + (size_t)i * K, b, (size_t)K * sizeof(double));
    cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, K, p, 1.0, X, p, theta, K, 1.0, m->Z, K);
}

// Softmax of row z in place; returns logsumexp(z).
static double softmax_row(double *z, int K) {
    double mx = -DBL_MAX, sum = 0;
    for (int k = 0; k < K; k++) mx = z[k] > mx ? z[k] : mx;
    for (int k = 0; k < K; k++) sum += (z[k] = exp(z[k] - mx));
    for (int k = 0; k < K; k++) z[k] /= sum;
    return mx + log(sum);
}

double rwkv_logreg_loss(rwkv_logreg *m, const double *theta, double *g, const double *X,
                        const int *y, int n, double l2) {
    int p = m->p, K = m->K;
    logits(m, theta, X, n);
    double f = 0;
    for (int i = 0; i < n; i++) {
        double *z = m->Z + (size_t)i * K;
        double zy = z[y[i]];
        f += softmax_row(z, K) - zy;          // -log softmax(z)_y
        z[y[i]] -= 1.0;                       // P - Y
        for (int k = 0; k < K; k++) z[k] /= n;
    }
    f /= n;
    double w2 = 0;
    for (size_t j = 0; j < (size_t)p * K; j++) w2 += theta[j] * theta[j];
    f += 0.5 * l2 * w2;
    // g_W = X^T (P - Y)/n + lambda W ; g_b = colsum (P - Y)/n
    memcpy(g, theta, (size_t)p * K * sizeof(double));
    cblas_dgemm(CblasRowMajor, CblasTrans, CblasNoTrans, p, K, n, 1.0, X, p, m->Z, K, l2, g, K);
    double *gb = g + (size_t)p * K;
    for (int k = 0; k < K; k++) gb[k] = 0;
    for (int i = 0; i < n; i++)
        for (int k = 0; k < K; k++) gb[k] += m->Z[(size_t)i * K + k];
    return f;
}

// The same loss with float products over m->Xf (filled by fit).
static double loss_single(rwkv_logreg *m, const double *theta, double *g, const int *y, int n, double l2) {
    int p = m->p, K = m->K;
    const double *b = theta + (size_t)p * K;
    for (size_t j = 0; j < (size_t)p * K; j++) m->Wf[j] = (float)theta[j];
    for (int i = 0; i < n; i++)
        for (int k = 0; k < K; k++) m->Zf[(size_t)i * K + k] = (float)b[k];
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, K, p, 1.0f, m->Xf, p, m->Wf, K, 1.0f, m->Zf, K);
    double f = 0;
    double *gb = g + (size_t)p * K;
    for (int k = 0; k < K; k++) gb[k] = 0;
    for (int i = 0; i < n; i++) {
        float *z = m->Zf + (size_t)i * K, mx = z[0], sum = 0;
        for (int k = 1; k < K; k++) mx = z[k] > mx ? z[k] : mx;
        float zy = z[y[i]] - mx;
        for (int k = 0; k < K; k++) sum += (z[k] = expf(z[k] - mx));
        f += log((double)sum) - (double)zy;  // -log softmax(z)_y
        float scale = 1.0f / (sum * (float)n);
        for (int k = 0; k < K; k++) z[k] *= scale; // P / n
        z[y[i]] -= 1.0f / (float)n;                 // (P - Y) / n
        for (int k = 0; k < K; k++) gb[k] += z[k];
    }
    f /= n;
    double w2 = 0;
    for (size_t j = 0; j < (size_t)p * K; j++) w2 += theta[j] * theta[j];
    f += 0.5 * l2 * w2;
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, p, K, n, 1.0f, m->Xf, p, m->Zf, K, 0.0f, m->Gf, K);
    for (size_t j = 0; j < (size_t)p * K; j++) g[j] = (double)m->Gf[j] + l2 * theta[j];
    return f;
}

static double max_abs(const double *a, int n) {
    double mx = 0;
    for (int i = 0; i < n; i++) mx = fabs(a[i]) > mx ? fabs(a[i]) : mx;
    return mx;
}

// What the liblbfgs callbacks see.
typedef struct {
    rwkv_logreg *m;
    const rwkv_logreg_opts *o;
    const double *X;
    const int *y;
    int n;
    double f_prev; // the loss at the last accepted point (the start, then each iterate)
    int started;
} fit_ctx;

static double eval(rwkv_logreg *m, const rwkv_logreg_opts *o, const double *theta, double *g,
                   const double *X, const int *y, int n) {
    return o->single ? loss_single(m, theta, g, y, n, o->l2) : rwkv_logreg_loss(m, theta, g, X, y, n, o->l2);
}

static lbfgsfloatval_t evaluate(void *inst, const lbfgsfloatval_t *theta, lbfgsfloatval_t *g, int dim,
                                lbfgsfloatval_t step) {
    (void)dim, (void)step;
    fit_ctx *c = inst;
    double f = eval(c->m, c->o, theta, g, c->X, c->y, c->n);
    if (!c->started) c->started = 1, c->f_prev = c->m->loss = f, c->m->gmax = max_abs(g, c->m->dim);
    return f;
}

// After each iteration: record it, stop when max|grad| <= gtol or the loss fell by less than
// ftol * max(1, |f|).
static int progress(void *inst, const lbfgsfloatval_t *theta, const lbfgsfloatval_t *g, lbfgsfloatval_t f,
                    lbfgsfloatval_t xnorm, lbfgsfloatval_t gnorm, lbfgsfloatval_t step, int dim, int k, int ls) {
    (void)theta, (void)xnorm, (void)gnorm, (void)step, (void)ls;
    fit_ctx *c = inst;
    rwkv_logreg *m = c->m;
    double df = c->f_prev - f;
    m->iters = k, m->loss = f, m->gmax = max_abs(g, dim);
    c->f_prev = f;
    return m->gmax <= c->o->gtol || df <= c->o->ftol * fmax(1.0, fabs(f)) ? LBFGS_STOP : 0;
}

rwkv_status rwkv_logreg_fit(rwkv_logreg *m, const double *X, const int *y, int n,
                            const rwkv_logreg_opts *o) {
    if (n < 1 || n > m->n_max) return rwkv_error_set(RWKV_ERR_ARG, "logreg: %d rows (workspace holds %d)", n, m->n_max);
    for (int i = 0; i < n; i++)
        if (y[i] < 0 || y[i] >= m->K) return rwkv_error_set(RWKV_ERR_ARG, "logreg: label %d of row %d is outside [0, %d)", y[i], i, m->K);
    if (o->single)
        for (size_t j = 0; j < (size_t)n * m->p; j++) m->Xf[j] = (float)X[j];
    fit_ctx c = {m, o, X, y, n, 0, 0};
    m->iters = 0;
    m->converged = 0;
    if (o->max_iter < 1) { // liblbfgs reads 0 as no limit
        evaluate(&c, m->theta, m->g, m->dim, 0);
        m->converged = m->gmax <= o->gtol;
        return isfinite(m->loss) ? RWKV_OK : rwkv_error_set(RWKV_ERR_NUMERIC, "logreg: the loss is %g", m->loss);
    }
    lbfgs_parameter_t par;
    lbfgs_parameter_init(&par);
    par.m = RWKV_LOGREG_HISTORY;
    par.epsilon = 0; // its own test then stops only at an exactly zero gradient
    par.max_iterations = o->max_iter;
    par.linesearch = LBFGS_LINESEARCH_BACKTRACKING; // Wolfe steps: fewer evaluations than More-Thuente here
    double f;
    int ret = lbfgs(m->dim, m->theta, &f, evaluate, progress, &c, &par);
    switch (ret) {
    case LBFGS_SUCCESS: case LBFGS_STOP: case LBFGS_ALREADY_MINIMIZED: // a tolerance is met
    // A line search that finds no decrease leaves theta at the last iterate: at this
    // precision, the optimum.
    case LBFGSERR_ROUNDING_ERROR: case LBFGSERR_MINIMUMSTEP: case LBFGSERR_MAXIMUMLINESEARCH:
    case LBFGSERR_WIDTHTOOSMALL: case LBFGSERR_INCREASEGRADIENT:
        m->converged = 1;
        break;
    case LBFGSERR_MAXIMUMITERATION: // progress saw the last iterate miss both tolerances
        break;
    case LBFGSERR_OUTOFMEMORY:
        return rwkv_error_set(RWKV_ERR_NOMEM, "logreg: liblbfgs is out of memory for %d parameters", m->dim);
    default:
        return rwkv_error_set(RWKV_ERR_NUMERIC, "logreg: liblbfgs failed (status %d) after %d iterations", ret, m->iters);
    }
    if (!isfinite(m->loss)) return rwkv_error_set(RWKV_ERR_NUMERIC, "logreg: the loss became %g", m->loss);
    return RWKV_OK;
}

void rwkv_logreg_predict(rwkv_logreg *m, const double *X, int n, int *pred, double *P) {
    int K = m->K;
    for (int i0 = 0; i0 < n; i0 += m->n_max) { // in blocks of the workspace
        int nb = n - i0 < m->n_max ? n - i0 : m->n_max;
        logits(m, m->theta, X + (size_t)i0 * m->p, nb);
        for (int i = 0; i < nb; i++) {
            double *z = m->Z + (size_t)i * K;
            if (pred) {
                int best = 0;
                for (int k = 1; k < K; k++) best = z[k] > z[best] ? k : best;
                pred[i0 + i] = best;
            }
            if (P) {
                softmax_row(z, K);
                memcpy(P + (size_t)(i0 + i) * K, z, (size_t)K * sizeof(double));
            }
        }
    }
}
