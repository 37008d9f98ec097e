/* Helpers shared by the core allocator's tests: byte patterns that tell one
 * block (or one owner) from another, the process's resident size, and
 * hakmem's statistics. */
#ifndef HK_TESTUTIL_H
#define HK_TESTUTIL_H

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include "hakmem.h"

/* Byte i of a block filled for `seed`: mixes the offset with the seed so
 * that a block written by a neighbour, or a shifted copy, does not match. */
static inline unsigned char tu_byte(uint64_t seed, size_t i)
{
    uint64_t x = seed ^ (i * 0x9E3779B97F4A7C15ull);
    x ^= x >> 29;
    x *= 0xBF58476D1CE4E5B9ull;
    return (unsigned char)(x >> 56);
}

static inline void tu_fill(void *p, size_t n, uint64_t seed)
{
    unsigned char *b = p;
    for (size_t i = 0; i < n; i++)
        b[i] = tu_byte(seed, i);
}

/* Offset of the first byte that differs from the pattern, or (size_t)-1. */
static inline size_t tu_check(const void *p, size_t n, uint64_t seed)
{
    const unsigned char *b = p;
    for (size_t i = 0; i < n; i++)
        if (b[i] != tu_byte(seed, i))
            return i;
    return (size_t)-1;
}

/* Offset of the first non-zero byte, or (size_t)-1. */
static inline size_t tu_first_nonzero(const void *p, size_t n)
{
    const unsigned char *b = p;
    for (size_t i = 0; i < n; i++)
        if (b[i])
            return i;
    return (size_t)-1;
}

/* The integer field `name` of a hak_stats_json object (-2 when absent). */
static inline long long tu_json_field(const char *json, const char *name)
{
    char key[64];
    snprintf(key, sizeof key, "\"%s\":", name);
    const char *p = strstr(json, key);
    return p ? atoll(p + strlen(key)) : -2;
}

/* The integer field `name` of hakmem's statistics now (tu_json_field). */
static inline long long tu_stat(const char *name)
{
    static char json[16384];
    hak_stats_json(json, sizeof json);
    return tu_json_field(json, name);
}

/* Seconds on the monotonic clock. */
static inline double tu_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* Binds the calling thread, and the threads it makes from here on, to the
 * CPU it runs on: on a machine of several NUMA nodes, a test that needs its
 * threads' memory on one node (the remote-block cache keeps only blocks of
 * its own node; a thread that changes node re-homes its heap) would
 * otherwise depend on where the scheduler puts them.  The file includes
 * this header with _GNU_SOURCE defined first. */
#ifdef _GNU_SOURCE
#include <sched.h>
static inline void tu_pin_here(void)
{
    cpu_set_t one;
    int cpu = sched_getcpu();
    CPU_ZERO(&one);
    CPU_SET(cpu < 0 ? 0 : cpu, &one);
    sched_setaffinity(0, sizeof one, &one);  /* a failure only leaves the test as it was */
    /* A heap made on another node re-homes at its next new slab: a unit
     * block is one. */
    hak_free(hak_malloc(200000));
}

#include <pthread.h>
/* Joins t, or says that it hangs: false if it has not ended `seconds`
 * later (a test's bound on a hang, never on speed). */
static inline bool tu_joined(pthread_t t, void **ret, int seconds)
{
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += seconds;
    return pthread_timedjoin_np(t, ret, &until) == 0;
}
#endif

/* Resident set size in bytes (0 if /proc is not readable). */
static inline size_t tu_rss(void)
{
    unsigned long size, resident;
    FILE *f = fopen("/proc/self/statm", "r");
    if (!f)
        return 0;
    int n = fscanf(f, "%lu %lu", &size, &resident);
    fclose(f);
    return n == 2 ? resident * (size_t)sysconf(_SC_PAGESIZE) : 0;
}

/* Bytes the process maps (0 if /proc is not readable): an RLIMIT_AS set
 * this much and more leaves the rest for what a test allocates. */
static inline size_t tu_mapped(void)
{
    unsigned long size;
    FILE *f = fopen("/proc/self/statm", "r");
    if (!f)
        return 0;
    int n = fscanf(f, "%lu", &size);
    fclose(f);
    return n == 1 ? size * (size_t)sysconf(_SC_PAGESIZE) : 0;
}

/* RLIMIT_DATA set to `bytes`; false if the hard limit forbids it. */
static inline bool tu_data_limit(size_t bytes)
{
    struct rlimit rl = { (rlim_t)bytes, (rlim_t)bytes }, old;
    return getrlimit(RLIMIT_DATA, &old) == 0 && (old.rlim_max == RLIM_INFINITY || old.rlim_max >= rl.rlim_max) &&
           setrlimit(RLIMIT_DATA, &rl) == 0;
}

/* Built with AddressSanitizer (gcc defines __SANITIZE_ADDRESS__, clang 14
 * only answers __has_feature). */
#if defined(__SANITIZE_ADDRESS__)
#define UNDER_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define UNDER_ASAN 1
#endif
#endif

/* Built with ThreadSanitizer (gcc or clang): tests scale their work down. */
#if defined(__SANITIZE_THREAD__)
#define UNDER_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define UNDER_TSAN 1
#endif
#endif

/* RSS for a bound on the fresh memory a test makes resident, or 0 (not
 * measured: says so on stderr) under ThreadSanitizer, whose shadow of every
 * byte the test touches is resident too (a 64 MiB buffer grew RSS by 453
 * MiB). */
static inline size_t tu_rss_for_bound(const char *test)
{
#ifdef UNDER_TSAN
    fprintf(stderr, "%s: RSS bound not checked: ThreadSanitizer's shadow of every byte touched is resident too\n",
            test);
    return 0;
#else
    (void)test;
    return tu_rss();
#endif
}

/* fn's exit code, run in a child process of its own, so that what it maps,
 * limits or denies goes with it; -1, saying why, when fork or wait failed
 * or the child died of a signal. */
static inline int tu_in_child(int (*fn)(void))
{
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
        int rc = fn();
        fflush(stdout);
        _exit(rc);
    }
    int status;
    if (pid < 0 || waitpid(pid, &status, 0) != pid) {
        printf("FAIL: fork or wait: %s\n", strerror(errno));
        return -1;
    }
    if (WIFSIGNALED(status)) {
        printf("FAIL: the child died of signal %d\n", WTERMSIG(status));
        return -1;
    }
    return WEXITSTATUS(status);
}
#endif
