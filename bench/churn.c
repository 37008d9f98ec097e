/* churn: threads are born and die all the time. The main thread keeps
 * --threads workers alive until --spawns have been created. Each worker
 * allocates a few hundred blocks, frees half of them, verifies and frees as
 * many blocks that earlier (often dead) threads left in a shared pool, and
 * leaves its other half in the pool. So every run exercises heap set-up at
 * thread start, heap abandonment at exit and frees into abandoned heaps. The
 * pool is emptied at the end. One operation = one block allocated and freed;
 * a latency sample is one malloc or one free. */
#include "bench.h"

#include <inttypes.h>
#include <stdio.h>

static bench_knob knobs[] = {
    BENCH_KNOB("spawns", 5000, 200, 1, "threads created in total"),
    BENCH_KNOB("blocks", 256, 256, 2, "blocks allocated by each thread"),
    BENCH_KNOB("min_size", 16, 16, 8, "smallest block size"),
    BENCH_KNOB("max_size", 1024, 1024, 8, "largest block size"),
    BENCH_KNOB_END,
};

static bench_config cfg = {
    .workload = "churn",
    .summary = "Threads are created and exit continuously (--threads alive at a time); each\n"
               "leaves half of its blocks in a shared pool that later threads verify and free.\n"
               "One operation = one block allocated and freed.",
    .knobs = knobs,
};

/* A block and the nonce of its contents (bench_block_fill). */
typedef struct owned {
    void *p;
    uint64_t nonce;
} owned;

/* Blocks left behind by finished threads (mutex: a few pushes per thread life). */
static struct {
    pthread_mutex_t lock;
    owned *p;
    size_t n, cap;
} pool = {.lock = PTHREAD_MUTEX_INITIALIZER};

static size_t lo, hi, nblocks;

/* One per concurrent worker; reused by spawn k + threads once spawn k is joined. */
typedef struct spawn {
    _Alignas(BENCH_CACHELINE) uint64_t k;
    pthread_t tid;
    bench_lat lat;
    void **mine; /* nblocks entries; block i's nonce is bench_nonce_first(k) + i */
} spawn;

static void check_free(spawn *s, owned b)
{
    uint64_t t0 = bench_lat_begin(&s->lat);
    bench_block_check("churn", b.p, 0, lo, hi, cfg.seed, b.nonce, cfg.full_check);
    free(b.p);
    bench_lat_end(&s->lat, t0);
}

static void *worker(void *arg)
{
    spawn *s = arg;
    bench_rng rng;
    bench_rng_seed(&rng, cfg.seed, s->k);
    uint64_t first = bench_nonce_first(s->k);
    for (size_t i = 0; i < nblocks; i++) {
        size_t size = bench_rng_range(&rng, lo, hi);
        uint64_t t0 = bench_lat_begin(&s->lat);
        s->mine[i] = bench_malloc(size);
        bench_block_fill(s->mine[i], size, cfg.seed, first + i, cfg.full_check);
        bench_lat_end(&s->lat, t0);
    }
    for (size_t i = 0; i < nblocks; i += 2) /* free every other one: holes, not a prefix */
        check_free(s, (owned){s->mine[i], first + i});

    size_t keep = nblocks / 2, got = 0;
    owned orphans[512];
    pthread_mutex_lock(&pool.lock);
    while (got < keep && got < sizeof orphans / sizeof orphans[0] && pool.n > 0)
        orphans[got++] = pool.p[--pool.n];
    pthread_mutex_unlock(&pool.lock);
    for (size_t i = 0; i < got; i++)
        check_free(s, orphans[i]);

    size_t i = 1;
    pthread_mutex_lock(&pool.lock);
    for (; i < nblocks && pool.n < pool.cap; i += 2)
        pool.p[pool.n++] = (owned){s->mine[i], first + i};
    pthread_mutex_unlock(&pool.lock);
    for (; i < nblocks; i += 2) /* pool full: rare, only with many live threads */
        check_free(s, (owned){s->mine[i], first + i});
    return NULL;
}

int main(int argc, char **argv)
{
    bench_parse(&cfg, argc, argv);
    lo = (size_t)bench_knob_value(&cfg, "min_size");
    hi = (size_t)bench_knob_value(&cfg, "max_size");
    nblocks = (size_t)bench_knob_value(&cfg, "blocks");
    uint64_t spawns = (uint64_t)bench_knob_value(&cfg, "spawns");
    if (lo > hi)
        bench_usage_error("min_size must not exceed max_size");
    if (nblocks > 1024)
        bench_usage_error("blocks must be at most 1024");
    int live = cfg.threads;

    /* A worker takes out up to nblocks/2 before it adds as many, so the pool
     * stays near the leftovers of the live workers; the cap only bounds it. */
    pool.cap = (size_t)(live + 1) * nblocks;
    pool.p = bench_aux_alloc(pool.cap * sizeof(owned));
    spawn *sp = bench_aux_alloc(sizeof(spawn) * (size_t)live);
    uint64_t per_slot = (spawns / (uint64_t)live + 1) * 2 * nblocks;
    for (int i = 0; i < live; i++) {
        bench_lat_init(&sp[i].lat, cfg.latency, per_slot / BENCH_LAT_EVERY + 16);
        sp[i].mine = bench_aux_alloc(nblocks * sizeof(void *));
    }

    bench_os os0, os1;
    bool os_counted = bench_os_counts(&os0);
    struct timespec c0, c1;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &c0);
    uint64_t t0 = bench_now_ns();
    for (uint64_t k = 0; k < spawns; k++) {
        spawn *s = &sp[k % (uint64_t)live];
        if (k >= (uint64_t)live)
            pthread_join(s->tid, NULL);
        s->k = k;
        int e = pthread_create(&s->tid, NULL, worker, s);
        if (e)
            bench_fail("reason=pthread_create errno=%d spawn=%" PRIu64, e, k);
    }
    for (uint64_t k = spawns > (uint64_t)live ? spawns - (uint64_t)live : 0; k < spawns; k++)
        pthread_join(sp[k % (uint64_t)live].tid, NULL);
    uint64_t t1 = bench_now_ns();
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &c1);
    if (os_counted)
        bench_os_counts(&os1);

    size_t left = pool.n;
    while (pool.n > 0) {
        owned b = pool.p[--pool.n];
        bench_block_check("churn-final", b.p, 0, lo, hi, cfg.seed, b.nonce, cfg.full_check);
        free(b.p);
    }

    bench_lat *lats[BENCH_MAX_THREADS];
    for (int i = 0; i < live; i++)
        lats[i] = &sp[i].lat;
    bench_result r = {.len = 0};
    bench_extra(&r, "cpu_seconds", "%.6f",
                (double)(c1.tv_sec - c0.tv_sec) + (double)(c1.tv_nsec - c0.tv_nsec) / 1e9);
    if (os_counted)
        bench_os_extra(&r, &os0, &os1);
    bench_extra(&r, "threads_created", "%" PRIu64, spawns);
    bench_extra(&r, "pool_left", "%zu", left);
    bench_report(&cfg, live, spawns * nblocks, (double)(t1 - t0) / 1e9, lats, live, &r);

    for (int i = 0; i < live; i++) {
        bench_lat_free(&sp[i].lat);
        bench_aux_free(sp[i].mine, nblocks * sizeof(void *));
    }
    bench_aux_free(sp, sizeof(spawn) * (size_t)live);
    bench_aux_free(pool.p, pool.cap * sizeof(owned));
    return 0;
}
