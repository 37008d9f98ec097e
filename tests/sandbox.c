/* Limits that sandboxes and containers set, each in a child of its own
 * (neither a seccomp filter nor a lowered limit can be undone):
 *
 * - madvise denied by a seccomp filter (EPERM): freed memory still goes
 *   back, and reads as zero when handed out again.  Clearing it by hand
 *   instead, as for locked pages, made every page of a freed range
 *   resident: 1,000 blocks of 300 KB, 50 of them written throughout and the
 *   rest on two pages, took RSS from 24 MB to 335 MB at hak_collect().
 * - RLIMIT_DATA (private writable mappings, Linux 4.7+): a program that
 *   filled it with small blocks and freed them all can allocate a large
 *   block again.  Decommitted SuperSlabs kept counting against the limit,
 *   and every later mapping failed (glibc: 40 MiB blocks fine).
 *
 * Both use the hak_ API so that the sanitizer builds run them too, where
 * the runtimes allow: their own madvise and mappings would be refused. */
#ifdef HAVE_CONFIG_H
#include <config.h>
#endif
#include <errno.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>
#include "testutil.h"

#define SKIP 77

static int deny_madvise(void)
{
    struct sock_filter f[] = {
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_madvise, 0, 1),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | EPERM),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
    };
    struct sock_fprog prog = { .len = sizeof f / sizeof f[0], .filter = f };
    return prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == 0 && prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog) == 0 ? 0
                                                                                                              : -1;
}

enum { N = 1000, SIZE = 300000, FULL = 50 };

static int madvise_denied(void)
{
#if defined(UNDER_ASAN) || defined(UNDER_TSAN)
    printf("skip: madvise denied: the sanitizer's runtime needs madvise itself\n");
    return SKIP;
#else
    if (deny_madvise() != 0) {
        printf("skip: madvise denied: cannot install a seccomp filter (%s)\n", strerror(errno));
        return SKIP;
    }
    static void *b[N];
    size_t before = tu_rss();
    for (int i = 0; i < N; i++) {
        if ((b[i] = hak_malloc(SIZE)) == NULL) {
            printf("FAIL: madvise denied: malloc(%d) failed\n", SIZE);
            return 1;
        }
        /* A few blocks dirty throughout, the rest on two pages only. */
        if (i < FULL) {
            memset(b[i], 0xa5, SIZE);
        } else {
            memset(b[i], 0xa5, 64);
            memset((char *)b[i] + SIZE - 64, 0xa5, 64);
        }
    }
    size_t full = tu_rss();
    for (int i = 0; i < N; i++)
        hak_free(b[i]);
    hak_collect();
    size_t after = tu_rss();
    printf("madvise denied: RSS %zu KiB before, %zu full, %zu after hak_collect\n", before >> 10, full >> 10,
           after >> 10);
    if (before != 0 && after > before + ((size_t)32 << 20)) {
        printf("FAIL: madvise denied: freed memory stays (or became) resident\n");
        return 1;
    }
    /* Memory given back reads as zero: calloc counts on it. */
    for (int i = 0; i < FULL; i++) {
        void *p = hak_calloc(1, SIZE);
        size_t at = p != NULL ? tu_first_nonzero(p, SIZE) : 0;
        if (at != (size_t)-1) {
            printf("FAIL: madvise denied: calloc block %d not zero at byte %zu\n", i, at);
            return 1;
        }
        b[i] = p;
    }
    for (int i = 0; i < FULL; i++)
        hak_free(b[i]);
    printf("ok: madvise denied: memory given back, and zero when handed out again\n");
    return 0;
#endif
}

enum { MAX_SMALL = 1 << 20 };
static void *small[MAX_SMALL];  /* static: counted before the limit is set */

static int data_limit(void)
{
#if defined(UNDER_ASAN) || defined(UNDER_TSAN)
    printf("skip: RLIMIT_DATA: the sanitizer's runtime maps memory of its own under the limit\n");
    return SKIP;
#else
    if (!tu_data_limit((size_t)64 << 20)) {
        printf("skip: RLIMIT_DATA: cannot set a 64 MiB limit\n");
        return SKIP;
    }
    int n = 0;
    errno = 0;
    while (n < MAX_SMALL && (small[n] = hak_malloc(1000)) != NULL)
        memset(small[n++], 0x5a, 1000);
    if (n == MAX_SMALL || errno != ENOMEM) {
        printf("FAIL: RLIMIT_DATA: %d blocks of 1000 B, then errno %d (not ENOMEM)\n", n, errno);
        return 1;
    }
    for (int i = 0; i < n; i++)
        hak_free(small[i]);
    hak_collect();
    static const size_t large[] = { (size_t)3 << 20, (size_t)16 << 20, (size_t)40 << 20 };
    for (size_t i = 0; i < sizeof large / sizeof large[0]; i++) {
        char *p = hak_malloc(large[i]);
        if (p == NULL) {
            printf("FAIL: RLIMIT_DATA: %d blocks of 1000 B freed, then malloc(%zu MiB) failed (errno %d)\n", n,
                   large[i] >> 20, errno);
            return 1;
        }
        memset(p, 1, large[i]);
        hak_free(p);
    }
    /* And the SuperSlabs given back serve small blocks again. */
    hak_collect();
    for (int i = 0; i < n / 2; i++)
        if ((small[i] = hak_malloc(1000)) == NULL) {
            printf("FAIL: RLIMIT_DATA: small blocks refused again after %d of %d\n", i, n / 2);
            return 1;
        }
    for (int i = 0; i < n / 2; i++)
        hak_free(small[i]);
    printf("ok: RLIMIT_DATA: %d blocks of 1000 B freed, then 3, 16 and 40 MiB blocks and small blocks again\n", n);
    return 0;
#endif
}

int main(void)
{
    int (*const scenarios[])(void) = { madvise_denied, data_limit };
    int failed = 0, ran = 0;
    for (size_t i = 0; i < sizeof scenarios / sizeof scenarios[0]; i++) {
        int rc = tu_in_child(scenarios[i]);
        if (rc < 0)
            rc = 1;
        if (rc != SKIP) {
            ran++;
            failed += rc != 0;
        }
    }
    return failed ? 1 : ran ? 0 : SKIP;
}
