// dump.h: HDF5 dumps of tapped intermediates, written incrementally by the forward hook.
//
// Schema "rwkvscope-dump", version RWKV_DUMP_SCHEMA_VERSION (docs/dump-format.md is the
// long form). N = selected positions of all sequences, S = sequences, T = total tokens.
//   /blocks/<l>/<tap>        float32 [N, D] (float64 in a PRECISION=64 build); D = C, or F
//                            for ffn_k. Row i belongs to position positions[i] of the
//                            sequence s with offsets[s] <= i < offsets[s+1].
//   /resid_out               [N, C]  the residual after the last block (before ln_out)
//   /logits                  [N, V]
//   /sequences/offsets       int64 [S+1] row offsets of each sequence
//   /sequences/token_offsets int64 [S+1] offsets of each sequence in /tokens
//   /sequences/positions     int64 [N]   each row's position within its sequence
//   /tokens                  int32 [T]
//   /text                    string [S]  the prompts (only when the input was text)
//   /params/blocks/<l>/{time_decay,time_first,decay,half_life} [C]
//                            decay = exp(-exp(time_decay)) per token,
//                            half_life = ln 2 / exp(time_decay) in tokens
//   /params/blocks/<l>/{receptance,key,value} [C, C]  only when asked (opts.matrices)
//   RWKV-7: block taps of that version (att_w, att_a, att_g, att_kk, v_first, and state_wkv
//   [N, H*N*N] with attribute row_shape [H, N, N]); params {w0,decay_bias,half_life_bias} [C]
//   /dims/{channel,ffn_channel,token,head,state_*}  int64 index datasets: HDF5 dimension
//                            scales (dumpmeta.h) naming each axis; every dataset has axis
//                            labels, scales, a description and (where one applies) units
//   /blocks/<l> exists only for tapped layers; layer groups track creation order.
// Root attributes: schema, schema_version, complete (0 until closed cleanly), model_path,
// model_format, n_layer, n_embd, n_ffn, n_vocab, rwkv_version (4 or 7; RWKV-7 also n_head,
// head_size), mode ("sequential"/"parallel"), precision
// (32/64), rwkvscope_version, command_line, tokenizer, taps, positions, time_written (UTC).
// Tap datasets are chunked [chunk_rows, D] (fewer rows for taps wider than 1 MiB / chunk_rows),
// shuffled and deflated, extendible in N; the writer holds one forward call's rows per tap,
// so memory stays flat however long the input.
#ifndef RWKV_DUMP_H
#define RWKV_DUMP_H

#include "../compute/forward.h"
#include "intervene.h"
#include "select.h"

#include <signal.h>

#define RWKV_DUMP_SCHEMA "rwkvscope-dump"
#define RWKV_DUMP_SCHEMA_VERSION 2 // 2: rwkv_version; RWKV-7 taps and params
#define RWKV_DUMP_CHUNK_ROWS 64 // rows per HDF5 chunk (and per write buffer)
#define RWKV_DUMP_DEFLATE 1     // deflate level recorded in the filter pipeline (readers ignore it)

// Which tap datasets get the shuffle + deflate filters; the others are stored unfiltered.
typedef enum {
    RWKV_DUMP_COMPRESS_SMALL = 0, // every tap but state_wkv (the default: its H*N*N-float
                                  // rows are most of a dump's bytes and shrink least)
    RWKV_DUMP_COMPRESS_ALL,
    RWKV_DUMP_COMPRESS_NONE,
} rwkv_dump_compress;

typedef struct {
    const char *command_line; // provenance ("" or NULL when none)
    const char *tokenizer;    // tokenizer spec, NULL/"" for token ids
    const char *taps;         // the selection as given (provenance)
    const char *positions;    // the position spec as given (provenance)
    int parallel;             // mode of the run: 1 parallel, 0 sequential
    int force;                // replace an existing file
    int text;                 // write /text (the sequences come from text)
    int matrices;             // also write receptance/key/value under /params
    int chunk_rows;           // 0 = RWKV_DUMP_CHUNK_ROWS
    rwkv_dump_compress compress; // which taps are deflated (0 = RWKV_DUMP_COMPRESS_SMALL)
    int flush_mb;             // flush to disk after this many MB of chunks (0 = 64), and after
                              // each sequence at most once a second
    const volatile sig_atomic_t *cancel; // NULL, or a flag (set by the caller's signal
                                         // handler) that stops the run between forward calls
} rwkv_dump_opts;

typedef struct rwkv_dump rwkv_dump;

// Creates path (refused if it exists unless opts->force) and writes the attributes and
// /params. mask (L + 1) as for rwkv_hook; pos is copied.
rwkv_status rwkv_dump_create(rwkv_dump **out, const char *path, const rwkv_model *m,
                             const uint32_t *mask, const rwkv_positions *pos, const rwkv_dump_opts *opts);
// Runs one sequence from `state` (the caller resets or loads it) in the dump's mode, in chunks
// of ws->max_T tokens, capturing every selected tap. text may be NULL. hook NULL uses the
// dump's own hook; a caller's hook (which must pass the rows on to rwkv_dump_tap with ctx =
// the dump) lets tests intervene. ws must match the model. When opts.cancel is set before a
// forward call, the tokens run so far are kept as a shorter sequence and the run returns
// RWKV_ERR_INTERRUPTED; close the dump then (rwkv_dump_close).
rwkv_status rwkv_dump_run(rwkv_dump *d, rwkv_state *state, rwkv_workspace *ws, const int *tokens,
                          int64_t T, const char *text, rwkv_hook *hook);
// The hook function: appends the selected rows of data (n, D), positions pos .. pos+n-1.
rwkv_status rwkv_dump_tap(void *ctx, int layer, rwkv_tap tap, int64_t pos, int n, int D, rwkv_real *data);
// The hook that writes into d (mask = the dump's selection).
rwkv_hook rwkv_dump_hook(rwkv_dump *d);
// Interventions for the next rwkv_dump_run calls (NULL: none; not owned). The run then goes
// through rwkv_intervene_forward with the dump's hook chained behind the list, so the dump
// records the values the model used; the list must be bound to each sequence's length.
void rwkv_dump_set_interventions(rwkv_dump *d, rwkv_intervene_list *iv);
// Flushes everything, sets complete = 1, closes and frees d (also on failure). When *cancel
// stopped a run (rwkv_dump_run returned RWKV_ERR_INTERRUPTED), the file keeps what was run,
// complete = 0 and stopped_at, and close returns RWKV_ERR_INTERRUPTED with a message saying
// where the data is. A dump replacing an existing file is written to a temporary beside it,
// renamed over it only here and only when complete: otherwise the old file stays.
rwkv_status rwkv_dump_close(rwkv_dump *d);
// Abandons a dump after a failure: closes the file as it is (complete stays 0; a temporary
// is removed, so a replaced file stays as it was) and frees d. NULL is safe. Keeps the
// recorded error message.
void rwkv_dump_free(rwkv_dump *d);

// ---- reading ----
// The one reader of dumps: every command and library module that reads one opens it here,
// so killed (SWMR) files, schema versions and the checks against corrupt files are the same
// everywhere.
#define RWKV_DUMP_NAME_MAX 64 // longest dataset name in a layer group, with its NUL
#define RWKV_DUMP_TAPS_MAX 64 // datasets listed per layer

typedef struct {
    int64_t file;           // hid_t of the open file
    char path[1024];
    int schema_version;
    int complete;           // 1 once the writer closed it cleanly
    int precision;          // 32 or 64: the stored float type
    rwkv_config cfg;        // shape; version and head_size from schema 2 (schema 1: RWKV-4)
    char mode[16];
    int64_t n_rows;         // N: rows every tap holds (fewer than written if the run was killed)
    int64_t n_seq;          // S
    int64_t n_tokens;       // T
    int64_t *offsets;       // (S+1) row offsets of each sequence
    int64_t *token_offsets; // (S+1) offsets of each sequence in tokens
    int64_t *positions;     // (N) each row's position within its sequence, rising within it
    int *tokens;            // (T)
} rwkv_dump_reader;

// Opens a dump (also one a killed writer left in SWMR mode) inside a guarded trial read
// (rwkv_h5_guarded), and reads and checks its index: offsets rising from 0, positions
// inside their sequences. A file of a newer schema version, or not a dump, is an error
// naming it. A file whose run did not finish is cut to the rows every tap holds: the whole
// sequences below them, then the sequence they cut, as a shorter one.
rwkv_status rwkv_dump_open(rwkv_dump_reader **out, const char *path);
void rwkv_dump_reader_free(rwkv_dump_reader *r);
// Names of the datasets of layer `layer` in name order (n_layer: the globals that were
// dumped, resid_out then logits), at most max; returns how many.
int rwkv_dump_taps(const rwkv_dump_reader *r, int layer, char (*names)[RWKV_DUMP_NAME_MAX], int max);
// Width D of a tap's dataset (layer = n_layer for the globals), 0 if it was not dumped.
int rwkv_dump_width(const rwkv_dump_reader *r, int layer, rwkv_tap tap);
int rwkv_dump_width_of(const rwkv_dump_reader *r, int layer, const char *name);
// Reads rows [row0, row0 + n) of a tap into out (n, D): bounded by the dataset, numbers only.
rwkv_status rwkv_dump_read_rows(const rwkv_dump_reader *r, int layer, rwkv_tap tap, int64_t row0,
                                int64_t n, rwkv_real *out);
rwkv_status rwkv_dump_read_rows_f64(const rwkv_dump_reader *r, int layer, rwkv_tap tap, int64_t row0,
                                    int64_t n, double *out);
rwkv_status rwkv_dump_read_tap(const rwkv_dump_reader *r, int layer, const char *name, int64_t row0, int64_t n,
                               rwkv_real *out);
rwkv_status rwkv_dump_read_tap_f64(const rwkv_dump_reader *r, int layer, const char *name, int64_t row0, int64_t n,
                                   double *out);
// The rows [*row0, *row0 + *n) of sequence seq at positions p0 <= p < p1 (p1 < 0: to its end).
rwkv_status rwkv_dump_seq_rows(const rwkv_dump_reader *r, int64_t seq, int64_t p0, int64_t p1, int64_t *row0,
                               int64_t *n);
// malloc'd copies of the index: offsets (S+1), positions (N), tokens (T), token offsets (S+1).
rwkv_status rwkv_dump_read_offsets(const rwkv_dump_reader *r, int64_t **out);
rwkv_status rwkv_dump_read_token_offsets(const rwkv_dump_reader *r, int64_t **out);
rwkv_status rwkv_dump_read_positions(const rwkv_dump_reader *r, int64_t **out);
rwkv_status rwkv_dump_read_tokens(const rwkv_dump_reader *r, int **out);
// A root attribute; -1 when missing or of the wrong type.
int rwkv_dump_attr_i64(const rwkv_dump_reader *r, const char *name, int64_t *out);
int rwkv_dump_attr_str(const rwkv_dump_reader *r, const char *name, char *buf, size_t size);

#endif
