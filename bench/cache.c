/* Hoard's false-sharing tests (Berger et al., ASPLOS 2000).
 *
 * cache-thrash (active false sharing): every thread repeatedly allocates a
 * small object, writes each of its bytes many times and frees it. An allocator
 * that carves objects for different threads out of one cache line makes the
 * threads fight over that line although they share nothing.
 *
 * cache-scratch (passive false sharing): the same loop, but first the main
 * thread allocates `handed` small objects per thread, back to back and dealt
 * round-robin (so neighbours go to different threads), and hands them over;
 * each thread frees its own before its loop. An allocator that then gives the
 * freed objects (or their neighbours) back to the freeing thread spreads the
 * main thread's cache lines over all threads. Hoard's test hands one object
 * per thread; more defeat an allocator that reuses other threads' blocks only
 * once it holds several.
 *
 * Iterations are split across threads. One operation = one byte written
 * (incremented); every malloc and free is a latency sample. */
#include "cache.h"

#include "bench.h"

static bench_knob knobs[] = {
    BENCH_KNOB("iters", 1000, 100, 1, "allocate/write/free iterations, total over threads"),
    BENCH_KNOB("reps", 100000, 5000, 1, "times each byte is incremented per iteration"),
    BENCH_KNOB("size", 8, 8, 8, "object size in bytes"),
    BENCH_KNOB("handed", 1, 1, 1, "cache-scratch: objects the main thread hands each thread"),
    BENCH_KNOB_END,
};

static bench_config cfg = {
    .knobs = knobs,
};

/* Handed object k's nonce: the main thread's stream (after the workers'),
 * counted by k. */
#define HANDED_NONCE(k) (bench_nonce_first(BENCH_MAX_THREADS) + (k))

typedef struct shared {
    void **handed; /* cache-scratch: object k goes to thread k % threads */
    size_t size, per; /* per: objects handed to each thread */
    uint64_t iters, reps;
} shared;

/* Increments every byte reps times through a volatile pointer, then checks
 * the result. A read-modify-write needs the line owned, so false sharing
 * shows; plain stores drain through the store buffer and hide it (measured on
 * the 2-core KVM guest: no difference for stores, 1.5x for increments). */
static void scribble(void *obj, size_t size, uint64_t reps, uint64_t iter)
{
    volatile unsigned char *b = obj;
    for (size_t k = 0; k < size; k++)
        b[k] = (unsigned char)(k + iter);
    for (uint64_t r = 0; r < reps; r++)
        for (size_t k = 0; k < size; k++)
            b[k]++;
    for (size_t k = 0; k < size; k++)
        if (b[k] != (unsigned char)(k + iter + reps))
            bench_fail("reason=corrupt where=cache-scribble ptr=%p offset=%zu", obj, k);
}

static void worker(bench_thread *t)
{
    shared *sh = t->shared;
    uint64_t mine = sh->iters / (uint64_t)t->nthreads + ((uint64_t)t->id < sh->iters % (uint64_t)t->nthreads);
    bench_lat_every(&t->lat, 1); /* few calls, each between long write loops */

    bench_start(t);
    for (size_t k = (size_t)t->id; sh->handed && k < sh->per * (size_t)t->nthreads; k += (size_t)t->nthreads) {
        bench_block_check("cache-handed", sh->handed[k], sh->size, 0, 0, cfg.seed, HANDED_NONCE(k), false);
        free(sh->handed[k]);
    }
    for (uint64_t i = 0; i < mine; i++) {
        uint64_t t0 = bench_lat_begin(&t->lat);
        void *obj = bench_malloc(sh->size);
        bench_lat_end(&t->lat, t0);
        scribble(obj, sh->size, sh->reps, i);
        t0 = bench_lat_begin(&t->lat);
        free(obj);
        bench_lat_end(&t->lat, t0);
    }
    t->ops = mine * sh->reps * sh->size;
    bench_stop(t);
}

int cache_main(int argc, char **argv, bool scratch)
{
    cfg.workload = scratch ? "cache-scratch" : "cache-thrash";
    cfg.summary = scratch
        ? "Hoard's passive false sharing: the main thread hands each thread a small object,\n"
          "which it frees; then each thread allocates, writes many times and frees small\n"
          "objects. One operation = one byte written."
        : "Hoard's active false sharing: each thread allocates, writes many times and frees\n"
          "small objects. One operation = one byte written.";
    bench_parse(&cfg, argc, argv);
    shared sh = {
        .size = (size_t)bench_knob_value(&cfg, "size"),
        .iters = (uint64_t)bench_knob_value(&cfg, "iters"),
        .reps = (uint64_t)bench_knob_value(&cfg, "reps"),
        .per = scratch ? (size_t)bench_knob_value(&cfg, "handed") : 0,
    };
    int n = cfg.threads;
    size_t total = sh.per * (size_t)n;
    if (scratch) {
        sh.handed = bench_aux_alloc(sizeof(void *) * total);
        for (size_t k = 0; k < total; k++) {
            sh.handed[k] = bench_malloc(sh.size);
            bench_block_fill(sh.handed[k], sh.size, cfg.seed, HANDED_NONCE(k), false);
        }
    }
    bench_team team;
    bench_team_init(&team, &cfg, n, &sh, 2 * (sh.iters / (uint64_t)n + 1) + 16);
    bench_team_run(&team, worker);
    bench_team_report(&team, NULL);
    bench_team_destroy(&team);
    bench_aux_free(sh.handed, sizeof(void *) * total);
    return 0;
}
