/* Frees off the fast path: the owner's own (double-free check, slabs that
 * were full, slabs that empty), and other heaps' blocks, batched per owner
 * onto its inbox.  See hk_api.h for the inline fast path. */
#include "hk_heap_int.h"
#include "hk_slab.h"
#include "hk_api.h"
#include "hk_os.h"
#include "hk_options.h"
#include "hk_numa.h"
#include "hk_large.h"
#include "hk_error.h"

struct hk_heap_stats hk_heapless_stats;

/* Frees a thread without a heap makes unbatched before a free takes it a
 * heap (free_remote_cold).  Not at its first: glibc frees cached stacks' DTVs from
 * an exiting thread after its TSD destructors have run, and a heap taken
 * then is never handed back, as no destructor runs again; every idle
 * detached thread kept one (helper 33: 3,200 of them left 1,600 heaps).
 * Such a thread frees a few blocks there (a DTV, and a block per module of
 * dynamic TLS, per stack freed); a consumer thread that only frees gets
 * its heap, and its batching, after this many. */
#define HK_HEAPLESS_FREES 64
static __thread uint32_t tls_heapless_frees __attribute__((tls_model("initial-exec")));

/* b's key word matched its list's key: a double free if b is on the list
 * (else the program wrote that very word: blocks handed out have it
 * cleared). */
static hk_noinline void check_double(const struct hk_block *list, struct hk_block *b)
{
    for (; list != NULL; list = list->next)
        if (list == b)
            hk_fatal_ptr("free", "double free", b);
}

/* The marks of the batches and caches of every thread (hk_sent_key,
 * hk_rc_key): a block so marked is free already. */
static inline bool in_transit(uintptr_t word)
{
    return word == hk_sent_key || word == hk_rc_key;
}

/* in_transit, where the build validates (not FAST). */
static inline bool marked_in_transit(uintptr_t word)
{
    return HK_VALIDATE && in_transit(word);
}

/* The key word of a block another heap owns says it is free already: it is
 * on its way home from a thread's batch (hk_sent_key; also its slab's
 * remote list, its owner's inbox, or its slab's list, taken back whole),
 * in a thread's remote-block cache (hk_rc_key), or on its slab's list (the
 * slab's key: the owner freed it).  All have the top bit set; a key word
 * cleared at malloc does not, and a program's own value there matches only
 * if copied out of a freed block.  No list to scan: the block may be in
 * any thread's batch or cache.  Linked in again, it would cut the blocks
 * batched since out of the chain, close a remote list into a cycle, or
 * hand the owner's list to the batch.  The slab's key is computed, not read:
 * it sits on the owner's line 1, and a remote free reading it there (a word
 * with the top bit set: a 16-byte block's last word, or any negative
 * number a program stored in a block's second word) took that line from
 * the owner, whose next allocation waited for it back (ring, 16-byte
 * blocks, 2 threads: 0.67x the CPU time computed).  In every build
 * (send_home_now, rcache_push); freed_elsewhere is the batches' check,
 * which the FAST build skips (2-3% of CPU time in ring and xmalloc at 2 threads, where
 * every free is remote). */
static inline bool freed_elsewhere_any(const struct hk_block *b, uintptr_t word)
{
    if (hk_likely((intptr_t)word >= 0))
        return false;
    if (in_transit(word))
        return true;
    const struct hk_slab *s = hk_slab_of(hk_ss_of(b), b);
    return word == hk_slab_key(s);
}

static inline bool freed_elsewhere(const struct hk_block *b, uintptr_t word)
{
    return HK_VALIDATE && freed_elsewhere_any(b, word);
}

static void free_local_slow(struct hk_heap *h, struct hk_slab *s, struct hk_block *b)
{
    if (hk_unlikely(b->key == s->free_key))
        check_double(s->free, b);
    hk_slab_push_owner(s, b, s->free_key);
    if (s->cls == HK_CLASS_UNITS) {
        hk_slab_release(h, s);  /* a unit block: its units straight back (heap.c: unit_block_alloc) */
        return;
    }
    if (s->owner_tag & HK_SLAB_FULL)
        hk_slab_unfull_owner(s);
    if (h->cur[s->cls] != s && !s->in_partial)
        hk_partial_push(h, s);
    if (s->used == 0)
        hk_slab_emptied(h, s);
}

void hk_free_owner_slow(struct hk_heap *h, struct hk_slab *s, struct hk_block *b, const char *fn)
{
    /* Freed by another thread already (its key word is the mark of a
     * batch, a cache, the way home, or a list taken back whole): linked
     * onto our list it would be handed out twice.  Our own list's key:
     * free_local_slow (the only slab key the word can match here).  The
     * FAST build skips the other threads' marks but not the cache's key:
     * our own free of a block in our own cache comes here in every build
     * (hk_free_owner_gated), and off the fast path the compare is free. */
    uintptr_t word = b->key;
    if (word != s->free_key && (marked_in_transit(word) || word == hk_rc_key))
        hk_fatal_ptr(fn, "double free", b);
    HK_STAT_INC(h, free_local);
    HK_STAT_BYTES(h, small_bytes_freed, s->bsize);
    free_local_slow(h, s, b);
}

/* The chain first..last, k blocks of s, onto s's list, its blocks
 * keeping the pushers' mark, as a remote list taken whole does (slab.c:
 * splice_remote): their lines are fetched as allocations pop them. */
hk_inline void chain_splice(struct hk_slab *s, struct hk_block *first, struct hk_block *last, unsigned k)
{
    last->next = s->free;
    s->free = first;
    s->used = (uint16_t)(s->used - k);
}

/* A chain the inline splice does not take.  A slab flagged full (the chain
 * is its notification) or on neither list gets its first block by the
 * local free's slow path, which puts it back into use; the rest is
 * spliced, but for one block if it empties the slab: that one goes last,
 * by the slow path, which makes the slab a spare or releases it. */
static hk_noinline void inbox_take_slow(struct hk_heap *h, struct hk_slab *s, struct hk_block *first,
                                        struct hk_block *last, unsigned k)
{
    if (s->cls == HK_CLASS_UNITS) {  /* a unit block, alone in its slab and chain; no cur[] entry */
        free_local_slow(h, s, first);
        return;
    }
    if ((s->owner_tag & HK_SLAB_FULL) || !(s->in_partial || h->cur[s->cls] == s)) {
        struct hk_block *next = first->next;
        free_local_slow(h, s, first);  /* with more of the chain out, the slab does not empty */
        if (--k == 0)
            return;
        first = next;
    }
    if (s->used > k) {
        chain_splice(s, first, last, k);
        return;
    }
    if (k > 1)
        chain_splice(s, first->next, last, k - 1);
    free_local_slow(h, s, first);
}

void hk_inbox_process(struct hk_heap *h)
{
    /* Chains of slabs that are not their class's current one, and the
     * notifications of full slabs (remote_push).  batch_pop is one atomic
     * exchange (the pushers' CAS released the chains to it); we are the
     * only consumer. */
    struct hk_block *b = (struct hk_block *)ck_stack_batch_pop_upmc(&h->inbox);
    uint64_t n = 0;
    while (b != NULL) {
        struct hk_slab *s = hk_slab_of(hk_ss_of(b), b);
        if (hk_likely(s->bsize >= HK_CHAIN_MIN)) {
            /* A chain's first block (inbox_push_mpsc).  Other cores wrote
             * it: one miss, and the next chain's overlaps our work here. */
            const struct hk_chain *c = (const struct hk_chain *)b;
            struct hk_block *link = c->link;
            hk_prefetch_w(link);
            struct hk_block *last = (struct hk_block *)(c->last_count & HK_CHAIN_LAST);
            unsigned k = (unsigned)(c->last_count >> HK_CHAIN_COUNT_SHIFT);
            n += k;
            /* The common case: a slab not flagged full, current or on the
             * partial list, that does not become empty. */
            if (hk_likely(!(s->owner_tag & HK_SLAB_FULL) && s->used > k &&
                          (s->in_partial || h->cur[s->cls] == s)))
                chain_splice(s, b, last, k);
            else
                inbox_take_slow(h, s, b, last, k);
            b = link;
            continue;
        }
        /* 16-byte blocks, one by one: the tail of their chain links to
         * the next chain. */
        struct hk_block *next = b->next;
        hk_prefetch_w(next);
        n++;
        uintptr_t key = s->free_key;
        if (hk_likely(!(s->owner_tag & HK_SLAB_FULL) && b->key != key && s->used > 1 &&
                      (s->in_partial || h->cur[s->cls] == s))) {
            hk_slab_push_owner(s, b, key);
        } else {
            free_local_slow(h, s, b);
        }
        b = next;
    }
    HK_STAT_ADD(h, home_inbox, n);
}

/* Hand the chain first..last, n blocks of s, to the inbox of s's owner
 * (one CAS; many producers, the owner the single consumer).  The link to
 * the next chain goes into the header (struct hk_chain), or for 16-byte
 * blocks into the tail's `next`. */
static void inbox_push_mpsc(ck_stack_t *inbox, const struct hk_slab *s, struct hk_block *first,
                            struct hk_block *last, uint32_t n)
{
    struct hk_block **link = &last->next;
    if (s->bsize >= HK_CHAIN_MIN) {
        struct hk_chain *c = (struct hk_chain *)first;
        c->last_count = (uintptr_t)last | (uintptr_t)n << HK_CHAIN_COUNT_SHIFT;
        link = &c->link;
    }
    struct hk_block *head = (struct hk_block *)ck_pr_load_ptr(&inbox->head);
    do {
        *link = head;
        /* The fence and the CAS publish the chain (its links and header)
         * to the owner's batch pop, which fences its loads. */
        ck_pr_fence_store();
    } while (!ck_pr_cas_ptr_value(&inbox->head, head, first, (void **)&head));
}

/* Hand a chain of n blocks of s to its owner, dest. */
static void remote_push(struct hk_slab *s, struct hk_heap *dest, struct hk_block *first, struct hk_block *last,
                        uint32_t n)
{
    if (hk_slab_push_remote_mpsc(s, first, last, n)) {
        /* Not the current slab (or we took the full slab's notification):
         * the slab and its heap stay put until the owner has seen these
         * blocks. */
        inbox_push_mpsc(&dest->inbox, s, first, last, n);
    }
}

/* n blocks just went home to dest: an exited thread's heap (or one being
 * swept) counts them toward its next sweep (lifecycle.c: hk_heap_handed). */
static inline void handed_home(struct hk_heap *dest, uint32_t n)
{
    if (hk_unlikely(ck_pr_load_32(&dest->state) >= HK_HEAP_ABANDONED))
        hk_heap_handed(dest, n);
}

_Static_assert(HK_RBATCH_SLOTS == 64, "a bit per slot in rbatch_live");

/* r's batch home; r is free again. */
static hk_noinline void rbatch_deliver(struct hk_heap *h, struct hk_rbatch *r)
{
    /* The owner, before the push: once home, the blocks may be handed out
     * and the SuperSlab given away. */
    struct hk_heap *dest = ck_pr_load_ptr(&hk_ss_of(r->head)->heap);
    remote_push(r->slab, dest, r->head, r->tail, r->count);
    handed_home(dest, r->count);
    r->slab = NULL;
    h->rbatch_live &= ~((uint64_t)1 << (r - h->rbatch));
}

void hk_rbatch_flush(struct hk_heap *h)
{
    while (h->rbatch_live != 0)
        rbatch_deliver(h, &h->rbatch[__builtin_ctzll(h->rbatch_live)]);
}

/* A remote free of b finding it free already (freed_elsewhere) reports
 * the double free. */
static inline void check_not_freed(const struct hk_block *b)
{
    if (freed_elsewhere(b, b->key))
        hk_fatal_ptr("free", "double free", b);
}

/* b on its way home, linked before `next`: marked as sent
 * (freed_elsewhere). */
hk_inline void mark_sent(struct hk_block *b, struct hk_block *next)
{
    b->key = hk_sent_key;
    b->next = next;
}

/* b home at once, unbatched: onto its slab's remote list, or (the slab
 * flagged full) its owner's inbox, marked as on its way home like a
 * batched block. */
static void send_home_now(struct hk_slab *s, struct hk_heap *dest, struct hk_block *b)
{
    uint32_t bsize = s->bsize;  /* not after the push: the owner may reuse the slab's descriptor at once */
    /* In every build: off the fast paths, and a thread's first frees come
     * here (HK_HEAPLESS_FREES), where the FAST build caught a second free
     * by the cache's key when the first took a heap. */
    if (freed_elsewhere_any(b, b->key))
        hk_fatal_ptr("free", "double free", b);
    mark_sent(b, NULL);
    remote_push(s, dest, b, b, 1);
    /* A unit block counts its KiB (a small block counts 1): swept about
     * every 4 MB of them either way. */
    handed_home(dest, bsize > HK_SMALL_MAX ? bsize >> 10 : 1);
}

/* The slot of s's batch: slab descriptors are 128 bytes apart and
 * SuperSlabs 2 MiB, so the low bits of the address alone would put the
 * same unit of every SuperSlab in one slot. */
hk_inline unsigned rbatch_slot(const struct hk_slab *s)
{
    return (unsigned)((((uintptr_t)s >> 7) * 0x9e3779b97f4a7c15ull) >> 58);
}

/* Link b, checked, in at the head of r's batch; a full batch goes. */
hk_inline void rbatch_link(struct hk_heap *h, struct hk_rbatch *r, struct hk_block *b)
{
    mark_sent(b, r->head);
    r->head = b;
    if (hk_unlikely(++r->count >= r->limit))
        rbatch_deliver(h, r);
}

/* Slot r holds another slab's batch, or none: send it, start s's with b. */
static hk_noinline void rbatch_start(struct hk_heap *h, struct hk_rbatch *r, struct hk_slab *s, struct hk_block *b,
                                     uint32_t bsize)
{
    check_not_freed(b);
    if (r->slab != NULL)
        rbatch_deliver(h, r);
    r->slab = s;
    r->head = NULL;
    r->tail = b;
    r->count = 0;
    uint32_t fit = HK_RBATCH_BYTES / bsize;
    r->limit = fit < (uint32_t)hk_opt.remote_batch ? fit : (uint32_t)hk_opt.remote_batch;
    h->rbatch_live |= (uint64_t)1 << (r - h->rbatch);
    rbatch_link(h, r, b);
}

/* Batch per destination slab: one CAS per batch instead of one per block,
 * and the owner takes the batches its slab gathered as they are
 * (hk_slab_drain_remote_owner).  A collision sends the older batch.  A
 * block freed already is reported (freed_elsewhere): linked in again, it
 * would cut the blocks batched since out of the chain, or close its slab's
 * remote list into a cycle.  Calls only in tail position: no registers to
 * save on the common path. */
static inline void rbatch_add(struct hk_heap *h, struct hk_slab *s, struct hk_block *b, uint32_t bsize)
{
    struct hk_rbatch *r = &h->rbatch[rbatch_slot(s)];
    if (hk_unlikely(r->slab != s)) {
        rbatch_start(h, r, s, b, bsize);
        return;
    }
    /* The same block again, back to back. */
    if (hk_unlikely(b == r->head))
        hk_fatal_ptr("free", "double free", b);
    check_not_freed(b);
    rbatch_link(h, r, b);
}

void hk_rcache_install(struct hk_heap *h, struct hk_slab *rc)
{
    if (h->direct[hk_lut_index(rc->bsize)] != rc)
        hk_heap_set_direct(h, rc->cls, rc);
}

/* A push into the cache, which has room, off the inline path: b's key word
 * has the top bit set, or the free came by the general path.  A key word
 * that is a mark of ours is a double free (freed_elsewhere: the cache's key
 * is every thread's, hk_rc_key, so such a block is in some thread's cache
 * or on its way home from one); other words are program data.  Only
 * classes with a key word have a cache (slab.c: rc_off). */
static hk_noinline void rcache_push(struct hk_heap *h, struct hk_slab *rc, struct hk_block *b)
{
    uintptr_t word = b->key;
    /* Every mark, FAST builds too: off the inline path, and a block sent
     * home by a thread's first frees (send_home_now) carries the sent mark,
     * not the cache's key. */
    if (word == rc->free_key || freed_elsewhere_any(b, word))
        hk_fatal_ptr("free", "double free", b);
    uint16_t used = (uint16_t)hk_block_push(rc, &rc->free, b, rc->free_key);
    h->rc_held = 1;
    if (used < rc->rc_install_used)  /* the install count reached (hk_rcache_set_cap) */
        hk_rcache_install(h, rc);
}

/* A class's cache adapts its cap to how it is used.  Where a thread frees
 * other heaps' blocks of a class in bursts larger than any cap (ring: whole
 * queues of batches) or frees more than it allocates (a consumer), the
 * cache overflows all the time, holds its cap in blocks whose owners carve
 * others meanwhile, and serves few allocations: the cap halves, down to
 * HK_RC_MIN.  Where it takes nearly every such block (larson: as many
 * blocks freed as allocated, interleaved), overflows are rare and the cap
 * doubles back up to HAKMEM_REMOTE_CACHE.  Larson at 8 threads: 1.22x CPU
 * time against a fixed cap of 8, ring at 8 threads: peak RSS 1.04x
 * mimalloc's (a fixed cap of 16: 1.10-1.15x). */
#define HK_RC_MIN 4
#define HK_RC_SHRINK_AT 64  /* overflows of a class in a ticker period (a power of 2) */
_Static_assert((HK_RC_SHRINK_AT & (HK_RC_SHRINK_AT - 1)) == 0, "every HK_RC_SHRINK_AT-th overflow is a mask test");

/* Send cached blocks of rc, the chain from b on, to their owners (batched);
 * the caller has cut the chain off rc's list and counts them out.  Their
 * owners cannot change while the blocks are out: the header's owner stays
 * valid.  The cache's key goes, else the batch would take them for blocks
 * freed twice; the batch marks them as its own instead. */
static unsigned rcache_send_home(struct hk_heap *h, const struct hk_slab *rc, struct hk_block *b)
{
    unsigned n = 0;
    for (struct hk_block *next; b != NULL; b = next, n++) {
        next = b->next;
        b->key = 0;
        struct hk_ss *ss = hk_ss_of(b);
        struct hk_slab *s = hk_slab_of(ss, b);
        /* Relaxed, as on the free fast path: a SuperSlab's owner is set
         * before any of its blocks is handed out. */
        if (ck_pr_load_ptr(&ss->heap) == h)
            free_local_slow(h, s, b);  /* one of ours (hk_free_owner_gated): counted freed already */
        else
            rbatch_add(h, s, b, rc->bsize);
    }
    return n;
}

/* The class's cache overflowed another HK_RC_SHRINK_AT times since the
 * ticker last looked -- or ever, on a thread that only frees, which never
 * ticks: half the cap, the blocks beyond it home, and the cache home
 * altogether once it is due (such a thread has no ticker to send it).
 * Then b, the block that overflowed, goes home too. */
static hk_noinline void rcache_overflowing(struct hk_heap *h, struct hk_slab *rc, struct hk_slab *s,
                                           struct hk_block *b)
{
    uint16_t hi = (uint16_t)hk_opt.remote_cache, lo = hi < HK_RC_MIN ? hi : HK_RC_MIN;
    hk_rcache_set_cap(rc, rc->reserved / 2 > lo ? rc->reserved / 2 : lo);
    h->rc_shrunk = 1;  /* the ticker's next pass recounts */
    struct hk_block **link = &rc->free;
    for (unsigned kept = 0; *link != NULL && kept < rc->reserved; kept++)
        link = &(*link)->next;
    struct hk_block *beyond = *link;
    *link = NULL;
    rc->used = (uint16_t)(rc->used + rcache_send_home(h, rc, beyond));  /* used counts them down */
    hk_rcache_age(h);
    rbatch_add(h, s, b, rc->bsize);
}

/* rc, the cache of b's class, is full: b is batched for its owner, and
 * every HK_RC_SHRINK_AT-th overflow halves the cap (rcache_overflowing). */
static inline void rcache_overflow(struct hk_heap *h, struct hk_slab *rc, struct hk_slab *s, struct hk_block *b)
{
    if (hk_unlikely((++h->rc_overflow[rc->cls] & (HK_RC_SHRINK_AT - 1)) == 0))
        rcache_overflowing(h, rc, s, b);
    else
        rbatch_add(h, s, b, rc->bsize);
}

void hk_free_remote_full(struct hk_heap *h, struct hk_slab *rc, struct hk_slab *s, struct hk_block *b)
{
    hk_count_free_remote(h, s);
    rcache_overflow(h, rc, s, b);
}

void hk_free_remote_marked(struct hk_heap *h, struct hk_slab *rc, struct hk_slab *s, struct hk_block *b)
{
    hk_count_free_remote(h, s);
    rcache_push(h, rc, b);
}

/* A remote free, counted, by the general path (the inline one is
 * hk_api.h: hk_free_remote_keep): into our cache of other heaps' blocks if its
 * class has one with room (see hk_heap.rc), else batched for the owner.
 * Reads the slab's line 2 only; calls only in tail position (no registers
 * to save). */
static inline void free_remote_keep(struct hk_heap *h, uint32_t bs, struct hk_slab *s, struct hk_block *b)
{
    if (s->rc_off != 0) {
        struct hk_slab *rc = (struct hk_slab *)((char *)h + s->rc_off);
        if (rc->used > rc->rc_full_used)  /* room: see hk_rcache_set_cap */
            rcache_push(h, rc, b);
        else
            rcache_overflow(h, rc, s, b);
        return;
    }
    rbatch_add(h, s, b, bs);
}

static inline void free_remote_batch(struct hk_heap *h, struct hk_slab *s, struct hk_heap *dest, struct hk_block *b)
{
    hk_count_free_remote(h, s);
    if (hk_unlikely(s->bsize > HK_SMALL_MAX))
        send_home_now(s, dest, b);  /* a unit block: its owner gets its units back now, not a batch later */
    else
        free_remote_keep(h, s->bsize, s, b);
}

void hk_rcache_flush(struct hk_heap *h)
{
    h->rc_held = 0;
    h->rc_since_ms = 0;
    for (unsigned c = 0; c < HK_LUT_CLASSES; c++) {
        struct hk_slab *rc = &h->rc[c];
        struct hk_block *b = rc->free;
        if (h->direct[hk_lut_index(hk_class_size[c])] == rc)
            hk_heap_set_direct(h, c, h->cur[c]);
        rc->free = NULL;
        rc->used = HK_RC_EMPTY;
        rcache_send_home(h, rc, b);
    }
    hk_rbatch_flush(h);  /* now, not at our next slow path: the owners may be waiting */
}

void hk_rcache_adapt(struct hk_heap *h)
{
    uint16_t hi = (uint16_t)hk_opt.remote_cache;
    h->rc_shrunk = 0;
    for (unsigned c = 0; c < HK_LUT_CLASSES; c++) {
        struct hk_slab *rc = &h->rc[c];
        if (h->rc_overflow[c] < HK_RC_SHRINK_AT / 4 && rc->reserved < hi)
            hk_rcache_set_cap(rc, rc->reserved * 2 < hi ? rc->reserved * 2 : hi);
        h->rc_overflow[c] = 0;
        h->rc_shrunk += rc->reserved < hi;
    }
}

/* Other heaps' blocks wait in our cache one to two decommit delays (or a
 * period, with the delay 0): their slabs can empty by then.  Not every
 * period: a busy thread's cache would go home every 4096 allocations, and
 * its owners would hand those blocks out while our core still holds their
 * lines (bench/larson --lines 1). */
void hk_rcache_age(struct hk_heap *h)
{
    uint64_t now = hk_os_now_ms();
    if (h->rc_since_ms == 0 && hk_opt.decommit_delay_ms != 0)
        h->rc_since_ms = now;
    else if (now - h->rc_since_ms >= (uint64_t)hk_opt.decommit_delay_ms)
        hk_rcache_flush(h);
}

/* The rare cases of a remote free: no heap yet or any more, a block of
 * another node (counted), batching off. */
static hk_cold void free_remote_cold(struct hk_heap *h, struct hk_slab *s, struct hk_heap *dest,
                                   struct hk_block *b)
{
    /* A thread that only frees (a consumer) gets a heap too, after
     * HK_HEAPLESS_FREES frees: its frees are then batched and counted like
     * anyone's. */
    if (h == &hk_heap_empty && ++tls_heapless_frees > HK_HEAPLESS_FREES)
        h = hk_heap_get();
    bool heapless = h == &hk_heap_empty;  /* no heap (yet, or any more): no batch, shared counters */
    unsigned node = hk_ss_of(b)->node;  /* not s->node: the owner's line */
    bool cross = node != (heapless ? hk_numa_current_node() : h->node);
    if (cross)
        ck_pr_inc_64(&hk_node_stats[node].cross_node_frees);  /* statistic: relaxed */
    if (!heapless) {
        hk_count_free_remote(h, s);
    } else if (HK_COUNTING) {
        ck_pr_inc_64(&hk_heapless_stats.free_remote);  /* statistic: relaxed */
        if (HK_COUNT_BYTES)
            ck_pr_add_64(&hk_heapless_stats.small_bytes_freed, s->bsize);
    }
    if (heapless || hk_opt.remote_batch <= 1 || s->bsize > HK_SMALL_MAX) {
        send_home_now(s, dest, b);  /* no batching (nor for unit blocks) */
    } else if (cross) {
        rbatch_add(h, s, b, s->bsize);  /* home, not into our cache: reused here it would be remote memory */
    } else {
        free_remote_keep(h, s->bsize, s, b);
    }
}

/* A free of a block of another heap's slab (s, owned by `dest`). */
void hk_free_remote(struct hk_heap *h, struct hk_slab *s, struct hk_heap *dest, struct hk_block *b)
{
    if (hk_unlikely(hk_ss_of(b)->node != h->remote_node))
        free_remote_cold(h, s, dest, b);
    else
        free_remote_batch(h, s, dest, b);
}

void hk_free_owner_gated(void *p, struct hk_slab *s, struct hk_heap *h, const char *fn)
{
    /* CACHED the only flag: s is current and its class's cache installed
     * (heap.c: hk_heap_set_direct).  The block goes where the class's next
     * allocation looks first, as every free does in jemalloc's and
     * tcmalloc's thread caches: with the owner's frees on the slab's list
     * and other heaps' in the cache, a block waited on two lists before
     * its reuse (larson, 2 threads: 38% of the blocks handed out had been
     * freed 256 operations before or more, 24% now; tcmalloc 22%). */
    if ((s->owner_tag & HK_SLAB_FLAGS) != HK_SLAB_CACHED || !hk_slab_is_block_shared(s, p)) {
        hk_free_slow(p, fn);
        return;
    }
    struct hk_block *b = p;
    if (hk_unlikely(hk_key_marked(b->key))) {
        hk_free_owner_slow(h, s, b, fn);
        return;
    }
    struct hk_slab *rc = (struct hk_slab *)((char *)h + s->rc_off);
    if (rc->used <= rc->rc_full_used) {
        hk_free_local(h, s, b, s->free_key);  /* the cache is full: the fast path's push */
        return;
    }
    HK_STAT_INC(h, free_local);
    HK_STAT_BYTES(h, small_bytes_freed, s->bsize);
    /* The slab counts the block as out until the cache sends it home
     * (rcache_send_home). */
    hk_block_push(rc, &rc->free, b, rc->free_key);
    /* Our blocks hold no other heap's memory: each lowers the full mark,
     * so that they do not crowd other heaps' blocks out of the cache (and
     * home, whence their owners fetch them back), up to twice the cap in
     * all; the mark comes back when the cache stops serving the class
     * (heap.c: hk_heap_set_direct).
     * Larson, 2 threads, 5M frees: 56K blocks went home (21K before our
     * frees joined the cache); with ours counted against the cap, 124K,
     * and 4 and 8 threads ran 3% slower. */
    if (rc->rc_full_used > (uint16_t)(HK_RC_EMPTY - 2 * rc->reserved))
        rc->rc_full_used--;
}

void hk_free_slow(void *p, const char *fn)
{
    if (p == NULL)
        return;
    struct hk_ss *ss = hk_ss_of(p);
    if (hk_unlikely(!hk_ssmap_test((uintptr_t)ss))) {
        struct hk_ss *big = hk_large_lookup_big(p);
        if (big == NULL)
            hk_fatal_ptr(fn, "invalid pointer", p);
        ss = big;
    }
    struct hk_heap *h = hk_tls_heap;
    if (ss->kind == HK_SS_LARGE) {
        hk_large_free(ss, p, fn);
        /* No heap taken for it: a large free batches nothing, and glibc's
         * late frees (HK_HEAPLESS_FREES) may be large. */
        if (h != &hk_heap_empty) {
            HK_STAT_INC(h, large_free);
            hk_heap_wait_for_return(h);  /* for the mapping it may have cached */
        } else if (HK_COUNTING)
            ck_pr_inc_64(&hk_heapless_stats.large_free);  /* statistic: relaxed */
        return;
    }
    struct hk_slab *s = hk_slab_of(ss, p);
    if (hk_unlikely(s == &hk_slab_empty))
        hk_fatal_ptr(fn, "invalid pointer", p);
    struct hk_block *b = hk_slab_block_of(s, p, fn);
    uint64_t owner = ck_pr_load_64(&s->owner_tag) & ~HK_SLAB_FLAGS;
    if (owner == (uint64_t)(uintptr_t)h) {
        if (s->node != h->node)
            ck_pr_inc_64(&hk_node_stats[s->node].cross_node_frees);  /* statistic: relaxed */
        hk_free_owner_slow(h, s, b, fn);
    } else {
        hk_free_remote(h, s, (struct hk_heap *)(uintptr_t)owner, b);
    }
}
