// patching_pairs.c: the patching sweep over N prompt pairs (see patching.h): per cell the mean
// recovery over the pairs where it is defined, its sample sd and 95% t interval.
#include "patching.h"

#include "../core/base/file.h"

#include <gsl/gsl_cdf.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define PAIRS_CI 0.975 // two-sided 95% interval: the t quantile at 97.5%

void rwkv_patch_pairs_free(rwkv_patch_pairs *p) {
    if (!p) return;
    for (int i = 0; i < p->n; i++) {
        free(p->items[i].clean);
        free(p->items[i].corrupt);
        free(p->items[i].metric);
    }
    free(p->items);
    memset(p, 0, sizeof *p);
}

// Encodes one prompt of a pair and checks its ids against the vocabulary.
static rwkv_status encode(rwkv_tokenizer *tok, const char *text, int V, int **ids, size_t *n) {
    rwkv_status st = rwkv_tokenizer_encode(tok, text, strlen(text), ids, n);
    for (size_t i = 0; !st && i < *n; i++)
        if ((*ids)[i] >= V) st = rwkv_error_set(RWKV_ERR_ARG, "token %d is outside the model's vocabulary [0, %d)", (*ids)[i], V);
    return st;
}

// One line CLEAN<TAB>CORRUPT[<TAB>METRIC] (modified in place) into pair; every prompt must
// have T0 tokens (0: the clean prompt's number, for the first pair).
static rwkv_status read_pair(rwkv_patch_pair *pair, char *line, rwkv_tokenizer *tok, int V, int64_t T0) {
    char *tab = strchr(line, '\t');
    if (!tab) return rwkv_error_set(RWKV_ERR_FORMAT, "expected CLEAN<TAB>CORRUPT[<TAB>METRIC]");
    *tab = 0;
    char *x = tab + 1, *tab2 = strchr(x, '\t');
    if (tab2) *tab2 = 0;
    if (tab2 && !(pair->metric = strdup(tab2 + 1))) return rwkv_error_set(RWKV_ERR_NOMEM, "out of memory");
    size_t nc = 0, nx = 0;
    rwkv_status st = encode(tok, line, V, &pair->clean, &nc);
    if (!st) st = encode(tok, x, V, &pair->corrupt, &nx);
    int64_t want = T0 ? T0 : (int64_t)nc;
    if (!st && (nc != nx || (int64_t)nc != want))
        st = rwkv_error_set(RWKV_ERR_ARG, "the prompts have %zu and %zu tokens; every prompt needs %lld", nc, nx,
                            (long long)want);
    pair->T = (int64_t)nc;
    return st;
}

rwkv_status rwkv_patch_pairs_read(rwkv_patch_pairs *out, const char *path, rwkv_tokenizer *tok, int n_vocab) {
    memset(out, 0, sizeof *out);
    snprintf(out->path, sizeof out->path, "%s", path);
    unsigned char *buf;
    size_t len;
    rwkv_status st = rwkv_file_read(path, &buf, &len);
    if (st) return st;
    int lineno = 0, cap = 0;
    for (char *s = (char *)buf, *line; !st && (line = strsep(&s, "\n"));) {
        lineno++;
        line[strcspn(line, "\r")] = 0;
        if (!s && !*line) break; // the end of the last line
        if (line[0] == '#' || line[0] == 0) continue;
        if (out->n == cap) {
            cap = cap ? 2 * cap : 16;
            rwkv_patch_pair *items = realloc(out->items, (size_t)cap * sizeof *items);
            if (!items) {
                st = rwkv_error_set(RWKV_ERR_NOMEM, "%s: out of memory for %d pairs", path, cap);
                break;
            }
            out->items = items;
        }
        rwkv_patch_pair *pair = &out->items[out->n++];
        *pair = (rwkv_patch_pair){.line = lineno};
        st = read_pair(pair, line, tok, n_vocab, out->n > 1 ? out->items[0].T : 0);
        if (st) st = rwkv_error_wrap(st, "%s: line %d: ", path, lineno);
    }
    free(buf);
    if (!st && !out->n) st = rwkv_error_set(RWKV_ERR_FORMAT, "%s: no prompt pairs", path);
    if (st) rwkv_patch_pairs_free(out);
    return st;
}

void rwkv_patch_pairs_result_free(rwkv_patch_pairs_result *r) {
    if (!r) return;
    rwkv_patch_result_free(r->r);
    free(r->n);
    free(r->sd);
    free(r->ci_lo);
    free(r->ci_hi);
    free(r);
}

// The mean into r->r->recovery (what the heatmaps draw), its sd and interval, from the sums.
static void pairs_stats(rwkv_patch_pairs_result *r, const double *sum, const double *sum2, size_t cells) {
    for (size_t c = 0; c < cells; c++) {
        int n = r->n[c];
        double mean = n ? sum[c] / n : NAN;
        double sd = n > 1 ? sqrt(fmax(0, (sum2[c] - n * mean * mean) / (n - 1))) : NAN; // sample sd
        double half = n > 1 ? gsl_cdf_tdist_Pinv(PAIRS_CI, n - 1) * sd / sqrt(n) : NAN; // t interval
        r->r->recovery[c] = isnan(r->r->metric[c]) ? NAN : mean;
        r->sd[c] = sd;
        r->ci_lo[c] = mean - half;
        r->ci_hi[c] = mean + half;
    }
}

rwkv_status rwkv_patch_pairs_sweep(rwkv_patch_pairs_result **out, const rwkv_model *m, const rwkv_patch_pairs *p,
                                   const rwkv_patch_opts *o, const char *default_metric, rwkv_tokenizer *tok,
                                   void (*progress)(void *ctx, int i, const rwkv_patch_pair *pair,
                                                    const rwkv_patch_result *r),
                                   void *ctx) {
    *out = NULL;
    if (p->n < 1) return rwkv_error_set(RWKV_ERR_ARG, "%s: no prompt pairs", p->path);
    rwkv_patch_pairs_result *r = rwkv_calloc(1, sizeof *r, "pairs result");
    if (!r) return RWKV_ERR_NOMEM;
    double *sum = NULL, *sum2 = NULL;
    size_t cells = 0;
    rwkv_status st = RWKV_OK;
    for (int i = 0; i < p->n && !st; i++) {
        const rwkv_patch_pair *pair = &p->items[i];
        const char *metric = pair->metric ? pair->metric : default_metric;
        rwkv_patch_opts po = *o;
        if (!metric) st = rwkv_error_set(RWKV_ERR_ARG, "no METRIC field and no --metric");
        if (!st) st = rwkv_patch_metric_parse_text(&po.metric, metric, tok, m->cfg.n_vocab);
        rwkv_patch_result_free(r->r); // the last pair's result is kept: shape and unswept cells
        r->r = NULL;
        if (!st) st = rwkv_patch_sweep(&r->r, m, pair->clean, pair->corrupt, pair->T, &po);
        if (!st && !sum) {
            cells = (size_t)r->r->n_taps * r->r->n_layer * (size_t)r->r->T;
            sum = rwkv_calloc(cells, sizeof *sum, "pairs sums");
            sum2 = rwkv_calloc(cells, sizeof *sum2, "pairs sums");
            r->n = rwkv_calloc(cells, sizeof *r->n, "pairs counts");
            if (!sum || !sum2 || !r->n) st = RWKV_ERR_NOMEM;
        }
        if (st) {
            st = rwkv_error_wrap(st, "%s: line %d: ", p->path, pair->line);
            break;
        }
        r->pairs++;
        if (r->r->m_clean == r->r->m_corrupt) r->undefined++; // no recovery defined anywhere
        else
            for (size_t c = 0; c < cells; c++) {
                double x = r->r->recovery[c];
                if (!isnan(x)) sum[c] += x, sum2[c] += x * x, r->n[c]++;
            }
        if (progress) progress(ctx, i, pair, r->r);
    }
    if (!st) {
        r->sd = rwkv_calloc(cells, sizeof *r->sd, "pairs sd");
        r->ci_lo = rwkv_calloc(cells, sizeof *r->ci_lo, "pairs interval");
        r->ci_hi = rwkv_calloc(cells, sizeof *r->ci_hi, "pairs interval");
        if (!r->sd || !r->ci_lo || !r->ci_hi) st = RWKV_ERR_NOMEM;
        else pairs_stats(r, sum, sum2, cells);
    }
    free(sum);
    free(sum2);
    if (st) rwkv_patch_pairs_result_free(r);
    else *out = r;
    return st;
}
