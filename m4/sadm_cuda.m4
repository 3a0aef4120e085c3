# SADM_CHECK_CUDA: --with-cuda[=DIR] (default auto). Detects nvcc, cudart and cuBLAS.
# The CUDA backend is a later step: today this only records what was found and builds the
# (empty) gpu/ hook, so that the option and its detection are stable for users' scripts.
AC_DEFUN([SADM_CHECK_CUDA], [
  AC_ARG_WITH([cuda],
    [AS_HELP_STRING([--with-cuda[=DIR]], [CUDA toolkit for the GPU backend (default: auto-detect in /usr/local/cuda)])],
    [], [with_cuda=auto])
  sadm_have_cuda=no
  AS_CASE([$with_cuda],
    [no], [],
    [yes|auto], [sadm_cuda_dir=/usr/local/cuda],
    [sadm_cuda_dir=$with_cuda])
  AS_IF([test "x$with_cuda" != xno], [
    AC_PATH_PROG([NVCC], [nvcc], [], [$sadm_cuda_dir/bin$PATH_SEPARATOR$PATH])
    sadm_save_CFLAGS=$CFLAGS
    sadm_save_LIBS=$LIBS
    CUDA_CFLAGS="-I$sadm_cuda_dir/include"
    CUDA_LIBS="-L$sadm_cuda_dir/lib64 -lcublas -lcudart"
    CFLAGS="$CFLAGS $CUDA_CFLAGS"
    LIBS="$CUDA_LIBS $LIBS"
    AC_MSG_CHECKING([for cudart and cuBLAS in $sadm_cuda_dir])
    AC_LINK_IFELSE([AC_LANG_PROGRAM([[#include <cuda_runtime.h>
#include <cublas_v2.h>]], [[int n = 0; cublasHandle_t h; (void)h; return cudaGetDeviceCount(&n) == cudaSuccess ? 0 : 1;]])],
      [AS_IF([test -n "$NVCC"], [sadm_have_cuda=yes])])
    AC_MSG_RESULT([$sadm_have_cuda])
    CFLAGS=$sadm_save_CFLAGS
    LIBS=$sadm_save_LIBS
    AS_IF([test "x$with_cuda" != xauto && test $sadm_have_cuda = no],
      [AC_MSG_ERROR([--with-cuda given but nvcc, cudart or cuBLAS was not found under $sadm_cuda_dir; install the CUDA toolkit (Debian package: nvidia-cuda-toolkit) or pass --with-cuda=DIR])])
  ])
  AS_IF([test $sadm_have_cuda = yes], [AC_DEFINE([SADM_HAVE_CUDA_TOOLKIT], [1], [The CUDA toolkit was found at configure time.])])
  AM_CONDITIONAL([SADM_CUDA], [test $sadm_have_cuda = yes])
  AC_SUBST([CUDA_CFLAGS])
  AC_SUBST([CUDA_LIBS])
])
