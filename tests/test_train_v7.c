// test_train_v7.c: training RWKV-7 against independent data: the float64 golden gradient of
// the reference (complex-step, gen_v7_golden.py grad), central finite differences of the
// training loss (PRECISION=64), the inference engine's logits, the official init, a small
// training run, and the checkpoint written by training read back by the loader.
#include "util.h"

#include "core/compute/blas.h"
#include "core/compute/forward.h"
#include "core/formats/formats.h"
#include "core/model/model.h"
#include "core/model/state.h"
#include "core/train/checkpoint.h"
#include "core/train/data.h"
#include "core/train/init.h"
#include "core/train/train.h"
#include "core/train/trainer.h"

#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#if RWKV_REAL_BITS == 64
#define GRAD_TOL 1e-9 // the bound for a float64 engine
#define MATCH_TOL 1e-11
#else
#define GRAD_TOL 1e-4 // the bound for a float32 engine
#define MATCH_TOL 2e-5
#endif
#define FD_TOL 1e-6   // central differences, float64 (h = 1e-5: truncation ~1e-10, rounding ~1e-11)
#define FD_H 1e-5
#define FD_SAMPLES 4  // entries per tensor

static rwkv_model *load(const char *name) {
    rwkv_model *m = NULL;
    ck_assert_msg(rwkv_model_load(&m, test_fixture(name)) == RWKV_OK, "%s", rwkv_error_message());
    ck_assert_int_eq(m->cfg.version, RWKV_VERSION_7);
    return m;
}

// max |a - ref| / max(max |ref|, 1e-6); ref in the official layout (transposed when tr).
static double tensor_err(const rwkv_real *a, const double *ref, const rwkv_param *p, int tr) {
    size_t rows = (size_t)p->shape[0], cols = p->ndim == 2 ? (size_t)p->shape[1] : 1;
    double emax = 0, rmax = 0;
    for (size_t i = 0; i < p->numel; i++) {
        double r = tr ? ref[(i % cols) * rows + i / cols] : ref[i];
        double e = fabs((double)a[i] - r);
        if (!(e <= emax)) emax = e;
        rmax = fmax(rmax, fabs(r));
    }
    return emax / fmax(rmax, 1e-6);
}

static void random_batch(rwkv_batch *b, int B, int T, int V, unsigned seed) {
    ck_assert_int_eq(rwkv_batch_alloc(b, B, T), RWKV_OK);
    int *in = test_random_tokens(B * T, V, seed), *tg = test_random_tokens(B * T, V, seed + 1);
    memcpy(b->inputs, in, (size_t)B * T * sizeof(int));
    memcpy(b->targets, tg, (size_t)B * T * sizeof(int));
    free(in), free(tg);
}

// ---------------------------------------------------------------- gradients

START_TEST(test_v7_grad_golden) {
    rwkv_model *m = load("rand7-grad.pth");
    char gold[1024];
    snprintf(gold, sizeof gold, "%s", test_fixture("golden7-grad.h5"));
    size_t ni, nt;
    int *in = test_h5_read_int(gold, "/tokens", &ni), *tg = test_h5_read_int(gold, "/targets", &nt);
    ck_assert(in && tg && ni == nt);
    rwkv_batch b;
    ck_assert_int_eq(rwkv_batch_alloc(&b, 1, (int)ni), RWKV_OK);
    memcpy(b.inputs, in, ni * sizeof(int));
    memcpy(b.targets, tg, nt * sizeof(int));
    rwkv_train *t;
    ck_assert_int_eq(rwkv_train_alloc(&t, m->cfg, 1, (int)ni), RWKV_OK);
    double loss;
    ck_assert_int_eq(rwkv_train_forward(t, m, &b, &loss), RWKV_OK);
    int nd;
    uint64_t dims[4];
    double *ref_loss = test_h5_read(gold, "/loss", &nd, dims);
    ck_assert(ref_loss);
    double lerr = fabs(loss - *ref_loss) / fabs(*ref_loss);
    ck_assert_msg(lerr <= GRAD_TOL, "loss %.12g vs golden %.12g (rel err %.3g)", loss, *ref_loss, lerr);
    rwkv_real *grad = malloc(m->table.total * sizeof *grad);
    for (size_t i = 0; i < m->table.total; i++) grad[i] = NAN; // the backward must write all
    ck_assert_int_eq(rwkv_train_backward(t, m, &b, grad), RWKV_OK);
    for (size_t i = 0; i < m->table.total; i++) ck_assert_msg(isfinite(grad[i]), "gradient element %zu not written", i);
    double worst = 0;
    const char *worst_name = "";
    for (int i = 0; i < m->table.n; i++) {
        const rwkv_param *p = &m->table.params[i];
        char dset[128];
        snprintf(dset, sizeof dset, "/grad/%s", p->name);
        double *ref = test_h5_read(gold, dset, &nd, dims);
        ck_assert_msg(ref != NULL, "golden7-grad.h5 lacks %s", dset);
        int64_t shape[3];
        int tr;
        rwkv_v7_official_shape(p, m->cfg, shape, &tr);
        double e = tensor_err(grad + p->offset, ref, p, tr);
        ck_assert_msg(e <= GRAD_TOL, "gradient of %s: relative error %.3g > %g", p->name, e, GRAD_TOL);
        if (e > worst) worst = e, worst_name = p->name;
        free(ref);
    }
    printf("v7 golden gradients: loss err %.3g, worst tensor %s %.3g (%d tensors)\n", lerr, worst_name, worst,
           m->table.n);
    free(grad), free(ref_loss), free(in), free(tg);
    rwkv_train_free(t);
    rwkv_batch_free(&b);
    rwkv_model_free(m);
}
END_TEST

#if RWKV_REAL_BITS == 64
// Central differences of the training loss on a few entries of every tensor, with T across
// three scan chunks and two sequences (the golden's T fits in one chunk).
START_TEST(test_v7_grad_fd) {
    rwkv_model *m = load("rand7-a.pth");
    enum { B = 2, T = 37 };
    rwkv_batch b;
    random_batch(&b, B, T, m->cfg.n_vocab, 5);
    rwkv_train *t;
    ck_assert_int_eq(rwkv_train_alloc(&t, m->cfg, B, T), RWKV_OK);
    double loss, lp, lm;
    ck_assert_int_eq(rwkv_train_forward(t, m, &b, &loss), RWKV_OK);
    rwkv_real *grad = calloc(m->table.total, sizeof *grad);
    ck_assert_int_eq(rwkv_train_backward(t, m, &b, grad), RWKV_OK);
    double worst = 0;
    const char *worst_name = "";
    uint64_t s = 17;
    for (int i = 0; i < m->table.n; i++) {
        const rwkv_param *p = &m->table.params[i];
        for (int k = 0; k < FD_SAMPLES; k++) {
            s = s * 6364136223846793005ULL + 1442695040888963407ULL;
            size_t j = p->offset + (size_t)(s >> 33) % p->numel;
            double x = m->block[j];
            m->block[j] = x + FD_H;
            ck_assert_int_eq(rwkv_train_forward(t, m, &b, &lp), RWKV_OK);
            m->block[j] = x - FD_H;
            ck_assert_int_eq(rwkv_train_forward(t, m, &b, &lm), RWKV_OK);
            m->block[j] = x;
            double fd = (lp - lm) / (2 * FD_H), e = fabs(fd - grad[j]) / fmax(1e-2, fabs(fd));
            ck_assert_msg(e <= FD_TOL, "%s[%zu]: backward %.10g, finite differences %.10g", p->name, j - p->offset,
                          (double)grad[j], fd);
            if (e > worst) worst = e, worst_name = p->name;
        }
    }
    printf("v7 finite differences: worst %s %.3g (%d tensors x %d entries)\n", worst_name, worst, m->table.n,
           FD_SAMPLES);
    free(grad);
    rwkv_train_free(t);
    rwkv_batch_free(&b);
    rwkv_model_free(m);
}
END_TEST
#endif

// The training forward gives the inference engine's logits, each row from the zero state.
START_TEST(test_v7_forward_matches_inference) {
    rwkv_model *m = load("rand7-b.pth");
    enum { B = 2, T = 40 };
    rwkv_batch b;
    random_batch(&b, B, T, m->cfg.n_vocab, 9);
    rwkv_train *t;
    ck_assert_int_eq(rwkv_train_alloc(&t, m->cfg, B, T), RWKV_OK);
    double loss;
    ck_assert_int_eq(rwkv_train_forward(t, m, &b, &loss), RWKV_OK);
    rwkv_workspace *ws;
    rwkv_state *st;
    ck_assert_int_eq(rwkv_workspace_alloc(&ws, m->cfg, T), RWKV_OK);
    ck_assert_int_eq(rwkv_state_alloc(&st, m->cfg), RWKV_OK);
    int V = m->cfg.n_vocab;
    rwkv_real *logits = malloc((size_t)T * V * sizeof *logits);
    for (int r = 0; r < B; r++) {
        rwkv_state_reset(st);
        ck_assert_int_eq(rwkv_forward_par(m, st, b.inputs + r * T, T, logits, RWKV_LOGITS_ALL, NULL, ws), RWKV_OK);
        double e = test_max_scaled_err_r(t->logits + (size_t)r * T * V, logits, (size_t)T * V);
        ck_assert_msg(e <= MATCH_TOL, "row %d: training logits differ from rwkv_forward_par by %.3g", r, e);
    }
    free(logits);
    rwkv_state_free(st);
    rwkv_workspace_free(ws);
    rwkv_train_free(t);
    rwkv_batch_free(&b);
    rwkv_model_free(m);
}
END_TEST

START_TEST(test_v5_refused) {
    rwkv_model *m = NULL;
    ck_assert_int_eq(rwkv_model_load(&m, test_fixture("rand5-a.pth")), RWKV_OK);
    rwkv_train *t = NULL;
    ck_assert_int_eq(rwkv_train_alloc(&t, m->cfg, 1, 8), RWKV_ERR_UNSUPPORTED);
    ck_assert_ptr_null(t);
    ck_assert_ptr_nonnull(strstr(rwkv_error_message(), "RWKV-5.2"));
    rwkv_model_free(m);
}
END_TEST

// ---------------------------------------------------------------- init and training

static rwkv_model *init_v7(rwkv_config cfg, unsigned long seed) {
    cfg.version = RWKV_VERSION_7;
    rwkv_model *m;
    ck_assert_int_eq(rwkv_init_new_model(&m, cfg, seed), RWKV_OK); // what init and train call
    rwkv_v7_dims d = rwkv_init_v7_dims(cfg.n_embd, cfg.n_layer);
    ck_assert(m->v7 && m->v7->d.d_w == d.d_w && m->v7->d.d_a == d.d_a && m->v7->d.d_g == d.d_g);
    return m;
}

// |W W^T - gain^2 I| (rows <= cols) or |W^T W - gain^2 I| over the smaller side.
static double ortho_err(const rwkv_real *W, int rows, int cols, double gain) {
    int n = rows < cols ? rows : cols, K = rows < cols ? cols : rows;
    double e = 0;
    for (int a = 0; a < n; a++)
        for (int c = 0; c < n; c++) {
            double s = 0;
            for (int k = 0; k < K; k++)
                s += rows < cols ? (double)W[(size_t)a * cols + k] * W[(size_t)c * cols + k]
                                 : (double)W[(size_t)k * cols + a] * W[(size_t)k * cols + c];
            e = fmax(e, fabs(s - (a == c ? gain * gain : 0)));
        }
    return e;
}

START_TEST(test_v7_init) {
    rwkv_config cfg = {.n_layer = 3, .n_embd = 64, .n_ffn = 256, .n_vocab = 100, .head_size = 16};
    rwkv_model *m = init_v7(cfg, 5), *m2 = init_v7(cfg, 5), *m3 = init_v7(cfg, 6);
    const rwkv_v7_weights *w = m->v7;
    ck_assert(w->d.d_w == 32 && w->d.d_a == 32 && w->d.d_v == 32 && w->d.d_g == 32); // max(32, round(k 8 / 32) 32)
    ck_assert(!memcmp(m->block, m2->block, w->total * sizeof(rwkv_real)));
    ck_assert(memcmp(m->block, m3->block, w->total * sizeof(rwkv_real)));
    double tol = RWKV_REAL_BITS == 64 ? 1e-12 : 1e-5;
    int C = 64, Dw = w->d.d_w;
    ck_assert_msg(ortho_err(w->head, 100, C, 0.5 * sqrt(100.0 / C)) < 10 * tol, "head not orthogonal");
    ck_assert_msg(ortho_err(w->att_value + C * C, C, C, 1) < tol, "att.value not orthogonal");
    ck_assert_msg(ortho_err(w->att_key, C, C, 0.1) < tol, "att.key not 0.1-orthogonal");
    ck_assert_msg(ortho_err(w->ffn_key, 256, C, 1) < tol, "ffn.key not orthogonal");
    ck_assert_msg(ortho_err(w->w2, C, Dw, 0.1) < tol, "w2 not 0.1-orthogonal");
    for (int i = 0; i < 3 * C * C; i++) ck_assert(w->att_output[i] == 0);
    for (int i = 0; i < 3 * Dw * C; i++) ck_assert(w->w1[i] == 0);
    // layer 1 of 3, channel 40 (head size 16: z = (8 - 7.5) / 7.5), the equations of init_v7.c
    double x = 40.0 / 64, lin = 40.0 / 63 - 0.5, z = 0.5 / 7.5, zz = z * z, r10 = 1 - 1.0 / 3, r01 = 0.5;
    size_t o = 64 + 40;
    ck_assert(fabs(w->x_w[o] - (1 - pow(x, 0.9 * r10))) < tol);
    ck_assert(fabs(w->w0[o] - (-6 + 6 * pow(40.0 / 63, 1 + pow(r01, 0.3)) + 0.5 + 2.5 * zz)) < 10 * tol);
    ck_assert(fabs(w->a0[o] - (-0.19 + 0.3 * zz + 0.4 * lin)) < tol);
    ck_assert(fabs(w->v0[o] - (0.73 - 0.4 * lin)) < tol);
    ck_assert(fabs(w->ln_x_w[o] - pow(2.0 / 3, 0.7)) < tol);
    ck_assert(fabs(w->ffn_x_k[o] - (1 - pow(x, pow(r10, 4)))) < tol);
    ck_assert(w->v0[40] == 0 && w->k_a[o] == (rwkv_real)1.02 && w->r_k[o] == (rwkv_real)-0.04);
    rwkv_model_free(m), rwkv_model_free(m2), rwkv_model_free(m3);
}
END_TEST

#define COPY_VOCAB 16
#define COPY_LEN 8 // a random block of 8 tokens, a separator, the same block again

// Blocks to copy: the loss counts the second half of each example (the copy), whose
// tokens a model without memory of the first half predicts at ln 16 = 2.77 at best.
static rwkv_data *copy_data(int64_t n_ex) {
    int per = 2 * COPY_LEN + 1;
    int *tok = malloc((size_t)n_ex * per * sizeof *tok);
    rwkv_real *mask = malloc((size_t)n_ex * per * sizeof *mask);
    uint64_t s = 7;
    for (int64_t e = 0; e < n_ex; e++) {
        int *x = tok + e * per;
        rwkv_real *w = mask + e * per;
        for (int i = 0; i < COPY_LEN; i++) {
            s = s * 6364136223846793005ULL + 1442695040888963407ULL;
            x[i] = x[COPY_LEN + 1 + i] = 1 + (int)((s >> 33) % (COPY_VOCAB - 1));
            w[i] = 0, w[COPY_LEN + 1 + i] = 1;
        }
        x[COPY_LEN] = 0, w[COPY_LEN] = 0; // separator
    }
    rwkv_data *d;
    ck_assert_int_eq(rwkv_data_from_tokens(&d, tok, mask, n_ex * per, COPY_VOCAB, 0.1, "copy"), RWKV_OK);
    free(tok), free(mask);
    return d;
}

START_TEST(test_v7_train_copy) {
    rwkv_data *d = copy_data(600);
    rwkv_config cfg = {.n_layer = 2, .n_embd = 32, .n_ffn = 64, .n_vocab = COPY_VOCAB, .head_size = 16};
    rwkv_model *m = init_v7(cfg, 1);
    rwkv_trainer_opts o = {.B = 8, .T = 34, .steps = 600, .seed = 3, .opt = rwkv_adamw_defaults(), .eval_batches = 0};
    o.opt.lr = 5e-3, o.opt.min_lr = 5e-3 / 10, o.opt.warmup = 10;
    rwkv_trainer *tr;
    ck_assert_int_eq(rwkv_trainer_alloc(&tr, m, d, &o), RWKV_OK);
    double loss = 0, first = 0, val;
    for (int i = 0; i < o.steps; i++) {
        ck_assert_int_eq(rwkv_trainer_step(tr, &loss), RWKV_OK);
        if (!i) first = loss;
    }
    ck_assert_int_eq(rwkv_trainer_eval(tr, &val), RWKV_OK);
    printf("v7 copy: loss %.3f -> %.4f, val %.4f after %lld steps (chance ln %d = %.3f)\n", first, loss, val,
           (long long)o.steps, COPY_VOCAB - 1, log(COPY_VOCAB - 1.0));
    ck_assert_msg(first > 2.3, "the first loss %.3f should be near chance", first);
    ck_assert_msg(val < 0.5 * log(COPY_VOCAB - 1.0), "held-out loss %.4f is not clearly below chance", val);
    rwkv_trainer_free(tr);
    rwkv_model_free(m);
    rwkv_data_free(d);
}
END_TEST

// A checkpoint of a v7 run loads back as the same RWKV-7 model (official names and shapes).
START_TEST(test_v7_checkpoint_roundtrip) {
    rwkv_model *m = load("rand7-b.pth");
    char path[1024];
    snprintf(path, sizeof path, "%s/v7.safetensors", test_tmpdir());
    ck_assert_msg(rwkv_checkpoint_save_model(m, path, "bytes", 0, NULL, NULL) == RWKV_OK, "%s", rwkv_error_message());
    rwkv_model *back = NULL;
    ck_assert_msg(rwkv_model_load(&back, path) == RWKV_OK, "%s", rwkv_error_message());
    ck_assert_int_eq(back->cfg.version, RWKV_VERSION_7);
    ck_assert_int_eq(back->cfg.head_size, m->cfg.head_size);
    ck_assert(!memcmp(&back->v7->d, &m->v7->d, sizeof m->v7->d));
    ck_assert_uint_eq(back->v7->total, m->v7->total);
    for (size_t i = 0; i < m->v7->total; i++) ck_assert(back->block[i] == (rwkv_real)(float)m->block[i]);
    rwkv_model_free(back);
    rwkv_model_free(m);
}
END_TEST

static int has(const char *out, const char *s) { return out && strstr(out, s) != NULL; }

// init and train --arch 7 through the CLI; a stopped and resumed run equals a straight one.
START_TEST(test_v7_cli) {
    char *out = NULL;
    const char *dir = test_tmpdir();
    ck_assert_int_eq(test_cli(&out, "init --arch 7 --layers 2 --embd 32 --head-size 8 --vocab 50 -o %s/i7.safetensors", dir), 0);
    free(out);
    ck_assert_int_eq(test_cli(&out, "info %s/i7.safetensors", dir), 0);
    ck_assert_msg(has(out, "RWKV-7") && has(out, "heads: 4") && has(out, "head_size: 8"), "%s", out);
    free(out);
    ck_assert_int_eq(test_cli(&out, "init --arch 7 --layers 2 --embd 32 --head-size 12 -o %s/bad.safetensors", dir), 1);
    ck_assert_msg(has(out, "head size 12 must divide n_embd 32"), "%s", out);
    free(out);
    ck_assert_int_eq(test_cli(&out, "init --arch 6 --layers 2 --embd 32 -o %s/bad.safetensors", dir), 2);
    free(out);
    const char *run = "--arch 7 --head-size 16 --task copy --span 8 --vocab 16 --layers 1 --embd 32 --ctx 40 "
                      "--batch 2 --steps 12 --eval-every 4 --threads 1";
    ck_assert_int_eq(test_cli(&out, "train %s -o %s/s7.safetensors", run, dir), 0);
    ck_assert_msg(has(out, "RWKV-7, 2 heads of 16") && has(out, "step 12/12"), "%s", out);
    free(out);
    ck_assert_int_eq(test_cli(&out, "train %s --stop-at 6 -o %s/r7.safetensors --log %s/r7.loss.csv", run, dir, dir), 0);
    free(out);
    ck_assert_int_eq(test_cli(&out, "train %s --resume -o %s/r7.safetensors --log %s/r7.loss.csv", run, dir, dir), 0);
    ck_assert_msg(has(out, "resuming") && has(out, "step 12/12"), "%s", out);
    free(out);
    char a[700], b[700];
    snprintf(a, sizeof a, "%s/s7.safetensors", dir);
    snprintf(b, sizeof b, "%s/r7.safetensors", dir);
    ck_assert_msg(test_same_bytes(a, b), "resumed RWKV-7 run differs from the straight one");
    rwkv_model *m = NULL;
    ck_assert_int_eq(rwkv_model_load(&m, b), RWKV_OK);
    ck_assert_int_eq(m->cfg.version, RWKV_VERSION_7);
    rwkv_model_free(m);
}
END_TEST

int main(int argc, char **argv) {
    rwkv_blas_ensure_coretype(argc, argv);
    Suite *s = suite_create("train_v7");
    TCase *g = tcase_create("gradients");
    tcase_set_timeout(g, 120);
    tcase_add_test(g, test_v7_grad_golden);
#if RWKV_REAL_BITS == 64
    tcase_add_test(g, test_v7_grad_fd);
#endif
    tcase_add_test(g, test_v7_forward_matches_inference);
    tcase_add_test(g, test_v5_refused);
    suite_add_tcase(s, g);
    TCase *r = tcase_create("runs");
    tcase_set_timeout(r, 240);
    tcase_add_test(r, test_v7_init);
    tcase_add_test(r, test_v7_train_copy);
    tcase_add_test(r, test_v7_checkpoint_roundtrip);
    tcase_add_test(r, test_v7_cli);
    suite_add_tcase(s, r);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int nf = srunner_ntests_failed(sr);
    srunner_free(sr);
    return nf ? 1 : 0;
}
