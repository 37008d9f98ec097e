/* Threads whose only calls into hakmem come after their TSD destructors:
 * glibc frees the DTVs of cached thread stacks (calloc'ed by the thread
 * that made them) from an exiting detached thread once its stack cache is
 * over its limit, after that thread's destructors ran.  Such frees must not
 * give the exiting thread a heap, which no destructor would hand back: idle
 * detached threads left one heap each, and one that took an exited
 * thread's abandoned heap kept all its blocks' memory (free.c:
 * HK_HEAPLESS_FREES).  Needs hakmem as the process's malloc (glibc's own
 * frees); skips in the sanitizer builds, which do not replace it. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "hakmem.h"
#include "testutil.h"

enum { IDLE = 8, ROUNDS = 40, ADOPT_ROUNDS = 5, BLOCKS = 20000, BLOCK = 1000 };

static pthread_barrier_t bar;
static void *blocks[BLOCKS];
static int failures;

#define CHECK(cond, ...) do { if (!(cond)) { fprintf(stderr, "detached: FAIL: " __VA_ARGS__); \
    fprintf(stderr, "\n"); failures++; } } while (0)

/* Calls nothing of ours: its only frees are glibc's, on its way out. */
static void *idle(void *arg)
{
    pthread_barrier_wait(&bar);
    return arg;
}

/* Leaves BLOCKS blocks for the main thread; its heap is abandoned at exit. */
static void *worker(void *arg)
{
    for (int i = 0; i < BLOCKS; i++) {
        blocks[i] = hak_malloc(BLOCK);
        if (blocks[i] == NULL)
            abort();
        memset(blocks[i], 1, BLOCK);
    }
    return arg;
}

/* IDLE detached threads with 16 MiB stacks (glibc caches 40 MiB of stacks,
 * so their exits free the older ones), then time for them to finish. */
static void idle_round(void)
{
    pthread_attr_t at;
    pthread_attr_init(&at);
    pthread_attr_setdetachstate(&at, PTHREAD_CREATE_DETACHED);
    pthread_attr_setstacksize(&at, 16 << 20);
    for (int i = 0; i < IDLE; i++) {
        pthread_t t;
        if (pthread_create(&t, &at, idle, NULL) != 0) {
            perror("detached: pthread_create");
            exit(99);
        }
    }
    pthread_barrier_wait(&bar);
    pthread_attr_destroy(&at);
    usleep(20000);
}

int main(void)
{
    Dl_info ours, theirs;
    if (!dladdr((void *)hak_malloc, &ours) || !dladdr(dlsym(RTLD_DEFAULT, "malloc"), &theirs) ||
        ours.dli_fbase != theirs.dli_fbase) {
        printf("detached: SKIP: malloc is not hakmem's in this build (sanitizer): glibc's frees do not reach it\n");
        return 77;
    }
    pthread_barrier_init(&bar, NULL, IDLE + 1);

    long long frees = tu_stat("free"), heaps = tu_stat("heaps");
    for (int r = 0; r < ROUNDS; r++)
        idle_round();
    long long late = tu_stat("free") - frees, made = tu_stat("heaps") - heaps;
    if (frees < 0) {
        printf("detached: %d idle detached threads: %lld heaps made (frees not counted in this build: whether "
               "glibc freed through hakmem is not known)\n", IDLE * ROUNDS, made);
    } else {
        printf("detached: %d idle detached threads: %lld frees by glibc, %lld heaps made\n", IDLE * ROUNDS, late, made);
        if (late == 0) {
            printf("detached: SKIP: glibc freed nothing through hakmem from exiting threads here\n");
            return 77;
        }
    }
    CHECK(made == 0, "%lld heaps made by threads that never allocated", made);

    /* An exited thread's abandoned heap, which such a thread would adopt. */
    long long first = 0, last = 0;
    for (int r = 0; r < ADOPT_ROUNDS; r++) {
        pthread_t w;
        if (pthread_create(&w, NULL, worker, NULL) != 0 || pthread_join(w, NULL) != 0)
            return 99;
        idle_round();
        for (int i = 0; i < BLOCKS; i++)
            hak_free(blocks[i]);
        hak_collect();
        last = tu_stat("bytes_committed");
        if (r == 0)
            first = last;
    }
    printf("detached: committed after the first round %lld KiB, after %d: %lld KiB\n", first / 1024, ADOPT_ROUNDS,
           last / 1024);
    /* A heap kept by a dead thread holds a round's 20 MB. */
    CHECK(last <= first + (4 << 20), "committed bytes grew from %lld to %lld KiB", first / 1024, last / 1024);
    if (failures == 0)
        printf("detached: ok\n");
    return failures ? 1 : 0;
}
