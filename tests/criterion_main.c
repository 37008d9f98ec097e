/* Criterion's runner for the Criterion tests (api, slab_check, numa_policy).
 * Under ThreadSanitizer it also supplies the rand_r that picks where
 * Criterion maps its inheritable arena (below). */
#include <criterion/criterion.h>
#include "testutil.h"

#ifdef UNDER_TSAN
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/mman.h>

/* Criterion's arena (BoxFort's bxf_arena_init) maps itself at
 * 0x200000000000 + (rand_r() & 0x3fffff) * 16 MiB, checking with msync only
 * that the range is unmapped.  Most of that range is TSan's shadow, its
 * metadata, or a hole TSan refuses fixed mappings in, so the arena failed
 * before any test ran, with an abort or a crash (Criterion issue #274).
 * Criterion calls rand_r through the PLT, so ours takes its place and
 * returns an r whose range is unmapped and that TSan lets us map: the same
 * msync probe, then the fixed mapping the arena will make (PROT_NONE, 1 MiB:
 * the arena starts at 128 KiB and grows with mremap, which may move it).
 * Nothing else in these tests calls rand_r. */
#define ARENA_BASE ((uintptr_t)0x200000000000)
#define ARENA_STEP_SHIFT 24
#define ARENA_R_MASK 0x3fffffu
#define ARENA_PROBE ((size_t)1 << 20)

static bool unmapped(char *base)
{
    for (char *a = base; a < base + ARENA_PROBE; a += 4096)
        if (msync(a, 4096, 0) != -1 || errno != ENOMEM)
            return false;
    return true;
}

int rand_r(unsigned *seed)
{
    unsigned r = 0;
    /* Here a step took at most 152 tries (48 picks, gcc and clang); a
     * TSan layout without one ends the search, and Criterion fails. */
    for (unsigned tries = 0; tries < (1u << 16); tries++) {
        *seed = *seed * 1103515245u + 12345u;
        r = (*seed >> 8) & ARENA_R_MASK;
        char *base = (char *)(ARENA_BASE + ((uintptr_t)r << ARENA_STEP_SHIFT));
        if (!unmapped(base))
            continue;
        void *m = mmap(base, ARENA_PROBE, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
        if (m == MAP_FAILED)
            continue;
        munmap(m, ARENA_PROBE);
        return (int)r;
    }
    fprintf(stderr, "criterion_main: no address ThreadSanitizer allows for Criterion's arena\n");
    return (int)r;
}
#endif

int main(int argc, char **argv)
{
    struct criterion_test_set *tests = criterion_initialize();
    int result = 0;
    if (criterion_handle_args(argc, argv, true))
        result = !criterion_run_all_tests(tests);
    criterion_finalize(tests);
    return result;
}
