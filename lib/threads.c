/* One thread count for our operators (OpenMP) and for the BLAS. */
#include <stdio.h>
#include <unistd.h>

#include "internal.h"

#ifdef SADM_HAVE_OPENBLAS
#include <cblas.h>
#endif

sadm_status sadm_set_num_threads(int n) {
#ifndef SADM_HAVE_OPENMP
    if (n > 1)
        return sadm_error(SADM_ERR_UNSUPPORTED, "sadm_set_num_threads: this build has no OpenMP (configured with "
                                                "--disable-openmp); it runs on 1 thread, not %d", n);
#endif
    if (n <= 0) {
        long cores = sysconf(_SC_NPROCESSORS_ONLN);
        n = cores > 0 ? (int)cores : 1;
    }
#ifdef SADM_HAVE_OPENMP
    omp_set_num_threads(n);
#endif
#ifdef SADM_HAVE_OPENBLAS
    openblas_set_num_threads(n);
#endif
    return SADM_OK;
}

int sadm_num_threads(void) {
#ifdef SADM_HAVE_OPENMP
    return omp_get_max_threads();
#else
    return 1;
#endif
}

const char *sadm_blas_info(void) {
    static _Thread_local char info[256];
#ifdef SADM_HAVE_OPENBLAS
    int par = openblas_get_parallel();
    snprintf(info, sizeof info, "OpenBLAS (%s) core %s; %s",
             par == 2 ? "OpenMP" : par == 1 ? "pthreads" : "sequential", openblas_get_corename(),
             openblas_get_config());
#else
    snprintf(info, sizeof info, "libsadm generic GEMM");
#endif
    return info;
}
