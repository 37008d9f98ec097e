/* Latency tails of single calls: the distribution (p50, p99, p99.9, max)
 * of each malloc, free, calloc and realloc, timed one by one with
 * CLOCK_MONOTONIC, in the scenarios where an allocator does rare, large
 * pieces of work inside a call: threads that come and go leaving heaps
 * (--scenario churn), a new thread's first malloc among many heaps (live
 * or left by gone threads: heaps, gone), large blocks freed and taken
 * across the decommit delay (large), and a steady workload with periodic
 * bursts freed by another thread (burst).  Throughput is not the point:
 * the result line gives ops_per_sec only for the harness's format.
 *
 * The timings go to fixed histograms in static memory (16 buckets per
 * power of two, about 6% wide; the maximum is exact), so recording
 * allocates nothing; the threads this program starts are not timed. */
#include "bench.h"
#include <limits.h>
#include <semaphore.h>
#include <stdio.h>
#include <unistd.h>

enum op { OP_PFIRST, OP_FIRST, OP_MALLOC, OP_FREE, OP_CALLOC, OP_REALLOC, OP_RFREE, OP_LMALLOC, OP_LFREE, OP_COUNT };
static const char *const op_name[OP_COUNT] = {
    "parked_first_malloc", "first_malloc", "malloc", "free", "calloc", "realloc", "remote_free", "large_malloc", "large_free"
};

#define SUB 16
#define BUCKETS (64 * SUB)
static _Atomic uint64_t hist[OP_COUNT][BUCKETS];
static _Atomic uint64_t worst[OP_COUNT];

static unsigned bucket_of(uint64_t ns)
{
    if (ns < SUB)
        return (unsigned)ns;
    unsigned e = 63u - (unsigned)__builtin_clzll(ns); /* e >= 4 */
    return e * SUB + (unsigned)((ns >> (e - 4)) & (SUB - 1));
}

/* The smallest value of bucket b. */
static uint64_t bucket_low(unsigned b)
{
    if (b < SUB)
        return b;
    unsigned e = b / SUB;
    return ((uint64_t)SUB + b % SUB) << (e - 4);
}

static void record(enum op op, uint64_t ns)
{
    atomic_fetch_add_explicit(&hist[op][bucket_of(ns)], 1, memory_order_relaxed);
    uint64_t w = atomic_load_explicit(&worst[op], memory_order_relaxed);
    while (ns > w && !atomic_compare_exchange_weak_explicit(&worst[op], &w, ns, memory_order_relaxed,
                                                            memory_order_relaxed))
        ;
}

/* --cpu: the calling thread's CPU time instead of the wall clock, which
 * leaves out the time the thread was preempted (on a loaded machine a call
 * may wait a time slice or more), and its sleeps too. */
static bool thread_cpu;

static uint64_t now(void)
{
    return thread_cpu ? bench_thread_cpu_ns() : bench_now_ns();
}

static void *t_malloc(enum op op, size_t size)
{
    uint64_t t0 = now();
    void *p = malloc(size);
    record(op, now() - t0);
    if (p == NULL)
        bench_fail("reason=malloc-null size=%zu", size);
    bench_escape(p);
    return p;
}

static void *t_calloc(size_t n, size_t size)
{
    uint64_t t0 = now();
    void *p = calloc(n, size);
    record(OP_CALLOC, now() - t0);
    if (p == NULL)
        bench_fail("reason=calloc-null size=%zu", n * size);
    bench_escape(p);
    return p;
}

static void *t_realloc(void *q, size_t size)
{
    uint64_t t0 = now();
    void *p = realloc(q, size);
    record(OP_REALLOC, now() - t0);
    if (p == NULL)
        bench_fail("reason=realloc-null size=%zu", size);
    bench_escape(p);
    return p;
}

static void t_free(enum op op, void *p)
{
    uint64_t t0 = now();
    free(p);
    record(op, now() - t0);
}

static bench_knob knobs[] = {
    BENCH_KNOB("spawned", 4000, 200, 1, "churn, heaps, gone: threads started (churn: in all; heaps, gone: timed ones)"),
    BENCH_KNOB("detached", 0, 0, 0, "churn: 1 starts detached threads, 0 joins them"),
    BENCH_KNOB("leave", 1, 1, 0, "churn: 1 leaves half of each thread's blocks for its starter to free"),
    BENCH_KNOB("heaps", 1200, 64, 1, "heaps, gone (and burst, if given): threads kept alive, with a heap each"),
    BENCH_KNOB("cpu", 0, 0, 0, "1 times each call by the thread's CPU clock, 0 by the wall clock"),
    BENCH_KNOB("rounds", 40, 4, 1, "large: rounds; burst: bursts"),
    BENCH_KNOB("burst-mb", 32, 4, 1, "burst: MiB allocated per burst"),
    BENCH_KNOB("calls", 400, 400, 64, "large: small mallocs per round, spread over 0.4 s"),
    BENCH_KNOB_END
};

enum { KNOB_HEAPS = 3 };

static bench_config cfg = {
    .workload = "tail",
    .summary = "Single-call latency tails (p50, p99, p99.9, max per call) of the malloc family "
               "under thread churn, many heaps, large blocks and bursts: --scenario churn (the default), "
               "heaps, gone, large or burst.",
    .knobs = knobs,
};

static uint64_t ops_done;

/* ---- churn: threads that come and go, leaving blocks for their starter ---- */

#define CHURN_BLOCKS 64
#define POOL_CAP 65536
static struct {
    pthread_mutex_t lock;
    unsigned n;
    void *p[POOL_CAP];
} pool = { PTHREAD_MUTEX_INITIALIZER, 0, { 0 } };

static void pool_put(void *p)
{
    pthread_mutex_lock(&pool.lock);
    if (pool.n < POOL_CAP)
        pool.p[pool.n++] = p;
    else
        p = NULL;
    pthread_mutex_unlock(&pool.lock);
    if (p == NULL)
        bench_fail("reason=pool-full");
}

static void *pool_get(void)
{
    pthread_mutex_lock(&pool.lock);
    void *p = pool.n ? pool.p[--pool.n] : NULL;
    pthread_mutex_unlock(&pool.lock);
    return p;
}

/* A short-lived thread's work: its first malloc, then mixed calls. */
static void worker_calls(bench_rng *r, bool leave)
{
    void *b[CHURN_BLOCKS];
    b[0] = t_malloc(OP_FIRST, 64);
    for (int i = 1; i < CHURN_BLOCKS; i++) {
        size_t sz = bench_rng_range(r, 16, 4096);
        b[i] = i % 8 == 1 ? t_calloc(1, sz) : t_malloc(OP_MALLOC, sz);
    }
    for (int i = 0; i < CHURN_BLOCKS; i += 8)
        b[i] = t_realloc(b[i], bench_rng_range(r, 16, 8192));
    for (int i = 0; i < CHURN_BLOCKS; i++) {
        if (leave && i % 2)
            pool_put(b[i]);
        else
            t_free(OP_FREE, b[i]);
    }
    __atomic_fetch_add(&ops_done, CHURN_BLOCKS * 2 + CHURN_BLOCKS / 8, __ATOMIC_RELAXED);
}

static sem_t churn_slots;
static bool churn_leave;

static void *churn_thread(void *arg)
{
    bench_rng r;
    bench_rng_seed(&r, cfg.seed, (uint64_t)(uintptr_t)arg);
    worker_calls(&r, churn_leave);
    sem_post(&churn_slots); /* detached: the starter may start the next */
    return NULL;
}

/* Small stacks (1,200 threads parked), joinable [0] or detached [1]. */
static pthread_attr_t thread_attr[2];

static void start(pthread_t *th, void *(*fn)(void *), void *arg, bool detached)
{
    if (pthread_create(th, &thread_attr[detached], fn, arg) != 0)
        bench_fail("reason=pthread_create");
}

static void churn_starter(bench_thread *t)
{
    long long n = bench_knob_value(&cfg, "spawned") / t->nthreads;
    bool detached = bench_knob_value(&cfg, "detached") != 0;
    bench_start(t);
    for (long long i = 0; i < n; i++) {
        pthread_t th;
        sem_wait(&churn_slots);
        start(&th, churn_thread, (void *)(uintptr_t)(t->id * n + i + 1), detached);
        if (!detached)
            pthread_join(th, NULL);
        void *p;
        for (int k = 0; k < CHURN_BLOCKS / 2 && (p = pool_get()) != NULL; k++)
            t_free(OP_RFREE, p);
    }
    bench_stop(t);
}

/* ---- heaps, gone: a new thread's first calls among many heaps ---- */

static pthread_mutex_t park_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t park_cond = PTHREAD_COND_INITIALIZER;
static bool parked_go;
static long long parked;
static pthread_t *park;

/* A thread that takes a heap (its first malloc, timed) and stays until
 * unpark: while the threads grow, some of their first calls look among
 * the heaps there are. */
static void *park_thread(void *arg)
{
    (void)arg;
    void *p = t_malloc(OP_PFIRST, 64);
    pthread_mutex_lock(&park_lock);
    parked++;
    pthread_cond_broadcast(&park_cond);
    while (!parked_go)
        pthread_cond_wait(&park_cond, &park_lock);
    pthread_mutex_unlock(&park_lock);
    free(p);
    return NULL;
}

static void park_all(long long n)
{
    park = bench_aux_alloc((size_t)n * sizeof *park);
    for (long long i = 0; i < n; i++)
        start(&park[i], park_thread, NULL, false);
    pthread_mutex_lock(&park_lock);
    while (parked < n)
        pthread_cond_wait(&park_cond, &park_lock);
    pthread_mutex_unlock(&park_lock);
}

static void unpark_all(void)
{
    pthread_mutex_lock(&park_lock);
    parked_go = true;
    pthread_cond_broadcast(&park_cond);
    pthread_mutex_unlock(&park_lock);
    for (long long i = 0; i < parked; i++)
        pthread_join(park[i], NULL);
    bench_aux_free(park, (size_t)parked * sizeof *park);
}

/* A thread whose first malloc comes in its last round of TSD destructors:
 * no destructor hands its allocator state back. */
static pthread_key_t late_key;
static __thread int late_round;

static void late_destructor(void *arg)
{
    if (++late_round < PTHREAD_DESTRUCTOR_ITERATIONS) {
        pthread_setspecific(late_key, arg);
        return;
    }
    void *p = malloc(64);
    bench_escape(p);
    free(p);
}

static void *late_thread(void *arg)
{
    pthread_setspecific(late_key, arg);
    return NULL;
}

static void *timed_thread(void *arg)
{
    bench_rng r;
    bench_rng_seed(&r, cfg.seed, (uint64_t)(uintptr_t)arg);
    worker_calls(&r, false);
    return NULL;
}

/* heaps: `heaps` threads alive, then `spawned` threads one at a time.
 * gone: the same, and before each timed thread one that leaves its heap
 * without a destructor, so that each timed thread's start finds a gone
 * thread's heap to look for among the live ones. */
static void heaps_run(bench_thread *t, bool gone)
{
    long long spawned = bench_knob_value(&cfg, "spawned");
    if (pthread_key_create(&late_key, late_destructor) != 0)
        bench_fail("reason=pthread_key_create");
    bench_start(t);
    park_all(bench_knob_value(&cfg, "heaps"));
    for (long long i = 0; i < spawned; i++) {
        pthread_t th;
        if (gone) {
            start(&th, late_thread, (void *)1, false);
            pthread_join(th, NULL);
        }
        start(&th, timed_thread, (void *)(uintptr_t)(i + 1), false);
        pthread_join(th, NULL);
    }
    bench_stop(t);
    unpark_all();
}

/* ---- large: blocks above every allocator's mmap threshold, reused and
 * given back across the decommit delay ---- */

static void large_run(bench_thread *t)
{
    long long rounds = bench_knob_value(&cfg, "rounds"), calls = bench_knob_value(&cfg, "calls");
    bench_start(t);
    for (long long i = 0; i < rounds; i++) {
        for (int k = 0; k < 8; k++) {
            size_t sz = bench_rng_range(&t->rng, 2, 32) << 20;
            char *p = t_malloc(OP_LMALLOC, sz);
            for (size_t off = 0; off < sz; off += 4096)
                p[off] = 1;
            p = t_realloc(p, sz + (sz >> 1));
            t_free(OP_LFREE, p);
        }
        /* Then small calls spread over a decommit delay and more: whatever
         * gives the cached mappings back runs inside some of them, the
         * more of them the fewer it has to (--calls). */
        void *s[64];
        for (long long k = 0; k < calls; k++) {
            s[k % 64] = t_malloc(OP_MALLOC, bench_rng_range(&t->rng, 16, 1024));
            if (k % 64 == 63)
                for (int j = 0; j < 64; j++)
                    t_free(OP_FREE, s[j]);
            usleep((useconds_t)(400000 / calls));
        }
        for (long long j = 0; j < calls % 64; j++)
            t_free(OP_FREE, s[j]);
        __atomic_fetch_add(&ops_done, (uint64_t)(8 * 3 + 2 * calls), __ATOMIC_RELAXED);
    }
    bench_stop(t);
}

/* ---- burst: a steady set of small blocks replaced one by one, and every
 * 100 ms a burst that thread 0 allocates and thread 1 frees ---- */

#define STEADY 4096
static struct {
    _Atomic(void **) batch; /* the burst's blocks, handed to thread 1 */
    size_t n;
    _Atomic int done;
    pthread_barrier_t parked;
} burst;

static void burst_run(bench_thread *t)
{
    long long rounds = bench_knob_value(&cfg, "rounds");
    size_t burst_bytes = (size_t)bench_knob_value(&cfg, "burst-mb") << 20;
    size_t cap = burst_bytes / 16;
    void **blocks = t->id == 0 ? bench_aux_alloc(cap * sizeof *blocks) : NULL;
    void **set = bench_aux_alloc(STEADY * sizeof *set);
    for (int i = 0; i < STEADY; i++)
        set[i] = bench_malloc(bench_rng_range(&t->rng, 16, 512));
    uint64_t ops = 0;
    bench_start(t);
    if (t->id == 0 && knobs[KNOB_HEAPS].set)
        park_all(knobs[KNOB_HEAPS].value);
    pthread_barrier_wait(&burst.parked);
    uint64_t next = bench_now_ns() + 100000000u;
    for (long long r = 0; t->id == 0 ? r < rounds : !atomic_load(&burst.done);) {
        unsigned i = (unsigned)bench_rng_below(&t->rng, STEADY);
        t_free(OP_FREE, set[i]);
        set[i] = t_malloc(OP_MALLOC, bench_rng_range(&t->rng, 16, 512));
        ops += 2;
        if (t->id == 1) {
            /* Cleared once freed: thread 0 then fills the array again. */
            void **b = atomic_load(&burst.batch);
            if (b != NULL) {
                for (size_t k = 0; k < burst.n; k++)
                    t_free(OP_RFREE, b[k]);
                ops += burst.n;
                atomic_store(&burst.batch, NULL);
            }
            continue;
        }
        if (bench_now_ns() < next || atomic_load(&burst.batch) != NULL)
            continue;
        size_t n = 0;
        for (size_t bytes = 0; bytes < burst_bytes; n++) {
            size_t sz = bench_rng_range(&t->rng, 16, 4096);
            blocks[n] = t_malloc(OP_MALLOC, sz);
            bytes += sz;
        }
        burst.n = n;
        atomic_store(&burst.batch, blocks);
        ops += n;
        r++;
        next = bench_now_ns() + 100000000u;
    }
    if (t->id == 0) {
        while (atomic_load(&burst.batch) != NULL)
            usleep(1000);
        atomic_store(&burst.done, 1);
        if (parked != 0)
            unpark_all();
    }
    bench_stop(t);
    for (int i = 0; i < STEADY; i++)
        free(set[i]);
    __atomic_fetch_add(&ops_done, ops, __ATOMIC_RELAXED);
    bench_aux_free(set, STEADY * sizeof *set);
    if (blocks != NULL)
        bench_aux_free(blocks, cap * sizeof *blocks);
}

enum scenario { CHURN, HEAPS, GONE, LARGE, BURST, SCENARIOS };
static const char *const scenario_name[SCENARIOS] = { "churn", "heaps", "gone", "large", "burst" };
static enum scenario scenario;

static void worker(bench_thread *t)
{
    switch (scenario) {
    case CHURN: churn_starter(t); break;
    case HEAPS: heaps_run(t, false); break;
    case GONE: heaps_run(t, true); break;
    case LARGE: large_run(t); break;
    default: burst_run(t); break;
    }
}

/* --scenario NAME, --scenario=NAME or scenario=NAME, taken out of argv
 * (the harness's knobs are numbers); returns the new argc.  A name that is
 * none of them is left in *bad, for a usage error once the harness knows
 * the program's name. */
static int take_scenario(int argc, char **argv, const char **bad)
{
    int out = 1;
    for (int i = 1; i < argc; i++) {
        const char *v = NULL;
        if (strcmp(argv[i], "--scenario") == 0 && i + 1 < argc)
            v = argv[++i];
        else if (strncmp(argv[i], "--scenario=", 11) == 0 || strncmp(argv[i], "scenario=", 9) == 0)
            v = strchr(argv[i], '=') + 1;
        if (v == NULL) {
            argv[out++] = argv[i];
            continue;
        }
        int s = 0;
        while (s < SCENARIOS && strcmp(v, scenario_name[s]) != 0)
            s++;
        if (s == SCENARIOS)
            *bad = v;
        else
            scenario = (enum scenario)s;
    }
    return out;
}

int main(int argc, char **argv)
{
    const char *bad = NULL;
    argc = take_scenario(argc, argv, &bad);
    bench_parse(&cfg, argc, argv);
    if (bad != NULL)
        bench_usage_error("--scenario: churn, heaps, gone, large or burst, not '%s'", bad);
    if (bench_knob_value(&cfg, "cpu") != 0)
        thread_cpu = true;
    for (int d = 0; d < 2; d++) {
        pthread_attr_init(&thread_attr[d]);
        pthread_attr_setstacksize(&thread_attr[d], 256 << 10);
        pthread_attr_setdetachstate(&thread_attr[d], d ? PTHREAD_CREATE_DETACHED : PTHREAD_CREATE_JOINABLE);
    }
    churn_leave = bench_knob_value(&cfg, "leave") != 0;
    int threads = cfg.threads;
    if (scenario == HEAPS || scenario == GONE || scenario == LARGE)
        threads = 1; /* one thread starts the others, or works alone */
    if (scenario == BURST)
        threads = 2;
    pthread_barrier_init(&burst.parked, NULL, (unsigned)threads);
    sem_init(&churn_slots, 0, (unsigned)threads); /* churn: a thread alive per starter */
    bench_team team;
    bench_team_init(&team, &cfg, threads, NULL, 0);
    bench_team_run(&team, worker);
    double secs = bench_team_seconds(&team);
    char extra[2048];
    size_t len = 0;
    len += (size_t)snprintf(extra + len, sizeof extra - len, "scenario=%s", scenario_name[scenario]);
    for (int op = 0; op < OP_COUNT; op++) {
        uint64_t total = 0;
        for (unsigned b = 0; b < BUCKETS; b++)
            total += hist[op][b];
        if (total == 0)
            continue;
        /* p50, p99, p99.9: the smallest bucket value with that share at or below it. */
        static const double q[3] = { 0.50, 0.99, 0.999 };
        uint64_t at[3] = { 0, 0, 0 }, seen = 0;
        int k = 0;
        for (unsigned b = 0; b < BUCKETS && k < 3; b++) {
            seen += hist[op][b];
            while (k < 3 && (double)seen >= q[k] * (double)total)
                at[k++] = bucket_low(b);
        }
        len += (size_t)snprintf(extra + len, sizeof extra - len,
                                " %s_n=%llu %s_p50_ns=%llu %s_p99_ns=%llu %s_p999_ns=%llu %s_max_ns=%llu",
                                op_name[op], (unsigned long long)total, op_name[op], (unsigned long long)at[0],
                                op_name[op], (unsigned long long)at[1], op_name[op], (unsigned long long)at[2],
                                op_name[op], (unsigned long long)worst[op]);
    }
    printf("hakmem-bench-result workload=tail threads=%d ops=%llu seconds=%.6f ops_per_sec=%.0f check=ok %s\n",
           threads, (unsigned long long)ops_done, secs, secs > 0 ? (double)ops_done / secs : 0.0, extra);
    bench_team_destroy(&team);
    return 0;
}
