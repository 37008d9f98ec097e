/* A program that locks its memory (mlockall, as real-time and security
 * programs do) gets locked what it uses, not what hakmem reserves: the
 * SuperSlab arenas are reserved PROT_NONE and the pointer map is mapped leaf
 * by leaf, so neither is filled by the lock.  Before, the lock made the map's
 * 64 MiB of BSS and a whole 64 MiB arena resident: 133 MB of RSS for one
 * malloc (glibc: 2.4 MB). */
#ifdef HAVE_CONFIG_H
#include <config.h>
#endif
#include <errno.h>
#include <stdbool.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include "hakmem.h"

#define RSS_LIMIT_KIB (24 * 1024)  /* hakmem 15 MB; tcmalloc 19, jemalloc 30, mimalloc 41, glibc 4.6 */

static long rss_kib(void)
{
    char line[256];
    long kib = -1;
    FILE *f = fopen("/proc/self/status", "r");
    if (f == NULL)
        return -1;
    while (fgets(line, sizeof line, f))
        if (sscanf(line, "VmRSS: %ld kB", &kib) == 1)
            break;
    fclose(f);
    return kib;
}

static void *work(void *arg)
{
    static const size_t sizes[] = { 16, 48, 200, 1000, 5000, 40000, 1 << 20 };
    void *p[sizeof sizes / sizeof sizes[0]];
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        p[i] = malloc(sizes[i]);
        if (p[i] == NULL)
            return arg;
        memset(p[i], 1, sizes[i]);
    }
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++)
        free(p[i]);
    return NULL;
}

/* `count` blocks of `size` bytes written and freed, then calloc'd again:
 * all zero, though locked pages keep their contents when given back (the
 * kernel refuses MADV_DONTNEED).  With `collect`, the memory is given back
 * in between (hak_collect) while another block keeps its SuperSlab in use,
 * so that its free units are purged, not the SuperSlab pooled; without,
 * a large block's mapping stays cached for the calloc to take.  Before,
 * both came back with the old bytes (helper 20). */
static int calloc_after_free(size_t size, int count, bool collect)
{
    enum { MAX = 64 };
    unsigned char *b[MAX];
    void *keep = malloc(size);
    if (keep == NULL)
        return 1;
    for (int i = 0; i < count; i++) {
        b[i] = malloc(size);
        if (b[i] == NULL)
            return 1;
        memset(b[i], 0xaa, size);
    }
    for (int i = 0; i < count; i++)
        free(b[i]);
    if (collect)
        hak_collect();
    size_t bad = 0;
    for (int i = 0; i < count; i++) {
        b[i] = calloc(1, size);
        if (b[i] == NULL)
            return 1;
        for (size_t j = 0; j < size; j++)
            bad += b[i][j] != 0;
    }
    for (int i = 0; i < count; i++)
        free(b[i]);
    free(keep);
    printf("mlock: calloc(%zu) x %d after the same memory was freed%s: %zu bytes not zero\n", size, count,
           collect ? " and given back" : "", bad);
    return bad != 0;
}

int main(void)
{
#ifdef HK_NO_OVERRIDE
    printf("mlock: SKIP: sanitizer build, malloc is not hakmem's (and the sanitizer's shadow would be locked)\n");
    return 77;
#else
    if (mlockall(MCL_CURRENT | MCL_FUTURE) != 0) {
        printf("mlock: SKIP: mlockall: %s (needs CAP_IPC_LOCK or a higher RLIMIT_MEMLOCK)\n", strerror(errno));
        return 77;
    }
    /* Small stacks: locked too, glibc's 8 MiB each would be most of RSS. */
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setstacksize(&attr, 256 << 10);
    pthread_t t[4];
    for (int i = 0; i < 4; i++)
        if (pthread_create(&t[i], &attr, work, NULL) != 0)
            return 2;
    int failed = 0;
    for (int i = 0; i < 4; i++) {
        void *r;
        pthread_join(t[i], &r);
        failed |= r != NULL;
    }
    long kib = rss_kib();
    printf("mlock: RSS %ld KiB after mlockall and 4 threads' allocations (limit %d KiB)\n", kib, RSS_LIMIT_KIB);
    if (failed || kib < 0 || kib > RSS_LIMIT_KIB) {
        printf("FAIL: %s\n", failed ? "an allocation failed" : "RSS above the limit, or unreadable");
        return 1;
    }
    /* A large block's mapping (cached, its rest split off), unit blocks and
     * small blocks (their units purged or the SuperSlab pooled). */
    if (calloc_after_free(24 << 20, 1, false) | calloc_after_free(1500000, 8, true) |
        calloc_after_free(300000, 48, true) | calloc_after_free(40000, 64, true)) {
        printf("FAIL: calloc returned memory that was not zero\n");
        return 1;
    }
    return 0;
#endif
}
