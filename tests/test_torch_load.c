/* PyTorch .pt files (torch.save's zip format) read by the restricted unpickler, against
 * files PyTorch itself wrote (tests/reference/pt_ref.py): state dicts in fp32/fp16/bf16
 * give bitwise the tensors PyTorch holds, a DiT loads from one with its config taken from
 * the shapes, DiT train.py checkpoints give their EMA (or another entry), views into shared
 * storages read right; hostile and broken files are refused and nothing they carry runs. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "reference.h"
#include "testutil.h"

/* DiT-S/2's width and heads (the shapes must let the loader infer them), two blocks only */
static const sadm_dit_config SMALL_S2 = {8, 2, 4, 384, 2, 6, 4.0f, 0.1f, 10, 1};

/* Every tensor of ref (float32) equals the .pt's, read as float32, bit for bit; the .pt's
 * dtype is `dtype` (or, with prefix, only the tensors named prefix + name are compared). */
static void assert_same_tensors(const char *pt, const char *ref, sadm_dtype dtype, const char *prefix) {
    sadm_st_file *a, *b;
    TU_OK(sadm_st_open(pt, &a));
    TU_OK(sadm_st_open(ref, &b));
    size_t compared = 0;
    for (size_t i = 0; i < sadm_st_count(b); i++) {
        const sadm_tensor_info *r = sadm_st_tensor(b, i);
        const char *name = r->name;
        if (prefix) {
            if (strncmp(name, prefix, strlen(prefix))) continue;
            name += strlen(prefix);
        } else if (!strncmp(name, "model.", 6)) {
            continue;
        }
        const sadm_tensor_info *t = sadm_st_find(a, name);
        ck_assert_msg(t, "%s: no tensor '%s'", pt, name);
        ck_assert_msg(t->dtype == dtype, "%s: '%s' is %s, expected %s", pt, name, sadm_dtype_name(t->dtype),
                      sadm_dtype_name(dtype));
        ck_assert_int_eq(t->ndim, r->ndim);
        for (int d = 0; d < r->ndim; d++) ck_assert_int_eq(t->shape[d], r->shape[d]);
        float *x = tu_alloc(r->numel), *y = tu_alloc(r->numel);
        TU_OK(sadm_st_read_f32(a, name, t->ndim, t->shape, x));
        TU_OK(sadm_st_read_f32(b, r->name, r->ndim, r->shape, y));
        tu_assert_same(name, x, y, r->numel);
        free(x), free(y);
        compared++;
    }
    ck_assert_msg(compared > 10 || (compared >= 4 && !prefix), "only %zu tensors compared", compared);
    if (!prefix) ck_assert_uint_eq(sadm_st_count(a), compared);
    sadm_st_close(a);
    sadm_st_close(b);
}

static void make_model(const char *path, uint64_t seed) {
    sadm_dit *m;
    TU_OK(sadm_dit_create(&SMALL_S2, seed, &m));
    tu_randomise_dit(m, seed, 1.0f);
    TU_OK(sadm_dit_save(m, path));
    sadm_dit_free(m);
}

START_TEST(test_state_dicts_vs_torch) {
    char model[300];
    snprintf(model, sizeof model, "%s", ref_path("model.safetensors"));
    make_model(model, 3);
    static const char *const dtypes[] = {"float32", "float16", "bfloat16"};
    static const sadm_dtype ours[] = {SADM_DTYPE_F32, SADM_DTYPE_F16, SADM_DTYPE_BF16};
    for (int k = 0; k < 3; k++) {
        char args[1200], pt[300], ref[300];
        snprintf(pt, sizeof pt, "%s", ref_path("sd.pt"));
        snprintf(ref, sizeof ref, "%s", ref_path("sd-ref.safetensors"));
        snprintf(args, sizeof args, "state '%s' '%s' '%s' %s", model, pt, ref, dtypes[k]);
        ref_run("pt_ref.py", args);
        assert_same_tensors(pt, ref, ours[k], NULL);
        /* a DiT straight from the .pt: its config from the shapes, its weights bitwise */
        sadm_dit *a, *b;
        TU_OK(sadm_dit_load(pt, NULL, &a));
        TU_OK(sadm_dit_load(ref, NULL, &b));
        const sadm_dit_config *ca = sadm_dit_get_config(a);
        ck_assert(ca->input_size == 8 && ca->patch_size == 2 && ca->in_channels == 4 && ca->hidden_size == 384 &&
                  ca->depth == 2 && ca->num_heads == 6 && ca->mlp_ratio == 4.0f && ca->num_classes == 10 &&
                  ca->learn_sigma == 1 && ca->class_dropout_prob == 0.1f);
        tu_assert_same("DiT weights from the .pt", sadm_dit_param_data(a), sadm_dit_param_data(b), sadm_dit_param_total(a));
        sadm_dit_free(a);
        sadm_dit_free(b);
    }
    ref_cleanup();
}
END_TEST

START_TEST(test_dit_train_checkpoint) {
    char model[300];
    snprintf(model, sizeof model, "%s", ref_path("model.safetensors"));
    make_model(model, 4);
    char args[1200], pt[300], ref[300];
    snprintf(pt, sizeof pt, "%s", ref_path("ckpt.pt"));
    snprintf(ref, sizeof ref, "%s", ref_path("ckpt-ref.safetensors"));
    snprintf(args, sizeof args, "train '%s' '%s' '%s'", model, pt, ref);
    ref_run("pt_ref.py", args);
    /* the EMA by default (the Namespace in "args" and AdamW's state in "opt" are passed over) */
    assert_same_tensors(pt, ref, SADM_DTYPE_F32, NULL);
    sadm_set_pt_entry("model");
    assert_same_tensors(pt, ref, SADM_DTYPE_F32, "model.");
    sadm_set_pt_entry("args");
    sadm_st_file *f;
    ck_assert_int_eq(sadm_st_open(pt, &f), SADM_ERR_FORMAT);
    ck_assert_msg(strstr(sadm_last_error(), "no state dict 'args'") && strstr(sadm_last_error(), "'ema' (dict)") &&
                      strstr(sadm_last_error(), "'args' (Namespace)"),
                  "%s", sadm_last_error());
    sadm_set_pt_entry(NULL);
    ck_assert_ptr_null(sadm_pt_entry());
    ref_cleanup();
}
END_TEST

START_TEST(test_views_and_layouts) {
    char args[1000];
    snprintf(args, sizeof args, "views '%s' '%s'", ref_path("v.pt"), ref_path("v-ref.safetensors"));
    ref_run("pt_ref.py", args);
    assert_same_tensors(ref_path("v.pt"), ref_path("v-ref.safetensors"), SADM_DTYPE_F32, NULL);
    sadm_st_file *f;
    snprintf(args, sizeof args, "noncontig '%s'", ref_path("n.pt"));
    ref_run("pt_ref.py", args);
    ck_assert_int_eq(sadm_st_open(ref_path("n.pt"), &f), SADM_ERR_FORMAT);
    ck_assert_msg(strstr(sadm_last_error(), "tensor 'w' is not contiguous") && strstr(sadm_last_error(), "n.pt"), "%s",
                  sadm_last_error());
    snprintf(args, sizeof args, "recursive '%s'", ref_path("r.pt"));
    ref_run("pt_ref.py", args);
    ck_assert_int_eq(sadm_st_open(ref_path("r.pt"), &f), SADM_ERR_FORMAT);
    ck_assert_msg(strstr(sadm_last_error(), "neither a dict of tensors") && strstr(sadm_last_error(), "'x' (list)"), "%s",
                  sadm_last_error());
    snprintf(args, sizeof args, "shortstorage '%s'", ref_path("s.pt"));
    ref_run("pt_ref.py", args);
    ck_assert_int_eq(sadm_st_open(ref_path("s.pt"), &f), SADM_ERR_FORMAT);
    ck_assert_msg(strstr(sadm_last_error(), "should hold 64 elements of F32 but has 128 bytes"), "%s", sadm_last_error());
    /* every truncation of a good file is refused (or, cut inside nothing it needs, read) */
    snprintf(args, sizeof args, "views '%s' '%s'", ref_path("t.pt"), ref_path("t-ref.safetensors"));
    ref_run("pt_ref.py", args);
    FILE *in = fopen(ref_path("t.pt"), "rb");
    ck_assert_ptr_nonnull(in);
    fseek(in, 0, SEEK_END);
    long size = ftell(in);
    unsigned char *bytes = malloc((size_t)size);
    rewind(in);
    ck_assert_int_eq(fread(bytes, 1, (size_t)size, in), size);
    fclose(in);
    for (long cut = 1; cut < size; cut += size / 37 + 1) {
        FILE *o = fopen(ref_path("cut.pt"), "wb");
        fwrite(bytes, 1, (size_t)cut, o);
        fclose(o);
        sadm_status st = sadm_st_open(ref_path("cut.pt"), &f);
        ck_assert_msg(st != SADM_OK, "a .pt cut to %ld of %ld bytes was read", cut, size);
        ck_assert(strstr(sadm_last_error(), "cut.pt"));
    }
    free(bytes);
    ref_cleanup();
}
END_TEST

static int exists(const char *path) {
    struct stat sb;
    return stat(path, &sb) == 0;
}

START_TEST(test_hostile_pickles) {
    static const char *const kinds[] = {"reduce", "global", "in_tensor"};
    for (int k = 0; k < 3; k++) {
        char args[1200], pt[300], marker[300], cmd[1500];
        snprintf(pt, sizeof pt, "%s", ref_path("evil.pt"));
        snprintf(marker, sizeof marker, "%s", ref_path("pwned"));
        snprintf(args, sizeof args, "hostile '%s' '%s' %s", pt, marker, kinds[k]);
        ref_run("pt_ref.py", args);
        ck_assert_msg(!exists(marker), "making the file ran the payload");
        if (k == 0) {
            /* the payload is real: PyTorch's own torch.load runs it */
            snprintf(cmd, sizeof cmd, "/usr/bin/python3 -c \"import torch; torch.load('%s')\" >/dev/null 2>&1", pt);
            ck_assert_int_ne(system(cmd), -1);
            ck_assert_msg(exists(marker), "torch.load did not run the test's payload: the test would prove nothing");
            unlink(marker);
        }
        sadm_st_file *f;
        ck_assert_int_eq(sadm_st_open(pt, &f), SADM_ERR_FORMAT);
        ck_assert_msg(strstr(sadm_last_error(), "is not allowed") && strstr(sadm_last_error(), "evil.pt"), "%s: %s",
                      kinds[k], sadm_last_error());
        ck_assert_msg(strstr(sadm_last_error(), k == 1 ? "builtin__.exec'" : "posix.system'"), "%s: %s", kinds[k],
                      sadm_last_error());
        ck_assert_msg(!exists(marker), "%s: reading the file ran its payload", kinds[k]);
        sadm_dit *m;
        ck_assert_int_eq(sadm_dit_load(pt, NULL, &m), SADM_ERR_FORMAT);
        ck_assert_msg(!exists(marker), "%s: loading a model from the file ran its payload", kinds[k]);
    }
    ref_cleanup();
}
END_TEST

int main(void) {
    Suite *s = suite_create("torch_load");
    TCase *tc = tcase_create("torch_load");
    tcase_set_timeout(tc, 600);
    tcase_add_test(tc, test_state_dicts_vs_torch);
    tcase_add_test(tc, test_dit_train_checkpoint);
    tcase_add_test(tc, test_views_and_layouts);
    tcase_add_test(tc, test_hostile_pickles);
    suite_add_tcase(s, tc);
    return tu_run(s);
}
