// cmd_info.c: rwkvscope info MODEL: what a checkpoint holds and how it will run.
#include "cli.h"
#include "options.h"
#include "core/compute/blas.h"
#include "core/compute/matvec.h"
#include "core/model/model.h"
#include "core/model/state.h"
#include "analyses/decay.h"

#include <float.h>
#include <math.h>
#include <string.h>

const char cmd_info_summary[] = "print a checkpoint's format, shape, parameters and decay half-lives";

static void usage(FILE *f) {
    fprintf(f, "usage: rwkvscope info MODEL\n\n"
           "%s.\n\n"
           "MODEL is a PyTorch .pth (torch.save zip), a safetensors file (official or Hugging Face\n"
           "RwkvForCausalLM names) or an rwkv.cpp .bin (FP32/FP16). The format is detected from\n"
           "the file's first bytes, the RWKV version (4, 5.2, 6 or 7) from the tensor names. Prints the\n"
           "format, stored dtype, n_layer, n_embd, FFN width, vocabulary size, parameter count,\n"
           "the tokenizer named in the metadata (if any), the version, the state size, and per\n"
           "layer the range of decay half-lives in tokens, ln 2 / exp(time_decay): the number of\n"
           "tokens over which a channel's WKV memory halves. For RWKV-7 also the heads, head\n"
           "size and LoRA ranks; its decay depends on the token, so the half-lives shown are\n"
           "those of the bias w0, ln 2 / (e^-0.5 sigmoid(w0)). Also shows the OpenBLAS\n"
           "core and the bf16 matrix-vector path this machine will use.\n\n"
           "options:\n"
           "  -h, --help   show this help\n"
           "  --version    show the version\n",
           cmd_info_summary);
}

// Per layer the range of the half-lives its weights give (rwkv_decay_weight_half_life).
static void print_half_lives(const rwkv_model *m, const char *what) {
    int L = m->cfg.n_layer, C = m->cfg.n_embd;
    double lo_all = INFINITY, hi_all = 0;
    printf("%s per layer:\n", what);
    for (int l = 0; l < L; l++) {
        double lo = INFINITY, hi = 0;
        for (int c = 0; c < C; c++) {
            double h = rwkv_decay_weight_half_life(m, (size_t)l * C + c);
            lo = fmin(lo, h);
            hi = fmax(hi, h);
        }
        printf("  layer %3d: %.4g .. %.4g\n", l, lo, hi);
        lo_all = fmin(lo_all, lo);
        hi_all = fmax(hi_all, hi);
    }
    if (!m->v7) printf("decay half-life range: %.4g .. %.4g tokens\n", lo_all, hi_all);
}

// The heads, LoRA ranks and state of an RWKV-5.2, 6 or 7 model. RWKV-7's decay depends on
// the token: its bias w0 gives each channel's typical half-life; RWKV-6 adds a LoRA of the
// token to time_decay, whose base alone gives RWKV-5.2's fixed ln 2 / exp(time_decay).
static void print_heads(const rwkv_model *m) {
    const rwkv_config *c = &m->cfg;
    const rwkv_v7_dims *d = &m->v7->d;
    int H = c->n_embd / c->head_size, v7 = RWKV_IS_V7(*c);
    size_t per_layer = 2 * (size_t)c->n_embd + (size_t)H * c->head_size * c->head_size;
    printf("heads: %d\nhead_size: %d\n", H, c->head_size);
    if (v7)
        printf("lora ranks: decay %d, in-context rate %d, value gate %d, output gate %d\n", d->d_w, d->d_a, d->d_v, d->d_g);
    if (c->version == RWKV_VERSION_6)
        printf("lora ranks: token-shift mixes %d (x5: w, k, v, r, g), decay %d\n", d->d_m, d->d_w);
    printf("state: %zu values per layer (att_xprev %d, ffn_xprev %d, wkv %d x %d x %d), %zu in all (%.3g MB)\n",
           per_layer, c->n_embd, c->n_embd, H, c->head_size, c->head_size, per_layer * c->n_layer,
           (double)(per_layer * c->n_layer * sizeof(rwkv_real)) / 1e6);
    print_half_lives(m, v7 ? "decay half-life at the bias w0 (tokens; the decay depends on the token)"
                        : c->version == RWKV_VERSION_6 ? "decay half-life at the base time_decay (tokens, ln 2 / "
                                                         "exp(time_decay); the decay depends on the token)"
                                                       : "decay half-life (tokens, ln 2 / exp(time_decay))");
}

// The stored type of every matrix, one line per field (per layer where the layers differ).
static void print_matrix_types(const rwkv_model *m) {
    int L = m->cfg.n_layer, n = RWKV_N_MATS;
    static const char *const V4_NAMES[RWKV_N_MATS] = {"att.key", "att.value", "att.receptance", "att.output",
                                                      "ffn.key", "ffn.value", "ffn.receptance"};
    static const char *const V7_NAMES[RWKV_V7_N_VIEWS] = {"att.receptance", "att.key", "att.value", "att.output",
                                                          "att.gate", "ffn.key", "ffn.value", "ffn.receptance"};
    const char *names[RWKV_V7_N_VIEWS];
    const rwkv_mat *f[RWKV_V7_N_VIEWS] = {m->mats.att_key, m->mats.att_value, m->mats.att_receptance,
                                          m->mats.att_output, m->mats.ffn_key, m->mats.ffn_value, m->mats.ffn_receptance};
    memcpy(names, V4_NAMES, sizeof V4_NAMES);
    if (m->v7) // RWKV-5.2/7: the views of the large matrices its version has
        for (int k = n = 0; k < RWKV_V7_N_VIEWS; k++)
            if (RWKV_V7_MAT(m->v7, k, 0)->data) names[n] = V7_NAMES[k], f[n++] = RWKV_V7_MAT(m->v7, k, 0);
    printf("matrix types (as read by the kernels):\n");
    for (int k = 0; k < n; k++) {
        int same = 1;
        for (int l = 1; l < L; l++) same &= f[k][l].type == f[k][0].type;
        if (same) printf("  blocks.*.%s.weight: %s (all %d layers)\n", names[k], rwkv_dtype_name(f[k][0].type), L);
        else
            for (int l = 0; l < L; l++) printf("  blocks.%d.%s.weight: %s\n", l, names[k], rwkv_dtype_name(f[k][l].type));
    }
    printf("  head.weight: %s\n", rwkv_dtype_name(m->mats.head.type));
    printf("matrix bytes per token: %zu\n", rwkv_model_mat_bytes(m));
}

int cmd_info(int argc, char **argv) {
    static const struct option OPTS[] = {CLI_OPTIONS_END};
    cli_parser p = {.cmd = "info", .help = usage, .opts = OPTS, .max_args = 1};
    const char *v;
    while (cli_opt_next(&p, argc, argv, &v) != -1) {}
    if (p.status) return cli_opt_exit(p.status);
    if (!p.nargs) return cli_usage_error("info", "expects a MODEL file");
    rwkv_model *m;
    rwkv_load_opts o = {.weights = RWKV_WEIGHTS_HEADERS}; // headers and vectors: fast on any size
    rwkv_status st = rwkv_model_open(&m, p.args[0], &o);
    if (st)
        return cli_fail("info", st, "MODEL must be a .pth, .safetensors or rwkv.cpp .bin RWKV-4, 5.2, 6 or 7 checkpoint");
    const rwkv_config *c = &m->cfg;
    printf("file: %s\nformat: %s\ndtype: %s\n", m->path, m->format, m->dtype);
    printf("n_layer: %d\nn_embd: %d\nn_ffn: %d (%.3gx n_embd)\nn_vocab: %d\n", c->n_layer, c->n_embd,
           c->n_ffn, (double)c->n_ffn / c->n_embd, c->n_vocab);
    printf("parameters: %zu\n", rwkv_model_n_params(m));
    printf("tokenizer: %s\n", m->tokenizer[0] ? m->tokenizer : "(none in metadata)");
    printf("version: %s\n", !m->v7 ? "RWKV-4" : RWKV_IS_V7(*c) ? "RWKV-7 (x070, Goose)"
                            : c->version == RWKV_VERSION_6 ? "RWKV-6 (x060, Finch)" : "RWKV-5.2 (Eagle)");
    if (m->v7) print_heads(m);
    else {
        printf("state: %d values per layer (att_xprev, num, den, max, ffn_xprev), %zu in all\n",
               RWKV_STATE_NVEC * c->n_embd, (size_t)RWKV_STATE_NVEC * c->n_embd * c->n_layer);
        print_half_lives(m, "decay half-life (tokens, ln 2 / exp(time_decay))");
    }
    printf("openblas core: %s (%s)\n", rwkv_blas_corename(), rwkv_blas_core_note());
    print_matrix_types(m);
    if (c->version >= RWKV_VERSION_6) printf("LoRA factors: %s (kept as float)\n", RWKV_REAL_BITS == 64 ? "float64" : "float32");
    printf("matvec kernels: %s\n", rwkv_matvec_bf16_path());
    rwkv_model_free(m);
    return CLI_OK;
}
