#!/bin/sh
# Programs linked against the built library with the flags of hakmem.pc run
# on hakmem:
# - static: the link must not take glibc's malloc.o from libc.a (it would,
#   for any name of the family that only glibc defines, and fail on its
#   duplicate malloc): tests/static_prog.c, a threaded, forking C program
#   that calls the extensions and checks that hakmem served it, also with
#   hwloc loaded by dlopen; and tests/sys/prog.cpp, C++, whose objects call
#   malloc only through libstdc++, linked after the archive;
# - dynamic, under --as-needed (Ubuntu's default): the same C++ program,
#   which would otherwise drop libhakmem.so.
top_builddir=${top_builddir:-.}
top_srcdir=${top_srcdir:-.}
CC=${CC:-cc}
CXX=${CXX:-g++}
libdir=$top_builddir/src/.libs
if grep -q '^#define HK_NO_OVERRIDE' "$top_builddir/config.h" 2>/dev/null; then
    echo "link.sh: SKIP: sanitizer build: libhakmem defines no malloc (HK_NO_OVERRIDE)"
    exit 77
fi
tmp=$(mktemp -d) || exit 1
trap 'rm -rf "$tmp"' EXIT
# The .pc's flags, with the build's directory for the install's.
libs=$(sed -n 's/^Libs: -L${libdir} //p' "$top_builddir/hakmem.pc")
private=$(sed -n 's/^Libs.private: //p' "$top_builddir/hakmem.pc")
[ -n "$libs" ] || { echo "FAIL: no Libs in $top_builddir/hakmem.pc"; exit 1; }
ran=0

# link NAME COMPILER FLAGS...: a failed link fails the test, showing why.
link() {
    name=$1
    shift
    if ! "$@" -o "$tmp/$name" 2>"$tmp/$name.err"; then
        echo "FAIL: the link of $name failed:"
        grep -v "statically linked applications requires at runtime\|in function .hwloc_open" "$tmp/$name.err" | head -20
        exit 1
    fi
}

# on_hakmem NAME [ENV...]: runs the program with hakmem's statistics, which
# only hakmem prints; it must succeed.
on_hakmem() {
    name=$1
    shift
    if ! env HAKMEM_STATS=1 "$@" timeout 120 "$tmp/$name" >"$tmp/$name.out" 2>"$tmp/$name.stats"; then
        echo "FAIL: $name failed"
        cat "$tmp/$name.out" "$tmp/$name.stats"
        exit 1
    fi
    mallocs=$(sed -n 's/^hakmem:   mallocs *//p' "$tmp/$name.stats")
    if [ -z "$mallocs" ]; then
        echo "FAIL: $name ran without hakmem (no statistics at exit)"
        exit 1
    fi
    echo "ok: $name ran on hakmem ($mallocs mallocs counted)"
    ran=$((ran + 1))
}

have_cxx=yes
command -v "$CXX" >/dev/null 2>&1 || { have_cxx=; echo "skip: the C++ programs: $CXX is not installed"; }

if [ ! -f "$libdir/libhakmem.a" ]; then
    echo "skip: static links: $libdir/libhakmem.a is not built (--disable-static?)"
elif [ ! -f "$($CC -print-file-name=libc.a)" ]; then
    echo "skip: static links: $CC has no libc.a (Debian: libc6-dev)"
else
    link static_c $CC -O2 -static -I"$top_srcdir/src" -I"$top_srcdir/tests" "$top_srcdir/tests/static_prog.c" -L"$libdir" $libs $private
    on_hakmem static_c
    cat "$tmp/static_c.out"
    # hwloc is loaded with dlopen, only for a multi-node topology, which a
    # static program can do with the same glibc's shared objects (the
    # linker's warning): a synthetic topology of 2 nodes makes it load.
    on_hakmem static_c HAKMEM_TOPOLOGY="$top_srcdir/tests/numa_topos/sym-2x3.xml"
    if ! grep -q "numa: policy local, 2 nodes" "$tmp/static_c.stats"; then
        echo "FAIL: hwloc did not load the 2-node topology in the static program:"
        cat "$tmp/static_c.stats"
        exit 1
    fi
    if [ -n "$have_cxx" ]; then
        link static_cxx $CXX -O2 -static "$top_srcdir/tests/sys/prog.cpp" -L"$libdir" $libs $private
        on_hakmem static_cxx
    fi
fi

if [ ! -f "$libdir/libhakmem.so" ]; then
    echo "skip: dynamic links: $libdir/libhakmem.so is not built (--disable-shared?)"
elif [ -n "$have_cxx" ]; then
    link as_needed_cxx $CXX -O2 -Wl,--as-needed "$top_srcdir/tests/sys/prog.cpp" -L"$libdir" $libs \
        -Wl,-rpath,"$(cd "$libdir" && pwd)"
    on_hakmem as_needed_cxx
fi
[ $ran -gt 0 ] || { echo "link.sh: SKIP: nothing could be linked here (above)"; exit 77; }
