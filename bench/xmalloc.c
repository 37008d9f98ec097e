/* xmalloc: producer/consumer after the xmalloc test (Lever & Boreham): producer
 * threads only allocate, consumer threads only verify and free, so every free
 * is remote and every allocation happens on a thread that never frees.
 *
 * --threads is the total thread count; at least two run (one pair), reported as
 * real_threads=. With R threads, (R+1)/2 are producers and R/2 consumers;
 * producer i sends batches of 64 blocks over its own bounded channel to
 * consumer i % consumers. One operation = one block allocated and freed. */
#include "bench.h"

#include <sched.h>

static bench_knob knobs[] = {
    BENCH_KNOB("iters", 10000000, 300000, 1, "blocks passed (malloc + remote free), total"),
    BENCH_KNOB("min_size", 16, 16, 8, "smallest block size"),
    BENCH_KNOB("max_size", 512, 512, 8, "largest block size"),
    BENCH_KNOB("queue", 16, 16, 1, "channel capacity in batches of 64 blocks"),
    BENCH_KNOB_END,
};

static bench_config cfg = {
    .workload = "xmalloc",
    .summary = "Producer threads allocate blocks and pass them in batches to consumer threads\n"
               "that verify and free them; one operation = one block allocated and freed.",
    .knobs = knobs,
};

typedef struct channel {
    bench_chan chan;
    _Alignas(BENCH_CACHELINE) atomic_bool done; /* producer pushed its last batch */
} channel;

typedef struct shared {
    channel *ch; /* one per producer */
    int producers, consumers;
    size_t lo, hi;
} shared;

static void produce(bench_thread *t, shared *sh)
{
    channel *c = &sh->ch[t->id];
    uint64_t iters = (uint64_t)bench_knob_value(&cfg, "iters");
    uint64_t np = (uint64_t)sh->producers;
    uint64_t mine = iters / np + ((uint64_t)t->id < iters % np);
    bool full = cfg.full_check;
    uint64_t nonce = bench_nonce_first((uint64_t)t->id);
    bench_batch b;

    bench_start(t);
    for (uint64_t left = mine; left > 0;) {
        b.n = left < BENCH_BATCH ? (uint32_t)left : BENCH_BATCH;
        for (uint32_t k = 0; k < b.n; k++) {
            size_t size = bench_rng_range(&t->rng, sh->lo, sh->hi);
            uint64_t t0 = bench_lat_begin(&t->lat);
            b.p[k] = bench_malloc(size);
            b.nonce[k] = nonce++;
            bench_block_fill(b.p[k], size, cfg.seed, b.nonce[k], full);
            bench_lat_end(&t->lat, t0);
        }
        while (!bench_chan_push(&c->chan, &b))
            sched_yield();
        left -= b.n;
    }
    atomic_store_explicit(&c->done, true, memory_order_release);
    bench_stop(t);
}

static void consume(bench_thread *t, shared *sh)
{
    int me = t->id - sh->producers, open = 0;
    for (int i = me; i < sh->producers; i += sh->consumers)
        open++;
    bool full = cfg.full_check, finished[BENCH_MAX_THREADS] = {false};
    uint64_t freed = 0;
    bench_batch b;

    bench_start(t);
    while (open > 0) {
        bool progress = false;
        for (int i = me; i < sh->producers; i += sh->consumers) {
            if (finished[i])
                continue;
            /* done is read before the pop: a failed pop after done means empty for good. */
            bool done = atomic_load_explicit(&sh->ch[i].done, memory_order_acquire);
            if (!bench_chan_pop(&sh->ch[i].chan, &b)) {
                if (done) {
                    finished[i] = true;
                    open--;
                }
                continue;
            }
            progress = true;
            for (uint32_t k = 0; k < b.n; k++) {
                uint64_t t0 = bench_lat_begin(&t->lat);
                bench_block_check("xmalloc-consumer", b.p[k], 0, sh->lo, sh->hi, cfg.seed, b.nonce[k], full);
                free(b.p[k]);
                bench_lat_end(&t->lat, t0);
            }
            freed += b.n;
        }
        if (!progress)
            sched_yield();
    }
    t->ops = freed;
    bench_stop(t);
}

static void worker(bench_thread *t)
{
    shared *sh = t->shared;
    if (t->id < sh->producers)
        produce(t, sh);
    else
        consume(t, sh);
}

int main(int argc, char **argv)
{
    bench_parse(&cfg, argc, argv);
    int real = cfg.threads < 2 ? 2 : cfg.threads;
    shared sh = {
        .producers = (real + 1) / 2,
        .consumers = real / 2,
        .lo = (size_t)bench_knob_value(&cfg, "min_size"),
        .hi = (size_t)bench_knob_value(&cfg, "max_size"),
    };
    if (sh.lo > sh.hi)
        bench_usage_error("min_size must not exceed max_size");
    sh.ch = bench_aux_alloc(sizeof(channel) * (size_t)sh.producers);
    for (int i = 0; i < sh.producers; i++) {
        bench_chan_init(&sh.ch[i].chan, (uint32_t)bench_knob_value(&cfg, "queue"));
        atomic_init(&sh.ch[i].done, false);
    }

    uint64_t per = (uint64_t)bench_knob_value(&cfg, "iters") / (uint64_t)sh.consumers + 1;
    bench_team team;
    bench_team_init(&team, &cfg, real, &sh, per / BENCH_LAT_EVERY + 16);
    bench_team_run(&team, worker);
    bench_result r = {.len = 0};
    bench_extra(&r, "real_threads", "%d", real);
    bench_extra(&r, "producers", "%d", sh.producers);
    bench_extra(&r, "consumers", "%d", sh.consumers);
    bench_team_report(&team, &r);
    bench_team_destroy(&team);
    for (int i = 0; i < sh.producers; i++)
        bench_chan_destroy(&sh.ch[i].chan);
    bench_aux_free(sh.ch, sizeof(channel) * (size_t)sh.producers);
    return 0;
}
