/* Helper for badfree.sh: prints the pointer it is about to misuse, then
 * misuses it as argv[1] says.  hakmem must abort with a message naming that
 * pointer; reaching the end of main is a failure. */
#ifdef HAVE_CONFIG_H
#include <config.h>
#endif
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>
#include "hakmem.h"

/* The malloc API is what programs use; sanitizer builds only have hak_*. */
#ifdef HK_NO_OVERRIDE
#define MALLOC hak_malloc
#define FREE hak_free
#define REALLOC hak_realloc
#else
#define MALLOC malloc
#define FREE free
#define REALLOC realloc
#endif

/* Hides where a pointer came from, so the compiler neither warns about nor
 * optimises away the misuse. */
static void *launder(void *p)
{
    void *volatile v = p;
    return v;
}

static void *announce(void *p)
{
    printf("%p\n", p);
    fflush(stdout);
    return launder(p);
}

static char global[64];

/* Frees the block it is given twice, from a thread that does not own it:
 * the second free finds it in this thread's remote-block cache, or (with
 * HAKMEM_REMOTE_CACHE=0) on its owner's inbox, or (the quiet variant) at
 * the head of this thread's batch for the owner. */
static void *free_twice(void *p)
{
    FREE(p);
    FREE(announce(p));
    return NULL;
}

/* The same, back to back: no allocation between the frees (announce's
 * printf allocates) that would send the first one on its way. */
static void *free_twice_quiet(void *p)
{
    announce(p);
    FREE(p);
    FREE(p);
    return NULL;
}

/* Frees its two blocks, then the first again, back to back: with the cache
 * off, the second free of the first finds it inside this thread's batch for
 * the owner, one block further down (linked again, it would cut the other
 * block out of the chain). */
static void *free_between(void *arg)
{
    void **p = arg;
    announce(p[0]);
    FREE(p[0]);
    FREE(p[1]);
    FREE(p[0]);
    return NULL;
}

/* Frees p[0], then enough other blocks of the same owner to send the batch
 * holding it on its way (HAKMEM_REMOTE_BATCH is at most 64), then p[0]
 * again: linked into a new batch, it would close the owner's inbox into a
 * cycle. */
static void *free_after_left(void *arg)
{
    void **p = arg;
    announce(p[0]);
    FREE(p[0]);
    for (int i = 1; i <= 64; i++)
        FREE(p[i]);
    FREE(p[0]);
    return NULL;
}

/* A class the remote-block cache keeps: its blocks own their cache lines
 * (slab.c: rc_keeps); a 48-byte block freed by another thread goes home
 * batched unless HAKMEM_REMOTE_CACHE_SHARED_LINES is set. */
enum { CACHED = 64 };

/* Another thread's blocks of one size, freed by the main thread (owned). */
enum { OWNED = 16 };
static void *owned[OWNED];
static void *alloc_owned(void *size)
{
    for (int i = 0; i < OWNED; i++)
        owned[i] = MALLOC((size_t)(uintptr_t)size);
    return NULL;
}

static void *free_once(void *p)
{
    FREE(p);
    return NULL;
}

/* The main thread, owner of the blocks freed twice, allocates until it
 * takes its inbox (on its next slow path), where it finds a second free
 * that reached it without being caught at the free itself. */
static void owner_takes_inbox(void)
{
    for (int i = 0; i < 100000; i++)
        FREE(launder(MALLOC(48)));
    launder(MALLOC(1 << 20));
}

/* Two threads free the same block, the first still alive, with the block
 * in its cache or its batch, while the second frees it. */
static pthread_barrier_t two_freed;
static void *free_once_hold(void *p)
{
    FREE(p);
    pthread_barrier_wait(&two_freed);  /* freed */
    pthread_barrier_wait(&two_freed);  /* never: the process ends first */
    return NULL;
}

/* Every pointer is announced before its first free: printing allocates,
 * and a block freed already (a unit block's units go back at once) could
 * come back as the buffer -- freed again then, it would be a live block. */
static int free_by_two(size_t size)
{
    pthread_t a, b;
    void *p = announce(MALLOC(size));
    pthread_barrier_init(&two_freed, NULL, 2);
    if (pthread_create(&a, NULL, free_once_hold, p) != 0)
        return 2;
    pthread_barrier_wait(&two_freed);
    if (pthread_create(&b, NULL, free_once, p) != 0)
        return 2;
    pthread_join(b, NULL);
    return 0;
}

/* The block's owner and another thread free it, one after the other.  Its
 * words are odd (program data that could pass for a key).  remote_then_owner:
 * the other thread first, alive (the block in its cache or batch) or gone
 * (the block on the owner's inbox); then the owner.  owner_then_remote: the
 * owner first (the block on its slab's list), then the other thread.
 * Linked in twice, the block was handed out twice, or the owner's list
 * went into another thread's batch: SIGSEGV some allocations later. */
static int remote_then_owner(size_t size, int hold)
{
    pthread_t t;
    void *p = announce(memset(MALLOC(size), 1, size));
    pthread_barrier_init(&two_freed, NULL, 2);
    if (pthread_create(&t, NULL, hold ? free_once_hold : free_once, p) != 0)
        return 2;
    if (hold)
        pthread_barrier_wait(&two_freed);
    else
        pthread_join(t, NULL);
    FREE(p);
    return 0;
}

static void *free_when_told(void *p)
{
    pthread_barrier_wait(&two_freed);
    FREE(p);
    return NULL;
}

/* The thread is started first: starting it may allocate. */
static int owner_then_remote(size_t size)
{
    pthread_t t;
    void *p = announce(memset(MALLOC(size), 1, size));
    pthread_barrier_init(&two_freed, NULL, 2);
    if (pthread_create(&t, NULL, free_when_told, p) != 0)
        return 2;
    FREE(p);
    pthread_barrier_wait(&two_freed);
    pthread_join(t, NULL);
    return 0;
}

/* Another thread frees 200 blocks of the owner's current slab (run with
 * HAKMEM_REMOTE_CACHE=0: every free batched) and exits; the owner
 * allocates 100 more, which takes the 200 back onto its slab's list once
 * the blocks carved before are gone.  Then one of the 200 not handed out
 * again is freed again, by the owner or (remote) by a third thread: the
 * mark its first free left in it (kept by a list taken back whole) must
 * still tell it is free. */
static void *free_all(void *arg)
{
    void **p = arg;
    for (int i = 0; i < 200; i++)
        FREE(p[i]);
    return NULL;
}

static int taken_back(int remote)
{
    pthread_t t;
    void *p[200], *q[100];
    for (int i = 0; i < 200; i++)
        p[i] = memset(MALLOC(48), 1, 48);
    if (pthread_create(&t, NULL, free_all, p) != 0)
        return 2;
    pthread_join(t, NULL);
    for (int i = 0; i < 100; i++)
        q[i] = launder(MALLOC(48));
    void *victim = NULL;
    for (int i = 0; i < 200 && victim == NULL; i++) {
        victim = p[i];
        for (int j = 0; j < 100; j++)
            if (q[j] == p[i])
                victim = NULL;
    }
    if (remote) {
        if (pthread_create(&t, NULL, free_once, announce(victim)) != 0)
            return 2;
        pthread_join(t, NULL);
    } else {
        FREE(announce(victim));
    }
    return 0;
}

/* As taken_back, for blocks of a slab that is no longer current: the
 * owner fills it and goes on to others, frees one of its blocks (the slab
 * joins the partial list), and another thread frees 63 more, which reach
 * the owner's inbox as one chain (run with HAKMEM_REMOTE_CACHE=0).  The
 * owner allocates another class until its ticker takes the inbox, which
 * splices the chain onto the slab's list whole (free.c: hk_inbox_process).
 * Then one of the 63 is freed again, by the owner or by a third thread. */
enum { INBOX_BLOCKS = 20000 };
static void *inbox_p[INBOX_BLOCKS];
static void *free_63(void *arg)
{
    (void)arg;
    for (int i = 1; i < 64; i++)
        FREE(inbox_p[i]);
    return NULL;
}

static int inbox_back(int remote)
{
    pthread_t t;
    for (int i = 0; i < INBOX_BLOCKS; i++)
        inbox_p[i] = memset(MALLOC(48), 1, 48);
    FREE(inbox_p[0]);
    if (pthread_create(&t, NULL, free_63, NULL) != 0)
        return 2;
    pthread_join(t, NULL);
    for (int i = 0; i < 20000; i++)
        FREE(launder(MALLOC(100)));
    if (remote) {
        if (pthread_create(&t, NULL, free_once, announce(inbox_p[5])) != 0)
            return 2;
        pthread_join(t, NULL);
    } else {
        FREE(announce(inbox_p[5]));
    }
    return 0;
}

/* These modes must be caught at the second free itself: after it, nothing
 * runs that could find the block twice later (the owner's inbox walk, a
 * thread's exit). */
static void survived_now(void)
{
    printf("survived\n");
    fflush(stdout);
    _exit(0);
}

int main(int argc, char **argv)
{
    char stack[64];
    const char *mode = argc > 1 ? argv[1] : "";
    memset(stack, 0, sizeof stack);

    if (!strcmp(mode, "stack")) {
        FREE(announce(stack));
    } else if (!strcmp(mode, "global")) {
        FREE(announce(global + 16));
    } else if (!strcmp(mode, "interior-small")) {
        char *p = MALLOC(64);
        FREE(announce(p + 16));
    } else if (!strcmp(mode, "interior-large")) {
        char *p = MALLOC(4 << 20);
        FREE(announce(p + 3 * 4096));
    } else if (!strcmp(mode, "mmap")) {
        void *p = mmap(NULL, 1 << 16, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (p == MAP_FAILED)
            return 2;
        FREE(announce(p));
    } else if (!strcmp(mode, "low-address")) {
        FREE(announce((void *)(uintptr_t)0x1000));
    } else if (!strcmp(mode, "realloc-stack")) {
        launder(REALLOC(announce(stack), 100));
    } else if (!strcmp(mode, "realloc-interior")) {
        char *p = MALLOC(64);
        launder(REALLOC(announce(p + 8), 100));
    } else if (!strcmp(mode, "free-unit")) {
        /* The last 64 KiB unit of the block's 2 MiB SuperSlab, which this
         * small process never makes a slab of: ours by the map, but no
         * block there (its descriptor has zero bounds). */
        char *p = MALLOC(64);
        uintptr_t ss = (uintptr_t)p & ~(((uintptr_t)2 << 20) - 1);
        FREE(announce((void *)(ss + 31 * ((uintptr_t)64 << 10) + 128)));
    } else if (!strcmp(mode, "double-small")) {
        void *p = MALLOC(32);
        FREE(p);
        FREE(announce(p));
    } else if (!strcmp(mode, "double-own-cached")) {
        /* Another thread's blocks, freed here, fill our cache of their
         * class until it is installed (8 blocks, HK_RC_INSTALL) but not
         * full (its cap: 16, HAKMEM_REMOTE_CACHE's default; until session
         * 23 all 16 were freed, the full cache sent our block to its slab's
         * list, and the test found the slab's key, not the cache's); our
         * own block, freed then, joins them in the cache, and its second
         * free finds the cache's key there. */
        pthread_t t;
        void *p = MALLOC(CACHED);
        if (pthread_create(&t, NULL, alloc_owned, (void *)(uintptr_t)CACHED) != 0)
            return 2;
        pthread_join(t, NULL);
        for (int i = 0; i < 12; i++)
            FREE(owned[i]);
        FREE(p);
        FREE(announce(p));
    } else if (!strcmp(mode, "double-tiny")) {
        /* 1 to 8 B share the 16-byte class, key word and all: until
         * session 21 an 8-byte class kept no key and its double frees
         * linked the block in twice. */
        void *p = MALLOC(8);
        FREE(p);
        FREE(announce(p));
    } else if (!strcmp(mode, "double-remote-tiny")) {
        pthread_t t;
        void *p = MALLOC(1);
        if (pthread_create(&t, NULL, free_twice, p) != 0)
            return 2;
        pthread_join(t, NULL);
        owner_takes_inbox();
    } else if (!strcmp(mode, "double-remote") || !strcmp(mode, "double-remote-quiet")) {
        pthread_t t;
        void *p = MALLOC(CACHED);
        if (pthread_create(&t, NULL, strcmp(mode, "double-remote") ? free_twice_quiet : free_twice, p) != 0)
            return 2;
        pthread_join(t, NULL);
        owner_takes_inbox();
    } else if (!strcmp(mode, "double-remote-between")) {
        pthread_t t;
        void *p[2] = { MALLOC(CACHED), MALLOC(CACHED) };
        if (pthread_create(&t, NULL, free_between, p) != 0)
            return 2;
        pthread_join(t, NULL);
        owner_takes_inbox();
    } else if (!strcmp(mode, "double-remote-left")) {
        /* 4 KiB: above the remote-block cache's classes, every remote free
         * is batched. */
        pthread_t t;
        void *p[65];
        for (int i = 0; i < 65; i++)
            p[i] = MALLOC(4096);
        if (pthread_create(&t, NULL, free_after_left, p) != 0)
            return 2;
        pthread_join(t, NULL);
        survived_now();
    } else if (!strcmp(mode, "double-remote-two")) {
        if (free_by_two(CACHED) != 0)
            return 2;
        survived_now();
    } else if (!strcmp(mode, "double-remote-two-large") || !strcmp(mode, "double-remote-two-unit")) {
        if (free_by_two(mode[18] == 'l' ? 4096 : 300000) != 0)
            return 2;
        survived_now();
    } else if (!strncmp(mode, "double-then-owner", 17) || !strncmp(mode, "double-owner-first", 18)) {
        /* -medium: a 64 KiB block, -unit: a unit block; -gone: the other
         * thread exits first. */
        size_t size = strstr(mode, "-medium") ? 65536 : strstr(mode, "-unit") ? 300000 : CACHED;
        if ((mode[7] == 't' ? remote_then_owner(size, !strstr(mode, "-gone")) : owner_then_remote(size)) != 0)
            return 2;
        survived_now();
    } else if (!strcmp(mode, "double-taken-back") || !strcmp(mode, "double-taken-back-remote")) {
        if (taken_back(mode[17] != 0) != 0)
            return 2;
        survived_now();
    } else if (!strcmp(mode, "double-inbox") || !strcmp(mode, "double-inbox-remote")) {
        if (inbox_back(mode[12] != 0) != 0)
            return 2;
        survived_now();
    } else if (!strcmp(mode, "double-large") || !strcmp(mode, "double-unit")) {
        void *p = announce(MALLOC(mode[7] == 'l' ? 8 << 20 : 300000));
        FREE(p);
        FREE(p);
    } else {
        fprintf(stderr, "usage: badfree stack|global|interior-small|interior-large|mmap|low-address|"
                        "realloc-stack|realloc-interior|free-unit|double-small|double-own-cached|double-tiny|double-remote[-tiny]|double-remote-quiet|\n"
                        "double-remote-between|double-remote-left|double-remote-two|double-remote-two-large|double-remote-two-unit|\n"
                        "double-large|double-unit|double-then-owner[-medium|-unit][-gone]|double-owner-first[-medium|-unit]|\n"
                        "double-taken-back[-remote]|double-inbox[-remote]\n");
        return 2;
    }
    printf("survived\n");
    return 0;
}
