# Sourced by the LD_PRELOAD tests, with $top_builddir set and $test_name
# naming the caller: sets $lib to the absolute path of the libhakmem.so to
# preload, or exits 77 (skip, saying why) when this build has none that
# replaces malloc.
lib=$top_builddir/src/.libs/libhakmem.so
if [ ! -f "$lib" ]; then
    echo "$test_name: SKIP: $lib is not built (static-only build?)"
    exit 77
fi
if grep -q '^#define HK_NO_OVERRIDE' "$top_builddir/config.h" 2>/dev/null; then
    echo "$test_name: SKIP: sanitizer build: libhakmem.so exports no malloc (HK_NO_OVERRIDE)"
    exit 77
fi
lib=$(cd "$(dirname "$lib")" && pwd)/libhakmem.so
