/* Memory return: empty slabs give their units back to the SuperSlab; free
 * units of partly used SuperSlabs, and empty SuperSlabs beyond the heap's
 * cache, are decommitted once HAKMEM_DECOMMIT_DELAY_MS has passed, keeping a
 * small reserve so steady churn makes no system calls.  Owner-only. */
#include "hk_heap_int.h"
#include "hk_slab.h"
#include "hk_os.h"
#include "hk_options.h"
#include "hk_numa.h"
#include "hk_large.h"

/* The longest run of set bits in m: a step per run. */
static unsigned longest_run(uint32_t bits)
{
    unsigned best = 0;
    for (uint64_t m = bits; m != 0;) {
        m >>= __builtin_ctzll(m);
        unsigned len = (unsigned)__builtin_ctzll(~m);  /* m < 2^32: ~m has a zero bit */
        best = len > best ? len : best;
        m >>= len;
    }
    return best;
}

static void avail_unlink(struct hk_heap *h, struct hk_ss *ss)
{
    unsigned bin = ss->in_avail - 1;
    if (ss->prev)
        ss->prev->next = ss->next;
    else if ((h->avail[bin] = ss->next) == NULL)
        h->avail_bins &= ~(1u << bin);
    if (ss->next)
        ss->next->prev = ss->prev;
    ss->prev = ss->next = NULL;
    ss->in_avail = 0;
}

void hk_avail_update(struct hk_heap *h, struct hk_ss *ss)
{
    unsigned run = longest_run(ss->free_units);
    if (run == ss->in_avail)
        return;
    if (ss->in_avail)
        avail_unlink(h, ss);
    if (run == 0)
        return;
    unsigned bin = run - 1;
    ss->prev = NULL;
    ss->next = h->avail[bin];
    if (ss->next)
        ss->next->prev = ss;
    h->avail[bin] = ss;
    h->avail_bins |= 1u << bin;
    ss->in_avail = run;
}

void hk_avail_remove(struct hk_heap *h, struct hk_ss *ss)
{
    if (ss->in_avail)
        avail_unlink(h, ss);
}

/* Memory the heaps keep committed beyond their own reserves, process-wide,
 * within HAKMEM_LARGE_CACHE_MB, counted in units:
 * - empty SuperSlabs beyond HAKMEM_SS_CACHE, within the delay: a unit
 *   block's SuperSlab empties whenever its one or two blocks are freed,
 *   and released at once it was decommitted and faulted in again by the
 *   next (64 blocks of 132 KB-2 MB replaced at random: 9,000 madvise calls
 *   in 200,000 replacements, 0.48 s of system time), as the large-mapping
 *   cache did for blocks of those sizes;
 * - exited threads' heaps' reserves, kept for their adopters
 *   (hk_heap_trim_exited). */
static uint64_t budget_units;

/* Keep up to `want` more units: how many the budget allows. */
static unsigned budget_grant(unsigned want)
{
    uint64_t limit = ((uint64_t)hk_opt.large_cache_mb << 20) >> HK_UNIT_SHIFT;
    /* Relaxed: a budget, not an ordering; the add makes it exact. */
    uint64_t had = ck_pr_faa_64(&budget_units, want);
    unsigned granted = had >= limit ? 0 : (unsigned)(limit - had < want ? limit - had : want);
    if (granted < want)
        ck_pr_sub_64(&budget_units, want - granted);
    return granted;
}

/* All `want` units from the budget, or none. */
static bool budget_take(unsigned want)
{
    unsigned granted = budget_grant(want);
    if (granted < want)
        ck_pr_sub_64(&budget_units, granted);
    return granted == want;
}

/* Up to `want` more empty SuperSlabs beyond the cache: how many the budget
 * allows. */
static unsigned extra_grant(unsigned want)
{
    unsigned granted = budget_grant(want * HK_UNITS), whole = granted / HK_UNITS;
    if (granted != whole * HK_UNITS)
        ck_pr_sub_64(&budget_units, granted - whole * HK_UNITS);
    return whole;
}

/* h holds `extra` empty SuperSlabs beyond its cache now: the budget follows. */
static void extra_settle(struct hk_heap *h, unsigned extra)
{
    if (extra < h->empty_extra)
        ck_pr_sub_64(&budget_units, (uint64_t)(h->empty_extra - extra) * HK_UNITS);
    h->empty_extra = extra;
}

/* Empty SuperSlabs older than the delay go back to their node's pool,
 * decommitted; the newest few stay committed for reuse. */
static void empty_trim(struct hk_heap *h, bool all)
{
    if (h->empty == NULL)
        return;
    uint64_t now = hk_os_now_ms();
    unsigned cache = (unsigned)hk_opt.heap_ss_cache, young = 0;
    for (struct hk_ss *ss = h->empty; ss != NULL && !all; ss = ss->next)
        young += young == 0 || now - ss->empty_since_ms < (uint64_t)hk_opt.decommit_delay_ms;
    /* Beyond the cache: what we hold already, then what the budget adds. */
    unsigned beyond = young > cache ? young - cache : 0;
    if (beyond > h->empty_extra)
        h->empty_extra += extra_grant(beyond - h->empty_extra);
    unsigned keep = cache + (beyond < h->empty_extra ? beyond : h->empty_extra);
    struct hk_ss **link = &h->empty;
    unsigned kept = 0;
    while (*link != NULL) {
        struct hk_ss *ss = *link;
        /* The newest empty SuperSlab stays whatever its age (steady churn
         * keeps reusing it); older ones go after the delay, any beyond the
         * cache and the budget at once. */
        bool old = kept > 0 && now - ss->empty_since_ms >= (uint64_t)hk_opt.decommit_delay_ms;
        if (all || old || kept >= keep) {
            *link = ss->next;
            h->empty_count--;
            hk_ss_release(ss);
        } else {
            kept++;
            link = &ss->next;
        }
    }
    extra_settle(h, kept > cache ? kept - cache : 0);
}

struct hk_ss *hk_empty_take(struct hk_heap *h, unsigned node, bool any_node)
{
    for (struct hk_ss **link = &h->empty; *link != NULL; link = &(*link)->next) {
        struct hk_ss *ss = *link;
        if (any_node || ss->node == node) {
            *link = ss->next;
            h->empty_count--;
            unsigned cache = (unsigned)hk_opt.heap_ss_cache;
            unsigned beyond = h->empty_count > cache ? h->empty_count - cache : 0;
            if (beyond < h->empty_extra)
                extra_settle(h, beyond);
            return ss;
        }
    }
    return NULL;
}

/* Units lo..hi of ss back to the OS (unit 0 from past the header) and out
 * of the committed count; returns their mask. */
static uint32_t decommit_units(struct hk_ss *ss, unsigned lo, unsigned hi)
{
    uintptr_t start = (uintptr_t)ss + ((uintptr_t)lo << HK_UNIT_SHIFT) + (lo == 0 ? HK_SS_HDR_SIZE : 0);
    hk_os_decommit((void *)start, (uintptr_t)ss + ((uintptr_t)(hi + 1) << HK_UNIT_SHIFT) - start);
    uint32_t run = (hi == 31 ? 0xffffffffu : ((1u << (hi + 1)) - 1)) & ~((1u << lo) - 1);
    hk_ss_account_units(ss, run & ss->dirty_units, false);
    ss->dirty_units &= ~run;
    return run;
}

/* Units of a partly used SuperSlab, freed and not reused within the delay,
 * are decommitted: RSS follows the live set, not its high-water mark. */
static void purge_units(struct hk_ss *ss, uint32_t m)
{
    while (m != 0) {
        unsigned lo = (unsigned)__builtin_ctz(m), hi = lo;
        while (hi + 1 < HK_UNITS && (m >> (hi + 1)) & 1)
            hi++;
        m &= ~decommit_units(ss, lo, hi);
    }
}

static void purge_remove(struct hk_heap *h, struct hk_ss *ss)
{
    for (struct hk_ss **link = &h->purge; *link != NULL; link = &(*link)->purge_next) {
        if (*link == ss) {
            *link = ss->purge_next;
            break;
        }
    }
    ss->in_purge = 0;
}

/* Free units of ss not yet decommitted. */
static unsigned dirty_free(const struct hk_ss *ss)
{
    return (unsigned)__builtin_popcount(ss->free_units & ss->dirty_units);
}

/* The same over h's purge list. */
static unsigned dirty_free_units(const struct hk_heap *h)
{
    unsigned dirty = 0;
    for (const struct hk_ss *ss = h->purge; ss != NULL; ss = ss->purge_next)
        dirty += dirty_free(ss);
    return dirty;
}

/* Free units a heap keeps committed whatever their age (2 MiB): steady
 * churn then costs no madvise and no page faults (the syscall budget); only
 * the excess of a real shrink goes back. */
#define PURGE_KEEP_UNITS 32u

/* Returns the free units still committed on the purge list. */
static unsigned purge_run(struct hk_heap *h, bool all)
{
    unsigned dirty = all ? 0 : dirty_free_units(h), left = 0;
    if (!all && dirty <= PURGE_KEEP_UNITS)
        return dirty;
    uint64_t now = hk_os_now_ms();
    struct hk_ss **link = &h->purge;
    while (*link != NULL) {
        struct hk_ss *ss = *link;
        if (all || now - ss->purge_since_ms >= (uint64_t)hk_opt.decommit_delay_ms) {
            *link = ss->purge_next;
            ss->in_purge = 0;
            purge_units(ss, ss->free_units & ss->dirty_units);
        } else {
            left += dirty_free(ss);
            link = &ss->purge_next;
        }
    }
    return left;
}

/* Time-driven memory return (there is no background thread: an idle heap
 * keeps what it has until it is used, collected or its thread exits). */
bool hk_heap_maintain_now(struct hk_heap *h)
{
    unsigned dirty = h->purge != NULL ? purge_run(h, false) : 0;
    if (h->empty != NULL)
        empty_trim(h, false);
    /* What a later look gives back once its delay has passed: free units
     * beyond those kept whatever their age, or an empty SuperSlab beyond
     * the newest. */
    return dirty > PURGE_KEEP_UNITS || h->empty_count > 1;
}

/* Slow paths look at most every HK_MAINTAIN_EVERY times: with a big live set
 * the purge list is never empty, and reading the clock and summing its free
 * units on every refill cost soak (20,000 blocks per thread) half its
 * speed.  The ticker and collections use hk_heap_maintain_now; a zero delay
 * asks for memory back at once, so it looks every time. */
#define HK_MAINTAIN_EVERY 64

void hk_heap_maintain(struct hk_heap *h)
{
    if (hk_opt.decommit_delay_ms != 0 && --h->maintain_wait > 0)
        return;
    h->maintain_wait = HK_MAINTAIN_EVERY;
    hk_heap_maintain_now(h);
}

static hk_cold void look_soon(struct hk_heap *h);

/* An ager's pass over the large-block cache, bounded (hk_large_cache_age);
 * while aged mappings are left, every class of ours hands over at its next
 * allocation, each hand-over a pass: 64 MiB aged go back within 32
 * allocations, 2 MiB at most in each. */
static void large_cache_step(struct hk_heap *h, uint64_t now)
{
    if (hk_large_cache_age(now))
        look_soon(h);
}

/* The last tick is older than the delay: the heap allocates slowly (a
 * server between bursts), and memory waiting for the delay, or blocks in
 * the inbox, would wait for the rest of HK_TICK allocations (at 100 a
 * second, 40 s).  At 100 allocations a second, 70 MB of a 300 MB set freed
 * by another thread stayed committed for the 30 s watched, all of it while
 * its blocks were still in the inbox (tests/slow_return).  A heap that
 * allocates fast reaches its next tick within the delay anyway. */
static bool tick_overdue(const struct hk_heap *h)
{
    return hk_os_now_ms() - h->tick_ms > (uint64_t)hk_opt.decommit_delay_ms;
}

/* A hand-over of n allocations while memory or blocks wait: it ends the
 * period if the tick is overdue.  Out of line, so that the others save no
 * registers. */
static hk_cold void *ticked_waiting(void *p, struct hk_heap *h, int32_t n)
{
    if (tick_overdue(h))
        h->tick = n;
    else if (hk_large_cache_aged())
        large_cache_step(h, hk_os_now_ms());
    hk_heap_count(h, n);
    return p;
}

/* n allocations of a slab's count into the heap's, then p back.  A
 * hand-over is often enough to see an overdue tick while memory or blocks
 * wait, ours or the large-block cache's.  The inbox load is relaxed: a
 * hint; the tick takes the inbox with its own exchange. */
static inline void *hand_over(void *p, struct hk_heap *h, int32_t n)
{
    if (hk_unlikely(h->return_wait || ck_pr_load_ptr(&h->inbox.head) != NULL || hk_large_cache_waits()))
        return ticked_waiting(p, h, n);
    hk_heap_count(h, n);
    return p;
}

/* Brackets around the owner's changes of a slab's `lent` with its
 * `ticks`: the statistics read the pair only when lend_seq is even and the
 * same before and after (stats.c: sum_heaps).  Store fences order the
 * count's change against the changes it brackets. */
static inline void lend_begin(struct hk_heap *h)
{
    ck_pr_store_32(&h->lend_seq, h->lend_seq + 1);
    ck_pr_fence_store();
}

static inline void lend_end(struct hk_heap *h)
{
    ck_pr_fence_store();
    ck_pr_store_32(&h->lend_seq, h->lend_seq + 1);
}

/* The hand-over of a shortened count (look_soon): it held HK_TICK_SLAB -
 * lent allocations.  The next count is twice as long, up to a whole one,
 * so that a class allocated fast while memory waits takes at most
 * log2(HK_TICK_SLAB) early hand-overs, and a slow one looks at the clock
 * at its 1st, 2nd, 4th... allocation. */
static hk_cold void *ticked_early(void *p, struct hk_heap *h, struct hk_slab *s)
{
    uint32_t held = HK_TICK_SLAB - s->lent;
    uint32_t next = held * 2 < HK_TICK_SLAB ? held * 2 : HK_TICK_SLAB;
    lend_begin(h);
    ck_pr_store_32(&s->used_ticks, (s->used_ticks & 0xffffu) | (0x10000u - next) << 16);
    ck_pr_store_8(&s->lent, (uint8_t)(HK_TICK_SLAB - next));
    lend_end(h);
    return hand_over(p, h, (int32_t)held);
}

/* A hand-over takes the count out of the slab before it puts it into the
 * heap's (a compiler barrier between: x86-64 keeps stores in order, and
 * ck_pr_fence_store orders them elsewhere), so that statistics, which read
 * the heap's count first (stats.c: sum_heaps), may miss a count on its way
 * but never see it twice. */
void *hk_slab_ticked(void *p, struct hk_heap *h, struct hk_slab *s)
{
    if (hk_unlikely(s->lent != 0))
        return ticked_early(p, h, s);
    /* The whole word, as the fast path writes it (hk_block_push), in a
     * store gcc would otherwise narrow to the half that changes. */
    ck_pr_store_32(&s->used_ticks, (s->used_ticks & 0xffffu) | (uint32_t)HK_TICK_BASE << 16);
    ck_pr_fence_store();
    return hand_over(p, h, HK_TICK_SLAB);  /* every HK_TICK_SLAB allocations of its class */
}

void hk_slab_harvest(struct hk_heap *h, struct hk_slab *s)
{
    uint16_t n = hk_ticks_uncounted(s->ticks, s->lent);
    if (hk_unlikely(s->lent != 0)) {
        lend_begin(h);
        s->ticks = HK_TICK_BASE;
        ck_pr_store_8(&s->lent, 0);
        lend_end(h);
    } else {
        s->ticks = HK_TICK_BASE;
        ck_pr_fence_store();
    }
    hk_heap_tally(h, n);
}

/* Memory began to wait for the delay: every current slab and cache of the
 * heap hands its count over at its next allocation instead of its 128th,
 * then at ever longer intervals (ticked_early), so that a thread that slows
 * down after freeing a burst, its allocations spread over many classes,
 * looks at the clock soon: at 10 allocations a second over the 24 classes
 * of 16-512 B, a class's 128th came minutes later (papers/burst.md).  The
 * allocations a shortened count claims are its `lent`, taken off where the
 * count is handed over or read, never borrowed from the heap's count:
 * session 27's version took them off stats.malloc first, and a reader
 * that read the heap's count before that and the slab's after counted
 * them twice. */
static hk_cold void look_soon(struct hk_heap *h)
{
    lend_begin(h);
    for (unsigned c = 0; c < HK_CLASSES + HK_LUT_CLASSES; c++) {
        struct hk_slab *s = c < HK_CLASSES ? h->cur[c] : &h->rc[c - HK_CLASSES];
        /* Not the shared empty slab, nor one between its carry and its
         * hand-over (ticks below HK_TICK_BASE). */
        if (s == &hk_slab_empty || s->ticks < HK_TICK_BASE)
            continue;
        uint16_t n = hk_ticks_uncounted(s->ticks, s->lent);
        s->ticks = 0xffff;
        ck_pr_store_8(&s->lent, HK_TICK_SLAB - 1);
        hk_heap_tally(h, n);
    }
    lend_end(h);
}

/* Memory waits for the delay from now; if it did not already, the counts
 * hand over soon (look_soon).  A wait begins at most once a ticker period
 * (bench/larson at 8 threads: 123 in 5M operations, the others 1 or 2). */
void hk_heap_wait_for_return(struct hk_heap *h)
{
    if (!h->return_wait) {
        h->return_wait = 1;
        look_soon(h);
    }
}

void hk_heap_tick(struct hk_heap *h)
{
    h->tick_ms = hk_os_now_ms();
    h->tick = HK_TICK;
    /* Overflows need cached blocks: a heap without remote frees skips. */
    if (h->rc_held || h->rc_shrunk)
        hk_rcache_adapt(h);
    if (h->rc_held)
        hk_rcache_age(h);
    /* Our batches for other heaps wait at most a period too: a thread
     * whose cache held nothing (blocks of classes without one, or of
     * another node) and that then allocated only on its fast paths never
     * sent them, and their slabs stayed pinned while it lived. */
    if (h->rbatch_live != 0)
        hk_rbatch_flush(h);
    /* And ours wait in the inbox at most a period: a class whose local
     * frees keep its list from running dry never takes the slow path that
     * looks at the inbox. */
    if (ck_pr_load_ptr(&h->inbox.head) != NULL)
        hk_inbox_process(h);
    hk_heap_sweep_owed();
    if (h->spare_count != 0)
        hk_spare_age(h);
    /* The large-block cache is the process's: any thread's pass ages it;
     * while it holds mappings too young to go, or aged ones a bounded pass
     * left, its flag keeps every heap's hand-overs looking (hand_over). */
    large_cache_step(h, h->tick_ms);
    h->return_wait = (h->purge != NULL || h->empty != NULL) && hk_heap_maintain_now(h);
    /* And the counts hand over soon after a tick too, at most once a
     * delay: blocks other threads free after it wait in the inbox until a
     * hand-over sees them, and a thread that slows down after the tick,
     * its allocations spread over many classes, made the next one minutes
     * later.  A thread that allocates fast burns through the shortened
     * counts in a few hundred allocations of each class it uses. */
    if (h->tick_ms - h->soon_ms >= (uint64_t)hk_opt.decommit_delay_ms) {
        h->soon_ms = h->tick_ms;
        look_soon(h);
    }
}

void hk_ss_units_free(struct hk_heap *h, struct hk_ss *ss, uint32_t mask)
{
    ss->free_units |= mask;
    if (ss->free_units != 0xffffffffu) {
        hk_avail_update(h, ss);
        if (ss->dirty_units & mask) {
            /* The delay counts from the last unit freed: a SuperSlab whose
             * slabs keep turning over reuses its free units within it.
             * Counted from the first, the free units of a SuperSlab that
             * stayed on the list were given back a moment after their
             * slab emptied, and faulted in again by the next one (a
             * steady set of 33-128 KB blocks: 10 madvise a second). */
            ss->purge_since_ms = hk_os_now_ms();
            hk_heap_wait_for_return(h);
            if (!ss->in_purge) {
                ss->in_purge = 1;
                ss->purge_next = h->purge;
                h->purge = ss;
            }
        }
        return;
    }
    if (ss->in_purge)
        purge_remove(h, ss);
    hk_avail_remove(h, ss);
    ss->empty_since_ms = hk_os_now_ms();
    hk_heap_wait_for_return(h);
    ss->next = h->empty;
    h->empty = ss;
    h->empty_count++;
}

void hk_slab_release(struct hk_heap *h, struct hk_slab *s)
{
    hk_assert(s->used == 0 && (s->cls == HK_CLASS_UNITS || h->cur[s->cls] != s));
    struct hk_ss *ss = hk_ss_of(s);  /* descriptors live in their SuperSlab's header */
    unsigned n = s->units;
    uint32_t mask = (n == 32 ? 0xffffffffu : ((1u << n) - 1)) << s->first_unit;
    if (s->in_partial)
        hk_partial_remove(h, s);
    for (unsigned u = s->first_unit; u < s->first_unit + n; u++)
        ck_pr_store_ptr(&ss->unit_slab[u], &hk_slab_empty);
    hk_slab_unhead(s);
    hk_slab_count_in_use(s, false);
    HK_STAT_INC(h, slab_release);
    if (hk_opt.decommit_delay_ms == 0)
        decommit_units(ss, s->first_unit, s->first_unit + n - 1);
    if (s->cls == HK_CLASS_UNITS)
        ss->block_units |= mask;
    hk_ss_units_free(h, ss, mask);
    hk_heap_maintain(h);
}

void hk_slab_count_in_use(const struct hk_slab *s, bool in_use)
{
    uint64_t bytes = (uint64_t)s->units << HK_UNIT_SHIFT;
    unsigned node = hk_ss_of(s)->node;
    if (in_use)
        ck_pr_add_64(&hk_node_stats[node].bytes_in_use, bytes);  /* statistic: relaxed */
    else
        ck_pr_sub_64(&hk_node_stats[node].bytes_in_use, bytes);
}

void hk_slab_emptied(struct hk_heap *h, struct hk_slab *s)
{
    if (hk_opt.decommit_delay_ms == 0) {  /* memory back at once, as asked */
        hk_slab_release(h, s);
        return;
    }
    struct hk_slab *old = hk_spare_of(h, s->cls);
    if (old != NULL)
        hk_slab_release(h, old);  /* the newer one is warmer */
    if (!s->in_partial)
        hk_partial_push(h, s);
    h->spare[s->cls] = (uintptr_t)s;
    h->spare_count++;
    hk_slab_count_in_use(s, false);  /* reserve, like the committed empty SuperSlabs */
}

void hk_spare_age(struct hk_heap *h)
{
    /* Generations of the decommit delay: a spare goes after one to two. */
    uint64_t now = hk_os_now_ms();
    if (now - h->spare_aged_ms < (uint64_t)hk_opt.decommit_delay_ms)
        return;
    h->spare_aged_ms = now;
    for (unsigned c = 0; c < HK_CLASSES && h->spare_count != 0; c++) {
        if (h->spare[c] & 1)
            hk_slab_release(h, hk_spare_of(h, c));
        else if (h->spare[c] != 0)
            h->spare[c] |= 1;
    }
}

void hk_heap_release_reserve(struct hk_heap *h)
{
    purge_run(h, true);
    empty_trim(h, true);
}

/* Decommit the free units of h's purge list, but for the first `keep` and,
 * if `blocks`, those unit blocks held last; returns the units kept. */
static unsigned purge_exited(struct hk_heap *h, unsigned keep, bool blocks)
{
    unsigned kept = 0, others = 0;
    struct hk_ss **link = &h->purge;
    while (*link != NULL) {
        struct hk_ss *ss = *link;
        uint32_t dirty = ss->free_units & ss->dirty_units, other = blocks ? dirty & ~ss->block_units : dirty;
        unsigned n = (unsigned)__builtin_popcount(other);
        if (others + n <= keep) {
            others += n;
        } else {
            purge_units(ss, other);
            if (dirty_free(ss) == 0) {
                *link = ss->purge_next;
                ss->in_purge = 0;
                continue;
            }
        }
        kept += dirty_free(ss);
        link = &ss->purge_next;
    }
    return kept;
}

/* Free units an exited thread's heap keeps committed for its adopter,
 * beyond those its unit blocks held (512 KiB): bench/churn (threads of 256
 * blocks of 16-1024 B) ran 1.8x as fast keeping 8, 16 or 32 against none;
 * tests/lifecycle's RSS, which must not grow after its first 1000 threads,
 * wandered up to 4.2 MB above that mark keeping 32 (its heaps wait for
 * adopters with a reserve each), 2.3 MB keeping 8, as without a reserve. */
#define EXITED_KEEP_UNITS 8u

void hk_heap_trim_exited(struct hk_heap *h)
{
    bool keep_empty = h->empty != NULL && hk_opt.heap_ss_cache > 0;
    unsigned empty = keep_empty ? HK_UNITS : 0;
    /* The units unit blocks held go to the adopter's unit blocks as they
     * are, within the budget; else only the first few units stay. */
    unsigned want = purge_exited(h, EXITED_KEEP_UNITS, true) + empty;
    if (!budget_take(want)) {
        want = purge_exited(h, EXITED_KEEP_UNITS, false) + empty;
        if (!budget_take(want)) {  /* the budget is spent: everything goes back (and its extras' share) */
            hk_heap_release_reserve(h);
            return;
        }
    }
    ck_pr_store_32(&h->exited_units, want);  /* read racily by hk_heap_sweep_owed */
    /* The newest empty SuperSlab (the list's head) stays. */
    struct hk_ss **link = keep_empty ? &h->empty->next : &h->empty;
    while (*link != NULL) {
        struct hk_ss *ss = *link;
        *link = ss->next;
        h->empty_count--;
        hk_ss_release(ss);
    }
    extra_settle(h, 0);
}

void hk_heap_untrack_exited(struct hk_heap *h)
{
    uint32_t units = ck_pr_load_32(&h->exited_units);
    if (units != 0) {
        ck_pr_sub_64(&budget_units, units);
        ck_pr_store_32(&h->exited_units, 0);
    }
}
