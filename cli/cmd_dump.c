// cmd_dump.c: rwkvscope dump: run a model with taps and write them to an HDF5 dump.
#include "cli.h"
#include "sequences.h"

#include "core/inspect/state_io.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

const char cmd_dump_summary[] = "run a model and write tapped intermediates to an HDF5 dump";

#define DUMP_DEFAULT_CHUNK 128 // tokens per forward call: GEMM-sized, and bounds the logits buffer

static void usage(void) {
    printf("usage: rwkvscope dump MODEL INPUT --taps PATTERNS -o OUT.h5 [options]\n\n"
           "Runs MODEL on each input sequence (from the zero state, or --state) and writes the\n"
           "selected intermediates at the selected positions to OUT.h5, as the run advances.\n"
           "The schema is in docs/dump-format.md (rwkvscope-dump 1).\n\n"
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
           CLI_MODEL_HELP
           CLI_INTERVENE_HELP
           "                       (positions count within each sequence; the dump records the\n"
           "                       values the model used)\n\n"
           "examples:\n"
           "  rwkvscope dump model.pth --bytes 'Hello' --taps 'blocks.*.state_*,logits' -o d.h5\n"
           "  rwkvscope dump model.pth --input prompts.jsonl --taps '*' --positions last -o d.h5\n",
           DUMP_DEFAULT_CHUNK);
}

typedef struct {
    const char *model, *taps, *positions, *mode, *state, *out, *input;
    cli_input in;
    cli_model_opts mo;
    cli_intervene_opts iv;
    long chunk;
    int force, matrices;
} dump_opts;

static int parse(dump_opts *o, int argc, char **argv) {
    *o = (dump_opts){.positions = "all", .mode = "par", .chunk = DUMP_DEFAULT_CHUNK};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *val = i + 1 < argc ? argv[i + 1] : NULL;
        int r = cli_input_option(&o->in, "dump", argc, argv, &i);
        if (r < 0) return 0;
        if (r) continue;
        if ((r = cli_model_option(&o->mo, "dump", argc, argv, &i)) < 0) return 0;
        if (r) continue;
        if ((r = cli_intervene_option(&o->iv, "dump", argc, argv, &i)) < 0) return 0;
        if (r) continue;
        if (!strcmp(a, "--force")) o->force = 1;
        else if (!strcmp(a, "--matrices")) o->matrices = 1;
        else if (!strcmp(a, "--taps") && val) o->taps = argv[++i];
        else if (!strcmp(a, "--positions") && val) o->positions = argv[++i];
        else if (!strcmp(a, "--mode") && val) o->mode = argv[++i];
        else if (!strcmp(a, "--state") && val) o->state = argv[++i];
        else if (!strcmp(a, "--input") && val) o->input = argv[++i];
        else if ((!strcmp(a, "-o") || !strcmp(a, "--output")) && val) o->out = argv[++i];
        else if (!strcmp(a, "--chunk") && val) { if (!cli_parse_int("dump", a, argv[++i], 1, 1 << 16, &o->chunk)) return 0; }
        else if (a[0] == '-') { cli_usage_error("dump", "unknown option '%s' (or it needs a value)", a); return 0; }
        else if (!o->model) o->model = a;
        else { cli_usage_error("dump", "unexpected argument '%s'", a); return 0; }
    }
    if (!o->model) { cli_usage_error("dump", "no MODEL given"); return 0; }
    if (!o->taps) { cli_usage_error("dump", "no --taps given (e.g. --taps 'blocks.*.state_num,logits')"); return 0; }
    if (!o->out) { cli_usage_error("dump", "no output given (-o OUT.h5)"); return 0; }
    if (!!o->input + cli_input_given(&o->in) != 1) {
        cli_usage_error("dump", "give exactly one input: --tokens, --bytes, --text, --file or --input");
        return 0;
    }
    if (strcmp(o->mode, "seq") && strcmp(o->mode, "par")) { cli_usage_error("dump", "--mode expects seq or par, got '%s'", o->mode); return 0; }
    return 1;
}

int cmd_dump(int argc, char **argv) {
    if (cli_wants_help(argc, argv)) { usage(); return CLI_OK; }
    dump_opts o;
    if (!parse(&o, argc, argv)) { cli_intervene_opts_free(&o.iv); return CLI_USAGE; }
    // Cheap checks first: a refused output or a bad selection should not cost a model load.
    if (!cli_check_output("dump", o.out, o.force)) { cli_intervene_opts_free(&o.iv); return CLI_FAIL; }
    rwkv_positions pos;
    rwkv_status st = rwkv_select_positions(&pos, o.positions);
    if (st) { cli_intervene_opts_free(&o.iv); return cli_fail("dump", st, NULL); }
    rwkv_model *m = cli_model_open("dump", o.model, &o.mo);
    if (!m) { rwkv_select_positions_free(&pos); cli_intervene_opts_free(&o.iv); return CLI_FAIL; }
    int rc = CLI_FAIL;
    cli_sequences seqs = {0};
    rwkv_state *init = NULL;
    uint32_t *mask = calloc((size_t)m->cfg.n_layer + 1, sizeof *mask);
    if (!mask) { rc = cli_fail("dump", rwkv_error_set(RWKV_ERR_NOMEM, "out of memory"), NULL); goto done; }
    if ((st = rwkv_select_taps(mask, m->cfg.n_layer, o.taps))) { rc = cli_fail("dump", st, NULL); goto done; }
    if ((st = cli_sequences_read(&seqs, &o.in, o.input, m->cfg.n_vocab))) {
        rc = cli_fail("dump", st, "token ids must be below the model's vocabulary size");
        goto done;
    }
    if (o.state && ((st = rwkv_state_alloc(&init, m->cfg)) || (st = rwkv_state_load(init, o.state, m)))) {
        rc = cli_fail("dump", st, "save a state of this model with 'rwkvscope state save'");
        goto done;
    }
    rwkv_dump_opts dopt = {.command_line = cli_command_line(), .tokenizer = seqs.tokenizer, .taps = o.taps,
                           .positions = o.positions, .parallel = !strcmp(o.mode, "par"), .force = o.force,
                           .text = seqs.has_text, .matrices = o.matrices};
    int64_t total = 0;
    for (int i = 0; i < seqs.n; i++) total += seqs.items[i].n;
    fprintf(stderr, "dump: %d sequence(s), %lld tokens, %d taps, %s mode -> %s\n", seqs.n, (long long)total,
            rwkv_select_count(mask, m->cfg.n_layer), o.mode, o.out);
    st = cli_dump_sequences(o.out, m, &seqs, mask, &pos, &dopt, (int)o.chunk, init, NULL, &o.iv, 1);
    if (st) {
        rc = cli_fail("dump", st, access(o.out, F_OK) == 0 ? "the partial output is left with complete=0" : NULL);
        goto done;
    }
    fprintf(stderr, "dump: wrote %s\n", o.out);
    rc = CLI_OK;
done:
    rwkv_select_positions_free(&pos);
    cli_sequences_free(&seqs);
    rwkv_state_free(init);
    free(mask);
    rwkv_model_free(m);
    cli_intervene_opts_free(&o.iv);
    return rc;
}
