// test_formats.c: the checkpoint readers. Every fixture format loads with the right shape;
// the three containers of one model give the same weights; reduced-precision copies stay
// within their rounding; corrupt, truncated, quantized and mis-shaped inputs give clean
// errors naming the file (and tensor); the safetensors writer round-trips; `rwkvscope info`.
#include "core/base/file.h"
#include "core/formats/formats.h"
#include "core/formats/pickle.h"
#include "core/model/model.h"
#include "util.h"

#include <check.h>
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <zip.h>

#define RAND_PTH "rand-L2-C32-V50.pth"

// ---------- helpers ----------

static rwkv_model *load_ok(const char *name) {
    rwkv_model *m = NULL;
    rwkv_status st = rwkv_model_load(&m, test_fixture(name));
    ck_assert_msg(st == RWKV_OK, "%s: %s", name, rwkv_error_message());
    return m;
}

static unsigned char *slurp(const char *path, size_t *n) {
    FILE *f = fopen(path, "rb");
    ck_assert_ptr_nonnull(f);
    fseek(f, 0, SEEK_END);
    *n = (size_t)ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *b = malloc(*n + 1);
    ck_assert_uint_eq(fread(b, 1, *n, f), *n);
    fclose(f);
    return b;
}

static void spit(const char *path, const unsigned char *b, size_t n) {
    FILE *f = fopen(path, "wb");
    ck_assert_ptr_nonnull(f);
    ck_assert_uint_eq(fwrite(b, 1, n, f), n);
    fclose(f);
}

static const char *tmp_path(const char *name) {
    static char p[1024];
    snprintf(p, sizeof p, "%s/%s", test_tmpdir(), name);
    return p;
}

// Loading path must fail with a message that names the file. Returns the status.
static rwkv_status expect_load_fails(const char *path, const char *what) {
    rwkv_error_clear();
    rwkv_model *m = NULL;
    rwkv_status st = rwkv_model_load(&m, path);
    ck_assert_msg(st != RWKV_OK, "%s: loaded without error", what);
    ck_assert_ptr_null(m);
    const char *msg = rwkv_error_message();
    if (getenv("SHOWERR")) // SHOWERR=1 lists every message, to review them by eye
        fprintf(stderr, "%s => %s\n", what, msg);
    ck_assert_msg(strstr(msg, path) != NULL, "%s: message does not name the file: %s", what, msg);
    ck_assert_msg(strchr(msg, '\n') == NULL, "%s: message is not one line: %s", what, msg);
    // The same file opened in place (mapped, typed views) fails the same way, so no view
    // ever points past the end of a truncated or corrupt mapping.
    rwkv_load_opts o = {.weights = RWKV_WEIGHTS_FILE};
    ck_assert_int_eq(rwkv_model_open(&m, path, &o), st);
    ck_assert_ptr_null(m);
    ck_assert_msg(strstr(rwkv_error_message(), path) != NULL, "%s (mapped): %s", what, rwkv_error_message());
    return st;
}

static int32_t rd32(const unsigned char *b) {
    return (int32_t)((uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 | (uint32_t)b[3] << 24);
}

static void wr32(unsigned char *b, int32_t v) {
    for (int i = 0; i < 4; i++) b[i] = (unsigned char)((uint32_t)v >> (8 * i));
}

// Tolerance of a weight w (reader result) against the float32 reference r.
typedef double (*tol_fn)(double r, const char *name);

static void compare_models(const rwkv_model *a, const rwkv_model *ref, tol_fn tol, const char *what) {
    ck_assert_int_eq(a->cfg.n_layer, ref->cfg.n_layer);
    ck_assert_int_eq(a->cfg.n_embd, ref->cfg.n_embd);
    ck_assert_int_eq(a->cfg.n_ffn, ref->cfg.n_ffn);
    ck_assert_int_eq(a->cfg.n_vocab, ref->cfg.n_vocab);
    ck_assert_uint_eq(a->table.total, ref->table.total);
    for (int i = 0; i < ref->table.n; i++) {
        const rwkv_param *p = &ref->table.params[i];
        for (size_t j = 0; j < p->numel; j++) {
            double x = a->block[p->offset + j], r = ref->block[p->offset + j];
            double t = tol(r, p->name);
            ck_assert_msg(fabs(x - r) <= t, "%s: %s[%zu] = %.9g, float32 reference %.9g (tolerance %.3g)",
                          what, p->name, j, x, r, t);
        }
    }
}

// rwkv.cpp stores s = fl32(-exp(r)); reading back gives fl(log(-s)). The exp rounding moves
// the log by at most ~2^-23 (absolute), the final rounding by 2^-24 |r|: allow 2^-22 (1 + |r|).
static double decay_tol(double r) { return ldexp(1.0, -22) * (1.0 + fabs(r)); }
static int is_decay(const char *name) { return strstr(name, ".time_decay") != NULL; }

static double tol_exact(double r, const char *name) { (void)r; (void)name; return 0; }
static double tol_rwkvcpp(double r, const char *name) { return is_decay(name) ? decay_tol(r) : 0; }
// bf16 keeps 8 significant bits: round-to-nearest moves x by at most half an ulp, 2^-8 |x|.
static double tol_bf16(double r, const char *name) { (void)name; return ldexp(fabs(r), -8); }
// fp16 keeps 11 significant bits (2^-11 |x|) down to 2^-14; below that the subnormal spacing is
// 2^-24, so the absolute error floor is half of it, 2^-25.
static double tol_fp16(double r, const char *name) { (void)name; return fmax(ldexp(fabs(r), -11), ldexp(1.0, -25)); }
// rwkv.cpp FP16 files keep vectors in FP32 (time_decay as -exp) and matrices in FP16.
static double tol_fp16_bin(double r, const char *name) {
    return is_decay(name) ? decay_tol(r) : tol_fp16(r, name);
}

// ---------- loading every fixture ----------

typedef struct {
    const char *file, *format, *dtype;
    int L, C, F, V;
} fixture_spec;

static const fixture_spec FIXTURES[] = {
    {"tiny-rwkv-4v0-660K-FP32.bin", "rwkvcpp", "float32", 4, 128, 256, 256},
    {"rand-L2-C32-V50.pth", "pth", "float32", 2, 32, 128, 50},
    {"rand-L2-C32-V50-bf16.pth", "pth", "bfloat16", 2, 32, 128, 50},
    {"rand-L2-C32-V50-fp16.pth", "pth", "float16", 2, 32, 128, 50},
    {"rand-L2-C32-V50.safetensors", "safetensors", "float32", 2, 32, 128, 50},
    {"rand-L2-C32-V50-bf16.safetensors", "safetensors", "bfloat16", 2, 32, 128, 50},
    {"rand-L2-C32-V50-fp16.safetensors", "safetensors", "float16", 2, 32, 128, 50},
    {"rand-L2-C32-V50-FP32.bin", "rwkvcpp", "float32", 2, 32, 128, 50},
    {"rand-L2-C32-V50-FP16.bin", "rwkvcpp", "float16", 2, 32, 128, 50},
    {"rand-L3-C64-V300.pth", "pth", "float32", 3, 64, 256, 300},
    {"rand-L2-C32-V50-p4shared.pth", "pth", "float32", 2, 32, 128, 50},
    {"tiny-rwkv-4v0-660K-Q5_0.bin", "rwkvcpp", "Q5_0", 4, 128, 256, 256},
    {"tiny-rwkv-4v0-660K-Q5_1.bin", "rwkvcpp", "Q5_1", 4, 128, 256, 256},
    {"tiny-rwkv-4v0-660K-Q4_0.bin", "rwkvcpp", "Q4_0", 4, 128, 256, 256},
    {"tiny-rwkv-4v0-660K-Q4_1.bin", "rwkvcpp", "Q4_1", 4, 128, 256, 256},
    {"tiny-rwkv-4v0-660K-Q8_0.bin", "rwkvcpp", "Q8_0", 4, 128, 256, 256},
};
#define N_FIXTURES (int)(sizeof FIXTURES / sizeof FIXTURES[0])

START_TEST(test_fixture_loads) {
    const fixture_spec *s = &FIXTURES[_i];
    rwkv_format fmt;
    ck_assert_int_eq(rwkv_format_detect(test_fixture(s->file), &fmt), RWKV_OK);
    ck_assert_str_eq(rwkv_format_name(fmt), s->format);
    rwkv_model *m = load_ok(s->file);
    ck_assert_str_eq(m->format, s->format);
    ck_assert_str_eq(m->dtype, s->dtype);
    ck_assert_int_eq(m->cfg.n_layer, s->L);
    ck_assert_int_eq(m->cfg.n_embd, s->C);
    ck_assert_int_eq(m->cfg.n_ffn, s->F);
    ck_assert_int_eq(m->cfg.n_vocab, s->V);
    // Parameter count from the shapes: emb + head (2VC), ln0 + ln_out (4C), and per layer
    // five CxC matrices, FxC and CxF, and 11 C-vectors (ln1, ln2: 4; att time_*: 5; ffn mixes: 2).
    size_t L = (size_t)s->L, C = (size_t)s->C, F = (size_t)s->F, V = (size_t)s->V;
    size_t expect = 2 * V * C + 4 * C + L * (5 * C * C + 2 * F * C + 11 * C);
    ck_assert_uint_eq(rwkv_model_n_params(m), expect);
    for (size_t i = 0; i < m->table.total; i++)
        ck_assert_msg(isfinite(m->block[i]), "%s: non-finite weight at %zu", s->file, i);
    rwkv_model_free(m);
}
END_TEST

// ---------- the same model in every container ----------

START_TEST(test_same_weights_fp32) {
    rwkv_model *ref = load_ok(RAND_PTH);
    rwkv_model *st = load_ok("rand-L2-C32-V50.safetensors");
    rwkv_model *bin = load_ok("rand-L2-C32-V50-FP32.bin");
    compare_models(st, ref, tol_exact, "safetensors vs pth");
    compare_models(bin, ref, tol_rwkvcpp, "rwkv.cpp FP32 vs pth");
    // Newer torch's layout: protocol 4, OrderedDict._metadata (BUILD), one shared storage.
    rwkv_model *p4 = load_ok("rand-L2-C32-V50-p4shared.pth");
    compare_models(p4, ref, tol_exact, "protocol-4 shared-storage pth vs pth");
    rwkv_model_free(p4);
    // The decays are not trivially equal: they went through -exp and back.
    const rwkv_param *p = rwkv_weights_find(&ref->table, "blocks.1.att.time_decay");
    ck_assert_ptr_nonnull(p);
    ck_assert(ref->block[p->offset] < -1.0);
    rwkv_model_free(ref);
    rwkv_model_free(st);
    rwkv_model_free(bin);
}
END_TEST

START_TEST(test_reduced_precision) {
    rwkv_model *ref = load_ok(RAND_PTH);
    static const struct { const char *file; tol_fn tol; } CASES[] = {
        {"rand-L2-C32-V50-bf16.pth", tol_bf16},
        {"rand-L2-C32-V50-bf16.safetensors", tol_bf16},
        {"rand-L2-C32-V50-fp16.pth", tol_fp16},
        {"rand-L2-C32-V50-fp16.safetensors", tol_fp16},
        {"rand-L2-C32-V50-FP16.bin", tol_fp16_bin},
    };
    for (size_t i = 0; i < sizeof CASES / sizeof CASES[0]; i++) {
        rwkv_model *m = load_ok(CASES[i].file);
        compare_models(m, ref, CASES[i].tol, CASES[i].file);
        // The copies really are rounded (else the tolerance would test nothing).
        size_t differ = 0;
        for (size_t j = 0; j < ref->table.total; j++) differ += m->block[j] != ref->block[j];
        ck_assert_msg(differ > ref->table.total / 4, "%s: only %zu weights differ", CASES[i].file, differ);
        rwkv_model_free(m);
    }
    rwkv_model_free(ref);
}
END_TEST

// ---------- pth archives: <top> is not hard-coded; extra entries are ignored ----------

// Copies the .pth at src to dst with the top folder renamed to `top`, data.pkl replaced by
// pkl (when not NULL), and the entries newer torch adds. Every entry is stored uncompressed.
static void rezip(const char *src, const char *dst, const char *top, const unsigned char *pkl, size_t n_pkl) {
    int err;
    zip_t *in = zip_open(src, ZIP_RDONLY, &err), *out = zip_open(dst, ZIP_CREATE | ZIP_TRUNCATE, &err);
    ck_assert_ptr_nonnull(in);
    ck_assert_ptr_nonnull(out);
    zip_int64_t n = zip_get_num_entries(in, 0);
    for (zip_int64_t i = 0; i < n; i++) {
        const char *name = zip_get_name(in, (zip_uint64_t)i, 0);
        char renamed[512];
        snprintf(renamed, sizeof renamed, "%s%s", top, strchr(name, '/'));
        zip_source_t *s = pkl && strstr(name, "/data.pkl") ? zip_source_buffer(out, pkl, n_pkl, 0)
                                                           : zip_source_zip(out, in, (zip_uint64_t)i, 0, 0, -1);
        ck_assert_ptr_nonnull(s);
        zip_int64_t idx = zip_file_add(out, renamed, s, ZIP_FL_OVERWRITE);
        ck_assert_int_ge(idx, 0);
        zip_set_file_compression(out, (zip_uint64_t)idx, ZIP_CM_STORE, 0);
    }
    char extra[512];
    snprintf(extra, sizeof extra, "%s/byteorder", top);
    zip_file_add(out, extra, zip_source_buffer(out, "little", 6, 0), 0);
    snprintf(extra, sizeof extra, "%s/.data/serialization_id", top);
    zip_file_add(out, extra, zip_source_buffer(out, "1234567890", 10, 0), 0);
    ck_assert_int_eq(zip_close(out), 0);
    zip_discard(in);
}

START_TEST(test_pth_any_top) {
    rwkv_model *ref = load_ok(RAND_PTH);
    const char *names[] = {"archive", "some-other.name"};
    for (int i = 0; i < 2; i++) {
        char dst[1024];
        snprintf(dst, sizeof dst, "%s", tmp_path("top.pth"));
        rezip(test_fixture(RAND_PTH), dst, names[i], NULL, 0);
        rwkv_model *m = NULL;
        ck_assert_msg(rwkv_model_load(&m, dst) == RWKV_OK, "%s", rwkv_error_message());
        compare_models(m, ref, tol_exact, names[i]);
        rwkv_model_free(m);
    }
    rwkv_model_free(ref);
}
END_TEST

// ---------- corruption: truncation ----------

static const char *CORRUPT_FILES[] = {
    "rand-L2-C32-V50.pth", "rand-L2-C32-V50-bf16.pth", "rand-L2-C32-V50.safetensors",
    "rand-L2-C32-V50-fp16.safetensors", "rand-L2-C32-V50-FP32.bin", "rand-L2-C32-V50-FP16.bin",
    "rand-L2-C32-V50-p4shared.pth", "tiny-rwkv-4v0-660K-Q5_1.bin",
};
#define N_CORRUPT (int)(sizeof CORRUPT_FILES / sizeof CORRUPT_FILES[0])
#define N_TRUNC_SPREAD 48 // offsets spread evenly over the file, plus the header offsets below

START_TEST(test_truncated) {
    size_t n;
    unsigned char *b = slurp(test_fixture(CORRUPT_FILES[_i]), &n);
    // Inside every header: the zip local header and first name, the safetensors length and
    // JSON, the rwkv.cpp file header and first tensor record.
    size_t cuts[N_TRUNC_SPREAD + 32];
    int k = 0;
    static const size_t HEAD[] = {0, 1, 3, 4, 7, 8, 9, 12, 16, 20, 23, 24, 28, 33, 40, 54, 60, 100, 300};
    for (size_t i = 0; i < sizeof HEAD / sizeof HEAD[0]; i++) cuts[k++] = HEAD[i];
    for (int i = 0; i < N_TRUNC_SPREAD; i++) cuts[k++] = n * (size_t)(2 * i + 1) / (2 * N_TRUNC_SPREAD);
    cuts[k++] = n - 1;
    ck_assert_int_ge(k, 50);
    char path[1024];
    snprintf(path, sizeof path, "%s", tmp_path("trunc.bin"));
    for (int i = 0; i < k; i++) {
        spit(path, b, cuts[i]);
        char what[256];
        snprintf(what, sizeof what, "%s cut at %zu of %zu", CORRUPT_FILES[_i], cuts[i], n);
        expect_load_fails(path, what);
    }
    free(b);
}
END_TEST

// ---------- corruption: flipped header bytes ----------

// Flips (XOR mask) each listed byte of the file in turn; every copy must fail to load.
static void flip_each(const char *file, const unsigned char *b, size_t n, const size_t *pos, int n_pos,
                      unsigned mask) {
    unsigned char *c = malloc(n);
    char path[1024];
    snprintf(path, sizeof path, "%s", tmp_path("flip.bin"));
    for (int i = 0; i < n_pos; i++) {
        memcpy(c, b, n);
        c[pos[i]] ^= (unsigned char)mask;
        spit(path, c, n);
        char what[256];
        snprintf(what, sizeof what, "%s with byte %zu ^ 0x%02x", file, pos[i], mask);
        expect_load_fails(path, what);
    }
    free(c);
}

// safetensors: every byte of the JSON header, except the free-text __metadata__ values (a
// changed value there is still a valid file). XOR 0xff makes every byte non-ASCII; XOR 0x01
// turns digits into other digits and letters into other letters, which must also be caught
// (shape vs data_offsets, coverage of the data, unknown names and dtypes).
START_TEST(test_flip_safetensors) {
    const char *file = "rand-L2-C32-V50.safetensors";
    size_t n;
    unsigned char *b = slurp(test_fixture(file), &n);
    size_t hlen = 0;
    for (int i = 7; i >= 0; i--) hlen = hlen << 8 | b[i];
    char *h = strndup((char *)b + 8, hlen);
    char *meta = strstr(h, "\"__metadata__\"");
    ck_assert_ptr_nonnull(meta);
    size_t meta_lo = (size_t)(strchr(meta, '{') - h) + 8, meta_hi = (size_t)(strchr(meta, '}') - h) + 8;
    size_t *pos = malloc(hlen * sizeof *pos);
    int k = 0;
    for (size_t i = 8; i < 8 + hlen; i++)
        if ((i < meta_lo || i > meta_hi) && i % 2 == 0) pos[k++] = i; // every other byte: keeps it fast
    ck_assert_int_ge(k, 50);
    flip_each(file, b, n, pos, k, 0xff);
    flip_each(file, b, n, pos, k, 0x01);
    free(pos);
    free(h);
    free(b);
}
END_TEST

// rwkv.cpp: the 24-byte file header and the first three tensor records' headers (n_dims,
// name length, type, dims, name). XOR 0xff (a one-bit flip can turn version 101 into the
// also valid 100, so only the full flip is guaranteed corrupt).
START_TEST(test_flip_rwkvcpp) {
    const char *file = _i ? "rand-L2-C32-V50-FP16.bin" : "rand-L2-C32-V50-FP32.bin";
    size_t n;
    unsigned char *b = slurp(test_fixture(file), &n);
    size_t pos[512];
    int k = 0;
    for (size_t i = 0; i < 24; i++) pos[k++] = i;
    size_t at = 24;
    for (int t = 0; t < 3; t++) {
        int32_t nd = rd32(b + at), nl = rd32(b + at + 4), type = rd32(b + at + 8);
        size_t head = 12 + 4 * (size_t)nd + (size_t)nl, numel = 1;
        for (int d = 0; d < nd; d++) numel *= (size_t)rd32(b + at + 12 + 4 * d);
        for (size_t i = 0; i < head; i++) pos[k++] = at + i;
        at += head + numel * (type == 0 ? 4 : 2);
    }
    ck_assert_int_ge(k, 50);
    flip_each(file, b, n, pos, k, 0xff);
    free(b);
}
END_TEST

// Where the pickle sits in the .pth file: read data.pkl through libzip and find its bytes
// (torch writes sizes in data descriptors, so the local header does not say).
static void pickle_span(const char *path, const unsigned char *b, size_t n, size_t *lo, size_t *len) {
    int err;
    zip_t *z = zip_open(path, ZIP_RDONLY, &err);
    ck_assert_ptr_nonnull(z);
    zip_int64_t idx = -1;
    for (zip_int64_t i = 0; i < zip_get_num_entries(z, 0) && idx < 0; i++)
        if (strstr(zip_get_name(z, (zip_uint64_t)i, 0), "/data.pkl")) idx = i;
    ck_assert_int_ge(idx, 0);
    zip_stat_t zs;
    ck_assert_int_eq(zip_stat_index(z, (zip_uint64_t)idx, 0, &zs), 0);
    unsigned char *pkl = malloc(zs.size);
    zip_file_t *f = zip_fopen_index(z, (zip_uint64_t)idx, 0);
    ck_assert_int_eq(zip_fread(f, pkl, zs.size), (zip_int64_t)zs.size);
    zip_fclose(f);
    zip_discard(z);
    const unsigned char *at = memmem(b, n, pkl, zs.size);
    ck_assert_ptr_nonnull(at);
    *lo = (size_t)(at - b);
    *len = (size_t)zs.size;
    free(pkl);
}

// pth, raw: flipping pickle bytes inside the archive is caught (by the zip CRC).
START_TEST(test_flip_pth_raw) {
    size_t n, lo, len;
    unsigned char *b = slurp(test_fixture(RAND_PTH), &n);
    pickle_span(test_fixture(RAND_PTH), b, n, &lo, &len);
    size_t pos[64];
    for (int i = 0; i < 64; i++) pos[i] = lo + len * (size_t)i / 64;
    flip_each(RAND_PTH, b, n, pos, 64, 0xff);
    free(b);
}
END_TEST

// pth, pickle: the archive is rebuilt around a flipped pickle (with a valid CRC), so the
// pickle reader itself must catch it. Every byte of the first 440 (the dict, the first two
// tensors with all the globals and both int tuple kinds), then every 8th byte.
START_TEST(test_flip_pth_pickle) {
    size_t n, lo, len;
    unsigned char *b = slurp(test_fixture(RAND_PTH), &n);
    pickle_span(test_fixture(RAND_PTH), b, n, &lo, &len);
    unsigned char *pkl = malloc(len);
    char path[1024];
    snprintf(path, sizeof path, "%s", tmp_path("pickle.pth"));
    int cases = 0;
    for (size_t i = 0; i < len; i += i < 440 ? 1 : 8) {
        memcpy(pkl, b + lo, len);
        pkl[i] ^= 0xff;
        rezip(test_fixture(RAND_PTH), path, "archive", pkl, len);
        char what[128];
        snprintf(what, sizeof what, "pickle byte %zu ^ 0xff", i);
        expect_load_fails(path, what);
        cases++;
    }
    ck_assert_int_ge(cases, 50);
    free(pkl);
    free(b);
}
END_TEST

// ---------- the pickle reader on hand-made pickles ----------

#define PK(lit) lit, sizeof(lit) - 1 // a pickle literal and its length

static rwkv_status run_pickle(const char *bytes, size_t n, int *n_out) {
    rwkv_pickle_tensor *ts = NULL;
    rwkv_error_clear();
    rwkv_status st = rwkv_pickle_read_state_dict((const unsigned char *)bytes, n, "test.pkl", &ts, n_out);
    free(ts);
    return st;
}

START_TEST(test_pickle_rejects) {
    int n = -1;
    // An empty dict is a valid (empty) state dict.
    ck_assert_int_eq(run_pickle(PK("\x80\x02}q\x00."), &n), RWKV_OK);
    ck_assert_int_eq(n, 0);
    // A global outside the list is refused by name.
    ck_assert_int_eq(run_pickle(PK("\x80\x02\x63os\nsystem\n."), &n), RWKV_ERR_UNSUPPORTED);
    ck_assert_ptr_nonnull(strstr(rwkv_error_message(), "os.system"));
    ck_assert_int_eq(run_pickle(PK("\x80\x02\x63torch\nDoubleStorage\n."), &n), RWKV_ERR_UNSUPPORTED);
    ck_assert_ptr_nonnull(strstr(rwkv_error_message(), "torch.DoubleStorage"));
    // An opcode torch.save does not emit (BINFLOAT 'G') is refused by name.
    ck_assert_int_eq(run_pickle(PK("\x80\x02G\x3f\xf0\0\0\0\0\0\0."), &n), RWKV_ERR_UNSUPPORTED);
    ck_assert_ptr_nonnull(strstr(rwkv_error_message(), "0x47"));
    // A dict whose value is not a tensor.
    ck_assert_int_eq(run_pickle(PK("\x80\x02}(X\x01\0\0\0aK\x05u."), &n), RWKV_ERR_UNSUPPORTED);
    ck_assert_ptr_nonnull(strstr(rwkv_error_message(), "'a'"));
    // Structure errors: empty input, no STOP, underflow, undefined memo, deep MARKs.
    ck_assert_int_ne(run_pickle(PK(""), &n), RWKV_OK);
    ck_assert_int_ne(run_pickle(PK("\x80\x02}"), &n), RWKV_OK);
    ck_assert_int_ne(run_pickle(PK("\x80\x02s."), &n), RWKV_OK);
    ck_assert_int_ne(run_pickle(PK("\x80\x02h\x07."), &n), RWKV_OK);
    ck_assert_int_ne(run_pickle(PK("\x80\x02}q\x05."), &n), RWKV_OK); // memo index out of order
    char deep[5000];
    memset(deep, '(', sizeof deep);
    ck_assert_int_ne(run_pickle(deep, sizeof deep, &n), RWKV_OK);
    // A huge string length runs off the end instead of reading out of bounds.
    ck_assert_int_ne(run_pickle(PK("\x80\x02X\xff\xff\xff\x7f" "abc."), &n), RWKV_OK);
    ck_assert_ptr_nonnull(strstr(rwkv_error_message(), "test.pkl"));
}
END_TEST

// ---------- rwkv.cpp: quantized, versions, consistency ----------

START_TEST(test_rwkvcpp_quantized) {
    size_t n;
    unsigned char *b = slurp(test_fixture("rand-L2-C32-V50-FP16.bin"), &n);
    char path[1024];
    snprintf(path, sizeof path, "%s", tmp_path("q.bin"));
    // Quantized blocks of file version 100 (ggml's old layout) are refused by name.
    wr32(b + 4, 100);
    wr32(b + 20, 2);
    spit(path, b, n);
    ck_assert_int_eq(expect_load_fails(path, "Q4_0 header, version 100"), RWKV_ERR_UNSUPPORTED);
    ck_assert_ptr_nonnull(strstr(rwkv_error_message(), "not supported"));
    ck_assert_ptr_nonnull(strstr(rwkv_error_message(), "Q4_0"));
    // A retired type (Q4_1_O) in a version 101 file, on the first tensor (emb.weight).
    wr32(b + 4, 101);
    wr32(b + 20, 1);
    wr32(b + 24 + 8, 4);
    spit(path, b, n);
    ck_assert_int_eq(expect_load_fails(path, "Q4_1_O tensor"), RWKV_ERR_UNSUPPORTED);
    ck_assert_ptr_nonnull(strstr(rwkv_error_message(), "emb.weight"));
    ck_assert_ptr_nonnull(strstr(rwkv_error_message(), "Q4_1_O"));
    // emb.weight as Q8_0 (its data then misparses, or the loader refuses a quantized vector table).
    wr32(b + 24 + 8, 9);
    spit(path, b, n);
    expect_load_fails(path, "Q8_0 emb.weight");
    // Version 102 (a later layout) and a wrong magic.
    wr32(b + 24 + 8, 1);
    wr32(b + 4, 102);
    spit(path, b, n);
    ck_assert_int_eq(expect_load_fails(path, "version 102"), RWKV_ERR_UNSUPPORTED);
    free(b);
}
END_TEST

START_TEST(test_not_a_model) {
    // Missing file: an I/O error with the OS's reason.
    const char *missing = tmp_path("no-such-model.pth");
    ck_assert_int_eq(expect_load_fails(missing, "missing"), RWKV_ERR_IO);
    ck_assert_ptr_nonnull(strstr(rwkv_error_message(), "No such file"));
    // Empty, text, and a directory.
    char path[1024];
    snprintf(path, sizeof path, "%s", tmp_path("empty.bin"));
    spit(path, (const unsigned char *)"", 0);
    ck_assert_int_eq(expect_load_fails(path, "empty"), RWKV_ERR_FORMAT);
    snprintf(path, sizeof path, "%s", tmp_path("text.bin"));
    spit(path, (const unsigned char *)"hello, this is not a model\n", 27);
    ck_assert_int_eq(expect_load_fails(path, "text"), RWKV_ERR_FORMAT);
    expect_load_fails(test_tmpdir(), "a directory");
}
END_TEST

// ---------- rwkv_file_read: the whole-file reader behind every loader ----------

START_TEST(test_file_read) {
    enum { BIG = 200000 }; // more than the first buffer for a pipe (64 KB): it must grow
    unsigned char *want = malloc(BIG), *got;
    for (int i = 0; i < BIG; i++) want[i] = (unsigned char)(i * 7 + i / 256); // NUL bytes included
    size_t n = 1;
    char path[1024];
    snprintf(path, sizeof path, "%s", tmp_path("whole.bin"));
    spit(path, want, BIG);
    ck_assert_int_eq(rwkv_file_read(path, &got, &n), RWKV_OK);
    ck_assert_uint_eq(n, BIG);
    ck_assert_int_eq(memcmp(got, want, BIG), 0);
    ck_assert_uint_eq(got[n], 0); // terminated, not counted
    free(got);
    spit(path, want, 0);
    ck_assert_int_eq(rwkv_file_read(path, &got, &n), RWKV_OK);
    ck_assert_uint_eq(n, 0);
    ck_assert_uint_eq(got[0], 0);
    free(got);
    // a pipe has no size: read until its writer closes it
    snprintf(path, sizeof path, "%s", tmp_path("whole.fifo"));
    unlink(path);
    ck_assert_int_eq(mkfifo(path, 0600), 0);
    pid_t pid = fork();
    if (pid == 0) {
        FILE *f = fopen(path, "wb");
        _exit(f && fwrite(want, 1, BIG, f) == BIG && fclose(f) == 0 ? 0 : 1);
    }
    ck_assert_int_eq(rwkv_file_read(path, &got, &n), RWKV_OK);
    int status;
    waitpid(pid, &status, 0);
    ck_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    ck_assert_uint_eq(n, BIG);
    ck_assert_int_eq(memcmp(got, want, BIG), 0);
    free(got);
    // errors name the path and the cause
    ck_assert_int_eq(rwkv_file_read("/nonexistent/x.bin", &got, &n), RWKV_ERR_IO);
    ck_assert_ptr_null(got);
    ck_assert_ptr_nonnull(strstr(rwkv_error_message(), "/nonexistent/x.bin: cannot open"));
    ck_assert_int_eq(rwkv_file_read(test_tmpdir(), &got, &n), RWKV_ERR_IO);
    ck_assert_ptr_nonnull(strstr(rwkv_error_message(), "read error"));
    free(want);
}
END_TEST

// ---------- rwkv_model_from_tensors: missing and mis-shaped tensors ----------

// A copy of `src` without `drop`, and with `reshape` given shape (ndim, shape).
static void copy_set(rwkv_tensor_set *dst, const rwkv_tensor_set *src, const char *drop,
                     const char *reshape, int ndim, const int64_t *shape) {
    rwkv_tensors_init(dst);
    for (int i = 0; i < src->n; i++) {
        const rwkv_tensor *t = &src->items[i];
        if (drop && !strcmp(t->name, drop)) continue;
        int r = reshape && !strcmp(t->name, reshape);
        ck_assert_int_eq(rwkv_tensors_add(dst, t->name, t->dtype, r ? ndim : t->ndim, r ? shape : t->shape,
                                          t->data), RWKV_OK);
    }
}

static void expect_build_fails(const rwkv_tensor_set *ts, const char *tensor) {
    rwkv_model *m = NULL;
    rwkv_error_clear();
    rwkv_status st = rwkv_model_from_tensors(&m, ts, "hand.pth", "pth");
    ck_assert_int_eq(st, RWKV_ERR_SHAPE);
    ck_assert_ptr_null(m);
    ck_assert_msg(strstr(rwkv_error_message(), tensor) && strstr(rwkv_error_message(), "hand.pth"),
                  "message does not name %s and the file: %s", tensor, rwkv_error_message());
}

START_TEST(test_missing_and_misshaped) {
    rwkv_tensor_set src, ts;
    rwkv_tensors_init(&src);
    ck_assert_int_eq(rwkv_pth_read(test_fixture(RAND_PTH), &src), RWKV_OK);
    const char *drops[] = {"blocks.1.att.key.weight", "emb.weight", "ln_out.bias", "blocks.0.ln0.weight",
                           "blocks.0.ffn.key.weight", "head.weight"};
    for (size_t i = 0; i < sizeof drops / sizeof drops[0]; i++) {
        copy_set(&ts, &src, drops[i], NULL, 0, NULL);
        expect_build_fails(&ts, drops[i]);
        rwkv_tensors_free(&ts);
    }
    // Transposed matrix (same element count), a vector of the wrong length read as [2, 16],
    // a 3-D matrix.
    static const struct { const char *name; int ndim; int64_t shape[3]; } BAD[] = {
        {"blocks.0.ffn.value.weight", 2, {128, 32}},
        {"blocks.1.ln2.bias", 2, {2, 16}},
        {"blocks.1.att.output.weight", 3, {1, 32, 32}},
        {"head.weight", 2, {32, 50}},
    };
    for (size_t i = 0; i < sizeof BAD / sizeof BAD[0]; i++) {
        copy_set(&ts, &src, NULL, BAD[i].name, BAD[i].ndim, BAD[i].shape);
        expect_build_fails(&ts, BAD[i].name);
        rwkv_tensors_free(&ts);
    }
    // Vectors may be [C] or [1, 1, C] (rwkv.cpp squeezes time_mix; checkpoints keep 3-D).
    static const int64_t flat[1] = {32}, cube[3] = {1, 1, 32};
    copy_set(&ts, &src, NULL, "blocks.0.att.time_mix_k", 1, flat);
    rwkv_model *m = NULL;
    ck_assert_int_eq(rwkv_model_from_tensors(&m, &ts, "hand.pth", "pth"), RWKV_OK);
    rwkv_model_free(m);
    rwkv_tensors_free(&ts);
    copy_set(&ts, &src, NULL, "blocks.0.ln1.weight", 3, cube);
    ck_assert_int_eq(rwkv_model_from_tensors(&m, &ts, "hand.pth", "pth"), RWKV_OK);
    rwkv_model_free(m);
    rwkv_tensors_free(&ts);
    rwkv_tensors_free(&src);
}
END_TEST

// ---------- the safetensors writer ----------

START_TEST(test_safetensors_roundtrip) {
    rwkv_model *ref = load_ok("rand-L3-C64-V300.pth");
    char path[1024];
    snprintf(path, sizeof path, "%s", tmp_path("written.safetensors"));
    const char *meta[] = {"tokenizer", "neox:20B_tokenizer.json", "step", "1200"};
    ck_assert_msg(rwkv_safetensors_write(path, ref, meta, 2) == RWKV_OK, "%s", rwkv_error_message());
    // Writing again replaces the file.
    ck_assert_int_eq(rwkv_safetensors_write(path, ref, meta, 2), RWKV_OK);
    rwkv_model *m = NULL;
    ck_assert_msg(rwkv_model_load(&m, path) == RWKV_OK, "%s", rwkv_error_message());
    ck_assert_str_eq(m->format, "safetensors");
    ck_assert_str_eq(m->dtype, "float32");
    ck_assert_str_eq(m->tokenizer, "neox:20B_tokenizer.json");
    compare_models(m, ref, tol_exact, "written safetensors");
    rwkv_model_free(m);
    // Official names and shapes, and the metadata.
    rwkv_tensor_set ts;
    rwkv_tensors_init(&ts);
    ck_assert_int_eq(rwkv_safetensors_read(path, &ts), RWKV_OK);
    ck_assert_str_eq(rwkv_tensors_meta(&ts, "step"), "1200");
    const rwkv_tensor *t = rwkv_tensors_find(&ts, "blocks.2.att.time_mix_r");
    ck_assert_ptr_nonnull(t);
    ck_assert_int_eq(t->ndim, 3);
    ck_assert_int_eq(t->shape[2], 64);
    t = rwkv_tensors_find(&ts, "blocks.2.ffn.value.weight");
    ck_assert_ptr_nonnull(t);
    ck_assert_int_eq(t->shape[0], 64);
    ck_assert_int_eq(t->shape[1], 256);
    ck_assert_int_eq(ts.n, (int)ref->table.n);
    rwkv_tensors_free(&ts);
    // info shows the tokenizer from the metadata.
    char *out = NULL;
    ck_assert_int_eq(test_cli(&out, "info %s", path), 0);
    ck_assert_msg(strstr(out, "tokenizer: neox:20B_tokenizer.json\n"), "%s", out);
    free(out);
    // An unwritable destination is an I/O error naming it.
    const char *bad = "/nonexistent-dir/x.safetensors";
    rwkv_error_clear();
    ck_assert_int_eq(rwkv_safetensors_write(bad, ref, NULL, 0), RWKV_ERR_IO);
    ck_assert_ptr_nonnull(strstr(rwkv_error_message(), bad));
    rwkv_model_free(ref);
}
END_TEST

// ---------- rwkvscope info ----------

START_TEST(test_cli_info) {
    const fixture_spec *s = &FIXTURES[_i];
    char *out = NULL;
    int rc = test_cli(&out, "info %s", test_fixture(s->file));
    ck_assert_msg(rc == 0, "info %s exited %d: %s", s->file, rc, out);
    char want[128];
    snprintf(want, sizeof want, "format: %s\n", s->format);
    ck_assert_msg(strstr(out, want), "missing '%s' in: %s", want, out);
    snprintf(want, sizeof want, "n_layer: %d\nn_embd: %d\nn_ffn: %d ", s->L, s->C, s->F);
    ck_assert_msg(strstr(out, want), "missing '%s' in: %s", want, out);
    snprintf(want, sizeof want, "n_vocab: %d\n", s->V);
    ck_assert_msg(strstr(out, want), "missing '%s' in: %s", want, out);
    ck_assert_ptr_nonnull(strstr(out, "decay half-life range:"));
    ck_assert_ptr_nonnull(strstr(out, "openblas core:"));
    // The type of every matrix as stored (info reads headers, not weights).
    snprintf(want, sizeof want, "  blocks.*.ffn.value.weight: %s (all %d layers)\n", s->dtype, s->L);
    ck_assert_msg(strstr(out, want), "missing '%s' in: %s", want, out);
    ck_assert_ptr_nonnull(strstr(out, "  head.weight: "));
    free(out);
}
END_TEST

// ---------- rwkv.cpp block types: dequantized weights against the FP32 file ----------

// Each quantized file (rwkv.cpp's Q5_0, Q5_1; Q4_0, Q4_1, Q8_0 by make_rwkvcpp_quant.py) is
// the FP32 file's weights rounded per block of 32. A decoded weight is within one
// quantization step of the original (the step is amax/8, range/15, amax/16, range/31,
// amax/127 for Q4_0, Q4_1, Q5_0, Q5_1, Q8_0; the clamped extreme of Q4_0/Q5_0 moves by a whole
// step, the others by half) plus the fp16 rounding of the scale and minimum: 2^-11 relative
// (times up to 31 quants: below 2^-5 of amax + range), and for scales below fp16's normal
// range (the zeroed FFN weights, ~1e-7) half the subnormal spacing, 2^-25, times the largest
// quant magnitude + 1 (the minimum). A wrong nibble, fifth bit or scale is off by many steps.
START_TEST(test_rwkvcpp_blocks_decode) {
    static const struct {
        const char *file;
        double steps; // quantization levels over amax (Q*_0) or over the range (Q*_1)
        int range;
    } Q[] = {{"tiny-rwkv-4v0-660K-Q4_0.bin", 8, 0}, {"tiny-rwkv-4v0-660K-Q4_1.bin", 15, 1},
             {"tiny-rwkv-4v0-660K-Q5_0.bin", 16, 0}, {"tiny-rwkv-4v0-660K-Q5_1.bin", 31, 1},
             {"tiny-rwkv-4v0-660K-Q8_0.bin", 127, 0}};
    rwkv_model *ref = load_ok("tiny-rwkv-4v0-660K-FP32.bin");
    for (size_t q = 0; q < sizeof Q / sizeof Q[0]; q++) {
        rwkv_model *m = load_ok(Q[q].file);
        size_t blocks = 0;
        double worst = 0; // largest error in steps
        for (int i = 0; i < ref->table.n; i++) {
            const rwkv_param *p = &ref->table.params[i];
            if (!p->is_matrix || !strcmp(p->name, "head.weight")) continue; // rwkv.cpp keeps head float
            for (size_t b = 0; b < p->numel; b += 32, blocks++) {
                const rwkv_real *w = ref->block + p->offset + b, *d = m->block + p->offset + b;
                double lo = w[0], hi = w[0], amax = 0;
                for (int j = 0; j < 32; j++) lo = fmin(lo, w[j]), hi = fmax(hi, w[j]), amax = fmax(amax, fabs(w[j]));
                double step = (Q[q].range ? hi - lo : amax) / Q[q].steps;
                double slack = ldexp(amax + hi - lo, -5) + (Q[q].steps + 1) * ldexp(1.0, -25);
                for (int j = 0; j < 32; j++) {
                    double e = fabs(d[j] - w[j]);
                    ck_assert_msg(e <= step + slack, "%s: %s[%zu] = %g, FP32 %g, step %g", Q[q].file, p->name,
                                  b + (size_t)j, (double)d[j], (double)w[j], step);
                    if (step > 0 && e / step > worst) worst = e / step;
                }
            }
        }
        ck_assert_uint_gt(blocks, 1000);
        ck_assert_msg(worst > 0.1, "%s: no rounding seen: the file was not quantized?", Q[q].file);
        rwkv_model_free(m);
    }
    rwkv_model_free(ref);
}
END_TEST

// ---------- load progress ----------

typedef struct {
    uint64_t last, total;
    int calls, backwards;
} progress_log;

static void log_progress(void *ctx, uint64_t done, uint64_t total) {
    progress_log *p = ctx;
    p->backwards |= done < p->last || (p->calls && total != p->total);
    p->last = done;
    p->total = total;
    p->calls++;
}

// The callback sees every tensor, monotonically, ending at all the weight bytes: for a
// safetensors file, the file minus its 8-byte length and JSON header.
START_TEST(test_load_progress) {
    const char *file = test_fixture("rand-L2-C32-V50-bf16.safetensors");
    size_t n;
    unsigned char *b = slurp(file, &n);
    uint64_t hlen = 0;
    for (int i = 7; i >= 0; i--) hlen = hlen << 8 | b[i];
    free(b);
    for (int mode = RWKV_WEIGHTS_FILE; mode <= RWKV_WEIGHTS_INT8; mode++) {
        progress_log log = {0};
        rwkv_load_opts o = {.weights = (rwkv_weights_mode)mode, .progress = log_progress, .progress_ctx = &log};
        rwkv_model *m;
        ck_assert_msg(rwkv_model_open(&m, file, &o) == RWKV_OK, "%s", rwkv_error_message());
        ck_assert_int_eq(log.calls, m->table.n);
        ck_assert(!log.backwards);
        ck_assert_uint_eq(log.last, n - 8 - hlen);
        ck_assert_uint_eq(log.total, n - 8 - hlen);
        rwkv_model_free(m);
    }
}
END_TEST

// ---------- issue 17: a zip bomb storage and non-finite weights ----------

// head.weight (50, 32) bound to a storage of 2^28 floats, deflated to ~1 MB
// (make_pth_bad.py): refused from the pickle's numbers, before anything is inflated.
START_TEST(test_pth_storage_bomb) {
    const char *path = test_fixture("pth-storage-bomb.pth");
    struct stat sb;
    ck_assert_int_eq(stat(path, &sb), 0);
    ck_assert_int_lt(sb.st_size, 2 << 20); // the fixture is the small compressed file
    struct rusage before, after;
    getrusage(RUSAGE_SELF, &before);
    ck_assert_int_eq(expect_load_fails(path, "storage bomb"), RWKV_ERR_FORMAT);
    getrusage(RUSAGE_SELF, &after);
    const char *msg = rwkv_error_message();
    ck_assert_msg(strstr(msg, "head.weight") && strstr(msg, "268435456") && strstr(msg, "1600"), "%s", msg);
    ck_assert_msg(after.ru_maxrss - before.ru_maxrss < 256 * 1024, "peak RSS grew by %ld KiB",
                  after.ru_maxrss - before.ru_maxrss); // 1 GiB would have been inflated
}
END_TEST

// Writes a copy of `file` with element k of tensor `name` replaced by the `bytes` at `val`.
// The offset comes from the reader's own view of the mapped file.
static void poke(const char *file, const char *name, size_t k, const void *val, size_t bytes, const char *dst) {
    rwkv_tensor_set ts;
    rwkv_tensors_init(&ts);
    const char *src = test_fixture(file);
    rwkv_status st = strstr(file, ".bin") ? rwkv_rwkvcpp_read(src, &ts) : rwkv_safetensors_read(src, &ts);
    ck_assert_msg(st == RWKV_OK, "%s", rwkv_error_message());
    const rwkv_tensor *t = rwkv_tensors_find(&ts, name);
    ck_assert_ptr_nonnull(t);
    ck_assert_ptr_nonnull(ts.map);
    size_t at = (size_t)((const unsigned char *)t->data - (const unsigned char *)ts.map) + k;
    size_t n;
    unsigned char *b = slurp(src, &n);
    ck_assert_uint_le(at + bytes, n);
    memcpy(b + at, val, bytes);
    spit(dst, b, n);
    free(b);
    rwkv_tensors_free(&ts);
}

static void expect_nonfinite(const char *path, const char *name, const char *what) {
    ck_assert_int_eq(expect_load_fails(path, what), RWKV_ERR_NUMERIC);
    char want[160];
    snprintf(want, sizeof want, "tensor %s:", name);
    ck_assert_msg(strstr(rwkv_error_message(), want), "%s: %s", what, rwkv_error_message());
}

// The scan the loader runs over every matrix: the first non-finite element, also when the
// threads share a long tensor (from 2^22 elements), whichever thread's share holds it.
START_TEST(test_nonfinite_scan) {
    size_t n = (size_t)5 << 20;
    uint16_t *b = calloc(n, sizeof *b);
    float *f = calloc(n, sizeof *f);
    ck_assert_int_eq(rwkv_tensors_first_nonfinite(b, RWKV_DT_BF16, n), -1);
    const size_t at[] = {n - 1, n / 2 + 3, 17, 0};
    for (int t = 1; t <= 3; t++) {
        omp_set_num_threads(t);
        for (size_t i = 0; i < sizeof at / sizeof at[0]; i++) { // each marks an earlier one
            b[at[i]] = 0x7f80; // bf16 +inf
            f[at[i]] = NAN;
            ck_assert_int_eq(rwkv_tensors_first_nonfinite(b, RWKV_DT_BF16, n), (int64_t)at[i]);
            ck_assert_int_eq(rwkv_tensors_first_nonfinite(f, RWKV_DT_F32, n), (int64_t)at[i]);
        }
        memset(b, 0, n * sizeof *b);
        memset(f, 0, n * sizeof *f);
    }
    free(b);
    free(f);
}
END_TEST

// A NaN or inf anywhere (vectors, embedding, head, block matrices, a quantized block's
// scale) is refused at load, naming the tensor, in the float copy and in place.
START_TEST(test_nonfinite_weights) {
    expect_nonfinite(test_fixture("pth-nan-head.pth"), "head.weight", "pth NaN head");
    static const char *const NAMES[] = {"emb.weight", "head.weight", "ln_out.weight", "blocks.0.ln0.bias",
                                        "blocks.1.att.time_first", "blocks.0.att.key.weight",
                                        "blocks.1.ffn.value.weight"};
    const float nan32 = NAN, inf32 = -INFINITY;
    const uint16_t nan16 = 0x7fc1, inf16 = 0x7c00; // a bf16 NaN; fp16 -> use inf16
    char path[1024];
    snprintf(path, sizeof path, "%s", tmp_path("nan.model"));
    for (size_t i = 0; i < sizeof NAMES / sizeof NAMES[0]; i++) {
        char what[160];
        poke("rand-L2-C32-V50.safetensors", NAMES[i], 4 * 5, i % 2 ? &nan32 : &inf32, 4, path);
        snprintf(what, sizeof what, "safetensors fp32 %s", NAMES[i]);
        expect_nonfinite(path, NAMES[i], what);
        // bf16 matrices and vectors; the file keeps vectors in bf16 too.
        poke("rand-L2-C32-V50-bf16.safetensors", NAMES[i], 2 * 5, &nan16, 2, path);
        snprintf(what, sizeof what, "safetensors bf16 %s", NAMES[i]);
        expect_nonfinite(path, NAMES[i], what);
        if (strstr(NAMES[i], "ln0") || strstr(NAMES[i], "time_first") || strstr(NAMES[i], "ln_out")) continue;
        poke("rand-L2-C32-V50-FP16.bin", NAMES[i], 2 * 5, &inf16, 2, path); // rwkv.cpp FP16 matrices
        snprintf(what, sizeof what, "rwkv.cpp fp16 %s", NAMES[i]);
        expect_nonfinite(path, NAMES[i], what);
    }
    // A Q5_1 block whose scale d is an fp16 NaN (bytes 0-1 of the block).
    const uint16_t nanh = 0x7e00;
    poke("tiny-rwkv-4v0-660K-Q5_1.bin", "blocks.2.att.value.weight", 24 * 9, &nanh, 2, path);
    expect_nonfinite(path, "blocks.2.att.value.weight", "Q5_1 NaN scale");
}
END_TEST

// The half-life range printed for rand-L3 against ln 2 / exp(time_decay) computed here
// from the official init formula of the fixture README (time_decay[i] = -5 + 8 (i/(C-1))^p,
// p = 0.7 + 1.3 l/(L-1)): the shortest is channel C-1 (time_decay 3), the longest channel 0
// (time_decay -5), in every layer.
START_TEST(test_cli_info_half_life) {
    char *out = NULL;
    ck_assert_int_eq(test_cli(&out, "info %s", test_fixture("rand-L3-C64-V300.pth")), 0);
    const char *r = strstr(out, "decay half-life range: ");
    ck_assert_ptr_nonnull(r);
    double lo, hi;
    ck_assert_int_eq(sscanf(r, "decay half-life range: %lf .. %lf", &lo, &hi), 2);
    double want_lo = log(2.0) / exp(3.0), want_hi = log(2.0) / exp(-5.0);
    ck_assert_msg(fabs(lo - want_lo) <= 1e-3 * want_lo && fabs(hi - want_hi) <= 1e-3 * want_hi,
                  "range %g .. %g, expected %g .. %g", lo, hi, want_lo, want_hi);
    free(out);
}
END_TEST

START_TEST(test_cli_info_errors) {
    char *out = NULL;
    const char *missing = tmp_path("missing-model.pth");
    int rc = test_cli(&out, "info %s", missing);
    ck_assert_int_ne(rc, 0);
    ck_assert_msg(strncmp(out, "rwkvscope info: ", 16) == 0 && strstr(out, missing) &&
                  strstr(out, missing) < strchr(out, '\n'), "first line must name the file: %s", out);
    free(out);
    // A truncated archive.
    size_t n;
    unsigned char *b = slurp(test_fixture(RAND_PTH), &n);
    char path[1024];
    snprintf(path, sizeof path, "%s", tmp_path("cut.pth"));
    spit(path, b, n / 2);
    free(b);
    rc = test_cli(&out, "info %s", path);
    ck_assert_int_ne(rc, 0);
    ck_assert_msg(strncmp(out, "rwkvscope info: ", 16) == 0 && strstr(out, path) &&
                  strstr(out, path) < strchr(out, '\n'), "first line must name the file: %s", out);
    free(out);
    ck_assert_int_eq(test_cli(&out, "info --help"), 0);
    ck_assert_ptr_nonnull(strstr(out, "usage: rwkvscope info MODEL"));
    free(out);
    ck_assert_int_eq(test_cli(&out, "info"), 2);
    free(out);
}
END_TEST

static Suite *formats_suite(void) {
    Suite *s = suite_create("formats");
    TCase *tc = tcase_create("formats");
    tcase_set_timeout(tc, 300);
    tcase_add_loop_test(tc, test_fixture_loads, 0, N_FIXTURES);
    tcase_add_test(tc, test_same_weights_fp32);
    tcase_add_test(tc, test_reduced_precision);
    tcase_add_test(tc, test_pth_any_top);
    tcase_add_loop_test(tc, test_truncated, 0, N_CORRUPT);
    tcase_add_test(tc, test_flip_safetensors);
    tcase_add_loop_test(tc, test_flip_rwkvcpp, 0, 2);
    tcase_add_test(tc, test_flip_pth_raw);
    tcase_add_test(tc, test_flip_pth_pickle);
    tcase_add_test(tc, test_pickle_rejects);
    tcase_add_test(tc, test_rwkvcpp_quantized);
    tcase_add_test(tc, test_not_a_model);
    tcase_add_test(tc, test_file_read);
    tcase_add_test(tc, test_missing_and_misshaped);
    tcase_add_test(tc, test_safetensors_roundtrip);
    tcase_add_loop_test(tc, test_cli_info, 0, N_FIXTURES);
    tcase_add_test(tc, test_cli_info_half_life);
    tcase_add_test(tc, test_cli_info_errors);
    tcase_add_test(tc, test_pth_storage_bomb);
    tcase_add_test(tc, test_rwkvcpp_blocks_decode);
    tcase_add_test(tc, test_load_progress);
    tcase_add_test(tc, test_nonfinite_weights);
    tcase_add_test(tc, test_nonfinite_scan);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) {
    SRunner *sr = srunner_create(formats_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
