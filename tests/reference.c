#include "reference.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

static char tmp[256];

const char *ref_tmpdir(void) {
    if (!tmp[0]) {
        snprintf(tmp, sizeof tmp, "/tmp/sadm-ref-XXXXXX");
        ck_assert_ptr_nonnull(mkdtemp(tmp));
    }
    return tmp;
}

const char *ref_path(const char *name) {
    static char buf[4][400];
    static int at;
    char *b = buf[at++ % 4];
    snprintf(b, sizeof buf[0], "%s/%s", ref_tmpdir(), name);
    return b;
}

const char *ref_reproducer(const char *harness, const char *name) {
    static char buf[4][600];
    static int at;
    const char *dir = getenv("SADM_REFDIR");
    ck_assert_msg(dir && *dir, "SADM_REFDIR is not set (run the tests through make check)");
    char *b = buf[at++ % 4];
    snprintf(b, sizeof buf[0], "%s/../fuzz/regress/%s/%s", dir, harness, name);
    return b;
}

void ref_cleanup(void) {
    if (!tmp[0]) return;
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmp);
    ck_assert_int_eq(system(cmd), 0);
    tmp[0] = 0;
}

static void run_with(const char *py, const char *script, const char *args) {
    const char *dir = getenv("SADM_REFDIR");
    ck_assert_msg(dir && *dir, "SADM_REFDIR is not set (run the tests through make check)");
    char cmd[4096], log[300];
    snprintf(log, sizeof log, "%s/reference.log", ref_tmpdir());
    /* the reference runs without our sanitizer runtime */
    snprintf(cmd, sizeof cmd, "env -u LD_PRELOAD OMP_NUM_THREADS=1 '%s' '%s/%s' %s > '%s' 2>&1", py, dir, script, args, log);
    int rc = system(cmd);
    if (rc != 0) {
        char text[2048] = "";
        FILE *f = fopen(log, "r");
        if (f) {
            size_t n = fread(text, 1, sizeof text - 1, f);
            text[n] = 0;
            fclose(f);
        }
        ck_abort_msg("PyTorch reference %s failed (exit %d):\n%s", script, rc, text);
    }
}

void ref_run(const char *script, const char *args) {
    const char *py = getenv("SADM_PYTHON");
    ck_assert_msg(py && *py, "no Python with torch was found at configure time: the PyTorch reference cannot run "
                             "(apt-get install python3-torch, then rerun ./configure)");
    run_with(py, script, args);
}

void ref_run_diffusers(const char *script, const char *args) {
    const char *py = getenv("SADM_DIFFUSERS_PYTHON");
    ck_assert_msg(py && *py, "no Python with diffusers was found at configure time: the VAE reference cannot run "
                             "(./bootstrap makes it, or tools/setup_diffusers_venv.sh; then rerun ./configure)");
    run_with(py, script, args);
}

int ref_sadm(const char *args, char *output, size_t len) {
    const char *bin = getenv("SADM_BIN");
    ck_assert_msg(bin && *bin, "SADM_BIN is not set (run the tests through make check)");
    /* SADM_EXEC_WRAPPER runs a cross-compiled sadm, e.g. "qemu-aarch64 -L /usr/aarch64-linux-gnu" */
    const char *wrap = getenv("SADM_EXEC_WRAPPER");
    char cmd[4096], log[300];
    snprintf(log, sizeof log, "%s/cli.log", ref_tmpdir());
    snprintf(cmd, sizeof cmd, "%s '%s' %s > '%s' 2>&1", wrap ? wrap : "", bin, args, log);
    int rc = system(cmd);
    FILE *f = fopen(log, "r");
    size_t n = f ? fread(output, 1, len - 1, f) : 0;
    output[n] = 0;
    if (f) fclose(f);
    return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
}
