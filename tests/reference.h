/* Running the PyTorch reference scripts of tests/reference/ from a C test. */
#ifndef SADM_TEST_REFERENCE_H
#define SADM_TEST_REFERENCE_H

#include <stddef.h>

/* A fresh temporary folder for one test's files; removed by ref_cleanup(). */
const char *ref_tmpdir(void);
void ref_cleanup(void);
/* tmpdir/name in one of four rotating buffers (valid until the fourth call after). */
const char *ref_path(const char *name);
/* A committed hostile-input reproducer: tests/fuzz/regress/<harness>/<name> in the source
 * tree (made by tests/fuzz/make_reproducers.py). */
const char *ref_reproducer(const char *harness, const char *name);
/* Runs "$SADM_PYTHON $SADM_REFDIR/<script> <args>" and fails the test, with the
 * script's output, when it does not exit 0 — or when no PyTorch is configured. */
void ref_run(const char *script, const char *args);
/* The same with $SADM_DIFFUSERS_PYTHON (the venv with diffusers, for the VAE). */
void ref_run_diffusers(const char *script, const char *args);
/* Runs $SADM_BIN (under $SADM_EXEC_WRAPPER, if set) with args; its stdout and stderr go to
 * output (len bytes at most). Returns the exit status. */
int ref_sadm(const char *args, char *output, size_t len);

#endif
