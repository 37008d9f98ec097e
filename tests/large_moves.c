/* Large blocks moved, copied and unmapped when the kernel refuses: run by
 * make check on this machine's kernel and, by tests/vm/large-moves.sh, on
 * Debian's own (6.1), whose mremap unmapped a move's destination before it
 * checked the source.  Exit 0 when every check holds; each failure names
 * itself.  Plain C: the VM's initramfs holds no Criterion.
 *
 * 1. A block in several kernel mappings grows into a freed mapping (on 6.1
 *    the refused move left a hole that the copy then wrote: SIGSEGV), and
 *    with no freed mapping at hand, and in a chain of such growths.
 * 2. At vm.max_map_count (reached with the process's own mappings): a
 *    large block takes one mapping, also when it opens a new range of the
 *    pointer map, and one refused gets the mappings the large-mapping
 *    cache gave back; free and a malloc that succeeds leave errno alone, a
 *    freed block's pages go back though its unmap is refused, and a realloc
 *    that shrinks keeps its block when no new one can be had. */
#define _GNU_SOURCE
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include "hakmem.h"  /* hak_: hakmem's own in every build, sanitizers' too */
#include "testutil.h"

static int failures;

#define CHECK(cond, ...)                                   \
    do {                                                   \
        if (!(cond)) {                                     \
            printf("FAIL %s:%d: ", __FILE__, __LINE__);    \
            printf(__VA_ARGS__);                           \
            printf("\n");                                  \
            failures++;                                    \
        }                                                  \
    } while (0)

static void fill(unsigned char *p, size_t n, unsigned seed)
{
    for (size_t i = 0; i < n; i += 512)
        p[i] = (unsigned char)(i / 512 * 31 + seed);
}

static int intact(const unsigned char *p, size_t n, unsigned seed)
{
    for (size_t i = 0; i < n; i += 512)
        if (p[i] != (unsigned char)(i / 512 * 31 + seed))
            return 0;
    return 1;
}

/* A block of `size` whose mapping is cut in two kernel mappings. */
static unsigned char *split_block(size_t size, unsigned seed)
{
    unsigned char *q = hak_malloc(size);
    if (q == NULL)
        return NULL;
    fill(q, size, seed);
    if (madvise(q + (1 << 20), 4096, MADV_DONTFORK) != 0)
        printf("madvise: %s (the block stays one mapping)\n", strerror(errno));
    return q;
}

static void grows_in_pieces(void)
{
    const size_t small = 3 << 20;
    /* With no freed mapping: moved to fresh address space, or copied. */
    unsigned char *q = split_block(small, 1);
    CHECK(q != NULL, "malloc(%zu)", small);
    unsigned char *r = hak_realloc(q, 6 << 20);
    CHECK(r != NULL && intact(r, small, 1), "realloc without a freed mapping lost the block");
    hak_free(r);

    /* Into a freed mapping, its pages resident. */
    unsigned char *p = hak_malloc(32 << 20);
    CHECK(p != NULL, "malloc(32 MiB)");
    memset(p, 7, 32 << 20);
    hak_free(p);
    q = split_block(small, 2);
    r = hak_realloc(q, 6 << 20);
    CHECK(r != NULL && intact(r, small, 2), "realloc into a freed mapping lost the block");
    hak_free(r);

    /* A chain: each growth leaves the block in two mappings or more. */
    size_t size = 2 << 20;
    q = split_block(size, 3);
    for (int i = 0; i < 12 && q != NULL; i++) {
        unsigned char *other = hak_malloc(size * 2);  /* freed: a mapping to grow into */
        if (other != NULL)
            memset(other, 1, size * 2);
        hak_free(other);
        size_t next = size + size / 4;
        r = hak_realloc(q, next);
        CHECK(r != NULL && intact(r, size, 3), "chain step %d (%zu -> %zu B) lost the block", i, size, next);
        if (r == NULL)
            break;
        fill(r, next, 3);
        if (madvise(r + (next / 2 & ~(size_t)4095), 4096, MADV_DONTFORK) != 0)
            printf("madvise: %s\n", strerror(errno));
        q = r;
        size = next;
    }
    hak_free(q);
}

/* ---- at the mapping limit ------------------------------------------------ */

enum { MAX_PADS = 1 << 20 };
static void **pads;
static size_t npads;

/* Whether the kernel has n mappings to spare: a shared anonymous mapping
 * is an object of its own, which merges with no neighbour. */
static int slots_free(size_t n)
{
    void *probe[2];
    size_t got = 0;
    while (got < n && got < 2 &&
           (probe[got] = mmap(NULL, 4096, PROT_READ, MAP_SHARED | MAP_ANONYMOUS, -1, 0)) != MAP_FAILED)
        got++;
    for (size_t i = 0; i < got; i++)
        munmap(probe[i], 4096);
    return got == n;
}

/* Single pages of alternating protection until the kernel refuses one
 * more; then pads go back until `spare` mappings are free.  A pad next to
 * a mapping of its protection merged with it, and unmapping that one
 * frees none, so the count is checked, not assumed. */
static void exhaust(size_t spare)
{
    for (;;) {
        if (npads == MAX_PADS)
            break;
        void *p = mmap(NULL, 4096, npads & 1 ? PROT_READ : PROT_NONE,
                       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
        if (p == MAP_FAILED)
            break;
        pads[npads++] = p;
    }
    while (npads > 0 && !slots_free(spare))
        munmap(pads[--npads], 4096);
}

/* Read without stdio: at the map limit its buffer may not be had. */
static long resident_kb(void)
{
    char buf[128] = { 0 };
    long size, rss;
    int fd = open("/proc/self/statm", O_RDONLY);
    if (fd < 0)
        return -1;
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n <= 0 || sscanf(buf, "%ld %ld", &size, &rss) != 2)
        return -1;
    return rss * (sysconf(_SC_PAGESIZE) / 1024);
}

/* A block that opens a new range of addresses of hakmem's pointer map
 * (2^37 bytes: 2^16 SuperSlabs of 2 MiB) needs a page of the map as well;
 * with one mapping to spare, it failed.  In a child, which fills every gap
 * above a range's boundary (pieces of 64 MiB, then 1 MiB) so that the next
 * mapping lands below it.  Run by in_child: 2 when the block landed above
 * the boundary. */
static int in_a_new_range_child(void)
{
    const uintptr_t range = (uintptr_t)1 << 37;
    const int flags = MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE;
    hak_collect();  /* no cached mapping above the boundary to reuse */
    pads = mmap(NULL, MAX_PADS * sizeof *pads, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    char *probe = mmap(NULL, 64 << 20, PROT_NONE, flags, -1, 0);
    if (pads == MAP_FAILED || probe == MAP_FAILED)
        return 3;
    uintptr_t boundary = (uintptr_t)probe & ~(range - 1);
    munmap(probe, 64 << 20);
    for (size_t piece = 64 << 20; piece >= 1 << 20; piece >>= 6) {
        for (;;) {
            char *f = mmap(NULL, piece, PROT_NONE, flags, -1, 0);
            if (f == MAP_FAILED)
                return 3;
            if ((uintptr_t)f < boundary + (piece == 1 << 20 ? 0 : piece)) {
                munmap(f, piece);
                break;
            }
        }
    }
    exhaust(1);
    errno = 0;
    unsigned char *b = hak_malloc(20 << 20);
    if (b == NULL) {
        printf("malloc(20 MiB) below %#lx with one mapping to spare: NULL, errno %d\n", (unsigned long)boundary, errno);
        return 1;
    }
    memset(b, 1, 1 << 20);
    return (uintptr_t)b < boundary ? 0 : 2;
}

/* At vm.max_map_count with large mappings cached and SuperSlabs pooled:
 * the refused mapping is retried after the cache's mappings go back, not
 * after the pooled bodies are re-mapped as well, which took the mappings
 * the cache had freed (helper 55: malloc(100 MiB) NULL, where the code
 * before the re-mapping granted it).  Run by in_child. */
static int flush_first_child(void)
{
    enum { N = 6000 };
    static void *small[N];
    const char *cache = getenv("HAKMEM_LARGE_CACHE_MB");
    if (cache != NULL && atoi(cache) == 0) {
        printf("SKIP the cached-mapping check: HAKMEM_LARGE_CACHE_MB=0 caches none\n");
        return 4;
    }
    pads = mmap(NULL, MAX_PADS * sizeof *pads, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (pads == MAP_FAILED)
        return 3;
    for (int i = 0; i < N; i++)
        if ((small[i] = hak_malloc(1000)) != NULL)
            memset(small[i], 1, 1000);
    for (int i = 0; i < N; i++)
        hak_free(small[i]);
    hak_collect();  /* empty SuperSlabs to their pool */
    unsigned char *l1 = hak_malloc(20 << 20), *l2 = hak_malloc(20 << 20);
    if (l1 == NULL || l2 == NULL)
        return 3;
    memset(l1, 1, 1 << 20);
    memset(l2, 1, 1 << 20);
    hak_free(l1);
    hak_free(l2);  /* cached: two mappings */
    exhaust(0);
    errno = 0;
    void *p = hak_malloc(100 << 20);
    if (p == NULL) {
        printf("malloc(100 MiB) at the map limit, two 20 MiB mappings cached: NULL, errno %d\n", errno);
        return 1;
    }
    return 0;
}

/* `child` in a child of its own (tu_in_child), whose mappings go with it.
 * Its exit: 0 held, 1 the check failed, 2 the check proved nothing, 3
 * setup failed, 4 skipped (it said why). */
static void in_child(int (*child)(void), const char *what)
{
    int code = tu_in_child(child);
    CHECK(code == 0 || code == 4, "%s: %s (exit %d)", what,
          code == 1 ? "failed" : code == 2 ? "the check proved nothing" : code == 3 ? "setup failed" : "no exit code",
          code);
}

static void at_the_map_limit(void)
{
    enum { N = 16 };
    const size_t big = 20 << 20, touched = 4 << 20;  /* the VM has 1 GiB */
    unsigned char *b[N];
    pads = mmap(NULL, MAX_PADS * sizeof *pads, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    CHECK(pads != MAP_FAILED, "mmap of the pad list");
    if (pads == MAP_FAILED)
        return;
    unsigned char *keep = hak_malloc(40000);
    CHECK(keep != NULL, "malloc(40000)");
    fill(keep, 40000, 4);
    exhaust(1);
    for (int i = 0; i < N; i++) {
        b[i] = hak_malloc(big);
        CHECK(b[i] != NULL, "malloc(%zu) with one mapping to spare", big);
        if (b[i] != NULL)
            memset(b[i], 1, touched);
        exhaust(1);
    }
    if (npads == MAX_PADS) {
        printf("SKIP the map-limit checks: %zu mappings made and no refusal\n", npads);
        goto out;
    }
    long before = resident_kb();
    for (int i = 0; i < N; i++) {
        exhaust(0);
        errno = 4321;
        hak_free(b[i]);
        CHECK(errno == 4321, "free of a %zu B block at the map limit set errno to %d", big, errno);
    }
    long after = resident_kb();
    CHECK(before - after > (long)(N * touched / 1024 / 2),
          "freeing %d blocks of %zu B at the map limit gave back only %ld kB (%ld -> %ld)", N, touched,
          before - after, before, after);
    for (int i = 0; i < 16; i++) {
        exhaust(0);
        errno = 4321;
        void *p = hak_malloc((size_t)(3 + i % 5) << 20);
        CHECK(p == NULL || errno == 4321, "malloc that succeeded set errno to %d", errno);
        hak_free(p);
    }
    /* Fill what is left of the 5000 B class, then shrink into it. */
    exhaust(0);
    void **fillers = NULL, *f;
    size_t nf = 0;
    while (nf < 200000 && (f = hak_malloc(5000)) != NULL) {
        *(void **)f = fillers;
        fillers = f;
        nf++;
    }
    CHECK(nf < 200000, "the 5000 B class never ran out: the shrink check proves nothing");
    errno = 0;
    unsigned char *r = hak_realloc(keep, 5000);
    CHECK(r == keep, "realloc(40000 -> 5000) with no memory returned %p (errno %d), not its block", (void *)r, errno);
    if (r != NULL) {
        CHECK(intact(r, 5000, 4), "the shrunk block lost its contents");
        keep = r;
    }
    while (fillers != NULL) {
        void *next = *fillers;
        hak_free(fillers);
        fillers = next;
    }
out:
    while (npads > 0)
        munmap(pads[--npads], 4096);
    munmap(pads, MAX_PADS * sizeof *pads);
    hak_free(keep);
}

int main(void)
{
    grows_in_pieces();
    in_child(in_a_new_range_child, "a block opening a new range of the pointer map, with one mapping to spare");
    in_child(flush_first_child, "malloc at the map limit with large mappings cached");
    at_the_map_limit();
    if (failures)
        printf("%d check(s) failed\n", failures);
    else
        printf("large_moves: all checks held\n");
    return failures ? 1 : 0;
}
