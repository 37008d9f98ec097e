/* A real-time thread's first malloc while a normal thread on the same CPU
 * holds what it waits for (helper 49): a thread exits, leaving its heap and
 * 32 MB of blocks; the main thread (SCHED_OTHER) frees them, sweeping the
 * exited heap every 4096 blocks; meanwhile a SCHED_FIFO thread starts and
 * pops that heap.  With waits that only yielded, the SCHED_FIFO thread spun
 * until the kernel's real-time throttling stopped it: 950 ms in 3 rounds of
 * 20, and for good where throttling is off (sched_rt_runtime_us = -1).
 * Exit 0: every first malloc took under 500 ms (a loaded machine may take
 * 100; spinning took 950); 77: no SCHED_FIFO here. */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <semaphore.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "hakmem.h"  /* hak_: hakmem's in every build, sanitizers' too */

enum { ROUNDS = 30, BLOCK = 1000, BLOCKS = 32000 };

static void **blocks;
static sem_t go, done;
static double worst;

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

static void *leaver(void *arg)
{
    (void)arg;
    for (int i = 0; i < BLOCKS; i++) {
        blocks[i] = hak_malloc(BLOCK);
        memset(blocks[i], 1, BLOCK);
    }
    return NULL;  /* its heap is abandoned with the blocks in it */
}

static void *realtime(void *arg)
{
    unsigned seed = (unsigned)(long)arg;
    sem_wait(&go);
    struct timespec d = { 0, rand_r(&seed) % 30000000 };  /* somewhere in the frees */
    nanosleep(&d, NULL);
    double t0 = now();
    char *volatile p = hak_malloc(32);
    p[0] = 1;
    double dt = now() - t0;
    hak_free(p);
    if (dt > worst)
        worst = dt;
    sem_post(&done);
    return NULL;
}

int main(void)
{
    /* Every thread on the CPU we run on: the waiter and the holder share it. */
    cpu_set_t one;
    CPU_ZERO(&one);
    CPU_SET(sched_getcpu(), &one);
    if (sched_setaffinity(0, sizeof one, &one) != 0) {
        perror("sched_setaffinity");
        return 99;
    }
    blocks = calloc(BLOCKS, sizeof *blocks);
    sem_init(&go, 0, 0);
    sem_init(&done, 0, 0);
    pthread_attr_t rt;
    struct sched_param sp = { .sched_priority = 10 };
    pthread_attr_init(&rt);
    pthread_attr_setinheritsched(&rt, PTHREAD_EXPLICIT_SCHED);
    pthread_attr_setschedpolicy(&rt, SCHED_FIFO);
    pthread_attr_setschedparam(&rt, &sp);
    for (int r = 0; r < ROUNDS; r++) {
        pthread_t e, t;
        pthread_create(&e, NULL, leaver, NULL);
        pthread_join(e, NULL);
        int err = pthread_create(&t, &rt, realtime, (void *)(long)r);
        if (err == EPERM) {
            printf("SKIP: SCHED_FIFO not permitted here (needs root or CAP_SYS_NICE)\n");
            return 77;
        }
        if (err != 0) {
            printf("pthread_create: %s\n", strerror(err));
            return 99;
        }
        sem_post(&go);
        for (int i = 0; i < BLOCKS; i++)
            hak_free(blocks[i]);
        sem_wait(&done);
        pthread_join(t, NULL);
    }
    printf("rt_wait: worst first malloc of a SCHED_FIFO thread %.2f ms in %d rounds\n", worst * 1e3, ROUNDS);
    if (worst > 0.5) {
        printf("FAIL: over 500 ms: it waited on a normal thread by yielding only\n");
        return 1;
    }
    return 0;
}
