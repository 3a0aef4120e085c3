/* The .npz reader: zip directory (zip64 included), local headers, stored and deflated
 * members, .npy headers, row reads and CRC checks. */
#include "fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    sadm_npz *z;
    if (sadm_npz_open(fuzz_input_file(data, size, ".npz"), &z)) return 0;
    for (size_t i = 0; i < sadm_npz_count(z); i++) {
        const char *name = sadm_npz_name(z, i);
        sadm_dtype dt;
        int nd;
        int64_t shape[SADM_MAX_DIMS];
        if (sadm_npz_info(z, name, &dt, &nd, shape)) continue;
        size_t bytes = sadm_dtype_size(dt);
        int small = 1;
        for (int d = 0; d < nd && small; d++) {
            small = shape[d] <= (int64_t)FUZZ_MAX_READ && bytes * (size_t)shape[d] <= FUZZ_MAX_READ;
            bytes *= (size_t)shape[d];
        }
        if (!small) continue;
        unsigned char *buf = malloc(bytes ? bytes : 1);
        if (!buf) continue;
        sadm_npz_read(z, name, buf);
        if (nd > 0 && shape[0] > 1) sadm_npz_read_rows(z, name, 1, 1, buf); /* backwards after a whole read */
        free(buf);
    }
    sadm_npz_close(z);
    return 0;
}
