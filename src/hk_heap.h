/* Per-thread heaps.  A thread reaches its heap through an initial-exec TLS
 * pointer that starts at a static empty heap whose slabs have no free blocks,
 * so a thread's first malloc falls into the slow path, which sets it up. */
#ifndef HK_HEAP_H
#define HK_HEAP_H

#include "hk_superslab.h"
#include "hk_sizeclass.h"

struct hk_heap_stats {
    uint64_t malloc, free_local, free_remote;  /* frees = local + remote + large */
    /* Other threads' frees as they came home: on a current slab's list,
     * taken whole, or walked through the inbox (owner side). */
    uint64_t home_list, home_inbox;
    uint64_t large_alloc, large_free;
    uint64_t slab_new, slab_release;
    uint64_t small_bytes_alloc, small_bytes_freed;  /* OBSERVE builds only */
};

/* The frees of threads without a heap (during their teardown, or when no
 * heap could be made: out of memory), which have no counters of their own:
 * relaxed atomic adds, on those rare paths only. */
extern hk_hidden struct hk_heap_stats hk_heapless_stats;

/* Remote frees gathered per destination slab before one push onto its
 * remote list (message batches, as in snmalloc, sorted by slab so that the
 * owner takes them without a walk): owner-only state of the freeing heap,
 * flushed when a batch is full, on our slow paths, at our ticks and at
 * thread exit.
 * Direct-mapped by slab (hk_rbatch_slot); `live` has a bit per slot in use. */
#define HK_RBATCH_SLOTS 64
/* A batch goes once it holds HAKMEM_REMOTE_BATCH blocks or this many bytes:
 * a slab of large blocks (4 to 6 of 128 KiB) never gathers a full batch,
 * and threads that only free never take the slow path that flushes, so 64
 * slots held their blocks by the megabyte (session 12's stress hunt: 76 MB
 * still out at exit against 7 MB with per-heap batches). */
#define HK_RBATCH_BYTES 16384
struct hk_rbatch {
    struct hk_slab *slab;
    struct hk_block *head, *tail;
    uint32_t count;
    uint32_t limit;                /* blocks it takes: HAKMEM_REMOTE_BATCH, fewer of large blocks */
};

/* Slots of the heap's owned-SuperSlab cache: 16 cover 32 MiB of SuperSlabs
 * taken at consecutive addresses. */
#define HK_OWN_SLOTS 16

/* The count a class's current slab holds in its own `used` (set_cur). */
#define HK_CUR_PIN 1

/* Allocations between two looks at time-driven work (memory return). */
#define HK_TICK 4096
/* The fast-path allocations a current slab or a cache counts itself
 * before it hands them to the heap (hk_slab_ticked).  Small, so that a
 * thread whose allocations are spread over many classes still looks every
 * HK_TICK allocations or so, give or take HK_TICK_SLAB per class in use:
 * with the whole period per slab, a loop over 40 classes looked 40 times
 * less often, and gave its memory back 10 s late instead of 1 s
 * (helper 24). */
#define HK_TICK_SLAB 128
/* A slab's `ticks` when none of its fast-path allocations is uncounted:
 * the HK_TICK_SLAB-th carries out of the 16 bits (hk_slab_count_take). */
#define HK_TICK_BASE ((uint16_t)(0x10000 - HK_TICK_SLAB))
_Static_assert(HK_TICK_SLAB > 0 && HK_TICK_SLAB <= HK_TICK, "a slab hands over at most a period");

/* A remote-block cache's `used` when it holds no block: it counts its
 * blocks down from there, and the fast path's pops back up, so that it
 * never wraps past 0xffff into `ticks` (hk_slab.used_ticks). */
#define HK_RC_EMPTY ((uint16_t)0x8000)

struct hk_heap {
    /* Counts the allocations counted in the heap (the slow paths' and
     * those its slabs hand over: hk_slab_ticked, hk_slab_harvest) down to
     * the next look.  The allocation counter is stats.malloc, which they
     * go into too, plus what the current slabs and the caches still hold
     * in their `ticks` (stats.c: sum_heaps). */
    int32_t tick;
    /* `node` where the remote-free fast path applies (free.c:
     * hk_free_remote), else HK_NODE_NONE, which no SuperSlab has: batching
     * off, the shared empty heap.  One compare for the three tests. */
    uint32_t remote_node;
    /* The current slab by hk_lut_index(size) for sizes up to HK_LUT_MAX:
     * one dependent load less than class lookup + cur[] on the hottest
     * path. */
    struct hk_slab *direct[(HK_LUT_MAX >> HK_LUT_SHIFT) + 1];
    /* SuperSlabs this heap owns, direct-mapped by address (hk_own_slot;
     * HK_OWN_NONE when empty): a free of a block in one of them is known to
     * be ours without the map or the SuperSlab's header.  Kept exact by
     * hk_ss_acquire and hk_ss_release; a miss just takes the general path. */
    struct hk_ss *own[HK_OWN_SLOTS];
    /* Other SuperSlabs of small blocks this heap freed into, direct-mapped
     * like own[]: a chunk that was one stays one (small SuperSlabs are never
     * unmapped), so a hit needs no look at the map, whose two levels cost
     * remote frees about 2% of xmalloc's instructions at 2 threads. */
    struct hk_ss *seen[HK_OWN_SLOTS];
    struct hk_slab *cur[HK_CLASSES];       /* the slab each class allocates from */
    struct hk_slab *partial[HK_CLASSES];   /* other slabs with free blocks: queue heads */
    struct hk_slab *partial_tail[HK_CLASSES];
    /* Blocks other threads freed: batches of our slabs that are not their
     * class's current one (a current slab's go onto its own list), and the
     * notifications of full slabs.  MPSC: pushers CAS a chain on, the owner
     * takes everything with one exchange. */
    ck_stack_t inbox __attribute__((aligned(64)));  /* its own line: other threads CAS it */
    uint32_t handed;                       /* blocks handed to it since its last sweep, once abandoned (lifecycle.c: hk_heap_handed) */
    uint64_t sweep_proc;                   /* the process of its last sweeper (lifecycle.c: claim_abandoned, after fork) */
    uint32_t node __attribute__((aligned(64)));    /* NUMA node the heap draws from */
    uint32_t state;                        /* HK_HEAP_* */
    /* The kernel's ids of the thread that owns the heap (tid 0: none) and
     * of its process, and the process's own (lifecycle.c: proc_id), set
     * by its taker before it stores HK_HEAP_ACTIVE, the tid cleared before
     * it is abandoned: a heap whose
     * thread is gone without handing it back is abandoned for it
     * (lifecycle.c: reap_gone). */
    uint32_t owner_tid, owner_pid;
    uint64_t owner_proc;
    /* Owned SuperSlabs with free units, by their longest free run (list i:
     * i + 1 units), so that a slab of n units takes the first SuperSlab of
     * the first list from n on, without a search: a unit block (heap.c)
     * takes a new slab at every allocation, and one list of every
     * SuperSlab with a unit left was walked whole each time. */
    struct hk_ss *avail[HK_UNITS];
    uint32_t avail_bins;                   /* lists that are not empty */
    struct hk_ss *empty;                   /* empty SuperSlabs kept committed for a while */
    struct hk_ss *purge;                   /* SuperSlabs with free units still committed */
    uint32_t empty_count;
    uint32_t empty_extra;                  /* of them, kept beyond HAKMEM_SS_CACHE (reclaim.c: budget_units) */
    uint32_t exited_units;                 /* units kept for an adopter since the thread exited (hk_heap_trim_exited) */
    int32_t maintain_wait;                 /* slow paths until the next look (hk_heap_maintain) */
    uint64_t rbatch_live;
    struct hk_rbatch rbatch[HK_RBATCH_SLOTS];
    ck_stack_entry_t abandon_entry;
    struct hk_heap *all_next;
    struct hk_heap_stats stats;
    /* An empty slab per class kept on its partial list for the decommit
     * delay instead of being released (hk_slab_emptied); low bit set once
     * an aging pass (hk_spare_age, on the ticker) has seen it.  A class that
     * fills a slab and empties it again, round after round, reuses its
     * carved blocks instead of setting up and carving a slab each time. */
    uintptr_t spare[HK_CLASSES];
    uint32_t spare_count;
    uint64_t spare_aged_ms;                /* the last aging pass */
    /* Other heaps' blocks this heap freed, kept for its own next
     * allocations of their class, as jemalloc's and tcmalloc's thread
     * caches keep any block: the freeing thread has the block's line, its
     * owner would have to fetch it back (that fetch, one cache miss per
     * block in a dependent chain, was a fifth of larson's time).  One
     * pseudo-slab per class up to HK_LUT_MAX: `free` holds the blocks,
     * `used` counts down from HK_RC_EMPTY as they come in and the malloc
     * fast path counts it back up, `reserved` caps them (halved as the
     * class overflows, grown back by hk_rcache_adapt: see free.c),
     * `free_key` marks them (double frees; the pop clears a block's key).
     * While it holds blocks the class's direct[] entries point at it, so
     * the malloc fast path serves it unchanged, and the owner's frees of
     * the class's current slab go into it too (HK_SLAB_CACHED: one LIFO
     * list, as a thread cache's); its miss (rcache_drained)
     * points them back at the class's slab in a few stores.  Given back
     * after the decommit delay (hk_rcache_age) and at collections
     * (hk_rcache_flush). */
    uint32_t rc_held;                      /* the cache may hold blocks */
    uint64_t rc_since_ms;                  /* hk_rcache_age first saw it holding (0: not yet) */
    uint32_t rc_overflow[HK_LUT_CLASSES];  /* frees the full cache sent home this ticker period (ever, without ticks) */
    uint32_t rc_shrunk;                    /* classes whose cap is below HAKMEM_REMOTE_CACHE */
    struct hk_slab rc[HK_LUT_CLASSES];
    /* Last, as fields added before rbatch[] moved it to an offset that
     * cost the remote free 2 instructions (lea, shl). */
    uint64_t tick_ms;                      /* the last tick's time (reclaim.c: tick_overdue) */
    uint32_t return_wait;                  /* memory waits for the delay (reclaim.c: hk_heap_maintain_now) */
    /* Odd while the owner changes a slab's `lent` and the `ticks` it
     * belongs to (reclaim.c: lend_begin), so that statistics read the two
     * as a pair or not at all (stats.c: sum_heaps). */
    uint32_t lend_seq;
    uint64_t soon_ms;                      /* the last look_soon (reclaim.c), at most one per delay */
} __attribute__((aligned(64)));

_Static_assert(_Alignof(struct hk_heap) > HK_SLAB_FLAGS, "owner tags keep their flags in a heap address's low bits");

#define HK_NODE_NONE UINT32_MAX  /* the remote_node of heaps that take every remote free's slow path */

#define HK_OWN_NONE ((struct hk_ss *)1)  /* matches no SuperSlab (they are 2 MiB aligned) */

hk_inline unsigned hk_own_slot(const struct hk_ss *ss)
{
    return (unsigned)((uintptr_t)ss >> HK_SS_SHIFT) & (HK_OWN_SLOTS - 1);
}

enum { HK_HEAP_EMPTY = 0, HK_HEAP_ACTIVE = 1, HK_HEAP_ABANDONED = 2, HK_HEAP_SWEEPING = 3 };
_Static_assert(HK_HEAP_SWEEPING > HK_HEAP_ABANDONED && HK_HEAP_ACTIVE < HK_HEAP_ABANDONED,
               "state >= HK_HEAP_ABANDONED: an exited thread's heap, swept or not (free.c)");

extern hk_hidden struct hk_heap hk_heap_empty;
extern hk_hidden struct hk_slab hk_slab_empty;
extern hk_hidden __thread struct hk_heap *hk_tls_heap __attribute__((tls_model("initial-exec")));

/* Statistics counters, written by the owner only and summed racily by
 * readers.  Plain increments; the TSan build makes them relaxed atomics so
 * the reports' reads are not flagged. */
#if HK_TSAN
#define HK_STAT_ADD(heap, field, n) \
    do { if (HK_COUNTING) __atomic_store_n(&(heap)->stats.field, \
            __atomic_load_n(&(heap)->stats.field, __ATOMIC_RELAXED) + (n), __ATOMIC_RELAXED); } while (0)
#else
#define HK_STAT_ADD(heap, field, n) do { if (HK_COUNTING) (heap)->stats.field += (n); } while (0)
#endif
#define HK_STAT_INC(heap, field) HK_STAT_ADD(heap, field, 1)
#define HK_STAT_BYTES(heap, field, n) do { if (HK_COUNT_BYTES) HK_STAT_ADD(heap, field, n); } while (0)

hk_hidden void *hk_malloc_slow(size_t size, struct hk_heap *heap, bool zero);
/* The fast path's miss on s, the class's current slab. */
hk_hidden void *hk_malloc_refill(size_t size, struct hk_slab *s, struct hk_heap *heap, bool zero);
hk_hidden void hk_free_slow(void *p, const char *fn);
/* The owner's free of b, a block of s, off the fast path: a key word that
 * may mark it free already, or a slab the fast path does not take. */
hk_hidden void hk_free_owner_slow(struct hk_heap *h, struct hk_slab *s, struct hk_block *b, const char *fn);
/* The allocation ticker ran out: time-driven work, then the next period. */
hk_hidden void hk_heap_tick(struct hk_heap *heap);
/* The fast path's count on s carried (hk_slab_count_take): its
 * HK_TICK_SLAB allocations into the heap's count, then p back (a tail
 * call: no registers to save). */
hk_hidden void *hk_slab_ticked(void *p, struct hk_heap *heap, struct hk_slab *s);
/* The allocations a slab with `ticks` t and `lent` l has made and not
 * handed to its heap: 0 for a slab that is not current (t 0, below
 * HK_TICK_BASE), and for one whose shortened count carried (t 0 too,
 * with l still set). */
hk_inline uint16_t hk_ticks_uncounted(uint16_t t, uint8_t l)
{
    return t >= HK_TICK_BASE + l ? (uint16_t)(t - HK_TICK_BASE - l) : 0;
}
/* The uncounted allocations of s, a current slab, into the heap's count
 * (owner only), before s stops being current.  It does not tick, as its
 * callers are in the middle of changing the heap: a period it ends ticks at
 * the next count. */
hk_hidden void hk_slab_harvest(struct hk_heap *heap, struct hk_slab *s);

/* n allocations into the heap's count; returns what is left of the
 * ticker's period. */
hk_inline int32_t hk_heap_tally(struct hk_heap *h, int32_t n)
{
    HK_STAT_ADD(h, malloc, (uint64_t)n);
    return h->tick -= n;
}

/* Count n allocations, and tick when the period is over. */
hk_inline void hk_heap_count(struct hk_heap *h, int32_t n)
{
    if (hk_unlikely(hk_heap_tally(h, n) <= 0))
        hk_heap_tick(h);
}

/* Count one allocation of the slow paths. */
hk_inline void hk_heap_count_alloc(struct hk_heap *h)
{
    hk_heap_count(h, 1);
}

/* Count the fast path's allocation from s, a current slab or a cache, in
 * the add that counts it out of s: one read-modify-write of a line the
 * pop has just written, where a count in the heap was a second one, which
 * cost bench/mixed 3-4%.  True when `ticks` carried: HK_TICK_SLAB
 * allocations since its last hand-over (hk_slab_ticked). */
hk_inline bool hk_slab_count_take(struct hk_slab *s)
{
#if defined(__x86_64__)
    /* GCC splits the portable form into a load, an add and a store. */
    bool carry;
    __asm__("addl %2, %0" : "+m"(s->used_ticks), "=@ccc"(carry) : "i"(0x10001));
    return carry;
#else
    uint32_t v;
    bool carry = __builtin_add_overflow(s->used_ticks, (uint32_t)0x10001, &v);
    s->used_ticks = v;
    return carry;
#endif
}
/* A unit block can hold `size` bytes aligned to `align` (a power of two). */
hk_hidden bool hk_unit_block_fits(size_t size, size_t align);
/* A unit block of `size` bytes at a multiple of `align` (hk_unit_block_fits). */
hk_hidden void *hk_malloc_unit_aligned(size_t size, size_t align);
/* Resize p, a block validated as ours, to `size` bytes in place: true when
 * p is a unit block of the caller's heap (heap.c: unit_block_alloc) that
 * now spans the units `size` takes, grown into free units that follow it
 * or shrunk. */
hk_hidden bool hk_unit_block_resize(void *p, size_t size);
/* The caller's heap, set up if the thread has none yet (the shared empty
 * heap only during thread teardown or when out of memory). */
hk_hidden struct hk_heap *hk_heap_get(void);
hk_hidden void hk_free_remote(struct hk_heap *h, struct hk_slab *s, struct hk_heap *dest, struct hk_block *b);
/* Blocks the cache of a class gathers before the class's direct entries
 * point at it (at most its cap): when a thread allocates a class faster
 * than other heaps' blocks of it come in (larson), the cache runs dry after
 * a block or two, and pointing the entries at it and back on every block
 * cost more than the blocks saved. */
#define HK_RC_INSTALL 8
/* The cache rc holds HK_RC_INSTALL blocks, or its cap: its class's direct
 * entries point at it (if they do not yet). */
hk_hidden void hk_rcache_install(struct hk_heap *h, struct hk_slab *rc);
/* Cap the cache rc at `cap` blocks (and the count that installs it); its
 * `used` counts the blocks down from HK_RC_EMPTY. */
hk_inline void hk_rcache_set_cap(struct hk_slab *rc, uint16_t cap)
{
    rc->reserved = cap;
    rc->rc_full_used = (uint16_t)(HK_RC_EMPTY - cap);
    rc->rc_install_used = (uint16_t)(HK_RC_EMPTY + 1 - (cap < HK_RC_INSTALL ? cap : HK_RC_INSTALL));
}
/* Count a remote free of a block of s. */
hk_inline void hk_count_free_remote(struct hk_heap *h, const struct hk_slab *s)
{
    HK_STAT_INC(h, free_remote);
    HK_STAT_BYTES(h, small_bytes_freed, s->bsize);
}
/* The remote free of b, of slab s, whose class's cache rc (of heap h, on
 * the SuperSlab's node) is full: batched for its owner, counted. */
hk_hidden void hk_free_remote_full(struct hk_heap *h, struct hk_slab *rc, struct hk_slab *s, struct hk_block *b);
/* The same, rc having room but b's key word the top bit set: a double free
 * if it is one of our marks, else pushed. */
hk_hidden void hk_free_remote_marked(struct hk_heap *h, struct hk_slab *rc, struct hk_slab *s, struct hk_block *b);
/* Send the remote-block cache's blocks to their owners (batched). */
hk_hidden void hk_rcache_flush(struct hk_heap *h);
/* The ticker: caps of classes that stopped overflowing grow back (see
 * free.c: rcache_overflowing halves them). */
hk_hidden void hk_rcache_adapt(struct hk_heap *h);
/* The ticker, and a thread that only frees: the cache home once it is due. */
hk_hidden void hk_rcache_age(struct hk_heap *h);
/* Point the direct[] entries of class cls (<= HK_LUT_MAX) at s: the
 * class's slab s = h->cur[cls], or its cache s = &h->rc[cls], which then
 * takes the owner's frees of the slab's blocks too (HK_SLAB_CACHED). */
hk_hidden void hk_heap_set_direct(struct hk_heap *h, unsigned cls, struct hk_slab *s);
/* The owner's free of p, a pointer into slab s of ours that failed the
 * fast path's check: a block of a current slab whose class's cache is
 * installed goes into the cache (HK_SLAB_CACHED), anything else to
 * hk_free_slow. */
hk_hidden void hk_free_owner_gated(void *p, struct hk_slab *s, struct hk_heap *h, const char *fn);
/* Flush, process the inbox, release empty slabs; release_all also gives
 * back the committed reserve at once (hak_collect), else the delay rules. */
void hk_heap_collect(struct hk_heap *heap, bool release_all);
/* Every block of s is back (never the current slab: see HK_CUR_PIN):
 * kept as the class's spare, or released. */
hk_hidden void hk_slab_emptied(struct hk_heap *h, struct hk_slab *s);
/* Collect h for its absent owner, if it is an exited thread's heap that no
 * adopter or other sweeper holds (an abandoned heap stays in the abandoned
 * stack meanwhile, where adopters leave it alone until it is handed back);
 * release_all gives back the reserve it keeps for its adopter too. */
hk_hidden void hk_heap_sweep(struct hk_heap *h, bool release_all);
/* n blocks were handed to h, an exited thread's heap: swept every few
 * thousand, the rest by the next ticker pass (hk_heap_sweep_owed). */
hk_hidden void hk_heap_handed(struct hk_heap *h, uint32_t n);
hk_hidden void hk_heap_sweep_owed(void);
struct hk_heap *hk_heap_registry_head(void);
void hk_process_init(void);
/* Word `slot` of a page of the process's that a fork's child gets zeroed
 * (lifecycle.c: proc_page; 0 its id, 1 a look's thread); NULL where the
 * kernel cannot wipe it. */
hk_hidden uint64_t *hk_process_word(unsigned slot);
#define HK_PROC_UNCOMMITS 2  /* superslab.c: uncommits */
/* The topology just became known: place the caller's early SuperSlabs. */
void hk_heap_numa_ready(void);

/* The owner's bound is also a gate: it is the carved bound only while the
 * owner tag carries no flag (not full, not foreign), else 0, so
 * hk_slab_is_block fails and the owner's free takes the path that handles
 * the flag -- one compare on the fast path does for both.  Call after any
 * change of owner_tag or of the carved bound. */
hk_inline void hk_slab_gate_owner(struct hk_slab *s)
{
    s->limit = (s->owner_tag & HK_SLAB_FLAGS) ? 0 : s->shared_limit;
}

/* A block's key word may mark it free: its top bit is set (a list's key,
 * which hk_mark_key gives the top bit, hk_sent_key, the remote-block
 * cache's key; see free.c, freed_elsewhere).  One compare with the word in
 * place on the free fast path. */
hk_inline bool hk_key_marked(uintptr_t word)
{
    return (intptr_t)word < 0;
}

/* Key k made a list's key: top bit set (see hk_key_marked). */
hk_inline uintptr_t hk_mark_key(uintptr_t k)
{
    return k | (uintptr_t)1 << 63;
}

/* Push free block b of s, marked with key, onto *list, one block fewer out
 * of s; returns used_ticks, whose low half is the blocks still out, and
 * which is 0 exactly when s is not current and has no block out (see
 * hk_slab.ticks).  Every list of freed blocks (a slab's local frees, the
 * remote-block cache) takes its blocks this way.  The decrement is as wide
 * as the malloc fast path's add: that add's load of a word written by a
 * narrower store waits for the store to reach the cache instead of taking
 * its value from it (larson, 1 thread: 2-5% slower). */
hk_inline uint32_t hk_block_push(struct hk_slab *s, struct hk_block **list, struct hk_block *b, uintptr_t key)
{
    b->key = key;
    b->next = *list;
    *list = b;
    return --s->used_ticks;  /* used >= 1: no borrow from ticks */
}

/* The owner gives b back to s: onto the list the next allocation pops.
 * Returns used_ticks (hk_block_push). */
hk_inline uint32_t hk_slab_push_owner(struct hk_slab *s, struct hk_block *b, uintptr_t key)
{
    return hk_block_push(s, &s->free, b, key);
}

/* Take the first block of s (which has one) for an allocation of `size`:
 * the pop, the byte counter, calloc's zeroing, not the count of `used`
 * (hk_slab_take, hk_slab_count_take).  The block's key word is cleared: a
 * block handed out no longer matches its list's key, so only a block still
 * on a list (a double free) sends free to the list scan. */
hk_inline struct hk_block *hk_slab_pop(struct hk_heap *h, struct hk_slab *s, size_t size, bool zero)
{
    struct hk_block *b = s->free;
    s->free = b->next;
    if (zero) {
        /* A key word of 0 on a list marks a block carved from fresh memory
         * (fresh_zero): the rest of it is still zero. */
        if (b->key == 0)
            b->next = NULL;
        else
            __builtin_memset(b, 0, size);
    }
    b->key = 0;
    HK_STAT_BYTES(h, small_bytes_alloc, s->bsize);
    return b;
}

/* hk_slab_pop, counted out of s (the slow paths: the caller counts the
 * allocation on the heap's ticker). */
hk_inline struct hk_block *hk_slab_take(struct hk_heap *h, struct hk_slab *s, size_t size, bool zero)
{
    struct hk_block *b = hk_slab_pop(h, s, size, zero);
    s->used++;
    return b;
}

/* p is the start of a block the slab has carved, not necessarily live, in a
 * slab whose gate is open (the owner's view: line 1). */
hk_inline bool hk_slab_is_block(const struct hk_slab *s, const void *p)
{
    /* One multiply and one compare for "off is a multiple of bsize and below
     * the carved frontier" (after Lemire's divisibility test): with
     * c = floor(2^64 / bsize) + 1 and e = bsize * c mod 2^64 (1 <= e <= bsize),
     * the k-th block's offset maps to k * e, which is below limit = carved
     * blocks * e exactly when k is carved; any other offset within 2^32 of
     * the slab maps to at least c - 2^32 > 2^48, far above limit.  Checked
     * for every class, offset and frontier by tests/slab_check. */
    uint64_t off = (uintptr_t)p - s->start;
    return off * s->div_c < s->limit;
}

/* The same test for any thread, gate or not, on the copies in line 2
 * (shared_limit is always the carved bound).  Relaxed: other
 * threads check blocks the owner carved before handing them over, so any
 * value they read covers them. */
hk_inline bool hk_slab_is_block_shared(const struct hk_slab *s, const void *p)
{
    uint64_t off = (uintptr_t)p - s->shared_start;
    return off * s->shared_div_c < ck_pr_load_64(&s->shared_limit);
}

/* p as a block of the slab, validated: aborts with `fn` in the message when
 * p is not the start of a block we carved. */
struct hk_block *hk_slab_block_of(struct hk_slab *slab, void *p, const char *fn);

#endif
