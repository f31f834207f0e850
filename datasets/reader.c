// reader.c: one JSONL line at a time, checked against docs/dataset-format.md.
#include "reader.h"

#include "dataset.h"

#include <errno.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#define READER_PATH_MAX 1024

rwkv_status rwkv_dataset_reader_open(rwkv_dataset_reader **out, const char *path, int flags) {
    *out = NULL;
    if (strlen(path) >= READER_PATH_MAX) return rwkv_error_set(RWKV_ERR_ARG, "%.64s...: path too long", path);
    rwkv_dataset_reader *r = rwkv_calloc(1, sizeof *r, "dataset reader");
    if (!r) return RWKV_ERR_NOMEM;
    snprintf(r->path, sizeof r->path, "%s", path);
    r->flags = flags;
    if (!(r->f = fopen(path, "r"))) {
        free(r);
        return rwkv_error_set(RWKV_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    }
    *out = r;
    return RWKV_OK;
}

void rwkv_dataset_example_clear(rwkv_dataset_example *ex) {
    free(ex->tokens);
    free(ex->text);
    free(ex->answers);
    memset(ex, 0, sizeof *ex);
}

void rwkv_dataset_reader_free(rwkv_dataset_reader *r) {
    if (!r) return;
    if (r->f) fclose(r->f);
    free(r->line);
    free(r);
}

static rwkv_status bad(const rwkv_dataset_reader *r, const char *what) {
    return rwkv_error_set(RWKV_ERR_FORMAT, "%s:%lld: %s", r->path, (long long)r->lineno, what);
}

// n elements of size each (at least one), or an out-of-memory error naming the line.
static rwkv_status alloc_array(const rwkv_dataset_reader *r, void **out, size_t n, size_t size) {
    if ((*out = calloc(n ? n : 1, size))) return RWKV_OK;
    return rwkv_error_set(RWKV_ERR_NOMEM, "%s:%lld: out of memory", r->path, (long long)r->lineno);
}

static rwkv_status read_tokens(const rwkv_dataset_reader *r, json_t *tk, rwkv_dataset_example *ex) {
    size_t n = json_array_size(tk);
    void *p;
    if (alloc_array(r, &p, n, sizeof *ex->tokens)) return RWKV_ERR_NOMEM;
    ex->tokens = p;
    ex->n_tokens = (int64_t)n;
    for (size_t i = 0; i < n; i++) {
        json_t *v = json_array_get(tk, i);
        if (!json_is_integer(v) || json_integer_value(v) < 0 || json_integer_value(v) > INT32_MAX)
            return rwkv_error_set(RWKV_ERR_FORMAT, "%s:%lld: tokens[%zu] is not a token id", r->path,
                                  (long long)r->lineno, i);
        ex->tokens[i] = (int)json_integer_value(v);
    }
    return RWKV_OK;
}

// "answers": [[start, length], ...], each span inside the tokens with start >= 1.
static rwkv_status read_answers(const rwkv_dataset_reader *r, json_t *ans, rwkv_dataset_example *ex) {
    size_t n = json_array_size(ans);
    void *p;
    if (alloc_array(r, &p, n, sizeof *ex->answers)) return RWKV_ERR_NOMEM;
    ex->answers = p;
    ex->n_answers = (int)n;
    for (size_t k = 0; k < n; k++) {
        json_t *span = json_array_get(ans, k), *a = json_array_get(span, 0), *len = json_array_get(span, 1);
        int ok = json_is_array(span) && json_array_size(span) == 2 && json_is_integer(a) && json_is_integer(len);
        int64_t s = ok ? json_integer_value(a) : 0, l = ok ? json_integer_value(len) : 0;
        if (!ok || s < 1 || l < 0 || s > ex->n_tokens || l > ex->n_tokens - s) // no s + l: it can overflow
            return rwkv_error_set(RWKV_ERR_FORMAT, "%s:%lld: answer span %zu is not [start >= 1, length] inside the example",
                                  r->path, (long long)r->lineno, k);
        ex->answers[k][0] = s;
        ex->answers[k][1] = l;
    }
    return RWKV_OK;
}

// Line 1 may be the header; a "format" anywhere else, or another format, is refused.
static rwkv_status header(rwkv_dataset_reader *r, json_t *j, int *is_header) {
    json_t *fmt = json_object_get(j, "format");
    *is_header = fmt != NULL;
    if (!fmt) return RWKV_OK;
    if (r->lineno != 1 || !json_is_string(fmt) || strcmp(json_string_value(fmt), "rwkvscope-dataset") ||
        !json_is_integer(json_object_get(j, "version")) ||
        json_integer_value(json_object_get(j, "version")) > RWKV_DATASET_VERSION)
        return bad(r, "not an example and not an rwkvscope-dataset v1 header on line 1");
    r->header = 1;
    return RWKV_OK;
}

static rwkv_status json_example(rwkv_dataset_reader *r, const char *line, rwkv_dataset_example *ex, int *is_header) {
    json_error_t err;
    json_t *j = json_loads(line, JSON_REJECT_DUPLICATES, &err);
    if (!j || !json_is_object(j)) {
        rwkv_status st = rwkv_error_set(RWKV_ERR_FORMAT, "%s:%lld: not a JSON object (%s)", r->path,
                                        (long long)r->lineno, j ? "another JSON value" : err.text);
        json_decref(j);
        return st;
    }
    rwkv_status st = header(r, j, is_header);
    json_t *tk = json_object_get(j, "tokens"), *tx = json_object_get(j, "text"), *ans = json_object_get(j, "answers");
    if (st || *is_header) goto done;
    if (tk && !json_is_array(tk)) st = bad(r, "\"tokens\" is not an array");
    else if (tx && !json_is_string(tx)) st = bad(r, "\"text\" is not a string");
    else if (ans && !json_is_array(ans)) st = bad(r, "\"answers\" is not an array");
    else if (!tk && !tx) st = bad(r, "needs a \"tokens\" array or a \"text\" string");
    if (!st && tk) st = read_tokens(r, tk, ex);
    if (!st && tx && !(ex->text = strdup(json_string_value(tx))))
        st = rwkv_error_set(RWKV_ERR_NOMEM, "%s:%lld: out of memory", r->path, (long long)r->lineno);
    if (!st && ans) st = read_answers(r, ans, ex);
done:
    json_decref(j);
    return st;
}

rwkv_status rwkv_dataset_reader_next(rwkv_dataset_reader *r, rwkv_dataset_example *ex, int *got) {
    rwkv_dataset_example_clear(ex);
    *got = 0;
    ssize_t len;
    while ((len = getline(&r->line, &r->cap, r->f)) >= 0) {
        r->lineno++;
        char *line = r->line;
        while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r')) line[--len] = '\0';
        if (len == 0) continue;
        if ((size_t)len != strlen(line)) return bad(r, "the line holds a NUL byte");
        ex->lineno = r->lineno;
        int is_header = 0;
        rwkv_status st;
        if (line[0] != '{' && (r->flags & RWKV_READER_TEXT_LINES))
            st = (ex->text = strdup(line)) ? RWKV_OK : rwkv_error_set(RWKV_ERR_NOMEM, "%s: out of memory", r->path);
        else st = json_example(r, line, ex, &is_header);
        if (st) {
            rwkv_dataset_example_clear(ex);
            return st;
        }
        if (is_header) continue;
        *got = 1;
        return RWKV_OK;
    }
    if (ferror(r->f)) return rwkv_error_set(RWKV_ERR_IO, "%s: read error: %s", r->path, strerror(errno));
    return RWKV_OK;
}
