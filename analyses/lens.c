// lens.c: the logit lens (see lens.h) and the lens CSV format.
#include "lens.h"

#include "../core/compute/blas.h"
#include "../core/compute/kernels.h"
#include "../core/compute/matvec.h"
#include "../core/base/file.h"
#include "../core/inspect/record.h"
#include "plot.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define LENS_ROWS_PER_PASS 256 // positions projected at once: bounds the (n, V) buffers

void rwkv_lens_project(const rwkv_model *m, rwkv_real *out, const rwkv_real *x, int n, rwkv_real *scratch) {
    const int C = m->cfg.n_embd, V = m->cfg.n_vocab;
    rwkv_layernorm(scratch, x, m->w.ln_out_w, m->w.ln_out_b, n, C);
    if (m->w.head) { // the model's head, as forward.c applies it
        rwkv_blas_matmul_nt(out, scratch, m->w.head, n, V, C, 0);
        return;
    }
    for (int i = 0; i < n; i++) // weights in the file's type: the head's typed view, row by row
        rwkv_matvec(out + (size_t)i * V, m->mats.head, scratch + (size_t)i * C, V, C);
}

void rwkv_lens_result_free(rwkv_lens_result *r) {
    if (!r) return;
    free(r->ce);
    free(r->entropy);
    free(r->kl);
    free(r->top1);
    free(r);
}

void rwkv_lens_row_name(char *buf, size_t size, int row) {
    if (row == 0) snprintf(buf, size, "emb");
    else snprintf(buf, size, "blocks.%d", row - 1);
}

// log softmax of logits (V) into lp (V), in double; returns the argmax.
static int log_softmax(double *lp, const rwkv_real *logits, int V) {
    int best = 0;
    for (int i = 1; i < V; i++) best = logits[i] > logits[best] ? i : best;
    double mx = logits[best], z = 0;
    for (int i = 0; i < V; i++) z += exp((double)logits[i] - mx);
    double lz = mx + log(z);
    for (int i = 0; i < V; i++) lp[i] = (double)logits[i] - lz;
    return best;
}

typedef struct {
    rwkv_real *logits, *scratch; // (n, V), (n, C)
    double *lp, *lp_final;       // (V), (n, V)
    int *top_final;              // (n)
} lens_buf;

// Statistics of rows x (n, C) at positions t0 .. t0+n-1 into row `row` of r.
static void lens_rows(const rwkv_model *m, rwkv_lens_result *r, int row, const rwkv_real *x, int64_t t0, int n,
                      const int *tokens, lens_buf *b, int final) {
    const int V = m->cfg.n_vocab;
    rwkv_lens_project(m, b->logits, x, n, b->scratch);
    for (int i = 0; i < n; i++) {
        int64_t t = t0 + i;
        size_t k = (size_t)row * r->T + (size_t)t;
        double *lp = final ? b->lp_final + (size_t)i * V : b->lp;
        int top = log_softmax(lp, b->logits + (size_t)i * V, V);
        if (final) b->top_final[i] = top;
        const double *lf = b->lp_final + (size_t)i * V;
        double h = 0, kl = 0;
        for (int v = 0; v < V; v++) {
            double p = exp(lp[v]), pf = exp(lf[v]);
            h -= p * lp[v];             // entropy
            kl += pf * (lf[v] - lp[v]); // KL(p_final || p_row)
        }
        r->entropy[k] = h;
        r->kl[k] = final ? 0 : kl;
        r->top1[k] = top == b->top_final[i];
        r->ce[k] = t + 1 < r->T ? -lp[tokens[t + 1]] : NAN;
    }
}

static rwkv_status record_resid(rwkv_record **rec, const rwkv_model *m, const int *tokens, int64_t T, int seq) {
    const int L = m->cfg.n_layer;
    uint32_t *mask = rwkv_calloc((size_t)L + 1, sizeof *mask, "lens mask");
    if (!mask) return RWKV_ERR_NOMEM;
    for (int l = 0; l < L; l++) mask[l] = 1u << RWKV_TAP_RESID_IN;
    mask[L] = 1u << RWKV_TAP_RESID_OUT;
    rwkv_state *s = NULL;
    rwkv_status st = rwkv_record_alloc(rec, m->cfg, T, mask);
    if (!st) st = rwkv_state_alloc(&s, m->cfg);
    if (!st) st = rwkv_forward_run(m, s, tokens, T, seq, &(*rec)->hook);
    free(mask);
    rwkv_state_free(s);
    return st;
}

rwkv_status rwkv_lens_logit(rwkv_lens_result **out, const rwkv_model *m, const int *tokens, int64_t T, int seq) {
    *out = NULL;
    if (T < 1) return rwkv_error_set(RWKV_ERR_ARG, "logit lens: empty input");
    const int L = m->cfg.n_layer, C = m->cfg.n_embd, V = m->cfg.n_vocab;
    const int P = (int)(T < LENS_ROWS_PER_PASS ? T : LENS_ROWS_PER_PASS);
    rwkv_lens_result *r = rwkv_calloc(1, sizeof *r, "lens result");
    if (!r) return RWKV_ERR_NOMEM;
    snprintf(r->name, sizeof r->name, "logit");
    r->n_rows = L + 1;
    r->T = T;
    size_t n = (size_t)r->n_rows * (size_t)T;
    lens_buf b = {0};
    rwkv_record *rec = NULL;
    rwkv_status st = RWKV_OK;
    r->ce = rwkv_calloc(n, sizeof(double), "lens");
    r->entropy = rwkv_calloc(n, sizeof(double), "lens");
    r->kl = rwkv_calloc(n, sizeof(double), "lens");
    r->top1 = rwkv_calloc(n, sizeof(double), "lens");
    b.logits = rwkv_calloc((size_t)P * V, sizeof(rwkv_real), "lens logits");
    b.scratch = rwkv_calloc((size_t)P * C, sizeof(rwkv_real), "lens scratch");
    b.lp = rwkv_calloc((size_t)V, sizeof(double), "lens");
    b.lp_final = rwkv_calloc((size_t)P * V, sizeof(double), "lens");
    b.top_final = rwkv_calloc((size_t)P, sizeof(int), "lens");
    if (!r->ce || !r->entropy || !r->kl || !r->top1 || !b.logits || !b.scratch || !b.lp || !b.lp_final || !b.top_final)
        st = RWKV_ERR_NOMEM;
    if (!st) st = record_resid(&rec, m, tokens, T, seq);
    for (int64_t t0 = 0; !st && t0 < T; t0 += P) {
        int np = (int)(T - t0 < P ? T - t0 : P);
        // The final row first: every other row is compared with it.
        lens_rows(m, r, L, rwkv_record_rows(rec, L, RWKV_TAP_RESID_OUT) + (size_t)t0 * C, t0, np, tokens, &b, 1);
        for (int row = 0; row < L; row++)
            lens_rows(m, r, row, rwkv_record_rows(rec, row, RWKV_TAP_RESID_IN) + (size_t)t0 * C, t0, np, tokens, &b, 0);
    }
    rwkv_record_free(rec);
    free(b.logits);
    free(b.scratch);
    free(b.lp);
    free(b.lp_final);
    free(b.top_final);
    if (st) {
        rwkv_lens_result_free(r);
        return st;
    }
    *out = r;
    return RWKV_OK;
}

rwkv_status rwkv_lens_write_csv(const rwkv_lens_result *r, const int *tokens, const char *path) {
    rwkv_atomic_file out;
    rwkv_status st = rwkv_file_atomic_open(&out, path, 1, 1);
    if (st) return st;
    FILE *f = out.f;
    fprintf(f, "lens,row,layer,position,token,next_token,ce,entropy,kl_final,top1\n");
    for (int row = 0; row < r->n_rows; row++) {
        char name[24];
        rwkv_lens_row_name(name, sizeof name, row);
        for (int64_t t = 0; t < r->T; t++) {
            size_t k = (size_t)row * r->T + (size_t)t;
            fprintf(f, "%s,%s,%d,%lld,%d,%d,%.9g,%.9g,%.9g,%g\n", r->name, name, row - 1, (long long)t, tokens[t],
                    t + 1 < r->T ? tokens[t + 1] : -1, r->ce[k], r->entropy[k], r->kl[k], r->top1[k]);
        }
    }
    return rwkv_file_atomic_commit(&out);
}

rwkv_status rwkv_lens_write_summary(const rwkv_lens_result *r, const char *path, double *means) {
    rwkv_atomic_file out = {0};
    rwkv_status st = path ? rwkv_file_atomic_open(&out, path, 1, 1) : RWKV_OK;
    if (st) return st;
    FILE *f = out.f;
    if (f) fprintf(f, "lens,row,layer,ce,entropy,kl_final,top1\n");
    for (int row = 0; row < r->n_rows; row++) {
        double s[4] = {0, 0, 0, 0};
        int64_t nce = 0;
        for (int64_t t = 0; t < r->T; t++) {
            size_t k = (size_t)row * r->T + (size_t)t;
            if (t + 1 < r->T) s[0] += r->ce[k], nce++;
            s[1] += r->entropy[k];
            s[2] += r->kl[k];
            s[3] += r->top1[k];
        }
        s[0] = nce ? s[0] / nce : NAN;
        for (int j = 1; j < 4; j++) s[j] /= (double)r->T;
        if (means) memcpy(means + 4 * row, s, sizeof s);
        char name[24];
        rwkv_lens_row_name(name, sizeof name, row);
        if (f) fprintf(f, "%s,%s,%d,%.9g,%.9g,%.9g,%.9g\n", r->name, name, row - 1, s[0], s[1], s[2], s[3]);
    }
    return f ? rwkv_file_atomic_commit(&out) : RWKV_OK;
}

rwkv_status rwkv_lens_plot(const rwkv_lens_result *r, const double *means, const char *png) {
    int n = r->n_rows;
    double *x = rwkv_calloc((size_t)n, sizeof *x, "lens plot"), *y = rwkv_calloc((size_t)4 * n, sizeof *y, "lens plot");
    rwkv_status st = x && y ? RWKV_OK : RWKV_ERR_NOMEM;
    for (int row = 0; !st && row < n; row++) {
        x[row] = row - 1;
        for (int j = 0; j < 4; j++) y[(size_t)j * n + row] = means[4 * row + j];
    }
    static const char *const names[] = {"cross-entropy (nats)", "entropy (nats)", "KL(final || layer) (nats)",
                                        "top-1 agreement"};
    char title[96];
    snprintf(title, sizeof title, "%s lens (layer -1 = embedding)", r->name);
    rwkv_plot_opts o = {.title = title, .xlabel = "layer", .ylabel = "mean over positions"};
    if (!st) st = rwkv_plot_lines(png, &o, x, y, n, 4, names);
    free(x);
    free(y);
    return st;
}
