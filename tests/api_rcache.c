/* The remote-block cache's cap adapts per class: it halves while the class
 * overflows (frees of other heaps' blocks in bursts larger than the cap),
 * down to 4 blocks, and doubles back to HAKMEM_REMOTE_CACHE (16) once the
 * overflows stop.  Seen from outside: how many of another thread's blocks,
 * freed here in a burst, the next allocations of their size hand out again. */
#define _GNU_SOURCE  /* tu_pin_here */
#include <criterion/criterion.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include "hakmem.h"
#include "testutil.h"

enum { SIZE = 64, OTHER = 512, OWNED = 4000, BURST = 200, PERIOD = 4096 };
static void *owned[OWNED];  /* another thread's blocks, freed here */
static size_t next_owned;

/* n blocks of `size` into v, made by the thread this runs in. */
struct to_make {
    void **v;
    size_t n, size;
};

static void *make_blocks(void *arg)
{
    const struct to_make *m = arg;
    for (size_t i = 0; i < m->n; i++)
        m->v[i] = hak_malloc(m->size);
    return NULL;
}

static int is_owned(const void *p)
{
    for (size_t i = 0; i < OWNED; i++)
        if (owned[i] == p)
            return 1;
    return 0;
}

static void free_burst(size_t n)
{
    cr_assert_leq(next_owned + n, OWNED, "test ran out of the other thread's blocks");
    for (size_t i = 0; i < n; i++)
        hak_free(owned[next_owned++]);
}

/* A ticker period of allocations of another size: exactly one tick, on
 * which the cap adapts. */
static void tick(void)
{
    for (int i = 0; i < PERIOD; i++)
        hak_free(hak_malloc(OTHER));
}

/* Allocate SIZE until a block is not the other thread's: the cache is then
 * dry.  Its blocks stay allocated (freed here they would go back into it). */
static void drain(void)
{
    for (;;) {
        void *p = hak_malloc(SIZE);
        cr_assert_not_null(p);
        if (!is_owned(p)) {
            hak_free(p);
            return;
        }
    }
}

/* Burst-free n of the other thread's blocks, then count how many of the
 * next n allocations of their size are among them (kept allocated). */
static int reused_after_burst(size_t n)
{
    drain();
    free_burst(n);
    int hits = 0;
    for (size_t i = 0; i < n; i++)
        hits += is_owned(hak_malloc(SIZE));
    return hits;
}

static int best_of_three(size_t n)
{
    int best = 0;
    for (int attempt = 0; attempt < 3 && best != 16; attempt++) {
        int hits = reused_after_burst(n);
        best = hits > best ? hits : best;
    }
    return best;
}

/* With the cache's defaults (else false): our heap, then the other
 * thread's blocks.  Our heap first: made after the other thread's exit, it
 * would be that thread's heap, adopted, and its blocks ours (in the
 * sanitizer builds nothing else allocates through hakmem before). */
static bool owned_ready(void)
{
    if (getenv("HAKMEM_REMOTE_CACHE") || getenv("HAKMEM_REMOTE_BATCH") || getenv("HAKMEM_PROFILE") ||
        getenv("HAKMEM_DECOMMIT_DELAY_MS"))
        return false;
    tu_pin_here();  /* the other thread's blocks on our node: the cache keeps no others */
    hak_free(hak_malloc(SIZE));
    pthread_t t;
    struct to_make m = { owned, OWNED, SIZE };
    cr_assert_eq(pthread_create(&t, NULL, make_blocks, &m), 0);
    cr_assert_eq(pthread_join(t, NULL), 0);
    return true;
}

Test(remote_cache, cap_shrinks_under_overflow_and_grows_back)
{
    if (!owned_ready())
        cr_skip_test("a HAKMEM_ option that changes the cache is set: the test needs its defaults");

    /* The cache also goes home on time (a decommit delay, 250 ms): should
     * that fall between a burst and its count on a slow machine, the count
     * comes short, so counts that must reach the cap take the best of three
     * (bursts of 20 and 40 overflow less than 64 times a period). */
    int fresh = best_of_three(20);
    cr_assert_eq(fresh, 16, "a new heap's cache took %d of a burst of 20, not its cap of 16", fresh);

    /* Bursts of 200: every one overflows the cap by far more than 64. */
    for (int round = 0; round < 3; round++) {
        drain();
        free_burst(BURST);
        tick();
    }
    int shrunk = reused_after_burst(40);
    cr_assert_leq(shrunk, 4, "after three overflowing periods the cache took %d of 40, not 4", shrunk);

    /* Periods without overflows: 4 -> 8 -> 16. */
    for (int round = 0; round < 3; round++)
        tick();
    int grown = best_of_three(40);
    cr_assert_eq(grown, 16, "after quiet periods the cache took %d of 40, not its full cap of 16", grown);
}

/* While the cache of a class is installed (it holds other heaps' blocks
 * and serves the class's allocations), the owner's own frees of the class
 * go into it too, one LIFO list as in jemalloc's and tcmalloc's thread
 * caches: the next allocation gets the block freed last, ours or not.  A
 * collection sends the cache's blocks home, ours onto our slab's list. */
Test(remote_cache, own_free_joins_installed_cache)
{
    if (!owned_ready())
        cr_skip_test("a HAKMEM_ option that changes the cache is set: the test needs its defaults");

    /* Three rounds, as the cache may go home on time between two steps. */
    int joined = 0, home = 0;
    for (int round = 0; round < 3 && (!joined || !home); round++) {
        void *mine = hak_malloc(SIZE);
        cr_assert_not_null(mine);
        cr_assert(!is_owned(mine));
        drain();
        free_burst(12);  /* more than the 8 that install the cache */
        hak_free(mine);
        void *again = hak_malloc(SIZE);
        if (again == mine) {
            joined = 1;
        } else {
            cr_assert(is_owned(again), "an allocation from the installed cache gave %p, neither ours nor cached",
                      again);
            continue;
        }
        /* Ours into the cache again, then a collection: the other
         * thread's blocks go to their owner, ours to our slab, whose next
         * allocation is ours again and not a cached block. */
        hak_free(mine);
        hak_collect();
        void *after = hak_malloc(SIZE);
        cr_assert(!is_owned(after), "after a collection an allocation still came from the cache (%p)", after);
        home |= after == mine;
        hak_free(after);
    }
    cr_assert(joined, "an owner's free while the cache was installed was not the next block handed out");
    cr_assert(home, "after a collection our block did not come back from our own slab");
}

/* Our own blocks in the cache do not crowd other heaps' blocks out: each
 * lowers the cache's full mark, up to twice the cap in all.  8 of the other
 * thread's blocks install the cache, 16 of ours follow them in, and 8 more
 * of the other thread's still fit (counted against the cap of 16, ours
 * would have filled it and sent those home). */
static int foreign_kept_past_own(void)
{
    void *mine[16];
    drain();
    for (int i = 0; i < 16; i++) {
        mine[i] = hak_malloc(SIZE);
        cr_assert(!is_owned(mine[i]));
    }
    free_burst(8);
    for (int i = 0; i < 16; i++)
        hak_free(mine[i]);
    free_burst(8);
    int foreign = 0;
    for (int i = 0; i < 32; i++)
        foreign += is_owned(hak_malloc(SIZE));  /* kept allocated */
    return foreign;
}

Test(remote_cache, own_blocks_leave_room_for_foreign)
{
    if (!owned_ready())
        cr_skip_test("a HAKMEM_ option that changes the cache is set: the test needs its defaults");
    /* The best of three: the cache may go home on time between two steps. */
    int best = 0;
    for (int attempt = 0; attempt < 3 && best != 16; attempt++) {
        int kept = foreign_kept_past_own();
        best = kept > best ? kept : best;
    }
    cr_assert_eq(best, 16, "the cache kept %d of the other thread's 16 blocks freed around 16 of ours", best);
}

/* Blocks that different threads were handed never share a cache line: a
 * thread reuses other heaps' freed blocks only of classes whose blocks own
 * their lines (slab.c: rc_keeps), unless HAKMEM_REMOTE_CACHE_SHARED_LINES=1
 * lets it reuse them all, as jemalloc's and tcmalloc's thread caches do
 * (tests/api_options.sh runs this with the option too, and then it must).
 * Another thread allocates LS_COUNT blocks of a size back to back; this
 * thread frees every other one (more than the cap of 16, fewer than the 64
 * overflows that halve it) and allocates as many of the size, and each new
 * block is checked against the lines of the other thread's blocks still
 * allocated. */
enum { LS_COUNT = 48, LINE = 64 };
static void *ls_theirs[LS_COUNT];

static bool shares_line(const void *p, const void *q)
{
    uintptr_t a = (uintptr_t)p, b = (uintptr_t)q;
    uintptr_t a_end = a + hak_malloc_usable_size(p) - 1, b_end = b + hak_malloc_usable_size(q) - 1;
    return a / LINE <= b_end / LINE && b / LINE <= a_end / LINE;
}

Test(remote_cache, reuses_other_threads_lines_only_when_asked)
{
    if (getenv("HAKMEM_REMOTE_CACHE") || getenv("HAKMEM_PROFILE"))
        cr_skip_test("HAKMEM_REMOTE_CACHE or HAKMEM_PROFILE set: the test needs a cache of the default size");
    const char *opt = getenv("HAKMEM_REMOTE_CACHE_SHARED_LINES");
    bool asked = opt != NULL && opt[0] == '1';
    /* Unbatched remote frees go straight home, and with a delay of 0 a
     * cache goes home as it overflows: no reuse to count then. */
    bool reuse = !getenv("HAKMEM_REMOTE_BATCH") && !getenv("HAKMEM_DECOMMIT_DELAY_MS");
    if (!reuse)
        cr_log_info("HAKMEM_REMOTE_BATCH or HAKMEM_DECOMMIT_DELAY_MS set: reuse not required, only no shared line");
    static const size_t sizes[] = { 16, 48, 80, 144, 64, 1024 };  /* a class each */
    tu_pin_here();  /* the other thread's blocks on our node, as in owned_ready */
    hak_free(hak_malloc(16));  /* our heap first, as in owned_ready */
    for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++) {
        size_t size = sizes[s];
        pthread_t t;
        struct to_make m = { ls_theirs, LS_COUNT, size };
        cr_assert_eq(pthread_create(&t, NULL, make_blocks, &m), 0);
        cr_assert_eq(pthread_join(t, NULL), 0);
        for (size_t i = 0; i < LS_COUNT; i += 2)
            hak_free(ls_theirs[i]);
        void *mine[LS_COUNT / 2];
        int shared = 0, reused = 0;
        for (size_t k = 0; k < LS_COUNT / 2; k++) {
            mine[k] = hak_malloc(size);
            cr_assert_not_null(mine[k]);
            for (size_t i = 0; i < LS_COUNT; i++) {
                reused += mine[k] == ls_theirs[i];
                shared += i % 2 == 1 && shares_line(mine[k], ls_theirs[i]);
            }
        }
        bool owns_lines = hak_malloc_usable_size(mine[0]) % LINE == 0;
        cr_log_info("%zu B: %d of ours reused their blocks, %d line(s) shared with their live ones", size, reused,
                    shared);
        if (owns_lines || !asked)
            cr_assert_eq(shared, 0, "%zu B: %d of the blocks handed out here share a line with another thread's",
                         size, shared);
        else if (reuse)
            cr_assert_gt(shared, 0, "%zu B, HAKMEM_REMOTE_CACHE_SHARED_LINES=1: no block of the other thread reused",
                         size);
        if (owns_lines && reuse)
            cr_assert_gt(reused, 0, "%zu B: the cache kept none of the other thread's blocks of a class that owns "
                         "its lines", size);
        for (size_t k = 0; k < LS_COUNT / 2; k++)
            hak_free(mine[k]);
        for (size_t i = 1; i < LS_COUNT; i += 2)
            hak_free(ls_theirs[i]);
    }
}
