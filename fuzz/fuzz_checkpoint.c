// fuzz_checkpoint.c: the training checkpoint's optimiser file (docs/train-checkpoint.md):
// rwkv_checkpoint_read_opts, then, for a small shape, a trainer resumed from it, as
// `train --resume` does. The seeds are optimiser files of a tiny byte-level run.
#include "util.h"

#include "core/train/checkpoint.h"

#include <stdlib.h>

#define FUZZ_MAX_PARAMS (1 << 20) // a resumed trainer is built only for shapes this small
#define FUZZ_N_TOKENS 4096        // the byte stream the trainer is given

static int small(rwkv_config c, const rwkv_trainer_opts *o) {
    double p = (double)c.n_layer * c.n_embd * (4.0 * c.n_embd + 2.0 * c.n_ffn) + 2.0 * c.n_vocab * c.n_embd;
    return p <= FUZZ_MAX_PARAMS && c.n_vocab <= 256 && o->B > 0 && o->T > 0 && (double)o->B * o->T <= 4096 &&
           o->T < FUZZ_N_TOKENS / 4;
}

static void resume(const char *path, rwkv_config cfg, rwkv_trainer_opts *o) {
    static int tokens[FUZZ_N_TOKENS];
    for (int i = 0; i < FUZZ_N_TOKENS; i++) tokens[i] = (i * 7 + 3) % cfg.n_vocab;
    rwkv_model *m = NULL;
    rwkv_data *d = NULL;
    rwkv_trainer *tr = NULL;
    o->steps = o->opt.total_steps = o->steps + 1; // resuming needs a step left
    o->eval_batches = 1;
    if (!rwkv_model_alloc(&m, cfg) &&
        !rwkv_data_from_tokens(&d, tokens, NULL, FUZZ_N_TOKENS, cfg.n_vocab, 0.25, "fuzz") &&
        !rwkv_trainer_alloc(&tr, m, d, o))
        rwkv_checkpoint_resume(tr, path);
    rwkv_trainer_free(tr);
    rwkv_data_free(d);
    rwkv_model_free(m);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const char *path = fuzz_file(data, size, ".optim.h5");
    rwkv_config cfg;
    rwkv_trainer_opts o;
    int64_t step;
    if (rwkv_checkpoint_read_opts(path, &cfg, &o, &step) == RWKV_OK && small(cfg, &o)) resume(path, cfg, &o);
    fuzz_h5_closed();
    return 0;
}
