/* mixed: random sizes in a fixed working set, the seeds' "Mixed" probe.
 * Each thread owns `ws` slots; one operation frees a random slot and refills it
 * with a block of a new random size. Only the block ends are written and
 * checked, so the allocator dominates the time. */
#include "bench.h"

static bench_knob knobs[] = {
    BENCH_KNOB("iters", 20000000, 400000, 1, "slot replacements (free + malloc), total over threads"),
    BENCH_KNOB("ws", 400, 400, 1, "working-set slots per thread"),
    BENCH_KNOB("min_size", 16, 16, 8, "smallest block size"),
    BENCH_KNOB("max_size", 1024, 1024, 8, "largest block size"),
    BENCH_KNOB_END,
};

static bench_config cfg = {
    .workload = "mixed",
    .summary = "Random replacement in a fixed working set of blocks of random sizes;\n"
               "one operation = one free + one malloc.",
    .knobs = knobs,
};

typedef struct slot {
    void *p;
    size_t size;
    uint64_t nonce; /* of the block's contents: a second owner's fill differs */
} slot;

static void worker(bench_thread *t)
{
    size_t ws = (size_t)bench_knob_value(&cfg, "ws");
    size_t lo = (size_t)bench_knob_value(&cfg, "min_size");
    size_t hi = (size_t)bench_knob_value(&cfg, "max_size");
    uint64_t iters = (uint64_t)bench_knob_value(&cfg, "iters");
    uint64_t mine = iters / (uint64_t)t->nthreads + ((uint64_t)t->id < iters % (uint64_t)t->nthreads);
    bool full = cfg.full_check;
    uint64_t seed = cfg.seed, nonce = bench_nonce_first((uint64_t)t->id);

    slot *s = bench_aux_alloc(ws * sizeof(slot));
    for (size_t i = 0; i < ws; i++) {
        s[i].size = bench_rng_range(&t->rng, lo, hi);
        s[i].p = bench_malloc(s[i].size);
        s[i].nonce = nonce++;
        bench_block_fill(s[i].p, s[i].size, seed, s[i].nonce, full);
    }

    bench_start(t);
    for (uint64_t n = 0; n < mine; n++) {
        slot *v = &s[bench_rng_below(&t->rng, ws)];
        size_t size = bench_rng_range(&t->rng, lo, hi);
        uint64_t t0 = bench_lat_begin(&t->lat);
        bench_block_check("mixed-replace", v->p, v->size, lo, hi, seed, v->nonce, full);
        free(v->p);
        v->p = bench_malloc(size);
        v->size = size;
        v->nonce = nonce++;
        bench_block_fill(v->p, size, seed, v->nonce, full);
        bench_lat_end(&t->lat, t0);
    }
    t->ops = mine;
    bench_stop(t);

    for (size_t i = 0; i < ws; i++) {
        bench_block_check("mixed-final", s[i].p, s[i].size, lo, hi, seed, s[i].nonce, full);
        free(s[i].p);
    }
    bench_aux_free(s, ws * sizeof(slot));
}

int main(int argc, char **argv)
{
    bench_parse(&cfg, argc, argv);
    if (bench_knob_value(&cfg, "min_size") > bench_knob_value(&cfg, "max_size"))
        bench_usage_error("min_size must not exceed max_size");
    uint64_t per = (uint64_t)bench_knob_value(&cfg, "iters") / (uint64_t)cfg.threads + 1;
    bench_team team;
    bench_team_init(&team, &cfg, cfg.threads, NULL, per / BENCH_LAT_EVERY + 16);
    bench_team_run(&team, worker);
    bench_team_report(&team, NULL);
    bench_team_destroy(&team);
    return 0;
}
