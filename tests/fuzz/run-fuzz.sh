#!/bin/sh
# The API fuzzer under make check: builds tests/fuzz/fuzz_api (clang's
# libFuzzer with ASan and UBSan) and runs it for FUZZ_TIME seconds (30 by
# default) from the committed corpus, in a scratch copy of it under the
# build tree.  A crash, a failed check, a leak, a timeout, or a 'hakmem:'
# message fails; the inputs that did are kept in the scratch directory.
# `make fuzz-long` runs this with FUZZ_DIR set: that corpus then persists.
# FUZZ_SAN=tsan (`make fuzz-tsan`, `make check-tsan`): the ThreadSanitizer
# build instead, tests/fuzz/fuzz_api_tsan, where any TSan report fails too.
# Skips (77) when clang or its libFuzzer runtime is missing.
set -u
: "${top_builddir:?set by make check}" "${top_srcdir:?set by make check}"
cc=${FUZZ_CC:-clang}
time=${FUZZ_TIME:-30}
case ${FUZZ_SAN:-asan} in
asan)
    bin=fuzz_api run=run sanitize=-fsanitize=fuzzer,address,undefined what='ASan and UBSan' env= runs= ;;
tsan)
    bin=fuzz_api_tsan run=run-tsan sanitize=-fsanitize=fuzzer,thread what=TSan
    # halt_on_error: the first report ends the run through libFuzzer's death
    # callback, which keeps the input.  report_signal_unsafe=0: libFuzzer's
    # crash handler allocates, and halting on that report hung the run that
    # a failed check had aborted (hakmem and the harness install no signal
    # handlers).
    TSAN_OPTIONS="halt_on_error=1 second_deadlock_stack=1 report_signal_unsafe=0 suppressions=$top_srcdir/tests/fuzz/tsan.supp"
    export TSAN_OPTIONS
    # A race shows in some interleavings only: a replay repeats the input.
    env="TSAN_OPTIONS='$TSAN_OPTIONS' " runs='-runs=100 ' ;;
*)
    echo "FUZZ_SAN=$FUZZ_SAN: asan or tsan"
    exit 99 ;;
esac
dir=$top_builddir/${FUZZ_DIR:-tests/fuzz/$run}

if ! command -v "$cc" >/dev/null 2>&1; then
    echo "SKIP: $cc not found (Debian: apt-get install clang libclang-rt-14-dev, or ./quickstart)"
    exit 77
fi
probe=$(mktemp -d) || exit 99
trap 'rm -rf "$probe"' EXIT
printf 'int LLVMFuzzerTestOneInput(const unsigned char *d, unsigned long n) { return d && n ? 0 : 0; }\n' \
    >"$probe/probe.c"
if ! "$cc" $sanitize -o "$probe/probe" "$probe/probe.c" >"$probe/log" 2>&1; then
    echo "SKIP: $cc cannot link a libFuzzer program with $what (Debian: apt-get install libclang-rt-14-dev):"
    cat "$probe/log"
    exit 77
fi

# The make rule is the one recipe for the binary; here it only gets brought up to date.
"${MAKE:-make}" -C "$top_builddir" FUZZ_CC="$cc" "tests/fuzz/$bin" || exit 99

# The short runs start afresh; the long run's corpus grows from run to run.
[ -n "${FUZZ_DIR:-}" ] || rm -rf "$dir"
mkdir -p "$dir/corpus" "$dir/crashes" || exit 99
cp "$top_srcdir"/tests/fuzz/corpus/* "$dir/corpus/" || exit 99
# The exit summary of HAKMEM_STATS would read as a hakmem message.
unset HAKMEM_STATS
log=$dir/fuzz.log
echo "$bin: ${time}s from $(ls "$dir/corpus" | wc -l) inputs in $dir/corpus"
"$top_builddir/tests/fuzz/$bin" -max_total_time="$time" -max_len=4096 -timeout=60 \
    -rss_limit_mb=2048 -print_final_stats=1 -error_exitcode=1 -timeout_exitcode=1 \
    -artifact_prefix="$dir/crashes/" "$dir/corpus" >"$log" 2>&1
rc=$?
grep '^stat::' "$log"
if [ "$rc" -ne 0 ] || grep -q -e '^hakmem: ' -e '^WARNING: ThreadSanitizer' "$log"; then
    echo "FAIL: $bin exited with status $rc; the end of $log:"
    tail -n 60 "$log"
    echo "inputs kept in $dir/crashes:"
    ls "$dir/crashes"
    echo "replay one: $env$top_builddir/tests/fuzz/$bin $runs$dir/crashes/<file>"
    exit 1
fi
# Without coverage counters the fuzzer runs blind (every input looks alike).
if ! grep -q 'inline 8-bit counters' "$log"; then
    echo "FAIL: $bin registered no coverage counters; the start of $log:"
    head -n 20 "$log"
    exit 1
fi
[ -n "${FUZZ_DIR:-}" ] || rm -rf "$dir"
exit 0
