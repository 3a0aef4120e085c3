/* The IDX reader of Fashion-MNIST (through zlib: gzip or plain), as images and as labels. */
#include "fuzz_common.h"
#include "data/dataset.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const char *path = fuzz_input_file(data, size, ".idx.gz");
    uint32_t dims[3];
    uint8_t *pixels = NULL;
    if (!sadm_idx_read(path, 0x00000803u, 3, dims, &pixels)) free(pixels);
    pixels = NULL;
    if (!sadm_idx_read(path, 0x00000801u, 1, dims, &pixels)) free(pixels);
    return 0;
}
