/* A broken allocator for tests/dup_check.sh, preloaded over the real one:
 * every 1000th malloc returns the block the previous malloc returned, while
 * that block is still live and large enough, so two owners hold one block;
 * the first of its two frees is swallowed, so the block stays valid memory
 * and only the second owner's writes can give the fault away. Everything
 * else goes to the next allocator (dlsym RTLD_NEXT). The workloads under
 * test call malloc and free only: realloc of a doubly owned block is not
 * handled. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#define DUP_EVERY 1000
#define DUP_MAX 4096 /* doubly owned blocks at a time; more are not doubled */

static void *(*next_malloc)(size_t);
static void (*next_free)(void *);
static void *(*next_calloc)(size_t, size_t);
static void *(*next_realloc)(void *, size_t);

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static uint64_t mallocs;
static void *last;           /* the block malloc returned last, while live */
static size_t last_size;
static void *doubled[DUP_MAX]; /* blocks with two owners */
static size_t ndoubled;

/* dlsym may allocate (its error buffer) before the next allocator is
 * known: served from here, never freed. */
static _Alignas(16) unsigned char boot[4096];
static size_t boot_used;
static int resolving;

static void resolve(void)
{
    resolving = 1;
    next_malloc = dlsym(RTLD_NEXT, "malloc");
    next_free = dlsym(RTLD_NEXT, "free");
    next_calloc = dlsym(RTLD_NEXT, "calloc");
    next_realloc = dlsym(RTLD_NEXT, "realloc");
    resolving = 0;
}

static int in_boot(const void *p)
{
    return (const unsigned char *)p >= boot && (const unsigned char *)p < boot + sizeof boot;
}

static void *boot_alloc(size_t n, size_t size)
{
    size_t bytes;
    if (__builtin_mul_overflow(n, size, &bytes) || bytes > sizeof boot - boot_used)
        return NULL;
    void *p = boot + boot_used;
    boot_used += (bytes + 15) & ~(size_t)15;
    return p; /* static storage: already zero */
}

void *malloc(size_t size)
{
    if (resolving)
        return boot_alloc(1, size);
    if (!next_malloc)
        resolve();
    pthread_mutex_lock(&lock);
    if (++mallocs % DUP_EVERY == 0 && last && size <= last_size && ndoubled < DUP_MAX) {
        void *p = last;
        doubled[ndoubled++] = p;
        last = NULL; /* one second owner per block */
        pthread_mutex_unlock(&lock);
        return p;
    }
    pthread_mutex_unlock(&lock);
    void *p = next_malloc(size);
    pthread_mutex_lock(&lock);
    last = p;
    last_size = size;
    pthread_mutex_unlock(&lock);
    return p;
}

void free(void *p)
{
    if (!p || in_boot(p))
        return;
    pthread_mutex_lock(&lock);
    if (p == last)
        last = NULL;
    for (size_t i = 0; i < ndoubled; i++)
        if (doubled[i] == p) {
            doubled[i] = doubled[--ndoubled];
            pthread_mutex_unlock(&lock);
            return; /* the other owner frees it */
        }
    pthread_mutex_unlock(&lock);
    next_free(p);
}

void *calloc(size_t n, size_t size)
{
    if (resolving)
        return boot_alloc(n, size);
    if (!next_calloc)
        resolve();
    return next_calloc(n, size);
}

void *realloc(void *p, size_t size)
{
    if (!next_realloc)
        resolve();
    if (in_boot(p)) {
        size_t room = (size_t)(boot + sizeof boot - (unsigned char *)p);
        void *q = malloc(size);
        if (q)
            memcpy(q, p, size < room ? size : room);
        return q;
    }
    pthread_mutex_lock(&lock);
    if (p == last) /* it may move or go */
        last = NULL;
    pthread_mutex_unlock(&lock);
    return next_realloc(p, size);
}
