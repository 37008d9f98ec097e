/* Slabs: runs of 64 KiB units in one SuperSlab serving one size class. */
#include "hk_slab.h"
#include "hk_heap_int.h"
#include "hk_error.h"
#include "hk_options.h"
#include <string.h>

uintptr_t hk_cookie;
uintptr_t hk_sent_key = (uintptr_t)1 << 63;
uintptr_t hk_rc_key = (uintptr_t)1 << 63 | 1;

/* Carve about a page at a time: RSS grows with use.  Each class's current
 * slab may hold up to a step carved that nobody used yet, in every heap:
 * 8 KiB steps cost ring (8 threads, 16 classes) 0.45 MiB of RSS more. */
#define EXTEND_BYTES 4096u

/* floor(2^64 / bsize) + 1 (see hk_slab_is_block); UINT64_MAX / bsize is
 * one short of the floor for powers of two. */
static uint64_t div_const(uint32_t bs)
{
    return UINT64_MAX / bs + 1 + ((bs & (bs - 1)) == 0);
}

_Static_assert(HK_CLASS_UNITS <= UINT8_MAX, "a slab's class fits its byte");

void hk_slab_take_units(struct hk_ss *ss, struct hk_slab *s, unsigned from, unsigned to)
{
    uint32_t mask = (to - from == 32 ? 0xffffffffu : ((1u << (to - from)) - 1)) << from;
    hk_ss_account_units(ss, mask & ~ss->dirty_units, true);
    ss->dirty_units |= mask;
    ss->free_units &= ~mask;
    ss->block_units &= ~mask;
    for (unsigned u = from; u < to; u++) {
        ck_pr_store_ptr(&ss->unit_slab[u], s);  /* the statistics read it (stats.c: placement) */
        /* The unit's own descriptor heads no slab, whatever it last headed
         * (written only when it does: a unit block's 30 would be 60 lines
         * dirtied). */
        if (&ss->slabs[u] != s && ss->slabs[u].owner_tag != 0)
            hk_slab_unhead(&ss->slabs[u]);
    }
}

/* Whether other threads' remote-block caches (hk_heap.rc) keep blocks of
 * size bs.  A block reused by the thread that freed it sits on lines of its
 * owner's slab; unless it owns its lines whole (a multiple of the line: slab
 * starts are line-aligned), that thread then writes lines that blocks handed
 * out by another thread sit in: passive false sharing, as in Hoard's
 * cache-scratch once a thread frees enough blocks to install its cache.  So
 * those classes go home, as in mimalloc, unless
 * HAKMEM_REMOTE_CACHE_SHARED_LINES trades that for fewer line transfers, as
 * jemalloc's and tcmalloc's thread caches do. */
static bool rc_keeps(uint32_t bs)
{
    return bs <= HK_LUT_MAX && (bs % HK_LINE == 0 || hk_opt.rc_shared_lines);
}

void hk_slab_init_owner(struct hk_heap *heap, struct hk_ss *ss, unsigned unit, unsigned cls, unsigned n)
{
    struct hk_slab *s = &ss->slabs[unit];
    uint32_t mask = (n == 32 ? 0xffffffffu : ((1u << n) - 1)) << unit;
    uintptr_t base = (uintptr_t)ss + ((uintptr_t)unit << HK_UNIT_SHIFT);
    uintptr_t start = unit == 0 ? (uintptr_t)ss + HK_SS_HDR_SIZE : base;
    uintptr_t end = base + ((uintptr_t)n << HK_UNIT_SHIFT);
    /* Cache colouring: slabs begin on 64 KiB boundaries, so the first (and,
     * freed LIFO, hottest) blocks of every class would share cache sets.
     * Shift them by up to 3840 bytes, within the slack the blocks leave at
     * the slab's end (so no block is lost, and no slab more is needed);
     * power-of-two classes keep their natural alignment instead, medium
     * classes their page alignment (hk_config.h). */
    uint32_t bs = cls == HK_CLASS_UNITS ? (uint32_t)(end - start) : hk_class_size[cls];
    bool pow2 = (bs & (bs - 1)) == 0;
    if (!pow2 && bs < HK_MEDIUM_MIN) {
        uintptr_t colour = (uintptr_t)(((unit * 7u + cls * 3u) & 15u) * 256u);
        uintptr_t slack = ((end - start) % bs) & ~(uintptr_t)63;
        start += colour < slack ? colour : slack;
    }

    s->bsize = bs;
    s->cls = (uint8_t)cls;
    s->node = (uint8_t)ss->node;
    s->units = (uint8_t)n;
    s->first_unit = (uint8_t)unit;
    s->start = s->shared_start = start;
    s->reserved = (uint16_t)((end - start) / s->bsize);
    s->used = 0;
    s->ticks = 0;  /* not current (hk_slab.ticks) */
    s->free = NULL;
    s->div_c = s->shared_div_c = div_const(bs);
    ck_pr_store_64(&s->shared_limit, 0);
    s->free_key = hk_slab_key(s);
    s->fresh_zero = (ss->dirty_units & mask) == 0;
    s->in_partial = 0;
    s->prev = s->next = NULL;
    s->rc_off = rc_keeps(bs) ? (uint32_t)(offsetof(struct hk_heap, rc) + cls * sizeof(struct hk_slab)) : 0;
    /* No other thread can reach a slab before its first block is handed
     * out: plain stores, published by that hand-off. */
    ck_pr_store_64(&s->remote, HK_REMOTE_NONE);
    ck_pr_store_64(&s->owner_tag, (uint64_t)(uintptr_t)heap | (ss->node != heap->node ? HK_SLAB_FOREIGN : 0));
    hk_slab_gate_owner(s);
    hk_slab_take_units(ss, s, unit, unit + n);
    hk_slab_count_in_use(s, true);
}

void hk_slab_resize_units_owner(struct hk_slab *s, unsigned n)
{
    hk_assert(s->cls == HK_CLASS_UNITS && s->first_unit != 0 && s->used == 1);
    hk_slab_count_in_use(s, false);
    s->units = (uint8_t)n;
    s->bsize = (uint32_t)n << HK_UNIT_SHIFT;
    s->div_c = s->shared_div_c = div_const(s->bsize);
    /* Its one block stays carved.  Other threads read these only to
     * validate a free of the block, which the caller, resizing it, holds. */
    ck_pr_store_64(&s->shared_limit, s->bsize * s->div_c);
    hk_slab_gate_owner(s);
    hk_slab_count_in_use(s, true);
}

static bool extend(struct hk_slab *s)
{
    uint64_t step = s->bsize * s->div_c;  /* what each block adds to limit (>= 1) */
    unsigned capacity = (unsigned)(s->shared_limit / step);
    unsigned left = (unsigned)s->reserved - capacity;
    if (left == 0)
        return false;
    uintptr_t first = s->start + (uintptr_t)capacity * s->bsize;
    /* Up to a page boundary: a coloured slab start would otherwise make
     * every carving touch one page more. */
    uintptr_t stop = (first + EXTEND_BYTES) & ~(uintptr_t)(HK_PAGE_SIZE - 1);
    unsigned n = (unsigned)((stop - first) / s->bsize);
    if (n == 0)
        n = 1;
    if (n > left)
        n = left;
    /* Blocks of memory that was not fresh get the key like any free
     * block: a key word of 0 on `free` means zero memory. */
    bool keyed = !s->fresh_zero;
    uintptr_t p = first;
    for (unsigned i = 1; i <= n; i++, p += s->bsize) {
        if (keyed)
            ((struct hk_block *)p)->key = s->free_key;
        ((struct hk_block *)p)->next = i < n ? (struct hk_block *)(p + s->bsize) : NULL;
    }
    s->free = (struct hk_block *)first;
    ck_pr_store_64(&s->shared_limit, s->shared_limit + n * step);  /* read by other threads' validation */
    hk_slab_gate_owner(s);
    return true;
}

/* The list and count `old` held, taken off the remote word, onto `free`.
 * The blocks keep the pushers' mark (hk_sent_key) as their key word, which
 * tells a double free as well as the list's own key does (free.c:
 * freed_elsewhere).  So the list goes on whole: its blocks' lines, which
 * the freeing cores hold, are fetched as allocations pop them, between
 * the program's own work, not all in one dependent walk here.
 * Only an allocation list still holding blocks needs the tail. */
static unsigned splice_remote(struct hk_slab *s, uint64_t old)
{
    struct hk_block *list = (struct hk_block *)(old & HK_REMOTE_LIST);
    if (list == NULL)
        return 0;
    unsigned n = (unsigned)(old >> HK_REMOTE_COUNT_SHIFT);
    if (s->free != NULL) {
        struct hk_block *last = list;
        while (last->next != NULL)
            last = last->next;
        last->next = s->free;
    }
    s->free = list;
    s->used = (uint16_t)(s->used - n);
    HK_STAT_ADD((struct hk_heap *)(uintptr_t)(s->owner_tag & ~HK_SLAB_FLAGS), home_list, n);
    return n;
}

unsigned hk_slab_drain_remote_owner(struct hk_slab *s)
{
    uint64_t old = ck_pr_load_64(&s->remote);
    /* Take the list with its count, keep the state bits.  The load fence
     * after the CAS orders our reads of the blocks after the pushers'
     * writes of their `next` links (published by their fence and CAS). */
    while ((old & HK_REMOTE_LIST) != 0 && !ck_pr_cas_64_value(&s->remote, old, old & ~HK_REMOTE_TAKE, &old))
        ;
    ck_pr_fence_load();
    return splice_remote(s, old);
}

void hk_slab_set_current_owner(struct hk_slab *s, bool current)
{
    uint64_t old = ck_pr_load_64(&s->remote);
    /* CAS: pushers read the bit and push in one step.  Clearing it takes
     * the list too (ordered as in the drain), which from then on stays
     * empty: pushers send to the inbox. */
    if (current) {
        while (!ck_pr_cas_64_value(&s->remote, old, old | HK_REMOTE_CUR, &old))
            ;
    } else {
        while (!ck_pr_cas_64_value(&s->remote, old, old & HK_REMOTE_STATE, &old))
            ;
        ck_pr_fence_load();
        splice_remote(s, old);
    }
}

bool hk_slab_refill_owner(struct hk_slab *s)
{
    if (s->free != NULL)
        return true;
    if (hk_slab_drain_remote_owner(s) > 0)
        return true;
    return extend(s);
}

bool hk_slab_mark_full_owner(struct hk_slab *s)
{
    uint64_t old = ck_pr_load_64(&s->remote);
    if ((old & (HK_REMOTE_LIST | HK_REMOTE_STATE)) != 0)
        return false;  /* blocks waiting, or a notification not yet handled */
    /* CAS: a concurrent push either lands before (we fail and refill) or
     * sees WANT and takes the notification path.  WANT replaces CUR: no
     * allocation will take a list from a full slab. */
    if (!ck_pr_cas_64(&s->remote, old, HK_REMOTE_WANT))
        return false;
    ck_pr_store_64(&s->owner_tag, s->owner_tag | HK_SLAB_FULL);
    hk_slab_gate_owner(s);
    return true;
}

void hk_slab_unfull_owner(struct hk_slab *s)
{
    uint64_t old = ck_pr_load_64(&s->remote);
    /* Back to NONE keeping the list: WANT (nobody freed remotely yet) or
     * NOTIFIED (a notification is in our inbox; handled as a plain
     * local free when we get to it). */
    while (!ck_pr_cas_64_value(&s->remote, old, (old & ~HK_REMOTE_STATE), &old))
        ;
    ck_pr_store_64(&s->owner_tag, s->owner_tag & ~HK_SLAB_FULL);
    hk_slab_gate_owner(s);
}

bool hk_slab_push_remote_mpsc(struct hk_slab *s, struct hk_block *first, struct hk_block *last, uint32_t n)
{
    uint64_t old = ck_pr_load_64(&s->remote), next;
    do {
        if (old & HK_REMOTE_CUR) {
            last->next = (struct hk_block *)(old & HK_REMOTE_LIST);
            next = (old & ~HK_REMOTE_LIST) + ((uint64_t)n << HK_REMOTE_COUNT_SHIFT) + (uintptr_t)first;
        } else if ((old & HK_REMOTE_STATE) == HK_REMOTE_WANT) {
            next = (old & ~HK_REMOTE_STATE) | HK_REMOTE_NOTIFIED;
        } else {
            return true;  /* not current: a relaxed read will do, the inbox takes any slab's blocks */
        }
        /* The fence and the CAS publish the blocks' contents and links to
         * the owner's drain (ck's CAS orders nothing by itself; on x86 the
         * fence is only a compiler barrier).  Push-only against take-all:
         * no ABA (a head that came back is still the list's head). */
        ck_pr_fence_store();
    } while (!ck_pr_cas_64_value(&s->remote, old, next, &old));
    return !(old & HK_REMOTE_CUR);
}

struct hk_block *hk_slab_block_of(struct hk_slab *s, void *p, const char *fn)
{
    if (hk_unlikely(!hk_slab_is_block_shared(s, p)))
        hk_fatal_ptr(fn, "invalid pointer", p);  /* not the start of a block we carved */
    return (struct hk_block *)p;
}
