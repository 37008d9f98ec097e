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
 * heap yet let the next eighth be made).
 * Last, PARKED threads stay alive with a heap each while ROUNDS times a
 * thread leaves its heap so and another starts: each start's look probes
 * at most a few dozen heaps (lifecycle.c: HK_LOOK_PROBES), where a look
 * probed every live thread's heap inside that thread's first malloc (a
 * system call each: 1,200 live threads cost a first malloc 3.3 ms of CPU,
 * bench/tail --scenario gone); and the gone heaps are still found. */
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "hakmem.h"
#include "testutil.h"

enum { THREADS = 100, BLOCKS = 2000, BLOCK = 1000, MAX_HEAPS = 8, SLACK = 16 << 20 };
enum { LOOPERS = 4, LOOPED = 20000, MAX_LOOPED_HEAPS = 250 };
/* A round probes for its starter's look, and maybe for a sweep's (heap.c:
 * a thread taking a SuperSlab) and the leaving thread's: 48 each at most
 * (lifecycle.c: HK_LOOK_PROBES and HK_RECENT).  Heaps made: a gone thread's
 * heap is found within a round or two, but a join may return before the
 * kernel forgets the thread (a probe then reads it alive), and a pass that
 * found none lets an eighth more heaps be made (1-24 seen, whole looks
 * 4-21; none found would make ROUNDS). */
enum { PARKED = 300, ROUNDS = 200, MAX_ROUND_PROBES = 3 * 48, MAX_ROUND_HEAPS = PARKED / 8 + 16 };

static pthread_key_t key;
static pthread_mutex_t park_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t park_cond = PTHREAD_COND_INITIALIZER;
static int parked, unpark;
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
    if (arg == (void *)&park_lock) {
        hak_free(hak_malloc(64));  /* a start's thread: only its heap is left */
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

static void *parked_thread(void *arg)
{
    void *p = hak_malloc(64);
    if (p == NULL)
        abort();
    pthread_mutex_lock(&park_lock);
    parked++;
    pthread_cond_broadcast(&park_cond);
    while (!unpark)
        pthread_cond_wait(&park_cond, &park_lock);
    pthread_mutex_unlock(&park_lock);
    hak_free(p);
    return arg;
}

static void *starter(void *arg)
{
    void *p = hak_malloc(64);
    if (p == NULL)
        abort();
    hak_free(p);
    return arg;
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
#ifdef UNDER_TSAN
    /* TSan tears a thread's state down from a TSD destructor of its own,
     * whose key it made before any of ours, in the last round glibc runs
     * (tsan_interceptors_posix.cpp: thread_finalize); whatever the
     * thread's own destructors run after it in that round, an atomic
     * operation even, reads the freed state.  Every part of this test
     * first calls hakmem there, and hakmem's destructor, armed then, could
     * run no earlier.  A 20-line program with one atomic add in the last
     * round and no hakmem crashes the same way, with gcc 12 and clang 14:
     * "ThreadSanitizer: SEGV on unknown address ...", then "nested bug in
     * the same thread, aborting"; gcc's runtime faults in the add
     * (__tsan::MetaMap::GetSync), clang's at the destructor's entry
     * (__tsan::TraceSwitchPart); here, in hakmem's first atomic add
     * (__tsan::SyncClock::Resize, gcc).  Helper 57. */
    printf("gone_threads: SKIP: under ThreadSanitizer a thread's last round of TSD destructors runs after "
           "TSan's own tore the thread's state down, and this test allocates there\n");
    return 77;
#endif
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

    pthread_t park[PARKED];
    for (int i = 0; i < PARKED; i++)
        if (pthread_create(&park[i], NULL, parked_thread, NULL) != 0)
            return 99;
    pthread_mutex_lock(&park_lock);
    while (parked < PARKED)
        pthread_cond_wait(&park_cond, &park_lock);
    pthread_mutex_unlock(&park_lock);
    heaps0 = tu_stat("heaps");
    long long most = 0, probes0 = tu_stat("tgkill");
    for (int r = 0; r < ROUNDS; r++) {
        long long before = tu_stat("tgkill");
        pthread_t th;
        if (pthread_create(&th, NULL, thread, &park_lock) != 0 || pthread_join(th, NULL) != 0 ||
            pthread_create(&th, NULL, starter, NULL) != 0 || pthread_join(th, NULL) != 0)
            return 99;
        long long n = tu_stat("tgkill") - before;
        most = n > most ? n : most;
    }
    long long probes = tu_stat("tgkill") - probes0;
    pthread_mutex_lock(&park_lock);
    unpark = 1;
    pthread_cond_broadcast(&park_cond);
    pthread_mutex_unlock(&park_lock);
    for (int i = 0; i < PARKED; i++)
        pthread_join(park[i], NULL);
    heaps = tu_stat("heaps") - heaps0;
    printf("gone_threads: %d rounds of a thread leaving its heap and one starting, %d threads alive: "
           "%lld probes, at most %lld a round, %lld heaps made\n", ROUNDS, PARKED, probes, most, heaps);
    if (most > MAX_ROUND_PROBES) {
        fprintf(stderr, "gone_threads: FAIL: %lld probes in one round (at most %d)\n", most, MAX_ROUND_PROBES);
        return 1;
    }
    if (heaps > MAX_ROUND_HEAPS) {
        fprintf(stderr, "gone_threads: FAIL: %lld heaps made in %d rounds (at most %d)\n", heaps, ROUNDS, MAX_ROUND_HEAPS);
        return 1;
    }
    printf("gone_threads: ok\n");
    return 0;
}
