/* A folder of latent shards (sadm encode): the manifest's JSON (format, shapes, dtype,
 * classes, the shard list) against two fixed shards, then reading samples with and
 * without flips. The shards are written once per process: shard 0 holds 3 rows of
 * (4, 2, 2) F32 with x_flip, shard 1 is empty (every image of it left out). */
#include <sys/stat.h>

#include "fuzz_common.h"

#define HASH "00000000000000aa" /* the settings hash the corpus manifests name */

static const char *shard_dir(void) {
    static char dir[256];
    if (dir[0]) return dir;
    const char *base = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
    snprintf(dir, sizeof dir, "%s/sadm-fuzz-latents-%ld", base, (long)getpid());
    if (mkdir(dir, 0700) && access(dir, W_OK)) abort();
    static float x[3 * 16], xf[3 * 16];
    static int64_t y[3] = {0, 1, 0};
    for (int i = 0; i < 3 * 16; i++) x[i] = (float)i / 7.0f, xf[i] = -x[i];
    const int64_t xs[4] = {3, 4, 2, 2}, ys[1] = {3};
    char path[512];
    snprintf(path, sizeof path, "%s/shard-000000.safetensors", dir);
    sadm_st_writer *w = sadm_st_writer_new();
    if (!w || sadm_st_writer_add(w, "x", SADM_DTYPE_F32, 4, xs, x) || sadm_st_writer_add(w, "x_flip", SADM_DTYPE_F32, 4, xs, xf) ||
        sadm_st_writer_add(w, "y", SADM_DTYPE_I64, 1, ys, y) || sadm_st_writer_metadata(w, "sadm.settings", HASH) ||
        sadm_st_writer_save(w, path))
        abort();
    sadm_st_writer_free(w);
    return dir;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const char *dir = shard_dir();
    char path[512];
    snprintf(path, sizeof path, "%s/manifest.json", dir);
    FILE *f = fopen(path, "wb");
    if (!f || (size && fwrite(data, 1, size, f) != size) || fclose(f)) abort();
    sadm_dataset *d;
    if (sadm_dataset_latents(dir, &d)) return 0;
    size_t n = (size_t)sadm_dataset_channels(d) * sadm_dataset_image_size(d) * sadm_dataset_image_size(d);
    float *x = malloc(n * sizeof(float));
    int64_t y;
    for (size_t i = 0; x && i < sadm_dataset_size(d) && i < 8; i++) sadm_dataset_get(d, i, (int)(i & 1), x, &y);
    (void)sadm_dataset_class_name(d, 0);
    free(x);
    sadm_dataset_free(d);
    return 0;
}
