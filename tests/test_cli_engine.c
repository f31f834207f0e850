// test_cli_engine.c: the run and generate subcommands end to end, against the goldens.
#include "util.h"

#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char *token_list(const int *t, size_t n) {
    char *s = malloc(n * 12 + 1), *p = s;
    for (size_t i = 0; i < n; i++) p += sprintf(p, "%s%d", i ? "," : "", t[i]);
    return s;
}

// run --logits writes [T, V] float32 that match the golden logits; the printed top-1 id is
// the golden argmax of the last position.
START_TEST(test_run_matches_golden) {
    const char *modes[] = {"seq", "par"};
    size_t T;
    int *tok = test_h5_read_int(test_fixture("golden-tiny4.h5"), "/tokens", &T);
    int nd;
    uint64_t d[4];
    double *ref = test_h5_read(test_fixture("golden-tiny4.h5"), "/logits", &nd, d);
    ck_assert_ptr_nonnull(ref);
    size_t V = d[1];
    char *list = token_list(tok, T), path[512], *out;
    snprintf(path, sizeof path, "%s/logits.bin", test_tmpdir());
    for (int m = 0; m < 2; m++) {
        int rc = test_cli(&out, "run %s --tokens %s --mode %s --top-k 1 --force --logits %s",
                          test_fixture("tiny-rwkv-4v0-660K-FP32.bin"), list, modes[m], path);
        ck_assert_msg(rc == 0, "run failed: %s", out);
        int best = 0;
        for (size_t v = 1; v < V; v++)
            if (ref[(T - 1) * V + v] > ref[(T - 1) * V + best]) best = (int)v;
        char want[64];
        snprintf(want, sizeof want, "position %zu: %d (", T - 1, best);
        ck_assert_msg(strstr(out, want) != NULL, "expected '%s' in: %s", want, out);
        free(out);
        FILE *f = fopen(path, "rb");
        ck_assert_ptr_nonnull(f);
        float *got = malloc(T * V * sizeof *got);
        ck_assert_uint_eq(fread(got, sizeof *got, T * V, f), T * V);
        ck_assert_int_eq(fgetc(f), EOF); // exactly [T, V]
        fclose(f);
        double worst = 0;
        for (size_t i = 0; i < T * V; i++) worst = fmax(worst, fabs(got[i] - ref[i]) / fmax(1, fabs(ref[i])));
        ck_assert_msg(worst < 1e-4, "%s logits error %g", modes[m], worst);
        free(got);
    }
    free(list); free(tok); free(ref);
}
END_TEST


// first byte.
START_TEST(test_generate_deterministic) {
    char *a, *b;
    const char *model = test_fixture("tiny-rwkv-4v0-660K-FP32.bin");
    ck_assert_int_eq(test_cli(&a, "generate %s --bytes 'The quick' -n 24 --seed 7 --temperature 0.9", model), 0);
    ck_assert_int_eq(test_cli(&b, "generate %s --bytes 'The quick' -n 24 --seed 7 --temperature 0.9", model), 0);
    ck_assert_str_eq(a, b);
    ck_assert_uint_ge(strlen(a), 2);
    free(a); free(b);
}
END_TEST

// Bad inputs give one clear line and a non-zero status, never a crash.
START_TEST(test_run_errors) {
    char *out;
    const char *model = test_fixture("rand-L2-C32-V50.pth");
    ck_assert_int_eq(test_cli(&out, "run %s --tokens 1,2,50", model), 1);
    ck_assert_msg(strstr(out, "token 50") && strstr(out, "[0, 50)"), "%s", out);
    free(out);
    ck_assert_int_eq(test_cli(&out, "run /nonexistent/model.pth --tokens 1"), 1);
    ck_assert_msg(strstr(out, "/nonexistent/model.pth"), "%s", out);
    free(out);
    ck_assert_int_eq(test_cli(&out, "run %s --tokens 1,x", model), 1);
    ck_assert_msg(strstr(out, "--tokens"), "%s", out);
    free(out);
    ck_assert_int_eq(test_cli(&out, "run %s --tokens 1 --mode fast", model), 2);
    ck_assert_msg(strstr(out, "--mode"), "%s", out);
    free(out);
    ck_assert_int_eq(test_cli(&out, "run %s", model), 2);
    free(out);
    ck_assert_int_eq(test_cli(&out, "run %s --tokens 1 --logits /nonexistent/dir/x.bin", model), 1);
    ck_assert_msg(strstr(out, "/nonexistent/dir/x.bin"), "%s", out);
    free(out);
    ck_assert_int_eq(test_cli(&out, "generate %s --tokens 1 -n 3 --top-p 0", model), 2);
    free(out);
    ck_assert_int_eq(test_cli(&out, "nosuchcommand"), 2);
    free(out);
    // --weights and --threads (shared by every command that runs a model): bad or missing
    // values are usage errors naming the option, in each such command
    const char *cmds[] = {"run", "generate", "dump", "compare", "eval", "state save"};
    for (size_t c = 0; c < sizeof cmds / sizeof cmds[0]; c++) {
        ck_assert_int_eq(test_cli(&out, "%s %s --tokens 1 --threads 5000", cmds[c], model), 2);
        ck_assert_msg(strstr(out, "--threads expects an integer in [0, 1024]"), "%s: %s", cmds[c], out);
        free(out);
        ck_assert_int_eq(test_cli(&out, "%s %s --tokens 1 --weights", cmds[c], model), 2);
        ck_assert_msg(strstr(out, "--weights needs a value"), "%s: %s", cmds[c], out);
        free(out);
    }
    ck_assert_int_eq(test_cli(&out, "run %s --tokens 1 --weights fp16", model), 1);
    ck_assert_msg(strstr(out, "fp16"), "%s", out);
    free(out);
}
END_TEST

// Every --weights mode runs in both modes, on a float file and on rwkv.cpp's Q5_1 file; the
// byte model's most likely byte after '"in' is the same in all of them (its logits differ by
// less than the top two's gap, see test_engine's bounds).
START_TEST(test_weights_modes) {
    const char *files[] = {"tiny-rwkv-4v0-660K-FP32.bin", "tiny-rwkv-4v0-660K-Q5_1.bin"};
    const char *modes[] = {"auto", "fp32", "bf16", "int8"};
    char first[64] = "";
    for (int f = 0; f < 2; f++)
        for (int w = 0; w < 4; w++)
            for (int par = 0; par <= 1; par++) {
                char *out;
                int rc = test_cli(&out, "run %s --bytes '\"in' --top-k 1 --weights %s --mode %s",
                                  test_fixture(files[f]), modes[w], par ? "par" : "seq");
                ck_assert_msg(rc == 0, "%s --weights %s: %s", files[f], modes[w], out);
                const char *p = strstr(out, "position 2: ");
                ck_assert_msg(p, "%s", out);
                char top[64];
                ck_assert_int_eq(sscanf(p, "position 2: %63s", top), 1);
                if (!first[0]) snprintf(first, sizeof first, "%s", top);
                ck_assert_msg(!strcmp(top, first), "%s --weights %s: top byte %s, fp32 file auto: %s", files[f],
                              modes[w], top, first);
                free(out);
            }
}
END_TEST

// Every subcommand answers --help with a usage line and status 0.
START_TEST(test_every_command_has_help) {
    char *list;
    ck_assert_int_eq(test_cli(&list, "--help"), 0);
    char *p = strstr(list, "commands:");
    ck_assert_ptr_nonnull(p);
    int n = 0;
    for (char *line = strtok(p + 9, "\n"); line; line = strtok(NULL, "\n")) {
        char name[64];
        if (sscanf(line, " %63s", name) != 1) continue;
        char *out;
        int rc = test_cli(&out, "%s --help", name);
        ck_assert_msg(rc == 0 && strstr(out, "usage"), "%s --help: rc %d: %s", name, rc, out);
        free(out);
        n++;
    }
    ck_assert_int_ge(n, 3);
    free(list);
}
END_TEST

// eval's mean cross-entropy equals the one computed here from the golden logits.
START_TEST(test_eval_matches_golden) {
    size_t T, V;
    int *tok;
    double *ref = test_golden_logits(test_fixture("golden-tiny4.h5"), &tok, &T, &V);
    double want = test_nll(ref, tok, V, 0, T) / (double)(T - 1);
    char *list = token_list(tok, T), *out;
    ck_assert_int_eq(test_cli(&out, "eval %s --tokens %s", test_fixture("tiny-rwkv-4v0-660K-FP32.bin"), list), 0);
    double got;
    size_t n;
    ck_assert_msg(sscanf(out, "loss_nats=%lf bits=%*f ppl=%*f tokens=%zu", &got, &n) == 2, "%s", out);
    ck_assert_uint_eq(n, T - 1);
    ck_assert_msg(fabs(got - want) < 1e-4, "eval %g, golden %g", got, want);
    free(out); free(list); free(tok); free(ref);
}
END_TEST

// A dataset file (header line + examples) feeds dump --input directly: one sequence per example.
START_TEST(test_dump_reads_dataset_file) {
    char ds[512], h5[512], *out;
    snprintf(ds, sizeof ds, "%s/pk.jsonl", test_tmpdir());
    snprintf(h5, sizeof h5, "%s/pk.h5", test_tmpdir());
    ck_assert_int_eq(test_cli(&out, "dataset make passkey --n 3 --len 96 --key-len 3 -o %s --force", ds), 0);
    free(out);
    int rc = test_cli(&out, "dump %s --input %s --taps blocks.0.state_num -o %s --force",
                      test_fixture("tiny-rwkv-4v0-660K-FP32.bin"), ds, h5);
    ck_assert_msg(rc == 0, "%s", out);
    free(out);
    int nd;
    uint64_t d[4];
    double *off = test_h5_read(h5, "/sequences/offsets", &nd, d);
    ck_assert_ptr_nonnull(off);
    ck_assert_uint_eq(d[0], 4); // S + 1 offsets for the 3 examples
    ck_assert_double_eq(off[3], 3 * 96);
    free(off);
}
END_TEST

// state save after a prefix, then run/generate --state on the rest, equals one run of the
// whole text (the last position's logits agree to rounding; generate's text is identical).
static float *read_floats(const char *path, size_t *n) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    *n = (size_t)ftell(f) / 4;
    rewind(f);
    float *v = malloc(*n * 4);
    if (fread(v, 4, *n, f) != *n) { free(v); v = NULL; }
    fclose(f);
    return v;
}

START_TEST(test_state_resume_cli) {
    const char *model = test_fixture("tiny-rwkv-4v0-660K-FP32.bin");
    char st[512], a[512], b[512], *out, *g1, *g2;
    snprintf(st, sizeof st, "%s/prefix.h5", test_tmpdir());
    snprintf(a, sizeof a, "%s/whole.bin", test_tmpdir());
    snprintf(b, sizeof b, "%s/resumed.bin", test_tmpdir());
    ck_assert_int_eq(test_cli(&out, "state save %s --bytes 'The cat sat ' -o %s --force", model, st), 0);
    free(out);
    ck_assert_int_eq(test_cli(&out, "run %s --bytes 'The cat sat on the mat' --logits %s", model, a), 0);
    free(out);
    int rc1 = test_cli(&out, "run %s --bytes 'on the mat' --state %s --logits %s", model, st, b);
    ck_assert_msg(rc1 == 0, "%s", out);
    free(out);
    size_t na, nb;
    float *la = read_floats(a, &na), *lb = read_floats(b, &nb);
    ck_assert_ptr_nonnull(la);
    ck_assert_ptr_nonnull(lb);
    ck_assert_uint_eq(na, 22 * 256);
    ck_assert_uint_eq(nb, 10 * 256);
    for (size_t i = 0; i < nb; i++) // the resumed rows are the whole run's last 10
        ck_assert_msg(fabsf(lb[i] - la[12 * 256 + i]) < 1e-4f * fmaxf(1, fabsf(la[12 * 256 + i])), "row %zu", i / 256);
    ck_assert_int_eq(test_cli(&g1, "generate %s --bytes 'The cat sat on' -n 16 --seed 3", model), 0);
    ck_assert_int_eq(test_cli(&out, "state save %s --bytes 'The cat sat ' -o %s --force", model, st), 0);
    free(out);
    int rc2 = test_cli(&g2, "generate %s --bytes 'on' --state %s -n 16 --seed 3", model, st);
    ck_assert_msg(rc2 == 0, "%s", g2);
    ck_assert_str_eq(g1, g2);
    free(g1); free(g2); free(la); free(lb);
    ck_assert_int_eq(test_cli(&out, "run %s --bytes x --state /nonexistent.h5", model), 1);
    ck_assert_msg(strstr(out, "/nonexistent.h5"), "%s", out);
    free(out);
}
END_TEST

// run and dump hint at the cause of an input error: the vocabulary hint only for a token
// outside the vocabulary, the path for a missing --file or --input, the list syntax for a
// bad --tokens, the format for a malformed --input line.
START_TEST(test_input_error_hints) {
    const char *vocab = "token ids must be below the model's vocabulary size";
    char model[1024], jsonl[1024], bad[1024], h5[1024];
    snprintf(model, sizeof model, "%s", test_fixture("rand-L2-C32-V50.pth"));
    snprintf(jsonl, sizeof jsonl, "%s/hint_tokens.jsonl", test_tmpdir());
    snprintf(bad, sizeof bad, "%s/hint_bad.jsonl", test_tmpdir());
    snprintf(h5, sizeof h5, "%s/hint.h5", test_tmpdir());
    FILE *f = fopen(jsonl, "w");
    fputs("{\"tokens\": [1, 2]}\n{\"tokens\": [3, 60]}\n", f);
    fclose(f);
    f = fopen(bad, "w");
    fputs("{\"tokens\": [1, 2]}\n{\"tokens\": [3,\n", f);
    fclose(f);
    struct { const char *args, *hint; } cases[] = {
        {"--tokens 1,2,50", vocab},
        {"--file /nonexistent/input.txt", "check the --file path"},
        {"--tokens 1,,x", "--tokens takes comma-separated ids"},
        {"--text hi --tokenizer neox:/nonexistent/tokenizer.json", "--tokenizer takes neox:"},
        {"--text hi", "the model's own tokenizer"}, // bytes (256 ids) on a model of 50
    };
    for (int dump = 0; dump <= 1; dump++)
        for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
            char *out;
            int rc = dump ? test_cli(&out, "dump %s %s --taps logits -o %s --force", model, cases[i].args, h5)
                          : test_cli(&out, "run %s %s", model, cases[i].args);
            ck_assert_msg(rc == 1, "%s %s: rc %d: %s", dump ? "dump" : "run", cases[i].args, rc, out);
            const char *h = strstr(out, "hint: ");
            ck_assert_msg(h && strstr(h, cases[i].hint), "%s %s: %s", dump ? "dump" : "run", cases[i].args, out);
            if (cases[i].hint != vocab) ck_assert_msg(!strstr(out, vocab), "%s: %s", cases[i].args, out);
            free(out);
        }
    struct { const char *file, *hint; } inputs[] = {
        {jsonl, vocab}, {"/nonexistent/prompts.jsonl", "check the --input path"}, {bad, "--input takes one prompt per line"}};
    for (size_t i = 0; i < sizeof inputs / sizeof inputs[0]; i++) {
        char *out;
        ck_assert_int_eq(test_cli(&out, "dump %s --input %s --taps logits -o %s --force", model, inputs[i].file, h5), 1);
        const char *h = strstr(out, "hint: ");
        ck_assert_msg(h && strstr(h, inputs[i].hint), "--input %s: %s", inputs[i].file, out);
        if (inputs[i].hint != vocab) ck_assert_msg(!strstr(out, vocab), "%s: %s", inputs[i].file, out);
        free(out);
    }
    // a {"tokens"} file needs no tokenizer: it runs on a model smaller than the byte vocabulary
    f = fopen(jsonl, "w");
    fputs("{\"tokens\": [1, 2]}\n{\"tokens\": [3, 49]}\n", f);
    fclose(f);
    char *out;
    ck_assert_int_eq(test_cli(&out, "dump %s --input %s --taps logits -o %s --force", model, jsonl, h5), 0);
    free(out);
}
END_TEST

int main(void) {
    Suite *s = suite_create("cli_engine");
    TCase *tc = tcase_create("cli");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_run_matches_golden);
    tcase_add_test(tc, test_generate_deterministic);
    tcase_add_test(tc, test_run_errors);
    tcase_add_test(tc, test_input_error_hints);
    tcase_add_test(tc, test_every_command_has_help);
    tcase_add_test(tc, test_weights_modes);
    tcase_add_test(tc, test_eval_matches_golden);
    tcase_add_test(tc, test_dump_reads_dataset_file);
    tcase_add_test(tc, test_state_resume_cli);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
