/* The multiply-add limits of this CPU, measured: 12 independent VFMADD231PS or VDPBF16PS
 * chains on 512-bit registers per thread (enough to hide their latency), written as inline
 * assembly so that no compiler can merge or spill the chains (a C version of this probe
 * was CSE'd into one chain and reported twice the truth). Every thread runs its own
 * copy at once; the sum is the machine's limit for that instruction. */
#include <time.h>

#include "bench_common.h"

#if defined(__x86_64__)
#define R12(op) op("0") op("1") op("2") op("3") op("4") op("5") op("6") op("7") op("8") op("9") op("10") op("11")
#define DP(i) "vdpbf16ps %%zmm14, %%zmm15, %%zmm" i "\n\t"
#define FM(i) "vfmadd231ps %%zmm14, %%zmm15, %%zmm" i "\n\t"
#define ZERO_INPUTS "vpxord %%zmm14, %%zmm14, %%zmm14\n\tvpxord %%zmm15, %%zmm15, %%zmm15\n\t"
#define CLOBBERS "xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5", "xmm6", "xmm7", "xmm8", "xmm9", "xmm10", "xmm11", \
                 "xmm14", "xmm15", "cc"

__attribute__((target("avx512f,avx512bf16"))) static void chains_bf16(long n) {
    __asm__ volatile(ZERO_INPUTS "1:\n\t" R12(DP) "dec %0\n\tjnz 1b\n\t" : "+r"(n)::CLOBBERS);
}
__attribute__((target("avx512f"))) static void chains_fp32(long n) {
    __asm__ volatile(ZERO_INPUTS "1:\n\t" R12(FM) "dec %0\n\tjnz 1b\n\t" : "+r"(n)::CLOBBERS);
}
#endif

double bench_peak_gflops(int bf16) {
#if defined(__x86_64__)
    __builtin_cpu_init();
    if (!__builtin_cpu_supports("avx512f") || (bf16 && !__builtin_cpu_supports("avx512bf16"))) return 0;
    const long n = 20000000; /* 240 M instructions a thread: ~0.1 s */
    double total = 0;
#pragma omp parallel reduction(+ : total)
    {
        double best = 1e30;
        for (int r = 0; r < 3; r++) {
            double t0 = bench_now();
            if (bf16) chains_bf16(n);
            else chains_fp32(n);
            double t = bench_now() - t0;
            if (t < best) best = t;
        }
        total += (double)n * 12 * (bf16 ? 64 : 32) / best * 1e-9;
    }
    return total;
#else
    (void)bf16;
    return 0;
#endif
}
