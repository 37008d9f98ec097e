# HK_SANITIZER(NAME, FLAGS)
# -------------------------
# Add FLAGS to CFLAGS and LDFLAGS of everything, after checking that a
# threaded program builds and runs with them (a missing runtime, e.g. clang
# without libclang-rt, fails here instead of at link time of the tests).
# Appends NAME to $sanitizers.
AC_DEFUN([HK_SANITIZER],
[AC_MSG_CHECKING([whether $CC supports $2])
 hk_save_CFLAGS=$CFLAGS hk_save_LDFLAGS=$LDFLAGS
 CFLAGS="$CFLAGS $2 -pthread" LDFLAGS="$LDFLAGS $2 -pthread"
 AC_RUN_IFELSE([AC_LANG_PROGRAM([[#include <pthread.h>
static void *run(void *a) { return a; }]],
   [[pthread_t t; if (pthread_create(&t, 0, run, 0)) return 1; return pthread_join(t, 0);]])],
   [hk_ok=yes], [hk_ok=no], [hk_ok=yes])
 CFLAGS="$hk_save_CFLAGS $2" LDFLAGS="$hk_save_LDFLAGS $2"
 AC_MSG_RESULT([$hk_ok])
 AS_IF([test "x$hk_ok" != xyes],
   [AC_MSG_ERROR([$CC cannot build and run $1 programs with '$2'.
Use gcc (runtime in libgcc-12-dev) or clang with its runtime: apt-get install libclang-rt-14-dev])])
 sanitizers="${sanitizers:+$sanitizers }$1"])

