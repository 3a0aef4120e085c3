/* The sadm program end to end: `sadm forward` and `sadm loss` write what the library
 * computes in-process (bitwise: results do not depend on threads), and bad input gives a
 * message naming the file and a non-zero exit. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "reference.h"
#include "testutil.h"

static int run_sadm(const char *args, char *output, size_t len) { return ref_sadm(args, output, len); }

static const sadm_dit_config CFG = {8, 2, 2, 16, 2, 2, 4.0f, 0.1f, 4, 1};
enum { N = 3 };

static void write_inputs(const char *model, const char *batch, float *x, float *noise, int64_t *t, int64_t *y) {
    sadm_dit *m;
    TU_OK(sadm_dit_create(&CFG, 5, &m));
    tu_randomise_dit(m, 9, 0.5f);
    TU_OK(sadm_dit_save(m, model));
    sadm_dit_free(m);
    size_t nx = (size_t)N * 2 * 8 * 8;
    TU_OK(sadm_rng_normal(1, 0, 0, nx, x));
    TU_OK(sadm_rng_normal(2, 0, 0, nx, noise));
    for (int n = 0; n < N; n++) t[n] = n * 300, y[n] = n;
    sadm_st_writer *w = sadm_st_writer_new();
    int64_t sx[4] = {N, 2, 8, 8}, sn[1] = {N};
    TU_OK(sadm_st_writer_add(w, "x", SADM_DTYPE_F32, 4, sx, x));
    TU_OK(sadm_st_writer_add(w, "x0", SADM_DTYPE_F32, 4, sx, x));
    TU_OK(sadm_st_writer_add(w, "noise", SADM_DTYPE_F32, 4, sx, noise));
    TU_OK(sadm_st_writer_add(w, "t", SADM_DTYPE_I64, 1, sn, t));
    TU_OK(sadm_st_writer_add(w, "y", SADM_DTYPE_I64, 1, sn, y));
    TU_OK(sadm_st_writer_save(w, batch));
    sadm_st_writer_free(w);
}

START_TEST(test_forward_and_loss_commands) {
    char model[300], batch[300], out[300], args[1200], log[4096];
    snprintf(model, sizeof model, "%s/m.safetensors", ref_tmpdir());
    snprintf(batch, sizeof batch, "%s/b.safetensors", ref_tmpdir());
    snprintf(out, sizeof out, "%s/o.safetensors", ref_tmpdir());
    size_t nx = (size_t)N * 2 * 8 * 8, no = 2 * nx;
    float *x = tu_alloc(nx), *noise = tu_alloc(nx), *tf = tu_alloc(N), *ref = tu_alloc(no), *got = tu_alloc(no);
    int64_t t[N], y[N];
    write_inputs(model, batch, x, noise, t, y);

    snprintf(args, sizeof args, "forward --model '%s' --batch '%s' --out '%s' --threads 1", model, batch, out);
    ck_assert_msg(run_sadm(args, log, sizeof log) == 0, "sadm forward failed: %s", log);
    sadm_dit *m;
    TU_OK(sadm_dit_load(model, NULL, &m));
    for (int n = 0; n < N; n++) tf[n] = (float)t[n];
    TU_OK(sadm_dit_forward(m, N, x, tf, y, ref));
    sadm_st_file *f;
    TU_OK(sadm_st_open(out, &f));
    int64_t so[4] = {N, 4, 8, 8};
    TU_OK(sadm_st_read_f32(f, "out", 4, so, got));
    tu_assert_same("sadm forward", got, ref, no);
    sadm_st_close(f);
    /* --precision bf16: the library's bf16 forward, bitwise */
    snprintf(args, sizeof args, "forward --model '%s' --batch '%s' --out '%s' --precision bf16", model, batch, out);
    ck_assert_msg(run_sadm(args, log, sizeof log) == 0, "sadm forward --precision bf16 failed: %s", log);
    TU_OK(sadm_dit_set_precision(m, SADM_PRECISION_BF16));
    TU_OK(sadm_dit_forward(m, N, x, tf, y, ref));
    TU_OK(sadm_dit_set_precision(m, SADM_PRECISION_FP32));
    TU_OK(sadm_st_open(out, &f));
    TU_OK(sadm_st_read_f32(f, "out", 4, so, got));
    tu_assert_same("sadm forward --precision bf16", got, ref, no);
    sadm_st_close(f);
    snprintf(args, sizeof args, "forward --model '%s' --batch '%s' --out '%s' --precision fp16", model, batch, out);
    ck_assert_int_eq(run_sadm(args, log, sizeof log), 2);
    ck_assert_msg(strstr(log, "unknown precision 'fp16' (choices: fp32, bf16, auto)"), "%s", log);
    snprintf(args, sizeof args, "forward --model '%s' --batch '%s' --out '%s' --precision auto", model, batch, out);
    ck_assert_msg(run_sadm(args, log, sizeof log) == 0 && strstr(log, "precision auto: "), "%s", log);

    snprintf(args, sizeof args, "loss --model '%s' --batch '%s' --out '%s'", model, batch, out);
    ck_assert_msg(run_sadm(args, log, sizeof log) == 0, "sadm loss failed: %s", log);
    sadm_diffusion *d;
    TU_OK(sadm_diffusion_create("linear", 1000, &d));
    float loss[N], mse[N], vb[N], lg[N];
    TU_OK(sadm_dit_zero_grad(m));
    TU_OK(sadm_dit_loss(m, d, N, x, t, y, noise, loss, mse, vb, NULL));
    TU_OK(sadm_st_open(out, &f));
    int64_t sn[1] = {N};
    TU_OK(sadm_st_read_f32(f, "loss", 1, sn, lg));
    tu_assert_same("sadm loss: loss", lg, loss, N);
    TU_OK(sadm_st_read_f32(f, "vb", 1, sn, lg));
    tu_assert_same("sadm loss: vb", lg, vb, N);
    const float *g = sadm_dit_grad_data(m);
    for (size_t i = 0; i < sadm_dit_num_params(m); i++) {
        const sadm_param *p = sadm_dit_param(m, i);
        char key[160];
        snprintf(key, sizeof key, "grad.%s", p->name);
        if (!p->trainable) {
            ck_assert_ptr_null(sadm_st_find(f, key));
            continue;
        }
        float *gg = tu_alloc(p->numel);
        TU_OK(sadm_st_read_f32(f, key, p->ndim, p->shape, gg));
        tu_assert_same(key, gg, g + p->offset, p->numel);
        free(gg);
    }
    sadm_st_close(f);
    sadm_dit_free(m);
    sadm_diffusion_free(d);
    free(x), free(noise), free(tf), free(ref), free(got);
    ref_cleanup();
}
END_TEST

START_TEST(test_bad_input) {
    char model[300], batch[300], out[300], args[1200], log[4096];
    snprintf(model, sizeof model, "%s/m.safetensors", ref_tmpdir());
    snprintf(batch, sizeof batch, "%s/b.safetensors", ref_tmpdir());
    snprintf(out, sizeof out, "%s/o.safetensors", ref_tmpdir());
    float x[N * 128], noise[N * 128];
    int64_t t[N], y[N];
    write_inputs(model, batch, x, noise, t, y);
    snprintf(args, sizeof args, "forward --model '%s/missing.safetensors' --batch '%s' --out '%s'", ref_tmpdir(), batch, out);
    ck_assert_int_eq(run_sadm(args, log, sizeof log), 1);
    ck_assert_msg(strstr(log, "missing.safetensors: cannot open"), "message: %s", log);
    /* the model as batch: no x */
    snprintf(args, sizeof args, "forward --model '%s' --batch '%s' --out '%s'", model, model, out);
    ck_assert_int_eq(run_sadm(args, log, sizeof log), 1);
    ck_assert_msg(strstr(log, "needs 'x' of shape (N, 2, 8, 8)"), "message: %s", log);
    snprintf(args, sizeof args, "loss --model '%s' --batch '%s' --out '%s' --schedule quadratic", model, batch, out);
    ck_assert_int_eq(run_sadm(args, log, sizeof log), 1);
    ck_assert_msg(strstr(log, "unknown noise schedule 'quadratic'"), "message: %s", log);
    ck_assert_int_eq(run_sadm("forward --model", log, sizeof log), 2);
    ck_assert_msg(strstr(log, "--model needs a value"), "message: %s", log);
    ck_assert_int_eq(run_sadm("frobnicate", log, sizeof log), 2);
    /* sadm waits passively at OpenMP barriers unless told otherwise (a shared machine).
     * It does so by running itself again with the variable set, which a cross-built sadm
     * under qemu-user cannot do (no binfmt handler): checked in native builds only. */
    if (!getenv("SADM_EXEC_WRAPPER")) {
        char cmd[900];
        snprintf(cmd, sizeof cmd,
                 "env -u OMP_WAIT_POLICY -u GOMP_SPINCOUNT %s info | grep -q '^OpenMP wait: PASSIVE' && "
                 "OMP_WAIT_POLICY=ACTIVE %s info | grep -q '^OpenMP wait: ACTIVE'",
                 getenv("SADM_BIN"), getenv("SADM_BIN"));
        ck_assert_msg(system(cmd) == 0, "sadm does not default to OMP_WAIT_POLICY=PASSIVE: %s", cmd);
    }
    /* backends: listed by info; unknown or unavailable devices are clear errors; cpu works */
    ck_assert_int_eq(run_sadm("info", log, sizeof log), 0);
    ck_assert_msg(strstr(log, "cuda: not available: ") && strstr(log, "cpu: available") && strstr(log, "device:      cpu"),
                  "%s", log);
    ck_assert_msg(strstr(log, sadm_bf16_native() ? "bf16:        native (AVX512-BF16); --precision auto picks "
                                                 : "bf16:        fp32 FMA emulation ("),
                  "%s", log);
    ck_assert_msg(strstr(log, sadm_bf16_preferred(NULL) ? "auto picks bf16 (" : "auto picks fp32 ("), "%s", log);
    snprintf(args, sizeof args, "sample --model '%s' --num 1 --steps 2 --device gpu --out-tensor '%s'", model, out);
    ck_assert_int_eq(run_sadm(args, log, sizeof log), 2);
    ck_assert_msg(strstr(log, "device 'gpu' is not a backend (choices: auto, cuda, cpu)"), "%s", log);
    snprintf(args, sizeof args, "sample --model '%s' --num 1 --steps 2 --device cuda --out-tensor '%s'", model, out);
    ck_assert_int_eq(run_sadm(args, log, sizeof log), 2);
    ck_assert_msg(strstr(log, "device cuda: the backend is not available: "), "%s", log);
    snprintf(args, sizeof args, "sample --model '%s' --num 1 --steps 2 --out-tensor '%s'", model, out);
    ck_assert_int_eq(run_sadm(args, log, sizeof log), 0);
    ck_assert_msg(strstr(log, "device auto: cuda is not available") && strstr(log, "using cpu"), "%s", log);
    snprintf(args, sizeof args, "sample --model '%s' --num 1 --steps 2 --device cpu --out-tensor '%s'", model, out);
    ck_assert_int_eq(run_sadm(args, log, sizeof log), 0);
    ck_assert_msg(!strstr(log, "device auto"), "%s", log);
    /* issue 18's silent or misread inputs: each a clear error now */
    ck_assert_int_eq(run_sadm("info extra", log, sizeof log), 2);
    ck_assert_msg(strstr(log, "unexpected argument 'extra'"), "%s", log);
    snprintf(args, sizeof args, "sample --model '%s' --num 1 --steps 2 --clip-denoised maybe --out-tensor '%s'", model, out);
    ck_assert_int_eq(run_sadm(args, log, sizeof log), 2);
    ck_assert_msg(strstr(log, "--clip-denoised maybe: expected yes, no or auto"), "%s", log);
    char bad[300];
    snprintf(bad, sizeof bad, "%s/bad.safetensors", ref_tmpdir());
    static const struct {
        int what; /* 0: x[3] = NaN, 1: t[1] = 1e30, 2: t[0] = -1, 3: y[0] = 99 */
        const char *words;
    } batches[] = {{0, "tensor 'x' has a non-finite value (nan) at element 3"},
                   {1, "t[1] = 1e+30 is not a timestep"},
                   {2, "t[0] = -1 is not a timestep"},
                   {3, "y[0] = 99 is not a class in [0, 4]"}};
    for (size_t i = 0; i < sizeof batches / sizeof batches[0]; i++) {
        float xb[N * 128], tb[N];
        int64_t yb[N];
        memcpy(xb, x, sizeof xb), memcpy(yb, y, sizeof yb);
        for (int k = 0; k < N; k++) tb[k] = (float)t[k];
        if (batches[i].what == 0) xb[3] = NAN;
        if (batches[i].what == 1) tb[1] = 1e30f;
        if (batches[i].what == 2) tb[0] = -1;
        if (batches[i].what == 3) yb[0] = 99;
        sadm_st_writer *w = sadm_st_writer_new();
        int64_t xs[4] = {N, 2, 8, 8}, ns[1] = {N};
        TU_OK(sadm_st_writer_add(w, "x", SADM_DTYPE_F32, 4, xs, xb));
        TU_OK(sadm_st_writer_add(w, "t", SADM_DTYPE_F32, 1, ns, tb));
        TU_OK(sadm_st_writer_add(w, "y", SADM_DTYPE_I64, 1, ns, yb));
        TU_OK(sadm_st_writer_save(w, bad));
        sadm_st_writer_free(w);
        snprintf(args, sizeof args, "forward --model '%s' --batch '%s' --out '%s'", model, bad, out);
        ck_assert_int_ne(run_sadm(args, log, sizeof log), 0);
        ck_assert_msg(strstr(log, batches[i].words), "case %zu: '%s' lacks '%s'", i, log, batches[i].words);
    }
    ck_assert_int_eq(run_sadm("forward --help", log, sizeof log), 0);
    ck_assert_msg(strstr(log, "usage: sadm forward"), "help: %s", log);
    ref_cleanup();
}
END_TEST

/* sadm train: a run stopped at step 4 and resumed to 6 ends with the same checkpoint
 * tensors as a run of 6; an existing run is never overwritten without --resume. */
static const char *pa_path(const char *dir, const char *run) {
    static char p[400];
    snprintf(p, sizeof p, "%s/%s/checkpoint.safetensors", dir, run);
    return p;
}

START_TEST(test_train_command) {
    sadm_st_file *fa0;
    const char *small = "--depth 1 --hidden-size 16 --num-heads 2 --patch-size 8 --batch-size 4 --ckpt-every 2 --log-every 1 --threads 2 --fd-samples 0";
    char args[2000], log[8192];
    /* the one run that ends with FD_fmnist (few samples, few steps, 500 test images) */
    snprintf(args, sizeof args, "train %s --steps 6 --run-dir '%s/a' --fd-samples 20 --fd-steps 2 --fd-test-images 500", small,
             ref_tmpdir());
    ck_assert_msg(run_sadm(args, log, sizeof log) == 0, "sadm train failed: %s", log);
    ck_assert_msg(strstr(log, "done at step 6"), "%s", log);
    const char *fd = strstr(log, "FD_fmnist: ");
    ck_assert_msg(fd && isfinite(atof(fd + 11)) && atof(fd + 11) > 0, "no FD_fmnist at the end of the run: %s", log);
    char cmd[600];
    snprintf(cmd, sizeof cmd, "grep -q '\"fd_test_images\": 500' '%s/a/log.jsonl'", ref_tmpdir());
    ck_assert_msg(system(cmd) == 0, "log.jsonl has no fd_fmnist line");
    /* the end-of-run pictures: samples.png, 8 per class in 10 columns of 32x32 with 2-pixel
     * borders, and loss.svg, well-formed XML with the loss line and the FD in its title */
    char png[400];
    snprintf(png, sizeof png, "%s/a/samples.png", ref_tmpdir());
    FILE *pf = fopen(png, "rb");
    unsigned char hdr[24] = {0};
    ck_assert_msg(pf && fread(hdr, 1, 24, pf) == 24, "no %s", png);
    fclose(pf);
    unsigned pw = (unsigned)hdr[16] << 24 | hdr[17] << 16 | hdr[18] << 8 | hdr[19];
    unsigned ph = (unsigned)hdr[20] << 24 | hdr[21] << 16 | hdr[22] << 8 | hdr[23];
    ck_assert_msg(!memcmp(hdr + 1, "PNG", 3) && !memcmp(hdr + 12, "IHDR", 4) && pw == 10 * 34 + 2 && ph == 8 * 34 + 2,
                  "samples.png is %ux%u", pw, ph);
    snprintf(cmd, sizeof cmd,
             "'%s' -c \"import sys, xml.etree.ElementTree as E; r = E.parse(sys.argv[1]).getroot(); "
             "t = ''.join(r.itertext()); n = len(r.findall('{http://www.w3.org/2000/svg}polyline')); "
             "sys.exit(0 if n == 2 and 'FD_fmnist' in t else 1)\" '%s/a/loss.svg'",
             getenv("SADM_PYTHON"), ref_tmpdir());
    ck_assert_msg(system(cmd) == 0, "loss.svg is not well-formed SVG with two lines and the FD");
    TU_OK(sadm_st_open(pa_path(ref_tmpdir(), "a"), &fa0));
    ck_assert_msg(sadm_st_metadata(fa0, "train.ema_warmup") && !strcmp(sadm_st_metadata(fa0, "train.ema_warmup"), "1"),
                  "the default run records its EMA warm-up");
    sadm_st_close(fa0);
    /* a bad --fd-weights is refused before any training */
    snprintf(args, sizeof args, "train %s --steps 6 --run-dir '%s/e' --fd-samples 5 --fd-weights best", small, ref_tmpdir());
    ck_assert_int_eq(run_sadm(args, log, sizeof log), 2);
    ck_assert_msg(strstr(log, "--fd-weights best") && !strstr(log, "done at"), "%s", log);
    snprintf(args, sizeof args, "train %s --steps 4 --run-dir '%s/b'", small, ref_tmpdir());
    ck_assert_msg(run_sadm(args, log, sizeof log) == 0, "sadm train failed: %s", log);
    snprintf(args, sizeof args, "train %s --steps 6 --run-dir '%s/b'", small, ref_tmpdir());
    ck_assert_int_eq(run_sadm(args, log, sizeof log), 2);
    ck_assert_msg(strstr(log, "pass --resume"), "%s", log);
    snprintf(args, sizeof args, "train %s --steps 6 --run-dir '%s/b' --resume --threads 1", small, ref_tmpdir());
    ck_assert_msg(run_sadm(args, log, sizeof log) == 0, "sadm train --resume failed: %s", log);
    ck_assert_msg(strstr(log, "resuming") && strstr(log, "at step 4"), "%s", log);
    char pa[400], pb[400];
    snprintf(pa, sizeof pa, "%s/a/checkpoint.safetensors", ref_tmpdir());
    snprintf(pb, sizeof pb, "%s/b/checkpoint.safetensors", ref_tmpdir());
    tu_assert_same_tensors(pa, pb); /* the resumed run ends where the uninterrupted one does */
    sadm_st_file *fb;
    TU_OK(sadm_st_open(pb, &fb));
    ck_assert_str_eq(sadm_st_metadata(fb, "train.step"), "6");
    sadm_st_close(fb);
    /* six JSON lines in the uninterrupted log */
    snprintf(cmd, sizeof cmd, "test $(grep -c '\"loss\"' '%s/a/log.jsonl') -eq 6", ref_tmpdir());
    ck_assert_int_eq(system(cmd), 0);
    /* issue 18. A run killed after its checkpoint at step 2 logged steps 3 and 4 and left a
     * temporary checkpoint of a dead process (pid 2^22+1 cannot exist: pid_max is at most
     * 2^22) and half a line; the resumed run drops those lines, removes the temporary and
     * logs each step once. */
    snprintf(args, sizeof args, "train %s --steps 2 --run-dir '%s/k'", small, ref_tmpdir());
    ck_assert_msg(run_sadm(args, log, sizeof log) == 0, "sadm train failed: %s", log);
    snprintf(cmd, sizeof cmd,
             "cd '%s/k' && printf '{\"step\": 3, \"loss\": 1}\\n{\"step\": 4, \"loss\": 1}\\n{\"step\": 5, \"lo' >> log.jsonl && "
             "head -c 1000 checkpoint.safetensors > checkpoint.safetensors.tmp.4194305 && "
             "cp checkpoint.safetensors.tmp.4194305 model-ema.safetensors.tmp.4194305",
             ref_tmpdir());
    ck_assert_int_eq(system(cmd), 0);
    snprintf(args, sizeof args, "train %s --steps 4 --run-dir '%s/k' --resume", small, ref_tmpdir());
    ck_assert_msg(run_sadm(args, log, sizeof log) == 0, "sadm train --resume failed: %s", log);
    ck_assert_msg(strstr(log, "dropped 3 lines after step 2"), "%s", log);
    snprintf(cmd, sizeof cmd,
             "cd '%s/k' && test $(grep -c '\"loss\"' log.jsonl) -eq 4 && test $(grep -c '\"step\": 3,' log.jsonl) -eq 1 && "
             "! ls *.tmp.* 2>/dev/null",
             ref_tmpdir());
    ck_assert_msg(system(cmd) == 0, "log.jsonl repeats or lacks steps, or a temporary file is left");
    /* a log that cannot be written stops the run with a message, and names the checkpoint
     * a --resume would continue from */
    snprintf(cmd, sizeof cmd, "cd '%s/k' && rm log.jsonl && ln -s /dev/full log.jsonl", ref_tmpdir());
    ck_assert_int_eq(system(cmd), 0);
    snprintf(args, sizeof args, "train %s --steps 8 --run-dir '%s/k' --resume", small, ref_tmpdir());
    ck_assert_int_eq(run_sadm(args, log, sizeof log), 1);
    ck_assert_msg(strstr(log, "log.jsonl: No space left on device; stopping") &&
                      strstr(log, "the last good checkpoint is") && strstr(log, "(step 4)"),
                  "%s", log);
    ref_cleanup();
}
END_TEST

/* sadm loss --sadm writes what sadm_sadm_loss computes; sadm train --sadm runs, logs the
 * structural distance, resumes bitwise, and starts from another run's checkpoint (--init). */
START_TEST(test_sadm_commands) {
    char model[300], batch[300], out[300], enc[300], args[2000], log[8192];
    snprintf(model, sizeof model, "%s/m.safetensors", ref_tmpdir());
    snprintf(batch, sizeof batch, "%s/b.safetensors", ref_tmpdir());
    snprintf(out, sizeof out, "%s/o.safetensors", ref_tmpdir());
    snprintf(enc, sizeof enc, "%s/e.safetensors", ref_tmpdir());
    float x[N * 128], noise[N * 128];
    int64_t t[N], y[N];
    write_inputs(model, batch, x, noise, t, y);
    sadm_encoder_config ec = {8, 4, 2, 16, 1, 2, 4.0f, 6};
    sadm_encoder *e;
    TU_OK(sadm_encoder_create(&ec, 3, &e));
    TU_OK(sadm_encoder_save(e, enc));
    snprintf(args, sizeof args,
             "loss --sadm --disc '%s' --lambda 0.7 --distance softmax-kl --weighting alpha --tau 0.2 --model '%s' --batch '%s' --out '%s'",
             enc, model, batch, out);
    ck_assert_msg(run_sadm(args, log, sizeof log) == 0, "sadm loss --sadm failed: %s", log);
    sadm_dit *m;
    sadm_diffusion *d;
    TU_OK(sadm_dit_load(model, NULL, &m));
    TU_OK(sadm_diffusion_create("linear", 1000, &d));
    sadm_sadm_config c;
    sadm_sadm_config_default(&c);
    c.lambda = 0.7f, c.distance = SADM_DIST_SOFTMAX_KL, c.weighting = SADM_WEIGHT_ALPHA, c.tau = 0.2f;
    float loss[N], mse[N], vb[N];
    sadm_struct_stats ss;
    TU_OK(sadm_dit_zero_grad(m));
    TU_OK(sadm_encoder_zero_grad(e));
    TU_OK(sadm_sadm_loss(m, e, d, &c, N, x, t, y, noise, loss, mse, vb, &ss, 1));
    sadm_st_file *f;
    TU_OK(sadm_st_open(out, &f));
    double sv;
    ck_assert_ptr_nonnull(sadm_st_find(f, "struct"));
    memcpy(&sv, sadm_st_find(f, "struct")->data, sizeof sv);
    ck_assert_msg(sv == ss.loss && sv > 0, "struct %.17g vs %.17g", sv, ss.loss);
    const float *g = sadm_dit_grad_data(m), *dg = sadm_encoder_grad_data(e);
    for (int which = 0; which < 2; which++) {
        size_t np = which ? sadm_encoder_num_params(e) : sadm_dit_num_params(m);
        for (size_t i = 0; i < np; i++) {
            const sadm_param *p = which ? sadm_encoder_param(e, i) : sadm_dit_param(m, i);
            if (!p->trainable) continue;
            char key[160];
            snprintf(key, sizeof key, "%s.%s", which ? "dgrad" : "grad", p->name);
            float *gg = tu_alloc(p->numel);
            TU_OK(sadm_st_read_f32(f, key, p->ndim, p->shape, gg));
            tu_assert_same(key, gg, (which ? dg : g) + p->offset, p->numel);
            free(gg);
        }
    }
    sadm_st_close(f);
    /* bad input: no encoder, a distance we do not know, an encoder of another shape */
    snprintf(args, sizeof args, "loss --sadm --model '%s' --batch '%s' --out '%s'", model, batch, out);
    ck_assert_int_eq(run_sadm(args, log, sizeof log), 2);
    ck_assert_msg(strstr(log, "--sadm needs --disc"), "message: %s", log);
    snprintf(args, sizeof args, "loss --sadm --disc '%s' --distance l2 --model '%s' --batch '%s' --out '%s'", enc, model,
             batch, out);
    ck_assert_int_eq(run_sadm(args, log, sizeof log), 2);
    ck_assert_msg(strstr(log, "unknown structural distance 'l2'"), "message: %s", log);
    sadm_encoder_free(e);
    ec.input_size = 16;
    TU_OK(sadm_encoder_create(&ec, 3, &e));
    TU_OK(sadm_encoder_save(e, enc));
    snprintf(args, sizeof args, "loss --sadm --disc '%s' --model '%s' --batch '%s' --out '%s'", enc, model, batch, out);
    ck_assert_int_eq(run_sadm(args, log, sizeof log), 1);
    ck_assert_msg(strstr(log, "encoder takes 2×16×16 inputs"), "message: %s", log);
    sadm_encoder_free(e);
    sadm_dit_free(m);
    sadm_diffusion_free(d);

    /* training: plain run a; SADM run b continues a's checkpoint; c = b stopped and resumed */
    const char *small = "--depth 1 --hidden-size 16 --num-heads 2 --patch-size 8 --batch-size 4 --ckpt-every 2 --log-every 1 --threads 2 --fd-samples 0";
    const char *sopts = "--sadm --lambda 0.5 --disc-depth 1 --disc-hidden 16 --disc-heads 2 --disc-embed 8 --d-steps 2";
    snprintf(args, sizeof args, "train %s --steps 2 --run-dir '%s/a'", small, ref_tmpdir());
    ck_assert_msg(run_sadm(args, log, sizeof log) == 0, "sadm train failed: %s", log);
    snprintf(args, sizeof args, "train %s %s --steps 5 --init '%s/a/checkpoint.safetensors' --run-dir '%s/b'", small, sopts,
             ref_tmpdir(), ref_tmpdir());
    ck_assert_msg(run_sadm(args, log, sizeof log) == 0, "sadm train --sadm failed: %s", log);
    ck_assert_msg(strstr(log, "starting from") && strstr(log, "at step 2") && strstr(log, "SADM lambda 0.5"), "%s", log);
    snprintf(args, sizeof args, "train %s %s --steps 4 --init '%s/a/checkpoint.safetensors' --run-dir '%s/c'", small, sopts,
             ref_tmpdir(), ref_tmpdir());
    ck_assert_msg(run_sadm(args, log, sizeof log) == 0, "sadm train --sadm failed: %s", log);
    snprintf(args, sizeof args, "train --steps 5 --resume --threads 1 --fd-samples 0 --run-dir '%s/c'", ref_tmpdir());
    ck_assert_msg(run_sadm(args, log, sizeof log) == 0, "sadm train --resume (SADM) failed: %s", log);
    char pb[400], pc[400];
    snprintf(pb, sizeof pb, "%s/b/checkpoint.safetensors", ref_tmpdir());
    snprintf(pc, sizeof pc, "%s/c/checkpoint.safetensors", ref_tmpdir());
    sadm_st_file *fb, *fc;
    TU_OK(sadm_st_open(pb, &fb));
    TU_OK(sadm_st_open(pc, &fc));
    ck_assert_ptr_nonnull(sadm_st_find(fb, "disc.head.weight"));
    ck_assert_ptr_nonnull(sadm_st_find(fb, "disc.opt.m.head.weight"));
    ck_assert_uint_eq(sadm_st_count(fb), sadm_st_count(fc));
    for (size_t i = 0; i < sadm_st_count(fb); i++) {
        const sadm_tensor_info *tb = sadm_st_tensor(fb, i), *tc = sadm_st_find(fc, tb->name);
        ck_assert_msg(tc && tc->nbytes == tb->nbytes && memcmp(tb->data, tc->data, tb->nbytes) == 0,
                      "SADM checkpoint tensor %s differs between the resumed and the uninterrupted run", tb->name);
    }
    sadm_st_close(fb);
    sadm_st_close(fc);
    char cmd[600];
    snprintf(cmd, sizeof cmd, "test $(grep -c '\"struct\"' '%s/b/log.jsonl') -eq 3", ref_tmpdir());
    ck_assert_int_eq(system(cmd), 0);
    /* --sadm on a plain run's own checkpoint: a new run is needed */
    snprintf(args, sizeof args, "train %s --sadm --steps 6 --resume --run-dir '%s/a'", small, ref_tmpdir());
    ck_assert_int_eq(run_sadm(args, log, sizeof log), 2);
    ck_assert_msg(strstr(log, "trains without SADM"), "%s", log);
    /* a batch of one has no structure */
    snprintf(args, sizeof args, "train --depth 1 --hidden-size 16 --num-heads 2 --patch-size 8 --batch-size 1 --sadm --steps 1 --fd-samples 0 --run-dir '%s/d'",
             ref_tmpdir());
    ck_assert_int_eq(run_sadm(args, log, sizeof log), 1);
    ck_assert_msg(strstr(log, "no pairs"), "%s", log);
    /* the experiment's options: t<N, adaptive lambda, encoder warm-up (from a's step 2: the
     * warm-up covers step 3, the adaptive lambda step 4) */
    snprintf(args, sizeof args,
             "train %s --sadm --disc-depth 1 --disc-hidden 16 --disc-heads 2 --disc-embed 8 --weighting 't<500' "
             "--adaptive-lambda 0.1 --disc-warmup 1 --disc-restart 50 --disc-restart-cos 0.95 --steps 4 "
             "--init '%s/a/checkpoint.safetensors' --run-dir '%s/e'",
             small, ref_tmpdir(), ref_tmpdir());
    ck_assert_msg(run_sadm(args, log, sizeof log) == 0, "sadm train with the new SADM options failed: %s", log);
    ck_assert_msg(strstr(log, "SADM lambda adaptive (ratio 0.1)") && strstr(log, "weighting t<500") &&
                      strstr(log, "warm-up 1 step,") && strstr(log, "restart after 50 steps collapsed (cos > 0.95)"),
                  "%s", log);
    snprintf(cmd, sizeof cmd,
             "grep -q '\"step\": 3,.*\"lambda_eff\": 0[,}]' '%s/e/log.jsonl' && grep '\"step\": 4,' '%s/e/log.jsonl' | "
             "grep -q '\"lambda_eff\": [0-9.e+-]*[1-9].*\"disc_restarts\": 0'",
             ref_tmpdir(), ref_tmpdir());
    ck_assert_msg(system(cmd) == 0,
                  "log.jsonl: lambda_eff not 0 in the warm-up step 3 and positive at step 4, or no disc_restarts");
    /* their bad values */
    static const char *const bad[][2] = {
        {"--weighting 't<1000' --steps 4", "weighting t<1000 weights every sample of a 1000-step diffusion"},
        {"--weighting 't<0' --steps 4", "t<0 weights no sample"},
        {"--weighting 't<4x' --steps 4", "expected t<N with N a whole number"},
        {"--adaptive-lambda -1 --steps 4", "--adaptive-lambda: '-1' is not a number"},
        {"--disc-warmup 3 --steps 5", "--disc-warmup 3: the run has only 3 SADM steps (--steps 5 from step 2)"},
        {"--disc-warmup 1 --d-steps 0 --steps 5", "the encoder would not learn in its warm-up"},
        {"--disc-restart 5 --d-steps 0 --steps 5", "a fresh encoder that never learns does nothing"},
        {"--disc-restart-cos 1 --steps 5", "--disc-restart-cos 1: no mean cosine is above it; it must lie in [-1, 1)"},
        {"--disc-restart -3 --steps 5", "--disc-restart"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        snprintf(args, sizeof args, "train %s --sadm %s --init '%s/a/checkpoint.safetensors' --run-dir '%s/f'", small,
                 bad[i][0], ref_tmpdir(), ref_tmpdir());
        ck_assert_int_eq(run_sadm(args, log, sizeof log), 2);
        ck_assert_msg(strstr(log, bad[i][1]), "%s: %s", bad[i][0], log);
    }
    ref_cleanup();
}
END_TEST

/* sadm fid: features equal the library's bitwise; stats files hold the library's
 * statistics; compare prints every metric; bad input is named. Random Inception weights
 * from tests/reference/inception_ref.py. */
START_TEST(test_fid_commands) {
    char w[300], img[300], feats[300], stats[300], ref[300], args[2000], log[8192];
    snprintf(w, sizeof w, "%s/w.safetensors", ref_tmpdir());
    snprintf(img, sizeof img, "%s/img.safetensors", ref_tmpdir());
    snprintf(feats, sizeof feats, "%s/f.safetensors", ref_tmpdir());
    snprintf(stats, sizeof stats, "%s/s.npz", ref_tmpdir());
    snprintf(ref, sizeof ref, "%s/ref.npz", ref_tmpdir());
    snprintf(args, sizeof args, "make '%s' 5", w);
    ref_run("inception_ref.py", args);
    enum { NI = 5, S = 40 };
    uint8_t *pix = malloc(NI * S * S * 3);
    float *u = tu_uniform(NI * S * S * 3, 4, 0, 255);
    for (int i = 0; i < NI * S * S * 3; i++) pix[i] = (uint8_t)u[i];
    sadm_st_writer *sw = sadm_st_writer_new();
    int64_t si[4] = {NI, S, S, 3};
    TU_OK(sadm_st_writer_add(sw, "images", SADM_DTYPE_U8, 4, si, pix));
    TU_OK(sadm_st_writer_save(sw, img));
    sadm_st_writer_free(sw);
    snprintf(args, sizeof args, "fid features --inception '%s' --images '%s' --out '%s' --batch-size 2", w, img, feats);
    ck_assert_msg(run_sadm(args, log, sizeof log) == 0, "sadm fid features failed: %s", log);
    sadm_inception *m;
    TU_OK(sadm_inception_load(w, &m));
    float *pool = tu_alloc(NI * 2048), *logits = tu_alloc(NI * 1008), *spatial = tu_alloc(NI * 2023), *got = tu_alloc(NI * 2048);
    TU_OK(sadm_inception_features(m, SADM_FID_ADM, NI, S, S, pix, pool, logits, spatial));
    sadm_st_file *f;
    TU_OK(sadm_st_open(feats, &f));
    int64_t sp[2] = {NI, 2048}, sl[2] = {NI, 1008}, ss[2] = {NI, 2023};
    TU_OK(sadm_st_read_f32(f, "pool", 2, sp, got));
    /* the command runs batches of 2, the library all 5 at once: OpenBLAS's Haswell/Zen
     * kernels sum a row differently by where it falls in the batch (SkylakeX's did not),
     * so batching is held to float rounding, not to the bit */
    tu_assert_close("fid features: pool", got, pool, NI * 2048, 1e-4, 1e-5);
    TU_OK(sadm_st_read_f32(f, "logits", 2, sl, got));
    tu_assert_close("fid features: logits", got, logits, NI * 1008, 1e-4, 1e-5);
    TU_OK(sadm_st_read_f32(f, "spatial", 2, ss, got));
    /* spatial features are early pre-activations with cancellation: held to the relative
     * L2 error of the whole tensor */
    double e2 = 0, r2 = 0;
    for (int i = 0; i < NI * 2023; i++) e2 += (double)(got[i] - spatial[i]) * (got[i] - spatial[i]), r2 += (double)spatial[i] * spatial[i];
    ck_assert_msg(sqrt(e2 / r2) < 1e-5, "fid features: spatial: relative L2 error %g", sqrt(e2 / r2));
    ck_assert_str_eq(sadm_st_metadata(f, "fid_mode"), "adm");
    sadm_st_close(f);
    /* statistics file = the library's statistics of those features */
    snprintf(args, sizeof args, "fid stats '%s' --inception '%s' -o '%s'", img, w, stats);
    ck_assert_msg(run_sadm(args, log, sizeof log) == 0, "sadm fid stats failed: %s", log);
    sadm_feature_stats *fs;
    double *mu = calloc(2048, 8), *mu_file = calloc(2048, 8);
    TU_OK(sadm_feature_stats_create(2048, &fs));
    TU_OK(sadm_feature_stats_add(fs, NI, pool));
    TU_OK(sadm_feature_stats_get(fs, mu, NULL));
    sadm_feature_stats_free(fs);
    sadm_npz *z;
    TU_OK(sadm_npz_open(stats, &z));
    TU_OK(sadm_npz_read(z, "mu", mu_file));
    ck_assert(memcmp(mu, mu_file, 2048 * 8) == 0);
    sadm_npz_close(z);
    /* a reference batch (arr_0) against the same images: FID ~ 0, every metric printed.
     * Builds without LAPACK run their own eigen-solver (~16 s for a 2048-d FID on 2 cores,
     * ~30 s on one): natively that is fine; under an emulator (SADM_EXEC_WRAPPER, the
     * NEON stage of .ci/run under qemu) it takes many minutes, so compare is left out
     * there — the solver itself is tested on every build by test_eval. */
    sadm_npz_array a = {"arr_0", SADM_DTYPE_U8, 4, {NI, S, S, 3}, pix};
    TU_OK(sadm_npz_write(ref, 1, &a));
    const char *wrapper = getenv("SADM_EXEC_WRAPPER");
    int run_compare = strstr(sadm_blas_info(), "OpenBLAS") != NULL || !wrapper || !*wrapper;
    if (!run_compare) fprintf(stderr, "test_fid_commands: an emulated build without LAPACK: sadm fid compare not run\n");
    snprintf(args, sizeof args, "fid compare '%s' '%s' --inception '%s' --k 2 --is-split 5", ref, img, w);
    if (run_compare) {
    ck_assert_msg(run_sadm(args, log, sizeof log) == 0, "sadm fid compare failed: %s", log);
    ck_assert_msg(strstr(log, "Inception mode: adm") && strstr(log, "Inception Score: ") && strstr(log, "sFID: ") &&
                      strstr(log, "Precision: 1\n") && strstr(log, "Recall: 1\n"),
                  "%s", log);
    const char *fl = strstr(log, "\nFID: ");
    ck_assert_msg(fl && fabs(atof(fl + 6)) < 1e-3, "FID of a set against itself: %s", log);
    /* the statistics file as reference: no precision/recall */
    snprintf(args, sizeof args, "fid compare '%s' '%s' --inception '%s'", stats, img, w);
    ck_assert_msg(run_sadm(args, log, sizeof log) == 0, "sadm fid compare (stats) failed: %s", log);
    ck_assert_msg(strstr(log, "Precision: n/a"), "%s", log);
    }
    /* bad input */
    snprintf(args, sizeof args, "fid compare '%s' '%s'", ref, img);
    ck_assert_int_eq(run_sadm(args, log, sizeof log), 2);
    ck_assert_msg(strstr(log, "has images but no statistics: their features need --inception W"), "%s", log);
    snprintf(args, sizeof args, "fid stats '%s' -o '%s'", img, stats);
    ck_assert_int_eq(run_sadm(args, log, sizeof log), 2);
    ck_assert_msg(strstr(log, "--inception is required"), "%s", log);
    snprintf(args, sizeof args, "fid stats '%s/none' --inception '%s' -o '%s'", ref_tmpdir(), w, stats);
    ck_assert_int_eq(run_sadm(args, log, sizeof log), 1);
    ck_assert_msg(strstr(log, "none: not a folder"), "%s", log);
    sadm_inception_free(m);
    free(pix), free(u), free(pool), free(logits), free(spatial), free(got), free(mu), free(mu_file);
    ref_cleanup();
}
END_TEST

/* sadm fid compare of two statistics files needs no Inception weights, and its FID is
 * pytorch-fid's scipy formula (tests/reference/fid_ref.py) on the same statistics. */
START_TEST(test_fid_compare_stats_only) {
    enum { D = 2048, R = 96 };
    const char *wrapper = getenv("SADM_EXEC_WRAPPER"); /* as test_fid_commands: minutes under an emulator */
    if (!(strstr(sadm_blas_info(), "OpenBLAS") != NULL || !wrapper || !*wrapper)) {
        fprintf(stderr, "test_fid_compare_stats_only: an emulated build without LAPACK: not run\n");
        return;
    }
    double *mu[2], *sigma[2], *a = malloc((size_t)D * R * sizeof(double));
    float *u = malloc((size_t)D * R * sizeof(float));
    char path[2][300], st_path[300], out[300], args[2000], log[8192];
    const char *names[2] = {"a.npz", "b.npz"};
    for (int k = 0; k < 2; k++) {
        mu[k] = malloc(D * sizeof(double)), sigma[k] = malloc((size_t)D * D * sizeof(double));
        TU_OK(sadm_rng_normal(40 + (uint64_t)k, 0, 0, (size_t)D * R, u));
        for (size_t i = 0; i < (size_t)D * R; i++) a[i] = u[i];
        TU_OK(sadm_rng_normal(40 + (uint64_t)k, 1, 0, D, u));
        for (int i = 0; i < D; i++) mu[k][i] = 0.3 * u[i] + k * 0.05;
        /* sigma = A A^T / R + 0.05 I: symmetric positive definite, full rank */
        for (int i = 0; i < D; i++)
            for (int j = 0; j <= i; j++) {
                double s = 0;
                for (int r = 0; r < R; r++) s += a[(size_t)i * R + r] * a[(size_t)j * R + r];
                sigma[k][(size_t)i * D + j] = sigma[k][(size_t)j * D + i] = s / R + (i == j ? 0.05 : 0);
            }
        snprintf(path[k], sizeof path[k], "%s/%s", ref_tmpdir(), names[k]);
        sadm_npz_array arr[2] = {{"mu", SADM_DTYPE_F64, 1, {D}, mu[k]}, {"sigma", SADM_DTYPE_F64, 2, {D, D}, sigma[k]}};
        TU_OK(sadm_npz_write(path[k], 2, arr));
    }
    snprintf(st_path, sizeof st_path, "%s/st.safetensors", ref_tmpdir());
    snprintf(out, sizeof out, "%s/fid.safetensors", ref_tmpdir());
    sadm_st_writer *w = sadm_st_writer_new();
    int64_t sm[1] = {D}, ss[2] = {D, D};
    TU_OK(sadm_st_writer_add(w, "mu1", SADM_DTYPE_F64, 1, sm, mu[0]));
    TU_OK(sadm_st_writer_add(w, "s1", SADM_DTYPE_F64, 2, ss, sigma[0]));
    TU_OK(sadm_st_writer_add(w, "mu2", SADM_DTYPE_F64, 1, sm, mu[1]));
    TU_OK(sadm_st_writer_add(w, "s2", SADM_DTYPE_F64, 2, ss, sigma[1]));
    TU_OK(sadm_st_writer_save(w, st_path));
    sadm_st_writer_free(w);
    snprintf(args, sizeof args, "fid '%s' '%s'", st_path, out);
    ref_run("fid_ref.py", args);
    sadm_st_file *f;
    TU_OK(sadm_st_open(out, &f));
    double want;
    memcpy(&want, sadm_st_find(f, "fid")->data, sizeof want);
    sadm_st_close(f);
    snprintf(args, sizeof args, "fid compare '%s' '%s' --json", path[0], path[1]);
    ck_assert_msg(run_sadm(args, log, sizeof log) == 0, "sadm fid compare of two statistics files failed: %s", log);
    const char *at = strstr(log, "\"fid\": ");
    ck_assert_msg(at && strstr(log, "\"sfid\": null") && strstr(log, "\"recall\": null"), "%s", log);
    double got = atof(at + 7);
    ck_assert_msg(want > 1 && fabs(got - want) <= 1e-6 * want, "FID %.12g, scipy %.12g: %s", got, want, log);
    snprintf(args, sizeof args, "fid compare '%s' '%s'", path[0], path[1]);
    ck_assert_msg(run_sadm(args, log, sizeof log) == 0, "%s", log);
    at = strstr(log, "\nFID: ");
    ck_assert_msg(at && strstr(log, "Inception mode: none") && strstr(log, "sFID: n/a"), "%s", log);
    ck_assert_msg(fabs(atof(at + 6) - want) <= 1e-6 * want, "text FID (8 digits) %s vs %.12g", at + 6, want);
    for (int k = 0; k < 2; k++) free(mu[k]), free(sigma[k]);
    free(a), free(u);
    ref_cleanup();
}
END_TEST

/* sadm sample with a noise file writes what sadm_dit_sample computes, and a PNG grid. */
/* sadm classifier and sadm fid compare --features fmnist: the shipped weights' accuracy
 * as the command prints it, FD_fmnist equal to the library's, training reproducible across
 * thread counts, bad input refused. */
START_TEST(test_fmnist_commands) {
    char args[2000], log[8192];
    ck_assert_msg(run_sadm("classifier --help", log, sizeof log) == 0, "%s", log);
    /* (the full 10k-image accuracy is test_classifier's; here the command's plumbing) */
    ck_assert_msg(run_sadm("classifier eval --subset 1000 --threads 2", log, sizeof log) == 0, "sadm classifier eval failed: %s", log);
    const char *acc = strstr(log, "test accuracy ");
    ck_assert_msg(acc && atof(acc + 14) >= 0.85 && strstr(log, "(1000 images,"), "%s", log);
    ck_assert_msg(strstr(log, "1000/1000 images"), "no progress line: %s", log);
    /* two sample sets of any quality (the fmnist-test side is what `sadm train` uses at
     * the end of test_train_command): FD_fmnist as the library computes it */
    enum { NS = 24, PIX = 32 * 32, D = SADM_CLASSIFIER_FEATURES };
    float *xs = tu_uniform((size_t)NS * PIX, 77, -1.1f, 1.0f), *xt = tu_uniform((size_t)NS * PIX, 78, -1.0f, 0.6f);
    float *feat = tu_alloc((size_t)NS * D), *feat_t = tu_alloc((size_t)NS * D);
    const char *files[2] = {ref_path("s.safetensors"), ref_path("t.safetensors")};
    for (int k = 0; k < 2; k++) {
        sadm_st_writer *w = sadm_st_writer_new();
        int64_t sx[4] = {NS, 1, 32, 32};
        TU_OK(sadm_st_writer_add(w, "samples", SADM_DTYPE_F32, 4, sx, k ? xt : xs));
        TU_OK(sadm_st_writer_save(w, files[k]));
        sadm_st_writer_free(w);
    }
    snprintf(args, sizeof args, "fid compare '%s' '%s' --features fmnist --threads 2", ref_path("t.safetensors"),
             ref_path("s.safetensors"));
    ck_assert_msg(run_sadm(args, log, sizeof log) == 0, "sadm fid compare --features fmnist failed: %s", log);
    const char *fdp = strstr(log, "FD_fmnist: ");
    ck_assert_msg(fdp, "%s", log);
    sadm_classifier *c;
    TU_OK(sadm_classifier_load(getenv("SADM_CLASSIFIER"), &c));
    sadm_feature_stats *ft, *fs;
    double *mu1 = malloc(D * sizeof(double)), *s1 = malloc((size_t)D * D * sizeof(double));
    double *mu2 = malloc(D * sizeof(double)), *s2 = malloc((size_t)D * D * sizeof(double)), fd;
    TU_OK(sadm_feature_stats_create(D, &ft));
    TU_OK(sadm_feature_stats_create(D, &fs));
    TU_OK(sadm_classifier_features_samples(c, NS, xt, feat_t));
    TU_OK(sadm_feature_stats_add(ft, NS, feat_t));
    TU_OK(sadm_classifier_features_samples(c, NS, xs, feat));
    TU_OK(sadm_feature_stats_add(fs, NS, feat));
    TU_OK(sadm_feature_stats_get(ft, mu1, s1));
    TU_OK(sadm_feature_stats_get(fs, mu2, s2));
    TU_OK(sadm_frechet_distance(D, mu1, s1, mu2, s2, &fd));
    ck_assert_msg(fabs(atof(fdp + 11) - fd) <= 1e-5 * fd, "sadm fid compare printed %s; the library gives %.9g", fdp, fd);
    /* precision and recall of the second side against the first, in the same features */
    double prec, rec;
    TU_OK(sadm_precision_recall(NS, feat_t, NS, feat, D, 3, &prec, &rec));
    const char *pp = strstr(log, "Precision: "), *rp = strstr(log, "Recall: ");
    ck_assert_msg(pp && rp && prec != rec, "%s (library: precision %g, recall %g)", log, prec, rec);
    ck_assert_msg(fabs(atof(pp + 11) - prec) <= 1e-7 && fabs(atof(rp + 8) - rec) <= 1e-7,
                  "sadm fid compare printed %.40s / %.40s; the library gives %.9g / %.9g", pp, rp, prec, rec);
    /* training: the same weights with 1 and 2 threads */
    const char *quick = "classifier train --subset 256 --epochs 1 --batch-size 64 --test-images 500";
    snprintf(args, sizeof args, "%s --threads 1 --out '%s'", quick, ref_path("c1.safetensors"));
    ck_assert_msg(run_sadm(args, log, sizeof log) == 0, "sadm classifier train failed: %s", log);
    ck_assert_msg(strstr(log, "test accuracy") && strstr(log, "(500 images)"), "%s", log);
    snprintf(args, sizeof args, "%s --threads 2 --out '%s'", quick, ref_path("c2.safetensors"));
    ck_assert_msg(run_sadm(args, log, sizeof log) == 0, "sadm classifier train failed: %s", log);
    char cmd[900];
    snprintf(cmd, sizeof cmd, "cmp -s '%s' '%s'", ref_path("c1.safetensors"), ref_path("c2.safetensors"));
    ck_assert_msg(system(cmd) == 0, "classifier weights differ between 1 and 2 threads");
    /* bad input */
    snprintf(args, sizeof args, "fid compare fmnist-test '%s' --features pixels", ref_path("s.safetensors"));
    ck_assert_int_eq(run_sadm(args, log, sizeof log), 2);
    ck_assert_msg(strstr(log, "--features pixels"), "%s", log);
    snprintf(args, sizeof args, "classifier eval --classifier '%s'", ref_path("s.safetensors"));
    ck_assert_int_eq(run_sadm(args, log, sizeof log), 1);
    ck_assert_msg(strstr(log, "not a Fashion-MNIST classifier"), "%s", log);
    ck_assert_int_eq(run_sadm("classifier train", log, sizeof log), 2);
    ck_assert_msg(strstr(log, "--out FILE is required"), "%s", log);
    sadm_feature_stats_free(ft), sadm_feature_stats_free(fs);
    sadm_classifier_free(c);
    free(xs), free(xt), free(feat), free(feat_t), free(mu1), free(s1), free(mu2), free(s2);
    ref_cleanup();
}
END_TEST

START_TEST(test_sample_command) {
    char model[300], noise[300], out[300], png[300], args[2000], log[8192];
    snprintf(model, sizeof model, "%s/m.safetensors", ref_tmpdir());
    snprintf(noise, sizeof noise, "%s/noise.safetensors", ref_tmpdir());
    snprintf(out, sizeof out, "%s/s.safetensors", ref_tmpdir());
    snprintf(png, sizeof png, "%s/grid.png", ref_tmpdir());
    const sadm_dit_config cfg = {8, 4, 1, 16, 1, 2, 4.0f, 0.1f, 3, 1};
    sadm_dit *m;
    TU_OK(sadm_dit_create(&cfg, 2, &m));
    tu_randomise_dit(m, 4, 0.5f);
    TU_OK(sadm_dit_save(m, model));
    enum { NS = 3, S = 5 };
    size_t per = 64;
    float xT[NS * 64], z[S * NS * 64], got[NS * 64], want[NS * 64];
    TU_OK(sadm_rng_normal(8, 0, 0, NS * per, xT));
    TU_OK(sadm_rng_normal(8, 1, 0, S * NS * per, z));
    sadm_st_writer *wr = sadm_st_writer_new();
    int64_t sx[4] = {NS, 1, 8, 8}, sz[5] = {S, NS, 1, 8, 8}, y[NS] = {2, 0, 1};
    TU_OK(sadm_st_writer_add(wr, "x_T", SADM_DTYPE_F32, 4, sx, xT));
    TU_OK(sadm_st_writer_add(wr, "z", SADM_DTYPE_F32, 5, sz, z));
    TU_OK(sadm_st_writer_save(wr, noise));
    sadm_st_writer_free(wr);
    snprintf(args, sizeof args,
             "sample --model '%s' --noise-file '%s' --labels 2,0,1 --steps 5 --cfg-scale 1.5 --batch-size 2 --out-tensor '%s' --grid '%s'",
             model, noise, out, png);
    ck_assert_msg(run_sadm(args, log, sizeof log) == 0, "sadm sample failed: %s", log);
    sadm_diffusion *d;
    TU_OK(sadm_diffusion_respaced("linear", 1000, "5", &d));
    sadm_sample_config sc = {0, 0, 1.5f, 0, 1};
    TU_OK(sadm_dit_sample(m, d, &sc, NS, y, xT, z, 0, want, NULL, NULL));
    sadm_st_file *f;
    TU_OK(sadm_st_open(out, &f));
    TU_OK(sadm_st_read_f32(f, "samples", 4, sx, got));
    /* batches of 2 against all 3 at once: equal to float rounding (see fid features) */
    tu_assert_close("sadm sample with a noise file", got, want, NS * per, 1e-5, 1e-6);
    sadm_st_close(f);
    FILE *pf = fopen(png, "rb");
    unsigned char sig[8] = {0};
    ck_assert_ptr_nonnull(pf);
    ck_assert_uint_eq(fread(sig, 1, 8, pf), 8);
    fclose(pf);
    ck_assert(sig[1] == 'P' && sig[2] == 'N' && sig[3] == 'G');
    /* bad input */
    snprintf(args, sizeof args, "sample --model '%s' --labels 7 --steps 5", model);
    ck_assert_int_eq(run_sadm(args, log, sizeof log), 2);
    ck_assert_msg(strstr(log, "7 is not a class"), "%s", log);
    snprintf(args, sizeof args, "sample --model '%s' --sampler euler", model);
    ck_assert_int_eq(run_sadm(args, log, sizeof log), 2);
    snprintf(args, sizeof args, "sample --model '%s' --steps 5000", model);
    ck_assert_int_eq(run_sadm(args, log, sizeof log), 1);
    ck_assert_msg(strstr(log, "cannot take 5000 steps"), "%s", log);
    sadm_diffusion_free(d);
    sadm_dit_free(m);
    ref_cleanup();
}
END_TEST

/* sadm convert of PyTorch .pt files: an official-style state dict (no metadata: the config
 * from the shapes) converts to our format bitwise; SADM_PT_ENTRY picks a checkpoint entry. */
START_TEST(test_convert_pt) {
    static const sadm_dit_config S2 = {8, 2, 4, 384, 1, 6, 4.0f, 0.1f, 10, 1};
    char model[300], pt[300], out[300], args[1500], log[8192];
    snprintf(model, sizeof model, "%s", ref_path("m.safetensors"));
    snprintf(pt, sizeof pt, "%s", ref_path("m.pt"));
    snprintf(out, sizeof out, "%s", ref_path("c.safetensors"));
    sadm_dit *m, *c;
    TU_OK(sadm_dit_create(&S2, 5, &m));
    tu_randomise_dit(m, 5, 1.0f);
    TU_OK(sadm_dit_save(m, model));
    snprintf(args, sizeof args, "state '%s' '%s' '%s' float32", model, pt, ref_path("ref.safetensors"));
    ref_run("pt_ref.py", args);
    snprintf(args, sizeof args, "convert '%s' '%s'", pt, out);
    ck_assert_msg(run_sadm(args, log, sizeof log) == 0, "sadm convert of a .pt failed: %s", log);
    TU_OK(sadm_dit_load(out, NULL, &c));
    ck_assert_int_eq(sadm_dit_get_config(c)->num_heads, 6);
    tu_assert_same("weights converted from the .pt", sadm_dit_param_data(c), sadm_dit_param_data(m), sadm_dit_param_total(m));
    sadm_dit_free(c);
    snprintf(args, sizeof args, "train '%s' '%s' '%s'", model, pt, ref_path("ref.safetensors"));
    ref_run("pt_ref.py", args);
    snprintf(args, sizeof args, "convert '%s' '%s'", pt, out);
    ck_assert_msg(run_sadm(args, log, sizeof log) == 0, "sadm convert of a DiT train.py checkpoint failed: %s", log);
    TU_OK(sadm_dit_load(out, NULL, &c));
    tu_assert_same("the checkpoint's EMA", sadm_dit_param_data(c), sadm_dit_param_data(m), sadm_dit_param_total(m));
    sadm_dit_free(c);
    setenv("SADM_PT_ENTRY", "opt", 1);
    ck_assert_int_eq(run_sadm(args, log, sizeof log), 1);
    unsetenv("SADM_PT_ENTRY");
    ck_assert_msg(strstr(log, "m.pt") && strstr(log, "state dict entry 'state' is a dict, not a tensor"), "%s", log);
    sadm_dit_free(m);
    ref_cleanup();
}
END_TEST

int main(void) {
    Suite *s = suite_create("cli");
    TCase *tc = tcase_create("cli");
    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, test_forward_and_loss_commands);
    tcase_add_test(tc, test_bad_input);
    tcase_add_test(tc, test_train_command);
    tcase_add_test(tc, test_sample_command);
    tcase_add_test(tc, test_sadm_commands);
    tcase_add_test(tc, test_fid_commands);
    tcase_add_test(tc, test_fid_compare_stats_only);
    tcase_add_test(tc, test_fmnist_commands);
    tcase_add_test(tc, test_convert_pt);
    suite_add_tcase(s, tc);
    return tu_run(s);
}
