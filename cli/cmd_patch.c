// cmd_patch.c: rwkvscope patch: an activation patching sweep between a clean and a corrupt
// prompt; every (tap, layer, position) cell is patched from clean into corrupt, one at a time.
#include "analyses/patching.h"
#include "analyses/plot.h"
#include "core/base/file.h"
#include "core/inspect/intervene.h"
#include "cli.h"
#include "input.h"
#include "options.h"

#include <errno.h>
#include <fnmatch.h>
#include <gsl/gsl_cdf.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

const char cmd_patch_summary[] = "activation patching sweep: recovery of a metric per (tap, layer, position)";

#define PATCH_PAIR_LINE_MAX 65536
#define PATCH_CB_RANGE 1.0 // heatmaps: recovery on a fixed [-1, 1] scale, white at 0

static void usage(FILE *f) {
    fprintf(f, "usage: rwkvscope patch MODEL --clean TEXT --corrupt TEXT --taps PATTERN --metric SPEC [options]\n"
           "       rwkvscope patch MODEL --pairs FILE --taps PATTERN [--metric SPEC] [options]\n\n"
           "Runs the clean and the corrupt prompt once each, then patches every (tap, layer, position)\n"
           "cell from the clean run into the corrupt one, one at a time, and reports the normalised\n"
           "recovery of the metric at the last position:\n"
           "    recovery = (metric(patched) - metric(corrupt)) / (metric(clean) - metric(corrupt)).\n"
           "Cells in the prompts' shared prefix change nothing and are not rerun; every other cell\n"
           "restarts from the corrupt run's state before its position.\n\n"
           "options:\n"
           "  --clean TEXT         the clean prompt (encoded with --tokenizer; default bytes)\n"
           "  --corrupt TEXT       the corrupt prompt; must have as many tokens as the clean one\n"
           "  --clean-tokens LIST, --corrupt-tokens LIST   the prompts as token ids instead\n"
           "  --pairs FILE         sweep N prompt pairs instead, one per line: CLEAN<TAB>CORRUPT[<TAB>METRIC]\n"
           "                       (METRIC overrides --metric for that pair; every prompt must have\n"
           "                       as many tokens as the first). The CSV then has per cell the mean\n"
           "                       recovery over the pairs and its 95%% t interval:\n"
           "                       tap,layer,position,pairs,recovery,ci_lo,ci_hi,sd\n"
           "  --tokenizer SPEC     neox:tokenizer.json | world:vocab.txt | bytes\n"
           "  --taps PATTERN       comma-separated globs over block tap names, e.g. resid_in,state_* or '*'\n"
           "  --metric SPEC        logit-diff:A,B | logit:A | logprob:A; A and B are token ids, or text\n"
           "                       that encodes to one token\n"
           "  --positions LIST     positions to sweep, e.g. 10-20,last (default: all)\n"
           "  --layers LIST        layers to sweep, e.g. 0-3,7 (default: all)\n"
           "  -o, --output FILE    CSV output (default or -: stdout): tap,layer,position,clean_token,\n"
           "                       corrupt_token,metric,recovery\n"
           "  --plot STEM          heatmaps (layer x position) of the recovery, STEM_<tap>.png, each\n"
           "                       with its data beside it (default: beside -o, out_<tap>.png); a\n"
           "                       diverging scale centred on 0, fixed to [-1, 1] (beyond: saturated)\n"
           "  --no-plot            no heatmaps\n"
           "  --seq                run in sequential (RNN) mode (default: parallel)\n"
           "  --naive              rerun every cell from position 0 (slow; to check the reuse)\n"
           "  --checkpoint-every N keep the corrupt run's state every N positions (default: every\n"
           "                       position while the states fit in 256 MB)\n"
           "  --force              replace an existing -o FILE\n"
           CLI_MODEL_HELP);
}

typedef struct {
    const char *model, *clean, *corrupt, *clean_ids, *corrupt_ids, *tokenizer, *taps, *metric, *out, *positions,
        *layers, *plot, *pairs;
    int seq, naive, no_plot, force;
    long every;
    cli_model_opts mo;
} patch_args;

enum { O_CLEAN = CLI_OPT_USER, O_CORRUPT, O_CLEAN_TOKENS, O_CORRUPT_TOKENS, O_TOKENIZER, O_TAPS, O_METRIC,
       O_POSITIONS, O_LAYERS, O_PLOT, O_PAIRS, O_SEQ, O_NAIVE, O_NO_PLOT, O_EVERY };

static int parse_args(patch_args *a, int argc, char **argv) {
    static const struct option OPTS[] = {
        {"clean", required_argument, NULL, O_CLEAN}, {"corrupt", required_argument, NULL, O_CORRUPT},
        {"clean-tokens", required_argument, NULL, O_CLEAN_TOKENS},
        {"corrupt-tokens", required_argument, NULL, O_CORRUPT_TOKENS},
        {"tokenizer", required_argument, NULL, O_TOKENIZER}, {"taps", required_argument, NULL, O_TAPS},
        {"metric", required_argument, NULL, O_METRIC}, {"positions", required_argument, NULL, O_POSITIONS},
        {"layers", required_argument, NULL, O_LAYERS}, {"plot", required_argument, NULL, O_PLOT},
        {"pairs", required_argument, NULL, O_PAIRS}, {"seq", no_argument, NULL, O_SEQ},
        {"naive", no_argument, NULL, O_NAIVE}, {"no-plot", no_argument, NULL, O_NO_PLOT},
        {"checkpoint-every", required_argument, NULL, O_EVERY}, CLI_OPTIONS_MODEL, CLI_OPTIONS_OUTPUT,
        CLI_OPTIONS_END};
    const char **slots[] = {[O_CLEAN - CLI_OPT_USER] = &a->clean, &a->corrupt, &a->clean_ids, &a->corrupt_ids,
                            &a->tokenizer, &a->taps, &a->metric, &a->positions, &a->layers, &a->plot, &a->pairs};
    cli_parser p = {.cmd = "patch", .help = usage, .opts = OPTS, .max_args = 1, .model = &a->mo, .out = &a->out,
                    .force = &a->force};
    const char *v;
    for (int c; (c = cli_opt_next(&p, argc, argv, &v)) != -1;) {
        if (c <= O_PAIRS) *slots[c - CLI_OPT_USER] = c == O_PAIRS ? cli_path_in(v) : v;
        else if (c == O_SEQ) a->seq = 1;
        else if (c == O_NAIVE) a->naive = 1;
        else if (c == O_NO_PLOT) a->no_plot = 1;
        else if (c == O_EVERY && !cli_parse_int("patch", "--checkpoint-every", v, 1, 1L << 40, &a->every)) return CLI_USAGE;
    }
    if (p.status) return p.status;
    a->model = p.args[0];
    if (!a->model) return cli_usage_error("patch", "missing MODEL");
    if (a->pairs && (a->clean || a->clean_ids || a->corrupt || a->corrupt_ids))
        return cli_usage_error("patch", "--pairs replaces --clean/--corrupt");
    if (!a->pairs && !!a->clean + !!a->clean_ids != 1) return cli_usage_error("patch", "give one of --clean or --clean-tokens (or --pairs FILE)");
    if (!a->pairs && !!a->corrupt + !!a->corrupt_ids != 1) return cli_usage_error("patch", "give one of --corrupt or --corrupt-tokens");
    if (!a->taps) return cli_usage_error("patch", "missing --taps PATTERN (e.g. resid_in,state_num or '*')");
    if (!a->metric && !a->pairs) return cli_usage_error("patch", "missing --metric (e.g. logit-diff:A,B)");
    if (!cli_check_output("patch", a->out, a->force)) return CLI_USAGE;
    if (a->out && !strcmp(a->out, "-")) a->out = NULL; // stdout, as without -o: no heatmaps beside it
    return CLI_OK;
}

// Block taps whose names match one of the comma-separated globs.
static rwkv_status select_taps(rwkv_patch_opts *o, const char *patterns) {
    char buf[512];
    snprintf(buf, sizeof buf, "%s", patterns);
    for (char *save = NULL, *p = strtok_r(buf, ",", &save); p; p = strtok_r(NULL, ",", &save)) {
        int hit = 0;
        for (int t = 0; t < RWKV_TAP_N_BLOCK; t++) {
            if (fnmatch(p, RWKV_TAP_NAMES[t], 0)) continue;
            hit = 1;
            int dup = 0;
            for (int k = 0; k < o->n_taps; k++) dup |= o->taps[k] == (rwkv_tap)t;
            if (!dup) o->taps[o->n_taps++] = (rwkv_tap)t;
        }
        if (!hit)
            return rwkv_error_set(RWKV_ERR_ARG, "--taps: '%s' matches no block tap (resid_in, att_in, att_r, att_gate, "
                                  "att_k, att_v, att_wkv, att_out, ffn_in, ffn_gate, ffn_k, ffn_out, state_*)", p);
    }
    if (!o->n_taps) return rwkv_error_set(RWKV_ERR_ARG, "--taps: empty pattern");
    return RWKV_OK;
}

// A metric token: an id, or text that encodes to exactly one token.
static rwkv_status metric_token(const char *s, size_t len, rwkv_tokenizer *tok, int *id) {
    char text[256];
    if (len == 0 || len >= sizeof text) return rwkv_error_set(RWKV_ERR_ARG, "--metric: empty or too long token '%.*s'", (int)len, s);
    memcpy(text, s, len);
    text[len] = 0;
    char *end;
    long v = strtol(text, &end, 10);
    if (!*end && v >= 0 && v <= INT32_MAX) {
        *id = (int)v;
        return RWKV_OK;
    }
    if (!tok) return rwkv_error_set(RWKV_ERR_ARG, "--metric: '%s' is not a token id (the prompts were given as ids)", text);
    int *ids;
    size_t n;
    rwkv_status st = rwkv_tokenizer_encode(tok, text, len, &ids, &n);
    if (st) return st;
    if (n != 1) st = rwkv_error_set(RWKV_ERR_ARG, "--metric: '%s' encodes to %zu tokens, expected one", text, n);
    else *id = ids[0];
    free(ids);
    return st;
}

// Rewrites "KIND:A[,B]" with token ids and parses it.
static rwkv_status parse_metric(rwkv_patch_metric *mt, const char *spec, rwkv_tokenizer *tok, int V) {
    const char *colon = strchr(spec, ':');
    if (!colon) return rwkv_patch_metric_parse(mt, spec, V);
    const char *a = colon + 1, *comma = strncmp(spec, "logit-diff:", 11) ? NULL : strrchr(a, ',');
    int ida, idb = 0;
    rwkv_status st = metric_token(a, comma ? (size_t)(comma - a) : strlen(a), tok, &ida);
    if (!st && comma) st = metric_token(comma + 1, strlen(comma + 1), tok, &idb);
    if (st) return st;
    char ids[300];
    if (comma) snprintf(ids, sizeof ids, "%.*s%d,%d", (int)(colon + 1 - spec), spec, ida, idb);
    else snprintf(ids, sizeof ids, "%.*s%d", (int)(colon + 1 - spec), spec, ida);
    return rwkv_patch_metric_parse(mt, ids, V);
}

static void progress(void *ctx, int64_t done, int64_t total) {
    cli_progress(ctx, done == total, "patch: %lld/%lld cells", (long long)done, (long long)total);
}

static int write_csv(const char *path, const rwkv_patch_result *r, const int *clean, const int *corrupt) {
    rwkv_atomic_file out = {0};
    rwkv_status st = path ? rwkv_file_atomic_open(&out, path, 1, 1) : RWKV_OK;
    if (st) return cli_fail("patch", st, NULL);
    FILE *f = path ? out.f : stdout;
    fprintf(f, "tap,layer,position,clean_token,corrupt_token,metric,recovery\n");
    for (int k = 0; k < r->n_taps; k++)
        for (int l = 0; l < r->n_layer; l++)
            for (int64_t p = 0; p < r->T; p++) {
                size_t c = rwkv_patch_cell(r, k, l, p);
                if (isnan(r->metric[c])) continue; // not swept (--positions, --layers)
                fprintf(f, "%s,%d,%lld,%d,%d,%.9g,%.9g\n", RWKV_TAP_NAMES[r->taps[k]], l, (long long)p, clean[p], corrupt[p],
                        r->metric[c], r->recovery[c]);
            }
    if (path) st = rwkv_file_atomic_commit(&out);
    else if (fflush(f) || ferror(f)) st = rwkv_error_set(RWKV_ERR_IO, "stdout: write error");
    return st ? cli_fail("patch", st, NULL) : CLI_OK;
}

// One heatmap per tap: recovery over (layer, position), STEM_<tap>.png.
static void plot_heatmaps(const char *stem, const rwkv_patch_result *r, int n_pairs) {
    size_t n = (size_t)r->n_layer * (size_t)r->T;
    double *x = malloc((size_t)r->T * sizeof *x), *y = malloc((size_t)r->n_layer * sizeof *y);
    for (int64_t p = 0; x && p < r->T; p++) x[p] = (double)p;
    for (int l = 0; y && l < r->n_layer; l++) y[l] = l;
    for (int k = 0; x && y && k < r->n_taps; k++) {
        char out[1200], title[128];
        snprintf(out, sizeof out, "%s_%s.png", stem, RWKV_TAP_NAMES[r->taps[k]]);
        if (n_pairs > 1)
            snprintf(title, sizeof title, "mean recovery over %d pairs when patching %s (clean -> corrupt)", n_pairs,
                     RWKV_TAP_NAMES[r->taps[k]]);
        else snprintf(title, sizeof title, "recovery when patching %s (clean -> corrupt)", RWKV_TAP_NAMES[r->taps[k]]);
        rwkv_plot_opts o = {.title = title, .xlabel = "position", .ylabel = "layer", .zrange = PATCH_CB_RANGE};
        rwkv_status st = rwkv_plot_heatmap(out, &o, r->recovery + (size_t)k * n, r->n_layer, (int)r->T, x, y,
                                           n_pairs > 1 ? "mean recovery" : "recovery");
        if (st) fprintf(stderr, "patch: warning: %s: %s\n", out, rwkv_error_message());
        else fprintf(stderr, "patch: wrote %s\n", out);
    }
    free(x);
    free(y);
}

// --positions and --layers as masks (caller frees), and the taps, into o.
static rwkv_status sweep_masks(const patch_args *a, const rwkv_model *m, size_t T, rwkv_patch_opts *o,
                               uint8_t **pos_mask, uint8_t **layer_mask) {
    rwkv_status st = RWKV_OK;
    if (a->positions) {
        if (!(*pos_mask = rwkv_calloc(T, 1, "positions"))) st = RWKV_ERR_NOMEM;
        else if (!(st = rwkv_intervene_index_list(*pos_mask, (int64_t)T, a->positions, "position", 1))) o->positions = *pos_mask;
        if (st) st = rwkv_error_wrap(st, "--positions: ");
    }
    if (!st && a->layers) {
        if (!(*layer_mask = rwkv_calloc((size_t)m->cfg.n_layer, 1, "layers"))) st = RWKV_ERR_NOMEM;
        else if (!(st = rwkv_intervene_index_list(*layer_mask, m->cfg.n_layer, a->layers, "layer", 0))) o->layers = *layer_mask;
        if (st) st = rwkv_error_wrap(st, "--layers: ");
    }
    if (!st) st = select_taps(o, a->taps);
    return st;
}

static int run(const patch_args *a, rwkv_model *m) {
    const int V = m->cfg.n_vocab;
    const char *tokspec = a->tokenizer ? a->tokenizer : (m->tokenizer[0] ? m->tokenizer : NULL);
    cli_input ci = {.tokens = a->clean_ids, .text = a->clean, .tokenizer = tokspec};
    cli_input xi = {.tokens = a->corrupt_ids, .text = a->corrupt, .tokenizer = tokspec};
    int *clean = NULL, *corrupt = NULL;
    size_t nc = 0, nx = 0;
    rwkv_tokenizer *tok = NULL;
    rwkv_patch_opts o = {.seq = a->seq, .naive = a->naive, .checkpoint_every = a->every};
    rwkv_patch_result *r = NULL;
    time_t last = 0;
    o.progress = progress;
    o.progress_ctx = &last;
    rwkv_status st = cli_input_tokens(&ci, V, &clean, &nc, &tok);
    if (!st) st = cli_input_tokens(&xi, V, &corrupt, &nx, NULL);
    if (!st && nc != nx)
        st = rwkv_error_set(RWKV_ERR_ARG, "the clean prompt has %zu tokens and the corrupt one %zu; patching needs equal lengths",
                            nc, nx);
    uint8_t *pos_mask = NULL, *layer_mask = NULL;
    if (!st) st = sweep_masks(a, m, nc, &o, &pos_mask, &layer_mask);
    if (!st) st = parse_metric(&o.metric, a->metric, tok, V);
    if (!st) st = rwkv_patch_sweep(&r, m, clean, corrupt, (int64_t)nc, &o);
    int rc = st ? cli_fail("patch", st, NULL) : CLI_OK;
    if (!st) {
        fprintf(stderr, "patch: metric clean %.6g, corrupt %.6g; first differing position %lld; %lld tokens rerun "
                "(checkpoints every %lld)\n", r->m_clean, r->m_corrupt, (long long)r->first_diff,
                (long long)r->tokens_rerun, (long long)r->checkpoint_every);
        if (r->m_clean == r->m_corrupt)
            fprintf(stderr, "patch: warning: the metric is equal on both prompts; recovery is undefined (nan)\n");
        rc = write_csv(a->out, r, clean, corrupt);
        if (!rc && !a->no_plot && (a->plot || a->out)) {
            char stem[1100];
            snprintf(stem, sizeof stem, "%s", a->plot ? a->plot : a->out);
            char *dot = strrchr(stem, '.');
            if (!a->plot && dot && !strcmp(dot, ".csv")) *dot = 0;
            plot_heatmaps(stem, r, 1);
        }
    }
    rwkv_patch_result_free(r);
    free(pos_mask);
    free(layer_mask);
    rwkv_tokenizer_free(tok);
    free(clean);
    free(corrupt);
    return rc;
}

// The patching sweep over N prompt pairs: per cell the mean recovery, its sd and 95% t interval.
typedef struct {
    double *sum, *sum2; // (n_taps, L, T) of the recovery over the pairs where it is defined
    int *n;             // (n_taps, L, T) those pairs
    int pairs, undefined; // pairs swept; pairs whose metric was equal on both prompts
} pair_stats;

// One pair's line: CLEAN<TAB>CORRUPT[<TAB>METRIC], encoded with tok; the metric (or NULL) in *metric.
static rwkv_status pair_tokens(char *line, const char *path, int lineno, rwkv_tokenizer *tok, int V,
                               int **clean, int **corrupt, size_t *nc, size_t *nx, char **metric) {
    line[strcspn(line, "\r\n")] = 0;
    char *tab = strchr(line, '\t');
    if (!tab) return rwkv_error_set(RWKV_ERR_FORMAT, "%s: line %d: expected CLEAN<TAB>CORRUPT[<TAB>METRIC]", path, lineno);
    *tab = 0;
    char *x = tab + 1, *tab2 = strchr(x, '\t');
    *metric = NULL;
    if (tab2) *tab2 = 0, *metric = tab2 + 1;
    rwkv_status st = rwkv_tokenizer_encode(tok, line, strlen(line), clean, nc);
    if (!st) st = rwkv_tokenizer_encode(tok, x, strlen(x), corrupt, nx);
    for (size_t i = 0; !st && i < *nc + *nx; i++) {
        int t = i < *nc ? (*clean)[i] : (*corrupt)[i - *nc];
        if (t >= V) st = rwkv_error_set(RWKV_ERR_ARG, "token %d is outside the model's vocabulary [0, %d)", t, V);
    }
    return st ? rwkv_error_wrap(st, "%s: line %d: ", path, lineno) : RWKV_OK;
}

static void pairs_accumulate(pair_stats *ps, const rwkv_patch_result *r) {
    size_t n = (size_t)r->n_taps * r->n_layer * r->T;
    if (r->m_clean == r->m_corrupt) { ps->undefined++; return; }
    for (size_t c = 0; c < n; c++)
        if (!isnan(r->recovery[c])) ps->sum[c] += r->recovery[c], ps->sum2[c] += r->recovery[c] * r->recovery[c], ps->n[c]++;
}

static int write_pairs_csv(const char *path, const pair_stats *ps, rwkv_patch_result *r) {
    FILE *f = path ? fopen(path, "w") : stdout;
    if (!f) return cli_fail("patch", rwkv_error_set(RWKV_ERR_IO, "%s: cannot open for writing", path), NULL);
    fprintf(f, "tap,layer,position,pairs,recovery,ci_lo,ci_hi,sd\n");
    for (int k = 0; k < r->n_taps; k++)
        for (int l = 0; l < r->n_layer; l++)
            for (int64_t p = 0; p < r->T; p++) {
                size_t c = rwkv_patch_cell(r, k, l, p);
                int n = ps->n[c];
                if (isnan(r->metric[c])) continue; // not swept
                double mean = n ? ps->sum[c] / n : NAN;
                double sd = n > 1 ? sqrt(fmax(0, (ps->sum2[c] - n * mean * mean) / (n - 1))) : NAN; // sample sd
                double half = n > 1 ? gsl_cdf_tdist_Pinv(0.975, n - 1) * sd / sqrt(n) : NAN;     // t interval
                r->recovery[c] = mean; // the heatmaps draw the mean
                fprintf(f, "%s,%d,%lld,%d,%.9g,%.9g,%.9g,%.9g\n", RWKV_TAP_NAMES[r->taps[k]], l, (long long)p, n, mean,
                        mean - half, mean + half, sd);
            }
    int bad = ferror(f);
    if (path && fclose(f)) bad = 1;
    if (bad) return cli_fail("patch", rwkv_error_set(RWKV_ERR_IO, "%s: write error", path ? path : "stdout"), NULL);
    return CLI_OK;
}

static int run_pairs(const patch_args *a, rwkv_model *m) {
    const int V = m->cfg.n_vocab;
    const char *tokspec = a->tokenizer ? a->tokenizer : (m->tokenizer[0] ? m->tokenizer : "bytes");
    rwkv_tokenizer *tok = NULL;
    FILE *f = fopen(a->pairs, "r");
    rwkv_status st = f ? rwkv_tokenizer_load(&tok, tokspec)
                       : rwkv_error_set(RWKV_ERR_IO, "%s: cannot open: %s", a->pairs, strerror(errno));
    char *line = malloc(PATCH_PAIR_LINE_MAX);
    if (!st && !line) st = RWKV_ERR_NOMEM;
    pair_stats ps = {0};
    rwkv_patch_result *r = NULL;
    uint8_t *pos_mask = NULL, *layer_mask = NULL;
    size_t T = 0;
    time_t last = 0;
    for (int lineno = 1; !st && fgets(line, PATCH_PAIR_LINE_MAX, f); lineno++) {
        if (line[0] == '#' || line[0] == '\n') continue;
        int *clean = NULL, *corrupt = NULL;
        size_t nc = 0, nx = 0;
        char *metric = NULL;
        st = pair_tokens(line, a->pairs, lineno, tok, V, &clean, &corrupt, &nc, &nx, &metric);
        if (!st && (nc != nx || (T && nc != T)))
            st = rwkv_error_set(RWKV_ERR_ARG, "%s: line %d: the prompts have %zu and %zu tokens; every prompt needs %zu",
                                a->pairs, lineno, nc, nx, T ? T : nc);
        if (!metric) metric = (char *)a->metric;
        if (!st && !metric) st = rwkv_error_set(RWKV_ERR_ARG, "%s: line %d: no METRIC field and no --metric", a->pairs, lineno);
        rwkv_patch_opts o = {.seq = a->seq, .naive = a->naive, .checkpoint_every = a->every};
        if (!st && !T) {
            T = nc;
            st = sweep_masks(a, m, T, &o, &pos_mask, &layer_mask);
        } else if (!st) {
            o.positions = pos_mask, o.layers = layer_mask;
            st = select_taps(&o, a->taps);
        }
        if (!st) st = parse_metric(&o.metric, metric, tok, V);
        if (!st) { // the last pair's result is kept: it gives the shape and the unswept cells
            rwkv_patch_result_free(r);
            r = NULL;
            if ((st = rwkv_patch_sweep(&r, m, clean, corrupt, (int64_t)T, &o)))
                st = rwkv_error_wrap(st, "%s: line %d: ", a->pairs, lineno);
        }
        if (!st && !ps.n) {
            size_t n = (size_t)r->n_taps * r->n_layer * T;
            ps.sum = calloc(n, sizeof *ps.sum), ps.sum2 = calloc(n, sizeof *ps.sum2), ps.n = calloc(n, sizeof *ps.n);
            if (!ps.sum || !ps.sum2 || !ps.n) st = RWKV_ERR_NOMEM;
        }
        if (!st) {
            pairs_accumulate(&ps, r);
            ps.pairs++;
            cli_progress(&last, 0, "patch: %d pairs (line %d: metric clean %.4g, corrupt %.4g)", ps.pairs, lineno,
                         r->m_clean, r->m_corrupt);
        }
        free(clean);
        free(corrupt);
    }
    if (ps.pairs) cli_progress(&last, 1, "patch: %d pairs swept", ps.pairs);
    if (!st && !ps.pairs) st = rwkv_error_set(RWKV_ERR_FORMAT, "%s: no prompt pairs", a->pairs);
    int rc = st ? cli_fail("patch", st, "each line: CLEAN<TAB>CORRUPT[<TAB>METRIC]") : CLI_OK;
    if (!st) {
        fprintf(stderr, "patch: %d pairs of %zu tokens (%d with an undefined recovery: equal metrics)\n", ps.pairs, T,
                ps.undefined);
        rc = write_pairs_csv(a->out, &ps, r);
        if (!rc && !a->no_plot && (a->plot || a->out)) {
            char stem[1100];
            snprintf(stem, sizeof stem, "%s", a->plot ? a->plot : a->out);
            char *dot = strrchr(stem, '.');
            if (!a->plot && dot && !strcmp(dot, ".csv")) *dot = 0;
            plot_heatmaps(stem, r, ps.pairs);
        }
    }
    rwkv_patch_result_free(r);
    free(ps.sum); free(ps.sum2); free(ps.n);
    free(pos_mask); free(layer_mask); free(line);
    rwkv_tokenizer_free(tok);
    if (f) fclose(f);
    return rc;
}

int cmd_patch(int argc, char **argv) {
    patch_args a = {0};
    int rc = parse_args(&a, argc, argv);
    if (rc) return cli_opt_exit(rc);
    rwkv_model *m = cli_model_open("patch", a.model, &a.mo);
    if (!m) return CLI_FAIL;
    rc = a.pairs ? run_pairs(&a, m) : run(&a, m);
    rwkv_model_free(m);
    return rc;
}
