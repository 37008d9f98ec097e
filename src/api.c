/* The hak_ entry points: the malloc family with glibc's edge-case semantics. */
#include "hakmem.h"
#include "hk_api.h"
#include "hk_large.h"
#include "hk_error.h"
#include "hk_options.h"
#include "hk_numa.h"
#include "hk_stats.h"
#include <errno.h>
#include <string.h>

/* The fast paths' entry points start a cache line: where a change elsewhere
 * happened to leave them moved bench/threadtest's CPU time by 2-4%. */
hk_public hk_line_aligned void *hak_malloc(size_t size) { return hk_alloc(size, false); }

hk_public hk_line_aligned void hak_free(void *p) { hk_free(p, "free"); }

hk_public hk_line_aligned void *hak_calloc(size_t n, size_t size)
{
    size_t total;
    if (hk_unlikely(__builtin_mul_overflow(n, size, &total))) {
        errno = ENOMEM;
        return NULL;
    }
    return hk_alloc(total, true);
}

/* The header of p's large block, or NULL when p is in a SuperSlab of small
 * blocks; aborts naming `fn` when p is in no chunk of ours.  A block
 * aligned beyond half a chunk starts on a chunk that has no header of its
 * own (its chunk is not in the map): found through the big-alignment
 * registry. */
static struct hk_ss *large_header(const void *p, const char *fn)
{
    struct hk_ss *ss = hk_ss_of(p);
    if (hk_unlikely(!hk_ssmap_test((uintptr_t)ss))) {
        ss = hk_large_lookup_big(p);
        if (ss == NULL)
            hk_fatal_ptr(fn, "invalid pointer", p);
        return ss;
    }
    return ss->kind == HK_SS_LARGE ? ss : NULL;
}

/* Usable bytes from p on, validating p (aborts naming `fn`). */
static size_t usable(const void *p, const char *fn)
{
    struct hk_ss *big = large_header(p, fn);
    if (big != NULL)
        return hk_large_usable(big, p, fn);
    struct hk_slab *s = hk_slab_of(hk_ss_of(p), p);
    if (hk_unlikely(s == &hk_slab_empty))
        hk_fatal_ptr(fn, "invalid pointer", p);
    hk_slab_block_of(s, (void *)p, fn);
    return s->bsize;
}

hk_public size_t hak_malloc_usable_size(const void *p)
{
    return p == NULL ? 0 : usable(p, "malloc_usable_size");
}

/* A large block made here rather than by hk_alloc: aligned, or with room
 * to grow (`room`, realloc's), counted as hk_alloc counts its own. */
static void *large_alloc(size_t size, size_t align, bool room)
{
    struct hk_heap *h = hk_heap_get();
    void *p = hk_large_alloc(size, align, false, room, h == &hk_heap_empty ? hk_numa_current_node() : h->node);
    if (p != NULL && h != &hk_heap_empty) {
        HK_STAT_INC(h, large_alloc);
        hk_heap_count_alloc(h);
    } else if (p != NULL && HK_COUNTING) {
        /* No heap (a thread past its TSD destructors): counted as its free
         * will be (free.c), or frees would outnumber these (helper 43). */
        ck_pr_inc_64(&hk_heapless_stats.large_alloc);  /* statistic: relaxed */
        ck_pr_inc_64(&hk_heapless_stats.malloc);       /* statistic: relaxed */
    }
    return p;
}

hk_public void *hak_realloc(void *p, size_t size)
{
    if (p == NULL)
        return hk_alloc(size, false);
    if (size == 0) {  /* glibc: free the block, return NULL */
        hk_free(p, "realloc");
        return NULL;
    }
    size_t have = usable(p, "realloc");
    struct hk_ss *big = have > HK_SMALL_MAX || size > HK_SMALL_MAX ? large_header(p, "realloc") : NULL;
    if (big != NULL && size > HK_SMALL_MAX) {
        /* Within the mapping, growing or shrinking; else a bigger mapping. */
        if (hk_large_resize(big, p, size) != NULL)
            return p;
        void *moved = hk_large_grow(big, size);
        if (moved != NULL)
            return moved;
    } else if (size <= have && (size > have / 2 || have <= 16)) {
        return p;  /* the block still fits without wasting half of it */
    } else if (have > HK_SMALL_MAX && size > HK_SMALL_MAX && size <= HK_UNIT_BLOCK_MAX && hk_unit_block_resize(p, size)) {
        return p;
    }
    int saved = errno;
    /* A block moving up to a large one starts a growth chain, mostly: it
     * gets room to grow in place, which malloc's large blocks do not. */
    void *q = size > HK_UNIT_BLOCK_MAX ? large_alloc(size, 0, true) : hk_alloc(size, false);
    if (q == NULL) {
        if (size > have)
            return NULL;  /* errno is ENOMEM, p untouched */
        /* A shrink fails only for want of a smaller block: p holds it
         * (helper 46: every shrink failed at the mapping limit). */
        errno = saved;
        return p;
    }
    memcpy(q, p, size < have ? size : have);
    hk_free(p, "realloc");
    return q;
}

hk_public void *hak_reallocarray(void *p, size_t n, size_t size)
{
    size_t total;
    if (__builtin_mul_overflow(n, size, &total)) {
        errno = ENOMEM;
        return NULL;
    }
    return hak_realloc(p, total);
}

/* align: a power of two. */
static void *alloc_aligned(size_t align, size_t size)
{
    if (align <= 8)
        return hk_alloc(size, false);
    if (size > PTRDIFF_MAX - align) {
        errno = ENOMEM;
        return NULL;
    }
    if (align <= 16) /* every class from 16 B up has 16-aligned blocks */
        return hk_alloc(size < 16 ? 16 : size, false);
    if (size >= HK_MEDIUM_MIN && size <= HK_SMALL_MAX && align <= HK_PAGE_SIZE)
        return hk_alloc(size, false);  /* medium blocks are page-aligned */
    if (size <= HK_SMALL_MAX && align <= HK_MAX_ALIGN_SMALL) {
        /* Power-of-two classes are naturally aligned up to the slab start's
         * alignment (HK_MAX_ALIGN_SMALL). */
        size_t p2 = size <= align ? align : (size_t)1 << (64 - __builtin_clzl(size - 1));
        if (p2 <= HK_SMALL_MAX)
            return hk_alloc(p2, false);
    }
    /* Unit blocks start on a unit, and at a multiple of any alignment up
     * to 1 MiB where the units fit: a mapping of its own per block cost
     * the helper's random alignments of 16 B-2 MiB 3.5 s against
     * mimalloc's 0.9 (an mmap each: the cache takes page alignments). */
    if (hk_unit_block_fits(size, align))
        return hk_malloc_unit_aligned(size, align);
    return large_alloc(size, align, false);
}

static bool pow2(size_t x) { return x != 0 && (x & (x - 1)) == 0; }

hk_public int hak_posix_memalign(void **out, size_t align, size_t size)
{
    if (!pow2(align) || align % sizeof(void *) != 0)
        return EINVAL;
    int saved = errno;
    void *p = alloc_aligned(align, size);
    if (p == NULL) {
        errno = saved;
        return ENOMEM;
    }
    *out = p;
    return 0;
}

hk_public void *hak_aligned_alloc(size_t align, size_t size)
{
    if (!pow2(align)) {
        errno = EINVAL;
        return NULL;
    }
    return alloc_aligned(align, size);
}

hk_public void *hak_memalign(size_t align, size_t size)
{
    /* glibc: small alignments are plain malloc, others round up to a power
     * of two; beyond half the address space is EINVAL. */
    if (align > SIZE_MAX / 2 + 1) {
        errno = EINVAL;
        return NULL;
    }
    if (align <= 8)
        return hk_alloc(size, false);
    if (!pow2(align))
        align = (size_t)1 << (64 - __builtin_clzl(align - 1));
    return alloc_aligned(align, size);
}

hk_public void *hak_valloc(size_t size) { return alloc_aligned(HK_PAGE_SIZE, size); }

hk_public void *hak_pvalloc(size_t size)
{
    if (size > PTRDIFF_MAX) {
        errno = ENOMEM;
        return NULL;
    }
    size_t rounded = (size + HK_PAGE_SIZE - 1) & ~(HK_PAGE_SIZE - 1);
    return alloc_aligned(HK_PAGE_SIZE, rounded ? rounded : HK_PAGE_SIZE);
}

hk_public void hak_free_sized(void *p, size_t size)
{
    (void)size;  /* the block knows its class; a wrong size is not worth a lookup */
    hk_free(p, "free_sized");
}

hk_public void hak_free_aligned_sized(void *p, size_t align, size_t size)
{
    (void)align;
    (void)size;
    hk_free(p, "free_aligned_sized");
}

/* The core is usable from the first malloc on; the NUMA topology comes once
 * constructors run, when hwloc's own allocations find hakmem ready. */
__attribute__((constructor)) static void hk_init_ctor(void)
{
    hk_process_init();
    hk_stats_init();
    hk_numa_init(hk_opt.topology);
    hk_heap_numa_ready();
}

#ifndef HK_NO_OVERRIDE
#include "hk_override.h"
#endif
