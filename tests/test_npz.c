/* .npz files against NumPy (tests/reference/npz_ref.py): np.savez (stored, zip64 local
 * headers) and np.savez_compressed (deflated) read back exactly, whole and in row blocks;
 * libsadm's files read back by np.load; truncated, corrupt, Fortran-order and big-endian
 * files give messages naming the file and the array. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "reference.h"
#include "testutil.h"

static const char *const NAMES[] = {"arr_0", "mu", "sigma", "labels", "feats"};

static void check_file(const char *path, const sadm_st_file *ex) {
    sadm_npz *z;
    TU_OK(sadm_npz_open(path, &z));
    ck_assert_uint_eq(sadm_npz_count(z), 5);
    for (int k = 0; k < 5; k++) {
        const sadm_tensor_info *t = sadm_st_find(ex, NAMES[k]);
        sadm_dtype dt;
        int nd;
        int64_t shape[SADM_MAX_DIMS];
        TU_OK(sadm_npz_info(z, NAMES[k], &dt, &nd, shape));
        ck_assert_msg(dt == t->dtype && nd == t->ndim && !memcmp(shape, t->shape, (size_t)nd * 8), "%s: %s dtype/shape", path,
                      NAMES[k]);
        unsigned char *buf = malloc(t->nbytes);
        TU_OK(sadm_npz_read(z, NAMES[k], buf));
        ck_assert_msg(!memcmp(buf, t->data, t->nbytes), "%s: %s values differ", path, NAMES[k]);
        /* in blocks of 7 rows, forward; then once backwards */
        size_t row = t->nbytes / (size_t)t->shape[0];
        memset(buf, 0, t->nbytes);
        for (int64_t r = 0; r < t->shape[0]; r += 7) {
            int64_t n = t->shape[0] - r < 7 ? t->shape[0] - r : 7;
            TU_OK(sadm_npz_read_rows(z, NAMES[k], r, n, buf + (size_t)r * row));
        }
        ck_assert_msg(!memcmp(buf, t->data, t->nbytes), "%s: %s row blocks differ", path, NAMES[k]);
        TU_OK(sadm_npz_read_rows(z, NAMES[k], 1, 1, buf));
        ck_assert(!memcmp(buf, (const unsigned char *)t->data + row, row));
        ck_assert_int_eq(sadm_npz_read_rows(z, NAMES[k], t->shape[0], 1, buf), SADM_ERR_ARG);
        free(buf);
    }
    ck_assert_int_eq(sadm_npz_info(z, "sigma_s", NULL, NULL, NULL), SADM_ERR_FORMAT);
    ck_assert_ptr_nonnull(strstr(sadm_last_error(), "no array 'sigma_s'"));
    sadm_npz_close(z);
}

typedef struct {
    const unsigned char *data;
    size_t row_bytes;
    int64_t fail_at, calls;
} row_source;

/* rows of an array in memory, one block per call; a failure at row fail_at */
static sadm_status give_rows(void *ctx, int64_t row0, int64_t nrows, void *dst) {
    row_source *r = ctx;
    r->calls++;
    if (r->fail_at >= row0 && r->fail_at < row0 + nrows) { /* a library error with its own message */
        sadm_st_file *f;
        return sadm_st_open("/nonexistent/sample-50.safetensors", &f);
    }
    memcpy(dst, r->data + (size_t)row0 * r->row_bytes, (size_t)nrows * r->row_bytes);
    return SADM_OK;
}

START_TEST(test_read_numpy_files) {
    char args[600];
    snprintf(args, sizeof args, "make '%s'", ref_tmpdir());
    ref_run("npz_ref.py", args);
    sadm_st_file *ex;
    TU_OK(sadm_st_open(ref_path("expected.safetensors"), &ex));
    check_file(ref_path("stored.npz"), ex);
    check_file(ref_path("deflated.npz"), ex);
    /* ours, read by NumPy */
    sadm_npz_array a[5];
    for (int k = 0; k < 5; k++) {
        const sadm_tensor_info *t = sadm_st_find(ex, NAMES[k]);
        a[k].name = NAMES[k], a[k].dtype = t->dtype, a[k].ndim = t->ndim, a[k].data = t->data;
        memcpy(a[k].shape, t->shape, sizeof a[k].shape);
    }
    TU_OK(sadm_npz_write(ref_path("ours.npz"), 5, a));
    snprintf(args, sizeof args, "check '%s' '%s'", ref_path("ours.npz"), ref_path("expected.safetensors"));
    ref_run("npz_ref.py", args);
    check_file(ref_path("ours.npz"), ex);
    /* the zip64 form (sizes and offsets from 4 GiB on: 50k samples at 256x256 are 9.8 GB),
     * here from 4096 bytes on so that arr_0 and everything after it take it: NumPy reads it,
     * so do we, and the file holds the zip64 records */
    setenv("SADM_NPZ_ZIP64_FROM", "4096", 1);
    sadm_status wst = sadm_npz_write(ref_path("zip64.npz"), 5, a);
    unsetenv("SADM_NPZ_ZIP64_FROM");
    ck_assert_msg(wst == SADM_OK, "%s", sadm_last_error());
    FILE *zf = fopen(ref_path("zip64.npz"), "rb");
    ck_assert_ptr_nonnull(zf);
    static unsigned char zb[1 << 20];
    size_t zn = fread(zb, 1, sizeof zb, zf);
    fclose(zf);
    int eocd64 = 0, locator = 0;
    for (size_t i = 0; i + 4 <= zn; i++) {
        uint32_t v = (uint32_t)zb[i] | (uint32_t)zb[i + 1] << 8 | (uint32_t)zb[i + 2] << 16 | (uint32_t)zb[i + 3] << 24;
        eocd64 += v == 0x06064b50, locator += v == 0x07064b50;
    }
    ck_assert_msg(eocd64 == 1 && locator == 1, "zip64.npz: %d zip64 end records, %d locators", eocd64, locator);
    snprintf(args, sizeof args, "check '%s' '%s'", ref_path("zip64.npz"), ref_path("expected.safetensors"));
    ref_run("npz_ref.py", args);
    check_file(ref_path("zip64.npz"), ex);
    /* arr_0 streamed 7 rows at a time (100 rows): the bytes of the in-memory writer, in the
     * plain and the zip64 form; a failing producer leaves no file and its message */
    for (int z64 = 0; z64 < 2; z64++) {
        if (z64) setenv("SADM_NPZ_ZIP64_FROM", "4096", 1);
        row_source src = {a[0].data, (size_t)32 * 32 * 3, -1, 0};
        TU_OK(sadm_npz_write(ref_path("whole.npz"), 1, a));
        TU_OK(sadm_npz_write_rows(ref_path("rows.npz"), &a[0], 7, give_rows, &src));
        unsetenv("SADM_NPZ_ZIP64_FROM");
        ck_assert_int_eq(src.calls, 15);
        tu_assert_same_files(ref_path("whole.npz"), ref_path("rows.npz"));
    }
    row_source bad = {a[0].data, (size_t)32 * 32 * 3, 50, 0};
    ck_assert_int_ne(sadm_npz_write_rows(ref_path("failed.npz"), &a[0], 7, give_rows, &bad), SADM_OK);
    ck_assert_msg(strstr(sadm_last_error(), "/nonexistent/sample-50.safetensors"), "%s", sadm_last_error());
    ck_assert_msg(access(ref_path("failed.npz"), F_OK) != 0, "a failed write left failed.npz");
    sadm_st_close(ex);
    ref_cleanup();
}
END_TEST

static void truncate_copy(const char *from, const char *to, long keep, long flip_at) {
    FILE *f = fopen(from, "rb");
    ck_assert_ptr_nonnull(f);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    rewind(f);
    char *b = malloc((size_t)n);
    ck_assert_int_eq(fread(b, 1, (size_t)n, f), n);
    fclose(f);
    if (flip_at >= 0) b[flip_at] ^= 0x55;
    f = fopen(to, "wb");
    fwrite(b, 1, (size_t)(keep < n ? keep : n), f);
    fclose(f);
    free(b);
}

START_TEST(test_bad_files) {
    char args[600];
    snprintf(args, sizeof args, "make '%s'", ref_tmpdir());
    ref_run("npz_ref.py", args);
    sadm_npz *z;
    /* cut in the middle: the directory at the end is gone */
    truncate_copy(ref_path("stored.npz"), ref_path("cut.npz"), 50000, -1);
    ck_assert_int_eq(sadm_npz_open(ref_path("cut.npz"), &z), SADM_ERR_FORMAT);
    ck_assert_msg(strstr(sadm_last_error(), "cut.npz") && strstr(sadm_last_error(), "truncated"), "%s", sadm_last_error());
    /* not a zip at all */
    truncate_copy(ref_path("expected.safetensors"), ref_path("junk.npz"), 1000, -1);
    ck_assert_int_eq(sadm_npz_open(ref_path("junk.npz"), &z), SADM_ERR_FORMAT);
    /* a flipped byte in deflated data: zlib or the CRC notices */
    truncate_copy(ref_path("deflated.npz"), ref_path("flip.npz"), 1L << 30, 2000);
    TU_OK(sadm_npz_open(ref_path("flip.npz"), &z));
    unsigned char *buf = malloc(100 * 32 * 32 * 3);
    ck_assert_int_eq(sadm_npz_read(z, "arr_0", buf), SADM_ERR_FORMAT);
    ck_assert_msg(strstr(sadm_last_error(), "arr_0"), "%s", sadm_last_error());
    sadm_npz_close(z);
    free(buf);
    TU_OK(sadm_npz_open(ref_path("fortran.npz"), &z));
    ck_assert_int_eq(sadm_npz_info(z, "x", NULL, NULL, NULL), SADM_ERR_FORMAT);
    ck_assert_ptr_nonnull(strstr(sadm_last_error(), "Fortran order"));
    sadm_npz_close(z);
    TU_OK(sadm_npz_open(ref_path("bigendian.npz"), &z));
    ck_assert_int_eq(sadm_npz_info(z, "x", NULL, NULL, NULL), SADM_ERR_FORMAT);
    ck_assert_ptr_nonnull(strstr(sadm_last_error(), "dtype '>f8'"));
    sadm_npz_close(z);
    ck_assert_int_eq(sadm_npz_open(ref_path("missing.npz"), &z), SADM_ERR_IO);
    ref_cleanup();
}
END_TEST

/* Reproducers of issue 18: each is refused with a message saying what is wrong, and reads
 * nothing outside what was read (ASan checks that in CI). */
static void expect_bad(const char *name, const char *member, const char *words) {
    const char *path = ref_reproducer("npz", name);
    sadm_npz *z = NULL;
    sadm_status st = sadm_npz_open(path, &z);
    if (!st && member) {
        st = sadm_npz_info(z, member, NULL, NULL, NULL);
        sadm_npz_close(z);
    } else if (!st) {
        sadm_npz_close(z);
    }
    ck_assert_msg(st == SADM_ERR_FORMAT, "%s: status %d (%s)", name, st, sadm_last_error());
    ck_assert_msg(strstr(sadm_last_error(), name) && strstr(sadm_last_error(), words), "%s: message '%s' lacks '%s'", name,
                  sadm_last_error(), words);
}

START_TEST(test_hostile_files) {
    expect_bad("zip64-extra-overrun.npz", NULL, "extra field 0x0001 declares 16 bytes, only 8 remain");
    expect_bad("shape-overflow.npz", "arr_0", "overflows 64 bits");
    expect_bad("member-count-lie.npz", NULL, "more than the file can hold");
    expect_bad("offset-wrap.npz", NULL, "lies outside the file");
}
END_TEST

int main(void) {
    Suite *s = suite_create("npz");
    TCase *tc = tcase_create("npz");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_read_numpy_files);
    tcase_add_test(tc, test_bad_files);
    tcase_add_test(tc, test_hostile_files);
    suite_add_tcase(s, tc);
    return tu_run(s);
}
