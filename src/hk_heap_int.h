/* What the heap layer's files (heap.c, lifecycle.c, reclaim.c, free.c)
 * share; owner-only functions on a heap's own bookkeeping. */
#ifndef HK_HEAP_INT_H
#define HK_HEAP_INT_H

#include "hk_heap.h"

/* heap.c: the per-class lists of slabs with free blocks */
hk_hidden void hk_partial_push(struct hk_heap *h, struct hk_slab *s);
hk_hidden void hk_partial_remove(struct hk_heap *h, struct hk_slab *s);
/* s becomes class cls's current slab (&hk_slab_empty: none), holding a pin
 * of `used` while it is. */
hk_hidden void hk_heap_set_cur(struct hk_heap *h, unsigned cls, struct hk_slab *s);
/* The thread now runs on `node`: its slabs' FOREIGN flags follow. */
hk_hidden void hk_heap_rehome(struct hk_heap *h, unsigned node);

/* lifecycle.c: a heap for a thread that has none, made or adopted; after
 * the thread's exit, one borrowed for a single allocation (*borrowed), to
 * be handed straight back with hk_heap_abandon.  NULL when out of memory. */
hk_hidden struct hk_heap *hk_heap_take(bool *borrowed);
/* h's thread is done with it: collected, and left for an adopter. */
hk_hidden void hk_heap_abandon(struct hk_heap *h);
/* Sweep exited threads' heaps, looking at up to `looks` of them. */
hk_hidden void hk_sweep_abandoned(unsigned looks);

/* reclaim.c: SuperSlabs with free units, memory return */
/* ss's free units changed: onto the list of its longest free run (off the
 * lists when it has no free unit). */
hk_hidden void hk_avail_update(struct hk_heap *h, struct hk_ss *ss);
hk_hidden void hk_avail_remove(struct hk_heap *h, struct hk_ss *ss);
/* An empty SuperSlab of the heap's on `node` (any_node: any), off its list. */
hk_hidden struct hk_ss *hk_empty_take(struct hk_heap *h, unsigned node, bool any_node);
hk_hidden void hk_heap_maintain(struct hk_heap *h);      /* what the delay allows (slow paths: now and then) */
hk_hidden bool hk_heap_maintain_now(struct hk_heap *h);  /* what the delay allows, looking now; true if more waits */
/* Memory began to wait for the delay (freed units, an empty SuperSlab, a
 * cached large mapping): the owner's counts hand over soon, so that even a
 * slow thread ticks about a delay later. */
hk_hidden void hk_heap_wait_for_return(struct hk_heap *h);
hk_hidden void hk_heap_release_reserve(struct hk_heap *h);  /* everything, now */
/* An exited thread's heap keeps a reserve for its adopter (reclaim.c:
 * EXITED_KEEP_UNITS of free units, those its unit blocks held, its newest
 * empty SuperSlab), within HAKMEM_LARGE_CACHE_MB for all exited heaps, and
 * gives back the rest now. */
hk_hidden void hk_heap_trim_exited(struct hk_heap *h);
/* h, an exited thread's heap, was adopted or swept: what it kept no
 * longer counts against the budget. */
hk_hidden void hk_heap_untrack_exited(struct hk_heap *h);
hk_hidden void hk_slab_release(struct hk_heap *h, struct hk_slab *s);  /* empty, not current: back to its SuperSlab */
hk_hidden void hk_ss_units_free(struct hk_heap *h, struct hk_ss *ss, uint32_t mask);  /* units out of any slab: back to ss */
hk_hidden void hk_spare_age(struct hk_heap *h);  /* the ticker: release spares older than the delay */
hk_hidden void hk_slab_count_in_use(const struct hk_slab *s, bool in_use);  /* bytes_in_use statistic */

/* The spare slab of class cls, without its aging bit (NULL when none). */
hk_inline struct hk_slab *hk_spare_of(const struct hk_heap *h, unsigned cls)
{
    return (struct hk_slab *)(h->spare[cls] & ~(uintptr_t)1);
}

/* free.c: blocks coming back */
hk_hidden void hk_inbox_process(struct hk_heap *h);
hk_hidden void hk_rbatch_flush(struct hk_heap *h);

#endif
