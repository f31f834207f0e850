// cmd_patch.c: rwkvscope patch: an activation patching sweep between a clean and a corrupt
// prompt; every (tap, layer, position) cell is patched from clean into corrupt, one at a time.
#include "analyses/patching.h"
#include "core/base/file.h"
#include "cli.h"
#include "input.h"
#include "options.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

const char cmd_patch_summary[] = "activation patching sweep: recovery of a metric per (tap, layer, position)";


static void usage(FILE *f) {
    fprintf(f, "usage: rwkvscope patch MODEL --clean TEXT --corrupt TEXT --taps PATTERN --metric SPEC [options]\n"
           "       rwkvscope patch MODEL --pairs FILE --taps PATTERN [--metric SPEC] [options]\n\n"
           "Runs the clean and the corrupt prompt once each, then patches every (tap, layer, position)\n"
           "cell from the clean run into the corrupt one, one at a time, and reports the normalised\n"
           "recovery of the metric at the last position:\n"
           "    recovery = (metric(patched) - metric(corrupt)) / (metric(clean) - metric(corrupt)).\n"
           "Cells in the prompts' shared prefix change nothing and are not rerun; every other cell\n"
           "restarts from the corrupt run's state before its position (RWKV-4, 5.2, 6 and 7 alike).\n\n"
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
           "  --taps PATTERN       comma-separated globs over the model's block tap names, e.g. resid_in,state_*\n"
           "                       or '*'; RWKV-5.2/6/7: state_wkv patches a layer's whole matrix state,\n"
           "                       state_wkv:HEADS each listed head's (N, N) matrix alone (state_wkv:*,\n"
           "                       state_wkv:0-3): CSV rows of tap state_wkv:H, one heatmap STEM_state_wkv_heads.png\n"
           "                       with a row per (layer, head)\n"
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
    if (!a->taps) return cli_usage_error("patch", "missing --taps PATTERN (e.g. resid_in,state_* or '*')");
    if (!a->metric && !a->pairs) return cli_usage_error("patch", "missing --metric (e.g. logit-diff:A,B)");
    if (!cli_check_output("patch", a->out, a->force)) return CLI_USAGE;
    if (a->out && !strcmp(a->out, "-")) a->out = NULL; // stdout, as without -o: no heatmaps beside it
    return CLI_OK;
}

static void progress(void *ctx, int64_t done, int64_t total) {
    cli_progress(ctx, done == total, "patch: %lld/%lld cells", (long long)done, (long long)total);
}

// The CSV to path (atomically) or to stdout (NULL), by one of the library's writers.
typedef struct {
    const rwkv_patch_result *r;
    const rwkv_patch_pairs_result *pr;
    const int *clean, *corrupt;
} csv_args;

static int write_csv(const char *path, const csv_args *c) {
    rwkv_atomic_file out = {0};
    rwkv_status st = path ? rwkv_file_atomic_open(&out, path, 1, 1) : RWKV_OK;
    if (st) return cli_fail("patch", st, NULL);
    FILE *f = path ? out.f : stdout;
    st = c->pr ? rwkv_patch_pairs_write_csv(f, c->pr) : rwkv_patch_write_csv(f, c->r, c->clean, c->corrupt);
    if (path && st) rwkv_file_atomic_abort(&out);
    else if (path) st = rwkv_file_atomic_commit(&out);
    else if (fflush(f) || ferror(f)) st = rwkv_error_set(RWKV_ERR_IO, "stdout: write error");
    return st ? cli_fail("patch", st, NULL) : CLI_OK;
}

static void plot_done(const char *out, rwkv_status st) {
    if (st) fprintf(stderr, "patch: warning: %s: %s\n", out, rwkv_error_message());
    else fprintf(stderr, "patch: wrote %s\n", out);
}

// One heatmap per tap, STEM_<tap>.png, and one of all the swept heads, STEM_state_wkv_heads.png,
// beside -o or at --plot.
static void plot_heatmaps(const patch_args *a, const rwkv_patch_result *r, int n_pairs) {
    if (a->no_plot || (!a->plot && !a->out)) return;
    char stem[1100], out[1200];
    snprintf(stem, sizeof stem, "%s", a->plot ? a->plot : a->out);
    char *dot = strrchr(stem, '.');
    if (!a->plot && dot && !strcmp(dot, ".csv")) *dot = 0;
    int heads = 0;
    for (int k = 0; k < r->n_taps; k++) {
        heads += r->head[k] != 0;
        if (r->head[k]) continue;
        snprintf(out, sizeof out, "%s_%s.png", stem, RWKV_TAP_NAMES[r->taps[k]]);
        plot_done(out, rwkv_patch_plot(out, r, k, n_pairs));
    }
    snprintf(out, sizeof out, "%s_state_wkv_heads.png", stem);
    if (heads) plot_done(out, rwkv_patch_plot_heads(out, r, n_pairs));
}

static rwkv_patch_opts sweep_opts(const patch_args *a, time_t *last) {
    return (rwkv_patch_opts){.seq = a->seq, .naive = a->naive, .checkpoint_every = a->every, .progress = progress,
                             .progress_ctx = last};
}

static int run(const patch_args *a, rwkv_model *m) {
    const int V = m->cfg.n_vocab;
    const char *tokspec = a->tokenizer ? a->tokenizer : (m->tokenizer[0] ? m->tokenizer : NULL);
    cli_input ci = {.tokens = a->clean_ids, .text = a->clean, .tokenizer = tokspec};
    cli_input xi = {.tokens = a->corrupt_ids, .text = a->corrupt, .tokenizer = tokspec};
    int *clean = NULL, *corrupt = NULL;
    size_t nc = 0, nx = 0;
    rwkv_tokenizer *tok = NULL;
    time_t last = 0;
    rwkv_patch_opts o = sweep_opts(a, &last);
    rwkv_patch_result *r = NULL;
    uint8_t *pos_mask = NULL, *layer_mask = NULL;
    rwkv_status st = cli_input_tokens(&ci, V, &clean, &nc, &tok);
    if (!st) st = cli_input_tokens(&xi, V, &corrupt, &nx, NULL);
    if (!st && nc != nx)
        st = rwkv_error_set(RWKV_ERR_ARG, "the clean prompt has %zu tokens and the corrupt one %zu; patching needs equal lengths",
                            nc, nx);
    if (!st) st = rwkv_patch_select_cells(&o, m->cfg, (int64_t)nc, a->positions, a->layers, &pos_mask, &layer_mask);
    if (!st) st = rwkv_patch_select_taps(&o, m->cfg, a->taps);
    if (!st) st = rwkv_patch_metric_parse_text(&o.metric, a->metric, tok, V);
    if (!st) st = rwkv_patch_sweep(&r, m, clean, corrupt, (int64_t)nc, &o);
    int rc = st ? cli_fail("patch", st, NULL) : CLI_OK;
    if (!st) {
        fprintf(stderr, "patch: metric clean %.6g, corrupt %.6g; first differing position %lld; %lld tokens rerun "
                "(checkpoints every %lld)\n", r->m_clean, r->m_corrupt, (long long)r->first_diff,
                (long long)r->tokens_rerun, (long long)r->checkpoint_every);
        if (r->m_clean == r->m_corrupt)
            fprintf(stderr, "patch: warning: the metric is equal on both prompts; recovery is undefined (nan)\n");
        rc = write_csv(a->out, &(csv_args){.r = r, .clean = clean, .corrupt = corrupt});
        if (!rc) plot_heatmaps(a, r, 1);
    }
    rwkv_patch_result_free(r);
    free(pos_mask);
    free(layer_mask);
    rwkv_tokenizer_free(tok);
    free(clean);
    free(corrupt);
    return rc;
}

static void pair_progress(void *ctx, int i, const rwkv_patch_pair *pair, const rwkv_patch_result *r) {
    cli_progress(ctx, 0, "patch: %d pairs (line %d: metric clean %.4g, corrupt %.4g)", i + 1, pair->line, r->m_clean,
                 r->m_corrupt);
}

static int run_pairs(const patch_args *a, rwkv_model *m) {
    const char *tokspec = a->tokenizer ? a->tokenizer : (m->tokenizer[0] ? m->tokenizer : "bytes");
    rwkv_tokenizer *tok = NULL;
    rwkv_patch_pairs pairs = {0};
    rwkv_patch_pairs_result *pr = NULL;
    uint8_t *pos_mask = NULL, *layer_mask = NULL;
    time_t last = 0;
    rwkv_patch_opts o = sweep_opts(a, &last);
    rwkv_status st = rwkv_tokenizer_load(&tok, tokspec);
    if (!st) st = rwkv_patch_pairs_read(&pairs, a->pairs, tok, m->cfg.n_vocab);
    if (!st) st = rwkv_patch_select_cells(&o, m->cfg, pairs.items[0].T, a->positions, a->layers, &pos_mask, &layer_mask);
    if (!st) st = rwkv_patch_select_taps(&o, m->cfg, a->taps);
    if (!st) st = rwkv_patch_pairs_sweep(&pr, m, &pairs, &o, a->metric, tok, pair_progress, &last);
    int rc = st ? cli_fail("patch", st, "each line: CLEAN<TAB>CORRUPT[<TAB>METRIC]") : CLI_OK;
    if (!st) {
        cli_progress(&last, 1, "patch: %d pairs swept", pr->pairs);
        fprintf(stderr, "patch: %d pairs of %lld tokens (%d with an undefined recovery: equal metrics)\n", pr->pairs,
                (long long)pr->r->T, pr->undefined);
        rc = write_csv(a->out, &(csv_args){.pr = pr});
        if (!rc) plot_heatmaps(a, pr->r, pr->pairs);
    }
    rwkv_patch_pairs_result_free(pr);
    rwkv_patch_pairs_free(&pairs);
    free(pos_mask);
    free(layer_mask);
    rwkv_tokenizer_free(tok);
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
