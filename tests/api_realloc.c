/* realloc and reallocarray: contents survive growth and shrinkage through
 * every class into large blocks and back; failures leave the block alone. */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include "hakmem.h"
#include "testutil.h"
#include "api_stats.h"

#define SEED 0x7265616c6c6f63ull

static volatile size_t size_max = SIZE_MAX;

Test(realloc, null_pointer_is_malloc)
{
    static const size_t sizes[] = {0, 1, 100, 4096, 40000, 1 << 20};
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        void *p = hak_realloc(NULL, sizes[i]);
        cr_assert_not_null(p, "realloc(NULL, %zu) returned NULL", sizes[i]);
        cr_assert_geq(hak_malloc_usable_size(p), sizes[i]);
        tu_fill(p, sizes[i], SEED);
        hak_free(p);
    }
    errno = 0;
    cr_assert_null(hak_realloc(NULL, size_max));
    cr_assert_eq(errno, ENOMEM, "realloc(NULL, SIZE_MAX): errno %d", errno);
}

/* glibc frees the block on realloc(p, 0) and returns NULL (C23 leaves it
 * implementation-defined; hakmem follows glibc).  A leak would show as
 * resident memory: the loop touches 400 MiB. */
Test(realloc, zero_size_frees_and_returns_null)
{
    size_t before = tu_rss();
    for (int i = 0; i < 200000; i++) {
        void *p = hak_malloc(2048);
        cr_assert_not_null(p);
        memset(p, 0x11, 2048);
        void *q = hak_realloc(p, 0);
        cr_assert_null(q, "realloc(%p, 0) returned %p, expected NULL", p, q);
    }
    size_t after = tu_rss();
    cr_assert_lt(after, before + (64u << 20),
                 "realloc(p, 0) does not free: RSS grew from %zu to %zu", before, after);
}

/* One step of a chain: the common prefix keeps its pattern, then the whole
 * new block gets it. */
static void *step(void *p, size_t old, size_t n)
{
    void *q = hak_realloc(p, n);
    cr_assert_not_null(q, "realloc(%p, %zu -> %zu) failed", p, old, n);
    size_t keep = old < n ? old : n;
    size_t bad = tu_check(q, keep, SEED);
    cr_assert_eq(bad, (size_t)-1, "realloc %zu -> %zu (%p -> %p): byte %zu lost", old, n,
                 p, q, bad);
    cr_assert_geq(hak_malloc_usable_size(q), n);
    tu_fill(q, n, SEED);
    return q;
}

static const size_t large_steps[] = {
    40000, 65536, 100000, 262144, 262145, 1 << 20, 1536 * 1024, 3 << 20, 4 << 20,
};
#define NLARGE (sizeof large_steps / sizeof large_steps[0])

/* 1 B up through every class (and one byte either side of it) to 4 MiB, then
 * back down to 1 B.  With `pin`, a block of each size is allocated after
 * each step so growing in place is often impossible and the block moves. */
static void chain(int pin)
{
    unsigned count = hak_size_class_count();
    void *pins[3 * 256 + 2 * NLARGE];
    size_t npins = 0;
    size_t cur = 1;
    void *p = hak_malloc(1);
    cr_assert_not_null(p);
    tu_fill(p, 1, SEED);
    for (int dir = 0; dir < 2; dir++) {
        for (size_t k = 0; k < count + NLARGE; k++) {
            size_t i = dir == 0 ? k : count + NLARGE - 1 - k;
            size_t base = i < count ? hak_size_class_size(i) : large_steps[i - count];
            size_t tries[3] = {base - 1, base, base + 1};
            for (int t = 0; t < 3; t++) {
                size_t n = tries[dir == 0 ? t : 2 - t];
                if (n == 0)
                    continue;
                p = step(p, cur, n);
                cur = n;
                if (pin && t == 1 && npins < sizeof pins / sizeof pins[0]) {
                    pins[npins] = hak_malloc(n);
                    cr_assert_not_null(pins[npins]);
                    npins++;
                }
            }
        }
    }
    p = step(p, cur, 1);
    hak_free(p);
    for (size_t i = 0; i < npins; i++)
        hak_free(pins[i]);
}

Test(realloc, chain_through_all_classes)
{
    chain(0);
}

Test(realloc, chain_with_neighbours_pinned)
{
    chain(1);
}

/* A request that cannot be met returns NULL, sets ENOMEM and leaves the old
 * block where it was, with its contents, still freeable. */
Test(realloc, failure_keeps_old_block)
{
    static const size_t sizes[] = {1, 48, 1000, 20000, 1 << 20};
    static volatile size_t fail[] = {SIZE_MAX, SIZE_MAX - 4096, (size_t)PTRDIFF_MAX + 1};
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++)
        for (size_t f = 0; f < sizeof fail / sizeof fail[0]; f++) {
            void *p = hak_malloc(sizes[i]);
            cr_assert_not_null(p);
            tu_fill(p, sizes[i], SEED);
            size_t usable = hak_malloc_usable_size(p);
            errno = 0;
            void *q = hak_realloc(p, fail[f]);
            cr_assert_null(q, "realloc(%p, %zu) returned %p", p, fail[f], q);
            cr_assert_eq(errno, ENOMEM, "realloc(%zu -> %zu): errno %d", sizes[i], fail[f],
                         errno);
            cr_assert_eq(tu_check(p, sizes[i], SEED), (size_t)-1,
                         "failed realloc changed the old block of %zu", sizes[i]);
            cr_assert_eq(hak_malloc_usable_size(p), usable);
            hak_free(p);
        }
}

Test(reallocarray, grows_like_realloc)
{
    void *p = hak_reallocarray(NULL, 10, 10);
    cr_assert_not_null(p);
    tu_fill(p, 100, SEED);
    p = hak_reallocarray(p, 1000, 100);
    cr_assert_not_null(p);
    cr_assert_eq(tu_check(p, 100, SEED), (size_t)-1, "reallocarray lost the contents");
    cr_assert_geq(hak_malloc_usable_size(p), 100000);
    tu_fill(p, 100000, SEED);
    p = hak_reallocarray(p, 3, 7);
    cr_assert_not_null(p);
    cr_assert_eq(tu_check(p, 21, SEED), (size_t)-1, "reallocarray lost the contents");
    hak_free(p);
}

Test(reallocarray, overflow_keeps_old_block)
{
    static volatile size_t pairs[][2] = {
        {SIZE_MAX / 2 + 1, 2}, {2, SIZE_MAX / 2 + 1}, {(size_t)1 << 32, (size_t)1 << 32},
    };
    for (size_t i = 0; i < sizeof pairs / sizeof pairs[0]; i++) {
        void *p = hak_malloc(256);
        cr_assert_not_null(p);
        tu_fill(p, 256, SEED);
        errno = 0;
        void *q = hak_reallocarray(p, pairs[i][0], pairs[i][1]);
        cr_assert_null(q, "reallocarray(p, %zu, %zu) returned %p", pairs[i][0], pairs[i][1],
                       q);
        cr_assert_eq(errno, ENOMEM, "reallocarray overflow: errno %d", errno);
        cr_assert_eq(tu_check(p, 256, SEED), (size_t)-1, "overflowing reallocarray changed the block");
        hak_free(p);
    }
    errno = 0;
    cr_assert_null(hak_reallocarray(NULL, SIZE_MAX / 2 + 1, 2));
    cr_assert_eq(errno, ENOMEM);
}

/* A buffer grown in 32 KiB steps to 64 MiB (a pipe read into a realloc'd
 * buffer): every byte survives, the old copies do not stay resident, and
 * the OS is asked a few dozen times, not once a step.  The mapping grows
 * where it is or moves by mremap; it used to be copied whenever it
 * outgrew its reservation, each old mapping kept in the cache (RSS 2.2x
 * the buffer's), and every step in place made an madvise (1,725 for this
 * chain). */
Test(realloc, large_buffer_grown_in_steps)
{
    const size_t step = 32 << 10, total = 64 << 20;
    size_t rss_before = tu_rss_for_bound("realloc::large_buffer_grown_in_steps");
    long long calls_before = api_os_calls();
    unsigned char *p = NULL;
    for (size_t len = 0; len < total; len += step) {
        p = hak_realloc(p, len + step);
        cr_assert_not_null(p, "realloc to %zu failed", len + step);
        for (size_t i = len; i < len + step; i++)
            p[i] = (unsigned char)(i * 131 + i / 4096);
    }
    for (size_t i = 0; i < total; i++)
        if (p[i] != (unsigned char)(i * 131 + i / 4096))
            cr_assert_fail("byte %zu of the grown buffer lost", i);
    long long calls = api_os_calls() - calls_before;
    size_t grew = tu_rss() - rss_before;
    hak_free(p);
    cr_assert_lt(calls, 200, "%lld OS calls (mmap + munmap + madvise) for %zu steps", calls, total / step);
    if (rss_before != 0)
        cr_assert_lt(grew, total + total / 4, "RSS grew by %zu bytes for a %zu-byte buffer", grew, total);
}

/* A cached mapping goes back at the first ticker pass a decommit delay
 * after its free, which the next few small allocations (the test's own
 * stdio) may bring on: tests of growth into cached mappings need a delay
 * longer than their steps (with 1 ms they failed 8 runs in 10). */
static void skip_without_delay(void)
{
    const char *d = getenv("HAKMEM_DECOMMIT_DELAY_MS");
    if (d != NULL && atol(d) < 100)
        cr_skip_test("HAKMEM_DECOMMIT_DELAY_MS below 100: cached mappings may go back before the test uses them");
}

/* A large block of `size` bytes, every byte `fill` (its pages resident),
 * freed into the mapping cache: where it was. */
static unsigned char *freed_resident_block(size_t size, int fill)
{
    unsigned char *p = hak_malloc(size);
    cr_assert_not_null(p);
    memset(p, fill, size);
    hak_free(p);
    cr_assert_geq(api_stat("large_cached"), (long long)size, "the freed mapping is not cached: the test proves nothing");
    return p;
}

/* A buffer grown after a bigger one was freed (a buffer filled again and
 * again): outgrowing its mapping, it moves into the freed mapping, whose
 * pages are resident, the rest split off back into the cache, and grows
 * into that rest in place: no page faults, one OS call (the move).  The
 * build before grew it by mremap into fresh memory, every page faulted in
 * (bench/large: 5.2x the throughput now). */
Test(realloc, growth_takes_a_freed_mapping)
{
    const size_t big = 32 << 20, small = 3 << 20, grown = 30 << 20;
    skip_without_delay();
    unsigned char *p = freed_resident_block(big, 1);
    long long cached = api_stat("large_cached");
    unsigned char *q = hak_malloc(small);  /* a mapping of its own: the cached one would waste more than half */
    cr_assert(q != NULL && q != p, "malloc(%zu) took the %zu-byte mapping", small, big);
    tu_fill(q, small, SEED);
    long long rss_before = (long long)tu_rss(), calls_before = api_os_calls();
    unsigned char *r = hak_realloc(q, 6 << 20);
    cr_assert_eq(r, p, "grown beyond its mapping, the block went to %p, not into the cached mapping at %p", r, p);
    long long rest = api_stat("large_cached");
    cr_assert(rest > 0 && rest < cached, "%lld bytes cached, %lld before: the rest was not split off", rest, cached);
    r = hak_realloc(r, grown);
    cr_assert_eq(r, p, "grown into the rest, the block moved to %p", r);
    cr_assert_eq(tu_check(r, small, SEED), (size_t)-1, "the grown block lost its contents");
    memset(r + small, 2, grown - small);
    long long calls = api_os_calls() - calls_before, grew = (long long)tu_rss() - rss_before;
    cr_assert_eq(calls, 1, "%lld OS calls for two growths (expected the move's mremap)", calls);
    if (rss_before != 0)
        cr_assert_lt(grew, 4 << 20, "RSS grew by %lld bytes: the growth faulted in fresh pages", grew);
    hak_free(r);
}

/* A block whose mapping the program cut into several kernel mappings
 * (madvise of part of it here; mprotect or mlock do the same) grows into a
 * cached mapping all the same: by a copy, since a move of several kernel
 * mappings may fail halfway (Linux 6.17 and later), leaving the block torn
 * between two places; a move that grows refuses them whole. */
Test(realloc, block_in_several_kernel_mappings_grows_into_a_freed_mapping)
{
    unsigned char *p = freed_resident_block(32 << 20, 1);
    const size_t small = 3 << 20;
    unsigned char *q = hak_malloc(small);
    cr_assert(q != NULL && q != p, "malloc(%zu) took the cached mapping", small);
    tu_fill(q, small, SEED);
    cr_assert_eq(madvise(q + (1 << 20), 4096, MADV_DONTFORK), 0, "madvise: the test proves nothing");
    unsigned char *r = hak_realloc(q, 6 << 20);
    cr_assert_eq(r, p, "the block went to %p, not into the cached mapping at %p", r, p);
    cr_assert_eq(tu_check(r, small, SEED), (size_t)-1, "the block lost its contents");
    hak_free(r);
}

/* The rest of a cached mapping split off behind a block serves the next
 * block as a mapping of its own: its header is written over the old
 * block's data (all ones here), and a free of the block it holds must take
 * the large path.  Before the header was cleared, the free fast path read
 * the old data as the SuperSlab's owning heap and crashed. */
Test(realloc, split_off_rest_of_a_cached_mapping_serves_a_block)
{
    const size_t big = 32 << 20, first = 25 << 20, second = 5 << 20;
    unsigned char *p = freed_resident_block(big, 0xff);
    unsigned char *q = hak_malloc(first);     /* the front of p's mapping, the rest split off */
    cr_assert_eq(q, p, "malloc(%zu) did not take the cached mapping: the test proves nothing", first);
    unsigned char *r = hak_malloc(second);    /* the rest */
    cr_assert(r > q && r < p + big, "malloc(%zu) at %p, not in the rest of the mapping at %p", second, r, p);
    tu_fill(r, second, SEED);
    cr_assert_eq(hak_malloc_usable_size(r), second, "usable size of the block in the rest");
    r = hak_realloc(r, second + (1 << 20));
    cr_assert_eq(tu_check(r, second, SEED), (size_t)-1, "the block in the rest lost its contents");
    hak_free(r);
    hak_free(q);
}

/* A sparse block (a calloc'd table touched here and there) outgrowing its
 * mapping moves into a cached mapping by mremap: its untouched pages stay
 * untouched.  A copy made every page of a 20 MiB table resident (helper
 * 19's sparse: 207 MB against glibc's 2 MB for ten such tables). */
Test(realloc, sparse_block_moved_into_a_freed_mapping_stays_sparse)
{
    const size_t table = 20 << 20, grown = 35 << 20, scratch = 40 << 20, mib = 1 << 20;
    skip_without_delay();
    unsigned char *t = hak_calloc(1, table);  /* a fresh mapping: the cache is empty */
    cr_assert_not_null(t);
    for (size_t i = 0; i < table; i += mib)
        t[i] = (unsigned char)(i / mib + 1);
    unsigned char *b = hak_malloc(scratch);   /* another fresh one, sparse too, then cached */
    cr_assert_not_null(b);
    for (size_t i = 0; i < scratch; i += mib)
        b[i] = 1;
    hak_free(b);
    cr_assert_gt(api_stat("large_cached"), 0, "the freed scratch block is not cached: the test proves nothing");
    long long rss_before = (long long)tu_rss_for_bound("realloc::sparse_block_moved_into_a_freed_mapping_stays_sparse");
    t = hak_realloc(t, grown);
    cr_assert_eq(t, b, "the table went to %p, not into the cached mapping at %p", t, b);
    for (size_t i = 0; i < table; i++)
        if (t[i] != (i % mib == 0 ? (unsigned char)(i / mib + 1) : 0))
            cr_assert_fail("byte %zu of the moved table is %u", i, t[i]);
    long long grew = (long long)tu_rss() - rss_before;
    if (rss_before != 0)
        cr_assert_lt(grew, 4 << 20, "RSS grew by %lld bytes: the move made the table resident", grew);
    hak_free(t);
}

/* Many buffers grown round-robin through the medium sizes (32 to 128 KiB),
 * freed at the top and grown again: the medium classes serve them from
 * slabs, so once the slabs exist the OS is not asked again, and every byte
 * survives each move.  As mappings of their own they took an mmap and
 * munmaps at most growths (11,200 OS calls for 1M reallocs of 64 buffers;
 * this test: 1,246 on the build before). */
Test(realloc, many_buffers_grown_through_medium_sizes)
{
    enum { S = 64, ROUNDS = 8 };
    const size_t max = 128 << 10;
    static unsigned char *p[S];
    static size_t len[S];
    uint64_t r = SEED;
    for (int warm = 0; warm < 2; warm++) {
        long long calls_before = api_os_calls();
        for (long i = 0; i < (long)S * ROUNDS * 40; i++) {
            int k = (int)(i % S);
            r = r * 6364136223846793005ull + 1442695040888963407ull;
            size_t n = len[k] + 1 + (size_t)(r >> 33) % 6000;
            if (n > max) {
                hak_free(p[k]);
                p[k] = NULL;
                len[k] = 0;
                continue;
            }
            unsigned char *q = hak_realloc(p[k], n);
            cr_assert_not_null(q, "realloc to %zu failed", n);
            for (size_t j = 0; j < len[k]; j += 509)
                if (q[j] != (unsigned char)(j * 7 + (size_t)k))
                    cr_assert_fail("buffer %d: byte %zu lost growing %zu -> %zu", k, j, len[k], n);
            for (size_t j = len[k]; j < n; j++)
                q[j] = (unsigned char)(j * 7 + (size_t)k);
            p[k] = q;
            len[k] = n;
        }
        long long calls = api_os_calls() - calls_before;
        if (warm == 0)
            continue;
        if (getenv("HAKMEM_DECOMMIT_DELAY_MS") || getenv("HAKMEM_PROFILE"))
            cr_log_info("OS calls not checked: HAKMEM_DECOMMIT_DELAY_MS or HAKMEM_PROFILE set (memory may go back "
                        "as soon as a slab empties); %lld calls", calls);
        else
            cr_assert_lt(calls, 64, "%lld OS calls (mmap + munmap + madvise) for %d reallocs", calls, S * ROUNDS * 40);
    }
    for (int k = 0; k < S; k++)
        hak_free(p[k]);
}

/* A block aligned beyond half a SuperSlab has no header in its own chunk:
 * realloc must find its header through the big-alignment registry when
 * shrinking too.  It used to read the block's own bytes as the header
 * there: the shrink returned NULL, or wrote into the block. */
Test(realloc, big_aligned_block_shrinks_and_grows)
{
    static const size_t sizes[] = {2 << 20, 100000, 40000, 3 << 20, 6 << 20, 50};
    void *p = NULL;
    cr_assert_eq(hak_posix_memalign(&p, 4 << 20, 3 << 20), 0);
    size_t cur = 3 << 20;
    tu_fill(p, cur, SEED);
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        p = step(p, cur, sizes[i]);
        cur = sizes[i];
    }
    hak_free(p);
}
