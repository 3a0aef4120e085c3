/* PyTorch .pt files through sadm_st_open: the zip directory, data.pkl under the
 * restricted unpickler (every opcode, memo, marks, globals), storages and tensor views,
 * and the in-memory safetensors image they become. */
#include "fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    sadm_st_file *f;
    if (sadm_st_open(fuzz_input_file(data, size, ".pt"), &f)) return 0;
    for (size_t i = 0; i < sadm_st_count(f); i++) {
        const sadm_tensor_info *t = sadm_st_tensor(f, i);
        if (t->numel > FUZZ_MAX_READ) continue;
        float *x = malloc((t->numel ? t->numel : 1) * sizeof(float));
        if (x) sadm_st_read_f32(f, t->name, t->ndim, t->shape, x);
        free(x);
    }
    sadm_st_close(f);
    return 0;
}
