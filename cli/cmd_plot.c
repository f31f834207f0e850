// cmd_plot.c: rwkvscope plot DUMP.h5: state dynamics over time from a dump.
#include "analyses/dynamics.h"
#include "cli.h"
#include "input.h"
#include "options.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char cmd_plot_summary[] = "plot taps of a dump over time: heatmaps, channel lines, state norms";

#define CMD "plot"

static void usage(FILE *f) {
    fprintf(f,
            "usage: rwkvscope plot DUMP.h5 --tap blocks.2.state_num --kind heatmap|lines|norm\n"
            "                      [--channels 0,5,9] [--seq S] [--width W] [--height H]\n"
            "                      [--title TEXT] [--force] -o out.png|out.svg\n\n"
            "Draws one tap of one dumped sequence over its positions (gnuplot):\n"
            "  heatmap  channels x time (all channels, or --channels)\n"
            "  lines    one line per channel (--channels, default the first %d)\n"
            "  norm     the L2 norm over channels per position, one line per layer that holds the tap\n"
            "Taps: blocks.<l>.<name> (names as in the dump: state_num, att_wkv, ...), logits,\n"
            "resid_out, and the derived blocks.<l>.state_num/den (num / den: the normalised state).\n"
            "The data (out.csv) and gnuplot script (out.gp) are written beside the image.\n\n"
            "  --tap NAME           the tap (required)\n"
            "  --kind K             heatmap | lines | norm (default heatmap)\n"
            "  --channels LIST      channels to draw, e.g. 0,5,9\n"
            "  --title TEXT         the plot's title\n"
            "  -o, --output FILE    the image, .png or .svg (required)\n"
            "  --seq S              sequence of the dump (default 0)\n"
            "  --width W --height H image size in pixels (default 800 x 600)\n"
            "  --force              replace an existing image\n",
            RWKV_DYN_DEFAULT_LINES);
}

int cmd_plot(int argc, char **argv) {
    enum { O_TAP = CLI_OPT_USER, O_KIND, O_CHANNELS, O_TITLE, O_SEQ, O_WIDTH, O_HEIGHT };
    static const struct option OPTS[] = {
        {"tap", required_argument, NULL, O_TAP}, {"kind", required_argument, NULL, O_KIND},
        {"channels", required_argument, NULL, O_CHANNELS}, {"title", required_argument, NULL, O_TITLE},
        {"seq", required_argument, NULL, O_SEQ}, {"width", required_argument, NULL, O_WIDTH},
        {"height", required_argument, NULL, O_HEIGHT}, CLI_OPTIONS_OUTPUT, CLI_OPTIONS_END};
    if (argc < 2) {
        usage(stderr);
        return CLI_USAGE;
    }
    const char *tap = NULL, *kind_s = "heatmap", *out = NULL, *channels_s = NULL, *title = NULL;
    long seq = 0, width = 0, height = 0;
    int force = 0;
    cli_parser p = {.cmd = CMD, .help = usage, .opts = OPTS, .max_args = 1, .out = &out, .force = &force,
                    .out_seekable = "an image with its data and script beside it"};
    const char *v;
    for (int c; (c = cli_opt_next(&p, argc, argv, &v)) != -1;) {
        int ok = 1;
        switch (c) {
        case O_TAP: tap = v; break;
        case O_KIND: kind_s = v; break;
        case O_CHANNELS: channels_s = v; break;
        case O_TITLE: title = v; break;
        case O_SEQ: ok = cli_parse_int(CMD, "--seq", v, 0, 1L << 30, &seq); break;
        case O_WIDTH: ok = cli_parse_int(CMD, "--width", v, 16, 20000, &width); break;
        case O_HEIGHT: ok = cli_parse_int(CMD, "--height", v, 16, 20000, &height); break;
        }
        if (!ok) return CLI_USAGE;
    }
    if (p.status) return cli_opt_exit(p.status);
    const char *dump = p.args[0];
    if (!dump) return cli_usage_error(CMD, "DUMP.h5 is required");
    if (!tap) return cli_usage_error(CMD, "--tap is required (e.g. blocks.0.state_num)");
    if (!out) return cli_usage_error(CMD, "-o out.png is required");
    if (!cli_check_output(CMD, out, force)) return CLI_USAGE;
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
