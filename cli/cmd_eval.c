// cmd_eval.c: rwkvscope eval: mean next-token cross-entropy of a model on a text.
#include "cli.h"
#include "input.h"
#include "options.h"

#include "core/compute/forward.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

const char cmd_eval_summary[] = "measure a model's cross-entropy (nats/token) on a text";

static void usage(FILE *f) {
    fprintf(f, "usage: rwkvscope eval MODEL INPUT [options]\n\n"
           "Runs MODEL over the input in windows of --ctx tokens (each from the zero state, as in\n"
           "training) or as one stream (--ctx 0, the state carried throughout) and prints the mean\n"
           "cross-entropy of each next token in nats and bits, and the perplexity.\n\n"
           "input (exactly one):\n" CLI_INPUT_HELP
           "\noptions:\n"
           "  --ctx N              window length; 0 = one stream (default: 0)\n"
           "  --max-tokens N       use at most the first N tokens (default: all)\n"
           "  --offset N           skip the first N tokens (e.g. a training split)\n"
           CLI_MODEL_HELP "\n"
           "output: one line 'loss_nats=X bits=Y ppl=Z tokens=N'\n\n"
           "example:\n  rwkvscope eval model.safetensors --file val.txt --ctx 128\n");
}

#define EVAL_CHUNK 256 // tokens per parallel call

// Sum of -log softmax(logits_t)[next_t] over rows; logits (n, V).
static double nll_sum(const rwkv_real *logits, const int *next, int n, int V) {
    double s = 0;
    for (int t = 0; t < n; t++) {
        const rwkv_real *l = logits + (size_t)t * V;
        double mx = l[0], z = 0;
        for (int v = 1; v < V; v++) mx = fmax(mx, l[v]);
        for (int v = 0; v < V; v++) z += exp(l[v] - mx);
        s += mx + log(z) - l[next[t]]; // -log p = logsumexp(l) - l_next
    }
    return s;
}

int cmd_eval(int argc, char **argv) {
    enum { O_CTX = CLI_OPT_USER, O_MAX_TOKENS, O_OFFSET };
    static const struct option OPTS[] = {
        {"ctx", required_argument, NULL, O_CTX}, {"max-tokens", required_argument, NULL, O_MAX_TOKENS},
        {"offset", required_argument, NULL, O_OFFSET}, CLI_OPTIONS_INPUT, CLI_OPTIONS_MODEL, CLI_OPTIONS_END};
    cli_input in = {0};
    cli_model_opts mo = {0};
    long ctx = 0, max_tokens = 0, offset = 0;
    cli_parser p = {.cmd = "eval", .help = usage, .opts = OPTS, .max_args = 1, .in = &in, .model = &mo};
    const char *v;
    for (int c; (c = cli_opt_next(&p, argc, argv, &v)) != -1;) {
        int ok = 1;
        switch (c) {
        case O_CTX: ok = cli_parse_int("eval", "--ctx", v, 0, 1 << 20, &ctx); break;
        case O_MAX_TOKENS: ok = cli_parse_int("eval", "--max-tokens", v, 0, 1L << 40, &max_tokens); break;
        case O_OFFSET: ok = cli_parse_int("eval", "--offset", v, 0, 1L << 40, &offset); break;
        }
        if (!ok) return CLI_USAGE;
    }
    if (p.status) return cli_opt_exit(p.status);
    const char *model_path = p.args[0];
    if (!model_path) return cli_usage_error("eval", "no MODEL given");
    if (!cli_input_given(&in)) return cli_usage_error("eval", "no input: give --file, --text, --bytes or --tokens");
    rwkv_model *m = cli_model_open("eval", model_path, &mo);
    if (!m) return CLI_FAIL;
    int *ids = NULL, rc = CLI_FAIL;
    size_t n = 0;
    rwkv_state *s = NULL;
    rwkv_workspace *ws = NULL;
    rwkv_real *logits = NULL;
    rwkv_status st = cli_input_tokens(&in, m->cfg.n_vocab, &ids, &n, NULL);
    if (st) { rc = cli_fail("eval", st, NULL); goto done; }
    size_t start = (size_t)offset < n ? (size_t)offset : n;
    size_t end = max_tokens && start + (size_t)max_tokens < n ? start + (size_t)max_tokens : n;
    if (end - start < 2) { rc = cli_fail("eval", rwkv_error_set(RWKV_ERR_ARG, "need at least 2 tokens after --offset, have %zu", end - start), NULL); goto done; }
    int V = m->cfg.n_vocab;
    if ((st = rwkv_state_alloc(&s, m->cfg)) || (st = rwkv_workspace_alloc(&ws, m->cfg, EVAL_CHUNK))) { rc = cli_fail("eval", st, NULL); goto done; }
    if (!(logits = malloc((size_t)EVAL_CHUNK * V * sizeof *logits))) { rc = cli_fail("eval", rwkv_error_set(RWKV_ERR_NOMEM, "out of memory"), NULL); goto done; }
    size_t window = ctx ? (size_t)ctx : end - start;
    double total = 0;
    size_t counted = 0;
    for (size_t w0 = start; w0 + 1 < end; w0 += window) {
        size_t w1 = w0 + window < end ? w0 + window : end; // predicts ids[w0+1 .. w1-1]
        rwkv_state_reset(s);
        for (size_t t = w0; t + 1 < w1; t += EVAL_CHUNK) {
            int k = (int)(w1 - 1 - t < EVAL_CHUNK ? w1 - 1 - t : EVAL_CHUNK);
            if ((st = rwkv_forward_par(m, s, ids + t, k, logits, RWKV_LOGITS_ALL, NULL, ws))) { rc = cli_fail("eval", st, NULL); goto done; }
            total += nll_sum(logits, ids + t + 1, k, V);
            counted += (size_t)k;
        }
    }
    double nats = total / (double)counted;
    printf("loss_nats=%.6f bits=%.6f ppl=%.4f tokens=%zu\n", nats, nats / log(2), exp(nats), counted);
    rc = CLI_OK;
done:
    free(ids); free(logits);
    rwkv_state_free(s);
    rwkv_workspace_free(ws);
    rwkv_model_free(m);
    return rc;
}
