// dump.c: the HDF5 dump writer (driven by the forward hook) and reader. Schema in dump.h.
#include "dump.h"

#include "h5util.h"

#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#define DUMP_META_CHUNK 1024 // chunk length of the 1-D bookkeeping datasets
#define LN2 0.69314718055994530942
#define DUMP_ZLIB_WINDOW 15 // zlib format (what HDF5's deflate filter reads), 32 KB window
#define DUMP_ZLIB_MEM 8     // zlib's default memLevel
#define DUMP_ZLIB_SLACK 4096 // extra output room for the switch between stored and coded blocks
#define DUMP_CODED_PLANES 2 // byte planes of a float worth coding: sign, exponent, top mantissa

// One tapped (layer, tap): its dataset and a buffer of exactly one chunk. Full chunks are
// shuffled and deflated here (in parallel across taps) and stored with H5Dwrite_chunk, which
// is what HDF5's own shuffle + deflate filters would store, at a fraction of the wall time.
typedef struct {
    hid_t dset;
    int D;
    int64_t rows;   // rows already in the file
    int nbuf;       // rows waiting in buf
    rwkv_real *buf; // (chunk_rows, D)
    unsigned char *z; // (zcap) the compressed chunk
    size_t zcap, zlen;
    int zerr;       // zlib status of the last compression
    char name[96];
} stream;

struct rwkv_dump {
    hid_t file;
    char path[1024];
    const rwkv_model *m;
    uint32_t *mask;      // (L + 1)
    rwkv_positions pos;
    int parallel, chunk_rows;
    stream **streams;    // ((L + 1) * RWKV_TAP_N), NULL where not tapped
    hid_t d_offsets, d_tok_offsets, d_positions, d_tokens, d_text;
    int64_t n_rows, n_seq, n_tokens;
    int64_t cur_T;       // length of the sequence being run
    int64_t sel_pos;     // the rows of the last hook call: position, count, selected rows
    int sel_n, sel_k;
    int *sel;            // (sel_cap)
    int sel_cap;
    rwkv_real *logits;   // (logits_T, V) when logits are tapped
    int logits_T;
    unsigned char **shuf; // (n_threads) shuffle scratch of the widest chunk
    z_stream *zs;        // (n_threads) deflate streams, reset per chunk
    int n_zs;            // how many were initialised
    int n_threads;
    stream **full;       // (n_streams) streams with a full chunk, compressed together
    int n_streams;
    int failed;          // a write failed: the dump can only be abandoned
    rwkv_intervene_list *iv; // interventions applied by rwkv_dump_run (not owned), or NULL
};

static rwkv_status fail(rwkv_dump *d, const char *what) {
    d->failed = 1;
    return rwkv_h5_fail(d->path, what);
}

// An empty dataset of rows of width cols (0 = 1-D), extendible in rows.
static hid_t make_extendible(hid_t loc, const char *name, hid_t type, hsize_t cols, hsize_t chunk_rows,
                             int compress) {
    hsize_t dims[2] = {0, cols}, maxd[2] = {H5S_UNLIMITED, cols}, ch[2] = {chunk_rows, cols};
    int rank = cols ? 2 : 1;
    hid_t sp = H5Screate_simple(rank, dims, maxd);
    hid_t dcpl = H5Pcreate(H5P_DATASET_CREATE);
    H5Pset_chunk(dcpl, rank, ch);
    if (compress) {
        H5Pset_shuffle(dcpl);
        H5Pset_deflate(dcpl, RWKV_DUMP_DEFLATE);
    }
    // Whole chunks are written once: a chunk cache would only hold memory.
    hid_t dapl = H5Pcreate(H5P_DATASET_ACCESS);
    H5Pset_chunk_cache(dapl, H5D_CHUNK_CACHE_NSLOTS_DEFAULT, compress ? 0 : H5D_CHUNK_CACHE_NBYTES_DEFAULT,
                       H5D_CHUNK_CACHE_W0_DEFAULT);
    hid_t d = H5Dcreate2(loc, name, type, sp, H5P_DEFAULT, dcpl, dapl);
    H5Pclose(dapl);
    H5Pclose(dcpl);
    H5Sclose(sp);
    return d;
}

// Appends n rows (of width cols, 0 = 1-D) at row `at` of an extendible dataset.
static int append(hid_t d, hid_t mem_type, int64_t at, int64_t n, hsize_t cols, const void *data) {
    if (n == 0) return 0;
    int rank = cols ? 2 : 1;
    hsize_t dims[2] = {(hsize_t)(at + n), cols}, start[2] = {(hsize_t)at, 0}, count[2] = {(hsize_t)n, cols};
    if (H5Dset_extent(d, dims) < 0) return -1;
    hid_t fs = H5Dget_space(d), ms = H5Screate_simple(rank, count, NULL);
    int ok = H5Sselect_hyperslab(fs, H5S_SELECT_SET, start, NULL, count, NULL) >= 0 &&
             H5Dwrite(d, mem_type, ms, fs, H5P_DEFAULT, data) >= 0;
    H5Sclose(ms);
    H5Sclose(fs);
    return ok ? 0 : -1;
}

// Byte shuffle (HDF5's H5Z_FILTER_SHUFFLE): byte j of element i goes to j * n + i.
static void shuffle_bytes(unsigned char *dst, const unsigned char *src, size_t n, size_t size) {
    for (size_t j = 0; j < size; j++)
        for (size_t i = 0; i < n; i++) dst[j * n + i] = src[i * size + j];
}

// Pads the chunk with zeros (stored chunks are always whole), shuffles and deflates it.
// After the shuffle the chunk is one plane per byte of the float, least significant first.
// The top planes (sign, exponent, high mantissa) are runs and skewed values: zlib level 1
// with the run-length strategy codes them as well as full LZ77 does, at twice the speed.
// The low mantissa planes are noise that no deflate setting shrinks, so they go into
// stored blocks of the same deflate stream (deflateParams switches mid-stream). Any
// inflate, HDF5's deflate filter included, reads the result.
static void compress_chunk(rwkv_dump *d, stream *s, int thread) {
    size_t n = (size_t)d->chunk_rows * s->D, bytes = n * sizeof(rwkv_real);
    size_t noise = (sizeof(rwkv_real) - DUMP_CODED_PLANES) * n; // bytes of the low planes
    memset(s->buf + (size_t)s->nbuf * s->D, 0, (n - (size_t)s->nbuf * s->D) * sizeof(rwkv_real));
    unsigned char *in = d->shuf[thread];
    shuffle_bytes(in, (const unsigned char *)s->buf, n, sizeof(rwkv_real));
    z_stream *z = &d->zs[thread];
    int err = deflateReset(z);
    if (err == Z_OK) err = deflateParams(z, 0, Z_DEFAULT_STRATEGY);
    z->next_in = in;
    z->avail_in = (uInt)noise;
    z->next_out = s->z;
    z->avail_out = (uInt)s->zcap;
    if (err == Z_OK && noise) err = deflate(z, Z_NO_FLUSH);
    if (err == Z_OK) err = deflateParams(z, RWKV_DUMP_DEFLATE, Z_RLE);
    z->avail_in = (uInt)(in + bytes - z->next_in);
    if (err == Z_OK) err = deflate(z, Z_FINISH) == Z_STREAM_END ? Z_OK : Z_BUF_ERROR;
    s->zerr = err;
    s->zlen = z->total_out;
}

// Stores the compressed chunk at the stream's next rows (the file type is the native
// little-endian IEEE type, so the bytes are those HDF5 would have written).
static rwkv_status write_chunk(rwkv_dump *d, stream *s) {
    if (s->zerr != Z_OK) {
        d->failed = 1;
        return rwkv_error_set(RWKV_ERR_IO, "%s: %s: compression failed (zlib %d)", d->path, s->name, s->zerr);
    }
    hsize_t dims[2] = {(hsize_t)(s->rows + s->nbuf), (hsize_t)s->D}, off[2] = {(hsize_t)s->rows, 0};
    if (H5Dset_extent(s->dset, dims) < 0 || H5Dwrite_chunk(s->dset, H5P_DEFAULT, 0, off, s->zlen, s->z) < 0)
        return fail(d, s->name);
    s->rows += s->nbuf;
    s->nbuf = 0;
    return RWKV_OK;
}

static rwkv_status flush(rwkv_dump *d, stream *s) {
    if (!s->nbuf) return RWKV_OK;
    compress_chunk(d, s, 0);
    return write_chunk(d, s);
}

// Compresses every full chunk in parallel, then writes them in order (HDF5 is serial).
static rwkv_status flush_full(rwkv_dump *d) {
    int k = 0;
    for (int i = 0; i < d->n_streams; i++) {
        stream *s = d->streams[i];
        if (s && s->nbuf == d->chunk_rows) d->full[k++] = s;
    }
    #pragma omp parallel for schedule(dynamic, 1) num_threads(d->n_threads) if (k > 1)
    for (int i = 0; i < k; i++) compress_chunk(d, d->full[i], omp_get_thread_num());
    for (int i = 0; i < k; i++) {
        rwkv_status st = write_chunk(d, d->full[i]);
        if (st) return st;
    }
    return RWKV_OK;
}

static rwkv_status write_attrs(rwkv_dump *d, const rwkv_dump_opts *o) {
    const rwkv_model *m = d->m;
    hid_t f = d->file;
    char now[64];
    rwkv_h5_now(now, sizeof now);
    int bad = rwkv_h5_attr_str(f, "schema", RWKV_DUMP_SCHEMA) |
              rwkv_h5_attr_i64(f, "schema_version", RWKV_DUMP_SCHEMA_VERSION) |
              rwkv_h5_attr_i64(f, "complete", 0) | rwkv_h5_attr_str(f, "model_path", m->path) |
              rwkv_h5_attr_str(f, "model_format", m->format) |
              rwkv_h5_attr_i64(f, "n_layer", m->cfg.n_layer) | rwkv_h5_attr_i64(f, "n_embd", m->cfg.n_embd) |
              rwkv_h5_attr_i64(f, "n_ffn", m->cfg.n_ffn) | rwkv_h5_attr_i64(f, "n_vocab", m->cfg.n_vocab) |
              rwkv_h5_attr_str(f, "mode", d->parallel ? "parallel" : "sequential") |
              rwkv_h5_attr_i64(f, "precision", RWKV_REAL_BITS) |
              rwkv_h5_attr_str(f, "rwkvscope_version", RWKVSCOPE_VERSION) |
              rwkv_h5_attr_str(f, "command_line", o->command_line) |
              rwkv_h5_attr_str(f, "tokenizer", o->tokenizer && *o->tokenizer ? o->tokenizer : "token ids") |
              rwkv_h5_attr_str(f, "taps", o->taps) | rwkv_h5_attr_str(f, "positions", o->positions ? o->positions : "all") |
              rwkv_h5_attr_str(f, "time_written", now);
    return bad ? fail(d, "writing the root attributes") : RWKV_OK;
}

// /params/blocks/<l>/{time_decay,time_first,decay,half_life} and optionally the matrices.
static rwkv_status write_params(rwkv_dump *d, int matrices) {
    const rwkv_model *m = d->m;
    int L = m->cfg.n_layer, C = m->cfg.n_embd;
    double *v = rwkv_calloc((size_t)4 * C, sizeof *v, "dump params");
    if (!v) return RWKV_ERR_NOMEM;
    int bad = 0;
    hid_t g0 = H5Gcreate2(d->file, "/params", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    hid_t g1 = H5Gcreate2(g0, "blocks", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    bad |= g0 < 0 || g1 < 0;
    for (int l = 0; l < L && !bad; l++) {
        char name[32];
        snprintf(name, sizeof name, "%d", l);
        hid_t g = H5Gcreate2(g1, name, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
        for (int c = 0; c < C; c++) {
            double td = m->w.att_time_decay[(size_t)l * C + c];
            v[c] = td;
            v[C + c] = m->w.att_time_first[(size_t)l * C + c];
            v[2 * C + c] = exp(-exp(td)); // decay per token
            v[3 * C + c] = LN2 / exp(td); // half-life in tokens: decay^h = 1/2
        }
        const char *names[4] = {"time_decay", "time_first", "decay", "half_life"};
        for (int k = 0; k < 4; k++)
            bad |= rwkv_h5_write(g, names[k], RWKV_H5_REAL_FILE, H5T_NATIVE_DOUBLE, (hsize_t)C, 0, v + (size_t)k * C);
        if (matrices) {
            size_t off = (size_t)l * C * C;
            bad |= rwkv_h5_write(g, "receptance", RWKV_H5_REAL_FILE, RWKV_H5_REAL, C, C, m->w.att_receptance + off);
            bad |= rwkv_h5_write(g, "key", RWKV_H5_REAL_FILE, RWKV_H5_REAL, C, C, m->w.att_key + off);
            bad |= rwkv_h5_write(g, "value", RWKV_H5_REAL_FILE, RWKV_H5_REAL, C, C, m->w.att_value + off);
        }
        bad |= g < 0;
        if (g >= 0) H5Gclose(g);
    }
    if (g1 >= 0) H5Gclose(g1);
    if (g0 >= 0) H5Gclose(g0);
    free(v);
    return bad ? fail(d, "writing /params") : RWKV_OK;
}

static rwkv_status make_streams(rwkv_dump *d) {
    int L = d->m->cfg.n_layer;
    d->n_streams = (L + 1) * RWKV_TAP_N;
    d->streams = rwkv_calloc((size_t)d->n_streams, sizeof *d->streams, "dump streams");
    d->full = rwkv_calloc((size_t)d->n_streams, sizeof *d->full, "dump streams");
    d->n_threads = omp_get_max_threads();
    d->shuf = rwkv_calloc((size_t)d->n_threads, sizeof *d->shuf, "dump scratch");
    if (!d->streams || !d->full || !d->shuf) return RWKV_ERR_NOMEM;
    size_t widest = 0;
    hid_t blocks = H5Gcreate2(d->file, "/blocks", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    if (blocks < 0) return fail(d, "creating /blocks");
    rwkv_status st = RWKV_OK;
    for (int l = 0; l <= L && !st; l++) {
        hid_t g = d->file;
        char gname[32];
        snprintf(gname, sizeof gname, "%d", l);
        if (l < L) g = H5Gcreate2(blocks, gname, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
        if (g < 0) {
            st = fail(d, "creating a /blocks group");
            break;
        }
        for (int t = 0; t < RWKV_TAP_N && !st; t++) {
            if (!(d->mask[l] >> t & 1u)) continue;
            stream *s = rwkv_calloc(1, sizeof *s, "dump stream");
            if (!s) { st = RWKV_ERR_NOMEM; break; }
            d->streams[(size_t)l * RWKV_TAP_N + t] = s;
            s->dset = -1;
            s->D = rwkv_tap_width((rwkv_tap)t, d->m->cfg);
            rwkv_select_tap_name(s->name, sizeof s->name, l, L, (rwkv_tap)t);
            size_t bytes = (size_t)d->chunk_rows * s->D * sizeof(rwkv_real);
            s->zcap = compressBound((uLong)bytes) + DUMP_ZLIB_SLACK;
            s->buf = rwkv_calloc(bytes, 1, "dump buffer");
            s->z = rwkv_calloc(s->zcap, 1, "dump buffer");
            if (!s->buf || !s->z) {
                st = RWKV_ERR_NOMEM;
                break;
            }
            if (bytes > widest) widest = bytes;
            s->dset = make_extendible(g, RWKV_TAP_NAMES[t], RWKV_H5_REAL_FILE, (hsize_t)s->D,
                                      (hsize_t)d->chunk_rows, 1);
            if (s->dset < 0) st = fail(d, s->name);
        }
        if (l < L) H5Gclose(g);
    }
    H5Gclose(blocks);
    for (int i = 0; i < d->n_threads && !st && widest; i++)
        if (!(d->shuf[i] = rwkv_calloc(widest, 1, "dump scratch"))) st = RWKV_ERR_NOMEM;
    if (!st && !(d->zs = rwkv_calloc((size_t)d->n_threads, sizeof *d->zs, "dump zlib"))) st = RWKV_ERR_NOMEM;
    for (; !st && d->n_zs < d->n_threads; d->n_zs++)
        if (deflateInit2(&d->zs[d->n_zs], RWKV_DUMP_DEFLATE, Z_DEFLATED, DUMP_ZLIB_WINDOW, DUMP_ZLIB_MEM, Z_RLE) != Z_OK)
            st = rwkv_error_set(RWKV_ERR_NOMEM, "%s: cannot initialise zlib", d->path);
    return st;
}

static rwkv_status make_meta(rwkv_dump *d, int text) {
    hid_t g = H5Gcreate2(d->file, "/sequences", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    if (g < 0) return fail(d, "creating /sequences");
    d->d_offsets = make_extendible(g, "offsets", H5T_STD_I64LE, 0, DUMP_META_CHUNK, 1);
    d->d_tok_offsets = make_extendible(g, "token_offsets", H5T_STD_I64LE, 0, DUMP_META_CHUNK, 1);
    d->d_positions = make_extendible(g, "positions", H5T_STD_I64LE, 0, DUMP_META_CHUNK, 1);
    H5Gclose(g);
    d->d_tokens = make_extendible(d->file, "/tokens", H5T_STD_I32LE, 0, DUMP_META_CHUNK, 1);
    if (text) {
        hid_t t = H5Tcopy(H5T_C_S1);
        H5Tset_size(t, H5T_VARIABLE);
        H5Tset_cset(t, H5T_CSET_UTF8);
        d->d_text = make_extendible(d->file, "/text", t, 0, 16, 0);
        H5Tclose(t);
        if (d->d_text < 0) return fail(d, "creating /text");
    }
    int64_t zero = 0;
    if (d->d_offsets < 0 || d->d_tok_offsets < 0 || d->d_positions < 0 || d->d_tokens < 0 ||
        append(d->d_offsets, H5T_NATIVE_INT64, 0, 1, 0, &zero) ||
        append(d->d_tok_offsets, H5T_NATIVE_INT64, 0, 1, 0, &zero))
        return fail(d, "creating /sequences and /tokens");
    return RWKV_OK;
}

rwkv_status rwkv_dump_create(rwkv_dump **out, const char *path, const rwkv_model *m,
                             const uint32_t *mask, const rwkv_positions *pos, const rwkv_dump_opts *opts) {
    *out = NULL;
    rwkv_dump_opts none = {0};
    const rwkv_dump_opts *o = opts ? opts : &none;
    rwkv_dump *d = rwkv_calloc(1, sizeof *d, "dump");
    if (!d) return RWKV_ERR_NOMEM;
    d->file = d->d_offsets = d->d_tok_offsets = d->d_positions = d->d_tokens = d->d_text = -1;
    d->m = m;
    d->parallel = o->parallel;
    d->chunk_rows = o->chunk_rows > 0 ? o->chunk_rows : RWKV_DUMP_CHUNK_ROWS;
    d->sel_n = -1;
    snprintf(d->path, sizeof d->path, "%s", path);
    int L = m->cfg.n_layer;
    rwkv_status st = RWKV_OK;
    if (!(d->mask = rwkv_calloc((size_t)L + 1, sizeof *d->mask, "dump mask"))) st = RWKV_ERR_NOMEM;
    if (!st) {
        memcpy(d->mask, mask, ((size_t)L + 1) * sizeof *mask);
        d->pos = *pos;
        d->pos.ranges = NULL;
        if (pos->n_ranges) {
            size_t nb = (size_t)pos->n_ranges * 2 * sizeof *pos->ranges;
            if (!(d->pos.ranges = rwkv_calloc(1, nb, "dump positions"))) st = RWKV_ERR_NOMEM;
            else memcpy(d->pos.ranges, pos->ranges, nb);
        }
    }
    if (!st) st = rwkv_h5_create(&d->file, path, o->force);
    if (!st) st = write_attrs(d, o);
    if (!st) st = write_params(d, o->matrices);
    if (!st) st = make_meta(d, o->text);
    if (!st) st = make_streams(d);
    if (st) {
        rwkv_dump_free(d);
        return st;
    }
    *out = d;
    return RWKV_OK;
}

// The rows of a hook call (pos, n) that the position selection keeps (cached: every tap of a
// chunk asks the same question).
static rwkv_status select_rows(rwkv_dump *d, int64_t pos, int n) {
    if (pos == d->sel_pos && n == d->sel_n) return RWKV_OK;
    if (n > d->sel_cap) {
        free(d->sel);
        d->sel_cap = 0;
        if (!(d->sel = rwkv_calloc((size_t)n, sizeof *d->sel, "dump row selection"))) return RWKV_ERR_NOMEM;
        d->sel_cap = n;
    }
    d->sel_k = 0;
    for (int i = 0; i < n; i++)
        if (rwkv_select_has(&d->pos, pos + i, d->cur_T)) d->sel[d->sel_k++] = i;
    d->sel_pos = pos;
    d->sel_n = n;
    return RWKV_OK;
}

rwkv_status rwkv_dump_tap(void *ctx, int layer, rwkv_tap tap, int64_t pos, int n, int D, rwkv_real *data) {
    rwkv_dump *d = ctx;
    stream *s = d->streams[(size_t)layer * RWKV_TAP_N + tap];
    if (!s) return RWKV_OK; // a caller's mask may be wider than the dump's
    if (D != s->D) return rwkv_error_set(RWKV_ERR_ARG, "%s: %s: rows of width %d, expected %d", d->path, s->name, D, s->D);
    rwkv_status st = select_rows(d, pos, n);
    if (st) return st;
    for (int k = 0; k < d->sel_k; k++) {
        // A full chunk normally waits for flush_full after the forward call; more rows than
        // a chunk in one call are flushed here, one at a time.
        if (s->nbuf == d->chunk_rows && (st = flush(d, s))) return st;
        memcpy(s->buf + (size_t)s->nbuf * D, data + (size_t)d->sel[k] * D, (size_t)D * sizeof(rwkv_real));
        s->nbuf++;
    }
    return RWKV_OK;
}

rwkv_hook rwkv_dump_hook(rwkv_dump *d) {
    rwkv_hook h = {.mask = d->mask, .fn = rwkv_dump_tap, .ctx = d, .pos = 0};
    return h;
}

// Appends the sequence's tokens, positions, offsets and text.
static rwkv_status end_sequence(rwkv_dump *d, const int *tokens, int64_t T, const char *text) {
    int64_t *p = rwkv_calloc((size_t)T, sizeof *p, "dump positions");
    if (!p) return RWKV_ERR_NOMEM;
    int64_t k = 0;
    for (int64_t t = 0; t < T; t++)
        if (rwkv_select_has(&d->pos, t, T)) p[k++] = t;
    int64_t rows = d->n_rows + k, toks = d->n_tokens + T;
    int bad = append(d->d_positions, H5T_NATIVE_INT64, d->n_rows, k, 0, p) ||
              append(d->d_tokens, H5T_NATIVE_INT, d->n_tokens, T, 0, tokens) ||
              append(d->d_offsets, H5T_NATIVE_INT64, d->n_seq + 1, 1, 0, &rows) ||
              append(d->d_tok_offsets, H5T_NATIVE_INT64, d->n_seq + 1, 1, 0, &toks);
    free(p);
    if (!bad && d->d_text >= 0) {
        hid_t t = H5Tcopy(H5T_C_S1);
        H5Tset_size(t, H5T_VARIABLE);
        const char *s = text ? text : "";
        bad = append(d->d_text, t, d->n_seq, 1, 0, &s);
        H5Tclose(t);
    }
    if (bad) return fail(d, "appending the sequence bookkeeping");
    d->n_rows = rows;
    d->n_tokens = toks;
    d->n_seq++;
    return RWKV_OK;
}

rwkv_status rwkv_dump_run(rwkv_dump *d, rwkv_state *state, rwkv_workspace *ws, const int *tokens,
                          int64_t T, const char *text, rwkv_hook *hook) {
    if (d->failed) return rwkv_error_set(RWKV_ERR_IO, "%s: an earlier write failed; the dump is incomplete", d->path);
    const rwkv_model *m = d->m;
    int L = m->cfg.n_layer, V = m->cfg.n_vocab;
    int want_logits = d->mask[L] >> RWKV_TAP_LOGITS & 1u;
    if (want_logits && d->logits_T < ws->max_T) {
        free(d->logits);
        d->logits_T = 0;
        if (!(d->logits = rwkv_calloc((size_t)ws->max_T * V, sizeof(rwkv_real), "dump logits"))) return RWKV_ERR_NOMEM;
        d->logits_T = ws->max_T;
    }
    rwkv_hook own = rwkv_dump_hook(d);
    rwkv_hook *h = hook ? hook : &own;
    if (d->iv) rwkv_intervene_list_chain(d->iv, h);
    d->cur_T = T;
    d->sel_n = -1;
    rwkv_status st = RWKV_OK;
    // Steps of at most one chunk of rows: with all positions each step fills every buffer,
    // and flush_full compresses them all at once. Without taps the run is the plain pass.
    int any = rwkv_select_count(d->mask, L) > 0;
    int64_t step = any && d->chunk_rows < ws->max_T ? d->chunk_rows : ws->max_T;
    for (int64_t t = 0; t < T && !st; t += step) {
        int64_t n = T - t < step ? T - t : step;
        h->pos = t;
        rwkv_logits_mode lm = want_logits ? RWKV_LOGITS_ALL : RWKV_LOGITS_NONE;
        if (d->iv) // the list applies the interventions, then hands the rows on to h
            st = rwkv_intervene_forward(m, state, tokens + t, n, t, d->logits, lm, d->iv, ws, !d->parallel);
        else
            st = d->parallel ? rwkv_forward_par(m, state, tokens + t, n, d->logits, lm, h, ws)
                             : rwkv_forward_seq(m, state, tokens + t, n, d->logits, lm, h, ws);
        if (!st) st = flush_full(d);
    }
    if (d->iv) rwkv_intervene_list_chain(d->iv, NULL); // h may live on this stack frame
    if (!st) st = end_sequence(d, tokens, T, text);
    if (st) d->failed = 1;
    return st;
}

void rwkv_dump_set_interventions(rwkv_dump *d, rwkv_intervene_list *iv) { d->iv = iv; }

static void release(rwkv_dump *d) {
    int L = d->m->cfg.n_layer;
    if (d->streams) {
        for (size_t i = 0; i < (size_t)(L + 1) * RWKV_TAP_N; i++) {
            stream *s = d->streams[i];
            if (!s) continue;
            if (s->dset >= 0) H5Dclose(s->dset);
            free(s->buf);
            free(s->z);
            free(s);
        }
        free(d->streams);
    }
    hid_t ids[] = {d->d_offsets, d->d_tok_offsets, d->d_positions, d->d_tokens, d->d_text};
    for (size_t i = 0; i < sizeof ids / sizeof ids[0]; i++)
        if (ids[i] >= 0) H5Dclose(ids[i]);
    for (int i = 0; d->shuf && i < d->n_threads; i++) free(d->shuf[i]);
    for (int i = 0; i < d->n_zs; i++) deflateEnd(&d->zs[i]);
    free(d->zs);
    free(d->shuf);
    free(d->full);
    free(d->mask);
    free(d->sel);
    free(d->logits);
    rwkv_select_positions_free(&d->pos);
}

rwkv_status rwkv_dump_close(rwkv_dump *d) {
    if (!d) return RWKV_OK;
    rwkv_status st = RWKV_OK;
    if (d->failed) st = rwkv_error_set(RWKV_ERR_IO, "%s: an earlier write failed; the dump is incomplete", d->path);
    for (int i = 0; !st && i < d->n_streams; i++) {
        stream *s = d->streams[i];
        if (s && (st = flush(d, s))) break;
        if (s && s->rows != d->n_rows)
            st = rwkv_error_set(RWKV_ERR_IO, "%s: %s has %lld rows, expected %lld (a run was cut short)",
                                d->path, s->name, (long long)s->rows, (long long)d->n_rows);
    }
    char now[64];
    rwkv_h5_now(now, sizeof now);
    if (!st && (rwkv_h5_attr_str(d->file, "time_written", now) || H5Fflush(d->file, H5F_SCOPE_GLOBAL) < 0 ||
                rwkv_h5_attr_i64(d->file, "complete", 1)))
        st = fail(d, "finishing the file");
    release(d);
    if (H5Fclose(d->file) < 0 && !st) st = rwkv_h5_fail(d->path, "closing");
    free(d);
    return st;
}

void rwkv_dump_free(rwkv_dump *d) {
    if (!d) return;
    if (d->m) release(d);
    else free(d->mask);
    if (d->file >= 0) H5Fclose(d->file);
    H5Eclear2(H5E_DEFAULT);
    free(d);
}

// ---- reader ----

rwkv_status rwkv_dump_open(rwkv_dump_reader **out, const char *path) {
    *out = NULL;
    hid_t f;
    rwkv_status st = rwkv_h5_open(&f, path);
    if (st) return st;
    rwkv_dump_reader *r = rwkv_calloc(1, sizeof *r, "dump reader");
    if (!r) {
        H5Fclose(f);
        return RWKV_ERR_NOMEM;
    }
    r->file = f;
    snprintf(r->path, sizeof r->path, "%s", path);
    char schema[64];
    int64_t ver = 0, v[6] = {0};
    if (rwkv_h5_get_str(f, "schema", schema, sizeof schema) || strcmp(schema, RWKV_DUMP_SCHEMA) ||
        rwkv_h5_get_i64(f, "schema_version", &ver)) {
        st = rwkv_error_set(RWKV_ERR_FORMAT, "%s: not an rwkvscope dump (no schema attribute '%s')", path,
                            RWKV_DUMP_SCHEMA);
    } else if (ver > RWKV_DUMP_SCHEMA_VERSION || ver < 1) {
        st = rwkv_error_set(RWKV_ERR_UNSUPPORTED,
                            "%s: dump schema version %lld is not supported: this rwkvscope %s reads versions 1 to %d "
                            "(a newer rwkvscope wrote it?)",
                            path, (long long)ver, RWKVSCOPE_VERSION, RWKV_DUMP_SCHEMA_VERSION);
    } else if (rwkv_h5_get_i64(f, "n_layer", &v[0]) || rwkv_h5_get_i64(f, "n_embd", &v[1]) ||
               rwkv_h5_get_i64(f, "n_ffn", &v[2]) || rwkv_h5_get_i64(f, "n_vocab", &v[3]) ||
               rwkv_h5_get_i64(f, "complete", &v[4]) || rwkv_h5_get_i64(f, "precision", &v[5]) ||
               !rwkv_h5_exists(f, "/sequences/positions") || !rwkv_h5_exists(f, "/sequences/offsets") ||
               !rwkv_h5_exists(f, "/tokens")) {
        st = rwkv_error_set(RWKV_ERR_FORMAT, "%s: dump is missing shape attributes or /sequences", path);
    }
    if (!st) {
        r->schema_version = (int)ver;
        r->cfg = (rwkv_config){(int)v[0], (int)v[1], (int)v[2], (int)v[3]};
        r->complete = (int)v[4];
        r->precision = (int)v[5];
        rwkv_h5_get_str(f, "mode", r->mode, sizeof r->mode);
        const char *names[3] = {"/sequences/positions", "/sequences/offsets", "/tokens"};
        int64_t *dst[3] = {&r->n_rows, &r->n_seq, &r->n_tokens};
        for (int i = 0; i < 3; i++) {
            hid_t d = H5Dopen2(f, names[i], H5P_DEFAULT);
            hid_t sp = H5Dget_space(d);
            *dst[i] = H5Sget_simple_extent_npoints(sp);
            H5Sclose(sp);
            H5Dclose(d);
        }
        r->n_seq -= 1;
        if (rwkv_weights_check_config(r->cfg)) st = rwkv_error_wrap(RWKV_ERR_FORMAT, "%s: ", path);
    }
    if (st) {
        rwkv_dump_reader_free(r);
        return st;
    }
    *out = r;
    return RWKV_OK;
}

void rwkv_dump_reader_free(rwkv_dump_reader *r) {
    if (!r) return;
    if (r->file >= 0) H5Fclose((hid_t)r->file);
    free(r);
}

static void tap_path(char *buf, size_t size, const rwkv_dump_reader *r, int layer, rwkv_tap tap) {
    if (layer >= r->cfg.n_layer) snprintf(buf, size, "/%s", RWKV_TAP_NAMES[tap]);
    else snprintf(buf, size, "/blocks/%d/%s", layer, RWKV_TAP_NAMES[tap]);
}

int rwkv_dump_width(const rwkv_dump_reader *r, int layer, rwkv_tap tap) {
    char p[96];
    tap_path(p, sizeof p, r, layer, tap);
    if (layer < 0 || layer > r->cfg.n_layer || !rwkv_h5_exists((hid_t)r->file, p)) return 0;
    hid_t d = H5Dopen2((hid_t)r->file, p, H5P_DEFAULT);
    if (d < 0) return 0;
    hid_t sp = H5Dget_space(d);
    hsize_t dims[2] = {0, 0};
    int nd = H5Sget_simple_extent_dims(sp, dims, NULL);
    H5Sclose(sp);
    H5Dclose(d);
    return nd == 2 ? (int)dims[1] : 0;
}

static rwkv_status read_rows(const rwkv_dump_reader *r, int layer, rwkv_tap tap, int64_t row0, int64_t n,
                             hid_t mem_type, void *out) {
    char p[96];
    tap_path(p, sizeof p, r, layer, tap);
    int D = rwkv_dump_width(r, layer, tap);
    if (!D) return rwkv_error_set(RWKV_ERR_SHAPE, "%s: %s: not in the dump", r->path, p);
    hid_t d = H5Dopen2((hid_t)r->file, p, H5P_DEFAULT);
    hid_t fs = H5Dget_space(d);
    hsize_t dims[2];
    H5Sget_simple_extent_dims(fs, dims, NULL);
    rwkv_status st = RWKV_OK;
    if (row0 < 0 || n < 0 || (hsize_t)(row0 + n) > dims[0]) {
        st = rwkv_error_set(RWKV_ERR_ARG, "%s: %s: rows [%lld, %lld) outside [0, %llu)", r->path, p,
                            (long long)row0, (long long)(row0 + n), (unsigned long long)dims[0]);
    } else if (n > 0) {
        hsize_t start[2] = {(hsize_t)row0, 0}, count[2] = {(hsize_t)n, dims[1]};
        hid_t ms = H5Screate_simple(2, count, NULL);
        if (H5Sselect_hyperslab(fs, H5S_SELECT_SET, start, NULL, count, NULL) < 0 ||
            H5Dread(d, mem_type, ms, fs, H5P_DEFAULT, out) < 0)
            st = rwkv_h5_fail(r->path, p);
        H5Sclose(ms);
    }
    H5Sclose(fs);
    H5Dclose(d);
    return st;
}

rwkv_status rwkv_dump_read_rows(const rwkv_dump_reader *r, int layer, rwkv_tap tap, int64_t row0,
                                int64_t n, rwkv_real *out) {
    return read_rows(r, layer, tap, row0, n, RWKV_H5_REAL, out);
}

rwkv_status rwkv_dump_read_rows_f64(const rwkv_dump_reader *r, int layer, rwkv_tap tap, int64_t row0,
                                    int64_t n, double *out) {
    return read_rows(r, layer, tap, row0, n, H5T_NATIVE_DOUBLE, out);
}

static rwkv_status read_1d(const rwkv_dump_reader *r, const char *name, hid_t mem_type, size_t elem,
                           int64_t expect, void **out) {
    *out = NULL;
    hid_t d = H5Dopen2((hid_t)r->file, name, H5P_DEFAULT);
    if (d < 0) return rwkv_h5_fail(r->path, name);
    hid_t sp = H5Dget_space(d);
    int64_t n = H5Sget_simple_extent_npoints(sp);
    H5Sclose(sp);
    rwkv_status st = RWKV_OK;
    void *buf = NULL;
    if (n != expect) st = rwkv_error_set(RWKV_ERR_FORMAT, "%s: %s has %lld entries, expected %lld", r->path, name,
                                         (long long)n, (long long)expect);
    else if (!(buf = rwkv_calloc((size_t)(n ? n : 1), elem, name))) st = RWKV_ERR_NOMEM;
    else if (n && H5Dread(d, mem_type, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf) < 0) st = rwkv_h5_fail(r->path, name);
    H5Dclose(d);
    if (st) free(buf);
    else *out = buf;
    return st;
}

rwkv_status rwkv_dump_read_offsets(const rwkv_dump_reader *r, int64_t **out) {
    return read_1d(r, "/sequences/offsets", H5T_NATIVE_INT64, sizeof **out, r->n_seq + 1, (void **)out);
}

rwkv_status rwkv_dump_read_token_offsets(const rwkv_dump_reader *r, int64_t **out) {
    return read_1d(r, "/sequences/token_offsets", H5T_NATIVE_INT64, sizeof **out, r->n_seq + 1, (void **)out);
}

rwkv_status rwkv_dump_read_positions(const rwkv_dump_reader *r, int64_t **out) {
    return read_1d(r, "/sequences/positions", H5T_NATIVE_INT64, sizeof **out, r->n_rows, (void **)out);
}

rwkv_status rwkv_dump_read_tokens(const rwkv_dump_reader *r, int **out) {
    return read_1d(r, "/tokens", H5T_NATIVE_INT, sizeof **out, r->n_tokens, (void **)out);
}
