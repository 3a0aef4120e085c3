/* sadm encode: an ImageNet-layout folder -> latent shards for `sadm train --data DIR`. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "sadm.h"

typedef struct {
    cli_progress_state bar;
    double start;
} encode_progress;

static void on_progress(void *ctx, size_t done, size_t total, size_t fresh) {
    encode_progress *p = ctx;
    double secs = cli_now() - p->start;
    char status[64];
    snprintf(status, sizeof status, "images, %.2f images/s", secs > 0 ? (double)fresh / secs : 0.0);
    cli_progress(&p->bar, (long)done, (long)total, status);
}

static void on_skipped(void *ctx, const char *path, const char *why) {
    encode_progress *p = ctx;
    /* on a terminal the progress bar holds the line: start a new one */
    fprintf(stderr, "%ssadm encode: skipping %s: %s\n", p->bar.started && p->bar.tty ? "\n" : "", path, why);
}

int sadm_cmd_encode(int argc, char **argv) {
    cli_opt o[] = {
        {"data", "the image folder: <class>/<image> files (.jpg .jpeg .png), classes in sorted folder order as "
                 "torchvision's ImageFolder (e.g. ImageNet's train/)", NULL, 0},
        {"vae", "the VAE: a diffusers AutoencoderKL folder (config.json + diffusion_pytorch_model.safetensors) or "
                "one .safetensors with the config in its metadata", NULL, 0},
        {"out", "the output folder (created; a rerun with the same options resumes it)", NULL, 0},
        {"image-size", "pixels a side after ADM's centre crop (256 or 512 for DiT)", "256", 0},
        {"flip", "also encode each image mirrored (x_flip; training then flips by choosing it)", NULL, 1},
        {"posterior", "sample (DiT's train.py and fast-DiT: one draw of the posterior per image) or mean", "sample", 0},
        {"dtype", "f32 or bf16 (half the disk)", "f32", 0},
        {"seed", "seed of the posterior samples", "0", 0},
        {"shard-size", "images per shard", "4096", 0},
        {"strict", "stop at the first image that cannot be decoded (default: skip it, name it, count it)", NULL, 1},
        {"threads", "threads (default: all cores)", NULL, 0},
        {"device", "auto, cpu or cuda (default: $SADM_DEVICE, else auto)", NULL, 0},
    };
    const size_t n = NOPT(o);
    int rc = cli_parse(argc, argv, o, n, "sadm encode --data IMAGENET/train --vae V --out LATENTS [options]",
                       "Encodes every image of an ImageNet-layout folder with the SD VAE, as fast-DiT's\n"
                       "extract_features.py does: ADM's centre crop, x in [-1, 1], latent = scaling_factor x a\n"
                       "sample (or the mean) of the posterior. Writes LATENTS/shard-NNNNNN.safetensors (x, y and\n"
                       "with --flip x_flip) and LATENTS/manifest.json. Killed or stopped, the same command\n"
                       "resumes: complete shards are kept, the rest encoded again, with the same bytes. An image\n"
                       "that cannot be decoded is named, skipped and counted (listed in the manifest); images\n"
                       "smaller than the crop are upsampled (bicubic) as ADM's center_crop_arr does.\n"
                       "Train on the result: sadm train --data LATENTS --arch DiT-XL/2 ...");
    if (rc) return rc == 1 ? 0 : rc;
    const char *data = cli_get(o, n, "data"), *vpath = cli_get(o, n, "vae"), *out = cli_get(o, n, "out");
    if (!data || !vpath || !out) {
        fprintf(stderr, "sadm encode: --data, --vae and --out are required (see --help)\n");
        return 2;
    }
    long size, seed, shard;
    if (cli_int(o, n, "image-size", 8, 4096, &size) < 0 || cli_int(o, n, "seed", 0, (1L << 62), &seed) < 0 ||
        cli_int(o, n, "shard-size", 1, 1 << 20, &shard) < 0 || cli_runtime(o, n))
        return 2;
    const char *post = cli_get(o, n, "posterior"), *dtype = cli_get(o, n, "dtype");
    if (strcmp(post, "sample") && strcmp(post, "mean")) {
        fprintf(stderr, "sadm encode: --posterior %s: expected sample or mean\n", post);
        return 2;
    }
    if (strcmp(dtype, "f32") && strcmp(dtype, "bf16")) {
        fprintf(stderr, "sadm encode: --dtype %s: expected f32 or bf16\n", dtype);
        return 2;
    }
    sadm_encode_config c = {.image_size = (int)size, .flip = cli_get(o, n, "flip") != NULL,
                            .posterior_mean = !strcmp(post, "mean"),
                            .dtype = strcmp(dtype, "bf16") ? SADM_DTYPE_F32 : SADM_DTYPE_BF16, .seed = (uint64_t)seed,
                            .shard_size = (int)shard, .strict = cli_get(o, n, "strict") != NULL};
    sadm_vae *v;
    if (sadm_vae_load(vpath, &v)) return cli_fail("encode");
    encode_progress p = {.start = cli_now()};
    sadm_encode_hooks hooks = {&p, on_progress, on_skipped};
    sadm_encode_report r = {0};
    double t0 = cli_now();
    if (sadm_encode_image_folder(v, data, out, &c, &hooks, &r)) rc = cli_fail("encode");
    sadm_vae_free(v);
    if (rc) return rc;
    double secs = cli_now() - t0;
    fprintf(stderr, "sadm encode: %zu of %zu images encoded into %zu shards in %s (%zu kept from an earlier run), "
                    "%zu left out%s; %.1f s\n",
            r.encoded, r.images, r.shards, out, r.shards_kept, r.corrupt,
            r.corrupt ? " (named above and in manifest.json)" : "", secs);
    return 0;
}
