// test_fuzz.c: the inputs `make fuzz` found (tests/fixtures/fuzz/<target>/, docs/fuzzing.md)
// give a clear error, no crash and no hang; the readers' defences against libhdf5 on corrupt
// files (global-heap strings read by us, the forked trial read) hold on valid files too.
#include <check.h>
#include <dirent.h>
#include <hdf5.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/base/file.h"
#include "core/inspect/dump.h"
#include "core/inspect/h5util.h"
#include "core/inspect/intervene.h"
#include "core/inspect/state_io.h"
#include "core/train/checkpoint.h"
#include "probes/dumpview.h"
#include "probes/labels.h"
#include "tests/util.h"

#define STATE_BUDGET_S 1.0 // issue 17: a state-file read of a corrupt file finishes within 1 s
#define OTHER_BUDGET_S 5.0 // the other readers' trial budgets are 2-5 s plus the read time

static double now_s(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static char *tmp_path(const char *name) {
    static char p[4][1024];
    static int k;
    k = (k + 1) % 4;
    snprintf(p[k], sizeof p[k], "%s/%s", test_tmpdir(), name);
    return p[k];
}

// Calls fn on every file of tests/fixtures/fuzz/<target>/; each must fail with a message
// naming the file (or, for text targets, the input) within budget_s. Returns the count.
static int each_regression(const char *target, rwkv_status (*fn)(const char *path), double budget_s) {
    char dir[512];
    snprintf(dir, sizeof dir, "%s", test_fixture("fuzz/"));
    snprintf(dir + strlen(dir), sizeof dir - strlen(dir), "%s", target);
    DIR *d = opendir(dir);
    ck_assert_msg(d != NULL, "%s: missing", dir);
    int n = 0;
    for (struct dirent *e; (e = readdir(d));) {
        if (e->d_name[0] == '.') continue;
        char path[1024];
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        rwkv_error_clear();
        double t0 = now_s();
        rwkv_status st = fn(path);
        double dt = now_s() - t0;
        ck_assert_msg(st != RWKV_OK, "%s: accepted", path);
        ck_assert_msg(strstr(rwkv_error_message(), e->d_name), "%s: message does not name it: %s", path,
                      rwkv_error_message());
        ck_assert_msg(dt < budget_s, "%s: %.3f s (budget %.1f s)", path, dt, budget_s);
        n++;
    }
    closedir(d);
    return n;
}

static const rwkv_config SMALL = {.n_layer = 2, .n_embd = 32, .n_ffn = 128, .n_vocab = 50};
static const rwkv_config L3 = {.n_layer = 3, .n_embd = 64, .n_ffn = 256, .n_vocab = 300};

static rwkv_status load_state(const char *path) {
    rwkv_model *m = NULL;
    rwkv_state *s = NULL;
    ck_assert_int_eq(rwkv_model_alloc(&m, SMALL), RWKV_OK);
    ck_assert_int_eq(rwkv_state_alloc(&s, SMALL), RWKV_OK);
    rwkv_status st = rwkv_state_load(s, path, m);
    rwkv_state_free(s);
    rwkv_model_free(m);
    return st;
}

// Found by fuzz_state: a variable-length `schema` string whose global heap collection makes
// libhdf5 loop for ever (H5HG__protect), and a heap size that asks HDF5 for 2^54 bytes.
START_TEST(state_regressions) {
    ck_assert_int_ge(each_regression("state", load_state, STATE_BUDGET_S), 2);
}
END_TEST

static rwkv_status read_optim(const char *path) {
    rwkv_config cfg;
    rwkv_trainer_opts o;
    int64_t step;
    return rwkv_checkpoint_read_opts(path, &cfg, &o, &step);
}

// Found by fuzz_checkpoint: libhdf5 used freed memory in H5Aexists on a corrupt attribute.
START_TEST(checkpoint_regressions) {
    ck_assert_int_ge(each_regression("checkpoint", read_optim, OTHER_BUDGET_S), 1);
}
END_TEST

static rwkv_status open_dump(const char *path) {
    rwkv_dump_reader *r = NULL;
    rwkv_status st = rwkv_dump_open(&r, path);
    rwkv_dump_reader_free(r);
    return st;
}

// Found by fuzz_dump: a corrupt superblock made the SWMR fallback open retry every metadata
// read 100 times with backoff sleeps (about 10 s); it must fail in well under a second.
START_TEST(dump_regressions) {
    ck_assert_int_ge(each_regression("dump", open_dump, 1.0), 1);
}
END_TEST

static rwkv_status bind_add(const char *path) {
    rwkv_intervention iv;
    memset(&iv, 0, sizeof iv);
    char spec[1200];
    snprintf(spec, sizeof spec, "blocks.0.resid_in@*=add:%s", path);
    ck_assert_int_eq(rwkv_intervene_parse(&iv, spec), RWKV_OK);
    rwkv_status st = rwkv_intervene_bind(&iv, L3, 8);
    rwkv_intervene_release(&iv);
    return st;
}

// Found by fuzz_intervene_file: /vector of a 4 GiB element type (HDF5 allocated it).
START_TEST(intervene_file_regressions) {
    ck_assert_int_ge(each_regression("intervene_file", bind_add, OTHER_BUDGET_S), 1);
    ck_assert_ptr_nonnull(strstr(rwkv_error_message(), "/vector is not numeric"));
}
END_TEST

// Found by fuzz_intervene_spec (and issue 13): "90-last" on a shorter sequence gave fill_mask
// a negative memset size. The fixture's first byte is the sequence length minus 1 (as in the
// harness), the rest the spec.
START_TEST(intervene_spec_regressions) {
    unsigned char *buf = NULL;
    size_t n = 0;
    ck_assert_int_eq(rwkv_file_read(test_fixture("fuzz/intervene_spec/range-past-end.txt"), &buf, &n), RWKV_OK);
    ck_assert_uint_ge(n, 2);
    rwkv_intervention iv;
    memset(&iv, 0, sizeof iv);
    ck_assert_int_eq(rwkv_intervene_parse(&iv, (const char *)buf + 1), RWKV_OK);
    ck_assert_int_eq(rwkv_intervene_bind(&iv, L3, 1 + buf[0]), RWKV_ERR_ARG);
    ck_assert_str_eq(rwkv_error_message(),
                     "position 90 in 'blocks.2.state_max@90-last=zero': out of range, the sequence has 33 tokens");
    free(buf);
    memset(&iv, 0, sizeof iv);
    ck_assert_int_eq(rwkv_intervene_parse(&iv, "blocks.0.att_out@90-last=zero"), RWKV_OK);
    ck_assert_int_eq(rwkv_intervene_bind(&iv, L3, 10), RWKV_ERR_ARG);
    ck_assert_ptr_nonnull(strstr(rwkv_error_message(), "position 90 in 'blocks.0.att_out@90-last=zero': out of range"));
    uint8_t mask[10];
    ck_assert_int_eq(rwkv_intervene_index_list(mask, 10, "12-last", "position", 1), RWKV_ERR_ARG);
    ck_assert_ptr_nonnull(strstr(rwkv_error_message(), "position 12 in '12-last': out of range, there are 10 positions"));
}
END_TEST

// Issue 17: answers [[1, INT64_MAX]] overflowed `a + n > T`, skipped the bound check and read
// past the last sequence. Library and CLI (`probe --label answer`) refuse it.
START_TEST(answer_span_overflow) {
    const char *ds = test_fixture("fuzz/jsonl/answer-span-overflow.jsonl");
    char dsp[1024];
    snprintf(dsp, sizeof dsp, "%s", ds);
    const char *dump = tmp_path("answers.h5");
    char *out = NULL;
    // The one dataset reader refuses the span already when the dump reads the file...
    int rc = test_cli(&out, "dump %s --input %s --taps 'blocks.*.state_num' --force -o %s",
                      test_fixture("rand-L3-C64-V300.pth"), dsp, dump);
    ck_assert_int_eq(rc, 1);
    ck_assert_msg(strstr(out, "answer-span-overflow.jsonl:1: answer span 0 is not [start >= 1, length]"), "%s", out);
    free(out);
    // ...and the labels refuse it on a dump of the same tokens made without the answers.
    const char *plain = tmp_path("plain.jsonl");
    FILE *f = fopen(plain, "w");
    ck_assert_ptr_nonnull(f);
    fputs("{\"tokens\":[1,2,3,4,5,6,7,8]}\n", f);
    fclose(f);
    rc = test_cli(&out, "dump %s --input %s --taps 'blocks.*.state_num' --force -o %s",
                  test_fixture("rand-L3-C64-V300.pth"), plain, dump);
    ck_assert_msg(rc == 0, "%s", out);
    free(out);
    rwkv_dumpview *v = NULL;
    ck_assert_int_eq(rwkv_dumpview_open(&v, dump), RWKV_OK);
    rwkv_labels *l = NULL;
    ck_assert_int_eq(rwkv_labels_builtin(&l, v, "answer", dsp), RWKV_ERR_FORMAT);
    ck_assert_ptr_nonnull(strstr(rwkv_error_message(), "answer span 0 is not [start >= 1, length] inside the example"));
    ck_assert_ptr_nonnull(strstr(rwkv_error_message(), "answer-span-overflow.jsonl:1:"));
    rwkv_dumpview_free(v);
    rc = test_cli(&out, "probe %s --taps 'blocks.*.state_num' --label answer --dataset %s -o %s", dump, dsp,
                  tmp_path("p.csv"));
    ck_assert_int_ne(rc, 0);
    ck_assert_msg(strstr(out, "answer span 0 is not [start >= 1, length]"), "%s", out);
    free(out);
}
END_TEST

// Strings read from our own global-heap parser equal libhdf5's own read of a valid file:
// empty, ASCII, UTF-8, longer than a heap collection's first 4 KB, and cut to the buffer.
START_TEST(vlen_strings_read_back) {
    const char *path = tmp_path("strings.h5");
    char big[6000];
    for (size_t i = 0; i < sizeof big - 1; i++) big[i] = (char)('a' + i % 26);
    big[sizeof big - 1] = '\0';
    const char *vals[] = {"", "rwkvscope-state", "caf\xc3\xa9 \xe4\xbd\xa0\xe5\xa5\xbd", big};
    const char *names[] = {"empty", "ascii", "utf8", "big"};
    hid_t f;
    ck_assert_int_eq(rwkv_h5_create(&f, path, 1, H5P_DEFAULT), RWKV_OK);
    for (int i = 0; i < 4; i++) ck_assert_int_eq(rwkv_h5_attr_str(f, names[i], vals[i]), 0);
    H5Fclose(f);
    ck_assert_int_eq(rwkv_h5_open(&f, path), RWKV_OK);
    for (int i = 0; i < 4; i++) {
        char buf[8192];
        ck_assert_int_eq(rwkv_h5_get_str(f, names[i], buf, sizeof buf), 0);
        // libhdf5's own vlen read of the same attribute (a valid file: safe here)
        hid_t a = H5Aopen(f, names[i], H5P_DEFAULT), t = H5Tcopy(H5T_C_S1);
        H5Tset_size(t, H5T_VARIABLE);
        H5Tset_cset(t, H5T_CSET_UTF8);
        char *v = NULL;
        ck_assert_int_ge(H5Aread(a, t, &v), 0);
        ck_assert_str_eq(buf, v ? v : "");
        ck_assert_str_eq(buf, vals[i]);
        H5free_memory(v);
        H5Tclose(t);
        H5Aclose(a);
    }
    char small[8];
    ck_assert_int_eq(rwkv_h5_get_str(f, "ascii", small, sizeof small), 0);
    ck_assert_str_eq(small, "rwkvsco");
    H5Fclose(f);
}
END_TEST

static rwkv_status crash_read(void *ctx) {
    (void)ctx;
    raise(SIGSEGV);
    return RWKV_OK;
}

static rwkv_status hang_read(void *ctx) {
    (void)ctx;
    for (;;) pause();
    return RWKV_OK;
}

static rwkv_status ok_read(void *ctx) {
    ++*(int *)ctx;
    return RWKV_ERR_SHAPE; // the reader's own status comes back
}

// The trial read: a crash or a hang in the child is an error naming the file, within the
// budget; a reader that finishes runs again here and its status is returned.
START_TEST(guarded_trial_read) {
    double t0 = now_s();
    ck_assert_int_eq(rwkv_h5_guarded("x.h5", "state file", 0.3, crash_read, NULL), RWKV_ERR_FORMAT);
    ck_assert_ptr_nonnull(strstr(rwkv_error_message(), "x.h5: corrupt HDF5 state file: libhdf5"));
    ck_assert_int_eq(rwkv_h5_guarded("y.h5", "dump", 0.3, hang_read, NULL), RWKV_ERR_FORMAT);
    ck_assert_ptr_nonnull(strstr(rwkv_error_message(), "y.h5: corrupt HDF5 dump: libhdf5 did not finish reading it within 0.3 s"));
    ck_assert_double_lt(now_s() - t0, 2.0);
    int calls = 0;
    ck_assert_int_eq(rwkv_h5_guarded("z.h5", "dump", 1.0, ok_read, &calls), RWKV_ERR_SHAPE);
    ck_assert_int_eq(calls, 1); // the child's call changed its own copy only
}
END_TEST

// A state file far bigger than the model's state is refused before libhdf5 parses it.
START_TEST(state_size_budget) {
    const char *path = tmp_path("big-state.h5");
    FILE *f = fopen(path, "wb");
    ck_assert_ptr_nonnull(f);
    ck_assert_int_eq(fseek(f, 4L << 20, SEEK_SET), 0);
    fputc(0, f);
    fclose(f);
    ck_assert_int_eq(load_state(path), RWKV_ERR_FORMAT);
    ck_assert_ptr_nonnull(strstr(rwkv_error_message(), "is too big for a state of this model"));
}
END_TEST

int main(void) {
    Suite *s = suite_create("fuzz");
    TCase *tc = tcase_create("regressions");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, state_regressions);
    tcase_add_test(tc, checkpoint_regressions);
    tcase_add_test(tc, dump_regressions);
    tcase_add_test(tc, intervene_file_regressions);
    tcase_add_test(tc, intervene_spec_regressions);
    tcase_add_test(tc, answer_span_overflow);
    tcase_add_test(tc, vlen_strings_read_back);
    tcase_add_test(tc, guarded_trial_read);
    tcase_add_test(tc, state_size_budget);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
