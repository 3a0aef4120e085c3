/* What the model benchmarks share (bench_common.h). */
#include <stdlib.h>
#include <time.h>

#include "bench_common.h"

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
