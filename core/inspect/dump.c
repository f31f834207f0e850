// dump.c: the HDF5 dump writer (driven by the forward hook) and reader. Schema in dump.h.
#include "dump.h"

#include "deflate.h"
#include "dumpmeta.h"
#include "h5util.h"

#include "../base/file.h"

#include <omp.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#define DUMP_META_CHUNK 1024      // chunk length of the 1-D bookkeeping datasets
#define DUMP_CHUNK_BYTES (1 << 20) // largest tap chunk: HDF5's default chunk cache holds one
#define DUMP_PAR_SHUFFLE_MIN (1 << 15) // elements of a run from which the shuffle is split over the team
#define DUMP_PENDING_BYTES (16 << 20) // whole chunks waiting for the file: more are written from the hook
#define LN2 0.69314718055994530942
#define DUMP_FLUSH_MB 64            // default: flush to disk after this much chunk data
#define DUMP_FLUSH_SECONDS 1.0      // and after a sequence, at most this often
#define DUMP_SWMR_READ_ATTEMPTS 4 // metadata read attempts of an SWMR reader (HDF5 default: 100)
#define DUMP_OPEN_BUDGET_S 5.0     // seconds for the trial open, plus the file's read time

// One tapped (layer, tap): its dataset and the chunk being filled. Full chunks are queued on
// the dump (pending) and written together: compressed in parallel and stored with
// H5Dwrite_chunk, as HDF5's own shuffle + deflate filters would store them, at a fraction of
// the filters' wall time. The chunks of an unfiltered (raw) dataset are stored as the rows are.
typedef struct {
    hid_t dset;
    int D;
    int raw;         // no filters: chunks hold the rows as they are, not shuffled
    int chunk_rows;  // rows per HDF5 chunk: the dump's, fewer for wide taps (DUMP_CHUNK_BYTES)
    int pool;        // index of its chunk size in the dump's slot pools
    int64_t rows;    // rows in the file (the dataset's extent)
    int64_t queued;  // rows in the file or in pending chunks: the next chunk starts here
    unsigned char *cur; // (chunk_rows, D) as HDF5 stores it (shuffled: deflate.h), or NULL
    int ncur;        // rows in cur
    char name[96];
} stream;

// A whole chunk (or, at close, the zero-padded last one) of stream s waiting for the file.
typedef struct {
    stream *s;
    unsigned char *slot; // the chunk's rows (a pool slot)
    int64_t row;         // its first row
    int rows;            // rows it holds (chunk_rows but for the last)
    unsigned char *out;  // compressed bytes (len), within the dump's zout buffer
    size_t len;
    int zerr;            // compression status
    atomic_int ready;    // compressed (or raw): it may be stored
} chunk_job;

// Free chunk buffers of one size: chunks are recycled, so a dump touches a few layers' worth
// of buffer pages, not a forward call's.
typedef struct {
    size_t bytes;
    unsigned char **free; // (n_free, cap)
    int n_free, cap;
} slot_pool;

struct rwkv_dump {
    hid_t file;
    char path[1024];
    rwkv_atomic_file out; // the temporary when replacing an existing file (--force)
    int use_tmp;
    const char *write_path; // the file HDF5 writes: path, or out.tmp
    const rwkv_model *m;
    uint32_t *mask;      // (L + 1)
    rwkv_positions pos;
    int parallel, chunk_rows;
    rwkv_dump_compress compress;
    stream **streams;    // ((L + 1) * RWKV_TAP_N), NULL where not tapped
    int n_streams;
    int step;            // rows of one forward call (posbuf sized for it)
    hid_t d_offsets, d_tok_offsets, d_positions, d_tokens;
    int want_text;       // write /text at close
    int64_t n_rows, n_seq, n_tokens;
    int64_t cur_T;       // length of the sequence being run
    int64_t sel_pos;     // the rows of the last hook call: position, count, selected rows
    int sel_n, sel_k;
    int *sel;            // (sel_cap)
    int sel_cap;
    rwkv_real *logits;   // (logits_T, V) when logits are tapped
    int logits_T;
    rwkv_deflate *zs;    // (n_threads) one compressor per thread
    int n_threads;
    chunk_job *jobs;     // (n_jobs, jobs_cap) the pending chunks, in the order they are stored
    int n_jobs, jobs_cap;
    size_t pending;      // their bytes
    unsigned char *zout; // (zout_cap) the compressed chunks of one write
    size_t zout_cap;
    atomic_int next_job; // the next pending chunk to compress (claimed by any thread)
    slot_pool *pools;    // (n_pools)
    int n_pools;
    int failed;          // a write failed: the dump can only be abandoned
    const volatile sig_atomic_t *cancel; // stop between forward calls when it becomes nonzero
    int stopped;         // a run was stopped: close leaves complete = 0 and stopped_at
    int64_t stop_seq, stop_pos;
    int64_t flush_bytes, unflushed; // chunk bytes between flushes to disk, and since the last
    char **texts;        // (n_seq) the prompts, written at close (/text is variable-length,
                         // which SWMR cannot append)
    int64_t *posbuf;     // (step) positions of one forward call's rows
    struct timespec last_flush;
    rwkv_intervene_list *iv; // interventions applied by rwkv_dump_run (not owned), or NULL
    rwkv_dumpmeta *meta;     // the dimension scales while rwkv_dump_create makes the file, else NULL
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
    hid_t err = d < 0 ? H5Eget_current_stack() : -1; // the closes below would clear the cause
    H5Pclose(dapl);
    H5Pclose(dcpl);
    H5Sclose(sp);
    if (err >= 0) H5Eset_current_stack(err);
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
    hid_t err = ok ? -1 : H5Eget_current_stack(); // the closes below would clear the cause
    H5Sclose(ms);
    H5Sclose(fs);
    if (err >= 0) H5Eset_current_stack(err);
    return ok ? 0 : -1;
}

static size_t chunk_bytes(const stream *s) { return (size_t)s->chunk_rows * s->D * sizeof(rwkv_real); }

// The pool of chunk buffers of `bytes` bytes (made on first use), or -1 when out of memory.
static int pool_of(rwkv_dump *d, size_t bytes) {
    for (int p = 0; p < d->n_pools; p++)
        if (d->pools[p].bytes == bytes) return p;
    slot_pool *q = realloc(d->pools, ((size_t)d->n_pools + 1) * sizeof *q);
    if (!q) return -1;
    d->pools = q;
    q[d->n_pools] = (slot_pool){.bytes = bytes};
    return d->n_pools++;
}

static unsigned char *slot_take(rwkv_dump *d, int p) {
    slot_pool *q = &d->pools[p];
    return q->n_free ? q->free[--q->n_free] : malloc(q->bytes);
}

static void slot_give(rwkv_dump *d, int p, unsigned char *b) {
    slot_pool *q = &d->pools[p];
    if (q->n_free == q->cap) {
        int cap = q->cap ? 2 * q->cap : 16;
        unsigned char **f = realloc(q->free, (size_t)cap * sizeof *f);
        if (!f) { // keep going without recycling this one
            free(b);
            return;
        }
        q->free = f;
        q->cap = cap;
    }
    q->free[q->n_free++] = b;
}

// Zeroes the rows from `used` on of a chunk of s in every byte plane (stored chunks are whole).
static void pad_chunk(const stream *s, unsigned char *chunk, int used) {
    size_t n = (size_t)s->chunk_rows * s->D, u = (size_t)used * s->D;
    if (s->raw) {
        memset(chunk + u * sizeof(rwkv_real), 0, (n - u) * sizeof(rwkv_real));
        return;
    }
    for (size_t j = 0; j < sizeof(rwkv_real); j++) memset(chunk + j * n + u, 0, n - u);
}

// Queues the chunk s is filling (zero-padded when partial, at close) for the next write.
static rwkv_status queue_chunk(rwkv_dump *d, stream *s) {
    if (d->n_jobs == d->jobs_cap) {
        int cap = d->jobs_cap ? 2 * d->jobs_cap : 64;
        chunk_job *j = realloc(d->jobs, (size_t)cap * sizeof *j);
        if (!j) return rwkv_error_set(RWKV_ERR_NOMEM, "%s: out of memory for the chunk list", d->path);
        d->jobs = j;
        d->jobs_cap = cap;
    }
    if (s->ncur < s->chunk_rows) pad_chunk(s, s->cur, s->ncur);
    chunk_job *j = &d->jobs[d->n_jobs++];
    *j = (chunk_job){.s = s, .slot = s->cur, .row = s->queued, .rows = s->ncur};
    atomic_init(&j->ready, 0);
    s->queued += s->ncur;
    s->cur = NULL;
    s->ncur = 0;
    d->pending += chunk_bytes(s);
    return RWKV_OK;
}

// Compresses pending chunk j on thread t's compressor into its room in zout (raw chunks are
// stored as they are) and marks it ready for the storing thread.
static void compress_job(rwkv_dump *d, chunk_job *j, int t) {
    const stream *s = j->s;
    size_t bytes = chunk_bytes(s);
    if (s->raw) j->out = j->slot, j->len = bytes;
    else j->zerr = rwkv_deflate_chunk_to(&d->zs[t], j->out, rwkv_deflate_bound(bytes), j->slot,
                                         (size_t)s->chunk_rows * s->D, sizeof(rwkv_real), &j->len);
    atomic_store_explicit(&j->ready, 1, memory_order_release);
}

// Stores len bytes as the chunk of s that starts at `row`.
static rwkv_status put_chunk(rwkv_dump *d, const stream *s, int64_t row, size_t len, const void *bytes) {
    hsize_t off[2] = {(hsize_t)row, 0};
    if (H5Dwrite_chunk(s->dset, H5P_DEFAULT, 0, off, len, bytes) < 0) return fail(d, s->name);
    d->unflushed += (int64_t)len;
    return RWKV_OK;
}

// The storing thread's part of write_chunks: nc whole chunks of raw_s's rows from `rows`,
// then the queue in order, compressing queued chunks itself while the one it needs is not
// ready. Every HDF5 call stays on this (the calling) thread, in an order fixed by the data.
static rwkv_status store_all(rwkv_dump *d, stream *raw_s, const unsigned char *rows, int nc) {
    rwkv_status st = RWKV_OK;
    for (int c = 0; c < nc; c++, raw_s->queued += raw_s->chunk_rows) {
        size_t len = chunk_bytes(raw_s);
        if ((st = put_chunk(d, raw_s, raw_s->queued, len, rows + c * len))) return st;
    }
    for (int i = 0; i < d->n_jobs && !st; i++) {
        chunk_job *j = &d->jobs[i];
        while (!atomic_load_explicit(&j->ready, memory_order_acquire)) {
            int c = atomic_fetch_add(&d->next_job, 1);
            if (c < d->n_jobs) compress_job(d, &d->jobs[c], 0);
        }
        if (j->zerr)
            return rwkv_error_set(RWKV_ERR_IO, "%s: %s: compression failed (ISA-L status %d)", d->path, j->s->name,
                                  j->zerr);
        st = put_chunk(d, j->s, j->row, j->len, j->out);
    }
    return st;
}

// Grows each dataset to the rows this write stores: the last queued chunk of a stream ends
// furthest (chunks are queued in row order), and raw_s's direct chunks come after its queue.
static rwkv_status extend(rwkv_dump *d, stream *raw_s, int nc) {
    for (int i = d->n_jobs; i-- > 0;) {
        stream *s = d->jobs[i].s;
        int64_t end = d->jobs[i].row + d->jobs[i].rows;
        if (end <= s->rows || (s == raw_s && nc)) continue;
        hsize_t dims[2] = {(hsize_t)end, (hsize_t)s->D};
        if (H5Dset_extent(s->dset, dims) < 0) return fail(d, s->name);
        s->rows = end;
    }
    if (!nc) return RWKV_OK;
    hsize_t dims[2] = {(hsize_t)(raw_s->queued + (int64_t)nc * raw_s->chunk_rows), (hsize_t)raw_s->D};
    if (H5Dset_extent(raw_s->dset, dims) < 0) return fail(d, raw_s->name);
    raw_s->rows = (int64_t)dims[0];
    return RWKV_OK;
}

// Room in zout for every queued chunk's compressed form.
static rwkv_status place_outputs(rwkv_dump *d) {
    size_t need = 0;
    for (int i = 0; i < d->n_jobs; i++)
        if (!d->jobs[i].s->raw) need += rwkv_deflate_bound(chunk_bytes(d->jobs[i].s));
    if (need > d->zout_cap) {
        free(d->zout);
        d->zout_cap = 0;
        if (!(d->zout = malloc(need)))
            return rwkv_error_set(RWKV_ERR_NOMEM, "%s: out of memory for %zu bytes of compressed chunks", d->path, need);
        d->zout_cap = need;
    }
    size_t at = 0;
    for (int i = 0; i < d->n_jobs; i++)
        if (!d->jobs[i].s->raw) {
            d->jobs[i].out = d->zout + at;
            at += rwkv_deflate_bound(chunk_bytes(d->jobs[i].s));
        }
    return RWKV_OK;
}

// Writes the queued chunks, and first, with raw_s, nc whole chunks of its rows straight from
// `rows` (the caller's, so no copy). The calling thread stores while the rest of the team
// compresses the queue: a dump's raw state rows and its compression share the cores.
// The stored chunks' buffers go back to their pools.
static rwkv_status write_chunks(rwkv_dump *d, stream *raw_s, const unsigned char *rows, int nc) {
    int k = d->n_jobs;
    if (!k && !nc) return RWKV_OK;
    rwkv_status st = place_outputs(d);
    if (!st) st = extend(d, raw_s, nc);
    if (!st) {
        atomic_store(&d->next_job, 0);
#pragma omp parallel num_threads(d->n_threads) if (k > 1 || (k && nc))
        {
            if (omp_get_thread_num() == 0) st = store_all(d, raw_s, rows, nc);
            else
                for (int i; (i = atomic_fetch_add(&d->next_job, 1)) < k;) compress_job(d, &d->jobs[i], omp_get_thread_num());
        }
    }
    for (int i = 0; i < k; i++) slot_give(d, d->jobs[i].s->pool, d->jobs[i].slot);
    d->n_jobs = 0;
    d->pending = 0;
    if (st) d->failed = 1;
    return st;
}

// Writes every queued chunk, and with `partial` the chunks still being filled (zero-padded).
static rwkv_status flush(rwkv_dump *d, int partial) {
    rwkv_status st = RWKV_OK;
    for (int i = 0; partial && i < d->n_streams && !st; i++)
        if (d->streams[i] && d->streams[i]->ncur) st = queue_chunk(d, d->streams[i]);
    return st ? st : write_chunks(d, NULL, NULL, 0);
}

// Room for the positions of a forward call of `step` tokens.
static rwkv_status reserve(rwkv_dump *d, int step) {
    if (step <= d->step) return RWKV_OK;
    int64_t *p = realloc(d->posbuf, (size_t)step * sizeof *p);
    if (!p) return rwkv_error_set(RWKV_ERR_NOMEM, "%s: out of memory for the positions", d->path);
    d->posbuf = p;
    d->step = step;
    return RWKV_OK;
}

// Tap t of layer l (L: the globals) is selected and exists in the model's version.
static int tap_stored(const rwkv_dump *d, int l, rwkv_tap t) {
    return (d->mask[l] >> t & 1u) && rwkv_tap_width(t, d->m->cfg);
}

static int layer_tapped(const rwkv_dump *d, int l) {
    for (int t = 0; t < RWKV_TAP_N; t++)
        if (tap_stored(d, l, (rwkv_tap)t)) return 1;
    return 0;
}

// A group whose links iterate in creation order (the layers in numeric order).
static hid_t make_ordered_group(hid_t loc, const char *name) {
    hid_t gcpl = rwkv_dumpmeta_ordered_gcpl();
    hid_t g = gcpl < 0 ? -1 : H5Gcreate2(loc, name, H5P_DEFAULT, gcpl, H5P_DEFAULT);
    if (gcpl >= 0) H5Pclose(gcpl);
    return g;
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
              rwkv_h5_attr_str(f, "time_written", now) |
              rwkv_h5_attr_i64(f, "rwkv_version", RWKV_HAS_HEADS(m->cfg) ? m->cfg.version : 4);
    if (RWKV_HAS_HEADS(m->cfg))
        bad |= rwkv_h5_attr_i64(f, "n_head", m->cfg.n_embd / m->cfg.head_size) |
               rwkv_h5_attr_i64(f, "head_size", m->cfg.head_size);
    return bad ? fail(d, "writing the root attributes") : RWKV_OK;
}

#define PARAM_VECTORS_MAX 4

// Layer l's vectors of /params into v (k, C), their names into names; returns k.
// RWKV-4 and RWKV-5.2: the raw time_decay and time_first (time_faaaa), the decay per token exp(-exp(time_decay)) and
// its half-life. RWKV-7: the decay bias w0 and the decay and half-life at the bias alone,
// exp(-e^{-1/2} sigmoid(w0)) (the per-token decay is the att_w tap).
static int param_vectors(const rwkv_model *m, int l, double *v, const char **names) {
    int C = m->cfg.n_embd, v7 = RWKV_IS_V7(m->cfg);
    const rwkv_real *decay = m->v7 ? m->v7->time_decay : m->w.att_time_decay; // RWKV-5.2 or 4
    const rwkv_real *first = m->v7 ? m->v7->time_faaaa : m->w.att_time_first;
    for (int c = 0; c < C; c++) {
        size_t i = (size_t)l * C + c;
        if (v7) {
            double w0 = m->v7->w0[i], rate = exp(-0.5) / (1 + exp(-w0)); // e^{-1/2} sigmoid(w0)
            v[c] = w0;
            v[C + c] = exp(-rate); // decay per token at the bias
            v[2 * C + c] = LN2 / rate;
        } else {
            double td = decay[i];
            v[c] = td;
            v[C + c] = first[i];
            v[2 * C + c] = exp(-exp(td)); // decay per token
            v[3 * C + c] = LN2 / exp(td); // half-life in tokens: decay^h = 1/2
        }
    }
    static const char *const v4_names[] = {"time_decay", "time_first", "decay", "half_life"};
    static const char *const v7_names[] = {"w0", "decay_bias", "half_life_bias"};
    int k = v7 ? 3 : 4;
    memcpy(names, v7 ? v7_names : v4_names, (size_t)k * sizeof *names);
    return k;
}

// Layer l's time-mix matrix `which` (receptance, key, value) as float: RWKV-5/7's block, the
// RWKV-4 block, or the file-typed view widened into buf.
static const rwkv_real *att_matrix(const rwkv_model *m, int which, int l, rwkv_real *buf) {
    size_t cc = (size_t)m->cfg.n_embd * m->cfg.n_embd, off = (size_t)l * cc;
    if (m->full) {
        const rwkv_real *full[3] = {m->w.att_receptance, m->w.att_key, m->w.att_value};
        if (m->v7) full[0] = m->v7->att_receptance, full[1] = m->v7->att_key, full[2] = m->v7->att_value;
        return full[which] + off;
    }
    rwkv_mat *const *views[3] = {&m->mats.att_receptance, &m->mats.att_key, &m->mats.att_value};
    const rwkv_mat *v = m->v7 ? RWKV_V7_MAT(m->v7, which, l) : &(*views[which])[l]; // RWKV_V7_R, _K, _V in order
    rwkv_tensors_convert(buf, v->data, v->type, cc);
    return buf;
}

// Scales and description of the /params dataset `name` just written in group g.
static int describe_param(rwkv_dump *d, hid_t g, const char *name) {
    hid_t ds = H5Dopen2(g, name, H5P_DEFAULT);
    int bad = ds < 0 || rwkv_dumpmeta_param(d->meta, ds, name);
    if (ds >= 0) H5Dclose(ds);
    return bad;
}

// /params/blocks/<l>/<param_vectors> and optionally the time-mix matrices.
static rwkv_status write_params(rwkv_dump *d, int matrices) {
    const rwkv_model *m = d->m;
    int L = m->cfg.n_layer, C = m->cfg.n_embd;
    double *v = rwkv_calloc((size_t)PARAM_VECTORS_MAX * C, sizeof *v, "dump params");
    int typed = matrices && !m->full; // matrices viewed in the file's type
    rwkv_real *mbuf = typed ? rwkv_calloc((size_t)C * C, sizeof *mbuf, "dump params") : NULL;
    if (!v || (typed && !mbuf)) {
        free(v);
        free(mbuf);
        return RWKV_ERR_NOMEM;
    }
    int bad = 0;
    hid_t g0 = H5Gcreate2(d->file, "/params", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    hid_t g1 = g0 < 0 ? -1 : make_ordered_group(g0, "blocks");
    bad |= g0 < 0 || g1 < 0;
    for (int l = 0; l < L && !bad; l++) {
        char name[32];
        snprintf(name, sizeof name, "%d", l);
        hid_t g = H5Gcreate2(g1, name, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
        const char *names[PARAM_VECTORS_MAX];
        int k = param_vectors(m, l, v, names);
        for (int i = 0; i < k; i++)
            bad |= rwkv_h5_write(g, names[i], RWKV_H5_REAL_FILE, H5T_NATIVE_DOUBLE, (hsize_t)C, 0, v + (size_t)i * C) ||
                   describe_param(d, g, names[i]);
        if (matrices) {
            static const char *const mat_names[3] = {"receptance", "key", "value"};
            for (int i = 0; i < 3; i++) // each is written before the next is widened into mbuf
                bad |= rwkv_h5_write(g, mat_names[i], RWKV_H5_REAL_FILE, RWKV_H5_REAL, C, C, att_matrix(m, i, l, mbuf)) ||
                       describe_param(d, g, mat_names[i]);
        }
        bad |= g < 0;
        if (g >= 0) H5Gclose(g);
    }
    if (g1 >= 0) H5Gclose(g1);
    if (g0 >= 0) H5Gclose(g0);
    free(v);
    free(mbuf);
    return bad ? fail(d, "writing /params") : RWKV_OK;
}

// Rows per chunk of a tap of width D: the dump's, or fewer so that a chunk stays within
// DUMP_CHUNK_BYTES (a /logits row alone is 200 KB at V = 50277).
static int stream_chunk_rows(int chunk_rows, int D) {
    int fit = (int)(DUMP_CHUNK_BYTES / ((size_t)D * sizeof(rwkv_real)));
    return fit < 1 ? 1 : fit < chunk_rows ? fit : chunk_rows;
}

// state_wkv rows are (H, N, N) matrices flattened row-major: attribute row_shape = [H, N, N].
static int row_shape_attr(hid_t dset, rwkv_config cfg) {
    int64_t shape[3] = {cfg.n_embd / cfg.head_size, cfg.head_size, cfg.head_size};
    return rwkv_h5_attr_array(dset, "row_shape", H5T_STD_I64LE, H5T_NATIVE_INT64, 3, shape);
}

// Whether tap t's dataset gets the shuffle + deflate filters under policy c.
static int tap_compressed(rwkv_dump_compress c, rwkv_tap t) {
    return c == RWKV_DUMP_COMPRESS_ALL || (c == RWKV_DUMP_COMPRESS_SMALL && t != RWKV_TAP_STATE_WKV);
}

static rwkv_status make_streams(rwkv_dump *d) {
    int L = d->m->cfg.n_layer;
    d->n_streams = (L + 1) * RWKV_TAP_N;
    d->streams = rwkv_calloc((size_t)d->n_streams, sizeof *d->streams, "dump streams");
    if (!d->streams) return RWKV_ERR_NOMEM;
    hid_t blocks = -1;
    rwkv_status st = RWKV_OK;
    for (int l = 0; l <= L && !st; l++) {
        hid_t g = d->file;
        char gname[32];
        snprintf(gname, sizeof gname, "%d", l);
        if (!layer_tapped(d, l)) continue; // no empty groups for untapped layers
        if (l < L && blocks < 0) blocks = make_ordered_group(d->file, "/blocks");
        if (l < L) g = blocks < 0 ? -1 : H5Gcreate2(blocks, gname, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
        if (g < 0) {
            st = fail(d, "creating a /blocks group");
            break;
        }
        for (int t = 0; t < RWKV_TAP_N && !st; t++) {
            if (!tap_stored(d, l, (rwkv_tap)t)) continue;
            stream *s = rwkv_calloc(1, sizeof *s, "dump stream");
            if (!s) { st = RWKV_ERR_NOMEM; break; }
            d->streams[(size_t)l * RWKV_TAP_N + t] = s;
            s->dset = -1;
            s->D = rwkv_tap_width((rwkv_tap)t, d->m->cfg);
            s->chunk_rows = stream_chunk_rows(d->chunk_rows, s->D);
            s->raw = !tap_compressed(d->compress, (rwkv_tap)t);
            rwkv_select_tap_name(s->name, sizeof s->name, l, L, (rwkv_tap)t);
            if ((s->pool = pool_of(d, chunk_bytes(s))) < 0) {
                st = rwkv_error_set(RWKV_ERR_NOMEM, "%s: out of memory for the chunk pools", d->path);
                break;
            }
            s->dset = make_extendible(g, RWKV_TAP_NAMES[t], RWKV_H5_REAL_FILE, (hsize_t)s->D,
                                      (hsize_t)s->chunk_rows, !s->raw);
            if (s->dset < 0) st = fail(d, s->name);
            else if (t == RWKV_TAP_STATE_WKV && row_shape_attr(s->dset, d->m->cfg)) st = fail(d, s->name);
            else if (rwkv_dumpmeta_tap(d->meta, s->dset, (rwkv_tap)t)) st = fail(d, s->name);
        }
        if (l < L) H5Gclose(g);
    }
    if (blocks >= 0) H5Gclose(blocks);
    d->n_threads = omp_get_max_threads();
    if (!st && !(d->zs = rwkv_calloc((size_t)d->n_threads, sizeof *d->zs, "dump compressors"))) st = RWKV_ERR_NOMEM;
    for (int i = 0; i < d->n_threads && !st; i++)
        if ((st = rwkv_deflate_init(&d->zs[i], 0))) // they code into zout (rwkv_deflate_chunk_to), not c->out
            st = rwkv_error_wrap(st, "%s: ", d->path);
    return st;
}

static rwkv_status make_meta(rwkv_dump *d) {
    hid_t g = H5Gcreate2(d->file, "/sequences", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    if (g < 0) return fail(d, "creating /sequences");
    d->d_offsets = make_extendible(g, "offsets", H5T_STD_I64LE, 0, DUMP_META_CHUNK, 1);
    d->d_tok_offsets = make_extendible(g, "token_offsets", H5T_STD_I64LE, 0, DUMP_META_CHUNK, 1);
    d->d_positions = make_extendible(g, "positions", H5T_STD_I64LE, 0, DUMP_META_CHUNK, 1);
    H5Gclose(g);
    d->d_tokens = make_extendible(d->file, "/tokens", H5T_STD_I32LE, 0, DUMP_META_CHUNK, 1);
    int64_t zero = 0;
    if (d->d_offsets < 0 || d->d_tok_offsets < 0 || d->d_positions < 0 || d->d_tokens < 0 ||
        rwkv_dumpmeta_rows(d->meta, d->d_positions) ||
        append(d->d_offsets, H5T_NATIVE_INT64, 0, 1, 0, &zero) ||
        append(d->d_tok_offsets, H5T_NATIVE_INT64, 0, 1, 0, &zero))
        return fail(d, "creating /sequences and /tokens");
    return RWKV_OK;
}

// A file access list for the latest file format, which SWMR needs.
static hid_t latest_fapl(void) {
    hid_t fapl = H5Pcreate(H5P_FILE_ACCESS);
    H5Pset_libver_bounds(fapl, H5F_LIBVER_LATEST, H5F_LIBVER_LATEST);
    return fapl;
}

// Creates the file at path, or, when an existing file is replaced, at a temporary beside it
// that a complete close renames over it: a failed run never destroys the old dump.
static rwkv_status create_file(rwkv_dump *d, const char *path, int force) {
    struct stat sb;
    if (force && stat(path, &sb) == 0 && !S_ISREG(sb.st_mode)) // HDF5 cannot write a device (and leaks when it tries)
        return rwkv_error_set(RWKV_ERR_IO, "%s: cannot write an HDF5 file there: not a regular file", path);
    if (force && stat(path, &sb) == 0) {
        rwkv_status st = rwkv_file_atomic_open(&d->out, path, 1, 0);
        if (st) return st;
        d->use_tmp = 1;
    }
    d->write_path = d->use_tmp ? d->out.tmp : d->path;
    hid_t fapl = latest_fapl();
    rwkv_status st = rwkv_h5_create(&d->file, d->write_path, force, fapl);
    H5Pclose(fapl);
    return st;
}

rwkv_status rwkv_dump_create(rwkv_dump **out, const char *path, const rwkv_model *m,
                             const uint32_t *mask, const rwkv_positions *pos, const rwkv_dump_opts *opts) {
    *out = NULL;
    rwkv_dump_opts none = {0};
    const rwkv_dump_opts *o = opts ? opts : &none;
    rwkv_dump *d = rwkv_calloc(1, sizeof *d, "dump");
    if (!d) return RWKV_ERR_NOMEM;
    d->file = d->d_offsets = d->d_tok_offsets = d->d_positions = d->d_tokens = -1;
    d->m = m;
    d->parallel = o->parallel;
    d->compress = o->compress;
    d->want_text = o->text;
    d->cancel = o->cancel;
    d->flush_bytes = (int64_t)(o->flush_mb > 0 ? o->flush_mb : DUMP_FLUSH_MB) << 20;
    clock_gettime(CLOCK_MONOTONIC, &d->last_flush);
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
    if (!st) st = create_file(d, path, o->force);
    if (!st) st = rwkv_dumpmeta_alloc(&d->meta, d->file, m->cfg);
    if (!st) st = write_attrs(d, o);
    if (!st) st = write_params(d, o->matrices);
    if (!st) st = make_meta(d);
    if (!st) st = make_streams(d);
    if (!st && rwkv_dumpmeta_finish(d->meta)) st = fail(d, "attaching the dimension scales");
    rwkv_dumpmeta_free(d->meta);
    d->meta = NULL;
    // From here on readers may follow the file, and a killed run leaves it readable up to the
    // last flush. No object or attribute may be created until close reopens the file.
    if (!st && H5Fstart_swmr_write(d->file) < 0) st = fail(d, "starting SWMR writing");
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

// Shuffles `run` rows into s's chunk from row q on; a run of many elements is split over the
// team (the hook runs on one thread, and the shuffle is most of a buffered tap's cost).
static void shuffle_rows(stream *s, int q, const rwkv_real *rows, int run) {
    size_t n = (size_t)s->chunk_rows * s->D, count = (size_t)run * s->D, at = (size_t)q * s->D;
    int parts = count >= DUMP_PAR_SHUFFLE_MIN ? omp_get_max_threads() : 1;
#pragma omp parallel for num_threads(parts) if (parts > 1)
    for (int p = 0; p < parts; p++) {
        size_t a = count * p / parts, b = count * (p + 1) / parts;
        rwkv_deflate_shuffle(s->cur, n, at + a, rows + a, b - a, sizeof(rwkv_real));
    }
}

rwkv_status rwkv_dump_tap(void *ctx, int layer, rwkv_tap tap, int64_t pos, int n, int D, rwkv_real *data) {
    rwkv_dump *d = ctx;
    stream *s = d->streams[(size_t)layer * RWKV_TAP_N + tap];
    if (!s) return RWKV_OK; // a caller's mask may be wider than the dump's
    if (D != s->D) return rwkv_error_set(RWKV_ERR_ARG, "%s: %s: rows of width %d, expected %d", d->path, s->name, D, s->D);
    rwkv_status st = select_rows(d, pos, n);
    if (st) return st;
    for (int k = 0; k < d->sel_k;) {
        if (s->raw && !s->ncur) { // whole chunks of consecutive rows go to the file as they are
            int run = 1;
            while (k + run < d->sel_k && d->sel[k + run] == d->sel[k] + run) run++;
            int nc = run / s->chunk_rows;
            if (nc && (st = write_chunks(d, s, (const unsigned char *)(data + (size_t)d->sel[k] * D), nc))) return st;
            k += nc * s->chunk_rows;
            if (nc) continue;
        }
        if (!s->cur && !(s->cur = slot_take(d, s->pool)))
            return rwkv_error_set(RWKV_ERR_NOMEM, "%s: out of memory for the %s buffer", d->path, s->name);
        int q = s->ncur, run = 1; // consecutive rows that fit in this chunk
        while (k + run < d->sel_k && q + run < s->chunk_rows && d->sel[k + run] == d->sel[k] + run) run++;
        const rwkv_real *rows = data + (size_t)d->sel[k] * D;
        if (s->raw) memcpy(s->cur + (size_t)q * D * sizeof(rwkv_real), rows, (size_t)run * D * sizeof(rwkv_real));
        else shuffle_rows(s, q, rows, run);
        s->ncur += run;
        k += run;
        if (s->ncur == s->chunk_rows && (st = queue_chunk(d, s))) return st;
        // Queued chunks wait for the next raw rows or the end of the forward call; a call
        // with more than this many bytes of them writes them here.
        if (d->pending >= DUMP_PENDING_BYTES && (st = write_chunks(d, NULL, NULL, 0))) return st;
    }
    return RWKV_OK;
}

rwkv_hook rwkv_dump_hook(rwkv_dump *d) {
    rwkv_hook h = {.mask = d->mask, .fn = rwkv_dump_tap, .ctx = d, .pos = 0};
    return h;
}

// Flushes the file to disk (readers see everything written so far) when `due`.
static rwkv_status flush_file(rwkv_dump *d, int due) {
    if (!due) return RWKV_OK;
    if (H5Fflush(d->file, H5F_SCOPE_LOCAL) < 0) return fail(d, "flushing");
    d->unflushed = 0;
    clock_gettime(CLOCK_MONOTONIC, &d->last_flush);
    return RWKV_OK;
}

static double since_flush(const rwkv_dump *d) {
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (double)(now.tv_sec - d->last_flush.tv_sec) + 1e-9 * (double)(now.tv_nsec - d->last_flush.tv_nsec);
}

// Appends the tokens of one forward call (positions t0 .. t0+n-1 of a sequence of T) and the
// positions of the rows it selected, so a killed run's bookkeeping reaches its last flush.
static rwkv_status append_call(rwkv_dump *d, const int *tokens, int64_t t0, int64_t n, int64_t T) {
    int64_t k = 0;
    for (int64_t t = t0; t < t0 + n; t++)
        if (rwkv_select_has(&d->pos, t, T)) d->posbuf[k++] = t;
    if (append(d->d_positions, H5T_NATIVE_INT64, d->n_rows, k, 0, d->posbuf) ||
        append(d->d_tokens, H5T_NATIVE_INT, d->n_tokens, n, 0, tokens))
        return fail(d, "appending /tokens and /sequences/positions");
    d->n_rows += k;
    d->n_tokens += n;
    return RWKV_OK;
}

// Closes the sequence: its offsets, its text (kept for close), a flush.
static rwkv_status end_sequence(rwkv_dump *d, const char *text) {
    char **tx = realloc(d->texts, ((size_t)d->n_seq + 1) * sizeof *tx);
    if (!tx) return rwkv_error_set(RWKV_ERR_NOMEM, "%s: out of memory for the prompts", d->path);
    d->texts = tx;
    if (!(tx[d->n_seq] = strdup(text ? text : "")))
        return rwkv_error_set(RWKV_ERR_NOMEM, "%s: out of memory for the prompts", d->path);
    if (append(d->d_offsets, H5T_NATIVE_INT64, d->n_seq + 1, 1, 0, &d->n_rows) ||
        append(d->d_tok_offsets, H5T_NATIVE_INT64, d->n_seq + 1, 1, 0, &d->n_tokens)) {
        free(tx[d->n_seq]);
        return fail(d, "appending /sequences/offsets");
    }
    d->n_seq++;
    return flush_file(d, d->unflushed >= d->flush_bytes || since_flush(d) >= DUMP_FLUSH_SECONDS);
}

// Stops the run at token t of the current sequence: what was run is kept as a shorter
// sequence, and close records stopped_at.
static rwkv_status stop(rwkv_dump *d, int64_t t, int64_t T, const char *text) {
    d->stopped = 1;
    d->stop_seq = d->n_seq;
    d->stop_pos = t;
    rwkv_status st = t > 0 ? end_sequence(d, text) : RWKV_OK;
    if (st) return st;
    return rwkv_error_set(RWKV_ERR_INTERRUPTED, "%s: interrupted in sequence %lld after %lld of %lld tokens", d->path,
                          (long long)d->stop_seq, (long long)t, (long long)T);
}

rwkv_status rwkv_dump_run(rwkv_dump *d, rwkv_state *state, rwkv_workspace *ws, const int *tokens,
                          int64_t T, const char *text, rwkv_hook *hook) {
    if (d->failed) return rwkv_error_set(RWKV_ERR_IO, "%s: an earlier write failed; the dump is incomplete", d->path);
    if (d->stopped) return rwkv_error_set(RWKV_ERR_INTERRUPTED, "%s: the dump was stopped", d->path);
    const rwkv_model *m = d->m;
    int L = m->cfg.n_layer, V = m->cfg.n_vocab;
    int want_logits = d->mask[L] >> RWKV_TAP_LOGITS & 1u;
    if (want_logits && d->logits_T < ws->max_T) {
        free(d->logits);
        d->logits_T = 0;
        if (!(d->logits = rwkv_calloc_huge((size_t)ws->max_T * V, sizeof(rwkv_real), "dump logits"))) // MBs
            return RWKV_ERR_NOMEM;
        d->logits_T = ws->max_T;
    }
    rwkv_hook own = rwkv_dump_hook(d);
    rwkv_hook *h = hook ? hook : &own;
    if (d->iv) rwkv_intervene_list_chain(d->iv, h);
    d->cur_T = T;
    d->sel_n = -1;
    rwkv_status st = RWKV_OK;
    // Steps of one forward call; the flush after each compresses the full chunks of every
    // tap together. Without taps the run is the plain pass.
    int64_t step = ws->max_T;
    st = reserve(d, ws->max_T);
    int64_t t = 0;
    for (; t < T && !st; t += step) {
        if (d->cancel && *d->cancel) break;
        int64_t n = T - t < step ? T - t : step;
        h->pos = t;
        rwkv_logits_mode lm = want_logits ? RWKV_LOGITS_ALL : RWKV_LOGITS_NONE;
        if (d->iv) // the list applies the interventions, then hands the rows on to h
            st = rwkv_intervene_forward(m, state, tokens + t, n, t, d->logits, lm, d->iv, ws, !d->parallel);
        else
            st = d->parallel ? rwkv_forward_par(m, state, tokens + t, n, d->logits, lm, h, ws)
                             : rwkv_forward_seq(m, state, tokens + t, n, d->logits, lm, h, ws);
        if (!st) st = flush(d, 0);
        if (!st) st = append_call(d, tokens + t, t, n, T);
        if (!st) st = flush_file(d, d->unflushed >= d->flush_bytes);
    }
    if (d->iv) rwkv_intervene_list_chain(d->iv, NULL); // h may live on this stack frame
    if (!st) st = t < T ? stop(d, t, T, text) : end_sequence(d, text);
    if (st && st != RWKV_ERR_INTERRUPTED) d->failed = 1;
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
            free(s->cur);
            free(s);
        }
        free(d->streams);
    }
    hid_t ids[] = {d->d_offsets, d->d_tok_offsets, d->d_positions, d->d_tokens};
    for (size_t i = 0; i < sizeof ids / sizeof ids[0]; i++)
        if (ids[i] >= 0) H5Dclose(ids[i]);
    d->d_offsets = d->d_tok_offsets = d->d_positions = d->d_tokens = -1;
    for (int i = 0; d->zs && i < d->n_threads; i++) rwkv_deflate_free(&d->zs[i]);
    free(d->zs);
    for (int i = 0; d->jobs && i < d->n_jobs; i++) free(d->jobs[i].slot); // a failed write's
    free(d->jobs);
    for (int p = 0; p < d->n_pools; p++) {
        for (int i = 0; i < d->pools[p].n_free; i++) free(d->pools[p].free[i]);
        free(d->pools[p].free);
    }
    free(d->pools);
    free(d->zout);
    free(d->mask);
    free(d->sel);
    free(d->logits);
    free(d->posbuf);
    rwkv_select_positions_free(&d->pos);
}

static void free_texts(rwkv_dump *d) {
    for (int64_t i = 0; d->texts && i < d->n_seq; i++) free(d->texts[i]);
    free(d->texts);
}

// Closes the SWMR file, keeping the message of an earlier failure st.
static rwkv_status close_file(rwkv_dump *d, rwkv_status st) {
    char keep[RWKV_ERROR_MAX];
    snprintf(keep, sizeof keep, "%s", rwkv_error_message());
    rwkv_status cst = rwkv_h5_close(d->file, d->path);
    d->file = -1;
    if (st) return rwkv_error_set(st, "%s", keep);
    return cst;
}

// Reopens the closed file (no longer SWMR, so objects may be created) and writes what
// completes it: /text, stopped_at, time_written, and last, after a flush, complete = 1.
static rwkv_status finish(rwkv_dump *d) {
    hid_t fapl = latest_fapl();
    hid_t f = H5Fopen(d->write_path, H5F_ACC_RDWR, fapl);
    H5Pclose(fapl);
    if (f < 0) return rwkv_h5_fail(d->path, "reopening to finish");
    int bad = 0;
    if (d->want_text) {
        hid_t t = H5Tcopy(H5T_C_S1);
        H5Tset_size(t, H5T_VARIABLE);
        H5Tset_cset(t, H5T_CSET_UTF8);
        bad |= rwkv_h5_write(f, "/text", t, t, (hsize_t)d->n_seq, 0, d->texts);
        H5Tclose(t);
    }
    if (d->stopped) {
        int64_t at[2] = {d->stop_seq, d->stop_pos};
        bad |= rwkv_h5_attr_array(f, "stopped_at", H5T_STD_I64LE, H5T_NATIVE_INT64, 2, at);
    }
    char now[64];
    rwkv_h5_now(now, sizeof now);
    bad |= rwkv_h5_attr_str(f, "time_written", now) || H5Fflush(f, H5F_SCOPE_LOCAL) < 0;
    if (!d->stopped) bad |= rwkv_h5_attr_i64(f, "complete", 1);
    rwkv_status st = bad ? rwkv_h5_fail(d->path, "finishing the file") : RWKV_OK;
    rwkv_status cst = rwkv_h5_close(f, d->path);
    return st ? st : cst;
}

rwkv_status rwkv_dump_close(rwkv_dump *d) {
    if (!d) return RWKV_OK;
    rwkv_status st = RWKV_OK;
    if (d->failed) st = rwkv_error_set(RWKV_ERR_IO, "%s: an earlier write failed; the dump is incomplete", d->path);
    if (!st) st = flush(d, 1);
    for (int i = 0; !st && i < d->n_streams; i++) {
        stream *s = d->streams[i];
        if (s && s->rows != d->n_rows)
            st = rwkv_error_set(RWKV_ERR_IO, "%s: %s has %lld rows, expected %lld (a run was cut short)",
                                d->path, s->name, (long long)s->rows, (long long)d->n_rows);
    }
    release(d);
    st = close_file(d, st);
    if (!st) st = finish(d);
    if (d->use_tmp && !st && !d->stopped) st = rwkv_file_atomic_commit(&d->out);
    else if (d->use_tmp && st) rwkv_file_atomic_abort(&d->out);
    long long seq = d->stop_seq, pos = d->stop_pos;
    if (!st && d->stopped && d->use_tmp)
        st = rwkv_error_set(RWKV_ERR_INTERRUPTED, "%s: interrupted in sequence %lld after %lld tokens: the partial "
                            "dump (complete=0) is %s; %s is unchanged", d->path, seq, pos, d->write_path, d->path);
    else if (!st && d->stopped)
        st = rwkv_error_set(RWKV_ERR_INTERRUPTED, "%s: interrupted in sequence %lld after %lld tokens: the file holds "
                            "everything before that point, with complete=0", d->path, seq, pos);
    free_texts(d);
    free(d);
    return st;
}

void rwkv_dump_free(rwkv_dump *d) {
    if (!d) return;
    if (d->m) release(d);
    else free(d->mask);
    close_file(d, RWKV_ERR_IO); // keeps the caller's message
    if (d->use_tmp) rwkv_file_atomic_abort(&d->out);
    free_texts(d);
    H5Eclear2(H5E_DEFAULT);
    free(d);
}

// ---- reader ----

// A killed writer leaves the file's SWMR-write flags set; HDF5 then opens it only as an
// SWMR reader.
static rwkv_status open_file(hid_t *out, const char *path) {
    rwkv_status st = rwkv_h5_open(out, path);
    if (st != RWKV_ERR_FORMAT) return st;
    char keep[RWKV_ERROR_MAX];
    snprintf(keep, sizeof keep, "%s", rwkv_error_message());
    // HDF5's default of 100 attempts per metadata read, with backoff sleeps, lets a corrupt
    // file stall the open for seconds; a writer's torn flush needs only a retry or two.
    hid_t fapl = H5Pcreate(H5P_FILE_ACCESS);
    if (fapl >= 0) H5Pset_metadata_read_attempts(fapl, DUMP_SWMR_READ_ATTEMPTS);
    hid_t f = H5Fopen(path, H5F_ACC_RDONLY | H5F_ACC_SWMR_READ, fapl >= 0 ? fapl : H5P_DEFAULT);
    if (fapl >= 0) H5Pclose(fapl);
    H5Eclear2(H5E_DEFAULT);
    if (f < 0) return rwkv_error_set(st, "%s", keep);
    *out = f;
    return RWKV_OK;
}

// A whole 1-D integer dataset, malloc'd (at least one element), and its length.
static rwkv_status read_index(const rwkv_dump_reader *r, const char *name, hid_t mem_type, size_t elem, void **out,
                              int64_t *n) {
    *out = NULL;
    *n = 0;
    hid_t f = (hid_t)r->file;
    if (!rwkv_h5_exists(f, name)) return rwkv_error_set(RWKV_ERR_FORMAT, "%s: %s is missing", r->path, name);
    hid_t d = H5Dopen2(f, name, H5P_DEFAULT);
    if (d < 0) return rwkv_h5_fail(r->path, name);
    hid_t sp = H5Dget_space(d);
    hsize_t dim = 0;
    int nd = sp >= 0 ? H5Sget_simple_extent_ndims(sp) : -1;
    if (nd == 1) H5Sget_simple_extent_dims(sp, &dim, NULL);
    if (sp >= 0) H5Sclose(sp);
    rwkv_status st = RWKV_OK;
    void *buf = NULL;
    if (nd != 1) st = rwkv_error_set(RWKV_ERR_FORMAT, "%s: %s has %d dimensions, expected 1", r->path, name, nd);
    else if (!rwkv_h5_numeric(d)) st = rwkv_error_set(RWKV_ERR_FORMAT, "%s: %s does not hold numbers", r->path, name);
    else if (dim > (hsize_t)(SIZE_MAX / 2 / elem) || !(buf = rwkv_calloc((size_t)(dim ? dim : 1), elem, name)))
        st = rwkv_error_set(RWKV_ERR_NOMEM, "%s: %s: out of memory for %llu entries", r->path, name,
                            (unsigned long long)dim);
    else if (dim && H5Dread(d, mem_type, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf) < 0) st = rwkv_h5_fail(r->path, name);
    H5Dclose(d);
    if (st) {
        free(buf);
        return st;
    }
    *out = buf;
    *n = (int64_t)dim;
    return RWKV_OK;
}

static void tap_path(char *buf, size_t size, const rwkv_dump_reader *r, int layer, const char *name) {
    if (layer >= r->cfg.n_layer) snprintf(buf, size, "/%.*s", RWKV_DUMP_NAME_MAX, name);
    else snprintf(buf, size, "/blocks/%d/%.*s", layer, RWKV_DUMP_NAME_MAX, name);
}

// Rows and columns of the 2-D dataset at p; 0 if there is none.
static int dims_2d(hid_t f, const char *p, hsize_t dims[2]) {
    if (!rwkv_h5_exists(f, p)) return 0;
    hid_t d = H5Dopen2(f, p, H5P_DEFAULT);
    if (d < 0) return 0;
    hid_t sp = H5Dget_space(d);
    int nd = sp >= 0 ? H5Sget_simple_extent_ndims(sp) : -1;
    if (nd == 2) H5Sget_simple_extent_dims(sp, dims, NULL);
    if (sp >= 0) H5Sclose(sp);
    H5Dclose(d);
    H5Eclear2(H5E_DEFAULT);
    return nd == 2 && dims[1] <= INT32_MAX;
}

// The rows every tap dataset holds (a killed run leaves them at different lengths).
static int64_t shortest_tap(const rwkv_dump_reader *r, int64_t rows) {
    char names[RWKV_DUMP_TAPS_MAX][RWKV_DUMP_NAME_MAX], p[160];
    for (int l = 0; l <= r->cfg.n_layer; l++) {
        int k = rwkv_dump_taps(r, l, names, RWKV_DUMP_TAPS_MAX);
        for (int i = 0; i < k; i++) {
            hsize_t dims[2];
            tap_path(p, sizeof p, r, l, names[i]);
            if (dims_2d((hid_t)r->file, p, dims) && (int64_t)dims[0] < rows) rows = (int64_t)dims[0];
        }
    }
    return rows;
}

// Offsets start at 0, never decrease and stay within their datasets.
static rwkv_status check_offsets(const rwkv_dump_reader *r, const int64_t *off, int64_t n, int64_t limit,
                                 const char *name, const char *of) {
    for (int64_t s = 0; s < n; s++)
        if ((s == 0 && off[0] != 0) || (s > 0 && off[s] < off[s - 1]) || off[s] > limit)
            return rwkv_error_set(RWKV_ERR_FORMAT, "%s: %s[%lld] = %lld: offsets must rise from 0 to at most the %lld %s",
                                  r->path, name, (long long)s, (long long)off[s], (long long)limit, of);
    return RWKV_OK;
}

// Cuts the index to the `usable` rows that every tap holds: the sequences wholly below
// them, then the one they cut (a finished sequence with rows missing, or the unfinished
// one a killed run was in, whose tokens are all of /tokens after the finished ones).
static rwkv_status fit_index(rwkv_dump_reader *r, int64_t S, int64_t usable) {
    int64_t *off = realloc(r->offsets, (size_t)(S + 2) * sizeof *off);
    if (off) r->offsets = off;
    int64_t *tok = realloc(r->token_offsets, (size_t)(S + 2) * sizeof *tok);
    if (tok) r->token_offsets = tok;
    if (!off || !tok) return rwkv_error_set(RWKV_ERR_NOMEM, "%s: out of memory for the sequence index", r->path);
    int64_t k = 0;
    while (k < S && off[k + 1] <= usable) k++;
    if (usable > off[k]) {
        tok[k + 1] = k < S ? tok[k + 1] : r->n_tokens;
        off[++k] = usable;
    }
    r->n_seq = k;
    r->n_rows = off[k];
    return RWKV_OK;
}

// Every row's position lies inside its sequence and rises within it.
static rwkv_status check_positions(const rwkv_dump_reader *r) {
    for (int64_t s = 0; s < r->n_seq; s++) {
        int64_t len = r->token_offsets[s + 1] - r->token_offsets[s];
        for (int64_t i = r->offsets[s]; i < r->offsets[s + 1]; i++) {
            int64_t p = r->positions[i];
            if (p < 0 || p >= len || (i > r->offsets[s] && p <= r->positions[i - 1]))
                return rwkv_error_set(RWKV_ERR_FORMAT, "%s: /sequences/positions[%lld] = %lld: not a rising position "
                                      "within sequence %lld of %lld tokens", r->path, (long long)i, (long long)p,
                                      (long long)s, (long long)len);
        }
    }
    return RWKV_OK;
}

// Reads and checks /sequences and /tokens; a file whose run did not finish is cut to the rows
// every dataset holds.
static rwkv_status read_sequences(rwkv_dump_reader *r) {
    int64_t n_off = 0, n_tok_off = 0, n_pos = 0;
    rwkv_status st = read_index(r, "/sequences/offsets", H5T_NATIVE_INT64, sizeof(int64_t), (void **)&r->offsets, &n_off);
    if (!st) st = read_index(r, "/sequences/token_offsets", H5T_NATIVE_INT64, sizeof(int64_t),
                             (void **)&r->token_offsets, &n_tok_off);
    if (!st) st = read_index(r, "/sequences/positions", H5T_NATIVE_INT64, sizeof(int64_t), (void **)&r->positions, &n_pos);
    if (!st) st = read_index(r, "/tokens", H5T_NATIVE_INT, sizeof(int), (void **)&r->tokens, &r->n_tokens);
    if (st) return st;
    if (n_off < 1 || n_tok_off != n_off)
        return rwkv_error_set(RWKV_ERR_FORMAT, "%s: /sequences/offsets has %lld entries and token_offsets %lld: "
                              "expected S + 1 of each", r->path, (long long)n_off, (long long)n_tok_off);
    int64_t S = n_off - 1;
    // A killed run's metadata reaches the file in no set order: the index may name sequences
    // whose rows or tokens are not there. Those entries are dropped, as unfinished.
    while (!r->complete && S > 0 && (r->offsets[S] > n_pos || r->token_offsets[S] > r->n_tokens)) S--;
    n_off = S + 1;
    if ((st = check_offsets(r, r->offsets, n_off, n_pos, "/sequences/offsets", "rows")) ||
        (st = check_offsets(r, r->token_offsets, n_off, r->n_tokens, "/sequences/token_offsets", "tokens")))
        return st;
    int64_t usable = shortest_tap(r, n_pos);
    if (r->complete && (usable != n_pos || r->offsets[S] != n_pos || r->token_offsets[S] != r->n_tokens))
        return rwkv_error_set(RWKV_ERR_FORMAT, "%s: a complete dump with %lld positions, %lld rows in its sequences, "
                              "%lld in its shortest tap, %lld of %lld tokens in sequences: inconsistent", r->path,
                              (long long)n_pos, (long long)r->offsets[S], (long long)usable,
                              (long long)r->token_offsets[S], (long long)r->n_tokens);
    if ((st = fit_index(r, S, usable))) return st;
    return check_positions(r);
}

typedef struct {
    rwkv_dump_reader **out;
    const char *path;
} dump_open_args;

// The root attributes: schema, version, shape, state.
static rwkv_status read_attrs(rwkv_dump_reader *r) {
    hid_t f = (hid_t)r->file;
    char schema[64];
    int64_t ver = 0, v[6] = {0};
    if (rwkv_h5_get_str(f, "schema", schema, sizeof schema) || strcmp(schema, RWKV_DUMP_SCHEMA) ||
        rwkv_h5_get_i64(f, "schema_version", &ver))
        return rwkv_error_set(RWKV_ERR_FORMAT, "%s: not an rwkvscope dump (no schema attribute '%s')", r->path,
                              RWKV_DUMP_SCHEMA);
    if (ver > RWKV_DUMP_SCHEMA_VERSION || ver < 1)
        return rwkv_error_set(RWKV_ERR_UNSUPPORTED,
                              "%s: dump schema version %lld is not supported: this rwkvscope %s reads versions 1 to %d "
                              "(a newer rwkvscope wrote it?)",
                              r->path, (long long)ver, RWKVSCOPE_VERSION, RWKV_DUMP_SCHEMA_VERSION);
    if (rwkv_h5_get_i64(f, "n_layer", &v[0]) || rwkv_h5_get_i64(f, "n_embd", &v[1]) ||
        rwkv_h5_get_i64(f, "n_ffn", &v[2]) || rwkv_h5_get_i64(f, "n_vocab", &v[3]) ||
        rwkv_h5_get_i64(f, "complete", &v[4]) || rwkv_h5_get_i64(f, "precision", &v[5]))
        return rwkv_error_set(RWKV_ERR_FORMAT, "%s: dump is missing shape attributes", r->path);
    for (int i = 0; i < 4; i++)
        if (v[i] < 1 || v[i] > INT32_MAX) v[i] = 0; // refused by the config check below
    r->schema_version = (int)ver;
    r->cfg = (rwkv_config){.n_layer = (int)v[0], .n_embd = (int)v[1], .n_ffn = (int)v[2], .n_vocab = (int)v[3]};
    if (rwkv_weights_check_config(r->cfg)) return rwkv_error_wrap(RWKV_ERR_FORMAT, "%s: ", r->path);
    int64_t version = 4, head_size = 0; // schema 1: RWKV-4 only
    if (H5Aexists(f, "rwkv_version") > 0 && rwkv_h5_get_i64(f, "rwkv_version", &version))
        return rwkv_error_set(RWKV_ERR_FORMAT, "%s: attribute rwkv_version is not an integer", r->path);
    rwkv_config heads = {.version = version >= 0 && version <= INT32_MAX ? (int)version : -1};
    if (version != 4 && !RWKV_HAS_HEADS(heads))
        return rwkv_error_set(RWKV_ERR_UNSUPPORTED, "%s: rwkv_version %lld is not one this rwkvscope reads "
                              "(4, 5, 6, 7)", r->path, (long long)version);
    if (RWKV_HAS_HEADS(heads)) {
        if (rwkv_h5_get_i64(f, "head_size", &head_size) || head_size < 1 || head_size > r->cfg.n_embd ||
            r->cfg.n_embd % head_size)
            return rwkv_error_set(RWKV_ERR_FORMAT, "%s: an RWKV-%lld dump needs a head_size dividing n_embd %d",
                                  r->path, (long long)version, r->cfg.n_embd);
        r->cfg.version = (int)version;
        r->cfg.head_size = (int)head_size;
    }
    r->complete = v[4] == 1;
    r->precision = (int)v[5];
    rwkv_h5_get_str(f, "mode", r->mode, sizeof r->mode);
    return RWKV_OK;
}

static rwkv_status open_dump(void *ctx) {
    rwkv_dump_reader **out = ((dump_open_args *)ctx)->out;
    const char *path = ((dump_open_args *)ctx)->path;
    *out = NULL;
    hid_t f;
    rwkv_status st = open_file(&f, path);
    if (st) return st;
    rwkv_dump_reader *r = rwkv_calloc(1, sizeof *r, "dump reader");
    if (!r) {
        H5Fclose(f);
        return RWKV_ERR_NOMEM;
    }
    r->file = f;
    snprintf(r->path, sizeof r->path, "%s", path);
    st = read_attrs(r);
    if (!st) st = read_sequences(r);
    if (st) {
        rwkv_dump_reader_free(r);
        return st;
    }
    *out = r;
    return RWKV_OK;
}

rwkv_status rwkv_dump_open(rwkv_dump_reader **out, const char *path) {
    rwkv_h5_quiet();
    dump_open_args a = {out, path};
    return rwkv_h5_guarded(path, "dump", rwkv_h5_budget(path, DUMP_OPEN_BUDGET_S), open_dump, &a);
}

void rwkv_dump_reader_free(rwkv_dump_reader *r) {
    if (!r) return;
    if (r->file > 0) H5Fclose((hid_t)r->file);
    free(r->offsets);
    free(r->token_offsets);
    free(r->positions);
    free(r->tokens);
    free(r);
}

typedef struct {
    char (*names)[RWKV_DUMP_NAME_MAX];
    int n, max;
} name_list;

static herr_t collect_name(hid_t g, const char *name, const H5L_info_t *info, void *ctx) {
    (void)g;
    (void)info;
    name_list *l = ctx;
    if (l->n < l->max && strlen(name) < RWKV_DUMP_NAME_MAX) snprintf(l->names[l->n++], RWKV_DUMP_NAME_MAX, "%s", name);
    return 0;
}

int rwkv_dump_taps(const rwkv_dump_reader *r, int layer, char (*names)[RWKV_DUMP_NAME_MAX], int max) {
    hid_t f = (hid_t)r->file;
    if (layer < 0 || layer > r->cfg.n_layer) return 0;
    if (layer == r->cfg.n_layer) { // the globals live at the root, among the bookkeeping
        int n = 0;
        for (int t = RWKV_TAP_N_BLOCK; t < RWKV_TAP_N && n < max; t++)
            if (H5Lexists(f, RWKV_TAP_NAMES[t], H5P_DEFAULT) > 0)
                snprintf(names[n++], RWKV_DUMP_NAME_MAX, "%s", RWKV_TAP_NAMES[t]);
        H5Eclear2(H5E_DEFAULT);
        return n;
    }
    char g[32];
    snprintf(g, sizeof g, "/blocks/%d", layer);
    if (!rwkv_h5_exists(f, g)) return 0;
    name_list l = {names, 0, max};
    hid_t grp = H5Gopen2(f, g, H5P_DEFAULT);
    if (grp < 0) return 0;
    H5Literate(grp, H5_INDEX_NAME, H5_ITER_INC, NULL, collect_name, &l);
    H5Gclose(grp);
    H5Eclear2(H5E_DEFAULT);
    return l.n;
}

int rwkv_dump_width_of(const rwkv_dump_reader *r, int layer, const char *name) {
    char p[160];
    hsize_t dims[2] = {0, 0};
    if (layer < 0 || layer > r->cfg.n_layer || strchr(name, '/') || strlen(name) >= RWKV_DUMP_NAME_MAX) return 0;
    tap_path(p, sizeof p, r, layer, name);
    return dims_2d((hid_t)r->file, p, dims) ? (int)dims[1] : 0;
}

int rwkv_dump_width(const rwkv_dump_reader *r, int layer, rwkv_tap tap) {
    return rwkv_dump_width_of(r, layer, RWKV_TAP_NAMES[tap]);
}

static rwkv_status read_named(const rwkv_dump_reader *r, int layer, const char *name, int64_t row0, int64_t n,
                              hid_t mem_type, void *out) {
    char p[160];
    tap_path(p, sizeof p, r, layer, name);
    int D = rwkv_dump_width_of(r, layer, name);
    if (!D) return rwkv_error_set(RWKV_ERR_SHAPE, "%s: %s: not in the dump", r->path, p);
    hid_t d = H5Dopen2((hid_t)r->file, p, H5P_DEFAULT);
    hid_t fs = H5Dget_space(d);
    hsize_t dims[2];
    H5Sget_simple_extent_dims(fs, dims, NULL);
    rwkv_status st = RWKV_OK;
    if (row0 < 0 || n < 0 || (hsize_t)row0 > dims[0] || (hsize_t)n > dims[0] - (hsize_t)row0) {
        st = rwkv_error_set(RWKV_ERR_ARG, "%s: %s: rows [%lld, %lld) outside [0, %llu)", r->path, p,
                            (long long)row0, (long long)(row0 + n), (unsigned long long)dims[0]);
    } else if (!rwkv_h5_numeric(d)) {
        st = rwkv_error_set(RWKV_ERR_FORMAT, "%s: %s does not hold numbers", r->path, p);
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

rwkv_status rwkv_dump_read_tap(const rwkv_dump_reader *r, int layer, const char *name, int64_t row0, int64_t n,
                               rwkv_real *out) {
    return read_named(r, layer, name, row0, n, RWKV_H5_REAL, out);
}

rwkv_status rwkv_dump_read_tap_f64(const rwkv_dump_reader *r, int layer, const char *name, int64_t row0, int64_t n,
                                   double *out) {
    return read_named(r, layer, name, row0, n, H5T_NATIVE_DOUBLE, out);
}

rwkv_status rwkv_dump_read_rows(const rwkv_dump_reader *r, int layer, rwkv_tap tap, int64_t row0,
                                int64_t n, rwkv_real *out) {
    return read_named(r, layer, RWKV_TAP_NAMES[tap], row0, n, RWKV_H5_REAL, out);
}

rwkv_status rwkv_dump_read_rows_f64(const rwkv_dump_reader *r, int layer, rwkv_tap tap, int64_t row0,
                                    int64_t n, double *out) {
    return read_named(r, layer, RWKV_TAP_NAMES[tap], row0, n, H5T_NATIVE_DOUBLE, out);
}

rwkv_status rwkv_dump_seq_rows(const rwkv_dump_reader *r, int64_t seq, int64_t p0, int64_t p1, int64_t *row0,
                               int64_t *n) {
    if (seq < 0 || seq >= r->n_seq)
        return rwkv_error_set(RWKV_ERR_ARG, "%s: sequence %lld out of range (the dump holds %lld)", r->path,
                              (long long)seq, (long long)r->n_seq);
    int64_t a = r->offsets[seq], b = r->offsets[seq + 1];
    while (a < b && r->positions[a] < p0) a++; // positions rise within a sequence
    int64_t e = a;
    while (e < b && (p1 < 0 || r->positions[e] < p1)) e++;
    *row0 = a;
    *n = e - a;
    return RWKV_OK;
}

// A malloc'd copy of n entries of src.
static rwkv_status copy_of(const rwkv_dump_reader *r, const void *src, int64_t n, size_t elem, void **out) {
    *out = rwkv_calloc((size_t)(n ? n : 1), elem, r->path);
    if (!*out) return RWKV_ERR_NOMEM;
    memcpy(*out, src, (size_t)n * elem);
    return RWKV_OK;
}

rwkv_status rwkv_dump_read_offsets(const rwkv_dump_reader *r, int64_t **out) {
    return copy_of(r, r->offsets, r->n_seq + 1, sizeof **out, (void **)out);
}

rwkv_status rwkv_dump_read_token_offsets(const rwkv_dump_reader *r, int64_t **out) {
    return copy_of(r, r->token_offsets, r->n_seq + 1, sizeof **out, (void **)out);
}

rwkv_status rwkv_dump_read_positions(const rwkv_dump_reader *r, int64_t **out) {
    return copy_of(r, r->positions, r->n_rows, sizeof **out, (void **)out);
}

rwkv_status rwkv_dump_read_tokens(const rwkv_dump_reader *r, int **out) {
    return copy_of(r, r->tokens, r->n_tokens, sizeof **out, (void **)out);
}

int rwkv_dump_attr_i64(const rwkv_dump_reader *r, const char *name, int64_t *out) {
    return rwkv_h5_get_i64((hid_t)r->file, name, out);
}

int rwkv_dump_attr_str(const rwkv_dump_reader *r, const char *name, char *buf, size_t size) {
    return rwkv_h5_get_str((hid_t)r->file, name, buf, size);
}
