// safetensors_write.c: writes a model as safetensors (F32, official names, __metadata__).
// The file is written through the atomic helper (core/base/file.h): a failed write never
// leaves a half file under the final name, nor replaces the previous one.
#include "formats.h"

#include "../base/file.h"

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ST_ALIGN 8         // the header is padded with spaces to a multiple of 8 bytes
#define ST_WRITE_CHUNK 4096 // floats converted per fwrite

// Official checkpoints store time_mix vectors as [1, 1, C]; other vectors as [C]. RWKV-5/7
// have their own shapes, and their LoRA factors are stored transposed (*transposed).
static int official_shape(const rwkv_model *m, const rwkv_param *p, json_int_t *shape, int *transposed) {
    *transposed = 0;
    if (m->v7) {
        int64_t s[3];
        int nd = rwkv_v7_official_shape(p, m->cfg, s, transposed);
        for (int i = 0; i < nd; i++) shape[i] = s[i];
        return nd;
    }
    if (p->ndim == 2) {
        shape[0] = p->shape[0];
        shape[1] = p->shape[1];
        return 2;
    }
    if (strstr(p->name, ".time_mix_")) {
        shape[0] = shape[1] = 1;
        shape[2] = p->shape[0];
        return 3;
    }
    shape[0] = p->shape[0];
    return 1;
}

static json_t *build_header(const rwkv_model *m, const char *const *meta_kv, int n_meta) {
    json_t *h = json_object(), *meta = json_object();
    if (!h || !meta) goto fail;
    for (int i = 0; i < n_meta; i++)
        if (json_object_set_new(meta, meta_kv[2 * i], json_string(meta_kv[2 * i + 1]))) goto fail;
    if (json_object_set_new(h, "__metadata__", meta)) {
        meta = NULL;
        goto fail;
    }
    meta = NULL;
    uint64_t at = 0;
    for (int i = 0; i < m->table.n; i++) {
        const rwkv_param *p = &m->table.params[i];
        json_int_t shape[3];
        int transposed;
        int nd = official_shape(m, p, shape, &transposed);
        json_t *js = json_array(), *e = json_object();
        for (int d = 0; d < nd && js; d++) json_array_append_new(js, json_integer(shape[d]));
        uint64_t end = at + 4 * (uint64_t)p->numel;
        // The _set_new calls take the value's reference even when they fail.
        int bad = !e || json_object_set_new(e, "shape", js) ||
                  json_object_set_new(e, "dtype", json_string("F32")) ||
                  json_object_set_new(e, "data_offsets", json_pack("[II]", (json_int_t)at, (json_int_t)end));
        if (!e) json_decref(js);
        if (bad) json_decref(e);
        if (bad || json_object_set_new(h, p->name, e)) goto fail;
        at = end;
    }
    return h;
fail:
    json_decref(meta);
    json_decref(h);
    return NULL;
}

// Writes the header and every parameter as float32 in table order.
static int write_body(FILE *f, const char *header, const rwkv_model *m) {
    size_t hlen = strlen(header), padded = (hlen + ST_ALIGN - 1) / ST_ALIGN * ST_ALIGN;
    unsigned char len[8];
    for (int i = 0; i < 8; i++) len[i] = (unsigned char)((uint64_t)padded >> (8 * i));
    if (fwrite(len, 1, 8, f) != 8 || fwrite(header, 1, hlen, f) != hlen) return 0;
    for (size_t i = hlen; i < padded; i++)
        if (fputc(' ', f) == EOF) return 0;
    float chunk[ST_WRITE_CHUNK];
    for (int t = 0; t < m->table.n; t++) { // tensor by tensor: RWKV-7's table has gaps
        const rwkv_param *p = &m->table.params[t];
        const rwkv_real *x = m->block + p->offset;
        json_int_t shape[3];
        int transposed;
        official_shape(m, p, shape, &transposed);
        size_t rows = (size_t)p->shape[0], cols = p->ndim == 2 ? (size_t)p->shape[1] : 1;
        for (size_t i = 0; i < p->numel; i += ST_WRITE_CHUNK) {
            size_t k = p->numel - i < ST_WRITE_CHUNK ? p->numel - i : ST_WRITE_CHUNK;
            for (size_t j = 0; j < k; j++) { // element i+j of the stored layout; F64 builds round here
                size_t e = i + j;
                chunk[j] = (float)(transposed ? x[(e % rows) * cols + e / rows] : x[e]);
            }
            if (fwrite(chunk, sizeof(float), k, f) != k) return 0;
        }
    }
    return 1;
}

rwkv_status rwkv_safetensors_write(const char *path, const rwkv_model *m, const char *const *meta_kv,
                                   int n_meta) {
    json_t *h = build_header(m, meta_kv, n_meta);
    char *header = h ? json_dumps(h, JSON_COMPACT) : NULL;
    json_decref(h);
    if (!header) return rwkv_error_set(RWKV_ERR_NOMEM, "%s: cannot build the safetensors header", path);
    rwkv_atomic_file out;
    rwkv_status st = rwkv_file_atomic_open(&out, path, 1, 1);
    if (!st && !write_body(out.f, header, m)) {
        st = rwkv_error_set(RWKV_ERR_IO, "%s: cannot write: %s", path, strerror(errno));
        rwkv_file_atomic_abort(&out);
    } else if (!st) {
        st = rwkv_file_atomic_commit(&out);
    }
    free(header);
    return st;
}
