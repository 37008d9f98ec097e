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
 * (each thread's 2 MB stayed, 200 MB in all). */
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "hakmem.h"
#include "testutil.h"

enum { THREADS = 100, BLOCKS = 2000, BLOCK = 1000, MAX_HEAPS = 8, SLACK = 16 << 20 };

static pthread_key_t key;
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
    printf("gone_threads: ok\n");
    return 0;
}
