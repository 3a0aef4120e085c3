# SADM_CHECK_BLAS: --with-blas=openblas (default) or generic (libsadm's own portable GEMM).
# OpenBLAS: prefer Debian's OpenMP build when OpenMP is on, so that BLAS and our operators
# share one thread pool and a GEMM called inside a parallel region runs single-threaded.
AC_DEFUN([SADM_CHECK_BLAS], [
  AC_ARG_WITH([blas],
    [AS_HELP_STRING([--with-blas=openblas|generic], [matrix products through OpenBLAS (default) or libsadm's portable GEMM])],
    [sadm_blas=$withval], [sadm_blas=openblas])
  AC_ARG_VAR([BLAS_CFLAGS], [C compiler flags for OpenBLAS (cblas.h)])
  AC_ARG_VAR([BLAS_LIBS], [linker flags for OpenBLAS])
  case $sadm_blas in
    openblas)
      AS_IF([test -z "$BLAS_LIBS"], [
        sadm_multiarch=`$CC -print-multiarch 2>/dev/null`
        sadm_variants="openblas-pthread openblas-openmp"
        AS_IF([test "x$enable_openmp" != xno], [sadm_variants="openblas-openmp openblas-pthread"])
        for sadm_v in $sadm_variants; do
          sadm_dir=/usr/lib/$sadm_multiarch/$sadm_v
          AS_IF([test -n "$sadm_multiarch" && test -f "$sadm_dir/libopenblas.so"], [
            BLAS_LIBS="-L$sadm_dir -Wl,-rpath,$sadm_dir -lopenblas"
            BLAS_CFLAGS="-I/usr/include/$sadm_multiarch/$sadm_v"
            break])
        done
        AS_IF([test -z "$BLAS_LIBS"], [BLAS_LIBS="-lopenblas"])
      ])
      sadm_save_CFLAGS=$CFLAGS
      sadm_save_LIBS=$LIBS
      CFLAGS="$CFLAGS $BLAS_CFLAGS"
      LIBS="$BLAS_LIBS $LIBS"
      AC_MSG_CHECKING([for cblas_sgemm in OpenBLAS])
      AC_LINK_IFELSE([AC_LANG_PROGRAM([[#include <cblas.h>]],
          [[float a = 1, b = 1, c = 0; cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, 1, 1, 1, 1.0f, &a, 1, &b, 1, 0.0f, &c, 1); return openblas_get_num_threads() < 0;]])],
        [AC_MSG_RESULT([yes])],
        [AC_MSG_RESULT([no])
         AC_MSG_ERROR([OpenBLAS (cblas.h, libopenblas) not found; install it with: apt-get install libopenblas-openmp-dev  (or configure --with-blas=generic)])])
      CFLAGS=$sadm_save_CFLAGS
      LIBS=$sadm_save_LIBS
      AC_DEFINE([SADM_HAVE_OPENBLAS], [1], [Matrix products go through OpenBLAS.]) ;;
    generic)
      BLAS_CFLAGS=""
      BLAS_LIBS="" ;;
    *)
      AC_MSG_ERROR([--with-blas must be openblas or generic, not '$sadm_blas']) ;;
  esac
  AM_CONDITIONAL([SADM_OPENBLAS], [test "x$sadm_blas" = xopenblas])
  AC_SUBST([BLAS_CFLAGS])
  AC_SUBST([BLAS_LIBS])
])
