// cmd_generate.c: rwkvscope generate: sample a continuation in sequential mode.
#include "cli.h"
#include "input.h"
#include "intervene_opts.h"
#include "options.h"

#include "core/compute/generate.h"
#include "core/inspect/state_io.h"

#include <stdlib.h>
#include <string.h>

const char cmd_generate_summary[] = "sample a continuation of an input (RNN mode)";

static void usage(FILE *f) {
    fprintf(f, "usage: rwkvscope generate MODEL INPUT -n N [options]\n\n"
           "Feeds the input in parallel mode, then samples N tokens one at a time from the\n"
           "recurrent state and streams them to stdout (only complete UTF-8 is printed).\n\n"
           "input (exactly one):\n" CLI_INPUT_HELP
           "\noptions:\n"
           "  -n, --n N            tokens to generate (required)\n"
           "  --temperature T      softmax temperature; 0 = greedy (default: 1.0)\n"
           "  --top-p P            nucleus sampling mass in (0, 1] (default: 1.0)\n"
           "  --seed S             random seed; the same seed gives the same text (default: 42)\n"
           "  --state FILE         start from a saved RNN state (rwkvscope state save)\n"
           CLI_MODEL_HELP
           CLI_INTERVENE_HELP
           "                       (positions count over the prompt and the generated tokens)\n\n"
           "example:\n  rwkvscope generate model.pth --bytes 'Once upon' -n 64 --temperature 0.8\n");
}

typedef struct {
    const char *model, *state;
    cli_input in;
    cli_model_opts mo;
    cli_intervene_opts iv;
    long n, seed;
    double temperature, top_p;
} gen_opts;

enum { O_SEED = CLI_OPT_USER, O_TEMPERATURE, O_TOP_P, O_STATE };

static int parse(gen_opts *o, int argc, char **argv) {
    static const struct option OPTS[] = {
        {"n", required_argument, NULL, 'n'}, {"seed", required_argument, NULL, O_SEED},
        {"temperature", required_argument, NULL, O_TEMPERATURE}, {"top-p", required_argument, NULL, O_TOP_P},
        {"state", required_argument, NULL, O_STATE}, CLI_OPTIONS_INPUT, CLI_OPTIONS_MODEL, CLI_OPTIONS_INTERVENE,
        CLI_OPTIONS_END};
    *o = (gen_opts){.n = -1, .seed = 42, .temperature = 1.0, .top_p = 1.0};
    cli_parser p = {.cmd = "generate", .help = usage, .opts = OPTS, .max_args = 1, .in = &o->in, .model = &o->mo,
                    .iv = &o->iv};
    const char *v;
    for (int c; (c = cli_opt_next(&p, argc, argv, &v)) != -1;) {
        int ok = 1;
        switch (c) {
        case 'n': ok = cli_parse_int("generate", "-n", v, 0, 1 << 24, &o->n); break;
        case O_SEED: ok = cli_parse_int("generate", "--seed", v, 0, 4294967295L, &o->seed); break;
        case O_TEMPERATURE: ok = cli_parse_double("generate", "--temperature", v, &o->temperature); break;
        case O_TOP_P: ok = cli_parse_double("generate", "--top-p", v, &o->top_p); break;
        case O_STATE: o->state = v; break;
        }
        if (!ok) return CLI_USAGE;
    }
    if (p.status) return p.status;
    o->model = p.args[0];
    if (!o->model) return cli_usage_error("generate", "no MODEL given");
    if (!cli_input_given(&o->in)) return cli_usage_error("generate", "no input: give --bytes, --text, --tokens or --file");
    if (o->n < 0) return cli_usage_error("generate", "-n N is required");
    if (o->temperature < 0) return cli_usage_error("generate", "--temperature must be >= 0");
    if (!(o->top_p > 0 && o->top_p <= 1)) return cli_usage_error("generate", "--top-p must be in (0, 1]");
    return CLI_OK;
}

// Length of the prefix of buf that ends on a whole UTF-8 character. Bytes that can never
// complete a character (stray continuations, bad leads) count as whole: they print as is.
static size_t utf8_complete(const unsigned char *buf, size_t n) {
    size_t start = n;
    for (int back = 0; back < 4 && start > 0; back++) {
        start--;
        if ((buf[start] & 0xC0) != 0x80) break; // found a lead (or ASCII) byte
    }
    if (start == n) return n;
    unsigned char c = buf[start];
    size_t need = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 1;
    return n - start < need ? start : n;
}

typedef struct {
    unsigned char buf[64];
    size_t len;
} utf8_stream;

static void stream_put(utf8_stream *u, const char *bytes, size_t n, int flush) {
    for (size_t i = 0; i < n; i++) {
        if (u->len == sizeof u->buf) { fwrite(u->buf, 1, u->len, stdout); u->len = 0; }
        u->buf[u->len++] = (unsigned char)bytes[i];
    }
    size_t ok = flush ? u->len : utf8_complete(u->buf, u->len);
    fwrite(u->buf, 1, ok, stdout);
    memmove(u->buf, u->buf + ok, u->len - ok);
    u->len -= ok;
    fflush(stdout);
}

// Streams each sampled token's bytes to stdout.
typedef struct {
    const rwkv_tokenizer *tok;
    utf8_stream out;
} gen_print;

static rwkv_status print_token(void *ctx, int token) {
    gen_print *g = ctx;
    size_t len;
    const char *piece = rwkv_tokenizer_piece(g->tok, token, &len);
    if (piece) stream_put(&g->out, piece, len, 0);
    return RWKV_OK;
}

int cmd_generate(int argc, char **argv) {
    gen_opts o;
    int prc = parse(&o, argc, argv);
    if (prc) { cli_intervene_opts_free(&o.iv); return cli_opt_exit(prc); }
    rwkv_model *m = cli_model_open("generate", o.model, &o.mo);
    if (!m) { cli_intervene_opts_free(&o.iv); return CLI_FAIL; }
    rwkv_intervene_list *iv = NULL;
    int *ids = NULL, rc = CLI_FAIL;
    size_t T = 0;
    rwkv_tokenizer *tok = NULL;
    rwkv_state *s = NULL;
    rwkv_status st = cli_input_tokens(&o.in, m->cfg.n_vocab, &ids, &T, &tok);
    if (st) { rc = cli_fail("generate", st, cli_input_hint()); goto done; }
    if (!tok && (st = rwkv_tokenizer_load(&tok, m->tokenizer[0] ? m->tokenizer : "bytes"))) { rc = cli_fail("generate", st, NULL); goto done; }
    if ((st = rwkv_state_alloc(&s, m->cfg)) || (o.state && (st = rwkv_state_load(s, o.state, m)))) {
        rc = cli_fail("generate", st, NULL);
        goto done;
    }
    // Intervention positions count over the prompt and the generated tokens.
    if ((st = cli_intervene_build(&o.iv, m, (int64_t)T + o.n, NULL, &iv))) { rc = cli_fail("generate", st, NULL); goto done; }
    gen_print pr = {.tok = tok};
    rwkv_generate_opts go = {.n = o.n, .temperature = o.temperature, .top_p = o.top_p, .seed = (unsigned long)o.seed,
                             .hook = iv ? &iv->hook : NULL, .on_token = print_token, .ctx = &pr};
    if ((st = rwkv_generate(m, s, ids, (int64_t)T, &go, NULL))) { rc = cli_fail("generate", st, NULL); goto done; }
    stream_put(&pr.out, NULL, 0, 1);
    printf("\n");
    rc = CLI_OK;
done:
    free(ids);
    rwkv_tokenizer_free(tok);
    rwkv_state_free(s);
    rwkv_model_free(m);
    rwkv_intervene_list_free(iv);
    cli_intervene_opts_free(&o.iv);
    return rc;
}
