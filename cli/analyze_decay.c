// analyze_decay.c: rwkvscope analyze decay MODEL: decay / half-life / time_first spectra.
#include "analyses/decay.h"
#include "analyze.h"
#include "cli.h"
#include "options.h"

#include <gsl/gsl_statistics_double.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define CMD "analyze decay"

static void usage(FILE *f) {
    fprintf(f,
            "usage: rwkvscope analyze decay MODEL -o decay.csv [--no-plots] [--force]\n\n"
            "Per channel of each layer: w = exp(time_decay) (the state keeps e^-w per token),\n"
            "the half-life ln2/w in tokens, and time_first u (the current token's bonus).\n"
            "Writes decay.csv (layer,channel,time_decay,w,retention,half_life,time_first) and\n"
            "decay_halflife_hist.png, decay_halflife_sorted.png, decay_time_first_hist.png\n"
            "(each with its data), and prints a per-layer summary.\n\n"
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

int cli_analyze_decay(int argc, char **argv) {
    enum { O_NO_PLOTS = CLI_OPT_USER };
    static const struct option OPTS[] = {{"no-plots", no_argument, NULL, O_NO_PLOTS}, CLI_OPTIONS_OUTPUT,
                                         CLI_OPTIONS_END};
    if (argc < 2) {
        usage(stderr);
        return CLI_USAGE;
    }
    const char *out = NULL;
    int no_plots = 0, force = 0;
    cli_parser p = {.cmd = CMD, .help = usage, .opts = OPTS, .max_args = 1, .out = &out, .force = &force,
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
    if (!st) st = rwkv_model_require_v4(m, "analyze decay");
    if (!st) st = rwkv_decay_compute(&d, m);
    if (!st) st = rwkv_decay_write_csv(d, out);
    if (!st && !no_plots) {
        char stem[4096];
        const char *dot = strrchr(out, '.'), *slash = strrchr(out, '/');
        size_t k = (dot && (!slash || dot > slash)) ? (size_t)(dot - out) : strlen(out);
        snprintf(stem, sizeof stem, "%.*s", (int)k, out);
        st = rwkv_decay_plot(d, stem);
    }
    int rc = CLI_OK;
    if (st) rc = cli_fail(CMD, st, st == RWKV_ERR_UNSUPPORTED ? "use --no-plots to skip the plots" : NULL);
    else summary(d);
    rwkv_decay_free(d);
    rwkv_model_free(m);
    return rc;
}
