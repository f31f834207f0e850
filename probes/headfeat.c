// headfeat.c: one head's (N, N) state as features, flattened or as singular triplets (GSL's
// Golub-Reinsch SVD, gsl_linalg_SV_decomp, on a double copy of each row's matrix).
#include "headfeat.h"

#include <gsl/gsl_errno.h>
#include <gsl/gsl_linalg.h>
#include <math.h>
#include <string.h>

int rwkv_headfeat_width(int N, int k) { return k ? k * (2 * N + 1) : N * N; }

typedef struct {
    gsl_matrix *A, *V; // (N, N): S, then U in place of it; V
    gsl_vector *s, *work; // (N)
} svd_ws;

static void svd_ws_free(svd_ws *w) {
    gsl_matrix_free(w->A);
    gsl_matrix_free(w->V);
    gsl_vector_free(w->s);
    gsl_vector_free(w->work);
}

static int svd_ws_alloc(svd_ws *w, int N) {
    w->A = gsl_matrix_alloc(N, N), w->V = gsl_matrix_alloc(N, N);
    w->s = gsl_vector_alloc(N), w->work = gsl_vector_alloc(N);
    return w->A && w->V && w->s && w->work;
}

// The top-k triplets of S (N, N) into out (k (2N + 1)), in the layout of headfeat.h.
static int svd_row(rwkv_real *out, const rwkv_real *S, int N, int k, svd_ws *w) {
    for (int i = 0; i < N; i++)
        for (int j = 0; j < N; j++) gsl_matrix_set(w->A, i, j, S[(size_t)i * N + j]);
    if (gsl_linalg_SV_decomp(w->A, w->V, w->s, w->work)) return 0; // S = U diag(s) V^T, s descending
    for (int c = 0; c < k; c++) {
        int big = 0;
        for (int i = 1; i < N; i++)
            if (fabs(gsl_matrix_get(w->A, i, c)) > fabs(gsl_matrix_get(w->A, big, c))) big = i;
        double sign = gsl_matrix_get(w->A, big, c) < 0 ? -1 : 1; // flips u_c and v_c together
        out[c] = (rwkv_real)gsl_vector_get(w->s, c);
        for (int i = 0; i < N; i++) {
            out[k + (size_t)c * N + i] = (rwkv_real)(sign * gsl_matrix_get(w->A, i, c));
            out[k + (size_t)(k + c) * N + i] = (rwkv_real)(sign * gsl_matrix_get(w->V, i, c));
        }
    }
    return 1;
}

rwkv_status rwkv_headfeat_extract(rwkv_real *out, const rwkv_real *X, int64_t rows, int H, int N, int head,
                                  int k) {
    if (head < 0 || head >= H || N < 1 || k < 0 || k > N)
        return rwkv_error_set(RWKV_ERR_ARG, "head features: head %d of %d, top %d of N = %d", head, H, k, N);
    size_t in_w = (size_t)H * N * N, out_w = (size_t)rwkv_headfeat_width(N, k), off = (size_t)head * N * N;
    if (!k) {
        for (int64_t r = 0; r < rows; r++) memcpy(out + r * out_w, X + r * in_w + off, out_w * sizeof *out);
        return RWKV_OK;
    }
    gsl_error_handler_t *old = gsl_set_error_handler_off();
    int failed = 0, nomem = 0;
    #pragma omp parallel reduction(|| : failed, nomem)
    {
        svd_ws w = {0};
        if (!svd_ws_alloc(&w, N)) nomem = 1;
        #pragma omp for schedule(static)
        for (int64_t r = 0; r < rows; r++)
            if (!nomem && !failed && !svd_row(out + r * out_w, X + r * in_w + off, N, k, &w)) failed = 1;
        svd_ws_free(&w);
    }
    gsl_set_error_handler(old);
    if (nomem) return rwkv_error_set(RWKV_ERR_NOMEM, "head features: SVD workspace (N = %d)", N);
    if (failed) return rwkv_error_set(RWKV_ERR_NUMERIC, "head features: the SVD of a head %d matrix failed", head);
    return RWKV_OK;
}
