// analyze_attention.c: rwkvscope analyze attention MODEL INPUT --layer L: effective attention.
#include "analyses/attention.h"
#include "analyses/plot.h"
#include "analyze.h"
#include "cli.h"
#include "options.h"
#include "input.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CMD "analyze attention"

static void usage(FILE *f) {
    fprintf(f,
            "usage: rwkvscope analyze attention MODEL (--text|--bytes|--tokens|--file ...) --layer L\n"
            "                 [--channels 0,5,9] [--max-mb MB] [--no-plots] [--force] -o att.h5\n\n"
            "RWKV-4's implicit attention in layer L: per channel, position t attends to i < t with\n"
            "e^{-(t-1-i)w + k_i} / den_t and to itself with e^{u + k_t} / den_t (rows sum to 1);\n"
            "averaged over all channels or the chosen ones. Writes /attention [T, T] (row = query\n"
            "position) to att.h5 (docs/attention-format.md) and a heatmap att.png beside it.\n"
            "T x T must fit in memory: inputs beyond --max-mb (default 1024) are refused.\n\n"
            "input (exactly one):\n%s\n"
            "options:\n"
            "  --layer L            the layer (required)\n"
            "  --channels LIST      average over these channels, e.g. 0,5,9 (default: all)\n"
            "  --max-mb MB          refuse inputs whose T x T matrix exceeds MB (default 1024)\n"
            "  -o, --output FILE    the HDF5 file (required); the heatmap goes beside it\n"
            "  --no-plots           no heatmap\n"
            "  --force              replace an existing output\n",
            CLI_INPUT_HELP);
}

int cli_analyze_attention(int argc, char **argv) {
    enum { O_CHANNELS = CLI_OPT_USER, O_LAYER, O_MAX_MB, O_NO_PLOTS };
    static const struct option OPTS[] = {
        {"channels", required_argument, NULL, O_CHANNELS}, {"layer", required_argument, NULL, O_LAYER},
        {"max-mb", required_argument, NULL, O_MAX_MB}, {"no-plots", no_argument, NULL, O_NO_PLOTS},
        CLI_OPTIONS_INPUT, CLI_OPTIONS_OUTPUT, CLI_OPTIONS_END};
    if (argc < 2) {
        usage(stderr);
        return CLI_USAGE;
    }
    cli_input in = {0};
    const char *out = NULL, *channels_s = NULL;
    long layer = -1, max_mb = 1024;
    int force = 0, no_plots = 0;
    cli_parser p = {.cmd = CMD, .help = usage, .opts = OPTS, .max_args = 1, .in = &in, .out = &out, .force = &force,
                    .out_seekable = "an HDF5 attention matrix"};
    const char *v;
    for (int c; (c = cli_opt_next(&p, argc, argv, &v)) != -1;) {
        int ok = 1;
        switch (c) {
        case O_CHANNELS: channels_s = v; break;
        case O_NO_PLOTS: no_plots = 1; break;
        case O_LAYER: ok = cli_parse_int(CMD, "--layer", v, 0, 100000, &layer); break;
        case O_MAX_MB: ok = cli_parse_int(CMD, "--max-mb", v, 1, 1L << 30, &max_mb); break;
        }
        if (!ok) return CLI_USAGE;
    }
    if (p.status) return cli_opt_exit(p.status);
    const char *model_path = p.args[0];
    if (!model_path) return cli_usage_error(CMD, "MODEL is required");
    if (!cli_input_given(&in)) return cli_usage_error(CMD, "an input is required (--text, --bytes, --tokens or --file)");
    if (layer < 0) return cli_usage_error(CMD, "--layer L is required");
    if (!out) return cli_usage_error(CMD, "-o att.h5 is required");
    if (!cli_check_output(CMD, out, force)) return CLI_USAGE;
    int *ch = NULL;
    size_t nch = 0;
    if (channels_s && cli_parse_id_list(channels_s, &ch, &nch))
        return cli_usage_error(CMD, "--channels: expected a list like 0,5,9");
    rwkv_model *m = NULL;
    int *ids = NULL;
    size_t T = 0;
    double *att = NULL;
    rwkv_tokenizer *tok = NULL;
    size_t max_bytes = (size_t)max_mb << 20;
    rwkv_status st = rwkv_model_load(&m, model_path);
    if (!st) st = rwkv_model_require_v4(m, "analyze attention");
    if (!st) st = cli_input_tokens(&in, m->cfg.n_vocab, &ids, &T, &tok);
    if (!st && T > 1 << 30) st = rwkv_error_set(RWKV_ERR_ARG, "attention: input too long");
    if (!st) st = rwkv_attention_check_size((int)T, max_bytes);
    if (!st && !(att = rwkv_calloc(T * T, sizeof *att, "attention matrix"))) st = RWKV_ERR_NOMEM;
    if (!st) st = rwkv_attention_compute(m, ids, (int)T, (int)layer, ch, (int)nch, max_bytes, att);
    if (!st) st = rwkv_attention_write(out, att, (int)T, ids, ch, ch ? (int)nch : m->cfg.n_embd,
                                       (int)layer, model_path, force);
    if (!st && !no_plots) {
        char png[4096], title[256];
        const char *dot = strrchr(out, '.'), *slash = strrchr(out, '/');
        size_t k = (dot && (!slash || dot > slash)) ? (size_t)(dot - out) : strlen(out);
        snprintf(png, sizeof png, "%.*s.png", (int)k, out);
        snprintf(title, sizeof title, "effective attention, layer %ld (%s)", layer,
                 ch ? "chosen channels" : "mean over channels");
        rwkv_plot_opts o = {.title = title, .xlabel = "key position i", .ylabel = "query position t",
                            .width = 800, .height = 700};
        st = rwkv_plot_heatmap(png, &o, att, (int)T, (int)T, NULL, NULL, "weight");
    }
    int rc = st ? cli_fail(CMD, st, st == RWKV_ERR_UNSUPPORTED ? "use --no-plots to skip the heatmap" : NULL) : CLI_OK;
    if (!st) fprintf(stderr, "analyze attention: wrote %s (%zu x %zu)\n", out, T, T);
    free(att);
    free(ids);
    free(ch);
    rwkv_tokenizer_free(tok);
    rwkv_model_free(m);
    return rc;
}
