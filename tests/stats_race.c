/* Statistics read while other threads allocate never count an allocation
 * twice.  A current slab hands its count of fast-path allocations to its
 * heap every 128 of them; a shortened count (reclaim.c: look_soon) hands
 * over sooner and holds allocations that did not happen, its `lent`.
 * Session 27's first version borrowed those from the heap's count instead:
 * a report that read the heap's count before the borrow and the slab's
 * after counted them twice, and as reports never go back (stats.c:
 * malloc_reported), the malloc count stayed above the frees with every
 * block freed; only the TSan fuzzer's count check saw it, once.
 * Here WORKERS threads allocate bursts over SPREAD classes, free half of
 * each and hand the other half to a neighbour, then allocate slowly for a
 * while; with a decommit delay of 1 ms (the program runs itself again with
 * it) their counts are shortened at almost every tick and every wait that
 * begins.  One thread reads the statistics all along.  At the end, with
 * every block freed, the counts must have moved by what the threads did,
 * give or take SLACK for the C library's own allocations; a count taken
 * twice is 64 to 127 allocations. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>
#include "hakmem.h"
#include "testutil.h"

enum { WORKERS = 3, BURST = 6000, SLOW = 400, SPREAD = 24, SLACK = 32 };
#define SECONDS 2.0

struct handoff {
    pthread_mutex_t lock;
    void *blocks[BURST / 2];
    int n;
};
static struct handoff handoffs[WORKERS];
static atomic_bool stop;
static atomic_llong mallocs, frees;
static long long reports;

static size_t size_of(uint64_t *rs)
{
    *rs = *rs * 6364136223846793005ull + 1442695040888963407ull;
    return 16 + (size_t)((*rs >> 33) % SPREAD) * 21;
}

/* Free what the previous worker handed us: remote frees. */
static long long take_handoff(struct handoff *h)
{
    pthread_mutex_lock(&h->lock);
    int n = h->n;
    for (int i = 0; i < n; i++)
        hak_free(h->blocks[i]);
    h->n = 0;
    pthread_mutex_unlock(&h->lock);
    return n;
}

static void *worker(void *arg)
{
    unsigned me = (unsigned)(uintptr_t)arg;
    struct handoff *next = &handoffs[(me + 1) % WORKERS];
    uint64_t rs = me + 1;
    static void *mine[WORKERS][BURST];
    void **b = mine[me];
    long long m = 0, f = 0;
    double end = tu_now() + SECONDS;
    while (!atomic_load(&stop) && tu_now() < end) {
        for (int i = 0; i < BURST; i++) {
            if ((b[i] = hak_malloc(size_of(&rs))) == NULL)
                abort();
            *(volatile char *)b[i] = 1;
        }
        m += BURST;
        f += take_handoff(&handoffs[me]);
        for (int i = 0; i < BURST / 2; i++)
            hak_free(b[i]);
        f += BURST / 2;
        pthread_mutex_lock(&next->lock);
        int k = next->n;  /* what the neighbour has not taken yet: ours to free */
        for (int i = 0; i < BURST / 2; i++) {
            if (k < BURST / 2)
                next->blocks[k++] = b[BURST / 2 + i];
            else {
                hak_free(b[BURST / 2 + i]);
                f++;
            }
        }
        next->n = k;
        pthread_mutex_unlock(&next->lock);
        /* Slowly, over every class: the shortened counts hand over. */
        for (int i = 0; i < SLOW; i++) {
            hak_free(hak_malloc(size_of(&rs)));
            if (i % 16 == 0)
                usleep(50);
        }
        m += SLOW;
        f += SLOW;
    }
    atomic_fetch_add(&mallocs, m);
    atomic_fetch_add(&frees, f);
    return NULL;
}

static void *reader(void *arg)
{
    (void)arg;
    static char json[16384];
    while (!atomic_load(&stop)) {
        hak_stats_json(json, sizeof json);
        reports++;
    }
    return NULL;
}

int main(int argc, char **argv)
{
    (void)argc;
    if (getenv("HAKMEM_DECOMMIT_DELAY_MS") == NULL) {
        setenv("HAKMEM_DECOMMIT_DELAY_MS", "1", 1);
        execv("/proc/self/exe", argv);
        perror("stats_race: execv /proc/self/exe");
        return 99;
    }
    long long m0 = tu_stat("malloc"), f0 = tu_stat("free");
    if (m0 == -1) {
        printf("stats_race: SKIP: this build does not count allocations\n");
        return 77;
    }
    for (int i = 0; i < WORKERS; i++)
        pthread_mutex_init(&handoffs[i].lock, NULL);
    pthread_t w[WORKERS], r;
    if (pthread_create(&r, NULL, reader, NULL) != 0)
        return 99;
    for (int i = 0; i < WORKERS; i++)
        if (pthread_create(&w[i], NULL, worker, (void *)(uintptr_t)i) != 0)
            return 99;
    for (int i = 0; i < WORKERS; i++)
        pthread_join(w[i], NULL);
    long long left = 0;
    for (int i = 0; i < WORKERS; i++)
        left += take_handoff(&handoffs[i]);
    atomic_fetch_add(&frees, left);
    atomic_store(&stop, true);
    pthread_join(r, NULL);
    long long m = tu_stat("malloc") - m0, f = tu_stat("free") - f0;
    long long ours = atomic_load(&mallocs), freed = atomic_load(&frees);
    printf("stats_race: %lld reports read; %lld allocations and %lld frees counted for the threads' %lld and %lld\n",
           reports, m, f, ours, freed);
    if (ours != freed) {
        fprintf(stderr, "stats_race: FAIL: the test lost track: %lld allocations, %lld frees\n", ours, freed);
        return 1;
    }
    if (m < ours || m > ours + SLACK || f < freed || f > freed + SLACK) {
        fprintf(stderr, "stats_race: FAIL: %lld allocations and %lld frees counted for %lld of each "
                "(at most %d more, the C library's)\n", m, f, ours, SLACK);
        return 1;
    }
    printf("stats_race: ok\n");
    return 0;
}
