// bench_probe_horizon.c: `rwkvscope probe horizon` on a 4x128 model over 200 sequences of
// 256 tokens, d = 1..16, for the 4 layers (target: under 2 minutes on 2 cores).
// The model is tests/fixtures/tiny-rwkv-4v0-660K-FP32.bin when it loads, else a random
// model of the same shape. The dump (state_num, state_den of every layer and resid_in of
// layer 0, the baseline) is written here with the HDF5 C API in the dump schema.
#include "core/compute/blas.h"
#include "core/compute/forward.h"
#include "core/model/model.h"

#include <hdf5.h>
#include <sys/resource.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define N_SEQ 200
#define SEQ_LEN 256
#define MAX_D 16
#define TARGET_SECONDS 120.0
#define N_TAPS 3

static const rwkv_tap TAPS[N_TAPS] = {RWKV_TAP_STATE_NUM, RWKV_TAP_STATE_DEN, RWKV_TAP_RESID_IN};

typedef struct {
    hid_t dset[4][N_TAPS]; // (layer, tap); resid_in only for layer 0
    int64_t row0;
    int L, C;
} capture;

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + 1e-9 * t.tv_nsec;
}

static rwkv_status hook_fn(void *ctx, int layer, rwkv_tap tap, int64_t pos, int n, int D, rwkv_real *data) {
    capture *c = ctx;
    for (int k = 0; k < N_TAPS; k++) {
        if (TAPS[k] != tap || c->dset[layer][k] <= 0) continue;
        hsize_t start[2] = {(hsize_t)(c->row0 + pos), 0}, count[2] = {(hsize_t)n, (hsize_t)D};
        hid_t fs = H5Dget_space(c->dset[layer][k]);
        H5Sselect_hyperslab(fs, H5S_SELECT_SET, start, NULL, count, NULL);
        hid_t ms = H5Screate_simple(2, count, NULL);
        herr_t e = H5Dwrite(c->dset[layer][k], RWKV_REAL_BITS == 64 ? H5T_NATIVE_DOUBLE : H5T_NATIVE_FLOAT,
                            ms, fs, H5P_DEFAULT, data);
        H5Sclose(ms);
        H5Sclose(fs);
        if (e < 0) return rwkv_error_set(RWKV_ERR_IO, "bench dump: write failed");
    }
    return RWKV_OK;
}

static void write_vec(hid_t f, const char *name, hid_t type, hsize_t n, const void *data) {
    hid_t lcpl = H5Pcreate(H5P_LINK_CREATE);
    H5Pset_create_intermediate_group(lcpl, 1);
    hid_t sp = H5Screate_simple(1, &n, NULL);
    hid_t d = H5Dcreate2(f, name, type, sp, lcpl, H5P_DEFAULT, H5P_DEFAULT);
    H5Dwrite(d, type, H5S_ALL, H5S_ALL, H5P_DEFAULT, data);
    H5Dclose(d); H5Sclose(sp); H5Pclose(lcpl);
}

// A random model of the tiny model's shape, for when the .bin reader is missing.
static rwkv_model *random_model(void) {
    rwkv_config cfg = {4, 128, 256, 256};
    rwkv_model *m = NULL;
    if (rwkv_model_alloc(&m, cfg)) return NULL;
    srand(5);
    for (size_t i = 0; i < m->table.total; i++) m->block[i] = (rwkv_real)(((double)rand() / RAND_MAX - 0.5) * 0.2);
    size_t LC = (size_t)cfg.n_layer * cfg.n_embd;
    for (size_t i = 0; i < LC; i++) {
        m->w.ln1_w[i] = m->w.ln2_w[i] = 1;
        m->w.att_time_decay[i] = (rwkv_real)(-5 + 8.0 * (i % cfg.n_embd) / cfg.n_embd);
    }
    for (int i = 0; i < cfg.n_embd; i++) m->w.ln0_w[i] = m->w.ln_out_w[i] = 1;
    rwkv_model_refresh(m);
    return m;
}

static int make_dump(const char *path) {
    rwkv_model *m = NULL;
    if (rwkv_model_load(&m, "tests/fixtures/tiny-rwkv-4v0-660K-FP32.bin")) {
        fprintf(stderr, "bench_probe_horizon: tiny model not loadable (%s); using a random 4x128 model\n",
                rwkv_error_message());
        m = random_model();
        if (!m) return 1;
    }
    FILE *tf = fopen("tests/fixtures/tinyshakespeare.txt", "rb");
    static unsigned char text[N_SEQ * SEQ_LEN];
    if (!tf || fread(text, 1, sizeof text, tf) != sizeof text) { fprintf(stderr, "cannot read tinyshakespeare\n"); return 1; }
    fclose(tf);
    hid_t f = H5Fcreate(path, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    capture c = {{{0}}, 0, m->cfg.n_layer, m->cfg.n_embd};
    hid_t lcpl = H5Pcreate(H5P_LINK_CREATE);
    H5Pset_create_intermediate_group(lcpl, 1);
    hsize_t dims[2] = {N_SEQ * SEQ_LEN, (hsize_t)c.C};
    hid_t sp = H5Screate_simple(2, dims, NULL);
    uint32_t mask[8] = {0};
    for (int l = 0; l < c.L; l++)
        for (int k = 0; k < N_TAPS; k++) {
            if (TAPS[k] == RWKV_TAP_RESID_IN && l) continue;
            char name[64];
            snprintf(name, sizeof name, "/blocks/%d/%s", l, RWKV_TAP_NAMES[TAPS[k]]);
            c.dset[l][k] = H5Dcreate2(f, name, RWKV_REAL_BITS == 64 ? H5T_IEEE_F64LE : H5T_IEEE_F32LE, sp,
                                      lcpl, H5P_DEFAULT, H5P_DEFAULT);
            mask[l] |= 1u << TAPS[k];
        }
    H5Sclose(sp);
    rwkv_hook hook = {.mask = mask, .fn = hook_fn, .ctx = &c};
    rwkv_state *st = NULL;
    rwkv_workspace *ws = NULL;
    if (rwkv_state_alloc(&st, m->cfg) || rwkv_workspace_alloc(&ws, m->cfg, SEQ_LEN)) return 1;
    static int ids[SEQ_LEN];
    static int32_t tokens[N_SEQ * SEQ_LEN];
    static int64_t pos[N_SEQ * SEQ_LEN], off[N_SEQ + 1];
    for (int s = 0; s < N_SEQ; s++) {
        for (int t = 0; t < SEQ_LEN; t++) ids[t] = tokens[s * SEQ_LEN + t] = text[s * SEQ_LEN + t], pos[s * SEQ_LEN + t] = t;
        off[s] = (int64_t)s * SEQ_LEN;
        rwkv_state_reset(st);
        c.row0 = off[s];
        hook.pos = 0;
        if (rwkv_forward_par(m, st, ids, SEQ_LEN, NULL, RWKV_LOGITS_NONE, &hook, ws)) {
            fprintf(stderr, "forward: %s\n", rwkv_error_message());
            return 1;
        }
    }
    off[N_SEQ] = N_SEQ * SEQ_LEN;
    for (int l = 0; l < c.L; l++)
        for (int k = 0; k < N_TAPS; k++)
            if (c.dset[l][k] > 0) H5Dclose(c.dset[l][k]);
    write_vec(f, "/sequences/offsets", H5T_NATIVE_INT64, N_SEQ + 1, off);
    write_vec(f, "/sequences/token_offsets", H5T_NATIVE_INT64, N_SEQ + 1, off);
    write_vec(f, "/sequences/positions", H5T_NATIVE_INT64, N_SEQ * SEQ_LEN, pos);
    write_vec(f, "/tokens", H5T_NATIVE_INT32, N_SEQ * SEQ_LEN, tokens);
    H5Pclose(lcpl);
    H5Fclose(f);
    rwkv_state_free(st);
    rwkv_workspace_free(ws);
    rwkv_model_free(m);
    return 0;
}

int main(int argc, char **argv) {
    rwkv_blas_ensure_coretype(argc, argv); // the kernels the CLI gets (see core/compute/blas.h)
    const char *bin = getenv("RWKVSCOPE_BIN");
    const char *dir = getenv("BENCH_TMP") ? getenv("BENCH_TMP") : "/tmp";
    char path[512], out[600], cmd[2048];
    snprintf(path, sizeof path, "%s/bench_probe_horizon.h5", dir);
    snprintf(out, sizeof out, "%s/bench_probe_horizon.csv", dir);
    double t0 = now();
    if (make_dump(path)) return 1;
    double t1 = now();
    snprintf(cmd, sizeof cmd, "%s probe horizon %s --max-d %d -o %s 2>/dev/null",
             bin ? bin : "build/rwkvscope", path, MAX_D, out);
    int rc = system(cmd);
    double t2 = now();
    // CPU time of the probe process: on a shared machine the wall time overstates the cost;
    // CPU / 2 is the wall time on 2 idle cores (the fits run one per core).
    struct rusage ru;
    getrusage(RUSAGE_CHILDREN, &ru);
    double cpu = ru.ru_utime.tv_sec + 1e-6 * ru.ru_utime.tv_usec + ru.ru_stime.tv_sec + 1e-6 * ru.ru_stime.tv_usec;
    printf("probe horizon: %d sequences x %d tokens, d = 1..%d, 4 layers: dump %.1f s, probe %.1f s wall, "
           "%.1f s CPU (~%.1f s on 2 idle cores; target < %.0f s): %s\n", N_SEQ, SEQ_LEN, MAX_D,
           t1 - t0, t2 - t1, cpu, cpu / 2, TARGET_SECONDS,
           rc ? "FAILED (exit status)" : (t2 - t1 < TARGET_SECONDS ? "ok" : cpu / 2 < TARGET_SECONDS ? "ok by CPU time (machine busy)" : "SLOW"));
    remove(path);
    return rc || cpu / 2 >= TARGET_SECONDS;
}
