/* The inline fast paths of malloc and free.  Everything else is out of line. */
#ifndef HK_API_H
#define HK_API_H

#include "hk_heap.h"

hk_inline void *hk_alloc_from(struct hk_heap *h, struct hk_slab *s, size_t size, bool zero)
{
    if (hk_unlikely(s->free == NULL))
        return hk_malloc_refill(size, s, h, zero);
    struct hk_block *b = hk_slab_pop(h, s, size, zero);
    if (hk_unlikely(hk_slab_count_take(s)))
        return hk_slab_ticked(b, h, s);
    return b;
}

hk_inline void *hk_alloc(size_t size, bool zero)
{
    struct hk_heap *h = hk_tls_heap;
    if (hk_likely(size <= HK_LUT_MAX))
        return hk_alloc_from(h, h->direct[hk_lut_index(size)], size, zero);
    if (hk_likely(size <= HK_SMALL_MAX))
        return hk_alloc_from(h, h->cur[hk_size_class(size)], size, zero);
    return hk_malloc_slow(size, h, zero);
}

/* The owner's local free of b, already validated and checked against key:
 * onto the list the next allocation pops (see hk_slab.free). */
hk_inline void hk_free_local(struct hk_heap *h, struct hk_slab *s, struct hk_block *b, uintptr_t key)
{
    HK_STAT_INC(h, free_local);
    HK_STAT_BYTES(h, small_bytes_freed, s->bsize);
    if (hk_unlikely(hk_slab_push_owner(s, b, key) == 0))  /* not current, and empty */
        hk_slab_emptied(h, s);
}

/* A remote free, validated: b, a block of another heap's slab s in
 * SuperSlab ss (owned by dest).  Its common case in line: kept in our
 * cache of its class (hk_heap.rc), as a local free pushes onto its slab's
 * list.  The general path (hk_free_remote) takes a class without a cache
 * and, in one compare with remote_node, another node, batching off or the
 * shared empty heap; a full cache or a marked key word take their own. */
hk_inline void hk_free_remote_keep(struct hk_heap *h, const struct hk_ss *ss, struct hk_slab *s,
                                   struct hk_heap *dest, struct hk_block *b)
{
    uint32_t off = s->rc_off;
    if (hk_unlikely(off == 0 || ss->node != h->remote_node)) {
        hk_free_remote(h, s, dest, b);
        return;
    }
    struct hk_slab *rc = (struct hk_slab *)((char *)h + off);
    /* used counts the cached blocks down from HK_RC_EMPTY (the fast
     * path's pops count up), compared as it is with the thresholds
     * hk_rcache_set_cap keeps. */
    uint32_t used_ticks = rc->used_ticks;  /* whole: see hk_block_push */
    uint16_t used = (uint16_t)used_ticks;
    if (hk_unlikely(used <= rc->rc_full_used)) {
        hk_free_remote_full(h, rc, s, b);
        return;
    }
    uintptr_t key = rc->free_key;
    if (hk_unlikely(hk_key_marked(b->key))) {
        hk_free_remote_marked(h, rc, s, b);
        return;
    }
    hk_count_free_remote(h, s);
    /* hk_block_push with the count kept from the test above. */
    b->key = key;
    b->next = rc->free;
    rc->free = b;
    rc->used_ticks = used_ticks - 1;
    h->rc_held = 1;
    /* Installed at the count that calls for it, not tested on every push:
     * until then, in larson, two pushes in three took the slow path to
     * find the entries elsewhere. */
    if (hk_unlikely(used == rc->rc_install_used))
        hk_rcache_install(h, rc);
}

hk_inline void hk_free(void *p, const char *fn)
{
    struct hk_ss *ss = hk_ss_of(p);
    struct hk_heap *h = hk_tls_heap;
    struct hk_heap *owner = h;
    if (hk_unlikely(h->own[hk_own_slot(ss)] != ss)) {
        /* Not a SuperSlab of our cache: the map (unless seen[] knows the
         * chunk) tells ours from foreign before anything is read, then its
         * header names the owner (read-mostly: set when the SuperSlab
         * leaves its pool; relaxed: a block we hand out is ordered after
         * it). */
        struct hk_heap *hm = h;
        uintptr_t chunk = (uintptr_t)ss;
        /* Hides that hm is h and chunk is ss: else the slot's address and
         * the chunk's index, kept from the test above for these, cost the
         * owner's path an instruction each. */
        __asm__("" : "+r"(hm), "+r"(chunk));
        if (hk_unlikely(hm->seen[hk_own_slot(ss)] != ss)) {
            if (hk_unlikely(!hk_ssmap_test(chunk)))
                goto slow;
            if (ck_pr_load_ptr(&ss->heap) != NULL && hm != &hk_heap_empty)
                hm->seen[hk_own_slot(ss)] = ss;  /* a small SuperSlab: large ones have no heap */
        }
        owner = ck_pr_load_ptr(&ss->heap);
    }
    hk_assert(owner != h || ck_pr_load_ptr(&ss->heap) == h);
    /* The unit's descriptor, by address, not through unit_slab (one
     * dependent load less): a unit that heads no slab (free, or inside a
     * multi-unit slab) has a descriptor with both bounds 0 and no owner, so
     * the checks below send its frees to the slow path, which looks the
     * slab up. */
    struct hk_slab *s = hk_unit_desc(ss, p);
    if (hk_likely(owner == h)) {
        /* Ours: the slab's first line only.  Its gate lets through just
         * unflagged slabs (hk_slab_gate_owner); the FAST build, which
         * skips the block check, compares the owner tag instead.  A key
         * word with the top bit set may be a mark of a free block -- the
         * slab's key, or another thread's batch or cache (free.c:
         * freed_elsewhere) -- and takes the slow path, which tells
         * (hk_key_marked); the FAST build checks the slab's key only. */
        struct hk_block *b = p;
        uintptr_t key = s->free_key;
        if (hk_likely(HK_VALIDATE ? hk_slab_is_block(s, p) : s->owner_tag == (uint64_t)(uintptr_t)h)) {
            if (hk_likely(HK_VALIDATE ? !hk_key_marked(b->key) : b->key != key))
                hk_free_local(h, s, b, key);
            else
                hk_free_owner_slow(h, s, b, fn);
            return;
        }
        hk_free_owner_gated(p, s, h, fn);
        return;
    } else if (hk_likely(owner != NULL &&
                         (HK_VALIDATE ? hk_slab_is_block_shared(s, p) : ck_pr_load_64(&s->shared_limit) != 0))) {
        /* Another heap's block: validated on the slab's second line
         * (the owner keeps writing the first), then kept in our
         * remote-block cache or batched for its owner. */
        hk_free_remote_keep(h, ss, s, owner, p);
        return;
    }
slow:
    hk_free_slow(p, fn);
}

#endif
