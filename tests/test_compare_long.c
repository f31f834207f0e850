// test_compare_long.c: compare on a long input. The WKV state is stored scaled by e^{-max};
// compared scale-free (num/den, den at the common max) the two modes of the demo model agree
// within the default tolerance over 20k tokens of text it never trained on, as its logits do.
#include "util.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define LONG_TOKENS 20000 // bytes of held-out text (the demo model is byte-level)

// The first n bytes of the held-out tenth of tinyshakespeare (as scripts/demo.sh cuts it).
static const char *heldout_file(size_t n) {
    FILE *f = fopen(test_fixture("tinyshakespeare.txt"), "rb");
    ck_assert_ptr_nonnull(f);
    fseek(f, 0, SEEK_END);
    long size = ftell(f);
    fseek(f, size - size / 10, SEEK_SET);
    char *buf = malloc(n);
    ck_assert_uint_eq(fread(buf, 1, n, f), n);
    fclose(f);
    static char path[512];
    snprintf(path, sizeof path, "%s/heldout20k.txt", test_tmpdir());
    FILE *o = fopen(path, "wb");
    ck_assert_ptr_nonnull(o);
    fwrite(buf, 1, n, o);
    fclose(o);
    free(buf);
    return path;
}

START_TEST(test_compare_demo_20k_tokens) {
    const char *in = heldout_file(LONG_TOKENS);
    char csv[600], *out;
    snprintf(csv, sizeof csv, "%s/compare20k.csv", test_tmpdir());
    int rc = test_cli(&out, "compare models/demo.safetensors --file %s --csv %s", in, csv);
    ck_assert_msg(rc == 0, "compare exited %d on 20k tokens:\n%s", rc, out);
    ck_assert_msg(strstr(out, "agreement: all 36 taps within tol 0.0001") != NULL, "%s", out);
    ck_assert_msg(strstr(out, "blocks.1.state_num as num/den") != NULL, "%s", out);
    free(out);
    // One CSV row per tap, each with the form it was compared in.
    FILE *f = fopen(csv, "r");
    ck_assert_ptr_nonnull(f);
    char line[1024];
    int rows = 0, scale_free = 0;
    while (fgets(line, sizeof line, f)) {
        rows++;
        scale_free += strstr(line, ",num/den\n") != NULL || strstr(line, ",den at common max\n") != NULL;
    }
    fclose(f);
    ck_assert_int_eq(rows, 1 + 36);
    ck_assert_int_eq(scale_free, 4); // state_num and state_den of both layers
}
END_TEST

int main(void) {
    Suite *s = suite_create("compare_long");
    TCase *tc = tcase_create("demo");
    tcase_set_timeout(tc, 600);
    tcase_add_test(tc, test_compare_demo_20k_tokens);
    suite_add_tcase(s, tc);
    SRunner *r = srunner_create(s);
    srunner_run_all(r, CK_NORMAL);
    int failed = srunner_ntests_failed(r);
    srunner_free(r);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
