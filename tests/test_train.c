/* The training loop: a run resumed from a checkpoint equals an uninterrupted one bitwise,
 * at any thread count; checkpoints round-trip; broken or foreign files give clear errors;
 * a non-finite loss stops the step before any weight changes. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "reference.h"
#include "testutil.h"

static const sadm_dit_config SMALL = {32, 8, 1, 16, 1, 2, 2.0f, 0.1f, 10, 1};

static sadm_trainer *new_trainer(const sadm_dataset *d, uint64_t seed) { return tu_small_trainer(d, seed); }

static void run(sadm_trainer *tr, int steps, double *last_loss) {
    sadm_step_stats s;
    tu_train_steps(tr, steps, &s);
    if (last_loss) *last_loss = s.loss;
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

/* --precision bf16: resumes bitwise at other thread counts, the checkpoint records it, it
 * really trains differently from fp32, and a checkpoint of either precision continues in
 * the other exactly as the same trainer switched in memory would. */
static sadm_trainer *bf16_trainer(const sadm_dataset *d, uint64_t seed) {
    sadm_trainer *tr = new_trainer(d, seed);
    TU_OK(sadm_trainer_set_precision(tr, SADM_PRECISION_BF16));
    return tr;
}

/* The EMA warm-up: the update after step s uses min(decay, (1+s)/(10+s)), recomputed here
 * in double from the weights after every step; a checkpoint records it and resumes it. */
START_TEST(test_ema_warmup) {
    sadm_dataset *d;
    TU_OK(sadm_dataset_fmnist(NULL, "train", &d));
    sadm_dit *m;
    TU_OK(sadm_dit_create(&SMALL, 9, &m));
    sadm_train_config c;
    sadm_train_config_default(&c);
    c.batch_size = 5, c.seed = 9, c.lr = 1e-3f, c.ema_decay = 0.95f, c.ema_warmup = 1;
    sadm_trainer *tr;
    TU_OK(sadm_trainer_create(m, d, &c, &tr));
    size_t P = sadm_dit_param_total(sadm_trainer_model(tr));
    double *ema = malloc(P * sizeof(double));
    for (size_t i = 0; i < P; i++) ema[i] = sadm_dit_param_data(sadm_trainer_model(tr))[i];
    for (long s = 0; s < 40; s++) {
        double want = fmin(0.95, (1.0 + s) / (10.0 + s));
        ck_assert_msg(sadm_ema_decay_at(&c, s) == (float)want, "step %ld: decay %.9g, expected %.9g", s,
                      sadm_ema_decay_at(&c, s), want);
        tu_train_steps(tr, 1, NULL);
        const float *w = sadm_dit_param_data(sadm_trainer_model(tr)), *e = sadm_trainer_ema(tr);
        double d32 = (float)want, worst = 0;
        for (size_t i = 0; i < P; i++) {
            ema[i] = d32 * ema[i] + (1 - d32) * w[i];
            worst = fmax(worst, fabs(ema[i] - e[i]) / (fabs(ema[i]) + 1e-3));
        }
        ck_assert_msg(worst < 1e-5, "EMA after step %ld: relative difference %.3g from the direct computation", s + 1, worst);
    }
    ck_assert(sadm_ema_decay_at(&c, 1000) == 0.95f);
    c.ema_warmup = 0;
    ck_assert(sadm_ema_decay_at(&c, 0) == 0.95f);
    char ckpt[300];
    snprintf(ckpt, sizeof ckpt, "%s/warm.safetensors", ref_tmpdir());
    TU_OK(sadm_trainer_save(tr, ckpt));
    sadm_trainer *back;
    TU_OK(sadm_trainer_load(ckpt, d, &back));
    ck_assert_int_eq(sadm_trainer_config(back)->ema_warmup, 1);
    sadm_trainer_free(back);
    sadm_trainer_free(tr);
    free(ema);
    sadm_dataset_free(d);
    ref_cleanup();
}
END_TEST

START_TEST(test_bf16_resume_and_interchange) {
    sadm_dataset *d;
    TU_OK(sadm_dataset_fmnist(NULL, "train", &d));
    char ckpt[300];
    snprintf(ckpt, sizeof ckpt, "%s/ckpt.safetensors", ref_tmpdir());
    sadm_set_num_threads(2);
    sadm_trainer *a = bf16_trainer(d, 7), *f = new_trainer(d, 7);
    run(a, 6, NULL);
    run(f, 6, NULL);
    size_t P = sadm_dit_param_total(sadm_trainer_model(a));
    ck_assert_msg(memcmp(sadm_dit_param_data(sadm_trainer_model(a)), sadm_dit_param_data(sadm_trainer_model(f)),
                         P * sizeof(float)) != 0,
                  "bf16 and fp32 runs ended with the same weights: the bf16 products did not run");
    /* 3 steps on 1 thread, saved, loaded, 3 more on 2: bitwise the uninterrupted run */
    sadm_set_num_threads(1);
    sadm_trainer *b = bf16_trainer(d, 7);
    run(b, 3, NULL);
    TU_OK(sadm_trainer_save(b, ckpt));
    sadm_trainer_free(b);
    TU_OK(sadm_trainer_load(ckpt, d, &b));
    ck_assert_int_eq(sadm_trainer_config(b)->precision, SADM_PRECISION_BF16);
    ck_assert_int_eq(sadm_dit_precision(sadm_trainer_model(b)), SADM_PRECISION_BF16);
    sadm_set_num_threads(2);
    run(b, 3, NULL);
    tu_assert_same("bf16 weights after 6 steps, resumed", sadm_dit_param_data(sadm_trainer_model(b)),
                   sadm_dit_param_data(sadm_trainer_model(a)), P);
    tu_assert_same("bf16 EMA after 6 steps, resumed", sadm_trainer_ema(b), sadm_trainer_ema(a), P);
    sadm_trainer_free(b);
    /* interchange: 3 steps in one precision, then 3 in the other, in memory and through the
     * checkpoint */
    for (int first = 0; first < 2; first++) {
        sadm_precision p1 = first ? SADM_PRECISION_BF16 : SADM_PRECISION_FP32;
        sadm_precision p2 = first ? SADM_PRECISION_FP32 : SADM_PRECISION_BF16;
        sadm_trainer *mem = new_trainer(d, 9), *file;
        TU_OK(sadm_trainer_set_precision(mem, p1));
        run(mem, 3, NULL);
        TU_OK(sadm_trainer_save(mem, ckpt));
        TU_OK(sadm_trainer_set_precision(mem, p2));
        run(mem, 3, NULL);
        TU_OK(sadm_trainer_load(ckpt, d, &file));
        ck_assert_int_eq(sadm_trainer_config(file)->precision, p1);
        TU_OK(sadm_trainer_set_precision(file, p2));
        run(file, 3, NULL);
        tu_assert_same(first ? "bf16 checkpoint continued in fp32" : "fp32 checkpoint continued in bf16",
                       sadm_dit_param_data(sadm_trainer_model(file)), sadm_dit_param_data(sadm_trainer_model(mem)), P);
        sadm_trainer_free(mem);
        sadm_trainer_free(file);
    }
    sadm_trainer_free(a);
    sadm_trainer_free(f);
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
    /* settings of a damaged or hostile checkpoint: strict syntax and ranges, the key named */
    static const struct {
        const char *from, *to, *words;
    } bad[] = {
        {"\"train.step\":\"1\"", "\"train.step\":\"2.7\"", "'train.step' is '2.7', expected an integer"},
        {"\"train.step\":\"1\"", "\"train.step\":\"1e300\"", "'train.step' is '1e300', expected an integer"},
        {"\"train.batch_size\":\"5\"", "\"train.batch_size\":\"99999999999\"", "'train.batch_size' is '99999999999', expected an integer in [1, 16777216]"},
        {"\"train.diffusion_steps\":\"1000\"", "\"train.diffusion_steps\":\"-3\"", "'train.diffusion_steps' is '-3', expected an integer in [1, 1000000]"},
        {"\"train.lr\":\"", "\"train.lr\":\"nan", "'train.lr' is 'nan"},
        {"\"train.ema_decay\":\"", "\"train.ema_decay\":\"7", "'train.ema_decay'"},
        {"\"train.seed\":\"1\"", "\"train.seed\":\"18446744073709551616\"", "'train.seed' is '18446744073709551616', expected an unsigned 64-bit"},
        {"\"train.seed\":\"1\"", "\"train.seed\":\"1x\"", "'train.seed' is '1x'"},
        {"\"train.schedule\":\"linear\"", "\"train.schedule\":\"linear-ish\"", "'train.schedule' is 'linear-ish'"},
        {"\"depth\":\"1\"", "\"depth\":\"10000000\"", "depth must lie in [0, 1024]"},
    };
    char patched[300];
    snprintf(patched, sizeof patched, "%s/patched.safetensors", ref_tmpdir());
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        tu_patch_header(ckpt, patched, bad[i].from, bad[i].to);
        back = NULL;
        ck_assert_int_eq(sadm_trainer_load(patched, d, &back), SADM_ERR_FORMAT);
        ck_assert_msg(strstr(sadm_last_error(), "patched.safetensors") && strstr(sadm_last_error(), bad[i].words),
                      "case %zu: '%s' lacks '%s'", i, sadm_last_error(), bad[i].words);
        ck_assert_ptr_null(back);
    }
    /* a full 64-bit seed survives save and load exactly */
    tu_patch_header(ckpt, patched, "\"train.seed\":\"1\"", "\"train.seed\":\"18446744073709551615\"");
    TU_OK(sadm_trainer_load(patched, d, &back));
    ck_assert(sadm_trainer_config(back)->seed == UINT64_MAX);
    sadm_trainer_free(back);
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

/* A short run replayed in PyTorch from the same initial weights and batches: the loss of
 * every step within 1e-4 relative, the final weights and EMA within 1e-3 (relative L2
 * per tensor) — AdamW's sign-like early steps amplify float rounding a little. */
START_TEST(test_loss_curve_matches_torch) {
    sadm_dataset *d;
    TU_OK(sadm_dataset_fmnist(NULL, "train", &d));
    const sadm_dit_config cfg = {32, 8, 1, 32, 2, 4, 4.0f, 0.1f, 10, 1};
    sadm_dit *m;
    TU_OK(sadm_dit_create(&cfg, 3, &m));
    /* DiT's own initialisation (zero adaLN and output layer): real training starts there */
    char model[300], batches[300], out[300], args[1200];
    snprintf(model, sizeof model, "%s/init.safetensors", ref_tmpdir());
    snprintf(batches, sizeof batches, "%s/batches.safetensors", ref_tmpdir());
    snprintf(out, sizeof out, "%s/out.safetensors", ref_tmpdir());
    TU_OK(sadm_dit_save(m, model));
    sadm_train_config c;
    sadm_train_config_default(&c);
    c.batch_size = 6, c.seed = 11, c.lr = 1e-3f, c.ema_decay = 0.9f;
    sadm_trainer *tr;
    TU_OK(sadm_trainer_create(m, d, &c, &tr));
    enum { K = 8 };
    size_t per = 32 * 32, B = 6;
    float *keep = tu_alloc(K * (2 * B * per)), losses[K];
    int64_t keep_t[K][6], keep_y[K][6];
    sadm_st_writer *bw = sadm_st_writer_new();
    char names[K][4][32];
    int64_t sx[4] = {6, 1, 32, 32}, sn[1] = {6};
    for (int k = 0; k < K; k++) {
        const float *x0, *noise;
        const int64_t *t, *y;
        TU_OK(sadm_trainer_next_batch(tr, &x0, &t, &y, &noise));
        memcpy(keep + k * 2 * B * per, x0, B * per * sizeof(float));
        memcpy(keep + k * 2 * B * per + B * per, noise, B * per * sizeof(float));
        memcpy(keep_t[k], t, sizeof keep_t[k]);
        memcpy(keep_y[k], y, sizeof keep_y[k]);
        snprintf(names[k][0], 32, "x0.%d", k);
        snprintf(names[k][1], 32, "noise.%d", k);
        snprintf(names[k][2], 32, "t.%d", k);
        snprintf(names[k][3], 32, "y.%d", k);
        TU_OK(sadm_st_writer_add(bw, names[k][0], SADM_DTYPE_F32, 4, sx, keep + k * 2 * B * per));
        TU_OK(sadm_st_writer_add(bw, names[k][1], SADM_DTYPE_F32, 4, sx, keep + k * 2 * B * per + B * per));
        TU_OK(sadm_st_writer_add(bw, names[k][2], SADM_DTYPE_I64, 1, sn, keep_t[k]));
        TU_OK(sadm_st_writer_add(bw, names[k][3], SADM_DTYPE_I64, 1, sn, keep_y[k]));
        sadm_step_stats s;
        TU_OK(sadm_trainer_step(tr, &s));
        losses[k] = (float)s.loss;
    }
    TU_OK(sadm_st_writer_save(bw, batches));
    sadm_st_writer_free(bw);
    snprintf(args, sizeof args, "replay '%s' '%s' '%s' 1e-3 0.9", model, batches, out);
    ref_run("train_torch.py", args);
    sadm_st_file *f;
    TU_OK(sadm_st_open(out, &f));
    float ref[K];
    int64_t sk[1] = {K};
    TU_OK(sadm_st_read_f32(f, "loss", 1, sk, ref));
    tu_assert_close("loss curve", losses, ref, K, 1e-4, 0);
    ck_assert_msg(ref[K - 1] != ref[0], "the replayed losses do not change: the comparison would prove little");
    sadm_dit *mm = sadm_trainer_model(tr);
    const float *weights = sadm_dit_param_data(mm), *ema = sadm_trainer_ema(tr);
    for (size_t i = 0; i < sadm_dit_num_params(mm); i++) {
        const sadm_param *p = sadm_dit_param(mm, i);
        for (int which = 0; which < 2; which++) {
            char key[160];
            snprintf(key, sizeof key, "%s%s", which ? "ema." : "", p->name);
            float *r = tu_alloc(p->numel);
            TU_OK(sadm_st_read_f32(f, key, p->ndim, p->shape, r));
            const float *ours = (which ? ema : weights) + p->offset;
            double dd = 0, rr = 0;
            for (size_t k = 0; k < p->numel; k++) dd += ((double)ours[k] - r[k]) * ((double)ours[k] - r[k]), rr += (double)r[k] * r[k];
            ck_assert_msg(sqrt(dd) <= 1e-3 * sqrt(rr) + 1e-7, "%s after %d steps: ||diff|| %.3g, ||ref|| %.3g", key, K, sqrt(dd), sqrt(rr));
            free(r);
        }
    }
    sadm_st_close(f);
    sadm_trainer_free(tr);
    sadm_dataset_free(d);
    free(keep);
    ref_cleanup();
}
END_TEST

/* A new seed takes effect at the next step (even with a batch already prefetched) and
 * travels with the checkpoint. */
START_TEST(test_set_seed) {
    sadm_dataset *d;
    TU_OK(sadm_dataset_fmnist(NULL, "train", &d));
    sadm_trainer *a = new_trainer(d, 3), *b = new_trainer(d, 3), *c = new_trainer(d, 3);
    run(a, 2, NULL);
    run(b, 2, NULL);
    run(c, 4, NULL);
    TU_OK(sadm_trainer_set_seed(a, 99));
    run(a, 2, NULL);
    char ckpt[300];
    snprintf(ckpt, sizeof ckpt, "%s/s.safetensors", ref_tmpdir());
    TU_OK(sadm_trainer_save(b, ckpt));
    sadm_trainer_free(b);
    TU_OK(sadm_trainer_load(ckpt, d, &b));
    TU_OK(sadm_trainer_set_seed(b, 99));
    run(b, 1, NULL);
    TU_OK(sadm_trainer_save(b, ckpt));
    sadm_trainer_free(b);
    TU_OK(sadm_trainer_load(ckpt, d, &b));
    ck_assert_uint_eq(sadm_trainer_config(b)->seed, 99);
    run(b, 1, NULL);
    size_t P = sadm_dit_param_total(sadm_trainer_model(a));
    tu_assert_same("reseeded runs", sadm_dit_param_data(sadm_trainer_model(b)), sadm_dit_param_data(sadm_trainer_model(a)), P);
    ck_assert(memcmp(sadm_dit_param_data(sadm_trainer_model(c)), sadm_dit_param_data(sadm_trainer_model(a)), P * sizeof(float)));
    sadm_trainer_free(a), sadm_trainer_free(b), sadm_trainer_free(c);
    sadm_dataset_free(d);
    ref_cleanup();
}
END_TEST

/* ------------------------------------------------------------------ sadm_run */
static int stop_at = 0;
static long seen_steps = 0;
static int stop_cb(void *ctx, const sadm_run_event *ev) {
    (void)ctx;
    seen_steps++;
    return stop_at && ev->stats->step == stop_at;
}

/* The steps logged in a log.jsonl, in order, as a string "2,4,5,". */
static void logged_steps(const char *path, char *out, size_t size) {
    FILE *f = fopen(path, "r");
    ck_assert_msg(f != NULL, "%s missing", path);
    char line[1024];
    out[0] = 0;
    while (fgets(line, sizeof line, f)) {
        long step = -1;
        ck_assert_msg(sscanf(line, "{\"step\": %ld,", &step) == 1, "log line: %s", line);
        snprintf(out + strlen(out), size - strlen(out), "%ld,", step);
    }
    fclose(f);
}

static long checkpoint_step(const char *path) {
    sadm_st_file *f;
    TU_OK(sadm_st_open(path, &f));
    const char *v = sadm_st_metadata(f, "train.step");
    long step = v ? atol(v) : -1;
    sadm_st_close(f);
    return step;
}

/* The library's training run: log cadence, checkpoints, a stop by the callback, resume
 * with the log cut back, and bad settings refused. */
START_TEST(test_run_loop) {
    sadm_dataset *d;
    TU_OK(sadm_dataset_fmnist(NULL, "train", &d));
    char dir[] = "/tmp/sadm_test_run_XXXXXX", ck[300], ema[300], lg[300], got[128];
    ck_assert_ptr_nonnull(mkdtemp(dir));
    snprintf(ck, sizeof ck, "%s/checkpoint.safetensors", dir);
    snprintf(ema, sizeof ema, "%s/model-ema.safetensors", dir);
    snprintf(lg, sizeof lg, "%s/log.jsonl", dir);
    sadm_run_config rc = {ck, ema, lg, 5, 2, 3};
    sadm_run_result res;
    sadm_trainer *tr = tu_small_trainer(d, 3);
    stop_at = 2, seen_steps = 0;
    TU_OK(sadm_run(tr, &rc, stop_cb, NULL, &res));
    ck_assert(res.stopped && res.steps_done == 2 && seen_steps == 2);
    ck_assert_int_eq(checkpoint_step(ck), 2); /* a stop still saves */
    sadm_trainer_free(tr);
    /* a line of a step the checkpoint never reached (a run killed after logging it) */
    FILE *f = fopen(lg, "a");
    fprintf(f, "{\"step\": 3, \"loss\": 1}\n{\"step\": 4, \"lo");
    fclose(f);
    TU_OK(sadm_trainer_load(ck, d, &tr));
    stop_at = 0, seen_steps = 0;
    TU_OK(sadm_run(tr, &rc, stop_cb, NULL, &res));
    ck_assert(!res.stopped && res.steps_done == 5 && seen_steps == 3);
    ck_assert_uint_eq(res.log_lines_dropped, 2);
    logged_steps(lg, got, sizeof got);
    ck_assert_str_eq(got, "2,4,5,");
    ck_assert_int_eq(checkpoint_step(ck), 5);
    sadm_dit *m;
    TU_OK(sadm_dit_load(ema, NULL, &m));
    tu_assert_same("EMA model file of the run", sadm_dit_param_data(m), sadm_trainer_ema(tr), sadm_dit_param_total(m));
    sadm_dit_free(m);
    /* done already: nothing more runs, the checkpoint is written again */
    TU_OK(sadm_run(tr, &rc, NULL, NULL, &res));
    ck_assert(res.steps_done == 5);
    rc.log_every = 0;
    ck_assert_int_eq(sadm_run(tr, &rc, NULL, NULL, NULL), SADM_ERR_ARG);
    rc.log_every = 2;
    char bad[400];
    snprintf(bad, sizeof bad, "%s/no/such/dir/log.jsonl", dir);
    rc.log = bad;
    ck_assert_int_eq(sadm_run(tr, &rc, NULL, NULL, NULL), SADM_ERR_IO);
    ck_assert_msg(strstr(sadm_last_error(), "cannot open") && strstr(sadm_last_error(), bad), "%s", sadm_last_error());
    sadm_trainer_free(tr);
    unlink(ck), unlink(ema), unlink(lg), rmdir(dir);
    sadm_dataset_free(d);
}
END_TEST

int main(void) {
    Suite *s = suite_create("train");
    TCase *tc = tcase_create("train");
    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, test_resume_equals_uninterrupted);
    tcase_add_test(tc, test_bf16_resume_and_interchange);
    tcase_add_test(tc, test_ema_warmup);
    tcase_add_test(tc, test_set_seed);
    tcase_add_test(tc, test_run_loop);
    tcase_add_test(tc, test_bad_checkpoints_and_nan);
    tcase_add_test(tc, test_loss_curve_matches_torch);
    suite_add_tcase(s, tc);
    return tu_run(s);
}
