// steer.c: building steering vectors and sweeping their layer and strength (see steer.h).
#include "steer.h"

#include "../core/inspect/h5util.h"

#include "../core/inspect/intervene.h"
#include "../core/inspect/record.h"
#include "plot.h"

#include <hdf5.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define STEER_FORMAT_VERSION 1
#define STEER_CHUNK 512 // parallel chunk of the runs
#define STEER_READ_BUDGET_S 2.0 // seconds for the trial read of a vector file's tap name

rwkv_status rwkv_steer_activation(rwkv_real *out, const rwkv_model *m, int layer, rwkv_tap tap, const int *tokens,
                                  int64_t T, int seq) {
    const int L = m->cfg.n_layer;
    if (layer < 0 || layer >= L || (int)tap < 0 || tap >= RWKV_TAP_N_BLOCK || !rwkv_tap_width(tap, m->cfg))
        return rwkv_error_set(RWKV_ERR_ARG, "steering: blocks.%d.%s is not a block tap of this %d-layer RWKV-%d model",
                              layer, (int)tap >= 0 && tap < RWKV_TAP_N ? RWKV_TAP_NAMES[tap] : "?", L,
                              RWKV_HAS_HEADS(m->cfg) ? m->cfg.version : 4);
    uint32_t *mask = rwkv_calloc((size_t)L + 1, sizeof *mask, "steering mask");
    if (!mask) return RWKV_ERR_NOMEM;
    mask[layer] = 1u << tap;
    rwkv_record *rec = NULL;
    rwkv_state *s = NULL;
    rwkv_workspace *ws = NULL;
    rwkv_status st = rwkv_record_alloc(&rec, m->cfg, T, mask);
    if (!st) st = rwkv_state_alloc(&s, m->cfg);
    if (!st) st = rwkv_workspace_alloc(&ws, m->cfg, (int)(T < STEER_CHUNK ? T : STEER_CHUNK));
    if (!st) st = (seq ? rwkv_forward_seq : rwkv_forward_par)(m, s, tokens, T, NULL, RWKV_LOGITS_NONE, &rec->hook, ws);
    if (!st) {
        int D = rwkv_tap_width(tap, m->cfg);
        memcpy(out, rwkv_record_rows(rec, layer, tap) + (size_t)(T - 1) * D, (size_t)D * sizeof *out);
    }
    free(mask);
    rwkv_record_free(rec);
    rwkv_state_free(s);
    rwkv_workspace_free(ws);
    return st;
}

// acc (D) += sign / n * activation of each prompt.
static rwkv_status accumulate(double *acc, const rwkv_model *m, int layer, rwkv_tap tap, int n, const int *const *p,
                              const int64_t *len, double sign, rwkv_real *row, int D, int seq, const char *what) {
    if (n < 1) return rwkv_error_set(RWKV_ERR_ARG, "steering: no %s prompts", what);
    for (int i = 0; i < n; i++) {
        if (len[i] < 1) return rwkv_error_set(RWKV_ERR_ARG, "steering: %s prompt %d is empty", what, i + 1);
        rwkv_status st = rwkv_steer_activation(row, m, layer, tap, p[i], len[i], seq);
        if (st) return rwkv_error_wrap(st, "steering: %s prompt %d: ", what, i + 1);
        for (int c = 0; c < D; c++) acc[c] += sign * row[c] / n; // mean(pos) - mean(neg)
    }
    return RWKV_OK;
}

rwkv_status rwkv_steer_build(rwkv_real *vec, const rwkv_model *m, int layer, rwkv_tap tap, int n_pos,
                             const int *const *pos, const int64_t *pos_len, int n_neg, const int *const *neg,
                             const int64_t *neg_len, int seq) {
    if ((int)tap < 0 || tap >= RWKV_TAP_N_BLOCK || !rwkv_tap_width(tap, m->cfg))
        return rwkv_error_set(RWKV_ERR_ARG, "steering: not a block tap of this model");
    const int D = rwkv_tap_width(tap, m->cfg);
    double *acc = rwkv_calloc((size_t)D, sizeof *acc, "steering sum");
    rwkv_real *row = rwkv_calloc((size_t)D, sizeof *row, "steering row");
    rwkv_status st = acc && row ? RWKV_OK : RWKV_ERR_NOMEM;
    if (!st) st = accumulate(acc, m, layer, tap, n_pos, pos, pos_len, 1, row, D, seq, "positive");
    if (!st) st = accumulate(acc, m, layer, tap, n_neg, neg, neg_len, -1, row, D, seq, "negative");
    for (int c = 0; !st && c < D; c++) vec[c] = (rwkv_real)acc[c];
    free(acc);
    free(row);
    return st;
}

rwkv_status rwkv_steer_write(const char *path, const rwkv_real *vec, int D, rwkv_config cfg, int layer, rwkv_tap tap,
                             int n_pos, int n_neg) {
    hid_t f;
    rwkv_atomic_file out;
    rwkv_status st = rwkv_h5_create_atomic(&f, &out, path, 1);
    if (st) return st;
    hsize_t d = (hsize_t)D;
    hid_t sp = H5Screate_simple(1, &d, NULL);
    hid_t ds = H5Dcreate2(f, "/vector", H5T_IEEE_F32LE, sp, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    herr_t e = ds < 0 ? -1 : H5Dwrite(ds, RWKV_REAL_BITS == 64 ? H5T_NATIVE_DOUBLE : H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL,
                                      H5P_DEFAULT, vec);
    char name[96];
    snprintf(name, sizeof name, "blocks.%d.%s", layer, RWKV_TAP_NAMES[tap]);
    int bad = e < 0 || rwkv_h5_attr_str(f, "tap", name) || rwkv_h5_attr_str(f, "tap_name", RWKV_TAP_NAMES[tap]) ||
              rwkv_h5_attr_i64(f, "layer", layer) || rwkv_h5_attr_i64(f, "n_pos", n_pos) ||
              rwkv_h5_attr_i64(f, "n_neg", n_neg) || rwkv_h5_attr_i64(f, "n_layer", cfg.n_layer) ||
              rwkv_h5_attr_i64(f, "n_embd", cfg.n_embd) || rwkv_h5_attr_i64(f, "n_ffn", cfg.n_ffn) ||
              rwkv_h5_attr_i64(f, "n_vocab", cfg.n_vocab) ||
              rwkv_h5_attr_i64(f, "format_version", STEER_FORMAT_VERSION);
    if (ds >= 0) H5Dclose(ds);
    H5Sclose(sp);
    if (bad) st = rwkv_h5_fail(path, "writing the vector");
    return rwkv_h5_commit(f, &out, st);
}

typedef struct {
    const char *path;
    char *buf;
    size_t size;
} tap_read;

static rwkv_status read_tap_name(void *ctx) {
    tap_read *r = ctx;
    hid_t f = -1;
    H5E_BEGIN_TRY { f = H5Fopen(r->path, H5F_ACC_RDONLY, H5P_DEFAULT); } H5E_END_TRY;
    if (f < 0) return rwkv_error_set(RWKV_ERR_IO, "%s: cannot open as HDF5", r->path);
    int got;
    H5E_BEGIN_TRY { got = rwkv_h5_get_str(f, "tap_name", r->buf, r->size); } H5E_END_TRY;
    H5Fclose(f);
    if (got < 0) return rwkv_error_set(RWKV_ERR_FORMAT, "%s: no tap_name attribute (give the tap explicitly)", r->path);
    return RWKV_OK;
}

rwkv_status rwkv_steer_read_tap(const char *path, char *buf, size_t size) {
    tap_read r = {path, buf, size};
    return rwkv_h5_guarded(path, "vector file", rwkv_h5_budget(path, STEER_READ_BUDGET_S), read_tap_name, &r);
}

// p(a), p(b) at the last position of the prompt under one (possibly empty) spec.
static rwkv_status answer_probs(double p[2], const rwkv_model *m, const char *spec, const int *prompt, int64_t T, int a,
                                int b, int seq, rwkv_real *logits, rwkv_state *s, rwkv_workspace *ws) {
    rwkv_intervene_list *l;
    rwkv_status st = rwkv_intervene_list_alloc(&l, m->cfg);
    if (st) return st;
    if (spec) {
        rwkv_intervention iv;
        st = rwkv_intervene_parse(&iv, spec);
        if (!st) st = rwkv_intervene_bind(&iv, m->cfg, T);
        if (!st) st = rwkv_intervene_list_add(l, &iv);
    }
    rwkv_state_reset(s);
    if (!st) st = rwkv_intervene_forward(m, s, prompt, T, 0, logits, RWKV_LOGITS_LAST, l, ws, seq);
    rwkv_intervene_list_free(l);
    if (st) return st;
    const int V = m->cfg.n_vocab;
    double mx = logits[0], z = 0;
    for (int i = 1; i < V; i++) mx = logits[i] > mx ? logits[i] : mx;
    for (int i = 0; i < V; i++) z += exp((double)logits[i] - mx);
    p[0] = exp((double)logits[a] - mx) / z; // softmax
    p[1] = exp((double)logits[b] - mx) / z;
    return RWKV_OK;
}

rwkv_status rwkv_steer_sweep(rwkv_steer_point *points, double base[2], const rwkv_model *m, const char *vec_path,
                             const char *tap_name, const char *positions, const int *layers, int n_layers,
                             const double *mults, int n_mult, const int *prompt, int64_t T, int a, int b, int seq) {
    const int V = m->cfg.n_vocab;
    if (a < 0 || a >= V || b < 0 || b >= V)
        return rwkv_error_set(RWKV_ERR_ARG, "steering: answer tokens %d, %d must be below the vocabulary size %d", a, b, V);
    rwkv_state *s = NULL;
    rwkv_workspace *ws = NULL;
    rwkv_real *logits = rwkv_calloc((size_t)V, sizeof *logits, "logits");
    rwkv_status st = logits ? RWKV_OK : RWKV_ERR_NOMEM;
    if (!st) st = rwkv_state_alloc(&s, m->cfg);
    if (!st) st = rwkv_workspace_alloc(&ws, m->cfg, (int)(T < STEER_CHUNK ? T : STEER_CHUNK));
    if (!st) st = answer_probs(base, m, NULL, prompt, T, a, b, seq, logits, s, ws);
    for (int i = 0; i < n_layers && !st; i++)
        for (int j = 0; j < n_mult && !st; j++) {
            char spec[RWKV_IV_SPEC_MAX];
            int k = snprintf(spec, sizeof spec, "blocks.%d.%s@%s=add:%s:%.17g", layers[i], tap_name, positions, vec_path,
                             mults[j]);
            if (k >= (int)sizeof spec) st = rwkv_error_set(RWKV_ERR_ARG, "steering: the vector path is too long");
            rwkv_steer_point *pt = &points[i * n_mult + j];
            *pt = (rwkv_steer_point){.layer = layers[i], .multiplier = mults[j]};
            double p[2] = {NAN, NAN};
            if (!st) st = answer_probs(p, m, spec, prompt, T, a, b, seq, logits, s, ws);
            pt->p_a = p[0];
            pt->p_b = p[1];
        }
    free(logits);
    rwkv_state_free(s);
    rwkv_workspace_free(ws);
    return st;
}

rwkv_status rwkv_steer_build_seqs(rwkv_real *vec, const rwkv_model *m, int layer, rwkv_tap tap,
                                  const rwkv_sequences *pos, const rwkv_sequences *neg, int seq) {
    const rwkv_sequences *side[2] = {pos, neg};
    const int **ids[2] = {NULL, NULL};
    int64_t *len[2] = {NULL, NULL};
    rwkv_status st = RWKV_OK;
    for (int k = 0; k < 2 && !st; k++) {
        int n = side[k]->n;
        ids[k] = rwkv_calloc((size_t)(n ? n : 1), sizeof *ids[k], "prompts");
        len[k] = rwkv_calloc((size_t)(n ? n : 1), sizeof *len[k], "prompts");
        if (!ids[k] || !len[k]) st = RWKV_ERR_NOMEM;
        for (int i = 0; !st && i < n; i++) ids[k][i] = side[k]->items[i].ids, len[k][i] = side[k]->items[i].n;
    }
    if (!st)
        st = rwkv_steer_build(vec, m, layer, tap, pos->n, (const int *const *)ids[0], len[0], neg->n,
                              (const int *const *)ids[1], len[1], seq);
    for (int k = 0; k < 2; k++) free(ids[k]), free(len[k]);
    return st;
}

rwkv_status rwkv_steer_parse_tap(const char *s, rwkv_config cfg, int *layer, rwkv_tap *tap) {
    int l, n = 0, L = cfg.n_layer;
    char name[64];
    if (sscanf(s, "blocks.%d.%63s%n", &l, name, &n) != 2 || s[n] || l < 0 || l >= L)
        return rwkv_error_set(RWKV_ERR_ARG, "--tap '%s': expected blocks.L.TAP with L below %d", s, L);
    int t = rwkv_tap_from_name(name);
    if (t < 0 || t >= RWKV_TAP_N_BLOCK) return rwkv_error_set(RWKV_ERR_ARG, "--tap '%s': '%s' is not a block tap", s, name);
    if (!rwkv_tap_width((rwkv_tap)t, cfg))
        return rwkv_error_set(RWKV_ERR_ARG, "--tap '%s': an RWKV-%d model has no tap %s", s,
                              RWKV_HAS_HEADS(cfg) ? cfg.version : 4, name);
    *layer = l;
    *tap = (rwkv_tap)t;
    return RWKV_OK;
}

double rwkv_steer_norm(const rwkv_real *vec, int D) {
    double norm = 0;
    for (int c = 0; c < D; c++) norm += (double)vec[c] * vec[c];
    return sqrt(norm);
}

rwkv_status rwkv_steer_parse_answers(const char *spec, rwkv_tokenizer *tok, int *a, int *b) {
    const char *comma = strrchr(spec, ',');
    if (!comma) return rwkv_error_set(RWKV_ERR_ARG, "--answers: expected A,B");
    rwkv_status st = rwkv_tokenizer_one(tok, spec, (size_t)(comma - spec), "--answers", a);
    return st ? st : rwkv_tokenizer_one(tok, comma + 1, strlen(comma + 1), "--answers", b);
}

rwkv_status rwkv_steer_write_csv(FILE *f, const rwkv_steer_point *pts, int n, const double base[2]) {
    fprintf(f, "layer,multiplier,p_a,p_b,dp_a,dp_b,logit_diff\n");
    for (int i = 0; i < n; i++)
        fprintf(f, "%d,%g,%.9g,%.9g,%.9g,%.9g,%.9g\n", pts[i].layer, pts[i].multiplier, pts[i].p_a, pts[i].p_b,
                pts[i].p_a - base[0], pts[i].p_b - base[1], log(pts[i].p_a) - log(pts[i].p_b));
    return ferror(f) ? rwkv_error_set(RWKV_ERR_IO, "steering: write error in the CSV") : RWKV_OK;
}

rwkv_status rwkv_steer_plot(const char *out, const rwkv_steer_point *pts, int nl, int nm) {
    double *x = rwkv_calloc((size_t)nm, sizeof *x, "plot"), *y = rwkv_calloc((size_t)nl * nm, sizeof *y, "plot");
    char(*labels)[32] = rwkv_calloc((size_t)nl, sizeof *labels, "plot");
    const char **names = rwkv_calloc((size_t)nl, sizeof *names, "plot");
    rwkv_status st = x && y && labels && names ? RWKV_OK : RWKV_ERR_NOMEM;
    if (!st) {
        for (int j = 0; j < nm; j++) x[j] = pts[j].multiplier;
        for (int i = 0; i < nl * nm; i++) y[i] = log(pts[i].p_a) - log(pts[i].p_b);
        for (int i = 0; i < nl; i++) {
            snprintf(labels[i], sizeof labels[i], "layer %d", pts[i * nm].layer);
            names[i] = labels[i];
        }
        rwkv_plot_opts o = {.title = "steering: log p(A) - log p(B) at the last position", .xlabel = "multiplier",
                            .ylabel = "log p(A) - log p(B)"};
        st = rwkv_plot_lines(out, &o, x, y, nm, nl, names);
    }
    free(x), free(y), free(labels), free(names);
    return st;
}
