// cmd_run.c: rwkvscope run: the next-token distribution after an input, in either mode.
#include "cli.h"
#include "input.h"
#include "intervene_opts.h"

#include "core/base/file.h"
#include "core/compute/forward.h"
#include "core/inspect/state_io.h"
#include "core/compute/sample.h"

#include <stdlib.h>
#include <string.h>

const char cmd_run_summary[] = "run a model on an input and print the top next tokens";

static void usage(void) {
    printf("usage: rwkvscope run MODEL INPUT [options]\n\n"
           "Runs MODEL on the input and prints the K most likely next tokens with their\n"
           "probabilities, after the last position (or after every position).\n\n"
           "input (exactly one):\n" CLI_INPUT_HELP
           "\noptions:\n"
           "  --mode seq|par       sequential (RNN) or parallel (GPT) mode (default: par)\n"
           "  --chunk N            tokens per parallel call (default: 512)\n"
           "  --top-k K            how many tokens to list (default: 5)\n"
           "  --all-positions      list the top tokens after every position\n"
           "  --logits FILE        write the raw logits, float32 little-endian [T, V]\n"
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
    int all_positions;
} run_opts;

static int parse(run_opts *o, int argc, char **argv) {
    *o = (run_opts){.mode = "par", .top_k = 5, .chunk = 512};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *val = i + 1 < argc ? argv[i + 1] : NULL;
        int r = cli_input_option(&o->in, "run", argc, argv, &i);
        if (r < 0) return 0;
        if (r) continue;
        if ((r = cli_model_option(&o->mo, "run", argc, argv, &i)) < 0) return 0;
        if (r) continue;
        if ((r = cli_intervene_option(&o->iv, "run", argc, argv, &i)) < 0) return 0;
        if (r) continue;
        if (!strcmp(a, "--all-positions")) o->all_positions = 1;
        else if (!strcmp(a, "--mode") && val) o->mode = argv[++i];
        else if (!strcmp(a, "--logits") && val) o->logits_path = argv[++i];
        else if (!strcmp(a, "--state") && val) o->state = argv[++i];
        else if (!strcmp(a, "--top-k") && val) { if (!cli_parse_int("run", a, argv[++i], 1, 1000000, &o->top_k)) return 0; }
        else if (!strcmp(a, "--chunk") && val) { if (!cli_parse_int("run", a, argv[++i], 1, 1 << 20, &o->chunk)) return 0; }
        else if (a[0] == '-') { cli_usage_error("run", "unknown option '%s' (or it needs a value)", a); return 0; }
        else if (!o->model) o->model = a;
        else { cli_usage_error("run", "unexpected argument '%s'", a); return 0; }
    }
    if (!o->model) { cli_usage_error("run", "no MODEL given"); return 0; }
    if (!cli_input_given(&o->in)) { cli_usage_error("run", "no input: give --tokens, --bytes, --text or --file"); return 0; }
    if (strcmp(o->mode, "seq") && strcmp(o->mode, "par")) { cli_usage_error("run", "--mode expects seq or par, got '%s'", o->mode); return 0; }
    return 1;
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

static int write_logits(const char *path, const rwkv_real *logits, size_t n) {
    rwkv_atomic_file out;
    if (rwkv_file_atomic_open(&out, path, 1, 1)) return 0;
    for (size_t i = 0; i < n; i++) {
        float v = (float)logits[i]; // the file format is float32 little-endian (x86 native)
        if (fwrite(&v, 4, 1, out.f) != 1) break; // commit reports the error
    }
    return rwkv_file_atomic_commit(&out) == RWKV_OK;
}

int cmd_run(int argc, char **argv) {
    if (cli_wants_help(argc, argv)) { usage(); return CLI_OK; }
    run_opts o;
    if (!parse(&o, argc, argv)) { cli_intervene_opts_free(&o.iv); return CLI_USAGE; }
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
    if (st) { rc = cli_fail("run", st, "token ids must be below the model's vocabulary size"); goto done; }
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
    if (o.logits_path && !write_logits(o.logits_path, logits, T * (size_t)V)) { rc = cli_fail("run", RWKV_ERR_IO, NULL); goto done; }
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
