#!/bin/sh
# Programs linked with -static against libhakmem.a, with the flags of
# `pkg-config --static --libs hakmem`: the link must not take glibc's
# malloc.o from libc.a (it would, for any name of the family that only
# glibc defines, and fail on its duplicate malloc), and the programs must
# run on hakmem: tests/static_prog.c, which checks that itself, and a C++
# program (tests/sys/prog.cpp) that calls malloc only through libstdc++.
top_builddir=${top_builddir:-.}
top_srcdir=${top_srcdir:-.}
CC=${CC:-cc}
CXX=${CXX:-g++}
lib=$top_builddir/src/.libs/libhakmem.a
if [ ! -f "$lib" ]; then
    echo "static_link.sh: SKIP: $lib is not built (--disable-static?)"
    exit 77
fi
if grep -q '^#define HK_NO_OVERRIDE' "$top_builddir/config.h" 2>/dev/null; then
    echo "static_link.sh: SKIP: sanitizer build: libhakmem.a defines no malloc (HK_NO_OVERRIDE)"
    exit 77
fi
libc=$($CC -print-file-name=libc.a)
if [ ! -f "$libc" ]; then
    echo "static_link.sh: SKIP: $CC has no static libc.a to link with (Debian: libc6-dev)"
    exit 77
fi
tmp=$(mktemp -d) || exit 1
trap 'rm -rf "$tmp"' EXIT
# The archive where -lhakmem stands, then the .pc's private flags.
private=$(sed -n 's/^Libs.private: //p' "$top_builddir/hakmem.pc")
if ! $CC -O2 -static -I"$top_srcdir/src" "$top_srcdir/tests/static_prog.c" "$lib" $private \
        -o "$tmp/prog" 2>"$tmp/link.err"; then
    echo "FAIL: the static link failed:"
    grep -v "statically linked applications requires at runtime\|in function .hwloc_open" "$tmp/link.err" | head -20
    exit 1
fi
grep -v "statically linked applications requires at runtime\|in function .hwloc_open" "$tmp/link.err"
if ! timeout 120 "$tmp/prog"; then
    echo "FAIL: the statically linked program failed"
    exit 1
fi
# hwloc is loaded with dlopen, only for a multi-node topology, which a static
# program can do with the same glibc's shared objects (the linker's warning
# above): a synthetic topology of 2 nodes makes it load.
topo=$top_srcdir/tests/numa_topos/sym-2x3.xml
if ! HAKMEM_TOPOLOGY=$topo HAKMEM_STATS=1 timeout 120 "$tmp/prog" 2>"$tmp/stats.err"; then
    echo "FAIL: the statically linked program failed on a synthetic 2-node topology"
    cat "$tmp/stats.err"
    exit 1
fi
if ! grep -q "numa: policy local, 2 nodes" "$tmp/stats.err"; then
    echo "FAIL: hwloc did not load the 2-node topology in the static program:"
    cat "$tmp/stats.err"
    exit 1
fi
echo "ok: hwloc loaded from the static program ($(grep -c '^hakmem: node' "$tmp/stats.err") nodes)"
# C++: operator new is libstdc++'s, linked after the archive; without the
# .pc's -u flags the archive gave nothing, and glibc's malloc ran quietly.
if ! command -v "$CXX" >/dev/null 2>&1; then
    echo "skip: the C++ program: $CXX is not installed"
    exit 0
fi
if ! $CXX -O2 -static "$top_srcdir/tests/sys/prog.cpp" "$lib" $private -o "$tmp/prog_cxx" 2>"$tmp/link.err"; then
    echo "FAIL: the static link of the C++ program failed:"
    grep -v "statically linked applications requires at runtime\|in function .hwloc_open" "$tmp/link.err" | head -20
    exit 1
fi
if ! HAKMEM_STATS=1 timeout 120 "$tmp/prog_cxx" >"$tmp/cxx.out" 2>"$tmp/cxx.err"; then
    echo "FAIL: the statically linked C++ program failed"
    cat "$tmp/cxx.err"
    exit 1
fi
mallocs=$(sed -n 's/^hakmem:   mallocs *//p' "$tmp/cxx.err")
if [ -z "$mallocs" ]; then
    echo "FAIL: the static C++ program ran without hakmem (no statistics at exit)"
    exit 1
fi
echo "ok: the static C++ program ran on hakmem ($mallocs mallocs counted)"
