/* hakmem-bench-sampler.so: a sampling profiler to preload ahead of the
 * allocator (hakmem-bench profile).  It needs neither hardware performance
 * counters (these machines have none) nor perf (whose software cpu-clock
 * event works here, where the package linux-perf is installed): it takes
 * the instruction pointer of every thread every ~1 ms of that thread's CPU
 * time (a POSIX CPU-time timer per thread, delivering
 * SIGPROF to it; the kernel's tick bounds the rate, 250/s here) and writes
 * them at exit, with /proc/self/maps, to $HAKMEM_BENCH_SAMPLES.<pid>.  The
 * tool symbolizes them.  Samples in system calls land on the user-space
 * instruction after the call, page faults on the faulting one.
 *
 * The handler only stores into a static array; the rest runs outside
 * signal context.  Threads are armed through a pthread_create wrapper, the
 * main thread by the constructor. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <ucontext.h>
#include <unistd.h>

#define MAX_SAMPLES (1u << 22) /* 32 MiB of addresses: hours at 250 samples/s per thread */
#define PERIOD_NS 1000000L

static unsigned long samples[MAX_SAMPLES];
static unsigned long taken;      /* may exceed MAX_SAMPLES: the excess is counted, not kept */
static int armed_ok = 1;         /* cleared once timer_create fails (per-process timer limit) */

static void on_sigprof(int sig, siginfo_t *si, void *ctx)
{
    (void)sig;
    (void)si;
    unsigned long i = __atomic_fetch_add(&taken, 1, __ATOMIC_RELAXED);
    if (i < MAX_SAMPLES)
        samples[i] = (unsigned long)((ucontext_t *)ctx)->uc_mcontext.gregs[REG_RIP];
}

/* A CPU-time timer of the calling thread, delivering SIGPROF to it. */
static int arm(timer_t *t)
{
    struct sigevent ev;
    memset(&ev, 0, sizeof ev);
    ev.sigev_notify = SIGEV_THREAD_ID;
    ev.sigev_signo = SIGPROF;
    ev._sigev_un._tid = (pid_t)syscall(SYS_gettid);
    if (!__atomic_load_n(&armed_ok, __ATOMIC_RELAXED) || timer_create(CLOCK_THREAD_CPUTIME_ID, &ev, t) != 0) {
        __atomic_store_n(&armed_ok, 0, __ATOMIC_RELAXED);
        return -1;
    }
    struct itimerspec its = {{0, PERIOD_NS}, {0, PERIOD_NS}};
    timer_settime(*t, 0, &its, NULL);
    return 0;
}

struct start {
    void *(*fn)(void *);
    void *arg;
};

static void *thread_start(void *p)
{
    struct start s = *(struct start *)p;
    free(p);
    timer_t t;
    int ok = arm(&t) == 0;
    void *r = s.fn(s.arg);
    if (ok)  /* thread churn would otherwise run into the process's timer limit */
        timer_delete(t);
    return r;
}

int pthread_create(pthread_t *th, const pthread_attr_t *attr, void *(*fn)(void *), void *arg)
{
    static int (*real)(pthread_t *, const pthread_attr_t *, void *(*)(void *), void *);
    if (real == NULL)
        real = (int (*)(pthread_t *, const pthread_attr_t *, void *(*)(void *), void *))dlsym(RTLD_NEXT,
                                                                                           "pthread_create");
    struct start *s = malloc(sizeof *s);
    if (s == NULL)
        return real(th, attr, fn, arg);  /* unsampled, but the program runs */
    s->fn = fn;
    s->arg = arg;
    int rc = real(th, attr, thread_start, s);
    if (rc != 0)
        free(s);
    return rc;
}

__attribute__((constructor)) static void sampler_start(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = on_sigprof;
    sa.sa_flags = SA_SIGINFO | SA_RESTART;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGPROF, &sa, NULL);
    timer_t t;
    arm(&t);
}

static void write_all(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w <= 0)
            return;
        p += w;
        n -= (size_t)w;
    }
}

/* Text, one hexadecimal address per line, then "maps" and the maps. */
__attribute__((destructor)) static void sampler_stop(void)
{
    const char *out = getenv("HAKMEM_BENCH_SAMPLES");
    if (out == NULL)
        return;
    signal(SIGPROF, SIG_IGN);
    char path[4096], line[64];
    snprintf(path, sizeof path, "%s.%d", out, (int)getpid());
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0)
        return;
    unsigned long n = __atomic_load_n(&taken, __ATOMIC_RELAXED);
    int len = snprintf(line, sizeof line, "taken %lu\n", n);
    write_all(fd, line, (size_t)len);
    for (unsigned long i = 0; i < n && i < MAX_SAMPLES; i++) {
        len = snprintf(line, sizeof line, "%lx\n", samples[i]);
        write_all(fd, line, (size_t)len);
    }
    write_all(fd, "maps\n", 5);
    int maps = open("/proc/self/maps", O_RDONLY | O_CLOEXEC);
    if (maps >= 0) {
        char buf[8192];
        ssize_t r;
        while ((r = read(maps, buf, sizeof buf)) > 0)
            write_all(fd, buf, (size_t)r);
        close(maps);
    }
    close(fd);
}
