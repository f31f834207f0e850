// analyze_decay.c: rwkvscope analyze decay MODEL: decay / half-life / time_first spectra.
#include "analyses/decay.h"
#include "analyses/plot.h"
#include "analyze.h"
#include "cli.h"
#include "options.h"

#include <gsl/gsl_statistics_double.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define CMD "analyze decay"
#define V7_MAX_TOKENS 65536 // RWKV-7 spectra: the first tokens of a longer input (L T C doubles kept)

static void usage(FILE *f) {
    fprintf(f,
            "usage: rwkvscope analyze decay MODEL -o decay.csv [--no-plots] [--force]\n"
            "       rwkvscope analyze decay RWKV6_OR_7_MODEL INPUT -o decay.csv [--no-plots] [--force]\n\n"
            "Per channel of each layer: w = exp(time_decay) (the state keeps e^-w per token),\n"
            "the half-life ln2/w in tokens, and time_first u (the current token's bonus).\n"
            "Writes decay.csv (layer,channel,time_decay,w,retention,half_life,time_first) and\n"
            "decay_halflife_hist.png, decay_halflife_sorted.png, decay_time_first_hist.png\n"
            "(each with its data), and prints a per-layer summary.\n\n"
            "RWKV-7: the decay depends on the token, w_t = exp(-e^{-1/2} sigmoid(w0 + W2 tanh(W1 x'_w))).\n"
            "Runs INPUT and writes, per channel, the mean w and the 10/50/90%% quantiles of the\n"
            "half-life ln2/(-ln w_t) over its tokens (the first 65536), and the half-life of the\n"
            "bias w0 alone. RWKV-6 the same, with w_t = exp(-exp(time_decay + W_d2 tanh(W_d1 x'_w)))\n"
            "and its base time_decay in place of w0\n"
            "(layer,head,channel,w_mean,half_life_p10,half_life_median,half_life_p90,half_life_bias);\n"
            "decay_heads.png (per head: the median over its channels, bars from 10%% to 90%%) and\n"
            "decay_halflife_sorted.png; prints a per-head summary. INPUT:\n" CLI_INPUT_HELP
            "options:\n"
            "  -o, --output FILE    the CSV (required); the plots go beside it\n"
            "  --no-plots           write only the CSV\n"
            "  --force              replace an existing output\n");
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static void summary(const rwkv_decay *d) {
    int C = d->n_embd;
    double *s = malloc((size_t)C * sizeof *s);
    if (!s) return;
    printf("layer  half-life min / median / max (tokens)   time_first mean\n");
    for (int l = 0; l < d->n_layer; l++) {
        memcpy(s, d->half_life + (size_t)l * C, (size_t)C * sizeof *s);
        qsort(s, (size_t)C, sizeof *s, cmp_double);
        double u = 0;
        for (int c = 0; c < C; c++) u += d->time_first[(size_t)l * C + c] / C;
        printf("%5d  %10.3g / %10.3g / %10.3g   %8.4f\n", l, s[0], gsl_stats_median_from_sorted_data(s, 1, (size_t)C),
               s[C - 1], u); // the median: the mean of the middle two for an even width
    }
    free(s);
}

// "out.csv" -> "out" (the plots' stem).
static void stem_of(char *stem, size_t n, const char *out) {
    const char *dot = strrchr(out, '.'), *slash = strrchr(out, '/');
    size_t k = (dot && (!slash || dot > slash)) ? (size_t)(dot - out) : strlen(out);
    snprintf(stem, n, "%.*s", (int)k, out);
}

static rwkv_status plot_v7(const rwkv_decay_v7 *d, const char *stem) {
    int L = d->n_layer, H = d->n_head, C = d->n_embd;
    double *x = malloc((size_t)(C > H ? C : H) * sizeof *x), *v = malloc((size_t)L * C * sizeof *v);
    char (*names)[32] = malloc((size_t)L * sizeof *names);
    const char **np = malloc((size_t)L * sizeof *np);
    char path[4200];
    rwkv_status st = !x || !v || !names || !np ? rwkv_error_set(RWKV_ERR_NOMEM, "decay plots") : RWKV_OK;
    for (int l = 0; l < L && !st; l++) snprintf(names[l], sizeof names[l], "layer %d", l), np[l] = names[l];
    if (!st) {
        for (int h = 0; h < H; h++) x[h] = h;
        snprintf(path, sizeof path, "%s_heads.png", stem);
        rwkv_plot_opts o = {.title = "per-token half-life per head (median of channels, 10-90%)", .xlabel = "head",
                            .ylabel = "half-life (tokens)", .logy = 1};
        st = rwkv_plot_lines_ci(path, &o, x, d->head_med, d->head_p10, d->head_p90, H, L, np);
    }
    if (!st) {
        memcpy(v, d->hl_med, (size_t)L * C * sizeof *v);
        for (int l = 0; l < L; l++) qsort(v + (size_t)l * C, (size_t)C, sizeof *v, cmp_double);
        for (int c = 0; c < C; c++) x[c] = c;
        snprintf(path, sizeof path, "%s_halflife_sorted.png", stem);
        rwkv_plot_opts o = {.title = "sorted median per-token half-lives", .xlabel = "channel rank",
                            .ylabel = "half-life (tokens)", .logy = 1};
        st = rwkv_plot_lines(path, &o, x, v, C, L, np);
    }
    free(x), free(v), free(names), free(np);
    return st;
}

static int decay_v7(const rwkv_model *m, const cli_input *in, const char *out, int no_plots) {
    if (!cli_input_given(in))
        return cli_usage_error(CMD, "an RWKV-6/7 model's decay depends on the tokens: give --bytes, --text or --file");
    int *ids = NULL;
    size_t T = 0;
    rwkv_decay_v7 *d = NULL;
    rwkv_status st = cli_input_tokens(in, m->cfg.n_vocab, &ids, &T, NULL);
    if (!st && T > V7_MAX_TOKENS) {
        fprintf(stderr, "analyze decay: using the first %d of %zu tokens\n", V7_MAX_TOKENS, T);
        T = V7_MAX_TOKENS;
    }
    if (!st) st = rwkv_decay_v7_compute(&d, m, ids, (int64_t)T);
    if (!st) st = rwkv_decay_v7_write_csv(d, out);
    if (!st && !no_plots) {
        char stem[4096];
        stem_of(stem, sizeof stem, out);
        st = plot_v7(d, stem);
    }
    free(ids);
    if (st) {
        rwkv_decay_v7_free(d);
        return cli_fail(CMD, st, st == RWKV_ERR_UNSUPPORTED ? "use --no-plots to skip the plots" : NULL);
    }
    printf("per-token half-life over %lld tokens (tokens; per head: median of its channels' medians [10%%, 90%%])\n",
           (long long)d->T);
    for (int l = 0; l < d->n_layer; l++) {
        printf("layer %d:", l);
        for (int h = 0; h < d->n_head; h++) {
            int k = l * d->n_head + h;
            printf(" %.3g [%.3g, %.3g]", d->head_med[k], d->head_p10[k], d->head_p90[k]);
        }
        printf("\n");
    }
    rwkv_decay_v7_free(d);
    return CLI_OK;
}

int cli_analyze_decay(int argc, char **argv) {
    enum { O_NO_PLOTS = CLI_OPT_USER };
    static const struct option OPTS[] = {{"no-plots", no_argument, NULL, O_NO_PLOTS}, CLI_OPTIONS_INPUT,
                                         CLI_OPTIONS_OUTPUT, CLI_OPTIONS_END};
    if (argc < 2) {
        usage(stderr);
        return CLI_USAGE;
    }
    const char *out = NULL;
    int no_plots = 0, force = 0;
    cli_input in = {0};
    cli_parser p = {.cmd = CMD, .help = usage, .opts = OPTS, .max_args = 1, .in = &in, .out = &out, .force = &force,
                    .out_seekable = "decay.csv with its plots beside it (the summary goes to stdout)"};
    const char *v;
    while (cli_opt_next(&p, argc, argv, &v) != -1) no_plots = 1;
    if (p.status) return cli_opt_exit(p.status);
    const char *model = p.args[0];
    if (!model) return cli_usage_error(CMD, "MODEL is required");
    if (!out) return cli_usage_error(CMD, "-o decay.csv is required");
    if (!cli_check_output(CMD, out, force)) return CLI_USAGE;
    rwkv_model *m = NULL;
    rwkv_decay *d = NULL;
    rwkv_status st = rwkv_model_load(&m, model);
    if (!st && (RWKV_IS_V7(m->cfg) || m->cfg.version == RWKV_VERSION_6)) {
        int rc = decay_v7(m, &in, out, no_plots);
        rwkv_model_free(m);
        return rc;
    }
    if (!st) st = rwkv_model_require_v4(m, "analyze decay");
    if (!st) st = rwkv_decay_compute(&d, m);
    if (!st) st = rwkv_decay_write_csv(d, out);
    if (!st && !no_plots) {
        char stem[4096];
        stem_of(stem, sizeof stem, out);
        st = rwkv_decay_plot(d, stem);
    }
    int rc = CLI_OK;
    if (st) rc = cli_fail(CMD, st, st == RWKV_ERR_UNSUPPORTED ? "use --no-plots to skip the plots" : NULL);
    else summary(d);
    rwkv_decay_free(d);
    rwkv_model_free(m);
    return rc;
}
