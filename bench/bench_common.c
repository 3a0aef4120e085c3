/* What the model benchmarks share (bench_common.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bench_common.h"
#include "cli.h"

const bench_case bench_cases[BENCH_NCASES] = {
    {"fmnist", {32, 4, 1, 256, 6, 4, 4.0f, 0.1f, 10, 1}, 64},
    {"dit-s2", {32, 2, 4, 384, 12, 6, 4.0f, 0.1f, 1000, 1}, 16},
};

double bench_now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

double bench_median(double *v, int n) {
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

void bench_print_machine(void) {
    char model[256] = "unknown", line[512];
    FILE *f = fopen("/proc/cpuinfo", "r");
    while (f && fgets(line, sizeof line, f))
        if (!strncmp(line, "model name", 10) && strchr(line, ':')) {
            snprintf(model, sizeof model, "%s", strchr(line, ':') + 2);
            model[strcspn(model, "\n")] = 0;
            break;
        }
    if (f) fclose(f);
    const char *core = getenv("OPENBLAS_CORETYPE");
    printf("machine: %s, %d threads; kernels %s; bf16 products: %s; BLAS: %s%s%s\n", model, sadm_num_threads(), sadm_isa(),
           sadm_bf16_path(), sadm_blas_info(), core ? "; OPENBLAS_CORETYPE=" : "", core ? core : "");
}

int bench_bf16_sides(const char *v, int *bf16) {
    *bf16 = 0;
    if (!v || !strcmp(v, "fp32")) return 0;
    if (!strcmp(v, "bf16")) return *bf16 = 1, 0;
    fprintf(stderr, "option --precision: '%s' is not fp32 or bf16\n", v);
    return 2;
}

void bench_bf16_header(void) {
    printf("%-8s %5s %10s %10s %10s %10s %10s %10s %14s %14s\n", "case", "batch", "ours fp32", "ours bf16", "torch fp32",
           "torch bf16", "bf16 img/s", "bf16/fp32", "vs torch bf16", "vs torch fp32");
}

void bench_bf16_row(const char *name, int batch, const double ours[2], const double ref[2], const int have[2]) {
    printf("%-8s %5d %9.3fs %9.3fs ", name, batch, ours[0], ours[1]);
    for (int p = 0; p < 2; p++)
        if (have[p]) printf("%9.3fs ", ref[p]);
        else printf("%10s ", "n/a");
    printf("%10.2f %9.2fx ", batch / ours[1], ours[0] / ours[1]);
    for (int p = 1; p >= 0; p--) /* against autocast first */
        if (have[p]) printf("%13.2fx ", ref[p] / ours[1]);
        else printf("%14s ", "n/a");
    printf("\n");
}

void bench_bf16_footer(void) {
    printf("(ratios: how many times faster libsadm bf16 is; PyTorch %s)\n", bench_python_torch_version());
}
