#!/bin/sh
# tests/large_moves (large blocks moved, copied and unmapped when the kernel
# refuses) on this machine's kernel, with the large-mapping cache and
# without: without it every free of a large block unmaps.
# tests/vm/large-moves.sh runs the same program on Debian's kernel.
set -u
prog=${top_builddir:-.}/tests/large_moves
status=0
"$prog" || status=1
HAKMEM_LARGE_CACHE_MB=0 "$prog" || status=1
exit $status
