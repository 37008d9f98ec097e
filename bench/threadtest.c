/* threadtest: Hoard's threadtest (Berger et al., ASPLOS 2000). Each thread
 * repeatedly allocates a batch of objects of one small size and then frees
 * them all, privately: nothing crosses threads, so it measures the local fast
 * path and how well it scales. The objects are split across the threads as in
 * the original (objects / threads per batch). One operation = one malloc + one
 * free; a latency sample is one malloc or one free. */
#include "bench.h"

static bench_knob knobs[] = {
    BENCH_KNOB("rounds", 2000, 30, 1, "allocate-all/free-all rounds per thread"),
    BENCH_KNOB("objects", 10000, 10000, 1, "objects per round, split across threads"),
    BENCH_KNOB("size", 8, 8, 8, "object size in bytes"),
    BENCH_KNOB_END,
};

static bench_config cfg = {
    .workload = "threadtest",
    .summary = "Hoard's threadtest: each thread allocates a batch of small objects, then frees\n"
               "them all, for a number of rounds; one operation = one malloc + one free.",
    .knobs = knobs,
};

static void worker(bench_thread *t)
{
    uint64_t rounds = (uint64_t)bench_knob_value(&cfg, "rounds");
    size_t objects = (size_t)bench_knob_value(&cfg, "objects");
    size_t size = (size_t)bench_knob_value(&cfg, "size");
    size_t mine = objects / (size_t)t->nthreads + ((size_t)t->id < objects % (size_t)t->nthreads);
    bool full = cfg.full_check;
    void **obj = bench_aux_alloc((mine ? mine : 1) * sizeof(void *));

    /* Object i of round r has nonce first + r * mine + i: unique, and known
     * from its place without storing it. */
    uint64_t first = bench_nonce_first((uint64_t)t->id);

    bench_start(t);
    for (uint64_t r = 0; r < rounds; r++, first += mine) {
        for (size_t i = 0; i < mine; i++) {
            uint64_t t0 = bench_lat_begin(&t->lat);
            obj[i] = bench_malloc(size);
            bench_block_fill(obj[i], size, cfg.seed, first + i, full);
            bench_lat_end(&t->lat, t0);
        }
        for (size_t i = 0; i < mine; i++) {
            uint64_t t0 = bench_lat_begin(&t->lat);
            bench_block_check("threadtest", obj[i], size, size, size, cfg.seed, first + i, full);
            free(obj[i]);
            bench_lat_end(&t->lat, t0);
        }
    }
    t->ops = rounds * mine;
    bench_stop(t);
    bench_aux_free(obj, (mine ? mine : 1) * sizeof(void *));
}

int main(int argc, char **argv)
{
    bench_parse(&cfg, argc, argv);
    uint64_t per = (uint64_t)bench_knob_value(&cfg, "rounds") *
                   ((uint64_t)bench_knob_value(&cfg, "objects") / (uint64_t)cfg.threads + 1);
    bench_team team;
    bench_team_init(&team, &cfg, cfg.threads, NULL, 2 * per / BENCH_LAT_EVERY + 16);
    bench_team_run(&team, worker);
    bench_team_report(&team, NULL);
    bench_team_destroy(&team);
    return 0;
}
