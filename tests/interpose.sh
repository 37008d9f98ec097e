#!/bin/sh
# hakmem under a preloaded library whose clock_gettime and getpid allocate
# (tests/alloc_shim.c, as libfaketime's do), in both preload orders: a
# workload of two threads, and a churn of threads whose heaps are swept
# (tests/gone_threads). Each run under a time limit: the fault was a crash
# or a wait for good.
set -u
: "${top_builddir:?run from make check}" "${top_srcdir:?run from make check}"
test_name=interpose
. "$top_srcdir/tests/preloadable.sh"
shim=$top_builddir/tests/.libs/alloc_shim.so
[ -f "$shim" ] || { echo "alloc_shim.so not built"; exit 99; }
failed=0
for order in "$shim:$lib" "$lib:$shim"; do
    for prog in "bench/mixed --threads 2 --quick" "tests/gone_threads"; do
        out=$(LD_PRELOAD="$order" timeout -s KILL 120 $top_builddir/$prog 2>&1)
        rc=$?
        if [ $rc -ne 0 ]; then
            echo "FAIL: LD_PRELOAD=$order $prog: exit $rc"
            printf '%s\n' "$out" | tail -n 5
            failed=$((failed + 1))
        else
            echo "ok: LD_PRELOAD=$order $prog"
        fi
    done
done
exit $failed
