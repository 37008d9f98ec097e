# HK_REQUIRE_PKG(VARIABLE-PREFIX, PKG-CONFIG-MODULE, WHAT, DEBIAN-PACKAGE)
# -------------------------------------------------------------------------
# PKG_CHECK_MODULES that stops configure with the Debian package to install,
# so a missing dependency is one apt-get away instead of a pkg-config riddle.
AC_DEFUN([HK_REQUIRE_PKG],
[PKG_CHECK_MODULES([$1], [$2], [],
  [AC_MSG_ERROR([$3 not found (pkg-config module '$2').
On Debian/Ubuntu: apt-get install $4   (or run ./quickstart as root)])])])
