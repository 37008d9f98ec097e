#!/bin/sh
# Every benchmark workload at 1 and 4 threads, under glibc and under hakmem
# (LD_PRELOAD), with --quick: it must exit 0 and print one result line with
# every field the sweep tool reads, and check=ok. Under hakmem (with
# HAKMEM_STATS=json) the line must also count hakmem's OS calls in the timed
# interval, timed_mmap= timed_munmap= timed_madvise=, each at most the whole
# process's count from the JSON at exit, and mixed's timed_mmap below it (the
# start-up mappings fall outside); under glibc those fields must be absent.
set -u
: "${top_builddir:?run from make check}" "${top_srcdir:?run from make check}"
test_name=workloads
. "$top_srcdir/tests/preloadable.sh"
failed=0 runs=0
for w in mixed larson xmalloc ring threadtest cache-scratch cache-thrash churn fragment large; do
    bin="$top_builddir/bench/$w"
    for t in 1 4; do
        for alloc in glibc hakmem; do
            pre=""
            [ "$alloc" = hakmem ] && pre="$lib"
            runs=$((runs + 1))
            out=$(LD_PRELOAD="$pre" HAKMEM_STATS=json "$bin" --threads "$t" --quick 2>&1)
            rc=$?
            line=$(printf '%s\n' "$out" | grep '^hakmem-bench-result ')
            missing=""
            for f in "workload=$w " "threads=$t " ops= seconds= ops_per_sec= check=ok; do
                case "$line" in *"$f"*) ;; *) missing="$missing $f" ;; esac
            done
            if [ "$alloc" = glibc ]; then
                case "$line" in *" timed_"*) missing="$missing (timed_* present under glibc)" ;; esac
            else
                json=$(printf '%s\n' "$out" | grep '^{"hakmem":')
                for f in mmap munmap madvise; do
                    timed=$(printf '%s\n' "$line" | sed -n "s/.* timed_$f=\([0-9]*\).*/\1/p")
                    total=$(printf '%s\n' "$json" | sed -n "s/.*\"os\":{[^}]*\"$f\":\([0-9]*\).*/\1/p")
                    if [ -z "$timed" ] || [ -z "$total" ] || [ "$timed" -gt "$total" ] || \
                       { [ "$w$f" = mixedmmap ] && [ "$timed" -ge "$total" ]; }; then
                        missing="$missing timed_$f='$timed'(process:'$total')"
                    fi
                done
            fi
            if [ "$rc" -ne 0 ] || [ -z "$line" ] || [ -n "$missing" ] || \
               [ "$(printf '%s\n' "$out" | grep -c '^hakmem-bench-result ')" -ne 1 ]; then
                echo "FAIL: $w --threads $t under $alloc: exit $rc, missing or wrong:$missing"
                printf '%s\n' "$out" | tail -5
                failed=$((failed + 1))
            fi
        done
    done
done
# larson --lines 1 counts block lines another thread touched last: none with
# one thread, some with two (about half the checks are of blocks made
# elsewhere; fewer when a loaded machine runs the threads one after the
# other, but never none: each checks blocks the other made before the start).
for t in 1 2; do
    runs=$((runs + 1))
    line=$(LD_PRELOAD="$lib" "$top_builddir/bench/larson" --threads "$t" --quick --lines 1 | grep '^hakmem-bench-result ')
    check=$(printf '%s\n' "$line" | sed -n 's/.* check_foreign=\([0-9.]*\).*/\1/p')
    fill=$(printf '%s\n' "$line" | sed -n 's/.* fill_foreign=\([0-9.]*\).*/\1/p')
    if [ -z "$check" ] || [ -z "$fill" ] || \
       { [ "$t" = 1 ] && [ "$check$fill" != 0.00000.0000 ]; } || \
       { [ "$t" = 2 ] && ! awk -v c="$check" 'BEGIN { exit !(c > 0 && c <= 1) }'; }; then
        echo "FAIL: larson --threads $t --lines 1: fill_foreign='$fill' check_foreign='$check' in: $line"
        failed=$((failed + 1))
    fi
done
# larson --ages 1 reports how many operations before each block malloc
# returns was freed, as cumulative shares (under 16, 64, 256, 1024): between
# 0 and 1, not decreasing.  With one thread every block hakmem hands out is
# its class's block freed last (one LIFO list per slab, docs/design.md "Free
# lists"): 42% under 16 operations, where a FIFO or sharded list gives a few
# percent (mimalloc: 4%).
for t in 1 2; do
    runs=$((runs + 1))
    line=$(LD_PRELOAD="$lib" "$top_builddir/bench/larson" --threads "$t" --quick --ages 1 | grep '^hakmem-bench-result ')
    shares=$(printf '%s\n' "$line" | sed -n 's/.* reuse_lt16=\([0-9.]*\) reuse_lt64=\([0-9.]*\) reuse_lt256=\([0-9.]*\) reuse_lt1k=\([0-9.]*\).*/\1 \2 \3 \4/p')
    min=0
    [ "$t" = 1 ] && min=0.35
    if [ -z "$shares" ] || ! printf '%s\n' "$shares" | awk -v min="$min" \
           '{ exit !($1 >= min && $1 <= $2 && $2 <= $3 && $3 <= $4 && $4 <= 1) }'; then
        echo "FAIL: larson --threads $t --ages 1: shares '$shares' (under 16 at least $min) in: $line"
        failed=$((failed + 1))
    fi
done
# large with many growing buffers per thread (the medium classes' realloc
# pattern, and the unit blocks' up to 1984 KiB, grown in place or moved):
# every chain is checked after each realloc and ends freed; the operations
# are one malloc and one free per chain plus at least 32 reallocs (4 KiB
# steps from 16 B to 128 KiB; 16 KiB steps from 128 KiB to 2,000,000 B).
for range in "4096 16 131072" "16384 131072 2000000"; do
    set -- $range
    for t in 1 4; do
        runs=$((runs + 1))
        line=$(LD_PRELOAD="$lib" "$top_builddir/bench/large" --threads "$t" --quick --chains 64 --buffers 16 --step "$1" \
               --min_size "$2" --max_size "$3" | grep '^hakmem-bench-result ')
        ops=$(printf '%s\n' "$line" | sed -n 's/.* ops=\([0-9]*\) .*/\1/p')
        case "$line" in *check=ok*) ;; *) ops="" ;; esac
        if [ -z "$ops" ] || [ "$ops" -lt $((64 * 2 + 64 * 32)) ]; then
            echo "FAIL: large --buffers 16 --step $1 --max_size $3 --threads $t: ops='$ops' (at least 2176) in: $line"
            failed=$((failed + 1))
        fi
    done
done
# tail, each scenario small (--quick), under glibc and hakmem: one result
# line, check=ok, and its first call timed where the scenario has one.
for scenario in churn heaps gone large burst; do
    for alloc in glibc hakmem; do
        pre=""
        [ "$alloc" = hakmem ] && pre="$lib"
        runs=$((runs + 1))
        line=$(LD_PRELOAD="$pre" "$top_builddir/bench/tail" --scenario "$scenario" --quick | grep '^hakmem-bench-result ')
        case "$scenario:$line" in
        churn:*check=ok*" first_malloc_max_ns="*|heaps:*check=ok*" first_malloc_max_ns="*|\
        gone:*check=ok*" first_malloc_max_ns="*|large:*check=ok*" large_free_max_ns="*|burst:*check=ok*" remote_free_max_ns="*) ;;
        *) echo "FAIL: tail --scenario $scenario under $alloc: $line"; failed=$((failed + 1)) ;;
        esac
    done
done
# Without HAKMEM_STATS the harness reads no statistics (an instruction count
# of the library must not see it): no timed_* fields.
runs=$((runs + 1))
line=$(env -u HAKMEM_STATS LD_PRELOAD="$lib" "$top_builddir/bench/mixed" --threads 1 --quick | grep '^hakmem-bench-result ')
case "$line" in
*check=ok*" timed_"*|*" timed_"*check=ok*) echo "FAIL: timed_* without HAKMEM_STATS: $line"; failed=$((failed + 1)) ;;
*check=ok*) ;;
*) echo "FAIL: mixed under hakmem without HAKMEM_STATS: $line"; failed=$((failed + 1)) ;;
esac
echo "workloads: $((runs - failed)) passed, $failed failed"
[ "$failed" -eq 0 ]
