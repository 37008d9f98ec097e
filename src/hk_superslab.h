/* SuperSlabs and their slab descriptors, the process-wide map of our
 * SuperSlab chunks, and the per-node pools of empty SuperSlabs. */
#ifndef HK_SUPERSLAB_H
#define HK_SUPERSLAB_H

#include "hk_config.h"
#include <ck_pr.h>
#include <ck_stack.h>

struct hk_heap;
struct hk_ss;

/* A stack popped with ck_stack_pop_mpmc (the pools, the abandoned heaps),
 * its generation counter at 1: ck_stack keeps the counter in a char
 * pointer and counts it with pointer arithmetic, which from NULL is
 * undefined (clang's UBSan: "applying non-zero offset 1 to null pointer"
 * at the first pop).  From 1 it wraps after 2^64 pops. */
#define HK_STACK_MPMC_INIT { .head = NULL, .generation = (char *)1 }

/* A free block: its link, then the double-free key, set while it is on a
 * list (every class is at least 16 bytes: see hk_sizeclass.h). */
struct hk_block {
    struct hk_block *next;
    uintptr_t key;
};

/* The first block of a chain of one slab's blocks on its way to the
 * owner's inbox, in classes of HK_CHAIN_MIN bytes and more: the chain's
 * tail and length (the length above the address bits, as in the remote
 * word), and the link to the next chain in the inbox.  The owner splices
 * such a chain onto its slab's list whole, reading this block only
 * (free.c: hk_inbox_process).  16-byte blocks have no room: their chains
 * link through their tail's `next` and are walked block by block. */
struct hk_chain {
    struct hk_block *next;
    uintptr_t key;
    uintptr_t last_count;
    struct hk_block *link;
};
#define HK_CHAIN_MIN        sizeof(struct hk_chain)
#define HK_CHAIN_COUNT_SHIFT 48
#define HK_CHAIN_LAST       (((uintptr_t)1 << HK_CHAIN_COUNT_SHIFT) - 1)
_Static_assert(HK_ADDR_BITS < HK_CHAIN_COUNT_SHIFT, "block addresses stay below the chain's length");

/* owner_tag = owning heap | flags.  A flag set closes the slab's gate (its
 * owner-side limit is 0, see hk_slab_gate_owner), which sends the owner's
 * frees off the fast path. */
#define HK_SLAB_FULL     ((uint64_t)1)  /* no free blocks; remote frees notify the heap */
#define HK_SLAB_FOREIGN  ((uint64_t)2)  /* on another node than its heap: frees count as cross-node */
#define HK_SLAB_CACHED   ((uint64_t)4)  /* current, its class's remote-block cache installed: the owner's frees go into it */
#define HK_SLAB_FLAGS    ((uint64_t)7)

/* The remote-free word: state bits in the low bits (blocks are 8-aligned);
 * while the slab is its class's current one (HK_REMOTE_CUR), the list of
 * blocks other threads freed, and above the 47-bit address space their
 * number, so that the owner takes them without a walk
 * (hk_slab_drain_remote_owner).  Other slabs' blocks go to the owner's
 * inbox (free.c: remote_push).  A slab has fewer than 2^16 blocks (its
 * `reserved` is 16 bits): the count never overflows its field. */
#define HK_REMOTE_NONE        ((uintptr_t)0)
#define HK_REMOTE_WANT        ((uintptr_t)1)  /* slab full: next freer notifies the owner */
#define HK_REMOTE_NOTIFIED    ((uintptr_t)2)  /* owner notified, not yet handled */
#define HK_REMOTE_STATE       ((uintptr_t)3)
#define HK_REMOTE_CUR         ((uintptr_t)4)  /* the class's current slab: frees go onto the list */
#define HK_REMOTE_COUNT_SHIFT 48
#define HK_REMOTE_LIST        ((((uintptr_t)1 << HK_REMOTE_COUNT_SHIFT) - 1) & ~(uintptr_t)7)
#define HK_REMOTE_TAKE        (~(uintptr_t)0 << 3)  /* list and count: what a drain takes */
_Static_assert(HK_ADDR_BITS < HK_REMOTE_COUNT_SHIFT, "block addresses stay below the count");

struct hk_slab {
    /* Line 1: the owner's.  Everything its malloc and free touch; no other
     * thread reads it on a fast path (a free tells ours from another heap's
     * by the SuperSlab's owner, and other heaps' frees read line 2). */
    uint64_t owner_tag;           /* owning heap | flags */
    uint64_t div_c;               /* floor(2^64 / bsize) + 1: see hk_slab_is_block */
    uint64_t limit;               /* blocks carved * (bsize * div_c mod 2^64); 0 when gated */
    uintptr_t start;              /* first block */
    /* Allocation list.  The owner's frees push onto it too (LIFO, as
     * tcmalloc's and jemalloc's thread caches): the next allocation of the
     * class gets the block freed last, still in cache (while the class's
     * remote-block cache serves it, that cache takes them: HK_SLAB_CACHED).
     * Separate lists for local frees (mimalloc's sharding) kept every
     * block a slab had carved in circulation, a whole generation between a
     * block's free and its reuse: twice the lines in use on mixed, all at
     * the start of 64 KiB units, thrashing their L2 sets. */
    struct hk_block *free;
    uintptr_t free_key;           /* marks blocks on `free` (double frees; odd, top bit set) */
    /* The fast path's one add (hk_slab_count_take): `used`, the blocks out
     * from the owner's point of view, and above it `ticks`, the allocation
     * ticker's count for this slab while it is its class's current one or
     * a remote-block cache: HK_TICK_BASE plus the fast-path allocations not
     * yet counted in the heap, whose carry out of the top bit, every
     * HK_TICK_SLAB allocations, hands them over (hk_slab_ticked; also
     * hk_slab_harvest).  Other slabs have `ticks` 0, so that the
     * free's decrement of the whole word (hk_block_push) gives 0 when such
     * a slab empties; a current slab never does (HK_CUR_PIN).  `used`
     * never wraps (a slab's stays at most `reserved`, a cache's from
     * HK_RC_EMPTY down), so no carry or borrow crosses into `ticks` but the
     * fast path's own. */
    union {
        uint32_t used_ticks;
        struct {
            uint16_t used;
            uint16_t ticks;
        };
    };
    uint8_t cls;
    uint8_t node;
    uint8_t in_partial;
    /* The slab's memory was zero when it was set up.  Its blocks carved
     * then keep a key word of 0 on `free`, where every other block carries
     * the key: calloc skips clearing those (hk_slab_take). */
    uint8_t fresh_zero;
    /* A remote-block cache's thresholds of `used`, so that its inline push
     * (hk_api.h: hk_free_remote_keep) compares the count it loads, and
     * reads no field of line 2 (hk_rcache_set_cap): full at or below
     * rc_full_used; its class's direct entries move to it when a push
     * takes `used` below rc_install_used (it then holds the lesser of
     * HK_RC_INSTALL and its cap). */
    uint16_t rc_full_used;
    uint16_t rc_install_used;
    /* Of the allocations `ticks` holds above HK_TICK_BASE, those that did
     * not happen: a count shortened so that it hands over early
     * (reclaim.c: look_soon).  Its hand-overs and the statistics take them
     * off; changed only inside the heap's hk_heap.lend_seq brackets. */
    uint8_t lent;
    /* Line 2: what other threads read -- copies of the block geometry for
     * validating their frees, the remote-free word they push to -- and
     * owner fields written only on slow paths. */
    uint64_t remote __attribute__((aligned(64)));  /* MPSC list: count, head, state (HK_REMOTE_*) */
    uint64_t shared_div_c;        /* = div_c */
    uint64_t shared_limit;        /* blocks carved * ... always (relaxed; the owner's limit is a gated copy) */
    uintptr_t shared_start;       /* = start */
    struct hk_slab *prev, *next;  /* heap's partial list */
    uint32_t bsize;
    /* Where a freeing heap keeps other heaps' blocks of this class: the
     * offset of its cache (hk_heap.rc) in any heap, 0 for classes without
     * one (above HK_LUT_MAX, unit blocks).  The remote free's fast path
     * finds the cache in one add instead of a size-class lookup. */
    uint32_t rc_off;
    uint16_t reserved;            /* blocks that fit */
    uint8_t units;
    uint8_t first_unit;
} __attribute__((aligned(64)));

_Static_assert(sizeof(struct hk_slab) == 128, "two cache lines per slab descriptor");
_Static_assert(offsetof(struct hk_slab, remote) == 64, "what other threads read has its own line");
_Static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__ &&
               offsetof(struct hk_slab, ticks) == offsetof(struct hk_slab, used) + 2 &&
               offsetof(struct hk_slab, used) == offsetof(struct hk_slab, used_ticks),
               "used is the low half of used_ticks");

enum hk_ss_kind { HK_SS_SMALL = 1, HK_SS_LARGE = 2 };

struct hk_ss {
    uint32_t kind;
    uint32_t node;
    struct hk_heap *heap;          /* owner (small SuperSlabs) */
    uint32_t free_units;           /* bitmap of units not in a slab */
    uint32_t dirty_units;          /* units touched since the last decommit */
    uint32_t in_avail;             /* longest free run, when on the heap's avail lists; else 0 */
    uint32_t live;                 /* handed out by the pool (statistics walkers) */
    struct hk_ss *prev, *next;     /* heap's list of SuperSlabs with free units */
    ck_stack_entry_t pool_entry;   /* node pool or heap cache */
    struct hk_ss *all_next;        /* registry of every SuperSlab ever made */
    uint64_t empty_since_ms;
    struct hk_ss *purge_next;      /* heap's list of SuperSlabs with dirty free units */
    uint64_t purge_since_ms;
    uint16_t in_purge;
    uint16_t body_reserved;        /* pooled with its body uncommitted (hk_ss_pool_uncommit) */
    union {
        uint32_t block_units;      /* small: free units a unit block held last (reclaim.c: hk_heap_trim_exited) */
        uint32_t large_state;      /* large: 1 in use, 2 cached */
    };
    /* Large blocks (kind HK_SS_LARGE) */
    size_t map_size;               /* bytes mapped from the header on */
    size_t large_size;             /* usable bytes of the block: the size asked for, in whole pages */
    size_t large_asked;            /* the size last asked for (malloc, realloc) */
    uintptr_t large_block;         /* the block */
    struct hk_slab *unit_slab[HK_UNITS];  /* unit -> slab; &hk_slab_empty for units not in a slab */
    struct hk_slab slabs[HK_UNITS];
};

_Static_assert(sizeof(struct hk_ss) <= HK_SS_HDR_SIZE, "the header fits its reserved area");
/* Each descriptor's two lines in one 128-byte pair, which the adjacent-line
 * prefetcher fetches together: straddling pairs would pull a neighbour
 * descriptor's line, which another core may be writing, into every fetch
 * (f3b3da3 moved them to 448 by adding a header field; back at 384). */
_Static_assert(offsetof(struct hk_ss, slabs) % 128 == 0, "slab descriptors are 128-byte aligned");

hk_inline struct hk_ss *hk_ss_of(const void *p)
{
    return (struct hk_ss *)((uintptr_t)p & ~(uintptr_t)HK_SS_MASK);
}

/* The slab p is in, from the unit table (&hk_slab_empty when none). */
hk_inline struct hk_slab *hk_slab_of(const struct hk_ss *ss, const void *p)
{
    return ss->unit_slab[((uintptr_t)p >> HK_UNIT_SHIFT) & (HK_UNITS - 1)];
}

/* The descriptor of the unit p is in (slabs[unit]), which is p's slab only
 * when that unit heads it (see hk_free): one shift, one mask, one add. */
_Static_assert(sizeof(struct hk_slab) == (size_t)1 << 7, "hk_unit_desc scales a unit index by 128");
hk_inline struct hk_slab *hk_unit_desc(struct hk_ss *ss, const void *p)
{
    uintptr_t off = ((uintptr_t)p >> (HK_UNIT_SHIFT - 7)) & ((uintptr_t)(HK_UNITS - 1) << 7);
    return (struct hk_slab *)((char *)ss->slabs + off);
}

/* The map: one byte per SuperSlab-sized chunk of the 47-bit space, in two
 * levels: 1024 leaves of 64 KiB, each covering 128 GiB, mapped when a chunk
 * of their range is first ours (a process has one or two).  Flat, it was
 * 64 MiB of BSS: programs that scan every library's data as roots (Boehm
 * GC: guile) scanned it at every collection, and mlockall() locked it.  A
 * top entry holds its leaf's address minus hk_ssmap_none's, so the zero
 * of BSS means "the all-zero leaf": two loads, no branch, and no pointer
 * to relocate at load time.  Set before a chunk's first pointer is handed
 * out; a reader holding a pointer we returned is ordered after that (and
 * after the leaf's installation) by however the pointer reached it. */
#define HK_SSMAP_BITS (HK_ADDR_BITS - HK_SS_SHIFT)
#define HK_SSMAP_LEAF_BITS 16
extern hk_hidden uint8_t hk_ssmap_none[(size_t)1 << HK_SSMAP_LEAF_BITS];
extern hk_hidden uintptr_t hk_ssmap_top[(size_t)1 << (HK_SSMAP_BITS - HK_SSMAP_LEAF_BITS)];

hk_inline bool hk_ssmap_test(uintptr_t a)
{
    uintptr_t i = a >> HK_SS_SHIFT;
    if (hk_unlikely(i >= ((uintptr_t)1 << HK_SSMAP_BITS)))
        return false;  /* above the 47-bit space: not ours, not in the map */
    /* Relaxed: see above. */
    uintptr_t leaf = ck_pr_load_64(&hk_ssmap_top[i >> HK_SSMAP_LEAF_BITS]);
    const uint8_t *e = (const uint8_t *)((uintptr_t)hk_ssmap_none + leaf + (i & (((uintptr_t)1 << HK_SSMAP_LEAF_BITS) - 1)));
    return ck_pr_load_8(e) != 0;
}
/* Map the leaf covering the chunk at a, if it is not yet: false when out of
 * memory.  Before the chunk is first marked ours. */
bool hk_ssmap_reserve(uintptr_t a);
/* Mark the chunk at a ours (on; its leaf reserved) or not. */
void hk_ssmap_set(uintptr_t a, bool on);

/* A small SuperSlab for `heap` on `node`: from the node's pool, else the OS
 * (bound to the node before first touch).  NULL when out of memory. */
struct hk_ss *hk_ss_acquire(struct hk_heap *heap, unsigned node);
/* Hand an empty SuperSlab back: decommitted, onto its node's pool (its
 * header stays memory, and in the committed count). */
void hk_ss_release(struct hk_ss *ss);
/* When the kernel refuses a mapping: the pooled SuperSlabs' bodies become
 * reservations (hk_os_uncommit), so that what they held of RLIMIT_DATA or
 * of the commit charge is the program's again.  Returns after the other
 * threads' uncommits under way too; nonzero when a mapping is worth trying
 * again: bodies it changed, or another thread's uncommit ended meanwhile. */
unsigned hk_ss_pool_uncommit(void);
/* Committed bytes of a small SuperSlab: its header and the units slabs
 * took since their last decommit (dirty_units).  Units never taken are
 * mapped but untouched: they count once a slab takes them, and no longer
 * once decommitted, so that the committed count follows what madvise gave
 * back (helper 44 saw 310 MB reported where 23 MB were resident). */
uint64_t hk_ss_committed(const struct hk_ss *ss);
/* Units of mask (taken, committed; or decommitted) in or out of the counts. */
void hk_ss_account_units(struct hk_ss *ss, uint32_t mask, bool committed);
/* Chunks for large blocks, outside the pools. */
void hk_ss_register(struct hk_ss *ss);
/* Walk every SuperSlab ever made (statistics; racy reads by design). */
struct hk_ss *hk_ss_registry_head(void);

#endif
