/* Large blocks.  The header sits at the SuperSlab-aligned start of the
 * mapping, so hk_ss_of() and the map find it exactly as for slabs; its
 * unit_slab table names no slab, which sends frees to hk_large_free. */
#include "hk_large.h"
#include "hk_os.h"
#include "hk_options.h"
#include "hk_error.h"
#include "hk_heap.h"
#include "hk_numa.h"
#include <string.h>
#include <sys/mman.h>
#include <errno.h>

#define CACHE_SLOTS 64
/* Live blocks aligned beyond half a SuperSlab: 64 slots made the 65th
 * posix_memalign(2 MiB) fail with ENOMEM (glibc serves any number). */
#define BIG_SLOTS 4096

enum { LARGE_LIVE = 1, LARGE_CACHED = 2 };

/* Cached mappings: base | size in pages << 6 | node (mappings up to 128 MiB).  A taker must
 * judge an entry without touching it (another thread may claim and unmap it
 * first), and the base is SuperSlab-aligned, so the low 21 bits carry what
 * the judging needs. */
static uint64_t cache[CACHE_SLOTS];
#define SLOT_NODE_BITS 6
#define SLOT_MAX_UNITS ((HK_SS_SIZE >> SLOT_NODE_BITS) - 1)
_Static_assert(HK_MAX_NODES <= (1 << SLOT_NODE_BITS), "a node index fits the slot's low bits");

/* A slot word's mapping bytes, and whether it holds a mapping on `node`. */
static size_t slot_size(uint64_t w) { return (size_t)((w & HK_SS_MASK) >> SLOT_NODE_BITS) * HK_PAGE_SIZE; }
static bool slot_on(uint64_t w, unsigned node) { return w != 0 && (w & ((1u << SLOT_NODE_BITS) - 1)) == node; }
/* When slot i's mapping was cached, in hk_os_now_ms: a hint for
 * hk_large_cache_age, stored before the slot's CAS publishes the entry.  Two
 * threads racing for a slot may leave either one's time: a moment apart,
 * or a delay when one puts back an aged mapping's rest (age_trim), which
 * then stays a delay more, or the other's mapping goes a delay early. */
static uint64_t cache_ms[CACHE_SLOTS];
/* 1: a mapping was cached since the last ager's look, and waits for one:
 * every heap's hand-overs look at the clock (hk_large_cache_waits), not
 * only the freeing thread's, which may exit or never allocate again. */
uint32_t hk_large_young;
static uint64_t cache_bytes;
static uint64_t live_bytes;  /* mapped bytes of blocks in use */
static uint64_t live_count;  /* blocks in use */
/* Blocks aligned to more than half a SuperSlab start on a chunk boundary
 * that has no header: they are found here by address. */
static struct { void *block; struct hk_ss *ss; } big[BIG_SLOTS];
static uint32_t big_top;  /* slots ever used: lookups scan only these */

static size_t round_up(size_t n, size_t a) { return (n + a - 1) & ~(a - 1); }

/* The mapping for a block of `need` bytes (whole pages) at offset off
 * that realloc makes or grows: room to grow by half in place, so that a
 * growth chain mostly stays where it is.  Only realloc's blocks get it:
 * untouched pages cost no memory but do cost address space, and under
 * RLIMIT_AS a room beside every block let 73 blocks of 3 MiB into 400 MiB
 * where glibc put 132 (helper 58). */
static size_t mapping_size(size_t off, size_t need)
{
    return round_up(off + need + need / 2, HK_PAGE_SIZE);
}

static size_t block_offset(size_t align)
{
    return align > HK_PAGE_SIZE ? align : HK_PAGE_SIZE;
}

/* Slot i's mapping if it still holds entry w, taken out of the cache. */
static struct hk_ss *cache_claim(int i, uint64_t w)
{
    /* The CAS claims the slot; the fence orders our header reads after
     * it, and so after the putter's writes, which its store fence put
     * before its CAS into the slot (ck's CAS promises no ordering). */
    if (!ck_pr_cas_64(&cache[i], w, 0))
        return NULL;
    ck_pr_fence_load();
    struct hk_ss *s = (struct hk_ss *)(uintptr_t)(w & ~(uint64_t)HK_SS_MASK);
    ck_pr_sub_64(&cache_bytes, s->map_size);  /* statistic/limit: relaxed */
    return s;
}

/* The smallest cached mapping on `node` of need_map to max_map bytes, taken
 * out of the cache (the taker splits off what it does not need:
 * split_tail); NULL when there is none (or another thread claimed the one
 * chosen first: the caller maps afresh).  The callers bound max_map:
 * small blocks carved out of a big mapping leave a big request no mapping
 * to reuse (helper 19's rsshold, a 40 MB scratch buffer used between 5 MB
 * results, with no bound: mapped and faulted in afresh every round, 2.7x
 * the time and 1.16x the RSS). */
static struct hk_ss *cache_take(size_t need_map, size_t max_map, unsigned node)
{
    int best = -1;
    uint64_t best_w = 0;
    size_t best_size = 0;
    for (int i = 0; i < CACHE_SLOTS; i++) {
        uint64_t w = ck_pr_load_64(&cache[i]);
        size_t size = slot_size(w);
        if (!slot_on(w, node) || size < need_map || size > max_map)
            continue;
        if (best < 0 || size < best_size) {
            best = i;
            best_w = w;
            best_size = size;
        }
    }
    return best >= 0 ? cache_claim(best, best_w) : NULL;
}

/* s into a free slot, looked for from slot `first` on, as cached at `ms`. */
static bool cache_publish(struct hk_ss *s, int first, uint64_t ms)
{
    uint64_t units = s->map_size / HK_PAGE_SIZE;  /* map sizes are whole pages */
    uint64_t w = (uint64_t)(uintptr_t)s | units << SLOT_NODE_BITS | s->node;
    /* Count before publishing: a taker subtracts only what was added. */
    ck_pr_add_64(&cache_bytes, s->map_size);
    for (int k = 0; k < CACHE_SLOTS; k++) {
        int i = (first + k) % CACHE_SLOTS;
        if (ck_pr_load_64(&cache[i]) != 0)
            continue;
        ck_pr_store_64(&cache_ms[i], ms);
        /* The time and the header before the entry: an ager that sees the
         * entry sees its time (or a later one), a claimer its header. */
        ck_pr_fence_store();
        if (ck_pr_cas_64(&cache[i], 0, w)) {
            /* After the entry: an ager that cleared the flag before we set
             * it sees the entry in its scan (hk_large_cache_age).  Read
             * first, so that a steady churn does not write the line. */
            ck_pr_fence_store();
            if (ck_pr_load_32(&hk_large_young) == 0)
                ck_pr_store_32(&hk_large_young, 1);
            return true;
        }
    }
    ck_pr_sub_64(&cache_bytes, s->map_size);
    return false;
}

static bool cache_put(struct hk_ss *s)
{
    uint64_t limit = (uint64_t)hk_opt.large_cache_mb << 20;
    if (s->map_size / HK_PAGE_SIZE > SLOT_MAX_UNITS || ck_pr_load_64(&cache_bytes) + s->map_size > limit)
        return false;
    return cache_publish(s, 0, hk_os_now_ms());
}

uint64_t hk_large_cached_bytes(void) { return ck_pr_load_64(&cache_bytes); }
uint64_t hk_large_live_bytes(void) { return ck_pr_load_64(&live_bytes); }
uint64_t hk_large_live_count(void) { return ck_pr_load_64(&live_count); }

/* A slot's block while its registrant writes its ss: no block's address
 * (blocks are page-aligned), so lookups pass over it. */
#define BIG_CLAIMED ((void *)1)

static bool big_register(void *block, struct hk_ss *ss)
{
    for (uint32_t i = 0; i < BIG_SLOTS; i++) {
        /* Claim the slot before writing its ss: two threads that both saw
         * it empty wrote their ss into it, and the loser's write could land
         * after the winner's, pairing the winner's block with the loser's
         * header (free, realloc and malloc_usable_size then aborted with
         * "invalid pointer" on a live block: tests/api
         * align/big_aligned_from_threads). */
        if (ck_pr_load_ptr(&big[i].block) != NULL || !ck_pr_cas_ptr(&big[i].block, NULL, BIG_CLAIMED))
            continue;
        ck_pr_store_ptr(&big[i].ss, ss);
        /* The block last: a reader that sees it sees its ss. */
        ck_pr_fence_store();
        ck_pr_store_ptr(&big[i].block, block);
        /* Raise the scanned range to cover it (a CAS max; readers look for
         * blocks handed out after this, so ordered by the hand-over). */
        uint32_t top = ck_pr_load_32(&big_top);
        while (top <= i && !ck_pr_cas_32_value(&big_top, top, i + 1, &top))
            ;
        return true;
    }
    return false;
}

struct hk_ss *hk_large_lookup_big(const void *p)
{
    uint32_t top = ck_pr_load_32(&big_top);
    for (uint32_t i = 0; i < top; i++) {
        if (ck_pr_load_ptr(&big[i].block) == p) {
            ck_pr_fence_load();
            return ck_pr_load_ptr(&big[i].ss);
        }
    }
    return NULL;
}

static void big_unregister(const void *p)
{
    uint32_t top = ck_pr_load_32(&big_top);
    for (uint32_t i = 0; i < top; i++)
        if (ck_pr_load_ptr(&big[i].block) == p)
            ck_pr_store_ptr(&big[i].block, NULL);
}

static void unmap(struct hk_ss *s)
{
    hk_ssmap_set((uintptr_t)s, false);
    hk_os_account(-(int64_t)s->map_size);
    hk_os_unmap(s, s->map_size);
}

/* A mapping's header: large, on `node`, map_size bytes, no owning heap and
 * no slab in any unit (so frees of its block take the large path).
 * Cleared first: a remainder's header is written over a block's old data,
 * and the free fast path reads `heap` before the kind. */
static void header_init(struct hk_ss *s, unsigned node, size_t map_size)
{
    memset(s, 0, offsetof(struct hk_ss, unit_slab));
    ck_pr_store_32(&s->kind, HK_SS_LARGE);  /* the statistics read both (stats.c: placement) */
    ck_pr_store_32(&s->node, node);
    s->map_size = map_size;
    for (unsigned u = 0; u < HK_UNITS; u++)
        ck_pr_store_ptr(&s->unit_slab[u], &hk_slab_empty);
}

/* s, taken from the cache or grown into it, keeps its mapping up to `end`
 * rounded up to a chunk; the rest, when a chunk or more, becomes a mapping
 * of its own (a header at its chunk-aligned start) back in the cache, its
 * pages resident as they are, or unmapped when the cache is full.  So a
 * taker holds at most 2 MiB of cached pages beyond its block (1 on
 * average), and a block growing into the rest later takes it back
 * (merge_right) without a move.  Keeping a fresh block's half again for
 * growth, resident here, left programs that keep grown buffers 1.6x
 * glibc's RSS (helper 19's rsshold: 80 MB against 52). */
static void split_tail(struct hk_ss *s, size_t end)
{
    size_t keep = round_up(end, HK_SS_SIZE);
    if (s->map_size < keep + HK_SS_SIZE || !hk_ssmap_reserve((uintptr_t)s + keep))
        return;
    struct hk_ss *r = (struct hk_ss *)((uintptr_t)s + keep);
    header_init(r, s->node, s->map_size - keep);
    r->large_state = LARGE_CACHED;
    s->map_size = keep;
    hk_ssmap_set((uintptr_t)r, true);  /* a mapping's start now: before a taker can see it */
    if (!cache_put(r))
        unmap(r);
}

/* s's mapping takes in the mapping right after it if that is cached (a
 * remainder split_tail left, mostly): in place, its pages resident.  False
 * when there is none or another thread claimed it first. */
static bool merge_right(struct hk_ss *s)
{
    uint64_t next = (uintptr_t)s + s->map_size;
    if ((next & HK_SS_MASK) != 0)
        return false;
    for (int i = 0; i < CACHE_SLOTS; i++) {
        uint64_t w = ck_pr_load_64(&cache[i]);
        if ((w & ~(uint64_t)HK_SS_MASK) != next || !slot_on(w, s->node))
            continue;
        struct hk_ss *r = cache_claim(i, w);
        if (r == NULL)
            return false;
        hk_ssmap_set(next, false);  /* inside s's mapping now */
        s->map_size += r->map_size;
        return true;
    }
    return false;
}

unsigned hk_large_cache_flush(void)
{
    unsigned n = 0;
    for (int i = 0; i < CACHE_SLOTS; i++) {
        uint64_t w = ck_pr_load_64(&cache[i]);
        struct hk_ss *s = w != 0 ? cache_claim(i, w) : NULL;
        if (s != NULL) {
            unmap(s);
            n++;
        }
    }
    return n;
}

/* Most bytes an ager's pass unmaps.  A pass runs inside whatever call
 * ticked, a small malloc mostly, and unmapping costs about 55 us a MiB of
 * resident pages (the kernel frees them one by one): a pass that unmapped
 * every aged mapping at once made a 64-byte malloc take 3.8 ms after a
 * 64 MB cache aged (bench/tail --scenario large), where glibc's slowest
 * took 38-181 us.  2 MiB: 0.13 ms (0.21 on the loaded machine). */
#define AGE_STEP HK_SS_SIZE

/* 1: the last ager's pass stopped at AGE_STEP with aged mappings left, so
 * the hand-overs pass again at once (hk_large_cache_aged), not a delay
 * later.  A hint: a stale 1 costs a scan, a stale 0 the next tick's. */
static uint32_t aged_left;

bool hk_large_cache_aged(void) { return ck_pr_load_32(&aged_left) != 0; }

/* Up to `budget` bytes of s, an aged mapping claimed from slot i (cached
 * at `ms`), unmapped from its end, which shrinks its kernel mapping and
 * splits none; the rest goes back into the cache as aged as it was, where
 * a taker may still reuse its resident pages.  Not held to the cache's
 * limit: it held more a moment ago.  Returns the bytes unmapped. */
static size_t age_trim(struct hk_ss *s, int i, uint64_t ms, size_t budget)
{
    size_t size = s->map_size;
    if (size <= budget) {
        unmap(s);
        return size;
    }
    s->map_size = size - budget;
    hk_os_account(-(int64_t)budget);
    hk_os_unmap((char *)s + s->map_size, budget);
    /* Every slot taken since the claim (64 putters in a moment): the rest
     * goes too, unbounded, rather than stay unaccounted. */
    if (!cache_publish(s, i, ms))
        unmap(s);
    return budget;
}

bool hk_large_cache_age(uint64_t now)
{
    if (ck_pr_load_32(&hk_large_young) != 0) {
        ck_pr_store_32(&hk_large_young, 0);
        /* The clear before the scan's loads: an entry published before a
         * putter's flag we cleared is seen below, and sets it again. */
        ck_pr_fence_memory();
    }
    bool young = false, left = false;
    size_t budget = AGE_STEP;
    for (int i = 0; i < CACHE_SLOTS && ck_pr_load_64(&cache_bytes) != 0; i++) {
        uint64_t w = ck_pr_load_64(&cache[i]);
        if (w == 0)
            continue;
        ck_pr_fence_load();  /* the entry's time after the entry (cache_put) */
        uint64_t ms = ck_pr_load_64(&cache_ms[i]);
        /* A time after `now` (cached since we read the clock) is young. */
        if (ms + (uint64_t)hk_opt.decommit_delay_ms > now) {
            young = true;
            continue;
        }
        if (budget == 0) {
            left = true;
            continue;
        }
        struct hk_ss *s = cache_claim(i, w);
        if (s == NULL)
            continue;
        left |= s->map_size > budget;  /* its rest stays, aged */
        budget -= age_trim(s, i, ms, budget);
    }
    /* Relaxed: a hint; written only when it changes, so that passes that
     * find nothing aged do not write its line. */
    if (ck_pr_load_32(&aged_left) != (uint32_t)left)
        ck_pr_store_32(&aged_left, left);
    if (young || left)
        ck_pr_store_32(&hk_large_young, 1);
    return left;
}

/* A fresh mapping for a block of `need` bytes at offset off, with room to
 * grow into when `room` asks and the kernel grants it; *size: its size. */
static struct hk_ss *map_fresh(size_t off, size_t need, size_t map_align, bool room, size_t *size)
{
    struct hk_ss *s = NULL;
    if (room) {
        *size = mapping_size(off, need);
        s = hk_os_map_block(*size, map_align);
    }
    if (s == NULL) {
        /* The kernel's overcommit check may refuse the room to grow
         * but grant the block itself, as it would glibc's mapping. */
        *size = off + need;
        s = hk_os_map_block(*size, map_align);
    }
    return s;
}

void *hk_large_alloc(size_t size, size_t align, bool zero, bool room, unsigned home)
{
    if (size > ((size_t)1 << HK_ADDR_BITS) / 2 || align > ((size_t)1 << 32)) {
        errno = ENOMEM;
        return NULL;
    }
    size_t off = block_offset(align);
    size_t need = round_up(size ? size : 1, HK_PAGE_SIZE);
    size_t map = off + need;
    unsigned node = hk_numa_pick_node(home);
    /* Any block at an offset into its mapping (not the big-aligned ones)
     * takes the smallest cached mapping that holds it, the rest split off
     * (split_tail): reused, the pages are committed already. */
    struct hk_ss *s = align <= HK_LARGE_MAX_OFFSET_ALIGN ? cache_take(map, 2 * map, node) : NULL;  /* half of it wasted at most */
    bool fresh = s == NULL;
    if (fresh) {
        size_t reserve, map_align = align > HK_SS_SIZE ? align : HK_SS_SIZE;
        s = map_fresh(off, need, map_align, room, &reserve);
        /* Refused (RLIMIT_AS, overcommit, vm.max_map_count): the cache's
         * mappings hold address space, commit charge and mappings no block
         * uses.  Without this a program that freed two 20 MiB blocks could
         * not get 40 MiB under a limit with room for them (helper 25).
         * Then the pooled SuperSlabs' bodies, which hold RLIMIT_DATA and
         * commit charge; not first: each one re-mapped takes a mapping or
         * two, and at vm.max_map_count took those the flush had freed
         * (helper 55). */
        if (s == NULL && hk_large_cache_flush() != 0)
            s = map_fresh(off, need, map_align, room, &reserve);
        if (s == NULL && hk_ss_pool_uncommit() != 0)
            s = map_fresh(off, need, map_align, room, &reserve);
        if (s == NULL) {
            errno = ENOMEM;
            return NULL;
        }
        hk_numa_bind(s, reserve, node);  /* before the header write touches it */
        header_init(s, node, reserve);
        hk_os_account((int64_t)reserve);
    } else {
        split_tail(s, map);
    }
    s->large_block = (uintptr_t)s + off;
    s->large_size = need;  /* the reservation beyond stays the mapping's, not the block's */
    s->large_asked = size;
    s->large_state = LARGE_LIVE;
    if ((fresh && !hk_ssmap_reserve((uintptr_t)s)) ||
        (align > HK_LARGE_MAX_OFFSET_ALIGN && !big_register((void *)s->large_block, s))) {
        unmap(s);
        errno = ENOMEM;
        return NULL;
    }
    if (fresh)
        hk_ssmap_set((uintptr_t)s, true);
    ck_pr_add_64(&live_bytes, s->map_size);  /* statistics: relaxed */
    ck_pr_inc_64(&live_count);
    if (!fresh && zero)
        hk_os_decommit((void *)s->large_block, need);  /* reads as zero, and a sparse table stays sparse */
    return (void *)s->large_block;
}

static struct hk_ss *validate(struct hk_ss *s, const void *p, const char *fn)
{
    if (hk_unlikely(s->large_block != (uintptr_t)p))
        hk_fatal_ptr(fn, "invalid pointer", p);
    if (hk_unlikely(s->large_state != LARGE_LIVE))
        hk_fatal_ptr(fn, "double free", p);
    return s;
}

void hk_large_free(struct hk_ss *s, void *p, const char *fn)
{
    validate(s, p, fn);
    if (s->large_block - (uintptr_t)s > HK_LARGE_MAX_OFFSET_ALIGN)
        big_unregister(p);
    s->large_state = LARGE_CACHED;
    ck_pr_sub_64(&live_bytes, s->map_size);  /* statistics: relaxed */
    ck_pr_dec_64(&live_count);
    if (s->large_block - (uintptr_t)s <= HK_LARGE_MAX_OFFSET_ALIGN && cache_put(s))
        return;
    unmap(s);
}

/* Below this a copy is cheaper than the mremap and the mmaps of a move (a
 * few microseconds), and the old mapping the cache keeps is small. */
#define GROW_MIN_MAP ((size_t)1 << 20)

/* A block outgrowing its mapping takes a cached mapping of up to this many
 * times its new size (a new block: twice): a buffer filled again and again
 * reaches the mapping the last one freed a few growths before its end
 * (bench/large: 5.5x the throughput, 1.4x with the new blocks' rule), and
 * a buffer kept at a few MB is still too small for a big scratch
 * buffer's mapping (rsshold; 16x took it). */
#define GROW_TAKE 8

/* s's block, moved into c, a cached mapping holding more: s's mapping
 * whole (header and all) over c's start, by the kernel, which moves the
 * pages (nothing is copied, a sparse block stays sparse); c's pages
 * beyond stay for the block to grow into. */
static struct hk_ss *move_into(struct hk_ss *s, struct hk_ss *c)
{
    size_t old = s->map_size, size = c->map_size;
    /* Out of the map before its address space goes, as for any move. */
    hk_ssmap_set((uintptr_t)s, false);
    /* A page more than s holds (replacing one of c's): a move that grows
     * takes one kernel mapping, whole or not at all.  A same-size move may
     * span several (s was moved into, merged, or partly mprotect'ed or
     * mlock'ed by the program) and, since Linux 6.17, complete in part
     * when it fails: the block would be torn between two places.  Such an
     * s is copied instead; its pages were mostly c's, resident already. */
    int moved = hk_os_move(s, old, old + HK_PAGE_SIZE, c, PROT_READ | PROT_WRITE);
    if (moved > 0) {
        c->map_size = size;  /* the header came along: the mapping is c's */
        hk_os_account(-(int64_t)old);  /* s's range is gone, c's was counted */
        return c;
    }
    if (moved < 0) {
        /* c's front is no longer ours (hk_os_move): the block stays in s,
         * c's rest goes, its front's bytes with it from the count. */
        hk_ssmap_set((uintptr_t)c, false);
        hk_os_account(-(int64_t)size);
        hk_os_unmap((char *)c + old + HK_PAGE_SIZE, size - old - HK_PAGE_SIZE);
        hk_ssmap_set((uintptr_t)s, true);
        return NULL;
    }
    header_init(c, s->node, size);  /* may have been mapped again, zero-filled (hk_os_move) */
    memcpy((char *)c + (s->large_block - (uintptr_t)s), (const char *)s->large_block, s->large_size);
    c->large_state = LARGE_LIVE;
    unmap(s);
    return c;
}

/* s's mapping grown to `map` bytes by the kernel: where it is when the
 * address space after it is free, else moved whole (header and all) to a
 * fresh reservation.  NULL when neither can be done (s is then as it was). */
static struct hk_ss *grow_by_mremap(struct hk_ss *s, size_t map)
{
    size_t old = s->map_size;
    struct hk_ss *n = s;
    if (!hk_os_grow_in_place(s, old, map)) {
        n = hk_os_reserve_aligned(map, HK_SS_SIZE);
        if (n == NULL)
            return NULL;
        if (!hk_ssmap_reserve((uintptr_t)n)) {
            hk_os_unmap(n, map);
            return NULL;
        }
        /* The old chunk leaves the map before the move frees its address
         * space: another thread's mapping may land there at once, and
         * marked after, it would be taken for not ours.  The block is the
         * caller's alone meanwhile. */
        hk_ssmap_set((uintptr_t)s, false);
        int moved = hk_os_move(s, old, map, n, PROT_NONE);
        if (moved <= 0) {
            hk_ssmap_set((uintptr_t)s, true);
            if (moved == 0)  /* else no longer ours (hk_os_move) */
                hk_os_unmap(n, map);
            return NULL;
        }
        hk_ssmap_set((uintptr_t)n, true);  /* the header came along */
    }
    n->map_size = map;
    hk_os_account((int64_t)(map - old));
    return n;
}

void *hk_large_grow(struct hk_ss *s, size_t size)
{
    size_t off = s->large_block - (uintptr_t)s, before = s->map_size;
    if (off != HK_PAGE_SIZE || before < GROW_MIN_MAP || size > ((size_t)1 << HK_ADDR_BITS) / 4)
        return NULL;
    size_t need = round_up(size, HK_PAGE_SIZE);
    size_t map = mapping_size(off, need);
    struct hk_ss *n = s, *c;
    /* In order of cost: in place into the cached mapping after ours, into
     * a cached mapping elsewhere (their pages are resident: growth there
     * takes no page faults, each of which the kernel clears; a buffer
     * filled again and again grows into what the last one freed), then
     * the mapping grown where it is, or moved to a fresh reservation. */
    while (s->map_size < off + need && merge_right(s))
        ;
    ck_pr_add_64(&live_bytes, s->map_size - before);  /* statistics: relaxed */
    before = s->map_size;
    if (s->map_size >= off + need) {
        split_tail(s, off + need);
    } else if ((c = cache_take(off + need, GROW_TAKE * (off + need), s->node)) != NULL &&
               (n = move_into(s, c)) != NULL) {
        split_tail(n, off + need);
    } else if ((n = grow_by_mremap(s, map)) == NULL) {
        return NULL;
    }
    n->large_block = (uintptr_t)n + off;
    n->large_size = need;
    n->large_asked = size;
    ck_pr_add_64(&live_bytes, n->map_size - before);  /* statistics: relaxed */
    return (void *)n->large_block;
}

size_t hk_large_usable(struct hk_ss *s, const void *p, const char *fn)
{
    return validate(s, p, fn)->large_size;
}

void *hk_large_resize(struct hk_ss *s, void *p, size_t size)
{
    size_t off = s->large_block - (uintptr_t)s;
    if (size > s->map_size - off)
        return NULL;
    /* Shrinking far below the mapping: give the tail's pages back.  Not
     * when growing into the reservation: its pages were never touched, and
     * a buffer grown in steps made one madvise per step. */
    size_t keep = round_up(off + size, HK_PAGE_SIZE);
    if (size < s->large_asked && s->map_size - keep >= ((size_t)1 << 20))
        hk_os_decommit((char *)s + keep, s->map_size - keep);
    s->large_asked = size;
    s->large_size = keep - off;
    return p;
}
