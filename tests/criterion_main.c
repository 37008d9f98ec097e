/* Criterion's runner for the Criterion tests (api, slab_check, numa_policy),
 * except under ThreadSanitizer: Criterion cannot map its inheritable arena
 * beside TSan's shadow memory and fails before any test runs (Criterion
 * issue #274), with an abort or a crash.  These tests run in the plain,
 * ASan and UBSan builds; the TSan build's thread checks are mt_stress's
 * and lifecycle's job. */
#include <criterion/criterion.h>
#include "testutil.h"
#include <stdio.h>
#include <string.h>

int main(int argc, char **argv)
{
#ifdef UNDER_TSAN
    const char *name = argc > 0 ? strrchr(argv[0], '/') : NULL;
    printf("%s: SKIP: Criterion cannot start under ThreadSanitizer (its arena mapping fails); "
           "these tests run in the plain, ASan and UBSan builds\n",
           name != NULL ? name + 1 : argc > 0 ? argv[0] : "test");
    return 77;
#else
    struct criterion_test_set *tests = criterion_initialize();
    int result = 0;
    if (criterion_handle_args(argc, argv, true))
        result = !criterion_run_all_tests(tests);
    criterion_finalize(tests);
    return result;
#endif
}
