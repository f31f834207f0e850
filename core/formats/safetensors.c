// safetensors.c: Hugging Face safetensors: an 8-byte little-endian header length, a JSON
// header {name: {dtype, shape, data_offsets}, "__metadata__": {str: str}}, then the data.
// RwkvForCausalLM names are mapped to the official checkpoint names.
#include "formats.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ST_MAX_HEADER (100u << 20) // the reference implementation's limit: 100 MB
#define ST_META_KEY "__metadata__"

// Replaces the first `from` in s with `to` (if it fits in cap). Returns 1 if replaced.
static int replace(char *s, size_t cap, const char *from, const char *to) {
    char *p = strstr(s, from);
    if (!p) return 0;
    size_t lf = strlen(from), lt = strlen(to), tail = strlen(p + lf);
    if ((size_t)(p - s) + lt + tail + 1 > cap) return 0;
    memmove(p + lt, p + lf, tail + 1);
    memcpy(p, to, lt);
    return 1;
}

static int ends_with(const char *s, const char *suffix) {
    size_t a = strlen(s), b = strlen(suffix);
    return a >= b && strcmp(s + a - b, suffix) == 0;
}

// RwkvForCausalLM name -> official name; names without the "rwkv." prefix pass through.
static void map_name(const char *hf, char *out, size_t cap) {
    snprintf(out, cap, "%s", hf);
    if (strncmp(hf, "rwkv.", 5) != 0) return;
    snprintf(out, cap, "%s", hf + 5);
    if (strncmp(out, "embeddings.", 11) == 0) replace(out, cap, "embeddings.", "emb.");
    replace(out, cap, ".pre_ln.", ".ln0.");
    replace(out, cap, ".attention.", ".att.");
    replace(out, cap, ".feed_forward.", ".ffn.");
    static const char *const MIX[][2] = {
        {"time_mix_key", "time_mix_k"}, {"time_mix_value", "time_mix_v"}, {"time_mix_receptance", "time_mix_r"}};
    for (int i = 0; i < 3; i++)
        if (ends_with(out, MIX[i][0])) replace(out + strlen(out) - strlen(MIX[i][0]), cap, MIX[i][0], MIX[i][1]);
}

static int parse_dtype(const char *s, rwkv_dtype *dt) {
    if (!strcmp(s, "F32")) *dt = RWKV_DT_F32;
    else if (!strcmp(s, "F16")) *dt = RWKV_DT_F16;
    else if (!strcmp(s, "BF16")) *dt = RWKV_DT_BF16;
    else if (!strcmp(s, "F64")) *dt = RWKV_DT_F64;
    else return 0;
    return 1;
}

typedef struct {
    uint64_t begin, end;
} span;

static int span_cmp(const void *a, const void *b) {
    const span *x = a, *y = b;
    return x->begin < y->begin ? -1 : x->begin > y->begin;
}

// One tensor entry: checks dtype, shape and offsets, and adds it under its official name.
static rwkv_status add_entry(const char *path, const char *name, json_t *v, const unsigned char *data,
                             uint64_t n_data, rwkv_tensor_set *out, span *sp) {
    json_t *jd = json_object_get(v, "dtype"), *js = json_object_get(v, "shape"),
           *jo = json_object_get(v, "data_offsets");
    if (!json_is_object(v) || !json_is_string(jd) || !json_is_array(js) || !json_is_array(jo) ||
        json_array_size(jo) != 2)
        return rwkv_error_set(RWKV_ERR_FORMAT, "%s: tensor %s: header entry needs dtype, shape and "
                              "data_offsets [begin, end]", path, name);
    rwkv_dtype dt;
    if (!parse_dtype(json_string_value(jd), &dt))
        return rwkv_error_set(RWKV_ERR_UNSUPPORTED, "%s: tensor %s: dtype %.20s is not supported "
                              "(F32, F16, BF16, F64)", path, name, json_string_value(jd));
    size_t nd = json_array_size(js);
    if (nd > RWKV_TENSOR_MAX_DIMS)
        return rwkv_error_set(RWKV_ERR_UNSUPPORTED, "%s: tensor %s: %zu dimensions (at most %d)", path,
                              name, nd, RWKV_TENSOR_MAX_DIMS);
    int64_t shape[RWKV_TENSOR_MAX_DIMS];
    uint64_t bytes = rwkv_dtype_size(dt);
    for (size_t i = 0; i < nd; i++) {
        json_t *d = json_array_get(js, i);
        if (!json_is_integer(d) || json_integer_value(d) < 0)
            return rwkv_error_set(RWKV_ERR_FORMAT, "%s: tensor %s: shape is not non-negative integers", path, name);
        shape[i] = json_integer_value(d);
        if (shape[i] && bytes > UINT64_MAX / (uint64_t)shape[i])
            return rwkv_error_set(RWKV_ERR_FORMAT, "%s: tensor %s: size overflows", path, name);
        bytes *= (uint64_t)shape[i];
    }
    json_t *b = json_array_get(jo, 0), *e = json_array_get(jo, 1);
    if (!json_is_integer(b) || !json_is_integer(e) || json_integer_value(b) < 0 ||
        json_integer_value(e) < json_integer_value(b) || (uint64_t)json_integer_value(e) > n_data)
        return rwkv_error_set(RWKV_ERR_FORMAT, "%s: tensor %s: data_offsets outside the %llu data bytes (truncated?)",
                              path, name, (unsigned long long)n_data);
    sp->begin = (uint64_t)json_integer_value(b);
    sp->end = (uint64_t)json_integer_value(e);
    if (sp->end - sp->begin != bytes)
        return rwkv_error_set(RWKV_ERR_FORMAT, "%s: tensor %s: data_offsets span %llu bytes, dtype and "
                              "shape need %llu", path, name, (unsigned long long)(sp->end - sp->begin),
                              (unsigned long long)bytes);
    char official[256];
    map_name(name, official, sizeof official);
    rwkv_status st = rwkv_tensors_add(out, official, dt, (int)nd, shape, data + sp->begin);
    return st ? rwkv_error_wrap(st, "%s: ", path) : RWKV_OK;
}

static rwkv_status add_meta(const char *path, json_t *meta, rwkv_tensor_set *out) {
    if (!json_is_object(meta))
        return rwkv_error_set(RWKV_ERR_FORMAT, "%s: %s is not an object", path, ST_META_KEY);
    const char *k;
    json_t *v;
    json_object_foreach(meta, k, v) {
        if (!json_is_string(v))
            return rwkv_error_set(RWKV_ERR_FORMAT, "%s: metadata %s is not a string", path, k);
        rwkv_status st = rwkv_tensors_set_meta(out, k, json_string_value(v));
        if (st) return st;
    }
    return RWKV_OK;
}

// The data must be covered exactly, without holes or overlaps (as the format requires).
static rwkv_status check_coverage(const char *path, span *sp, size_t n, uint64_t n_data) {
    qsort(sp, n, sizeof *sp, span_cmp);
    uint64_t at = 0;
    for (size_t i = 0; i < n; i++) {
        if (sp[i].begin != at)
            return rwkv_error_set(RWKV_ERR_FORMAT, "%s: tensor data %s at byte %llu of the data",
                                  path, sp[i].begin < at ? "overlaps" : "leaves a hole",
                                  (unsigned long long)at);
        at = sp[i].end;
    }
    if (at != n_data)
        return rwkv_error_set(RWKV_ERR_FORMAT, "%s: tensors cover %llu of the %llu data bytes", path,
                              (unsigned long long)at, (unsigned long long)n_data);
    return RWKV_OK;
}

static rwkv_status parse_header(const char *path, json_t *h, const unsigned char *data, uint64_t n_data,
                                rwkv_tensor_set *out) {
    if (!json_is_object(h)) return rwkv_error_set(RWKV_ERR_FORMAT, "%s: header is not a JSON object", path);
    span *sp = rwkv_calloc(json_object_size(h) + 1, sizeof *sp, "tensor spans");
    if (!sp) return RWKV_ERR_NOMEM;
    size_t n = 0;
    rwkv_status st = RWKV_OK;
    const char *k;
    json_t *v;
    json_object_foreach(h, k, v) {
        if (!strcmp(k, ST_META_KEY)) st = add_meta(path, v, out);
        else st = add_entry(path, k, v, data, n_data, out, &sp[n++]);
        if (st) break;
    }
    if (!st) st = check_coverage(path, sp, n, n_data);
    free(sp);
    return st;
}

rwkv_status rwkv_safetensors_read(const char *path, rwkv_tensor_set *out) {
    const unsigned char *buf;
    size_t n;
    rwkv_status st = rwkv_tensors_map_file(out, path, &buf, &n);
    if (st) return st;
    if (n < 8) return rwkv_error_set(RWKV_ERR_FORMAT, "%s: %zu bytes is too short for safetensors", path, n);
    uint64_t hlen = 0;
    for (int i = 7; i >= 0; i--) hlen = hlen << 8 | buf[i];
    if (hlen < 2 || hlen > ST_MAX_HEADER || hlen > n - 8)
        return rwkv_error_set(RWKV_ERR_FORMAT, "%s: header length %llu does not fit the %zu-byte file",
                              path, (unsigned long long)hlen, n);
    json_error_t jerr;
    json_t *h = json_loadb((const char *)buf + 8, (size_t)hlen, JSON_REJECT_DUPLICATES, &jerr);
    if (!h)
        return rwkv_error_set(RWKV_ERR_FORMAT, "%s: header JSON, byte %d: %s", path, jerr.position + 8,
                              jerr.text);
    st = parse_header(path, h, buf + 8 + hlen, n - 8 - hlen, out);
    json_decref(h);
    return st;
}
