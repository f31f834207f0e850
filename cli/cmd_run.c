// cmd_run.c: rwkvscope run: the next-token distribution after an input, in either mode.
#include "cli.h"
#include "input.h"
#include "intervene_opts.h"
#include "options.h"

#include "core/base/file.h"
#include "core/compute/forward.h"
#include "core/inspect/state_io.h"
#include "core/compute/sample.h"

#include <stdlib.h>
#include <string.h>

const char cmd_run_summary[] = "run a model on an input and print the top next tokens";

static void usage(FILE *f) {
    fprintf(f, "usage: rwkvscope run MODEL INPUT [options]\n\n"
           "Runs MODEL on the input and prints the K most likely next tokens with their\n"
           "probabilities, after the last position (or after every position).\n\n"
           "input (exactly one):\n" CLI_INPUT_HELP
           "\noptions:\n"
           "  --mode seq|par       sequential (RNN) or parallel (GPT) mode (default: par)\n"
           "  --chunk N            tokens per parallel call (default: 512)\n"
           "  --top-k K            how many tokens to list (default: 5)\n"
           "  --all-positions      list the top tokens after every position\n"
           "  --logits FILE        write the raw logits, float32 little-endian [T, V]\n"
           "  --force              replace an existing --logits FILE\n"
           "  --state FILE         start from a saved RNN state (rwkvscope state save)\n"
           CLI_MODEL_HELP
           CLI_INTERVENE_HELP "\n"
           "example:\n  rwkvscope run model.pth --bytes 'Hello' --top-k 3\n");
}

typedef struct {
    const char *model, *mode, *logits_path, *state;
    cli_input in;
    cli_model_opts mo;
    cli_intervene_opts iv;
    long top_k, chunk;
    int all_positions, force;
} run_opts;

enum { O_MODE = CLI_OPT_USER, O_LOGITS, O_STATE, O_TOP_K, O_CHUNK, O_ALL_POSITIONS };

static int parse(run_opts *o, int argc, char **argv) {
    static const struct option OPTS[] = {
        {"mode", required_argument, NULL, O_MODE}, {"logits", required_argument, NULL, O_LOGITS},
        {"state", required_argument, NULL, O_STATE}, {"top-k", required_argument, NULL, O_TOP_K},
        {"chunk", required_argument, NULL, O_CHUNK}, {"all-positions", no_argument, NULL, O_ALL_POSITIONS},
        {"force", no_argument, NULL, CLI_OPT_FORCE}, CLI_OPTIONS_INPUT, CLI_OPTIONS_MODEL, CLI_OPTIONS_INTERVENE,
        CLI_OPTIONS_END};
    *o = (run_opts){.mode = "par", .top_k = 5, .chunk = 512};
    cli_parser p = {.cmd = "run", .help = usage, .opts = OPTS, .max_args = 1, .in = &o->in, .model = &o->mo,
                    .iv = &o->iv, .force = &o->force};
    const char *v;
    for (int c; (c = cli_opt_next(&p, argc, argv, &v)) != -1;) {
        int ok = 1;
        switch (c) {
        case O_ALL_POSITIONS: o->all_positions = 1; break;
        case O_MODE: o->mode = v; break;
        case O_LOGITS: o->logits_path = v; break;
        case O_STATE: o->state = v; break;
        case O_TOP_K: ok = cli_parse_int("run", "--top-k", v, 1, 1000000, &o->top_k); break;
        case O_CHUNK: ok = cli_parse_int("run", "--chunk", v, 1, 1 << 20, &o->chunk); break;
        }
        if (!ok) return CLI_USAGE;
    }
    if (p.status) return p.status;
    o->model = p.args[0];
    if (!o->model) return cli_usage_error("run", "no MODEL given");
    if (!cli_input_given(&o->in)) return cli_usage_error("run", "no input: give --tokens, --bytes, --text or --file");
    if (strcmp(o->mode, "seq") && strcmp(o->mode, "par"))
        return cli_usage_error("run", "--mode expects seq or par, got '%s'", o->mode);
    if (cli_refuse_stdout("run", "--logits", o->logits_path, "binary logits (stdout carries the top tokens)"))
        return CLI_USAGE;
    if (o->logits_path && !cli_check_output("run", o->logits_path, o->force)) return CLI_USAGE;
    return CLI_OK;
}

static void print_top(const rwkv_real *logits, int V, int k, int64_t pos, const rwkv_tokenizer *tok,
                      double *probs, int *ids) {
    rwkv_sample_softmax(probs, logits, V, 1);
    rwkv_sample_top_k(ids, probs, V, k);
    printf("position %lld:", (long long)pos);
    for (int j = 0; j < k; j++) {
        printf(" %d (%.4f)", ids[j], probs[ids[j]]);
        size_t len;
        const char *piece = tok ? rwkv_tokenizer_piece(tok, ids[j], &len) : NULL;
        if (piece) {
            printf(" \"");
            for (size_t c = 0; c < len; c++) {
                unsigned char ch = (unsigned char)piece[c];
                if (ch == '"' || ch == '\\') printf("\\%c", ch);
                else if (ch < 32 || ch == 127) printf("\\x%02x", ch);
                else putchar(ch);
            }
            printf("\"");
        }
    }
    printf("\n");
}

int cmd_run(int argc, char **argv) {
    run_opts o;
    int prc = parse(&o, argc, argv);
    if (prc) { cli_intervene_opts_free(&o.iv); return cli_opt_exit(prc); }
    rwkv_model *m = cli_model_open("run", o.model, &o.mo);
    if (!m) { cli_intervene_opts_free(&o.iv); return CLI_FAIL; }
    rwkv_intervene_list *iv = NULL;
    int *ids = NULL;
    size_t T = 0;
    rwkv_tokenizer *tok = NULL;
    rwkv_state *s = NULL;
    rwkv_workspace *ws = NULL;
    rwkv_real *logits = NULL;
    double *probs = NULL;
    int *top = NULL, rc = CLI_FAIL;
    rwkv_status st = cli_input_tokens(&o.in, m->cfg.n_vocab, &ids, &T, &tok);
    if (st) { rc = cli_fail("run", st, cli_input_hint()); goto done; }
    int V = m->cfg.n_vocab, all = o.all_positions || o.logits_path;
    int k = o.top_k < V ? (int)o.top_k : V;
    if ((st = rwkv_state_alloc(&s, m->cfg)) || (st = rwkv_workspace_alloc(&ws, m->cfg, (int)o.chunk)) ||
        (o.state && (st = rwkv_state_load(s, o.state, m)))) {
        rc = cli_fail("run", st, NULL);
        goto done;
    }
    logits = malloc((all ? T : 1) * (size_t)V * sizeof *logits);
    probs = malloc((size_t)V * sizeof *probs);
    top = malloc((size_t)k * sizeof *top);
    if (!logits || !probs || !top) { rc = cli_fail("run", rwkv_error_set(RWKV_ERR_NOMEM, "out of memory for %zu x %d logits", T, V), NULL); goto done; }
    rwkv_logits_mode lm = all ? RWKV_LOGITS_ALL : RWKV_LOGITS_LAST;
    if ((st = cli_intervene_build(&o.iv, m, (int64_t)T, NULL, &iv))) { rc = cli_fail("run", st, NULL); goto done; }
    st = rwkv_intervene_forward(m, s, ids, (int64_t)T, 0, logits, lm, iv, ws, !strcmp(o.mode, "seq"));
    if (st) { rc = cli_fail("run", st, NULL); goto done; }
    if (o.logits_path && (st = rwkv_file_write_f32(o.logits_path, logits, T * (size_t)V, 1))) { rc = cli_fail("run", st, NULL); goto done; }
    if (o.all_positions)
        for (size_t t = 0; t < T; t++) print_top(logits + t * V, V, k, (int64_t)t, tok, probs, top);
    else
        print_top(logits + (all ? (T - 1) * V : 0), V, k, (int64_t)T - 1, tok, probs, top);
    rc = CLI_OK;
done:
    free(ids); free(logits); free(probs); free(top);
    rwkv_tokenizer_free(tok);
    rwkv_state_free(s);
    rwkv_workspace_free(ws);
    rwkv_model_free(m);
    rwkv_intervene_list_free(iv);
    cli_intervene_opts_free(&o.iv);
    return rc;
}
