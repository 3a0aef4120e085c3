/* The whole load path of model files and checkpoints: metadata -> config -> parameter
 * table -> tensors, for a DiT (model file, and the EMA of a checkpoint), a training
 * checkpoint (settings, optimiser, SADM encoder), a structure encoder and the
 * Fashion-MNIST classifier. A checkpoint needs a data set to resume on: a tiny one of
 * 32x32x1 images and 10 classes, made once. */
#include "fuzz_common.h"

static sadm_dataset *tiny_dataset(void) {
    static sadm_dataset *d;
    if (d) return d;
    sadm_st_writer *w = sadm_st_writer_new();
    static float x[2 * 32 * 32];
    static int64_t y[2] = {0, 9};
    int64_t xs[4] = {2, 1, 32, 32}, ys[1] = {2};
    char path[256];
    snprintf(path, sizeof path, "/tmp/sadm-fuzz-data-%ld.safetensors", (long)getpid());
    if (!w || sadm_st_writer_add(w, "x", SADM_DTYPE_F32, 4, xs, x) || sadm_st_writer_add(w, "y", SADM_DTYPE_I64, 1, ys, y) ||
        sadm_st_writer_metadata(w, "num_classes", "10") || sadm_st_writer_save(w, path) || sadm_dataset_tensors(path, &d))
        abort();
    sadm_st_writer_free(w);
    unlink(path);
    return d;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const sadm_dataset *ds = tiny_dataset();
    const char *path = fuzz_input_file(data, size, ".safetensors");
    sadm_dit *m;
    if (!sadm_dit_load(path, NULL, &m)) sadm_dit_free(m);
    if (!sadm_dit_load_any(path, 1, &m)) sadm_dit_free(m);
    sadm_trainer *tr;
    if (!sadm_trainer_load(path, ds, &tr)) sadm_trainer_free(tr); /* frees its model too */
    sadm_encoder *e;
    if (!sadm_encoder_load(path, &e)) sadm_encoder_free(e);
    sadm_classifier *c;
    if (!sadm_classifier_load(path, &c)) sadm_classifier_free(c);
    return 0;
}
