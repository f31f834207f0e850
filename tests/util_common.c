// util_common.c: implementations of tests/util.h.
#include "util.h"

#include <check.h>
#include <hdf5.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

const char *test_fixture(const char *name) {
    static char path[1024];
    snprintf(path, sizeof path, "tests/fixtures/%s", name);
    return path;
}

const char *test_tmpdir(void) {
    static char dir[256];
    if (!dir[0]) {
        const char *b = getenv("BUILD");
        snprintf(dir, sizeof dir, "%s/tmp", b ? b : "build");
        mkdir(b ? b : "build", 0755);
        mkdir(dir, 0755);
        snprintf(dir + strlen(dir), sizeof dir - strlen(dir), "/t%d", (int)getpid());
        mkdir(dir, 0755);
    }
    return dir;
}

double *test_h5_read(const char *path, const char *dset, int *ndim, uint64_t dims[4]) {
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL); // absent datasets are expected (tiny4 has no ffn traces)
    hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    if (f < 0) return NULL;
    hid_t d = H5Dopen2(f, dset, H5P_DEFAULT);
    if (d < 0) { H5Fclose(f); return NULL; }
    hid_t sp = H5Dget_space(d);
    hsize_t hd[8] = {0};
    int nd = H5Sget_simple_extent_dims(sp, hd, NULL);
    size_t n = 1;
    for (int i = 0; i < nd; i++) { n *= hd[i]; if (i < 4) dims[i] = hd[i]; }
    *ndim = nd;
    double *out = malloc((n ? n : 1) * sizeof *out);
    if (H5Dread(d, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, out) < 0) { free(out); out = NULL; }
    H5Sclose(sp); H5Dclose(d); H5Fclose(f);
    return out;
}

int *test_h5_read_int(const char *path, const char *dset, size_t *n) {
    hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    if (f < 0) return NULL;
    hid_t d = H5Dopen2(f, dset, H5P_DEFAULT);
    if (d < 0) { H5Fclose(f); return NULL; }
    hid_t sp = H5Dget_space(d);
    *n = (size_t)H5Sget_simple_extent_npoints(sp);
    int *out = malloc((*n ? *n : 1) * sizeof *out);
    if (H5Dread(d, H5T_NATIVE_INT, H5S_ALL, H5S_ALL, H5P_DEFAULT, out) < 0) { free(out); out = NULL; }
    H5Sclose(sp); H5Dclose(d); H5Fclose(f);
    return out;
}

int test_sh(char **out, const char *line) {
    const char *bin = getenv("RWKVSCOPE_BIN");
    setenv("RS", bin ? bin : "build/rwkvscope", 1);
    size_t n = strlen(line) + 16;
    char *cmd = malloc(n);
    snprintf(cmd, n, "{ %s ; } 2>&1", line);
    FILE *p = popen(cmd, "r");
    free(cmd);
    if (!p) return -1;
    size_t cap = 4096, len = 0;
    char *buf = malloc(cap);
    size_t k;
    while ((k = fread(buf + len, 1, cap - len - 1, p)) > 0) {
        len += k;
        if (cap - len < 2) buf = realloc(buf, cap *= 2);
    }
    buf[len] = '\0';
    int st = pclose(p);
    if (out) *out = buf; else free(buf);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

int test_cli(char **out, const char *args_fmt, ...) {
    char args[8192], cmd[9000];
    va_list ap;
    va_start(ap, args_fmt);
    vsnprintf(args, sizeof args, args_fmt, ap);
    va_end(ap);
    snprintf(cmd, sizeof cmd, "\"$RS\" %s", args);
    return test_sh(out, cmd);
}

double test_max_scaled_err(const rwkv_real *a, const double *b, size_t n) {
    double m = 0;
    for (size_t i = 0; i < n; i++) {
        double e = fabs((double)a[i] - b[i]) / fmax(1.0, fabs(b[i]));
        if (!(e <= m)) m = e; // NaN propagates as a failure
    }
    return m;
}

double test_max_scaled_err_d(const double *a, const double *b, size_t n) {
    double m = 0;
    for (size_t i = 0; i < n; i++) {
        double e = fabs(a[i] - b[i]) / fmax(1.0, fabs(b[i]));
        if (!(e <= m)) m = e;
    }
    return m;
}

double test_max_scaled_err_r(const rwkv_real *a, const rwkv_real *b, size_t n) {
    double m = 0;
    for (size_t i = 0; i < n; i++) {
        double e = fabs((double)a[i] - b[i]) / fmax(1.0, fabs((double)b[i]));
        if (!(e <= m)) m = e;
    }
    return m;
}

void test_capture_init(test_capture *c, rwkv_config cfg, int T, uint32_t *mask) {
    c->cfg = cfg;
    c->T = T;
    for (int t = 0; t < RWKV_TAP_N_BLOCK; t++) {
        int D = rwkv_tap_width(t, cfg);
        c->taps[t] = D ? calloc((size_t)cfg.n_layer * T * D, sizeof(rwkv_real)) : NULL;
    }
    for (int l = 0; l < cfg.n_layer; l++) mask[l] = (1u << RWKV_TAP_N_BLOCK) - 1;
    mask[cfg.n_layer] = 0;
}

rwkv_status test_capture_fn(void *ctx, int layer, rwkv_tap tap, int64_t pos, int n, int D, rwkv_real *data) {
    test_capture *c = ctx;
    if (tap >= RWKV_TAP_N_BLOCK || !c->taps[tap]) return RWKV_OK;
    memcpy(c->taps[tap] + ((size_t)layer * c->T + (size_t)pos) * D, data, (size_t)n * D * sizeof(rwkv_real));
    return RWKV_OK;
}

void test_capture_free(test_capture *c) {
    for (int t = 0; t < RWKV_TAP_N_BLOCK; t++) free(c->taps[t]);
}

// xorshift: tests need reproducible data, not statistical quality.
static uint32_t next_u32(uint64_t *s) {
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return (uint32_t)(*s >> 11);
}

static double uniform(uint64_t *s, double lo, double hi) {
    return lo + (hi - lo) * (next_u32(s) / 4294967296.0);
}

rwkv_model *test_random_model(rwkv_config cfg, unsigned seed) {
    rwkv_model *m;
    if (rwkv_model_alloc(&m, cfg)) return NULL;
    uint64_t s = 0x9E3779B97F4A7C15ull ^ seed;
    for (int i = 0; i < m->table.n; i++) {
        const rwkv_param *p = &m->table.params[i];
        rwkv_real *d = m->block + p->offset;
        const char *n = p->name;
        for (size_t j = 0; j < p->numel; j++) {
            double v;
            if (p->ndim == 2) v = uniform(&s, -1, 1) / sqrt((double)p->shape[1]);
            else if (strstr(n, "time_decay")) v = uniform(&s, -6, 1);
            else if (strstr(n, "time_first")) v = uniform(&s, -1, 1);
            else if (strstr(n, "time_mix")) v = uniform(&s, 0, 1);
            else if (strstr(n, ".weight")) v = uniform(&s, 0.5, 1.5); // LayerNorm gains
            else v = uniform(&s, -0.2, 0.2);                            // LayerNorm biases
            d[j] = (rwkv_real)v;
        }
    }
    if (strcmp(m->table.params[0].name, "emb.weight") == 0)
        for (size_t j = 0; j < m->table.params[0].numel; j++) m->block[j] = (rwkv_real)uniform(&s, -1, 1);
    rwkv_model_refresh(m);
    return m;
}

int *test_random_tokens(int T, int V, unsigned seed) {
    uint64_t s = 0xD1B54A32D192ED03ull ^ seed;
    int *t = malloc((size_t)T * sizeof *t);
    for (int i = 0; i < T; i++) t[i] = (int)(next_u32(&s) % (uint32_t)V);
    return t;
}

int test_png_size(const char *path, unsigned *w, unsigned *h) {
    unsigned char b[24];
    FILE *f = fopen(path, "rb");
    if (!f) return 0;
    size_t k = fread(b, 1, sizeof b, f);
    fclose(f);
    if (k != 24 || memcmp(b, "\x89PNG\r\n\x1a\n", 8) || memcmp(b + 12, "IHDR", 4)) return 0;
    *w = (unsigned)b[16] << 24 | (unsigned)b[17] << 16 | (unsigned)b[18] << 8 | b[19]; // big-endian
    *h = (unsigned)b[20] << 24 | (unsigned)b[21] << 16 | (unsigned)b[22] << 8 | b[23];
    return 1;
}

char *test_read_text(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    char *buf = calloc(1, 1 << 16);
    size_t n = buf ? fread(buf, 1, (1 << 16) - 1, f) : 0;
    if (buf) buf[n] = 0;
    fclose(f);
    return buf;
}

int test_same_bytes(const char *a, const char *b) {
    FILE *fa = fopen(a, "rb"), *fb = fopen(b, "rb");
    int same = fa && fb;
    while (same) {
        int ca = fgetc(fa), cb = fgetc(fb);
        if (ca != cb) same = 0;
        if (ca == EOF || cb == EOF) break;
    }
    if (fa) fclose(fa);
    if (fb) fclose(fb);
    return same;
}

static void dump_attr_i64(hid_t f, const char *name, int64_t v) {
    hid_t sp = H5Screate(H5S_SCALAR);
    hid_t a = H5Acreate2(f, name, H5T_STD_I64LE, sp, H5P_DEFAULT, H5P_DEFAULT);
    H5Awrite(a, H5T_NATIVE_INT64, &v);
    H5Aclose(a);
    H5Sclose(sp);
}

void test_dump_attrs(int64_t file, int n_layer, int n_embd, int n_ffn, int n_vocab, int64_t schema_version,
                     int64_t complete) {
    hid_t f = (hid_t)file;
    hid_t t = H5Tcopy(H5T_C_S1);
    H5Tset_size(t, H5T_VARIABLE);
    H5Tset_cset(t, H5T_CSET_UTF8);
    hid_t sp = H5Screate(H5S_SCALAR);
    hid_t a = H5Acreate2(f, "schema", t, sp, H5P_DEFAULT, H5P_DEFAULT);
    const char *schema = "rwkvscope-dump";
    H5Awrite(a, t, &schema);
    H5Aclose(a);
    H5Sclose(sp);
    H5Tclose(t);
    const char *names[] = {"schema_version", "n_layer", "n_embd", "n_ffn", "n_vocab", "complete", "precision"};
    int64_t values[] = {schema_version, n_layer, n_embd, n_ffn, n_vocab, complete, 32};
    for (int i = 0; i < 7; i++) dump_attr_i64(f, names[i], values[i]);
}

double *test_golden_logits(const char *golden, int **tokens, size_t *T, size_t *V) {
    int nd;
    uint64_t d[4];
    *tokens = test_h5_read_int(golden, "/tokens", T);
    double *logits = test_h5_read(golden, "/logits", &nd, d);
    *V = logits ? d[1] : 0;
    return logits;
}

double test_nll(const double *logits, const int *tokens, size_t V, size_t t0, size_t t1) {
    double s = 0;
    for (size_t t = t0; t + 1 < t1; t++) {
        const double *l = logits + t * V;
        double mx = -INFINITY, z = 0;
        for (size_t v = 0; v < V; v++) mx = fmax(mx, l[v]);
        for (size_t v = 0; v < V; v++) z += exp(l[v] - mx);
        s += mx + log(z) - l[tokens[t + 1]]; // -log p = logsumexp(l) - l_next
    }
    return s;
}

int test_run_suite(struct Suite *s) {
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int nf = srunner_ntests_failed(sr);
    srunner_free(sr);
    return nf ? 1 : 0;
}
