// cmd_init.c: rwkvscope init: write a freshly initialised model (the official RWKV-4 init).
#include "cli.h"

#include "core/train/checkpoint.h"
#include "core/train/init.h"

#include <string.h>

const char cmd_init_summary[] = "write a freshly initialised RWKV-4 model (official init, seeded)";

#define DEFAULT_VOCAB 256 // byte-level
#define DEFAULT_SEED 42

static void usage(void) {
    printf("usage: rwkvscope init --layers L --embd C [options] -o model.safetensors\n\n"
           "Writes a model initialised with the official RWKV-4 scheme: the deterministic\n"
           "time_* parameters, a +-1e-4 uniform embedding, zeroed output-side matrices and\n"
           "orthogonal matrices (GSL QR). The same --seed gives the identical model.\n\n"
           "options:\n"
           "  --layers L        number of blocks (required)\n"
           "  --embd C          embedding width (required)\n"
           "  --ffn F           channel-mix width (default: 4*C)\n"
           "  --vocab V         vocabulary size (default: %d, bytes)\n"
           "  --tokenizer SPEC  tokenizer recorded in the metadata (default: bytes when V=256)\n"
           "  --seed S          random seed (default: %d)\n"
           "  -o FILE           output safetensors file (required)\n"
           "  --force           overwrite FILE if it exists\n\n"
           "example:\n  rwkvscope init --layers 4 --embd 128 -o init.safetensors\n",
           DEFAULT_VOCAB, DEFAULT_SEED);
}

int cmd_init(int argc, char **argv) {
    if (cli_wants_help(argc, argv)) { usage(); return CLI_OK; }
    long L = 0, C = 0, F = 0, V = DEFAULT_VOCAB, seed = DEFAULT_SEED;
    const char *out = NULL, *tokenizer = NULL;
    int force = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *val = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--force")) force = 1;
        else if (!strcmp(a, "-o") && val) out = argv[++i];
        else if (!strcmp(a, "--tokenizer") && val) tokenizer = argv[++i];
        else if (!strcmp(a, "--layers") && val) { if (!cli_parse_int("init", a, argv[++i], 1, 1024, &L)) return CLI_USAGE; }
        else if (!strcmp(a, "--embd") && val) { if (!cli_parse_int("init", a, argv[++i], 1, 65536, &C)) return CLI_USAGE; }
        else if (!strcmp(a, "--ffn") && val) { if (!cli_parse_int("init", a, argv[++i], 1, 1 << 20, &F)) return CLI_USAGE; }
        else if (!strcmp(a, "--vocab") && val) { if (!cli_parse_int("init", a, argv[++i], 1, 1 << 22, &V)) return CLI_USAGE; }
        else if (!strcmp(a, "--seed") && val) { if (!cli_parse_int("init", a, argv[++i], 0, 0x7fffffffL, &seed)) return CLI_USAGE; }
        else return cli_usage_error("init", "unknown option '%s' (or it needs a value)", a);
    }
    if (!L || !C) return cli_usage_error("init", "--layers and --embd are required");
    if (!out) return cli_usage_error("init", "no output: give -o model.safetensors");
    if (!cli_check_output("init", out, force)) return CLI_FAIL;
    rwkv_config cfg = {.n_layer = (int)L, .n_embd = (int)C, .n_ffn = F ? (int)F : (int)(4 * C), .n_vocab = (int)V};
    rwkv_model *m;
    rwkv_status st = rwkv_model_alloc(&m, cfg);
    if (st) return cli_fail("init", st, NULL);
    if (!tokenizer) tokenizer = V == DEFAULT_VOCAB ? "bytes" : "";
    if (!(st = rwkv_init_model(m, (unsigned long)seed)))
        st = rwkv_checkpoint_save_model(m, out, tokenizer, 0, NULL, NULL);
    if (st) {
        rwkv_model_free(m);
        return cli_fail("init", st, NULL);
    }
    fprintf(stderr, "wrote %s: %d layers, n_embd %d, n_ffn %d, vocab %d, %zu parameters, seed %ld\n", out,
            cfg.n_layer, cfg.n_embd, cfg.n_ffn, cfg.n_vocab, rwkv_model_n_params(m), seed);
    rwkv_model_free(m);
    return CLI_OK;
}
