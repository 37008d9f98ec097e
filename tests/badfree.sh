#!/bin/sh
# Invalid and double frees: each must abort (SIGABRT) with hakmem's message
# naming the very pointer the helper printed.
helper=${top_builddir:-.}/tests/badfree
[ -x "$helper" ] || { echo "badfree.sh: SKIP: helper $helper not built"; exit 77; }
tmp=$(mktemp -d) || exit 1
trap 'rm -rf "$tmp"' EXIT
ulimit -c 0 2>/dev/null # the aborts are expected: no core files

failures=0
# The FAST build checks only the SuperSlab map and the double-free key on
# free (HK_VALIDATE 0 in src/hk_config.h): a pointer into the middle of a
# small block goes unnoticed there by design.
fast=
grep -q '^#define HK_FAST 1' "${top_builddir:-.}/config.h" 2>/dev/null && fast=yes
# check MODE FUNCTION KINDS: KINDS is a |-separated list of accepted kinds.
check() {
    mode=$1 fn=$2 kinds=$3
    "$helper" "$mode" >"$tmp/out" 2>"$tmp/err"
    status=$?
    ptr=$(head -n 1 "$tmp/out")
    msg=$(grep -E "^hakmem: $fn: ($kinds) 0x[0-9a-fA-F]+" "$tmp/err" | head -n 1)
    got=$(printf '%s\n' "$msg" | sed -n 's/.* 0x\([0-9a-fA-F]*\).*/\1/p')
    want=$(printf '%s\n' "$ptr" | sed -n 's/^0x\([0-9a-fA-F]*\)$/\1/p')
    if [ "$status" -ne 134 ]; then
        reason="exit status $status, expected 134 (SIGABRT)"
    elif [ -z "$msg" ]; then
        reason="no 'hakmem: $fn: ($kinds) 0x...' line on stderr"
    elif [ -z "$want" ] || [ $((0x$got)) -ne $((0x$want)) ]; then
        reason="message names 0x$got, the pointer was $ptr"
    else
        echo "ok: $mode: $msg"
        return
    fi
    failures=$((failures + 1))
    echo "FAIL: $mode: $reason"
    sed 's/^/  stdout: /' "$tmp/out"
    sed 's/^/  stderr: /' "$tmp/err"
}

check stack free 'invalid pointer'
check global free 'invalid pointer'
if [ -n "$fast" ]; then
    echo "skip: interior-small: FAST build, free does not validate block boundaries"
else
    check interior-small free 'invalid pointer'
fi
check interior-large free 'invalid pointer'
check mmap free 'invalid pointer'
check low-address free 'invalid pointer'
check realloc-stack realloc 'invalid pointer'
check realloc-interior realloc 'invalid pointer'
check free-unit free 'invalid pointer'
check double-small free 'double free'
check double-tiny free 'double free'
check double-own-cached free 'double free'  # FAST too: the cache's key (free.c: hk_free_owner_slow)
# 16-byte blocks share their lines, so no thread caches another's (slab.c:
# rc_keeps): their remote frees are batched, and the FAST build, which
# looks for no batch's mark, skips them as it skips the batched modes below.
if [ -n "$fast" ]; then
    echo "skip: double-remote-tiny (its blocks batched): FAST build, a remote free does not look for blocks freed already"
else
    check double-remote-tiny free 'double free'
fi
check double-remote free 'double free'
check double-remote-quiet free 'double free'
check double-remote-between free 'double free'
check double-remote-two free 'double free'  # the second thread finds the first's cache key
export HAKMEM_REMOTE_CACHE=0  # the same, batched
# Caught at the second free only by its look at the block's key word,
# which the FAST build skips: every block here is batched.  (Until session
# 12 the owner's walk of its inbox caught double-remote in FAST builds too;
# blocks of a current slab now go home without a walk, and since session 26
# so do the chains of other slabs' blocks.)
for mode in double-remote double-remote-quiet double-remote-between double-remote-two double-remote-two-large \
            double-remote-two-unit double-remote-left double-taken-back double-taken-back-remote \
            double-inbox double-inbox-remote; do
    if [ -n "$fast" ]; then
        echo "skip: $mode (its blocks batched): FAST build, a remote free does not look for blocks freed already"
    else
        check $mode free 'double free'
    fi
done
unset HAKMEM_REMOTE_CACHE
# The owner and another thread free one block: each order, the block in the
# other thread's cache or batch, or on the owner's inbox, or on its slab's
# list.  The FAST build looks at no mark but its slab's key.
for mode in double-then-owner double-then-owner-gone double-then-owner-medium double-then-owner-medium-gone \
            double-then-owner-unit double-then-owner-unit-gone double-owner-first double-owner-first-medium; do
    if [ -n "$fast" ]; then
        echo "skip: $mode: FAST build, frees do not look for blocks freed by another thread"
    else
        check $mode free 'double free'
        export HAKMEM_REMOTE_CACHE=0
        check $mode free 'double free'
        unset HAKMEM_REMOTE_CACHE
    fi
done
# A freed large block may already be unmapped, and then it is simply not
# hakmem's any more; a freed unit block's units head no slab: either
# message tells the truth.
check double-large free 'double free|invalid pointer'
check double-unit free 'double free|invalid pointer'
check double-owner-first-unit free 'double free|invalid pointer'

echo "badfree: $failures failed"
[ "$failures" -eq 0 ]
