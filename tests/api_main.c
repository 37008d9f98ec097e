/* Criterion's runner, except under ThreadSanitizer: Criterion cannot map its
 * inheritable arena beside TSan's shadow memory and aborts before any test
 * runs (Criterion issue #274).  These tests are single-threaded; the TSan
 * build's thread checks are mt_stress's job. */
#include <criterion/criterion.h>
#include "testutil.h"
#include <stdio.h>


int main(int argc, char **argv)
{
#ifdef UNDER_TSAN
    (void)argc, (void)argv;
    puts("api: SKIP: Criterion cannot start under ThreadSanitizer (its arena mapping "
         "fails); the API tests run in the plain, ASan and UBSan builds");
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
