// cmd_eval.c: rwkvscope eval: mean next-token cross-entropy of a model on a text.
#include "cli.h"
#include "input.h"
#include "options.h"

#include "analyses/perplexity.h"

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

// A progress line on long evaluations only (a short one prints just its result).
typedef struct {
    time_t last;
    int shown;
} eval_progress;

static void progress(void *ctx, int64_t done, int64_t total) {
    eval_progress *p = ctx;
    time_t before = p->last;
    cli_progress(&p->last, p->shown && done == total, "eval: %lld of %lld tokens", (long long)done, (long long)total);
    p->shown |= p->last != before;
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
    if (ctx == 1) return cli_usage_error("eval", "--ctx 1 predicts nothing: give 0 (one stream) or at least 2");
    rwkv_model *m = cli_model_open("eval", model_path, &mo);
    if (!m) return CLI_FAIL;
    int *ids = NULL, rc = CLI_FAIL;
    size_t n = 0;
    rwkv_status st = cli_input_tokens(&in, m->cfg.n_vocab, &ids, &n, NULL);
    if (st) { rc = cli_fail("eval", st, cli_input_hint()); goto done; }
    size_t start = (size_t)offset < n ? (size_t)offset : n;
    size_t end = max_tokens && start + (size_t)max_tokens < n ? start + (size_t)max_tokens : n;
    if (end - start < 2) { rc = cli_fail("eval", rwkv_error_set(RWKV_ERR_ARG, "need at least 2 tokens after --offset, have %zu", end - start), NULL); goto done; }
    eval_progress pr = {.last = time(NULL)};
    rwkv_perplexity r;
    rwkv_perplexity_opts po = {.ctx = ctx, .progress = progress, .progress_ctx = &pr};
    if ((st = rwkv_perplexity_eval(&r, m, ids + start, (int64_t)(end - start), &po))) {
        rc = cli_fail("eval", st, NULL);
        goto done;
    }
    printf("loss_nats=%.6f bits=%.6f ppl=%.4f tokens=%lld\n", r.mean, r.mean / log(2), exp(r.mean), (long long)r.n);
    rc = CLI_OK;
done:
    free(ids);
    rwkv_model_free(m);
    return rc;
}
