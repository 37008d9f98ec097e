/* ring: every free is remote. Thread i allocates batches of blocks and hands
 * them over a bounded channel to thread i+1 (mod T), which verifies and frees
 * them. Every thread is producer and consumer at once; a thread whose
 * successor's channel is full keeps draining its own, so the ring cannot
 * deadlock. With one thread the ring closes on itself and every free is local.
 * One operation = one block allocated and freed; a latency sample is one
 * malloc or one free. */
#include "bench.h"

#include <sched.h>

static bench_knob knobs[] = {
    BENCH_KNOB("iters", 15000000, 300000, 1, "blocks passed along the ring, total"),
    BENCH_KNOB("batch", 64, 64, 1, "blocks per hand-over (at most 64)"),
    BENCH_KNOB("min_size", 16, 16, 8, "smallest block size"),
    BENCH_KNOB("max_size", 512, 512, 8, "largest block size"),
    BENCH_KNOB("queue", 8, 8, 1, "channel capacity in batches"),
    BENCH_KNOB_END,
};

static bench_config cfg = {
    .workload = "ring",
    .summary = "Threads in a ring: each allocates batches and passes them to the next thread,\n"
               "which verifies and frees them; one operation = one block allocated and freed.",
    .knobs = knobs,
};

typedef struct shared {
    bench_chan *in; /* in[i]: batches for thread i */
    size_t lo, hi;
    uint32_t batch;
    uint64_t iters;
} shared;

static uint64_t share_of(uint64_t total, int id, int n)
{
    return total / (uint64_t)n + ((uint64_t)id < total % (uint64_t)n);
}

static void worker(bench_thread *t)
{
    shared *sh = t->shared;
    int n = t->nthreads;
    bench_chan *out = &sh->in[(t->id + 1) % n], *in = &sh->in[t->id];
    uint64_t mine = share_of(sh->iters, t->id, n);
    uint64_t expect = share_of(sh->iters, (t->id + n - 1) % n, n); /* the predecessor's */
    uint64_t sent = 0, freed = 0;
    uint64_t nonce = bench_nonce_first((uint64_t)t->id);
    bool full = cfg.full_check, pending = false;
    bench_batch b, r;

    bench_start(t);
    while (sent < mine || freed < expect) {
        bool progress = false;
        if (sent < mine && !pending) {
            uint64_t left = mine - sent;
            b.n = left < sh->batch ? (uint32_t)left : sh->batch;
            for (uint32_t k = 0; k < b.n; k++) {
                size_t size = bench_rng_range(&t->rng, sh->lo, sh->hi);
                uint64_t t0 = bench_lat_begin(&t->lat);
                b.p[k] = bench_malloc(size);
                b.nonce[k] = nonce++;
                bench_block_fill(b.p[k], size, cfg.seed, b.nonce[k], full);
                bench_lat_end(&t->lat, t0);
            }
            pending = true;
        }
        if (pending && bench_chan_push(out, &b)) {
            sent += b.n;
            pending = false;
            progress = true;
        }
        while (bench_chan_pop(in, &r)) {
            for (uint32_t k = 0; k < r.n; k++) {
                uint64_t t0 = bench_lat_begin(&t->lat);
                bench_block_check("ring-receiver", r.p[k], 0, sh->lo, sh->hi, cfg.seed, r.nonce[k], full);
                free(r.p[k]);
                bench_lat_end(&t->lat, t0);
            }
            freed += r.n;
            progress = true;
        }
        if (!progress)
            sched_yield();
    }
    t->ops = freed;
    bench_stop(t);
}

int main(int argc, char **argv)
{
    bench_parse(&cfg, argc, argv);
    shared sh = {
        .lo = (size_t)bench_knob_value(&cfg, "min_size"),
        .hi = (size_t)bench_knob_value(&cfg, "max_size"),
        .batch = (uint32_t)bench_knob_value(&cfg, "batch"),
        .iters = (uint64_t)bench_knob_value(&cfg, "iters"),
    };
    if (sh.lo > sh.hi)
        bench_usage_error("min_size must not exceed max_size");
    if (sh.batch > BENCH_BATCH)
        bench_usage_error("batch must be at most %d", BENCH_BATCH);
    int n = cfg.threads;
    sh.in = bench_aux_alloc(sizeof(bench_chan) * (size_t)n);
    for (int i = 0; i < n; i++)
        bench_chan_init(&sh.in[i], (uint32_t)bench_knob_value(&cfg, "queue"));

    bench_team team;
    bench_team_init(&team, &cfg, n, &sh, 2 * (sh.iters / (uint64_t)n + 1) / BENCH_LAT_EVERY + 16);
    bench_team_run(&team, worker);
    bench_team_report(&team, NULL);
    bench_team_destroy(&team);
    for (int i = 0; i < n; i++)
        bench_chan_destroy(&sh.in[i]);
    bench_aux_free(sh.in, sizeof(bench_chan) * (size_t)n);
    return 0;
}
