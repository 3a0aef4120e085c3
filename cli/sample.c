/* sadm sample: images (PNG grid) and tensors from a trained DiT. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli.h"
#include "sadm.h"

#define STREAM_LABELS 22

static void on_progress(void *ctx, int done, int total) {
    cli_progress_state *p = ctx;
    char status[64];
    snprintf(status, sizeof status, "steps of batch");
    cli_progress(p, done, total, status);
}

/* "3,1,4" into labels; returns the count or -1. */
static int parse_labels(const char *s, int64_t **out) {
    int n = 1;
    for (const char *p = s; *p; p++) n += *p == ',';
    int64_t *v = malloc((size_t)n * sizeof *v);
    if (!v) return -1;
    const char *p = s;
    for (int i = 0; i < n; i++) {
        char *end;
        long x = strtol(p, &end, 10);
        if (end == p || (*end != ',' && *end)) {
            free(v);
            return -1;
        }
        v[i] = x;
        p = end + (*end == ',');
    }
    *out = v;
    return n;
}

/* The images of the samples, uint8 (N, H, W, 3) as DiT's sample_ddp.py quantises them for
 * ADM's evaluator: uint8(clamp(127.5 x + 128, 0, 255)) (grey replicated to 3 channels). */
static void quantise_nhwc(int C, int H, int W, const float *x, uint8_t *out) {
    for (int y = 0; y < H; y++)
        for (int xx = 0; xx < W; xx++)
            for (int c = 0; c < 3; c++) {
                float v = 127.5f * x[((size_t)(C == 1 ? 0 : c) * H + y) * W + xx] + 128.0f;
                out[((size_t)y * W + xx) * 3 + c] = (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v);
            }
}

/* The images of the samples, a block of rows at a time for sadm_npz_write_rows (so that
 * 50k samples at 512x512, 39 GB, never sit in memory) and for the grid: with a VAE each
 * latent sample (z * scaling_factor, as DiT samples them) is decoded alone; the first
 * `keep` decoded images are also kept as floats for the grid. */
typedef struct {
    sadm_vae *vae;
    const float *samples;
    int C, h;          /* the samples' channels and size */
    long num, keep;
    float *kept, *z, *x; /* kept: keep images (3, H, W); z, x: one latent, one image */
    cli_progress_state prog;
} image_rows;

static sadm_status make_rows(void *ctx, int64_t row0, int64_t nrows, void *dst) {
    image_rows *r = ctx;
    const size_t per = (size_t)r->C * r->h * r->h;
    if (!r->vae) {
        for (int64_t i = row0; i < row0 + nrows; i++)
            quantise_nhwc(r->C, r->h, r->h, r->samples + i * per, (uint8_t *)dst + (size_t)(i - row0) * r->h * r->h * 3);
        return SADM_OK;
    }
    const sadm_vae_config *vc = sadm_vae_get_config(r->vae);
    const int Hx = r->h * sadm_vae_factor(vc);
    const size_t per_x = (size_t)3 * Hx * Hx;
    for (int64_t i = row0; i < row0 + nrows; i++) {
        sadm_status st = (sadm_status)cli_decode_latent(r->vae, r->C, r->h, r->samples + i * per, r->z, r->x);
        if (st) return st;
        if (dst) quantise_nhwc(3, Hx, Hx, r->x, (uint8_t *)dst + (size_t)(i - row0) * Hx * Hx * 3);
        if (i < r->keep) memcpy(r->kept + i * per_x, r->x, per_x * sizeof(float));
        cli_progress(&r->prog, (long)(i + 1), dst ? r->num : r->keep, "decoded");
    }
    return SADM_OK;
}

int sadm_cmd_sample(int argc, char **argv) {
    cli_opt o[] = {
        {"model", "model file or training checkpoint (default: $SADM_BASE_MODEL, else the shipped Fashion-MNIST DiT, data/" CLI_BASE_MODEL_FILE ")", NULL, 0},
        {"raw-weights", "with a checkpoint: its raw weights instead of the EMA", NULL, 1},
        {"num", "number of samples", "16", 0},
        {"labels", "class labels, e.g. 3,1,4 (default: uniformly random)", NULL, 0},
        {"sampler", "ddpm or ddim", "ddpm", 0},
        {"steps", "timestep respacing: 250, 50, ddim25, 10,10,5 ... (\"\" = all)", "250", 0},
        {"eta", "DDIM eta (0: deterministic)", "0", 0},
        {"cfg-scale", "classifier-free guidance scale (1: none)", "1", 0},
        {"cfg-channels", "channels guided: all, or a count (3 reproduces DiT's sample.py)", "all", 0},
        {"clip-denoised", "clip predicted x0 to [-1,1]: yes, no or auto (yes for 1 or 3 channels)", "auto", 0},
        {"schedule", "noise schedule of training", "linear", 0},
        {"diffusion-steps", "diffusion steps of training", "1000", 0},
        {"seed", "seed of labels and noise", "0", 0},
        {"batch-size", "samples per model batch", "32", 0},
        {"threads", "threads (default: all cores)", NULL, 0},
        {"device", "auto, cpu or cuda (default: $SADM_DEVICE, else auto)", NULL, 0},
        CLI_PRECISION_OPT,
        {"grid", "PNG grid to write (images only)", "samples.png", 0},
        {"out-tensor", "safetensors file with samples (N,C,H,W) and labels", NULL, 0},
        {"noise-file", "safetensors with x_T (N,C,H,W) and z (S,N,C,H,W): the noise to use", NULL, 0},
        {"vae", "decode latent samples (divided by its scaling factor) with this VAE: a diffusers AutoencoderKL "
                "folder or .safetensors (sadm vae --help)", NULL, 0},
        {"out-npz", "the sample images as ADM's reference batches hold them (arr_0 uint8 (N,H,W,3)), for sadm fid",
         NULL, 0},
    };
    const size_t n = NOPT(o);
    int rc = cli_parse(argc, argv, o, n, "sadm sample --model M.safetensors [options]",
                       "Generates samples with DDPM (learned variance) or DDIM, optionally with classifier-free\n"
                       "guidance, and writes a PNG grid, a tensor file and/or an ADM-style .npz. Latent models\n"
                       "(DiT on SD-VAE latents) decode their samples with --vae: z = sample / scaling_factor, then\n"
                       "the VAE's decoder, one sample at a time; the grid shows the first 64.");
    if (rc) return rc == 1 ? 0 : rc;
    long num = 16, seed = 0, batch = 32, dsteps = 1000;
    double eta = 0, cfg = 1;
    if (cli_int(o, n, "num", 1, 1 << 24, &num) < 0 || cli_int(o, n, "seed", 0, 1L << 62, &seed) < 0 ||
        cli_int(o, n, "batch-size", 1, 1 << 16, &batch) < 0 || cli_int(o, n, "diffusion-steps", 2, 1 << 20, &dsteps) < 0 ||
        cli_double(o, n, "eta", 0, 100, &eta) < 0 || cli_double(o, n, "cfg-scale", 0, 1000, &cfg) < 0 || cli_runtime(o, n))
        return 2;
    char base_buf[4096];
    const char *given = cli_get(o, n, "model"), *sampler = cli_get(o, n, "sampler");
    const char *mpath = cli_data_path(given, "SADM_BASE_MODEL", CLI_BASE_MODEL_FILE, base_buf, sizeof base_buf);
    struct stat sb;
    if (!given && stat(mpath, &sb) != 0) {
        fprintf(stderr, "sadm sample: no --model given, and the shipped model is missing: %s does not exist (make install "
                        "copies data/%s to %s/; the README's \"The shipped model\" gives the command that makes it again)\n",
                mpath, CLI_BASE_MODEL_FILE, SADM_PKGDATADIR);
        return 1;
    }
    if (!given) fprintf(stderr, "sadm sample: model %s (the shipped Fashion-MNIST DiT)\n", mpath);
    if (strcmp(sampler, "ddpm") && strcmp(sampler, "ddim")) {
        fprintf(stderr, "sadm sample: --sampler %s: expected ddpm or ddim\n", sampler);
        return 2;
    }
    sadm_dit *m;
    if (sadm_dit_load_any(mpath, cli_get(o, n, "raw-weights") == NULL, &m)) return cli_fail("sample");
    int prc = 0;
    if (sadm_dit_to_backend(m, cli_backend()) || (prc = cli_model_precision(o, n, "sample", m))) {
        sadm_dit_free(m);
        return prc ? prc : cli_fail("sample");
    }
    const sadm_dit_config *mc = sadm_dit_get_config(m);
    int C = mc->in_channels, H = mc->input_size;
    size_t per = (size_t)C * H * H;
    sadm_sample_config sc = {!strcmp(sampler, "ddim"), (float)eta, (float)cfg, 0, 0};
    const char *cc = cli_get(o, n, "cfg-channels"), *clip = cli_get(o, n, "clip-denoised");
    if (strcmp(cc, "all")) {
        char *end;
        long k = strtol(cc, &end, 10);
        if (*end || k < 1 || k > C) {
            fprintf(stderr, "sadm sample: --cfg-channels %s: expected all or a count in [1, %d]\n", cc, C);
            sadm_dit_free(m);
            return 2;
        }
        sc.cfg_channels = (int)k;
    }
    if (strcmp(clip, "yes") && strcmp(clip, "no") && strcmp(clip, "auto")) {
        fprintf(stderr, "sadm sample: --clip-denoised %s: expected yes, no or auto\n", clip);
        sadm_dit_free(m);
        return 2;
    }
    sc.clip_denoised = !strcmp(clip, "yes") || (!strcmp(clip, "auto") && (C == 1 || C == 3));
    sadm_diffusion *d;
    if (sadm_diffusion_respaced(cli_get(o, n, "schedule"), (int)dsteps, cli_get(o, n, "steps"), &d)) {
        sadm_dit_free(m);
        return cli_fail("sample");
    }
    int S = sadm_diffusion_steps(d);
    /* the VAE before sampling, so that a wrong one does not cost the run */
    sadm_vae *vae = NULL;
    const char *vae_path = cli_get(o, n, "vae"), *npz = cli_get(o, n, "out-npz");
    if (vae_path && sadm_vae_load(vae_path, &vae)) rc = cli_fail("sample");
    if (vae && sadm_vae_get_config(vae)->latent_channels != C) {
        fprintf(stderr, "sadm sample: the model makes %d-channel samples but the VAE %s decodes %d-channel latents\n", C,
                vae_path, sadm_vae_get_config(vae)->latent_channels);
        rc = 2;
    }
    if (!rc && !vae && npz && C != 1 && C != 3) {
        fprintf(stderr, "sadm sample: --out-npz: %d-channel samples are latents; pass --vae to decode them\n", C);
        rc = 2;
    }
    float *xT = NULL, *z = NULL;
    sadm_st_file *nf = NULL;
    const char *noise_path = cli_get(o, n, "noise-file");
    if (noise_path) {
        if (sadm_st_open(noise_path, &nf)) rc = cli_fail("sample");
        const sadm_tensor_info *tx = rc ? NULL : sadm_st_find(nf, "x_T");
        if (!rc && (!tx || tx->ndim != 4 || tx->shape[1] != C || tx->shape[2] != H || tx->shape[3] != H)) {
            fprintf(stderr, "sadm sample: %s: needs x_T of shape (N, %d, %d, %d)\n", noise_path, C, H, H);
            rc = 2;
        }
        if (!rc) num = (long)tx->shape[0];
    }
    int64_t *labels = NULL;
    const char *ls = cli_get(o, n, "labels");
    if (!rc && ls) {
        int k = parse_labels(ls, &labels);
        if (k < 0) {
            fprintf(stderr, "sadm sample: --labels %s: expected integers separated by commas\n", ls);
            rc = 2;
        } else if (noise_path && k != num) {
            fprintf(stderr, "sadm sample: --labels gives %d labels for the %ld samples of %s\n", k, num, noise_path);
            rc = 2;
        } else {
            num = k; /* the labels decide how many samples */
        }
        for (int i = 0; !rc && i < k; i++)
            if (labels[i] < 0 || labels[i] >= mc->num_classes) {
                fprintf(stderr, "sadm sample: --labels: %lld is not a class of this model (0..%d)\n", (long long)labels[i],
                        mc->num_classes - 1);
                rc = 2;
            }
    }
    float *out = NULL;
    if (!rc) {
        xT = malloc((size_t)num * per * sizeof(float));
        out = malloc((size_t)num * per * sizeof(float));
        if (!labels) labels = malloc((size_t)num * sizeof(int64_t));
        if (!xT || !out || !labels) {
            fprintf(stderr, "sadm sample: out of memory for %ld samples\n", num);
            rc = 1;
        }
    }
    if (!rc && !ls) {
        float *u = malloc((size_t)num * sizeof(float));
        sadm_rng_uniform((uint64_t)seed, STREAM_LABELS, 0, (size_t)num, u);
        for (long i = 0; i < num; i++) labels[i] = (int64_t)(u[i] * mc->num_classes) % mc->num_classes;
        free(u);
    }
    if (!rc && noise_path) {
        int64_t sx[4] = {num, C, H, H}, sz[5] = {S, num, C, H, H};
        z = malloc((size_t)S * num * per * sizeof(float));
        if (!z || sadm_st_read_f32(nf, "x_T", 4, sx, xT) || sadm_st_read_f32(nf, "z", 5, sz, z)) rc = cli_fail("sample");
        /* NaN noise would write NaN samples and a grey PNG without a word */
        for (size_t i = 0; !rc && i < (size_t)num * per; i++)
            if (!isfinite(xT[i])) {
                fprintf(stderr, "sadm sample: %s: x_T has a non-finite value (%g) at element %zu\n", noise_path, xT[i], i);
                rc = 2;
            }
        for (size_t i = 0; !rc && i < (size_t)S * num * per; i++)
            if (!isfinite(z[i])) {
                fprintf(stderr, "sadm sample: %s: z has a non-finite value (%g) at element %zu\n", noise_path, z[i], i);
                rc = 2;
            }
    } else if (!rc) {
        sadm_rng_normal((uint64_t)seed, CLI_STREAM_XT, 0, (size_t)num * per, xT);
    }
    fprintf(stderr, "sadm sample: %ld samples, %s with %d steps, guidance %g, %s\n", num, sampler, S, cfg,
            sc.clip_denoised ? "x0 clipped" : "x0 not clipped");
    for (long b0 = 0; !rc && b0 < num; b0 += batch) {
        int nb = (int)(num - b0 < batch ? num - b0 : batch);
        /* noise of a batch without a file: its own stream, keyed by the first sample */
        float *zb = NULL;
        if (z) {
            zb = malloc((size_t)S * nb * per * sizeof(float));
            for (int s = 0; zb && s < S; s++)
                memcpy(zb + (size_t)s * nb * per, z + ((size_t)s * num + b0) * per, (size_t)nb * per * sizeof(float));
        }
        cli_progress_state prog = {0};
        if ((z && !zb) || sadm_dit_sample(m, d, &sc, nb, labels + b0, xT + b0 * per, zb, ((uint64_t)seed << 24) + (uint64_t)b0,
                                          out + b0 * per, on_progress, &prog))
            rc = cli_fail("sample");
        free(zb);
    }
    const char *grid = cli_get(o, n, "grid"), *tensor = cli_get(o, n, "out-tensor");
    if (!rc && tensor) {
        sadm_st_writer *w = sadm_st_writer_new();
        int64_t sx[4] = {num, C, H, H}, sn[1] = {num};
        if (!w || sadm_st_writer_add(w, "samples", SADM_DTYPE_F32, 4, sx, out) ||
            sadm_st_writer_add(w, "labels", SADM_DTYPE_I64, 1, sn, labels) || sadm_st_writer_save(w, tensor))
            rc = cli_fail("sample");
        sadm_st_writer_free(w);
        if (!rc) fprintf(stderr, "sadm sample: wrote %s\n", tensor);
    }
    /* the images: the samples themselves, or decoded (a grid shows at most GRID_MAX) */
    enum { GRID_MAX = 64 };
    int IC = vae ? 3 : C, IH = vae ? H * sadm_vae_factor(sadm_vae_get_config(vae)) : H;
    long keep = grid && *grid ? (num < GRID_MAX || !vae ? num : GRID_MAX) : 0;
    float *images = out, *decoded = NULL;
    image_rows rows = {vae, out, C, H, num, vae ? keep : 0, NULL, NULL, NULL, {0}};
    if (!rc && vae) {
        size_t per_x = (size_t)3 * IH * IH;
        rows.z = malloc((size_t)C * H * H * sizeof(float)), rows.x = malloc(per_x * sizeof(float));
        decoded = rows.kept = keep ? malloc((size_t)keep * per_x * sizeof(float)) : NULL;
        if (!rows.z || !rows.x || (keep && !decoded)) {
            fprintf(stderr, "sadm sample: out of memory to decode\n");
            rc = 1;
        }
        images = decoded;
    }
    if (!rc && npz) {
        /* written as decoded, 16 images at a time */
        sadm_npz_array a = {"arr_0", SADM_DTYPE_U8, 4, {num, IH, IH, 3}, NULL};
        if (sadm_npz_write_rows(npz, &a, 16, make_rows, &rows)) rc = cli_fail("sample");
        else fprintf(stderr, "sadm sample: wrote %s (arr_0 uint8 %ldx%dx%dx3)\n", npz, num, IH, IH);
    } else if (!rc && vae && keep) {
        if (make_rows(&rows, 0, keep, NULL)) rc = cli_fail("sample"); /* only what the grid shows */
    }
    free(rows.z), free(rows.x);
    if (!rc && grid && *grid && (IC == 1 || IC == 3)) {
        int nrow = 1;
        while ((long)nrow * nrow < keep) nrow++;
        if (sadm_write_png_grid(grid, (int)keep, IC, IH, IH, images, nrow)) rc = cli_fail("sample");
        else fprintf(stderr, "sadm sample: wrote %s%s\n", grid, keep < num ? " (the first 64 samples)" : "");
    } else if (!rc && !tensor && !npz) {
        fprintf(stderr, "sadm sample: %d-channel samples are latents: pass --vae to decode them, or --out-tensor\n", C);
        rc = 2;
    }
    free(decoded);
    sadm_vae_free(vae);
    sadm_st_close(nf);
    sadm_dit_free(m);
    sadm_diffusion_free(d);
    free(xT), free(z), free(out), free(labels);
    return rc;
}
