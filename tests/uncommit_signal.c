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
 * taken for hung.
 *
 * Then the handler forks instead, and the child goes on from where the
 * signal interrupted its parent's thread, then exits: a child whose
 * parent was in an uncommit then ended an uncommit in its copy of the
 * count, which a fork wipes, and counted one under way for good, waiting
 * for it (1.5% of the children hung, 3 of 188 until helper 60).  1,000
 * children; one not gone 10 s after its fork is taken for hung. */
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
#include <sys/wait.h>
#include "testutil.h"

#define SKIP 77
#define BIG ((size_t)1 << 30)
#define CHILDREN 1000

static long refused, handled;  /* __atomic: progress, read by the watchdog */
static int stop, forking;
static volatile sig_atomic_t in_child;
static volatile pid_t child;  /* forked by the handler, not yet waited for */
static pthread_t main_thread;

static void on_signal(int sig)
{
    (void)sig;
    int saved = errno;
    if (__atomic_load_n(&forking, __ATOMIC_RELAXED)) {
        if (child == 0 && !in_child) {
            pid_t c = fork();
            if (c == 0)
                in_child = 1;  /* exits once back in the main loop */
            else if (c > 0)
                child = c;
        }
        errno = saved;
        return;
    }
    void *p = hak_malloc(BIG);
    hak_free(p);
    __atomic_add_fetch(&handled, 1, __ATOMIC_RELAXED);
    errno = saved;
}

static void *signaller(void *arg)
{
    (void)arg;
    /* Forking, one at a time: a signal sent while the last one is still
     * pending is delivered at the next system call's end, not inside an
     * uncommit (which makes none when the pool is empty). */
    while (!__atomic_load_n(&stop, __ATOMIC_RELAXED)) {
        pthread_kill(main_thread, SIGUSR1);
        if (__atomic_load_n(&forking, __ATOMIC_RELAXED))
            usleep(200);
    }
    return NULL;
}

static void *watchdog(void *arg)
{
    (void)arg;
    long last = -1;
    double since = tu_now();
    while (!__atomic_load_n(&stop, __ATOMIC_RELAXED)) {
        long r = __atomic_load_n(&refused, __ATOMIC_RELAXED);
        if (r != last) {
            last = r;
            since = tu_now();
        } else if (tu_now() - since > 20.0) {
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

/* The handler's children: 0 once all have exited. */
static int forks(void)
{
    __atomic_store_n(&forking, 1, __ATOMIC_RELAXED);
    __atomic_store_n(&stop, 0, __ATOMIC_RELAXED);
    pthread_t s;
    if (pthread_create(&s, NULL, signaller, NULL) != 0) {
        printf("FAIL: pthread_create: %s\n", strerror(errno));
        return 1;
    }
    int n = 0, rc = 0;
    double forked = 0;
    sigset_t usr1;
    sigemptyset(&usr1);
    sigaddset(&usr1, SIGUSR1);
    for (;;) {
        /* No fork once enough were made: a child would go on past here. */
        if (n >= CHILDREN)
            pthread_sigmask(SIG_BLOCK, &usr1, NULL);
        if (rc != 0 || (n >= CHILDREN && child == 0))
            break;
        hak_malloc(BIG);
        if (in_child)
            _exit(0);
        if (child == 0)
            continue;
        int status;
        if (forked == 0)
            forked = tu_now();
        pid_t w = waitpid(child, &status, WNOHANG);
        if (w == child) {
            n++;
            child = 0;
            forked = 0;
        } else if (tu_now() - forked > 10.0) {
            printf("FAIL: child %d of a fork in a signal handler not gone 10 s later (%d before it were): "
                   "it waits for an uncommit its parent's thread counted\n", (int)child, n);
            kill(child, SIGKILL);
            waitpid(child, &status, 0);
            rc = 1;
        }
    }
    __atomic_store_n(&stop, 1, __ATOMIC_RELAXED);
    pthread_join(s, NULL);
    if (rc == 0)
        printf("ok: %d children of forks in signal handlers amid refused allocations exited\n", n);
    return rc;
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
    for (double t0 = tu_now(); tu_now() - t0 < 3.0;) {
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
    return forks();
#endif
}

int main(void)
{
    int rc = tu_in_child(run);
    return rc < 0 ? 1 : rc;
}
