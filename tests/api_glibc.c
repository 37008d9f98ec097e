/* glibc's extra entry points: its internal names of the family (__libc_*),
 * cfree, malloc_trim, mallinfo2/mallinfo, malloc_stats and malloc_info act
 * on hakmem's blocks and memory, not on glibc's unused arena; mallopt
 * accepts and ignores. */
#define _GNU_SOURCE
#include <config.h>
#include <criterion/criterion.h>
#include <dlfcn.h>
#include <errno.h>
#include <limits.h>
#include <malloc.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "hakmem.h"
#include "api_stats.h"

#ifndef HK_NO_OVERRIDE

void *__libc_malloc(size_t size);
void __libc_free(void *p);
void *__libc_calloc(size_t n, size_t size);
void *__libc_realloc(void *p, size_t size);
void *__libc_memalign(size_t align, size_t size);
void *__libc_valloc(size_t size);
void *__libc_pvalloc(size_t size);
int __posix_memalign(void **out, size_t align, size_t size);
void cfree(void *p);

/* hak_malloc_usable_size aborts on a pointer that is not hakmem's: each
 * call below is the assertion that the block came from us. */
static void ours(void *p, size_t at_least)
{
    cr_assert_not_null(p);
    cr_assert_geq(hak_malloc_usable_size(p), at_least);
}

Test(glibc, libc_names_are_hakmem)
{
    char *p = __libc_malloc(100);
    ours(p, 100);
    memset(p, 'a', 100);
    free(p);

    char *q = malloc(300);
    ours(q, 300);
    __libc_free(q);  /* glibc's free would abort on our block */

    unsigned char *z = __libc_calloc(40, 25);
    ours(z, 1000);
    for (int i = 0; i < 1000; i++)
        cr_assert_eq(z[i], 0, "byte %d of calloc'd block is %d", i, z[i]);
    memset(z, 7, 1000);
    z = __libc_realloc(z, 100000);
    ours(z, 100000);
    for (int i = 0; i < 1000; i++)
        cr_assert_eq(z[i], 7, "realloc lost byte %d", i);
    cfree(z);

    void *a = __libc_memalign(4096, 100);
    ours(a, 100);
    cr_assert_eq((uintptr_t)a % 4096, 0);
    void *v = __libc_valloc(10);
    ours(v, 10);
    cr_assert_eq((uintptr_t)v % (uintptr_t)sysconf(_SC_PAGESIZE), 0);
    void *pv = __libc_pvalloc(10);
    ours(pv, (size_t)sysconf(_SC_PAGESIZE));
    void *pm = NULL;
    cr_assert_eq(__posix_memalign(&pm, 256, 1000), 0);
    ours(pm, 1000);
    cr_assert_eq((uintptr_t)pm % 256, 0);
    cr_assert_eq(__posix_memalign(&pm, 24, 8), EINVAL);
    free(a);
    free(v);
    free(pv);
    free(pm);
}

#define NBLOCKS 20000

Test(glibc, malloc_trim_gives_memory_back)
{
    static void *blocks[NBLOCKS];
    long long base = api_stat("bytes_committed");
    for (int i = 0; i < NBLOCKS; i++) {
        blocks[i] = malloc(1000);  /* 20 MB of slabs */
        memset(blocks[i], 1, 1000);
    }
    void *big = malloc(3 << 20);
    ours(big, 3 << 20);  /* used: the compiler may not drop the pair */
    for (int i = 0; i < NBLOCKS; i++)
        free(blocks[i]);
    free(big);
    /* The default delay keeps some of it committed (SuperSlabs in reserve)
     * and the large mapping in the cache. */
    long long before = api_stat("bytes_committed");
    cr_assert_gt(api_stat("large_cached"), 0, "the freed 3 MiB block is not in the large cache");
    cr_assert_eq(malloc_trim(0), 1, "malloc_trim found nothing to give back");
    long long after = api_stat("bytes_committed");
    cr_assert_leq(after, base + (1 << 20), "committed %lld before the blocks, %lld after freeing them, "
                  "%lld after malloc_trim: not given back", base, before, after);
    cr_assert_eq(api_stat("large_cached"), 0, "malloc_trim left the large cache");
    cr_assert_eq(malloc_trim(0), 0, "a second malloc_trim still gave memory back");
}

Test(glibc, mallinfo2_follows_the_live_set)
{
    struct mallinfo2 m0 = mallinfo2();
    cr_assert_eq((long long)m0.arena, api_stat("bytes_committed"));
    cr_assert_eq(m0.fordblks, m0.arena - m0.uordblks);
    static void *blocks[NBLOCKS];
    for (int i = 0; i < NBLOCKS; i++)
        blocks[i] = malloc(512);  /* 10 MB */
    void *big = malloc(4 << 20);
    ours(big, 4 << 20);
    struct mallinfo2 m1 = mallinfo2();
    size_t grew = m1.uordblks - m0.uordblks;
    /* In use at slab granularity (the blocks plus partly used slabs, less
     * what slabs already in use held: up to a slab's 64 KiB), the large
     * block as its mapping (the block and its header's page). */
    cr_assert(grew >= NBLOCKS * 512 - (64 << 10) + (4 << 20) && grew <= NBLOCKS * 512 * 11 / 10 + (6 << 20),
              "in use grew by %zu bytes for %d KiB of blocks", grew, (NBLOCKS * 512 + (4 << 20)) >> 10);
    cr_assert_eq(m1.hblks, m0.hblks + 1);
    cr_assert_geq(m1.hblkhd - m0.hblkhd, (size_t)4 << 20);
    cr_assert_geq(m1.arena, m1.uordblks);
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
    struct mallinfo m = mallinfo();
#pragma GCC diagnostic pop
    cr_assert_eq((size_t)m.uordblks, m1.uordblks, "mallinfo and mallinfo2 disagree");
    cr_assert_eq((size_t)m.hblks, m1.hblks);
    for (int i = 0; i < NBLOCKS; i++)
        free(blocks[i]);
    free(big);
    malloc_trim(0);
    struct mallinfo2 m2 = mallinfo2();
    cr_assert_leq(m2.uordblks, m0.uordblks + (256 << 10), "in use %zu -> %zu after everything was freed",
                  m0.uordblks, m2.uordblks);
    cr_assert_eq(m2.hblks, m0.hblks);
}

Test(glibc, malloc_stats_prints_hakmem_summary)
{
    char path[] = "/tmp/hakmem-stats-XXXXXX";
    int fd = mkstemp(path);
    cr_assert_geq(fd, 0);
    unlink(path);
    int saved = dup(2);
    dup2(fd, 2);
    malloc_stats();
    dup2(saved, 2);
    close(saved);
    char out[4096] = { 0 };
    ssize_t n = pread(fd, out, sizeof out - 1, 0);
    close(fd);
    cr_assert_gt(n, 0, "malloc_stats wrote nothing to stderr");
    cr_assert_not_null(strstr(out, "hakmem: statistics"), "not hakmem's summary: %s", out);
    cr_assert_not_null(strstr(out, "bytes committed"), "no committed bytes in: %s", out);
}

/* On a thread of the smallest stack POSIX allows, malloc_stats writes its
 * report: its text was a 16 KiB array on the caller's stack (helper 45: a
 * crash here, or a coroutine's neighbouring heap block overwritten). */
static void *stats_on_small_stack(void *fd)
{
    free(malloc(100));
    int saved = dup(2);
    dup2(*(int *)fd, 2);
    malloc_stats();
    dup2(saved, 2);
    close(saved);
    return NULL;
}

Test(glibc, malloc_stats_on_a_small_stack)
{
    char path[] = "/tmp/hakmem-stats-XXXXXX";
    int fd = mkstemp(path);
    cr_assert_geq(fd, 0);
    unlink(path);
    pthread_attr_t attr;
    pthread_t t;
    pthread_attr_init(&attr);
    cr_assert_eq(pthread_attr_setstacksize(&attr, PTHREAD_STACK_MIN), 0);
    cr_assert_eq(pthread_create(&t, &attr, stats_on_small_stack, &fd), 0);
    pthread_join(t, NULL);
    pthread_attr_destroy(&attr);
    char out[4096] = { 0 };
    ssize_t n = pread(fd, out, sizeof out - 1, 0);
    close(fd);
    cr_assert(n > 0 && strstr(out, "bytes committed") != NULL, "no report from the small stack: %s", out);
}

/* The definition the program binds `name` to is in libhakmem, not glibc. */
static void defined_by_hakmem(const char *name)
{
    Dl_info info;
    void *fn = dlsym(RTLD_DEFAULT, name);
    cr_assert(fn != NULL && dladdr(fn, &info) && info.dli_fname != NULL, "%s: not found", name);
    cr_assert_not_null(strstr(info.dli_fname, "libhakmem"), "%s is defined by %s", name, info.dli_fname);
}

Test(glibc, mallopt_accepts_and_changes_nothing)
{
    defined_by_hakmem("mallopt");
    static const int params[] = { M_MXFAST, M_TRIM_THRESHOLD, M_TOP_PAD, M_MMAP_THRESHOLD, M_MMAP_MAX,
                                  M_CHECK_ACTION, M_PERTURB, M_ARENA_TEST, M_ARENA_MAX, -42 };
    for (size_t i = 0; i < sizeof params / sizeof params[0]; i++)
        cr_assert_eq(mallopt(params[i], 1), 1, "mallopt(%d, 1) refused", params[i]);
    /* glibc would now serve even 1-byte blocks from mmap
     * (M_MMAP_THRESHOLD): hakmem's come from its slabs as before. */
    long long calls = api_os_calls();
    void *p[64];
    for (int i = 0; i < 64; i++) {
        p[i] = malloc(64);
        ours(p[i], 64);
    }
    cr_assert_leq(api_os_calls() - calls, 1, "64 small blocks took %lld OS calls",
                  api_os_calls() - calls);
    for (int i = 0; i < 64; i++)
        free(p[i]);
}

/* The document, read back: glibc's elements, hakmem's totals. */
Test(glibc, malloc_info_reports_hakmem_totals)
{
    defined_by_hakmem("malloc_info");
    void *big = malloc(8 << 20);
    ours(big, 8 << 20);
    char *text = NULL;
    size_t len = 0;
    FILE *fp = open_memstream(&text, &len);
    cr_assert_not_null(fp);
    cr_assert_eq(malloc_info(0, fp), 0);
    cr_assert_eq(fclose(fp), 0);
    cr_assert_not_null(strstr(text, "<malloc version=\"1\" allocator=\"hakmem\">"), "%s", text);
    cr_assert_not_null(strstr(text, "</malloc>\n"), "truncated: %s", text);
    struct mallinfo2 m = mallinfo2();
    unsigned long long mmap_count, mmap_size, current;
    const char *at = strstr(text, "<total type=\"mmap\"");
    cr_assert(at != NULL && sscanf(at, "<total type=\"mmap\" count=\"%llu\" size=\"%llu\"", &mmap_count,
                                   &mmap_size) == 2, "%s", text);
    cr_assert_eq(mmap_count, m.hblks);
    cr_assert_geq(mmap_size, (unsigned long long)8 << 20);
    at = strstr(text, "<system type=\"current\"");
    cr_assert(at != NULL && sscanf(at, "<system type=\"current\" size=\"%llu\"", &current) == 1, "%s", text);
    cr_assert_geq(current, mmap_size, "committed %llu below the large blocks' %llu", current, mmap_size);
    free(text);
    free(big);
    fp = fopen("/dev/null", "w");
    cr_assert_eq(malloc_info(1, fp), EINVAL, "options other than 0: glibc returns EINVAL");
    fclose(fp);
}

#else

Test(glibc, skipped)
{
    cr_skip_test("sanitizer build: the malloc family, glibc's extensions included, is the sanitizer's (HK_NO_OVERRIDE)");
}

#endif
