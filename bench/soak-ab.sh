#!/bin/sh
# Soak A/B: bench/soak under hakmem and under a reference allocator, side by
# side for the same seconds, so that a drift of the machine (other guests,
# frequency) shows in both and cancels in their ratio.
#
# usage: soak-ab.sh SOAK HAKMEM_LIB SECONDS [THREADS [REFERENCE]]
#   REFERENCE: a library to preload, by path or soname (default
#   libmimalloc.so.2, found by the dynamic loader like the sweep does).
# Prints each run's result line, then one line:
#   soak-ab seconds=S hakmem_rss_drift_pct=X ref_rss_drift_pct=Y
#     hakmem_tput_drift_pct=X ref_tput_drift_pct=Y ratio_drift_pct=Z
# where ratio_drift_pct is the change of hakmem/reference throughput between
# the first and the last quarter of the samples (after a warm-up quarter,
# as in bench/soak).  Exit 0; 2 on bad usage or a failed run.
set -u
soak=$1 lib=$2 seconds=$3 threads=${4:-2} ref=${5:-libmimalloc.so.2}
if [ ! -x "$soak" ] || [ ! -f "$lib" ]; then
    echo "usage: soak-ab.sh SOAK HAKMEM_LIB SECONDS [THREADS [REFERENCE]]" >&2
    exit 2
fi
dir=$(mktemp -d) || exit 2
trap 'rm -rf "$dir"' EXIT

LD_PRELOAD=$lib "$soak" --threads "$threads" --seconds "$seconds" >"$dir/a.out" 2>"$dir/a.err" &
a=$!
LD_PRELOAD=$ref "$soak" --threads "$threads" --seconds "$seconds" >"$dir/b.out" 2>"$dir/b.err" &
b=$!
st=0
wait $a || st=$?
wait $b || st=$?
cat "$dir/a.out" "$dir/b.out"
if [ $st -ne 0 ] || ! grep -q '^hakmem-bench-result' "$dir/a.out" || ! grep -q '^hakmem-bench-result' "$dir/b.out"; then
    echo "soak-ab: a run failed (exit $st)" >&2
    tail -3 "$dir/a.err" "$dir/b.err" >&2
    exit 2
fi

field() { tr ' ' '\n' <"$1" | sed -n "s/^$2=//p"; }
samples() { sed -n 's/^soak: t=[0-9.]*s ops\/s=\([0-9.]*\) .*/\1/p' "$1"; }
samples "$dir/a.err" >"$dir/a.tp"
samples "$dir/b.err" >"$dir/b.tp"
ratio=$(paste "$dir/a.tp" "$dir/b.tp" | awk '
    NF == 2 && $2 > 0 { r[n++] = $1 / $2 }
    END {
        q = int(n / 4)
        if (q < 1) { print "nan"; exit }
        for (i = q; i < 2 * q; i++) f += r[i]
        for (i = n - q; i < n; i++) l += r[i]
        printf "%.2f", (l / q - f / q) / (f / q) * 100
    }')
echo "soak-ab seconds=$seconds threads=$threads reference=$ref" \
     "hakmem_rss_drift_pct=$(field "$dir/a.out" rss_drift_pct) ref_rss_drift_pct=$(field "$dir/b.out" rss_drift_pct)" \
     "hakmem_tput_drift_pct=$(field "$dir/a.out" tput_drift_pct) ref_tput_drift_pct=$(field "$dir/b.out" tput_drift_pct)" \
     "ratio_drift_pct=$ratio"
