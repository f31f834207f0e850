// cmd_plot.c: rwkvscope plot DUMP.h5: state dynamics over time from a dump.
#include "analyses/dynamics.h"
#include "cli.h"
#include "input.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char cmd_plot_summary[] = "plot taps of a dump over time: heatmaps, channel lines, state norms";

#define CMD "plot"

static void usage(FILE *f) {
    fprintf(f,
            "usage: rwkvscope plot DUMP.h5 --tap blocks.2.state_num --kind heatmap|lines|norm\n"
            "                      [--channels 0,5,9] [--seq S] [--width W] [--height H]\n"
            "                      [--title TEXT] -o out.png|out.svg\n\n"
            "Draws one tap of one dumped sequence over its positions (gnuplot):\n"
            "  heatmap  channels x time (all channels, or --channels)\n"
            "  lines    one line per channel (--channels, default the first %d)\n"
            "  norm     the L2 norm over channels per position, one line per layer that holds the tap\n"
            "Taps: blocks.<l>.<name> (names as in the dump: state_num, att_wkv, ...), logits,\n"
            "resid_out, and the derived blocks.<l>.state_num/den (num / den: the normalised state).\n"
            "The data (out.csv) and gnuplot script (out.gp) are written beside the image.\n\n"
            "  --seq S              sequence of the dump (default 0)\n"
            "  --width W --height H image size in pixels (default 800 x 600)\n",
            RWKV_DYN_DEFAULT_LINES);
}

int cmd_plot(int argc, char **argv) {
    if (argc < 2 || cli_wants_help(argc, argv)) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? CLI_USAGE : CLI_OK;
    }
    const char *dump = NULL, *tap = NULL, *kind_s = "heatmap", *out = NULL, *channels_s = NULL, *title = NULL;
    long seq = 0, width = 0, height = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (a[0] != '-') {
            if (dump) return cli_usage_error(CMD, "unexpected argument '%s'", a);
            dump = a;
            continue;
        }
        if (i + 1 >= argc) return cli_usage_error(CMD, "unknown option or missing value: %s", a);
        const char *v = argv[++i];
        if (!strcmp(a, "--tap")) tap = v;
        else if (!strcmp(a, "--kind")) kind_s = v;
        else if (!strcmp(a, "-o")) out = v;
        else if (!strcmp(a, "--channels")) channels_s = v;
        else if (!strcmp(a, "--title")) title = v;
        else if (!strcmp(a, "--seq")) { if (!cli_parse_int(CMD, a, v, 0, 1L << 30, &seq)) return CLI_USAGE; }
        else if (!strcmp(a, "--width")) { if (!cli_parse_int(CMD, a, v, 16, 20000, &width)) return CLI_USAGE; }
        else if (!strcmp(a, "--height")) { if (!cli_parse_int(CMD, a, v, 16, 20000, &height)) return CLI_USAGE; }
        else return cli_usage_error(CMD, "unknown option %s", a);
    }
    if (!dump) return cli_usage_error(CMD, "DUMP.h5 is required");
    if (!tap) return cli_usage_error(CMD, "--tap is required (e.g. blocks.0.state_num)");
    if (!out) return cli_usage_error(CMD, "-o out.png is required");
    rwkv_dyn_kind kind;
    if (rwkv_dyn_parse_kind(kind_s, &kind)) return cli_usage_error(CMD, "%s", rwkv_error_message());
    int *ch = NULL;
    size_t nch = 0;
    if (channels_s && cli_parse_id_list(channels_s, &ch, &nch))
        return cli_usage_error(CMD, "--channels: expected a list like 0,5,9");
    char t[512], ylabel[128];
    const char *shown = tap; // a norm plot draws every layer: drop the "blocks.<l>." prefix
    if (kind == RWKV_DYN_NORM && !strncmp(tap, "blocks.", 7) && strchr(tap + 7, '.')) shown = strchr(tap + 7, '.') + 1;
    snprintf(t, sizeof t, "%s%s (sequence %ld)", shown, kind == RWKV_DYN_NORM ? " per layer" : "", seq);
    snprintf(ylabel, sizeof ylabel, kind == RWKV_DYN_HEATMAP ? "channel"
                                    : kind == RWKV_DYN_NORM ? "L2 norm over channels" : "value");
    rwkv_plot_opts o = {.title = title ? title : t, .xlabel = "position", .ylabel = ylabel,
                        .width = (int)width, .height = (int)height};
    rwkv_status st = rwkv_dyn_plot(dump, tap, kind, (int)seq, ch, (int)nch, &o, out);
    free(ch);
    int no_gnuplot = st == RWKV_ERR_UNSUPPORTED && strstr(rwkv_error_message(), "gnuplot"); // not a dump version
    if (st) return cli_fail(CMD, st, no_gnuplot ? "install gnuplot-nox" : NULL);
    fprintf(stderr, "plot: wrote %s\n", out);
    return CLI_OK;
}
