/* large: big blocks and realloc growth. Each chain mallocs a block of
 * min_size..4*min_size bytes and reallocs it to 1.5x its size (or, with
 * --step S, by 1..S bytes) until it reaches max_size, then frees it; the
 * chains are split across the threads, each thread keeping --buffers of its
 * chains in flight, grown round-robin (a program's many growing buffers:
 * --buffers 64 --step 4096 --min_size 16 --max_size 131072 takes them through
 * the medium classes). The content is checked after every realloc: a word
 * at every page (every word with --full-check) and the last word hold key +
 * offset, with the key derived from the chain (the block moves, so not from
 * its address). One operation = one malloc, realloc or free; every
 * operation is a latency sample. */
#include "bench.h"

static bench_knob knobs[] = {
    BENCH_KNOB("chains", 16, 4, 1, "growth chains, total over threads"),
    BENCH_KNOB("min_size", 65536, 65536, 16, "chains start at min_size..4*min_size bytes"),
    BENCH_KNOB("max_size", 33554432, 4194304, 16, "chains end at this size"),
    BENCH_KNOB("buffers", 1, 1, 1, "chains each thread keeps in flight, grown round-robin"),
    BENCH_KNOB("step", 0, 0, 0, "growth per realloc: 1..step bytes (0: x1.5)"),
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

/* A chain in flight: its block, size and key, or none (b == NULL). */
struct chain {
    unsigned char *b;
    size_t size;
    uint64_t key, id;
};

static void worker(bench_thread *t)
{
    uint64_t chains = (uint64_t)bench_knob_value(&cfg, "chains");
    size_t lo = (size_t)bench_knob_value(&cfg, "min_size");
    size_t hi = (size_t)bench_knob_value(&cfg, "max_size");
    size_t step = (size_t)bench_knob_value(&cfg, "step");
    size_t nbuf = (size_t)bench_knob_value(&cfg, "buffers");
    struct chain *ch = bench_aux_alloc(nbuf * sizeof *ch);
    memset(ch, 0, nbuf * sizeof *ch);
    bench_lat_every(&t->lat, 1);
    uint64_t ops = 0, c = (uint64_t)t->id;
    size_t live = 0;

    bench_start(t);
    for (size_t i = 0; c < chains || live > 0; i = i + 1 < nbuf ? i + 1 : 0) {
        struct chain *k = &ch[i];
        uint64_t t0;
        if (k->b == NULL) {
            if (c >= chains)
                continue;
            k->id = c;
            c += (uint64_t)t->nthreads;
            k->key = bench_mix(cfg.seed ^ bench_mix(k->id + 1));
            k->size = bench_rng_range(&t->rng, lo, 4 * lo < hi ? 4 * lo : hi);
            t0 = bench_lat_begin(&t->lat);
            k->b = bench_malloc(k->size);
            bench_lat_end(&t->lat, t0);
            fill(k->b, 0, k->size, k->key);
            live++;
        } else if (k->size < hi) {
            size_t grow = step ? bench_rng_range(&t->rng, 1, step) : k->size / 2;
            size_t next = k->size + grow < hi ? k->size + grow : hi;
            t0 = bench_lat_begin(&t->lat);
            unsigned char *nb = realloc(k->b, next);
            bench_lat_end(&t->lat, t0);
            if (!nb)
                bench_fail("reason=realloc-null size=%zu", next);
            k->b = nb;
            check(k->b, k->size, k->key, k->id);
            fill(k->b, k->size, next, k->key);
            k->size = next;
        } else {
            check(k->b, k->size, k->key, k->id);
            t0 = bench_lat_begin(&t->lat);
            free(k->b);
            bench_lat_end(&t->lat, t0);
            k->b = NULL;
            live--;
        }
        ops++;
    }
    t->ops = ops;
    bench_stop(t);
    bench_aux_free(ch, nbuf * sizeof *ch);
}

int main(int argc, char **argv)
{
    bench_parse(&cfg, argc, argv);
    size_t lo = (size_t)bench_knob_value(&cfg, "min_size");
    size_t hi = (size_t)bench_knob_value(&cfg, "max_size");
    if (lo > hi)
        bench_usage_error("min_size must not exceed max_size");
    /* Operations per chain: malloc, one realloc per step (1.5x, or
     * step / 2 bytes on average), free; the latency arrays keep at most
     * 2^22 samples per thread. */
    size_t step = (size_t)bench_knob_value(&cfg, "step"), steps = 2;
    if (step)
        steps += (hi - lo) / (step / 2 + 1) + 1;
    else
        for (size_t s = lo; s < hi; s += s / 2)
            steps++;
    uint64_t per = (uint64_t)bench_knob_value(&cfg, "chains") / (uint64_t)cfg.threads + 1;
    bench_team team;
    uint64_t samples = per * steps + 16;
    bench_team_init(&team, &cfg, cfg.threads, NULL, samples < (1u << 22) ? samples : (1u << 22));
    bench_team_run(&team, worker);
    bench_team_report(&team, NULL);
    bench_team_destroy(&team);
    return 0;
}
