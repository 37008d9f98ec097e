/* fork() from a multi-threaded process through the malloc API itself: the
 * child, holding only the forking thread, must be able to allocate (small
 * and large, and from a new thread), free blocks that the parent's other
 * threads allocated before the fork, fork again, and exit; also fork+exec.
 * Deadlocked children are killed by alarm() and reported. */
#ifdef HAVE_CONFIG_H
#include <config.h>
#endif
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include "testutil.h"

#define WORKERS 3
#define SHARED 256
#define ROUNDS 16
#define CHILD_SECONDS 30 /* a child still running then is deadlocked */

static struct {
    void *p;
    size_t n;
} shared[SHARED];
static pthread_mutex_t shared_lock = PTHREAD_MUTEX_INITIALIZER;
static atomic_int stop;

static size_t pick_size(unsigned *rs)
{
    unsigned r = (unsigned)rand_r(rs);
    if (r % 200 == 0)
        return (256u << 10) + r % (4u << 20);
    return 1 + r % (r % 8 == 0 ? 40000 : 512);
}

/* Workers keep allocating and freeing, and keep swapping blocks into the
 * shared table that a child will free.  Only the first KiB of a block is
 * patterned: the children, not the pattern, are the point. */
#define PATTERNED(n) ((n) < 1024 ? (n) : 1024)
static void *worker(void *arg)
{
    unsigned rs = (unsigned)(uintptr_t)arg;
    void *local[32] = {0};
    while (!atomic_load(&stop)) {
        unsigned slot = (unsigned)rand_r(&rs) % 32;
        free(local[slot]);
        local[slot] = malloc(pick_size(&rs));
        if (!local[slot])
            abort();
        size_t n = pick_size(&rs);
        void *p = malloc(n);
        if (!p)
            abort();
        tu_fill(p, PATTERNED(n), (uintptr_t)p);
        unsigned s = (unsigned)rand_r(&rs) % SHARED;
        pthread_mutex_lock(&shared_lock);
        void *old = shared[s].p;
        size_t oldn = shared[s].n;
        shared[s].p = p;
        shared[s].n = n;
        pthread_mutex_unlock(&shared_lock);
        if (old && tu_check(old, PATTERNED(oldn), (uintptr_t)old) != (size_t)-1) {
            fprintf(stderr, "fork: parent block %p (%zu B) corrupt\n", old, oldn);
            abort();
        }
        free(old);
    }
    for (int i = 0; i < 32; i++)
        free(local[i]);
    return NULL;
}

static void *child_thread(void *arg)
{
    unsigned rs = (unsigned)(uintptr_t)arg;
    for (int i = 0; i < 2000; i++) {
        size_t n = pick_size(&rs);
        char *p = malloc(n);
        if (!p)
            return (void *)1;
        p[0] = p[n - 1] = 1;
        free(p);
    }
    return NULL;
}

static int all_bytes(const unsigned char *p, size_t n, unsigned char v)
{
    unsigned char acc = 0;
    for (size_t i = 0; i < n; i++)
        acc |= p[i] ^ v;
    return acc == 0;
}

/* What a child does; returns its exit status. */
static int child(int round)
{
    alarm(CHILD_SECONDS);
    /* The parent held shared_lock across fork(), so the table is
     * consistent: every block in it was made by another (now absent)
     * thread.  Check it and free it. */
    for (int i = 0; i < SHARED; i++) {
        if (!shared[i].p)
            continue;
        size_t bad = tu_check(shared[i].p, PATTERNED(shared[i].n), (uintptr_t)shared[i].p);
        if (bad != (size_t)-1) {
            fprintf(stderr, "fork child: inherited block %p (%zu B) corrupt at %zu\n",
                    shared[i].p, shared[i].n, bad);
            return 1;
        }
        free(shared[i].p);
    }
    static const size_t sizes[] = {0, 1, 8, 16, 100, 1000, 4096, 20000, 40000, 100000,
                                   1 << 20, 5 << 20, 8 << 20};
    void *p[sizeof sizes / sizeof sizes[0]];
    for (int rep = 0; rep < 4; rep++) {
        for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
            p[i] = rep & 1 ? calloc(1, sizes[i]) : malloc(sizes[i]);
            if (!p[i]) {
                fprintf(stderr, "fork child: allocating %zu failed\n", sizes[i]);
                return 1;
            }
            if (rep & 1 && tu_first_nonzero(p[i], sizes[i]) != (size_t)-1) {
                fprintf(stderr, "fork child: calloc(1, %zu) not zeroed\n", sizes[i]);
                return 1;
            }
            memset(p[i], (int)i + 1, sizes[i]);
        }
        for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
            if (!all_bytes(p[i], sizes[i], (unsigned char)(i + 1))) {
                fprintf(stderr, "fork child: block of %zu corrupt\n", sizes[i]);
                return 1;
            }
            p[i] = realloc(p[i], sizes[i] / 2 + 1);
            free(p[i]);
        }
    }
    pthread_t t;
    void *res;
    if (pthread_create(&t, NULL, child_thread, (void *)(uintptr_t)round) ||
        pthread_join(t, &res) || res) {
        fprintf(stderr, "fork child: a thread in the child failed\n");
        return 1;
    }
    /* A fork from the child: the heap state a fork left must fork again. */
    if (round % 4 == 0) {
        pid_t g = fork();
        if (g == 0) {
            void *q = malloc(12345);
            free(malloc(3 << 20));
            _exit(q ? 0 : 1);
        }
        int st;
        if (g < 0 || waitpid(g, &st, 0) != g || !WIFEXITED(st) || WEXITSTATUS(st)) {
            fprintf(stderr, "fork grandchild failed\n");
            return 1;
        }
    }
    return 0;
}

/* The parent side of one fork: wait for the child and judge it. */
static int reap(pid_t pid, const char *what, int round)
{
    int st;
    while (waitpid(pid, &st, 0) < 0)
        if (errno != EINTR) {
            perror("waitpid");
            return 1;
        }
    if (WIFEXITED(st) && WEXITSTATUS(st) == 0)
        return 0;
    if (WIFSIGNALED(st))
        fprintf(stderr, "fork: %s child of round %d killed by signal %d%s\n", what, round,
                WTERMSIG(st), WTERMSIG(st) == SIGALRM ? " (deadlock: still running after "
                                                        "the alarm)" : "");
    else
        fprintf(stderr, "fork: %s child of round %d exited with %d\n", what, round,
                WEXITSTATUS(st));
    return 1;
}

/* fork while other threads sweep exited threads' heaps: short threads
 * leave blocks that a consumer frees into their exited heaps (which it
 * sweeps), a busy thread ticks; a thread that has no heap yet forks, and
 * the child's first malloc adopts an exited heap.  One the parent was
 * sweeping at the fork stayed held in the child, whose malloc waited for
 * it for good (2% of the forks, session 11). */
#define SWEEP_FORKS 300
#define HANDOFF 1024
static void *volatile handoff[HANDOFF];

static void *ticker(void *arg)
{
    (void)arg;
    while (!atomic_load(&stop)) {
        void *p[64];
        for (int i = 0; i < 64; i++)
            p[i] = malloc(48);
        for (int i = 0; i < 64; i++)
            free(p[i]);
    }
    return NULL;
}

static void *consumer(void *arg)
{
    (void)arg;
    while (!atomic_load(&stop))
        for (int i = 0; i < HANDOFF; i++)
            free(__atomic_exchange_n(&handoff[i], NULL, __ATOMIC_ACQ_REL));
    return NULL;
}

static void *short_thread(void *arg)
{
    uintptr_t n = (uintptr_t)arg;
    char *p = calloc(1, 1 << 20);
    if (p)
        memset(p, 1, 1 << 20);
    free(p);
    for (unsigned k = 0; k < 64; k++)
        free(__atomic_exchange_n(&handoff[(n * 64 + k) % HANDOFF], malloc(k & 1 ? 200000 : 64), __ATOMIC_ACQ_REL));
    return NULL;
}

static void *churner(void *arg)
{
    (void)arg;
    for (uintptr_t n = 0; !atomic_load(&stop); n += 4) {
        pthread_t t[4];
        for (int i = 0; i < 4; i++)
            if (pthread_create(&t[i], NULL, short_thread, (void *)(n + (uintptr_t)i)))
                abort();
        for (int i = 0; i < 4; i++)
            pthread_join(t[i], NULL);
    }
    return NULL;
}

static void *forker(void *arg)
{
    int *failed = arg;
    for (int round = 0; round < SWEEP_FORKS && !*failed; round++) {
        pid_t pid = fork();
        if (pid == 0) {
            alarm(CHILD_SECONDS);
            void *p = malloc(100);  /* this thread's first malloc */
            pthread_t t;
            void *r = NULL;
            if (!p || pthread_create(&t, NULL, child_thread, NULL) || pthread_join(t, &r) || r)
                _exit(1);
            free(p);
            _exit(0);
        }
        if (pid < 0) {
            perror("fork");
            *failed = 1;
            break;
        }
        *failed |= reap(pid, "sweeping", round);
    }
    return NULL;
}

static int fork_during_sweeps(void)
{
    int failed = 0;
    pthread_t t[4];
    void *(*fn[4])(void *) = {ticker, consumer, churner, forker};
    void *arg[4] = {NULL, NULL, NULL, &failed};
    atomic_store(&stop, 0);
    for (int i = 0; i < 4; i++)
        if (pthread_create(&t[i], NULL, fn[i], arg[i])) {
            perror("pthread_create");
            return 1;
        }
    pthread_join(t[3], NULL);
    atomic_store(&stop, 1);
    for (int i = 0; i < 3; i++)
        pthread_join(t[i], NULL);
    for (int i = 0; i < HANDOFF; i++)
        free(handoff[i]);
    return failed;
}

int main(void)
{
#ifdef HK_NO_OVERRIDE
    puts("fork: SKIP: sanitizer build, malloc is not hakmem's (HK_NO_OVERRIDE)");
    return 77;
#endif
    pthread_t t[WORKERS];
    for (int i = 0; i < WORKERS; i++)
        if (pthread_create(&t[i], NULL, worker, (void *)(uintptr_t)(i + 1))) {
            perror("pthread_create");
            return 1;
        }
    int failed = 0;
    for (int round = 0; round < ROUNDS && !failed; round++) {
        usleep(20000); /* let the workers reach a busy state */
        pthread_mutex_lock(&shared_lock);
        pid_t pid = fork();
        if (pid == 0)
            exit(child(round));
        pthread_mutex_unlock(&shared_lock);
        if (pid < 0) {
            perror("fork");
            return 1;
        }
        failed |= reap(pid, "allocating", round);

        /* fork + exec: the child allocates, then replaces itself. */
        pid = fork();
        if (pid == 0) {
            alarm(CHILD_SECONDS);
            char *arg0 = malloc(16);
            if (!arg0)
                _exit(1);
            strcpy(arg0, "true");
            char *argv[] = {arg0, NULL}, *envp[] = {NULL};
            execve("/bin/true", argv, envp);
            _exit(127);
        }
        if (pid < 0) {
            perror("fork");
            return 1;
        }
        failed |= reap(pid, "exec", round);
    }
    atomic_store(&stop, 1);
    for (int i = 0; i < WORKERS; i++)
        pthread_join(t[i], NULL);
    for (int i = 0; i < SHARED; i++)
        free(shared[i].p);
    if (!failed)
        failed = fork_during_sweeps();
    printf("fork: %s\n", failed ? "FAILED" : "ok");
    return failed;
}
