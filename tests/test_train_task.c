// test_train_task.c: `rwkvscope train --task`: trains on a task stream (vocab from the task),
// and impossible task configurations fail with clear errors.
#include "core/model/model.h"
#include "util.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

START_TEST(train_on_task) {
    char model[1024], *out = NULL;
    snprintf(model, sizeof model, "%s/ind.safetensors", test_tmpdir());
    int rc = test_cli(&out, "train --task induction --task-len 16 --vocab 16 --layers 1 --embd 16 "
                      "--ctx 32 --batch 4 --steps 3 --threads 1 -o %s", model);
    ck_assert_msg(rc == 0, "%s", out);
    ck_assert_ptr_nonnull(strstr(out, "task:induction"));
    free(out);
    rwkv_model *m = NULL;
    ck_assert_int_eq(rwkv_model_load(&m, model), RWKV_OK);
    ck_assert_int_eq(m->cfg.n_vocab, 16); // the task's vocabulary
    rwkv_model_free(m);
    ck_assert_int_eq(test_cli(&out, "train --task passkey --task-len 40 --layers 1 --embd 16 "
                              "--ctx 80 --batch 2 --steps 1 --force -o %s", model), 1);
    ck_assert_ptr_nonnull(strstr(out, "shorter than the needle"));
    free(out);
    ck_assert_int_eq(test_cli(&out, "train --task sorting --layers 1 --embd 16 --ctx 80 --batch 2 "
                              "--steps 1 --force -o %s", model), 1);
    ck_assert_ptr_nonnull(strstr(out, "unknown task 'sorting'"));
    free(out);
    ck_assert_int_eq(test_cli(&out, "train --task passkey --depth 3 --layers 1 --embd 16 --ctx 80 "
                              "--batch 2 --steps 1 --force -o %s", model), 2);
    free(out);
}
END_TEST

int main(void) {
    Suite *s = suite_create("train_task");
    TCase *tc = tcase_create("train_task");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, train_on_task);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int nf = srunner_ntests_failed(sr);
    srunner_free(sr);
    return nf ? 1 : 0;
}
