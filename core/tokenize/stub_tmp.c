// TEMPORARY: bytes-only tokenizer until the tokenizer work lands (replaced by it).
#include "tokenizer.h"
#include <stdlib.h>
#include <string.h>
struct rwkv_tokenizer { int dummy; };
static char pieces[256][2];
rwkv_status rwkv_tokenizer_load(rwkv_tokenizer **out, const char *spec) {
    *out = NULL;
    if (strcmp(spec, "bytes")) return rwkv_error_set(RWKV_ERR_UNSUPPORTED, "tokenizer %s: not implemented yet", spec);
    *out = calloc(1, sizeof **out);
    for (int i = 0; i < 256; i++) pieces[i][0] = (char)i;
    return *out ? RWKV_OK : RWKV_ERR_NOMEM;
}
void rwkv_tokenizer_free(rwkv_tokenizer *t) { free(t); }
rwkv_status rwkv_tokenizer_encode(rwkv_tokenizer *t, const char *text, size_t len, int **ids, size_t *n) {
    (void)t; *ids = malloc((len ? len : 1) * sizeof **ids); *n = len;
    for (size_t i = 0; i < len; i++) (*ids)[i] = (unsigned char)text[i];
    return RWKV_OK;
}
rwkv_status rwkv_tokenizer_decode(const rwkv_tokenizer *t, const int *ids, size_t n, char **text, size_t *len) {
    (void)t; *text = malloc(n + 1);
    for (size_t i = 0; i < n; i++) (*text)[i] = (char)ids[i];
    (*text)[n] = 0; *len = n; return RWKV_OK;
}
const char *rwkv_tokenizer_piece(const rwkv_tokenizer *t, int id, size_t *len) { (void)t; if (id < 0 || id > 255) return NULL; *len = 1; return pieces[id]; }
int rwkv_tokenizer_vocab_size(const rwkv_tokenizer *t) { (void)t; return 256; }
const char *rwkv_tokenizer_spec(const rwkv_tokenizer *t) { (void)t; return "bytes"; }
rwkv_status rwkv_tokenizer_check_vocab(const rwkv_tokenizer *t, int n_vocab) { (void)t; (void)n_vocab; return RWKV_OK; }
