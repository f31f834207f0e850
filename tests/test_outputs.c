// test_outputs.c: nothing lost and nothing crashes. Dumps stopped by SIGINT or killed by
// SIGKILL in a child process stay readable and hold a clean run's rows up to where they
// stopped; --force never destroys the old dump; a full disk (a real small tmpfs when this
// process may mount one, else the file-size limit RLIMIT_FSIZE, which fails writes the
// same way) or /dev/full gives a clear error naming the file, keeps the previous file and
// never crashes, for dumps, state files, checkpoints, CSVs, plots and model files.
#include "analyses/plot.h"
#include "core/base/file.h"
#include "core/compute/forward.h"
#include "core/inspect/dump.h"
#include "core/inspect/intervene.h"
#include "core/model/model.h"
#include "probes/dumpview.h"
#include "util.h"

#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <hdf5.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MODEL "rand-L3-C64-V300.pth" // V = 300: byte tokens of a text file fit
#define LONG_INPUT "tinyshakespeare.txt" // 1.1 M byte tokens: a dump of it runs for many seconds
#define DUMP_CHUNK 128                   // the CLI's tokens per forward call (cmd_dump.c)
#define TAPS "blocks.1.att_out,logits"
#define KILLED_LINE 255                  // bytes (tokens) per prompt of the killed multi-sequence dump
#define WAIT_SECONDS 120                 // longest wait for a child's output to grow
#define SMALL_LIMIT 8192                 // bytes a "full disk" lets a file grow to

static const char *tmp(const char *name) {
    static char buf[16][512];
    static int k;
    k = (k + 1) % 16;
    snprintf(buf[k], sizeof buf[k], "%s/%s", test_tmpdir(), name);
    return buf[k];
}

// The model and the long input (test_fixture's buffer is reused by every call).
static const char *model(void) {
    static char p[512];
    snprintf(p, sizeof p, "%s", test_fixture(MODEL));
    return p;
}

static const char *long_input(void) {
    static char p[512];
    snprintf(p, sizeof p, "%s", test_fixture(LONG_INPUT));
    return p;
}

static const char *bin(void) {
    const char *b = getenv("RWKVSCOPE_BIN");
    return b ? b : "build/rwkvscope";
}

static off_t file_size(const char *path) {
    struct stat sb;
    return stat(path, &sb) == 0 ? sb.st_size : -1;
}

static char *slurp(const char *path, size_t *n) {
    unsigned char *buf;
    size_t len;
    if (rwkv_file_read(path, &buf, &len)) return NULL;
    if (n) *n = len;
    return (char *)buf;
}

static void write_text(const char *path, const char *text) {
    FILE *f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    fputs(text, f);
    ck_assert_int_eq(fclose(f), 0);
}

// Files in the scratch directory whose name contains `part` (temporaries left behind).
static int count_files(const char *part) {
    DIR *d = opendir(test_tmpdir());
    int n = 0;
    for (struct dirent *e; d && (e = readdir(d));) n += strstr(e->d_name, part) != NULL;
    if (d) closedir(d);
    return n;
}

typedef struct {
    long fsize;          // RLIMIT_FSIZE soft limit in bytes (0: none)
    int sig;             // signal to send once `watch` has grown to `at` bytes (0: none),
    const char *watch;   // or, with watch NULL, after `delay` seconds
    off_t at;
    double delay;
    const char *env;     // "NAME=value" to set in the child, or NULL
} spawn_opts;

// Runs `rwkvscope ARGS` (a shell string) in a child, output to a file read into *out.
// Returns the wait status.
static int spawn(const spawn_opts *o, char **out, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int spawn(const spawn_opts *o, char **out, const char *fmt, ...) {
    char args[4096], cmd[5000];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(args, sizeof args, fmt, ap);
    va_end(ap);
    snprintf(cmd, sizeof cmd, "exec %s %s", bin(), args); // exec: the pid is rwkvscope's
    const char *log = tmp("spawn.log");
    fflush(NULL);
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        int fd = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        dup2(fd, 1);
        dup2(fd, 2);
        if (o->env) putenv((char *)o->env);
        if (o->fsize) { // a write past the limit then fails with EFBIG instead of killing
            signal(SIGXFSZ, SIG_IGN);
            struct rlimit rl;
            getrlimit(RLIMIT_FSIZE, &rl);
            rl.rlim_cur = (rlim_t)o->fsize;
            setrlimit(RLIMIT_FSIZE, &rl);
        }
        execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
        _exit(127);
    }
    int status = 0;
    if (o->sig && !o->watch) usleep((useconds_t)(o->delay * 1e6));
    if (o->sig && o->watch) {
        time_t t0 = time(NULL);
        while (file_size(o->watch) < o->at && time(NULL) - t0 < WAIT_SECONDS && waitpid(pid, &status, WNOHANG) == 0)
            usleep(20000);
    }
    if (o->sig) kill(pid, o->sig);
    waitpid(pid, &status, 0);
    *out = slurp(log, NULL);
    if (!*out) *out = strdup("");
    return status;
}

// Rows [0, n) of a clean library run of the first T bytes of the long input: the dump the
// CLI would write, made in-process in parallel mode with the CLI's forward-call length.
static rwkv_dump_reader *clean_dump(const char *path, int64_t T) {
    rwkv_model *m;
    ck_assert_int_eq(rwkv_model_load(&m, model()), RWKV_OK);
    size_t len;
    unsigned char *text = (unsigned char *)slurp(long_input(), &len);
    ck_assert(text && (size_t)T <= len);
    int *tok = malloc((size_t)T * sizeof *tok);
    for (int64_t t = 0; t < T; t++) tok[t] = text[t]; // the bytes tokenizer
    uint32_t mask[4];
    rwkv_positions pos = {0};
    ck_assert_int_eq(rwkv_select_taps(mask, m->cfg.n_layer, TAPS), RWKV_OK);
    rwkv_dump_opts o = {.parallel = 1, .force = 1};
    rwkv_dump *d;
    rwkv_state *s;
    rwkv_workspace *ws;
    ck_assert_int_eq(rwkv_state_alloc(&s, m->cfg), RWKV_OK);
    ck_assert_int_eq(rwkv_workspace_alloc(&ws, m->cfg, DUMP_CHUNK), RWKV_OK);
    ck_assert_int_eq(rwkv_dump_create(&d, path, m, mask, &pos, &o), RWKV_OK);
    ck_assert_int_eq(rwkv_dump_run(d, s, ws, tok, T, NULL, NULL), RWKV_OK);
    ck_assert_int_eq(rwkv_dump_close(d), RWKV_OK);
    rwkv_state_free(s);
    rwkv_workspace_free(ws);
    free(tok);
    free(text);
    rwkv_model_free(m);
    rwkv_dump_reader *r;
    ck_assert_int_eq(rwkv_dump_open(&r, path), RWKV_OK);
    return r;
}

// Rows in the file of one tap (its dataset extent).
static int64_t tap_rows(const rwkv_dump_reader *r, const char *name) {
    hid_t d = H5Dopen2((hid_t)r->file, name, H5P_DEFAULT);
    ck_assert_int_ge(d, 0);
    hid_t sp = H5Dget_space(d);
    hsize_t dims[2];
    H5Sget_simple_extent_dims(sp, dims, NULL);
    H5Sclose(sp);
    H5Dclose(d);
    return (int64_t)dims[0];
}

// Rows [0, n) of both taps and the bookkeeping of `got` equal those of a clean run.
static void check_rows_match_clean(const rwkv_dump_reader *got, int64_t n) {
    int64_t T = (n + DUMP_CHUNK - 1) / DUMP_CHUNK * DUMP_CHUNK; // whole forward calls, as the CLI ran them
    rwkv_dump_reader *ref = clean_dump(tmp("clean.h5"), T);
    struct { int layer; rwkv_tap tap; } taps[2] = {{1, RWKV_TAP_ATT_OUT}, {3, RWKV_TAP_LOGITS}};
    for (int k = 0; k < 2; k++) {
        int D = rwkv_dump_width(got, taps[k].layer, taps[k].tap);
        ck_assert_int_eq(D, rwkv_dump_width(ref, taps[k].layer, taps[k].tap));
        rwkv_real *a = malloc((size_t)n * D * sizeof *a), *b = malloc((size_t)n * D * sizeof *b);
        ck_assert_int_eq(rwkv_dump_read_rows(got, taps[k].layer, taps[k].tap, 0, n, a), RWKV_OK);
        ck_assert_int_eq(rwkv_dump_read_rows(ref, taps[k].layer, taps[k].tap, 0, n, b), RWKV_OK);
        // The same forward calls on the same machine: the rows are bit-identical.
        ck_assert_msg(memcmp(a, b, (size_t)n * D * sizeof *a) == 0, "tap %d: rows differ from a clean run", k);
        free(a);
        free(b);
    }
    int *tok = NULL, *ref_tok = NULL;
    ck_assert_int_eq(rwkv_dump_read_tokens(got, &tok), RWKV_OK);
    ck_assert_int_eq(rwkv_dump_read_tokens(ref, &ref_tok), RWKV_OK);
    int64_t nt = got->n_tokens < ref->n_tokens ? got->n_tokens : ref->n_tokens;
    ck_assert_int_ge(nt, n);
    ck_assert_int_eq(memcmp(tok, ref_tok, (size_t)nt * sizeof *tok), 0);
    free(tok);
    free(ref_tok);
    rwkv_dump_reader_free(ref);
}

static int64_t *read_stopped_at(const char *path, int64_t at[2]) {
    hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    ck_assert_int_ge(f, 0);
    hid_t a = H5Aopen(f, "stopped_at", H5P_DEFAULT);
    ck_assert_int_ge(a, 0);
    ck_assert_int_ge(H5Aread(a, H5T_NATIVE_INT64, at), 0);
    H5Aclose(a);
    H5Fclose(f);
    return at;
}

// SIGINT mid-run: exit 130, the file closes cleanly with complete = 0 and stopped_at, and
// holds exactly the clean run's rows of the tokens run.
START_TEST(test_sigint_dump) {
    const char *out = tmp("sigint.h5");
    unlink(out);
    char *log;
    spawn_opts o = {.sig = SIGINT, .watch = out, .at = 512 << 10};
    int status = spawn(&o, &log, "dump %s --file %s --taps %s -o %s", model(), long_input(),
                       TAPS, out);
    ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 130, "status %d: %s", status, log);
    ck_assert_msg(strstr(log, "interrupted") && strstr(log, out) && strstr(log, "complete=0"), "%s", log);
    free(log);
    rwkv_dump_reader *r;
    ck_assert_int_eq(rwkv_dump_open(&r, out), RWKV_OK); // a plain open: the close was clean
    ck_assert_int_eq(r->complete, 0);
    int64_t at[2];
    read_stopped_at(out, at);
    ck_assert_int_eq(at[0], 0); // one sequence, stopped between forward calls
    ck_assert_int_gt(at[1], 0);
    ck_assert_int_lt(at[1], 1115394);
    ck_assert_int_eq(at[1] % DUMP_CHUNK, 0);
    ck_assert_int_eq(r->n_seq, 1); // the tokens run are kept as a shorter sequence
    ck_assert_int_eq(r->n_tokens, at[1]);
    ck_assert_int_eq(r->n_rows, at[1]);
    ck_assert_int_eq(tap_rows(r, "/logits"), at[1]);
    int64_t *off;
    ck_assert_int_eq(rwkv_dump_read_offsets(r, &off), RWKV_OK);
    ck_assert_int_eq(off[1], at[1]);
    free(off);
    check_rows_match_clean(r, at[1]);
    rwkv_dump_reader_free(r);
}
END_TEST

// SIGKILL mid-run: the file still opens (as an SWMR reader: the writer never closed it),
// complete = 0, and every row that reached the last flush equals the clean run's.
START_TEST(test_sigkill_dump) {
    const char *out = tmp("sigkill.h5");
    unlink(out);
    char *log;
    spawn_opts o = {.sig = SIGKILL, .watch = out, .at = 3 << 20};
    int status = spawn(&o, &log, "dump %s --file %s --taps %s --flush-mb 1 -o %s", model(),
                       long_input(), TAPS, out);
    ck_assert_msg(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL, "status %d: %s", status, log);
    free(log);
    hid_t plain;
    H5E_BEGIN_TRY { plain = H5Fopen(out, H5F_ACC_RDONLY, H5P_DEFAULT); } H5E_END_TRY;
    ck_assert_int_lt(plain, 0); // the writer's SWMR flags are still set: it never closed the file
    rwkv_dump_reader *r;
    ck_assert_msg(rwkv_dump_open(&r, out) == RWKV_OK, "%s", rwkv_error_message());
    ck_assert_int_eq(r->complete, 0);
    int64_t n = tap_rows(r, "/logits"), na = tap_rows(r, "/blocks/1/att_out");
    if (na < n) n = na;
    if (r->n_rows < n) n = r->n_rows;
    // At least a flush (1 MB of chunks, about 600 rows here) reached the disk before the kill.
    ck_assert_int_ge(n, 256);
    int64_t *p;
    ck_assert_int_eq(rwkv_dump_read_positions(r, &p), RWKV_OK);
    for (int64_t i = 0; i < n; i++) ck_assert_int_eq(p[i], i);
    free(p);
    check_rows_match_clean(r, n);
    rwkv_dump_reader_free(r);
}
END_TEST

// A dump killed after several sequences opens in every reader of dumps, through the one
// reader: the probes' view and `probe`, `plot`, and a patch source (refused as incomplete,
// with a clear message). The finished sequences are whole; the one the kill cut is shorter.
START_TEST(test_killed_dump_everywhere) {
    const char *in = tmp("killed_prompts.txt"), *out = tmp("killed.h5");
    size_t n = 0;
    char *text = slurp(long_input(), &n);
    FILE *f = fopen(in, "w");
    ck_assert_ptr_nonnull(f);
    for (size_t i = 0; i + KILLED_LINE < n && i < 200 * KILLED_LINE; i += KILLED_LINE) { // one prompt per line
        for (size_t j = i; j < i + KILLED_LINE; j++) fputc(text[j] == '\n' ? ' ' : text[j], f);
        fputc('\n', f);
    }
    fclose(f);
    free(text);
    unlink(out);
    char *log;
    spawn_opts o = {.sig = SIGKILL, .watch = out, .at = 3 << 20};
    int status = spawn(&o, &log, "dump %s --input %s --taps %s --flush-mb 1 -o %s", model(), in, TAPS, out);
    ck_assert_msg(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL, "status %d: %s", status, log);
    free(log);
    rwkv_dumpview *v = NULL;
    ck_assert_msg(rwkv_dumpview_open(&v, out) == RWKV_OK, "%s", rwkv_error_message());
    ck_assert_int_eq(v->r->complete, 0);
    ck_assert_int_ge(v->n_seq, 3); // about 2500 rows of 255-token sequences reached the disk
    for (int s = 0; s + 1 < v->n_seq; s++) ck_assert_int_eq(v->offsets[s + 1] - v->offsets[s], KILLED_LINE);
    for (int64_t r = 0; r < v->n_rows; r++) ck_assert_int_eq(v->positions[r], r - v->r->offsets[v->row_seq[r]]);
    rwkv_dumpview_free(v);
    int rc = test_cli(&log, "plot %s --tap blocks.1.att_out --kind lines --seq 1 -o %s", out, tmp("killed.png"));
    ck_assert_msg(rc == 0, "%s", log);
    free(log);
    rc = test_cli(&log, "probe %s --taps blocks.1.att_out --label position --probe ridge --folds 2 -o %s", out,
                  tmp("killed_probe.csv"));
    ck_assert_msg(rc == 0, "%s", log);
    free(log);
    char spec[1200];
    snprintf(spec, sizeof spec, "blocks.1.att_out@3=patch:%s:1", out);
    rwkv_intervention iv;
    ck_assert_int_eq(rwkv_intervene_parse(&iv, spec), RWKV_OK);
    rwkv_config cfg = {.n_layer = 3, .n_embd = 64, .n_ffn = 256, .n_vocab = 300};
    ck_assert_int_eq(rwkv_intervene_bind(&iv, cfg, KILLED_LINE), RWKV_ERR_FORMAT);
    ck_assert_ptr_nonnull(strstr(rwkv_error_message(), "the dump is incomplete"));
}
END_TEST

// The old dump, byte for byte.
static char *old_dump(const char *path, size_t *n) {
    char *log;
    int rc = test_cli(&log, "dump %s --bytes 'an old dump' --taps logits --force -o %s", model(), path);
    ck_assert_msg(rc == 0, "%s", log);
    free(log);
    return slurp(path, n);
}

static void check_unchanged(const char *path, const char *old, size_t n) {
    size_t m;
    char *now = slurp(path, &m);
    ck_assert_ptr_nonnull(now);
    ck_assert_msg(m == n && memcmp(now, old, n) == 0, "%s was changed", path);
    free(now);
}

// --force over an existing dump: a run that fails (disk full) or is stopped keeps the old
// file; a stopped one leaves its partial dump under the temporary it names.
START_TEST(test_force_keeps_old_dump) {
    const char *out = tmp("force.h5");
    size_t n = 0;
    char *old = old_dump(out, &n);
    char *log;
    spawn_opts full = {.fsize = 256 << 10};
    int status = spawn(&full, &log, "dump %s --file %s --taps %s --force -o %s", model(),
                       long_input(), TAPS, out);
    ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 1, "status %d: %s", status, log);
    ck_assert_msg(strstr(log, out) && strstr(log, "File too large") && strstr(log, "previous output is unchanged"),
                  "%s", log);
    free(log);
    check_unchanged(out, old, n);
    ck_assert_int_eq(count_files("force.h5.tmp"), 0);
    // The temporary's name is random: stop the run after a while instead of at a size.
    spawn_opts stop = {.sig = SIGINT, .delay = 1.5};
    status = spawn(&stop, &log, "dump %s --file %s --taps %s --force -o %s", model(),
                   long_input(), TAPS, out);
    ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 130, "status %d: %s", status, log);
    check_unchanged(out, old, n);
    const char *tmpname = strstr(log, "force.h5.tmp");
    ck_assert_msg(tmpname && strstr(log, "is unchanged"), "%s", log);
    ck_assert_int_eq(count_files("force.h5.tmp"), 1);
    char partial[600];
    snprintf(partial, sizeof partial, "%s/%.18s", test_tmpdir(), tmpname);
    rwkv_dump_reader *r;
    ck_assert_msg(rwkv_dump_open(&r, partial) == RWKV_OK, "%s: %s", partial, rwkv_error_message());
    ck_assert_int_eq(r->complete, 0);
    rwkv_dump_reader_free(r);
    unlink(partial);
    free(log);
    free(old);
}
END_TEST

// One output of each kind, written over a previous file with a limit below its size.
typedef struct {
    const char *name, *args; // args: %1$s the model, %2$s the output, %3$s the long input
    long limit;
} full_case;

static const full_case FULL[] = {
    {"state.h5", "state save %1$s --bytes 'Once upon a time' --force -o %2$s", 2048},
    {"init.safetensors", "init --layers 2 --embd 32 --force -o %2$s", SMALL_LIMIT},
    {"train.safetensors", "train --data %3$s --layers 1 --embd 16 --ctx 16 --batch 2 --steps 2 --force -o %2$s",
     SMALL_LIMIT},
    {"decay.csv", "analyze decay %1$s --no-plots --force -o %2$s", SMALL_LIMIT},
    {"passkey.jsonl", "dataset make passkey --n 50 --len 256 --force -o %2$s", SMALL_LIMIT},
    {"full_dump.h5", "dump %1$s --bytes 'some text to dump' --taps logits --force -o %2$s", SMALL_LIMIT},
};
#define N_FULL ((int)(sizeof FULL / sizeof FULL[0]))
#define PREVIOUS "the previous file\n"

// A full disk while writing: exit 1 (no crash), an error naming the file and the cause, the
// previous file as it was, no temporary left behind.
START_TEST(test_disk_full_outputs) {
    const full_case *c = &FULL[_i];
    const char *out = tmp(c->name);
    write_text(out, PREVIOUS);
    char optim[600];
    snprintf(optim, sizeof optim, "%s/train.optim.h5", test_tmpdir());
    if (!strcmp(c->name, "train.safetensors")) write_text(optim, PREVIOUS);
    char args[2048], *log;
    snprintf(args, sizeof args, c->args, model(), out, long_input());
    spawn_opts o = {.fsize = c->limit};
    int status = spawn(&o, &log, "%s", args);
    ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 1, "%s: status %d: %s", c->name, status, log);
    ck_assert_msg(strstr(log, out) && strstr(log, "File too large"), "%s: %s", c->name, log);
    check_unchanged(out, PREVIOUS, strlen(PREVIOUS));
    if (!strcmp(c->name, "train.safetensors")) check_unchanged(optim, PREVIOUS, strlen(PREVIOUS));
    char part[128];
    snprintf(part, sizeof part, "%s.tmp", c->name);
    ck_assert_int_eq(count_files(part), 0);
    free(log);
}
END_TEST

// An output that is a device is written in place (never renamed over): /dev/full fails
// with ENOSPC, named, and stays the device.
START_TEST(test_dev_full) {
    const char *cmds[] = {"analyze decay %s --no-plots --force -o /dev/full",
                          "state save %s --bytes 'abc' --force -o /dev/full"};
    for (int i = 0; i < 2; i++) {
        char *log;
        spawn_opts o = {0};
        int status = spawn(&o, &log, cmds[i], model());
        ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 1, "status %d: %s", status, log);
        ck_assert_msg(strstr(log, "/dev/full") && (strstr(log, "No space left on device") || strstr(log, "cannot")),
                      "%s", log);
        free(log);
        struct stat sb;
        ck_assert_int_eq(stat("/dev/full", &sb), 0);
        ck_assert(S_ISCHR(sb.st_mode));
    }
}
END_TEST

// rwkv_file_write_f32: float32 little-endian values, the old file kept without force, and a
// full device reported (run --logits writes through it).
START_TEST(test_write_f32) {
    char path[1024];
    snprintf(path, sizeof path, "%s/values.f32", test_tmpdir());
    rwkv_real x[3] = {1.5, -2.25, (rwkv_real)1e-3};
    ck_assert_int_eq(rwkv_file_write_f32(path, x, 3, 1), RWKV_OK);
    unsigned char *buf;
    size_t n;
    ck_assert_int_eq(rwkv_file_read(path, &buf, &n), RWKV_OK);
    ck_assert_uint_eq(n, 12);
    for (int i = 0; i < 3; i++) {
        uint32_t bits = (uint32_t)buf[4 * i] | (uint32_t)buf[4 * i + 1] << 8 | (uint32_t)buf[4 * i + 2] << 16 |
                        (uint32_t)buf[4 * i + 3] << 24; // little-endian, whatever the host
        float f, want = (float)x[i];
        memcpy(&f, &bits, 4);
        ck_assert(f == want);
    }
    free(buf);
    ck_assert_int_eq(rwkv_file_write_f32(path, x, 1, 0), RWKV_ERR_EXISTS);
    ck_assert_int_eq(rwkv_file_read(path, &buf, &n), RWKV_OK);
    ck_assert_uint_eq(n, 12);
    free(buf);
    ck_assert_int_eq(rwkv_file_write_f32("/dev/full", x, 3, 1), RWKV_ERR_IO);
    ck_assert_ptr_nonnull(strstr(rwkv_error_message(), "/dev/full"));
}
END_TEST

// A really full file system (a 256 KB tmpfs, when this process may mount one): the dump
// reports ENOSPC and exits cleanly; HDF5's close, which fails on a full disk, must not
// crash at exit. Without mount rights the same run meets the file-size limit instead.
START_TEST(test_full_tmpfs_dump) {
    const char *dir = tmp("tmpfs");
    mkdir(dir, 0755);
    int mounted = geteuid() == 0 && mount("tmpfs", dir, "tmpfs", 0, "size=256k") == 0;
    char out[600], *log;
    snprintf(out, sizeof out, "%s/d.h5", dir);
    spawn_opts o = {.fsize = mounted ? 0 : 256 << 10};
    int status = spawn(&o, &log, "dump %s --file %s --taps %s -o %s", model(), long_input(),
                       TAPS, out);
    if (mounted) umount(dir);
    ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 1, "status %d: %s", status, log);
    ck_assert_msg(strstr(log, out) && strstr(log, mounted ? "No space left on device" : "File too large"), "%s", log);
    ck_assert_ptr_null(strstr(log, "HDF5-DIAG")); // errors come back as one message, not HDF5's stack
    free(log);
}
END_TEST

// gnuplot failing keeps the previous image and leaves no temporary.
START_TEST(test_plot_failure_keeps_image) {
    const char *img = tmp("kept.png");
    write_text(img, "an old image");
    setenv("RWKVSCOPE_GNUPLOT", "/bin/false", 1);
    double x[3] = {0, 1, 2}, y[3] = {1, 4, 9};
    ck_assert_int_eq(rwkv_plot_lines(img, NULL, x, y, 3, 1, NULL), RWKV_ERR_IO);
    ck_assert_ptr_nonnull(strstr(rwkv_error_message(), "gnuplot failed"));
    check_unchanged(img, "an old image", 12);
    ck_assert_int_eq(count_files("kept.png.tmp"), 0);
}
END_TEST

int main(void) {
    Suite *s = suite_create("outputs");
    TCase *tc = tcase_create("interrupt");
    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, test_sigint_dump);
    tcase_add_test(tc, test_write_f32);
    tcase_add_test(tc, test_sigkill_dump);
    tcase_add_test(tc, test_killed_dump_everywhere);
    tcase_add_test(tc, test_force_keeps_old_dump);
    suite_add_tcase(s, tc);
    TCase *tf = tcase_create("full");
    tcase_set_timeout(tf, 120);
    tcase_add_loop_test(tf, test_disk_full_outputs, 0, N_FULL);
    tcase_add_test(tf, test_dev_full);
    tcase_add_test(tf, test_full_tmpfs_dump);
    tcase_add_test(tf, test_plot_failure_keeps_image);
    suite_add_tcase(s, tf);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
