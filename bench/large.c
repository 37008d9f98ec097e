/* large: big blocks and realloc growth. Each chain mallocs a block of
 * min_size..4*min_size bytes and reallocs it to 1.5x its size until it reaches
 * max_size, then frees it; the chains are split across the threads, each
 * thread running its own one at a time. The content is checked after every
 * realloc: a word at every page (every word with --full-check) and the last
 * word hold key + offset, with the key derived from the chain (the block
 * moves, so not from its address). One operation = one malloc, realloc or
 * free; every operation is a latency sample. */
#include "bench.h"

static bench_knob knobs[] = {
    BENCH_KNOB("chains", 16, 4, 1, "growth chains, total over threads"),
    BENCH_KNOB("min_size", 65536, 65536, 16, "chains start at min_size..4*min_size bytes"),
    BENCH_KNOB("max_size", 33554432, 4194304, 16, "chains end at this size"),
    BENCH_KNOB_END,
};

static bench_config cfg = {
    .workload = "large",
    .summary = "Large blocks: realloc growth chains (x1.5 from 64 KiB up to 32 MiB by default)\n"
               "with the content checked after every realloc; one operation = one malloc,\n"
               "realloc or free.",
    .knobs = knobs,
};

#define STRIDE 4096

static size_t stride(void) { return cfg.full_check ? 8 : STRIDE; }

static void put(unsigned char *b, size_t off, uint64_t key)
{
    uint64_t w = key + off;
    memcpy(b + off, &w, 8);
}

/* A block of `size` bytes holds key + off at every stride offset with
 * off + 16 <= size and at the last word, size - 8 (which may overlap the stride
 * word before it, hence the 16). Growing from `from` bytes rewrites the stride
 * words the old last word covered or skipped, then the new last word. */
static void fill(unsigned char *b, size_t from, size_t size, uint64_t key)
{
    size_t st = stride(), first = from > 15 ? from - 15 : 0;
    for (size_t off = (first + st - 1) / st * st; off + 16 <= size; off += st)
        put(b, off, key);
    put(b, size - 8, key);
}

static void check(const unsigned char *b, size_t size, uint64_t key, uint64_t chain)
{
    size_t st = stride();
    for (size_t off = 0; off + 8 <= size; off = off + 16 + st <= size ? off + st : size - 8) {
        uint64_t w;
        memcpy(&w, b + off, 8);
        if (w != key + off)
            bench_fail("reason=corrupt where=large ptr=%p size=%zu offset=%zu chain=%llu",
                       (const void *)b, size, off, (unsigned long long)chain);
        if (off == size - 8)
            break;
    }
}

static void worker(bench_thread *t)
{
    uint64_t chains = (uint64_t)bench_knob_value(&cfg, "chains");
    size_t lo = (size_t)bench_knob_value(&cfg, "min_size");
    size_t hi = (size_t)bench_knob_value(&cfg, "max_size");
    bench_lat_every(&t->lat, 1);
    uint64_t ops = 0;

    bench_start(t);
    for (uint64_t c = (uint64_t)t->id; c < chains; c += (uint64_t)t->nthreads) {
        uint64_t key = bench_mix(cfg.seed ^ bench_mix(c + 1));
        size_t size = bench_rng_range(&t->rng, lo, 4 * lo < hi ? 4 * lo : hi);
        uint64_t t0 = bench_lat_begin(&t->lat);
        unsigned char *b = bench_malloc(size);
        bench_lat_end(&t->lat, t0);
        fill(b, 0, size, key);
        ops++;
        while (size < hi) {
            size_t next = size + size / 2 < hi ? size + size / 2 : hi;
            t0 = bench_lat_begin(&t->lat);
            unsigned char *nb = realloc(b, next);
            bench_lat_end(&t->lat, t0);
            if (!nb)
                bench_fail("reason=realloc-null size=%zu", next);
            b = nb;
            check(b, size, key, c);
            fill(b, size, next, key);
            size = next;
            ops++;
        }
        check(b, size, key, c);
        t0 = bench_lat_begin(&t->lat);
        free(b);
        bench_lat_end(&t->lat, t0);
        ops++;
    }
    t->ops = ops;
    bench_stop(t);
}

int main(int argc, char **argv)
{
    bench_parse(&cfg, argc, argv);
    size_t lo = (size_t)bench_knob_value(&cfg, "min_size");
    size_t hi = (size_t)bench_knob_value(&cfg, "max_size");
    if (lo > hi)
        bench_usage_error("min_size must not exceed max_size");
    /* Operations per chain: malloc, one realloc per 1.5x step, free. */
    size_t steps = 2;
    for (size_t s = lo; s < hi; s += s / 2)
        steps++;
    uint64_t per = (uint64_t)bench_knob_value(&cfg, "chains") / (uint64_t)cfg.threads + 1;
    bench_team team;
    bench_team_init(&team, &cfg, cfg.threads, NULL, per * steps + 16);
    bench_team_run(&team, worker);
    bench_team_report(&team, NULL);
    bench_team_destroy(&team);
    return 0;
}
