/* The backend seam: selection by name, precision checks, no allocation in the training
 * loop, and the mock backend (tests/mock_backend.h) proving that DiT training, resuming,
 * sampling and the public passes never touch backend memory on the host while giving the
 * CPU backend's results bitwise. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../lib/backend.h"
#include "mock_backend.h"
#include "testutil.h"

static int contains(const char *s, const char *part) { return strstr(s, part) != NULL; }

START_TEST(test_select) {
    sadm_backend *be;
    const char *note;
    TU_OK(sadm_backend_select("cpu", &be, &note));
    ck_assert_str_eq(sadm_backend_name(be), "cpu");
    ck_assert_str_eq(note, "");
    ck_assert_ptr_eq(be, sadm_backend_cpu());
    /* no CUDA backend is built: auto falls back and says why */
    TU_OK(sadm_backend_select("auto", &be, &note));
    ck_assert_str_eq(sadm_backend_name(be), "cpu");
    ck_assert_msg(contains(note, "cuda is not available") && contains(note, "using cpu"), "note: %s", note);
    ck_assert_int_eq(sadm_backend_select("cuda", &be, &note), SADM_ERR_UNSUPPORTED);
    ck_assert_msg(contains(sadm_last_error(), "device cuda") && contains(sadm_last_error(), "not available"), "%s",
                  sadm_last_error());
    ck_assert_ptr_null(be);
    ck_assert_int_eq(sadm_backend_select("gpu", &be, NULL), SADM_ERR_ARG);
    ck_assert_msg(contains(sadm_last_error(), "'gpu'") && contains(sadm_last_error(), "choices: auto, cuda, cpu"), "%s",
                  sadm_last_error());
    setenv("SADM_DEVICE", "tpu", 1);
    ck_assert_int_eq(sadm_backend_select(NULL, &be, NULL), SADM_ERR_ARG);
    ck_assert_msg(contains(sadm_last_error(), "SADM_DEVICE 'tpu'"), "%s", sadm_last_error());
    setenv("SADM_DEVICE", "cpu", 1);
    TU_OK(sadm_backend_select(NULL, &be, NULL));
    ck_assert_str_eq(sadm_backend_name(be), "cpu");
    unsetenv("SADM_DEVICE");
    /* the list */
    ck_assert_uint_eq(sadm_backend_count(), 2);
    const char *why;
    ck_assert(sadm_backend_available("cpu", &why));
    ck_assert(!sadm_backend_available("cuda", &why) && *why);
    ck_assert(!sadm_backend_available("nonsense", &why));
}
END_TEST

START_TEST(test_precision) {
    sadm_precision p;
    TU_OK(sadm_precision_parse("bf16", &p));
    ck_assert_int_eq(p, SADM_PRECISION_BF16);
    ck_assert_int_eq(sadm_precision_parse("fp8", &p), SADM_ERR_ARG);
    ck_assert_msg(contains(sadm_last_error(), "'fp8'") && contains(sadm_last_error(), "fp32, bf16"), "%s", sadm_last_error());
    TU_OK(sadm_backend_check_precision(sadm_backend_cpu(), SADM_PRECISION_FP32));
    TU_OK(sadm_backend_check_precision(sadm_backend_cpu(), SADM_PRECISION_BF16));
    /* a backend without bf16 (the mock, told so) */
    mock_backend_allow_bf16(0);
    ck_assert_int_eq(sadm_backend_check_precision(mock_backend(), SADM_PRECISION_BF16), SADM_ERR_UNSUPPORTED);
    ck_assert_msg(contains(sadm_last_error(), "precision bf16 is not available on backend mock (it runs: fp32)"), "%s",
                  sadm_last_error());
    /* auto: bf16 only where the CPU multiplies bf16 natively; never on a backend without it */
    const char *why;
    TU_OK(sadm_precision_choose("auto", sadm_backend_cpu(), &p, &why));
    ck_assert_int_eq(p, sadm_bf16_preferred(NULL) ? SADM_PRECISION_BF16 : SADM_PRECISION_FP32);
    ck_assert(!sadm_bf16_preferred(NULL) || sadm_bf16_native());
    ck_assert_msg(contains(why, "precision auto: "), "%s", why);
    TU_OK(sadm_precision_choose("auto", mock_backend(), &p, NULL));
    ck_assert_int_eq(p, SADM_PRECISION_FP32);
    ck_assert_int_eq(sadm_precision_choose("half", sadm_backend_cpu(), &p, NULL), SADM_ERR_ARG);
    ck_assert_msg(contains(sadm_last_error(), "unknown precision 'half' (choices: fp32, bf16, auto)"), "%s",
                  sadm_last_error());

    /* a bf16 trainer cannot move there, and stays whole where it was */
    sadm_dataset *d;
    TU_OK(sadm_dataset_fmnist(NULL, "train", &d));
    sadm_trainer *tr = tu_small_trainer(d, 3);
    TU_OK(sadm_trainer_set_precision(tr, SADM_PRECISION_BF16));
    ck_assert_int_eq(sadm_trainer_to_backend(tr, mock_backend()), SADM_ERR_UNSUPPORTED);
    ck_assert_msg(contains(sadm_last_error(), "precision bf16 is not available on backend mock"), "%s", sadm_last_error());
    ck_assert_str_eq(sadm_backend_name(sadm_dit_backend(sadm_trainer_model(tr))), "cpu");
    tu_train_steps(tr, 1, NULL);
    TU_OK(sadm_trainer_set_precision(tr, SADM_PRECISION_FP32));
    mock_backend_allow_bf16(1);
    /* a checkpoint that says bf16 resumes in bf16; one that says fp64 is an error */
    sadm_trainer *bad = NULL;
    char path[] = "/tmp/sadm_test_backend_XXXXXX", bf16[64];
    int fd = mkstemp(path);
    ck_assert_int_ge(fd, 0);
    close(fd);
    TU_OK(sadm_trainer_save(tr, path));
    snprintf(bf16, sizeof bf16, "%s.bf16", path);
    tu_patch_header(path, bf16, "\"train.precision\":\"fp32\"", "\"train.precision\":\"bf16\"");
    TU_OK(sadm_trainer_load(bf16, d, &bad));
    ck_assert_int_eq(sadm_trainer_config(bad)->precision, SADM_PRECISION_BF16);
    sadm_trainer_free(bad);
    tu_patch_header(path, bf16, "\"train.precision\":\"fp32\"", "\"train.precision\":\"fp64\"");
    ck_assert_int_eq(sadm_trainer_load(bf16, d, &bad), SADM_ERR_FORMAT);
    ck_assert_msg(contains(sadm_last_error(), "'train.precision' is 'fp64'"), "%s", sadm_last_error());
    sadm_trainer *back;
    TU_OK(sadm_trainer_load(path, d, &back));
    ck_assert_int_eq(sadm_trainer_config(back)->precision, SADM_PRECISION_FP32);
    sadm_trainer_free(back);
    unlink(path), unlink(bf16);
    sadm_trainer_free(tr);
    sadm_dataset_free(d);
}
END_TEST

/* Steps 2..N of a training run allocate nothing (the library's own count: sadm_alloc,
 * operator scratch blocks, backend allocations). */
static void assert_loop_allocates_nothing(sadm_trainer *tr, const char *what) {
    tu_train_steps(tr, 1, NULL);
    uint64_t before = sadm_allocation_count();
    tu_train_steps(tr, 4, NULL);
    ck_assert_msg(sadm_allocation_count() == before, "%s: steps 2-5 allocated %llu blocks", what,
                  (unsigned long long)(sadm_allocation_count() - before));
}

START_TEST(test_no_allocation_in_loop) {
    sadm_dataset *d;
    TU_OK(sadm_dataset_fmnist(NULL, "train", &d));
    sadm_trainer *tr = tu_small_trainer(d, 5);
    assert_loop_allocates_nothing(tr, "DiT training");
    TU_OK(sadm_trainer_set_precision(tr, SADM_PRECISION_BF16));
    assert_loop_allocates_nothing(tr, "DiT training in bf16");
    /* the count is live: creating a model allocates */
    uint64_t before = sadm_allocation_count();
    static const sadm_dit_config small = {32, 8, 1, 16, 1, 2, 2.0f, 0.1f, 10, 1};
    static const sadm_encoder_config small_enc = {32, 8, 1, 16, 1, 2, 2.0f, 8};
    sadm_dit *m;
    TU_OK(sadm_dit_create(&small, 1, &m));
    ck_assert(sadm_allocation_count() > before);
    sadm_dit_free(m);
    sadm_trainer_free(tr);
    /* SADM's phases (encoder steps, structure loss, denoiser backward) as well */
    tr = tu_small_trainer(d, 6);
    sadm_encoder *e;
    TU_OK(sadm_encoder_create(&small_enc, 7, &e));
    sadm_sadm_config sc;
    sadm_sadm_config_default(&sc);
    TU_OK(sadm_trainer_enable_sadm(tr, e, &sc));
    assert_loop_allocates_nothing(tr, "SADM training");
    sadm_trainer_free(tr);
    sadm_dataset_free(d);
}
END_TEST

static float *download_params(sadm_dit *m) {
    float *w = tu_alloc(sadm_dit_param_total(m));
    TU_OK(sadm_dit_params_download(m, w));
    return w;
}

static float *download_ema(sadm_trainer *tr) {
    sadm_dit *m = sadm_trainer_model(tr);
    size_t P = sadm_dit_param_total(m);
    float *e = tu_alloc(P);
    TU_OK(sadm_backend_download(sadm_dit_backend(m), e, sadm_trainer_ema(tr), P * sizeof(float)));
    return e;
}

static void mock_training(sadm_precision prec) {
    sadm_dataset *d;
    TU_OK(sadm_dataset_fmnist(NULL, "train", &d));
    sadm_trainer *cpu = tu_small_trainer(d, 7), *mock = tu_small_trainer(d, 7);
    TU_OK(sadm_trainer_set_precision(cpu, prec));
    TU_OK(sadm_trainer_set_precision(mock, prec));
    size_t calls0 = mock_backend_calls();
    TU_OK(sadm_trainer_to_backend(mock, mock_backend()));
    ck_assert_str_eq(sadm_backend_name(sadm_dit_backend(sadm_trainer_model(mock))), "mock");
    sadm_step_stats sc, sm;
    tu_train_steps(cpu, 3, &sc);
    tu_train_steps(mock, 3, &sm);
    ck_assert_msg(mock_backend_calls() > calls0 + 100, "only %zu table calls", mock_backend_calls() - calls0);
    ck_assert(sc.loss == sm.loss && sc.grad_norm == sm.grad_norm);
    size_t P = sadm_dit_param_total(sadm_trainer_model(cpu));
    float *wm = download_params(sadm_trainer_model(mock)), *em = download_ema(mock);
    tu_assert_same("weights after 3 steps, mock vs cpu", wm, sadm_dit_param_data(sadm_trainer_model(cpu)), P);
    tu_assert_same("EMA after 3 steps, mock vs cpu", em, sadm_trainer_ema(cpu), P);

    /* checkpoints: byte for byte the same file; resumed on the mock, still the same */
    char a[] = "/tmp/sadm_test_mock_a_XXXXXX", b[] = "/tmp/sadm_test_mock_b_XXXXXX";
    close(mkstemp(a)), close(mkstemp(b));
    TU_OK(sadm_trainer_save(cpu, a));
    TU_OK(sadm_trainer_save(mock, b));
    tu_assert_same_files(a, b);
    TU_OK(sadm_trainer_save_ema_model(mock, b));
    TU_OK(sadm_trainer_save_ema_model(cpu, a));
    tu_assert_same_files(a, b);
    TU_OK(sadm_trainer_save(mock, b));
    sadm_trainer *resumed;
    TU_OK(sadm_trainer_load(b, d, &resumed));
    TU_OK(sadm_trainer_to_backend(resumed, mock_backend()));
    tu_train_steps(cpu, 2, &sc);
    tu_train_steps(resumed, 2, &sm);
    free(wm), free(em);
    wm = download_params(sadm_trainer_model(resumed)), em = download_ema(resumed);
    tu_assert_same("weights, resumed on the mock", wm, sadm_dit_param_data(sadm_trainer_model(cpu)), P);
    tu_assert_same("EMA, resumed on the mock", em, sadm_trainer_ema(cpu), P);
    /* and back to the CPU */
    TU_OK(sadm_trainer_to_backend(resumed, sadm_backend_cpu()));
    tu_train_steps(cpu, 1, NULL);
    tu_train_steps(resumed, 1, NULL);
    tu_assert_same("weights, back on the cpu", sadm_dit_param_data(sadm_trainer_model(resumed)),
                   sadm_dit_param_data(sadm_trainer_model(cpu)), P);
    unlink(a), unlink(b);
    free(wm), free(em);
    sadm_trainer_free(resumed);
    sadm_trainer_free(mock);
    sadm_trainer_free(cpu);
    ck_assert_uint_eq(mock_backend_live(), 0); /* everything it allocated was given back */
    sadm_dataset_free(d);
}

START_TEST(test_mock_training) {
    mock_training(SADM_PRECISION_FP32);
    mock_training(SADM_PRECISION_BF16);
}
END_TEST

static sadm_trainer *sadm_trainer_small(const sadm_dataset *d, uint64_t seed, sadm_struct_distance dist) {
    static const sadm_encoder_config enc = {32, 8, 1, 16, 1, 2, 2.0f, 8};
    sadm_trainer *tr = tu_small_trainer(d, seed);
    sadm_encoder *e;
    TU_OK(sadm_encoder_create(&enc, seed + 1, &e));
    sadm_sadm_config sc;
    sadm_sadm_config_default(&sc);
    sc.distance = dist, sc.lambda = 0.5f, sc.d_steps = 2, sc.weighting = SADM_WEIGHT_ALPHA;
    TU_OK(sadm_trainer_enable_sadm(tr, e, &sc));
    return tr;
}

/* SADM's phases (denoiser pass, encoder Adam steps, structure gradient into the
 * denoiser) on the mock: bitwise the CPU's, checkpoints byte for byte, resumable there. */
START_TEST(test_mock_sadm_training) {
    sadm_dataset *d;
    TU_OK(sadm_dataset_fmnist(NULL, "train", &d));
    for (int dist = 0; dist < 2; dist++) {
        sadm_trainer *cpu = sadm_trainer_small(d, 21, (sadm_struct_distance)dist);
        sadm_trainer *mock = sadm_trainer_small(d, 21, (sadm_struct_distance)dist);
        TU_OK(sadm_trainer_to_backend(mock, mock_backend()));
        ck_assert_ptr_eq(sadm_encoder_backend(sadm_trainer_encoder(mock)), mock_backend());
        sadm_step_stats sc, sm;
        tu_train_steps(cpu, 2, &sc);
        tu_train_steps(mock, 2, &sm);
        ck_assert(sc.loss == sm.loss && sc.grad_norm == sm.grad_norm && sc.l_struct == sm.l_struct && sc.disc_grad_norm == sm.disc_grad_norm);
        char a[] = "/tmp/sadm_test_msadm_a_XXXXXX", b[] = "/tmp/sadm_test_msadm_b_XXXXXX";
        close(mkstemp(a)), close(mkstemp(b));
        TU_OK(sadm_trainer_save(cpu, a));
        TU_OK(sadm_trainer_save(mock, b));
        tu_assert_same_files(a, b);
        sadm_trainer *resumed;
        TU_OK(sadm_trainer_load(b, d, &resumed));
        TU_OK(sadm_trainer_to_backend(resumed, mock_backend()));
        tu_train_steps(cpu, 1, NULL);
        tu_train_steps(resumed, 1, NULL);
        TU_OK(sadm_trainer_save(cpu, a));
        TU_OK(sadm_trainer_save(resumed, b));
        tu_assert_same_files(a, b);
        unlink(a), unlink(b);
        sadm_trainer_free(resumed);
        sadm_trainer_free(mock);
        sadm_trainer_free(cpu);
    }
    ck_assert_uint_eq(mock_backend_live(), 0);
    sadm_dataset_free(d);
}
END_TEST

/* The public SADM loss and encoder passes on the mock (host memory in and out). */
START_TEST(test_mock_sadm_public) {
    static const sadm_dit_config mc = {16, 4, 1, 32, 1, 4, 4.0f, 0.1f, 5, 1};
    static const sadm_encoder_config ec = {16, 4, 1, 24, 1, 3, 2.0f, 7};
    sadm_dit *ma, *mb;
    sadm_encoder *ea, *eb;
    TU_OK(sadm_dit_create(&mc, 3, &ma));
    tu_randomise_dit(ma, 3, 1.0f);
    TU_OK(sadm_dit_create(&mc, 1, &mb));
    TU_OK(sadm_dit_params_upload(mb, sadm_dit_param_data(ma)));
    TU_OK(sadm_encoder_create(&ec, 4, &ea));
    TU_OK(sadm_encoder_create(&ec, 4, &eb));
    TU_OK(sadm_dit_to_backend(mb, mock_backend()));
    /* a denoiser and an encoder on different backends are refused */
    sadm_diffusion *df;
    TU_OK(sadm_diffusion_create("linear", 1000, &df));
    sadm_sadm_config sc;
    sadm_sadm_config_default(&sc);
    sc.lambda = 0.25f;
    int N = 4;
    size_t nx = (size_t)N * 16 * 16;
    float *x0 = tu_uniform(nx, 8, -1, 1), *noise = tu_uniform(nx, 9, -1, 1);
    int64_t t[4] = {3, 300, 700, 999}, y[4] = {0, 1, 2, 5};
    float la[4], lb[4], ma4[4], mb4[4], va[4], vb[4];
    sadm_struct_stats sa, sb;
    ck_assert_int_eq(sadm_sadm_loss(mb, eb, df, &sc, N, x0, t, y, noise, lb, mb4, vb, &sb, 1), SADM_ERR_ARG);
    ck_assert_msg(contains(sadm_last_error(), "the denoiser is on backend mock but the structure encoder on cpu"), "%s",
                  sadm_last_error());
    TU_OK(sadm_encoder_to_backend(eb, mock_backend()));
    TU_OK(sadm_dit_zero_grad(ma)), TU_OK(sadm_dit_zero_grad(mb));
    TU_OK(sadm_encoder_zero_grad(ea)), TU_OK(sadm_encoder_zero_grad(eb));
    TU_OK(sadm_sadm_loss(ma, ea, df, &sc, N, x0, t, y, noise, la, ma4, va, &sa, 1));
    TU_OK(sadm_sadm_loss(mb, eb, df, &sc, N, x0, t, y, noise, lb, mb4, vb, &sb, 1));
    tu_assert_same("SADM loss", lb, la, 4);
    tu_assert_same("SADM mse", mb4, ma4, 4);
    tu_assert_same("SADM vb", vb, va, 4);
    ck_assert(sa.loss == sb.loss && sa.real_cos == sb.real_cos && sa.fake_cos == sb.fake_cos);
    size_t P = sadm_dit_param_total(ma), EP = sadm_encoder_param_total(ea);
    float *g = tu_alloc(P > EP ? P : EP);
    TU_OK(sadm_backend_download(mock_backend(), g, sadm_dit_grad_data(mb), P * sizeof(float)));
    tu_assert_same("denoiser gradients", g, sadm_dit_grad_data(ma), P);
    TU_OK(sadm_backend_download(mock_backend(), g, sadm_encoder_grad_data(eb), EP * sizeof(float)));
    tu_assert_same("encoder gradients", g, sadm_encoder_grad_data(ea), EP);
    /* the encoder's own passes */
    float za[4 * 7], zb[4 * 7], *dz = tu_uniform(4 * 7, 10, -1, 1), *dxa = tu_uniform(nx, 11, 0, 1), *dxb = tu_copy(dxa, nx);
    TU_OK(sadm_encoder_forward(ea, N, x0, za));
    TU_OK(sadm_encoder_forward(eb, N, x0, zb));
    tu_assert_same("encoder forward", zb, za, 4 * 7);
    TU_OK(sadm_encoder_backward(ea, dz, dxa, 0));
    TU_OK(sadm_encoder_backward(eb, dz, dxb, 0));
    tu_assert_same("encoder input gradient", dxb, dxa, nx);
    char pa[] = "/tmp/sadm_test_menc_a_XXXXXX", pb[] = "/tmp/sadm_test_menc_b_XXXXXX";
    close(mkstemp(pa)), close(mkstemp(pb));
    TU_OK(sadm_encoder_save(ea, pa));
    TU_OK(sadm_encoder_save(eb, pb));
    tu_assert_same_files(pa, pb);
    unlink(pa), unlink(pb);
    /* a fresh initialisation in place (the encoder restart) equals a new encoder, on either backend */
    sadm_encoder *ec77;
    TU_OK(sadm_encoder_create(&ec, 77, &ec77));
    TU_OK(sadm_encoder_reinitialise(ea, 77));
    TU_OK(sadm_encoder_reinitialise(eb, 77));
    tu_assert_same("re-initialised encoder (cpu)", sadm_encoder_param_data(ea), sadm_encoder_param_data(ec77), EP);
    TU_OK(sadm_backend_download(mock_backend(), g, sadm_encoder_param_data(eb), EP * sizeof(float)));
    tu_assert_same("re-initialised encoder (mock)", g, sadm_encoder_param_data(ec77), EP);
    sadm_encoder_free(ec77);
    sadm_diffusion_free(df);
    sadm_encoder_free(ea), sadm_encoder_free(eb);
    sadm_dit_free(ma), sadm_dit_free(mb);
    free(x0), free(noise), free(g), free(dz), free(dxa), free(dxb);
    ck_assert_uint_eq(mock_backend_live(), 0);
}
END_TEST

/* The Fashion-MNIST classifier on the mock: training, evaluation, features and files
 * equal the CPU's bitwise. */
START_TEST(test_mock_classifier) {
    sadm_dataset *d;
    TU_OK(sadm_dataset_fmnist(NULL, "train", &d));
    sadm_classifier *a, *b;
    TU_OK(sadm_classifier_create(4, &a));
    TU_OK(sadm_classifier_create(4, &b));
    TU_OK(sadm_classifier_to_backend(b, mock_backend()));
    sadm_classifier_train_config tc;
    sadm_classifier_train_config_default(&tc);
    tc.epochs = 1, tc.batch_size = 32, tc.max_images = 64, tc.seed = 5; /* 2 steps: cheap under qemu too */
    TU_OK(sadm_classifier_train(a, d, &tc, NULL, NULL));
    TU_OK(sadm_classifier_train(b, d, &tc, NULL, NULL));
    size_t P = sadm_classifier_param_total(a);
    float *w = tu_alloc(P);
    TU_OK(sadm_backend_download(mock_backend(), w, sadm_classifier_param_data(b), P * sizeof(float)));
    tu_assert_same("classifier weights after training, mock vs cpu", w, sadm_classifier_param_data(a), P);
    double acc_a, acc_b, loss_a, loss_b;
    TU_OK(sadm_classifier_evaluate_first(a, d, 100, &acc_a, &loss_a));
    TU_OK(sadm_classifier_evaluate_first(b, d, 100, &acc_b, &loss_b));
    ck_assert(acc_a == acc_b && loss_a == loss_b);
    enum { N = 3 };
    uint8_t img[N * 28 * 28 * 3];
    for (size_t i = 0; i < sizeof img; i++) img[i] = (uint8_t)(i * 37 % 251);
    float fa[N * SADM_CLASSIFIER_FEATURES], fb[N * SADM_CLASSIFIER_FEATURES];
    TU_OK(sadm_classifier_features_u8(a, N, 28, 28, img, fa));
    TU_OK(sadm_classifier_features_u8(b, N, 28, 28, img, fb));
    tu_assert_same("classifier features, mock vs cpu", fb, fa, N * SADM_CLASSIFIER_FEATURES);
    char pa[] = "/tmp/sadm_test_mcls_a_XXXXXX", pb[] = "/tmp/sadm_test_mcls_b_XXXXXX";
    close(mkstemp(pa)), close(mkstemp(pb));
    TU_OK(sadm_classifier_save(a, pa));
    TU_OK(sadm_classifier_save(b, pb));
    tu_assert_same_files(pa, pb);
    unlink(pa), unlink(pb);
    free(w);
    sadm_classifier_free(a), sadm_classifier_free(b);
    ck_assert_uint_eq(mock_backend_live(), 0);
    sadm_dataset_free(d);
}
END_TEST

/* The public passes take host memory and copy at the edges on the mock. */
START_TEST(test_mock_public_passes) {
    sadm_dit_config cfg = {16, 4, 3, 32, 2, 4, 4.0f, 0.1f, 5, 1};
    sadm_dit *a, *b;
    TU_OK(sadm_dit_create(&cfg, 9, &a));
    tu_randomise_dit(a, 9, 1.0f);
    TU_OK(sadm_dit_create(&cfg, 1, &b));
    TU_OK(sadm_dit_params_upload(b, sadm_dit_param_data(a)));
    TU_OK(sadm_dit_to_backend(b, mock_backend()));
    int N = 3;
    size_t nx = (size_t)N * 3 * 16 * 16, P = sadm_dit_param_total(a);
    float *x = tu_uniform(nx, 2, -1, 1), *oa = tu_alloc(2 * nx), *ob = tu_alloc(2 * nx), t[3] = {0, 400, 999};
    float *dout = tu_uniform(2 * nx, 3, -1, 1), *dxa = tu_uniform(nx, 4, 0, 1), *dxb = tu_copy(dxa, nx);
    int64_t y[3] = {4, 5, 0};
    TU_OK(sadm_dit_forward(a, N, x, t, y, oa));
    TU_OK(sadm_dit_forward(b, N, x, t, y, ob));
    tu_assert_same("forward", ob, oa, 2 * nx);
    TU_OK(sadm_dit_zero_grad(a));
    TU_OK(sadm_dit_zero_grad(b));
    TU_OK(sadm_dit_backward(a, dout, dxa));
    TU_OK(sadm_dit_backward(b, dout, dxb));
    tu_assert_same("input gradient (accumulated onto the caller's)", dxb, dxa, nx);
    float *gb = tu_alloc(P);
    TU_OK(sadm_backend_download(mock_backend(), gb, sadm_dit_grad_data(b), P * sizeof(float)));
    tu_assert_same("parameter gradients", gb, sadm_dit_grad_data(a), P);
    TU_OK(sadm_dit_forward_inference(a, N, x, t, y, oa));
    TU_OK(sadm_dit_forward_inference(b, N, x, t, y, ob));
    tu_assert_same("inference forward", ob, oa, 2 * nx);
    /* the loss, with x_t out */
    sadm_diffusion *df;
    TU_OK(sadm_diffusion_create("linear", 1000, &df));
    int64_t tt[3] = {0, 500, 999};
    float la[3], lb[3], ma[3], mb[3], va[3], vb[3], *xa = tu_alloc(nx), *xb = tu_alloc(nx), *noise = tu_uniform(nx, 5, -1, 1);
    TU_OK(sadm_dit_zero_grad(a));
    TU_OK(sadm_dit_zero_grad(b));
    TU_OK(sadm_dit_loss(a, df, N, x, tt, y, noise, la, ma, va, xa));
    TU_OK(sadm_dit_loss(b, df, N, x, tt, y, noise, lb, mb, vb, xb));
    tu_assert_same("loss", lb, la, 3);
    tu_assert_same("mse", mb, ma, 3);
    tu_assert_same("vb", vb, va, 3);
    tu_assert_same("x_t", xb, xa, nx);
    TU_OK(sadm_backend_download(mock_backend(), gb, sadm_dit_grad_data(b), P * sizeof(float)));
    tu_assert_same("loss gradients", gb, sadm_dit_grad_data(a), P);
    /* a label outside the table is refused before anything reaches the backend */
    y[1] = 6;
    ck_assert_int_eq(sadm_dit_forward(b, N, x, t, y, ob), SADM_ERR_ARG);
    ck_assert_msg(contains(sadm_last_error(), "label 6 of sample 1"), "%s", sadm_last_error());
    /* saving downloads: the file equals the CPU model's */
    char pa[] = "/tmp/sadm_test_mock_ma_XXXXXX", pb[] = "/tmp/sadm_test_mock_mb_XXXXXX";
    close(mkstemp(pa)), close(mkstemp(pb));
    TU_OK(sadm_dit_save(a, pa));
    TU_OK(sadm_dit_save(b, pb));
    tu_assert_same_files(pa, pb);
    unlink(pa), unlink(pb);
    sadm_diffusion_free(df);
    sadm_dit_free(a), sadm_dit_free(b);
    free(x), free(oa), free(ob), free(dout), free(dxa), free(dxb), free(gb), free(xa), free(xb), free(noise);
}
END_TEST

static void sample_both(const sadm_sample_config *sc, int respaced) {
    sadm_dit_config cfg = {16, 4, 1, 32, 2, 4, 4.0f, 0.1f, 5, 1};
    sadm_dit *a, *b;
    TU_OK(sadm_dit_create(&cfg, 11, &a));
    tu_randomise_dit(a, 11, 1.0f);
    TU_OK(sadm_dit_create(&cfg, 1, &b));
    TU_OK(sadm_dit_params_upload(b, sadm_dit_param_data(a)));
    TU_OK(sadm_dit_to_backend(b, mock_backend()));
    sadm_diffusion *d;
    if (respaced)
        TU_OK(sadm_diffusion_respaced("linear", 1000, "ddim5", &d));
    else
        TU_OK(sadm_diffusion_respaced("linear", 1000, "6", &d));
    int N = 2;
    size_t n = (size_t)N * 16 * 16;
    int64_t y[2] = {1, 4};
    float *xT = tu_uniform(n, 6, -1, 1), *oa = tu_alloc(n), *ob = tu_alloc(n);
    TU_OK(sadm_dit_sample(a, d, sc, N, y, xT, NULL, 42, oa, NULL, NULL));
    TU_OK(sadm_dit_sample(b, d, sc, N, y, xT, NULL, 42, ob, NULL, NULL));
    tu_assert_same("samples, mock vs cpu", ob, oa, n);
    sadm_diffusion_free(d);
    sadm_dit_free(a), sadm_dit_free(b);
    free(xT), free(oa), free(ob);
}

START_TEST(test_mock_sampling) {
    sadm_sample_config sc;
    memset(&sc, 0, sizeof sc);
    sc.cfg_scale = 1.0f;
    sc.clip_denoised = 1;
    sample_both(&sc, 0); /* DDPM, learned variance */
    sc.ddim = 1, sc.cfg_scale = 4.0f, sc.eta = 0.5f;
    sample_both(&sc, 1); /* guided DDIM with noise */
    ck_assert_uint_eq(mock_backend_live(), 0);
}
END_TEST

/* The mock is what it claims: host code touching its memory dies, and host memory passed
 * to its table is refused. */
START_TEST(test_mock_guards) {
    sadm_backend *be = mock_backend();
    sadm_dit_config cfg = {16, 4, 1, 32, 1, 4, 4.0f, 0.0f, 5, 0};
    sadm_dit *m;
    TU_OK(sadm_dit_create(&cfg, 1, &m));
    TU_OK(sadm_dit_to_backend(m, be));
    float *p = sadm_dit_param_data(m);
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        volatile float v = p[0]; /* must fault */
        (void)v;
        _exit(0);
    }
    int status;
    waitpid(pid, &status, 0);
    ck_assert_msg(!(WIFEXITED(status) && WEXITSTATUS(status) == 0), "the host read mock memory");
    float host[4] = {1, 2, 3, 4};
    ck_assert_int_eq(be->ops->add(4, p, host, p), SADM_ERR_ARG);
    ck_assert_msg(contains(sadm_last_error(), "argument 3 of add"), "%s", sadm_last_error());
    ck_assert_int_eq(sadm_backend_upload(be, host, p, sizeof host), SADM_ERR_ARG); /* the wrong way round */
    TU_OK(sadm_backend_upload(be, p, host, sizeof host));
    TU_OK(be->ops->add(4, p, p, p));
    float back[4];
    TU_OK(sadm_backend_download(be, back, p, sizeof back));
    ck_assert(back[0] == 2 && back[3] == 8);
    sadm_dit_free(m);
}
END_TEST

int main(void) {
    Suite *s = suite_create("backend");
    TCase *tc = tcase_create("backend");
    tcase_set_timeout(tc, 600);
    tcase_add_test(tc, test_select);
    tcase_add_test(tc, test_precision);
    tcase_add_test(tc, test_no_allocation_in_loop);
    tcase_add_test(tc, test_mock_training);
    tcase_add_test(tc, test_mock_public_passes);
    tcase_add_test(tc, test_mock_sadm_training);
    tcase_add_test(tc, test_mock_sadm_public);
    tcase_add_test(tc, test_mock_classifier);
    tcase_add_test(tc, test_mock_sampling);
    tcase_add_test(tc, test_mock_guards);
    suite_add_tcase(s, tc);
    return tu_run(s);
}
