/* Helpers shared by the Check tests: random tensors, comparisons with stated tolerances,
 * the loop over kernel sets, and central finite differences. */
#ifndef SADM_TESTUTIL_H
#define SADM_TESTUTIL_H

#include <check.h>
#include <stddef.h>
#include <stdint.h>

#include "sadm.h"

/* Sizes that are not multiples of any vector width, and some that are. */
extern const size_t tu_awkward_sizes[];
extern const size_t tu_n_awkward_sizes;

float *tu_alloc(size_t n);                                   /* zeroed; freed with free() */
float *tu_uniform(size_t n, uint64_t seed, float lo, float hi);
float *tu_copy(const float *x, size_t n);

/* Fails the test unless |got - ref| <= atol + rtol |ref| for every element (NaN must
 * match NaN). `what` names the comparison in the failure message. */
void tu_assert_close(const char *what, const float *got, const float *ref, size_t n, double rtol, double atol);
void tu_assert_close_d(const char *what, const float *got, const double *ref, size_t n, double rtol, double atol);
/* |got - ref| <= tol max|ref| everywhere (and max|ref| > 0): a model against its reference. */
void tu_assert_near_max(const char *what, const float *got, const float *ref, size_t n, double tol);
/* Files a and b hold the same bytes (the message names the first difference). */
void tu_assert_same_files(const char *a, const char *b);
/* Every tensor of safetensors file a is in b, bitwise the same, and b has no others. */
void tu_assert_same_tensors(const char *a, const char *b);
/* Bitwise equality. */
void tu_assert_same(const char *what, const float *a, const float *b, size_t n);

/* 1 when the tests run under an emulator (SADM_EXEC_WRAPPER set, as tests/neon-cross.sh
 * does): the few tests whose full size costs tens of minutes there use a stated subset. */
int tu_emulated(void);
/* Kernel sets available on this machine, NULL-terminated. */
const char *const *tu_isas(void);
void tu_use_isa(const char *isa);

/* Finite differences: `forward(ctx, out)` recomputes all `nout` outputs from the inputs
 * it reads through ctx; the scalar loss is L = sum_j w_j out_j, accumulated in double.
 * tu_check_grad perturbs x[i] by ±h (for every i when n <= 64, else 64 spread indices)
 * and compares (L+ - L-)/2h with analytic[i]:
 *   |fd - an| <= tol (|fd| + |an| + max|an|/10) + 1e-6 sum_j |w_j out_j| / h,
 * the last term being the rounding noise of float outputs. */
typedef void (*tu_forward_fn)(void *ctx, float *out);
void tu_check_grad(const char *what, tu_forward_fn forward, void *ctx, float *x, size_t n, const float *analytic,
                   const float *w, size_t nout, float h, double tol);

/* Every trainable DiT parameter random — DiT's own init zeroes adaLN and the final layer,
 * which would make outputs trivially zero: N(0, scale^2/fan_in) for matrices, scale 0.1
 * for vectors, scale for embedding tables; pos_embed keeps its sin-cos values. */
void tu_randomise_dit(sadm_dit *m, uint64_t seed, float scale);

/* ||ours - ref|| <= rtol ||ref|| (+1e-12) for tensor `key` of a reference file, read with
 * p's shape; `what` and key name it in the failure message. */
void tu_assert_tensor_close(const sadm_st_file *f, const char *key, const float *ours, const sadm_param *p, double rtol,
                            const char *what);

/* A trainer of a small DiT (32×32×1, depth 1, width 16, patch 8, 10 classes) on d: batch
 * 5, lr 1e-3, EMA 0.9, gradient clipping 1; seed for both the model and the run. */
sadm_trainer *tu_small_trainer(const sadm_dataset *d, uint64_t seed);
/* `steps` steps, each with a finite loss and a positive gradient norm; *last (may be
 * NULL) gets the last step's statistics. */
void tu_train_steps(sadm_trainer *tr, int steps, sadm_step_stats *last);

/* Copies safetensors file src to dst with the first occurrence of `from` in its JSON
 * header replaced by `to` (header length fixed up): a metadata value changed, as a
 * hostile or damaged file would have it. Fails the test when `from` is not there. */
void tu_patch_header(const char *src, const char *dst, const char *from, const char *to);

#define TU_OK(call) ck_assert_msg((call) == SADM_OK, "%s failed: %s", #call, sadm_last_error())

/* Runs each test case as its own suite and returns the failure count as exit status. */
int tu_run(Suite *s);

#endif
