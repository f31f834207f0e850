// cmd_generate.c: rwkvscope generate: sample a continuation in sequential mode.
#include "cli.h"
#include "input.h"
#include "intervene_opts.h"

#include "core/compute/forward.h"
#include "core/inspect/state_io.h"
#include "core/compute/sample.h"

#include <gsl/gsl_rng.h>
#include <stdlib.h>
#include <string.h>

const char cmd_generate_summary[] = "sample a continuation of an input (RNN mode)";

static void usage(void) {
    printf("usage: rwkvscope generate MODEL INPUT -n N [options]\n\n"
           "Feeds the input in parallel mode, then samples N tokens one at a time from the\n"
           "recurrent state and streams them to stdout (only complete UTF-8 is printed).\n\n"
           "input (exactly one):\n" CLI_INPUT_HELP
           "\noptions:\n"
           "  -n N                 tokens to generate (required)\n"
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

static int parse(gen_opts *o, int argc, char **argv) {
    *o = (gen_opts){.n = -1, .seed = 42, .temperature = 1.0, .top_p = 1.0};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *val = i + 1 < argc ? argv[i + 1] : NULL;
        int r = cli_input_option(&o->in, "generate", argc, argv, &i);
        if (r < 0) return 0;
        if (r) continue;
        if ((r = cli_model_option(&o->mo, "generate", argc, argv, &i)) < 0) return 0;
        if (r) continue;
        if ((r = cli_intervene_option(&o->iv, "generate", argc, argv, &i)) < 0) return 0;
        if (r) continue;
        if (!strcmp(a, "-n") && val) { if (!cli_parse_int("generate", a, argv[++i], 0, 1 << 24, &o->n)) return 0; }
        else if (!strcmp(a, "--seed") && val) { if (!cli_parse_int("generate", a, argv[++i], 0, 4294967295L, &o->seed)) return 0; }
        else if (!strcmp(a, "--temperature") && val) { if (!cli_parse_double("generate", a, argv[++i], &o->temperature)) return 0; }
        else if (!strcmp(a, "--top-p") && val) { if (!cli_parse_double("generate", a, argv[++i], &o->top_p)) return 0; }
        else if (!strcmp(a, "--state") && val) o->state = argv[++i];
        else if (a[0] == '-') { cli_usage_error("generate", "unknown option '%s' (or it needs a value)", a); return 0; }
        else if (!o->model) o->model = a;
        else { cli_usage_error("generate", "unexpected argument '%s'", a); return 0; }
    }
    if (!o->model) { cli_usage_error("generate", "no MODEL given"); return 0; }
    if (!cli_input_given(&o->in)) { cli_usage_error("generate", "no input: give --bytes, --text, --tokens or --file"); return 0; }
    if (o->n < 0) { cli_usage_error("generate", "-n N is required"); return 0; }
    if (o->temperature < 0) { cli_usage_error("generate", "--temperature must be >= 0"); return 0; }
    if (!(o->top_p > 0 && o->top_p <= 1)) { cli_usage_error("generate", "--top-p must be in (0, 1]"); return 0; }
    return 1;
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

int cmd_generate(int argc, char **argv) {
    if (cli_wants_help(argc, argv)) { usage(); return CLI_OK; }
    gen_opts o;
    if (!parse(&o, argc, argv)) { cli_intervene_opts_free(&o.iv); return CLI_USAGE; }
    rwkv_model *m = cli_model_open("generate", o.model, &o.mo);
    if (!m) { cli_intervene_opts_free(&o.iv); return CLI_FAIL; }
    rwkv_intervene_list *iv = NULL;
    int *ids = NULL, *order = NULL, rc = CLI_FAIL;
    size_t T = 0;
    rwkv_tokenizer *tok = NULL;
    rwkv_state *s = NULL;
    rwkv_workspace *ws = NULL;
    rwkv_real *logits = NULL;
    double *probs = NULL;
    gsl_rng *rng = gsl_rng_alloc(gsl_rng_mt19937);
    rwkv_status st = cli_input_tokens(&o.in, m->cfg.n_vocab, &ids, &T, &tok);
    if (st) { rc = cli_fail("generate", st, NULL); goto done; }
    if (!tok && (st = rwkv_tokenizer_load(&tok, m->tokenizer[0] ? m->tokenizer : "bytes"))) { rc = cli_fail("generate", st, NULL); goto done; }
    int V = m->cfg.n_vocab;
    if ((st = rwkv_state_alloc(&s, m->cfg)) || (st = rwkv_workspace_alloc(&ws, m->cfg, 512)) ||
        (o.state && (st = rwkv_state_load(s, o.state, m)))) { rc = cli_fail("generate", st, NULL); goto done; }
    logits = malloc((size_t)V * sizeof *logits);
    probs = malloc((size_t)V * sizeof *probs);
    order = malloc((size_t)V * sizeof *order);
    if (!logits || !probs || !order || !rng) { rc = cli_fail("generate", rwkv_error_set(RWKV_ERR_NOMEM, "out of memory"), NULL); goto done; }
    gsl_rng_set(rng, (unsigned long)o.seed);
    // Intervention positions count over the prompt and the generated tokens.
    if ((st = cli_intervene_build(&o.iv, m, (int64_t)T + o.n, NULL, &iv))) { rc = cli_fail("generate", st, NULL); goto done; }
    if ((st = rwkv_intervene_forward(m, s, ids, (int64_t)T, 0, logits, RWKV_LOGITS_LAST, iv, ws, 0))) { rc = cli_fail("generate", st, NULL); goto done; }
    utf8_stream out = {.len = 0};
    for (long i = 0; i < o.n; i++) {
        int next = rwkv_sample_token(logits, V, o.temperature, o.top_p, gsl_rng_uniform(rng), probs, order);
        size_t len;
        const char *piece = rwkv_tokenizer_piece(tok, next, &len);
        if (piece) stream_put(&out, piece, len, 0);
        st = rwkv_intervene_forward(m, s, &next, 1, (int64_t)T + i, logits, RWKV_LOGITS_LAST, iv, ws, 1);
        if (st) { rc = cli_fail("generate", st, NULL); goto done; }
    }
    stream_put(&out, NULL, 0, 1);
    printf("\n");
    rc = CLI_OK;
done:
    free(ids); free(logits); free(probs); free(order);
    gsl_rng_free(rng);
    rwkv_tokenizer_free(tok);
    rwkv_state_free(s);
    rwkv_workspace_free(ws);
    rwkv_model_free(m);
    rwkv_intervene_list_free(iv);
    cli_intervene_opts_free(&o.iv);
    return rc;
}
