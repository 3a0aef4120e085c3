/* safetensors: a file written byte by byte from the format's definition reads back right;
 * round trips through the writer; float16/bfloat16 conversion; every kind of broken file
 * gives a clear error naming the file and the tensor; saving is atomic. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "reference.h"
#include "testutil.h"

static char dir[256];

static void make_dir(void) {
    snprintf(dir, sizeof dir, "/tmp/sadm-test-st-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(dir));
}

static void remove_dir(void) {
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    ck_assert_int_eq(system(cmd), 0);
}

/* Writes header length (little-endian), header, data — exactly the format, by hand. */
static void write_raw(const char *path, const char *header, const void *data, size_t data_len, long hlen_override) {
    FILE *f = fopen(path, "wb");
    ck_assert_ptr_nonnull(f);
    uint64_t n = hlen_override >= 0 ? (uint64_t)hlen_override : strlen(header);
    unsigned char le[8];
    for (int i = 0; i < 8; i++) le[i] = (unsigned char)(n >> (8 * i));
    fwrite(le, 1, 8, f);
    fwrite(header, 1, strlen(header), f);
    if (data_len) fwrite(data, 1, data_len, f);
    fclose(f);
}

START_TEST(test_read_handmade_file) {
    make_dir();
    char path[300];
    snprintf(path, sizeof path, "%s/hand.safetensors", dir);
    /* a (2,) F32, b (1,3) F16, c () BF16, d (2,) I64 — plus metadata and header padding */
    const char *header = "{\"__metadata__\":{\"input_size\":\"32\",\"note\":\"x\"},"
                         "\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
                         "\"b\":{\"dtype\":\"F16\",\"shape\":[1,3],\"data_offsets\":[8,14]},"
                         "\"c\":{\"dtype\":\"BF16\",\"shape\":[],\"data_offsets\":[14,16]},"
                         "\"d\":{\"dtype\":\"I64\",\"shape\":[2],\"data_offsets\":[16,32]}}   ";
    unsigned char data[32];
    float a[2] = {1.5f, -2.25f};
    uint16_t b[3] = {0x3C00, 0xC000, 0x0001}; /* 1, -2, smallest subnormal 2^-24 */
    uint16_t c = 0x3F80;                      /* bfloat16 1.0 */
    int64_t d[2] = {-7, 1LL << 40};
    memcpy(data, a, 8), memcpy(data + 8, b, 6), memcpy(data + 14, &c, 2), memcpy(data + 16, d, 16);
    write_raw(path, header, data, 32, -1);
    sadm_st_file *f;
    TU_OK(sadm_st_open(path, &f));
    ck_assert_uint_eq(sadm_st_count(f), 4);
    ck_assert_str_eq(sadm_st_tensor(f, 0)->name, "a");
    ck_assert_str_eq(sadm_st_metadata(f, "input_size"), "32");
    ck_assert_ptr_null(sadm_st_metadata(f, "absent"));
    float out[3];
    int64_t sa[1] = {2}, sb[2] = {1, 3};
    TU_OK(sadm_st_read_f32(f, "a", 1, sa, out));
    ck_assert(out[0] == 1.5f && out[1] == -2.25f);
    TU_OK(sadm_st_read_f32(f, "b", 2, sb, out));
    ck_assert(out[0] == 1.0f && out[1] == -2.0f && out[2] == ldexpf(1.0f, -24));
    TU_OK(sadm_st_read_f32(f, "c", 0, NULL, out));
    ck_assert(out[0] == 1.0f);
    const sadm_tensor_info *td = sadm_st_find(f, "d");
    ck_assert(td && td->dtype == SADM_DTYPE_I64 && td->numel == 2 && td->ndim == 1);
    int64_t dv[2];
    memcpy(dv, td->data, 16);
    ck_assert(dv[0] == -7 && dv[1] == 1LL << 40);
    /* wrong shape, wrong type, missing name */
    int64_t wrong[1] = {3};
    ck_assert_int_eq(sadm_st_read_f32(f, "a", 1, wrong, out), SADM_ERR_FORMAT);
    ck_assert_ptr_nonnull(strstr(sadm_last_error(), "tensor 'a' has shape (2), expected (3)"));
    ck_assert_int_eq(sadm_st_read_f32(f, "d", 0, NULL, out), SADM_ERR_FORMAT);
    ck_assert_ptr_nonnull(strstr(sadm_last_error(), "is I64"));
    ck_assert_int_eq(sadm_st_read_f32(f, "zz", 0, NULL, out), SADM_ERR_FORMAT);
    ck_assert_ptr_nonnull(strstr(sadm_last_error(), "no tensor named 'zz'"));
    sadm_st_close(f);
    remove_dir();
}
END_TEST

START_TEST(test_half_conversions) {
    /* every float16 bit pattern: compare with the value computed from its fields */
    make_dir();
    char path[300];
    snprintf(path, sizeof path, "%s/halves.safetensors", dir);
    uint16_t *h = malloc(65536 * 2);
    for (uint32_t i = 0; i < 65536; i++) h[i] = (uint16_t)i;
    sadm_st_writer *w = sadm_st_writer_new();
    int64_t shape[1] = {65536};
    TU_OK(sadm_st_writer_add(w, "h", SADM_DTYPE_F16, 1, shape, h));
    TU_OK(sadm_st_writer_add(w, "bf", SADM_DTYPE_BF16, 1, shape, h));
    TU_OK(sadm_st_writer_save(w, path));
    sadm_st_writer_free(w);
    sadm_st_file *f;
    TU_OK(sadm_st_open(path, &f));
    float *out = malloc(65536 * sizeof(float));
    TU_OK(sadm_st_read_f32(f, "h", 1, shape, out));
    for (uint32_t i = 0; i < 65536; i++) {
        int sign = i >> 15, e = (i >> 10) & 31, m = i & 1023;
        double v = e == 0 ? ldexp(m, -24) : e == 31 ? (m ? NAN : INFINITY) : ldexp(1024 + m, e - 25);
        if (sign) v = -v;
        if (isnan(v))
            ck_assert_msg(isnan(out[i]), "f16 %04x", i);
        else
            ck_assert_msg(out[i] == (float)v, "f16 %04x: %g vs %g", i, out[i], v);
    }
    TU_OK(sadm_st_read_f32(f, "bf", 1, shape, out));
    for (uint32_t i = 0; i < 65536; i += 97) {
        uint32_t bits = i << 16;
        float v;
        memcpy(&v, &bits, 4);
        ck_assert(memcmp(&v, out + i, 4) == 0);
    }
    sadm_st_close(f);
    free(h), free(out);
    remove_dir();
}
END_TEST

/* lib/io/io.h (internal): float32 to the narrow storage types */
int sadm_from_f32(sadm_dtype dtype, const float *src, size_t n, void *dst);
int sadm_to_f32(sadm_dtype dtype, const void *src, size_t n, float *dst);

static int same_or_both_nan(float a, float b) { return (isnan(a) && isnan(b)) || memcmp(&a, &b, 4) == 0; }

START_TEST(test_narrow_storage_vs_numpy_and_torch) {
    /* sadm_from_f32's F16 and BF16 against numpy's astype(float16) and torch's .bfloat16():
     * normals over 30 decades, exact ties, the overflow and subnormal boundaries, specials */
    make_dir();
    enum { N = 4096 };
    float *x = malloc(N * sizeof(float));
    TU_OK(sadm_rng_normal(3, 0, 0, N, x));
    for (int i = 0; i < 3000; i++) x[i] *= (float)pow(10, (i % 30) - 20);
    static const float special[] = {0.0f, -0.0f, 1.0f, 65504.0f, 65519.996f, 65520.0f, 65536.0f, 1e9f, 3.4e38f,
                                    5.960464477539063e-08f /* 2^-24 */, 2.9802322387695312e-08f /* 2^-25: tie to 0 */,
                                    4.470348358154297e-08f /* 1.5 x 2^-24 */, 6.103515625e-05f /* 2^-14 */,
                                    6.1e-05f, 1e-40f, -1e-45f, 1.00048828125f /* 1 + 2^-11: tie */,
                                    1.00146484375f /* 1 + 3 x 2^-11: tie up */, 1.00390625f /* bf16 tie */,
                                    1.01171875f /* bf16 tie up */, -2.5f, INFINITY, -INFINITY, NAN};
    size_t ns = sizeof special / sizeof special[0];
    for (size_t i = 0; i < ns; i++) x[3000 + i] = special[i];
    for (int i = 3000 + (int)ns; i < N; i++) x[i] = ldexpf(1.0f + (float)(i % 2048) / 2048.0f, (i % 40) - 26); /* halfway grid */
    char in[300], out[300], args[700];
    snprintf(in, sizeof in, "%s/narrow_in.safetensors", dir);
    snprintf(out, sizeof out, "%s/narrow_out.safetensors", dir);
    sadm_st_writer *w = sadm_st_writer_new();
    int64_t shape[1] = {N};
    TU_OK(sadm_st_writer_add(w, "x", SADM_DTYPE_F32, 1, shape, x));
    TU_OK(sadm_st_writer_save(w, in));
    sadm_st_writer_free(w);
    snprintf(args, sizeof args, "'%s' '%s'", in, out);
    ref_run("narrow_ref.py", args);
    sadm_st_file *f;
    TU_OK(sadm_st_open(out, &f));
    const sadm_tensor_info *th = sadm_st_find(f, "h"), *tb = sadm_st_find(f, "b");
    ck_assert(th && tb && th->numel == N && tb->numel == N);
    uint16_t *h = malloc(N * 2), *b = malloc(N * 2);
    ck_assert(sadm_from_f32(SADM_DTYPE_F16, x, N, h) && sadm_from_f32(SADM_DTYPE_BF16, x, N, b));
    for (int i = 0; i < N; i++) {
        uint16_t rh, rb;
        memcpy(&rh, (const char *)th->data + 2 * i, 2);
        memcpy(&rb, (const char *)tb->data + 2 * i, 2);
        int nan = isnan(x[i]);
        ck_assert_msg(nan ? (h[i] & 0x7c00) == 0x7c00 && (h[i] & 0x3ff) : h[i] == rh, "F16 of %.9g: %04x, numpy %04x", x[i],
                      h[i], rh);
        ck_assert_msg(nan ? (b[i] & 0x7f80) == 0x7f80 && (b[i] & 0x7f) : b[i] == rb, "BF16 of %.9g: %04x, torch %04x", x[i],
                      b[i], rb);
    }
    /* and every non-NaN half comes back to its own bits */
    uint16_t all[65536], again[65536];
    float wide[65536];
    for (uint32_t i = 0; i < 65536; i++) all[i] = (uint16_t)i;
    sadm_to_f32(SADM_DTYPE_F16, all, 65536, wide);
    sadm_from_f32(SADM_DTYPE_F16, wide, 65536, again);
    for (uint32_t i = 0; i < 65536; i++)
        if ((i & 0x7c00) != 0x7c00 || !(i & 0x3ff)) ck_assert_msg(again[i] == all[i], "half %04x came back as %04x", i, again[i]);
    /* a model written with F16 storage loads as the rounded weights */
    const sadm_dit_config cfg = {8, 4, 1, 16, 1, 2, 4.0f, 0.1f, 3, 1};
    sadm_dit *m, *m2;
    TU_OK(sadm_dit_create(&cfg, 2, &m));
    tu_randomise_dit(m, 4, 0.5f);
    char mp[300];
    snprintf(mp, sizeof mp, "%s/m16.safetensors", dir);
    TU_OK(sadm_dit_save_as(m, mp, SADM_DTYPE_F16));
    TU_OK(sadm_dit_load(mp, NULL, &m2));
    size_t P = sadm_dit_param_total(m);
    uint16_t *mh = malloc(P * 2);
    float *mw = malloc(P * sizeof(float));
    sadm_from_f32(SADM_DTYPE_F16, sadm_dit_param_data(m), P, mh);
    sadm_to_f32(SADM_DTYPE_F16, mh, P, mw);
    for (size_t i = 0; i < P; i++) ck_assert(same_or_both_nan(mw[i], sadm_dit_param_data(m2)[i]));
    ck_assert_int_eq(sadm_dit_save_as(m, mp, SADM_DTYPE_I64), SADM_ERR_ARG);
    sadm_dit_free(m), sadm_dit_free(m2);
    free(mh), free(mw);
    sadm_st_close(f);
    free(x), free(h), free(b);
    remove_dir();
}
END_TEST

START_TEST(test_round_trip_and_atomic_save) {
    make_dir();
    char path[300];
    snprintf(path, sizeof path, "%s/rt.safetensors", dir);
    float *x = tu_uniform(3 * 5 * 7, 1, -1, 1);
    double y[4] = {1, 2, 3, 1e300};
    uint8_t z[5] = {1, 2, 3, 4, 255};
    int64_t sx[3] = {3, 5, 7}, sy[2] = {2, 2}, sz[1] = {5}, s0[2] = {0, 4};
    for (int pass = 0; pass < 2; pass++) { /* the second save replaces the first */
        sadm_st_writer *w = sadm_st_writer_new();
        TU_OK(sadm_st_writer_add(w, "blocks.0.attn.qkv.weight", SADM_DTYPE_F32, 3, sx, x));
        TU_OK(sadm_st_writer_add(w, "y", SADM_DTYPE_F64, 2, sy, y));
        TU_OK(sadm_st_writer_add(w, "z", SADM_DTYPE_U8, 1, sz, z));
        TU_OK(sadm_st_writer_add(w, "empty", SADM_DTYPE_F32, 2, s0, NULL));
        TU_OK(sadm_st_writer_metadata(w, "depth", pass ? "12" : "6"));
        TU_OK(sadm_st_writer_metadata(w, "quote\"d", "a\\b\n"));
        ck_assert_int_eq(sadm_st_writer_add(w, "y", SADM_DTYPE_F32, 1, sz, x), SADM_ERR_ARG);
        ck_assert_ptr_nonnull(strstr(sadm_last_error(), "'y' added twice"));
        TU_OK(sadm_st_writer_save(w, path));
        sadm_st_writer_free(w);
    }
    FILE *raw = fopen(path, "rb");
    unsigned char le[8];
    ck_assert_uint_eq(fread(le, 1, 8, raw), 8);
    fclose(raw);
    ck_assert_uint_eq((le[0] + 8) % 8, 0); /* data starts 8-byte aligned */
    sadm_st_file *f;
    TU_OK(sadm_st_open(path, &f));
    ck_assert_str_eq(sadm_st_metadata(f, "depth"), "12");
    ck_assert_str_eq(sadm_st_metadata(f, "quote\"d"), "a\\b\n");
    float *back = tu_alloc(105), yb[4];
    TU_OK(sadm_st_read_f32(f, "blocks.0.attn.qkv.weight", 3, sx, back));
    tu_assert_same("round trip f32", back, x, 105);
    TU_OK(sadm_st_read_f32(f, "y", 2, sy, yb));
    ck_assert(yb[0] == 1 && yb[3] == INFINITY);
    const sadm_tensor_info *tz = sadm_st_find(f, "z"), *te = sadm_st_find(f, "empty");
    ck_assert(tz && memcmp(tz->data, z, 5) == 0 && te && te->numel == 0 && te->ndim == 2);
    sadm_st_close(f);
    /* nothing left behind but the file itself */
    char cmd[400];
    snprintf(cmd, sizeof cmd, "test $(ls -A '%s' | wc -l) -eq 1", dir);
    ck_assert_int_eq(system(cmd), 0);
    /* a folder that does not exist: an I/O error naming the path */
    sadm_st_writer *w = sadm_st_writer_new();
    TU_OK(sadm_st_writer_add(w, "z", SADM_DTYPE_U8, 1, sz, z));
    ck_assert_int_eq(sadm_st_writer_save(w, "/nonexistent-dir/x.safetensors"), SADM_ERR_IO);
    ck_assert_ptr_nonnull(strstr(sadm_last_error(), "/nonexistent-dir/x.safetensors"));
    sadm_st_writer_free(w);
    free(x), free(back);
    remove_dir();
}
END_TEST

static void expect_broken(const char *header, size_t data_len, long hlen, const char *needle) {
    char path[300];
    snprintf(path, sizeof path, "%s/broken.safetensors", dir);
    unsigned char data[64] = {0};
    write_raw(path, header, data, data_len, hlen);
    sadm_st_file *f = NULL;
    sadm_status st = sadm_st_open(path, &f);
    ck_assert_msg(st == SADM_ERR_FORMAT, "header %s: status %d, expected a format error", header, st);
    ck_assert_ptr_null(f);
    ck_assert_msg(strstr(sadm_last_error(), needle) && strstr(sadm_last_error(), path),
                  "header %s: message '%s' lacks '%s' or the path", header, sadm_last_error(), needle);
}

START_TEST(test_broken_files) {
    make_dir();
    const char *ok = "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}";
    expect_broken(ok, 4, -1, "tensor 'a': data ends at byte 8 but the file holds only 4");  /* truncated data */
    expect_broken(ok, 0, 1000, "header length 1000 does not fit");                          /* truncated header */
    expect_broken("{\"a\":", 0, -1, "not valid JSON");
    expect_broken("[1,2]", 0, -1, "not a JSON object");
    expect_broken("{\"a\":{\"dtype\":\"F33\",\"shape\":[2],\"data_offsets\":[0,8]}}", 8, -1, "unsupported dtype 'F33'");
    expect_broken("{\"a\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,8]}}", 8, -1, "need 12 bytes");
    expect_broken("{\"a\":{\"dtype\":\"F32\",\"shape\":[-1],\"data_offsets\":[0,8]}}", 8, -1, "not a size");
    expect_broken("{\"a\":{\"dtype\":\"F32\",\"shape\":[2]}}", 8, -1, "needs \"dtype\"");
    expect_broken("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8,0]}}", 8, -1, "begin <= end");
    expect_broken("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
                  "\"b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}",
                  8, -1, "overlaps");
    expect_broken("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}", 8, -1, "hole");
    expect_broken(ok, 12, -1, "4 bytes after the last tensor");
    expect_broken("{\"__metadata__\":{\"k\":1}}", 0, -1, "value of 'k' is not a string");
    /* too short to hold the length */
    char path[300];
    snprintf(path, sizeof path, "%s/short.safetensors", dir);
    FILE *f = fopen(path, "wb");
    fwrite("abc", 1, 3, f);
    fclose(f);
    sadm_st_file *sf;
    ck_assert_int_eq(sadm_st_open(path, &sf), SADM_ERR_FORMAT);
    ck_assert_ptr_nonnull(strstr(sadm_last_error(), "too short"));
    ck_assert_int_eq(sadm_st_open("/nonexistent/file.safetensors", &sf), SADM_ERR_IO);
    ck_assert_ptr_nonnull(strstr(sadm_last_error(), "/nonexistent/file.safetensors: cannot open"));
    remove_dir();
}
END_TEST

int main(void) {
    Suite *s = suite_create("safetensors");
    TCase *tc = tcase_create("safetensors");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_read_handmade_file);
    tcase_add_test(tc, test_half_conversions);
    tcase_add_test(tc, test_narrow_storage_vs_numpy_and_torch);
    tcase_add_test(tc, test_round_trip_and_atomic_save);
    tcase_add_test(tc, test_broken_files);
    suite_add_tcase(s, tc);
    return tu_run(s);
}
