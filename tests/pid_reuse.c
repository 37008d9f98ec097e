/* A process that gets a gone ancestor's pid does not take the heaps fork
 * copied from that ancestor for gone threads' heaps.  Heaps whose owner
 * thread is gone are abandoned for it (lifecycle.c: reap_gone), the owner
 * named by its kernel tid and its process.  Named by pid, the process was
 * wrong here (helper 39): P's thread T takes a heap and forks C, whose
 * main thread goes on with that heap; P exits; C forks W, which gets P's
 * pid.  In W the heap's ids say "thread T of this process", T does not
 * exist, and a new thread of W reaped the heap W's main thread was using:
 * one block went to both threads.  The process is now named by an id that
 * each fork's child makes afresh (lifecycle.c: proc_id).
 * W's main thread and a new thread allocate, fill and check blocks; the
 * new thread must make a heap of its own (the "heaps" count grows).  The
 * pid is steered with /proc/sys/kernel/ns_last_pid (root); the test skips,
 * saying so, where that file cannot be written. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdbool.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include "hakmem.h"
#include "testutil.h"

enum { ROUNDS = 200000, SIZE = 100, TRIES = 1000 };

static int result_fd;  /* W (or C) writes one line here */
static pid_t P;

static void report(const char *fmt, long a, long b)
{
    char line[256];
    int n = snprintf(line, sizeof line, fmt, a, b);
    if (write(result_fd, line, (size_t)n) != n)
        _exit(99);
}

static void *hammer(void *arg)
{
    unsigned char id = (unsigned char)(uintptr_t)arg;
    for (int r = 0; r < ROUNDS; r++) {
        unsigned char *p = hak_malloc(SIZE);
        if (p == NULL)
            _exit(99);
        memset(p, id, SIZE);
        for (int i = 0; i < SIZE; i++)
            if (p[i] != id) {
                report("FAIL: a block of thread %ld was written by another (byte %ld)\n", id, i);
                _exit(1);
            }
        hak_free(p);
    }
    return NULL;
}

static bool set_last_pid(pid_t last)
{
    int fd = open("/proc/sys/kernel/ns_last_pid", O_WRONLY);
    if (fd < 0)
        return false;
    char b[32];
    int n = snprintf(b, sizeof b, "%d", (int)last);
    bool ok = write(fd, b, (size_t)n) == n;
    close(fd);
    return ok;
}

/* In W: P's pid, T's heap in use by the main thread. */
static void w_main(void)
{
    long heaps = tu_stat("heaps");
    pthread_t t;
    if (pthread_create(&t, NULL, hammer, (void *)1) != 0)
        _exit(99);
    hammer((void *)2);
    pthread_join(t, NULL);
    long after = tu_stat("heaps");
    if (after == heaps)
        report("FAIL: W's new thread took a heap in use (heaps %ld before it, %ld after)\n", heaps, after);
    else
        report("ok: W's new thread made its own heap (heaps %ld before it, %ld after)\n", heaps, after);
    _exit(0);
}

/* In C: T's heap is the main thread's; once P is gone, fork W with P's pid. */
static void c_main(void)
{
    while (getppid() == P)
        usleep(1000);
    for (int i = 0; i < TRIES; i++) {
        if (!set_last_pid(P - 1))
            break;
        pid_t w = fork();
        if (w == 0) {
            if (getpid() == P)
                w_main();
            _exit(0);
        }
        int st;
        waitpid(w, &st, 0);
        if (w == P) {
            if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
                report("FAIL: W ended with status %ld (signal %ld)\n", WIFEXITED(st) ? WEXITSTATUS(st) : -1,
                       WIFSIGNALED(st) ? WTERMSIG(st) : 0);
            _exit(0);
        }
    }
    report("SKIP: no child got the old pid %ld in %ld forks\n", P, TRIES);
    _exit(0);
}

static void *idle(void *arg)
{
    return arg;
}

static void *t_main(void *arg)
{
    (void)arg;
    hak_free(hak_malloc(SIZE));  /* T's heap: T of P */
    pid_t c = fork();
    if (c == 0)
        c_main();
    return NULL;
}

int main(void)
{
    int fd = open("/proc/sys/kernel/ns_last_pid", O_WRONLY);
    if (fd < 0) {
        printf("pid_reuse: SKIP: cannot write /proc/sys/kernel/ns_last_pid (needs root): %s\n", strerror(errno));
        return 77;
    }
    close(fd);
    if (tu_stat("heaps") == -1) {
        printf("pid_reuse: SKIP: this build does not count heaps\n");
        return 77;
    }
    int pipefd[2];
    if (pipe(pipefd) != 0)
        return 99;
    result_fd = pipefd[1];
    pid_t p = fork();
    if (p == 0) {
        P = getpid();
        /* A thread first, so that T's tid is P + 2: W's new thread, which
         * the kernel numbers cyclically after W (P), gets P + 1, not T's. */
        pthread_t t;
        if (pthread_create(&t, NULL, idle, NULL) != 0 || pthread_join(t, NULL) != 0)
            _exit(99);
        if (pthread_create(&t, NULL, t_main, NULL) != 0)
            _exit(99);
        pthread_join(t, NULL);
        _exit(0);  /* P's pid is free from here */
    }
    close(pipefd[1]);
    waitpid(p, NULL, 0);
    char line[256] = "";
    struct pollfd pfd = { .fd = pipefd[0], .events = POLLIN };
    if (poll(&pfd, 1, 60000) != 1 || read(pipefd[0], line, sizeof line - 1) <= 0) {
        fprintf(stderr, "pid_reuse: FAIL: no word from the grandchildren within 60 s\n");
        return 1;
    }
    printf("pid_reuse: %s", line);
    if (strncmp(line, "SKIP", 4) == 0)
        return 77;
    return strncmp(line, "ok", 2) == 0 ? 0 : 1;
}
