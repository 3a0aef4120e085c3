# SADM_CHECK_SIMD: which per-ISA kernel files this compiler can build.
# Each ISA file is compiled with its own flags; the running CPU picks one at start-up.
AC_DEFUN([SADM_CHECK_SIMD], [
  sadm_have_avx2=no
  sadm_have_avx512=no
  sadm_have_avx512bf16=no
  sadm_have_neon=no
  AVX2_CFLAGS="-mavx2 -mfma"
  AVX512_CFLAGS="-mavx512f -mavx512dq -mavx512bw -mavx512vl -mfma"
  AVX512BF16_CFLAGS="$AVX512_CFLAGS -mavx512bf16"
  case $host_cpu in
    x86_64|i?86)
      SADM_CHECK_CFLAG([$AVX2_CFLAGS], [sadm_have_avx2=yes])
      SADM_CHECK_CFLAG([$AVX512_CFLAGS], [sadm_have_avx512=yes])
      AS_IF([test $sadm_have_avx512 = yes], [SADM_CHECK_CFLAG([$AVX512BF16_CFLAGS], [sadm_have_avx512bf16=yes])]) ;;
    aarch64*|arm64*)
      AC_COMPILE_IFELSE([AC_LANG_PROGRAM([[#include <arm_neon.h>]],
        [[float32x4_t v = vdupq_n_f32(1.0f); return (int)vgetq_lane_f32(vrndmq_f32(v), 0);]])],
        [sadm_have_neon=yes]) ;;
  esac
  AS_IF([test $sadm_have_avx2 = yes], [AC_DEFINE([SADM_HAVE_AVX2], [1], [AVX2+FMA kernels are built.])])
  AS_IF([test $sadm_have_avx512 = yes], [AC_DEFINE([SADM_HAVE_AVX512], [1], [AVX-512 kernels are built.])])
  AS_IF([test $sadm_have_avx512bf16 = yes],
    [AC_DEFINE([SADM_HAVE_AVX512BF16], [1], [AVX-512 kernels with the AVX512-BF16 GEMM tile are built.])])
  AS_IF([test $sadm_have_neon = yes], [AC_DEFINE([SADM_HAVE_NEON], [1], [NEON kernels are built.])])
  AM_CONDITIONAL([SADM_AVX2], [test $sadm_have_avx2 = yes])
  AM_CONDITIONAL([SADM_AVX512], [test $sadm_have_avx512 = yes])
  AM_CONDITIONAL([SADM_AVX512BF16], [test $sadm_have_avx512bf16 = yes])
  AM_CONDITIONAL([SADM_NEON], [test $sadm_have_neon = yes])
  AC_SUBST([AVX2_CFLAGS])
  AC_SUBST([AVX512_CFLAGS])
  AC_SUBST([AVX512BF16_CFLAGS])
])
