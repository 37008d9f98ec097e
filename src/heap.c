/* Heaps: one per thread, reached through an initial-exec TLS pointer.  This
 * file holds a heap's slab bookkeeping and the allocation slow path: per
 * class, the owner allocates from its current slab; other slabs with free
 * blocks wait on a partial list; full slabs are on no list at all: the first
 * remote free into one hands the block to the heap's inbox, which brings the
 * slab back into use.  A heap's life cycle (creation, thread exit, adoption,
 * sweeps, collection) is in lifecycle.c, frees in free.c, memory return in
 * reclaim.c. */
#include "hakmem.h"
#include "hk_heap_int.h"
#include "hk_api.h"
#include "hk_slab.h"
#include "hk_large.h"
#include "hk_os.h"
#include "hk_options.h"
#include "hk_error.h"
#include "hk_numa.h"
#include <errno.h>

struct hk_slab hk_slab_empty = { .ticks = HK_TICK_BASE };  /* a current slab that counts nothing */
struct hk_heap hk_heap_empty = {
    .direct = { [0 ... HK_LUT_MAX >> HK_LUT_SHIFT] = &hk_slab_empty },
    .own = { [0 ... HK_OWN_SLOTS - 1] = HK_OWN_NONE },
    .seen = { [0 ... HK_OWN_SLOTS - 1] = HK_OWN_NONE },
    .cur = { [0 ... HK_CLASSES - 1] = &hk_slab_empty },
    .remote_node = HK_NODE_NONE,
};
__thread struct hk_heap *hk_tls_heap __attribute__((tls_model("initial-exec"))) = &hk_heap_empty;

/* ---- slab and SuperSlab bookkeeping (owner only) ---- */

/* Set or clear HK_SLAB_CACHED on s, its class's current slab (not the
 * shared empty one, which no thread writes): while set, the slab's gate is
 * closed and the owner's frees of its blocks go into the class's cache
 * (free.c: hk_free_owner_gated). */
static void slab_set_cached(struct hk_slab *s, bool cached)
{
    if (s == &hk_slab_empty || ((s->owner_tag & HK_SLAB_CACHED) != 0) == cached)
        return;
    /* Other threads read the tag for its owner only, which stays. */
    ck_pr_store_64(&s->owner_tag, cached ? s->owner_tag | HK_SLAB_CACHED : s->owner_tag & ~HK_SLAB_CACHED);
    hk_slab_gate_owner(s);
}

void hk_heap_set_direct(struct hk_heap *h, unsigned cls, struct hk_slab *s)
{
    /* The direct entries of a class are the sizes between the previous
     * class and this one. */
    size_t lo = cls == 0 ? 0 : hk_lut_index(hk_class_size[cls - 1] + 1), hi = hk_lut_index(hk_class_size[cls]);
    struct hk_slab *rc = &h->rc[cls];
    /* The cache stops serving the class: its full mark back, which our
     * frees lowered meanwhile (free.c: hk_free_owner_gated). */
    if (h->direct[hi] == rc && s != rc)
        hk_rcache_set_cap(rc, rc->reserved);
    for (size_t i = lo; i <= hi; i++)
        h->direct[i] = s;
    slab_set_cached(h->cur[cls], s == rc);
}

/* The current slab of a class holds one count of `used` for itself (a
 * pin), so that it never empties on the free fast path: a class whose few
 * live blocks come and go (a batch allocated, then freed) would otherwise
 * take the empty-slab branch, mispredicted, on every turn, only to keep the
 * slab.  Emptiness of a current slab is a look at `used == HK_CUR_PIN` on
 * the slow paths. */
void hk_heap_set_cur(struct hk_heap *h, unsigned cls, struct hk_slab *s)
{
    struct hk_slab *old = h->cur[cls];
    if (old != &hk_slab_empty) {
        slab_set_cached(old, false);
        hk_slab_harvest(h, old);
        old->ticks = 0;  /* counts nothing now (see hk_slab.ticks) */
        hk_slab_set_current_owner(old, false);
        old->used -= HK_CUR_PIN;
        hk_assert(old->used > 0 || s == &hk_slab_empty);  /* only collections drop an idle one */
    }
    if (s != &hk_slab_empty) {
        hk_assert(s->lent == 0);  /* a count is shortened only while current (hk_slab_harvest) */
        s->used += HK_CUR_PIN;
        s->ticks = HK_TICK_BASE;
        hk_slab_set_current_owner(s, true);
    }
    ck_pr_store_ptr(&h->cur[cls], s);  /* the statistics read it (stats.c: sum_heaps) */
    /* Not while the class's remote-block cache has them: it is installed
     * by count (free.c: rcache_install), and its miss (rcache_drained)
     * points them at the new slab; meanwhile the new slab is the one whose
     * owner's frees go into the cache. */
    if (cls < HK_LUT_CLASSES) {
        if (h->direct[hk_lut_index(hk_class_size[cls])] == &h->rc[cls])
            slab_set_cached(s, true);
        else
            hk_heap_set_direct(h, cls, s);
    }
}

/* The thread now runs on another node: slabs of its old node get the
 * FOREIGN flag (their frees count as cross-node), slabs of the new one lose
 * it.  Rare, so a walk over every SuperSlab is fine. */
void hk_heap_rehome(struct hk_heap *h, unsigned node)
{
    h->node = node;
    if (h->remote_node != HK_NODE_NONE)
        h->remote_node = node;
    for (struct hk_ss *ss = hk_ss_registry_head(); ss != NULL; ss = ss->all_next) {
        if (ck_pr_load_ptr(&ss->heap) != h || ss->kind != HK_SS_SMALL)
            continue;
        for (unsigned u = 0; u < HK_UNITS; u++) {
            struct hk_slab *s = ss->unit_slab[u];
            if (s != &ss->slabs[u])
                continue;
            uint64_t tag = s->owner_tag & ~HK_SLAB_FOREIGN;
            ck_pr_store_64(&s->owner_tag, tag | (ss->node != node ? HK_SLAB_FOREIGN : 0));
            hk_slab_gate_owner(s);
        }
    }
}

/* A queue, as mimalloc's page queues: a slab that comes back (usually with
 * one free block, the one just freed) joins at the tail, and refills take the
 * head, which has had longest to gather free blocks. */
void hk_partial_push(struct hk_heap *h, struct hk_slab *s)
{
    struct hk_slab *tail = h->partial_tail[s->cls];
    s->next = NULL;
    s->prev = tail;
    if (tail)
        tail->next = s;
    else
        h->partial[s->cls] = s;
    h->partial_tail[s->cls] = s;
    s->in_partial = 1;
}

void hk_partial_remove(struct hk_heap *h, struct hk_slab *s)
{
    if (s->prev)
        s->prev->next = s->next;
    else
        h->partial[s->cls] = s->next;
    if (s->next)
        s->next->prev = s->prev;
    else
        h->partial_tail[s->cls] = s->prev;
    s->prev = s->next = NULL;
    s->in_partial = 0;
    if (hk_spare_of(h, s->cls) == s) {
        /* Taken back into use, or about to be released (which counts it
         * out again). */
        h->spare[s->cls] = 0;
        h->spare_count--;
        hk_slab_count_in_use(s, true);
    }
}

/* The first unit of `starts` from which n units are free. */
static unsigned find_run(uint32_t free, unsigned n, uint32_t starts)
{
    uint32_t m = free & starts;
    for (unsigned k = 1; k < n; k++)
        m &= free >> k;
    return m ? (unsigned)__builtin_ctz(m) : HK_UNITS;
}

static struct hk_slab *slab_at(struct hk_heap *h, struct hk_ss *ss, unsigned u, unsigned cls, unsigned n)
{
    hk_slab_init_owner(h, ss, u, cls, n);
    hk_avail_update(h, ss);
    HK_STAT_INC(h, slab_new);
    return &ss->slabs[u];
}

/* A new slab of n units for class cls (HK_CLASS_UNITS: a unit block's),
 * starting at one of the units `starts` has (n more units after the first
 * of them fit in a SuperSlab). */
static struct hk_slab *slab_new(struct hk_heap *h, unsigned cls, unsigned n, uint32_t starts)
{
    hk_heap_maintain(h);
    unsigned now_node = hk_numa_current_node();
    if (hk_unlikely(now_node != h->node)) {
        hk_heap_rehome(h, now_node);  /* the thread migrated: new slabs come from its new node */
        ck_pr_inc_64(&hk_node_stats[now_node].rehomes);  /* statistic: relaxed */
    }
    enum hk_numa_policy pol = hk_numa_policy();
    bool any_node = pol == HK_NUMA_INTERLEAVE || pol == HK_NUMA_OFF;
    unsigned want = pol == HK_NUMA_NODE ? hk_numa_pick_node(h->node) : h->node;
    /* The best fit: SuperSlabs whose longest free run is shortest first
     * (the longer runs stay whole for bigger slabs), then within one, units
     * still committed first (jemalloc takes dirty extents first too): a run
     * given back to the OS, or never touched, costs page faults and RSS
     * while committed ones wait to age into an madvise.  A SuperSlab whose
     * only long enough runs start elsewhere than `starts` allows is passed
     * over (unit blocks), as are those of other nodes. */
    for (uint32_t bins = h->avail_bins & (~0u << (n - 1)); bins != 0; bins &= bins - 1) {
        for (struct hk_ss *ss = h->avail[__builtin_ctz(bins)]; ss != NULL; ss = ss->next) {
            if (!any_node && ss->node != want)
                continue;
            unsigned u = find_run(ss->free_units & ss->dirty_units, n, starts);
            if (u == HK_UNITS)
                u = find_run(ss->free_units, n, starts);
            if (u < HK_UNITS)
                return slab_at(h, ss, u, cls, n);
        }
    }
    struct hk_ss *ss = hk_empty_take(h, want, any_node);
    if (ss == NULL) {
        /* Growing: first let an abandoned heap give back what waits in it
         * (lazy reclaim; its SuperSlabs may then come from the pool). */
        hk_sweep_abandoned(4);
        ss = hk_ss_acquire(h, hk_numa_pick_node(h->node));
        if (ss == NULL)
            return NULL;
    }
    return slab_at(h, ss, (unsigned)__builtin_ctz(starts), cls, n);
}

/* ---- allocation slow path ---- */

/* Make s usable: true when it has a free block.  Otherwise it is flagged
 * full, or a notification for it is in flight; either way it comes back
 * through free_local_slow when a block returns. */
static bool slab_try(struct hk_slab *s)
{
    if (hk_slab_refill_owner(s))
        return true;
    return !hk_slab_mark_full_owner(s) && hk_slab_refill_owner(s);
}

static struct hk_slab *class_refill(struct hk_heap *h, unsigned cls)
{
    struct hk_slab *s = h->cur[cls];
    if (s != &hk_slab_empty && slab_try(s))
        return s;
    while ((s = h->partial[cls]) != NULL) {
        hk_partial_remove(h, s);
        hk_heap_set_cur(h, cls, s);
        if (slab_try(s))
            return s;
    }
    s = slab_new(h, cls, hk_class_units[cls], ~0u);
    hk_heap_set_cur(h, cls, s ? s : &hk_slab_empty);
    return s != NULL && hk_slab_refill_owner(s) ? s : NULL;
}

/* The units of a unit block of `size` bytes: whole units, 4 sizes per
 * doubling as the classes below (and mimalloc's and jemalloc's of these
 * sizes): a buffer grown by realloc is copied at every size it crosses,
 * and with a size per unit, 16 buffers grown to 2 MB in 16 KiB steps took
 * 3x mimalloc's time. */
static unsigned unit_block_units(size_t size)
{
    unsigned n = (unsigned)((size + HK_UNIT_SIZE - 1) >> HK_UNIT_SHIFT);
    if (n == 0)
        n = 1;  /* memalign(65536, 0) */
    if (n > 8) {
        unsigned step = 1u << (29 - __builtin_clz(n - 1));  /* 9-16 units: 2, 17-31: 4 */
        n = (n + step - 1) & ~(step - 1);
        n = n < HK_UNITS - 1 ? n : HK_UNITS - 1;
    }
    return n;
}

/* The first unit a unit block aligned to `align` may start at: never unit
 * 0, whose header would cut the block short (and shift it off its unit's
 * alignment); beyond a unit's alignment, multiples of it. */
static unsigned unit_block_first(size_t align)
{
    return align > HK_UNIT_SIZE ? (unsigned)(align >> HK_UNIT_SHIFT) : 1;
}

bool hk_unit_block_fits(size_t size, size_t align)
{
    return size <= HK_UNIT_BLOCK_MAX && align <= HK_SS_SIZE / 2 &&
           unit_block_first(align) + unit_block_units(size) <= HK_UNITS;
}

/* A block of whole units, alone on its slab: set up, carved, taken and
 * flagged full at once, so that every free of it, the owner's and others',
 * takes the slow path, which gives the units straight back to the
 * SuperSlab (free.c: free_local_slow).  No class lists, no spare: an
 * empty slab of up to 31 units kept per class would hold megabytes. */
static void *unit_block_alloc(struct hk_heap *h, size_t size, size_t align, bool zero)
{
    unsigned n = unit_block_units(size), step = unit_block_first(align);
    uint32_t starts = 0;
    for (unsigned u = step; u < HK_UNITS; u += step)
        starts |= 1u << u;
    struct hk_slab *s = slab_new(h, HK_CLASS_UNITS, n, starts);
    if (s == NULL || !hk_slab_refill_owner(s)) {
        errno = ENOMEM;
        return NULL;
    }
    struct hk_block *b = hk_slab_take(h, s, size, zero);
    /* Cannot fail: no other thread has seen the block, so none has freed it. */
    hk_slab_mark_full_owner(s);
    hk_heap_count_alloc(h);
    return b;
}

bool hk_unit_block_resize(void *p, size_t size)
{
    struct hk_heap *h = hk_tls_heap;
    struct hk_ss *ss = hk_ss_of(p);
    struct hk_slab *s = hk_slab_of(ss, p);
    /* The class is stable while the block is out (set before it was). */
    if (s->cls != HK_CLASS_UNITS || (ck_pr_load_64(&s->owner_tag) & ~HK_SLAB_FLAGS) != (uint64_t)(uintptr_t)h)
        return false;
    unsigned n = unit_block_units(size), have = s->units, end = s->first_unit + have;
    if (n > have) {
        /* Grown into the free units that follow, if they are. */
        if (s->first_unit + n > HK_UNITS)
            return false;
        uint32_t more = ((1u << (n - have)) - 1) << end;
        if ((ss->free_units & more) != more)
            return false;
        hk_slab_take_units(ss, s, end, s->first_unit + n);
        hk_avail_update(h, ss);
        hk_slab_resize_units_owner(s, n);
        /* Counted out at the old size, its free counts the new one back. */
        HK_STAT_BYTES(h, small_bytes_alloc, (uint64_t)(n - have) << HK_UNIT_SHIFT);
    } else if (n < have) {
        /* Shrunk: the units cut off go back, cut off first. */
        hk_slab_resize_units_owner(s, n);
        HK_STAT_BYTES(h, small_bytes_freed, (uint64_t)(have - n) << HK_UNIT_SHIFT);
        for (unsigned u = s->first_unit + n; u < end; u++)
            ck_pr_store_ptr(&ss->unit_slab[u], &hk_slab_empty);
        hk_ss_units_free(h, ss, ((1u << (have - n)) - 1) << (s->first_unit + n));
    }
    return true;
}

/* align: 0, or a unit block's alignment (hk_unit_block_fits). */
static void *alloc_from(struct hk_heap *h, size_t size, size_t align, bool zero)
{
    if (h->rbatch_live != 0)
        hk_rbatch_flush(h);
    /* Every refill is a chance to hand back memory whose delay has passed:
     * a program that keeps running returns it even without slab turnover. */
    if (hk_unlikely(h->purge != NULL || h->empty != NULL))
        hk_heap_maintain(h);
    if (ck_pr_load_ptr(&h->inbox.head) != NULL)
        hk_inbox_process(h);
    if (align != 0)
        return unit_block_alloc(h, size, align, zero);
    if (size > HK_UNIT_BLOCK_MAX) {
        void *p = hk_large_alloc(size, 0, zero, false, h->node);
        if (p != NULL) {
            HK_STAT_INC(h, large_alloc);
            hk_heap_count_alloc(h);
        }
        return p;
    }
    if (size > HK_SMALL_MAX)
        return unit_block_alloc(h, size, HK_UNIT_SIZE, zero);
    unsigned cls = hk_size_class(size);
    struct hk_slab *s = class_refill(h, cls);
    if (s == NULL) {
        errno = ENOMEM;
        return NULL;
    }
    struct hk_block *b = hk_slab_take(h, s, size, zero);
    hk_heap_count_alloc(h);
    return b;
}

/* The class's remote-block cache ran dry: its direct entries go back to
 * the class's slab, which serves the allocation; the next block cached
 * installs it again (see hk_heap.rc). */
static hk_noinline void *rcache_drained(struct hk_heap *h, struct hk_slab *rc, size_t size, bool zero)
{
    struct hk_slab *s = h->cur[rc->cls];
    hk_heap_set_direct(h, rc->cls, s);
    return hk_alloc_from(h, s, size, zero);
}

void *hk_malloc_refill(size_t size, struct hk_slab *s, struct hk_heap *h, bool zero)
{
    if ((uintptr_t)s - (uintptr_t)h->rc < sizeof h->rc)
        return rcache_drained(h, s, size, zero);
    return hk_malloc_slow(size, h, zero);
}

static void *malloc_slow(struct hk_heap *h, size_t size, size_t align, bool zero)
{
    if (hk_unlikely(size > PTRDIFF_MAX)) {
        errno = ENOMEM;
        return NULL;
    }
    bool borrowed = false;
    if (hk_unlikely(h == &hk_heap_empty)) {
        h = hk_heap_take(&borrowed);
        if (h == NULL) {
            errno = ENOMEM;
            return NULL;
        }
    }
    void *p = alloc_from(h, size, align, zero);
    if (hk_unlikely(borrowed))
        hk_heap_abandon(h);  /* after the thread's exit: back at once */
    return p;
}

void *hk_malloc_slow(size_t size, struct hk_heap *h, bool zero)
{
    return malloc_slow(h, size, 0, zero);
}

void *hk_malloc_unit_aligned(size_t size, size_t align)
{
    return malloc_slow(hk_tls_heap, size, align, false);
}

/* Called once the NUMA topology is known (from the library constructor,
 * usually before any other thread exists): the caller's SuperSlabs, made
 * while every node looked like node 0 and bound to nothing, are labelled,
 * bound and moved as the policy says, and the heap homes on its real node. */
void hk_heap_numa_ready(void)
{
    struct hk_heap *h = hk_tls_heap;
    if (h == &hk_heap_empty || hk_numa_node_count() == 1)
        return;
    unsigned home = hk_numa_current_node();
    for (struct hk_ss *ss = hk_ss_registry_head(); ss != NULL; ss = ss->all_next) {
        if (ck_pr_load_ptr(&ss->heap) != h || ss->kind != HK_SS_SMALL)
            continue;
        unsigned from = ss->node, to = hk_numa_pick_node(home);
        uint64_t in_use = 0;
        for (unsigned u = 0; u < HK_UNITS; u++) {
            struct hk_slab *s = ss->unit_slab[u];
            if (s == &ss->slabs[u]) {
                in_use += (uint64_t)s->units << HK_UNIT_SHIFT;
                s->node = (uint8_t)to;
            }
        }
        ck_pr_store_32(&ss->node, to);  /* the statistics read it (stats.c: placement) */
        hk_numa_bind(ss, HK_SS_SIZE, to);
        /* Statistics move with it (relaxed adds). */
        ck_pr_dec_64(&hk_node_stats[from].superslabs);
        ck_pr_inc_64(&hk_node_stats[to].superslabs);
        uint64_t committed = hk_ss_committed(ss);
        ck_pr_sub_64(&hk_node_stats[from].bytes_committed, committed);
        ck_pr_add_64(&hk_node_stats[to].bytes_committed, committed);
        ck_pr_sub_64(&hk_node_stats[from].bytes_in_use, in_use);
        ck_pr_add_64(&hk_node_stats[to].bytes_in_use, in_use);
    }
    hk_heap_rehome(h, home);
}
