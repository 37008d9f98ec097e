/* Multi-threaded stress through the hak_ API (so it also runs in sanitizer
 * builds): blocks cross threads through lock-free and mutex queues, are
 * realloc'ed on the way, are freed by another thread than their maker's
 * (and must come back to it), churn as large blocks in all threads at once,
 * move as large blocks outgrow their mappings, and outlive the threads that
 * made them.  Every
 * block carries a pattern derived from its address and owner, checked by
 * whoever frees it.  Exits 1 with a message on the first corruption. */
#define _GNU_SOURCE
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "hakmem.h"
#include "testutil.h"

/* TSan slows every access several times: fewer operations, same coverage. */
#ifdef UNDER_TSAN
#define SCALE 5
#else
#define SCALE 1
#endif

#define NTHREADS 4
#define OPS (40000 / SCALE)
/* Each scenario stops early past this many seconds (slow or loaded hosts). */
#define SCENARIO_SECONDS 4

static double deadline;
static atomic_long ops_done; /* reported: a deadline may cut a scenario short */

static int past_deadline(void)
{
    return tu_now() > deadline;
}

#define FAIL(...)                                                                          \
    do {                                                                                   \
        fprintf(stderr, "mt_stress: FAIL: " __VA_ARGS__);                                  \
        fputc('\n', stderr);                                                               \
        exit(1);                                                                           \
    } while (0)

static uint64_t rnd(uint64_t *s)
{
    *s ^= *s >> 12;
    *s ^= *s << 25;
    *s ^= *s >> 27;
    return *s * 0x2545F4914F6CDD1Dull;
}

/* Mostly small sizes, log-uniform from 8 B to 64 KiB; 1 in 128 large
 * (256 KiB - 4 MiB). */
static size_t rnd_size(uint64_t *s)
{
    uint64_t r = rnd(s);
    if (r % 128 == 0)
        return (256u << 10) + (size_t)(r >> 8) % ((4u << 20) - (256u << 10));
    size_t base = (size_t)8 << (r >> 8) % 13;
    return base + (size_t)(r >> 20) % base;
}

static uint64_t seed_of(const void *p, unsigned owner)
{
    return ((uintptr_t)p * 0x9E3779B97F4A7C15ull) ^ ((uint64_t)owner << 40) ^ owner;
}

/* Word-wise pattern: the 8 bytes at offset i (a multiple of 8) hold
 * seed ^ i * odd constant; a tail holds the start of its word, so any prefix
 * of a block carries the same bytes whatever the block's length.  Past
 * 64 KiB only the first 64 bytes of each 4 KiB are patterned: large blocks
 * would otherwise cost most of the run in memory bandwidth. */
#define DENSE (64u << 10)

static uint64_t pat_word(uint64_t seed, size_t i)
{
    return seed ^ (i * 0xD6E8FEB86659FD93ull);
}

static size_t pat_next(size_t i)
{
    i += 8;
    return i >= DENSE && i % 4096 >= 64 ? (i | 4095) + 1 : i;
}

static void pat_fill(void *p, size_t n, uint64_t seed)
{
    unsigned char *b = p;
    for (size_t i = 0; i < n; i = pat_next(i)) {
        uint64_t w = pat_word(seed, i);
        memcpy(b + i, &w, n - i < 8 ? n - i : 8);
    }
}

/* Offset of the first wrong byte, or (size_t)-1. */
static size_t pat_check(const void *p, size_t n, uint64_t seed)
{
    const unsigned char *b = p;
    for (size_t i = 0; i < n; i = pat_next(i)) {
        uint64_t w = pat_word(seed, i);
        size_t len = n - i < 8 ? n - i : 8;
        if (memcmp(b + i, &w, len))
            for (size_t k = 0;; k++)
                if (b[i + k] != ((const unsigned char *)&w)[k])
                    return i + k;
    }
    return (size_t)-1;
}

struct block {
    struct block *next; /* queue link */
    void *p;
    size_t size;
    uint64_t seed;
    unsigned owner;
};

static struct block *new_block(uint64_t *rs, unsigned owner)
{
    struct block *b = hak_malloc(sizeof *b);
    if (!b)
        FAIL("malloc(%zu) for a queue node returned NULL", sizeof *b);
    b->size = rnd_size(rs);
    b->p = hak_malloc(b->size);
    if (!b->p)
        FAIL("malloc(%zu) returned NULL", b->size);
    b->owner = owner;
    b->seed = seed_of(b->p, owner);
    pat_fill(b->p, b->size, b->seed);
    return b;
}

static void verify(const struct block *b, unsigned me, const char *where)
{
    size_t bad = pat_check(b->p, b->size, b->seed);
    if (bad != (size_t)-1)
        FAIL("%s: thread %u found block %p (%zu B, made by %u) corrupt at byte %zu", where, me,
             b->p, b->size, b->owner, bad);
}

static void free_block(struct block *b, unsigned me, const char *where)
{
    verify(b, me, where);
    hak_free(b->p);
    hak_free(b);
}

/* ---- Lock-free multi-producer queue: push by CAS, the one consumer takes
 * the whole list with an exchange (no ABA: nothing is popped singly). */
struct lfq {
    _Atomic(struct block *) head;
    atomic_int pending;
};

static void lfq_push(struct lfq *q, struct block *b)
{
    struct block *h = atomic_load_explicit(&q->head, memory_order_relaxed);
    do
        b->next = h;
    while (!atomic_compare_exchange_weak_explicit(&q->head, &h, b, memory_order_release,
                                                  memory_order_relaxed));
    atomic_fetch_add_explicit(&q->pending, 1, memory_order_relaxed);
}

static struct block *lfq_take_all(struct lfq *q)
{
    return atomic_exchange_explicit(&q->head, NULL, memory_order_acquire);
}

/* ---- Mutex queue (FIFO) ---- */
struct mq {
    pthread_mutex_t lock;
    struct block *head, *tail;
    atomic_int pending; /* read without the lock to bound the backlog */
};

static void mq_push(struct mq *q, struct block *b)
{
    b->next = NULL;
    pthread_mutex_lock(&q->lock);
    if (q->tail)
        q->tail->next = b;
    else
        q->head = b;
    q->tail = b;
    q->pending++;
    pthread_mutex_unlock(&q->lock);
}

static struct block *mq_pop(struct mq *q)
{
    pthread_mutex_lock(&q->lock);
    struct block *b = q->head;
    if (b) {
        q->head = b->next;
        if (!q->head)
            q->tail = NULL;
        q->pending--;
    }
    pthread_mutex_unlock(&q->lock);
    return b;
}

static struct lfq lfqs[NTHREADS];
static struct mq mqs[NTHREADS];
static pthread_barrier_t barrier;

#define BACKLOG 512 /* a queue this full gets no more blocks (bounds memory) */
#define LOCAL 64

/* Scenario 1: half the blocks go to the next thread's lock-free queue, half
 * are kept in a local working set and freed locally; the queue is drained
 * as it goes; hak_collect now and then. */
static void *ring_lockfree(void *arg)
{
    unsigned me = (unsigned)(uintptr_t)arg, next = (me + 1) % NTHREADS;
    uint64_t rs = 0x1234567ull + me * 0x9E3779B97F4A7C15ull;
    struct block *local[LOCAL] = {0};
    for (int op = 0; op < OPS && !past_deadline(); op++) {
        struct block *b = new_block(&rs, me);
        if (rnd(&rs) & 1 &&
            atomic_load_explicit(&lfqs[next].pending, memory_order_relaxed) < BACKLOG) {
            lfq_push(&lfqs[next], b);
        } else {
            unsigned slot = (unsigned)(rnd(&rs) % LOCAL);
            if (local[slot])
                free_block(local[slot], me, "local free");
            local[slot] = b;
        }
        if (op % 16 == 0) {
            int n = 0;
            for (struct block *r = lfq_take_all(&lfqs[me]), *nx; r; r = nx, n++) {
                nx = r->next;
                free_block(r, me, "lock-free queue");
            }
            atomic_fetch_sub_explicit(&lfqs[me].pending, n, memory_order_relaxed);
        }
        if (op % 2048 == 1024)
            hak_collect();
        atomic_fetch_add_explicit(&ops_done, 1, memory_order_relaxed);
    }
    for (int i = 0; i < LOCAL; i++)
        if (local[i])
            free_block(local[i], me, "local free");
    pthread_barrier_wait(&barrier); /* no producer left: drain for good */
    for (struct block *r = lfq_take_all(&lfqs[me]), *nx; r; r = nx) {
        nx = r->next;
        free_block(r, me, "lock-free queue drain");
    }
    return NULL;
}

/* Scenario 2: blocks travel around the ring through mutex queues; each hop
 * checks the block, reallocs it to a new random size, checks the kept
 * prefix, re-patterns it as its own and passes it on; after a few hops it is
 * freed.  Realloc here mostly acts on blocks another thread allocated. */
#define HOPS 6

static void *ring_realloc(void *arg)
{
    unsigned me = (unsigned)(uintptr_t)arg, next = (me + 1) % NTHREADS;
    uint64_t rs = 0xabcdefull + me * 0x9E3779B97F4A7C15ull;
    for (int op = 0; op < OPS && !past_deadline(); op++) {
        if (mqs[next].pending < BACKLOG) {
            struct block *b = new_block(&rs, me);
            b->owner = 0; /* owner field counts hops here */
            b->seed = seed_of(b->p, 0);
            pat_fill(b->p, b->size, b->seed);
            mq_push(&mqs[next], b);
        }
        for (struct block *b; (b = mq_pop(&mqs[me]));) {
            verify(b, me, "realloc ring");
            if (++b->owner == HOPS) {
                free_block(b, me, "realloc ring end");
                continue;
            }
            size_t n = rnd_size(&rs);
            void *q = hak_realloc(b->p, n);
            if (!q)
                FAIL("realloc(%p, %zu -> %zu) returned NULL", b->p, b->size, n);
            size_t keep = n < b->size ? n : b->size;
            size_t bad = pat_check(q, keep, b->seed);
            if (bad != (size_t)-1)
                FAIL("realloc %zu -> %zu (%p -> %p) by thread %u lost byte %zu", b->size, n,
                     b->p, q, me, bad);
            b->p = q;
            b->size = n;
            b->seed = seed_of(q, b->owner);
            pat_fill(q, n, b->seed);
            mq_push(&mqs[next], b);
        }
        atomic_fetch_add_explicit(&ops_done, 1, memory_order_relaxed);
    }
    pthread_barrier_wait(&barrier);
    for (struct block *b; (b = mq_pop(&mqs[me]));)
        free_block(b, me, "realloc ring drain");
    return NULL;
}

/* Scenario 3: threads come and go in waves; each leaves blocks behind in a
 * shared graveyard and frees blocks left there by threads that have
 * already exited. */
#define GRAVE 4096
#define WAVES (60 / SCALE)
#define PER_THREAD 400

static struct block *grave[GRAVE];
static pthread_mutex_t grave_lock = PTHREAD_MUTEX_INITIALIZER;

static void *churn(void *arg)
{
    unsigned me = (unsigned)(uintptr_t)arg;
    uint64_t rs = 0x5555ull + me * 0x9E3779B97F4A7C15ull;
    for (int i = 0; i < PER_THREAD; i++) {
        struct block *b = new_block(&rs, me);
        unsigned slot = (unsigned)(rnd(&rs) % GRAVE);
        pthread_mutex_lock(&grave_lock);
        struct block *old = grave[slot];
        grave[slot] = b;
        pthread_mutex_unlock(&grave_lock);
        if (old)
            free_block(old, me, "graveyard");
        if (i % 100 == 50)
            hak_collect();
        atomic_fetch_add_explicit(&ops_done, 1, memory_order_relaxed);
    }
    return NULL;
}

/* Scenario 4: one thread allocates, another frees: 512 MiB pass from one to
 * the other.  Unless remote frees come back to the allocating thread, the
 * process's resident memory grows by about that much. */
#define HANDOFF_BYTES (((size_t)512 << 20) / SCALE)
#define HANDOFF_RSS_LIMIT ((size_t)128 << 20)

static struct lfq handoff;
static atomic_int handoff_done;

static void *handoff_producer(void *arg)
{
    unsigned me = (unsigned)(uintptr_t)arg;
    uint64_t rs = 0x77ull;
    for (size_t total = 0; total < HANDOFF_BYTES && !past_deadline();) {
        if (atomic_load_explicit(&handoff.pending, memory_order_relaxed) >= BACKLOG) {
            sched_yield();
            continue;
        }
        struct block *b = hak_malloc(sizeof *b);
        if (!b)
            FAIL("malloc(%zu) for a queue node returned NULL", sizeof *b);
        b->size = 16 + (size_t)rnd(&rs) % 2033;
        b->p = hak_malloc(b->size);
        if (!b->p)
            FAIL("malloc(%zu) returned NULL", b->size);
        b->owner = me;
        b->seed = seed_of(b->p, me);
        pat_fill(b->p, b->size, b->seed);
        lfq_push(&handoff, b);
        total += b->size;
        atomic_fetch_add_explicit(&ops_done, 1, memory_order_relaxed);
    }
    atomic_store(&handoff_done, 1);
    return NULL;
}

static void *handoff_consumer(void *arg)
{
    unsigned me = (unsigned)(uintptr_t)arg;
    for (;;) {
        int done = atomic_load(&handoff_done), n = 0;
        for (struct block *r = lfq_take_all(&handoff), *nx; r; r = nx, n++) {
            nx = r->next;
            free_block(r, me, "handoff");
        }
        atomic_fetch_sub_explicit(&handoff.pending, n, memory_order_relaxed);
        if (done && n == 0)
            return NULL;
        if (n == 0)
            sched_yield();
    }
}

/* Scenario 5: large blocks only (just past the biggest class up to 4 MiB),
 * many alive per thread, so freed mappings are cached, reused and unmapped
 * by all threads at once. */
#define LARGE_KEEP 32
#define LARGE_OPS (250000 / SCALE)

static void *large_churn(void *arg)
{
    unsigned me = (unsigned)(uintptr_t)arg;
    uint64_t rs = 0x4c41524745ull + me * 0x9E3779B97F4A7C15ull;
    size_t max_class = hak_size_class_size(hak_size_class_count() - 1);
    struct block *keep[LARGE_KEEP] = {0};
    for (int op = 0; op < LARGE_OPS && !past_deadline(); op++) {
        unsigned k = (unsigned)(rnd(&rs) % LARGE_KEEP);
        if (keep[k])
            free_block(keep[k], me, "large churn");
        struct block *b = keep[k] = hak_malloc(sizeof *b);
        if (!b)
            FAIL("malloc(%zu) for a queue node returned NULL", sizeof *b);
        uint64_t r = rnd(&rs);
        size_t n = r & 1 ? max_class + 1 + (size_t)(r >> 8) % (2 * max_class)
                         : (256u << 10) + (size_t)(r >> 8) % (4u << 20);
        b->p = hak_malloc(n);
        if (!b->p)
            FAIL("malloc(%zu) returned NULL", n);
        /* Only the first 256 bytes carry the pattern (and the last byte is
         * written): the point is the mappings' turnover, as fast as it goes. */
        ((char *)b->p)[n - 1] = 1;
        b->size = 256;
        b->owner = me;
        b->seed = seed_of(b->p, me);
        pat_fill(b->p, b->size, b->seed);
        atomic_fetch_add_explicit(&ops_done, 1, memory_order_relaxed);
    }
    for (int k = 0; k < LARGE_KEEP; k++)
        if (keep[k])
            free_block(keep[k], me, "large churn");
    return NULL;
}

/* Large blocks grown past their mappings (moved whole by mremap) and shrunk
 * again, by all threads at once: a move frees the old address space at
 * once, and another thread's new mapping may land there.  The old chunk
 * must leave the map before that, else the newcomer's chunk is taken for
 * not ours ("invalid pointer" on its realloc or free). */
static void *large_moves(void *arg)
{
    unsigned me = (unsigned)(uintptr_t)arg;
    uint64_t rs = 0x4d4f5645ull + me * 0x9E3779B97F4A7C15ull;
    for (int op = 0; op < LARGE_OPS / 25 && !past_deadline(); op++) {
        uint64_t r = rnd(&rs);
        size_t a = (1u << 20) + (size_t)(r >> 8) % (1u << 20), b = 2 * a + (size_t)(r >> 40) % 4096;
        unsigned char *p = hak_malloc(a);
        if (!p)
            FAIL("large moves: malloc(%zu) returned NULL", a);
        p[0] = (unsigned char)me;
        p[a - 1] = (unsigned char)op;
        p = hak_realloc(p, b);
        if (!p || p[0] != (unsigned char)me || p[a - 1] != (unsigned char)op)
            FAIL("large moves: realloc(%zu -> %zu) lost the block's bytes", a, b);
        p[b - 1] = 1;
        p = hak_realloc(p, a / 2);
        if (!p || p[0] != (unsigned char)me)
            FAIL("large moves: realloc(%zu -> %zu) lost the block's bytes", b, a / 2);
        hak_free(p);
        atomic_fetch_add_explicit(&ops_done, 1, memory_order_relaxed);
    }
    return NULL;
}

/* Statistics polled while threads turn slabs over: workers allocate and
 * free rounds of blocks over many classes and unit sizes (current slabs
 * change, units are taken and given back) while the poller reads
 * hak_stats_json and collects.  Reports never show more frees than
 * allocations nor go back.  Under TSan this is the test of the
 * statistics' reads against the owners' writes (helper 26 found
 * h->cur, unit_slab and the SuperSlab's kind and node written plainly). */
static atomic_int stats_workers;

static void *stats_worker(void *arg)
{
    unsigned me = (unsigned)(uintptr_t)arg;
    void *p[256];
    for (int r = 0; r < 2000 / SCALE && !past_deadline(); r++) {
        for (int i = 0; i < 256; i++) {
            size_t n = 16 + (size_t)((i * 131 + r + (int)me) % 300) * (i % 5 ? 8 : 700);
            if (!(p[i] = hak_malloc(n)))
                FAIL("stats poll: malloc(%zu) returned NULL", n);
        }
        for (int i = 0; i < 256; i++)
            hak_free(p[i]);
        atomic_fetch_add_explicit(&ops_done, 256, memory_order_relaxed);
    }
    atomic_fetch_sub(&stats_workers, 1);
    return NULL;
}

static void *stats_poller(void *arg)
{
    (void)arg;
    static char json[16384];
    long long last = 0;
    for (unsigned n = 0; atomic_load(&stats_workers) > 0; n++) {
        if (hak_stats_json(json, sizeof json) >= sizeof json)
            FAIL("stats poll: the report does not fit %zu bytes", sizeof json);
        long long m = tu_json_field(json, "malloc"), f = tu_json_field(json, "free");
        if (m != -1 && (m < last || f > m))  /* -1: not counted (the FAST build) */
            FAIL("stats poll: malloc %lld (last %lld), free %lld", m, last, f);
        last = m;
        if (n % 64 == 0)
            hak_collect();
    }
    return NULL;
}

static void report(const char *name, double t0)
{
    printf("mt_stress: %s ok: %ld blocks in %.1f s\n", name,
           atomic_exchange(&ops_done, 0), tu_now() - t0);
}

static void run(const char *name, void *(*fn)(void *), int nthreads, unsigned first_id)
{
    pthread_t t[NTHREADS];
    for (int i = 0; i < nthreads; i++)
        if (pthread_create(&t[i], NULL, fn, (void *)(uintptr_t)(first_id + i)))
            FAIL("%s: pthread_create failed", name);
    for (int i = 0; i < nthreads; i++)
        pthread_join(t[i], NULL);
}

int main(void)
{
    pthread_barrier_init(&barrier, NULL, NTHREADS);
    for (int i = 0; i < NTHREADS; i++)
        pthread_mutex_init(&mqs[i].lock, NULL);

    double t0 = tu_now();
    deadline = t0 + SCENARIO_SECONDS;
    run("lock-free ring", ring_lockfree, NTHREADS, 0);
    report("lock-free ring", t0);

    t0 = tu_now();
    deadline = t0 + SCENARIO_SECONDS;
    run("realloc ring", ring_realloc, NTHREADS, 0);
    report("realloc ring", t0);

    t0 = tu_now();
    deadline = t0 + SCENARIO_SECONDS;
    size_t rss0 = tu_rss();
    pthread_t prod, cons;
    if (pthread_create(&prod, NULL, handoff_producer, (void *)1) ||
        pthread_create(&cons, NULL, handoff_consumer, (void *)2))
        FAIL("handoff: pthread_create failed");
    pthread_join(prod, NULL);
    pthread_join(cons, NULL);
    size_t rss1 = tu_rss();
    if (rss1 > rss0 + HANDOFF_RSS_LIMIT)
        FAIL("handoff: resident memory grew from %zu to %zu MiB: remote frees are not reused",
             rss0 >> 20, rss1 >> 20);
    report("remote-free handoff", t0);

    t0 = tu_now();
    deadline = t0 + SCENARIO_SECONDS;
    run("large churn", large_churn, NTHREADS, 0);
    report("large churn", t0);

    t0 = tu_now();
    deadline = t0 + SCENARIO_SECONDS;
    run("large moves", large_moves, NTHREADS, 0);
    report("large moves", t0);

    t0 = tu_now();
    deadline = t0 + SCENARIO_SECONDS;
    pthread_t poller, workers[NTHREADS - 1];
    atomic_store(&stats_workers, NTHREADS - 1);
    if (pthread_create(&poller, NULL, stats_poller, NULL))
        FAIL("stats poll: pthread_create failed");
    for (int i = 0; i < NTHREADS - 1; i++)
        if (pthread_create(&workers[i], NULL, stats_worker, (void *)(uintptr_t)i))
            FAIL("stats poll: pthread_create failed");
    for (int i = 0; i < NTHREADS - 1; i++)
        pthread_join(workers[i], NULL);
    pthread_join(poller, NULL);
    report("statistics polled", t0);

    /* Waves of short-lived threads with distinct ids: most blocks a thread
     * frees were made by a thread that has exited. */
    t0 = tu_now();
    deadline = t0 + SCENARIO_SECONDS;
    unsigned id = 1;
    for (int w = 0; w < WAVES && !past_deadline(); w++, id += NTHREADS)
        run("churn", churn, NTHREADS, id);
    for (int i = 0; i < GRAVE; i++)
        if (grave[i])
            free_block(grave[i], 0, "graveyard after all threads exited");
    hak_collect();
    report("thread churn", t0);
    return 0;
}
