/* Where pages really are: move_pages(2) with a NULL target list moves
 * nothing and reports, per page, its node id or a negative errno (-ENOENT
 * for a page not yet touched). */
#define _GNU_SOURCE
#include <unistd.h>
#include <sys/syscall.h>

#include "hk_numa_int.h"

enum { CHUNK = 256 };  /* 1 KiB of status on the stack per call */

void hk_numa_query_pages(void *const *pages, size_t n, unsigned node,
                         size_t *resident, size_t *on_node)
{
    int status[CHUNK];
    int os = (int)hk_numa_node_os_index(node);

    *resident = *on_node = 0;
    for (size_t i = 0; i < n; i += CHUNK) {
        size_t k = n - i < CHUNK ? n - i : CHUNK;

        /* The kernel only reads the address array: casting const away is safe.
         * A failing call (no NUMA support, seccomp) counts as not resident. */
        if (syscall(SYS_move_pages, 0, (unsigned long)k, (void **)(pages + i), NULL, status, 0))
            continue;
        for (size_t j = 0; j < k; j++)
            if (status[j] >= 0) {
                ++*resident;
                *on_node += status[j] == os;
            }
    }
}
