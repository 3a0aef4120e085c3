# SADM_CHECK_CFLAG(FLAGS, ACTION-IF-OK, ACTION-IF-NOT)
# Compiles and links a small program with FLAGS added to CFLAGS (and LDFLAGS, for sanitizers).
AC_DEFUN([SADM_CHECK_CFLAG], [
  AS_VAR_PUSHDEF([sadm_cv], [sadm_cv_cflag_$1])
  AC_CACHE_CHECK([whether $CC accepts $1], [sadm_cv], [
    sadm_save_CFLAGS=$CFLAGS
    sadm_save_LDFLAGS=$LDFLAGS
    CFLAGS="$CFLAGS $1 -Werror"
    LDFLAGS="$LDFLAGS $1"
    AC_LINK_IFELSE([AC_LANG_PROGRAM([], [return 0;])],
      [AS_VAR_SET([sadm_cv], [yes])], [AS_VAR_SET([sadm_cv], [no])])
    CFLAGS=$sadm_save_CFLAGS
    LDFLAGS=$sadm_save_LDFLAGS])
  AS_VAR_IF([sadm_cv], [yes], [$2], [$3])
  AS_VAR_POPDEF([sadm_cv])
])

# AX_SADM_WARNINGS: the warnings every file is built with, where the compiler has them.
AC_DEFUN([AX_SADM_WARNINGS], [
  WARN_CFLAGS=""
  for sadm_flag in -Wall -Wextra -Wshadow -Wstrict-prototypes -Wmissing-prototypes -Wno-unused-parameter; do
    SADM_CHECK_CFLAG([$sadm_flag], [WARN_CFLAGS="$WARN_CFLAGS $sadm_flag"])
  done
  AC_SUBST([WARN_CFLAGS])
])
