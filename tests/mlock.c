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
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

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
    return 0;
#endif
}
