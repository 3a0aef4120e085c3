/* AVX-512 kernel set (16 lanes); compiled with -mavx512f -mavx512dq -mavx512bw -mavx512vl. */
#include "avx512_mappings.h"

#define KERNELS_NAME sadm_kernels_avx512
#define KERNELS_STRING "avx512"
#include "vector_kernels.h"
