/* What the model benchmarks share: the two standard cases, a clock and the median. */
#ifndef SADM_BENCH_COMMON_H
#define SADM_BENCH_COMMON_H

#include "sadm.h"

typedef struct bench_case {
    const char *name;
    sadm_dit_config cfg;
    int batch;
} bench_case;

/* fmnist: the default model of `sadm train` on 1×32×32, batch 64; dit-s2: DiT-S/2 on
 * 4×32×32 latents (ImageNet 256²'s shape), batch 16. */
#define BENCH_NCASES 2
extern const bench_case bench_cases[BENCH_NCASES];

/* One line on stdout: CPU model and cores, kernel set, bf16 path, BLAS and its core, and
 * OPENBLAS_CORETYPE when set (the machines differ from session to session). */
void bench_print_machine(void);
/* The precision sides of a benchmark: --precision fp32 (default) times fp32 only; bf16
 * times libsadm fp32 and bf16 and PyTorch fp32 and bf16 autocast. */
int bench_bf16_sides(const char *precision_arg, int *bf16);

/* GFLOP/s of 512-bit fp32 FMAs (bf16 = 0) or VDPBF16PS (bf16 = 1) on all threads at once
 * (bench/bench_peak.c); 0 where the CPU lacks the instruction */
double bench_peak_gflops(int bf16);
/* The same for AMX's TDPBF16PS (bf16 tiles, fp32 sums); 0 without AMX-BF16 or when Linux
 * refuses the tile state. libsadm has no AMX kernels yet: this is the ceiling they could reach. */
double bench_peak_amx_gflops(void);

/* The table of --precision bf16 (bench train and sample): header, one row per case
 * (ours/ref/have: index 0 fp32, 1 bf16; seconds; ref missing where have is 0), and the
 * closing line naming the PyTorch that ran. */
void bench_bf16_header(void);
void bench_bf16_row(const char *name, int batch, const double ours[2], const double ref[2], const int have[2]);
void bench_bf16_footer(void);

double bench_now(void);               /* seconds, monotonic */
double bench_median(double *v, int n); /* sorts v */

#endif
