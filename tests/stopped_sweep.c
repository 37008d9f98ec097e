/* A thread stopped in the middle of a sweep of an exited thread's heap (by
 * a debugger, or blocked in a signal handler that interrupted it there)
 * must not stop the threads that start meanwhile.  Before the fix, a new
 * thread that popped the heap from the abandoned stack waited for the
 * sweep to end, for as long as the sweeper stayed stopped (helper 59).
 *
 * White-box (linked statically): a sweeper calls hak_collect over and over
 * while the main thread signals it; its handler blocks while some heap is
 * held by a sweep, which, with only the sweeper sweeping, is its own.  A
 * thread started then must finish; once the sweeper goes on, the heap it
 * held must be adopted again (no heap made for each later thread). */
#define _GNU_SOURCE  /* pthread_timedjoin_np */
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/syscall.h>
#include "hakmem.h"
#include "hk_heap.h"
#include "testutil.h"

static atomic_int parked, released, stop;
static atomic_int sweeper_tid;

static bool heap_swept(void)
{
    for (struct hk_heap *h = hk_heap_registry_head(); h != NULL; h = h->all_next)
        if (ck_pr_load_32(&h->state) == HK_HEAP_SWEEPING)
            return true;
    return false;
}

/* Blocks while a heap is being swept (by this thread: no other sweeps). */
static void on_signal(int sig)
{
    (void)sig;
    if (atomic_load(&parked) || !heap_swept())
        return;
    atomic_store(&parked, 1);
    struct timespec ms = { 0, 1000000 };
    while (!atomic_load(&released))
        nanosleep(&ms, NULL);
}

static void *sweeper(void *arg)
{
    (void)arg;
    atomic_store(&sweeper_tid, (int)syscall(SYS_gettid));
    while (!atomic_load(&stop))
        hak_collect();
    return NULL;
}

static void *blocks[64];

/* Leaves its heap, with blocks of its own in it, to be swept. */
static void *exiting(void *arg)
{
    (void)arg;
    for (unsigned i = 0; i < 64; i++)
        blocks[i] = hak_malloc(100 + i * 50);
    return NULL;
}

static pthread_barrier_t together;

static void *starter(void *arg)
{
    hak_free(hak_malloc(200));
    if (arg != NULL)
        pthread_barrier_wait(arg);  /* both alive at once */
    return (void *)1;
}

/* Starts a thread that allocates; false if it is not done within 60 s. */
static bool start_one(void)
{
    pthread_t t;
    pthread_create(&t, NULL, starter, NULL);
    return tu_joined(t, NULL, 60);
}

int main(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sa.sa_flags = SA_RESTART;
    sigaction(SIGUSR1, &sa, NULL);

    pthread_t t, s;
    pthread_create(&t, NULL, exiting, NULL);
    pthread_join(t, NULL);
    pthread_create(&s, NULL, sweeper, NULL);
    while (atomic_load(&sweeper_tid) == 0)
        sched_yield();
    for (unsigned i = 0; !atomic_load(&parked); i++) {
        if (i == 600000) {  /* 60 s */
            printf("SKIP: the sweeper was never caught in a sweep\n");
            return 77;
        }
        syscall(SYS_tgkill, getpid(), atomic_load(&sweeper_tid), SIGUSR1);
        usleep(100);
    }
    long long before = tu_stat("heaps");
    bool done = start_one();
    printf("a thread started while the sweeper is stopped in a sweep: %s\n",
           done ? "done" : "not done within 60 s");
    atomic_store(&released, 1);
    if (!done)
        return 1;
    atomic_store(&stop, 1);
    pthread_join(s, NULL);
    long long after_one = tu_stat("heaps");
    /* Two at once: one adopts that thread's heap, the other the swept one. */
    pthread_t two[2];
    pthread_barrier_init(&together, NULL, 2);
    for (unsigned i = 0; i < 2; i++)
        pthread_create(&two[i], NULL, starter, &together);
    for (unsigned i = 0; i < 2; i++)
        pthread_join(two[i], NULL);
    long long after = tu_stat("heaps");
    printf("heaps: %lld before, %lld after that thread, %lld after two more at once\n", before, after_one, after);
    for (unsigned i = 0; i < 64; i++)
        hak_free(blocks[i]);
    if (after > after_one) {
        printf("FAIL: the heap the sweep held was not adopted again\n");
        return 1;
    }
    return 0;
}
