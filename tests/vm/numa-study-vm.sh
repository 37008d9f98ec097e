#!/bin/sh
# The NUMA placement study (hakmem-bench numa) inside the multi-node VMs of
# tests/vm/run-vm.sh, where placement means something: builds
# tests/vm/numa-study-driver.c with bench/larson.c against the built
# libhakmem, boots each configuration with it (run-vm.sh -b), and makes the
# tables from the serial log with `hakmem-bench numa --from-log`.
#
# usage: tests/vm/numa-study-vm.sh [-c CONFIG]... [-o DIR]
#   -c CONFIG  2x2 or 4x1 (run-vm.sh's); repeatable; default 2x2
#   -o DIR     where DIR/CONFIG/{vm.log,numa.md,numa.csv} go
#              (default results/numa-vm-<timestamp>)
# Run from the top build directory after make (or set top_builddir, srcdir).
# Exit: 0 every study ran and every run passed; 1 a failure; 77 run-vm.sh
#   skipped (no qemu or no kernel); 99 setup error.
set -u

top=${top_builddir:-.}
src=${srcdir:-.}
configs=
out=results/numa-vm-$(date +%Y%m%d-%H%M%S)
while getopts c:o: opt; do
    case $opt in
    c) configs="$configs $OPTARG" ;;
    o) out=$OPTARG ;;
    *) sed -n '8,14s/^# \{0,1\}//p' "$0" >&2; exit 99 ;;
    esac
done
configs=${configs:-2x2}

die() { printf 'numa-study-vm: ERROR: %s\n' "$*" >&2; exit 99; }

libdir=$(cd "$top/src/.libs" 2>/dev/null && pwd) || die "no $top/src/.libs: build hakmem first (make)"
[ -f "$libdir/libhakmem.so" ] || die "$libdir/libhakmem.so not found: build hakmem first (make)"
[ -x "$top/bench/hakmem-bench" ] || die "$top/bench/hakmem-bench not built (make)"
work=$(mktemp -d "${TMPDIR:-/tmp}/hakmem-numa-vm.XXXXXX") || die "mktemp failed"
trap 'rm -rf "$work"' EXIT
trap 'exit 1' HUP INT TERM

# One binary, driver and workload: larson's main renamed; hakmem linked in
# (it exports malloc) with a RUNPATH, so run-vm.sh copies it into the VM.
cc=${CC:-cc}
flags="-O2 -std=gnu11 -pthread -I$src/bench"
$cc $flags -Dmain=larson_main -c "$src/bench/larson.c" -o "$work/larson.o" &&
    $cc $flags -c "$src/bench/bench.c" -o "$work/bench.o" &&
    $cc $flags -c "$src/tests/vm/numa-study-driver.c" -o "$work/driver.o" &&
    $cc -pthread -o "$work/numa-study-driver" "$work/driver.o" "$work/larson.o" "$work/bench.o" \
        -L"$libdir" -Wl,-rpath,"$libdir" -lhakmem -lm ||
    die "cannot build the driver"

status=0
for c in $configs; do
    mkdir -p "$out/$c" || die "cannot create $out/$c"
    top_builddir=$top sh "$src/tests/vm/run-vm.sh" -c "$c" -b "$work/numa-study-driver" \
        >"$out/$c/vm.log" 2>&1
    rc=$?
    if [ $rc -eq 77 ]; then
        grep 'SKIP' "$out/$c/vm.log"
        exit 77
    fi
    [ $rc -eq 0 ] || { echo "numa-study-vm: $c: run-vm.sh exit $rc (see $out/$c/vm.log)"; status=1; }
    echo "== $c"
    "$top/bench/hakmem-bench" numa --from-log "$out/$c/vm.log" --out "$out/$c" || status=1
done
exit $status
