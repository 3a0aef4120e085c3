/* The safetensors reader: header JSON, entries, offsets, metadata, float conversion. */
#include "fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    fuzz_read_tensor_file(fuzz_input_file(data, size, ".safetensors"));
    return 0;
}
