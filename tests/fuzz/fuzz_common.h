/* Shared by the libFuzzer harnesses: libsadm's loaders take paths, so each input is
 * written to one file per process (in /dev/shm when it exists, to spare the disk) and the
 * loader is run on it. Errors are values in libsadm, so a harness only calls and frees:
 * the sanitizers and libFuzzer's memory limit (-rss_limit_mb / -malloc_limit_mb) find
 * what goes wrong. */
#ifndef SADM_FUZZ_COMMON_H
#define SADM_FUZZ_COMMON_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "sadm.h"

/* Writes the input to this process's file, named with `suffix` (loaders look at
 * extensions), and returns its path. */
static const char *fuzz_input_file(const uint8_t *data, size_t size, const char *suffix) {
    static char path[256];
    const char *dir = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
    snprintf(path, sizeof path, "%s/sadm-fuzz-%ld%s", dir, (long)getpid(), suffix);
    FILE *f = fopen(path, "wb");
    if (!f) abort();
    if (size && fwrite(data, 1, size, f) != size) abort();
    if (fclose(f)) abort();
    return path;
}

/* Reads at most this many elements of a tensor: the loaders must be safe for any size a
 * file declares, but the harness need not copy gigabytes of a valid one. */
#define FUZZ_MAX_READ ((size_t)1 << 22)

/* Opens a safetensors (or .pt) file and reads every tensor of a bounded size as float32. */
static inline void fuzz_read_tensor_file(const char *path) {
    sadm_st_file *f;
    if (sadm_st_open(path, &f)) return;
    for (size_t i = 0; i < sadm_st_count(f); i++) {
        const sadm_tensor_info *t = sadm_st_tensor(f, i);
        if (t->numel > FUZZ_MAX_READ) continue;
        float *x = malloc((t->numel ? t->numel : 1) * sizeof(float));
        if (x) sadm_st_read_f32(f, t->name, t->ndim, t->shape, x);
        free(x);
    }
    (void)sadm_st_metadata(f, "hidden_size");
    sadm_st_close(f);
}

#endif
