/* glibc's extensions to the malloc family, for programs that call them with
 * hakmem in place: glibc's own would trim, count and print its arena, which
 * holds none of the program's blocks.  Every name glibc's malloc.o defines
 * for programs is defined here too: a static link that needed one of them
 * would take glibc's malloc.o from libc.a, whose malloc clashes with ours.
 * Sanitizer builds (HK_NO_OVERRIDE) leave the whole family, these included,
 * to the sanitizer. */
#include "hakmem.h"
#include "hk_buf.h"
#include "hk_os.h"
#include "hk_large.h"
#include "hk_stats.h"
#include <ck_pr.h>
#include <errno.h>
#include <limits.h>
#include <malloc.h>
#include <stdbool.h>
#include <stdio.h>

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

/* hakmem has none of glibc's knobs (its options are the HAKMEM_ variables,
 * read once at start-up): a request is accepted and changes nothing, as in
 * tcmalloc.  glibc too answers 1 to parameters it does not know. */
hk_public int mallopt(int param, int value)
{
    (void)param;
    (void)value;
    return 1;
}

/* <tag type="type" [count="n"] size="n"/>: glibc's elements. */
static void xml_elem(struct hk_buf *b, const char *tag, const char *type, bool counted, uint64_t count,
                     uint64_t size)
{
    hk_buf_str(b, "<");
    hk_buf_str(b, tag);
    hk_buf_str(b, " type=\"");
    hk_buf_str(b, type);
    if (counted) {
        hk_buf_str(b, "\" count=\"");
        hk_buf_u64(b, count);
    }
    hk_buf_str(b, "\" size=\"");
    hk_buf_u64(b, size);
    hk_buf_str(b, "\"/>\n");
}

/* glibc's document with its process-wide totals, from mallinfo2: hakmem's
 * per-thread heaps are not arenas, so there is no <heap> element.  Like
 * glibc (not its manual), options other than 0 return EINVAL itself. */
hk_public int malloc_info(int options, FILE *fp)
{
    if (options != 0)
        return EINVAL;
    struct mallinfo2 m = mallinfo2();
    /* A statistic: whichever recent value the load sees will do. */
    uint64_t peak = ck_pr_load_64(&hk_os_stats.peak_committed);
    char text[640]; /* about 500 bytes at most, with every number 20 digits */
    struct hk_buf b = { text, sizeof text, 0 };
    hk_buf_str(&b, "<malloc version=\"1\" allocator=\"hakmem\">\n");
    xml_elem(&b, "total", "fast", true, 0, 0);
    xml_elem(&b, "total", "rest", true, 0, m.fordblks);
    xml_elem(&b, "total", "mmap", true, m.hblks, m.hblkhd);
    xml_elem(&b, "system", "current", false, 0, m.arena);
    xml_elem(&b, "system", "max", false, 0, peak);
    xml_elem(&b, "aspace", "total", false, 0, m.arena);
    xml_elem(&b, "aspace", "mprotect", false, 0, m.arena);
    hk_buf_str(&b, "</malloc>\n");
    hk_buf_finish(&b);
    return fputs(text, fp) == EOF ? -1 : 0;
}

#endif
