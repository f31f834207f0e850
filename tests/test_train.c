// test_train.c: training against independent data: the float64 golden gradients, a
// finite-difference check of the WKV alone, the official init, and training behaviour.
#include "util.h"

#include "core/compute/forward.h"
#include "core/compute/wkv.h"
#include "core/model/model.h"
#include "core/model/state.h"
#include "core/train/wkv_grad.h"
#include "core/train/train.h"

#include <check.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#if RWKV_REAL_BITS == 64
#define GRAD_TOL 1e-9 // the bound for a float64 engine
#define FD_TOL 1e-7
#define MATCH_TOL 1e-12
#else
#define GRAD_TOL 1e-4 // the bound for a float32 engine
#define FD_TOL 1e-4
#define MATCH_TOL 2e-5
#endif

// ---------------------------------------------------------------- fixture model

// Maps a Hugging Face RwkvForCausalLM name to the official one (the fixture's scheme).
static void hf_to_official(const char *hf, char *out, size_t n) {
    static const char *const map[][2] = {
        {"rwkv.embeddings.weight", "emb.weight"}, {"rwkv.ln_out.", "ln_out."}, {"rwkv.blocks.", "blocks."},
        {".pre_ln.", ".ln0."}, {".attention.time_mix_key", ".att.time_mix_k"},
        {".attention.time_mix_value", ".att.time_mix_v"}, {".attention.time_mix_receptance", ".att.time_mix_r"},
        {".feed_forward.time_mix_key", ".ffn.time_mix_k"}, {".feed_forward.time_mix_receptance", ".ffn.time_mix_r"},
        {".attention.", ".att."}, {".feed_forward.", ".ffn."}};
    char buf[256];
    snprintf(buf, sizeof buf, "%s", hf);
    for (size_t i = 0; i < sizeof map / sizeof map[0]; i++) {
        char *p = strstr(buf, map[i][0]);
        if (!p) continue;
        char tmp[256];
        snprintf(tmp, sizeof tmp, "%.*s%s%s", (int)(p - buf), buf, map[i][1], p + strlen(map[i][0]));
        snprintf(buf, sizeof buf, "%s", tmp);
    }
    snprintf(out, n, "%s", buf);
}

// Reads the F32 safetensors fixture directly (a stand-in until the engine's loader reads
// .pth on every branch): header JSON with offsets, then raw little-endian floats.
static rwkv_model *load_safetensors_f32(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    uint64_t hlen = 0;
    if (fread(&hlen, 8, 1, f) != 1) return fclose(f), NULL;
    char *hdr = malloc(hlen + 1);
    if (fread(hdr, 1, hlen, f) != hlen) return free(hdr), fclose(f), NULL;
    hdr[hlen] = 0;
    json_t *root = json_loads(hdr, 0, NULL);
    free(hdr);
    json_t *emb = json_object_get(root, "rwkv.embeddings.weight");
    json_t *fk = json_object_get(root, "rwkv.blocks.0.feed_forward.key.weight");
    int L = 0;
    const char *key;
    json_t *val;
    json_object_foreach(root, key, val) {
        int l;
        if (sscanf(key, "rwkv.blocks.%d.", &l) == 1 && l + 1 > L) L = l + 1;
    }
    rwkv_config cfg = {L, (int)json_integer_value(json_array_get(json_object_get(emb, "shape"), 1)),
                       (int)json_integer_value(json_array_get(json_object_get(fk, "shape"), 0)),
                       (int)json_integer_value(json_array_get(json_object_get(emb, "shape"), 0))};
    rwkv_model *m = NULL;
    if (rwkv_model_alloc(&m, cfg)) return json_decref(root), fclose(f), NULL;
    json_object_foreach(root, key, val) {
        if (!strcmp(key, "__metadata__")) continue;
        char name[256];
        hf_to_official(key, name, sizeof name);
        const rwkv_param *p = rwkv_weights_find(&m->table, name);
        ck_assert_msg(p != NULL, "fixture tensor %s (%s) has no slot", key, name);
        json_t *off = json_object_get(val, "data_offsets");
        long long o0 = json_integer_value(json_array_get(off, 0));
        float *tmp = malloc(p->numel * sizeof *tmp);
        fseek(f, (long)(8 + hlen + o0), SEEK_SET);
        ck_assert(fread(tmp, sizeof(float), p->numel, f) == p->numel);
        for (size_t i = 0; i < p->numel; i++) m->block[p->offset + i] = tmp[i];
        free(tmp);
    }
    json_decref(root);
    fclose(f);
    rwkv_model_refresh(m);
    return m;
}

static rwkv_model *load_rand_model(void) {
    rwkv_model *m = NULL;
    if (rwkv_model_load(&m, test_fixture("rand-L2-C32-V50.pth")) == RWKV_OK) return m;
    m = load_safetensors_f32(test_fixture("rand-L2-C32-V50.safetensors"));
    ck_assert_msg(m != NULL, "cannot load the rand-L2-C32-V50 fixture");
    return m;
}

// max |a - ref| / max(max |ref|, 1e-6): the per-tensor error of the issue.
static double tensor_rel_err(const rwkv_real *a, const double *ref, size_t n) {
    double emax = 0, rmax = 0;
    for (size_t i = 0; i < n; i++) {
        double e = fabs((double)a[i] - ref[i]);
        if (!(e <= emax)) emax = e; // NaN propagates
        if (fabs(ref[i]) > rmax) rmax = fabs(ref[i]);
    }
    return emax / fmax(rmax, 1e-6);
}

static double scaled_err_r(const rwkv_real *a, const double *b, size_t n) {
    double m = 0;
    for (size_t i = 0; i < n; i++) {
        double e = fabs((double)a[i] - b[i]) / fmax(1.0, fabs(b[i]));
        if (!(e <= m)) m = e;
    }
    return m;
}

static void load_grad_batch(rwkv_batch *b) {
    size_t ni, nt;
    int *in = test_h5_read_int(test_fixture("golden-grad.h5"), "/inputs", &ni);
    int *tg = test_h5_read_int(test_fixture("golden-grad.h5"), "/targets", &nt);
    ck_assert(in && tg && ni == 48 && nt == 48);
    ck_assert_int_eq(rwkv_batch_alloc(b, 2, 24), RWKV_OK);
    memcpy(b->inputs, in, ni * sizeof(int));
    memcpy(b->targets, tg, nt * sizeof(int));
    free(in);
    free(tg);
}

// ---------------------------------------------------------------- gradients

START_TEST(test_grad_golden) {
    rwkv_model *m = load_rand_model();
    rwkv_batch b;
    load_grad_batch(&b);
    rwkv_train *t;
    ck_assert_int_eq(rwkv_train_alloc(&t, m->cfg, 2, 24), RWKV_OK);
    double loss;
    ck_assert_int_eq(rwkv_train_forward(t, m, &b, &loss), RWKV_OK);
    int nd;
    uint64_t dims[4];
    double *ref_loss = test_h5_read(test_fixture("golden-grad.h5"), "/loss", &nd, dims);
    ck_assert(ref_loss);
    double lerr = fabs(loss - *ref_loss) / fmax(fabs(*ref_loss), 1e-6);
    ck_assert_msg(lerr <= GRAD_TOL, "loss %.10g vs golden %.10g (rel err %.3g)", loss, *ref_loss, lerr);
    rwkv_real *grad = calloc(m->table.total, sizeof *grad);
    ck_assert_int_eq(rwkv_train_backward(t, m, &b, grad), RWKV_OK);
    double worst = 0;
    const char *worst_name = "";
    for (int i = 0; i < m->table.n; i++) {
        const rwkv_param *p = &m->table.params[i];
        char dset[128];
        snprintf(dset, sizeof dset, "/grad/%s", p->name);
        double *ref = test_h5_read(test_fixture("golden-grad.h5"), dset, &nd, dims);
        ck_assert_msg(ref != NULL, "golden-grad.h5 lacks %s", dset);
        double e = tensor_rel_err(grad + p->offset, ref, p->numel);
        ck_assert_msg(e <= GRAD_TOL, "gradient of %s: relative error %.3g > %g", p->name, e, GRAD_TOL);
        if (e > worst) worst = e, worst_name = p->name;
        free(ref);
    }
    printf("golden gradients: loss err %.3g, worst tensor %s %.3g (%d tensors)\n", lerr, worst_name,
           worst, m->table.n);
    free(grad);
    free(ref_loss);
    rwkv_train_free(t);
    rwkv_batch_free(&b);
    rwkv_model_free(m);
}
END_TEST

// The training forward gives the inference forward's logits (each row from the zero state).
START_TEST(test_forward_matches_inference) {
    rwkv_model *m = load_rand_model();
    rwkv_batch b;
    load_grad_batch(&b);
    rwkv_train *t;
    ck_assert_int_eq(rwkv_train_alloc(&t, m->cfg, 2, 24), RWKV_OK);
    double loss;
    ck_assert_int_eq(rwkv_train_forward(t, m, &b, &loss), RWKV_OK);
    rwkv_workspace *ws;
    rwkv_state *s;
    ck_assert_int_eq(rwkv_workspace_alloc(&ws, m->cfg, 24), RWKV_OK);
    ck_assert_int_eq(rwkv_state_alloc(&s, m->cfg), RWKV_OK);
    int V = m->cfg.n_vocab;
    rwkv_real *logits = malloc((size_t)24 * V * sizeof *logits);
    for (int r = 0; r < 2; r++) {
        rwkv_state_reset(s);
        ck_assert_int_eq(rwkv_forward_par(m, s, b.inputs + r * 24, 24, logits, RWKV_LOGITS_ALL, NULL, ws), RWKV_OK);
        double e = 0;
        for (int i = 0; i < 24 * V; i++) {
            double d = fabs((double)logits[i] - t->logits[(size_t)r * 24 * V + i]) / fmax(1, fabs(logits[i]));
            if (!(d <= e)) e = d;
        }
        ck_assert_msg(e <= MATCH_TOL, "row %d: training logits differ from rwkv_forward_par by %.3g", r, e);
    }
    free(logits);
    rwkv_state_free(s);
    rwkv_workspace_free(ws);
    rwkv_train_free(t);
    rwkv_batch_free(&b);
    rwkv_model_free(m);
}
END_TEST

// ---------------------------------------------------------------- WKV alone

typedef struct {
    int T, C;
    double *k, *v, *td, *u, *gy; // (T, C), (T, C), (C), (C), (T, C)
} wkv_case;

// L = sum_t gy_t y_t for one channel, straight from the definition in float64 (O(T^2)).
static double naive_loss(const wkv_case *w, int c, const double *k, const double *v, double td, double u) {
    double ew = exp(td), L = 0;
    for (int t = 0; t < w->T; t++) {
        double num = exp(u + k[t * w->C + c]) * v[t * w->C + c], den = exp(u + k[t * w->C + c]);
        for (int i = 0; i < t; i++) {
            double e = exp(-(t - 1 - i) * ew + k[i * w->C + c]);
            num += e * v[i * w->C + c];
            den += e;
        }
        L += w->gy[t * w->C + c] * num / den;
    }
    return L;
}

static double fd_err(const rwkv_real *an, const double *fd, size_t n) { return tensor_rel_err(an, fd, n); }

// Central differences of the naive float64 loss against rwkv_wkv_backward.
static void check_wkv_fd(wkv_case *w, double h) {
    int T = w->T, C = w->C;
    size_t TC = (size_t)T * C;
    rwkv_real *k = malloc(TC * sizeof *k), *v = malloc(TC * sizeof *v), *gy = malloc(TC * sizeof *gy);
    rwkv_real *y = malloc(TC * sizeof *y), *p = malloc(TC * sizeof *p), *d = malloc(TC * sizeof *d);
    rwkv_real *dk = malloc(TC * sizeof *dk), *dv = malloc(TC * sizeof *dv);
    rwkv_real ew[64], u[64], dtd[64] = {0}, du[64] = {0};
    for (size_t i = 0; i < TC; i++) k[i] = w->k[i], v[i] = w->v[i], gy[i] = w->gy[i];
    for (int c = 0; c < C; c++) ew[c] = exp(w->td[c]), u[c] = w->u[c];
    rwkv_wkv_train_forward(y, p, d, k, v, ew, u, T, C, 0, C);
    rwkv_wkv_backward(dk, dv, dtd, du, gy, k, v, ew, u, y, p, d, T, C, 0, C);
    double *fk = malloc(TC * sizeof *fk), *fv = malloc(TC * sizeof *fv), ftd[64], fu[64];
    for (int c = 0; c < C; c++) {
        for (int t = 0; t < T; t++) {
            size_t o = (size_t)t * C + c;
            double s = w->k[o];
            w->k[o] = s + h; double lp = naive_loss(w, c, w->k, w->v, w->td[c], w->u[c]);
            w->k[o] = s - h; double lm = naive_loss(w, c, w->k, w->v, w->td[c], w->u[c]);
            w->k[o] = s;
            fk[o] = (lp - lm) / (2 * h);
            s = w->v[o];
            w->v[o] = s + h; lp = naive_loss(w, c, w->k, w->v, w->td[c], w->u[c]);
            w->v[o] = s - h; lm = naive_loss(w, c, w->k, w->v, w->td[c], w->u[c]);
            w->v[o] = s;
            fv[o] = (lp - lm) / (2 * h);
        }
        ftd[c] = (naive_loss(w, c, w->k, w->v, w->td[c] + h, w->u[c]) -
                  naive_loss(w, c, w->k, w->v, w->td[c] - h, w->u[c])) / (2 * h);
        fu[c] = (naive_loss(w, c, w->k, w->v, w->td[c], w->u[c] + h) -
                 naive_loss(w, c, w->k, w->v, w->td[c], w->u[c] - h)) / (2 * h);
    }
    double ek = fd_err(dk, fk, TC), ev = fd_err(dv, fv, TC), etd = fd_err(dtd, ftd, C), eu = fd_err(du, fu, C);
    printf("wkv finite differences (T=%d C=%d): k %.2g v %.2g time_decay %.2g time_first %.2g\n", T, C,
           ek, ev, etd, eu);
    ck_assert_msg(ek <= FD_TOL, "dk vs finite differences: %.3g", ek);
    ck_assert_msg(ev <= FD_TOL, "dv vs finite differences: %.3g", ev);
    ck_assert_msg(etd <= FD_TOL, "dtime_decay vs finite differences: %.3g", etd);
    ck_assert_msg(eu <= FD_TOL, "dtime_first vs finite differences: %.3g", eu);
    free(k), free(v), free(gy), free(y), free(p), free(d), free(dk), free(dv), free(fk), free(fv);
}

// A pseudo-random value in [-1, 1), rounded to the engine's precision so that the float64
// reference and the engine see the same inputs.
static double rnd(uint64_t *s) {
    *s = *s * 6364136223846793005ULL + 1442695040888963407ULL;
    return (rwkv_real)((double)(*s >> 11) / (double)(1ULL << 53) * 2 - 1);
}

START_TEST(test_wkv_fd_random) {
    wkv_case w = {.T = 20, .C = 8};
    size_t TC = 160;
    uint64_t s = 42;
    w.k = malloc(TC * 8), w.v = malloc(TC * 8), w.gy = malloc(TC * 8), w.td = malloc(64), w.u = malloc(64);
    for (size_t i = 0; i < TC; i++) w.k[i] = 3 * rnd(&s), w.v[i] = rnd(&s), w.gy[i] = rnd(&s);
    for (int c = 0; c < 8; c++) w.td[c] = 2 * rnd(&s), w.u[c] = rnd(&s);
    check_wkv_fd(&w, 1e-5);
    free(w.k), free(w.v), free(w.gy), free(w.td), free(w.u);
}
END_TEST

// The golden WKV inputs: keys to 85 (exp overflows float32 without the running max) and
// decays from 0.0025 to 20 per token. Forward against the golden, backward against FD.
START_TEST(test_wkv_golden_extreme) {
    const char *f = test_fixture("golden-wkv.h5");
    int nd;
    uint64_t dims[4];
    wkv_case w;
    w.k = test_h5_read(f, "/k", &nd, dims);
    w.T = (int)dims[0], w.C = (int)dims[1];
    w.v = test_h5_read(f, "/v", &nd, dims);
    w.td = test_h5_read(f, "/time_decay", &nd, dims);
    w.u = test_h5_read(f, "/time_first", &nd, dims);
    double *ref = test_h5_read(f, "/wkv", &nd, dims);
    ck_assert(w.k && w.v && w.td && w.u && ref && w.C <= 64);
    size_t TC = (size_t)w.T * w.C;
    rwkv_real *k = malloc(TC * sizeof *k), *v = malloc(TC * sizeof *v), *y = malloc(TC * sizeof *y);
    rwkv_real *p = malloc(TC * sizeof *p), *d = malloc(TC * sizeof *d), *y2 = malloc(TC * sizeof *y2);
    rwkv_real ew[64], u[64], num[64] = {0}, den[64] = {0}, mx[64];
    for (size_t i = 0; i < TC; i++) k[i] = w.k[i], v[i] = w.v[i];
    for (int c = 0; c < w.C; c++) ew[c] = exp(w.td[c]), u[c] = w.u[c], mx[c] = (rwkv_real)RWKV_MAX_INIT;
    rwkv_wkv_train_forward(y, p, d, k, v, ew, u, w.T, w.C, 0, w.C);
    ck_assert_msg(scaled_err_r(y, ref, TC) <= (RWKV_REAL_BITS == 64 ? 1e-9 : 1e-4),
                  "training wkv vs golden: %.3g", scaled_err_r(y, ref, TC));
    rwkv_wkv_forward(y2, k, v, ew, u, w.T, w.C, num, den, mx, NULL);
    ck_assert_msg(memcmp(y, y2, TC * sizeof *y) == 0, "training wkv is not bit-identical to rwkv_wkv_forward");
    // Backward on the extreme inputs; the reference loss weights are pseudo-random.
    uint64_t s = 7;
    w.gy = malloc(TC * 8);
    for (size_t i = 0; i < TC; i++) w.gy[i] = rnd(&s);
    for (size_t i = 0; i < TC; i++) w.k[i] = k[i], w.v[i] = v[i];
    check_wkv_fd(&w, 1e-6);
    free(k), free(v), free(y), free(p), free(d), free(y2), free(ref);
    free(w.k), free(w.v), free(w.gy), free(w.td), free(w.u);
}
END_TEST

static Suite *suite(void) {
    Suite *s = suite_create("train");
    TCase *g = tcase_create("gradients");
    tcase_set_timeout(g, 60);
    tcase_add_test(g, test_grad_golden);
    tcase_add_test(g, test_forward_matches_inference);
    tcase_add_test(g, test_wkv_fd_random);
    tcase_add_test(g, test_wkv_golden_extreme);
    suite_add_tcase(s, g);
    return s;
}

int main(void) {
    SRunner *r = srunner_create(suite());
    srunner_run_all(r, CK_NORMAL);
    int failed = srunner_ntests_failed(r);
    srunner_free(r);
    return failed ? 1 : 0;
}
