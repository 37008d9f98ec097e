/* White-box: the free path's block check, hk_slab_is_block and its copy for
 * other threads, hk_slab_is_block_shared (one multiply and one compare),
 * against the plain definition -- the offset from the slab's first block is
 * a multiple of the block size and below the carved frontier, counted here
 * from the blocks each refill carves -- for every class, every byte around a
 * slab, every frontier the carving passes, in unit 0 (after the header) and
 * in a later unit.  Linked to the static library for the internal
 * functions. */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>
#include "hk_slab.h"

static struct hk_heap heap;

static unsigned check_slab(struct hk_ss *ss, unsigned unit, unsigned cls, unsigned n)
{
    memset(ss, 0, HK_SS_HDR_SIZE);
    ss->kind = HK_SS_SMALL;
    ss->free_units = 0xffffffffu;
    hk_slab_init_owner(&heap, ss, unit, cls, n);
    struct hk_slab *s = &ss->slabs[unit];
    /* Another thread's double-free check computes the list's key from the
     * descriptor's address (free.c: freed_elsewhere). */
    cr_assert_eq(hk_slab_key(s), s->free_key, "class %u, unit %u: computed key differs", cls, unit);
    if (s->bsize >= HK_MEDIUM_MIN)
        cr_assert_eq(s->start % HK_PAGE_SIZE, 0, "class %u, unit %u: medium slab not on a page", cls, unit);
    uintptr_t base = (uintptr_t)ss + ((uintptr_t)unit << HK_UNIT_SHIFT);
    uintptr_t end = base + ((uintptr_t)s->units << HK_UNIT_SHIFT);
    unsigned frontiers = 0;
    uint64_t carved = 0;  /* bytes, from the first block */
    do {
        for (uintptr_t p = base - 20000; p < end + 64; p++) {
            int64_t off = (int64_t)(p - s->start);
            bool want = off >= 0 && (uint64_t)off % s->bsize == 0 && (uint64_t)off < carved;
            if (hk_slab_is_block(s, (void *)p) != want || hk_slab_is_block_shared(s, (void *)p) != want)
                cr_assert_fail("class %u (%u B), unit %u, carved %lu: offset %ld judged %d", cls, s->bsize, unit,
                               (unsigned long)carved, (long)off, !want);
        }
        if (carved > 0) {
            /* A flag in the owner tag closes the gate, clearing it opens it. */
            s->owner_tag |= HK_SLAB_FULL;
            hk_slab_gate_owner(s);
            cr_assert(!hk_slab_is_block(s, (void *)s->start), "class %u: full slab's gate open", cls);
            cr_assert(hk_slab_is_block_shared(s, (void *)s->start), "class %u: shared check gated", cls);
            s->owner_tag &= ~HK_SLAB_FULL;
            hk_slab_gate_owner(s);
            cr_assert(hk_slab_is_block(s, (void *)s->start), "class %u: gate stayed closed", cls);
        }
        frontiers++;
        s->free = NULL;  /* make the next refill carve */
        if (!hk_slab_refill_owner(s))
            break;
        for (struct hk_block *b = s->free; b != NULL; b = b->next)
            carved += s->bsize;
    } while (true);
    cr_assert_eq(carved / s->bsize, s->reserved, "class %u: carving stopped early", cls);
    return frontiers;
}

Test(slab_check, every_class_offset_and_frontier)
{
    struct hk_ss *ss = aligned_alloc(HK_SS_SIZE, HK_SS_SIZE);
    cr_assert_not_null(ss);
    unsigned frontiers = 0;
    for (unsigned cls = 0; cls < HK_CLASSES; cls++) {
        frontiers += check_slab(ss, 0, cls, hk_class_units[cls]);
        frontiers += check_slab(ss, 4, cls, hk_class_units[cls]);
    }
    /* Unit blocks: one block of the whole slab, from unit 1 on. */
    for (unsigned n = 1; n < HK_UNITS; n++) {
        cr_assert_eq(check_slab(ss, 1, HK_CLASS_UNITS, n), 2, "unit block of %u units", n);
        cr_assert_eq(ss->slabs[1].bsize, n * HK_UNIT_SIZE, "unit block of %u units", n);
    }
    cr_log_info("%u frontiers checked", frontiers);
    cr_assert_gt(frontiers, 2 * HK_CLASSES);
}

/* HK_LUT_CLASSES (the classes served through direct[], and the remote-block
 * cache's pseudo-slabs) must be exactly the classes up to HK_LUT_MAX. */
Test(slab_check, lut_classes_constant)
{
    cr_assert_eq(hk_size_class(HK_LUT_MAX), HK_LUT_CLASSES - 1, "class of HK_LUT_MAX");
    cr_assert_eq(hk_class_size[HK_LUT_CLASSES - 1], HK_LUT_MAX, "size of the last direct class");
    cr_assert_gt(hk_class_size[HK_LUT_CLASSES], HK_LUT_MAX, "the next class is past the table");
}

/* The medium classes: HK_MEDIUM_FIRST is the class of HK_MEDIUM_MIN, the
 * last class is HK_SMALL_MAX, and every medium class is whole pages (their
 * slabs start on a page: page-aligned blocks, see check_slab). */
Test(slab_check, medium_classes_constant)
{
    cr_assert_eq(hk_size_class(HK_MEDIUM_MIN), HK_MEDIUM_FIRST, "class of HK_MEDIUM_MIN");
    cr_assert_eq(hk_class_size[HK_MEDIUM_FIRST - 1], HK_MEDIUM_MIN - 1, "the last class below the medium ones");
    cr_assert_eq(hk_class_size[HK_CLASSES - 1], HK_SMALL_MAX, "the last class");
    for (unsigned c = HK_MEDIUM_FIRST; c < HK_CLASSES; c++)
        cr_assert_eq(hk_class_size[c] % HK_PAGE_SIZE, 0, "medium class %u: %u B", c, hk_class_size[c]);
}

/* The class of every small size is the smallest class that holds it: the
 * table up to HK_LUT_MAX and the bit scan above it agree with the sizes. */
Test(slab_check, size_class_is_smallest_fit)
{
    for (size_t n = 1; n <= HK_SMALL_MAX; n++) {
        unsigned c = hk_size_class(n);
        cr_assert_lt(c, HK_CLASSES, "class of %zu out of range", n);
        cr_assert_geq(hk_class_size[c], n, "size %zu in class %u of %u B", n, c, hk_class_size[c]);
        cr_assert(c == 0 || hk_class_size[c - 1] < n, "size %zu fits class %u below its %u", n, c - 1, c);
    }
}
