// fuzz_dump.c: both dump readers (docs/dump-format.md): rwkv_dump_open and its row index and
// tap reads, and the probes' rwkv_dumpview (row index, feature matching, feature reads).
#include "util.h"

#include "core/inspect/dump.h"
#include "probes/dumpview.h"

#include <stdlib.h>

#define FUZZ_MAX_CELLS (1 << 22) // rows * width read at most (a fuzzed shape can claim more)

static void read_reader(const char *path) {
    rwkv_dump_reader *r = NULL;
    if (rwkv_dump_open(&r, path) != RWKV_OK) return;
    int64_t *off = NULL, *toff = NULL, *pos = NULL;
    int *tok = NULL;
    rwkv_dump_read_offsets(r, &off);
    rwkv_dump_read_token_offsets(r, &toff);
    rwkv_dump_read_positions(r, &pos);
    rwkv_dump_read_tokens(r, &tok);
    free(off), free(toff), free(pos), free(tok);
    for (int l = 0; l <= r->cfg.n_layer && l < 8; l++)
        for (int t = 0; t < RWKV_TAP_N; t++) {
            int D = rwkv_dump_width(r, l, (rwkv_tap)t);
            int64_t n = r->n_rows < 4 ? r->n_rows : 4;
            if (D <= 0 || n <= 0 || (int64_t)D * n > FUZZ_MAX_CELLS) continue;
            rwkv_real *x = malloc((size_t)D * n * sizeof *x);
            fuzz_require(x != NULL, "malloc");
            rwkv_dump_read_rows(r, l, (rwkv_tap)t, r->n_rows - n, n, x);
            free(x);
        }
    rwkv_dump_reader_free(r);
}

static void read_view(const char *path) {
    rwkv_dumpview *v = NULL;
    if (rwkv_dumpview_open(&v, path) != RWKV_OK) return;
    for (int64_t r = 0; r < v->n_rows; r++) rwkv_dumpview_token_at(v, r, 1);
    rwkv_feature_ref *refs = NULL;
    int n = 0;
    if (rwkv_dumpview_match(v, "blocks.*.*,blocks.0.state_num/state_den,blocks.1.concat(state_*)", &refs, &n) == RWKV_OK)
        for (int i = 0; i < n && v->n_rows <= FUZZ_MAX_CELLS / 1024; i++) {
            rwkv_real *X = NULL;
            int D = 0;
            rwkv_dumpview_read(v, &refs[i], &X, &D);
            free(X);
        }
    free(refs);
    rwkv_dumpview_free(v);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const char *path = fuzz_file(data, size, ".h5");
    read_reader(path);
    read_view(path);
    fuzz_h5_closed();
    return 0;
}
