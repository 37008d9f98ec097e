#!/bin/sh
# The API tests again under the options that route blocks another way:
# remote frees unbatched onto their slabs' own lists (HAKMEM_REMOTE_BATCH=1),
# no cache of other heaps' blocks (HAKMEM_REMOTE_CACHE=0), and empty units
# decommitted at once (HAKMEM_DECOMMIT_DELAY_MS=0).  The paths these reach
# (draining a slab's remote list, carving fresh memory, releasing slabs
# without a spare) must pass every API test, calloc's zeroing among them.
# And on two NUMA nodes of one CPU each (a synthetic hwloc topology), where
# threads the scheduler moves change node: blocks of another node go home
# uncached, and a heap whose thread moved takes new memory on its new node.
api=${top_builddir:-.}/tests/api
[ -x "$api" ] || { echo "api_options.sh: SKIP: $api not built"; exit 77; }
out=$(mktemp) || exit 99
trap 'rm -f "$out"' EXIT
status=0
for opt in HAKMEM_REMOTE_BATCH=1 HAKMEM_REMOTE_CACHE=0 HAKMEM_DECOMMIT_DELAY_MS=0 HAKMEM_REMOTE_CACHE_SHARED_LINES=1 \
    'HAKMEM_TOPOLOGY=numa:2 core:1 pu:1'; do
    echo "== $opt"
    # --verbose: the tests that need the default routing say why they skip.
    env "$opt" "$api" --verbose >"$out" 2>&1
    rc=$?
    # hakmem's own messages: a topology it could not load (then one node).
    grep -E '^\[(SKIP|FAIL)\]|Synthesis|^hakmem: ' "$out"
    [ "$rc" -eq 77 ] && { echo "api_options.sh: SKIP: tests/api skipped itself (see above)"; exit 77; }
    [ "$rc" -eq 0 ] || { cat "$out"; echo "FAIL: tests/api under $opt (status $rc)"; status=1; }
done
exit $status
