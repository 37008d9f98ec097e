#!/bin/sh
# Under transparent huge pages' "always" mode hakmem asks the kernel not to
# back its SuperSlabs with huge pages (MADV_NOHUGEPAGE), which would make
# each 2 MiB resident at its first touch; in "madvise" mode it asks nothing.
# The mode is shown to the library through a file bind-mounted over
# /sys/kernel/mm/transparent_hugepage/enabled in a private mount namespace,
# so both are checked whatever this machine's mode; tests/thp_prog.c reads
# the "nh" flag of the mappings that hold its threads' blocks.
top_builddir=${top_builddir:-.}
top_srcdir=${top_srcdir:-.}
CC=${CC:-cc}
test_name=thp.sh
. "$top_srcdir/tests/preloadable.sh"
knob=/sys/kernel/mm/transparent_hugepage/enabled
if [ ! -f "$knob" ]; then
    echo "thp.sh: SKIP: $knob is missing (a kernel without transparent huge pages)"
    exit 77
fi
tmp=$(mktemp -d) || exit 1
trap 'rm -rf "$tmp"' EXIT
if ! unshare -m sh -c "mount --bind /dev/null $knob" 2>"$tmp/unshare.err"; then
    echo "thp.sh: SKIP: cannot bind-mount over $knob in a private mount namespace (not root, or no unshare): $(cat "$tmp/unshare.err")"
    exit 77
fi
libdir=$(dirname "$lib")
if ! $CC -O1 -pthread "$top_srcdir/tests/thp_prog.c" -o "$tmp/prog" 2>"$tmp/cc.err"; then
    cat "$tmp/cc.err"
    echo "FAIL: cannot build tests/thp_prog.c"
    exit 1
fi
status=0
for mode in always madvise; do
    case $mode in
    always) echo "[always] madvise never" >"$tmp/$mode" ;;
    madvise) echo "always [madvise] never" >"$tmp/$mode" ;;
    esac
    out=$(unshare -m sh -c 'mount --bind "$1" "$2" && LD_PRELOAD="$3" "$4"' sh "$tmp/$mode" "$knob" "$lib" "$tmp/prog")
    echo "$mode: $out"
    set -- $out  # mappings N nh N huge_kb N
    if [ "$1" != mappings ] || [ "$2" -lt 1 ]; then
        echo "FAIL: $mode: no mapping of the blocks found"
        status=1
    elif [ $mode = always ] && { [ "$4" -ne "$2" ] || [ "$6" -ne 0 ]; }; then
        echo "FAIL: always: $4 of the $2 mappings opted out of huge pages, $6 kB in huge pages"
        status=1
    elif [ $mode = madvise ] && [ "$4" -ne 0 ]; then
        echo "FAIL: madvise: hakmem asked for no huge pages, a call this mode does not need"
        status=1
    fi
done
[ $status -eq 0 ] && echo "ok: SuperSlabs opt out of huge pages in \"always\" mode only"
exit $status
