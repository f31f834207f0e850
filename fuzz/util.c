// util.c: scratch files and checks for the harnesses.
#include "util.h"

#include "tok.h"

#include "core/inspect/h5util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define FUZZ_PATH_MAX 512

static char scratch[8][FUZZ_PATH_MAX]; // one per suffix used, removed at exit
static int n_scratch;

static void remove_scratch(void) {
    for (int i = 0; i < n_scratch; i++) unlink(scratch[i]);
}

static const char *scratch_path(const char *suffix) {
    char p[FUZZ_PATH_MAX];
    const char *dir = getenv("TMPDIR");
    snprintf(p, sizeof p, "%s/rwkvscope-fuzz-%ld%s", dir && *dir ? dir : "/tmp", (long)getpid(), suffix);
    for (int i = 0; i < n_scratch; i++)
        if (!strcmp(scratch[i], p)) return scratch[i];
    fuzz_require(n_scratch < 8, "scratch file slots");
    if (!n_scratch) atexit(remove_scratch);
    snprintf(scratch[n_scratch], FUZZ_PATH_MAX, "%s", p);
    return scratch[n_scratch++];
}

const char *fuzz_file(const uint8_t *data, size_t size, const char *suffix) {
    const char *p = scratch_path(suffix);
    FILE *f = fopen(p, "wb");
    fuzz_require(f && fwrite(data, 1, size, f) == size && fclose(f) == 0, "writing the scratch file");
    rwkv_h5_quiet();
    return p;
}

char *fuzz_str(const uint8_t *data, size_t size) {
    char *s = malloc(size + 1);
    fuzz_require(s != NULL, "malloc");
    memcpy(s, data, size);
    s[size] = '\0';
    return s;
}

void fuzz_require(int ok, const char *what) {
    if (ok) return;
    fprintf(stderr, "fuzz: property broken: %s\n", what);
    abort();
}

const char *fuzz_fixture(const char *name) {
    static char p[FUZZ_PATH_MAX];
    const char *root = getenv("RWKV_FUZZ_ROOT");
    snprintf(p, sizeof p, "%s/tests/fixtures/%s", root && *root ? root : ".", name);
    return p;
}

void fuzz_tok_roundtrip(rwkv_tokenizer *t, const char *text, size_t len, int exact) {
    int *ids = NULL;
    size_t n = 0;
    rwkv_status st = rwkv_tokenizer_encode(t, text, len, &ids, &n);
    if (exact) fuzz_require(st == RWKV_OK, "encoding text every token of which is in the vocabulary");
    if (st == RWKV_OK) {
        int V = rwkv_tokenizer_vocab_size(t);
        for (size_t i = 0; i < n; i++) fuzz_require(ids[i] >= 0 && ids[i] < V, "encoded id inside the vocabulary");
        char *back = NULL;
        size_t blen = 0;
        fuzz_require(rwkv_tokenizer_decode(t, ids, n, &back, &blen) == RWKV_OK, "decoding what was encoded");
        if (exact) fuzz_require(blen == len && !memcmp(back, text, len), "decode(encode(text)) == text");
        free(back);
    }
    free(ids);
}

void fuzz_h5_closed(void) {
    unsigned objs = H5F_OBJ_FILE | H5F_OBJ_DATASET | H5F_OBJ_GROUP | H5F_OBJ_ATTR;
    fuzz_require(H5Fget_obj_count(H5F_OBJ_ALL, objs) == 0, "every HDF5 object closed after the read");
    // h5util.c keeps one datatype open for good (the raw heap ID type of its vlen reads)
    fuzz_require(H5Fget_obj_count(H5F_OBJ_ALL, H5F_OBJ_DATATYPE) <= 1, "every HDF5 datatype closed after the read");
}

void fuzz_model_reader(const uint8_t *data, size_t size, const char *suffix,
                       rwkv_status (*read)(const char *path, rwkv_tensor_set *out), const char *format) {
    const char *path = fuzz_file(data, size, suffix);
    rwkv_tensor_set ts;
    rwkv_tensors_init(&ts);
    if (read(path, &ts) == RWKV_OK) {
        rwkv_model *m = NULL;
        if (rwkv_model_from_tensors(&m, &ts, path, format) == RWKV_OK) rwkv_model_free(m);
    }
    rwkv_tensors_free(&ts);
}

rwkv_tokenizer *fuzz_tok_fixture(const char *kind, const char *name) {
    char spec[600];
    rwkv_tokenizer *t = NULL;
    snprintf(spec, sizeof spec, "%s:%s", kind, fuzz_fixture(name));
    fuzz_require(rwkv_tokenizer_load(&t, spec) == RWKV_OK, "loading a tokenizer fixture");
    return t;
}

void fuzz_tok_vocab(const uint8_t *data, size_t size, const char *kind, const char *suffix) {
    static const char sample[] = "Hello, world!\n  The cat's 12 hats <|endoftext|> caf\xc3\xa9 "
                                 "\xe4\xbd\xa0\xe5\xa5\xbd \xff";
    char spec[600];
    snprintf(spec, sizeof spec, "%s:%s", kind, fuzz_file(data, size, suffix));
    rwkv_tokenizer *t = NULL;
    if (rwkv_tokenizer_load(&t, spec) == RWKV_OK) fuzz_tok_roundtrip(t, sample, strlen(sample), 0);
    rwkv_tokenizer_free(t);
}
