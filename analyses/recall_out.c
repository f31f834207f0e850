// recall_out.c: what a recall sweep writes: the per-cell and per-example CSVs, the paired
// comparison of two prompt orders, and the heatmap and accuracy plots.
#include "recall.h"
#include "plot.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

void rwkv_recall_write_cells(FILE *f, const char *task, const char *const *order_names,
                             rwkv_recall_cell *const *cells, int orders, int n_cells) {
    fputs(RWKV_RECALL_CSV_HEADER "\n", f);
    for (int o = 0; o < orders; o++)
        for (int i = 0; i < n_cells; i++) {
            const rwkv_recall_cell *c = &cells[o][i];
            fprintf(f, "%s,%s,%d,", task, order_names[o], c->length);
            if (!isnan(c->depth)) fprintf(f, "%.6g", c->depth); // empty for tasks without one
            fprintf(f, ",%d,%d,%.6f,%.9g,%.9g,%.6f,%.6f,%.6f\n", c->trials, c->correct, c->accuracy,
                    c->logprob, c->token_logprob, c->token_accuracy, c->ci_lo, c->ci_hi);
        }
}

void rwkv_recall_write_examples(FILE *f, const char *task, const char *const *order_names,
                                rwkv_recall_cell *const *cells, rwkv_recall_example *const *examples,
                                int orders, int n_cells, int trials) {
    fputs(RWKV_RECALL_EXAMPLES_HEADER "\n", f);
    for (int o = 0; o < orders; o++)
        for (int i = 0; i < n_cells; i++)
            for (int k = 0; k < trials; k++) {
                const rwkv_recall_cell *c = &cells[o][i];
                const rwkv_recall_example *e = examples[o] + (size_t)i * trials + k;
                fprintf(f, "%s,%s,%d,", task, order_names[o], c->length);
                if (!isnan(c->depth)) fprintf(f, "%.6g", c->depth);
                fprintf(f, ",%d,%d,%.9g,%d,%d\n", k, e->correct, e->logprob, e->answer_tokens, e->tokens_correct);
            }
}

void rwkv_recall_paired(rwkv_recall_pair *out, rwkv_recall_cell *const cells[2],
                        rwkv_recall_example *const examples[2], int li, int n_depths, int trials) {
    memset(out, 0, sizeof *out);
    out->length = cells[0][(size_t)li * n_depths].length;
    out->n = (int64_t)n_depths * trials;
    for (size_t i = (size_t)li * out->n; i < (size_t)(li + 1) * out->n; i++) {
        int a = examples[0][i].correct, b = examples[1][i].correct;
        out->correct[0] += a, out->correct[1] += b;
        out->b += a && !b;
        out->c += !a && b;
    }
    for (int o = 0; o < 2; o++) {
        out->acc[o] = (double)out->correct[o] / (double)out->n;
        rwkv_recall_wilson(out->correct[o], out->n, RWKV_RECALL_Z95, &out->lo[o], &out->hi[o]);
    }
    out->p = rwkv_recall_mcnemar_p(out->b, out->c);
}

void rwkv_recall_sibling(char *buf, size_t n, const char *csv, const char *suffix) {
    const char *dot = strrchr(csv, '.'), *slash = strrchr(csv, '/');
    size_t stem = (dot && (!slash || dot > slash)) ? (size_t)(dot - csv) : strlen(csv);
    snprintf(buf, n, "%.*s%s", (int)stem, csv, suffix);
}

// The accuracy of order o per (depth, length) into z (rows depths), and pooled over depths
// per length into y, lo, hi (n_lengths each) with its Wilson interval.
static void pool(const rwkv_recall_cell *cells, int nl, int nd, double *z, double *y, double *lo, double *hi) {
    for (int li = 0; li < nl; li++) {
        int64_t k = 0, n = 0;
        for (int di = 0; di < nd; di++) {
            const rwkv_recall_cell *c = &cells[li * nd + di];
            z[di * nl + li] = c->accuracy;
            k += c->correct, n += c->trials;
        }
        y[li] = (double)k / (double)n; // pooled over depths (equal trials: their mean)
        rwkv_recall_wilson(k, n, RWKV_RECALL_Z95, &lo[li], &hi[li]);
    }
}

rwkv_status rwkv_recall_plots(const char *csv, const char *task, rwkv_recall_cell *const *cells, int orders,
                              const int *lengths, int nl, const double *depths, int nd) {
    static const char *const ORDER_NAMES[2] = {"query after", "query first"};
    if (orders < 1 || orders > 2) return rwkv_error_set(RWKV_ERR_ARG, "recall plots: %d prompt orders (1 or 2)", orders);
    double *z = calloc((size_t)nl * nd, sizeof *z), *x = calloc(nl, sizeof *x),
           *y = calloc((size_t)2 * nl, sizeof *y), *lo = calloc((size_t)2 * nl, sizeof *lo),
           *hi = calloc((size_t)2 * nl, sizeof *hi);
    rwkv_status st = (!z || !x || !y || !lo || !hi) ? rwkv_error_set(RWKV_ERR_NOMEM, "recall plots") : RWKV_OK;
    char out[4096], title[256];
    for (int li = 0; li < nl && !st; li++) x[li] = lengths[li];
    for (int o = 0; o < orders && !st; o++) {
        pool(cells[o], nl, nd, z, y + o * nl, lo + o * nl, hi + o * nl);
        if (nd > 1 || !strcmp(task, "passkey")) {
            rwkv_recall_sibling(out, sizeof out, csv, o ? "_heatmap_query_first.png" : "_heatmap.png");
            snprintf(title, sizeof title, "%s recall accuracy (%s)", task, ORDER_NAMES[o]);
            rwkv_plot_opts po = {.title = title, .xlabel = "context length (tokens)",
                                 .ylabel = "needle depth", .width = 900, .height = 600};
            st = rwkv_plot_heatmap(out, &po, z, nd, nl, x, depths, "accuracy");
        }
    }
    if (!st) {
        rwkv_recall_sibling(out, sizeof out, csv, "_accuracy.png");
        snprintf(title, sizeof title, "%s recall accuracy vs length (95%% Wilson intervals)", task);
        rwkv_plot_opts po = {.title = title, .xlabel = "context length (tokens)",
                             .ylabel = "accuracy (all depths)", .width = 900, .height = 600,
                             .logx = nl > 1 && lengths[nl - 1] >= 4 * lengths[0]};
        st = rwkv_plot_lines_ci(out, &po, x, y, lo, hi, nl, orders, (const char *const *)ORDER_NAMES);
    }
    free(lo);
    free(hi);
    free(z);
    free(x);
    free(y);
    return st;
}
