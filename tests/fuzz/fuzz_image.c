/* JPEG and PNG decoding (libjpeg-turbo, libpng through libsadm's wrappers, with the pixel
 * limit), then ADM's centre crop of what was decoded. */
#include "fuzz_common.h"
#include "image/image.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    /* 4 M pixels: decoding stays fast enough to explore (the limit itself is what is
     * checked; its default of 100 M would spend seconds per large declared image) */
    sadm_set_max_image_pixels((uint64_t)1 << 22);
    uint8_t *rgb = NULL;
    int w = 0, h = 0;
    if (sadm_image_load_rgb(fuzz_input_file(data, size, ".img"), &rgb, &w, &h)) return 0;
    if ((size_t)w * (size_t)h <= (size_t)1 << 20) {
        uint8_t out[16 * 16 * 3];
        sadm_center_crop_adm(rgb, w, h, 16, out);
    }
    free(rgb);
    return 0;
}
