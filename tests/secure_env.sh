#!/bin/sh
# A set-user-ID program takes no HAKMEM_ options from its caller's
# environment (AT_SECURE), as glibc ignores its malloc tunables there: with
# HAKMEM_STATS=1 set, a copy of tests/secure_prog.c that is set-user-ID
# `nobody` must print no statistics at exit, and the same program without
# the bit must.
top_builddir=${top_builddir:-.}
top_srcdir=${top_srcdir:-.}
CC=${CC:-cc}
test_name=secure_env.sh
. "$top_srcdir/tests/preloadable.sh"
if [ "$(id -u)" -ne 0 ]; then
    echo "secure_env.sh: SKIP: making a program set-user-ID another user needs root"
    exit 77
fi
id nobody >/dev/null 2>&1 || { echo "secure_env.sh: SKIP: no user nobody"; exit 77; }
tmp=$(mktemp -d) || exit 1
trap 'rm -rf "$tmp"' EXIT
libdir=$(dirname "$lib")
if ! $CC -O1 "$top_srcdir/tests/secure_prog.c" -L"$libdir" -lhakmem -Wl,-rpath,"$libdir" \
        -o "$tmp/plain" 2>"$tmp/cc.err"; then
    cat "$tmp/cc.err"
    echo "FAIL: cannot build tests/secure_prog.c"
    exit 1
fi
cp "$tmp/plain" "$tmp/suid"
chown nobody "$tmp/suid" && chmod 4755 "$tmp/suid" || { echo "FAIL: chown/chmod"; exit 1; }
chmod 755 "$tmp"

HAKMEM_STATS=1 "$tmp/plain" >"$tmp/plain.out" 2>"$tmp/plain.err" || { echo "FAIL: the plain run failed"; exit 1; }
HAKMEM_STATS=1 "$tmp/suid" >"$tmp/suid.out" 2>"$tmp/suid.err" || { echo "FAIL: the set-user-ID run failed"; exit 1; }
if ! grep -q "at_secure=1" "$tmp/suid.out"; then
    echo "secure_env.sh: SKIP: the kernel did not mark the set-user-ID run secure (nosuid mount?): $(cat "$tmp/suid.out")"
    exit 77
fi
grep -q "at_secure=0" "$tmp/plain.out" || { echo "FAIL: the plain run: $(cat "$tmp/plain.out")"; exit 1; }
if ! grep -q "^hakmem: statistics" "$tmp/plain.err"; then
    echo "FAIL: the plain run ignored HAKMEM_STATS=1:"
    cat "$tmp/plain.err"
    exit 1
fi
if grep -q "^hakmem" "$tmp/suid.err"; then
    echo "FAIL: the set-user-ID run took HAKMEM_STATS=1 from its caller:"
    cat "$tmp/suid.err"
    exit 1
fi
echo "ok: HAKMEM_STATS=1 taken by the plain run, ignored by the set-user-ID one"
