/* Deferred cancellation (pthread_cancel) meets hakmem as it meets glibc's
 * malloc: none of its calls is a cancellation point, so a cancel pending
 * when a thread calls in waits for the thread's own next cancellation
 * point, and nothing is left half done.  Before the fix, malloc_stats
 * (hak_stats_print) wrote its report with glibc's write, a cancellation
 * point: the thread unwound with the report's lock held, and every later
 * report, the one at exit too, waited for good.
 *
 * Then threads cancelled at their own cancellation points, between
 * allocations, run hakmem's thread-exit destructor while they unwind: their
 * heaps must come back to later threads (the heaps made stay few) and
 * every block freed by others must leave nothing in use. */
#define _GNU_SOURCE  /* pthread_timedjoin_np */
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include "hakmem.h"
#include "testutil.h"

enum { ROUNDS = 300, LIVE = 4, BLOCKS = 64 };

static atomic_int passed;  /* pending_calls got past hakmem's calls */

/* Every call of hakmem's a thread makes with a cancel pending, each size
 * range's path (the first call makes the thread's heap); the thread
 * returns 1 if it got past them all, and is cancelled at the end by its
 * own pthread_testcancel. */
static void *pending_calls(void *arg)
{
    (void)arg;
    pthread_cancel(pthread_self());
    static const size_t sizes[] = { 8, 100, 1000, 4000, 30000, 200000, 3000000 };
    void *p[sizeof sizes / sizeof sizes[0]];
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        p[i] = hak_malloc(sizes[i]);
        p[i] = hak_realloc(p[i], sizes[i] * 2 + 1);
    }
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++)
        hak_free(p[i]);
    hak_collect();
    char json[4096];
    hak_stats_json(json, sizeof json);
    hak_stats_print();
    atomic_store(&passed, 1);
    pthread_testcancel();
    return NULL;
}

static void *report(void *arg)
{
    (void)arg;
    hak_stats_print();
    return (void *)1;
}

static void *blocks[ROUNDS][BLOCKS];

/* Allocates blocks for others to free, pausing at cancellation points of
 * its own (pthread_testcancel) in between, until cancelled. */
static void *worker(void *arg)
{
    void **b = arg;
    for (unsigned i = 0;; i++) {
        if (i < BLOCKS)
            b[i] = hak_malloc(16 + (i * 997) % 5000);
        void *tmp = hak_malloc(i % 7 == 0 ? 100000 : 48);
        hak_free(tmp);
        pthread_testcancel();
        if (i >= BLOCKS)
            sched_yield();
    }
    return NULL;
}

int main(void)
{
    int failures = 0;
    pthread_t t;
    void *ret;

    pthread_create(&t, NULL, pending_calls, NULL);
    if (!tu_joined(t, &ret, 60)) {
        printf("FAIL: a thread with a cancel pending hangs in hakmem's calls\n");
        return 1;
    }
    if (!atomic_load(&passed)) {
        printf("FAIL: a thread with a cancel pending was cancelled inside hakmem's calls\n");
        failures++;
    } else if (ret != PTHREAD_CANCELED) {
        printf("FAIL: the thread with a cancel pending was not cancelled at its own cancellation point\n");
        failures++;
    }
    pthread_create(&t, NULL, report, NULL);
    if (!tu_joined(t, &ret, 60)) {
        printf("FAIL: a report after a thread cancelled in one hangs (not done within 60 s)\n");
        return 1;
    }

    long long heaps0 = tu_stat("heaps"), in_use0 = tu_stat("bytes_in_use");
    pthread_t live[LIVE] = { 0 };
    for (unsigned r = 0; r < ROUNDS; r++) {
        unsigned slot = r % LIVE;
        if (r >= LIVE) {
            pthread_cancel(live[slot]);
            if (!tu_joined(live[slot], &ret, 60)) {
                printf("FAIL: a cancelled thread hangs\n");
                return 1;
            }
            if (ret != PTHREAD_CANCELED) {
                printf("FAIL: a worker was not cancelled\n");
                failures++;
            }
            for (unsigned i = 0; i < BLOCKS; i++)
                hak_free(blocks[r - LIVE][i]);
        }
        memset(blocks[r], 0, sizeof blocks[r]);
        pthread_create(&live[slot], NULL, worker, blocks[r]);
        usleep(200);
    }
    for (unsigned r = ROUNDS; r < ROUNDS + LIVE; r++) {
        pthread_cancel(live[r % LIVE]);
        if (!tu_joined(live[r % LIVE], &ret, 60)) {
            printf("FAIL: a cancelled thread hangs\n");
            return 1;
        }
        for (unsigned i = 0; i < BLOCKS; i++)
            hak_free(blocks[r - LIVE][i]);
    }
    hak_collect();
    long long heaps = tu_stat("heaps") - heaps0, in_use = tu_stat("bytes_in_use") - in_use0;
    printf("%d cancelled threads: %lld heaps made, %lld more bytes in use once all was freed\n", ROUNDS, heaps, in_use);
    /* LIVE threads at a time, and a few more while exits and starts overlap. */
    if (heaps > 4 * LIVE) {
        printf("FAIL: cancelled threads' heaps were not reused\n");
        failures++;
    }
    if (in_use > 1 << 20) {
        printf("FAIL: blocks left in use\n");
        failures++;
    }
    return failures != 0;
}
