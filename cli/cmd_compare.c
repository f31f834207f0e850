// cmd_compare.c: rwkvscope compare: sequential vs parallel mode tap by tap, or two dumps.
#include "cli.h"
#include "options.h"
#include "sequences.h"

#include "core/inspect/compare.h"

#include <stdlib.h>
#include <string.h>

const char cmd_compare_summary[] = "compare both modes (or two dumps) tap by tap";

#define COMPARE_EXCEEDED CLI_EXCEEDED // exit status when a tolerance is exceeded
#define COMPARE_CHUNK 128

static void usage(FILE *f) {
    fprintf(f, "usage: rwkvscope compare MODEL INPUT [options]\n"
           "       rwkvscope compare A.h5 B.h5 [options]\n\n"
           "With a model: runs the input in sequential (RNN, the reference) and parallel (GPT)\n"
           "mode with every tap captured, and compares them. With two dumps of the same\n"
           "inputs and positions (modes, precisions or chunkings): compares A (reference) and B.\n"
           "Prints, per tap and layer, the max absolute error, the max relative error\n"
           "(|d| / max(|ref|, %g)), the max error scaled by max(1, |ref|), and the first\n"
           "sequence:position where the scaled error exceeds --tol. The WKV state is stored\n"
           "scaled by e^-max, so it is compared scale-free: state_num as num/den, state_den\n"
           "rescaled to the common max of both runs (the form column says which).\n\n"
           "input (with a model, exactly one):\n" CLI_SEQUENCES_HELP
           "\noptions:\n"
           "  --tol X              tolerance on |a - ref| / max(1, |ref|) (default: %g)\n"
           "  --csv FILE           also write the table as CSV\n"
           "  --force              replace an existing --csv FILE\n"
           "  --chunk N            tokens per parallel call (default: %d)\n"
           "  --only-exceeding     print only the taps that exceed the tolerance\n"
           CLI_MODEL_HELP "\n"
           "exit status: 0 when every tap is within --tol, %d when one exceeds it (below).\n",
           RWKV_COMPARE_REL_FLOOR, RWKV_COMPARE_TOL, COMPARE_CHUNK, COMPARE_EXCEEDED);
}

typedef struct {
    const char *pos[2], *csv, *input;
    int npos, only_exceeding, force;
    cli_input in;
    cli_model_opts mo;
    double tol;
    long chunk;
} compare_opts;

enum { O_TOL = CLI_OPT_USER, O_CSV, O_CHUNK, O_ONLY_EXCEEDING, O_INPUT };

static int parse(compare_opts *o, int argc, char **argv) {
    static const struct option OPTS[] = {
        {"tol", required_argument, NULL, O_TOL}, {"csv", required_argument, NULL, O_CSV},
        {"chunk", required_argument, NULL, O_CHUNK}, {"only-exceeding", no_argument, NULL, O_ONLY_EXCEEDING},
        {"input", required_argument, NULL, O_INPUT}, {"force", no_argument, NULL, CLI_OPT_FORCE},
        CLI_OPTIONS_INPUT, CLI_OPTIONS_MODEL, CLI_OPTIONS_END};
    *o = (compare_opts){.tol = RWKV_COMPARE_TOL, .chunk = COMPARE_CHUNK};
    cli_parser p = {.cmd = "compare", .help = usage, .opts = OPTS, .max_args = 2, .in = &o->in, .model = &o->mo,
                    .force = &o->force};
    const char *v;
    for (int c; (c = cli_opt_next(&p, argc, argv, &v)) != -1;) {
        switch (c) {
        case O_ONLY_EXCEEDING: o->only_exceeding = 1; break;
        case O_CSV: o->csv = v; break;
        case O_INPUT: o->input = cli_path_in(v); break;
        case O_TOL: if (!cli_parse_double("compare", "--tol", v, &o->tol)) return CLI_USAGE; break;
        case O_CHUNK: if (!cli_parse_int("compare", "--chunk", v, 1, 1 << 16, &o->chunk)) return CLI_USAGE; break;
        }
    }
    if (p.status) return p.status;
    o->npos = p.nargs;
    o->pos[0] = p.args[0], o->pos[1] = p.args[1];
    if (o->tol <= 0) return cli_usage_error("compare", "--tol must be positive");
    int inputs = !!o->input + cli_input_given(&o->in);
    if (o->npos == 2 && inputs) return cli_usage_error("compare", "two dumps take no input options");
    if (o->npos == 1 && inputs != 1)
        return cli_usage_error("compare", "give exactly one input: --tokens, --bytes, --text, --file or --input");
    if (!o->npos) return cli_usage_error("compare", "give MODEL INPUT or two dumps A.h5 B.h5");
    // The table goes to stdout: the CSV cannot. An existing CSV needs --force.
    if (cli_refuse_stdout("compare", "--csv", o->csv, "the CSV (stdout carries the table)")) return CLI_USAGE;
    if (o->csv && !cli_check_output("compare", o->csv, o->force)) return CLI_USAGE;
    return CLI_OK;
}

static void print_table(const rwkv_compare_result *r, int only_exceeding) {
    printf("%-40s %12s %12s %12s  %s\n", "tap", "max_abs", "max_rel", "max_scaled", "first exceeding (seq:pos)");
    for (int i = 0; i < r->n; i++) {
        const rwkv_compare_row *x = &r->rows[i];
        if (only_exceeding && x->first_row < 0) continue;
        char name[128];
        snprintf(name, sizeof name, "%s%s%s", x->name, strcmp(x->form, "value") ? " as " : "",
                 strcmp(x->form, "value") ? x->form : "");
        printf("%-40s %12.3e %12.3e %12.3e  ", name, x->max_abs, x->max_rel, x->max_scaled);
        if (x->first_row < 0) printf("-\n");
        else printf("%lld:%lld (channel %lld)\n", (long long)x->first_seq, (long long)x->first_pos,
                    (long long)x->first_channel);
    }
    if (r->first < 0) {
        printf("agreement: all %d taps within tol %g\n", r->n, r->tol);
    } else {
        const rwkv_compare_row *f = &r->rows[r->first];
        printf("first divergence: %s at sequence %lld position %lld channel %lld (%d of %d taps exceed tol %g)\n",
               f->name, (long long)f->first_seq, (long long)f->first_pos, (long long)f->first_channel,
               r->n_exceeded, r->n, r->tol);
    }
}

// Compares both modes of the model on the input, in memory.
static rwkv_status compare_modes(const compare_opts *o, rwkv_compare_result *r) {
    rwkv_model *m = cli_load_model("compare", o->pos[0], o->mo.weights ? o->mo.weights : "auto");
    if (!m) return RWKV_ERR_IO; // already reported
    rwkv_sequences seqs = {0};
    rwkv_status st = cli_sequences_read(&seqs, &o->in, o->input, m->cfg.n_vocab);
    if (!st) {
        fprintf(stderr, "compare: %d sequence(s), sequential and parallel mode\n", seqs.n);
        rwkv_compare_modes_opts co = {.max_T = (int)o->chunk};
        st = rwkv_compare_modes(r, m, &seqs, o->tol, &co);
    }
    if (st) cli_fail("compare", st, cli_input_hint()); // NULL unless the input failed
    rwkv_sequences_free(&seqs);
    rwkv_model_free(m);
    return st;
}

int cmd_compare(int argc, char **argv) {
    compare_opts o;
    int prc = parse(&o, argc, argv);
    if (prc) return cli_opt_exit(prc);
    cli_set_threads((int)o.mo.threads); // also for comparing two dumps
    rwkv_compare_result r;
    rwkv_status st;
    if (o.npos == 1) {
        if (compare_modes(&o, &r)) return CLI_FAIL; // already reported
    } else if ((st = rwkv_compare_dumps(&r, o.pos[0], o.pos[1], o.tol))) {
        return cli_fail("compare", st, "both files must be rwkvscope dumps of the same inputs");
    }
    print_table(&r, o.only_exceeding);
    int rc = r.n_exceeded ? COMPARE_EXCEEDED : CLI_OK;
    if (o.csv && (st = rwkv_compare_write_csv(&r, o.csv, 1))) rc = cli_fail("compare", st, NULL); // checked by parse
    rwkv_compare_free(&r);
    return rc;
}
