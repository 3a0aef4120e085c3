/* PyTorch .pt files through sadm_st_open: the zip directory, data.pkl under the
 * restricted unpickler (every opcode, memo, marks, globals), storages and tensor views,
 * and the in-memory safetensors image they become. */
#include "fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    fuzz_read_tensor_file(fuzz_input_file(data, size, ".pt"));
    return 0;
}
