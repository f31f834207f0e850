// analyze_attention.c: rwkvscope analyze attention MODEL INPUT --layer L: effective attention.
#include "analyses/attention.h"
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
            "                 [--channels 0,5,9 | --heads 0,2] [--max-mb MB] [--no-plots] [--force] -o att.h5\n\n"
            "The implicit attention of layer L: the weight of v_i in the WKV output at t.\n"
            "RWKV-4, per channel: t attends to i < t with e^{-(t-1-i)w + k_i} / den_t and to itself\n"
            "with e^{u + k_t} / den_t (rows sum to 1); averaged over all channels or --channels.\n"
            "RWKV-5.2, 6 and 7, per head (before the GroupNorm): k_i^T A_{i+1} ... A_t r_t with the\n"
            "state transitions A (RWKV-7: diag(w_t) - kk_t (kk_t a_t)^T; RWKV-5.2 and 6: diag(w_t) up\n"
            "to t-1, and (u k_t)^T r_t at i = t); not normalised, of either sign; averaged over all\n"
            "heads or --heads. Writes /attention [T, T] (row = query position) to att.h5\n"
            "(docs/attention-format.md) and a heatmap att.png beside it.\n"
            "T x T must fit in memory: inputs beyond --max-mb (default 1024) are refused.\n\n"
            "input (exactly one):\n%s\n"
            "options:\n"
            "  --layer L            the layer (required)\n"
            "  --channels LIST      RWKV-4: average over these channels, e.g. 0,5,9 (default: all)\n"
            "  --heads LIST         RWKV-5.2/6/7: average over these heads, e.g. 0,2 (default: all)\n"
            "  --max-mb MB          refuse inputs whose T x T matrix exceeds MB (default 1024)\n"
            "  -o, --output FILE    the HDF5 file (required); the heatmap goes beside it\n"
            "  --no-plots           no heatmap\n"
            "  --force              replace an existing output\n",
            CLI_INPUT_HELP);
}

int cli_analyze_attention(int argc, char **argv) {
    enum { O_CHANNELS = CLI_OPT_USER, O_LAYER, O_MAX_MB, O_NO_PLOTS, O_HEADS };
    static const struct option OPTS[] = {
        {"channels", required_argument, NULL, O_CHANNELS}, {"heads", required_argument, NULL, O_HEADS},
        {"layer", required_argument, NULL, O_LAYER},
        {"max-mb", required_argument, NULL, O_MAX_MB}, {"no-plots", no_argument, NULL, O_NO_PLOTS},
        CLI_OPTIONS_INPUT, CLI_OPTIONS_OUTPUT, CLI_OPTIONS_END};
    if (argc < 2) {
        usage(stderr);
        return CLI_USAGE;
    }
    cli_input in = {0};
    const char *out = NULL, *channels_s = NULL, *heads_s = NULL;
    long layer = -1, max_mb = 1024;
    int force = 0, no_plots = 0;
    cli_parser p = {.cmd = CMD, .help = usage, .opts = OPTS, .max_args = 1, .in = &in, .out = &out, .force = &force,
                    .out_seekable = "an HDF5 attention matrix"};
    const char *v;
    for (int c; (c = cli_opt_next(&p, argc, argv, &v)) != -1;) {
        int ok = 1;
        switch (c) {
        case O_CHANNELS: channels_s = v; break;
        case O_HEADS: heads_s = v; break;
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
    if (channels_s && heads_s) return cli_usage_error(CMD, "give --channels (RWKV-4) or --heads (RWKV-5.2/6/7), not both");
    if (!cli_check_output(CMD, out, force)) return CLI_USAGE;
    int *ch = NULL;
    size_t nch = 0;
    const char *sel_s = channels_s ? channels_s : heads_s, *sel_opt = channels_s ? "--channels" : "--heads";
    if (sel_s && cli_parse_id_list(sel_s, &ch, &nch))
        return cli_usage_error(CMD, "%s: expected a list like 0,5,9", sel_opt);
    rwkv_model *m = NULL;
    int *ids = NULL;
    size_t T = 0;
    double *att = NULL;
    rwkv_tokenizer *tok = NULL;
    size_t max_bytes = (size_t)max_mb << 20;
    rwkv_status st = rwkv_model_load(&m, model_path);
    int n_units = 0;
    const char *unit = st ? NULL : rwkv_attention_unit(m, &n_units);
    if (unit && sel_s && strncmp(sel_opt + 2, unit, strlen(unit))) { // --channels on heads, or --heads on channels
        int rc = cli_usage_error(CMD, "%s: this %s model's attention is per %s: give --%ss", sel_opt,
                                 !m->v7 ? "RWKV-4" : RWKV_IS_V7(m->cfg) ? "RWKV-7"
                                 : m->cfg.version == RWKV_VERSION_6 ? "RWKV-6" : "RWKV-5.2", unit, unit);
        free(ch);
        rwkv_model_free(m);
        return rc;
    }
    if (!st) st = cli_input_tokens(&in, m->cfg.n_vocab, &ids, &T, &tok);
    if (!st && T > 1 << 30) st = rwkv_error_set(RWKV_ERR_ARG, "attention: input too long");
    if (!st) st = rwkv_attention_check_size((int)T, max_bytes);
    if (!st && !(att = rwkv_calloc(T * T, sizeof *att, "attention matrix"))) st = RWKV_ERR_NOMEM;
    if (!st) st = rwkv_attention_compute(m, ids, (int)T, (int)layer, ch, (int)nch, max_bytes, att);
    if (!st) st = rwkv_attention_write(out, m, att, (int)T, ids, ch, (int)nch, (int)layer, force);
    if (!st && !no_plots) {
        char png[4096];
        const char *dot = strrchr(out, '.'), *slash = strrchr(out, '/');
        size_t k = (dot && (!slash || dot > slash)) ? (size_t)(dot - out) : strlen(out);
        snprintf(png, sizeof png, "%.*s.png", (int)k, out);
        st = rwkv_attention_plot(png, m, att, (int)T, (int)layer, ch != NULL);
    }
    int rc = st ? cli_fail(CMD, st, st == RWKV_ERR_UNSUPPORTED ? "use --no-plots to skip the heatmap" : cli_input_hint())
                : CLI_OK;
    if (!st) fprintf(stderr, "analyze attention: wrote %s (%zu x %zu)\n", out, T, T);
    free(att);
    free(ids);
    free(ch);
    rwkv_tokenizer_free(tok);
    rwkv_model_free(m);
    return rc;
}
