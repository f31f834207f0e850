// analyze_lens.c: rwkvscope analyze lens MODEL INPUT: the logit lens per layer.
#include "analyses/lens.h"
#include "analyze.h"
#include "cli.h"
#include "options.h"
#include "input.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CMD "analyze lens"

static void usage(FILE *f) {
    fprintf(f, "usage: rwkvscope analyze lens MODEL INPUT [options]\n\n"
           "Puts each layer's residual stream (the embedding, then every block's output) through the\n"
           "model's ln_out and head, and reports per layer: cross-entropy against the next token,\n"
           "entropy, KL(final || layer) and top-1 agreement with the final layer (nats).\n\n"
           "input (exactly one):\n" CLI_INPUT_HELP
           "\noptions:\n"
           "  -o, --output PREFIX  write PREFIX.csv (per position) and PREFIX.summary.csv (per layer);\n"
           "                       default: lens (docs/lens.md)\n"
           "  --no-plot            skip PREFIX.plot.png (the per-layer means as lines)\n"
           "  --force              overwrite existing outputs\n"
           "  --mode seq|par       sequential or parallel mode (default: par)\n"
           CLI_MODEL_HELP "\n"
           "example:\n  rwkvscope analyze lens model.pth --file prompt.txt -o results/lens\n");
}

// The plot of the per-layer means: a failure is a warning (the CSV files are written).
static void plot_means(const char *prefix, const rwkv_lens_result *r, const double *means) {
    char out[1100];
    snprintf(out, sizeof out, "%s.plot.png", prefix); // its data goes to PREFIX.plot.csv
    if (rwkv_lens_plot(r, means, out)) fprintf(stderr, "analyze lens: warning: %s: %s\n", out, rwkv_error_message());
    else fprintf(stderr, "analyze lens: wrote %s\n", out);
}

int cli_analyze_lens(int argc, char **argv) {
    enum { O_MODE = CLI_OPT_USER, O_NO_PLOT };
    static const struct option OPTS[] = {
        {"mode", required_argument, NULL, O_MODE}, {"no-plot", no_argument, NULL, O_NO_PLOT},
        CLI_OPTIONS_INPUT, CLI_OPTIONS_MODEL, CLI_OPTIONS_OUTPUT, CLI_OPTIONS_END};
    cli_input in = {0};
    cli_model_opts mo = {0};
    const char *prefix = "lens", *mode = "par";
    int force = 0, no_plot = 0;
    cli_parser p = {.cmd = CMD, .help = usage, .opts = OPTS, .max_args = 1, .in = &in, .model = &mo, .out = &prefix,
                    .force = &force, .out_seekable = "a prefix of two CSV files and a plot"};
    const char *v;
    for (int c; (c = cli_opt_next(&p, argc, argv, &v)) != -1;) {
        if (c == O_MODE) mode = v;
        else if (c == O_NO_PLOT) no_plot = 1;
    }
    if (p.status) return cli_opt_exit(p.status);
    const char *model = p.args[0];
    if (!model) return cli_usage_error(CMD, "no MODEL given");
    if (!cli_input_given(&in)) return cli_usage_error(CMD, "no input: give --tokens, --bytes, --text or --file");
    if (strcmp(mode, "seq") && strcmp(mode, "par")) return cli_usage_error(CMD, "--mode expects seq or par, got '%s'", mode);
    char csv[1100], summary[1100];
    snprintf(csv, sizeof csv, "%s.csv", prefix);
    snprintf(summary, sizeof summary, "%s.summary.csv", prefix);
    if (!cli_check_output(CMD, csv, force) || !cli_check_output(CMD, summary, force)) return CLI_USAGE;
    rwkv_model *m = cli_model_open(CMD, model, &mo);
    if (!m) return CLI_FAIL;
    int *ids = NULL;
    size_t T = 0;
    rwkv_lens_result *r = NULL;
    double *means = NULL;
    if (!in.tokenizer && m->tokenizer[0]) in.tokenizer = m->tokenizer;
    rwkv_status st = cli_input_tokens(&in, m->cfg.n_vocab, &ids, &T, NULL);
    if (!st) st = rwkv_lens_logit(&r, m, ids, (int64_t)T, !strcmp(mode, "seq"));
    if (!st && !(means = rwkv_calloc((size_t)r->n_rows * 4, sizeof *means, "lens means"))) st = RWKV_ERR_NOMEM;
    if (!st) st = rwkv_lens_write_csv(r, ids, csv);
    if (!st) st = rwkv_lens_write_summary(r, summary, means);
    int rc = st ? cli_fail(CMD, st, cli_input_hint()) : CLI_OK; // NULL unless the input failed
    if (!st) {
        printf("%-10s %10s %10s %10s %8s\n", "layer", "ce", "entropy", "kl_final", "top1");
        for (int row = 0; row < r->n_rows; row++) {
            char name[24];
            rwkv_lens_row_name(name, sizeof name, row);
            const double *s = means + 4 * row;
            printf("%-10s %10.4f %10.4f %10.4f %8.3f\n", name, s[0], s[1], s[2], s[3]);
        }
        fprintf(stderr, "analyze lens: wrote %s and %s\n", csv, summary);
        if (!no_plot) plot_means(prefix, r, means);
    }
    free(means);
    free(ids);
    rwkv_lens_result_free(r);
    rwkv_model_free(m);
    return rc;
}
