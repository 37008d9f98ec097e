/* A thread that only frees other threads' blocks never runs the allocation
 * ticker, yet the blocks it keeps in its remote-block cache must still go
 * home after the decommit delay: its cache's overflows look at the clock.
 * The main thread makes 16 blocks of 1024 bytes and 4000 of 32 bytes.  The
 * consumer frees 64 of the small ones first, which go home one by one (a
 * thread takes a heap only after that many frees: free.c,
 * HK_HEAPLESS_FREES), then the large ones, which it keeps (its cap is 16),
 * then the other small ones, in chunks over three delays, which keep
 * overflowing.  Once it is done,
 * taking the main thread's inbox must empty the large blocks' slab and one
 * of the small ones' (the consumer's last cached small blocks may pin the
 * other).  A standalone program: the test needs a process whose threads are
 * all its own. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>
#include "hakmem.h"
#include "testutil.h"

enum { BIG = 1024, NBIG = 16, SMALL = 32, NSMALL = 4000, WARM = 64, CHUNKS = 16, SLAB = 64 << 10 };
static void *big[NBIG], *small[NSMALL];
static pthread_barrier_t bar;

static void *consumer(void *arg)
{
    (void)arg;
    for (int i = 0; i < WARM; i++)
        hak_free(small[i]);
    for (int i = 0; i < NBIG; i++)
        hak_free(big[i]);
    for (int c = 0; c < CHUNKS; c++) {
        for (int i = WARM + c * (NSMALL - WARM) / CHUNKS; i < WARM + (c + 1) * (NSMALL - WARM) / CHUNKS; i++)
            hak_free(small[i]);
        usleep(50000);  /* 16 x 50 ms: three delays of 250 ms */
    }
    pthread_barrier_wait(&bar);  /* 1: done freeing */
    pthread_barrier_wait(&bar);  /* 2: counted */
    return NULL;
}

int main(void)
{
    if (getenv("HAKMEM_REMOTE_CACHE") || getenv("HAKMEM_REMOTE_BATCH") || getenv("HAKMEM_PROFILE") ||
        getenv("HAKMEM_DECOMMIT_DELAY_MS")) {
        printf("consumer: SKIP: a HAKMEM_ option that changes the cache is set; the test needs its defaults\n");
        return 77;
    }
    if (tu_stat("bytes_in_use") < 0) {
        printf("consumer: SKIP: this build does not count bytes_in_use\n");
        return 77;
    }
    for (int i = 0; i < NBIG; i++)
        big[i] = hak_malloc(BIG);
    for (int i = 0; i < NSMALL; i++)
        small[i] = hak_malloc(SMALL);
    pthread_t t;
    pthread_barrier_init(&bar, NULL, 2);
    if (pthread_create(&t, NULL, consumer, NULL) != 0)
        return 99;
    pthread_barrier_wait(&bar);
    long long done = tu_stat("bytes_in_use");
    hak_collect();  /* our inbox: the blocks the consumer sent home; empty slabs go */
    long long collected = tu_stat("bytes_in_use");
    pthread_barrier_wait(&bar);
    pthread_join(t, NULL);
    hak_collect();  /* what the consumer's cache held until its exit sent it home */
    long long after_exit = tu_stat("bytes_in_use");
    printf("consumer: bytes_in_use %lld once the consumer freed everything, %lld after taking the inbox, "
           "%lld after its exit\n", done, collected, after_exit);
    int failed = 0;
    if (collected > done - 2 * SLAB) {
        fprintf(stderr, "consumer: FAIL: fewer than two slabs came back: the consumer's cache did not go home\n");
        failed = 1;
    }
    /* Its last small blocks may pin one slab until it exits; the large
     * ones, cached first, must have gone home on time. */
    if (collected - after_exit > SLAB) {
        fprintf(stderr, "consumer: FAIL: the consumer's exit freed %lld bytes of slabs: its cache held more than "
                "its last blocks\n", collected - after_exit);
        failed = 1;
    }
    if (failed)
        return 1;
    printf("consumer: ok\n");
    return 0;
}
