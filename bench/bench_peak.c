/* The multiply-add limits of this CPU, measured: 12 independent VFMADD231PS or VDPBF16PS
 * chains on 512-bit registers per thread (enough to hide their latency), written as inline
 * assembly so that no compiler can merge or spill the chains (a C version of this probe
 * was CSE'd into one chain and reported twice the truth). Every thread runs its own
 * copy at once; the sum is the machine's limit for that instruction. */
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

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

/* AMX (TDPBF16PS on 16x16 fp32 tiles, bf16 inputs): 4 independent accumulator tiles per
 * thread. Linux hands out the tile state only on request (arch_prctl ARCH_REQ_XCOMP_PERM
 * for XTILEDATA, once per process); each thread loads its own tile configuration. */
#if defined(__x86_64__) && defined(SYS_arch_prctl)
#define ARCH_REQ_XCOMP_PERM 0x1023
#define XFEATURE_XTILEDATA 18
typedef struct {
    unsigned char palette, start_row, reserved[14];
    unsigned short colsb[16];
    unsigned char rows[16];
} tile_config;

__attribute__((target("amx-tile,amx-bf16"))) static void chains_amx(long n) {
    tile_config c;
    memset(&c, 0, sizeof c);
    c.palette = 1;
    for (int t = 0; t < 6; t++) c.colsb[t] = 64, c.rows[t] = 16;
    static _Alignas(64) const unsigned char zeros[16 * 64];
    __asm__ volatile("ldtilecfg %0" ::"m"(c));
    __asm__ volatile("tilezero %%tmm0\n\ttilezero %%tmm1\n\ttilezero %%tmm2\n\ttilezero %%tmm3\n\t"
                     "tileloadd (%0,%1,1), %%tmm4\n\ttileloadd (%0,%1,1), %%tmm5" ::"r"(zeros), "r"(64L));
    __asm__ volatile("1:\n\t"
                     "tdpbf16ps %%tmm5, %%tmm4, %%tmm0\n\ttdpbf16ps %%tmm5, %%tmm4, %%tmm1\n\t"
                     "tdpbf16ps %%tmm5, %%tmm4, %%tmm2\n\ttdpbf16ps %%tmm5, %%tmm4, %%tmm3\n\t"
                     "dec %0\n\tjnz 1b\n\t"
                     : "+r"(n)::"cc");
    __asm__ volatile("tilerelease");
}
#endif

double bench_peak_amx_gflops(void) {
#if defined(__x86_64__) && defined(SYS_arch_prctl)
    __builtin_cpu_init();
    if (!__builtin_cpu_supports("amx-bf16") || syscall(SYS_arch_prctl, ARCH_REQ_XCOMP_PERM, XFEATURE_XTILEDATA) != 0)
        return 0;
    const long n = 2000000; /* 8 M tile products a thread: 0.1 s or less */
    double total = 0;
#pragma omp parallel reduction(+ : total)
    {
        double best = 1e30;
        for (int r = 0; r < 3; r++) {
            double t0 = bench_now();
            chains_amx(n);
            double t = bench_now() - t0;
            if (t < best) best = t;
        }
        total += (double)n * 4 * (16.0 * 16 * 32 * 2) / best * 1e-9; /* 16x16 outputs, 32-long dot products */
    }
    return total;
#else
    return 0;
#endif
}
