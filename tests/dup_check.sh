#!/bin/sh
# The workloads' content checks catch a block handed to a second owner while
# live: under tests/dup_shim.c (every 1000th malloc returns the previous,
# still live block) each workload must fail its check (exit 3, a
# "reason=corrupt where=<its check>" line, no result line); without the shim
# the same run must pass (exit 0, check=ok). Before the per-allocation nonce
# (bench.h) both owners wrote the same pattern and larson, ring, xmalloc,
# threadtest and cache-scratch passed under the shim.
set -u
: "${top_builddir:?run from make check}" "${top_srcdir:?run from make check}"
# Skips where the other preload tests do (a static-only or sanitizer
# build); the shim is built beside libhakmem.so.
test_name=dup_check
. "$top_srcdir/tests/preloadable.sh"
shim=$(cd "$top_builddir/tests/.libs" && pwd)/dup_shim.so
failed=0 runs=0
# Enough mallocs for several doubled blocks at either thread count.
for spec in "mixed --iters 20000" "larson --iters 20000" "ring --iters 20000" "xmalloc --iters 20000" \
            "threadtest --rounds 5" "cache-scratch --handed 2000"; do
    set -- $spec
    w=$1
    shift
    for t in 1 2; do
        runs=$((runs + 1))
        out=$("$top_builddir/bench/$w" --threads "$t" --quick "$@" 2>&1)
        rc=$?
        case "$rc:$out" in
            0:*"hakmem-bench-result workload=$w "*" check=ok"*) ;;
            *) echo "FAIL: $w --threads $t $* without the shim: exit $rc"
               printf '%s\n' "$out" | tail -3
               failed=$((failed + 1)) ;;
        esac
        runs=$((runs + 1))
        out=$(LD_PRELOAD="$shim" "$top_builddir/bench/$w" --threads "$t" --quick "$@" 2>&1)
        rc=$?
        # The check's name begins with the workload's (cache-handed, cache-scribble).
        case "$rc:$out" in
            *hakmem-bench-result*) bad="a result line" ;;
            3:*"hakmem-bench-error workload=$w reason=corrupt where=${w%%-*}"*) bad="" ;;
            *) bad="exit $rc, no 'reason=corrupt where=${w%%-*}...' line" ;;
        esac
        if [ -n "$bad" ]; then
            echo "FAIL: $w --threads $t $* under the shim passed its check: $bad"
            printf '%s\n' "$out" | tail -3
            failed=$((failed + 1))
        fi
    done
done
echo "dup_check: $((runs - failed)) passed, $failed failed"
[ "$failed" -eq 0 ]
