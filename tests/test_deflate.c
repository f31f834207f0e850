// test_deflate.c: the dump's chunk compressor against zlib's inflate (an independent
// decoder, the one HDF5's deflate filter calls) and against the shuffle's definition.
#include "core/inspect/deflate.h"

#include <check.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#define BIG_N (300 * 1024) // float32 elements: 1.2 MB, several 64 KB stored blocks per plane

static uint64_t rng = 0x9e3779b97f4a7c15ull;
static uint32_t next_u32(void) { // xorshift64*
    rng ^= rng >> 12, rng ^= rng << 25, rng ^= rng >> 27;
    return (uint32_t)((rng * 2685821657736338717ull) >> 32);
}
static double next_normal(void) { // Box-Muller
    double u = (next_u32() + 1.0) / 4294967297.0, v = next_u32() / 4294967296.0;
    return sqrt(-2 * log(u)) * cos(2 * M_PI * v);
}

// The shuffle as HDF5 defines it, written the obvious way.
static void reference_shuffle(unsigned char *dst, const unsigned char *src, size_t n, size_t size) {
    for (size_t i = 0; i < n; i++)
        for (size_t j = 0; j < size; j++) dst[j * n + i] = src[i * size + j];
}

// Shuffles and deflates n elements of `size` bytes; zlib must inflate them to the shuffled
// bytes exactly. Returns the compressed size.
static size_t round_trip(const void *data, size_t n, size_t size) {
    size_t bytes = n * size;
    unsigned char *shuf = malloc(bytes), *ref = malloc(bytes), *back = malloc(bytes);
    ck_assert(shuf && ref && back);
    rwkv_deflate c;
    ck_assert_int_eq(rwkv_deflate_init(&c, bytes), RWKV_OK);
    rwkv_deflate_shuffle(shuf, n, 0, data, n, size);
    reference_shuffle(ref, data, n, size);
    ck_assert_int_eq(memcmp(shuf, ref, bytes), 0);
    size_t len = 0;
    ck_assert_int_eq(rwkv_deflate_chunk(&c, shuf, n, size, &len), 0);
    ck_assert_uint_gt(len, 0);
    uLongf out = (uLongf)bytes;
    ck_assert_int_eq(uncompress(back, &out, c.out, (uLong)len), Z_OK); // also checks the Adler-32
    ck_assert_uint_eq(out, bytes);
    ck_assert_int_eq(memcmp(back, ref, bytes), 0);
    rwkv_deflate_free(&c);
    free(shuf);
    free(ref);
    free(back);
    return len;
}

START_TEST(test_deflate_float32) {
    float *x = malloc(BIG_N * sizeof *x);
    for (size_t i = 0; i < BIG_N; i++) x[i] = (float)next_normal();
    size_t len = round_trip(x, BIG_N, sizeof *x);
    // The sign/exponent plane of normal floats holds ~3 bits of information per byte: the
    // stream must be well under the raw size (mantissa planes are stored, so not under 3/4).
    ck_assert_uint_lt(len, BIG_N * sizeof *x * 0.9);
    ck_assert_uint_gt(len, BIG_N * sizeof *x * 0.75);
    free(x);
}
END_TEST

START_TEST(test_deflate_float64) {
    double *x = malloc(BIG_N / 2 * sizeof *x);
    for (size_t i = 0; i < BIG_N / 2; i++) x[i] = next_normal() * 1e3;
    round_trip(x, BIG_N / 2, sizeof *x);
    free(x);
}
END_TEST

// Edge cases: one element, all zeros (a run the coder shrinks to almost nothing), special
// values, random bytes that do not compress at all (igzip must fall back to stored blocks).
START_TEST(test_deflate_edges) {
    float one = 1.5f;
    round_trip(&one, 1, sizeof one);
    float *z = calloc(BIG_N, sizeof *z);
    size_t len = round_trip(z, BIG_N, sizeof *z);
    ck_assert_uint_lt(len, BIG_N * sizeof *z * 0.76); // stored low planes + a tiny top plane
    float special[6] = {NAN, INFINITY, -INFINITY, -0.0f, 1e-45f, 3.4e38f};
    for (size_t i = 0; i < BIG_N; i++) z[i] = special[i % 6];
    round_trip(z, BIG_N, sizeof *z);
    uint32_t *r = (uint32_t *)z;
    for (size_t i = 0; i < BIG_N; i++) r[i] = next_u32();
    len = round_trip(r, BIG_N, sizeof *r);
    ck_assert_uint_le(len, BIG_N * sizeof *r * 1.01);
    free(z);
}
END_TEST

// Rows scattered one at a time at their offsets build the same chunk as one shuffle.
START_TEST(test_deflate_shuffle_rows) {
    enum { ROWS = 5, D = 7 };
    float x[ROWS * D];
    for (int i = 0; i < ROWS * D; i++) x[i] = (float)next_normal();
    unsigned char a[sizeof x], b[sizeof x];
    for (int r = 0; r < ROWS; r++) rwkv_deflate_shuffle(a, ROWS * D, (size_t)r * D, x + r * D, D, sizeof(float));
    reference_shuffle(b, (const unsigned char *)x, ROWS * D, sizeof(float));
    ck_assert_int_eq(memcmp(a, b, sizeof a), 0);
    double y[ROWS * D];
    for (int i = 0; i < ROWS * D; i++) y[i] = next_normal();
    unsigned char c[sizeof y], e[sizeof y];
    rwkv_deflate_shuffle(c, ROWS * D, 0, y, 2 * D, sizeof(double));
    rwkv_deflate_shuffle(c, ROWS * D, 2 * D, y + 2 * D, 3 * D, sizeof(double));
    reference_shuffle(e, (const unsigned char *)y, ROWS * D, sizeof(double));
    ck_assert_int_eq(memcmp(c, e, sizeof c), 0);
}
END_TEST

// A chunk larger than the compressor was sized for is refused, not overrun.
START_TEST(test_deflate_too_big) {
    rwkv_deflate c;
    ck_assert_int_eq(rwkv_deflate_init(&c, 1024), RWKV_OK);
    unsigned char *big = calloc(4096, 1);
    size_t len = 99;
    ck_assert_int_ne(rwkv_deflate_chunk(&c, big, 1024, 4, &len), 0);
    ck_assert_uint_eq(len, 0);
    rwkv_deflate_free(&c);
    rwkv_deflate_free(&c); // freeing twice (the struct is cleared) and NULL are safe
    rwkv_deflate_free(NULL);
    free(big);
}
END_TEST

int main(void) {
    Suite *s = suite_create("deflate");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_deflate_float32);
    tcase_add_test(tc, test_deflate_float64);
    tcase_add_test(tc, test_deflate_edges);
    tcase_add_test(tc, test_deflate_shuffle_rows);
    tcase_add_test(tc, test_deflate_too_big);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
