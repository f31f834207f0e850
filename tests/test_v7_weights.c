// test_v7_weights.c: RWKV-5.2/7 matrices read through typed views: bf16 and fp16 files in
// place, --weights bf16 and int8 conversions, both modes, against the float32 model.
#include "core/compute/forward.h"
#include "core/model/model.h"
#include "util.h"

#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define REF "rand7-a.safetensors" // float32; the -bf16/-fp16 files are its rounded copies
#define GOLDEN "golden7-a.h5"     // its tokens

// Bounds on max |logit - fp32 logit| / max(1, |fp32 logit|). A bf16 weight carries a relative
// error of at most 2^-9 (8 stored mantissa bits, round to nearest), an fp16 one 2^-12 (the
// normal range; these weights are 0.01..1). Through 2 layers of sums of C=32 products, a
// GroupNorm and the head the error grows to a few times that: the bound allows 16x, as
// test_engine.c's RWKV-4 bound. int8 (I8 blocks): a weight is within amax/254 < 2^-7.98 of
// its block's largest |w|, twice bf16's relative error taken against the block maximum: 16 * 2^-8.
#define BF16_BOUND (16.0 / 512)
#define FP16_BOUND (16.0 / 4096)
#define INT8_BOUND (16.0 / 256)
// The same weights through views and through a float copy differ in summation order only:
// float32 rounding of sums of at most F=64 terms, far below 1e-5 at these magnitudes.
#define SAME_WEIGHTS_BOUND 1e-5

static rwkv_model *open_as(const char *file, rwkv_weights_mode mode) {
    rwkv_model *m;
    rwkv_load_opts o = {.weights = mode};
    rwkv_status st = rwkv_model_open(&m, test_fixture(file), &o);
    ck_assert_msg(st == RWKV_OK, "%s: %s", file, rwkv_error_message());
    return m;
}

// Logits (T, V) of m over a golden's tokens (golden7-a, or golden5-a for RWKV-5.2),
// sequential or parallel (chunks of 7).
static rwkv_real *logits_of(const rwkv_model *m, int seq, size_t *n) {
    size_t T;
    int *tok = test_h5_read_int(test_fixture(RWKV_IS_V7(m->cfg) ? GOLDEN : "golden5-a.h5"), "/tokens", &T);
    ck_assert_ptr_nonnull(tok);
    *n = T * (size_t)m->cfg.n_vocab;
    rwkv_real *out = malloc(*n * sizeof *out);
    rwkv_state *s;
    rwkv_workspace *ws;
    ck_assert(!rwkv_state_alloc(&s, m->cfg));
    ck_assert(!rwkv_workspace_alloc(&ws, m->cfg, seq ? 1 : 7));
    rwkv_status st = (seq ? rwkv_forward_seq : rwkv_forward_par)(m, s, tok, (int64_t)T, out, RWKV_LOGITS_ALL, NULL, ws);
    ck_assert_msg(st == RWKV_OK, "%s", rwkv_error_message());
    rwkv_workspace_free(ws);
    rwkv_state_free(s);
    free(tok);
    return out;
}

// Max scaled error of m's logits against the float32 model's, in one mode.
static double err_vs(const rwkv_model *m, const rwkv_model *ref, int seq) {
    size_t n, nr;
    rwkv_real *a = logits_of(m, seq, &n), *b = logits_of(ref, 0, &nr);
    ck_assert_uint_eq(n, nr);
    double e = test_max_scaled_err_r(a, b, n);
    if (getenv("SHOWERR")) fprintf(stderr, "%s %s: %g\n", m->path, seq ? "seq" : "par", e);
    free(a);
    free(b);
    return e;
}

// Both modes of m within bound of ref, and not equal to it (the rounded weights were used).
static void check_within(const rwkv_model *m, const rwkv_model *ref, double bound, const char *what) {
    for (int seq = 0; seq <= 1; seq++) {
        double e = err_vs(m, ref, seq);
        ck_assert_msg(e < bound, "%s %s: logits differ by %g (bound %g)", what, seq ? "seq" : "par", e, bound);
        ck_assert_msg(e > 0, "%s %s: identical logits: the low-precision weights were not used", what, seq ? "seq" : "par");
    }
}

// bf16 and fp16 files run in place: every large matrix a view in the file's type, the block
// holding only the vectors, the embedding and the LoRA factors.
START_TEST(test_low_precision_files) {
    rwkv_model *ref = open_as(REF, RWKV_WEIGHTS_FP32);
    const struct { const char *file; rwkv_dtype type; double bound; } F[] = {
        {"rand7-a-bf16.safetensors", RWKV_DT_BF16, BF16_BOUND}, {"rand7-a-fp16.safetensors", RWKV_DT_F16, FP16_BOUND}};
    for (int i = 0; i < 2; i++) {
        rwkv_model *m = open_as(F[i].file, RWKV_WEIGHTS_FILE);
        if (RWKV_REAL_BITS == 32) { // PRECISION=64 keeps its float64 copy
            ck_assert_int_eq(RWKV_V7_MAT(m->v7, RWKV_V7_FV, 1)->type, F[i].type);
            ck_assert_int_eq(m->mats.head.type, F[i].type);
            ck_assert_ptr_null(m->v7->att_output);
            ck_assert_uint_lt(m->v7->in_block, m->v7->total / 2);
            ck_assert_ptr_nonnull(m->src); // the views point into the file's tensors
        }
        check_within(m, ref, F[i].bound, F[i].file);
        // the same rounded weights as a float copy: equal up to summation order
        rwkv_model *copy = open_as(F[i].file, RWKV_WEIGHTS_FP32);
        for (int seq = 0; seq <= 1; seq++) {
            double e = err_vs(m, copy, seq);
            ck_assert_msg(e < SAME_WEIGHTS_BOUND, "%s %s: views vs float copy %g", F[i].file, seq ? "seq" : "par", e);
        }
        rwkv_model_free(copy);
        rwkv_model_free(m);
    }
    rwkv_model_free(ref);
    char *out = NULL; // info names the type of every matrix
    ck_assert_int_eq(test_cli(&out, "info %s", test_fixture("rand7-a-bf16.safetensors")), 0);
    ck_assert_msg(strstr(out, "blocks.*.att.receptance.weight: bfloat16 (all 2 layers)") &&
                      strstr(out, "head.weight: bfloat16") && strstr(out, "LoRA factors: float"), "%s", out);
    free(out);
}
END_TEST

// --weights bf16 and int8 convert the float32 file's matrices; the bound fails on a wrong
// path (a bf16 view read as fp16).
START_TEST(test_converted_weights) {
    rwkv_model *ref = open_as(REF, RWKV_WEIGHTS_FP32);
    rwkv_model *m = open_as(REF, RWKV_WEIGHTS_BF16);
    ck_assert_int_eq(RWKV_V7_MAT(m->v7, RWKV_V7_K, 1)->type, RWKV_DT_BF16);
    ck_assert_ptr_null(m->src); // released once converted
    check_within(m, ref, BF16_BOUND, "--weights bf16");
    RWKV_V7_MAT(m->v7, RWKV_V7_K, 1)->type = RWKV_DT_F16; // bf16 bits read as fp16
    for (int seq = 0; seq <= 1; seq++)
        ck_assert_msg(err_vs(m, ref, seq) > BF16_BOUND, "a wrong view type stayed within the bound");
    rwkv_model_free(m);
    m = open_as(REF, RWKV_WEIGHTS_INT8);
    ck_assert_int_eq(RWKV_V7_MAT(m->v7, RWKV_V7_O, 0)->type, RWKV_DT_I8);
    ck_assert_int_eq(m->mats.head.type, RWKV_DT_I8);
    check_within(m, ref, INT8_BOUND, "--weights int8");
    rwkv_model_free(m);
    // RWKV-5.2 from a float32 .pth: bf16 views of its gate and ffn.receptance too
    rwkv_model *r5 = open_as("rand5-a.pth", RWKV_WEIGHTS_FP32), *m5 = open_as("rand5-a.pth", RWKV_WEIGHTS_BF16);
    ck_assert_int_eq(RWKV_V7_MAT(m5->v7, RWKV_V7_G, 0)->type, RWKV_DT_BF16);
    ck_assert_int_eq(RWKV_V7_MAT(m5->v7, RWKV_V7_FR, 1)->type, RWKV_DT_BF16);
    check_within(m5, r5, BF16_BOUND, "RWKV-5.2 --weights bf16");
    rwkv_model_free(m5);
    rwkv_model_free(r5);
    rwkv_model_free(ref);
}
END_TEST

// A bf16 file whose matrix holds a NaN or is misshaped is refused, naming the tensor.
START_TEST(test_bad_typed_file) {
    char bad[512];
    snprintf(bad, sizeof bad, "%s/nan-bf16.safetensors", test_tmpdir());
    char *text = NULL;
    FILE *in = fopen(test_fixture("rand7-a-bf16.safetensors"), "rb");
    ck_assert_ptr_nonnull(in);
    fseek(in, 0, SEEK_END);
    long n = ftell(in);
    rewind(in);
    unsigned char *buf = malloc((size_t)n);
    ck_assert_int_eq(fread(buf, 1, (size_t)n, in), n);
    fclose(in);
    uint64_t hl;
    memcpy(&hl, buf, 8);
    text = strndup((const char *)buf + 8, hl);
    const char *at = strstr(text, "\"blocks.1.ffn.value.weight\"");
    ck_assert_ptr_nonnull(at);
    long off = strtol(strchr(strstr(at, "data_offsets"), '[') + 1, NULL, 10);
    buf[8 + hl + off + 2 * 5] = 0xc0, buf[8 + hl + off + 2 * 5 + 1] = 0x7f; // bf16 NaN at element 5
    FILE *out = fopen(bad, "wb");
    fwrite(buf, 1, (size_t)n, out);
    fclose(out);
    rwkv_model *m;
    rwkv_load_opts o = {.weights = RWKV_WEIGHTS_FILE};
    ck_assert_int_eq(rwkv_model_open(&m, bad, &o), RWKV_ERR_NUMERIC);
    ck_assert_msg(strstr(rwkv_error_message(), "blocks.1.ffn.value.weight: element 5 is not finite"), "%s",
                  rwkv_error_message());
    buf[8 + hl + off + 2 * 5] = buf[8 + hl + off + 2 * 5 + 1] = 0; // finite again; now blocks.0.att.key.weight [32, 32] -> [16, 64]
    char *key = strstr((char *)buf + 8, "\"blocks.0.att.key.weight\"");
    ck_assert_ptr_nonnull(key);
    memcpy(strstr(key, "[32, 32]"), "[16, 64]", 8);
    out = fopen(bad, "wb");
    fwrite(buf, 1, (size_t)n, out);
    fclose(out);
    ck_assert_int_eq(rwkv_model_open(&m, bad, &o), RWKV_ERR_SHAPE);
    ck_assert_msg(strstr(rwkv_error_message(), "tensor blocks.0.att.key.weight has shape [16, 64], expected [32, 32]"),
                  "%s", rwkv_error_message());
    free(buf);
    free(text);
}
END_TEST

int main(void) {
    Suite *s = suite_create("v7_weights");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_low_precision_files);
    tcase_add_test(tc, test_converted_weights);
    tcase_add_test(tc, test_bad_typed_file);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
