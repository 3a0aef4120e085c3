/* Image folders: files found and ordered as torchvision's ImageFolder does, decoded and
 * cropped exactly as DiT's train.py (Pillow + ADM's center_crop_arr, run by
 * tests/reference/images_pil.py) — JPEG and PNG, grey, RGBA and palette images, box
 * halving and bicubic resizing; broken files give errors naming them. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "reference.h"
#include "testutil.h"

START_TEST(test_image_folder_matches_pil) {
    const int S = 64;
    char root[300], out[300], args[800];
    snprintf(root, sizeof root, "%s/folder", ref_tmpdir());
    snprintf(out, sizeof out, "%s/expected.safetensors", ref_tmpdir());
    snprintf(args, sizeof args, "make '%s' %d '%s'", root, S, out);
    ref_run("images_pil.py", args);
    sadm_dataset *d;
    TU_OK(sadm_dataset_image_folder(root, S, &d));
    sadm_st_file *f;
    TU_OK(sadm_st_open(out, &f));
    const sadm_tensor_info *crop = sadm_st_find(f, "crop"), *label = sadm_st_find(f, "label");
    ck_assert_ptr_nonnull(crop);
    ck_assert_uint_eq(sadm_dataset_size(d), (size_t)crop->shape[0]);
    ck_assert_int_eq(sadm_dataset_num_classes(d), 2);
    ck_assert_int_eq(sadm_dataset_channels(d), 3);
    float *x = tu_alloc(3 * S * S), *xf = tu_alloc(3 * S * S);
    for (size_t i = 0; i < sadm_dataset_size(d); i++) {
        int64_t y, want_y;
        TU_OK(sadm_dataset_get(d, i, 0, x, &y));
        TU_OK(sadm_dataset_get(d, i, 1, xf, NULL));
        memcpy(&want_y, (const char *)label->data + 8 * i, 8);
        ck_assert_msg(y == want_y, "%s: label %lld, expected %lld", sadm_dataset_path(d, i), (long long)y, (long long)want_y);
        const uint8_t *want = (const uint8_t *)crop->data + i * S * S * 3;
        int worst = 0;
        for (int c = 0; c < 3; c++)
            for (int r = 0; r < S; r++)
                for (int col = 0; col < S; col++) {
                    float v = x[(c * S + r) * S + col], vf = xf[(c * S + r) * S + S - 1 - col];
                    int got = (int)((v + 1.0f) * 127.5f + 0.5f), exp = want[(r * S + col) * 3 + c];
                    int diff = abs(got - exp);
                    if (diff > worst) worst = diff;
                    ck_assert_float_eq(v, vf);
                }
        ck_assert_msg(worst == 0, "%s: differs from Pillow by up to %d levels", sadm_dataset_path(d, i), worst);
    }
    ck_assert_ptr_nonnull(strstr(sadm_dataset_path(d, 0), "a_dogs/d0.png"));
    sadm_st_close(f);
    sadm_dataset_free(d);
    free(x), free(xf);
    ref_cleanup();
}
END_TEST

START_TEST(test_image_folder_errors) {
    sadm_dataset *d;
    char root[300], cmd[1000];
    snprintf(root, sizeof root, "%s/bad", ref_tmpdir());
    ck_assert_int_eq(sadm_dataset_image_folder(root, 32, &d), SADM_ERR_IO);
    ck_assert_msg(strstr(sadm_last_error(), "not a folder"), "%s", sadm_last_error());
    snprintf(cmd, sizeof cmd, "mkdir -p '%s/cls' && echo hi > '%s/cls/readme.txt'", root, root);
    ck_assert_int_eq(system(cmd), 0);
    ck_assert_int_eq(sadm_dataset_image_folder(root, 32, &d), SADM_ERR_FORMAT);
    ck_assert_msg(strstr(sadm_last_error(), "no .jpg, .jpeg or .png files"), "%s", sadm_last_error());
    /* a truncated JPEG and a text file named .png: found, then a clear error when read */
    snprintf(cmd, sizeof cmd, "printf '\\377\\330\\377\\340' > '%s/cls/a.jpg' && echo text > '%s/cls/b.png'", root, root);
    ck_assert_int_eq(system(cmd), 0);
    TU_OK(sadm_dataset_image_folder(root, 32, &d));
    float x[3 * 32 * 32];
    ck_assert_int_eq(sadm_dataset_get(d, 0, 0, x, NULL), SADM_ERR_FORMAT);
    ck_assert_msg(strstr(sadm_last_error(), "a.jpg: cannot decode JPEG"), "%s", sadm_last_error());
    ck_assert_int_eq(sadm_dataset_get(d, 1, 0, x, NULL), SADM_ERR_FORMAT);
    ck_assert_msg(strstr(sadm_last_error(), "b.png: neither a JPEG nor a PNG"), "%s", sadm_last_error());
    sadm_dataset_free(d);
    ref_cleanup();
}
END_TEST

/* Decompression bombs (issue 18): a 632-byte JPEG that declares 275 M pixels and a 69-byte
 * PNG that declares 40 G are refused before decoding; the limit can be raised or lowered. */
START_TEST(test_pixel_limit) {
    char root[300], cmd[1500];
    snprintf(root, sizeof root, "%s/bombs", ref_tmpdir());
    snprintf(cmd, sizeof cmd, "mkdir -p '%s/c' && cp '%s' '%s' '%s/c/'", root, ref_reproducer("image", "jpeg-275M-pixels.jpg"),
             ref_reproducer("image", "png-40G-pixels.png"), root);
    ck_assert_int_eq(system(cmd), 0);
    sadm_dataset *d;
    TU_OK(sadm_dataset_image_folder(root, 32, &d));
    float x[3 * 32 * 32];
    ck_assert_uint_eq(sadm_max_image_pixels(), SADM_DEFAULT_MAX_IMAGE_PIXELS);
    ck_assert_int_eq(sadm_dataset_get(d, 0, 0, x, NULL), SADM_ERR_FORMAT);
    ck_assert_msg(strstr(sadm_last_error(), "jpeg-275M-pixels.jpg: JPEG declares 16384x16784 = 275.0 M pixels, above the limit of 100.0 M"),
                  "%s", sadm_last_error());
    ck_assert_int_eq(sadm_dataset_get(d, 1, 0, x, NULL), SADM_ERR_FORMAT);
    ck_assert_msg(strstr(sadm_last_error(), "png-40G-pixels.png: PNG declares 200000x200000"), "%s", sadm_last_error());
    sadm_dataset_free(d);
    /* a lower limit refuses an ordinary image; 0 restores the default */
    snprintf(cmd, sizeof cmd, "mkdir -p '%s/ok/c' && cp '%s' '%s/ok/c/'", root, ref_reproducer("image", "../../corpus/image/rgb.png"),
             root);
    ck_assert_int_eq(system(cmd), 0);
    snprintf(cmd, sizeof cmd, "%s/ok", root);
    TU_OK(sadm_dataset_image_folder(cmd, 8, &d));
    TU_OK(sadm_dataset_get(d, 0, 0, x, NULL));
    sadm_set_max_image_pixels(100); /* the image is 13x9 = 117 pixels */
    ck_assert_int_eq(sadm_dataset_get(d, 0, 0, x, NULL), SADM_ERR_FORMAT);
    ck_assert_msg(strstr(sadm_last_error(), "13x9"), "%s", sadm_last_error());
    sadm_set_max_image_pixels(0);
    TU_OK(sadm_dataset_get(d, 0, 0, x, NULL));
    sadm_dataset_free(d);
    ref_cleanup();
}
END_TEST

int main(void) {
    Suite *s = suite_create("images");
    TCase *tc = tcase_create("images");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_image_folder_matches_pil);
    tcase_add_test(tc, test_image_folder_errors);
    tcase_add_test(tc, test_pixel_limit);
    suite_add_tcase(s, tc);
    return tu_run(s);
}
