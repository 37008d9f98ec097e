/* larson: server simulation after Larson & Krishnan (ISMM'98), steady-state
 * variant. The original runs rounds in which new threads inherit the slot
 * arrays of the threads before them, so blocks die in threads other than the
 * one that made them. Here all threads share one array of slots instead
 * (`slots` per thread) and replace random slots anywhere in it: the new block
 * goes in with an atomic exchange, which hands the old block to this thread
 * alone, so each block is freed exactly once and, with T threads, a fraction
 * (T-1)/T of the frees are remote. No thread start-up or exit is measured; the
 * churn workload covers that. One operation = one malloc + one free. */
#include "bench.h"

static bench_knob knobs[] = {
    BENCH_KNOB("iters", 15000000, 400000, 1, "slot replacements (malloc + free), total over threads"),
    BENCH_KNOB("slots", 1000, 1000, 1, "shared slots per thread"),
    BENCH_KNOB("min_size", 16, 16, 8, "smallest block size"),
    BENCH_KNOB("max_size", 512, 512, 8, "largest block size"),
    BENCH_KNOB_END,
};

static bench_config cfg = {
    .workload = "larson",
    .summary = "Larson & Krishnan server simulation, steady state: threads replace random\n"
               "slots of one shared array, so most frees are of blocks another thread made;\n"
               "one operation = one malloc + one free.",
    .knobs = knobs,
};

typedef struct shared {
    _Atomic(void *) *slot;
    size_t nslots, lo, hi;
} shared;

static void worker(bench_thread *t)
{
    shared *sh = t->shared;
    size_t per = sh->nslots / (size_t)t->nthreads, first = per * (size_t)t->id;
    uint64_t iters = (uint64_t)bench_knob_value(&cfg, "iters");
    uint64_t mine = iters / (uint64_t)t->nthreads + ((uint64_t)t->id < iters % (uint64_t)t->nthreads);
    bool full = cfg.full_check;
    uint64_t seed = cfg.seed;

    for (size_t i = first; i < first + per; i++) {
        size_t size = bench_rng_range(&t->rng, sh->lo, sh->hi);
        void *p = bench_malloc(size);
        bench_block_fill(p, size, seed, full);
        atomic_store_explicit(&sh->slot[i], p, memory_order_release);
    }

    bench_start(t);
    for (uint64_t n = 0; n < mine; n++) {
        size_t i = (size_t)bench_rng_below(&t->rng, sh->nslots);
        size_t size = bench_rng_range(&t->rng, sh->lo, sh->hi);
        uint64_t t0 = bench_lat_begin(&t->lat);
        void *p = bench_malloc(size);
        bench_block_fill(p, size, seed, full);
        void *old = atomic_exchange_explicit(&sh->slot[i], p, memory_order_acq_rel);
        bench_block_check("larson-replace", old, 0, sh->lo, sh->hi, seed, full);
        free(old);
        bench_lat_end(&t->lat, t0);
    }
    t->ops = mine;
    bench_stop(t);

    /* After the end barrier nobody exchanges any more: free this thread's range. */
    for (size_t i = first; i < first + per; i++) {
        void *p = atomic_load_explicit(&sh->slot[i], memory_order_acquire);
        bench_block_check("larson-final", p, 0, sh->lo, sh->hi, seed, full);
        free(p);
    }
}

int main(int argc, char **argv)
{
    bench_parse(&cfg, argc, argv);
    shared sh = {
        .nslots = (size_t)bench_knob_value(&cfg, "slots") * (size_t)cfg.threads,
        .lo = (size_t)bench_knob_value(&cfg, "min_size"),
        .hi = (size_t)bench_knob_value(&cfg, "max_size"),
    };
    if (sh.lo > sh.hi)
        bench_usage_error("min_size must not exceed max_size");
    sh.slot = bench_aux_alloc(sh.nslots * sizeof *sh.slot);

    uint64_t per = (uint64_t)bench_knob_value(&cfg, "iters") / (uint64_t)cfg.threads + 1;
    bench_team team;
    bench_team_init(&team, &cfg, cfg.threads, &sh, per / BENCH_LAT_EVERY + 16);
    bench_team_run(&team, worker);
    bench_team_report(&team, NULL);
    bench_team_destroy(&team);
    bench_aux_free(sh.slot, sh.nslots * sizeof *sh.slot);
    return 0;
}
