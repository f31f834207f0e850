// cmd_init.c: rwkvscope init: write a freshly initialised model (the official RWKV-4 or RWKV-7 init).
#include "cli.h"
#include "options.h"

#include "core/train/checkpoint.h"
#include "core/train/init.h"

#include <string.h>

const char cmd_init_summary[] = "write a freshly initialised RWKV-4 or RWKV-7 model (official init, seeded)";

#define DEFAULT_VOCAB 256 // byte-level
#define DEFAULT_SEED 42

static void usage(FILE *f) {
    fprintf(f, "usage: rwkvscope init --layers L --embd C [options] -o model.safetensors\n\n"
           "Writes a model initialised with the official RWKV-4 scheme: the deterministic\n"
           "time_* parameters, a +-1e-4 uniform embedding, zeroed output-side matrices and\n"
           "orthogonal matrices (GSL QR). With --arch 7, an RWKV-7 model with the official\n"
           "RWKV-7 init (RWKV-LM RWKV-v7/train_temp; core/train/init_v7.c lists it). The same\n"
           "--seed gives the identical model.\n\n"
           "options:\n"
           "  --layers L        number of blocks (required)\n"
           "  --embd C          embedding width (required)\n"
           "  --ffn F           channel-mix width (default: 4*C)\n"
           "  --vocab V         vocabulary size (default: %d, bytes)\n"
           "  --arch A          4 (RWKV-4, default) or 7 (RWKV-7)\n"
           "  --head-size N     RWKV-7 head size, dividing C (default: %d)\n"
           "  --tokenizer SPEC  tokenizer recorded in the metadata (default: bytes when V=256)\n"
           "  --seed S          random seed (default: %d)\n"
           "  -o, --output FILE output safetensors file (required)\n"
           "  --force           overwrite FILE if it exists\n\n"
           "example:\n  rwkvscope init --layers 4 --embd 128 -o init.safetensors\n",
           DEFAULT_VOCAB, RWKV_V7_HEAD_SIZE_DEFAULT, DEFAULT_SEED);
}

int cmd_init(int argc, char **argv) {
    enum { O_LAYERS = CLI_OPT_USER, O_EMBD, O_FFN, O_VOCAB, O_SEED, O_TOKENIZER, O_ARCH, O_HEAD };
    static const struct option OPTS[] = {
        {"layers", required_argument, NULL, O_LAYERS}, {"embd", required_argument, NULL, O_EMBD},
        {"ffn", required_argument, NULL, O_FFN}, {"vocab", required_argument, NULL, O_VOCAB},
        {"seed", required_argument, NULL, O_SEED}, {"tokenizer", required_argument, NULL, O_TOKENIZER},
        {"arch", required_argument, NULL, O_ARCH}, {"head-size", required_argument, NULL, O_HEAD},
        CLI_OPTIONS_OUTPUT, CLI_OPTIONS_END};
    long L = 0, C = 0, F = 0, V = DEFAULT_VOCAB, seed = DEFAULT_SEED, arch = 4, head = RWKV_V7_HEAD_SIZE_DEFAULT;
    const char *out = NULL, *tokenizer = NULL;
    int force = 0;
    cli_parser p = {.cmd = "init", .help = usage, .opts = OPTS, .out = &out, .force = &force,
                    .out_seekable = "a safetensors model"};
    const char *v;
    for (int c; (c = cli_opt_next(&p, argc, argv, &v)) != -1;) {
        int ok = 1;
        switch (c) {
        case O_TOKENIZER: tokenizer = v; break;
        case O_LAYERS: ok = cli_parse_int("init", "--layers", v, 1, 1024, &L); break;
        case O_EMBD: ok = cli_parse_int("init", "--embd", v, 1, 65536, &C); break;
        case O_FFN: ok = cli_parse_int("init", "--ffn", v, 1, 1 << 20, &F); break;
        case O_VOCAB: ok = cli_parse_int("init", "--vocab", v, 1, 1 << 22, &V); break;
        case O_SEED: ok = cli_parse_int("init", "--seed", v, 0, 0x7fffffffL, &seed); break;
        case O_ARCH:
            if (!(ok = cli_parse_int("init", "--arch", v, 4, 7, &arch))) break;
            if (arch != 4 && arch != 7) return cli_usage_error("init", "--arch expects 4 or 7, got %ld", arch);
            break;
        case O_HEAD: ok = cli_parse_int("init", "--head-size", v, 1, RWKV_V7_MAX_HEAD_SIZE, &head); break;
        }
        if (!ok) return CLI_USAGE;
    }
    if (p.status) return cli_opt_exit(p.status);
    if (!L || !C) return cli_usage_error("init", "--layers and --embd are required");
    if (!out) return cli_usage_error("init", "no output: give -o model.safetensors");
    if (!cli_check_output("init", out, force)) return CLI_USAGE;
    rwkv_config cfg = {.n_layer = (int)L, .n_embd = (int)C, .n_ffn = F ? (int)F : (int)(4 * C), .n_vocab = (int)V};
    rwkv_model *m;
    if (arch == 7) cfg.version = RWKV_VERSION_7, cfg.head_size = (int)head;
    rwkv_status st = rwkv_init_new_model(&m, cfg, (unsigned long)seed);
    if (st) return cli_fail("init", st, NULL);
    if (!tokenizer) tokenizer = V == DEFAULT_VOCAB ? "bytes" : "";
    st = rwkv_checkpoint_save_model(m, out, tokenizer, 0, NULL, NULL);
    if (st) {
        rwkv_model_free(m);
        return cli_fail("init", st, NULL);
    }
    fprintf(stderr, "wrote %s: RWKV-%ld, %d layers, n_embd %d, n_ffn %d, vocab %d, %zu parameters, seed %ld\n", out,
            arch, cfg.n_layer, cfg.n_embd, cfg.n_ffn, cfg.n_vocab, rwkv_model_n_params(m), seed);
    rwkv_model_free(m);
    return CLI_OK;
}
