#define _GNU_SOURCE  /* tu_pin_here */
/* Unit blocks: requests above the biggest class up to 1984 KiB are runs of
 * whole 64 KiB units carved from SuperSlabs, not mappings of their own:
 * their sizes, alignment and privacy, the mapping count of many of them,
 * frees from other threads, and realloc in place. */
#include <criterion/criterion.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include "hakmem.h"
#include "api_stats.h"
#include "testutil.h"

#define UNIT ((size_t)64 << 10)
#define UNIT_MAX (31 * UNIT)          /* the largest unit block */
#define SMALL_MAX ((size_t)128 << 10) /* the largest class */

static int mappings(void)
{
    FILE *f = fopen("/proc/self/maps", "r");
    cr_assert_not_null(f);
    int n = 0, c;
    while ((c = fgetc(f)) != EOF)
        n += c == '\n';
    fclose(f);
    return n;
}

/* Every size around each unit count: usable covers it without wasting more
 * than 4 sizes per doubling allow, blocks start on a unit, and filling the
 * whole usable size of one leaves its neighbours alone. */
Test(unit_blocks, sizes_usable_aligned_private)
{
    enum { K = 6 };
    for (size_t units = 2; units <= 31; units++) {
        const size_t sizes[] = {units * UNIT - 1, units * UNIT, units * UNIT + 1};
        for (int i = 0; i < 3; i++) {
            size_t want = sizes[i];
            if (want <= SMALL_MAX || want > UNIT_MAX)
                continue;
            void *p[K];
            size_t u[K];
            for (int k = 0; k < K; k++) {
                p[k] = hak_malloc(want);
                cr_assert_not_null(p[k], "malloc(%zu)", want);
                u[k] = hak_malloc_usable_size(p[k]);
                cr_assert_geq(u[k], want, "usable %zu of malloc(%zu)", u[k], want);
                cr_assert_leq(u[k], want + want / 4 + UNIT, "usable %zu of malloc(%zu): more than 25%% + a unit", u[k],
                              want);
                cr_assert_eq(u[k] % UNIT, 0, "usable %zu of malloc(%zu) is not whole units", u[k], want);
                cr_assert_eq((uintptr_t)p[k] % UNIT, 0, "malloc(%zu) = %p is not on a unit", want, p[k]);
                tu_fill(p[k], u[k], (uintptr_t)p[k]);
            }
            for (int k = 0; k < K; k++) {
                cr_assert_eq(tu_check(p[k], u[k], (uintptr_t)p[k]), (size_t)-1, "malloc(%zu) = %p overwritten", want,
                             p[k]);
                hak_free(p[k]);
            }
        }
    }
}

/* 20,000 live blocks of 140,000 bytes (the size the Erlang run stopped at):
 * as mappings of their own they took a mapping each, and 65,530 of them
 * reach vm.max_map_count; carved from SuperSlabs they take a few. */
Test(unit_blocks, many_live_take_few_mappings)
{
    enum { N = 20000 };
    const size_t size = 140000;
    char **v = hak_malloc(N * sizeof *v);
    cr_assert_not_null(v);
    int before = mappings();
    for (int i = 0; i < N; i++) {
        v[i] = hak_malloc(size);
        cr_assert_not_null(v[i], "block %d of %zu bytes", i, size);
        v[i][0] = (char)i;
        v[i][size - 1] = (char)(i >> 8);
    }
    int after = mappings();
    cr_log_info("%d live blocks of %zu bytes: %d mappings -> %d", N, size, before, after);
    cr_assert_lt(after - before, 1000, "%d live blocks of %zu bytes took %d mappings", N, size, after - before);
    for (int i = 0; i < N; i++) {
        cr_assert(v[i][0] == (char)i && v[i][size - 1] == (char)(i >> 8), "block %d changed", i);
        hak_free(v[i]);
    }
    hak_free(v);
}

/* Alignments up to 1 MiB are a unit block's start: no rounding up of the
 * size, and no mapping of its own (each took an mmap, uncached). */
Test(unit_blocks, aligned_up_to_1mib_without_a_mapping_each)
{
    enum { N = 1000 };
    for (size_t align = 16; align <= ((size_t)1 << 20); align *= 2) {
        void *p = hak_aligned_alloc(align, 300000);
        cr_assert_not_null(p, "aligned_alloc(%zu, 300000)", align);
        cr_assert_eq((uintptr_t)p % align, 0);
        cr_assert_leq(hak_malloc_usable_size(p), 320 << 10, "aligned_alloc(%zu, 300000) took %zu bytes", align,
                      hak_malloc_usable_size(p));
        hak_free(p);
    }
    static void *v[N];
    int before = mappings();
    for (int i = 0; i < N; i++) {
        cr_assert_eq(hak_posix_memalign(&v[i], (size_t)512 << 10, i % 2 ? 1000 : 700000), 0);
        cr_assert_eq((uintptr_t)v[i] % (512 << 10), 0);
        memset(v[i], i, i % 2 ? 1000 : 700000);
    }
    int after = mappings();
    for (int i = 0; i < N; i++)
        hak_free(v[i]);
    cr_assert_lt(after - before, 100, "%d blocks aligned to 512 KiB took %d mappings", N, after - before);
}

/* Blocks another thread frees go back to their SuperSlabs: rounds of 32
 * blocks of 1 MB made here and freed there leave nothing in use.  The
 * freeing thread's node does not matter (a unit block goes home at once,
 * unbatched), the owner's does: one that moved to another node made its
 * next SuperSlabs there, and those of its old node, empty, waited out the
 * decommit delay (HAKMEM_TOPOLOGY='numa:2 core:1 pu:1': committed grew
 * by 10 MB in exactly the runs where the main thread changed CPU). */
#define ROUNDS 40
#define PER 32
static void *free_all(void *arg)
{
    void **v = arg;
    for (int i = 0; i < PER; i++) {
        cr_assert_eq(((unsigned char *)v[i])[1000], (unsigned char)i, "block %d changed in transit", i);
        hak_free(v[i]);
    }
    return NULL;
}

Test(unit_blocks, freed_by_another_thread_come_back)
{
    tu_pin_here();
    void *v[PER];
    long long committed = 0;
    for (int r = 0; r < ROUNDS; r++) {
        for (int i = 0; i < PER; i++) {
            v[i] = hak_malloc(1000000);
            cr_assert_not_null(v[i]);
            memset(v[i], i, 1000000);
        }
        pthread_t t;
        cr_assert_eq(pthread_create(&t, NULL, free_all, v), 0);
        pthread_join(t, NULL);
        if (r == 1)
            committed = api_stat("bytes_committed");
    }
    /* The blocks of the last round reach us on our next slow path. */
    hak_free(hak_malloc(SMALL_MAX + 1));
    long long now = api_stat("bytes_committed");
    cr_log_info("committed after round 2: %lld, after round %d: %lld", committed, ROUNDS, now);
    cr_assert_leq(now, committed + (8ll << 20), "committed grew from %lld to %lld over %d rounds of 32 MB freed remotely",
                  committed, now, ROUNDS);
}

/* A buffer grown by realloc in 16 KiB steps through every unit-block size
 * grows into the free units after it, and keeps its content; shrunk, it
 * stays put too.  Whether the units after a new block are free depends on
 * what the process did before: best fit put a malloc(SMALL_MAX + 1) in the
 * 3-unit hole that Criterion's runner left among small slabs (a 214 KiB
 * buffer freed at start-up), and with HAKMEM_TOPOLOGY it moved twice.  So
 * the buffer starts as the largest unit block, units 1 to 31 of a SuperSlab
 * of this thread's heap, shrunk in place: the units after it are free, and
 * nothing here allocates before it grows into them. */
Test(unit_blocks, realloc_in_place)
{
    unsigned char *p = hak_malloc(UNIT_MAX);
    cr_assert_not_null(p);
    size_t size = SMALL_MAX + 1;
    cr_assert_eq(hak_realloc(p, size), p, "shrunk from %zu to %zu bytes, the buffer moved", UNIT_MAX, size);
    tu_fill(p, size, 7);
    while (size + 16384 <= UNIT_MAX) {
        unsigned char *q = hak_realloc(p, size + 16384);
        cr_assert_eq(q, p, "grown to %zu bytes, the buffer moved", size + 16384);
        cr_assert_eq(tu_check(q, size, 7), (size_t)-1, "content lost growing to %zu", size + 16384);
        tu_fill(q, size + 16384, 7);
        size += 16384;
    }
    unsigned char *q = hak_realloc(p, 200000);
    cr_assert_eq(q, p, "shrunk to 200000 bytes, the buffer moved");
    cr_assert_leq(hak_malloc_usable_size(q), 256 << 10);
    cr_assert_eq(tu_check(q, 200000, 7), (size_t)-1, "content lost shrinking");
    /* The units given back serve the next block. */
    void *r = hak_malloc(1 << 20);
    cr_assert_not_null(r);
    hak_free(r);
    hak_free(q);
}

/* Blocks whose owner exited come back when another thread frees them: its
 * heap waits for an adopter, and the freeing thread sweeps it every 4 MB or
 * so of them, the rest at a ticker pass (8 threads' 256 blocks of 1 MB
 * stayed resident otherwise). */
Test(unit_blocks, freed_after_their_thread_exited_come_back)
{
    long long live, after = api_exited_threads_blocks(8, PER, 1000000, true, &live);
    cr_assert_geq(live, 8ll * PER * 1000000, "the blocks were not counted");
    cr_assert_leq(after, 16ll << 20, "committed grew by %lld bytes, and by %lld after freeing them", live, after);
}

/* Thread churn while another thread frees the blocks the exited threads
 * left: its frees sweep their heaps now and then, and a new thread
 * adopting a heap a sweep holds waits for it instead of making a new one
 * (with a sweep at every unit block freed there, and adopters taking
 * another heap, the helper's 15,000 threads 8 at a time made 900 heaps,
 * and this test 23-31). */
#define POOL 256
static void *volatile churn_pool[POOL];
static int churn_stop;  /* __atomic: the freeing thread polls it */

static void churn_put(void *p, unsigned i)
{
    void *old = __atomic_exchange_n(&churn_pool[i % POOL], p, __ATOMIC_ACQ_REL);
    hak_free(old);
}

static void *churn_worker(void *arg)
{
    unsigned seed = (unsigned)(uintptr_t)arg * 2654435761u;
    for (unsigned i = 0; i < 64; i++) {
        void *p = hak_malloc(200000);
        cr_assert_not_null(p);
        memset(p, 1, 16);
        churn_put(p, seed + i * 7919);
    }
    return NULL;
}

static void *churn_freer(void *arg)
{
    (void)arg;
    for (unsigned i = 0; !__atomic_load_n(&churn_stop, __ATOMIC_ACQUIRE); i++)
        hak_free(__atomic_exchange_n(&churn_pool[i % POOL], NULL, __ATOMIC_ACQ_REL));
    return NULL;
}

Test(unit_blocks, churn_with_frees_into_exited_heaps_keeps_the_heaps)
{
    pthread_t f;
    cr_assert_eq(pthread_create(&f, NULL, churn_freer, NULL), 0);
    for (unsigned round = 0; round < 1000; round++) {
        pthread_t t[8];
        for (unsigned k = 0; k < 8; k++)
            cr_assert_eq(pthread_create(&t[k], NULL, churn_worker, (void *)(uintptr_t)(round * 8 + k + 1)), 0);
        for (unsigned k = 0; k < 8; k++)
            pthread_join(t[k], NULL);
    }
    __atomic_store_n(&churn_stop, 1, __ATOMIC_RELEASE);
    pthread_join(f, NULL);
    for (unsigned i = 0; i < POOL; i++)
        hak_free(churn_pool[i]);
    long long heaps = api_stat("heaps");
    cr_log_info("8000 threads, 8 at a time: %lld heaps", heaps);
    cr_assert_leq(heaps, 8 + 2 + 3, "8000 threads, 8 at a time (and a freeing thread): %lld heaps", heaps);
}

/* Thread churn with unit blocks (a thread per task, each with a buffer of
 * a megabyte): an exited thread's heap keeps its reserve for the thread
 * that adopts it next, which reuses the units instead of faulting them in
 * again after a madvise (one madvise per exiting thread, and a page fault
 * per 4 KiB after it, made such churn ten times slower than glibc's).
 * calloc still clears what the thread before wrote there. */
#define CHURN_BLOCK ((size_t)1 << 20)

static void *calloc_write_free(void *arg)
{
    unsigned char *p = hak_calloc(1, CHURN_BLOCK);
    cr_assert_not_null(p);
    for (size_t i = 0; i < CHURN_BLOCK; i += 4093)
        cr_assert_eq(p[i], 0, "byte %zu of a calloc'ed block is %#x", i, p[i]);
    cr_assert_eq(p[CHURN_BLOCK - 1], 0);
    memset(p, 0xa5, CHURN_BLOCK);
    hak_free(p);
    return arg;
}

static bool default_reserves(void)
{
    return !getenv("HAKMEM_DECOMMIT_DELAY_MS") && !getenv("HAKMEM_PROFILE") && !getenv("HAKMEM_LARGE_CACHE_MB") &&
           !getenv("HAKMEM_SS_CACHE");
}

Test(unit_blocks, thread_churn_reuses_the_exited_heaps_memory)
{
    if (!default_reserves())
        cr_skip_test("a HAKMEM_ option that sizes the reserves is set: the test needs the defaults");
    tu_pin_here();  /* every thread on one node: memory of another node serves none of them */
    pthread_t t[2];
    for (int k = 0; k < 2; k++)  /* the heaps and their SuperSlabs exist from here on */
        cr_assert_eq(pthread_create(&t[k], NULL, calloc_write_free, NULL), 0);
    for (int k = 0; k < 2; k++)
        pthread_join(t[k], NULL);
    long long calls = api_os_calls(), committed = api_stat("bytes_committed");
    for (int round = 0; round < 200; round++) {
        for (int k = 0; k < 2; k++)
            cr_assert_eq(pthread_create(&t[k], NULL, calloc_write_free, NULL), 0);
        for (int k = 0; k < 2; k++)
            pthread_join(t[k], NULL);
    }
    calls = api_os_calls() - calls;
    committed = api_stat("bytes_committed") - committed;
    cr_log_info("400 threads with a 1 MiB block each: %lld OS calls, committed %+lld bytes", calls, committed);
    cr_assert_leq(calls, 20, "400 threads, 2 at a time, with a 1 MiB block each: %lld OS calls", calls);
    cr_assert_leq(committed, 8ll << 20, "committed grew by %lld bytes", committed);
}

/* What exited heaps keep for adopters that never come goes back at a
 * ticker pass of any thread once the decommit delay has passed. */
static pthread_barrier_t reserve_barrier;

static void *write_wait_free(void *arg)
{
    unsigned char *p = hak_malloc(CHURN_BLOCK);
    cr_assert_not_null(p);
    memset(p, 0x5a, CHURN_BLOCK);
    pthread_barrier_wait(&reserve_barrier);
    hak_free(p);
    return arg;
}

Test(unit_blocks, exited_heaps_reserves_go_back_when_unused)
{
    if (!default_reserves())
        cr_skip_test("a HAKMEM_ option that sizes the reserves is set: the test needs the defaults");
    enum { THREADS = 12 };
    pthread_t t[THREADS];
    long long before = api_stat("bytes_committed");
    cr_assert_eq(pthread_barrier_init(&reserve_barrier, NULL, THREADS), 0);
    for (int k = 0; k < THREADS; k++)
        cr_assert_eq(pthread_create(&t[k], NULL, write_wait_free, NULL), 0);
    for (int k = 0; k < THREADS; k++)
        pthread_join(t[k], NULL);
    pthread_barrier_destroy(&reserve_barrier);
    long long kept = api_stat("bytes_committed") - before;
    /* Ticker passes (4096 allocations each) over more than the delay. */
    for (int pass = 0; pass < 4; pass++) {
        usleep(100000);
        for (int i = 0; i < 2 * 4096; i++)
            hak_free(hak_malloc(64));
    }
    long long after = api_stat("bytes_committed") - before;
    cr_log_info("%d exited threads' reserves: committed %+lld bytes, %+lld after ticker passes", THREADS, kept, after);
    cr_assert_geq(kept, 4ll << 20, "the exited heaps kept %lld bytes: the test no longer sees their reserves", kept);
    cr_assert_leq(after, 4ll << 20, "committed still %+lld bytes after the delay and ticker passes", after);
}

/* Threads that leave some of their unit blocks for another thread to free:
 * the units the others held stay with the exited heap for its adopter's
 * unit blocks, within the budget, instead of being decommitted at every
 * exit and faulted in again (bench/churn of such threads, 2 at a time:
 * 31,000 madvise calls for 2,000 threads, then 5,000). */
struct leaver {
    void *left[8];
    unsigned seed;
};

static void *leave_half(void *arg)
{
    struct leaver *l = arg;
    void *mine[8];
    for (unsigned i = 0; i < 16; i++) {
        size_t n = 131073 + (size_t)((l->seed * 2654435761u + i * 40503u) % 468928u);
        unsigned char *p = hak_malloc(n);
        cr_assert_not_null(p);
        p[0] = p[n - 1] = (unsigned char)i;
        if (i & 1)
            l->left[i / 2] = p;
        else
            mine[i / 2] = p;
    }
    for (unsigned i = 0; i < 8; i++)
        hak_free(mine[i]);
    return NULL;
}

Test(unit_blocks, churn_leaving_blocks_to_others_reuses_the_units)
{
    if (!default_reserves())
        cr_skip_test("a HAKMEM_ option that sizes the reserves is set: the test needs the defaults");
    struct leaver l[2][2];
    memset(l, 0, sizeof l);
    long long calls = 0;
    for (unsigned round = 0; round < 200; round++) {
        struct leaver *now = l[round & 1], *before = l[(round + 1) & 1];
        pthread_t t[2];
        for (int k = 0; k < 2; k++) {
            now[k].seed = round * 2 + (unsigned)k;
            cr_assert_eq(pthread_create(&t[k], NULL, leave_half, &now[k]), 0);
        }
        for (int k = 0; k < 2; k++)
            pthread_join(t[k], NULL);
        for (int k = 0; k < 2; k++)
            for (int i = 0; i < 8; i++) {
                hak_free(before[k].left[i]);
                before[k].left[i] = NULL;
            }
        if (round == 19)
            calls = api_os_calls();
    }
    calls = api_os_calls() - calls;
    cr_log_info("360 threads leaving 8 of 16 unit blocks each: %lld OS calls", calls);
    cr_assert_leq(calls, 1500, "360 threads leaving 8 of 16 unit blocks each to another thread: %lld OS calls", calls);
    for (int r = 0; r < 2; r++)
        for (int k = 0; k < 2; k++)
            for (int i = 0; i < 8; i++)
                hak_free(l[r][k].left[i]);
}
