#!/bin/sh
# libhakmem.so exports the hak_ API and the malloc family, nothing of its
# internals: the library is built with hidden visibility, and an exported
# hk_ function would be replaced by any program defining one of that name.
top_builddir=${top_builddir:-.}
lib=$top_builddir/src/.libs/libhakmem.so
if [ ! -f "$lib" ]; then
    echo "exports.sh: SKIP: $lib is not built (static-only build?)"
    exit 77
fi
command -v nm >/dev/null 2>&1 || { echo "exports.sh: SKIP: nm is not installed"; exit 77; }
syms=$(nm -D --defined-only "$lib" | awk '{ print $3 }' | sort)
status=0
internal=$(echo "$syms" | grep -v -E '^(hak_[a-z_0-9]+|__libc_(malloc|free|calloc|realloc|memalign|valloc|pvalloc)|__posix_memalign|malloc|free|calloc|realloc|reallocarray|posix_memalign|aligned_alloc|memalign|valloc|pvalloc|malloc_usable_size|free_sized|free_aligned_sized|cfree|mallinfo|mallinfo2|malloc_stats|malloc_trim|mallopt|malloc_info)$')
if [ -n "$internal" ]; then
    echo "FAIL: exported beyond the API: $(echo $internal)"
    status=1
fi
# Every function hakmem.h declares is exported (in the sanitizer builds the
# malloc family is not, but the hak_ API is).
for fn in $(grep -o 'hak_[a-z_]*(' "${top_srcdir:-.}/src/hakmem.h" | tr -d '(' | sort -u); do
    echo "$syms" | grep -qx "$fn" || { echo "FAIL: hakmem.h declares $fn, the library does not export it"; status=1; }
done
[ $status -eq 0 ] && echo "ok: $(echo "$syms" | wc -l) exported symbols, all API"
# Its writable data stays small: programs that scan every library's data
# as roots (Boehm GC: guile) scan all of it at every collection, and
# mlockall() locks it.  The pointer map was once 64 MiB of BSS there.
if command -v size >/dev/null 2>&1; then
    rw=$(size -A "$lib" | awk '$1 == ".data" || $1 == ".bss" || $1 == ".tbss" { n += $2 } END { print n + 0 }')
    if [ "$rw" -gt 1048576 ]; then
        echo "FAIL: $rw bytes of writable data (.data, .bss), more than 1 MiB"
        status=1
    else
        echo "ok: $rw bytes of writable data"
    fi
else
    echo "skip: writable data size: size(1) is not installed"
fi
exit $status
