// cmd_dump.c: rwkvscope dump: run a model with taps and write them to an HDF5 dump.
#include "cli.h"
#include "intervene_opts.h"
#include "options.h"
#include "sequences.h"

#include "core/inspect/state_io.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

const char cmd_dump_summary[] = "run a model and write tapped intermediates to an HDF5 dump";

#define DUMP_DEFAULT_CHUNK 128 // tokens per forward call: GEMM-sized, and bounds the logits buffer

static void usage(FILE *f) {
    fprintf(f, "usage: rwkvscope dump MODEL INPUT --taps PATTERNS -o OUT.h5 [options]\n\n"
           "Runs MODEL on each input sequence (from the zero state, or --state) and writes the\n"
           "selected intermediates at the selected positions to OUT.h5, as the run advances.\n"
           "The schema is in docs/dump-format.md (rwkvscope-dump %d). The file is flushed after\n"
           "each sequence and every --flush-mb MB; Ctrl-C (SIGINT) or SIGTERM stops the run\n"
           "between forward calls and closes it with complete=0 and stopped_at (exit 130). An\n"
           "existing output replaced with --force is written to OUT.h5.tmpXXXXXX and renamed\n"
           "over it only when complete, so a failed or stopped run keeps the old one.\n\n"
           "input (exactly one):\n" CLI_SEQUENCES_HELP
           "\noptions:\n"
           "  --taps PATTERNS      comma-separated globs over blocks.<l>.<tap>, resid_out, logits;\n"
           "                       taps: resid_in att_in att_r att_gate att_k att_v att_wkv att_out\n"
           "                       ffn_in ffn_gate ffn_k ffn_out state_att_xprev state_num\n"
           "                       state_den state_max state_ffn_xprev. '*' selects every tap.\n"
           "  --positions SPEC     all | last | every:N | list like 0,5,10-20,last or 100-last\n"
           "                       (default: all)\n"
           "  --mode seq|par       sequential (RNN) or parallel (GPT) mode (default: par)\n"
           "  --chunk N            tokens per forward call (default: %d)\n"
           "  --state FILE         start every sequence from a saved state (rwkvscope state save)\n"
           "  --matrices           also write the receptance/key/value matrices under /params\n"
           "  -o, --output FILE    the dump to write (required)\n"
           "  --force              replace an existing output\n"
           "  --flush-mb N         flush to disk after every N MB of data (default: 64); a\n"
           "                       killed run keeps everything up to the last flush\n"
           "  --compress WHICH     small (default): deflate every tap but state_wkv, whose\n"
           "                       rows are stored as they are; all: state_wkv too (files\n"
           "                       12-15%% smaller, dumps slower); none: no tap is deflated\n"
           CLI_MODEL_HELP
           CLI_INTERVENE_HELP
           "                       (positions count within each sequence; the dump records the\n"
           "                       values the model used)\n\n"
           "examples:\n"
           "  rwkvscope dump model.pth --bytes 'Hello' --taps 'blocks.*.state_*,logits' -o d.h5\n"
           "  rwkvscope dump model.pth --input prompts.jsonl --taps '*' --positions last -o d.h5\n",
           RWKV_DUMP_SCHEMA_VERSION, DUMP_DEFAULT_CHUNK);
}

typedef struct {
    const char *model, *taps, *positions, *mode, *state, *out, *input, *compress;
    cli_input in;
    cli_model_opts mo;
    cli_intervene_opts iv;
    long chunk, flush_mb;
    int force, matrices;
} dump_opts;

enum { O_TAPS = CLI_OPT_USER, O_POSITIONS, O_MODE, O_CHUNK, O_STATE, O_MATRICES, O_INPUT, O_FLUSH_MB, O_COMPRESS };

// CLI_OK, or the exit status (CLI_USAGE; CLI_DONE after --help).
static int parse(dump_opts *o, int argc, char **argv) {
    static const struct option OPTS[] = {
        {"taps", required_argument, NULL, O_TAPS}, {"positions", required_argument, NULL, O_POSITIONS},
        {"mode", required_argument, NULL, O_MODE}, {"chunk", required_argument, NULL, O_CHUNK},
        {"state", required_argument, NULL, O_STATE}, {"matrices", no_argument, NULL, O_MATRICES},
        {"input", required_argument, NULL, O_INPUT}, {"flush-mb", required_argument, NULL, O_FLUSH_MB},
        {"compress", required_argument, NULL, O_COMPRESS},
        CLI_OPTIONS_INPUT, CLI_OPTIONS_MODEL, CLI_OPTIONS_INTERVENE, CLI_OPTIONS_OUTPUT, CLI_OPTIONS_END};
    *o = (dump_opts){.positions = "all", .mode = "par", .chunk = DUMP_DEFAULT_CHUNK, .compress = "small"};
    cli_parser p = {.cmd = "dump", .help = usage, .opts = OPTS, .max_args = 1, .in = &o->in, .model = &o->mo,
                    .iv = &o->iv, .out = &o->out, .force = &o->force, .out_seekable = "an HDF5 dump"};
    const char *v;
    for (int c; (c = cli_opt_next(&p, argc, argv, &v)) != -1;) {
        switch (c) {
        case O_TAPS: o->taps = v; break;
        case O_POSITIONS: o->positions = v; break;
        case O_MODE: o->mode = v; break;
        case O_STATE: o->state = v; break;
        case O_MATRICES: o->matrices = 1; break;
        case O_INPUT: o->input = cli_path_in(v); break;
        case O_COMPRESS: o->compress = v; break;
        case O_CHUNK: if (!cli_parse_int("dump", "--chunk", v, 1, 1 << 16, &o->chunk)) return CLI_USAGE; break;
        case O_FLUSH_MB: if (!cli_parse_int("dump", "--flush-mb", v, 1, 1 << 20, &o->flush_mb)) return CLI_USAGE; break;
        }
    }
    if (p.status) return p.status;
    o->model = p.args[0];
    if (!o->model) return cli_usage_error("dump", "no MODEL given");
    if (!o->taps) return cli_usage_error("dump", "no --taps given (e.g. --taps 'blocks.*.state_num,logits')");
    if (!o->out) return cli_usage_error("dump", "no output given (-o OUT.h5)");
    if (!!o->input + cli_input_given(&o->in) != 1)
        return cli_usage_error("dump", "give exactly one input: --tokens, --bytes, --text, --file or --input");
    if (strcmp(o->compress, "small") && strcmp(o->compress, "all") && strcmp(o->compress, "none"))
        return cli_usage_error("dump", "--compress expects small, all or none, got '%s'", o->compress);
    if (strcmp(o->mode, "seq") && strcmp(o->mode, "par"))
        return cli_usage_error("dump", "--mode expects seq or par, got '%s'", o->mode);
    return CLI_OK;
}

int cmd_dump(int argc, char **argv) {
    dump_opts o;
    int prc = parse(&o, argc, argv);
    if (prc) { cli_intervene_opts_free(&o.iv); return cli_opt_exit(prc); }
    // Cheap checks first: a refused output or a bad selection should not cost a model load.
    if (!cli_check_output("dump", o.out, o.force)) { cli_intervene_opts_free(&o.iv); return CLI_USAGE; }
    const volatile sig_atomic_t *stop = cli_stop_on_signals(); // a signal while loading stops before the first call
    rwkv_positions pos;
    rwkv_status st = rwkv_select_positions(&pos, o.positions);
    if (st) { cli_intervene_opts_free(&o.iv); return cli_fail("dump", st, NULL); }
    rwkv_model *m = cli_model_open("dump", o.model, &o.mo);
    if (!m) { rwkv_select_positions_free(&pos); cli_intervene_opts_free(&o.iv); return CLI_FAIL; }
    int rc = CLI_FAIL;
    rwkv_sequences seqs = {0};
    rwkv_state *init = NULL;
    uint32_t *mask = calloc((size_t)m->cfg.n_layer + 1, sizeof *mask);
    if (!mask) { rc = cli_fail("dump", rwkv_error_set(RWKV_ERR_NOMEM, "out of memory"), NULL); goto done; }
    if ((st = rwkv_select_taps(mask, m->cfg.n_layer, o.taps)) || (st = rwkv_select_restrict(mask, m->cfg, o.taps))) {
        rc = cli_fail("dump", st, NULL);
        goto done;
    }
    if ((st = cli_sequences_read(&seqs, &o.in, o.input, m->cfg.n_vocab))) {
        rc = cli_fail("dump", st, cli_input_hint());
        goto done;
    }
    if (o.state && ((st = rwkv_state_alloc(&init, m->cfg)) || (st = rwkv_state_load(init, o.state, m)))) {
        rc = cli_fail("dump", st, "save a state of this model with 'rwkvscope state save'");
        goto done;
    }
    rwkv_dump_opts dopt = {.command_line = cli_command_line(), .tokenizer = seqs.tokenizer, .taps = o.taps,
                           .positions = o.positions, .parallel = !strcmp(o.mode, "par"), .force = o.force,
                           .text = seqs.has_text, .matrices = o.matrices, .flush_mb = (int)o.flush_mb,
                           .compress = !strcmp(o.compress, "all")    ? RWKV_DUMP_COMPRESS_ALL
                                       : !strcmp(o.compress, "none") ? RWKV_DUMP_COMPRESS_NONE
                                                                     : RWKV_DUMP_COMPRESS_SMALL,
                           .cancel = stop};
    int replacing = access(o.out, F_OK) == 0;
    int64_t total = 0;
    for (int i = 0; i < seqs.n; i++) total += seqs.items[i].n;
    fprintf(stderr, "dump: %d sequence(s), %lld tokens, %d taps, %s mode -> %s\n", seqs.n, (long long)total,
            rwkv_select_count(mask, m->cfg.n_layer), o.mode, o.out);
    rwkv_dump_sequences_opts so = {.max_T = (int)o.chunk, .init = init, .interventions = o.iv.specs,
                                   .n_interventions = o.iv.n, .progress = cli_sequences_progress};
    st = rwkv_dump_sequences(o.out, m, &seqs, mask, &pos, &dopt, &so);
    if (st == RWKV_ERR_INTERRUPTED) {
        fprintf(stderr, "rwkvscope dump: %s\n", rwkv_error_message());
        rc = CLI_INTERRUPTED;
        goto done;
    }
    if (st) {
        rc = cli_fail("dump", st, replacing ? "the previous output is unchanged"
                                  : access(o.out, F_OK) == 0 ? "the partial output is left with complete=0" : NULL);
        goto done;
    }
    fprintf(stderr, "dump: wrote %s\n", o.out);
    rc = CLI_OK;
done:
    rwkv_select_positions_free(&pos);
    rwkv_sequences_free(&seqs);
    rwkv_state_free(init);
    free(mask);
    rwkv_model_free(m);
    cli_intervene_opts_free(&o.iv);
    return rc;
}
