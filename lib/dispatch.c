/* Run-time choice of the kernel set: once, at first use, from CPU features (or from the
 * SADM_ISA environment variable); sadm_set_isa() changes it later. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#if defined(__aarch64__) && defined(__linux__)
#include <sys/auxv.h>
#endif

#include "internal.h"

static const sadm_kernels *const all_kernels[] = {
    &sadm_kernels_scalar,
#ifdef SADM_HAVE_AVX2
    &sadm_kernels_avx2,
#endif
#ifdef SADM_HAVE_AVX512
    &sadm_kernels_avx512,
#endif
#ifdef SADM_HAVE_AVX512BF16
    &sadm_kernels_avx512bf16,
#endif
#ifdef SADM_HAVE_NEON
    &sadm_kernels_neon,
#endif
};
#define N_KERNELS (sizeof all_kernels / sizeof all_kernels[0])

static const char *const isa_names[] = {
    "scalar",
#ifdef SADM_HAVE_AVX2
    "avx2",
#endif
#ifdef SADM_HAVE_AVX512
    "avx512",
#endif
#ifdef SADM_HAVE_AVX512BF16
    "avx512bf16",
#endif
#ifdef SADM_HAVE_NEON
    "neon",
#endif
    NULL,
};

static int cpu_supports(const sadm_kernels *k) {
    const char *n = k->name;
    if (strcmp(n, "scalar") == 0) return 1;
#if defined(__x86_64__) || defined(__i386__)
    __builtin_cpu_init();
    if (strcmp(n, "avx2") == 0) return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    int avx512 = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512dq") &&
                 __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl") &&
                 __builtin_cpu_supports("fma");
    if (strcmp(n, "avx512") == 0) return avx512;
    if (strcmp(n, "avx512bf16") == 0) return avx512 && __builtin_cpu_supports("avx512bf16");
#endif
#if defined(__aarch64__)
    if (strcmp(n, "neon") == 0) {
#if defined(__linux__) && defined(HWCAP_ASIMD)
        return (getauxval(AT_HWCAP) & HWCAP_ASIMD) != 0;
#else
        return 1; /* Advanced SIMD is part of every AArch64 core */
#endif
    }
#endif
    return 0;
}

static const sadm_kernels *find(const char *name) {
    for (size_t i = 0; i < N_KERNELS; i++)
        if (strcmp(all_kernels[i]->name, name) == 0) return all_kernels[i];
    return NULL;
}

static const sadm_kernels *best(void) {
    const sadm_kernels *b = &sadm_kernels_scalar;
    for (size_t i = 0; i < N_KERNELS; i++)
        if (cpu_supports(all_kernels[i])) b = all_kernels[i];
    return b;
}

/* The active set: read by every operator call, on any thread, and replaced by
 * sadm_set_isa; an atomic pointer, so that a switch while other threads compute is no
 * data race (each call sees the old set or the new one, whole). */
static const sadm_kernels *active;
static pthread_once_t init_once = PTHREAD_ONCE_INIT;

static void set_active(const sadm_kernels *k) { __atomic_store_n(&active, k, __ATOMIC_RELEASE); }

static void init_active(void) {
    const char *env = getenv("SADM_ISA");
    if (env && *env && strcmp(env, "auto") != 0) {
        const sadm_kernels *k = find(env);
        if (k && cpu_supports(k)) {
            set_active(k);
            return;
        }
        fprintf(stderr, "libsadm: SADM_ISA=%s is not available here (built: ", env);
        for (size_t i = 0; isa_names[i]; i++) fprintf(stderr, "%s%s", i ? ", " : "", isa_names[i]);
        fprintf(stderr, "); using the best supported set instead\n");
    }
    set_active(best());
}

const sadm_kernels *sadm_kernels_active(void) {
    pthread_once(&init_once, init_active);
    return __atomic_load_n(&active, __ATOMIC_ACQUIRE);
}

sadm_status sadm_set_isa(const char *name) {
    SADM_REQUIRE_PTR(name);
    pthread_once(&init_once, init_active);
    if (strcmp(name, "auto") == 0) {
        set_active(best());
        return SADM_OK;
    }
    const sadm_kernels *k = find(name);
    if (!k) return sadm_error(SADM_ERR_UNSUPPORTED, "sadm_set_isa: no kernel set '%s' in this build", name);
    if (!cpu_supports(k))
        return sadm_error(SADM_ERR_UNSUPPORTED, "sadm_set_isa: this CPU does not support '%s'", name);
    set_active(k);
    return SADM_OK;
}

const char *sadm_isa(void) { return sadm_kernels_active()->name; }

int sadm_isa_available(const char *name) {
    if (!name) return 0;
    const sadm_kernels *k = find(name);
    return k && cpu_supports(k);
}

const char *const *sadm_isa_list(void) { return isa_names; }
