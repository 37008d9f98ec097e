/* The size-class table and what it promises for every request size: bounded
 * internal waste, usable size, and the alignment objects of that size need. */
#include <criterion/criterion.h>
#include <stdint.h>
#include "hakmem.h"
#include "testutil.h"

Test(sizeclass, table_shape)
{
    unsigned count = hak_size_class_count();
    cr_assert_gt(count, 1, "size-class count %u", count);
    /* 16 B: room for the link and the double-free key of a free block. */
    cr_assert_eq(hak_size_class_size(0), 16, "first class is %zu, expected 16",
                 hak_size_class_size(0));
    for (unsigned c = 0; c < count; c++) {
        size_t s = hak_size_class_size(c);
        cr_assert_eq(s % 16, 0, "class %u size %zu is not a multiple of 16", c, s);
        if (c > 0)
            cr_assert_gt(s, hak_size_class_size(c - 1),
                         "class %u (%zu) not above class %u (%zu)", c, s, c - 1,
                         hak_size_class_size(c - 1));
    }
    cr_assert_geq(hak_size_class_size(count - 1), 32768,
                  "largest class %zu is below 32 KiB", hak_size_class_size(count - 1));
    cr_assert_eq(hak_size_class_size(count), 0, "out-of-range class must read as 0");
    cr_assert_eq(hak_size_class_size(~0u), 0, "out-of-range class must read as 0");
}

/* Every request from 129 B to 32 KiB wastes at most 1/8 of itself; below,
 * where classes step by 16 for the alignment, at most 15 B (as glibc's
 * 16-byte chunk steps); above, in the medium classes, at most 1/4 (as
 * jemalloc's and mimalloc's classes of those sizes). */
Test(sizeclass, waste_at_most_one_eighth)
{
    unsigned count = hak_size_class_count();
    size_t max = hak_size_class_size(count - 1);
    cr_assert_geq(max, 128 * 1024, "largest class %zu is below 128 KiB", max);
    unsigned c = 0;
    for (size_t r = 1; r <= max; r++) {
        while (hak_size_class_size(c) < r)
            c++;
        size_t s = hak_size_class_size(c);
        if (r <= 128)
            cr_assert_leq(s - r, 15, "request %zu lands in class %zu: waste %zu B > 15 B", r, s, s - r);
        else if (r <= 32768)
            cr_assert_leq((s - r) * 8, r, "request %zu lands in class %zu: waste %.1f%% > 12.5%%", r, s,
                          100.0 * (double)(s - r) / (double)r);
        else
            cr_assert_leq((s - r) * 4, r, "request %zu lands in class %zu: waste %.1f%% > 25%%", r, s,
                          100.0 * (double)(s - r) / (double)r);
    }
}

/* Every request size up to just past the largest class: a few live blocks
 * each, usable size covers the request, and 16-byte alignment for every
 * size, as glibc gives (compilers assume it of operator new: clang's code stores
 * 16 bytes with movaps at offset 16 of a new 40-byte object). */
Test(sizeclass, every_size_usable_and_aligned)
{
    size_t max = hak_size_class_size(hak_size_class_count() - 1);
    enum { K = 4 };
    for (size_t n = 1; n <= max + 64; n++) {
        void *p[K];
        size_t need = 16;
        for (int k = 0; k < K; k++) {
            p[k] = hak_malloc(n);
            cr_assert_not_null(p[k], "malloc(%zu) failed", n);
            cr_assert_eq((uintptr_t)p[k] % need, 0, "malloc(%zu) = %p not %zu-aligned",
                         n, p[k], need);
            size_t u = hak_malloc_usable_size(p[k]);
            cr_assert_geq(u, n, "malloc_usable_size(malloc(%zu)) = %zu", n, u);
            ((unsigned char *)p[k])[0] = 1;
            ((unsigned char *)p[k])[u - 1] = 2;
        }
        for (int k = 0; k < K; k++)
            hak_free(p[k]);
    }
}

/* Each class size itself: blocks are 16-byte aligned (every class is a
 * multiple of 16). */
Test(sizeclass, class_blocks_aligned)
{
    unsigned count = hak_size_class_count();
    enum { K = 64 };
    void *p[K];
    for (unsigned c = 0; c < count; c++) {
        size_t s = hak_size_class_size(c);
        size_t need = 16;
        for (int k = 0; k < K; k++) {
            p[k] = hak_malloc(s);
            cr_assert_not_null(p[k], "malloc(%zu) failed", s);
            cr_assert_eq((uintptr_t)p[k] % need, 0,
                         "class %u: block %d of size %zu at %p not %zu-aligned", c, k, s,
                         p[k], need);
        }
        for (int k = 0; k < K; k++)
            hak_free(p[k]);
    }
}
