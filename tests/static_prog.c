/* Linked with -static against libhakmem.a by tests/link.sh: every
 * name of the malloc family this program or libc.a's own objects use must
 * resolve to hakmem, or the link takes glibc's malloc.o and fails on its
 * duplicate malloc.  It calls the extensions too (mallopt, malloc_info,
 * mallinfo2, malloc_trim, malloc_usable_size), and then checks that hakmem
 * counted its allocations: threads freeing each other's blocks, libc's
 * internal ones (strdup, asprintf, open_memstream) and a forked child's. */
#define _GNU_SOURCE
#include <errno.h>
#include <malloc.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/wait.h>
#include "hakmem.h"
#include "testutil.h"

#define THREADS 4
#define PER 20000

static void fail(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("static_prog: FAIL: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    exit(1);
}

/* Each thread fills blocks and hands them to the next thread's slot, and
 * stays until they are freed: had it exited, the freeing threads could
 * adopt its heap, and their frees be local (3 of the 4 heaps once). */
static unsigned char *slots[THREADS][PER];
static pthread_barrier_t filled, freed;

static void *work(void *arg)
{
    size_t t = (size_t)arg;
    for (size_t i = 0; i < PER; i++) {
        size_t size = 16 + (i * 37 + t) % 2000;
        unsigned char *p = malloc(size);
        if (p == NULL)
            fail("malloc(%zu)", size);
        memset(p, (int)(t + 1), size);
        slots[t][i] = p;
    }
    pthread_barrier_wait(&filled);
    pthread_barrier_wait(&freed);
    return NULL;
}

static void *reap(void *arg)
{
    size_t t = ((size_t)arg + 1) % THREADS;
    for (size_t i = 0; i < PER; i++) {
        size_t size = 16 + (i * 37 + t) % 2000;
        unsigned char *p = slots[t][i];
        if (malloc_usable_size(p) < size || p[0] != t + 1 || p[size - 1] != t + 1)
            fail("block %zu of thread %zu changed", i, t);
        free(p);
    }
    return NULL;
}

static void start(pthread_t *th, void *(*fn)(void *))
{
    for (size_t t = 0; t < THREADS; t++)
        if (pthread_create(&th[t], NULL, fn, (void *)t) != 0)
            fail("pthread_create");
}

static void join(pthread_t *th)
{
    for (size_t t = 0; t < THREADS; t++)
        pthread_join(th[t], NULL);
}

int main(void)
{
    if (mallopt(M_MMAP_THRESHOLD, 4096) != 1 || mallopt(M_ARENA_MAX, 1) != 1)
        fail("mallopt refused");
    if (tu_stat("malloc") == -2 || tu_stat("free_remote") == -2)
        fail("no malloc or free_remote in the statistics");
    bool counting = tu_stat("malloc") >= 0; /* -1: a build that keeps no counters */
    if (!counting)
        puts("static_prog: this build keeps no counters: which malloc ran is not checked");
    long long before = tu_stat("malloc");
    pthread_t workers[THREADS], reapers[THREADS];
    pthread_barrier_init(&filled, NULL, THREADS + 1);
    pthread_barrier_init(&freed, NULL, THREADS + 1);
    start(workers, work);
    pthread_barrier_wait(&filled);
    start(reapers, reap);
    join(reapers);
    pthread_barrier_wait(&freed);
    join(workers);
    if (counting && tu_stat("malloc") - before < THREADS * PER)
        fail("hakmem counted %lld of %d mallocs", tu_stat("malloc") - before, THREADS * PER);
    if (counting && tu_stat("free_remote") < THREADS * PER / 2)
        fail("only %lld remote frees", tu_stat("free_remote"));

    /* libc's own allocations go through the same malloc. */
    before = tu_stat("malloc");
    char *s = strdup("hakmem");
    char *t = NULL;
    if (s == NULL || asprintf(&t, "%s-%d", s, 42) < 0 || strcmp(t, "hakmem-42") != 0)
        fail("strdup/asprintf");
    char *text = NULL;
    size_t len = 0;
    FILE *mem = open_memstream(&text, &len);
    if (mem == NULL || malloc_info(0, mem) != 0 || fclose(mem) != 0)
        fail("malloc_info");
    if (strstr(text, "allocator=\"hakmem\"") == NULL)
        fail("malloc_info wrote %s", text);
    if (counting && tu_stat("malloc") - before < 3)
        fail("libc's allocations were not hakmem's");
    free(s);
    free(t);
    free(text);

    void *a = NULL;
    if (posix_memalign(&a, 4096, 100) != 0 || ((size_t)a & 4095) != 0)
        fail("posix_memalign");
    free(a);
    void *big = malloc(64 << 20);
    __asm__ volatile("" : : "r"(big) : "memory"); /* or the compiler drops the pair */
    if (big == NULL || mallinfo2().hblks < 1)
        fail("large block");
    memset(big, 7, 64 << 20);
    free(big);
    malloc_trim(0);

    pid_t pid = fork();
    if (pid < 0)
        fail("fork: %s", strerror(errno));
    if (pid == 0) {
        /* Counts reach the statistics in batches of up to 128 a class. */
        long long in_child = tu_stat("malloc");
        for (int i = 0; i < 4096; i++) {
            char *c = malloc(100);
            strcpy(c, "child");
            __asm__ volatile("" : : "r"(c) : "memory"); /* or the compiler drops the pair */
            free(c);
        }
        _exit(!counting || tu_stat("malloc") - in_child >= 4096 - 128 ? 0 : 3);
    }
    int status;
    if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status) || WEXITSTATUS(status) != 0)
        fail("the child's malloc was not hakmem's (status %d)", status);
    puts("static_prog: ok");
    return 0;
}
