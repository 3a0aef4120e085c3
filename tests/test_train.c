/* The training loop: a run resumed from a checkpoint equals an uninterrupted one bitwise,
 * at any thread count; checkpoints round-trip; broken or foreign files give clear errors;
 * a non-finite loss stops the step before any weight changes. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "reference.h"
#include "testutil.h"

static const sadm_dit_config SMALL = {32, 8, 1, 16, 1, 2, 2.0f, 0.1f, 10, 1};

static sadm_trainer *new_trainer(const sadm_dataset *d, uint64_t seed) {
    sadm_dit *m;
    TU_OK(sadm_dit_create(&SMALL, seed, &m));
    sadm_train_config c;
    sadm_train_config_default(&c);
    c.batch_size = 5, c.seed = seed, c.lr = 1e-3f, c.ema_decay = 0.9f, c.grad_clip = 1.0f;
    sadm_trainer *tr;
    TU_OK(sadm_trainer_create(m, d, &c, &tr));
    return tr;
}

static void run(sadm_trainer *tr, int steps, double *last_loss) {
    for (int i = 0; i < steps; i++) {
        sadm_step_stats s;
        TU_OK(sadm_trainer_step(tr, &s));
        ck_assert(isfinite(s.loss) && s.grad_norm > 0);
        if (last_loss) *last_loss = s.loss;
    }
}

START_TEST(test_resume_equals_uninterrupted) {
    sadm_dataset *d;
    TU_OK(sadm_dataset_fmnist(NULL, "train", &d));
    char ckpt[300];
    snprintf(ckpt, sizeof ckpt, "%s/ckpt.safetensors", ref_tmpdir());
    sadm_set_num_threads(2);
    sadm_trainer *a = new_trainer(d, 42);
    double la, lb;
    run(a, 6, &la);
    ck_assert_int_eq(sadm_trainer_steps_done(a), 6);

    sadm_set_num_threads(1);
    sadm_trainer *b = new_trainer(d, 42);
    run(b, 3, NULL);
    TU_OK(sadm_trainer_save(b, ckpt));
    sadm_trainer_free(b);
    TU_OK(sadm_trainer_load(ckpt, d, &b));
    ck_assert_int_eq(sadm_trainer_steps_done(b), 3);
    sadm_set_num_threads(2);
    run(b, 3, &lb);
    ck_assert_msg(la == lb, "loss at step 6: %.9g uninterrupted, %.9g resumed", la, lb);
    size_t P = sadm_dit_param_total(sadm_trainer_model(a));
    tu_assert_same("weights after 6 steps", sadm_dit_param_data(sadm_trainer_model(b)), sadm_dit_param_data(sadm_trainer_model(a)), P);
    tu_assert_same("EMA after 6 steps", sadm_trainer_ema(b), sadm_trainer_ema(a), P);
    /* the EMA model file holds the EMA weights */
    char model[300];
    snprintf(model, sizeof model, "%s/ema.safetensors", ref_tmpdir());
    TU_OK(sadm_trainer_save_ema_model(a, model));
    sadm_dit *e;
    TU_OK(sadm_dit_load(model, NULL, &e));
    tu_assert_same("EMA model file", sadm_dit_param_data(e), sadm_trainer_ema(a), P);
    sadm_dit_free(e);
    /* the weights moved, the EMA lags behind them, pos_embed never changes */
    sadm_trainer *fresh = new_trainer(d, 42);
    const float *w0 = sadm_dit_param_data(sadm_trainer_model(fresh)), *w6 = sadm_dit_param_data(sadm_trainer_model(a));
    const sadm_param *pos = sadm_dit_param(sadm_trainer_model(a), 0);
    ck_assert_str_eq(pos->name, "pos_embed");
    tu_assert_same("pos_embed", w6 + pos->offset, w0 + pos->offset, pos->numel);
    ck_assert(memcmp(w0, w6, P * sizeof(float)) != 0);
    sadm_trainer_free(fresh);
    sadm_trainer_free(a);
    sadm_trainer_free(b);
    sadm_dataset_free(d);
    sadm_set_num_threads(0);
    ref_cleanup();
}
END_TEST

START_TEST(test_bad_checkpoints_and_nan) {
    sadm_dataset *d;
    TU_OK(sadm_dataset_fmnist(NULL, "train", &d));
    char ckpt[300], model[300], cut[300], cmd[1000];
    snprintf(ckpt, sizeof ckpt, "%s/ckpt.safetensors", ref_tmpdir());
    snprintf(model, sizeof model, "%s/model.safetensors", ref_tmpdir());
    snprintf(cut, sizeof cut, "%s/cut.safetensors", ref_tmpdir());
    sadm_trainer *tr = new_trainer(d, 1), *back;
    run(tr, 1, NULL);
    TU_OK(sadm_trainer_save(tr, ckpt));
    TU_OK(sadm_dit_save(sadm_trainer_model(tr), model));
    ck_assert_int_eq(sadm_trainer_load(model, d, &back), SADM_ERR_FORMAT);
    ck_assert_msg(strstr(sadm_last_error(), "not a training checkpoint"), "%s", sadm_last_error());
    snprintf(cmd, sizeof cmd, "head -c 20000 '%s' > '%s'", ckpt, cut);
    ck_assert_int_eq(system(cmd), 0);
    ck_assert_int_eq(sadm_trainer_load(cut, d, &back), SADM_ERR_FORMAT);
    ck_assert_msg(strstr(sadm_last_error(), cut) && strstr(sadm_last_error(), "truncated"), "%s", sadm_last_error());
    /* a NaN weight: the step fails, names the step, leaves weights and step count alone */
    sadm_dit *m = sadm_trainer_model(tr);
    size_t P = sadm_dit_param_total(m);
    float *w = sadm_dit_param_data(m);
    w[sadm_dit_param(m, 3)->offset] = NAN; /* t_embedder.mlp.0.weight */
    float *before = tu_copy(w, P);
    sadm_step_stats s;
    ck_assert_int_eq(sadm_trainer_step(tr, &s), SADM_ERR_NUMERIC);
    ck_assert_msg(strstr(sadm_last_error(), "step 2:"), "%s", sadm_last_error());
    ck_assert_int_eq(sadm_trainer_steps_done(tr), 1);
    tu_assert_same("weights after a NaN step", w, before, P);
    free(before);
    /* a model that does not fit the data */
    sadm_dit_config wrong = SMALL;
    wrong.num_classes = 7;
    sadm_dit *mw;
    TU_OK(sadm_dit_create(&wrong, 1, &mw));
    sadm_train_config c;
    sadm_train_config_default(&c);
    ck_assert_int_eq(sadm_trainer_create(mw, d, &c, &back), SADM_ERR_ARG);
    ck_assert_msg(strstr(sadm_last_error(), "7 classes"), "%s", sadm_last_error());
    sadm_dit_free(mw);
    sadm_trainer_free(tr);
    sadm_dataset_free(d);
    ref_cleanup();
}
END_TEST

int main(void) {
    Suite *s = suite_create("train");
    TCase *tc = tcase_create("train");
    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, test_resume_equals_uninterrupted);
    tcase_add_test(tc, test_bad_checkpoints_and_nan);
    suite_add_tcase(s, tc);
    return tu_run(s);
}
