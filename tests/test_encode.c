/* sadm encode (issue 14, part 2) and training on its shards (part 3): a small ImageNet-
 * layout folder (tests/reference/encode_ref.py: JPEG/PNG of several modes and odd sizes,
 * one smaller than the crop, a truncated JPEG, an empty PNG, a text file) encoded by
 * libsadm equals diffusers' AutoencoderKL on the images Pillow and ADM's centre crop make
 * (within 1e-4 of max|ref|, posterior mean and sample, plain and mirrored); BF16 shards are
 * the F32 values rounded to nearest even; a process killed after two shards and a damaged
 * shard are resumed to the bytes of an uninterrupted run; changed settings are refused;
 * the shards as a data set give their rows, and `sadm train` on them resumes bitwise. */
#include <dirent.h>
#include <jansson.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "reference.h"
#include "testutil.h"

#define SIZE 32 /* image pixels a side */
#define LAT 8   /* latent side: the test VAE has factor 4 */
#define PER (4 * LAT * LAT)
#define FILES 9 /* .jpg/.jpeg/.png files in the folder; 2 cannot be decoded */
#define GOOD 7

static const char *VAE_CONFIG =
    "{\"block_out_channels\": [8, 16, 16], \"layers_per_block\": 1, \"norm_num_groups\": 4, "
    "\"down_block_types\": [\"DownEncoderBlock2D\", \"DownEncoderBlock2D\", \"DownEncoderBlock2D\"], "
    "\"up_block_types\": [\"UpDecoderBlock2D\", \"UpDecoderBlock2D\", \"UpDecoderBlock2D\"]}";

static char vae_dir[400], root[400];

/* The VAE and the image folder in this test's temporary folder; with ref, diffusers'
 * encoding of the folder in ref.safetensors too. */
static void setup(int ref) {
    char cfg[400], args[2000];
    snprintf(cfg, sizeof cfg, "%s/vae.json", ref_tmpdir());
    FILE *f = fopen(cfg, "w");
    ck_assert_msg(f && fputs(VAE_CONFIG, f) >= 0 && fclose(f) == 0, "cannot write %s", cfg);
    snprintf(vae_dir, sizeof vae_dir, "%s/vae", ref_tmpdir());
    snprintf(root, sizeof root, "%s/train", ref_tmpdir());
    snprintf(args, sizeof args, "make '%s' '%s' 21", cfg, vae_dir);
    ref_run_diffusers("vae_ref.py", args);
    snprintf(args, sizeof args, "make '%s'", root);
    ref_run_diffusers("encode_ref.py", args);
    if (ref) {
        snprintf(args, sizeof args, "encode '%s' '%s' %d '%s'", vae_dir, root, SIZE, ref_path("ref.safetensors"));
        ref_run_diffusers("encode_ref.py", args);
    }
}

static const char *out_path(const char *name) {
    static char p[4][400];
    static int k;
    k = (k + 1) % 4;
    snprintf(p[k], sizeof p[k], "%s/%s", ref_tmpdir(), name);
    return p[k];
}

typedef struct {
    int skipped, progress_calls;
    char names[2000];
    size_t last_done;
} hook_log;

static void on_progress(void *ctx, size_t done, size_t total, size_t fresh) {
    hook_log *h = ctx;
    ck_assert_uint_eq(total, FILES);
    ck_assert_msg(done >= h->last_done && done <= total && fresh <= done, "progress %zu of %zu after %zu", done, total,
                  h->last_done);
    h->last_done = done, h->progress_calls++;
}

static void on_skipped(void *ctx, const char *path, const char *why) {
    hook_log *h = ctx;
    h->skipped++;
    ck_assert_msg(why && *why, "no reason for skipping %s", path);
    strncat(h->names, path, sizeof h->names - strlen(h->names) - 2);
    strcat(h->names, ";");
}

static sadm_status encode(const char *out, sadm_encode_config c, sadm_encode_report *r, hook_log *h) {
    sadm_vae *v;
    TU_OK(sadm_vae_load(vae_dir, &v));
    sadm_encode_hooks hooks = {h, on_progress, on_skipped};
    sadm_status st = sadm_encode_image_folder(v, root, out, &c, h ? &hooks : NULL, r);
    sadm_vae_free(v);
    return st;
}

/* Tensor `name` of every shard of dir, rows in order (*rows of them): floating point as
 * float, I64 (y) as int64. */
static void *gather(const char *dir, const char *name, size_t *rows) {
    unsigned char *all = NULL;
    size_t n = 0;
    for (int k = 0;; k++) {
        char p[500];
        snprintf(p, sizeof p, "%s/shard-%06d.safetensors", dir, k);
        if (access(p, F_OK) != 0) break;
        sadm_st_file *f;
        TU_OK(sadm_st_open(p, &f));
        const sadm_tensor_info *t = sadm_st_find(f, name);
        if (t) {
            const int i64 = t->dtype == SADM_DTYPE_I64;
            const size_t row = i64 ? sizeof(int64_t) : PER * sizeof(float), r = (size_t)t->shape[0];
            all = realloc(all, (n + r) * row);
            if (i64) memcpy(all + n * row, t->data, t->nbytes);
            else TU_OK(sadm_st_read_f32(f, name, 0, NULL, (float *)(all + n * row)));
            n += r;
        }
        sadm_st_close(f);
    }
    *rows = n;
    return all;
}

static float *read_ref(const char *name, size_t n) {
    sadm_st_file *f;
    TU_OK(sadm_st_open(ref_path("ref.safetensors"), &f));
    const sadm_tensor_info *t = sadm_st_find(f, name);
    ck_assert_msg(t && t->numel == n, "ref.safetensors: %s has %zu values, expected %zu", name, t ? t->numel : 0, n);
    float *x = tu_alloc(n);
    TU_OK(sadm_st_read_f32(f, name, 0, NULL, x));
    sadm_st_close(f);
    return x;
}

static int64_t *read_ref_i64(const char *name) {
    sadm_st_file *f;
    TU_OK(sadm_st_open(ref_path("ref.safetensors"), &f));
    const sadm_tensor_info *t = sadm_st_find(f, name);
    ck_assert_msg(t && t->numel == GOOD, "ref.safetensors: %s has %zu values, expected %d", name, t ? t->numel : 0, GOOD);
    int64_t *v = malloc(t->nbytes);
    memcpy(v, t->data, t->nbytes);
    sadm_st_close(f);
    return v;
}

static json_t *manifest(const char *dir) {
    char p[500];
    snprintf(p, sizeof p, "%s/manifest.json", dir);
    json_error_t e;
    json_t *m = json_load_file(p, 0, &e);
    ck_assert_msg(m, "%s: %s", p, e.text);
    return m;
}

START_TEST(test_encode_vs_diffusers) {
    setup(1);
    const float sf = 0.18215f;
    float *rm = read_ref("mean", GOOD * PER), *rl = read_ref("logvar", GOOD * PER);
    float *rmf = read_ref("mean_flip", GOOD * PER), *rlf = read_ref("logvar_flip", GOOD * PER);
    int64_t *ry = read_ref_i64("y"), *ridx = read_ref_i64("index");
    float *want = tu_alloc(GOOD * PER), *eps = tu_alloc(PER);
    size_t rows;

    /* the posterior mean, with the mirrored images; 4 per shard: shard 2 holds only the empty PNG */
    hook_log h = {0};
    sadm_encode_report r;
    sadm_encode_config c = {.image_size = SIZE, .flip = 1, .posterior_mean = 1, .dtype = SADM_DTYPE_F32, .shard_size = 4};
    TU_OK(encode(out_path("mean"), c, &r, &h));
    ck_assert_msg(r.images == FILES && r.encoded == GOOD && r.corrupt == 2 && r.shards == 3 && r.shards_kept == 0,
                  "report: %zu images, %zu encoded, %zu corrupt, %zu shards, %zu kept", r.images, r.encoded, r.corrupt,
                  r.shards, r.shards_kept);
    ck_assert_msg(h.skipped == 2 && strstr(h.names, "n01440764_2.JPEG") && strstr(h.names, "c.png"), "skipped: %s", h.names);
    ck_assert_msg(h.last_done == FILES && h.progress_calls >= 3, "progress reached %zu in %d calls", h.last_done, h.progress_calls);
    float *x = gather(out_path("mean"), "x", &rows);
    ck_assert_uint_eq(rows, GOOD);
    for (size_t i = 0; i < GOOD * PER; i++) want[i] = sf * rm[i];
    tu_assert_near_max("posterior mean", x, want, GOOD * PER, 1e-4);
    float *xf = gather(out_path("mean"), "x_flip", &rows);
    for (size_t i = 0; i < GOOD * PER; i++) want[i] = sf * rmf[i];
    tu_assert_near_max("posterior mean of the mirrored images", xf, want, GOOD * PER, 1e-4);
    int64_t *y = gather(out_path("mean"), "y", &rows);
    ck_assert_uint_eq(rows, GOOD);
    for (size_t i = 0; i < GOOD; i++) ck_assert_msg(y[i] == ry[i], "row %zu: label %lld, ImageFolder's %lld", i, (long long)y[i], (long long)ry[i]);
    json_t *m = manifest(out_path("mean"));
    ck_assert_msg(json_is_true(json_object_get(m, "complete")) && json_array_size(json_object_get(m, "corrupt")) == 2 &&
                      json_integer_value(json_object_get(m, "encoded")) == GOOD &&
                      !strcmp(json_string_value(json_array_get(json_object_get(m, "classes"), 1)), "n01443537"),
                  "manifest.json lacks the counts, the corrupt files or the class names");
    json_decref(m);

    /* the data set of the shards: rows as stored, x_flip for a flipped sample */
    sadm_dataset *d;
    TU_OK(sadm_dataset_latents(out_path("mean"), &d));
    ck_assert_uint_eq(sadm_dataset_size(d), GOOD);
    ck_assert_int_eq(sadm_dataset_channels(d), 4);
    ck_assert_int_eq(sadm_dataset_image_size(d), LAT);
    ck_assert_int_eq(sadm_dataset_num_classes(d), 3);
    ck_assert_str_eq(sadm_dataset_class_name(d, 2), "n01484850");
    float *s = tu_alloc(PER);
    for (size_t i = 0; i < GOOD; i++) {
        int64_t label;
        TU_OK(sadm_dataset_get(d, i, 0, s, &label));
        tu_assert_same("data set sample", s, x + i * PER, PER);
        ck_assert_int_eq(label, ry[i]);
        TU_OK(sadm_dataset_get(d, i, 1, s, NULL));
        tu_assert_same("data set sample, flipped", s, xf + i * PER, PER);
    }
    sadm_dataset_free(d);

    /* one sample of the posterior: sf (mean + exp(logvar / 2) eps), eps of stream 2 i + flipped */
    c.posterior_mean = 0, c.seed = 11;
    TU_OK(encode(out_path("sample"), c, NULL, NULL));
    float *xs = gather(out_path("sample"), "x", &rows), *xsf = gather(out_path("sample"), "x_flip", &rows);
    for (int flip = 0; flip < 2; flip++) {
        for (size_t i = 0; i < GOOD; i++) {
            TU_OK(sadm_rng_normal(11, 2 * (uint64_t)ridx[i] + (uint64_t)flip, 0, PER, eps));
            const float *mu = (flip ? rmf : rm) + i * PER, *lv = (flip ? rlf : rl) + i * PER;
            for (size_t k = 0; k < PER; k++) want[i * PER + k] = sf * (mu[k] + expf(0.5f * lv[k]) * eps[k]);
        }
        tu_assert_near_max(flip ? "posterior sample, mirrored" : "posterior sample", flip ? xsf : xs, want, GOOD * PER, 1e-4);
    }

    /* BF16: the F32 values rounded to nearest even */
    c.dtype = SADM_DTYPE_BF16;
    TU_OK(encode(out_path("bf16"), c, NULL, NULL));
    float *xb = gather(out_path("bf16"), "x", &rows);
    for (size_t i = 0; i < GOOD * PER; i++) {
        uint32_t u;
        memcpy(&u, &xs[i], 4);
        u = (u + 0x7fffu + ((u >> 16) & 1u)) & 0xffff0000u;
        float rounded;
        memcpy(&rounded, &u, 4);
        ck_assert_msg(xb[i] == rounded, "BF16 value %zu: %.9g, F32 %.9g rounds to %.9g", i, xb[i], xs[i], rounded);
    }
    /* without stored mirrors, a flipped sample is the latent mirrored */
    c.flip = 0;
    TU_OK(encode(out_path("noflip"), c, NULL, NULL));
    TU_OK(sadm_dataset_latents(out_path("noflip"), &d));
    float *plain = tu_alloc(PER);
    for (size_t i = 0; i < GOOD; i++) {
        TU_OK(sadm_dataset_get(d, i, 0, plain, NULL));
        tu_assert_same("BF16 shards without x_flip", plain, xb + i * PER, PER);
        TU_OK(sadm_dataset_get(d, i, 1, s, NULL));
        for (size_t row = 0; row < 4 * LAT; row++)
            for (size_t col = 0; col < LAT; col++)
                ck_assert_msg(s[row * LAT + col] == plain[row * LAT + LAT - 1 - col], "sample %zu is not mirrored", i);
    }
    sadm_dataset_free(d);
    free(rm), free(rl), free(rmf), free(rlf), free(ry), free(ridx), free(want), free(eps), free(x), free(xf), free(y);
    free(s), free(xs), free(xsf), free(xb), free(plain);
}
END_TEST

static unsigned char *slurp(const char *path, size_t *n) {
    FILE *f = fopen(path, "rb");
    ck_assert_msg(f, "cannot open %s", path);
    fseek(f, 0, SEEK_END);
    long len = ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *b = malloc(len > 0 ? (size_t)len : 1);
    ck_assert(fread(b, 1, (size_t)len, f) == (size_t)len);
    fclose(f);
    *n = (size_t)len;
    return b;
}

static int count_files(const char *dir) {
    DIR *d = opendir(dir);
    int n = 0;
    for (struct dirent *e; d && (e = readdir(d));) n += e->d_name[0] != '.';
    if (d) closedir(d);
    return n;
}

START_TEST(test_encode_resume) {
    setup(0);
    sadm_encode_config c = {.image_size = SIZE, .flip = 1, .dtype = SADM_DTYPE_BF16, .seed = 3, .shard_size = 2};
    sadm_encode_report r;
    TU_OK(encode(out_path("full"), c, &r, NULL));
    ck_assert_uint_eq(r.shards, 5);

    /* sadm encode killed (SIGKILL) once two shards are written; a new process, since
     * libgomp does not survive a fork of a process that used it */
    char args[3000], log[8192];
    snprintf(args, sizeof args, "encode --data '%s' --vae '%s' --out '%s' --image-size %d --flip --dtype bf16 --seed 3 --shard-size 2",
             root, vae_dir, out_path("killed"), SIZE);
    setenv("SADM_ENCODE_KILL_AFTER", "2", 1);
    int rc = ref_sadm(args, log, sizeof log);
    unsetenv("SADM_ENCODE_KILL_AFTER");
    ck_assert_msg(rc == 128 + SIGKILL || rc == -1, "sadm encode was not killed (exit %d): %s", rc, log);
    char p[500];
    snprintf(p, sizeof p, "%s/shard-000002.safetensors", out_path("killed"));
    ck_assert_msg(access(p, F_OK) != 0, "a third shard exists after the kill");
    sadm_dataset *d;
    ck_assert_int_ne(sadm_dataset_latents(out_path("killed"), &d), SADM_OK);
    ck_assert_msg(strstr(sadm_last_error(), "not finished"), "%s", sadm_last_error());
    /* shard 1 damaged as a bad copy would leave it (cut short), and a temporary of a dead process */
    snprintf(p, sizeof p, "%s/shard-000001.safetensors", out_path("killed"));
    ck_assert(truncate(p, 100) == 0);
    snprintf(p, sizeof p, "%s/shard-000002.safetensors.tmp.999999999", out_path("killed"));
    FILE *f = fopen(p, "w");
    ck_assert(f && fputs("half a shard", f) >= 0 && fclose(f) == 0);

    TU_OK(encode(out_path("killed"), c, &r, NULL));
    ck_assert_msg(r.shards == 5 && r.shards_kept == 1 && r.encoded == GOOD, "resumed: %zu shards, %zu kept, %zu encoded", r.shards,
                  r.shards_kept, r.encoded);
    for (int k = 0; k < 5; k++) {
        char a[500], b[500];
        snprintf(a, sizeof a, "%s/shard-%06d.safetensors", out_path("full"), k);
        snprintf(b, sizeof b, "%s/shard-%06d.safetensors", out_path("killed"), k);
        tu_assert_same_files(a, b);
    }
    char ma[500], mb[500];
    snprintf(ma, sizeof ma, "%s/manifest.json", out_path("full"));
    snprintf(mb, sizeof mb, "%s/manifest.json", out_path("killed"));
    tu_assert_same_files(ma, mb);
    ck_assert_int_eq(count_files(out_path("killed")), 6); /* five shards and the manifest: the temporary is gone */

    /* everything kept by a third run; another seed or crop is refused, naming the setting */
    TU_OK(encode(out_path("killed"), c, &r, NULL));
    ck_assert_uint_eq(r.shards_kept, 5);
    sadm_encode_config other = c;
    other.seed = 4;
    ck_assert_int_ne(encode(out_path("killed"), other, NULL, NULL), SADM_OK);
    ck_assert_msg(strstr(sadm_last_error(), "manifest.json") && strstr(sadm_last_error(), "seed 3"), "%s", sadm_last_error());
    other = c, other.image_size = 64;
    ck_assert_int_ne(encode(out_path("killed"), other, NULL, NULL), SADM_OK);
    ck_assert_msg(strstr(sadm_last_error(), "image_size 32"), "%s", sadm_last_error());

    /* a shard of another encoding in a finished folder is refused when training opens it */
    char a[500], b[500];
    snprintf(a, sizeof a, "%s/shard-000000.safetensors", out_path("killed"));
    other = c, other.seed = 4;
    TU_OK(encode(out_path("seed4"), other, NULL, NULL));
    snprintf(b, sizeof b, "%s/shard-000000.safetensors", out_path("seed4"));
    ck_assert(rename(b, a) == 0);
    ck_assert_int_ne(sadm_dataset_latents(out_path("killed"), &d), SADM_OK);
    ck_assert_msg(strstr(sadm_last_error(), "shard-000000") && strstr(sadm_last_error(), "other settings"), "%s",
                  sadm_last_error());
}
END_TEST

START_TEST(test_encode_bad_input) {
    setup(0);
    sadm_encode_config c = {.image_size = SIZE, .dtype = SADM_DTYPE_F32, .shard_size = 4, .strict = 1};
    ck_assert_int_ne(encode(out_path("strict"), c, NULL, NULL), SADM_OK);
    ck_assert_msg(strstr(sadm_last_error(), "n01440764_2.JPEG") && strstr(sadm_last_error(), "truncated"), "%s",
                  sadm_last_error());
    c.strict = 0, c.image_size = 30;
    ck_assert_int_ne(encode(out_path("odd"), c, NULL, NULL), SADM_OK);
    ck_assert_msg(strstr(sadm_last_error(), "multiple of the VAE's factor 4"), "%s", sadm_last_error());
    c.image_size = SIZE, c.dtype = SADM_DTYPE_F16;
    ck_assert_int_ne(encode(out_path("f16"), c, NULL, NULL), SADM_OK);
    ck_assert_msg(strstr(sadm_last_error(), "F32 or BF16"), "%s", sadm_last_error());
    /* a folder of class folders without images */
    char empty[500];
    snprintf(empty, sizeof empty, "%s/empty/n0", ref_tmpdir());
    ck_assert(mkdir(out_path("empty"), 0777) == 0 && mkdir(empty, 0777) == 0);
    c.dtype = SADM_DTYPE_F32;
    sadm_vae *v;
    TU_OK(sadm_vae_load(vae_dir, &v));
    ck_assert_int_ne(sadm_encode_image_folder(v, out_path("empty"), out_path("o"), &c, NULL, NULL), SADM_OK);
    ck_assert_msg(strstr(sadm_last_error(), "no .jpg, .jpeg or .png files"), "%s", sadm_last_error());
    sadm_vae_free(v);
    /* not an encoded folder; a manifest of something else */
    sadm_dataset *d;
    ck_assert_int_ne(sadm_dataset_latents(root, &d), SADM_OK);
    ck_assert_msg(strstr(sadm_last_error(), "manifest.json") && strstr(sadm_last_error(), "sadm encode"), "%s", sadm_last_error());
    char mp[500];
    snprintf(mp, sizeof mp, "%s/manifest.json", out_path("empty"));
    FILE *f = fopen(mp, "w");
    ck_assert(f && fputs("{\"format\": \"webdataset\"}", f) >= 0 && fclose(f) == 0);
    ck_assert_int_ne(sadm_dataset_latents(out_path("empty"), &d), SADM_OK);
    ck_assert_msg(strstr(sadm_last_error(), "not a manifest of sadm encode"), "%s", sadm_last_error());
    /* the fuzzer's manifest claiming 4e10 images: labels are sized by the listed shards'
     * rows, so the missing shard is the error, not an allocation of 343 GB */
    size_t n;
    unsigned char *bytes = slurp(ref_reproducer("latents", "manifest-images-42949672964.json"), &n);
    f = fopen(mp, "wb");
    ck_assert(f && fwrite(bytes, 1, n, f) == n && fclose(f) == 0);
    free(bytes);
    sadm_status st = sadm_dataset_latents(out_path("empty"), &d);
    ck_assert_msg(st != SADM_OK && st != SADM_ERR_NOMEM && strstr(sadm_last_error(), "shard-000000.safetensors"), "%s",
                  sadm_last_error());
}
END_TEST

/* The command line: sadm encode, then sadm train on the shards stopped at step 2 and resumed
 * to 4 ends with the checkpoint of an uninterrupted run of 4. */
START_TEST(test_train_on_shards) {
    setup(0);
    char args[3000], log[8192];
    snprintf(args, sizeof args, "encode --data '%s' --vae '%s' --out '%s' --image-size %d --flip --dtype bf16 --shard-size 3",
             root, vae_dir, out_path("lat"), SIZE);
    ck_assert_msg(ref_sadm(args, log, sizeof log) == 0, "sadm encode failed: %s", log);
    ck_assert_msg(strstr(log, "7 of 9 images encoded into 3 shards") && strstr(log, "2 left out") &&
                      strstr(log, "skipping") && strstr(log, "images/s"),
                  "%s", log);
    const char *small = "--depth 1 --hidden-size 16 --num-heads 2 --patch-size 2 --batch-size 3 --ckpt-every 2 "
                        "--log-every 1 --fd-samples 0 --threads 2";
    /* with --vae, the end-of-run grid decoded: 3 classes, one sample each, 32x32 images */
    snprintf(args, sizeof args, "train --data '%s' %s --steps 4 --run-dir '%s' --vae '%s' --grid-per-class 1",
             out_path("lat"), small, out_path("a"), vae_dir);
    ck_assert_msg(ref_sadm(args, log, sizeof log) == 0, "sadm train on shards failed: %s", log);
    ck_assert_msg(strstr(log, "on 4x8x8"), "the model does not take 4x8x8 latents: %s", log);
    char png[500];
    snprintf(png, sizeof png, "%s/samples.png", out_path("a"));
    FILE *pf = fopen(png, "rb");
    unsigned char hdr[24] = {0};
    ck_assert_msg(pf && fread(hdr, 1, 24, pf) == 24, "no %s: %s", png, log);
    fclose(pf);
    unsigned pw = (unsigned)hdr[16] << 24 | hdr[17] << 16 | hdr[18] << 8 | hdr[19];
    unsigned ph = (unsigned)hdr[20] << 24 | hdr[21] << 16 | hdr[22] << 8 | hdr[23];
    ck_assert_msg(pw == 3 * 34 + 2 && ph == 34 + 2, "samples.png is %ux%u", pw, ph);
    /* without it, no grid and a line saying why */
    snprintf(args, sizeof args, "train --data '%s' %s --steps 2 --run-dir '%s'", out_path("lat"), small, out_path("b"));
    ck_assert_msg(ref_sadm(args, log, sizeof log) == 0, "sadm train failed: %s", log);
    ck_assert_msg(strstr(log, "4-channel latents (pass --vae"), "%s", log);
    snprintf(args, sizeof args, "train --data '%s' %s --steps 4 --run-dir '%s' --resume --threads 1", out_path("lat"), small,
             out_path("b"));
    ck_assert_msg(ref_sadm(args, log, sizeof log) == 0, "sadm train --resume failed: %s", log);
    char a[500], b[500];
    snprintf(a, sizeof a, "%s/checkpoint.safetensors", out_path("a"));
    snprintf(b, sizeof b, "%s/checkpoint.safetensors", out_path("b"));
    tu_assert_same_tensors(a, b); /* the resumed run ends where the uninterrupted one does */
    /* the recipe's fine-tuning: SADM from a torch.save'd state dict (no metadata: the
     * config comes from the shapes; width 384 = DiT-S's, 6 heads) on the shards */
    static const sadm_dit_config pc = {LAT, 2, 4, 384, 1, 6, 4.0f, 0.1f, 3, 1};
    sadm_dit *m;
    TU_OK(sadm_dit_create(&pc, 5, &m));
    TU_OK(sadm_dit_save(m, out_path("small.safetensors")));
    sadm_dit_free(m);
    snprintf(args, sizeof args, "state '%s' '%s' '%s' float32", out_path("small.safetensors"), out_path("small.pt"),
             out_path("small-ref.safetensors"));
    ref_run("pt_ref.py", args);
    snprintf(args, sizeof args,
             "train --data '%s' --init '%s' --sadm --batch-size 3 --steps 2 --log-every 1 --fd-samples 0 --threads 2 "
             "--run-dir '%s'", out_path("lat"), out_path("small.pt"), out_path("ft"));
    ck_assert_msg(ref_sadm(args, log, sizeof log) == 0, "SADM fine-tuning from a .pt on shards failed: %s", log);
    ck_assert_msg(strstr(log, "starting from the weights of") && strstr(log, "done at step 2"), "%s", log);
    /* bad options are refused before anything is read */
    snprintf(args, sizeof args, "encode --data '%s' --vae '%s' --out '%s' --posterior mode", root, vae_dir, out_path("x"));
    ck_assert_int_eq(ref_sadm(args, log, sizeof log), 2);
    ck_assert_msg(strstr(log, "--posterior mode"), "%s", log);
}
END_TEST

int main(void) {
    Suite *s = suite_create("encode");
    TCase *tc = tcase_create("encode");
    tcase_set_timeout(tc, 900);
    tcase_add_test(tc, test_encode_vs_diffusers);
    tcase_add_test(tc, test_encode_resume);
    tcase_add_test(tc, test_encode_bad_input);
    tcase_add_test(tc, test_train_on_shards);
    suite_add_tcase(s, tc);
    return tu_run(s);
}
