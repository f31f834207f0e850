// logreg.c: multinomial logistic regression by L-BFGS; the products go through BLAS dgemm.
#include "logreg.h"

#include <cblas.h>
#include <float.h>
#include <stdlib.h>
#include <string.h>

#define LOGREG_ARMIJO_C1 1e-4   // sufficient decrease: f(x + a d) <= f(x) + c1 a g.d
#define LOGREG_BACKTRACK 0.5    // step shrink factor
#define LOGREG_MAX_SHRINK 40    // backtracking steps before giving up
#define LOGREG_CURV_EPS 1e-12   // skip an L-BFGS pair when s.y <= eps |s||y|

void rwkv_logreg_free(rwkv_logreg *m) {
    if (!m) return;
    free(m->theta); free(m->Z); free(m->g); free(m->g_new); free(m->theta_new); free(m->dir);
    free(m->S); free(m->Yh); free(m->rho); free(m->alpha);
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
    m->theta = rwkv_calloc(dim, sizeof(double), "logreg theta");
    m->Z = rwkv_calloc((size_t)n_max * K, sizeof(double), "logreg logits");
    m->g = rwkv_calloc(dim, sizeof(double), "logreg grad");
    m->g_new = rwkv_calloc(dim, sizeof(double), "logreg grad");
    m->theta_new = rwkv_calloc(dim, sizeof(double), "logreg theta");
    m->dir = rwkv_calloc(dim, sizeof(double), "logreg direction");
    m->S = rwkv_calloc(RWKV_LOGREG_HISTORY * dim, sizeof(double), "logreg history");
    m->Yh = rwkv_calloc(RWKV_LOGREG_HISTORY * dim, sizeof(double), "logreg history");
    m->rho = rwkv_calloc(RWKV_LOGREG_HISTORY, sizeof(double), "logreg rho");
    m->alpha = rwkv_calloc(RWKV_LOGREG_HISTORY, sizeof(double), "logreg alpha");
    m->Xf = rwkv_calloc((size_t)n_max * p, sizeof(float), "logreg float X");
    m->Wf = rwkv_calloc((size_t)p * K, sizeof(float), "logreg float W");
    m->Gf = rwkv_calloc((size_t)p * K, sizeof(float), "logreg float grad");
    m->Zf = rwkv_calloc((size_t)n_max * K, sizeof(float), "logreg float logits");
    if (!m->theta || !m->Z || !m->g || !m->g_new || !m->theta_new || !m->dir || !m->S || !m->Yh ||
        !m->rho || !m->alpha || !m->Xf || !m->Wf || !m->Gf || !m->Zf) {
        rwkv_logreg_free(m);
        return RWKV_ERR_NOMEM;
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

static double dot(const double *a, const double *b, int n) { return cblas_ddot(n, a, 1, b, 1); }

static double max_abs(const double *a, int n) {
    double mx = 0;
    for (int i = 0; i < n; i++) mx = fabs(a[i]) > mx ? fabs(a[i]) : mx;
    return mx;
}

// dir = -H g by the two-loop recursion over the stored pairs (oldest first in ring order).
static void direction(rwkv_logreg *m, int n_pairs, int newest) {
    int dim = m->dim;
    for (int j = 0; j < dim; j++) m->dir[j] = -m->g[j];
    for (int t = 0; t < n_pairs; t++) {
        int i = (newest - t + RWKV_LOGREG_HISTORY) % RWKV_LOGREG_HISTORY;
        const double *s = m->S + (size_t)i * dim, *yv = m->Yh + (size_t)i * dim;
        m->alpha[i] = m->rho[i] * dot(s, m->dir, dim);
        cblas_daxpy(dim, -m->alpha[i], yv, 1, m->dir, 1);
    }
    if (n_pairs) { // H0 = (s.y / y.y) I
        const double *s = m->S + (size_t)newest * dim, *yv = m->Yh + (size_t)newest * dim;
        cblas_dscal(dim, dot(s, yv, dim) / dot(yv, yv, dim), m->dir, 1);
    }
    for (int t = n_pairs - 1; t >= 0; t--) {
        int i = (newest - t + RWKV_LOGREG_HISTORY) % RWKV_LOGREG_HISTORY;
        const double *s = m->S + (size_t)i * dim, *yv = m->Yh + (size_t)i * dim;
        double beta = m->rho[i] * dot(yv, m->dir, dim);
        cblas_daxpy(dim, m->alpha[i] - beta, s, 1, m->dir, 1);
    }
}

static double eval(rwkv_logreg *m, const rwkv_logreg_opts *o, const double *theta, double *g,
                   const double *X, const int *y, int n) {
    return o->single ? loss_single(m, theta, g, y, n, o->l2) : rwkv_logreg_loss(m, theta, g, X, y, n, o->l2);
}

rwkv_status rwkv_logreg_fit(rwkv_logreg *m, const double *X, const int *y, int n,
                            const rwkv_logreg_opts *o) {
    if (n < 1 || n > m->n_max) return rwkv_error_set(RWKV_ERR_ARG, "logreg: %d rows (workspace holds %d)", n, m->n_max);
    for (int i = 0; i < n; i++)
        if (y[i] < 0 || y[i] >= m->K) return rwkv_error_set(RWKV_ERR_ARG, "logreg: label %d of row %d is outside [0, %d)", y[i], i, m->K);
    int dim = m->dim, n_pairs = 0, newest = RWKV_LOGREG_HISTORY - 1;
    if (o->single)
        for (size_t j = 0; j < (size_t)n * m->p; j++) m->Xf[j] = (float)X[j];
    double f = eval(m, o, m->theta, m->g, X, y, n);
    m->iters = 0;
    m->converged = 0;
    for (; m->iters < o->max_iter; m->iters++) {
        m->gmax = max_abs(m->g, dim);
        if (m->gmax <= o->gtol) { m->converged = 1; break; }
        direction(m, n_pairs, newest);
        double gd = dot(m->g, m->dir, dim);
        if (gd >= 0) { // not a descent direction: restart from steepest descent
            n_pairs = 0;
            for (int j = 0; j < dim; j++) m->dir[j] = -m->g[j];
            gd = dot(m->g, m->dir, dim);
        }
        double step = n_pairs ? 1.0 : fmin(1.0, 1.0 / sqrt(dot(m->g, m->g, dim))), f_new = f;
        int ok = 0;
        for (int t = 0; t < LOGREG_MAX_SHRINK; t++, step *= LOGREG_BACKTRACK) {
            for (int j = 0; j < dim; j++) m->theta_new[j] = m->theta[j] + step * m->dir[j];
            f_new = eval(m, o, m->theta_new, m->g_new, X, y, n);
            if (isfinite(f_new) && f_new <= f + LOGREG_ARMIJO_C1 * step * gd) { ok = 1; break; }
        }
        if (!ok) { m->converged = 1; break; } // no decrease possible at this precision: the optimum
        newest = (newest + 1) % RWKV_LOGREG_HISTORY;
        double *s = m->S + (size_t)newest * dim, *yv = m->Yh + (size_t)newest * dim;
        for (int j = 0; j < dim; j++) s[j] = m->theta_new[j] - m->theta[j], yv[j] = m->g_new[j] - m->g[j];
        double sy = dot(s, yv, dim);
        if (sy > LOGREG_CURV_EPS * sqrt(dot(s, s, dim) * dot(yv, yv, dim))) {
            m->rho[newest] = 1.0 / sy;
            if (n_pairs < RWKV_LOGREG_HISTORY) n_pairs++;
        } else {
            newest = (newest - 1 + RWKV_LOGREG_HISTORY) % RWKV_LOGREG_HISTORY; // drop the pair
        }
        memcpy(m->theta, m->theta_new, (size_t)dim * sizeof(double));
        memcpy(m->g, m->g_new, (size_t)dim * sizeof(double));
        double df = f - f_new;
        f = f_new;
        if (df <= o->ftol * fmax(1.0, fabs(f))) { m->iters++; m->converged = 1; break; }
    }
    m->loss = f;
    m->gmax = max_abs(m->g, dim);
    if (m->gmax <= o->gtol) m->converged = 1; // the last step reached the tolerance
    if (!isfinite(f)) return rwkv_error_set(RWKV_ERR_NUMERIC, "logreg: the loss became %g", f);
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
