/* A signal handler whose allocation is refused while its thread is in an
 * uncommit of its own (superslab.c: hk_ss_pool_uncommit, which a refused
 * allocation calls) does not wait for that uncommit, which cannot end
 * until the handler returns.  Until helper 60 the thread marked itself as
 * uncommitting only after it had counted the uncommit under way, and
 * cleared the mark before it counted it ended: a handler that ran between
 * waited for it for good (seen within 3 s each of 5 runs).
 *
 * In a child under an RLIMIT_AS that refuses a 1 GiB block: the main
 * thread asks for one again and again, each refusal an uncommit, while
 * another thread signals it as fast as it can; the handler asks for one
 * too.  3 s of that; a main thread that makes no progress for 20 s is
 * taken for hung. */
#ifdef HAVE_CONFIG_H
#include <config.h>
#endif
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include "testutil.h"

#define SKIP 77
#define BIG ((size_t)1 << 30)

static long refused, handled;  /* __atomic: progress, read by the watchdog */
static int stop;
static pthread_t main_thread;

static long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000L + ts.tv_nsec / 1000000L;
}

static void on_signal(int sig)
{
    (void)sig;
    int saved = errno;
    void *p = hak_malloc(BIG);
    hak_free(p);
    __atomic_add_fetch(&handled, 1, __ATOMIC_RELAXED);
    errno = saved;
}

static void *signaller(void *arg)
{
    (void)arg;
    while (!__atomic_load_n(&stop, __ATOMIC_RELAXED))
        pthread_kill(main_thread, SIGUSR1);
    return NULL;
}

static void *watchdog(void *arg)
{
    (void)arg;
    long last = -1, since = now_ms();
    while (!__atomic_load_n(&stop, __ATOMIC_RELAXED)) {
        long r = __atomic_load_n(&refused, __ATOMIC_RELAXED);
        if (r != last) {
            last = r;
            since = now_ms();
        } else if (now_ms() - since > 20000) {
            printf("FAIL: the main thread made no progress for 20 s after %ld refusals, %ld signals handled: "
                   "a handler waits for its own thread's uncommit\n", r,
                   __atomic_load_n(&handled, __ATOMIC_RELAXED));
            fflush(stdout);
            _exit(1);
        }
        usleep(100 * 1000);
    }
    return NULL;
}

static int run(void)
{
#if defined(UNDER_ASAN) || defined(UNDER_TSAN)
    printf("skip: the sanitizer's shadow mappings count against RLIMIT_AS\n");
    return SKIP;
#else
    hak_free(hak_malloc(64));  /* the heap and its SuperSlab first */
    size_t mapped = tu_mapped();
    if (mapped == 0) {
        printf("FAIL: /proc/self/statm unreadable\n");
        return 1;
    }
    /* Room for the threads' stacks, not for the block. */
    struct rlimit r = { mapped + BIG / 2, mapped + BIG / 2 };
    if (setrlimit(RLIMIT_AS, &r) != 0) {
        printf("skip: cannot set RLIMIT_AS: %s\n", strerror(errno));
        return SKIP;
    }
    if (hak_malloc(BIG) != NULL) {
        printf("skip: a 1 GiB block was not refused under a limit with room for half of it\n");
        return SKIP;
    }
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sa.sa_flags = SA_RESTART;
    sigaction(SIGUSR1, &sa, NULL);
    main_thread = pthread_self();
    pthread_t s, w;
    if (pthread_create(&w, NULL, watchdog, NULL) != 0 || pthread_create(&s, NULL, signaller, NULL) != 0) {
        printf("FAIL: pthread_create: %s\n", strerror(errno));
        return 1;
    }
    for (long t0 = now_ms(); now_ms() - t0 < 3000;) {
        if (hak_malloc(BIG) != NULL) {
            printf("FAIL: a 1 GiB block under a limit with room for half of it\n");
            return 1;
        }
        __atomic_add_fetch(&refused, 1, __ATOMIC_RELAXED);
    }
    __atomic_store_n(&stop, 1, __ATOMIC_RELAXED);
    pthread_join(s, NULL);
    pthread_join(w, NULL);
    long h = __atomic_load_n(&handled, __ATOMIC_RELAXED);
    if (h == 0) {
        printf("FAIL: no signal handled in 3 s: the test proves nothing\n");
        return 1;
    }
    printf("ok: %ld refused allocations, %ld refused in signal handlers among them, none waited for good\n",
           __atomic_load_n(&refused, __ATOMIC_RELAXED), h);
    return 0;
#endif
}

int main(void)
{
    int rc = tu_in_child(run);
    return rc < 0 ? 1 : rc;
}
