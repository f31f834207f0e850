// fuzz_jsonl.c: the two readers of JSONL datasets (docs/dataset-format.md): the CLI's
// --input (cli/sequences.c through datasets/reader.c: {"tokens": [...]} or {"text": "..."} lines, or plain prompts)
// and the probes' `answer` labels (probes/labels.c) against an in-memory dump of three
// sequences of 8 tokens, the first of which are the tokens 1..8 of the seeds.
#include "util.h"

#include "cli/sequences.h"
#include "probes/labels.h"

#include <string.h>

#define FUZZ_S 3 // sequences of the dump view
#define FUZZ_T 8 // tokens per sequence

static void answer_labels(const char *path) {
    static int64_t offsets[FUZZ_S + 1], positions[FUZZ_S * FUZZ_T];
    static int tokens[FUZZ_S * FUZZ_T];
    static int row_seq[FUZZ_S * FUZZ_T];
    for (int s = 0; s <= FUZZ_S; s++) offsets[s] = (int64_t)s * FUZZ_T;
    for (int r = 0; r < FUZZ_S * FUZZ_T; r++) {
        row_seq[r] = r / FUZZ_T;
        positions[r] = r % FUZZ_T;
        tokens[r] = 1 + r % FUZZ_T + (r / FUZZ_T) * 10; // 1..8, 11..18, 21..28
    }
    rwkv_dumpview v = {.r = NULL, .n_layer = 1, .n_rows = FUZZ_S * FUZZ_T, .n_seq = FUZZ_S,
                       .n_tokens = FUZZ_S * FUZZ_T, .offsets = offsets, .positions = positions,
                       .tokens = tokens, .row_seq = row_seq};
    rwkv_labels *l = NULL;
    fuzz_require(rwkv_labels_alloc(&l, v.n_rows, RWKV_LABEL_CLASS, "answer") == RWKV_OK, "labels_alloc");
    rwkv_labels_answer_fn(l, &v, path);
    rwkv_labels_free(l);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const char *path = fuzz_file(data, size, ".jsonl");
    cli_input in;
    memset(&in, 0, sizeof in);
    rwkv_sequences seqs;
    if (cli_sequences_read(&seqs, &in, path, 300) == RWKV_OK) {
        for (int i = 0; i < seqs.n; i++)
            for (int64_t k = 0; k < seqs.items[i].n; k++)
                fuzz_require(seqs.items[i].ids[k] >= 0 && seqs.items[i].ids[k] < 300, "--input ids in the vocabulary");
        rwkv_sequences_free(&seqs);
    }
    answer_labels(path);
    return 0;
}
