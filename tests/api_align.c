/* posix_memalign, aligned_alloc, memalign, valloc and pvalloc: alignment,
 * usability and the EINVAL cases. */
#include <criterion/criterion.h>
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>
#include "hakmem.h"
#include "testutil.h"

#define MAX_ALIGN ((size_t)4 << 20)

/* For each alignment, blocks of sizes around it stay live together: each is
 * aligned, covers its size, is filled over its whole usable size and keeps
 * its pattern while its neighbours are written. */
static void aligned_family(const char *name, void *(*alloc)(size_t, size_t), size_t from)
{
    for (size_t a = from; a <= MAX_ALIGN; a *= 2) {
        size_t sizes[] = {0, 1, 7, a - 1, a, a + 1, 3 * a};
        enum { N = sizeof sizes / sizeof sizes[0] };
        void *p[N];
        size_t u[N];
        for (int i = 0; i < N; i++) {
            p[i] = alloc(a, sizes[i]);
            cr_assert_not_null(p[i], "%s(%zu, %zu) failed", name, a, sizes[i]);
            cr_assert_eq((uintptr_t)p[i] % a, 0, "%s(%zu, %zu) = %p misaligned", name, a,
                         sizes[i], p[i]);
            u[i] = hak_malloc_usable_size(p[i]);
            cr_assert_geq(u[i], sizes[i], "%s(%zu, %zu): usable %zu", name, a, sizes[i],
                          u[i]);
            tu_fill(p[i], u[i], a ^ (uint64_t)i);
        }
        for (int i = 0; i < N; i++) {
            size_t bad = tu_check(p[i], u[i], a ^ (uint64_t)i);
            cr_assert_eq(bad, (size_t)-1, "%s(%zu, %zu) = %p: byte %zu overwritten", name,
                         a, sizes[i], p[i], bad);
            hak_free(p[i]);
        }
    }
}

static void *via_posix_memalign(size_t a, size_t n)
{
    void *p = NULL;
    int rc = hak_posix_memalign(&p, a, n);
    cr_assert_eq(rc, 0, "posix_memalign(%zu, %zu) = %d", a, n, rc);
    return p;
}

Test(align, posix_memalign_every_power_of_two)
{
    aligned_family("posix_memalign", via_posix_memalign, sizeof(void *));
}

Test(align, aligned_alloc_every_power_of_two)
{
    aligned_family("aligned_alloc", hak_aligned_alloc, 1);
}

Test(align, memalign_every_power_of_two)
{
    aligned_family("memalign", hak_memalign, 1);
}

/* Alignments far beyond any size class (the block is tiny, the alignment
 * is not): still aligned, usable and freeable, and realloc keeps contents. */
Test(align, huge_alignments)
{
    for (size_t a = (size_t)16 << 20; a <= ((size_t)1 << 30); a *= 8) {
        void *p = NULL;
        int rc = hak_posix_memalign(&p, a, 100);
        cr_assert_eq(rc, 0, "posix_memalign(%zu, 100) = %d", a, rc);
        cr_assert_eq((uintptr_t)p % a, 0, "posix_memalign(%zu, 100) = %p", a, p);
        tu_fill(p, 100, a);
        p = hak_realloc(p, 200000);
        cr_assert_not_null(p);
        cr_assert_eq(tu_check(p, 100, a), (size_t)-1, "realloc of a %zu-aligned block", a);
        hak_free(p);
    }
}

/* Blocks aligned to a SuperSlab or more start on a chunk with no header of
 * their own, found through a registry: 64 slots made the 65th live one
 * fail with ENOMEM (the second helper; glibc serves any number). */
Test(align, many_live_superslab_aligned)
{
    enum { N = 300 };
    static void *p[N];
    for (int i = 0; i < N; i++) {
        size_t a = (size_t)2 << 20 << (i % 2);
        cr_assert_eq(hak_posix_memalign(&p[i], a, 4096), 0, "posix_memalign(%zu, 4096), %d live", a, i);
        cr_assert_eq((uintptr_t)p[i] % a, 0);
        memset(p[i], i, 4096);
    }
    for (int i = 0; i < N; i++) {
        cr_assert_eq(((unsigned char *)p[i])[4095], (unsigned char)i);
        cr_assert_geq(hak_malloc_usable_size(p[i]), 4096);
        hak_free(p[i]);
    }
}

/* Aligned blocks go through realloc like any other: contents kept both ways. */
Test(align, realloc_of_aligned_blocks)
{
    for (size_t a = 16; a <= ((size_t)1 << 20); a *= 4) {
        const size_t sizes[] = {1, 100, a + 1, 3 * a};
        for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
            void *p = hak_aligned_alloc(a, sizes[i]);
            cr_assert_not_null(p);
            tu_fill(p, sizes[i], a + i);
            size_t grown = 2 * sizes[i] + 5000;
            p = hak_realloc(p, grown);
            cr_assert_not_null(p);
            cr_assert_eq(tu_check(p, sizes[i], a + i), (size_t)-1,
                         "growing a %zu-aligned block of %zu lost data", a, sizes[i]);
            tu_fill(p, grown, a + i);
            p = hak_realloc(p, sizes[i] / 2 + 1);
            cr_assert_not_null(p);
            cr_assert_eq(tu_check(p, sizes[i] / 2 + 1, a + i), (size_t)-1,
                         "shrinking a %zu-aligned block lost data", a);
            hak_free(p);
        }
    }
}

/* Not a power of two, or (posix_memalign only) not a multiple of
 * sizeof(void *): EINVAL, and *out is not written. */
Test(align, posix_memalign_bad_alignment)
{
    const size_t bad[] = {0, 1, 3, sizeof(void *) / 2, 12, 24, 48, 100, 4095, 4097,
                          (1 << 20) + 8, SIZE_MAX};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        void *sentinel = (void *)(uintptr_t)0xdeadbeef;
        void *out = sentinel;
        int rc = hak_posix_memalign(&out, bad[i], 64);
        cr_assert_eq(rc, EINVAL, "posix_memalign(alignment %zu) = %d, expected EINVAL",
                     bad[i], rc);
        cr_assert_eq(out, sentinel, "posix_memalign(alignment %zu) wrote *out = %p", bad[i],
                     out);
    }
}

Test(align, posix_memalign_impossible_size)
{
    void *sentinel = (void *)(uintptr_t)0xdeadbeef;
    void *out = sentinel;
    int rc = hak_posix_memalign(&out, 64, SIZE_MAX - 32);
    cr_assert_eq(rc, ENOMEM, "posix_memalign(64, SIZE_MAX - 32) = %d, expected ENOMEM", rc);
    cr_assert_eq(out, sentinel, "failed posix_memalign wrote *out = %p", out);
}

Test(align, aligned_alloc_bad_alignment)
{
    const size_t bad[] = {0, 3, 12, 24, 48, 100, 4095, 4097, SIZE_MAX};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        errno = 0;
        void *p = hak_aligned_alloc(bad[i], 64);
        cr_assert_null(p, "aligned_alloc(%zu, 64) = %p, expected NULL", bad[i], p);
        cr_assert_eq(errno, EINVAL, "aligned_alloc(%zu, 64): errno %d, expected EINVAL",
                     bad[i], errno);
    }
}

/* As in glibc (and hakmem(3)): memalign rounds an alignment that is not a
 * power of two up to the next one; past half the address space, EINVAL. */
Test(align, memalign_rounds_alignment_up)
{
    const size_t odd[] = {3, 12, 24, 48, 100, 4095, 4097, 65535};
    for (size_t i = 0; i < sizeof odd / sizeof odd[0]; i++) {
        size_t pow2 = 1;
        while (pow2 < odd[i])
            pow2 *= 2;
        void *p = hak_memalign(odd[i], 64);
        cr_assert_not_null(p, "memalign(%zu, 64) failed", odd[i]);
        cr_assert_eq((uintptr_t)p % pow2, 0, "memalign(%zu, 64) = %p not %zu-aligned", odd[i],
                     p, pow2);
        cr_assert_geq(hak_malloc_usable_size(p), 64);
        memset(p, 0x3C, 64);
        hak_free(p);
    }
    errno = 0;
    void *p = hak_memalign(SIZE_MAX / 2 + 2, 64);
    cr_assert_null(p, "memalign(SIZE_MAX / 2 + 2, 64) = %p", p);
    cr_assert_eq(errno, EINVAL, "memalign(SIZE_MAX / 2 + 2, 64): errno %d", errno);
}

/* Sizes that cannot be met, including ones whose rounding up to the
 * alignment or to a page would wrap around to a small number. */
Test(align, impossible_sizes_fail_with_enomem)
{
    static volatile size_t sizes[] = {SIZE_MAX, SIZE_MAX - 100, SIZE_MAX - 4096,
                                      (size_t)PTRDIFF_MAX + 1};
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        size_t n = sizes[i];
        struct {
            const char *name;
            void *p;
        } r[4];
        errno = 0;
        r[0].name = "aligned_alloc(4096, n)", r[0].p = hak_aligned_alloc(4096, n);
        int e0 = errno;
        errno = 0;
        r[1].name = "memalign(64, n)", r[1].p = hak_memalign(64, n);
        int e1 = errno;
        errno = 0;
        r[2].name = "valloc(n)", r[2].p = hak_valloc(n);
        int e2 = errno;
        errno = 0;
        r[3].name = "pvalloc(n)", r[3].p = hak_pvalloc(n);
        int e3 = errno;
        int e[4] = {e0, e1, e2, e3};
        for (int k = 0; k < 4; k++) {
            cr_assert_null(r[k].p, "%s with n = %zu returned %p", r[k].name, n, r[k].p);
            cr_assert_eq(e[k], ENOMEM, "%s with n = %zu: errno %d, expected ENOMEM",
                         r[k].name, n, e[k]);
        }
    }
}

Test(align, valloc_is_page_aligned)
{
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    const size_t sizes[] = {0, 1, 100, page - 1, page, page + 1, 5 * page, 1 << 20};
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        void *p = hak_valloc(sizes[i]);
        cr_assert_not_null(p, "valloc(%zu) failed", sizes[i]);
        cr_assert_eq((uintptr_t)p % page, 0, "valloc(%zu) = %p", sizes[i], p);
        cr_assert_geq(hak_malloc_usable_size(p), sizes[i]);
        memset(p, 0x77, sizes[i]);
        hak_free(p);
    }
}

/* Page-aligned requests of the medium sizes (32 KiB to 128 KiB) are served
 * by the class itself, whose blocks are page-aligned: aligned, within a
 * class step (1/4) of the request, not a power of two above it, and many of
 * them live at once keep their contents. */
Test(align, medium_page_aligned_without_rounding_up)
{
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    const size_t sizes[] = {32769, 40000, 40960, 49153, 65536, 70000, 100000, 131072};
    enum { N = sizeof sizes / sizeof sizes[0], K = 3 };
    void *p[N][K][3];
    for (size_t i = 0; i < N; i++)
        for (int k = 0; k < K; k++) {
            size_t n = sizes[i];
            p[i][k][0] = hak_valloc(n);
            p[i][k][1] = hak_aligned_alloc(page, n);
            p[i][k][2] = via_posix_memalign(2048, n);
            for (int f = 0; f < 3; f++) {
                cr_assert_not_null(p[i][k][f], "size %zu, call %d failed", n, f);
                cr_assert_eq((uintptr_t)p[i][k][f] % (f == 2 ? 2048 : page), 0, "size %zu, call %d: %p", n, f,
                             p[i][k][f]);
                size_t u = hak_malloc_usable_size(p[i][k][f]);
                cr_assert(u >= n && u <= n + n / 4, "size %zu, call %d: usable %zu", n, f, u);
                tu_fill(p[i][k][f], n, i * 8 + (size_t)k * 3 + (size_t)f);
            }
        }
    for (size_t i = 0; i < N; i++)
        for (int k = 0; k < K; k++)
            for (int f = 0; f < 3; f++) {
                size_t bad = tu_check(p[i][k][f], sizes[i], i * 8 + (size_t)k * 3 + (size_t)f);
                cr_assert_eq(bad, (size_t)-1, "size %zu, call %d: byte %zu overwritten", sizes[i], f, bad);
                hak_free(p[i][k][f]);
            }
}

/* pvalloc rounds the size up to whole pages: all of them are usable. */
Test(align, pvalloc_rounds_to_pages)
{
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    const size_t sizes[] = {1, 100, page - 1, page, page + 1, 5 * page + 3, (1 << 20) + 1};
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        size_t rounded = (sizes[i] + page - 1) / page * page;
        void *p = hak_pvalloc(sizes[i]);
        cr_assert_not_null(p, "pvalloc(%zu) failed", sizes[i]);
        cr_assert_eq((uintptr_t)p % page, 0, "pvalloc(%zu) = %p", sizes[i], p);
        size_t u = hak_malloc_usable_size(p);
        cr_assert_geq(u, rounded, "pvalloc(%zu): usable %zu < %zu", sizes[i], u, rounded);
        memset(p, 0x77, rounded);
        hak_free(p);
    }
}

/* Blocks aligned beyond half a SuperSlab are found through a registry of
 * slots.  Two threads that took the same free slot at once both wrote
 * their header into it, and the block of one could end up paired with the
 * header of the other: its free, realloc or malloc_usable_size aborted
 * with "invalid pointer" (the fuzzer found it; on the code before, one run
 * of this test in four to six aborted). */
static void *big_aligned_rounds(void *arg)
{
    (void)arg;
    for (int i = 0; i < 20000; i++) {
        void *p = hak_aligned_alloc((size_t)2 << 20, 4096);
        if (p == NULL || hak_malloc_usable_size(p) < 4096)
            return (void *)1;
        hak_free(p);
    }
    return NULL;
}

Test(align, big_aligned_from_threads)
{
    pthread_t t[4];
    for (int i = 0; i < 4; i++)
        cr_assert_eq(pthread_create(&t[i], NULL, big_aligned_rounds, NULL), 0);
    for (int i = 0; i < 4; i++) {
        void *failed;
        cr_assert_eq(pthread_join(t[i], &failed), 0);
        cr_assert_null(failed, "a 2 MiB-aligned allocation failed or was too small");
    }
}
