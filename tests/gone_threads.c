/* Heaps of threads that are gone without handing them back.  A thread hands
 * its heap back from a TSD destructor (lifecycle.c: thread_exit_cb); one
 * whose first call into hakmem comes in the last round of TSD destructors
 * registers that destructor too late for any round to run it, and its heap
 * stayed active with no thread: never adopted, never swept, and the blocks
 * other threads freed into it never went back to its slabs.  Since session
 * 28 a thread that finds no abandoned heap, and hak_collect, look for heaps
 * whose threads the kernel no longer has (lifecycle.c: reap_gone).
 * THREADS threads, one at a time, each allocate BLOCKS blocks in their last
 * destructor round, free half and leave half for the main thread: the
 * heaps made must stay a handful, and after the main thread's frees and
 * hak_collect the committed memory must come back near where it started
 * (each thread's 2 MB stayed, 200 MB in all).
 * Then LOOPERS threads each start and join such threads, LOOPED in all,
 * at most 2 * LOOPERS + 1 alive at once: the heaps made must stay well
 * below the threads' count.  Threads that started while another thread's
 * look was handing gone heaps back made a heap each (helper 43): 548-708
 * heaps for 20,000 threads; now they wait for the look, 36-96 (more when
 * the machine is idle than when it is loaded: looks that find no gone
 * heap yet let the next eighth be made). */
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "hakmem.h"
#include "testutil.h"

enum { THREADS = 100, BLOCKS = 2000, BLOCK = 1000, MAX_HEAPS = 8, SLACK = 16 << 20 };
enum { LOOPERS = 4, LOOPED = 20000, MAX_LOOPED_HEAPS = 250 };

static pthread_key_t key;
/* Blocks the loopers' threads leave, in no order: each looper frees 16 of
 * them, any thread's, after each thread it joins. */
static struct {
    pthread_mutex_t lock;
    unsigned n;
    void *p[4096];
} pool = { PTHREAD_MUTEX_INITIALIZER, 0, { 0 } };

static void pool_put(void *p)
{
    pthread_mutex_lock(&pool.lock);
    if (pool.n == sizeof pool.p / sizeof pool.p[0])
        abort();
    unsigned j = pool.n ? (unsigned)((uintptr_t)p >> 4) % pool.n : 0;
    pool.p[pool.n++] = pool.p[j];
    pool.p[j] = p;
    pthread_mutex_unlock(&pool.lock);
}

static void *pool_get(void)
{
    pthread_mutex_lock(&pool.lock);
    void *p = pool.n ? pool.p[--pool.n] : NULL;
    pthread_mutex_unlock(&pool.lock);
    return p;
}
static void *left[THREADS][BLOCKS / 2];
static __thread int round_no;

/* Re-armed until the last round glibc runs, where it first calls hakmem. */
static void destructor(void *arg)
{
    int t = (int)(intptr_t)arg - 1;
    if (++round_no < PTHREAD_DESTRUCTOR_ITERATIONS) {
        pthread_setspecific(key, arg);
        return;
    }
    if (arg == (void *)&pool) {
        /* A looper's thread: 32 blocks, half of them left in the pool. */
        for (int i = 0; i < 32; i++) {
            void *p = hak_malloc(64 + i * 32);
            if (p == NULL)
                abort();
            memset(p, 0x5a, 64);
            if (i % 2)
                pool_put(p);
            else
                hak_free(p);
        }
        return;
    }
    void *mine[BLOCKS / 2];
    for (int i = 0; i < BLOCKS; i++) {
        void *p = hak_malloc(BLOCK);
        if (p == NULL)
            abort();
        memset(p, 0x5a, BLOCK);
        if (i % 2)
            mine[i / 2] = p;
        else
            left[t][i / 2] = p;
    }
    for (int i = 0; i < BLOCKS / 2; i++)
        hak_free(mine[i]);
}

static void *thread(void *arg)
{
    pthread_setspecific(key, arg);
    return NULL;
}

static void *looper(void *arg)
{
    (void)arg;
    for (int n = 0; n < LOOPED / LOOPERS; n++) {
        pthread_t th;
        if (pthread_create(&th, NULL, thread, &pool) != 0 || pthread_join(th, NULL) != 0)
            abort();
        void *p;
        for (int i = 0; i < 16 && (p = pool_get()) != NULL; i++) {
            if (*(unsigned char *)p != 0x5a)
                abort();
            hak_free(p);
        }
    }
    return NULL;
}

int main(void)
{
    if (tu_stat("heaps") == -1 || tu_stat("bytes_committed") == -1) {
        printf("gone_threads: SKIP: this build does not count heaps or committed bytes\n");
        return 77;
    }
    if (pthread_key_create(&key, destructor) != 0)
        return 99;
    hak_collect();
    long long heaps0 = tu_stat("heaps"), committed0 = tu_stat("bytes_committed");
    for (int t = 0; t < THREADS; t++) {
        pthread_t th;
        if (pthread_create(&th, NULL, thread, (void *)(intptr_t)(t + 1)) != 0 || pthread_join(th, NULL) != 0)
            return 99;
    }
    long long heaps = tu_stat("heaps") - heaps0;
    for (int t = 0; t < THREADS; t++)
        for (int i = 0; i < BLOCKS / 2; i++) {
            const unsigned char *p = left[t][i];
            if (p[0] != 0x5a || p[BLOCK - 1] != 0x5a) {
                fprintf(stderr, "gone_threads: FAIL: thread %d's block %d changed after the thread was gone\n", t, i);
                return 1;
            }
            hak_free(left[t][i]);
        }
    hak_collect();
    long long committed = tu_stat("bytes_committed");
    printf("gone_threads: %d threads that first allocated in their last destructor round made %lld heaps; "
           "committed %lld bytes before, %lld after freeing what they left and hak_collect\n",
           THREADS, heaps, committed0, committed);
    int failed = 0;
    if (heaps > MAX_HEAPS) {
        fprintf(stderr, "gone_threads: FAIL: %lld heaps made for %d threads, one at a time (at most %d)\n",
                heaps, THREADS, MAX_HEAPS);
        failed = 1;
    }
    if (committed > committed0 + SLACK) {
        fprintf(stderr, "gone_threads: FAIL: %lld bytes still committed, %lld at the start\n", committed, committed0);
        failed = 1;
    }
    if (failed)
        return 1;

    heaps0 = tu_stat("heaps");
    pthread_t loopers[LOOPERS];
    for (int l = 0; l < LOOPERS; l++)
        if (pthread_create(&loopers[l], NULL, looper, NULL) != 0)
            return 99;
    for (int l = 0; l < LOOPERS; l++)
        pthread_join(loopers[l], NULL);
    for (void *p; (p = pool_get()) != NULL;)
        hak_free(p);
    heaps = tu_stat("heaps") - heaps0;
    printf("gone_threads: %d threads such, started by %d threads at once, made %lld heaps\n", LOOPED, LOOPERS,
           heaps);
    if (heaps > MAX_LOOPED_HEAPS) {
        fprintf(stderr, "gone_threads: FAIL: %lld heaps made for %d threads, at most %d alive (at most %d)\n",
                heaps, LOOPED, 2 * LOOPERS + 1, MAX_LOOPED_HEAPS);
        return 1;
    }
    printf("gone_threads: ok\n");
    return 0;
}
