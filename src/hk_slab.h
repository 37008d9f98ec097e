/* Slab operations.  Functions suffixed _owner run only on the owning heap's
 * thread; _mpsc ones may run on any thread, concurrently with the owner. */
#ifndef HK_SLAB_H
#define HK_SLAB_H

#include "hk_heap.h"

extern hk_hidden uintptr_t hk_cookie;  /* per-process secret behind the double-free keys */

/* The double-free key after k: odd, so never 0 (a fresh block's key word)
 * and never hk_sent_key (even).  Inline: the remote-free path takes one
 * without a call. */
hk_inline uintptr_t hk_next_key(uintptr_t k)
{
    k = (k ^ hk_cookie) * 0x9e3779b97f4a7c15ull;
    return (k ^ (k >> 29)) | 1;
}

/* The key of the list of s, a slab of bsize-byte blocks (hk_slab.free_key):
 * from the descriptor's address, so that another thread's double-free check
 * computes it instead of reading the owner's line 1 (free.c:
 * freed_elsewhere). */
hk_inline uintptr_t hk_slab_key(const struct hk_slab *s)
{
    return hk_mark_key(hk_next_key((uintptr_t)s));
}

/* The key word of a block on its way home from another thread (batched, on
 * its slab's remote list, in its owner's inbox) and of such blocks taken
 * back onto their slab's list whole (hk_slab_drain_remote_owner); set with
 * hk_cookie: even, so it never matches a list's (odd) key; top bit set, so
 * a program's own pointer or a cleared word there never reads as it
 * (free.c: freed_elsewhere). */
extern hk_hidden uintptr_t hk_sent_key;

/* The key of every thread's remote-block cache, each class (set with
 * hk_cookie): one for all, so that a block in any thread's cache is known
 * as free by every thread (free.c: freed_elsewhere).  Odd like every key;
 * top bit set like hk_sent_key. */
extern hk_hidden uintptr_t hk_rc_key;

/* The descriptor heads no slab: no owner, both bounds 0, so the free fast
 * path, which reads a unit's own descriptor (hk_free), sends the unit's
 * pointers to the slow path. */
hk_inline void hk_slab_unhead(struct hk_slab *s)
{
    ck_pr_store_64(&s->owner_tag, 0);
    s->limit = 0;
    ck_pr_store_64(&s->shared_limit, 0);
}

/* A slab of n units from `unit` on, for class cls (n = hk_class_units[cls]),
 * or a unit block's (cls HK_CLASS_UNITS: one block of all n units). */
void hk_slab_init_owner(struct hk_heap *heap, struct hk_ss *ss, unsigned unit, unsigned cls, unsigned n);
/* Units [from, to) of ss, free, now belong to s: no longer free, touched
 * from now on, the unit table names s, and their own descriptors, except
 * s's, head no slab. */
void hk_slab_take_units(struct hk_ss *ss, struct hk_slab *s, unsigned from, unsigned to);
/* A unit block's slab (one block out) now spans n units: the caller has
 * taken the units beyond or given back the ones cut off. */
void hk_slab_resize_units_owner(struct hk_slab *slab, unsigned n);
/* Refill an empty `free` from remote frees, else fresh blocks.  Returns
 * false when the slab has no block left at all. */
bool hk_slab_refill_owner(struct hk_slab *slab);
/* Take every remote-freed block onto `free`; returns how many were taken. */
unsigned hk_slab_drain_remote_owner(struct hk_slab *slab);
/* s becomes its class's current slab, or stops being it (its list, if
 * any, onto `free`): remote frees of its blocks go onto its own list only
 * while it is (see hk_slab_push_remote_mpsc). */
void hk_slab_set_current_owner(struct hk_slab *slab, bool current);
/* Flag the slab full so that the next remote free notifies the heap;
 * false when remote blocks arrived meanwhile (refill instead). */
bool hk_slab_mark_full_owner(struct hk_slab *slab);
/* The slab got a block back while flagged full: usable again. */
void hk_slab_unfull_owner(struct hk_slab *slab);

/* Push the chain first..last, n blocks, onto the list of s, its class's
 * current slab.  Returns true when s is not current: then the chain was
 * NOT pushed and the caller must hand it to the owning heap's inbox (s
 * cannot go away before the owner sees those blocks, since they still
 * count as used); for a slab flagged full that hand-over is the
 * notification. */
bool hk_slab_push_remote_mpsc(struct hk_slab *slab, struct hk_block *first, struct hk_block *last, uint32_t n);

#endif
