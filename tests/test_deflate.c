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

#define ZLIB_OVERHEAD 6 // 2-byte header, 4-byte Adler-32

// Bytes of `len` bytes in stored blocks, as RFC 1951 frames them: 5 header bytes per block of
// at most 65535.
static size_t stored_bytes(size_t len) { return len + 5 * (len ? (len + 65534) / 65535 : 1); }

// Shuffles and deflates n elements of `size` bytes; zlib must inflate them to the shuffled
// bytes exactly. Returns the compressed size; *top (if not NULL) gets the BTYPE of the top
// plane's first block, which follows the low planes' stored blocks.
static size_t round_trip_block(const void *data, size_t n, size_t size, int *top) {
    size_t bytes = n * size;
    unsigned char *shuf = malloc(bytes), *ref = malloc(bytes), *back = malloc(bytes + 1);
    ck_assert(shuf && ref && back);
    rwkv_deflate c;
    ck_assert_int_eq(rwkv_deflate_init(&c, bytes), RWKV_OK);
    rwkv_deflate_shuffle(shuf, n, 0, data, n, size);
    reference_shuffle(ref, data, n, size);
    ck_assert_int_eq(memcmp(shuf, ref, bytes), 0);
    size_t len = 0;
    ck_assert_int_eq(rwkv_deflate_chunk(&c, shuf, n, size, &len), 0);
    ck_assert_uint_gt(len, 0);
    uLongf out = (uLongf)bytes + 1; // room for one byte too many: the stream must end itself
    ck_assert_int_eq(uncompress(back, &out, c.out, (uLong)len), Z_OK); // also checks the Adler-32
    ck_assert_uint_eq(out, bytes);
    ck_assert_int_eq(memcmp(back, ref, bytes), 0);
    size_t low = bytes - n; // the stored planes below the top one
    if (top) *top = c.out[2 + (low ? stored_bytes(low) : 0)] >> 1 & 3; // after BFINAL, LSB first
    rwkv_deflate_free(&c);
    free(shuf);
    free(ref);
    free(back);
    return len;
}

static size_t round_trip(const void *data, size_t n, size_t size) { return round_trip_block(data, n, size, NULL); }

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

// Edge cases: one element, all zeros (a run igzip shrinks to almost nothing), special
// values, random bytes that do not compress at all (the top plane is stored too).
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
    ck_assert_uint_eq(len, stored_bytes(3 * BIG_N) + stored_bytes(BIG_N) + ZLIB_OVERHEAD); // all stored
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

// Plane tests: chunks of 1-byte elements are one plane, the coded one. Sizes: tiny (the
// Huffman header alone outweighs them), one 64 x 768 chunk, and past three 64 KB blocks with
// a tail that no group of codes fills.
static const size_t plane_sizes[] = {1, 7, 49152, 196608 + 3};
#define N_PLANE_SIZES (sizeof plane_sizes / sizeof *plane_sizes)
#define BLOCK_STORED 0  // BTYPE = 00
#define BLOCK_HUFFMAN 2 // BTYPE = 10 (dynamic Huffman)

// Shannon entropy of p[0, m) in bits, from its byte counts: no literal-only code is shorter.
static double entropy_bits(const unsigned char *p, size_t m) {
    double h[256] = {0}, bits = 0;
    for (size_t i = 0; i < m; i++) h[p[i]]++;
    for (int b = 0; b < 256; b++)
        if (h[b]) bits -= h[b] * log2(h[b] / m);
    return bits;
}

// A Huffman-coded plane lies between the entropy and the entropy plus one bit a byte (a
// Huffman code's bound), plus the block header (at most ISA-L's 328 bytes) and the wrapper.
static void check_huffman(const unsigned char *p, size_t m, size_t low_stored, size_t len, int top) {
    ck_assert_int_eq(top, BLOCK_HUFFMAN);
    double h = entropy_bits(p, m), body = 8.0 * (len - low_stored - ZLIB_OVERHEAD);
    ck_assert_double_ge(body, h);
    ck_assert_double_le(body, h + m + 8 * 328 + 16);
}

// A plane that coding would not shrink: stored, framed exactly as RFC 1951 frames stored blocks.
static void check_stored_plane(const unsigned char *p, size_t m) {
    int top = -1;
    size_t len = round_trip_block(p, m, 1, &top);
    ck_assert_int_eq(top, BLOCK_STORED);
    ck_assert_uint_eq(len, stored_bytes(m) + ZLIB_OVERHEAD);
}

// One byte value: a run, coded by igzip's LZ77 in a few bytes (Huffman alone takes m / 8).
START_TEST(test_deflate_plane_constant) {
    for (size_t k = 0; k < N_PLANE_SIZES; k++) {
        size_t m = plane_sizes[k];
        unsigned char *p = malloc(m);
        memset(p, 0x3f, m);
        size_t len = round_trip(p, m, 1);
        ck_assert_uint_lt(len, 64 + m / 100);
        free(p);
    }
}
END_TEST

// Every byte value present (in planes of 256 bytes or more): once each, then a skewed
// geometric run, so the code spans 1-bit to 15-bit codes.
START_TEST(test_deflate_plane_all_values) {
    for (size_t k = 0; k < N_PLANE_SIZES; k++) {
        size_t m = plane_sizes[k];
        unsigned char *p = malloc(m);
        for (size_t i = 0; i < m; i++) p[i] = i < 256 ? (unsigned char)(255 - i) : (unsigned char)__builtin_ctz(next_u32() | 1u << 31);
        if (m >= 256 * 16) { // the code pays for its header
            int top = -1;
            size_t len = round_trip_block(p, m, 1, &top);
            check_huffman(p, m, 0, len, top);
        } else {
            check_stored_plane(p, m);
        }
        free(p);
    }
}
END_TEST

// All 256 values equally often, or random bytes: 8 bits each, nothing to gain.
START_TEST(test_deflate_plane_uniform) {
    for (size_t k = 0; k < N_PLANE_SIZES; k++) {
        size_t m = plane_sizes[k];
        unsigned char *p = malloc(m);
        for (size_t i = 0; i < m; i++) p[i] = (unsigned char)(i * 167); // 167 odd: every value in 256
        check_stored_plane(p, m);
        for (size_t i = 0; i < m; i++) p[i] = (unsigned char)next_u32();
        check_stored_plane(p, m);
        free(p);
    }
}
END_TEST

// Geometric counts (16 * 2^s for value s) give deep codes: with 9, 11 and 16 values ISA-L's
// longest are 9, 14 and 15 bits (deflate's cap), packed 5, 4 and 3 to an 8-byte store. Each
// copy of the sorted plane starts with the rarest values back to back, so the long codes fill
// the bit buffer between stores, at 5 offsets (after 0-4 common bytes).
START_TEST(test_deflate_plane_long_codes) {
    enum { COPIES = 5, RAREST = 16 };
    const int symbols[] = {9, 11, 16};
    for (size_t v = 0; v < sizeof symbols / sizeof *symbols; v++) {
        int n = symbols[v];
        size_t run = 0;
        for (int s = 0; s < n; s++) run += (size_t)RAREST << s;
        size_t m = COPIES * run + COPIES * (COPIES - 1) / 2;
        unsigned char *p = malloc(m), *q = p;
        for (int k = 0; k < COPIES; k++) {
            q = memset(q, 'a' + n - 1, (size_t)k), q += k;
            for (int s = 0; s < n; s++) q = memset(q, 'a' + s, (size_t)RAREST << s), q += (size_t)RAREST << s;
        }
        ck_assert_uint_eq((size_t)(q - p), m);
        int top = -1;
        size_t len = round_trip_block(p, m, 1, &top);
        check_huffman(p, m, 0, len, top);
        free(p);
    }
}
END_TEST

// Float32 activations of varying scale (per channel, over 2^-12 .. 2^4): the top plane is
// Huffman-coded, the three low ones stored.
START_TEST(test_deflate_activations) {
    for (size_t k = 0; k < N_PLANE_SIZES; k++) {
        size_t n = plane_sizes[k];
        float *x = malloc(n * sizeof *x);
        unsigned char *top_plane = malloc(n);
        for (size_t i = 0; i < n; i++) {
            x[i] = (float)(next_normal() * ldexp(1, (int)(i % 768) / 48 - 12));
            uint32_t w;
            memcpy(&w, &x[i], sizeof w);
            top_plane[i] = (unsigned char)(w >> 24);
        }
        int top = -1;
        size_t len = round_trip_block(x, n, sizeof *x, &top), low = stored_bytes(3 * n);
        if (n >= 49152) {
            check_huffman(top_plane, n, low, len, top);
            ck_assert_uint_lt(len, low + stored_bytes(n) + ZLIB_OVERHEAD);
        } else { // too short to pay for a Huffman header
            ck_assert_int_eq(top, BLOCK_STORED);
            ck_assert_uint_eq(len, low + stored_bytes(n) + ZLIB_OVERHEAD);
        }
        free(x);
        free(top_plane);
    }
}
END_TEST

// Empty chunks are one empty final stored block.
START_TEST(test_deflate_empty) {
    rwkv_deflate c;
    ck_assert_int_eq(rwkv_deflate_init(&c, 16), RWKV_OK);
    size_t len = 0;
    unsigned char none[1] = {0}, back[4];
    ck_assert_int_eq(rwkv_deflate_chunk(&c, none, 0, 4, &len), 0);
    ck_assert_uint_eq(len, stored_bytes(0) + ZLIB_OVERHEAD);
    uLongf out = sizeof back;
    ck_assert_int_eq(uncompress(back, &out, c.out, (uLong)len), Z_OK);
    ck_assert_uint_eq(out, 0);
    rwkv_deflate_free(&c);
}
END_TEST

// rwkv_deflate_chunk_to writes into the caller's buffer: exactly rwkv_deflate_bound bytes
// (malloc'ed to that size, so ASan sees any store past it, the bit packer's 8-byte ones
// included) hold the same stream as the compressor's own buffer; one byte less is refused.
START_TEST(test_deflate_chunk_to) {
    const size_t n = 49152, bytes = n * sizeof(float);
    float *x = malloc(bytes);
    unsigned char *shuf = malloc(bytes);
    rwkv_deflate c;
    ck_assert_int_eq(rwkv_deflate_init(&c, bytes), RWKV_OK);
    for (int kind = 0; kind < 2; kind++) { // activations (Huffman-coded top plane), random bits (stored)
        for (size_t i = 0; i < n; i++) {
            uint32_t r = next_u32();
            if (kind) memcpy(&x[i], &r, sizeof r);
            else x[i] = (float)next_normal();
        }
        rwkv_deflate_shuffle(shuf, n, 0, x, n, sizeof *x);
        size_t cap = rwkv_deflate_bound(bytes), len = 0, len_to = 0;
        unsigned char *out = malloc(cap);
        ck_assert_int_eq(rwkv_deflate_chunk(&c, shuf, n, sizeof *x, &len), 0);
        ck_assert_int_eq(rwkv_deflate_chunk_to(&c, out, cap, shuf, n, sizeof *x, &len_to), 0);
        ck_assert_uint_eq(len_to, len);
        ck_assert_int_eq(memcmp(out, c.out, len), 0);
        ck_assert_int_ne(rwkv_deflate_chunk_to(&c, out, cap - 1, shuf, n, sizeof *x, &len_to), 0);
        ck_assert_uint_eq(len_to, 0);
        free(out);
    }
    rwkv_deflate_free(&c);
    free(x);
    free(shuf);
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
    tcase_add_test(tc, test_deflate_plane_constant);
    tcase_add_test(tc, test_deflate_plane_all_values);
    tcase_add_test(tc, test_deflate_plane_uniform);
    tcase_add_test(tc, test_deflate_plane_long_codes);
    tcase_add_test(tc, test_deflate_activations);
    tcase_add_test(tc, test_deflate_empty);
    tcase_add_test(tc, test_deflate_chunk_to);
    tcase_add_test(tc, test_deflate_too_big);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
