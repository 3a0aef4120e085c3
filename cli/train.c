/* sadm train: DiT training on Fashion-MNIST (the embedded default) with checkpoints,
 * a JSON-lines log, a progress bar, resume, and a clean stop on Ctrl-C. */
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli.h"
#include "sadm_opts.h"
#include "sadm.h"

static volatile sig_atomic_t stop_requested;
static void on_signal(int sig) {
    (void)sig;
    stop_requested = 1;
}

static int make_dirs(const char *path) {
    char buf[4096];
    snprintf(buf, sizeof buf, "%s", path);
    for (char *p = buf + 1; *p; p++)
        if (*p == '/') {
            *p = 0;
            if (mkdir(buf, 0777) && errno != EEXIST) return -1;
            *p = '/';
        }
    return mkdir(buf, 0777) && errno != EEXIST ? -1 : 0;
}

static int file_exists(const char *path) {
    struct stat sb;
    return stat(path, &sb) == 0;
}

/* A training checkpoint (rather than a model file)? */
static int is_checkpoint(const char *path) {
    sadm_st_file *f;
    if (sadm_st_open(path, &f)) return 0;
    int yes = sadm_st_metadata(f, "train.step") != NULL;
    sadm_st_close(f);
    return yes;
}

/* SADM on a trainer: the encoder from --disc or a fresh one of the --disc-* size. */
static int enable_sadm(sadm_trainer *tr, const cli_opt *o, size_t n, long steps) {
    sadm_sadm_config sc;
    int rc = cli_sadm_config(o, n, "train", sadm_trainer_config(tr)->diffusion_steps, &sc);
    long d_steps = 1, depth = 2, hidden = 96, heads = 4, patch = 0, embed = 64, warmup = 0, restart = 0;
    double dlr = sc.disc_lr, rcos = sc.restart_cos;
    if (rc || cli_int(o, n, "d-steps", 0, 1000, &d_steps) < 0 || cli_double(o, n, "disc-lr", 0, 10, &dlr) < 0 ||
        cli_int(o, n, "disc-warmup", 0, 1L << 40, &warmup) < 0 ||
        cli_int(o, n, "disc-restart", 0, INT_MAX, &restart) < 0 ||
        cli_double(o, n, "disc-restart-cos", -1, 1, &rcos) < 0 ||
        cli_int(o, n, "disc-depth", 0, 1000, &depth) < 0 || cli_int(o, n, "disc-hidden", 4, 1 << 16, &hidden) < 0 ||
        cli_int(o, n, "disc-heads", 1, 1024, &heads) < 0 || cli_int(o, n, "disc-patch", 1, 1 << 12, &patch) < 0 ||
        cli_int(o, n, "disc-embed", 1, 1 << 16, &embed) < 0)
        return 2;
    long left = steps - sadm_trainer_steps_done(tr);
    if (warmup > 0 && warmup >= left) {
        fprintf(stderr, "sadm train: --disc-warmup %ld: the run has only %ld SADM step%s (--steps %ld from step %ld); "
                        "the warm-up must end before the run does\n",
                warmup, left > 0 ? left : 0, left == 1 ? "" : "s", steps, sadm_trainer_steps_done(tr));
        return 2;
    }
    if (warmup > 0 && d_steps == 0) {
        fprintf(stderr, "sadm train: --disc-warmup %ld with --d-steps 0: the encoder would not learn in its warm-up\n",
                warmup);
        return 2;
    }
    if (rcos >= 1) {
        fprintf(stderr, "sadm train: --disc-restart-cos %g: no mean cosine is above it; it must lie in [-1, 1)\n", rcos);
        return 2;
    }
    if (restart > 0 && d_steps == 0) {
        fprintf(stderr, "sadm train: --disc-restart %ld with --d-steps 0: a fresh encoder that never learns does nothing\n",
                restart);
        return 2;
    }
    sc.d_steps = (int)d_steps, sc.disc_lr = (float)dlr, sc.disc_warmup = (int)warmup;
    sc.disc_restart = (int)restart, sc.restart_cos = (float)rcos;
    const sadm_dit_config *mc = sadm_dit_get_config(sadm_trainer_model(tr));
    if (!patch) patch = mc->input_size % 8 == 0 ? mc->input_size / 8 : mc->patch_size;
    sadm_encoder *e = NULL;
    const char *disc = cli_get(o, n, "disc");
    sadm_encoder_config ec = {mc->input_size, (int)patch, mc->in_channels, (int)hidden, (int)depth, (int)heads, 4.0f,
                              (int)embed};
    /* its own seed: the DiT's init uses the run seed with the same stream numbers */
    uint64_t eseed = sadm_encoder_run_seed(sadm_trainer_config(tr)->seed, 0);
    if (disc ? sadm_encoder_load(disc, &e) : sadm_encoder_create(&ec, eseed, &e)) return cli_fail("train");
    if (sadm_trainer_enable_sadm(tr, e, &sc)) {
        sadm_encoder_free(e);
        return cli_fail("train");
    }
    return 0;
}


/* The end-of-run FD_fmnist: options checked and the classifier loaded before training,
 * so that a typo does not cost a whole run. */
typedef struct fd_setup {
    sadm_classifier *judge; /* NULL: no FD_fmnist */
    sadm_fd_fmnist_config cfg;
    const char *weights;
    size_t test_images;
} fd_setup;

static int fd_prepare(const cli_opt *o, size_t n, const char *data_arg, fd_setup *fd) {
    long samples = 1000, steps = 25, test_images = 10000;
    memset(fd, 0, sizeof *fd);
    if (cli_int(o, n, "fd-samples", 0, 1 << 24, &samples) < 0 || cli_int(o, n, "fd-steps", 1, 1000, &steps) < 0 ||
        cli_int(o, n, "fd-test-images", 2, 1L << 30, &test_images) < 0)
        return 2;
    fd->test_images = (size_t)test_images;
    fd->weights = cli_get(o, n, "fd-weights");
    if (strcmp(fd->weights, "raw") && strcmp(fd->weights, "ema")) {
        fprintf(stderr, "sadm train: --fd-weights %s: expected raw or ema\n", fd->weights);
        return 2;
    }
    if (samples == 1) {
        fprintf(stderr, "sadm train: --fd-samples 1: the statistics need at least 2 (0 turns FD_fmnist off)\n");
        return 2;
    }
    sadm_fd_fmnist_config_default(&fd->cfg);
    fd->cfg.samples = (int)samples, fd->cfg.steps = (int)steps;
    if (!samples || strcmp(data_arg, "fmnist")) return 0;
    return cli_classifier_load("train", cli_get(o, n, "classifier"), &fd->judge);
}

static void on_fd_progress(void *ctx, int done, int total) { cli_progress(ctx, done, total, "FD_fmnist samples"); }
static void on_grid_progress(void *ctx, int done, int total) { cli_progress(ctx, done, total, "grid sampling steps"); }

/* After a failure: which checkpoint a --resume would continue from, if there is one. */
static void last_checkpoint_note(const char *ckpt) {
    sadm_st_file *f;
    if (file_exists(ckpt) && !sadm_st_open(ckpt, &f)) {
        const char *step = sadm_st_metadata(f, "train.step");
        fprintf(stderr, "sadm train: stopped; the last good checkpoint is %s (step %s): --resume continues from it\n", ckpt,
                step ? step : "?");
        sadm_st_close(f);
    } else {
        fprintf(stderr, "sadm train: stopped; no checkpoint was written yet (%s does not exist)\n", ckpt);
    }
}

/* What sadm_run's callback shows: a progress bar (or a line every 30 s), the collapse
 * warning, and a stop after Ctrl-C / SIGTERM (the run then writes its checkpoint). */
typedef struct run_view {
    cli_progress_state prog;
    long steps;
    int sadm;
} run_view;

static int on_run_step(void *ctx, const sadm_run_event *ev) {
    run_view *v = ctx;
    const sadm_step_stats *s = ev->stats;
    if (ev->collapsed)
        fprintf(stderr, "%ssadm train: warning: the structure encoder has collapsed (mean cosine of real embeddings > %g "
                        "for %ld steps, L_struct %.3g): SADM has no effect now; try a smaller --disc-lr or --lambda\n",
                v->prog.tty ? "\n" : "", ev->collapse_cos, ev->collapse_steps, s->l_struct);
    if (s->disc_restarted)
        fprintf(stderr, "%ssadm train: step %ld: the structure encoder had collapsed (mean cosine of real embeddings > %g); "
                        "a fresh one takes over (restart %ld)\n",
                v->prog.tty ? "\n" : "", s->step, ev->collapse_cos, s->disc_restarts);
    char status[128];
    if (v->sadm)
        snprintf(status, sizeof status, "loss %.4f struct %.4f", s->loss, s->l_struct);
    else
        snprintf(status, sizeof status, "loss %.4f", s->loss);
    cli_progress(&v->prog, s->step, v->steps, status);
    return stop_requested != 0;
}

/* The latent samples (z * scaling_factor) decoded one at a time into images (3, S f, S f). */
static int decode_grid(sadm_vae *v, int N, int C, int S, const float *lat, float **images) {
    const int f = sadm_vae_factor(sadm_vae_get_config(v));
    const size_t per = (size_t)C * S * S, per_x = (size_t)3 * S * f * S * f;
    float *z = malloc(per * sizeof(float)), *x = malloc((size_t)N * per_x * sizeof(float));
    int rc = !z || !x;
    if (rc) fprintf(stderr, "sadm train: out of memory to decode the grid\n");
    cli_progress_state prog = {0};
    for (int i = 0; i < N && !rc; i++) {
        if (cli_decode_latent(v, C, S, lat + i * per, z, x + i * per_x)) rc = cli_fail("train");
        else cli_progress(&prog, i + 1, N, "grid images decoded");
    }
    free(z);
    if (rc) free(x), x = NULL;
    *images = x;
    return rc;
}

/* The picture a person judges a run by: `per_class` EMA samples of every class (of the
 * first 16), one class per column (DDIM 50 steps, no guidance, noise from the run's seed),
 * as samples.png; latent samples decoded by vae (NULL: no grid for latents, said so). */
static int end_grid(sadm_trainer *tr, const char *ema_path, const char *grid_path, int per_class, sadm_vae *vae) {
    const sadm_dit_config *mc = sadm_dit_get_config(sadm_trainer_model(tr));
    /* at most 16 columns: a 1000-class data set shows its first 16 classes */
    int K = mc->num_classes < 16 ? mc->num_classes : 16, C = mc->in_channels, S = mc->input_size;
    if (per_class <= 0 || K < 1) return 0;
    if (C != 1 && C != 3 && !vae) {
        fprintf(stderr, "sadm train: no %s: the model makes %d-channel latents (pass --vae V to decode them)\n", grid_path, C);
        return 0;
    }
    int N = K * per_class;
    size_t per = (size_t)C * S * S;
    float *xT = malloc((size_t)N * per * sizeof(float)), *out = malloc((size_t)N * per * sizeof(float));
    int64_t *y = malloc((size_t)N * sizeof(int64_t));
    sadm_dit *ema = NULL;
    sadm_diffusion *d = NULL;
    int rc = 0;
    if (!xT || !out || !y || sadm_dit_load(ema_path, NULL, &ema) || sadm_dit_to_backend(ema, cli_backend()) ||
        sadm_dit_set_precision(ema, sadm_trainer_config(tr)->precision) ||
        sadm_diffusion_respaced(sadm_trainer_config(tr)->schedule, sadm_trainer_config(tr)->diffusion_steps, "ddim50", &d))
        rc = cli_fail("train");
    if (!rc) {
        for (int i = 0; i < N; i++) y[i] = i % K; /* row-major grid of K columns */
        uint64_t seed = sadm_trainer_config(tr)->seed;
        sadm_rng_normal(seed, CLI_STREAM_XT, 0, (size_t)N * per, xT);
        sadm_sample_config sc = {1, 0.0f, 1.0f, 0, 1};
        cli_progress_state prog = {0};
        fprintf(stderr, "sadm train: %d EMA samples (%d per class, DDIM 50, no guidance) for %s\n", N, per_class, grid_path);
        float *images = NULL;
        if (sadm_dit_sample(ema, d, &sc, N, y, xT, NULL, seed << 24, out, on_grid_progress, &prog)) rc = cli_fail("train");
        else if (vae) rc = decode_grid(vae, N, C, S, out, &images);
        const int side = vae ? S * sadm_vae_factor(sadm_vae_get_config(vae)) : S;
        if (!rc && sadm_write_png_grid(grid_path, N, vae ? 3 : C, side, side, vae ? images : out, K)) rc = cli_fail("train");
        else if (!rc) printf("samples: %s\n", grid_path);
        free(images);
    }
    sadm_dit_free(ema);
    sadm_diffusion_free(d);
    free(xT), free(out), free(y);
    return rc;
}

/* FD_fmnist of the finished run's model against the test images: to stdout and the log. */
static int fd_report(const fd_setup *fd, sadm_trainer *tr, const char *data_dir, const char *ema_path, FILE *log) {
    const sadm_dit_config *mc = sadm_dit_get_config(sadm_trainer_model(tr));
    if (!fd->judge || mc->in_channels != 1 || mc->input_size != SADM_CLASSIFIER_SIZE) return 0;
    const int D = SADM_CLASSIFIER_FEATURES;
    double *mu = malloc(D * sizeof(double)), *sigma = malloc((size_t)D * D * sizeof(double)), v = 0;
    sadm_dit *ema = NULL, *m = sadm_trainer_model(tr);
    int rc = !mu || !sigma ? cli_fail("train") : 0;
    if (!rc && !strcmp(fd->weights, "ema")) {
        if (sadm_dit_load(ema_path, NULL, &ema)) rc = cli_fail("train");
        m = ema;
    }
    size_t reference = 0;
    if (!rc) rc = cli_fmnist_split_stats("train", fd->judge, data_dir, "test", fd->test_images, mu, sigma, &reference);
    if (!rc)
        fprintf(stderr, "sadm train: FD_fmnist of %d samples (%s weights, DDIM %d, no guidance) against %zu test images\n",
                fd->cfg.samples, fd->weights, fd->cfg.steps, reference);
    cli_progress_state prog = {0};
    if (!rc && sadm_fd_fmnist(m, fd->judge, mu, sigma, &fd->cfg, on_fd_progress, &prog, &v)) rc = cli_fail("train");
    if (!rc) {
        printf("FD_fmnist: %.8g (%d samples, %s weights, step %ld)\n", v, fd->cfg.samples, fd->weights,
               sadm_trainer_steps_done(tr));
        fprintf(log, "{\"step\": %ld, \"fd_fmnist\": %.6g, \"fd_samples\": %d, \"fd_steps\": %d, \"fd_weights\": \"%s\", "
                     "\"fd_test_images\": %zu}\n",
                sadm_trainer_steps_done(tr), v, fd->cfg.samples, fd->cfg.steps, fd->weights, reference);
        fflush(log);
    }
    sadm_dit_free(ema);
    free(mu), free(sigma);
    return rc;
}

int sadm_cmd_train(int argc, char **argv) {
    cli_opt o[] = {
        {"data", "training data: fmnist (Fashion-MNIST from Debian's dataset-fashion-mnist), an image folder root/<class>/*.jpg|png, a folder of latent shards written by sadm encode (memory-mapped), or a .safetensors file with x (N,C,S,S) and y (N) int64 (e.g. VAE latents)", "fmnist", 0},
        {"image-size", "with an image folder: the training resolution (ADM's centre crop)", "256", 0},
        {"data-dir", "folder of the Fashion-MNIST IDX files", NULL, 0},
        {"arch", "a named DiT (DiT-S/2 .. DiT-XL/8) instead of the custom size below", NULL, 0},
        {"depth", "custom DiT: blocks", "6", 0},
        {"hidden-size", "custom DiT: width", "256", 0},
        {"num-heads", "custom DiT: attention heads", "4", 0},
        {"patch-size", "custom DiT: patch size", "4", 0},
        {"learn-sigma", "1: learned-range variance and the vb loss term (as DiT); 0: epsilon only", "1", 0},
        {"class-dropout", "label dropout for classifier-free guidance", "0.1", 0},
        {"batch-size", "images per step", "64", 0},
        {"steps", "total optimisation steps of the run (the default takes about 25 minutes on 2 cores)", "2000", 0},
        {"epochs", "instead of --steps: passes over the data (incomplete last batches are dropped)", NULL, 0},
        {"lr", "AdamW learning rate (DiT: 1e-4 at batch 256; 3e-4 suits the short default run)", "3e-4", 0},
        {"weight-decay", "AdamW weight decay", "0", 0},
        {"ema-decay", "EMA decay per step", "0.9999", 0},
        {"ema-warmup", "1: the update after step s uses min(ema-decay, (1+s)/(10+s)), so that a short run's EMA "
                       "forgets the random initial weights; 0: ema-decay from the first step (as DiT)", "1", 0},
        {"grad-clip", "clip the global gradient norm to this (0: off)", "0", 0},
        {"no-flip", "no random horizontal flips", NULL, 1},
        {"seed", "seed of initialisation, data order and noise (default: 0; with --init CHECKPOINT: the checkpoint's)", NULL, 0},
        {"threads", "threads (default: all cores)", NULL, 0},
        {"device", "auto, cpu or cuda (default: $SADM_DEVICE, else auto)", NULL, 0},
        CLI_PRECISION_OPT,
        {"run-dir", "folder for checkpoint.safetensors, model-ema.safetensors and log.jsonl", "runs/fmnist", 0},
        {"ckpt-every", "steps between checkpoints", "500", 0},
        {"log-every", "steps between log lines", "10", 0},
        {"resume", "continue from the run folder's checkpoint (model, optimiser and data settings come from it; --steps may grow)", NULL, 1},
        {"init", "start a new run from a training checkpoint (its weights, EMA, optimiser, step and settings; --sadm may be added) or from a model file (its weights; fresh optimiser at step 0)", NULL, 0},
        {"fd-samples", "with --data fmnist: FD_fmnist of this many samples against the 10k test images at the end (0: off)", "1000", 0},
        {"fd-steps", "FD_fmnist: DDIM steps", "25", 0},
        {"fd-test-images", "FD_fmnist: the reference is the first N test images", "10000", 0},
        {"fd-weights", "FD_fmnist: ema or raw weights", "ema", 0},
        {"grid-per-class", "at the end: this many EMA samples of every class (the first 16 at most) in run-dir/samples.png, one class per column (0: none)", "8", 0},
        {"vae", "latent data: decode the end-of-run samples with this VAE for samples.png (a diffusers AutoencoderKL folder or .safetensors; checked at the start)", NULL, 0},
        {"classifier", "FD_fmnist: the classifier's weights (default: the shipped data/fmnist-classifier.safetensors)", NULL, 0},
        {"sadm", "train with SADM: a structure encoder as discriminator (options below)", NULL, 1},
        SADM_STRUCT_OPTS,
        {"d-steps", "SADM: encoder Adam steps per denoiser step", "1", 0},
        {"disc-lr", "SADM: encoder Adam learning rate", "1e-4", 0},
        {"disc-warmup", "SADM: the first K steps train only the encoder (the denoiser's steps are plain ones)", "0", 0},
        {"disc-restart", "SADM: a fresh encoder (and Adam state) after N steps in a row collapsed (0: never)", "0", 0},
        {"disc-restart-cos", "SADM: collapsed means a mean cosine of real embeddings above this", "0.99", 0},
        {"disc", "SADM: start from this structure encoder (.safetensors) instead of a fresh one", NULL, 0},
        {"disc-depth", "SADM: fresh encoder's blocks", "2", 0},
        {"disc-hidden", "SADM: fresh encoder's width", "96", 0},
        {"disc-heads", "SADM: fresh encoder's attention heads", "4", 0},
        {"disc-patch", "SADM: fresh encoder's patch size (default: input size / 8, i.e. 64 tokens)", NULL, 0},
        {"disc-embed", "SADM: fresh encoder's embedding size", "64", 0},
    };
    int rc = cli_parse(argc, argv, o, NOPT(o), "sadm train [options]",
                       "Trains a class-conditional DiT with DiT's loss (MSE + VB, learned variance), AdamW and an\n"
                       "EMA of the weights. With no options: a 6-block, 256-wide DiT with patch 4 on Fashion-MNIST\n"
                       "(padded to 32x32). Ctrl-C stops after the current step and saves a checkpoint; --resume\n"
                       "continues bitwise as if never stopped. --sadm adds SADM's structure discriminator (a small\n"
                       "ViT encoder trained to maximise the structural distance between real and denoised batches;\n"
                       "the denoiser minimises its loss + lambda x that distance); --init fine-tunes an existing model.");
    if (rc) return rc == 1 ? 0 : rc;
    const size_t n = NOPT(o);
    long depth, hidden, heads, patch, ls, batch, steps, seed = 0, ckpt_every, log_every, ema_warmup;
    double dropout, lr, wd, ema, clip;
    if (cli_int(o, n, "depth", 0, 1000, &depth) < 0 || cli_int(o, n, "hidden-size", 4, 1 << 16, &hidden) < 0 ||
        cli_int(o, n, "num-heads", 1, 1024, &heads) < 0 || cli_int(o, n, "patch-size", 1, 64, &patch) < 0 ||
        cli_int(o, n, "learn-sigma", 0, 1, &ls) < 0 || cli_int(o, n, "ema-warmup", 0, 1, &ema_warmup) < 0 || cli_int(o, n, "batch-size", 1, 1 << 20, &batch) < 0 ||
        cli_int(o, n, "steps", 1, 1L << 40, &steps) < 0 || cli_int(o, n, "seed", 0, 1L << 62, &seed) < 0 ||
        cli_int(o, n, "ckpt-every", 1, 1L << 40, &ckpt_every) < 0 || cli_int(o, n, "log-every", 1, 1L << 40, &log_every) < 0 ||
        cli_runtime(o, n) || cli_double(o, n, "class-dropout", 0, 0.999, &dropout) < 0 ||
        cli_double(o, n, "lr", 0, 10, &lr) < 0 || cli_double(o, n, "weight-decay", 0, 10, &wd) < 0 ||
        cli_double(o, n, "ema-decay", 0, 1, &ema) < 0 || cli_double(o, n, "grad-clip", 0, 1e30, &clip) < 0)
        return 2;
    const char *data_arg = cli_get(o, n, "data");
    size_t dl = strlen(data_arg);
    int is_tensors = dl > 12 && !strcmp(data_arg + dl - 12, ".safetensors");
    long image_size = 256;
    if (cli_int(o, n, "image-size", 8, 4096, &image_size) < 0) return 2;
    const char *dir = cli_get(o, n, "run-dir");
    char ckpt[4096], ema_path[4096], log_path[4096];
    snprintf(ckpt, sizeof ckpt, "%s/checkpoint.safetensors", dir);
    snprintf(ema_path, sizeof ema_path, "%s/model-ema.safetensors", dir);
    snprintf(log_path, sizeof log_path, "%s/log.jsonl", dir);
    int resume = cli_get(o, n, "resume") != NULL;
    if (!resume && file_exists(ckpt)) {
        fprintf(stderr, "sadm train: %s already exists: pass --resume to continue that run, or choose another --run-dir\n", ckpt);
        return 2;
    }
    if (make_dirs(dir)) {
        fprintf(stderr, "sadm train: cannot create %s: %s\n", dir, strerror(errno));
        return 1;
    }
    sadm_dataset *data;
    char manifest[4096];
    snprintf(manifest, sizeof manifest, "%s/manifest.json", data_arg);
    sadm_status dst = !strcmp(data_arg, "fmnist") ? sadm_dataset_fmnist(cli_get(o, n, "data-dir"), "train", &data)
                      : is_tensors                 ? sadm_dataset_tensors(data_arg, &data)
                      : file_exists(manifest)      ? sadm_dataset_latents(data_arg, &data)
                                                   : sadm_dataset_image_folder(data_arg, (int)image_size, &data);
    if (dst) return cli_fail("train");
    const char *vae_path = cli_get(o, n, "vae");
    if (vae_path) { /* checked now, loaded again at the end: not hours later */
        sadm_vae *v;
        if (sadm_vae_load(vae_path, &v)) {
            sadm_dataset_free(data);
            return cli_fail("train");
        }
        int lc = sadm_vae_get_config(v)->latent_channels;
        sadm_vae_free(v);
        if (lc != sadm_dataset_channels(data)) {
            fprintf(stderr, "sadm train: --vae %s makes %d-channel latents; the data has %d channels\n", vae_path, lc,
                    sadm_dataset_channels(data));
            sadm_dataset_free(data);
            return 2;
        }
    }
    sadm_trainer *tr = NULL;
    const char *init = cli_get(o, n, "init");
    int want_sadm = cli_get(o, n, "sadm") != NULL;
    if (resume && init) {
        fprintf(stderr, "sadm train: --resume continues the run folder's own checkpoint; --init starts a new run: pick one\n");
        sadm_dataset_free(data);
        return 2;
    }
    if (resume && file_exists(ckpt)) {
        if (sadm_trainer_load(ckpt, data, &tr)) {
            sadm_dataset_free(data);
            return cli_fail("train");
        }
        fprintf(stderr, "sadm train: resuming %s at step %ld\n", ckpt, sadm_trainer_steps_done(tr));
        if (want_sadm && !sadm_trainer_encoder(tr)) {
            fprintf(stderr, "sadm train: %s trains without SADM; to add it start a new run: --init %s --sadm --run-dir NEW\n",
                    ckpt, ckpt);
            sadm_trainer_free(tr);
            sadm_dataset_free(data);
            return 2;
        }
    } else if (init && is_checkpoint(init)) {
        if (sadm_trainer_load(init, data, &tr)) {
            sadm_dataset_free(data);
            return cli_fail("train");
        }
        fprintf(stderr, "sadm train: starting from %s at step %ld (its weights, EMA, optimiser and settings)\n", init,
                sadm_trainer_steps_done(tr));
        if (cli_get(o, n, "seed")) sadm_trainer_set_seed(tr, (uint64_t)seed);
    } else {
        sadm_dit_config mc;
        const char *arch = cli_get(o, n, "arch");
        if (arch) {
            if (sadm_dit_config_named(arch, sadm_dataset_image_size(data), sadm_dataset_channels(data),
                                      sadm_dataset_num_classes(data), &mc)) {
                sadm_dataset_free(data);
                return cli_fail("train");
            }
        } else {
            mc = (sadm_dit_config){sadm_dataset_image_size(data), (int)patch, sadm_dataset_channels(data), (int)hidden,
                                   (int)depth, (int)heads, 4.0f, 0.1f, sadm_dataset_num_classes(data), 1};
        }
        mc.learn_sigma = (int)ls;
        mc.class_dropout_prob = (float)dropout;
        sadm_train_config tc;
        sadm_train_config_default(&tc);
        tc.batch_size = (int)batch, tc.lr = (float)lr, tc.weight_decay = (float)wd, tc.ema_decay = (float)ema;
        tc.ema_warmup = (int)ema_warmup;
        tc.grad_clip = (float)clip, tc.flip = cli_get(o, n, "no-flip") == NULL, tc.seed = (uint64_t)seed;
        sadm_dit *m = NULL;
        if ((init ? sadm_dit_load(init, NULL, &m) : sadm_dit_create(&mc, tc.seed, &m)) ||
            sadm_trainer_create(m, data, &tc, &tr)) {
            rc = cli_fail("train");
            sadm_dit_free(m); /* the trainer owns it only once made */
            sadm_dataset_free(data);
            return rc;
        }
        if (init) fprintf(stderr, "sadm train: starting from the weights of %s\n", init);
    }
    long epochs = 0, grid_per_class = 8;
    if (cli_int(o, n, "epochs", 1, 1L << 30, &epochs) < 0 || cli_int(o, n, "grid-per-class", 0, 1000, &grid_per_class) < 0) {
        sadm_trainer_free(tr);
        sadm_dataset_free(data);
        return 2;
    }
    if (epochs) steps = epochs * (long)(sadm_dataset_size(data) / (size_t)sadm_trainer_config(tr)->batch_size);
    if (want_sadm && !sadm_trainer_encoder(tr) && (rc = enable_sadm(tr, o, n, steps))) {
        sadm_trainer_free(tr);
        sadm_dataset_free(data);
        return rc;
    }
    /* --precision: a new run's, or a change for the rest of a resumed one (the state is fp32
     * either way); absent, a run keeps the precision its checkpoint recorded */
    sadm_precision prec = SADM_PRECISION_FP32;
    int prec_given = 0;
    if (sadm_trainer_to_backend(tr, cli_backend()) ||
        (rc = cli_precision(o, n, &prec, &prec_given)) == 2 ||
        (prec_given && sadm_trainer_set_precision(tr, prec))) {
        rc = rc == 2 ? 2 : cli_fail("train");
        sadm_trainer_free(tr);
        sadm_dataset_free(data);
        return rc;
    }
    rc = 0;
    const sadm_dit_config *mc = sadm_dit_get_config(sadm_trainer_model(tr));
    size_t params = 0;
    for (size_t i = 0; i < sadm_dit_num_params(sadm_trainer_model(tr)); i++)
        if (sadm_dit_param(sadm_trainer_model(tr), i)->trainable) params += sadm_dit_param(sadm_trainer_model(tr), i)->numel;
    fprintf(stderr, "sadm train: DiT depth %d width %d heads %d patch %d on %dx%dx%d, %zu parameters; batch %d, %s backend, %d threads, %s kernels, %s\n",
            mc->depth, mc->hidden_size, mc->num_heads, mc->patch_size, mc->in_channels, mc->input_size, mc->input_size,
            params, sadm_trainer_config(tr)->batch_size, sadm_backend_name(cli_backend()), sadm_num_threads(), sadm_isa(),
            sadm_trainer_config(tr)->precision == SADM_PRECISION_BF16 ? "bf16 products" : "fp32 products");
    sadm_encoder *enc = sadm_trainer_encoder(tr);
    if (enc) {
        const sadm_sadm_config *sc = sadm_trainer_sadm_config(tr);
        const sadm_encoder_config *ec = sadm_encoder_get_config(enc);
        size_t eparams = 0;
        for (size_t i = 0; i < sadm_encoder_num_params(enc); i++)
            if (sadm_encoder_param(enc, i)->trainable) eparams += sadm_encoder_param(enc, i)->numel;
        char lam[64], wbuf[32], restart[96] = "no restart";
        if (sc->disc_restart > 0)
            snprintf(restart, sizeof restart, "restart after %d step%s collapsed (cos > %g)", sc->disc_restart,
                     sc->disc_restart == 1 ? "" : "s", sc->restart_cos);
        if (sc->grad_ratio > 0) snprintf(lam, sizeof lam, "adaptive (ratio %g)", sc->grad_ratio);
        else snprintf(lam, sizeof lam, "%g", sc->lambda);
        fprintf(stderr, "sadm train: SADM lambda %s, %s, weighting %s, tau %g; encoder depth %d width %d heads %d patch %d "
                        "embed %d, %zu parameters, Adam lr %g, %d step%s per denoiser step, warm-up %d step%s, %s\n",
                lam, sadm_struct_distance_name(sc->distance), sadm_sadm_weighting_string(sc, wbuf, sizeof wbuf), sc->tau,
                ec->depth, ec->hidden_size, ec->num_heads, ec->patch_size, ec->embed_dim, eparams, sc->disc_lr, sc->d_steps,
                sc->d_steps == 1 ? "" : "s", sc->disc_warmup, sc->disc_warmup == 1 ? "" : "s", restart);
    }
    fd_setup fd;
    if ((rc = fd_prepare(o, n, data_arg, &fd))) {
        sadm_trainer_free(tr);
        sadm_dataset_free(data);
        return rc;
    }
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);
    /* the loop itself is the library's (sadm_run): log, checkpoints, collapse detection */
    run_view view = {{0}, steps, sadm_trainer_encoder(tr) != NULL};
    sadm_run_config rc_cfg = {ckpt, ema_path, log_path, steps, log_every, ckpt_every};
    sadm_run_result res;
    long start = sadm_trainer_steps_done(tr);
    rc = 0;
    if (sadm_run(tr, &rc_cfg, on_run_step, &view, &res)) {
        if (view.prog.tty) fprintf(stderr, "\n");
        rc = cli_fail("train");
        last_checkpoint_note(ckpt);
    } else {
        if (res.log_lines_dropped)
            fprintf(stderr, "sadm train: %s: dropped %zu line%s after step %ld (logged by the run that was stopped)\n",
                    log_path, res.log_lines_dropped, res.log_lines_dropped == 1 ? "" : "s", start);
        fprintf(stderr, "%ssadm train: %s at step %ld: %s, %s\n", view.prog.tty && res.stopped ? "\n" : "",
                res.stopped ? "stopped" : "done", res.steps_done, ckpt, ema_path);
        if (res.stopped) rc = 130;
    }
    FILE *log = NULL;
    if (!rc && fd.judge && !(log = fopen(log_path, "a"))) {
        fprintf(stderr, "sadm train: cannot open %s: %s\n", log_path, strerror(errno));
        rc = 1;
    }
    /* the embedded default's own metric, once the run is complete */
    if (!rc && log) rc = fd_report(&fd, tr, cli_get(o, n, "data-dir"), ema_path, log);
    sadm_classifier_free(fd.judge);
    if (log && fclose(log) != 0 && !rc) {
        fprintf(stderr, "sadm train: cannot write %s: %s\n", log_path, strerror(errno));
        rc = 1;
    }
    /* what a person looks at: the samples and the loss curve, beside log.jsonl */
    if (!rc && grid_per_class) {
        char grid_path[4096];
        snprintf(grid_path, sizeof grid_path, "%s/samples.png", dir);
        sadm_vae *grid_vae = NULL;
        if (vae_path && sadm_vae_load(vae_path, &grid_vae)) rc = cli_fail("train");
        if (!rc) rc = end_grid(tr, ema_path, grid_path, (int)grid_per_class, grid_vae);
        sadm_vae_free(grid_vae);
    }
    if (!rc) {
        char svg_path[4096];
        snprintf(svg_path, sizeof svg_path, "%s/loss.svg", dir);
        if (sadm_write_loss_svg(log_path, svg_path)) rc = cli_fail("train");
        else printf("loss curve: %s\n", svg_path);
    }
    sadm_trainer_free(tr);
    sadm_dataset_free(data);
    return rc;
}
