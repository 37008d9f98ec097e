/* glibc's extensions to the malloc family, for programs that call them with
 * hakmem in place: glibc's own would trim, count and print its arena, which
 * holds none of the program's blocks.  Sanitizer builds (HK_NO_OVERRIDE)
 * leave the whole family, these included, to the sanitizer. */
#include "hakmem.h"
#include "hk_os.h"
#include "hk_large.h"
#include "hk_stats.h"
#include <ck_pr.h>
#include <limits.h>
#include <malloc.h>

#ifndef HK_NO_OVERRIDE

/* 1 when memory went back to the OS, as glibc.  pad is how much glibc
 * keeps at its heap's top; hakmem has no heap top. */
hk_public int malloc_trim(size_t pad)
{
    (void)pad;
    uint64_t before = ck_pr_load_64(&hk_os_stats.committed);
    hak_collect();
    return ck_pr_load_64(&hk_os_stats.committed) < before;
}

hk_public void malloc_stats(void) { hak_stats_print(); }

/* glibc's fields, as far as hakmem has them (see hakmem(3)): arena is what
 * the OS backs, uordblks what is in use at slab granularity, fordblks the
 * rest; large blocks are glibc's mmapped chunks (hblks, hblkhd). */
hk_public struct mallinfo2 mallinfo2(void)
{
    uint64_t committed = ck_pr_load_64(&hk_os_stats.committed);
    uint64_t used = hk_stats_bytes_in_use();
    struct mallinfo2 m = { 0 };
    m.arena = committed;
    m.uordblks = used;
    m.fordblks = committed > used ? committed - used : 0;
    m.hblks = hk_large_live_count();
    m.hblkhd = hk_large_live_bytes();
    return m;
}

static int clamp(size_t v) { return v > INT_MAX ? INT_MAX : (int)v; }

/* The int-sized original: values above INT_MAX read INT_MAX (glibc's wrap). */
hk_public struct mallinfo mallinfo(void)
{
    struct mallinfo2 m2 = mallinfo2();
    struct mallinfo m = { 0 };
    m.arena = clamp(m2.arena);
    m.uordblks = clamp(m2.uordblks);
    m.fordblks = clamp(m2.fordblks);
    m.hblks = clamp(m2.hblks);
    m.hblkhd = clamp(m2.hblkhd);
    return m;
}

#endif
