/* A preloaded library in the manner of libfaketime: it replaces
 * clock_gettime, __clock_gettime and getpid, and each replacement
 * allocates, the first time through dlsym (which allocates too).  hakmem
 * must not call them from its own paths (tests/interpose.sh): under
 * libfaketime every program crashed, its first malloc recursing through
 * libfaketime's initialisation, and a clock read in the middle of a sweep
 * met the sweep again in the wrapper's malloc (helper 50). */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

static void churn(void)
{
    char *volatile p = malloc(200), *volatile q = malloc(5000);
    if (p)
        memset(p, 7, 200);
    if (q)
        memset(q, 7, 64);
    free(p);
    free(q);
}

int clock_gettime(clockid_t c, struct timespec *ts)
{
    static int (*next)(clockid_t, struct timespec *);
    if (!next)
        next = (int (*)(clockid_t, struct timespec *))dlsym(RTLD_NEXT, "clock_gettime");
    churn();
    return next(c, ts);
}

int __clock_gettime(clockid_t c, struct timespec *ts)
{
    return clock_gettime(c, ts);
}

pid_t getpid(void)
{
    static pid_t (*next)(void);
    if (!next)
        next = (pid_t (*)(void))dlsym(RTLD_NEXT, "getpid");
    churn();
    return next();
}
