/* malloc_usable_size: covers the request, and the whole usable size belongs
 * to the block alone (writing it never reaches a neighbour). */
#include <criterion/criterion.h>
#include <stdint.h>
#include <stdlib.h>
#include "hakmem.h"
#include "testutil.h"

Test(usable, null_is_zero)
{
    cr_assert_eq(hak_malloc_usable_size(NULL), 0);
}

/* K live blocks of each size (and of sizes in between when `mixed`) are
 * each filled over their full usable size with their own pattern; then every
 * one must still hold its own pattern. */
static void neighbours(size_t n, int k, int mixed)
{
    void **p = hak_malloc(k * sizeof *p);
    size_t *u = hak_malloc(k * sizeof *u);
    cr_assert(p && u);
    for (int i = 0; i < k; i++) {
        size_t want = mixed ? 1 + (n + (size_t)i * 37) % (2 * n) : n;
        p[i] = hak_malloc(want);
        cr_assert_not_null(p[i], "malloc(%zu) failed", want);
        u[i] = hak_malloc_usable_size(p[i]);
        cr_assert_geq(u[i], want, "malloc_usable_size(malloc(%zu)) = %zu", want, u[i]);
        tu_fill(p[i], u[i], (uintptr_t)p[i]);
    }
    for (int i = 0; i < k; i++) {
        size_t bad = tu_check(p[i], u[i], (uintptr_t)p[i]);
        cr_assert_eq(bad, (size_t)-1,
                     "block %p (usable %zu, size class of %zu) overwritten at byte %zu by a "
                     "neighbour's usable area",
                     p[i], u[i], n, bad);
        cr_assert_eq(hak_malloc_usable_size(p[i]), u[i], "usable size of %p changed", p[i]);
    }
    for (int i = 0; i < k; i++)
        hak_free(p[i]);
    hak_free(p);
    hak_free(u);
}

Test(usable, every_class_whole_usable_is_private)
{
    unsigned count = hak_size_class_count();
    for (unsigned c = 0; c < count; c++) {
        size_t s = hak_size_class_size(c);
        int k = s <= 4096 ? 128 : 16;
        neighbours(s, k, 0);
        neighbours(s - 1, k, 0);
        neighbours(s + 1, k, 0);
        neighbours(s, k, 1);
    }
}

Test(usable, large_whole_usable_is_private)
{
    static const size_t sizes[] = {40000, 65537, 200000, 1 << 20, (1 << 20) + 1, 5 << 20};
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++)
        neighbours(sizes[i], 6, 0);
}

/* Random sizes up to 16 MiB: the usable size covers the request, and its
 * last byte is writable. */
Test(usable, random_sizes_cover_request)
{
    srand(12345);
    for (int i = 0; i < 3000; i++) {
        size_t n = (size_t)rand() % (i % 10 == 0 ? 16u << 20 : 70000u);
        void *p = hak_malloc(n);
        cr_assert_not_null(p, "malloc(%zu) failed", n);
        size_t u = hak_malloc_usable_size(p);
        cr_assert_geq(u, n, "malloc_usable_size(malloc(%zu)) = %zu", n, u);
        ((volatile char *)p)[u ? u - 1 : 0] = 1;
        hak_free(p);
    }
}
