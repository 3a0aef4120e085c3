/* The safetensors reader: header JSON, entries, offsets, metadata, float conversion. */
#include "fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    sadm_st_file *f;
    if (sadm_st_open(fuzz_input_file(data, size, ".safetensors"), &f)) return 0;
    for (size_t i = 0; i < sadm_st_count(f); i++) {
        const sadm_tensor_info *t = sadm_st_tensor(f, i);
        if (t->numel > FUZZ_MAX_READ) continue;
        float *x = malloc((t->numel ? t->numel : 1) * sizeof(float));
        if (x) sadm_st_read_f32(f, t->name, t->ndim, t->shape, x);
        free(x);
    }
    (void)sadm_st_metadata(f, "hidden_size");
    sadm_st_close(f);
    return 0;
}
