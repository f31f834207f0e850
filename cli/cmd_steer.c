// cmd_steer.c: rwkvscope steer build | sweep: steering vectors by contrastive activation
// addition, and the shift they cause in the probabilities of chosen answers.
#include "analyses/steer.h"
#include "cli.h"
#include "core/base/file.h"
#include "datasets/prompts.h"
#include "input.h"
#include "options.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char cmd_steer_summary[] = "steering vectors: build from contrastive prompts, sweep layer x multiplier";

#define STEER_MAX_LIST 256 // layers or multipliers in a sweep

static void usage(FILE *f) {
    fprintf(f, "usage: rwkvscope steer build MODEL --pos FILE --neg FILE --tap blocks.L.TAP -o VEC.h5 [options]\n"
           "       rwkvscope steer sweep MODEL --vec VEC.h5 --layers LIST --multipliers LIST --prompt TEXT\n"
           "                             --answers A,B [-o sweep.csv] [options]\n\n"
           "build: the mean of TAP at the last position over the prompts of --pos (one per line, or JSONL) minus\n"
           "  the mean over those of --neg; for a state tap, the state after the last token. Writes\n"
           "  /vector [D] and the tap, layer and model shape as attributes (docs/interventions.md).\n"
           "  Any block tap the model has: on RWKV-5.2/6/7 e.g. resid_in, att_out, ffn_out, or state_wkv\n"
           "  (the mean difference of the (H, N, N) matrix states, added to the state where it is applied).\n"
           "sweep: adds multiplier * vector at blocks.<layer>.<tap> (the vector's tap) for every layer\n"
           "  and multiplier, and reports p(A), p(B) at the last position of the prompt and their shift\n"
           "  from the unsteered run, as CSV: layer,multiplier,p_a,p_b,dp_a,dp_b,logit_diff.\n\n"
           "options:\n"
           "  --pos FILE, --neg FILE  build: the positive and negative prompts, one per line\n"
           "  --vec FILE           sweep: the steering vector (from build)\n"
           "  --layers LIST        sweep: layers to steer, e.g. 0,2,4\n"
           "  --multipliers LIST   sweep: multipliers, e.g. -4,-2,0,2,4\n"
           "  --prompt TEXT        sweep: the prompt\n"
           "  --answers A,B        sweep: the two answers whose probabilities are reported\n"
           "  --tokenizer SPEC     for the prompts and answers (default: the model's, else bytes)\n"
           "  --positions POS      sweep: where to add (default: *; e.g. last, 10-20)\n"
           "  --tap NAME           sweep: the tap name, when the vector file does not say\n"
           "  --mode seq|par       sequential or parallel mode (default: par)\n"
           "  --force              replace an existing -o FILE\n"
           "  --no-plot            sweep: no plot (default: beside -o as OUT.plot.png, log p(A) - log p(B) against\n"
           "                       the multiplier, one curve per layer)\n"
           "  -o, --output FILE    build: the vector (HDF5); sweep: the CSV (default or -: stdout)\n"
           CLI_MODEL_HELP "\n"
           "A and B are token ids, or text that encodes to one token.\n");
}

typedef struct {
    const char *sub, *model, *pos, *neg, *tap, *out, *vec, *layers, *mults, *prompt, *answers, *tokenizer, *positions,
        *mode;
    int force, no_plot;
    cli_model_opts mo;
} steer_args;

enum { O_POS = CLI_OPT_USER, O_NEG, O_TAP, O_VEC, O_LAYERS, O_MULTIPLIERS, O_PROMPT, O_ANSWERS, O_TOKENIZER,
       O_POSITIONS, O_MODE, O_NO_PLOT };

static int parse_args(steer_args *a, int argc, char **argv) {
    static const struct option OPTS[] = {
        {"pos", required_argument, NULL, O_POS}, {"neg", required_argument, NULL, O_NEG},
        {"tap", required_argument, NULL, O_TAP}, {"vec", required_argument, NULL, O_VEC},
        {"layers", required_argument, NULL, O_LAYERS}, {"multipliers", required_argument, NULL, O_MULTIPLIERS},
        {"prompt", required_argument, NULL, O_PROMPT}, {"answers", required_argument, NULL, O_ANSWERS},
        {"tokenizer", required_argument, NULL, O_TOKENIZER}, {"positions", required_argument, NULL, O_POSITIONS},
        {"mode", required_argument, NULL, O_MODE}, {"no-plot", no_argument, NULL, O_NO_PLOT},
        CLI_OPTIONS_MODEL, CLI_OPTIONS_OUTPUT, CLI_OPTIONS_END};
    const char **slots[] = {[O_POS - CLI_OPT_USER] = &a->pos, &a->neg, &a->tap, &a->vec, &a->layers, &a->mults,
                            &a->prompt, &a->answers, &a->tokenizer, &a->positions, &a->mode};
    cli_parser p = {.cmd = "steer", .help = usage, .opts = OPTS, .max_args = 2, .model = &a->mo, .out = &a->out,
                    .force = &a->force};
    const char *v;
    for (int c; (c = cli_opt_next(&p, argc, argv, &v)) != -1;) {
        if (c == O_NO_PLOT) a->no_plot = 1;
        else *slots[c - CLI_OPT_USER] = c == O_POS || c == O_NEG ? cli_path_in(v) : v;
    }
    if (p.status) return p.status;
    a->sub = p.args[0], a->model = p.args[1];
    if (!a->sub || (strcmp(a->sub, "build") && strcmp(a->sub, "sweep")))
        return cli_usage_error("steer", "expected a sub-command: build or sweep");
    if (!a->model) return cli_usage_error("steer", "missing MODEL");
    if (!a->mode) a->mode = "par";
    if (strcmp(a->mode, "seq") && strcmp(a->mode, "par")) return cli_usage_error("steer", "--mode expects seq or par");
    if (!strcmp(a->sub, "build") && (!a->pos || !a->neg || !a->tap || !a->out))
        return cli_usage_error("steer", "build needs --pos FILE, --neg FILE, --tap blocks.L.TAP and -o VEC.h5");
    if (!strcmp(a->sub, "sweep") && (!a->vec || !a->layers || !a->mults || !a->prompt || !a->answers))
        return cli_usage_error("steer", "sweep needs --vec, --layers, --multipliers, --prompt and --answers");
    if (!strcmp(a->sub, "build") && cli_refuse_stdout("steer build", "-o", a->out, "an HDF5 vector")) return CLI_USAGE;
    if (!cli_check_output("steer", a->out, a->force)) return CLI_USAGE;
    if (a->out && !strcmp(a->out, "-")) a->out = NULL; // sweep: stdout, as without -o (no plot)
    return CLI_OK;
}

static int build(const steer_args *a, rwkv_model *m, rwkv_tokenizer *tok) {
    int layer = 0;
    rwkv_tap tap = RWKV_TAP_RESID_IN;
    rwkv_sequences pos = {0}, neg = {0};
    rwkv_real *vec = NULL;
    rwkv_status st = rwkv_steer_parse_tap(a->tap, m->cfg, &layer, &tap);
    if (st) return cli_fail("steer", st, NULL);
    if (!cli_check_output("steer", a->out, a->force)) return CLI_USAGE;
    int D = rwkv_tap_width(tap, m->cfg);
    if (!st) st = rwkv_dataset_read_sequences(&pos, a->pos, tok, m->cfg.n_vocab);
    if (!st) st = rwkv_dataset_read_sequences(&neg, a->neg, tok, m->cfg.n_vocab);
    if (!st && !(vec = rwkv_calloc((size_t)D, sizeof *vec, "vector"))) st = RWKV_ERR_NOMEM;
    if (!st) st = rwkv_steer_build_seqs(vec, m, layer, tap, &pos, &neg, !strcmp(a->mode, "seq"));
    if (!st) st = rwkv_steer_write(a->out, vec, D, m->cfg, layer, tap, pos.n, neg.n);
    int rc = st ? cli_fail("steer", st, NULL) : CLI_OK;
    if (!st)
        fprintf(stderr, "steer: %s from %d positive and %d negative prompts, |v| = %.6g -> %s\n", a->tap, pos.n, neg.n,
                rwkv_steer_norm(vec, D), a->out);
    free(vec);
    rwkv_sequences_free(&pos);
    rwkv_sequences_free(&neg);
    return rc;
}

// A comma-separated list of numbers (integers if ints) into out.
static int parse_list(const char *opt, const char *s, double *out, int *n, int ints) {
    *n = 0;
    const char *p = s;
    while (*p) {
        char *end;
        errno = 0;
        double v = strtod(p, &end);
        if (end == p || errno || (*end && *end != ',') || *n == STEER_MAX_LIST || (ints && (v != (int)v || v < 0)))
            return cli_usage_error("steer", "%s: '%s' is not a list of %s (at most %d)", opt, s, ints ? "layers" : "numbers",
                                   STEER_MAX_LIST);
        out[(*n)++] = v;
        p = *end ? end + 1 : end;
    }
    if (!*n) return cli_usage_error("steer", "%s: empty list", opt);
    return CLI_OK;
}

// The plot beside the CSV: OUT.plot.png (its data: .plot.csv, not the CSV).
static void plot_sweep(const char *csv, const rwkv_steer_point *pts, int nl, int nm) {
    char out[1100];
    snprintf(out, sizeof out, "%s", csv);
    char *dot = strrchr(out, '.');
    if (dot && !strcmp(dot, ".csv")) *dot = 0;
    strncat(out, ".plot.png", sizeof out - strlen(out) - 1);
    if (rwkv_steer_plot(out, pts, nl, nm)) fprintf(stderr, "steer: warning: %s: %s\n", out, rwkv_error_message());
    else fprintf(stderr, "steer: wrote %s\n", out);
}

static int sweep(const steer_args *a, rwkv_model *m, rwkv_tokenizer *tok) {
    double lv[STEER_MAX_LIST], mults[STEER_MAX_LIST];
    int nl, nm, layers[STEER_MAX_LIST], rc;
    if ((rc = parse_list("--layers", a->layers, lv, &nl, 1)) || (rc = parse_list("--multipliers", a->mults, mults, &nm, 0)))
        return rc;
    for (int i = 0; i < nl; i++) layers[i] = (int)lv[i];
    char tap[64];
    rwkv_status st = RWKV_OK;
    if (a->tap) snprintf(tap, sizeof tap, "%s", a->tap);
    else st = rwkv_steer_read_tap(a->vec, tap, sizeof tap);
    int ia = 0, ib = 0, *ids = NULL;
    size_t T = 0;
    if (!st) st = rwkv_steer_parse_answers(a->answers, tok, &ia, &ib);
    if (!st) st = rwkv_tokenizer_encode(tok, a->prompt, strlen(a->prompt), &ids, &T);
    if (!st && T == 0) st = rwkv_error_set(RWKV_ERR_ARG, "--prompt encodes to no tokens");
    rwkv_steer_point *pts = st ? NULL : rwkv_calloc((size_t)nl * nm, sizeof *pts, "sweep");
    if (!st && !pts) st = RWKV_ERR_NOMEM;
    double base[2];
    if (!st)
        st = rwkv_steer_sweep(pts, base, m, a->vec, tap, a->positions ? a->positions : "*", layers, nl, mults, nm, ids,
                              (int64_t)T, ia, ib, !strcmp(a->mode, "seq"));
    FILE *f = stdout;
    rwkv_atomic_file out = {0};
    if (!st && a->out && !(st = rwkv_file_atomic_open(&out, a->out, 1, 1))) f = out.f;
    if (!st) {
        st = rwkv_steer_write_csv(f, pts, nl * nm, base);
        if (a->out && st) rwkv_file_atomic_abort(&out);
        else if (a->out) st = rwkv_file_atomic_commit(&out);
        fprintf(stderr, "steer: unsteered p(A) = %.6g, p(B) = %.6g\n", base[0], base[1]);
        if (!st && a->out && !a->no_plot) plot_sweep(a->out, pts, nl, nm);
    }
    free(pts);
    free(ids);
    return st ? cli_fail("steer", st, NULL) : CLI_OK;
}

int cmd_steer(int argc, char **argv) {
    steer_args a = {0};
    int rc = parse_args(&a, argc, argv);
    if (rc) return cli_opt_exit(rc);
    rwkv_model *m = cli_model_open("steer", a.model, &a.mo);
    if (!m) return CLI_FAIL;
    rwkv_tokenizer *tok = NULL;
    rwkv_status st = rwkv_tokenizer_load(&tok, a.tokenizer ? a.tokenizer : (m->tokenizer[0] ? m->tokenizer : "bytes"));
    if (!st) st = rwkv_tokenizer_check_vocab(tok, m->cfg.n_vocab);
    rc = st ? cli_fail("steer", st, NULL) : !strcmp(a.sub, "build") ? build(&a, m, tok) : sweep(&a, m, tok);
    rwkv_tokenizer_free(tok);
    rwkv_model_free(m);
    return rc;
}
