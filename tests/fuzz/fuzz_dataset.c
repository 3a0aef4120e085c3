/* A data set stored as tensors (x, y, num_classes): loading and reading samples. */
#include "fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    sadm_dataset *d;
    if (sadm_dataset_tensors(fuzz_input_file(data, size, ".safetensors"), &d)) return 0;
    size_t n = (size_t)sadm_dataset_channels(d) * sadm_dataset_image_size(d) * sadm_dataset_image_size(d);
    float *x = malloc(n * sizeof(float));
    int64_t y;
    for (size_t i = 0; x && i < sadm_dataset_size(d) && i < 4; i++) sadm_dataset_get(d, i, (int)(i & 1), x, &y);
    free(x);
    sadm_dataset_free(d);
    return 0;
}
