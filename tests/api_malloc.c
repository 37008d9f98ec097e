/* malloc, calloc and the free family at their edges, as glibc defines them. */
#include <criterion/criterion.h>
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include "hakmem.h"
#include "testutil.h"

/* Sizes no allocator can serve; volatile so the compiler cannot fold the
 * calls or warn about them. */
static volatile size_t huge_sizes[] = {
    SIZE_MAX, SIZE_MAX - 15, (size_t)PTRDIFF_MAX + 1, (size_t)PTRDIFF_MAX,
};

static int cmp_ptr(const void *a, const void *b)
{
    uintptr_t x = *(const uintptr_t *)a, y = *(const uintptr_t *)b;
    return x < y ? -1 : x > y;
}

Test(malloc, zero_size_is_unique_and_freeable)
{
    enum { N = 1000 };
    void *p[N];
    for (int i = 0; i < N; i++) {
        p[i] = hak_malloc(0);
        cr_assert_not_null(p[i], "malloc(0) #%d returned NULL", i);
    }
    qsort(p, N, sizeof p[0], cmp_ptr);
    for (int i = 1; i < N; i++)
        cr_assert_neq(p[i], p[i - 1], "malloc(0) returned %p twice", p[i]);
    for (int i = 0; i < N; i++)
        hak_free(p[i]);
}

Test(malloc, impossible_sizes_fail_with_enomem)
{
    for (size_t i = 0; i < sizeof huge_sizes / sizeof huge_sizes[0]; i++) {
        errno = 0;
        void *p = hak_malloc(huge_sizes[i]);
        cr_assert_null(p, "malloc(%zu) returned %p", huge_sizes[i], p);
        cr_assert_eq(errno, ENOMEM, "malloc(%zu): errno %d, expected ENOMEM",
                     huge_sizes[i], errno);
    }
}

/* More than the machine has (RAM and swap, plus 1 GiB): the kernel's
 * overcommit heuristic refuses such a mapping from glibc, and must from us
 * too, by every route to a large block.  Helper 23 found malloc(64 GiB)
 * returning memory on a 24 GiB machine (MAP_NORESERVE skipped the check):
 * the program would have been killed on touching it instead of seeing
 * NULL. */
Test(malloc, more_than_the_machine_fails_with_enomem)
{
    FILE *f = fopen("/proc/sys/vm/overcommit_memory", "r");
    int mode = -1;
    if (f != NULL) {
        if (fscanf(f, "%d", &mode) != 1)
            mode = -1;
        fclose(f);
    }
    if (mode != 0 && mode != 2)
        cr_skip_test("vm.overcommit_memory is %d: the kernel grants any mapping, so this "
                     "test cannot tell (0 or 2 needed)", mode);
    long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGESIZE);
    unsigned long long swap = 0;
    f = fopen("/proc/meminfo", "r");
    char line[128];
    while (f != NULL && fgets(line, sizeof line, f) != NULL)
        if (sscanf(line, "SwapTotal: %llu kB", &swap) == 1)
            break;
    if (f != NULL)
        fclose(f);
    volatile size_t big = (size_t)pages * (size_t)page + (size_t)swap * 1024 + ((size_t)1 << 30);
    cr_assert_lt(big, (size_t)1 << 45, "a machine this large leaves no room below hakmem's own limit");

    errno = 0;
    void *p = hak_malloc(big);
    cr_assert_null(p, "malloc(%zu) returned %p", (size_t)big, p);
    cr_assert_eq(errno, ENOMEM, "malloc: errno %d", errno);
    errno = 0;
    p = hak_calloc(big / 4096, 4096);
    cr_assert_null(p, "calloc(%zu, 4096) returned %p", (size_t)big / 4096, p);
    cr_assert_eq(errno, ENOMEM, "calloc: errno %d", errno);
    cr_assert_eq(hak_posix_memalign(&p, (size_t)1 << 22, big), ENOMEM);
    errno = 0;
    p = hak_aligned_alloc((size_t)1 << 22, big);
    cr_assert_null(p, "aligned_alloc(4 MiB, %zu) returned %p", (size_t)big, p);
    cr_assert_eq(errno, ENOMEM, "aligned_alloc: errno %d", errno);
    /* Growth: from a small block, and from a large one (the mapping grows
     * where it is or moves); the old block stays as it was. */
    static const size_t from[] = {100, (size_t)8 << 20};
    for (size_t i = 0; i < sizeof from / sizeof from[0]; i++) {
        unsigned char *q = hak_malloc(from[i]);
        cr_assert_not_null(q);
        tu_fill(q, from[i], 7);
        errno = 0;
        void *r = hak_realloc(q, big);
        cr_assert_null(r, "realloc(%zu -> %zu) returned %p", from[i], (size_t)big, r);
        cr_assert_eq(errno, ENOMEM, "realloc from %zu: errno %d", from[i], errno);
        cr_assert_eq(tu_check(q, from[i], 7), (size_t)-1, "failed realloc changed the block of %zu", from[i]);
        hak_free(q);
    }
}

/* Under RLIMIT_AS, large blocks that malloc hands out fill the limit as
 * glibc's do: a mapping holds the block, not room to grow that only a
 * realloc could use.  Helper 58: with half the block again reserved
 * beside each one, 73 blocks of 3 MiB fitted under a 400 MiB limit where
 * glibc fitted 132. */
static int large_blocks_fill_the_limit(void)
{
    enum { BLOCK = 3 << 20, LIMIT_BLOCKS = 200, MAX = 400 };
    /* Past what the process maps already, and past the SuperSlab arena a
     * first small block may reserve (64 MiB). */
    void *warm = hak_malloc(64);
    size_t mapped = tu_mapped();
    if (mapped == 0) {
        printf("FAIL: /proc/self/statm unreadable\n");
        return 1;
    }
    struct rlimit r;
    getrlimit(RLIMIT_AS, &r);
    r.rlim_cur = mapped + ((size_t)64 << 20) + (size_t)LIMIT_BLOCKS * BLOCK;
    if (setrlimit(RLIMIT_AS, &r) != 0) {
        printf("FAIL: setrlimit: %s\n", strerror(errno));
        return 1;
    }
    static void *p[MAX];
    int n = 0;
    while (n < MAX && (p[n] = hak_malloc(BLOCK)) != NULL)
        memset(p[n++], 1, 4096);
    for (int i = 0; i < n; i++)
        hak_free(p[i]);
    hak_free(warm);
    /* 190 of the 200 that fit: the headers' pages and the alignment's
     * slack may take a few. */
    if (n < LIMIT_BLOCKS - 10) {
        printf("FAIL: %d blocks of 3 MiB under a limit with room for %d\n", n, LIMIT_BLOCKS);
        return 1;
    }
    return 0;
}

Test(malloc, large_blocks_fill_an_address_space_limit)
{
#if defined(UNDER_ASAN) || defined(UNDER_TSAN)
    cr_skip_test("sanitizer build: the sanitizer's shadow mappings count against RLIMIT_AS");
#else
    cr_assert_eq(tu_in_child(large_blocks_fill_the_limit), 0, "see the child's output above");
#endif
}

/* Sizes past 4 GiB (no 32-bit size fields): only the touched pages become
 * resident.  An allocator may refuse for lack of memory, never for the size. */
Test(malloc, blocks_past_4_gib)
{
    const size_t big = (size_t)5 << 30, page = 4096;
    unsigned char *p = hak_malloc(big);
    if (!p)
        cr_skip_test("malloc(5 GiB) failed: the system does not overcommit that much");
    cr_assert_geq(hak_malloc_usable_size(p), big);
    p[0] = 1;
    p[big / 2] = 2;
    p[big - 1] = 3;
    unsigned char *q = hak_realloc(p, big + ((size_t)1 << 30));
    cr_assert_not_null(q, "realloc 5 GiB -> 6 GiB failed");
    cr_assert(q[0] == 1 && q[big / 2] == 2 && q[big - 1] == 3, "realloc past 4 GiB lost data");
    hak_free(q);
    unsigned char *z = hak_calloc(big / page, page);
    cr_assert_not_null(z, "calloc of 5 GiB failed");
    for (size_t off = 0; off < big; off += big / 64)
        cr_assert_eq(z[off], 0, "calloc(5 GiB): byte %zu not zero", off);
    cr_assert_eq(z[big - 1], 0);
    hak_free(z);
}

Test(calloc, overflow_fails_with_enomem)
{
    static volatile size_t pairs[][2] = {
        {SIZE_MAX / 2 + 1, 2}, {2, SIZE_MAX / 2 + 1}, {SIZE_MAX, SIZE_MAX},
        {(size_t)1 << 32, (size_t)1 << 32}, {SIZE_MAX, 1}, {1, SIZE_MAX},
    };
    for (size_t i = 0; i < sizeof pairs / sizeof pairs[0]; i++) {
        errno = 0;
        void *p = hak_calloc(pairs[i][0], pairs[i][1]);
        cr_assert_null(p, "calloc(%zu, %zu) returned %p", pairs[i][0], pairs[i][1], p);
        cr_assert_eq(errno, ENOMEM, "calloc(%zu, %zu): errno %d, expected ENOMEM",
                     pairs[i][0], pairs[i][1], errno);
    }
}

Test(calloc, zero_count_or_size_is_freeable)
{
    void *a = hak_calloc(0, 16), *b = hak_calloc(16, 0), *c = hak_calloc(0, 0);
    cr_assert(a && b && c, "calloc with a zero factor returned NULL");
    cr_assert(a != b && b != c && a != c, "calloc zero-size results are not unique");
    hak_free(a);
    hak_free(b);
    hak_free(c);
}

/* Blocks are dirtied (0xAB over their whole usable size) and freed, then the
 * same sizes come back from calloc: every byte asked for must be zero, round
 * after round, whichever way the size is split into count * size. */
static void calloc_after_dirty_reuse(size_t size, int blocks, int rounds)
{
    void **p = hak_malloc(blocks * sizeof *p);
    cr_assert_not_null(p);
    for (int r = 0; r < rounds; r++) {
        for (int i = 0; i < blocks; i++) {
            p[i] = hak_malloc(size);
            cr_assert_not_null(p[i], "malloc(%zu) failed", size);
            memset(p[i], 0xAB, hak_malloc_usable_size(p[i]));
        }
        for (int i = 0; i < blocks; i++)
            hak_free(p[i]);
        for (int i = 0; i < blocks; i++) {
            size_t n = (i & 1) && size % 8 == 0 ? size / 8 : size;
            size_t m = size / n;
            p[i] = hak_calloc(n, m);
            cr_assert_not_null(p[i], "calloc(%zu, %zu) failed", n, m);
            size_t bad = tu_first_nonzero(p[i], size);
            cr_assert_eq(bad, (size_t)-1,
                         "round %d: calloc(%zu, %zu) = %p has byte %zu = 0x%02x", r, n, m,
                         p[i], bad, ((unsigned char *)p[i])[bad]);
            memset(p[i], 0xAB, size);
        }
        for (int i = 0; i < blocks; i++)
            hak_free(p[i]);
    }
    hak_free(p);
}

Test(calloc, zeroed_after_reuse_small)
{
    static const size_t sizes[] = {1, 8, 16, 24, 40, 64, 100, 128, 256, 512, 1000, 1024, 4000};
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++)
        calloc_after_dirty_reuse(sizes[i], 512, 4);
}

Test(calloc, zeroed_after_reuse_medium)
{
    calloc_after_dirty_reuse(20 * 1024, 64, 4);
    calloc_after_dirty_reuse(32 * 1024, 64, 4);
}

Test(calloc, zeroed_after_reuse_large)
{
    calloc_after_dirty_reuse(200000, 8, 4);  /* unit blocks */
    calloc_after_dirty_reuse(1984 << 10, 3, 4);
    calloc_after_dirty_reuse(1 << 20, 8, 4);
    calloc_after_dirty_reuse(8 << 20, 3, 4);
}

/* calloc skips clearing a block whose key word (its second word) is 0 on
 * its slab's list: only blocks carved from fresh memory are left so.  The
 * two tests below give it blocks that are dirty everywhere except in that
 * word, by the two other ways a block reaches a list. */
static void fill_zero_odd_words(void *p, size_t n)
{
    uint64_t *w = p;
    for (size_t i = 0; i < n / 8; i++)
        w[i] = ((uintptr_t)&w[i] & 8) ? 0 : 0xABABABABABABABABull;
}

/* Carved from units another class dirtied and gave back (they stay
 * committed for the decommit delay). */
Test(calloc, zeroed_when_carved_from_dirty_units)
{
    enum { N = 6000 };
    static void *p[N];
    uintptr_t lo = UINTPTR_MAX, hi = 0;
    for (int i = 0; i < N; i++) {
        p[i] = hak_malloc(48);
        cr_assert_not_null(p[i]);
        fill_zero_odd_words(p[i], 48);
        lo = (uintptr_t)p[i] < lo ? (uintptr_t)p[i] : lo;
        hi = (uintptr_t)p[i] > hi ? (uintptr_t)p[i] : hi;
    }
    for (int i = 0; i < N; i++)
        hak_free(p[i]);
    int reused = 0;
    for (int i = 0; i < N; i++) {
        unsigned char *z = hak_calloc(1, 80);
        cr_assert_not_null(z);
        size_t bad = tu_first_nonzero(z, 80);
        cr_assert_eq(bad, (size_t)-1, "calloc(1, 80) = %p has byte %zu = 0x%02x", (void *)z, bad, z[bad]);
        reused += (uintptr_t)z >= lo && (uintptr_t)z <= hi;
        p[i] = z;
    }
    cr_assert_gt(reused, 0, "no 80-byte block came from the 48-byte blocks' units: the test proves nothing");
    for (int i = 0; i < N; i++)
        hak_free(p[i]);
}

struct dirty_frees { void **p; int n; };

static void *free_dirty(void *arg)
{
    struct dirty_frees *d = arg;
    for (int i = 0; i < d->n; i++) {
        fill_zero_odd_words(d->p[i], 48);
        hak_free(d->p[i]);
    }
    return NULL;
}

/* Freed by another thread: through its cache and batches onto our inbox,
 * or, with HAKMEM_REMOTE_BATCH=1 (tests/api_options.sh), onto the slab's
 * remote list. */
Test(calloc, zeroed_after_remote_free)
{
    enum { N = 3000 };
    static void *p[N];
    for (int i = 0; i < N; i++) {
        p[i] = hak_malloc(48);
        cr_assert_not_null(p[i]);
    }
    struct dirty_frees d = { p, N };
    pthread_t t;
    cr_assert_eq(pthread_create(&t, NULL, free_dirty, &d), 0);
    pthread_join(t, NULL);
    static void *q[2 * N];  /* more than came back: every one of them is taken */
    for (int i = 0; i < 2 * N; i++) {
        unsigned char *z = q[i] = hak_calloc(6, 8);
        cr_assert_not_null(z);
        size_t bad = tu_first_nonzero(z, 48);
        cr_assert_eq(bad, (size_t)-1, "calloc(6, 8) #%d = %p has byte %zu = 0x%02x", i, (void *)z, bad, z[bad]);
    }
    for (int i = 0; i < 2 * N; i++)
        hak_free(q[i]);
}

Test(free, null_is_a_no_op)
{
    hak_free(NULL);
    hak_free_sized(NULL, 0);
    hak_free_sized(NULL, 64);
    hak_free_aligned_sized(NULL, 64, 64);
}

/* A leak shows as resident memory: each loop below would touch 400 MiB if
 * the free did not give the block back. */
#define LEAK_LIMIT (64u << 20)

Test(free, free_sized_returns_memory)
{
    static const size_t sizes[] = {8, 100, 4096, 20000, 1 << 20};
    for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++) {
        size_t n = sizes[s], iters = (400u << 20) / n;
        if (iters > 200000)
            iters = 200000;
        size_t before = tu_rss();
        for (size_t i = 0; i < iters; i++) {
            void *p = hak_malloc(n);
            cr_assert_not_null(p);
            memset(p, 0x5A, n);
            hak_free_sized(p, n);
        }
        size_t after = tu_rss();
        cr_assert_lt(after, before + LEAK_LIMIT,
                     "free_sized(%zu): RSS grew from %zu to %zu over %zu blocks", n, before,
                     after, iters);
    }
}

Test(free, free_aligned_sized_returns_memory)
{
    static const size_t aligns[] = {16, 64, 4096, 65536};
    static const size_t sizes[] = {64, 4096, 1 << 20};
    for (size_t a = 0; a < sizeof aligns / sizeof aligns[0]; a++)
        for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++) {
            size_t al = aligns[a], n = sizes[s], iters = (400u << 20) / n;
            if (iters > 100000)
                iters = 100000;
            size_t before = tu_rss();
            for (size_t i = 0; i < iters; i++) {
                void *p = hak_aligned_alloc(al, n);
                cr_assert_not_null(p, "aligned_alloc(%zu, %zu) failed", al, n);
                cr_assert_eq((uintptr_t)p % al, 0);
                memset(p, 0x5A, n);
                hak_free_aligned_sized(p, al, n);
            }
            size_t after = tu_rss();
            cr_assert_lt(after, before + LEAK_LIMIT,
                         "free_aligned_sized(%zu, %zu): RSS grew from %zu to %zu", al, n,
                         before, after);
        }
}
