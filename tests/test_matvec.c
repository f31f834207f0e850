// test_matvec.c: the streaming matrix-vector kernels of the sequential path against a
// float64 sum over the same weights (bf16 weights widened exactly), for shapes that exercise
// the 4-row blocks, the column tails and the split of several products between threads.
#include "core/compute/matvec.h"
#include "core/formats/quant.h"

#include <check.h>
#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

// Unit roundoff of the compute type: bf16 weights are widened and summed in rwkv_real.
#if RWKV_REAL_BITS == 64
#define UNIT_ROUNDOFF 0x1p-53
#else
#define UNIT_ROUNDOFF 0x1p-24
#endif

static double widen(uint16_t b) {
    uint32_t u = (uint32_t)b << 16;
    float f;
    memcpy(&f, &u, 4);
    return f;
}

static uint64_t rng = 0x9e3779b97f4a7c15ull;
static double uniform(void) { // in [-1, 1)
    rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
    return (double)(rng >> 11) / 4503599627370496.0 - 1.0;
}

typedef struct {
    rwkv_real *W, *x, *out;
    uint16_t *W16;
    int N, K;
} problem;

static problem make(int N, int K) {
    problem p = {malloc((size_t)N * K * sizeof(rwkv_real)), malloc((size_t)K * sizeof(rwkv_real)),
                 malloc((size_t)N * sizeof(rwkv_real)), malloc((size_t)N * K * 2), N, K};
    for (size_t i = 0; i < (size_t)N * K; i++) {
        p.W[i] = (rwkv_real)uniform();
        float f = (float)uniform();
        uint32_t u;
        memcpy(&u, &f, 4);
        p.W16[i] = (uint16_t)(u >> 16); // any bf16 value: truncation is fine for a test input
    }
    for (int j = 0; j < K; j++) p.x[j] = (rwkv_real)uniform();
    return p;
}

static void drop(problem *p) { free(p->W), free(p->x), free(p->out), free(p->W16); }

// Every output within the worst-case error of a K-term float sum: gamma_K * sum |w x|
// (Higham, Accuracy and Stability, eq. 3.5, for any summation order). A wrong row, a lost
// tail column or a stale output is off by a whole |w x| term, far beyond this.
static void check(const problem *p, int bf16) {
    double gamma = p->K * UNIT_ROUNDOFF / (1 - p->K * UNIT_ROUNDOFF);
    for (int i = 0; i < p->N; i++) {
        double exact = 0, mag = 0;
        for (int j = 0; j < p->K; j++) {
            size_t o = (size_t)i * p->K + j;
            double w = bf16 ? widen(p->W16[o]) : p->W[o];
            exact += w * p->x[j];
            mag += fabs(w * p->x[j]);
        }
        ck_assert_msg(fabs(p->out[i] - exact) <= gamma * mag, "row %d of %dx%d%s: %g vs %g", i, p->N, p->K,
                      bf16 ? " bf16" : "", (double)p->out[i], exact);
    }
}

static const int SHAPES[][2] = {{1, 1}, {3, 17}, {37, 53}, {64, 768}, {129, 100}, {768, 3072}};
#define N_SHAPES (int)(sizeof SHAPES / sizeof SHAPES[0])

START_TEST(test_single_products) {
    for (int threads = 1; threads <= 3; threads++) {
        omp_set_num_threads(threads);
        for (int s = 0; s < N_SHAPES; s++) {
            problem p = make(SHAPES[s][0], SHAPES[s][1]);
            rwkv_matvec_f32(p.out, p.W, p.x, p.N, p.K);
            check(&p, 0);
            rwkv_matvec_bf16(p.out, p.W16, p.x, p.N, p.K);
            check(&p, 1);
            drop(&p);
        }
    }
}
END_TEST

// Several products of different shapes and weight types in one call, as the time-mix and
// channel-mix use them.
START_TEST(test_multi_products) {
    for (int threads = 1; threads <= 3; threads++) {
        omp_set_num_threads(threads);
        problem p[3] = {make(37, 53), make(130, 53), make(5, 200)};
        rwkv_matvec_job jobs[3];
        for (int i = 0; i < 3; i++)
            jobs[i] = (rwkv_matvec_job){p[i].out, i == 1 ? (rwkv_mat){RWKV_DT_BF16, p[i].W16} : (rwkv_mat){RWKV_DT_REAL, p[i].W},
                                        p[i].x, p[i].N, p[i].K};
        for (int i = 0; i < 3; i++)
            for (int r = 0; r < p[i].N; r++) p[i].out[r] = (rwkv_real)NAN; // every row must be written
        rwkv_matvec_multi(jobs, 3);
        for (int i = 0; i < 3; i++) {
            check(&p[i], i == 1);
            drop(&p[i]);
        }
    }
}
END_TEST

// fp16 and every ggml block type: against the float64 sum over the weights as the format
// defines them (rwkv_tensors_convert, checked against rwkv.cpp's files in test_formats), with
// the same gamma bound over K + 2 terms (a block's sum is scaled by d and added to the row's).
// The block types need K a multiple of 32. I8 on a CPU with AVX512-VNNI rounds x to int16
// steps of dx = max|x| / 32767 (per 4096 columns: at most the whole x's dx) and sums the
// quants' products exactly in integers: each x_j is off by at most dx/2 (0.51 dx with the
// float rounding of x_j / dx), which adds 0.51 dx sum |w_j| to the bound.
START_TEST(test_typed_products) {
    static const int TS[][2] = {{1, 32}, {5, 64}, {37, 96}, {130, 768}, {3, 8224}}; // 8224: I8's x in 3 parts
    static const rwkv_dtype TYPES[] = {RWKV_DT_F16, RWKV_DT_Q8_0, RWKV_DT_Q4_0, RWKV_DT_Q4_1, RWKV_DT_Q5_0, RWKV_DT_Q5_1, RWKV_DT_I8};
    for (int threads = 1; threads <= 2; threads++) {
        omp_set_num_threads(threads);
        for (size_t s = 0; s < sizeof TS / sizeof TS[0]; s++)
            for (size_t t = 0; t < sizeof TYPES / sizeof TYPES[0]; t++) {
                int N = TS[s][0], K = TS[s][1];
                size_t n = (size_t)N * K;
                problem p = make(N, K);
                unsigned char *q = calloc(rwkv_dtype_bytes(TYPES[t], n) + 1, 1);
                if (TYPES[t] == RWKV_DT_F16)
                    for (size_t i = 0; i < n; i++) ((uint16_t *)q)[i] = rwkv_float_to_half((float)p.W[i]);
                else { // random quants, then scales (and minimums) of a plausible size
                    size_t bb = rwkv_dtype_bytes(TYPES[t], 32);
                    for (size_t b = 0; b < n / 32; b++) {
                        for (size_t j = 0; j < bb; j++) q[b * bb + j] = (unsigned char)(uniform() * 128 + 128);
                        uint16_t d = rwkv_float_to_half((float)(0.01 + 0.005 * uniform())), m = rwkv_float_to_half((float)(0.02 * uniform()));
                        float d32 = (float)(0.01 + 0.005 * uniform());
                        if (TYPES[t] == RWKV_DT_I8) memcpy(q + b * bb + 32, &d32, 4);
                        else memcpy(q + b * bb, &d, 2);
                        if (TYPES[t] == RWKV_DT_Q4_1 || TYPES[t] == RWKV_DT_Q5_1) memcpy(q + b * bb + 2, &m, 2);
                    }
                }
                rwkv_real *w = malloc(n * sizeof *w);
                rwkv_tensors_convert(w, q, TYPES[t], n);
                memcpy(p.W, w, n * sizeof *w); // check() compares against these weights
                for (int i = 0; i < N; i++) p.out[i] = (rwkv_real)NAN;
                rwkv_matvec(p.out, (rwkv_mat){TYPES[t], q}, p.x, N, K);
                p.K += 2; // the gamma bound of check() over K + 2 terms
                double gamma = p.K * UNIT_ROUNDOFF / (1 - p.K * UNIT_ROUNDOFF);
                p.K -= 2;
                double xmax = 0;
                for (int j = 0; j < K; j++) xmax = fmax(xmax, fabs(p.x[j]));
                double dx = TYPES[t] == RWKV_DT_I8 ? xmax / 32767 : 0;
                for (int i = 0; i < N; i++) {
                    double exact = 0, mag = 0, wsum = 0;
                    for (int j = 0; j < K; j++) {
                        exact += (double)w[(size_t)i * K + j] * p.x[j];
                        mag += fabs((double)w[(size_t)i * K + j] * p.x[j]);
                        wsum += fabs((double)w[(size_t)i * K + j]);
                    }
                    double bound = gamma * mag + 0.51 * dx * wsum;
                    ck_assert_msg(fabs(p.out[i] - exact) <= bound, "%s row %d of %dx%d: %g vs %g",
                                  rwkv_dtype_name(TYPES[t]), i, N, K, (double)p.out[i], exact);
                }
                free(w);
                free(q);
                drop(&p);
            }
    }
}
END_TEST

// Widening rows for parallel mode's tiles: every type gives the bits rwkv_tensors_convert
// gives, from a row offset, with a count that leaves a tail past the vector width.
START_TEST(test_widen_rows) {
    static const rwkv_dtype TYPES[] = {RWKV_DT_F32, RWKV_DT_BF16, RWKV_DT_F16, RWKV_DT_Q8_0, RWKV_DT_Q4_1, RWKV_DT_Q5_0, RWKV_DT_I8};
    const int N = 7, K = 96, r0 = 2, n = 5; // rows 2..6 of 7
    for (size_t t = 0; t < sizeof TYPES / sizeof TYPES[0]; t++)
        for (int k = K; k >= K - 31; k -= 31) { // K = 65 leaves a tail (fp/bf16 only; blocks need 32 | K)
            if (rwkv_dtype_is_quant(TYPES[t]) && k % 32) continue;
            size_t bytes = rwkv_dtype_bytes(TYPES[t], (size_t)N * k);
            unsigned char *q = malloc(bytes);
            size_t es = rwkv_dtype_size(TYPES[t]); // 0 for the block types
            for (size_t i = 0; i < bytes; i++) // finite values: the top exponent bit cleared
                q[i] = (unsigned char)(i * 91 % 253) & (es && i % es == es - 1 ? 0xBF : 0xFF);
            if (rwkv_dtype_is_quant(TYPES[t])) { // finite scales: rewrite them per block
                size_t bb = rwkv_dtype_bytes(TYPES[t], 32);
                for (size_t b = 0; b < bytes / bb; b++) {
                    uint16_t d = rwkv_float_to_half(0.01f);
                    float d32 = 0.01f;
                    if (TYPES[t] == RWKV_DT_I8) memcpy(q + b * bb + 32, &d32, 4);
                    else memcpy(q + b * bb, &d, 2);
                }
            }
            rwkv_real *a = malloc((size_t)n * k * sizeof *a), *want = malloc((size_t)n * k * sizeof *want);
            rwkv_matvec_widen(a, (rwkv_mat){TYPES[t], q}, k, r0, n);
            rwkv_tensors_convert(want, q + rwkv_dtype_bytes(TYPES[t], (size_t)r0 * k), TYPES[t], (size_t)n * k);
            ck_assert_msg(!memcmp(a, want, (size_t)n * k * sizeof *a), "%s K=%d: widened rows differ", rwkv_dtype_name(TYPES[t]), k);
            free(a); free(want); free(q);
        }
}
END_TEST

// A NaN or infinite x gives a non-finite product in every type (the forward pass's
// finiteness check relies on it; I8's rounding of x to int16 must not hide it).
START_TEST(test_nonfinite_x) {
    static const rwkv_dtype TYPES[] = {RWKV_DT_F32, RWKV_DT_BF16, RWKV_DT_F16, RWKV_DT_Q8_0, RWKV_DT_Q4_0, RWKV_DT_Q5_1, RWKV_DT_I8};
    const int N = 6, K = 64;
    const double bad[2] = {NAN, INFINITY};
    for (size_t t = 0; t < sizeof TYPES / sizeof TYPES[0]; t++)
        for (int b = 0; b < 2; b++) {
            problem p = make(N, K);
            unsigned char *q = calloc(rwkv_dtype_bytes(TYPES[t], (size_t)N * K), 1);
            for (size_t i = 0; i < rwkv_dtype_bytes(TYPES[t], (size_t)N * K); i++) q[i] = (unsigned char)(i * 37 % 251);
            if (TYPES[t] == RWKV_DT_I8) // finite float32 scales
                for (int blk = 0; blk < N * K / 32; blk++) memcpy(q + 36 * blk + 32, &(float){0.01f}, 4);
            p.x[5] = (rwkv_real)bad[b];
            rwkv_matvec(p.out, (rwkv_mat){TYPES[t], q}, p.x, N, K);
            for (int i = 0; i < N; i++)
                ck_assert_msg(!isfinite(p.out[i]), "%s row %d: x[5] = %g gives %g", rwkv_dtype_name(TYPES[t]), i, bad[b],
                              (double)p.out[i]);
            free(q);
            drop(&p);
        }
}
END_TEST

// fp32 and fp16 rows as a mapped rwkv.cpp file holds them: at an odd address (tensors are
// packed without padding), with column tails (K = 45); the kernels must not assume alignment.
START_TEST(test_unaligned_rows) {
    for (int f16 = 0; f16 <= 1; f16++) {
        int N = 9, K = 45;
        problem p = make(N, K);
        size_t es = f16 ? 2 : 4;
        unsigned char *raw = malloc((size_t)N * K * es + 1), *q = raw + 1;
        for (size_t i = 0; i < (size_t)N * K; i++) {
            float v = (float)p.W[i];
            uint16_t h = rwkv_float_to_half(v);
            if (f16) memcpy(q + 2 * i, &h, 2), p.W[i] = rwkv_half_to_float(h);
            else memcpy(q + 4 * i, &v, 4), p.W[i] = v; // the float the row holds
        }
        rwkv_matvec(p.out, (rwkv_mat){f16 ? RWKV_DT_F16 : RWKV_DT_F32, q}, p.x, N, K);
        check(&p, 0);
        free(raw);
        drop(&p);
    }
}
END_TEST

int main(void) {
    Suite *s = suite_create("matvec");
    TCase *tc = tcase_create("kernels");
    tcase_add_test(tc, test_single_products);
    tcase_add_test(tc, test_multi_products);
    tcase_add_test(tc, test_typed_products);
    tcase_add_test(tc, test_unaligned_rows);
    tcase_add_test(tc, test_nonfinite_x);
    tcase_add_test(tc, test_widen_rows);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
