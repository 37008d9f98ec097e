/* Thread lifecycle: 100,000 short-lived threads, 4 at a time, each leaving
 * blocks behind (a pool of 512, saturated within the first hundred threads)
 * for later threads to verify and free.  Exited threads' heaps
 * are adopted by new threads, so RSS must stop growing after the first
 * thousand threads, the number of heaps must stay at the peak of live
 * threads, and once every block is freed and the heaps are collected nothing
 * may be left in use.  Uses the hak_ API (works in every build).  An
 * argument sets the number of threads (check-tsan runs fewer: under TSan
 * each thread costs about a millisecond). */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hakmem.h"
#include "testutil.h"

#define THREADS 100000
#define RSS_AFTER 1000  /* threads before the RSS and committed bytes are taken */
#define CONCURRENT 4
#define POOL 512
#define PER_THREAD 16

static _Atomic(uint64_t *) pool[POOL];
static int failures;

#define CHECK(cond, ...) do { if (!(cond)) { fprintf(stderr, "lifecycle: FAIL: " __VA_ARGS__); \
    fprintf(stderr, "\n"); failures++; } } while (0)

/* Block layout: words[0] = number of words, all words = tag ^ index. */
static uint64_t *make(uint64_t tag, size_t words)
{
    uint64_t *p = hak_malloc(words * 8);
    if (p == NULL)
        abort();
    p[0] = words;
    for (size_t i = 1; i < words; i++)
        p[i] = tag ^ i;
    p[words - 1] = tag;
    return p;
}

static void verify_free(uint64_t *p)
{
    size_t words = p[0];
    uint64_t tag = p[words - 1];
    for (size_t i = 1; i + 1 < words; i++) {
        if (p[i] != (tag ^ i)) {
            fprintf(stderr, "lifecycle: corrupt block %p word %zu\n", (void *)p, i);
            abort();
        }
    }
    hak_free(p);
}

static void *thread_main(void *arg)
{
    uint64_t x = (uint64_t)(uintptr_t)arg * 0x9e3779b97f4a7c15ull + 1;
    for (int k = 0; k < PER_THREAD; k++) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        uint64_t *b = make(x, 3 + (size_t)(x >> 40) % 500);
        if (k & 1) {
            uint64_t *old = atomic_exchange(&pool[(x >> 20) % POOL], b);
            if (old != NULL)
                verify_free(old);
        } else {
            verify_free(b);
        }
    }
    return NULL;
}

/* The last threads only adopt a heap (first malloc) and hand it back
 * collected when they exit. */
static void *adopt_main(void *arg)
{
    hak_free(hak_malloc(64));
    return arg;
}

static void run_batch(long first, int n, void *(*fn)(void *))
{
    pthread_t t[CONCURRENT];
    for (int i = 0; i < n; i++)
        if (pthread_create(&t[i], NULL, fn, (void *)(intptr_t)(first + i)) != 0)
            abort();
    for (int i = 0; i < n; i++)
        pthread_join(t[i], NULL);
}

int main(int argc, char **argv)
{
    static char json[16384];
    long threads = THREADS;
    if (argc > 1) {
        char *end;
        errno = 0;
        threads = strtol(argv[1], &end, 10);
        if (errno != 0 || *end != '\0' || threads < 2 * RSS_AFTER || threads % CONCURRENT != 0) {
            fprintf(stderr, "usage: lifecycle [threads: a multiple of %d, at least %d]\n", CONCURRENT, 2 * RSS_AFTER);
            return 2;
        }
    }
    long rss_early = 0;
    long long committed_early = 0;
    for (long i = 0; i < threads; i += CONCURRENT) {
        run_batch(i, CONCURRENT, thread_main);
        if (i + CONCURRENT == RSS_AFTER) {
            rss_early = (long)(tu_rss() / 1024);
            hak_stats_json(json, sizeof json);
            committed_early = tu_json_field(json, "bytes_committed");
        }
    }
    long rss_end = (long)(tu_rss() / 1024);
    hak_stats_json(json, sizeof json);
    long long committed_end = tu_json_field(json, "bytes_committed");
    printf("lifecycle: %ld threads, RSS after %d: %ld KiB, after %ld: %ld KiB; hakmem committed %lld -> %lld KiB\n",
           threads, RSS_AFTER, rss_early, threads, rss_end, committed_early / 1024, committed_end / 1024);
    /* Committed SuperSlabs (2 MiB each) come and go with the heaps' caches
     * of empty ones (HAKMEM_SS_CACHE): 8 more is noise, a leak per thread
     * would be hundreds. */
    CHECK(committed_end <= committed_early + (16 << 20), "hakmem's committed bytes grew from %lld KiB to %lld KiB "
          "after the first %d threads", committed_early / 1024, committed_end / 1024, RSS_AFTER);
#if defined(UNDER_ASAN) || defined(UNDER_TSAN)
    printf("lifecycle: process RSS not checked: the sanitizer keeps a record per thread ever made\n");
#else
    CHECK(rss_end <= rss_early + 4096, "RSS grew from %ld KiB to %ld KiB after the first %d threads", rss_early,
          rss_end, RSS_AFTER);
#endif

    long long heaps = tu_json_field(json, "heaps");
    printf("lifecycle: heaps made: %lld\n", heaps);
    /* Live threads plus main; a thread that starts while a sweeper holds the
     * abandoned heaps it would take may make one more. */
    CHECK(heaps >= 1 && heaps <= CONCURRENT + 3, "%lld heaps for at most %d live threads", heaps, CONCURRENT + 1);

    /* Free what the threads left, let new threads adopt (and, exiting,
     * collect) abandoned heaps, then collect: ours, and every abandoned
     * heap still holding remote frees. */
    for (int i = 0; i < POOL; i++) {
        uint64_t *p = atomic_exchange(&pool[i], NULL);
        if (p != NULL)
            verify_free(p);
    }
    hak_collect();  /* our remote-free batches go out to their heaps' inboxes */
    run_batch(threads, CONCURRENT, adopt_main);
    hak_collect();
    hak_stats_json(json, sizeof json);
    long long in_use = tu_json_field(json, "bytes_in_use");
    printf("lifecycle: bytes in use after freeing everything: %lld\n", in_use);
    /* Slab granularity: what remains is the slab of stdio's buffer and of
     * our own last blocks; the pool's blocks alone would hold 1-2 MB. */
    CHECK(in_use >= 0 && in_use <= 1 << 20, "%lld bytes still in use after every block was freed", in_use);
    if (failures == 0)
        printf("lifecycle: ok\n");
    return failures ? 1 : 0;
}
